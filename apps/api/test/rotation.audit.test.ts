/**
 * The audit trail of rotations (RELIABILITY G1, G2, G3, G4; DESIGN §5).
 *  - G1 oracle: every transition of the state machine, driven through the API (the clock and the
 *    fault hooks for expire, fail and recover), writes exactly the events the oracle expects —
 *    one per transition — with actor, role, outcome, target, UTC time, client address and the
 *    request id that the request's own log line carries.
 *  - G3: verify passes on the clean chain and finds the first bad event for an edited, deleted,
 *    inserted or reordered row; truncation and a recomputed chain only fail against a checkpoint.
 *  - G4: UPDATE, DELETE and TRUNCATE on audit_events fail while the triggers are in place.
 */
import type { AuditVerify } from '@keyturn/shared';
import { expect, it } from 'vitest';
import { eventHash } from '../src/modules/audit/audit.repo';
import { api, countRows, createSecret, describeBoth, expectError, json, queryRows, registerUser, type Response, setupAdmin, type TestUser, useTestApp } from './harness';
import {
  type AuditRow,
  approveRotation,
  auditHead,
  auditSince,
  cancelRes,
  executeRes,
  FAKE_TEMP_PASSWORD,
  faultHooks,
  finalizeRes,
  rejectRes,
  requestRotation,
  restoreRes,
  rotate,
  runSql,
  testClock,
  tokenRow,
} from './rotation.helpers';

interface Expected {
  action: string;
  outcome: 'success' | 'failure' | 'denied';
  actor: TestUser | null;
  role: string;
  target: string | null;
  /** The URL of the request that wrote it (its request id must match that request's log line). */
  url: string;
}

