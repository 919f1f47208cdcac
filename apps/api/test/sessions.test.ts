/**
 * Sessions and tokens (issue 2 item 6; RELIABILITY B2, B3, B7): logout revokes at once; every
 * tampered or foreign token is a 401 and never a 5xx; one user's token never reaches another's
 * secrets; the SPA's cookie is httpOnly + SameSite=Strict and unsafe cookie requests need the
 * CSRF token (bearer callers do not, as no browser attaches a bearer header on its own).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import {
  api,
  countRows,
  createSecret,
  describeBoth,
  expectError,
  json,
  login,
  type Response,
  registerUser,
  setupAdmin,
  type TestUser,
  useTestApp,
} from './harness';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const hs = (alg: 'sha256' | 'sha512', data: string, secret: string) => createHmac(alg, secret).update(data).digest('base64url');
/** A JWT built by hand, so every field and the signature can be chosen. */
function jwt(header: Record<string, unknown>, payload: Record<string, unknown>, secret: string | null): string {
  const data = `${b64(header)}.${b64(payload)}`;
  if (secret === null) return `${data}.`;
  return `${data}.${hs(header.alg === 'HS512' ? 'sha512' : 'sha256', data, secret)}`;
}
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
const now = () => Math.floor(Date.now() / 1000);

/** Cookie name → attributes, from a response's Set-Cookie headers. */
function cookies(res: Response): Map<string, { value: string; attrs: string[] }> {
  const raw = res.headers['set-cookie'];
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const out = new Map<string, { value: string; attrs: string[] }>();
  for (const c of list) {
    const [pair, ...attrs] = c.split(';').map((s) => s.trim());
    const i = pair!.indexOf('=');
    out.set(pair!.slice(0, i), { value: pair!.slice(i + 1), attrs });
  }
  return out;
}

