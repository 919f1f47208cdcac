/**
 * Accounts, the happy paths (issue 2 item 6): register signs in at once, login makes a new
 * session row holding the DEK wrapped for that session, me reflects the caller, logout ends only
 * its own session, the email is trimmed and case-insensitive, long passwords work.
 */
import type { Me, Session } from '@keyturn/shared';
import { expect, it } from 'vitest';
import { api, bytes, countRows, describeBoth, expectError, json, login, queryRows, registerUser, setupAdmin, type TestUser, uniqueEmail, useTestApp } from './harness';

describeBoth('auth happy paths', (backend) => {
  const t = useTestApp(backend);
  let user: TestUser;

  it('registers a user and signs them in at once', async () => {
    await setupAdmin(t.app);
    const email = uniqueEmail('Happy');
    const password = 'a perfectly fine passphrase';
    const res = await api(t.app).post('/api/auth/register', { email: `  ${email.toUpperCase()}  `, password });
    expect(res.statusCode, res.body).toBe(201);
    const s = json<Session>(res);
    expect(s.user).toMatchObject({ email: email.toLowerCase(), role: 'user', keyVersion: 1 });
    expect(s.token.split('.')).toHaveLength(3);
    expect(s.csrfToken.length).toBeGreaterThanOrEqual(32);
    expect(Date.parse(s.expiresAt)).toBeGreaterThan(Date.now());
    user = { id: s.user.id, email: s.user.email, password, token: s.token, csrfToken: s.csrfToken, session: s };

    const rows = await queryRows<{ email: string; role: string }>(t.database, `select email, role from users where id = '${user.id}'`);
    expect(rows).toEqual([{ email: email.toLowerCase(), role: 'user' }]);
  });

  it('answers me with the user and the session', async () => {
    const res = await api(t.app, user).get('/api/auth/me');
    expect(res.statusCode, res.body).toBe(200);
    const me = json<Me>(res);
    expect(me.user).toMatchObject({ id: user.id, email: user.email, role: 'user', keyVersion: 1 });
    expect(me.session).toMatchObject({ keyVersion: 1, csrfToken: user.csrfToken });
  });

  it('logs in with the email in any case and surrounding spaces, making a new session row', async () => {
    const before = await countRows(t.database, 'sessions', `user_id = '${user.id}'`);
    const second = await login(t.app, ` ${user.email.toUpperCase()} `, user.password);
    expect(second.id).toBe(user.id);
    expect(second.token).not.toBe(user.token);
    expect(await countRows(t.database, 'sessions', `user_id = '${user.id}'`)).toBe(before + 1);

    // Each session holds the DEK under its own key: no two wrapped copies are alike.
    const wraps = await queryRows<{ wrapped_dek: unknown; key_version: number }>(t.database, `select wrapped_dek, key_version from sessions where user_id = '${user.id}'`);
    expect(new Set(wraps.map((w) => bytes(w.wrapped_dek).toString('hex'))).size).toBe(wraps.length);
    expect(wraps.every((w) => w.key_version === 1)).toBe(true);

    // Both sessions work side by side.
    for (const token of [user.token, second.token]) expect((await api(t.app, token).get('/api/auth/me')).statusCode).toBe(200);
    user = { ...user, token: second.token, csrfToken: second.csrfToken };
  });

  it('logout ends this session only', async () => {
    const other = await login(t.app, user.email, user.password);
    const res = await api(t.app, user).post('/api/auth/logout');
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toEqual({ ok: true });
    expectError(await api(t.app, user).get('/api/auth/me'), 401, 'UNAUTHENTICATED');
    expect((await api(t.app, other).get('/api/auth/me')).statusCode).toBe(200);
    const [s] = await queryRows<{ revoked_reason: string | null }>(t.database, `select revoked_reason from sessions where id = '${json<Me>(await api(t.app, other).get('/api/auth/me')).session.id}'`);
    expect(s?.revoked_reason).toBeNull();
    expect(await countRows(t.database, 'sessions', `user_id = '${user.id}' and revoked_reason = 'logout'`)).toBe(1);
  });

  it('accepts passwords of 64 and 1,024 characters, and 1,024 astral code points, and logs in with them', async () => {
    const cycle = (alphabet: string, n: number) => Array.from({ length: n }, (_, i) => [...alphabet][(i * 7) % [...alphabet].length]).join('');
    const passwords = [
      cycle('correct horse battery staple', 64),
      cycle('abcdefghijklmnopqrstuvwxyz0123456789 ', 1024),
      // 1,024 code points but 2,048 UTF-16 units: the limit counts what a person sees.
      cycle('🔑🗝🔒🐘', 1024),
    ];
    expect(passwords.map((p) => [...p].length)).toEqual([64, 1024, 1024]);
    expect([...passwords[2]!].length).toBe(1024);
    expect(passwords[2]!.length).toBe(2048);
    for (const password of passwords) {
      const u = await registerUser(t.app, { password });
      const again = await login(t.app, u.email, password);
      expect(again.id).toBe(u.id);
    }
  });

  it('a login with a different password of a registered account fails', async () => {
    const res = await api(t.app).post('/api/auth/login', { email: user.email, password: `${user.password} ` });
    expectError(res, 401, 'INVALID_CREDENTIALS');
  });
});
