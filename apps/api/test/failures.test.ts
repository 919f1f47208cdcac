/**
 * Unexpected internal failures (RELIABILITY A8): with the database gone mid-life, requests get
 * the generic error envelope with a request id (503 UNAVAILABLE, no details, no driver text), the failure is
 * logged server-side under the same request id, the process keeps serving /healthz, and on
 * Postgres the pool recovers once the database is back.
 */
import pg from 'pg';
import { expect, it } from 'vitest';
import { api, createSecret, describeBoth, expectError, json, registerUser, setupAdmin, type TestUser, useTestApp } from './harness';

describeBoth('database failures', (backend) => {
  const t = useTestApp(backend);
  let user: TestUser;
  let secretId: string;

  it('sets up a user with a secret', async () => {
    await setupAdmin(t.app);
    user = await registerUser(t.app);
    secretId = (await createSecret(t.app, user, { name: 'n', value: 'v' })).id;
  });

  /** Make the database unreachable; returns how to bring it back (Postgres only). */
  async function takeDatabaseAway(): Promise<(() => Promise<void>) | null> {
    if (backend === 'pglite') {
      await t.database.close();
      return null;
    }
    const url = new URL(t.config.DATABASE_URL!);
    const name = url.pathname.slice(1);
    url.pathname = '/postgres';
    const admin = new pg.Client({ connectionString: url.toString() });
    await admin.connect();
    await admin.query(`alter database "${name}" allow_connections false`);
    await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [name]);
    return async () => {
      await admin.query(`alter database "${name}" allow_connections true`);
      await admin.end();
    };
  }

  it('answers a generic 503 with a request id, logs it, and keeps the process up', async () => {
    const restore = await takeDatabaseAway();
    try {
      for (const res of [
        await api(t.app, user).get('/api/secrets'),
        await api(t.app, user).get(`/api/secrets/${secretId}`),
        await api(t.app, user).post('/api/secrets', { name: 'during outage', value: 'x' }),
        await api(t.app).post('/api/auth/login', { email: user.email, password: user.password }),
      ]) {
        const err = expectError(res, 503, 'UNAVAILABLE');
        expect(err.details).toBeUndefined();
        expect(err.message).toBe('The service is temporarily unavailable. Try again shortly.');
        expect(t.logs.entries().some((e) => e.reqId === err.requestId && Number(e.level) >= 50)).toBe(true);
      }
      expect(json(await api(t.app).get('/healthz'))).toEqual({ ok: true });
      const ready = await api(t.app).get('/readyz');
      expect(ready.statusCode).toBe(503);
    } finally {
      await restore?.();
    }
  });

  it.runIf(backend === 'postgres')('recovers once the database is back', async () => {
    // A pooled connection killed above may fail once more before the pool replaces it.
    let res = await api(t.app, user).get(`/api/secrets/${secretId}`);
    for (let i = 0; i < 5 && res.statusCode >= 500; i++) res = await api(t.app, user).get(`/api/secrets/${secretId}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(json<{ value: string }>(res).value).toBe('v');
    // /readyz reuses its verdict for HEALTH_CACHE_SECONDS (default 2): ready again within that
    let ready = await api(t.app).get('/readyz');
    for (const until = Date.now() + 3_000; ready.statusCode !== 200 && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 100));
      ready = await api(t.app).get('/readyz');
    }
    expect(ready.statusCode).toBe(200);
  });
});
