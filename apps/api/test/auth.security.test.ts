/**
 * Login brute force and enumeration (issue 2 item 6; RELIABILITY B9, A3): the per-account
 * throttle answers 429 with Retry-After after LOGIN_MAX_FAILURES failures, also for unknown
 * emails and even for the right password; unknown email and wrong password are answered alike
 * (same body apart from the request id, same argon2 work); the per-client limiter does not
 * believe a client's X-Forwarded-For.
 */
import { describe, expect, it } from 'vitest';
import { api, countRows, describeBoth, expectError, json, login, queryRows, registerUser, setupAdmin, type TestUser, uniqueEmail, useTestApp, withoutRequestId } from './harness';

const MAX_FAILURES = 3;

describeBoth('login throttle and enumeration', (backend) => {
  const t = useTestApp(backend, { env: { LOGIN_MAX_FAILURES: String(MAX_FAILURES), LOGIN_LOCK_SECONDS: '600' } });
  let victim: TestUser;
  let bystander: TestUser;

  const attempt = (email: string, password: string) => api(t.app).post('/api/auth/login', { email, password });

  it('sets up two accounts', async () => {
    await setupAdmin(t.app);
    victim = await registerUser(t.app);
    bystander = await registerUser(t.app);
  });

  it('answers unknown email and wrong password with the same body, after the same key derivation', async () => {
    const kdf = t.app.container.metrics.kdfCount;
    const k0 = kdf.get();
    const unknown = await attempt(uniqueEmail('nobody'), 'some password attempt');
    const k1 = kdf.get();
    const wrong = await attempt(bystander.email, 'some password attempt');
    const k2 = kdf.get();
    expectError(unknown, 401, 'INVALID_CREDENTIALS');
    expectError(wrong, 401, 'INVALID_CREDENTIALS');
    expect(withoutRequestId(unknown)).toBe(withoutRequestId(wrong));
    expect(unknown.headers['content-type']).toBe(wrong.headers['content-type']);
    expect(unknown.headers['set-cookie']).toBeUndefined();
    expect(wrong.headers['set-cookie']).toBeUndefined();
    // Both paths pay one argon2 derivation: no cheap "unknown user" shortcut.
    expect(k1 - k0).toBe(1);
    expect(k2 - k1).toBe(1);
    // A success resets the bystander's counter so the tests below start clean.
    await login(t.app, bystander.email, bystander.password);
  });

  it(`throttles an account after ${MAX_FAILURES} failures with 429 and Retry-After, even for the right password`, async () => {
    for (let i = 0; i < MAX_FAILURES; i++) expectError(await attempt(victim.email, `wrong password ${i}`), 401, 'INVALID_CREDENTIALS');
    const kdf = t.app.container.metrics.kdfCount.get();
    const sessions = await countRows(t.database, 'sessions', `user_id = '${victim.id}'`);

    for (const password of ['yet another wrong one', victim.password]) {
      const res = await attempt(victim.email, password);
      expectError(res, 429, 'RATE_LIMITED');
      const retryAfter = Number(res.headers['retry-after']);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(600);
    }
    // Throttled attempts do no argon2 work and open no session.
    expect(t.app.container.metrics.kdfCount.get()).toBe(kdf);
    expect(await countRows(t.database, 'sessions', `user_id = '${victim.id}'`)).toBe(sessions);
    // The email's case does not open a second counter.
    expectError(await attempt(victim.email.toUpperCase(), victim.password), 429, 'RATE_LIMITED');
  });

  it('leaves other accounts alone and keeps existing sessions working', async () => {
    expect((await login(t.app, bystander.email, bystander.password)).id).toBe(bystander.id);
    expect((await api(t.app, victim).get('/api/auth/me')).statusCode).toBe(200);
  });

  it('throttles unknown emails the same way, so the throttle does not reveal which accounts exist', async () => {
    const ghost = uniqueEmail('ghost');
    for (let i = 0; i < MAX_FAILURES; i++) expectError(await attempt(ghost, `guess number ${i}`), 401, 'INVALID_CREDENTIALS');
    const ghostRes = await attempt(ghost, 'one more guess');
    const victimRes = await attempt(victim.email, 'one more guess');
    const a = expectError(ghostRes, 429, 'RATE_LIMITED');
    const b = expectError(victimRes, 429, 'RATE_LIMITED');
    expect(a.message).toBe(b.message);
    expect(ghostRes.headers['retry-after']).toBeDefined();
  });

  it('audits failures and throttled attempts without the password', async () => {
    const rows = await queryRows<{ outcome: string; details: { reason?: string }; target: string }>(
      t.database,
      `select outcome, details, target from audit_events where action = 'auth.login' and target = 'email:${victim.email}'`,
    );
    expect(rows.filter((r) => r.outcome === 'failure' && r.details.reason === 'wrong_password')).toHaveLength(MAX_FAILURES);
    expect(rows.filter((r) => r.outcome === 'denied' && r.details.reason === 'throttled').length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(rows)).not.toContain(victim.password);
  });
});

describeBoth('per-client auth rate limit', (backend) => {
  const LIMIT = 4;
  const t = useTestApp(backend, { env: { AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT) } });

  it(`answers 429 with Retry-After after ${LIMIT} auth requests a minute from one client, before any key derivation`, async () => {
    const kdf = t.app.container.metrics.kdfCount;
    for (let i = 0; i < LIMIT; i++) {
      // A different email each time: this is the per-client limiter, not the per-account throttle.
      const res = await api(t.app).post('/api/auth/login', { email: uniqueEmail(), password: 'not the password' }, { 'x-forwarded-for': `203.0.113.${i}` });
      expectError(res, 401, 'INVALID_CREDENTIALS');
    }
    const k = kdf.get();
    // A spoofed X-Forwarded-For does not buy a fresh bucket (no TRUST_PROXY configured).
    const res = await api(t.app).post('/api/auth/login', { email: uniqueEmail(), password: 'not the password' }, { 'x-forwarded-for': '198.51.100.77' });
    const err = expectError(res, 429, 'RATE_LIMITED');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(json<{ error: { details?: { retryAfterSeconds?: number } } }>(res).error.details?.retryAfterSeconds).toBeGreaterThan(0);
    expect(err.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(kdf.get()).toBe(k);
  });
});

describe('harness sanity', () => {
  it('withoutRequestId only blanks the request id', () => {
    const body = JSON.stringify({ error: { code: 'X', message: 'm', requestId: '00000000-0000-4000-8000-000000000000' } });
    const res = { body } as unknown as Parameters<typeof withoutRequestId>[0];
    expect(withoutRequestId(res)).toBe('{"error":{"code":"X","message":"m","requestId":"<request-id>"}}');
  });
});
