/**
 * Rotation edge cases: completeness on edge data (D6), expiry boundaries by the database clock
 * (C3), replays (C2), finalize rules and escrow checks (C11, I6, D2), restore (D7), an admin
 * rotating their own keys, and the cleanup / recover basics (DESIGN §4).
 */
import type { MaintenanceRun, SystemStatus } from '@keyturn/shared';
import { afterEach, expect, it } from 'vitest';
import { api, countRows, createSecret, describeBoth, expectError, json, queryRows, registerUser, type Response, setupAdmin, strongPassword, type TestUser, useTestApp } from './harness';
import {
  afterRotation,
  appNow,
  approveRes,
  approveRotation,
  auditFor,
  dump,
  dumpSecrets,
  dumpToken,
  dumpUserKeys,
  executeRes,
  faultHooks,
  finalizeRes,
  keyVersion,
  loginAndReadVault,
  loginStatus,
  readVault,
  requestRotation,
  restoreRes,
  rotate,
  runSql,
  testClock,
  tokenRow,
  usersWithoutEscrow,
} from './rotation.helpers';

describeBoth('rotation edge cases', (backend) => {
  const clock = testClock();
  const faults = faultHooks();
  // Short lives, so moving the clock past them leaves the 8 h sessions alive.
  const t = useTestApp(backend, { env: { TOKEN_TTL_SECONDS: '3600', PENDING_TTL_SECONDS: '7200' }, deps: { clock, rotationHooks: faults.hooks } });
  let admin: TestUser;

  const fill = async (user: TestUser, vault: Record<string, string>) => {
    for (const [name, value] of Object.entries(vault)) await createSecret(t.app, user, { name, value });
  };
  const newUser = async (vault: Record<string, string> = { n: 'v' }) => {
    admin ??= await setupAdmin(t.app);
    const u = await registerUser(t.app);
    await fill(u, vault);
    return u;
  };

  afterEach(async () => {
    clock.reset();
    // I6: whatever happened, every user keeps an escrow copy (pending or final) of the current DEK.
    expect(await usersWithoutEscrow(t.database)).toBe(0);
  });

  // ------------------------------------------------------------------------------- D6
  it('D6: a user with no secrets rotates (0 re-encrypted) and keeps their password', async () => {
    const u = await newUser({});
    const r = await rotate(t, admin, u);
    expect(r.result).toMatchObject({ status: 'completed', keyVersion: 2, secretsReencrypted: 0 });
    expect((await loginAndReadVault(t.app, r.user)).vault).toEqual({});
  });

  it('D6: a user with one secret', async () => {
    const u = await newUser({ only: 'one' });
    const r = await rotate(t, admin, u);
    expect(r.result.secretsReencrypted).toBe(1);
    expect(await readVault(t.app, r.user)).toEqual({ only: 'one' });
  });

  it('D6: 64 KiB values, unicode and emoji names, an empty value, and a secret added just before execute are all re-encrypted', async () => {
    const vault: Record<string, string> = {
      'max ascii': 'a'.repeat(t.config.SECRET_VALUE_MAX_BYTES),
      'max multibyte €': '€'.repeat(Math.floor(t.config.SECRET_VALUE_MAX_BYTES / 3)),
      '🔑 clé — 鍵 — ключ': 'emoji value 🎉🧪 with ZWJ 👩‍💻',
      'right-to-left \u202Eabc\u202C and zero\u200Bwidth': 'שלום عربى',
      'empty value': '',
      'NFC é vs NFD e\u0301': 'e\u0301',
    };
    const u = await newUser(vault);
    const token = await requestRotation(t, u);
    const { tempPassword } = await approveRotation(t, admin, token.id);
    // Written after the approval, moments before execute: it must be part of the rotation.
    vault['late arrival'] = 'created just before execute';
    await createSecret(t.app, u, { name: 'late arrival', value: vault['late arrival']! });
    const rows = await countRows(t.database, 'secrets', `user_id = '${u.id}'`);
    expect(rows).toBe(7);

    const res = await executeRes(t, u, { tokenId: token.id, tempPassword });
    const next = afterRotation(u, res);
    expect(json(res)).toMatchObject({ keyVersion: 2, secretsReencrypted: rows });
    expect(await countRows(t.database, 'secrets', `user_id = '${u.id}'`)).toBe(rows);
    expect(await countRows(t.database, 'secrets', `user_id = '${u.id}' and key_version <> 2`)).toBe(0);
    expect(await readVault(t.app, next)).toEqual(vault);
  });

  // ------------------------------------------------------------------------------- C3
  /** Approve with the clock frozen at the database's now; returns the stored expires_at. */
  async function approvedAtFrozenNow(u: TestUser) {
    clock.frozenAt = await appNow(t);
    const token = await requestRotation(t, u);
    const a = await approveRotation(t, admin, token.id);
    const expiresAt = new Date(a.expiresAt);
    expect(expiresAt.getTime() - clock.frozenAt.getTime()).toBe(t.config.TOKEN_TTL_SECONDS * 1000);
    return { id: token.id, temp: a.tempPassword, expiresAt };
  }

  it('C3: execute at expires_at − 1 s succeeds', async () => {
    const u = await newUser();
    const tok = await approvedAtFrozenNow(u);
    clock.frozenAt = new Date(tok.expiresAt.getTime() - 1000);
    const res = await executeRes(t, u, { tokenId: tok.id, tempPassword: tok.temp });
    expect(res.statusCode, res.body).toBe(200);
    expect(await keyVersion(t.database, u.id)).toBe(2);
  });

  it.each([
    ['at expires_at', 0],
    ['at expires_at + 1 s', 1000],
  ])('C3: execute %s is refused with 410, the right temporary password notwithstanding, before any cleanup ran', async (_label, delta) => {
    const u = await newUser();
    const tok = await approvedAtFrozenNow(u);
    const secrets = await dumpSecrets(t.database, u.id);
    clock.frozenAt = new Date(tok.expiresAt.getTime() + delta);
    expectError(await executeRes(t, u, { tokenId: tok.id, tempPassword: tok.temp }), 410, 'TOKEN_EXPIRED');
    expect(await countRows(t.database, 'maintenance_runs')).toBe(0);
    expect(await tokenRow(t.database, tok.id)).toMatchObject({ status: 'expired', decision_note: 'overdue when used', temp_hash: null, locked_at: null });
    expect(await dumpSecrets(t.database, u.id)).toBe(secrets);
    expect(await keyVersion(t.database, u.id)).toBe(1);
    // And it stays refused: 410 again, with no second expiry event.
    expectError(await executeRes(t, u, { tokenId: tok.id, tempPassword: tok.temp }), 410, 'TOKEN_EXPIRED');
    expect((await auditFor(t.database, `rotation:${tok.id}`)).filter((e) => e.action === 'rotation.expired')).toHaveLength(1);
  });

  it('C3: a pending request is approvable at PENDING_TTL − 1 s and refused (410, expired on the spot) at + 1 s', async () => {
    const ttl = t.config.PENDING_TTL_SECONDS * 1000;
    const young = await newUser();
    const old = await newUser();
    const t0 = await appNow(t);
    clock.frozenAt = t0;
    const a = await requestRotation(t, young);
    const b = await requestRotation(t, old);
    clock.frozenAt = new Date(t0.getTime() + ttl - 1000);
    expect((await approveRes(t, admin, a.id)).statusCode).toBe(200);
    clock.frozenAt = new Date(t0.getTime() + ttl + 1000);
    const before = await dumpToken(t.database, b.id);
    expectError(await approveRes(t, admin, b.id), 410, 'TOKEN_EXPIRED');
    expect(await dumpToken(t.database, b.id)).not.toBe(before);
    expect(await tokenRow(t.database, b.id)).toMatchObject({ status: 'expired', temp_hash: null });
    expect(await countRows(t.database, 'maintenance_runs')).toBe(0);
    // The user may ask again.
    expect((await api(t.app, old).post('/api/request_key_rotation', { reason: 'again' })).statusCode).toBe(201);
  });

  // ------------------------------------------------------------------------------- C2
  it('C2: replaying execute after completion is 409 (401 on the revoked session); the key version rose exactly once', async () => {
    const u = await newUser();
    const token = await requestRotation(t, u);
    const { tempPassword } = await approveRotation(t, admin, token.id);
    const body = { tokenId: token.id, tempPassword };
    const first = await executeRes(t, u, body);
    const next = afterRotation(u, first);
    expectError(await executeRes(t, u, body), 401);
    expectError(await executeRes(t, next, body), 409, 'INVALID_STATE');
    expect(await keyVersion(t.database, u.id)).toBe(2);
    const completed = (await auditFor(t.database, `rotation:${token.id}`)).filter((e) => e.action === 'rotation.completed');
    expect(completed).toHaveLength(1);
    expect(await readVault(t.app, next)).toEqual({ n: 'v' });
  });

  it('C2: replaying approve is 409 and issues no second temporary password (the first one still works)', async () => {
    const u = await newUser();
    const token = await requestRotation(t, u);
    const { tempPassword } = await approveRotation(t, admin, token.id);
    const before = await dumpToken(t.database, token.id);
    const replay = await approveRes(t, admin, token.id);
    expectError(replay, 409, 'INVALID_STATE');
    expect(replay.body).not.toMatch(/tempPassword/);
    expect(await dumpToken(t.database, token.id)).toBe(before);
    const approvals = (await auditFor(t.database, `rotation:${token.id}`)).filter((e) => e.action === 'rotation.approved');
    expect(approvals.map((e) => e.outcome)).toEqual(['success', 'denied']);
    expect((await executeRes(t, u, { tokenId: token.id, tempPassword })).statusCode).toBe(200);
  });

  // ------------------------------------------------------------------------------- C11
  it('C11: finalize twice: the second is 409 and changes nothing', async () => {
    const r = await rotate(t, admin, await newUser());
    expect((await finalizeRes(t, admin, r.token.id)).statusCode).toBe(200);
    const keys = await dumpUserKeys(t.database, r.user.id);
    expectError(await finalizeRes(t, admin, r.token.id), 409, 'INVALID_STATE');
    expect(await dumpUserKeys(t.database, r.user.id)).toBe(keys);
    expect((await tokenRow(t.database, r.token.id))?.status).toBe('finalized');
  });

  it('C11: a completed rotation replaced by a newer one is superseded; finalizing it is 409; the newer one finalizes', async () => {
    const first = await rotate(t, admin, await newUser());
    const second = await rotate(t, admin, first.user);
    expect((await tokenRow(t.database, first.token.id))?.status).toBe('superseded');
    const keys = await dumpUserKeys(t.database, first.user.id);
    expectError(await finalizeRes(t, admin, first.token.id), 409, 'INVALID_STATE');
    expect((await tokenRow(t.database, first.token.id))?.status).toBe('superseded');
    expect(await dumpUserKeys(t.database, first.user.id)).toBe(keys);
    expect((await finalizeRes(t, admin, second.token.id)).statusCode).toBe(200);
  });

  const flipPending = (userId: string) =>
    runSql(t.database, `update user_keys set adek_pending = set_byte(adek_pending, 40, get_byte(adek_pending, 40) # 1) where user_id = '${userId}'`);

  it('C11: a tampered pending A-DEK is refused with 409 ESCROW_CHECK_FAILED and the pending copy is kept', async () => {
    const r = await rotate(t, admin, await newUser());
    await flipPending(r.user.id);
    const tampered = await dumpUserKeys(t.database, r.user.id);
    expectError(await finalizeRes(t, admin, r.token.id), 409, 'ESCROW_CHECK_FAILED');
    expect(await dumpUserKeys(t.database, r.user.id)).toBe(tampered);
    expect((await tokenRow(t.database, r.token.id))?.status).toBe('completed');
    const [ev] = (await auditFor(t.database, `rotation:${r.token.id}`)).filter((e) => e.details.reason === 'escrow_check_failed');
    expect(ev).toMatchObject({ action: 'rotation.finalized', outcome: 'failure' });
    // Put the byte back: the same copy now finalizes.
    await flipPending(r.user.id);
    expect((await finalizeRes(t, admin, r.token.id)).statusCode).toBe(200);
  });

  // ------------------------------------------------------------------------------- D2
  it('D2: a pending A-DEK moved to another user, or to another key version, fails closed at finalize', async () => {
    const a = await newUser();
    const pendingV1 = await queryRows<{ p: Uint8Array }>(t.database, `select adek_pending as p from user_keys where user_id = '${a.id}'`);
    expect(pendingV1[0]!.p).toBeTruthy();
    const ra = await rotate(t, admin, a);
    const rb = await rotate(t, admin, await newUser());
    const original = await dumpUserKeys(t.database, rb.user.id);
    // A's (version 2) escrow in B's row, same version: the HPKE binding to the user refuses it.
    await runSql(t.database, `update user_keys set adek_pending = (select adek_pending from user_keys where user_id = '${ra.user.id}') where user_id = '${rb.user.id}'`);
    expectError(await finalizeRes(t, admin, rb.token.id), 409, 'ESCROW_CHECK_FAILED');
    expect((await tokenRow(t.database, rb.token.id))?.status).toBe('completed');
    // A's own version-1 escrow in A's version-2 row: bound to the key version, refused.
    const current = await dumpUserKeys(t.database, ra.user.id);
    await runSql(t.database, `update user_keys set adek_pending = '\\x${Buffer.from(pendingV1[0]!.p).toString('hex')}'::bytea where user_id = '${ra.user.id}'`);
    expectError(await finalizeRes(t, admin, ra.token.id), 409, 'ESCROW_CHECK_FAILED');
    expect((await tokenRow(t.database, ra.token.id))?.status).toBe('completed');
    // Nothing final was written for either.
    expect(await countRows(t.database, 'user_keys', `user_id in ('${ra.user.id}', '${rb.user.id}') and adek_final is not null`)).toBe(0);
    // Put the right copies back: both finalize.
    await runSql(t.database, `update user_keys set adek_pending = '\\x${JSON.parse(original)[0].adek_pending.slice(2)}'::bytea where user_id = '${rb.user.id}'`);
    await runSql(t.database, `update user_keys set adek_pending = '\\x${JSON.parse(current)[0].adek_pending.slice(2)}'::bytea where user_id = '${ra.user.id}'`);
    expect((await finalizeRes(t, admin, rb.token.id)).statusCode).toBe(200);
    expect((await finalizeRes(t, admin, ra.token.id)).statusCode).toBe(200);
  });

  it('an admin rotating their own keys (self-approved, new password) keeps the AMK: approve and finalize work with the new password only', async () => {
    admin ??= await setupAdmin(t.app);
    const other = await rotate(t, admin, await newUser());
    const oldPassword = admin.password;
    const newPassword = strongPassword();
    const own = await requestRotation(t, admin);
    const a = await approveRotation(t, admin, own.id);
    expect(a.selfApproved).toBe(true);
    admin = afterRotation(admin, await executeRes(t, admin, { tokenId: own.id, tempPassword: a.tempPassword, newPassword }), newPassword);
    expect(JSON.parse(await dump(t.database, `select key_version from amk_wraps where admin_id = '${admin.id}'`))).toEqual([{ key_version: 2 }]);

    expectError(await finalizeRes(t, admin, other.token.id, oldPassword), 401, 'ADMIN_REAUTH_FAILED');
    expect((await finalizeRes(t, admin, other.token.id)).statusCode).toBe(200);
    expect((await finalizeRes(t, admin, own.id)).statusCode).toBe(200);
    const u = await newUser();
    const tok = await requestRotation(t, u);
    expect((await approveRes(t, admin, tok.id)).statusCode).toBe(200);
    expect(await loginStatus(t.app, admin.email, oldPassword)).toBe(401);
  });

  // ------------------------------------------------------------------------------- restore (D7)
  it.each(['updated', 'added', 'deleted'] as const)('restore is refused with 409 SECRETS_CHANGED after a secret was %s; nothing changes', async (change) => {
    const r = await rotate(t, admin, await newUser({ a: '1', b: '2' }));
    const [first] = json<{ items: { id: string }[] }>(await api(t.app, r.user).get('/api/secrets')).items;
    const res: Response =
      change === 'updated'
        ? await api(t.app, r.user).put(`/api/secrets/${first!.id}`, { value: 'changed' })
        : change === 'added'
          ? await api(t.app, r.user).post('/api/secrets', { name: 'c', value: '3' })
          : await api(t.app, r.user).delete(`/api/secrets/${first!.id}`);
    expect(res.statusCode).toBeLessThan(300);
    const before = [await dumpSecrets(t.database, r.user.id), await dumpUserKeys(t.database, r.user.id), await dumpToken(t.database, r.token.id)];
    expectError(await restoreRes(t, admin, r.token.id), 409, 'SECRETS_CHANGED');
    expect([await dumpSecrets(t.database, r.user.id), await dumpUserKeys(t.database, r.user.id), await dumpToken(t.database, r.token.id)]).toEqual(before);
  });

  it('restore brings back exactly the pre-rotation rows; the old password opens every secret again; a new rotation works after', async () => {
    const vault = { alpha: 'one', beta: 'two 🔐', gamma: '' };
    const u = await newUser(vault);
    const secretsBefore = await dumpSecrets(t.database, u.id);
    const keysBefore = await dump(t.database, `select * from user_keys where user_id = '${u.id}'`);
    const newPassword = strongPassword();
    const r = await rotate(t, admin, u, { newPassword });
    expect(await dumpSecrets(t.database, u.id)).not.toBe(secretsBefore);

    const res = await restoreRes(t, admin, r.token.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toEqual({ status: 'rolled_back', secretsRestored: 3 });
    expect(await dumpSecrets(t.database, u.id)).toBe(secretsBefore);
    const strip = (d: string) => (JSON.parse(d) as Record<string, unknown>[]).map(({ updated_at: _, ...rest }) => rest);
    expect(strip(await dump(t.database, `select * from user_keys where user_id = '${u.id}'`))).toEqual(strip(keysBefore));
    expect(await tokenRow(t.database, r.token.id)).toMatchObject({ status: 'rolled_back' });

    expectError(await api(t.app, r.user).get('/api/secrets'), 401);
    expect(await loginStatus(t.app, u.email, newPassword)).toBe(401);
    const back = await loginAndReadVault(t.app, u);
    expect(back.vault).toEqual(vault);
    expectError(await restoreRes(t, admin, r.token.id), 409, 'INVALID_STATE');

    const again = await rotate(t, admin, back.user);
    expect(again.result).toMatchObject({ keyVersion: 2, secretsReencrypted: 3 });
    expect(await readVault(t.app, again.user)).toEqual(vault);
  });

  // ------------------------------------------------------------------------------- maintenance
  const maintenance = async (kind: 'cleanup' | 'recover') => {
    const res = await api(t.app, admin).post(`/admin/api/maintenance/${kind}`);
    expect(res.statusCode, res.body).toBe(200);
    return json<MaintenanceRun>(res);
  };

  it('cleanup expires overdue tokens and purges ended sessions; a second run reports 0 changes', async () => {
    const u = await newUser();
    const tok = await requestRotation(t, u);
    await approveRotation(t, admin, tok.id);
    clock.offsetMs = (t.config.TOKEN_TTL_SECONDS + 1) * 1000;
    const auditCount = await countRows(t.database, 'audit_events');
    const first = await maintenance('cleanup');
    expect(first.changes.tokensExpired).toBeGreaterThanOrEqual(1);
    expect(first.changes.sessionsPurged).toBeGreaterThan(0);
    expect((await tokenRow(t.database, tok.id))?.status).toBe('expired');
    const second = await maintenance('cleanup');
    expect(Object.values(second.changes).every((n) => n === 0)).toBe(true);
    expect(Object.keys(second.changes).sort()).toEqual(Object.keys(first.changes).sort());
    // Never deletes audit records (it adds its own).
    expect(await countRows(t.database, 'audit_events')).toBeGreaterThan(auditCount);
    // Status reports the last full verify's verdict (it never walks the chain itself).
    expect((await api(t.app, admin).get('/admin/api/audit/verify')).statusCode).toBe(200);
    const status = json<SystemStatus>(await api(t.app, admin).get('/admin/api/rotation_status'));
    expect(status).toMatchObject({ overdueExpiries: 0, staleLocks: 0, audit: { ok: true, verdict: 'ok', appendedSince: 0 } });
    expect(status.lastCleanup?.changes).toEqual(second.changes);
  });

  it('recover settles a token left in_progress with a stale lock as failed/INTERRUPTED; a second run changes nothing; the stalled executor cannot commit', async () => {
    const vault = { x: '1', y: '2' };
    const u = await newUser(vault);
    const tok = await requestRotation(t, u);
    const { tempPassword } = await approveRotation(t, admin, tok.id);
    const pause = faults.pauseAt(tok.id, 'afterClaim');
    const running = executeRes(t, u, { tokenId: tok.id, tempPassword, newPassword: strongPassword() });
    try {
      await pause.reached;
      expect((await tokenRow(t.database, tok.id))?.status).toBe('in_progress');
      // A fresh lock is left alone.
      expect((await maintenance('recover')).changes.settled).toBe(0);
      expect((await tokenRow(t.database, tok.id))?.status).toBe('in_progress');
      await runSql(t.database, `update rotation_tokens set locked_at = locked_at - ${t.config.LOCK_TIMEOUT_SECONDS + 5} * interval '1 second' where id = '${tok.id}'`);
      const status = json<SystemStatus>(await api(t.app, admin).get('/admin/api/rotation_status'));
      expect(status.staleLocks).toBe(1);

      const run = await maintenance('recover');
      expect(run.changes).toMatchObject({ settled: 1, failed: 1 });
      expect(run.settled).toEqual([{ tokenId: tok.id, to: 'failed', reason: expect.any(String) }]);
      expect(await tokenRow(t.database, tok.id)).toMatchObject({ status: 'failed', failure_reason: 'INTERRUPTED' });
      expect((await maintenance('recover')).changes).toMatchObject({ settled: 0, failed: 0 });

      pause.release();
      expectError(await running, 409);
      expect(await tokenRow(t.database, tok.id)).toMatchObject({ status: 'failed', failure_reason: 'INTERRUPTED' });
      expect(await keyVersion(t.database, u.id)).toBe(1);
      expect(await countRows(t.database, 'rotation_backups', `token_id = '${tok.id}'`)).toBe(0);
      expect(await countRows(t.database, 'rotation_backup_chunks', `token_id = '${tok.id}'`)).toBe(0);
      expect((await loginAndReadVault(t.app, u)).vault).toEqual(vault);
      expect((await auditFor(t.database, `rotation:${tok.id}`)).filter((e) => e.action === 'rotation.recovered')).toHaveLength(1);
      // The user can ask again.
      expect((await api(t.app, u).post('/api/request_key_rotation', { reason: 'after recovery' })).statusCode).toBe(201);
    } finally {
      pause.release();
      await running.catch(() => {});
    }
  });
});
