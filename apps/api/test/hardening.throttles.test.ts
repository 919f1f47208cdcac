/**
 * Hardening (issue 10, items 1 and 2): every password guess is throttled *before* its argon2
 * derivation, so a burst of parallel guesses cannot be evaluated past the cap, and adding an
 * admin is no side door around the admin re-authentication throttle.
 *
 * The bursts run as concurrent requests: even on PGlite (one connection) they interleave at the
 * argon2 await, which is exactly where check-then-count let them all through.
 */
import { expect, it } from 'vitest';
import { api, countRows, describeBoth, json, queryRows, registerUser, setupAdmin, strongPassword, type TestUser, uniqueEmail, useTestApp } from './harness';
import { approveRes, executeRes, requestRotation, testClock } from './rotation.helpers';

const CAP = 3;
const BURST = 20;

const codes = (rs: { statusCode: number; body: string }[]) => {
  const out: Record<string, number> = {};
  for (const r of rs) {
    const key = `${r.statusCode}:${r.statusCode >= 400 ? json<{ error: { code: string } }>(r as never).error.code : 'ok'}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
};

describeBoth('item 2: a throttle reserves the attempt before the key derivation', (backend) => {
  const t = useTestApp(backend, {
    env: { LOGIN_MAX_FAILURES: String(CAP), ADMIN_REAUTH_MAX_FAILURES: String(CAP), LOGIN_LOCK_SECONDS: '600', KDF_MAX_CONCURRENCY: '32' },
  });
  let admin: TestUser;

  it('sets up an admin', async () => {
    admin = await setupAdmin(t.app);
  });

  it(`${BURST} concurrent wrong sign-ins with a cap of ${CAP}: at most ${CAP} derivations, the rest 429`, async () => {
    const victim = await registerUser(t.app);
    const kdf = t.app.container.metrics.kdfCount;
    const k0 = kdf.get();
    const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => api(t.app).post('/api/auth/login', { email: victim.email, password: `wrong guess ${i}` })));
    const derived = kdf.get() - k0;
    const seen = codes(answers);
    expect(derived, JSON.stringify(seen)).toBeLessThanOrEqual(CAP);
    expect(seen['401:INVALID_CREDENTIALS'] ?? 0, JSON.stringify(seen)).toBeLessThanOrEqual(CAP);
    expect(seen['429:RATE_LIMITED'], JSON.stringify(seen)).toBe(BURST - (seen['401:INVALID_CREDENTIALS'] ?? 0));
    // And the account stays blocked for the right password too.
    expect((await api(t.app).post('/api/auth/login', { email: victim.email, password: victim.password })).statusCode).toBe(429);
  });

  it('a right password gives its reserved slot back: many parallel right sign-ins all succeed', async () => {
    const u = await registerUser(t.app);
    const answers = await Promise.all(Array.from({ length: 8 }, () => api(t.app).post('/api/auth/login', { email: u.email, password: u.password })));
    // With CAP slots, at most CAP are evaluated at once; the rest may be told to retry in a moment, never counted as failures.
    const ok = answers.filter((r) => r.statusCode === 200).length;
    expect(ok).toBeGreaterThanOrEqual(CAP);
    for (const r of answers.filter((x) => x.statusCode !== 200)) expect(r.statusCode).toBe(429);
    const [row] = await queryRows<{ failures: number; in_flight: number }>(t.database, `select failures, in_flight from throttles where key = 'login:${u.email}'`);
    expect(row?.failures ?? 0).toBe(0);
    expect(row?.in_flight ?? 0).toBe(0);
    // A failure then a success: the success clears the consecutive-failure count.
    expect((await api(t.app).post('/api/auth/login', { email: u.email, password: 'not it at all' })).statusCode).toBe(401);
    expect((await api(t.app).post('/api/auth/login', { email: u.email, password: u.password })).statusCode).toBe(200);
    const [after] = await queryRows<{ failures: number; in_flight: number }>(t.database, `select failures, in_flight from throttles where key = 'login:${u.email}'`);
    expect(after?.failures ?? 0).toBe(0);
    expect(after?.in_flight ?? 0).toBe(0);
  });

  it(`${BURST} concurrent wrong admin passwords (approve) evaluate at most ${CAP} derivations`, async () => {
    const second = await addAdminAs(admin);
    const user = await registerUser(t.app);
    const token = await requestRotation(t, user);
    const kdf = t.app.container.metrics.kdfCount;
    const k0 = kdf.get();
    const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => approveRes(t, second, token.id, `wrong admin password ${i}`)));
    const seen = codes(answers);
    expect(kdf.get() - k0, JSON.stringify(seen)).toBeLessThanOrEqual(CAP);
    expect(seen['401:ADMIN_REAUTH_FAILED'] ?? 0, JSON.stringify(seen)).toBeLessThanOrEqual(CAP);
    expect((seen['429:RATE_LIMITED'] ?? 0) + (seen['401:ADMIN_REAUTH_FAILED'] ?? 0), JSON.stringify(seen)).toBe(BURST);
    expect((await countRows(t.database, 'rotation_tokens', `id = '${token.id}' and status = 'pending'`))).toBe(1);
  });

  it(`${BURST} concurrent executes with the right temporary password and a wrong current password evaluate at most ${CAP} derivations`, async () => {
    const user = await registerUser(t.app);
    const token = await requestRotation(t, user);
    const approved = await approveRes(t, admin, token.id);
    expect(approved.statusCode, approved.body).toBe(200);
    const { tempPassword } = json<{ tempPassword: string }>(approved);
    const kdf = t.app.container.metrics.kdfCount;
    const k0 = kdf.get();
    const answers = await Promise.all(
      Array.from({ length: BURST }, (_, i) => executeRes(t, user, { tokenId: token.id, tempPassword, currentPassword: `not my password ${i}` })),
    );
    const seen = codes(answers);
    expect(kdf.get() - k0, JSON.stringify(seen)).toBeLessThanOrEqual(CAP);
    for (const k of Object.keys(seen)) expect(['401:INVALID_CREDENTIALS', '429:RATE_LIMITED', '409:LOST_RACE'], JSON.stringify(seen)).toContain(k);
    expect(seen['401:INVALID_CREDENTIALS'] ?? 0).toBeLessThanOrEqual(CAP);
    expect(await countRows(t.database, 'rotation_tokens', `id = '${token.id}' and status = 'approved'`)).toBe(1);
  });

  async function addAdminAs(by: TestUser): Promise<TestUser> {
    const email = uniqueEmail('admin2');
    const password = strongPassword();
    const res = await api(t.app, by).post('/admin/api/admins', { email, password, adminPassword: by.password });
    expect(res.statusCode, res.body).toBe(201);
    const login = await api(t.app).post('/api/auth/login', { email, password });
    expect(login.statusCode, login.body).toBe(200);
    const s = json<{ token: string; csrfToken: string; user: { id: string } }>(login);
    return { id: s.user.id, email, password, token: s.token, csrfToken: s.csrfToken, session: s as never };
  }
});

describeBoth('item 1: adding an admin goes through the admin re-authentication throttle', (backend) => {
  const t = useTestApp(backend, { env: { ADMIN_REAUTH_MAX_FAILURES: String(CAP), LOGIN_LOCK_SECONDS: '600', AUTH_RATE_LIMIT_PER_MINUTE: '100000' } });
  let admin: TestUser;
  const addAdmin = (adminPassword: string, email = uniqueEmail('new-admin')) =>
    api(t.app, admin).post('/admin/api/admins', { email, password: strongPassword(), adminPassword });

  it('sets up an admin', async () => {
    admin = await setupAdmin(t.app);
  });

  it('wrong passwords at /admin/api/admins count on the same counter as approve/finalize/restore, and are audited as denied', async () => {
    for (let i = 0; i < CAP; i++) {
      const res = await addAdmin(`wrong password number ${i}`);
      expect(res.statusCode, res.body).toBe(401);
    }
    const denied = await queryRows<{ details: { reason: string } }>(t.database, `select details from audit_events where action = 'admin.created' and outcome = 'denied'`);
    expect(denied.filter((d) => d.details.reason === 'admin_reauth_failed')).toHaveLength(CAP);
    // The counter is the admin re-authentication one: approve is now throttled too, before any derivation.
    const user = await registerUser(t.app);
    const token = await requestRotation(t, user);
    const k = t.app.container.metrics.kdfCount.get();
    const approve = await approveRes(t, admin, token.id);
    expect(approve.statusCode, approve.body).toBe(429);
    expect(t.app.container.metrics.kdfCount.get()).toBe(k);
  });

  it('while the re-authentication throttle is blocked, even the right password adds no admin (429, audited, no derivation)', async () => {
    const email = uniqueEmail('would-be-admin');
    const k = t.app.container.metrics.kdfCount.get();
    const res = await addAdmin(admin.password, email);
    expect(res.statusCode, res.body).toBe(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(t.app.container.metrics.kdfCount.get()).toBe(k);
    expect(await countRows(t.database, 'users', `email = '${email}'`)).toBe(0);
    const throttled = await queryRows(t.database, `select 1 from audit_events where action = 'admin.created' and outcome = 'denied' and details->>'reason' = 'reauth_throttled'`);
    expect(throttled.length).toBeGreaterThanOrEqual(1);
  });
});

describeBoth('item 1: /admin/api/admins carries the auth rate limit', (backend) => {
  const LIMIT = 3;
  const t = useTestApp(backend, { env: { AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT), ADMIN_REAUTH_MAX_FAILURES: '100' } });

  it(`answers 429 after ${LIMIT} attempts a minute from one client`, async () => {
    const admin = await setupAdmin(t.app);
    const answers = [];
    for (let i = 0; i < LIMIT + 1; i++) {
      answers.push(await api(t.app, admin).post('/admin/api/admins', { email: uniqueEmail('x'), password: strongPassword(), adminPassword: `wrong ${i}` }));
    }
    expect(answers.slice(0, LIMIT).map((r) => r.statusCode)).toEqual(Array(LIMIT).fill(401));
    expect(answers[LIMIT]!.statusCode).toBe(429);
  });
});

describeBoth('item 2: a throttle window that ends neither lifts a block nor forgets attempts in flight', (backend) => {
  const clock = testClock();
  const t = useTestApp(backend, { deps: { clock } });
  const WINDOW = 600;
  const MAX = 3;
  const repo = () => t.app.container.repos.authRepo;
  const reserve = (key: string) => repo().throttleReserve(t.app.container.db, key, MAX, WINDOW, clock.now());
  const fail = (key: string) => repo().throttleSettle(t.app.container.db, key, 'failure', MAX, WINDOW, clock.now());
  const at = (seconds: number) => {
    clock.offsetMs = seconds * 1000;
  };

  it('the block set by the last failure of a window holds its full time past that window’s end', async () => {
    const key = `test:block-${Math.random()}`;
    at(0);
    expect((await reserve(key)).reserved).toBe(true);
    await fail(key);
    at(WINDOW - 10);
    for (let i = 0; i < MAX - 1; i++) {
      expect((await reserve(key)).reserved).toBe(true);
      await fail(key);
    }
    // Blocked until (WINDOW - 10) + WINDOW. The window that began at 0 ends at WINDOW: still blocked.
    at(WINDOW + 5);
    const r = await reserve(key);
    expect(r.reserved).toBe(false);
    expect(r.blockedFor).toBeGreaterThan(WINDOW - 30);
    // Once the block is over, a fresh window.
    at(2 * WINDOW);
    expect((await reserve(key)).reserved).toBe(true);
    clock.reset();
  });

  it('attempts reserved just before a window ends still count after it: never more than the cap in flight', async () => {
    const key = `test:inflight-${Math.random()}`;
    at(0);
    expect((await reserve(key)).reserved).toBe(true);
    at(WINDOW - 1);
    for (let i = 0; i < MAX - 1; i++) expect((await reserve(key)).reserved).toBe(true);
    // MAX attempts being evaluated (none settled); the window that began at 0 ends.
    at(WINDOW + 1);
    expect((await reserve(key)).reserved).toBe(false);
    clock.reset();
  });
});
