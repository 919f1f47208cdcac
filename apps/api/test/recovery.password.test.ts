/**
 * Self-service password change (issue 11 §1; modules/recovery/README.md P1–P5): the same DEK
 * re-wrapped (no secret rewritten, key version unchanged), the admin's AMK share re-wrapped,
 * every session revoked and the caller's replaced, audited, throttled like sign-in, and never
 * half-written under a racing rotation.
 */
import { expect, it } from 'vitest';
import { api, createSecret, describeBoth, expectError, json, login, queryRows, registerUser, setupAdmin, strongPassword, type TestUser, useTestApp } from './harness';
import { changePassword, changePasswordRes } from './recovery.helpers';
import {
  approveRotation,
  auditFor,
  dump,
  dumpSecrets,
  executeRes,
  finalizeRes,
  keyVersion,
  loginAndReadVault,
  loginStatus,
  requestRotation,
  restoreRes,
  rotate,
} from './rotation.helpers';

describeBoth('change password', (backend) => {
  const hooks: { afterClaim?: (tokenId: string) => Promise<void>; afterCommit?: (tokenId: string) => Promise<void> } = {};
  const t = useTestApp(backend, {
    env: { LOGIN_MAX_FAILURES: '3', KDF_MAX_CONCURRENCY: '1' },
    deps: { rotationHooks: { afterClaim: async (id) => hooks.afterClaim?.(id), afterCommit: async (id) => hooks.afterCommit?.(id) } },
  });
  let admin: TestUser;

  it('re-wraps the same DEK: secrets untouched byte for byte, key version unchanged, old password refused, new one opens every secret', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const values = { 'db password': `pg-${strongPassword()}`, 'api key': 'ünïcødé ✓ 🔑\nline two' };
    for (const [name, value] of Object.entries(values)) await createSecret(t.app, user, { name, value });
    const other = await login(t.app, user.email, user.password);
    const secretsBefore = await dumpSecrets(t.database, user.id);
    const [keysBefore] = await queryRows<Record<string, unknown>>(t.database, `select * from user_keys where user_id = '${user.id}'`);
    const auditBefore = (await auditFor(t.database, `user:${user.id}`)).length;

    const newPassword = strongPassword();
    const { user: next, result } = await changePassword(t.app, user, newPassword);
    expect(result).toMatchObject({ status: 'changed', keyVersion: 1, sessionsRevoked: 1 });

    // P1: no secret row changed; only the password's material did.
    expect(await dumpSecrets(t.database, user.id)).toBe(secretsBefore);
    const [keysAfter] = await queryRows<Record<string, unknown>>(t.database, `select * from user_keys where user_id = '${user.id}'`);
    expect(keysAfter!.key_version).toBe(1);
    for (const same of ['dek_kcv', 'adek_pending', 'adek_final']) expect(keysAfter![same], same).toEqual(keysBefore![same]);
    for (const changed of ['kdf_salt', 'auth_hash', 'wrapped_dek']) expect(keysAfter![changed], changed).not.toEqual(keysBefore![changed]);
    expect(keysAfter!.password_changed_at).not.toBeNull();

    // Every old session ends; the returned one works.
    expectError(await api(t.app, user).get('/api/secrets'), 401, 'UNAUTHENTICATED');
    expectError(await api(t.app, other).get('/api/secrets'), 401, 'UNAUTHENTICATED');
    expect((await api(t.app, next).get('/api/secrets')).statusCode).toBe(200);
    expect(await loginStatus(t.app, user.email, user.password)).toBe(401);
    const { vault } = await loginAndReadVault(t.app, next, newPassword);
    expect(vault).toEqual(values);

    const events = (await auditFor(t.database, `user:${user.id}`)).slice(auditBefore);
    const changed = events.find((e) => e.action === 'auth.password_changed');
    expect(changed).toMatchObject({ outcome: 'success', actor_id: user.id });
    expect(changed!.details).toMatchObject({ keyVersion: 1, sessionsRevoked: 1 });
  });

  it('the caller’s cookie is replaced with the new session', async () => {
    const user = await registerUser(t.app);
    const res = await changePasswordRes(t.app, user, strongPassword());
    expect(res.statusCode, res.body).toBe(200);
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toContain(json<{ session: { token: string } }>(res).session.token);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('a wrong current password is 401, counts on the sign-in throttle and changes nothing; the cap blocks both', async () => {
    const user = await registerUser(t.app);
    const [before] = await queryRows<{ auth_hash: unknown }>(t.database, `select auth_hash from user_keys where user_id = '${user.id}'`);
    for (let i = 0; i < 3; i++) expectError(await changePasswordRes(t.app, user, strongPassword(), `wrong-${strongPassword()}`), 401, 'INVALID_CREDENTIALS');
    // The account's sign-in throttle is now blocked: the change (right password) and sign-in both refuse.
    expectError(await changePasswordRes(t.app, user, strongPassword()), 429, 'RATE_LIMITED');
    expectError(await api(t.app).post('/api/auth/login', { email: user.email, password: user.password }), 429, 'RATE_LIMITED');
    const [after] = await queryRows<{ auth_hash: unknown }>(t.database, `select auth_hash from user_keys where user_id = '${user.id}'`);
    expect(after!.auth_hash).toEqual(before!.auth_hash);
    const denials = (await auditFor(t.database, `user:${user.id}`)).filter((e) => e.action === 'auth.password_changed');
    expect(denials.map((e) => e.details.reason)).toEqual(['wrong_current_password', 'wrong_current_password', 'wrong_current_password', 'throttled']);
  });

  it('refuses a new password equal to the current one, a weak one, and unknown fields (400, nothing changed)', async () => {
    const user = await registerUser(t.app);
    const same = expectError(await changePasswordRes(t.app, user, user.password), 400, 'VALIDATION_FAILED');
    expect(JSON.stringify(same.details)).toContain('newPassword');
    expectError(await changePasswordRes(t.app, user, 'short'), 400, 'VALIDATION_FAILED');
    expectError(await api(t.app, user).post('/api/auth/change_password', { currentPassword: user.password, newPassword: strongPassword(), keyVersion: 9 }), 400, 'VALIDATION_FAILED');
    expectError(await api(t.app).post('/api/auth/change_password', { currentPassword: user.password, newPassword: strongPassword() }), 401, 'UNAUTHENTICATED');
    expect(await loginStatus(t.app, user.email, user.password)).toBe(200);
  });

  it('an admin’s AMK share follows the new password: they can still approve and finalize', async () => {
    admin ??= await setupAdmin(t.app);
    const { user: nextAdmin } = await changePassword(t.app, admin, strongPassword());
    admin = nextAdmin;
    const user = await registerUser(t.app);
    const r = await rotate(t, admin, user);
    expect((await finalizeRes(t, admin, r.token.id)).statusCode).toBe(200);
  });

  it('a restore of a rotation completed before the change is refused (it would bring the old password back)', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    await createSecret(t.app, user, { name: 'n', value: 'v' });
    const r = await rotate(t, admin, user);
    const { user: next } = await changePassword(t.app, r.user, strongPassword());
    const err = expectError(await restoreRes(t, admin, r.token.id), 409, 'INVALID_STATE');
    expect(err.details).toMatchObject({ reason: 'PASSWORD_CHANGED' });
    expect(await loginStatus(t.app, next.email, next.password)).toBe(200);
  });

  it('racing a rotation: the rotation that read the keys before the change commits loses (409), nothing half-written', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    await createSecret(t.app, user, { name: 'n', value: 'v' });
    const token = await requestRotation(t, user);
    const approval = await approveRotation(t, admin, token.id);
    const newPassword = strongPassword();
    let changed: TestUser | undefined;
    hooks.afterClaim = async () => {
      hooks.afterClaim = undefined;
      // The rotation has unlocked the keys and claimed its token; the password change commits now.
      changed = (await changePassword(t.app, await login(t.app, user.email, user.password), newPassword)).user;
    };
    const keysBefore = await dump(t.database, `select key_version, dek_kcv from user_keys where user_id = '${user.id}'`);
    const secretsBefore = await dumpSecrets(t.database, user.id);
    const ex = await executeRes(t, user, { tokenId: token.id, tempPassword: approval.tempPassword });
    expect(changed).toBeDefined();
    expect(expectError(ex, 409, 'INVALID_STATE').details).toMatchObject({ reason: 'KEY_CHANGED' });
    expect(await keyVersion(t.database, user.id)).toBe(1);
    expect(await dump(t.database, `select key_version, dek_kcv from user_keys where user_id = '${user.id}'`)).toBe(keysBefore);
    expect(await dumpSecrets(t.database, user.id)).toBe(secretsBefore);
    const { vault } = await loginAndReadVault(t.app, changed!, newPassword);
    expect(vault).toEqual({ n: 'v' });
  });

  it('racing the other way: a change that read the keys before a rotation committed is 409 LOST_RACE and writes nothing', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    await createSecret(t.app, user, { name: 'n', value: 'v' });
    const token = await requestRotation(t, user);
    const approval = await approveRotation(t, admin, token.id);
    const second = await login(t.app, user.email, user.password);
    const kdf = t.app.container.metrics.kdfCount;
    let release!: () => void;
    const slot = new Promise<void>((r) => {
      release = r;
    });
    let change: Promise<Awaited<ReturnType<typeof changePasswordRes>>> | undefined;
    hooks.afterClaim = async () => {
      hooks.afterClaim = undefined;
      // Hold the only argon2 slot: the change reads the (old) keys, then waits for its derivation.
      const before = kdf.get();
      void t.app.container.auth.kdfCost(() => slot);
      change = changePasswordRes(t.app, second, strongPassword());
      for (let i = 0; i < 2000 && kdf.get() < before + 2; i++) await new Promise((r) => setTimeout(r, 5));
      expect(kdf.get()).toBeGreaterThanOrEqual(before + 2);
    };
    hooks.afterCommit = async () => {
      hooks.afterCommit = undefined;
      release();
    };
    const ex = await executeRes(t, user, { tokenId: token.id, tempPassword: approval.tempPassword });
    expect(ex.statusCode, ex.body).toBe(200);
    expectError(await change!, 409, 'LOST_RACE');
    expect(await keyVersion(t.database, user.id)).toBe(2);
    // The rotation's keys stand: the user's password is still the old one.
    expect(await loginStatus(t.app, user.email, user.password)).toBe(200);
  });
});
