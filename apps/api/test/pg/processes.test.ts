/**
 * ★ Several API instances on one Postgres (issue 5's ★ tests; RELIABILITY C4, C10, E1, E5, E6).
 *
 * (a)–(c) start real API processes (`node --import tsx src/server.ts`, cwd apps/api), each on its
 * own port, with one DATABASE_URL, one JWT_SECRET and a known SETUP_CODE; they are killed by PID.
 * (d) needs fault points (a pause inside a live rotation, an executor that claims and goes silent),
 * which production has no knob for, so it runs in-process instances built with rotation hooks.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, json, registerUser, setupAdmin, strongPassword, type TestUser, uniqueEmail } from '../harness';
import {
  auditCount,
  createFreshDatabase,
  errorCode,
  type FreshDatabase,
  http,
  keyVersionOf,
  one,
  openSecretRow,
  PG_SERVER_URL,
  type PgApp,
  pgSuiteName,
  requestAndApprove,
  rows,
  type ServerProcess,
  sample,
  seedSecrets,
  sleep,
  spawnServer,
  startApp,
  tokenRow,
  waitFor,
} from './support';

interface HttpUser {
  id: string;
  email: string;
  password: string;
  token: string;
}

describe.skipIf(!PG_SERVER_URL)(pgSuiteName('processes: API processes sharing one database'), () => {
  const JWT_SECRET = randomBytes(32).toString('base64url');
  const SETUP_CODE = `kt-setup-${randomBytes(16).toString('hex')}`;
  const procs: ServerProcess[] = [];
  const dbs: FreshDatabase[] = [];

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await Promise.all(dbs.map((d) => d.drop()));
  }, 60_000);

  async function freshDb(): Promise<FreshDatabase> {
    const d = await createFreshDatabase();
    dbs.push(d);
    return d;
  }

  async function launch(name: string, db: FreshDatabase, env: Record<string, string> = {}): Promise<ServerProcess> {
    const p = await spawnServer(name, { DATABASE_URL: db.url, JWT_SECRET, SETUP_CODE, ...env });
    procs.push(p);
    return p;
  }

  async function setupAdminHttp(base: string): Promise<HttpUser> {
    const email = uniqueEmail('admin');
    const password = strongPassword();
    const r = await http<{ token: string; user: { id: string } }>(base, 'POST', '/api/setup', { setupCode: SETUP_CODE, email, password });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return { id: r.body.user.id, email, password, token: r.body.token };
  }

  async function registerHttp(base: string): Promise<HttpUser> {
    const email = uniqueEmail();
    const password = strongPassword();
    const r = await http<{ token: string; user: { id: string } }>(base, 'POST', '/api/auth/register', { email, password });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return { id: r.body.user.id, email, password, token: r.body.token };
  }

  async function requestHttp(base: string, user: HttpUser): Promise<string> {
    const r = await http<{ id: string }>(base, 'POST', '/api/request_key_rotation', { reason: 'process test' }, user.token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.id;
  }

  async function approveHttp(base: string, admin: HttpUser, tokenId: string): Promise<string> {
    const r = await http<{ tempPassword: string }>(base, 'POST', `/admin/api/approve_rotation/${tokenId}`, { adminPassword: admin.password }, admin.token);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.tempPassword;
  }

  it('(a) C4 over two processes: 20 parallel executes of one token spread over both → one 200, the rest 409', async () => {
    const db = await freshDb();
    const [p1, p2] = await Promise.all([launch('a-1', db), launch('a-2', db)]);
    const admin = await setupAdminHttp(p1!.base);
    const user = await registerHttp(p2!.base);
    await seedSecrets(db.url, user.id, user.password, 200, 'a');
    const tokenId = await requestHttp(p1!.base, user);
    const tempPassword = await approveHttp(p2!.base, admin, tokenId);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        http<{ keyVersion?: number; secretsReencrypted?: number }>((i % 2 ? p2 : p1)!.base, 'POST', '/api/rotate_keys_with_token', { tokenId, tempPassword, currentPassword: user.password }, user.token),
      ),
    );
    const summary = answers.map((r) => `${r.status} ${errorCode(r.body) ?? ''}`).join(', ');
    expect(answers.filter((r) => r.status >= 500), summary).toHaveLength(0);
    expect(answers.filter((r) => r.status === 200), summary).toHaveLength(1);
    for (const r of answers.filter((x) => x.status !== 200)) {
      expect(r.status, summary).toBe(409);
      expect(['LOST_RACE', 'INVALID_STATE'], summary).toContain(errorCode(r.body));
    }
    expect(answers.find((r) => r.status === 200)!.body).toMatchObject({ keyVersion: 2, secretsReencrypted: 200 });
    expect(await keyVersionOf(db.observer, user.id)).toBe(2);
    expect(await auditCount(db.observer, 'rotation.completed', tokenId)).toBe(1);
    const owner = await one<{ lock_owner: string }>(db.observer, sql`select lock_owner from rotation_tokens where id = ${tokenId}::uuid`);
    console.log(`(a) the winning executor: ${owner.lock_owner.split('/')[0]}`);
    await Promise.all([p1!.kill(), p2!.kill()]);
  }, 120_000);

  it('(b) both schedulers running (interval 1 s): each overdue token is expired once and audited once', async () => {
    const db = await freshDb();
    const env = { MAINTENANCE_INTERVAL_SECONDS: '1', PENDING_TTL_SECONDS: '6', TOKEN_TTL_SECONDS: '2' };
    const [p1, p2] = await Promise.all([launch('b-1', db, env), launch('b-2', db, env)]);
    const admin = await setupAdminHttp(p1!.base);
    const users = await Promise.all(Array.from({ length: 6 }, (_, i) => registerHttp((i % 2 ? p2 : p1)!.base)));
    const tokens = await Promise.all(users.map((u, i) => requestHttp((i % 2 ? p1 : p2)!.base, u)));
    // Half approved (expire 2 s after approval), half left pending (expire 6 s after the request).
    await Promise.all(tokens.slice(0, 3).map((t, i) => approveHttp((i % 2 ? p2 : p1)!.base, admin, t)));
    const ids = sql.join(
      tokens.map((t) => sql`${t}::uuid`),
      sql`, `,
    );
    await waitFor(
      'every token expired by the schedulers',
      async () => {
        const [r] = await rows<{ n: number }>(db.observer, sql`select count(*)::int as n from rotation_tokens where id in (${ids}) and status = 'expired'`);
        return r!.n === tokens.length;
      },
      30_000,
      200,
    );
    // A few more ticks of both schedulers: nothing may happen twice.
    await sleep(2500);
    for (const t of tokens) {
      const row = await tokenRow(db.observer, t);
      expect(row.status).toBe('expired');
      expect(row.decision_note).toBe('expired by cleanup');
      expect(await auditCount(db.observer, 'rotation.expired', t)).toBe(1);
    }
    const runs = await rows<{ instance: string; expired: number }>(
      db.observer,
      sql`select instance, coalesce((changes->>'tokensExpired')::int, 0) as expired from maintenance_runs where kind = 'cleanup'`,
    );
    // The runs' own tallies agree: 6 expiries in all, however the ticks of the two instances interleaved.
    expect(runs.reduce((s, r) => s + Number(r.expired), 0)).toBe(tokens.length);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    const byInstance = Object.entries(
      runs.reduce<Record<string, number>>((m, r) => {
        m[r.instance] = (m[r.instance] ?? 0) + 1;
        return m;
      }, {}),
    );
    console.log(`(b) cleanup runs per instance: ${byInstance.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    await Promise.all([p1!.kill(), p2!.kill()]);
  }, 120_000);

  it('(c) E1: SIGKILL mid re-encryption of 20k secrets → recover settles failed/INTERRUPTED, data intact, old password works, a new rotation proceeds', async () => {
    const N = 20_000;
    const db = await freshDb();
    const victim = await launch('c-victim', db, { ROTATION_BATCH_SIZE: '500' });
    const admin = await setupAdminHttp(victim.base);
    const user = await registerHttp(victim.base);
    const seeded = await seedSecrets(db.url, user.id, user.password, N, 'e1');
    const tokenId = await requestHttp(victim.base, user);
    const tempPassword = await approveHttp(victim.base, admin, tokenId);
    const newPassword = strongPassword();
    // The response never comes: the process dies first.
    const pending = http(victim.base, 'POST', '/api/rotate_keys_with_token', { tokenId, tempPassword, currentPassword: user.password, newPassword }, user.token).then(
      (r) => `answered ${r.status}`,
      () => 'no answer',
    );
    await waitFor('the token in_progress', async () => (await tokenRow(db.observer, tokenId)).status === 'in_progress', 30_000, 10);
    // Then until the rotation's backend is inside the batches (a batch UPDATE, or a keyset read past batch 1).
    const stage = await waitFor(
      're-encryption under way',
      async () => {
        const [r] = await rows<{ q: string }>(
          db.observer,
          sql`select left(query, 80) as q from pg_stat_activity
              where datname = ${db.name} and pid <> pg_backend_pid() and backend_xid is not null
                and (query ~* 'update\\s+"?secrets"?\\s' or query ilike '%"secrets"."id" > $%')`,
        );
        return r?.q;
      },
      30_000,
      3,
    );
    await sleep(30);
    await victim.kill('SIGKILL');
    expect(await pending).toBe('no answer');
    // Postgres notices the dead client and rolls its transaction back; wait until no transaction of it is left.
    await waitFor(
      'the killed backend gone',
      async () => {
        const [r] = await rows<{ n: number }>(
          db.observer,
          sql`select count(*)::int as n from pg_stat_activity where datname = ${db.name} and pid <> pg_backend_pid() and state <> 'idle'`,
        );
        return r!.n === 0;
      },
      30_000,
      50,
    );
    // Nothing settled it yet: still in_progress, and the rolled-back work left nothing behind.
    expect((await tokenRow(db.observer, tokenId)).status).toBe('in_progress');
    const { backups, chunks } = await one<{ backups: number; chunks: number }>(
      db.observer,
      sql`select (select count(*)::int from rotation_backups where token_id = ${tokenId}::uuid) as backups,
                 (select count(*)::int from rotation_backup_chunks where token_id = ${tokenId}::uuid) as chunks`,
    );
    expect(backups).toBe(0);
    expect(chunks).toBe(0);

    const medic = await launch('c-medic', db, { LOCK_TIMEOUT_SECONDS: '1', ROTATION_BATCH_SIZE: '2000' });
    await waitFor(
      'the lock older than LOCK_TIMEOUT_SECONDS',
      async () => (await one<{ old: boolean }>(db.observer, sql`select now() - locked_at > interval '1.2 seconds' as old from rotation_tokens where id = ${tokenId}::uuid`)).old,
      10_000,
      100,
    );
    const rec = await http<{ changes: { settled: number }; settled: { tokenId: string; to: string }[] }>(medic.base, 'POST', '/admin/api/maintenance/recover', undefined, admin.token);
    expect(rec.status, JSON.stringify(rec.body)).toBe(200);
    expect(rec.body.changes.settled).toBe(1);
    expect(rec.body.settled).toEqual([expect.objectContaining({ tokenId, to: 'failed' })]);
    const settled = await tokenRow(db.observer, tokenId);
    expect(settled.status).toBe('failed');
    expect(settled.failure_reason).toBe('INTERRUPTED');
    expect(await auditCount(db.observer, 'rotation.recovered', tokenId)).toBe(1);
    expect(await auditCount(db.observer, 'rotation.completed', tokenId)).toBe(0);

    // The database is exactly as before: old key version everywhere, old password only (I3).
    expect(await keyVersionOf(db.observer, user.id)).toBe(1);
    const { total, at1 } = await one<{ total: number; at1: number }>(
      db.observer,
      sql`select count(*)::int as total, count(*) filter (where key_version = 1)::int as at1 from secrets where user_id = ${user.id}::uuid`,
    );
    expect({ total, at1 }).toEqual({ total: N, at1: N });
    expect((await http(medic.base, 'POST', '/api/auth/login', { email: user.email, password: newPassword })).status).toBe(401);
    const relog = await http<{ token: string }>(medic.base, 'POST', '/api/auth/login', { email: user.email, password: user.password });
    expect(relog.status).toBe(200);
    for (const s of sample(seeded, 20)) {
      const r = await http<{ name: string; value: string }>(medic.base, 'GET', `/api/secrets/${s.id}`, undefined, relog.body.token);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ name: s.name, value: s.value });
    }
    // A new request proceeds, and its rotation opens all 20k rows under the old DEK (I1 for every row).
    const user2 = { ...user, token: relog.body.token };
    const next = await requestHttp(medic.base, user2);
    const temp2 = await approveHttp(medic.base, admin, next);
    const ex = await http<{ keyVersion: number; secretsReencrypted: number; session: { token: string } }>(
      medic.base,
      'POST',
      '/api/rotate_keys_with_token',
      { tokenId: next, tempPassword: temp2, currentPassword: user.password },
      user2.token,
    );
    expect(ex.status, JSON.stringify(ex.body)).toBe(200);
    expect(ex.body).toMatchObject({ keyVersion: 2, secretsReencrypted: N });
    const one1 = sample(seeded, 1)[0]!;
    expect(await openSecretRow(db.url, user.id, user.password, one1.id)).toEqual({ keyVersion: 2, name: one1.name, value: one1.value });
    console.log(`(c) killed while the rotation backend ran: ${stage.replace(/\s+/g, " ").trim()}`);
    await medic.kill();
  }, 120_000);

  describe('(d) in-process instances with fault points', () => {
    let db: FreshDatabase;
    /** A: executes, with a pause inside its live rotation. B, C: recover. D: claims and goes silent. */
    let A: PgApp;
    let B: PgApp;
    let C: PgApp;
    let D: PgApp;
    let admin: TestUser;
    const pause = { tokenId: '', ms: 4000, started: false };
    const silent = new Map<string, Promise<void>>();

    beforeAll(async () => {
      db = await freshDb();
      const jwtSecret = randomBytes(32).toString('base64url');
      const env = { LOCK_TIMEOUT_SECONDS: '1', ROTATION_BATCH_SIZE: '200' };
      [A, B, C, D] = await Promise.all([
        startApp(db.url, {
          jwtSecret,
          env: { ...env, INSTANCE_ID: 'd-A' },
          deps: {
            rotationHooks: {
              afterBatch: async (tokenId, index) => {
                if (tokenId === pause.tokenId && index === 0) {
                  pause.started = true;
                  await sleep(pause.ms);
                }
              },
            },
          },
        }),
        startApp(db.url, { jwtSecret, env: { ...env, INSTANCE_ID: 'd-B' } }),
        startApp(db.url, { jwtSecret, env: { ...env, INSTANCE_ID: 'd-C' } }),
        startApp(db.url, {
          jwtSecret,
          env: { ...env, INSTANCE_ID: 'd-D' },
          // Claims the token (approved → in_progress, committed), then stalls before its transaction
          // begins: to every other instance, exactly what a process that died after the claim leaves.
          deps: { rotationHooks: { afterClaim: (tokenId) => silent.get(tokenId) } },
        }),
      ]);
      admin = await setupAdmin(A.app);
    }, 60_000);

    afterAll(async () => {
      await Promise.all([A, B, C, D].map((x) => x?.close()));
    }, 60_000);

    const recoverOn = (x: PgApp) => api(x.app, admin).post('/admin/api/maintenance/recover');

    it('E5: recover never settles a live rotation paused past LOCK_TIMEOUT_SECONDS; the rotation then completes', async () => {
      const user = await registerUser(A.app);
      await seedSecrets(db.url, user.id, user.password, 600, 'e5');
      const { tokenId, tempPassword } = await requestAndApprove(A.app, user, admin);
      pause.tokenId = tokenId;
      let finished = false;
      const exec = api(A.app, user)
        .post('/api/rotate_keys_with_token', { tokenId, tempPassword, currentPassword: user.password })
        .finally(() => {
          finished = true;
        });
      await waitFor('the pause inside the rotation', async () => pause.started, 20_000, 10);
      await waitFor(
        'the live lock older than LOCK_TIMEOUT_SECONDS',
        async () => (await one<{ old: boolean }>(db.observer, sql`select now() - locked_at > interval '1.2 seconds' as old from rotation_tokens where id = ${tokenId}::uuid`)).old,
        10_000,
        50,
      );
      const recs = await Promise.all([recoverOn(B), recoverOn(C)]);
      // The rotation was still running when recover answered: this really overlapped.
      expect(finished).toBe(false);
      for (const r of recs) {
        expect(r.statusCode, r.body).toBe(200);
        expect(json<{ changes: { settled: number } }>(r).changes.settled).toBe(0);
      }
      expect((await tokenRow(db.observer, tokenId)).status).toBe('in_progress');
      const res = await exec;
      expect(res.statusCode, res.body).toBe(200);
      expect(json(res)).toMatchObject({ keyVersion: 2, secretsReencrypted: 600 });
      expect((await tokenRow(db.observer, tokenId)).status).toBe('completed');
      expect(await auditCount(db.observer, 'rotation.recovered', tokenId)).toBe(0);
      expect(await keyVersionOf(db.observer, user.id)).toBe(2);
    }, 60_000);

    it('E6: recover ×3 at once on 3 instances after abandoned locks → one settle event per token; a later run changes nothing; the silent executor cannot commit afterwards', async () => {
      const users = await Promise.all([registerUser(B.app), registerUser(C.app)]);
      const release: (() => void)[] = [];
      const tokens: string[] = [];
      const execs: Promise<Awaited<ReturnType<ReturnType<typeof api>['post']>>>[] = [];
      for (const u of users) {
        await seedSecrets(db.url, u.id, u.password, 50, 'e6');
        const { tokenId, tempPassword } = await requestAndApprove(B.app, u, admin);
        silent.set(tokenId, new Promise<void>((r) => release.push(r)));
        tokens.push(tokenId);
        execs.push(api(D.app, u).post('/api/rotate_keys_with_token', { tokenId, tempPassword, currentPassword: u.password }));
      }
      for (const t of tokens) {
        await waitFor(
          'an abandoned claim older than LOCK_TIMEOUT_SECONDS',
          async () => {
            const r = await one<{ status: string; old: boolean }>(
              db.observer,
              sql`select status, coalesce(now() - locked_at > interval '1.2 seconds', false) as old from rotation_tokens where id = ${t}::uuid`,
            );
            return r.status === 'in_progress' && r.old;
          },
          20_000,
          50,
        );
      }
      const before = await one<{ n: number }>(db.observer, sql`select count(*)::int as n from audit_events where action = 'maintenance.recover'`);
      const round1 = await Promise.all([A, B, C].map(recoverOn));
      for (const r of round1) expect(r.statusCode, r.body).toBe(200);
      // One run settled both; the runs that waited for it found nothing left (the result of a single run).
      expect(round1.map((r) => json<{ changes: { settled: number } }>(r).changes.settled).sort()).toEqual([0, 0, 2]);
      for (const t of tokens) {
        const row = await tokenRow(db.observer, t);
        expect(row.status).toBe('failed');
        expect(row.failure_reason).toBe('INTERRUPTED');
        expect(await auditCount(db.observer, 'rotation.recovered', t)).toBe(1);
      }
      const round2 = await Promise.all([A, B, C].map(recoverOn));
      expect(round2.map((r) => json<{ changes: { settled: number } }>(r).changes.settled)).toEqual([0, 0, 0]);
      const after = await one<{ n: number }>(db.observer, sql`select count(*)::int as n from audit_events where action = 'maintenance.recover'`);
      expect(after.n - before.n).toBe(6);

      // The silent executor wakes up: its final compare-and-set finds the token settled, so it rolls back.
      for (const r of release) r();
      const late = await Promise.all(execs);
      for (const r of late) {
        expect(r.statusCode, r.body).toBe(409);
        expect(json<{ error: { code: string } }>(r).error.code).toBe('INVALID_STATE');
      }
      for (const [i, t] of tokens.entries()) {
        const row = await tokenRow(db.observer, t);
        expect(row.status).toBe('failed');
        expect(row.failure_reason).toBe('INTERRUPTED');
        expect(await auditCount(db.observer, 'rotation.recovered', t)).toBe(1);
        expect(await auditCount(db.observer, 'rotation.completed', t)).toBe(0);
        expect(await keyVersionOf(db.observer, users[i]!.id)).toBe(1);
        const { n } = await one<{ n: number }>(db.observer, sql`select count(*)::int as n from secrets where user_id = ${users[i]!.id}::uuid and key_version = 1`);
        expect(n).toBe(50);
      }
      const v = await api(C.app, admin).get('/admin/api/audit/verify');
      expect(json(v)).toMatchObject({ ok: true });
    }, 60_000);
  });
});
