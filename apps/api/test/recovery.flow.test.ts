/**
 * Account recovery through the escrow (issue 11 §2; modules/recovery/README.md): request →
 * another admin approves (fingerprint, confirmation, fresh password) → the requester completes
 * with the new password → every secret re-encrypted under a new DEK, old password and sessions
 * dead, the user told; and the request's other endings (reject, expiry, supersede, revoke).
 */
import type { RecoveryList, RecoveryNoticeList, RotationList } from '@keyturn/shared';
import { recoveryFingerprint } from '@keyturn/shared/crypto';
import { expect, it } from 'vitest';
import { api, countRows, createSecret, describeBoth, expectError, json, login, queryRows, registerUser, setupAdmin, strongPassword, type TestUser, uniqueEmail, useTestApp } from './harness';
import {
  addAdmin,
  approveRecovery,
  approveRecoveryRes,
  completeRecoveryRes,
  recoveryView,
  rejectRecoveryRes,
  requestRecovery,
  requestRecoveryRes,
} from './recovery.helpers';
import {
  approveRotation,
  auditFor,
  dumpSecrets,
  finalizeRes,
  keyVersion,
  loginAndReadVault,
  loginStatus,
  readVault,
  requestRotation,
  restoreRes,
  rotate,
  runSql,
  usersWithoutEscrow,
} from './rotation.helpers';

