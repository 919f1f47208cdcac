/**
 * The audit trail of the foundation's actions (DESIGN §5; RELIABILITY G1–G4 for these actions):
 * one event per register, login (success and failure), logout and secret write, with actor,
 * role, target, outcome, request id and client address; the hash chain verifies; the database
 * refuses UPDATE, DELETE and TRUNCATE; and an edit made behind the trigger's back is detected.
 */
import { expect, it } from 'vitest';
import { api, countRows, createSecret, describeBoth, json, queryRows, registerUser, setupAdmin, type TestUser, useTestApp } from './harness';

interface Event {
  seq: number;
  action: string;
  outcome: string;
  actor_id: string | null;
  actor_email: string | null;
  role: string;
  target: string | null;
  request_id: string | null;
  client_address: string | null;
  at_text: string;
  details: Record<string, unknown>;
}

describeBoth('audit trail', (backend) => {
  const t = useTestApp(backend);
  let admin: TestUser;
  let user: TestUser;
  let secretId: string;
  // seq is a bigint: node-postgres returns it as text, PGlite as a number.
  const events = async (where = 'true') =>
    (await queryRows<Event>(t.database, `select * from audit_events where ${where} order by seq`)).map((e) => ({ ...e, seq: Number(e.seq) }));

  it('records register, login success and failure, secret writes and logout, one event each', async () => {
    admin = await setupAdmin(t.app);
    const startSeq = (await countRows(t.database, 'audit_events')) + 1;
    user = await registerUser(t.app);
    const failed = await api(t.app).post('/api/auth/login', { email: user.email, password: 'definitely not it' });
    expect(failed.statusCode).toBe(401);
    const loginRes = await api(t.app).post('/api/auth/login', { email: user.email, password: user.password });
    expect(loginRes.statusCode).toBe(200);
    secretId = (await createSecret(t.app, user, { name: 'audited', value: 'audited value' })).id;
    expect((await api(t.app, user).put(`/api/secrets/${secretId}`, { value: 'new value' })).statusCode).toBe(200);
    expect((await api(t.app, user).delete(`/api/secrets/${secretId}`)).statusCode).toBe(200);
    const out = await api(t.app, user).post('/api/auth/logout');
    expect(out.statusCode).toBe(200);

    const got = await events(`seq >= ${startSeq}`);
    expect(got.map((e) => [e.action, e.outcome])).toEqual([
      ['user.registered', 'success'],
      ['auth.login', 'failure'],
      ['auth.login', 'success'],
      ['secret.created', 'success'],
      ['secret.updated', 'success'],
      ['secret.deleted', 'success'],
      ['auth.logout', 'success'],
    ]);
    for (const e of got) {
      expect(e.actor_id, e.action).toBe(user.id);
      expect(e.actor_email, e.action).toBe(user.email);
      expect(e.role, e.action).toBe('user');
      expect(e.request_id, e.action).toMatch(/^[0-9a-f-]{36}$/);
      expect(e.client_address, e.action).toBe('127.0.0.1');
      // UTC with microseconds, the exact text the hash covers.
      expect(e.at_text, e.action).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    }
    expect(got[0]!.target).toBe(`user:${user.id}`);
    expect(got[1]!.target).toBe(`email:${user.email}`);
    expect(got[1]!.details).toEqual({ reason: 'wrong_password' });
    expect(got.slice(3, 6).every((e) => e.target === `secret:${secretId}`)).toBe(true);
    // Sequence numbers are gapless.
    expect(got.map((e) => e.seq)).toEqual(got.map((_, i) => startSeq + i));
    // Metadata only: no names, values or passwords.
    const text = JSON.stringify(got);
    for (const plain of ['audited value', 'new value', user.password, 'definitely not it', admin.password]) expect(text).not.toContain(plain);
    // The request id in the audit row is the one the client saw.
    const loginEvent = got[2]!;
    expect(t.logs.entries().some((l) => l.reqId === loginEvent.request_id && (l.req as { url?: string } | undefined)?.url === '/api/auth/login')).toBe(true);
  });

  it('the export takes the list’s filters: only the matching events, oldest first; none: all of them; bad filters 400', async () => {
    const lines = async (query: string) => {
      const res = await api(t.app, admin).get(`/admin/api/audit/export${query}`);
      expect(res.statusCode, res.body).toBe(200);
      return { res, events: res.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; action: string; outcome: string; actorEmail: string | null }) };
    };
    const all = await lines('');
    expect(all.events.map((e) => e.seq)).toEqual((await events()).map((e) => e.seq));
    expect(all.res.headers['content-disposition']).toBe('attachment; filename="keyturn-audit.ndjson"');

    const logins = await lines(`?action=auth.login&actor=${encodeURIComponent(user.email.toUpperCase())}`);
    const want = (await events(`action = 'auth.login' and actor_email = '${user.email}'`)).map((e) => e.seq);
    expect(want.length).toBeGreaterThanOrEqual(2);
    expect(logins.events.map((e) => e.seq)).toEqual(want); // oldest first, exactly the matches
    expect(logins.res.headers['content-disposition']).toBe('attachment; filename="keyturn-audit-filtered.ndjson"');

    const failures = await lines('?action=auth.login&outcome=failure');
    expect(failures.events.map((e) => e.seq)).toEqual((await events("action = 'auth.login' and outcome = 'failure'")).map((e) => e.seq));
    expect((await lines('?from=2999-01-01T00:00:00Z')).events).toEqual([]);

    for (const bad of ['?outcome=maybe', '?from=yesterday', '?limit=5', `?action=${'a'.repeat(101)}`]) {
      const res = await api(t.app, admin).get(`/admin/api/audit/export${bad}`);
      expect(res.statusCode, bad).toBe(400);
    }
  });

  it('verifies the chain and reports its head', async () => {
    const n = await countRows(t.database, 'audit_events');
    const v = await t.app.container.audit.verify();
    expect(v).toMatchObject({ ok: true, checked: n, firstBadSeq: null, problem: null });
    expect(v.head?.seq).toBe(n);
    const [last] = await queryRows<{ hash: string; prev_hash: string }>(t.database, 'select hash, prev_hash from audit_events order by seq desc limit 1');
    expect(v.head?.hash).toBe(last!.hash);
    // Each event links to the one before it.
    const links = await queryRows<{ ok: boolean }>(
      t.database,
      `select bool_and(e.prev_hash = p.hash) as ok from audit_events e join audit_events p on p.seq = e.seq - 1`,
    );
    expect(links[0]!.ok).toBe(true);
  });

  it('refuses UPDATE, DELETE and TRUNCATE on the audit table', async () => {
    const n = await countRows(t.database, 'audit_events');
    for (const stmt of [`update audit_events set outcome = 'success' where seq = 1`, 'delete from audit_events where seq = 1', 'truncate audit_events']) {
      const err = await queryRows(t.database, stmt).then(
        () => null,
        (e: Error & { cause?: Error }) => e,
      );
      expect(err, stmt).not.toBeNull();
      expect(`${err!.message} ${err!.cause?.message ?? ''}`, stmt).toMatch(/append-only/);
    }
    expect(await countRows(t.database, 'audit_events')).toBe(n);
    expect((await t.app.container.audit.verify()).ok).toBe(true);
  });

  it('detects an edit made behind the trigger, naming the first bad event', async () => {
    const [target] = await events(`action = 'auth.login' and outcome = 'failure'`);
    // Only a superuser who disables the trigger can do this; verify must still notice.
    await queryRows(t.database, 'alter table audit_events disable trigger audit_events_no_update');
    try {
      await queryRows(t.database, `update audit_events set outcome = 'success' where seq = ${target!.seq}`);
    } finally {
      await queryRows(t.database, 'alter table audit_events enable trigger audit_events_no_update');
    }
    const v = await t.app.container.audit.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBadSeq).toBe(target!.seq);
    // The API keeps working with a tampered log (detection is for operators, not a kill switch).
    expect(json<{ ok: boolean }>(await api(t.app).get('/healthz')).ok).toBe(true);
  });
});
