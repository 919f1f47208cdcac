/**
 * Accounts, refused input (issue 2 item 6; RELIABILITY A4, A6, B10): the password policy rule by
 * rule, strict bodies, wrong types, the case-insensitive unique email, and what "verified exactly
 * as typed" means for Unicode normalisation. Nothing refused may leave a row behind.
 */
import { expect, it } from 'vitest';
import { api, countRows, describeBoth, expectError, login, registerUser, setupAdmin, strongPassword, uniqueEmail, useTestApp } from './harness';

/** A password of exactly n code points, varied enough not to count as "common". */
const passwordOf = (n: number) => Array.from({ length: n }, (_, i) => 'kT9#vQ2!mZ7@'[i % 12]).join('');

describeBoth('auth refused input', (backend) => {
  const t = useTestApp(backend);
  const register = (body: unknown) => api(t.app).post('/api/auth/register', body);
  const usersNow = () => countRows(t.database, 'users');

  it('sets up the first admin', async () => {
    await setupAdmin(t.app);
  });

  /** A refused registration: the status, a field detail, and no new row. */
  async function refused(body: unknown, field: string) {
    const before = await usersNow();
    const err = expectError(await register(body), 400, 'VALIDATION_FAILED');
    expect(err.details).toEqual(expect.arrayContaining([expect.objectContaining({ field, message: expect.any(String) })]));
    expect(await usersNow()).toBe(before);
    return err;
  }

  it('refuses a password of 11 characters and accepts 12', async () => {
    await refused({ email: uniqueEmail(), password: passwordOf(11) }, 'body.password');
    await registerUser(t.app, { password: passwordOf(12) });
  });

  it('refuses 1,025 characters (the documented maximum is 1,024) without deriving a key', async () => {
    const kdf = t.app.container.metrics.kdfCount.get();
    await refused({ email: uniqueEmail(), password: passwordOf(1025) }, 'body.password');
    // Counted in code points (1,000 + 25 astral = 1,025), whatever the UTF-16 length.
    await refused({ email: uniqueEmail(), password: passwordOf(1000) + '🔑🗝🔒🐘🦉'.repeat(5) }, 'body.password');
    expect(t.app.container.metrics.kdfCount.get()).toBe(kdf);
  });

  it('refuses common passwords, in any case, and the shapes they are made of', async () => {
    for (const password of ['password1234', 'PASSWORD1234', 'Password123!', 'qwertyuiop123', 'aaaaaaaaaaaaaaaa', '123456789012', 'correct horse battery staple']) {
      const err = await refused({ email: uniqueEmail(), password }, 'body.password');
      expect(JSON.stringify(err.details)).toMatch(/common/);
    }
  });

  it('needs no composition rules: a long lower-case passphrase is fine', async () => {
    await registerUser(t.app, { password: 'lantern orchard velvet quarry' });
  });

  it('refuses unknown fields (mass assignment) with field details', async () => {
    for (const extra of [{ role: 'admin' }, { isAdmin: true }, { keyVersion: 7 }, { userId: '00000000-0000-4000-8000-000000000000' }]) {
      const err = await refused({ email: uniqueEmail(), password: strongPassword(), ...extra }, 'body');
      expect(JSON.stringify(err.details)).toContain(Object.keys(extra)[0]!);
    }
    expect(await countRows(t.database, 'users', `role = 'admin'`)).toBe(1);
  });

  it('refuses wrong types and missing fields with a detail per field', async () => {
    const err = await refused({ email: 42, password: ['a', 'b'] }, 'body.email');
    expect(err.details).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'body.password' })]));
    await refused({ email: uniqueEmail() }, 'body.password');
    await refused({ password: strongPassword() }, 'body.email');
    await refused({ email: 'not-an-email', password: strongPassword() }, 'body.email');
    await refused({ email: `${'a'.repeat(250)}@example.test`, password: strongPassword() }, 'body.email');
    // A lone surrogate cannot be stored as UTF-8: refused, not silently mangled.
    await refused({ email: uniqueEmail(), password: `lone \ud800 surrogate password` }, 'body.password');
    expectError(await api(t.app).post('/api/auth/login', { email: uniqueEmail(), password: 12345678901234 }), 400, 'VALIDATION_FAILED');
    expectError(await api(t.app).post('/api/auth/login', { email: uniqueEmail(), password: '' }), 400, 'VALIDATION_FAILED');
  });

  it('treats the email case-insensitively and trimmed: a second account is 409 EMAIL_TAKEN', async () => {
    const email = uniqueEmail('Case');
    const first = await registerUser(t.app, { email });
    expect(first.email).toBe(email.toLowerCase());
    for (const variant of [email.toUpperCase(), `  ${email}\t`, email.toLowerCase()]) {
      const before = await usersNow();
      expectError(await register({ email: variant, password: strongPassword() }), 409, 'EMAIL_TAKEN');
      expect(await usersNow()).toBe(before);
    }
    expect(await countRows(t.database, 'users', `email = '${email.toLowerCase()}'`)).toBe(1);
  });

  it('verifies passwords exactly as typed: no normalisation, so NFC and NFD spellings are different passwords', async () => {
    // Documented behaviour (NewPasswordSchema): a password is checked byte for byte as UTF-8,
    // with no Unicode normalisation, trimming or case folding. "Café" typed with a precomposed
    // é (NFC) and with e + combining accent (NFD) look alike but are different passwords; the
    // same keyboard produces the same form every time, so a user is never locked out by this.
    const nfc = 'Café crème brûlée au Noël'.normalize('NFC');
    const nfd = nfc.normalize('NFD');
    expect(nfd).not.toBe(nfc);
    const u = await registerUser(t.app, { password: nfc });
    expectError(await api(t.app).post('/api/auth/login', { email: u.email, password: nfd }), 401, 'INVALID_CREDENTIALS');
    expect((await login(t.app, u.email, nfc)).id).toBe(u.id);
    // …and the other way round.
    const v = await registerUser(t.app, { password: nfd });
    expectError(await api(t.app).post('/api/auth/login', { email: v.email, password: nfc }), 401, 'INVALID_CREDENTIALS');
    expect((await login(t.app, v.email, nfd)).id).toBe(v.id);
  });

  it('takes control characters in a password as they are (a NUL is just a character here)', async () => {
    const password = 'nul\u0000tab\tnewline\n-password';
    const u = await registerUser(t.app, { password });
    expect((await login(t.app, u.email, password)).id).toBe(u.id);
    expectError(await api(t.app).post('/api/auth/login', { email: u.email, password: password.replace('\u0000', '') }), 401, 'INVALID_CREDENTIALS');
  });

  it('does not trim or case-fold passwords', async () => {
    const password = 'Mixed Case Pass Phrase';
    const u = await registerUser(t.app, { password });
    for (const wrong of [password.toLowerCase(), ` ${password}`, `${password} `, password.toUpperCase()]) {
      expectError(await api(t.app).post('/api/auth/login', { email: u.email, password: wrong }), 401, 'INVALID_CREDENTIALS');
    }
  });

  it('answers 401 to unauthenticated calls and malformed authorization headers', async () => {
    expectError(await api(t.app).get('/api/auth/me'), 401, 'UNAUTHENTICATED');
    expectError(await api(t.app).post('/api/auth/logout'), 401, 'UNAUTHENTICATED');
    for (const authorization of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', 'bearer abc.def.ghi', 'Bearer a b', 'Token abcdefghijkl']) {
      expectError(await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization } }), 401, 'UNAUTHENTICATED');
    }
  });
});
