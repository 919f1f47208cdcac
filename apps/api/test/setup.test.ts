/**
 * First-run setup (issue 2 item 7): while no admin exists, setup is needed and registration is
 * refused; a wrong code is refused and audited; the right one makes the first admin and the AMK
 * (private key wrapped only for that admin); afterwards setup answers 409 forever. Registration
 * then makes key version 1 with a pending A-DEK, no admin online.
 */
import { KDF_FLOOR } from '@keyturn/shared/crypto';
import { expect, it } from 'vitest';
import { api, bytes, countRows, describeBoth, expectError, json, queryRows, registerUser, strongPassword, uniqueEmail, useTestApp } from './harness';

describeBoth('first-run setup', (backend) => {
  const t = useTestApp(backend);
  let setupCode: string;
  let adminId: string;

  it('says setup is needed while no admin exists', async () => {
    const res = await api(t.app).get('/api/setup');
    expect(res.statusCode).toBe(200);
    expect(json(res)).toEqual({ needed: true });
  });

  it('refuses registration before setup with 409 SETUP_REQUIRED, before any key derivation', async () => {
    const kdfBefore = t.app.container.metrics.kdfCount.get();
    const res = await api(t.app).post('/api/auth/register', { email: uniqueEmail(), password: strongPassword() });
    expectError(res, 409, 'SETUP_REQUIRED');
    expect(t.app.container.metrics.kdfCount.get()).toBe(kdfBefore);
    expect(await countRows(t.database, 'users')).toBe(0);
  });

  it('refuses setup before a code was issued', async () => {
    const res = await api(t.app).post('/api/setup', { setupCode: 'no-code-was-printed', email: uniqueEmail('admin'), password: strongPassword() });
    expectError(res, 403, 'FORBIDDEN');
    expect(await countRows(t.database, 'users')).toBe(0);
  });

  it('refuses a wrong setup code with 403 and audits the denial', async () => {
    const prepared = await t.app.container.setup.prepareSetupCode();
    expect(prepared).not.toBeNull();
    expect(prepared!.generated).toBe(true);
    setupCode = prepared!.code;
    expect(setupCode.length).toBeGreaterThanOrEqual(16);
    // Only its hash is kept.
    const settings = JSON.stringify(await queryRows(t.database, 'select * from system_settings'));
    expect(settings).not.toContain(setupCode);

    const kdf = t.app.container.metrics.kdfCount.get();
    const res = await api(t.app).post('/api/setup', { setupCode: `${setupCode}x`, email: uniqueEmail('admin'), password: strongPassword() });
    const err = expectError(res, 403, 'FORBIDDEN');
    // The code is checked before any argon2 work.
    expect(t.app.container.metrics.kdfCount.get()).toBe(kdf);
    expect(await countRows(t.database, 'users')).toBe(0);
    expect(await countRows(t.database, 'amk')).toBe(0);
    const audit = await queryRows<{ action: string; outcome: string; request_id: string; details: { reason?: string } }>(
      t.database,
      `select action, outcome, request_id, details from audit_events where outcome = 'denied'`,
    );
    // Both refused attempts so far (no code issued, wrong code) are on record.
    expect(audit).toHaveLength(2);
    expect(audit).toContainEqual({ action: 'setup.admin_created', outcome: 'denied', request_id: err.requestId, details: { reason: 'wrong_setup_code' } });
  });

  it('refuses a weak admin password with 400 and creates nothing', async () => {
    const res = await api(t.app).post('/api/setup', { setupCode, email: uniqueEmail('admin'), password: 'short' });
    const err = expectError(res, 400, 'VALIDATION_FAILED');
    expect(err.details).toEqual([expect.objectContaining({ field: 'body.password' })]);
    expect(await countRows(t.database, 'users')).toBe(0);
  });

  it('creates the first admin and the AMK with the right code', async () => {
    const email = uniqueEmail('admin');
    const kdf = t.app.container.metrics.kdfCount.get();
    const res = await api(t.app).post('/api/setup', { setupCode, email, password: strongPassword() });
    expect(res.statusCode, res.body).toBe(201);
    // One argon2 derivation, counted like every other.
    expect(t.app.container.metrics.kdfCount.get()).toBe(kdf + 1);
    const s = json<{ token: string; user: { id: string; role: string; keyVersion: number; email: string } }>(res);
    expect(s.user).toMatchObject({ role: 'admin', keyVersion: 1, email });
    adminId = s.user.id;

    const me = await api(t.app, s.token).get('/api/auth/me');
    expect(me.statusCode).toBe(200);
    expect(json<{ user: { role: string } }>(me).user.role).toBe('admin');

    const users = await queryRows<{ id: string; role: string }>(t.database, 'select id, role from users');
    expect(users).toEqual([{ id: adminId, role: 'admin' }]);
    const amk = await queryRows<{ id: string; public_key: unknown }>(t.database, 'select id, public_key from amk');
    expect(amk).toHaveLength(1);
    expect(bytes(amk[0]!.public_key)).toHaveLength(32);
    // The private key exists only wrapped, and only for this admin.
    const wraps = await queryRows<{ admin_id: string; amk_id: string; wrapped_private: unknown }>(t.database, 'select admin_id, amk_id, wrapped_private from amk_wraps');
    expect(wraps).toHaveLength(1);
    expect(wraps[0]).toMatchObject({ admin_id: adminId, amk_id: amk[0]!.id });
    expect(bytes(wraps[0]!.wrapped_private).length).toBeGreaterThan(32);
    // The setup code is spent.
    expect(await countRows(t.database, 'system_settings', `key = 'setup_code_sha256'`)).toBe(0);
    expect(await countRows(t.database, 'audit_events', `action = 'setup.admin_created' and outcome = 'success'`)).toBe(1);
  });

  it('says setup is no longer needed', async () => {
    const res = await api(t.app).get('/api/setup');
    expect(json(res)).toEqual({ needed: false });
    expect(await t.app.container.setup.prepareSetupCode()).toBeNull();
  });

  it('answers 409 SETUP_DONE to a second setup, even with the code that worked', async () => {
    for (const email of [uniqueEmail('admin2'), uniqueEmail('admin3')]) {
      const res = await api(t.app).post('/api/setup', { setupCode, email, password: strongPassword() });
      expectError(res, 409, 'SETUP_DONE');
    }
    expect(await countRows(t.database, 'users')).toBe(1);
    expect(await countRows(t.database, 'amk')).toBe(1);
    expect(await countRows(t.database, 'amk_wraps')).toBe(1);
  });

  it('registration now makes key version 1 with its KEK wrap, check value and a pending A-DEK', async () => {
    const user = await registerUser(t.app);
    expect(user.session.user).toMatchObject({ role: 'user', keyVersion: 1 });
    const [k] = await queryRows<Record<string, unknown>>(t.database, `select * from user_keys where user_id = '${user.id}'`);
    expect(k).toBeDefined();
    expect(k!.key_version).toBe(1);
    expect(bytes(k!.kdf_salt)).toHaveLength(16);
    expect(bytes(k!.dek_kcv)).toHaveLength(16);
    expect(bytes(k!.auth_hash)).toHaveLength(32);
    expect(bytes(k!.wrapped_dek).length).toBeGreaterThanOrEqual(1 + 12 + 32 + 16);
    expect(k!.adek_pending).not.toBeNull();
    expect(bytes(k!.adek_pending).length).toBeGreaterThan(32);
    expect(k!.adek_final).toBeNull();
    const kdf = k!.kdf_params as { alg: string; m: number; t: number; p: number };
    expect(kdf).toEqual(t.config.kdf);
    expect(kdf.m).toBeGreaterThanOrEqual(KDF_FLOOR.m);
    expect(kdf.m * kdf.t).toBeGreaterThanOrEqual(KDF_FLOOR.mTimesT);
    // Salts are per user.
    const salts = await queryRows<{ kdf_salt: unknown }>(t.database, 'select kdf_salt from user_keys');
    expect(new Set(salts.map((r) => bytes(r.kdf_salt).toString('hex'))).size).toBe(2);
    expect(await countRows(t.database, 'sessions', `user_id = '${user.id}'`)).toBe(1);
  });

  it('keeps a valid audit chain', async () => {
    const v = await t.app.container.audit.verify();
    expect(v).toMatchObject({ ok: true, firstBadSeq: null });
    expect(v.checked).toBe(await countRows(t.database, 'audit_events'));
  });
});
