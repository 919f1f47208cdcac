/**
 * Faults during a rotation (RELIABILITY E1 in-process, D5, E3, G2). A fault injected at each stage
 * boundary of execute must leave the secrets and the key row byte-identical, the old password
 * working for every secret, and the token `failed` with a reason; a corrupted key row is caught
 * by the DEK check value before anything is touched; and when the audit trail cannot be written
 * the state change it would record does not happen either.
 */
import { afterEach, expect, it } from 'vitest';
import { api, countRows, createSecret, describeBoth, expectError, json, registerUser, setupAdmin, strongPassword, type TestUser, useTestApp } from './harness';
import {
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
  rotate,
  runSql,
  type Stage,
  tokenRow,
} from './rotation.helpers';

const SECRETS = 5;

describeBoth('rotation faults', (backend) => {
  const faults = faultHooks();
  // Batches of 2: five secrets take batches 0, 1 and 2, so a fault can land mid re-encryption.
  const t = useTestApp(backend, { env: { ROTATION_BATCH_SIZE: '2' }, deps: { rotationHooks: faults.hooks } });
  let admin: TestUser;

  /** A user with SECRETS secrets and an approved token. */
  async function victim() {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const vault: Record<string, string> = {};
    for (let i = 0; i < SECRETS; i++) {
      vault[`s${i}`] = `v${i}-${strongPassword()}`;
      await createSecret(t.app, user, { name: `s${i}`, value: vault[`s${i}`]! });
    }
    const token = await requestRotation(t, user);
    const { tempPassword } = await approveRotation(t, admin, token.id);
    return { user, vault, tokenId: token.id, tempPassword };
  }

  const snapshot = async (userId: string) => ({
    secrets: await dumpSecrets(t.database, userId),
    keys: await dumpUserKeys(t.database, userId),
    amkWraps: await dump(t.database, 'select * from amk_wraps order by admin_id'),
    liveSessions: await countRows(t.database, 'sessions', `user_id = '${userId}' and revoked_at is null`),
  });

  // ------------------------------------------------------------------------------- E1
  const points: [Stage, number | undefined][] = [
    ['afterClaim', undefined],
    ['afterLock', undefined],
    ['afterBackup', undefined],
    ['afterBatch', 0],
    ['afterBatch', 1],
    ['beforeCommit', undefined],
  ];

  it.each(points)('E1: a fault at %s %s rolls everything back; the old password opens every secret; the token is failed', async (stage, index) => {
    const v = await victim();
    const before = await snapshot(v.user.id);
    faults.failAt(v.tokenId, stage, index);
    const newPassword = strongPassword();

    const res = await executeRes(t, v.user, { tokenId: v.tokenId, tempPassword: v.tempPassword, newPassword });
    const err = expectError(res, 500, 'INTERNAL');
    expect(err.message).not.toMatch(/injected|fault/);
    // The fault point was really reached for this token (else this test would prove nothing).
    expect(faults.seen.filter((s) => s.tokenId === v.tokenId).map((s) => s.stage)).toContain(stage);
    if (stage === 'afterBatch') expect(faults.seen.some((s) => s.tokenId === v.tokenId && s.index === index)).toBe(true);

    // Byte-identical secrets, key row and AMK shares; no backup left behind; sessions not revoked.
    expect(await snapshot(v.user.id)).toEqual(before);
    expect(await countRows(t.database, 'rotation_backups', `token_id = '${v.tokenId}'`)).toBe(0);
    expect(await countRows(t.database, 'rotation_backup_chunks', `token_id = '${v.tokenId}'`)).toBe(0);
    expect(await keyVersion(t.database, v.user.id)).toBe(1);
    expect(await tokenRow(t.database, v.tokenId)).toMatchObject({ status: 'failed', failure_reason: 'INTERNAL_ERROR', temp_hash: null });

    // The existing session and the old password still open every secret; the new password does not.
    expect(await readVault(t.app, v.user)).toEqual(v.vault);
    expect((await loginAndReadVault(t.app, v.user)).vault).toEqual(v.vault);
    expect(await loginStatus(t.app, v.user.email, newPassword)).toBe(401);

    // G2: the start and the failure are on record, no completion.
    const events = (await auditFor(t.database, `rotation:${v.tokenId}`)).map((e) => `${e.action}:${e.outcome}`);
    expect(events).toEqual(['rotation.requested:success', 'rotation.approved:success', 'rotation.started:success', 'rotation.failed:failure']);
    const [failed] = (await auditFor(t.database, `rotation:${v.tokenId}`)).filter((e) => e.action === 'rotation.failed');
    expect(failed!.details.reason).toBe('INTERNAL_ERROR');

    // Replaying the failed token is refused; a new request proceeds.
    expectError(await executeRes(t, v.user, { tokenId: v.tokenId, tempPassword: v.tempPassword }), 409, 'INVALID_STATE');
    const again = await requestRotation(t, v.user);
    expect((await api(t.app, v.user).post(`/api/rotation_requests/${again.id}/cancel`)).statusCode).toBe(200);
  });

  it('E1: a fault after COMMIT (before the response) leaves a completed rotation: the new password opens every secret', async () => {
    const v = await victim();
    faults.failAt(v.tokenId, 'afterCommit');
    const newPassword = strongPassword();
    expectError(await executeRes(t, v.user, { tokenId: v.tokenId, tempPassword: v.tempPassword, newPassword }), 500, 'INTERNAL');
    expect(await tokenRow(t.database, v.tokenId)).toMatchObject({ status: 'completed', to_key_version: 2, secrets_reencrypted: SECRETS });
    // Five secrets in batches of two: three batches.
    const [done] = (await auditFor(t.database, `rotation:${v.tokenId}`)).filter((e) => e.action === 'rotation.completed');
    expect(done!.details).toMatchObject({ secretsReencrypted: SECRETS, batches: 3, passwordChanged: true });
    expect(await keyVersion(t.database, v.user.id)).toBe(2);
    expect(await loginStatus(t.app, v.user.email, v.user.password)).toBe(401);
    expect((await loginAndReadVault(t.app, v.user, newPassword)).vault).toEqual(v.vault);
    // Exactly one of old and new password unlocks (I3); the old session is gone.
    expectError(await api(t.app, v.user).get('/api/secrets'), 401);
  });

  // ------------------------------------------------------------------------------- D5
  it.each([
    ['dek_kcv', 0],
    ['wrapped_dek', 20],
  ] as const)('D5: a corrupted %s is caught by the check value before anything is touched: 409 KEY_CHECK_FAILED, token failed', async (column, byte) => {
    const v = await victim();
    const original = await dumpUserKeys(t.database, v.user.id);
    await runSql(t.database, `update user_keys set ${column} = set_byte(${column}, ${byte}, get_byte(${column}, ${byte}) # 1) where user_id = '${v.user.id}'`);
    const before = await snapshot(v.user.id);
    expect(before.keys).not.toBe(original);

    expectError(await executeRes(t, v.user, { tokenId: v.tokenId, tempPassword: v.tempPassword }), 409, 'KEY_CHECK_FAILED');
    expect(await snapshot(v.user.id)).toEqual(before);
    expect(await tokenRow(t.database, v.tokenId)).toMatchObject({ status: 'failed', failure_reason: 'KEY_CHECK_FAILED', locked_at: null });
    // Detected before the claim: no stage of the rotation ran, no backup was taken.
    expect(faults.seen.filter((s) => s.tokenId === v.tokenId)).toEqual([]);
    expect(await countRows(t.database, 'rotation_backups', `token_id = '${v.tokenId}'`)).toBe(0);
    expect(await countRows(t.database, 'rotation_backup_chunks', `token_id = '${v.tokenId}'`)).toBe(0);
    const events = (await auditFor(t.database, `rotation:${v.tokenId}`)).map((e) => `${e.action}:${e.outcome}:${e.details.reason ?? ''}`);
    expect(events.at(-1)).toBe('rotation.failed:failure:KEY_CHECK_FAILED');
  });

  // ------------------------------------------------------------------------------- E3
  const TRIGGER = 'kt_test_audit_fail';
  /** A BEFORE INSERT trigger on audit_events that raises (for every action, or only `action`). */
  async function breakAudit(action?: string) {
    const cond = action ? `NEW.action = '${action}'` : 'true';
    await runSql(
      t.database,
      `create or replace function ${TRIGGER}() returns trigger as $$ begin if ${cond} then raise exception 'audit storage unavailable (test)'; end if; return NEW; end $$ language plpgsql`,
    );
    await runSql(t.database, `create trigger ${TRIGGER} before insert on audit_events for each row execute function ${TRIGGER}()`);
  }
  afterEach(async () => {
    await runSql(t.database, `drop trigger if exists ${TRIGGER} on audit_events`);
  });
  /** What a failed audit write answers: the change is refused as temporarily unavailable. */
  const expectAuditFailure = (res: Awaited<ReturnType<typeof executeRes>>) => expectError(res, 503, 'UNAVAILABLE');

  it('E3: approve while the audit trail cannot be written: refused, the token is still pending, no temporary password issued', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const token = await requestRotation(t, user);
    const before = await dumpToken(t.database, token.id);
    const auditCount = await countRows(t.database, 'audit_events');
    await breakAudit();
    expectAuditFailure(await approveRes(t, admin, token.id));
    // The operator's log keeps the underlying cause; the client gets the generic 503.
    expect(t.logs.text()).toContain('audit storage unavailable (test)');
    expect(await dumpToken(t.database, token.id)).toBe(before);
    expect(await countRows(t.database, 'audit_events')).toBe(auditCount);
    await runSql(t.database, `drop trigger ${TRIGGER} on audit_events`);
    expect((await approveRes(t, admin, token.id)).statusCode).toBe(200);
  });

  it('E3: execute while no audit event can be written: the claim is refused, the token stays approved, nothing moves', async () => {
    const v = await victim();
    const before = await snapshot(v.user.id);
    const tokenBefore = await tokenRow(t.database, v.tokenId);
    await breakAudit();
    expectAuditFailure(await executeRes(t, v.user, { tokenId: v.tokenId, tempPassword: v.tempPassword }));
    expect(await snapshot(v.user.id)).toEqual(before);
    expect(await tokenRow(t.database, v.tokenId)).toMatchObject({ status: 'approved', failed_attempts: 0, locked_at: null, temp_hash: tokenBefore!.temp_hash });
    await runSql(t.database, `drop trigger ${TRIGGER} on audit_events`);
    expect((await executeRes(t, v.user, { tokenId: v.tokenId, tempPassword: v.tempPassword })).statusCode).toBe(200);
  });

  it('E3: execute whose completion event cannot be written: the whole rotation rolls back and the token is failed', async () => {
    const v = await victim();
    const before = await snapshot(v.user.id);
    await breakAudit('rotation.completed');
    expectAuditFailure(await executeRes(t, v.user, { tokenId: v.tokenId, tempPassword: v.tempPassword, newPassword: strongPassword() }));
    expect(await snapshot(v.user.id)).toEqual(before);
    expect(await countRows(t.database, 'rotation_backups', `token_id = '${v.tokenId}'`)).toBe(0);
    expect(await countRows(t.database, 'rotation_backup_chunks', `token_id = '${v.tokenId}'`)).toBe(0);
    expect(await tokenRow(t.database, v.tokenId)).toMatchObject({ status: 'failed', failure_reason: 'UNAVAILABLE' });
    expect((await auditFor(t.database, `rotation:${v.tokenId}`)).map((e) => e.action)).not.toContain('rotation.completed');
    expect((await loginAndReadVault(t.app, v.user)).vault).toEqual(v.vault);
  });

  it('E3: finalize while the audit trail cannot be written: refused, the escrow stays pending and the token completed', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const r = await rotate(t, admin, user);
    const keys = await dumpUserKeys(t.database, user.id);
    await breakAudit();
    expectAuditFailure(await finalizeRes(t, admin, r.token.id));
    expect(await dumpUserKeys(t.database, user.id)).toBe(keys);
    expect((await tokenRow(t.database, r.token.id))?.status).toBe('completed');
    await runSql(t.database, `drop trigger ${TRIGGER} on audit_events`);
    expect((await finalizeRes(t, admin, r.token.id)).statusCode).toBe(200);
  });

  it('E3: secret create, update and delete while the audit trail cannot be written: each refused, the vault unchanged', async () => {
    admin ??= await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const s = await createSecret(t.app, user, { name: 'kept', value: 'original' });
    const before = await dumpSecrets(t.database, user.id);
    await breakAudit();
    expectAuditFailure(await api(t.app, user).post('/api/secrets', { name: 'new', value: 'x' }));
    expectAuditFailure(await api(t.app, user).put(`/api/secrets/${s.id}`, { value: 'changed' }));
    expectAuditFailure(await api(t.app, user).delete(`/api/secrets/${s.id}`));
    expect(await dumpSecrets(t.database, user.id)).toBe(before);
    await runSql(t.database, `drop trigger ${TRIGGER} on audit_events`);
    expect(json(await api(t.app, user).get(`/api/secrets/${s.id}`))).toMatchObject({ name: 'kept', value: 'original' });
  });
});
