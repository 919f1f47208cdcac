/**
 * Hardening races on real Postgres (issue 10, items 3, 6 and 7): each is reproduced exactly, not
 * by luck — fault hooks and the argon2 slot hold one side at the instant the race needs, and the
 * other side is observed waiting in pg_stat_activity before the first is let go.
 *
 * - item 3: a sign-in whose derivation spans a rotation's commit gets no session for the dead key
 *   version (the rotation's "revoke every session" never saw it).
 * - item 6: cleanup and a rotation lock in one order (audit append last), so they cannot deadlock;
 *   a deadlock that does happen (40P01) is retried, and never answers 500.
 * - item 7: listing secrets while a rotation commits answers 409 KEY_VERSION_STALE, never 500.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemCtx } from '../../src/lib/context';
import { api, json, login, registerUser, setupAdmin, type TestUser } from '../harness';
import { createFreshDatabase, type FreshDatabase, keyVersionOf, one, PG_SERVER_URL, type PgApp, pgSuiteName, requestAndApprove, rows, seedSecrets, sleep, startApp, waitFor } from './support';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
};

/** Backends of this database waiting on a lock, with the start of their statement. */
const lockWaiters = (db: FreshDatabase) =>
  rows<{ pid: number; query: string }>(
    db.observer,
    sql`select pid, query from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
  );

const deadlocks = async (db: FreshDatabase) =>
  Number((await one<{ n: string }>(db.observer, sql`select deadlocks::text as n from pg_stat_database where datname = current_database()`)).n);

describe.skipIf(!PG_SERVER_URL)(pgSuiteName('hardening races'), () => {
  let fresh: FreshDatabase;
  let A: PgApp;
  let admin: TestUser;
  /** What the fault hooks of app A do next (set per test). */
  const hooks: { afterClaim?: () => Promise<void>; beforeCommit?: () => Promise<void> } = {};

  beforeAll(async () => {
    fresh = await createFreshDatabase();
    A = await startApp(fresh.url, {
      jwtSecret: randomBytes(32).toString('base64url'),
      poolSize: 10,
      env: { KDF_MAX_CONCURRENCY: '1', PENDING_TTL_SECONDS: '1', INSTANCE_ID: 'races' },
      deps: {
        rotationHooks: {
          afterClaim: () => hooks.afterClaim?.(),
          beforeCommit: () => hooks.beforeCommit?.(),
        },
      },
    });
    admin = await setupAdmin(A.app);
  }, 60_000);

  afterAll(async () => {
    await A?.close();
    await fresh?.drop();
  });

  it('item 3: a sign-in that read the keys before a rotation committed gets no session for the old key version', async () => {
    const user = await registerUser(A.app);
    const { tokenId, tempPassword } = await requestAndApprove(A.app, user, admin);
    const kdf = A.app.container.metrics.kdfCount;
    const slot = deferred();
    let signIn: Promise<{ statusCode: number; body: string }> | null = null;
    hooks.afterClaim = async () => {
      // The rotation has derived its keys. Take the only argon2 slot, so the sign-in that starts
      // now reads the (old) keys and then waits for its derivation until after the commit.
      const before = kdf.get();
      void A.app.container.auth.kdfCost(() => slot.promise);
      signIn = api(A.app).post('/api/auth/login', { email: user.email, password: user.password });
      await waitFor('the sign-in to reach its derivation', async () => kdf.get() >= before + 2);
    };
    const ex = await api(A.app, user).post('/api/rotate_keys_with_token', { tokenId, tempPassword, currentPassword: user.password });
    hooks.afterClaim = undefined;
    expect(ex.statusCode, ex.body).toBe(200);
    expect(await keyVersionOf(fresh.observer, user.id)).toBe(2);
    slot.resolve();
    const answer = await signIn!;
    // It must not come back with a session for key version 1 that nothing will ever revoke.
    expect([409, 401], answer.body).toContain(answer.statusCode);
    const live = await rows<{ key_version: number }>(
      fresh.observer,
      sql`select key_version from sessions where user_id = ${user.id}::uuid and revoked_at is null and expires_at > now()`,
    );
    expect(live.map((r) => Number(r.key_version))).toEqual([2]);
    // Signing in again simply works.
    expect((await login(A.app, user.email, user.password)).id).toBe(user.id);
  });

  it('item 6: cleanup running while a rotation revokes sessions does not deadlock (audit append last everywhere)', async () => {
    const user = await registerUser(A.app);
    // A second session of the user that has expired but is not revoked: cleanup deletes it, the
    // rotation revokes it (so both want its row).
    const second = await login(A.app, user.email, user.password);
    const sid = JSON.parse(Buffer.from(second.token.split('.')[1]!, 'base64url').toString()).sid as string;
    await rows(fresh.observer, sql`update sessions set expires_at = now() - interval '1 minute' where id = ${sid}::uuid`);
    // An overdue pending request of someone else, so cleanup has an event to append.
    const other = await registerUser(A.app);
    expect((await api(A.app, other).post('/api/request_key_rotation', { reason: 'will expire' })).statusCode).toBe(201);
    await sleep(1100);
    const { tokenId, tempPassword } = await requestAndApprove(A.app, user, admin);

    const before = await deadlocks(fresh);
    let cleanup: Promise<{ ok?: { changes: Record<string, number> } | null; error?: unknown }> | null = null;
    hooks.beforeCommit = async () => {
      // Inside the rotation's transaction: the sessions are revoked (row locks held), the audit
      // event not yet appended. Start cleanup and let it run into the rotation's row locks.
      cleanup = A.app.container.maintenance.cleanup(systemCtx(`cleanup-${Date.now()}`, 'test'), { wait: true }).then(
        (r) => ({ ok: r }),
        (e: unknown) => ({ error: e }),
      );
      await waitFor('cleanup to wait on a lock the rotation holds', async () => (await lockWaiters(fresh)).length > 0);
    };
    const ex = await api(A.app, user).post('/api/rotate_keys_with_token', { tokenId, tempPassword, currentPassword: user.password });
    hooks.beforeCommit = undefined;
    const c = (await cleanup!) ?? {};
    expect(ex.statusCode, ex.body).toBe(200);
    expect(c.error, String(c.error)).toBeUndefined();
    expect(c.ok?.changes.tokensExpired).toBe(1);
    expect(c.ok?.changes.sessionsPurged).toBeGreaterThanOrEqual(1);
    expect(await deadlocks(fresh)).toBe(before);
  });

  it('item 6: a deadlock (40P01) inside a request transaction is retried: the write succeeds, no 500', async () => {
    const user = await registerUser(A.app);
    const me = api(A.app, user);
    const client = new pg.Client({ connectionString: fresh.url });
    await client.connect();
    try {
      // Another party holds the user's key row, then reaches for the per-user gate the secret
      // write holds (shared) while it waits for that row: a textbook deadlock, and Postgres aborts
      // the first waiter, the write's transaction.
      // The waiter whose deadlock_timeout fires first detects the cycle and is aborted: this
      // session waits 10 s before checking, so the write's backend (1 s) is always the victim,
      // however loaded the machine is.
      await client.query(`set deadlock_timeout = '10s'`);
      await client.query('begin');
      await client.query('select 1 from user_keys where user_id = $1 for update', [user.id]);
      const write = me.post('/api/secrets', { name: 'during a deadlock', value: 'v' });
      await waitFor('the write to wait for the key row', async () => (await lockWaiters(fresh)).length > 0);
      const gate = client.query('select pg_advisory_xact_lock(727274004::int, hashtext($1::text))', [user.id]);
      await gate;
      await client.query('rollback');
      const res = await write;
      expect(res.statusCode, res.body).toBe(201);
    } finally {
      await client.end();
    }
    expect(await deadlocks(fresh)).toBeGreaterThanOrEqual(1);
    const items = json<{ items: { name: string }[] }>(await me.get('/api/secrets')).items;
    expect(items.map((i) => i.name)).toEqual(['during a deadlock']);
  });

  it('item 7: cancel audits the state the token was in when it moved, not the one read before (approved meanwhile)', async () => {
    const user = await registerUser(A.app);
    const req = await api(A.app, user).post('/api/request_key_rotation', { reason: 'cancel race' });
    const tokenId = json<{ id: string }>(req).id;
    const client = new pg.Client({ connectionString: fresh.url });
    await client.connect();
    try {
      // Hold the token row; the cancel reads "pending", then waits for the row.
      await client.query('begin');
      await client.query('select 1 from rotation_tokens where id = $1 for update', [tokenId]);
      const cancel = api(A.app, user).post(`/api/rotation_requests/${tokenId}/cancel`);
      await waitFor('the cancel to wait for the token row', async () => (await lockWaiters(fresh)).length > 0);
      // Meanwhile the request is approved (as an admin would), and that commits first.
      await client.query(`update rotation_tokens set status = 'approved', approved_at = now(), expires_at = now() + interval '1 day' where id = $1`, [tokenId]);
      await client.query('commit');
      const res = await cancel;
      expect(res.statusCode, res.body).toBe(200);
    } finally {
      await client.end();
    }
    const [ev] = await rows<{ details: { from: string } }>(
      fresh.observer,
      sql`select details from audit_events where action = 'rotation.cancelled' and outcome = 'success' and target = ${`rotation:${tokenId}`}`,
    );
    expect(ev?.details.from).toBe('approved');
  });

  it('item 7: listing secrets while a rotation commits answers 409 KEY_VERSION_STALE, never 500', async () => {
    const user = await registerUser(A.app);
    await seedSecrets(fresh.url, user.id, user.password, 50, 'list');
    const reader = await login(A.app, user.email, user.password);
    const { tokenId, tempPassword } = await requestAndApprove(A.app, user, admin);
    const answers: number[] = [];
    const codes = new Set<string>();
    let stop = false;
    const readers = Array.from({ length: 3 }, async () => {
      while (!stop) {
        const r = await api(A.app, reader).get('/api/secrets');
        answers.push(r.statusCode);
        codes.add(`${r.statusCode}:${r.statusCode >= 400 ? json<{ error: { code: string } }>(r).error.code : 'ok'}`);
      }
    });
    await sleep(30);
    const ex = await api(A.app, user).post('/api/rotate_keys_with_token', { tokenId, tempPassword, currentPassword: user.password });
    await sleep(30);
    stop = true;
    await Promise.all(readers);
    expect(ex.statusCode, ex.body).toBe(200);
    for (const c of codes) expect(['200:ok', '409:KEY_VERSION_STALE', '401:UNAUTHENTICATED'], [...codes].join(' ')).toContain(c);
    expect(answers.filter((s) => s >= 500)).toHaveLength(0);
  });
});