describeBoth('account recovery', (backend) => {
  const t = useTestApp(backend);
  let admin: TestUser;
  let admin2: TestUser;

  it('happy path: secrets byte-identical in plaintext, new DEK and key version, old password and every session dead, the user told', async () => {
    admin = await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const values: Record<string, string> = { 'prod db': `pg-${strongPassword()}`, 'multi line': 'a\nb\n  ünïcødé ✓ 🔑  ' };
    for (let i = 0; i < 5; i++) values[`bulk ${i}`] = strongPassword().repeat(i + 1);
    for (const [name, value] of Object.entries(values)) await createSecret(t.app, user, { name, value });
    const other = await login(t.app, user.email, user.password);
    const ciphertextsBefore = await dumpSecrets(t.database, user.id);
    const [kcvBefore] = await queryRows<{ dek_kcv: unknown }>(t.database, `select dek_kcv from user_keys where user_id = '${user.id}'`);

    // 1. Request, from a browser with a user agent.
    const newPassword = strongPassword();
    const reqRes = await requestRecoveryRes(t.app, user.email, newPassword, { 'user-agent': 'Mozilla/5.0 (Recovery test)' });
    expect(reqRes.statusCode, reqRes.body).toBe(202);
    expect(reqRes.headers['cache-control']).toBe('no-store');
    const req = json<{ requestId: string; fingerprint: string; expiresAt: string }>(reqRes);
    expect(Object.keys(req).sort()).toEqual(['expiresAt', 'fingerprint', 'requestId']);
    expect(req.fingerprint.split('-')).toHaveLength(5);

    // The row holds a public key, never the password; the fingerprint binds it.
    const [row] = await queryRows<{ public_key: Uint8Array; status: string; requester_user_agent: string; requester_address: string }>(
      t.database,
      `select * from recovery_requests where id = '${req.requestId}'`,
    );
    expect(row!.status).toBe('pending');
    expect(recoveryFingerprint(req.requestId, Buffer.from(row!.public_key))).toBe(req.fingerprint);

    // 2. The admin sees who, when, from where, and the same fingerprint.
    const view = await recoveryView(t.app, admin, req.requestId);
    expect(view).toMatchObject({
      kind: 'recovery',
      userEmail: user.email,
      userRole: 'user',
      status: 'pending',
      fingerprint: req.fingerprint,
      requesterUserAgent: 'Mozilla/5.0 (Recovery test)',
      requesterAddress: '127.0.0.1',
      attemptsLeft: 5,
      rotationTokenId: null,
    });
    // Before approval, completion answers the generic refusal.
    expectError(await completeRecoveryRes(t.app, req.requestId, newPassword), 409, 'INVALID_STATE');

    // 3. Approve: fresh password and the explicit confirmation.
    expectError(await api(t.app, admin).post(`/admin/api/recovery_requests/${req.requestId}/approve`, { adminPassword: admin.password }), 400, 'VALIDATION_FAILED');
    expectError(await api(t.app, admin).post(`/admin/api/recovery_requests/${req.requestId}/approve`, { adminPassword: admin.password, confirmedWithUser: false }), 400, 'VALIDATION_FAILED');
    expectError(await approveRecoveryRes(t.app, admin, req.requestId, `wrong-${admin.password}`), 401, 'ADMIN_REAUTH_FAILED');
    const approved = await approveRecovery(t.app, admin, req.requestId);
    expect(approved).toMatchObject({ status: 'approved', fingerprint: req.fingerprint });
    const [sealed] = await queryRows<{ sealed_dek: unknown; sealed_amk: unknown; escrow_source: string }>(t.database, `select * from recovery_requests where id = '${req.requestId}'`);
    expect(sealed!.sealed_dek).not.toBeNull();
    expect(sealed!.sealed_amk).toBeNull(); // a user's recovery carries no AMK
    expect(sealed!.escrow_source).toBe('pending');

    // 4. The user (still signed in elsewhere) is told at once.
    const notices = json<RecoveryNoticeList>(await api(t.app, other).get('/api/recovery/notices'));
    expect(notices.items).toEqual([expect.objectContaining({ requestId: req.requestId, status: 'approved', openedBy: admin.email })]);

    // 5. Complete with the new password.
    const done = await completeRecoveryRes(t.app, req.requestId, newPassword);
    expect(done.statusCode, done.body).toBe(200);
    expect(json(done)).toEqual({ status: 'completed', keyVersion: 2, secretsReencrypted: Object.keys(values).length, sessionsRevoked: 2 });

    // Every secret re-encrypted (new ciphertexts, new DEK), same plaintexts; the old password is dead.
    expect(await dumpSecrets(t.database, user.id)).not.toBe(ciphertextsBefore);
    const [kcvAfter] = await queryRows<{ dek_kcv: unknown }>(t.database, `select dek_kcv from user_keys where user_id = '${user.id}'`);
    expect(kcvAfter!.dek_kcv).not.toEqual(kcvBefore!.dek_kcv);
    expect(await keyVersion(t.database, user.id)).toBe(2);
    expect(await loginStatus(t.app, user.email, user.password)).toBe(401);
    expectError(await api(t.app, user).get('/api/secrets'), 401);
    expectError(await api(t.app, other).get('/api/secrets'), 401);
    const { user: recovered, vault } = await loginAndReadVault(t.app, { ...user, password: newPassword }, newPassword);
    expect(vault).toEqual(values);
    expect(await usersWithoutEscrow(t.database)).toBe(0);

    // The notice stays until acknowledged, then goes; the request is completed.
    const after = json<RecoveryNoticeList>(await api(t.app, recovered).get('/api/recovery/notices'));
    expect(after.items).toEqual([expect.objectContaining({ requestId: req.requestId, status: 'completed', completedAt: expect.any(String) })]);
    expect((await api(t.app, recovered).post(`/api/recovery/notices/${req.requestId}/ack`)).statusCode).toBe(200);
    expect(json<RecoveryNoticeList>(await api(t.app, recovered).get('/api/recovery/notices')).items).toEqual([]);
    expectError(await api(t.app, recovered).post(`/api/recovery/notices/${req.requestId}/ack`), 404, 'NOT_FOUND');
    const sealedAfter = await queryRows<{ sealed_dek: unknown; status: string; rotation_token_id: string }>(t.database, `select * from recovery_requests where id = '${req.requestId}'`);
    expect(sealedAfter[0]).toMatchObject({ status: 'completed', sealed_dek: null });

    // 6. The recovery's rotation: kind recovery, completed, no backup kept, not restorable, finalizable.
    const tokenId = sealedAfter[0]!.rotation_token_id;
    const list = json<RotationList>(await api(t.app, admin).get('/admin/api/rotation_requests?status=completed'));
    expect(list.items.find((x) => x.id === tokenId)).toMatchObject({ kind: 'recovery', userEmail: user.email, fromKeyVersion: 1, toKeyVersion: 2 });
    const byKind = json<RotationList>(await api(t.app, admin).get('/admin/api/rotation_requests?kind=recovery'));
    expect(byKind.items.map((x) => x.id)).toEqual([tokenId]);
    expect(json<RotationList>(await api(t.app, admin).get('/admin/api/rotation_requests?kind=rotation')).items.some((x) => x.id === tokenId)).toBe(false);
    expectError(await api(t.app, admin).get('/admin/api/rotation_requests?kind=other'), 400, 'VALIDATION_FAILED');
    expect(await countRows(t.database, 'rotation_backups', `token_id = '${tokenId}'`)).toBe(0);
    expect(await countRows(t.database, 'rotation_backup_chunks', `token_id = '${tokenId}'`)).toBe(0);
    expect(expectError(await restoreRes(t, admin, tokenId), 409, 'INVALID_STATE').details).toMatchObject({ reason: 'RECOVERY_ROTATION' });
    expect((await finalizeRes(t, admin, tokenId)).statusCode).toBe(200);
    expect(await readVault(t.app, recovered)).toEqual(values);

    // 7. Every step in the audit trail, replay refused and audited.
    expectError(await completeRecoveryRes(t.app, req.requestId, newPassword), 409, 'INVALID_STATE');
    const trail = (await auditFor(t.database, `recovery:${req.requestId}`)).map((e) => `${e.action}:${e.outcome}`);
    expect(trail).toEqual([
      'recovery.requested:success',
      'recovery.denied:denied', // completion before approval
      'recovery.approved:success',
      'recovery.completed:success',
      'recovery.notice_acknowledged:success',
      'recovery.denied:denied', // the replay
    ]);
    const opened = await auditFor(t.database, `user:${user.id}`);
    expect(opened.find((e) => e.action === 'recovery.escrow_opened')).toMatchObject({ outcome: 'success', actor_id: admin.id });
  });

  it('an admin cannot approve the recovery of their own account; another admin can, and the recovered admin keeps their AMK share', async () => {
    admin ??= await setupAdmin(t.app);
    const email2 = uniqueEmail('admin2');
    const pw2 = strongPassword();
    await addAdmin(t.app, admin, email2, pw2);
    admin2 = await login(t.app, email2, pw2);
    await createSecret(t.app, admin2, { name: 'admin secret', value: 'only mine' });

    const newPassword = strongPassword();
    const req = await requestRecovery(t.app, admin2.email, newPassword);
    expectError(await approveRecoveryRes(t.app, admin2, req.requestId), 403, 'SELF_APPROVAL_FORBIDDEN');
    const approved = await approveRecovery(t.app, admin, req.requestId);
    expect(approved.status).toBe('approved');
    const [row] = await queryRows<{ sealed_amk: unknown }>(t.database, `select sealed_amk from recovery_requests where id = '${req.requestId}'`);
    expect(row!.sealed_amk).not.toBeNull();
    expect((await completeRecoveryRes(t.app, req.requestId, newPassword)).statusCode).toBe(200);

    // The recovered admin signs in with the new password and can still open the AMK (approve + finalize).
    const recovered = await login(t.app, admin2.email, newPassword);
    expect(await readVault(t.app, recovered)).toEqual({ 'admin secret': 'only mine' });
    const user = await registerUser(t.app);
    const token = await requestRotation(t, user);
    await approveRotation(t, { ...recovered, password: newPassword }, token.id);
    admin2 = { ...recovered, password: newPassword };
    const r = await rotate(t, admin2, await registerUser(t.app));
    expect((await finalizeRes(t, admin2, r.token.id)).statusCode).toBe(200);
    const denied = (await auditFor(t.database, `recovery:${req.requestId}`)).find((e) => e.action === 'recovery.approved' && e.outcome === 'denied');
    expect(denied?.details).toMatchObject({ reason: 'self_approval' });
  });

  it('a finalized account is recovered from its final escrow copy', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    await createSecret(t.app, user, { name: 'n', value: 'v' });
    const r = await rotate(t, admin, user);
    expect((await finalizeRes(t, admin, r.token.id)).statusCode).toBe(200);
    const pw = strongPassword();
    const req = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, req.requestId);
    const [row] = await queryRows<{ escrow_source: string }>(t.database, `select escrow_source from recovery_requests where id = '${req.requestId}'`);
    expect(row!.escrow_source).toBe('final');
    expect((await completeRecoveryRes(t.app, req.requestId, pw)).statusCode).toBe(200);
    expect((await loginAndReadVault(t.app, user, pw)).vault).toEqual({ n: 'v' });
    expect(await keyVersion(t.database, user.id)).toBe(3);
  });

  it('reject ends a pending or an approved request (sealed copy dropped); completion then refuses', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const pw = strongPassword();
    const a = await requestRecovery(t.app, user.email, pw);
    expect((await rejectRecoveryRes(t.app, admin, a.requestId)).statusCode).toBe(200);
    expectError(await completeRecoveryRes(t.app, a.requestId, pw), 409, 'INVALID_STATE');
    expectError(await rejectRecoveryRes(t.app, admin, a.requestId), 409, 'INVALID_STATE');

    const b = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, b.requestId);
    const rejected = await rejectRecoveryRes(t.app, admin, b.requestId, 'the user says they did not ask');
    expect(rejected.statusCode, rejected.body).toBe(200);
    expect(json(rejected)).toMatchObject({ status: 'rejected', decisionNote: 'the user says they did not ask' });
    const [row] = await queryRows<{ sealed_dek: unknown }>(t.database, `select sealed_dek from recovery_requests where id = '${b.requestId}'`);
    expect(row!.sealed_dek).toBeNull();
    expectError(await completeRecoveryRes(t.app, b.requestId, pw), 409, 'INVALID_STATE');
    expect(await loginStatus(t.app, user.email, user.password)).toBe(200);
  });

  it('a new request supersedes a pending one, never an approved one; the owner can cancel either', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const a = await requestRecovery(t.app, user.email, strongPassword());
    const b = await requestRecovery(t.app, user.email, strongPassword());
    const statuses = async () =>
      (await queryRows<{ id: string; status: string }>(t.database, `select id, status from recovery_requests where user_id = '${user.id}' order by created_at`)).map((r) => [r.id, r.status]);
    expect(await statuses()).toEqual([
      [a.requestId, 'superseded'],
      [b.requestId, 'pending'],
    ]);
    expectError(await approveRecoveryRes(t.app, admin, a.requestId), 409, 'INVALID_STATE');
    await approveRecovery(t.app, admin, b.requestId);
    // An anonymous request cannot wipe an approval: same 202, nothing stored, audited as denied.
    const c = await requestRecovery(t.app, user.email, strongPassword());
    expect(await statuses()).toEqual([
      [a.requestId, 'superseded'],
      [b.requestId, 'approved'],
    ]);
    expect((await auditFor(t.database, `recovery:${c.requestId}`)).map((e) => [e.action, e.outcome, e.details.reason])).toEqual([['recovery.requested', 'denied', 'approved_request_open']]);

    // The owner sees the approval and cancels it ("this wasn't me"); another user cannot.
    const stranger = await registerUser(t.app);
    expectError(await api(t.app, stranger).post(`/api/recovery/requests/${b.requestId}/cancel`), 404, 'NOT_FOUND');
    const notices = json<RecoveryNoticeList>(await api(t.app, user).get('/api/recovery/notices')).items;
    expect(notices.find((n) => n.requestId === b.requestId)).toMatchObject({ status: 'approved', cancellable: true, openedBy: admin.email });
    expect((await api(t.app, user).post(`/api/recovery/requests/${b.requestId}/cancel`)).statusCode).toBe(200);
    const [row] = await queryRows<{ status: string; sealed_dek: unknown }>(t.database, `select status, sealed_dek from recovery_requests where id = '${b.requestId}'`);
    expect(row).toMatchObject({ status: 'cancelled', sealed_dek: null });
    expectError(await api(t.app, user).post(`/api/recovery/requests/${b.requestId}/cancel`), 409, 'INVALID_STATE');
    // A pending request is shown to the owner too, with where it came from.
    const d = await requestRecovery(t.app, user.email, strongPassword());
    const pending = json<RecoveryNoticeList>(await api(t.app, user).get('/api/recovery/notices')).items.find((n) => n.requestId === d.requestId);
    expect(pending).toMatchObject({ status: 'pending', openedAt: null, openedBy: null, requesterAddress: '127.0.0.1', cancellable: true });
  });

  it('a password change ends the account’s open recovery request and drops every old rotation backup', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    await createSecret(t.app, user, { name: 'n', value: 'v' });
    const r = await rotate(t, admin, user);
    expect(await countRows(t.database, 'rotation_backups', `user_id = '${user.id}'`)).toBeGreaterThan(0);
    const req = await requestRecovery(t.app, user.email, strongPassword());
    await approveRecovery(t.app, admin, req.requestId);
    const res = await api(t.app, r.user).post('/api/auth/change_password', { currentPassword: r.user.password, newPassword: strongPassword() });
    expect(res.statusCode, res.body).toBe(200);
    const [row] = await queryRows<{ status: string; sealed_dek: unknown; decision_note: string }>(t.database, `select * from recovery_requests where id = '${req.requestId}'`);
    expect(row).toMatchObject({ status: 'superseded', sealed_dek: null, decision_note: 'the account password was changed' });
    expect(await countRows(t.database, 'rotation_backups', `user_id = '${user.id}'`)).toBe(0);
    expect(await countRows(t.database, 'rotation_backup_chunks', `user_id = '${user.id}'`)).toBe(0);
  });

  it('expiry: an overdue pending request cannot be approved (410), an overdue approved one cannot be completed (410), cleanup expires the rest', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const pw = strongPassword();
    const a = await requestRecovery(t.app, user.email, pw);
    await runSql(t.database, `update recovery_requests set expires_at = now() - interval '1 second' where id = '${a.requestId}'`);
    expectError(await approveRecoveryRes(t.app, admin, a.requestId), 410, 'TOKEN_EXPIRED');
    expect((await recoveryView(t.app, admin, a.requestId)).status).toBe('expired');

    const b = await requestRecovery(t.app, user.email, pw);
    const approved = await approveRecovery(t.app, admin, b.requestId);
    // Approval restarts the clock: RECOVERY_TTL_SECONDS (24 h by default) from now.
    expect(new Date(approved.expiresAt).getTime() - Date.now()).toBeGreaterThan(23 * 3600 * 1000);
    await runSql(t.database, `update recovery_requests set expires_at = now() - interval '1 second' where id = '${b.requestId}'`);
    expectError(await completeRecoveryRes(t.app, b.requestId, pw), 410, 'TOKEN_EXPIRED');
    const [row] = await queryRows<{ status: string; sealed_dek: unknown }>(t.database, `select status, sealed_dek from recovery_requests where id = '${b.requestId}'`);
    expect(row).toMatchObject({ status: 'expired', sealed_dek: null });

    const c = await requestRecovery(t.app, user.email, pw);
    await runSql(t.database, `update recovery_requests set expires_at = now() - interval '1 second' where id = '${c.requestId}'`);
    const cleanup = await api(t.app, admin).post('/admin/api/maintenance/cleanup');
    expect(cleanup.statusCode, cleanup.body).toBe(200);
    expect(JSON.stringify(json(cleanup))).toContain('"recoveriesExpired":1');
    expect((await recoveryView(t.app, admin, c.requestId)).status).toBe('expired');
    expect(await loginStatus(t.app, user.email, user.password)).toBe(200);
  });

  it('the admin list filters by status and shows the timeline', async () => {
    admin ??= await setupAdmin(t.app);
    const res = await api(t.app, admin).get('/admin/api/recovery_requests?status=completed');
    expect(res.statusCode).toBe(200);
    const items = json<RecoveryList>(res).items;
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((i) => i.status === 'completed')).toBe(true);
    expect(items[0]!.timeline.map((e) => e.status)).toEqual(['pending', 'approved', 'completed']);
    expectError(await api(t.app, admin).get('/admin/api/recovery_requests?status=bogus'), 400, 'VALIDATION_FAILED');
    const user = await registerUser(t.app);
    expectError(await api(t.app, user).get('/admin/api/recovery_requests'), 403, 'FORBIDDEN');
    expectError(await api(t.app, user).post(`/admin/api/recovery_requests/${items[0]!.id}/approve`, { adminPassword: user.password, confirmedWithUser: true }), 403, 'FORBIDDEN');
  });
});
