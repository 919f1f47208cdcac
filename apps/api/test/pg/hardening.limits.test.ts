/**
 * Hardening (issue 10, item 9) on real Postgres: the per-client request limits hold across API
 * instances, because the counters live in the database (RATE_LIMIT_STORE=auto → Postgres).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, uniqueEmail } from '../harness';
import { SYNC_MS } from '../../src/plugins/rate-limit-store';
import { createFreshDatabase, type FreshDatabase, PG_SERVER_URL, type PgApp, pgSuiteName, sleep, startApp } from './support';

describe.skipIf(!PG_SERVER_URL)(pgSuiteName('item 9: rate limits across instances'), () => {
  let fresh: FreshDatabase;
  let A: PgApp;
  let B: PgApp;
  const GLOBAL = 6;
  const AUTH = 4;

  beforeAll(async () => {
    fresh = await createFreshDatabase();
    const jwtSecret = randomBytes(32).toString('base64url');
    const env = { RATE_LIMIT_PER_MINUTE: String(GLOBAL), AUTH_RATE_LIMIT_PER_MINUTE: String(AUTH) };
    A = await startApp(fresh.url, { jwtSecret, env: { ...env, INSTANCE_ID: 'rl-A' } });
    B = await startApp(fresh.url, { jwtSecret, env: { ...env, INSTANCE_ID: 'rl-B' } });
  }, 60_000);

  afterAll(async () => {
    await A?.close();
    await B?.close();
    await fresh?.drop();
  });

  it(`the global limit (${GLOBAL}/min) counts one client's requests on both instances together (synced every ${SYNC_MS} ms)`, async () => {
    const ip = '198.51.100.7';
    const get = (x: PgApp) => x.app.inject({ method: 'GET', url: '/api/setup', remoteAddress: ip });
    const codes: number[] = [];
    for (let i = 0; i < GLOBAL; i++) codes.push((await get(i % 2 ? B : A)).statusCode);
    expect(codes).toEqual(Array(GLOBAL).fill(200));
    // Each instance alone has seen half the limit. Once their counts met in the table, a few more
    // at most get through (what the other instance let pass within one sync period) ...
    await sleep(2 * SYNC_MS + 100);
    const extra = [(await get(A)).statusCode, (await get(B)).statusCode];
    await sleep(2 * SYNC_MS + 100);
    // ... and then both refuse.
    for (const x of [A, B]) {
      const r = await get(x);
      expect(r.statusCode).toBe(429);
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    }
    const passed = codes.length + extra.filter((c) => c === 200).length;
    expect(passed).toBeLessThanOrEqual(GLOBAL + 2);
    // Another client is not affected.
    expect((await B.app.inject({ method: 'GET', url: '/api/setup', remoteAddress: '198.51.100.8' })).statusCode).toBe(200);
  });

  it(`a route's own limit (sign-in, ${AUTH}/min) is shared exactly, request by request, and kept apart from the global count`, async () => {
    const ip = '203.0.113.44';
    const login = (x: PgApp) => x.app.inject({ method: 'POST', url: '/api/auth/login', remoteAddress: ip, payload: { email: uniqueEmail(), password: 'a wrong password' } });
    const codes: number[] = [];
    for (let i = 0; i < AUTH; i++) codes.push((await login(i % 2 ? B : A)).statusCode);
    // Before setup, sign-in answers 401 for any email; what matters is that none was rate limited.
    expect(codes.every((c) => c !== 429)).toBe(true);
    expect((await login(A)).statusCode).toBe(429);
    expect((await login(B)).statusCode).toBe(429);
    expect((await api(A.app).get('/api/setup')).statusCode).toBe(200);
  });
});