describeBoth('rotation audit trail', (backend) => {
  const clock = testClock();
  const faults = faultHooks();
  const t = useTestApp(backend, { env: { TOKEN_TTL_SECONDS: '3600' }, deps: { clock, rotationHooks: faults.hooks } });
  let admin: TestUser;
  const rot = (id: string) => `rotation:${id}`;

  /** request id → URL, from the "incoming request" log lines. */
  function requestUrls(): Map<string, string> {
    const m = new Map<string, string>();
    for (const e of t.logs.entries()) {
      const req = e.req as { url?: string } | undefined;
      if (e.msg === 'incoming request' && typeof e.reqId === 'string' && req?.url) m.set(e.reqId, req.url);
    }
    return m;
  }

  /** Run `fn`; the events it wrote must be exactly `expected` (in order), fully attributed. */
  async function oracle<T>(expected: (r: T) => Expected[], fn: () => Promise<T>): Promise<AuditRow[]> {
    const head = await auditHead(t.database);
    const r = await fn();
    const events = await auditSince(t.database, head);
    const want = expected(r);
    const shape = (e: { action: string; outcome: string; target: string | null; role: string }) => `${e.action} ${e.outcome} ${e.target} ${e.role}`;
    expect(events.map(shape)).toEqual(want.map((w) => shape(w)));
    const urls = requestUrls();
    events.forEach((e, i) => {
      const w = want[i]!;
      expect(e.actor_id).toBe(w.actor?.id ?? null);
      expect(e.actor_email).toBe(w.actor?.email ?? null);
      expect(e.client_address).toBe('127.0.0.1');
      expect(e.at_text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(e.request_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(urls.get(e.request_id!)).toBe(w.url);
    });
    // Sequence numbers continue the chain without a gap.
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => head + 1 + i));
    return events;
  }

  const ev = (action: string, outcome: Expected['outcome'], actor: TestUser | null, target: string | null, url: string): Expected => ({
    action,
    outcome,
    actor,
    role: actor === null ? 'system' : actor.id === admin.id ? 'admin' : 'user',
    target,
    url,
  });
  const EXECUTE = '/api/rotate_keys_with_token';
  const approveUrl = (id: string) => `/admin/api/approve_rotation/${id}`;

  async function userWithSecret() {
    const u = await registerUser(t.app);
    await createSecret(t.app, u, { name: 'n', value: 'v' });
    return u;
  }
  async function approvedToken(u: TestUser) {
    const token = await requestRotation(t, u);
    const a = await approveRotation(t, admin, token.id);
    return { id: token.id, temp: a.tempPassword };
  }

  // ------------------------------------------------------------------------------- G1
  let u1: TestUser;
  let t1: { id: string; temp: string };

  it('G1 request: one rotation.requested by the user', async () => {
    admin = await setupAdmin(t.app);
    u1 = await userWithSecret();
    const [e] = await oracle(
      (tok: { id: string }) => [ev('rotation.requested', 'success', u1, rot(tok.id), '/api/request_key_rotation')],
      () => requestRotation(t, u1),
    );
    t1 = { id: e!.target!.slice('rotation:'.length), temp: '' };
    expect(e!.details.fingerprint).toMatch(/^[a-z]+(-[a-z]+){3}$/);
  });

  it('G1 approve: one rotation.approved by the admin, with the fingerprint and no temporary password', async () => {
    const [e] = await oracle(
      () => [ev('rotation.approved', 'success', admin, rot(t1.id), approveUrl(t1.id))],
      async () => {
        t1.temp = (await approveRotation(t, admin, t1.id)).tempPassword;
      },
    );
    expect(e!.details).toMatchObject({ selfApproved: false, fingerprint: expect.any(String) });
    expect(JSON.stringify(e)).not.toContain(t1.temp);
  });

  it('G1 reject: one rotation.rejected (with the reason) by the admin', async () => {
    const u = await userWithSecret();
    const tok = await requestRotation(t, u);
    const [e] = await oracle(
      () => [ev('rotation.rejected', 'success', admin, rot(tok.id), `/admin/api/reject_rotation/${tok.id}`)],
      async () => expect((await rejectRes(t, admin, tok.id, 'not justified')).statusCode).toBe(200),
    );
    expect(e!.details.note).toBe('not justified');
  });

  it('G1 cancel: one rotation.cancelled by the owner', async () => {
    const u = await userWithSecret();
    const tok = await requestRotation(t, u);
    await oracle(
      () => [ev('rotation.cancelled', 'success', u, rot(tok.id), `/api/rotation_requests/${tok.id}/cancel`)],
      async () => expect((await cancelRes(t, u, tok.id)).statusCode).toBe(200),
    );
  });

  it('G1 execute: rotation.started then rotation.completed, one request', async () => {
    const [, done] = await oracle(
      () => [ev('rotation.started', 'success', u1, rot(t1.id), EXECUTE), ev('rotation.completed', 'success', u1, rot(t1.id), EXECUTE)],
      async () => expect((await executeRes(t, u1, { tokenId: t1.id, tempPassword: t1.temp })).statusCode).toBe(200),
    );
    expect(done!.details).toMatchObject({ fromKeyVersion: 1, toKeyVersion: 2, secretsReencrypted: 1, passwordChanged: false });
  });

  it('G1 fail: rotation.started then rotation.failed (with the reason); G2: the failure is on record though the rotation rolled back', async () => {
    const u = await userWithSecret();
    const tok = await approvedToken(u);
    faults.failAt(tok.id, 'beforeCommit');
    const [, failed] = await oracle(
      () => [ev('rotation.started', 'success', u, rot(tok.id), EXECUTE), ev('rotation.failed', 'failure', u, rot(tok.id), EXECUTE)],
      async () => expectError(await executeRes(t, u, { tokenId: tok.id, tempPassword: tok.temp }), 500),
    );
    expect(failed!.details.reason).toBe('INTERNAL_ERROR');
  });

  it('G1 revoke: one failure event per wrong temporary password, then exactly one rotation.revoked', async () => {
    const u = await userWithSecret();
    const tok = await approvedToken(u);
    const wrong = () => executeRes(t, u, { tokenId: tok.id, tempPassword: FAKE_TEMP_PASSWORD });
    for (let i = 1; i < 5; i++) {
      await oracle(() => [ev('rotation.execute', 'failure', u, rot(tok.id), EXECUTE)], async () => expectError(await wrong(), 401));
    }
    await oracle(
      () => [ev('rotation.execute', 'failure', u, rot(tok.id), EXECUTE), ev('rotation.revoked', 'success', u, rot(tok.id), EXECUTE)],
      async () => expectError(await wrong(), 423),
    );
    // Afterwards a refused attempt is a denial, not another revocation.
    await oracle(() => [ev('rotation.execute', 'denied', u, rot(tok.id), EXECUTE)], async () => expectError(await executeRes(t, u, { tokenId: tok.id, tempPassword: tok.temp }), 423));
  });

  it('G1 expire by cleanup (clock past expires_at): one rotation.expired plus the maintenance run', async () => {
    const u = await userWithSecret();
    const tok = await approvedToken(u);
    clock.offsetMs = (t.config.TOKEN_TTL_SECONDS + 1) * 1000;
    try {
      const [e] = await oracle(
        () => [ev('rotation.expired', 'success', admin, rot(tok.id), '/admin/api/maintenance/cleanup'), ev('maintenance.cleanup', 'success', admin, null, '/admin/api/maintenance/cleanup')],
        async () => expect((await api(t.app, admin).post('/admin/api/maintenance/cleanup')).statusCode).toBe(200),
      );
      expect(e!.details).toMatchObject({ from: 'approved' });
    } finally {
      clock.reset();
    }
    expect((await tokenRow(t.database, tok.id))?.status).toBe('expired');
  });

  it('G1 expire on use (before any cleanup): one rotation.expired by the user who tried', async () => {
    const u = await userWithSecret();
    const tok = await approvedToken(u);
    clock.offsetMs = (t.config.TOKEN_TTL_SECONDS + 1) * 1000;
    try {
      await oracle(() => [ev('rotation.expired', 'success', u, rot(tok.id), EXECUTE)], async () => expectError(await executeRes(t, u, { tokenId: tok.id, tempPassword: tok.temp }), 410));
    } finally {
      clock.reset();
    }
  });

  it('G1 finalize: one rotation.finalized by the admin', async () => {
    await oracle(
      () => [ev('rotation.finalized', 'success', admin, rot(t1.id), `/admin/api/finalize_a_dek/${t1.id}`)],
      async () => expect((await finalizeRes(t, admin, t1.id)).statusCode).toBe(200),
    );
  });

  it('G1 restore: one rotation.rolled_back by the admin', async () => {
    const u = await userWithSecret();
    const r = await rotate(t, admin, u);
    const [e] = await oracle(
      () => [ev('rotation.rolled_back', 'success', admin, rot(r.token.id), `/admin/api/restore_rotation/${r.token.id}`)],
      async () => expect((await restoreRes(t, admin, r.token.id)).statusCode).toBe(200),
    );
    expect(e!.details).toMatchObject({ secretsRestored: 1, keyVersion: 1 });
  });

  it('G1 supersede: a newer completed rotation writes one rotation.superseded for the older token', async () => {
    const u = await userWithSecret();
    const first = await rotate(t, admin, u);
    const tok = await approvedToken(first.user);
    await oracle(
      () => [
        ev('rotation.started', 'success', first.user, rot(tok.id), EXECUTE),
        ev('rotation.superseded', 'success', first.user, rot(first.token.id), EXECUTE),
        ev('rotation.completed', 'success', first.user, rot(tok.id), EXECUTE),
      ],
      async () => expect((await executeRes(t, first.user, { tokenId: tok.id, tempPassword: tok.temp })).statusCode).toBe(200),
    );
    expect((await tokenRow(t.database, first.token.id))?.status).toBe('superseded');
  });

  it('G1 recover: one rotation.recovered for an abandoned lock; the executor that comes back later writes nothing', async () => {
    const u = await userWithSecret();
    const tok = await approvedToken(u);
    const pause = faults.pauseAt(tok.id, 'afterClaim');
    let running: Promise<Response> | undefined;
    await oracle(
      () => [ev('rotation.started', 'success', u, rot(tok.id), EXECUTE)],
      async () => {
        running = executeRes(t, u, { tokenId: tok.id, tempPassword: tok.temp });
        await pause.reached;
      },
    );
    try {
      clock.offsetMs = (t.config.LOCK_TIMEOUT_SECONDS + 1) * 1000;
      const [e] = await oracle(
        () => [ev('rotation.recovered', 'success', admin, rot(tok.id), '/admin/api/maintenance/recover'), ev('maintenance.recover', 'success', admin, null, '/admin/api/maintenance/recover')],
        async () => expect((await api(t.app, admin).post('/admin/api/maintenance/recover')).statusCode).toBe(200),
      );
      expect(e!.details).toMatchObject({ to: 'failed' });
      expect(await tokenRow(t.database, tok.id)).toMatchObject({ status: 'failed', failure_reason: 'INTERRUPTED' });
      // The stalled executor resumes: it must not commit over the settled token, and writes no event.
      await oracle(
        () => [],
        async () => {
          pause.release();
          expectError(await running!, 409);
        },
      );
      expect((await tokenRow(t.database, tok.id))?.status).toBe('failed');
    } finally {
      pause.release();
      await running?.catch(() => {});
      clock.reset();
    }
  });

  it('G1/G4: the chain is whole: seq 1..N without gaps, every event UTC, and verify passes', async () => {
    const rows = await queryRows<{ seq: number }>(t.database, 'select seq from audit_events order by seq');
    expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1));
    const v = json<AuditVerify>(await api(t.app, admin).get('/admin/api/audit/verify'));
    expect(v).toMatchObject({ ok: true, checked: rows.length, firstBadSeq: null, head: { seq: rows.length } });
    // The export ships the same chain, oldest first, one JSON object a line.
    const exported = (await api(t.app, admin).get('/admin/api/audit/export')).body.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; hash: string });
    expect(exported.map((e) => e.seq)).toEqual(rows.map((r) => Number(r.seq)));
    expect(exported.at(-1)!.hash).toBe(v.head!.hash);
    // The list filters by target and outcome.
    const list = json<{ items: { action: string }[]; total: number }>(await api(t.app, admin).get(`/admin/api/audit?target=${encodeURIComponent(rot(t1.id))}&outcome=success&limit=100`));
    expect(list.items.map((e) => e.action).reverse()).toEqual(['rotation.requested', 'rotation.approved', 'rotation.started', 'rotation.completed', 'rotation.finalized']);
  });

  // ------------------------------------------------------------------------------- G4
  async function sqlError(text: string): Promise<string> {
    try {
      await runSql(t.database, text);
    } catch (e) {
      return `${(e as Error).message} ${String((e as { cause?: Error }).cause?.message ?? '')}`;
    }
    return 'no error';
  }

  it('G4: UPDATE, DELETE and TRUNCATE on audit_events are refused by the database', async () => {
    const n = await countRows(t.database, 'audit_events');
    const dumpBefore = await queryRows(t.database, 'select * from audit_events order by seq');
    expect(await sqlError(`update audit_events set outcome = 'success' where seq = 1`)).toMatch(/append-only/);
    expect(await sqlError('delete from audit_events where seq = 1')).toMatch(/append-only/);
    expect(await sqlError('delete from audit_events')).toMatch(/append-only/);
    expect(await sqlError('truncate audit_events')).toMatch(/append-only/);
    expect(await countRows(t.database, 'audit_events')).toBe(n);
    expect(await queryRows(t.database, 'select * from audit_events order by seq')).toEqual(dumpBefore);
  });

  // ------------------------------------------------------------------------------- G3
  const verify = async (checkpoint?: { seq: number; hash: string }) => {
    const q = checkpoint ? `?checkpointSeq=${checkpoint.seq}&checkpointHash=${checkpoint.hash}` : '';
    const res = await api(t.app, admin).get(`/admin/api/audit/verify${q}`);
    expect(res.statusCode, res.body).toBe(200);
    return json<AuditVerify>(res);
  };
  /** Tampering needs the table owner to switch the append-only triggers off first. */
  async function tamper(statements: string[]) {
    await runSql(t.database, 'alter table audit_events disable trigger user');
    try {
      for (const s of statements) await runSql(t.database, s);
    } finally {
      await runSql(t.database, 'alter table audit_events enable trigger user');
    }
  }
  const restoreOriginal = () => tamper(['delete from audit_events', 'insert into audit_events select * from kt_audit_original']);
  const rowAt = async (seq: number) => (await queryRows<AuditRow>(t.database, `select * from audit_events where seq = ${seq}`))[0]!;
  const hashOf = (prevHash: string, seq: number, r: AuditRow) =>
    eventHash(prevHash, seq, r.at_text, {
      actorId: r.actor_id,
      actorEmail: r.actor_email,
      role: r.role,
      action: r.action,
      target: r.target,
      outcome: r.outcome as 'success',
      requestId: r.request_id,
      clientAddress: r.client_address,
      details: r.details,
    });

  let head: { seq: number; hash: string };
  let k: number;
  it('G3 setup: a clean chain verifies and gives a checkpoint (head seq + hash)', async () => {
    const v = await verify();
    expect(v.ok).toBe(true);
    head = v.head!;
    expect(head.seq).toBeGreaterThan(40);
    k = Math.floor(head.seq / 2);
    await runSql(t.database, 'create table kt_audit_original as select * from audit_events');
    const cp = await verify(head);
    expect(cp).toMatchObject({ ok: true, checkpoint: { ...head, matches: true } });
  });

  const cases: [string, () => Promise<void>, (v: AuditVerify, cp: AuditVerify) => void][] = [
    [
      'an edited field',
      () => tamper([`update audit_events set details = details || '{"forged": true}'::jsonb where seq = ${k}`]),
      (v) => expect(v).toMatchObject({ ok: false, firstBadSeq: k, problem: expect.stringMatching(/hash/) }),
    ],
    [
      'an edited outcome',
      () => tamper([`update audit_events set outcome = case when outcome = 'success' then 'failure' else 'success' end where seq = ${k + 1}`]),
      (v) => expect(v).toMatchObject({ ok: false, firstBadSeq: k + 1 }),
    ],
    [
      'a deleted row',
      () => tamper([`delete from audit_events where seq = ${k}`]),
      (v) => expect(v).toMatchObject({ ok: false, firstBadSeq: k, problem: expect.stringMatching(/missing/) }),
    ],
    [
      'a forged row inserted in the middle (with a correctly computed hash of its own)',
      async () => {
        const prev = await rowAt(k - 1);
        const forged: AuditRow = { ...(await rowAt(k)), action: 'rotation.approved', outcome: 'success', details: { forged: true } };
        const hash = hashOf(prev.hash, k, forged);
        await tamper([
          `update audit_events set seq = seq + 1000000 where seq >= ${k}`,
          `update audit_events set seq = seq - 1000000 + 1 where seq >= 1000000`,
          `insert into audit_events (seq, at, at_text, actor_id, actor_email, role, action, target, outcome, request_id, client_address, details, prev_hash, hash)
             select ${k}, at, at_text, actor_id, actor_email, role, 'rotation.approved', target, 'success', request_id, client_address, '{"forged": true}'::jsonb, '${prev.hash}', '${hash}'
             from audit_events where seq = ${k + 1}`,
        ]);
      },
      // The forged row links to its predecessor; the first event that no longer fits is the one after it.
      (v) => expect(v).toMatchObject({ ok: false, firstBadSeq: k + 1 }),
    ],
    [
      'a forged row appended with a made-up hash',
      () =>
        tamper([
          `insert into audit_events (seq, at, at_text, role, action, outcome, details, prev_hash, hash)
             values (${head.seq + 1}, now(), '2020-01-01T00:00:00.000000Z', 'admin', 'rotation.approved', 'success', '{}'::jsonb, '${head.hash}', '${'f'.repeat(64)}')`,
        ]),
      (v) => expect(v).toMatchObject({ ok: false, firstBadSeq: head.seq + 1 }),
    ],
    [
      'two rows reordered (contents swapped)',
      () =>
        tamper([
          `update audit_events a set at = b.at, at_text = b.at_text, actor_id = b.actor_id, actor_email = b.actor_email, role = b.role, action = b.action,
                 target = b.target, outcome = b.outcome, request_id = b.request_id, client_address = b.client_address, details = b.details,
                 prev_hash = b.prev_hash, hash = b.hash
             from audit_events b where (a.seq = ${k} and b.seq = ${k + 1}) or (a.seq = ${k + 1} and b.seq = ${k})`,
        ]),
      (v) => expect(v).toMatchObject({ ok: false, firstBadSeq: k }),
    ],
    [
      'a truncated tail (caught only by the checkpoint)',
      () => tamper([`delete from audit_events where seq > ${k}`]),
      (v, cp) => {
        expect(v).toMatchObject({ ok: true, head: { seq: k } });
        expect(cp).toMatchObject({ ok: false, firstBadSeq: head.seq, problem: expect.stringMatching(/truncated/), checkpoint: { matches: false } });
      },
    ],
    [
      'a whole chain recomputed over an edit, with a forged head (caught only by the checkpoint)',
      async () => {
        const rows = await queryRows<AuditRow>(t.database, `select * from audit_events where seq >= ${k} order by seq`);
        let prev = (await rowAt(k - 1)).hash;
        const updates: string[] = [];
        for (const r of rows) {
          const seq = Number(r.seq);
          const row = seq === k ? { ...r, details: { ...r.details, forged: true } } : r;
          const hash = hashOf(prev, seq, row);
          updates.push(`update audit_events set details = '${JSON.stringify(row.details).replace(/'/g, "''")}'::jsonb, prev_hash = '${prev}', hash = '${hash}' where seq = ${seq}`);
          prev = hash;
        }
        await tamper(updates);
      },
      (v, cp) => {
        expect(v).toMatchObject({ ok: true });
        expect(v.head!.hash).not.toBe(head.hash);
        expect(cp).toMatchObject({ ok: false, firstBadSeq: head.seq, problem: expect.stringMatching(/rewritten/), checkpoint: { matches: false } });
      },
    ],
  ];

  for (const [name, doTamper, check] of cases) {
    it(`G3: ${name} is detected with the right first bad seq`, async () => {
      try {
        await doTamper();
        check(await verify(), await verify(head));
      } finally {
        await restoreOriginal();
      }
      expect(await verify(head)).toMatchObject({ ok: true, checkpoint: { matches: true } });
    });
  }

  it('G3: an older checkpoint still matches after later events are appended', async () => {
    const u = await registerUser(t.app);
    await requestRotation(t, u);
    const v = await verify(head);
    expect(v).toMatchObject({ ok: true, checkpoint: { ...head, matches: true } });
    expect(v.head!.seq).toBeGreaterThan(head.seq);
    await runSql(t.database, 'drop table kt_audit_original');
  });
});
