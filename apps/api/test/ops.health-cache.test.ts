/**
 * /readyz and /metrics are cheap and /metrics can be restricted (hardening item 8e;
 * modules/health/README.md):
 * - N concurrent probes and scrapes cost one readiness round and one gauge refresh (counted with
 *   spies on the container's database and maintenance service; on Postgres also as SQL statements
 *   at the driver), reused for HEALTH_CACHE_SECONDS, then done once more;
 * - with METRICS_TOKEN set, /metrics answers only to `Authorization: Bearer <token>`: anything else
 *   is a 401 in the one error body, with no metric text and no database work;
 * - /readyz still turns 503 within HEALTH_CACHE_SECONDS + the readiness timeout once the database
 *   is gone (ops.observability.test.ts checks the same on the verdict's contents).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { READY_TIMEOUT_MS } from '../src/modules/health/health.service';
import { createTestApp, describeBoth, expectError, setupAdmin, type TestApp, useTestApp } from './harness';
import { createFreshDatabase, type FreshDatabase, PG_SERVER_URL, type PgApp, pgSuiteName, startApp } from './pg/support';

const N = 50;

/** N /readyz and N /metrics at once; every answer 200. */
async function burst(t: { app: TestApp['app'] }, headers: Record<string, string> = {}) {
  const answers = await Promise.all([
    ...Array.from({ length: N }, () => t.app.inject({ method: 'GET', url: '/readyz' })),
    ...Array.from({ length: N }, () => t.app.inject({ method: 'GET', url: '/metrics', headers })),
  ]);
  for (const a of answers) expect(a.statusCode, a.body).toBe(200);
  return answers;
}

describeBoth('ops: /readyz and /metrics share one database round per HEALTH_CACHE_SECONDS', (backend) => {
  const t = useTestApp(backend, { env: { HEALTH_CACHE_SECONDS: '2' } });

  it(`${N} concurrent /readyz + ${N} /metrics: one readiness round and one gauge refresh; again none until the interval passed, then one more`, async () => {
    await setupAdmin(t.app);
    const ping = vi.spyOn(t.app.container.database, 'ping');
    const refresh = vi.spyOn(t.app.container.maintenance, 'refreshGauges');
    try {
      const first = await burst(t);
      expect(ping).toHaveBeenCalledTimes(1);
      expect(refresh).toHaveBeenCalledTimes(1);
      // every probe got the same verdict
      expect(new Set(first.slice(0, N).map((a) => a.body))).toEqual(new Set([JSON.stringify({ ready: true, checks: { database: true, migrations: true, amk: true } })]));
      expect(first[N]!.body).toMatch(/^keyturn_rotation_tokens\{state="pending"\} 0$/m);

      await burst(t);
      expect(ping).toHaveBeenCalledTimes(1);
      expect(refresh).toHaveBeenCalledTimes(1);

      await sleep(2_100);
      await burst(t);
      expect(ping).toHaveBeenCalledTimes(2);
      expect(refresh).toHaveBeenCalledTimes(2);
    } finally {
      ping.mockRestore();
      refresh.mockRestore();
    }
  }, 30_000);
});

describeBoth('ops: METRICS_TOKEN', (backend) => {
  const token = `mt-${randomBytes(24).toString('base64url')}`;
  const t = useTestApp(backend, { env: { METRICS_TOKEN: token } });

  it('without the right bearer token: 401 in the one error body, no metric text, no database work; with it: the metrics', async () => {
    const refresh = vi.spyOn(t.app.container.maintenance, 'refreshGauges');
    try {
      const wrong: (Record<string, string> | undefined)[] = [
        undefined,
        { authorization: '' },
        { authorization: `Bearer ${token.slice(0, -1)}x` },
        { authorization: `Bearer ${token}x` },
        { authorization: `Bearer ${token.slice(1)}` },
        { authorization: `bearer ${token}` },
        { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` },
        { authorization: `Bearer  ${token}` },
        { authorization: token },
      ];
      for (const headers of wrong) {
        const res = await t.app.inject({ method: 'GET', url: '/metrics', ...(headers ? { headers } : {}) });
        expectError(res, 401, 'UNAUTHENTICATED');
        expect(res.body).not.toContain('keyturn_');
        expect(res.body).not.toContain(token);
        expect(res.headers['www-authenticate']).toBe('Bearer realm="metrics"');
      }
      expect(refresh).not.toHaveBeenCalled();

      const ok = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } });
      expect(ok.statusCode).toBe(200);
      expect(ok.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(ok.body).toMatch(/^# TYPE keyturn_http_requests_total counter$/m);
      expect(refresh).toHaveBeenCalledTimes(1);
      // /healthz and /readyz stay open (probes carry no token)
      expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      // the token never reaches a log line
      expect(t.logs.text()).not.toContain(token);
    } finally {
      refresh.mockRestore();
    }
  });

  it('METRICS_TOKEN shorter than 16 characters stops start-up, naming it without echoing it', async () => {
    await expect(createTestApp({ backend, env: { METRICS_TOKEN: 'short-token-15c' } })).rejects.toThrow(/METRICS_TOKEN/);
    await expect(createTestApp({ backend, env: { METRICS_TOKEN: 'short-token-15c' } })).rejects.not.toThrow(/short-token-15c/);
  });
});

describeBoth('ops: /readyz turns 503 within a bound once the database is gone', (backend) => {
  it('a cached 200, then the database closes: 503 within HEALTH_CACHE_SECONDS + the readiness timeout', async () => {
    const t = await createTestApp({ backend, env: { HEALTH_CACHE_SECONDS: '1' } });
    try {
      expect((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      await t.database.close();
      const t0 = Date.now();
      let status = 200;
      while (status === 200 && Date.now() - t0 < 1_000 + READY_TIMEOUT_MS + 2_000) {
        status = (await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode;
        if (status === 200) await sleep(50);
      }
      const took = Date.now() - t0;
      expect(status).toBe(503);
      expect(took).toBeLessThanOrEqual(1_000 + READY_TIMEOUT_MS + 500);
      console.log(`(${backend}) /readyz turned 503 ${took} ms after the database closed (cache 1 s)`);
    } finally {
      await t.close();
    }
  }, 30_000);
});

describe.skipIf(!PG_SERVER_URL)(pgSuiteName('ops: /readyz and /metrics, SQL statements at the driver'), () => {
  let db: FreshDatabase;
  let app: PgApp;
  beforeAll(async () => {
    db = await createFreshDatabase();
    app = await startApp(db.url, { jwtSecret: randomBytes(32).toString('base64url'), env: { HEALTH_CACHE_SECONDS: '5' } });
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  }, 60_000);

  it(`${N} concurrent /readyz + ${N} /metrics send one round of statements, not ${2 * N}`, async () => {
    app.statements.reset();
    await burst(app);
    const first = app.statements.count;
    // ping, migrations, AMK, setup needed; the verdict's gauge and the token counts
    expect(first, app.statements.texts.join('\n')).toBeGreaterThanOrEqual(4);
    expect(first, app.statements.texts.join('\n')).toBeLessThanOrEqual(8);
    await burst(app);
    expect(app.statements.count).toBe(first);
    console.log(`${2 * N} concurrent probes and scrapes: ${first} SQL statements; a second burst: 0 more`);
  });
});