describeBoth('sessions and tokens', (backend) => {
  const t = useTestApp(backend);
  let alice: TestUser;
  let bob: TestUser;
  let aliceSecretId: string;

  it('sets up two users, one with a secret', async () => {
    await setupAdmin(t.app);
    alice = await registerUser(t.app);
    bob = await registerUser(t.app);
    aliceSecretId = (await createSecret(t.app, alice, { name: 'alice-db', value: 'alice-value' })).id;
  });

  it('logout revokes the session at once: the very next request is 401', async () => {
    const s = await login(t.app, alice.email, alice.password);
    expect((await api(t.app, s).get(`/api/secrets/${aliceSecretId}`)).statusCode).toBe(200);
    expect((await api(t.app, s).post('/api/auth/logout')).statusCode).toBe(200);
    for (const res of [await api(t.app, s).get(`/api/secrets/${aliceSecretId}`), await api(t.app, s).get('/api/auth/me'), await api(t.app, s).post('/api/secrets', { name: 'x', value: 'y' })]) {
      expectError(res, 401, 'UNAUTHENTICATED');
    }
    // A second logout with the dead token is 401 too, not a crash.
    expectError(await api(t.app, s).post('/api/auth/logout'), 401, 'UNAUTHENTICATED');
  });

  it('the hand-made token helper is right: a re-signed copy of a real token works', async () => {
    // Without this control, the 401s below could come from a broken helper, not from the server.
    const forged = jwt({ alg: 'HS256', typ: 'JWT' }, claimsOf(alice.token), t.config.jwtSecret);
    expect((await api(t.app, forged).get(`/api/secrets/${aliceSecretId}`)).statusCode).toBe(200);
  });

  it('answers 401, never 5xx, to every tampered token', async () => {
    const secret = t.config.jwtSecret;
    const real = claimsOf(alice.token);
    const [h, p] = alice.token.split('.') as [string, string, string];
    const hdr = { alg: 'HS256', typ: 'JWT' };
    const cases: Record<string, string> = {
      'alg none': jwt({ alg: 'none', typ: 'JWT' }, real, null),
      'alg none, signature kept': `${b64({ alg: 'none', typ: 'JWT' })}.${p}.${alice.token.split('.')[2]}`,
      'HS512 with the right secret': jwt({ alg: 'HS512', typ: 'JWT' }, real, secret),
      'stripped signature': `${h}.${p}.`,
      'two parts only': `${h}.${p}`,
      'edited sub (another user)': `${h}.${b64({ ...real, sub: bob.id })}.${alice.token.split('.')[2]}`,
      'edited sid (another session)': `${h}.${b64({ ...real, sid: claimsOf(bob.token).sid })}.${alice.token.split('.')[2]}`,
      'edited exp': `${h}.${b64({ ...real, exp: now() + 10 * 365 * 86400 })}.${alice.token.split('.')[2]}`,
      'flipped signature bit': `${h}.${p}.${flip(alice.token.split('.')[2]!)}`,
      'wrong secret': jwt(hdr, real, randomBytes(32).toString('base64url')),
      expired: jwt(hdr, { ...real, iat: now() - 7200, exp: now() - 3600 }, secret),
      'not yet valid (nbf)': jwt(hdr, { ...real, nbf: now() + 3600 }, secret),
      'wrong audience': jwt(hdr, { ...real, aud: 'someone-else' }, secret),
      'wrong issuer': jwt(hdr, { ...real, iss: 'someone-else' }, secret),
      'unknown session id': jwt(hdr, { ...real, sid: randomUUID() }, secret),
      'sub of another user, right secret': jwt(hdr, { ...real, sub: bob.id }, secret),
      'session key too short': jwt(hdr, { ...real, sk: randomBytes(16).toString('base64url') }, secret),
      'session id not a uuid': jwt(hdr, { ...real, sid: "' or 1=1 --" }, secret),
      'claims missing': jwt(hdr, { iss: 'keyturn', aud: 'keyturn', exp: now() + 600 }, secret),
      'garbage': 'abcdefghijklmnop.qrstuvwxyz.0123456789',
      'truncated': alice.token.slice(0, -5),
    };
    for (const [label, token] of Object.entries(cases)) {
      for (const res of [await api(t.app, token).get('/api/auth/me'), await api(t.app, token).get(`/api/secrets/${aliceSecretId}`), await api(t.app, token).post('/api/secrets', { name: 'forged', value: 'forged' })]) {
        expect(res.statusCode, `${label}: ${res.body}`).toBe(401);
        expect(json<{ error: { code: string } }>(res).error.code).toBe('UNAUTHENTICATED');
      }
    }
    expect(await countRows(t.database, 'secrets')).toBe(1);
  });

  it('a validly signed token with the wrong session key cannot open the DEK: 401, not 500', async () => {
    // Only someone holding the server's JWT secret could make this; still it must fail closed.
    const token = jwt({ alg: 'HS256', typ: 'JWT' }, { ...claimsOf(alice.token), sk: randomBytes(32).toString('base64url') }, t.config.jwtSecret);
    expectError(await api(t.app, token).get(`/api/secrets/${aliceSecretId}`), 401, 'UNAUTHENTICATED');
    expectError(await api(t.app, token).post('/api/secrets', { name: 'n', value: 'v' }), 401, 'UNAUTHENTICATED');
    expect(await countRows(t.database, 'secrets')).toBe(1);
  });

  it("another user's valid token cannot read, change or delete my secrets", async () => {
    expectError(await api(t.app, bob).get(`/api/secrets/${aliceSecretId}`), 404, 'NOT_FOUND');
    expectError(await api(t.app, bob).put(`/api/secrets/${aliceSecretId}`, { value: 'bob was here' }), 404, 'NOT_FOUND');
    expectError(await api(t.app, bob).delete(`/api/secrets/${aliceSecretId}`), 404, 'NOT_FOUND');
    const list = json<{ items: unknown[] }>(await api(t.app, bob).get('/api/secrets'));
    expect(list.items).toEqual([]);
    const mine = await api(t.app, alice).get(`/api/secrets/${aliceSecretId}`);
    expect(json<{ value: string }>(mine).value).toBe('alice-value');
  });

  it('login sets an httpOnly, SameSite=Strict session cookie (plain HTTP: no Secure, no __Host- prefix)', async () => {
    const res = await api(t.app).post('/api/auth/login', { email: alice.email, password: alice.password });
    expect(res.statusCode).toBe(200);
    const c = cookies(res).get('keyturn_session');
    expect(c).toBeDefined();
    expect(c!.value).toBe(json<{ token: string }>(res).token);
    const attrs = c!.attrs.map((a) => a.toLowerCase());
    expect(attrs).toContain('httponly');
    expect(attrs).toContain('samesite=strict');
    expect(attrs).toContain('path=/');
    expect(attrs.some((a) => a.startsWith('max-age='))).toBe(true);
    expect(attrs).not.toContain('secure');
  });

  it('cookie auth: reads need no CSRF token; unsafe requests without the right one are 403 CSRF_FAILED and change nothing', async () => {
    const s = await login(t.app, alice.email, alice.password);
    const cookie = `keyturn_session=${s.token}`;
    expect((await t.app.inject({ method: 'GET', url: '/api/secrets', headers: { cookie } })).statusCode).toBe(200);

    const before = await countRows(t.database, 'secrets');
    const attempts: [string, Record<string, string>][] = [
      ['no token', { cookie }],
      ['empty token', { cookie, 'x-csrf-token': '' }],
      ['wrong token', { cookie, 'x-csrf-token': randomBytes(32).toString('base64url') }],
      ["another session's token", { cookie, 'x-csrf-token': bob.csrfToken }],
    ];
    for (const [label, headers] of attempts) {
      const res = await t.app.inject({ method: 'POST', url: '/api/secrets', headers, payload: { name: 'csrf', value: label } });
      expect(res.statusCode, `${label}: ${res.body}`).toBe(403);
      expect(json<{ error: { code: string } }>(res).error.code).toBe('CSRF_FAILED');
      const put = await t.app.inject({ method: 'PUT', url: `/api/secrets/${aliceSecretId}`, headers, payload: { value: 'changed' } });
      expectError(put, 403, 'CSRF_FAILED');
      expectError(await t.app.inject({ method: 'DELETE', url: `/api/secrets/${aliceSecretId}`, headers }), 403, 'CSRF_FAILED');
    }
    // Logout is state-changing too: a forged one must not end the session.
    expectError(await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: { cookie } }), 403, 'CSRF_FAILED');
    expect(await countRows(t.database, 'secrets')).toBe(before);
    expect(json<{ value: string }>(await api(t.app, alice).get(`/api/secrets/${aliceSecretId}`)).value).toBe('alice-value');

    const ok = await t.app.inject({ method: 'POST', url: '/api/secrets', headers: { cookie, 'x-csrf-token': s.csrfToken }, payload: { name: 'csrf', value: 'with token' } });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(await countRows(t.database, 'secrets')).toBe(before + 1);
    const out = await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: { cookie, 'x-csrf-token': s.csrfToken } });
    expect(out.statusCode).toBe(200);
    // Logout also clears the cookie in the browser.
    expect(cookies(out).get('keyturn_session')?.value).toBe('');
    expectError(await t.app.inject({ method: 'GET', url: '/api/secrets', headers: { cookie } }), 401, 'UNAUTHENTICATED');
  });

  it('bearer callers need no CSRF token', async () => {
    const res = await api(t.app, alice).post('/api/secrets', { name: 'bearer', value: 'no csrf needed' });
    expect(res.statusCode, res.body).toBe(201);
  });
});

describeBoth('session cookie over HTTPS', (backend) => {
  const t = useTestApp(backend, { env: { COOKIE_SECURE: 'true' } });

  it('is Secure, httpOnly, SameSite=Strict and __Host- prefixed (no Domain, Path=/)', async () => {
    const admin = await setupAdmin(t.app);
    const res = await api(t.app).post('/api/auth/login', { email: admin.email, password: admin.password });
    expect(res.statusCode).toBe(200);
    const c = cookies(res).get('__Host-keyturn_session');
    expect(c, JSON.stringify(res.headers['set-cookie'])).toBeDefined();
    const attrs = c!.attrs.map((a) => a.toLowerCase());
    expect(attrs).toEqual(expect.arrayContaining(['secure', 'httponly', 'samesite=strict', 'path=/']));
    expect(attrs.some((a) => a.startsWith('domain='))).toBe(false);
    // The prefixed cookie authenticates.
    const me = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: `__Host-keyturn_session=${c!.value}` } });
    expect(me.statusCode).toBe(200);
  });
});

function flip(sig: string): string {
  const b = Buffer.from(sig, 'base64url');
  b[0] = b[0]! ^ 0x01;
  return b.toString('base64url');
}
