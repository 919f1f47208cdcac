/**
 * Hardening (issue 10, item 9): the argon2 queue is bounded (past it: 503 with Retry-After at
 * once, no unbounded wait), and the per-client limits key an IPv6 client by its /64. That the
 * limits hold across instances is proven on Postgres in pg/hardening.limits.test.ts.
 */
import { expect, it } from 'vitest';
import { api, describeBoth, expectError, setupAdmin, uniqueEmail, useTestApp } from './harness';

describeBoth('item 9: a bounded argon2 queue', (backend) => {
  const t = useTestApp(backend, { env: { KDF_MAX_CONCURRENCY: '1', KDF_MAX_QUEUE: '2' } });

  it('with the only slot busy and 2 waiting, further sign-ins are answered 503 with Retry-After at once; the waiting ones finish', async () => {
    await setupAdmin(t.app);
    let release!: () => void;
    const held = t.app.container.auth.kdfCost(() => new Promise<void>((r) => (release = r)));
    const kdf = t.app.container.metrics.kdfCount;
    const before = kdf.get();
    const attempts = Array.from({ length: 5 }, (_, i) => api(t.app).post('/api/auth/login', { email: uniqueEmail(`q${i}`), password: 'some wrong password' }));
    // The refused ones answer while the slot is still held: no waiting for it.
    const settled: number[] = [];
    for (const p of attempts) void p.then((r) => settled.push(r.statusCode));
    await new Promise((r) => setTimeout(r, 300));
    expect(settled.sort()).toEqual([503, 503, 503]);
    release();
    await held;
    const answers = await Promise.all(attempts);
    const busy = answers.filter((r) => r.statusCode === 503);
    expect(busy).toHaveLength(3);
    for (const r of busy) {
      const e = expectError(r, 503, 'UNAVAILABLE');
      expect(r.headers['retry-after']).toBe('1');
      expect(e.details).toMatchObject({ reason: 'kdf_queue_full' });
    }
    expect(answers.filter((r) => r.statusCode === 401)).toHaveLength(2);
    // Only the admitted ones were derivations.
    expect(kdf.get() - before).toBe(2);
  });
});

describeBoth('item 9: an IPv6 client is limited by its /64', (backend) => {
  const LIMIT = 3;
  const t = useTestApp(backend, { env: { RATE_LIMIT_PER_MINUTE: String(LIMIT) } });
  const from = (remoteAddress: string) => t.app.inject({ method: 'GET', url: '/api/setup', remoteAddress });

  it(`addresses in one /64 share one bucket of ${LIMIT}; another /64 and an IPv4 client have their own`, async () => {
    const sameNet = ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff:ffff:ffff:fffe'];
    for (const a of sameNet) expect((await from(a)).statusCode).toBe(200);
    expectError(await from('2001:db8:1:2:1234::99'), 429, 'RATE_LIMITED');
    expect((await from('2001:db8:1:3::1')).statusCode).toBe(200);
    expect((await from('192.0.2.10')).statusCode).toBe(200);
  });
});
