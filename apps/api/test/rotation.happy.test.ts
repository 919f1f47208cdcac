/**
 * The seed's flow end to end (issue 3 "Done when"): register → secrets → request → admin list →
 * approve (temp password once) → execute with a new password → old session dead, new session
 * reads every secret at the new key version → finalize the A-DEK. Asserts HTTP answers and rows.
 */
import type { RotateResult, RotationList, RotationToken, SystemStatus } from '@keyturn/shared';
import { expect, it } from 'vitest';
import { api, countRows, createSecret, describeBoth, expectError, json, queryRows, registerUser, setupAdmin, strongPassword, type TestUser, useTestApp } from './harness';
import {
  approveRotation,
  auditFor,
  dump,
  dumpSecrets,
  executeRes,
  keyVersion,
  loginAndReadVault,
  loginStatus,
  readVault,
  requestRotation,
  rotate,
  tokenRow,
  usersWithoutEscrow,
} from './rotation.helpers';

describeBoth('rotation happy path', (backend) => {
  const t = useTestApp(backend);
  let admin: TestUser;
  let user: TestUser;
  let token: RotationToken;
  let tempPassword: string;
  const values: Record<string, string> = {};
  let secretsBefore: string;
  let result: RotateResult;
  const newPassword = strongPassword();
  let originalPassword: string;

  it('a user with a few secrets asks for a rotation and gets a pending request with a fingerprint', async () => {
    admin = await setupAdmin(t.app);
    user = await registerUser(t.app);
    originalPassword = user.password;
    for (let i = 0; i < 5; i++) {
      values[`name-${i}`] = `value-${i}-${strongPassword()}`;
      await createSecret(t.app, user, { name: `name-${i}`, value: values[`name-${i}`]! });
    }
    secretsBefore = await dumpSecrets(t.database, user.id);
    token = await requestRotation(t, user, 'laptop lost');
    expect(token).toMatchObject({ status: 'pending', userId: user.id, userEmail: user.email, reason: 'laptop lost', fromKeyVersion: 1, toKeyVersion: null, expiresAt: null });
    expect(token.fingerprint).toMatch(/^[a-z]+(-[a-z]+){3}$/);
    expect(token.timeline.map((e) => e.status)).toEqual(['pending']);
    // One open request per user.
    expectError(await api(t.app, user).post('/api/request_key_rotation', { reason: 'again' }), 409, 'OPEN_REQUEST_EXISTS');
  });

  it('the admin sees it in the pending list with the same fingerprint, and approves with a fresh password', async () => {
    const list = await api(t.app, admin).get('/admin/api/rotation_requests?status=pending');
    expect(list.statusCode, list.body).toBe(200);
    const items = json<RotationList>(list).items;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ id: token.id, userEmail: user.email, fingerprint: token.fingerprint });
    expect(json<RotationList>(await api(t.app, admin).get('/admin/api/rotation_requests?status=approved')).items).toHaveLength(0);

    const approval = await approveRotation(t, admin, token.id);
    tempPassword = approval.tempPassword;
    // 160 bits as 32 Crockford base32 characters in groups of four.
    expect(tempPassword).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){7}$/);
    expect(approval).toMatchObject({ status: 'approved', fingerprint: token.fingerprint, selfApproved: false });
    const row = await tokenRow(t.database, token.id);
    expect(row?.status).toBe('approved');
    expect(Buffer.from(row!.temp_hash!).toString('utf8')).not.toContain(tempPassword);
    expect(new Date(approval.expiresAt).getTime()).toBeGreaterThan(Date.now() + (t.config.TOKEN_TTL_SECONDS - 120) * 1000);
  });

  it('the user sees the approval in their own list (never the temporary password)', async () => {
    const res = await api(t.app, user).get('/api/rotation_requests');
    expect(res.statusCode).toBe(200);
    const mine = json<RotationList>(res).items;
    expect(mine.map((x) => [x.id, x.status])).toEqual([[token.id, 'approved']]);
    expect(mine[0]!.timeline.map((e) => e.status)).toEqual(['pending', 'approved']);
    expect(mine[0]!.timeline[1]!.by).toBe(admin.email);
    expect(res.body).not.toContain(tempPassword);
  });

  it('executes: every secret re-encrypted under key version 2, sessions revoked, a new session returned', async () => {
    const otherSession = await loginAndReadVault(t.app, user);
    const live = await countRows(t.database, 'sessions', `user_id = '${user.id}' and revoked_at is null`);
    const res = await executeRes(t, user, { tokenId: token.id, tempPassword, newPassword });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    result = json<RotateResult>(res);
    expect(result).toMatchObject({ status: 'completed', keyVersion: 2, secretsReencrypted: 5 });
    // The other sessions: every live one but the caller's, which the new session replaces.
    expect(result.sessionsRevoked).toBe(live - 1);
    expect(result.sessionsRevoked).toBeGreaterThanOrEqual(1);

    // Rows: every secret at version 2 with new ciphertext, the same ids; a backup of the old rows.
    const rows = await dumpSecrets(t.database, user.id);
    expect(rows).not.toBe(secretsBefore);
    const versions = await dump(t.database, `select distinct key_version from secrets where user_id = '${user.id}'`);
    expect(JSON.parse(versions)).toEqual([{ key_version: 2 }]);
    expect(await keyVersion(t.database, user.id)).toBe(2);
    // The backup: the key row snapshot, and the five old rows packed in one chunk (one batch).
    expect(await countRows(t.database, 'rotation_backups', `token_id = '${token.id}' and secret_id is null`)).toBe(1);
    expect(await countRows(t.database, 'rotation_backups', `token_id = '${token.id}' and secret_id is not null`)).toBe(0);
    expect(await queryRows(t.database, `select chunk, row_count from rotation_backup_chunks where token_id = '${token.id}'`)).toEqual([{ chunk: 0, row_count: 5 }]);
    const row = await tokenRow(t.database, token.id);
    expect(row).toMatchObject({ status: 'completed', to_key_version: 2, secrets_reencrypted: 5, temp_hash: null });

    // Old sessions are dead; the new one reads every secret.
    expectError(await api(t.app, user).get('/api/secrets'), 401);
    expectError(await api(t.app, otherSession.user).get('/api/secrets'), 401);
    const next = { ...user, token: result.session.token, password: newPassword };
    expect(await readVault(t.app, next)).toEqual(values);
    user = next;
  });

  it('only the new password signs in now, and it opens every secret', async () => {
    expect(await loginStatus(t.app, user.email, user.password)).toBe(200);
    expectError(await api(t.app).post('/api/auth/login', { email: user.email, password: originalPassword }), 401, 'INVALID_CREDENTIALS');
    expect((await loginAndReadVault(t.app, user)).vault).toEqual(values);
  });

  it('the admin sees it awaiting finalization, finalizes the A-DEK, and the escrow becomes final', async () => {
    const status = json<SystemStatus>(await api(t.app, admin).get('/admin/api/rotation_status'));
    expect(status.awaitingFinalization).toBe(1);
    expect(status.counts.completed).toBe(1);

    const before = await dump(t.database, `select adek_pending is not null as p, adek_final is not null as f from user_keys where user_id = '${user.id}'`);
    expect(JSON.parse(before)).toEqual([{ p: true, f: false }]);
    const res = await api(t.app, admin).post(`/admin/api/finalize_a_dek/${token.id}`, { adminPassword: admin.password });
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toEqual({ status: 'finalized' });
    const after = await dump(t.database, `select adek_pending is not null as p, adek_final is not null as f from user_keys where user_id = '${user.id}'`);
    expect(JSON.parse(after)).toEqual([{ p: false, f: true }]);
    expect((await tokenRow(t.database, token.id))?.status).toBe('finalized');
    expect(await usersWithoutEscrow(t.database)).toBe(0);

    const mine = json<RotationList>(await api(t.app, user).get('/api/rotation_requests')).items[0]!;
    expect(mine.timeline.map((e) => e.status)).toEqual(['pending', 'approved', 'in_progress', 'completed', 'finalized']);
  });

  it('a second rotation without a new password keeps the password, with a new salt and key version 3', async () => {
    const saltBefore = await dump(t.database, `select kdf_salt, wrapped_dek from user_keys where user_id = '${user.id}'`);
    const r = await rotate(t, admin, user);
    expect(r.result).toMatchObject({ status: 'completed', keyVersion: 3, secretsReencrypted: 5 });
    const saltAfter = await dump(t.database, `select kdf_salt, wrapped_dek from user_keys where user_id = '${user.id}'`);
    const [b] = JSON.parse(saltBefore) as { kdf_salt: string; wrapped_dek: string }[];
    const [a] = JSON.parse(saltAfter) as { kdf_salt: string; wrapped_dek: string }[];
    expect(a!.kdf_salt).not.toBe(b!.kdf_salt);
    expect(a!.wrapped_dek).not.toBe(b!.wrapped_dek);
    expect((await loginAndReadVault(t.app, r.user)).vault).toEqual(values);
    user = r.user;
  });

  it('the admin list filters by status and pages without gaps or repeats (newest first)', async () => {
    const opened: string[] = [];
    for (let i = 0; i < 5; i++) opened.push((await requestRotation(t, await registerUser(t.app), `reason ${i}`)).id);
    const seen: string[] = [];
    for (let offset = 0; offset < 6; offset += 2) {
      const res = await api(t.app, admin).get(`/admin/api/rotation_requests?status=pending&limit=2&offset=${offset}`);
      expect(res.statusCode, res.body).toBe(200);
      const page = json<RotationList>(res);
      expect(page.total).toBe(5);
      expect(page.items.every((x) => x.status === 'pending')).toBe(true);
      seen.push(...page.items.map((x) => x.id));
    }
    expect(seen).toEqual([...opened].reverse());
    const all = json<RotationList>(await api(t.app, admin).get('/admin/api/rotation_requests?limit=200'));
    expect(all.total).toBe(7);
    expect(all.items.map((x) => x.status).sort()).toEqual(['completed', 'finalized', 'pending', 'pending', 'pending', 'pending', 'pending']);
    expectError(await api(t.app, admin).get('/admin/api/rotation_requests?status=bogus'), 400, 'VALIDATION_FAILED');
  });

  it('the audit trail holds the whole story for the token and verifies', async () => {
    const actions = (await auditFor(t.database, `rotation:${token.id}`)).map((e) => `${e.action}:${e.outcome}`);
    expect(actions).toEqual([
      'rotation.requested:success',
      'rotation.approved:success',
      'rotation.started:success',
      'rotation.completed:success',
      'rotation.finalized:success',
    ]);
    const v = await api(t.app, admin).get('/admin/api/audit/verify');
    expect(json(v)).toMatchObject({ ok: true, firstBadSeq: null });
  });
});
