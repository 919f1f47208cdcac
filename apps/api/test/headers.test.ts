/**
 * Security headers on every kind of response (issue 2 item 9; RELIABILITY B8): a CSP with
 * object-src 'none', base-uri 'none' and frame-ancestors, and no upgrade-insecure-requests on
 * plain HTTP; HSTS ≥ 1 year with includeSubDomains; nosniff; a Referrer-Policy; no reflected
 * CORS origin; a charset on JSON; `Cache-Control: no-store` on every secret and session response.
 */
import { expect, it } from 'vitest';
import { api, createSecret, describeBoth, type Response, registerUser, setupAdmin, type TestUser, useTestApp } from './harness';

function expectSecurityHeaders(res: Response, label: string) {
  const h = res.headers;
  const csp = String(h['content-security-policy'] ?? '');
  const directives = new Map(
    csp
      .split(';')
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => {
        const [name, ...values] = d.split(/\s+/);
        return [name!, values.join(' ')] as const;
      }),
  );
  expect(directives.get('object-src'), `${label}: ${csp}`).toBe("'none'");
  expect(directives.get('base-uri'), label).toBe("'none'");
  expect(directives.get('frame-ancestors'), label).toMatch(/^'(none|self)'$/);
  expect(directives.get('default-src'), label).toBe("'self'");
  expect(directives.get('script-src') ?? '', label).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  // Over plain HTTP on a LAN address this directive blanks the SPA (TOOLCHAIN.md).
  expect(directives.has('upgrade-insecure-requests'), label).toBe(false);

  const hsts = String(h['strict-transport-security'] ?? '');
  const maxAge = Number(/max-age=(\d+)/.exec(hsts)?.[1]);
  expect(maxAge, `${label}: ${hsts}`).toBeGreaterThanOrEqual(31_536_000);
  expect(hsts, label).toMatch(/includeSubDomains/i);
  expect(h['x-content-type-options'], label).toBe('nosniff');
  expect(String(h['referrer-policy'] ?? ''), label).toMatch(/^(no-referrer|strict-origin|strict-origin-when-cross-origin|same-origin)$/);
  // No CORS: a foreign Origin is never reflected or allowed.
  expect(h['access-control-allow-origin'], label).toBeUndefined();
  expect(h['access-control-allow-credentials'], label).toBeUndefined();
  expect(h['x-powered-by'], label).toBeUndefined();
  if (String(h['content-type'] ?? '').startsWith('application/json')) expect(h['content-type'], label).toMatch(/charset=utf-8/i);
}

describeBoth('security headers', (backend) => {
  const t = useTestApp(backend);
  let admin: TestUser;
  let user: TestUser;
  let secretId: string;
  const origin = { origin: 'https://evil.example' };

  it('sets up a user with a secret', async () => {
    admin = await setupAdmin(t.app);
    user = await registerUser(t.app);
    secretId = (await createSecret(t.app, user, { name: 'n', value: 'v' })).id;
  });

  it('are on every kind of response: API, ops, docs, errors', async () => {
    const responses: [string, Response][] = [
      ['GET /api/setup', await api(t.app).get('/api/setup', origin)],
      ['GET /healthz', await api(t.app).get('/healthz', origin)],
      ['GET /readyz', await api(t.app).get('/readyz', origin)],
      ['GET /metrics', await api(t.app).get('/metrics', origin)],
      ['GET /openapi.json', await api(t.app).get('/openapi.json', origin)],
      ['GET /docs', await api(t.app).get('/docs/', origin)],
      ['GET /api/secrets', await api(t.app, user).get('/api/secrets', origin)],
      ['GET /api/auth/me', await api(t.app, user).get('/api/auth/me', origin)],
      ['404', await api(t.app).get('/api/nope', origin)],
      ['400', await api(t.app).post('/api/auth/login', { nope: true }, origin)],
      ['401', await api(t.app).get('/api/secrets', origin)],
      ['415', await api(t.app).post('/api/auth/login', 'x', { ...origin, 'content-type': 'text/plain' })],
      ['OPTIONS preflight', await t.app.inject({ method: 'OPTIONS', url: '/api/secrets', headers: { ...origin, 'access-control-request-method': 'POST' } })],
    ];
    for (const [label, res] of responses) {
      expect(res.statusCode, label).toBeLessThan(500);
      expectSecurityHeaders(res, label);
    }
  });

  it('send Cache-Control: no-store on every secret response, success or error', async () => {
    const a = api(t.app, user);
    const responses: [string, Response][] = [
      ['list', await a.get('/api/secrets')],
      ['create', await a.post('/api/secrets', { name: 'x', value: 'y' })],
      ['reveal', await a.get(`/api/secrets/${secretId}`)],
      ['update', await a.put(`/api/secrets/${secretId}`, { value: 'z' })],
      ['missing', await a.get('/api/secrets/00000000-0000-4000-8000-000000000000')],
      ['invalid', await a.post('/api/secrets', { name: '' })],
      ['delete', await a.delete(`/api/secrets/${secretId}`)],
    ];
    for (const [label, res] of responses) {
      expect(res.headers['cache-control'], label).toBe('no-store');
      expectSecurityHeaders(res, label);
    }
  });

  it('send Cache-Control: no-store on every session response', async () => {
    const responses: [string, Response][] = [
      ['register', await api(t.app).post('/api/auth/register', { email: `h-${Date.now()}@example.test`, password: 'a fine long passphrase' })],
      ['login', await api(t.app).post('/api/auth/login', { email: user.email, password: user.password })],
      ['failed login', await api(t.app).post('/api/auth/login', { email: user.email, password: 'wrong password here' })],
      ['me', await api(t.app, user).get('/api/auth/me')],
      ['second setup', await api(t.app).post('/api/setup', { setupCode: 'x', email: admin.email, password: admin.password })],
      ['logout', await api(t.app, user).post('/api/auth/logout')],
    ];
    expect(responses.map(([, r]) => r.statusCode)).toEqual([201, 200, 401, 200, 409, 200]);
    for (const [label, res] of responses) {
      expect(res.headers['cache-control'], label).toBe('no-store');
      expectSecurityHeaders(res, label);
    }
  });
});
