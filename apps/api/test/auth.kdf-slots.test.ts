/**
 * KDF_MAX_CONCURRENCY (issue 6): argon2id derivations wait for a slot instead of all running at
 * once. The limit itself is proven in semaphore.test.ts; here, a burst of sign-ins through one
 * slot still answers every caller correctly, each derivation counted once.
 */
import { expect, it } from 'vitest';
import { api, describeBoth, registerUser, setupAdmin, useTestApp } from './harness';

describeBoth('argon2id slots', (backend) => {
  // One account, 12 attempts at once: the per-account throttle reserves a slot per attempt in
  // flight (auth README A5), so its cap is raised above 12 to let this test see the semaphore alone.
  const t = useTestApp(backend, { env: { KDF_MAX_CONCURRENCY: '1', AUTH_RATE_LIMIT_PER_MINUTE: '1000', LOGIN_MAX_FAILURES: '20' } });

  it('12 concurrent sign-ins (8 right, 4 wrong) through one slot: every answer right, 12 derivations', async () => {
    expect(t.config.KDF_MAX_CONCURRENCY).toBe(1);
    await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const kdf = async () => Number(/^keyturn_kdf_derivations_total (\d+)/m.exec((await t.app.inject({ method: 'GET', url: '/metrics' })).body)?.[1] ?? 0);
    const before = await kdf();
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => api(t.app).post('/api/auth/login', { email: user.email, password: i % 3 === 2 ? `${user.password}x` : user.password })),
    );
    expect(results.map((r) => r.statusCode)).toEqual(Array.from({ length: 12 }, (_, i) => (i % 3 === 2 ? 401 : 200)));
    expect((await kdf()) - before).toBe(12);
  });
});
