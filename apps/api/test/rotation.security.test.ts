/**
 * Rotation security (RELIABILITY B1, B5, B6, C6 sequential, C7, C8, C9, D8/G6): IDOR on tokens,
 * admin-only routes and self-approval, fresh admin re-authentication and its throttle, temporary
 * password guessing, binding and secrecy, and a canary grep over every table, log and listing.
 */
import { randomUUID } from 'node:crypto';
import type { RotationList } from '@keyturn/shared';
import { expect, it } from 'vitest';
import {
  api,
  canary,
  countRows,
  createSecret,
  describeBoth,
  dumpAllTables,
  expectError,
  findCanaries,
  json,
  login,
  queryRows,
  registerUser,
  setupAdmin,
  strongPassword,
  type TestUser,
  uniqueEmail,
  useTestApp,
  withoutRequestId,
} from './harness';
import {
  afterRotation,
  approveRes,
  approveRotation,
  auditFor,
  cancelRes,
  dumpAllSecrets,
  dumpToken,
  dumpUserKeys,
  executeRes,
  FAKE_TEMP_PASSWORD,
  finalizeRes,
  keyVersion,
  loginAndReadVault,
  requestRotation,
  restoreRes,
  rotate,
  runSql,
  testClock,
  tokenRow,
} from './rotation.helpers';

describeBoth('rotation security', (backend) => {
  const clock = testClock();
  const t = useTestApp(backend, { deps: { clock } });
  let admin: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  /** Every secret this file plants; the canary test greps for all of them. */
  const planted: string[] = [];
  const tempPasswords: string[] = [];

  const approve = async (tokenId: string, by: TestUser = admin) => {
    const a = await approveRotation(t, by, tokenId);
    tempPasswords.push(a.tempPassword);
    return a;
  };

  it('setup: an admin and two users with canary secrets', async () => {
    admin = await setupAdmin(t.app);
    alice = await registerUser(t.app);
    bob = await registerUser(t.app);
    planted.push(admin.password, alice.password, bob.password);
    for (const u of [alice, bob]) {
      for (let i = 0; i < 2; i++) {
        const value = canary(`value${i}`);
        planted.push(value);
        await createSecret(t.app, u, { name: `secret ${i}`, value });
      }
    }
    expect(await countRows(t.database, 'secrets')).toBe(4);
  });

  // ------------------------------------------------------------------------------- B1
  it('B1: another user’s token answers 404 on cancel and execute (even with the leaked temporary password), like a missing one', async () => {
    const token = await requestRotation(t, alice);
    const { tempPassword } = await approve(token.id);
    const before = await dumpToken(t.database, token.id);
    const auditBefore = (await auditFor(t.database, `rotation:${token.id}`)).length;

    const foreign = [
      await cancelRes(t, bob, token.id),
      await executeRes(t, bob, { tokenId: token.id, tempPassword, currentPassword: bob.password }),
      await executeRes(t, bob, { tokenId: token.id, tempPassword, currentPassword: alice.password }),
    ];
    const missingId = randomUUID();
    const missing = [
      await cancelRes(t, bob, missingId),
      await executeRes(t, bob, { tokenId: missingId, tempPassword, currentPassword: bob.password }),
      await executeRes(t, bob, { tokenId: missingId, tempPassword, currentPassword: alice.password }),
    ];
    for (const [i, res] of foreign.entries()) {
      expectError(res, 404, 'NOT_FOUND');
      // Byte for byte what a token that does not exist answers.
      expect(withoutRequestId(res)).toBe(withoutRequestId(missing[i]!));
    }
    // Alice's token did not move, not even its attempt counter.
    expect(await dumpToken(t.database, token.id)).toBe(before);

    // Bob's own list does not show it; the admin's does.
    const bobs = json<RotationList>(await api(t.app, bob).get('/api/rotation_requests'));
    expect(bobs.items).toEqual([]);
    expect(bobs.total).toBe(0);

    // One denied event per foreign attempt, naming bob.
    const events = (await auditFor(t.database, `rotation:${token.id}`)).slice(auditBefore);
    expect(events.map((e) => [e.action, e.outcome, e.actor_id, e.details.reason])).toEqual([
      ['rotation.cancelled', 'denied', bob.id, 'not_owner'],
      ['rotation.execute', 'denied', bob.id, 'not_owner'],
      ['rotation.execute', 'denied', bob.id, 'not_owner'],
    ]);
    expect((await auditFor(t.database, `rotation:${missingId}`)).map((e) => e.outcome)).toEqual(['denied', 'denied', 'denied']);

    // The token still works for its owner.
    const res = await executeRes(t, alice, { tokenId: token.id, tempPassword });
    alice = afterRotation(alice, res);
  });

  // ------------------------------------------------------------------------------- B5
  async function adminRoutes(): Promise<{ method: string; url: string }[]> {
    const doc = json<{ paths: Record<string, Record<string, unknown>> }>(await api(t.app).get('/openapi.json'));
    const out: { method: string; url: string }[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!path.startsWith('/admin/api/')) continue;
      for (const method of Object.keys(ops)) out.push({ method: method.toUpperCase(), url: path });
    }
    return out;
  }
  /** A body each admin route accepts, so the refusal is about the role and not validation. */
  const validBody = (url: string): unknown => {
    if (/approve_rotation|finalize_a_dek|restore_rotation/.test(url)) return { adminPassword: strongPassword() };
    if (url.includes('reject_rotation') || url.endsWith('/reject')) return { reason: 'nope' };
    if (url.startsWith('/admin/api/recovery_requests/') && url.endsWith('/approve')) return { adminPassword: strongPassword(), confirmedWithUser: true };
    if (url === '/admin/api/admins') return { email: uniqueEmail('escalate'), password: strongPassword(), adminPassword: strongPassword() };
    if (url === '/admin/api/notifications/webhooks') return { url: 'https://example.com/hooks/keyturn' };
    if (url === '/admin/api/notifications/test_email') return {};
    return undefined;
  };

  it('B5: a signed-in non-admin gets 403 on every /admin/api route (taken from the OpenAPI document); no session gets 401', async () => {
    const routes = await adminRoutes();
    // The known surface is all there (a new admin route is picked up automatically).
    for (const must of ['/admin/api/rotation_requests', '/admin/api/approve_rotation/{tokenId}', '/admin/api/reject_rotation/{tokenId}', '/admin/api/finalize_a_dek/{tokenId}', '/admin/api/restore_rotation/{tokenId}', '/admin/api/audit', '/admin/api/audit/verify', '/admin/api/audit/export', '/admin/api/maintenance/cleanup', '/admin/api/maintenance/recover', '/admin/api/rotation_status', '/admin/api/recovery_requests', '/admin/api/recovery_requests/{id}/approve', '/admin/api/recovery_requests/{id}/reject']) {
      expect(routes.map((r) => r.url)).toContain(must);
    }
    const pending = await requestRotation(t, bob);
    const before = await dumpAllTables(t.database).then((d) => d.replace(/-- audit_events[\s\S]*?(?=\n-- )/, ''));
    for (const r of routes) {
      const url = r.url.replace('{tokenId}', pending.id).replace('{id}', pending.id);
      for (const auth of [bob, undefined]) {
        const res = await api(t.app, auth).send(r.method as 'GET', url, validBody(r.url));
        if (auth) expectError(res, 403, 'FORBIDDEN');
        else expectError(res, 401, 'UNAUTHENTICATED');
      }
    }
    expect((await tokenRow(t.database, pending.id))?.status).toBe('pending');
    expect(await dumpAllTables(t.database).then((d) => d.replace(/-- audit_events[\s\S]*?(?=\n-- )/, ''))).toBe(before);
    expect(await countRows(t.database, 'users', `role = 'admin'`)).toBe(1);
    expect((await cancelRes(t, bob, pending.id)).statusCode).toBe(200);
  });

  it('B5: the only admin may approve their own request: allowed and audited as self-approval', async () => {
    const own = await requestRotation(t, admin);
    const a = await approve(own.id);
    expect(a.selfApproved).toBe(true);
    expect(await tokenRow(t.database, own.id)).toMatchObject({ status: 'approved', self_approved: true });
    const [ev] = (await auditFor(t.database, `rotation:${own.id}`)).filter((e) => e.action === 'rotation.approved');
    expect(ev).toMatchObject({ outcome: 'success', actor_id: admin.id, role: 'admin' });
    expect(ev!.details.selfApproved).toBe(true);
    const mine = json<RotationList>(await api(t.app, admin).get('/api/rotation_requests')).items[0]!;
    expect(mine.timeline.find((e) => e.status === 'approved')?.note).toMatch(/self-approved/);
    expect((await cancelRes(t, admin, own.id)).statusCode).toBe(200);
  });

  let admin2: TestUser;
  it('B5: once a second admin exists, self-approval is 403 SELF_APPROVAL_FORBIDDEN (audited denied); the other admin may approve', async () => {
    const email = uniqueEmail('admin2');
    const password = strongPassword();
    planted.push(password);
    const created = await api(t.app, admin).post('/admin/api/admins', { email, password, adminPassword: admin.password });
    expect(created.statusCode, created.body).toBe(201);
    admin2 = await login(t.app, email, password);

    const own = await requestRotation(t, admin);
    const before = await dumpToken(t.database, own.id);
    expectError(await approveRes(t, admin, own.id), 403, 'SELF_APPROVAL_FORBIDDEN');
    expect(await dumpToken(t.database, own.id)).toBe(before);
    const denied = (await auditFor(t.database, `rotation:${own.id}`)).filter((e) => e.outcome === 'denied');
    expect(denied.map((e) => [e.action, e.actor_id, e.details.reason])).toEqual([['rotation.approved', admin.id, 'self_approval']]);

    const a = await approve(own.id, admin2);
    expect(a.selfApproved).toBe(false);
    expect((await cancelRes(t, admin, own.id)).statusCode).toBe(200);

    // Only an *active* second admin forbids it: with admin2 disabled, self-approval is allowed again.
    await runSql(t.database, `update users set disabled = true where id = '${admin2.id}'`);
    try {
      const again = await requestRotation(t, admin);
      expect((await approve(again.id)).selfApproved).toBe(true);
      expect((await cancelRes(t, admin, again.id)).statusCode).toBe(200);
    } finally {
      await runSql(t.database, `update users set disabled = false where id = '${admin2.id}'`);
    }
  });

  // ------------------------------------------------------------------------------- B6
  it('B6: a wrong or other admin’s password is 401 on approve, finalize and restore; a missing one 400; nothing changes', async () => {
    const pending = await requestRotation(t, bob);
    const done = await rotate(t, admin, alice);
    tempPasswords.push(done.approval.tempPassword);
    alice = done.user;
    const snap = async () => [await dumpToken(t.database, pending.id), await dumpToken(t.database, done.token.id), await dumpUserKeys(t.database, alice.id), await dumpAllSecrets(t.database)].join('\n');
    const before = await snap();
    const wrong = strongPassword();
    expectError(await approveRes(t, admin, pending.id, wrong), 401, 'ADMIN_REAUTH_FAILED');
    expectError(await finalizeRes(t, admin, done.token.id, wrong), 401, 'ADMIN_REAUTH_FAILED');
    expectError(await restoreRes(t, admin, done.token.id, wrong), 401, 'ADMIN_REAUTH_FAILED');
    // Another admin's (valid) password is not this admin's fresh authentication.
    expectError(await approveRes(t, admin, pending.id, admin2.password), 401, 'ADMIN_REAUTH_FAILED');
    for (const url of [`/admin/api/approve_rotation/${pending.id}`, `/admin/api/finalize_a_dek/${done.token.id}`, `/admin/api/restore_rotation/${done.token.id}`]) {
      expectError(await api(t.app, admin).post(url, {}), 400, 'VALIDATION_FAILED');
      expectError(await api(t.app, admin).post(url, { adminPassword: '' }), 400, 'VALIDATION_FAILED');
    }
    expect(await snap()).toBe(before);
    const failures = (await auditFor(t.database, `user:${admin.id}`)).filter((e) => e.details.reason === 'admin_reauth_failed');
    expect(failures).toHaveLength(4);
    expect(failures.every((e) => e.outcome === 'denied')).toBe(true);
    // Below the throttle threshold the right password still works (and resets the counter).
    await approve(pending.id);
    expect((await cancelRes(t, bob, pending.id)).statusCode).toBe(200);
  });

  it('B6: wrong admin passwords are throttled: 429 after ADMIN_REAUTH_MAX_FAILURES, even with the right one, until the lock time has passed', async () => {
    const max = t.config.ADMIN_REAUTH_MAX_FAILURES;
    const pending = await requestRotation(t, bob);
    const before = await dumpToken(t.database, pending.id);
    for (let i = 0; i < max; i++) expectError(await approveRes(t, admin, pending.id, `wrong-${i}-${strongPassword()}`), 401, 'ADMIN_REAUTH_FAILED');
    const throttled = await approveRes(t, admin, pending.id);
    expectError(throttled, 429, 'RATE_LIMITED');
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThan(0);
    expect(await dumpToken(t.database, pending.id)).toBe(before);
    // Per admin: the other admin is not locked out.
    expect((await approveRes(t, admin2, pending.id)).statusCode).toBe(200);
    expect((await cancelRes(t, bob, pending.id)).statusCode).toBe(200);
    const again = await requestRotation(t, bob);
    expectError(await finalizeRes(t, admin, again.id), 409, 'INVALID_STATE');
    expectError(await approveRes(t, admin, again.id), 429, 'RATE_LIMITED');
    // The database clock moves past the lock: the right password works again.
    clock.offsetMs += (t.config.LOGIN_LOCK_SECONDS + 1) * 1000;
    await approve(again.id);
    expect((await cancelRes(t, bob, again.id)).statusCode).toBe(200);
  });

  // ------------------------------------------------------------------------------- C6
  it('C6: five wrong temporary passwords revoke the token (423); the right one is refused afterwards', async () => {
    const max = t.config.TEMP_PASSWORD_MAX_ATTEMPTS;
    expect(max).toBe(5);
    const token = await requestRotation(t, bob);
    const { tempPassword } = await approve(token.id);
    const secrets = await dumpAllSecrets(t.database);
    for (let i = 1; i < max; i++) {
      const e = expectError(await executeRes(t, bob, { tokenId: token.id, tempPassword: FAKE_TEMP_PASSWORD }), 401, 'WRONG_TEMP_PASSWORD');
      expect(e.details).toEqual({ attemptsLeft: max - i });
    }
    expectError(await executeRes(t, bob, { tokenId: token.id, tempPassword: FAKE_TEMP_PASSWORD }), 423, 'TOKEN_REVOKED');
    expectError(await executeRes(t, bob, { tokenId: token.id, tempPassword }), 423, 'TOKEN_REVOKED');
    expect(await tokenRow(t.database, token.id)).toMatchObject({ status: 'revoked', failed_attempts: max, temp_hash: null });
    expect(await dumpAllSecrets(t.database)).toBe(secrets);
    expect(await keyVersion(t.database, bob.id)).toBe(1);
    const events = (await auditFor(t.database, `rotation:${token.id}`)).map((e) => `${e.action}:${e.outcome}:${e.details.reason ?? ''}`);
    expect(events.filter((e) => e === 'rotation.execute:failure:wrong_temp_password')).toHaveLength(max);
    expect(events.filter((e) => e.startsWith('rotation.revoked:success'))).toHaveLength(1);
    // A fresh request for the same user is possible.
    const next = await requestRotation(t, bob);
    expect((await cancelRes(t, bob, next.id)).statusCode).toBe(200);
  });

  // ------------------------------------------------------------------------------- C7
  it('C7: a wrong current password is 401; the database keeps every secret and key byte for byte; the token stays approved', async () => {
    const token = await requestRotation(t, bob);
    const { tempPassword } = await approve(token.id);
    const before = { secrets: await dumpAllSecrets(t.database), keys: await dumpUserKeys(t.database, bob.id), token: await tokenRow(t.database, token.id) };
    const throttleKey = `login:${bob.email}`;
    const [thrBefore] = await queryRows<{ failures: number }>(t.database, `select failures from throttles where key = '${throttleKey}'`);

    const res = await executeRes(t, bob, { tokenId: token.id, tempPassword, currentPassword: `not-${bob.password}`, newPassword: strongPassword() });
    expectError(res, 401, 'INVALID_CREDENTIALS');
    expect(await dumpAllSecrets(t.database)).toBe(before.secrets);
    expect(await dumpUserKeys(t.database, bob.id)).toBe(before.keys);
    expect(await tokenRow(t.database, token.id)).toMatchObject({ status: 'approved', failed_attempts: 0, temp_hash: before.token!.temp_hash });
    // Counted toward the user's password throttle (by exactly one).
    const [thrAfter] = await queryRows<{ failures: number }>(t.database, `select failures from throttles where key = '${throttleKey}'`);
    expect(Number(thrAfter?.failures)).toBe(Number(thrBefore?.failures ?? 0) + 1);
    const [ev] = (await auditFor(t.database, `rotation:${token.id}`)).filter((e) => e.details.reason === 'wrong_current_password');
    expect(ev).toMatchObject({ action: 'rotation.execute', outcome: 'failure', actor_id: bob.id });

    // The token is still good with the right password.
    bob = afterRotation(bob, await executeRes(t, bob, { tokenId: token.id, tempPassword }));
    expect(await keyVersion(t.database, bob.id)).toBe(2);
  });

  it('C7: wrong current passwords at execute count toward the account throttle, and execute honours it (429) as login does', async () => {
    const max = t.config.LOGIN_MAX_FAILURES;
    const carol = await registerUser(t.app);
    planted.push(carol.password);
    const token = await requestRotation(t, carol);
    const { tempPassword } = await approve(token.id);
    for (let i = 0; i < max; i++) {
      expectError(await executeRes(t, carol, { tokenId: token.id, tempPassword, currentPassword: `guess-${i}-${carol.password}` }), 401, 'INVALID_CREDENTIALS');
    }
    // The account is now throttled: neither login nor execute evaluates another password.
    expectError(await api(t.app).post('/api/auth/login', { email: carol.email, password: carol.password }), 429, 'RATE_LIMITED');
    const throttled = await executeRes(t, carol, { tokenId: token.id, tempPassword });
    expectError(throttled, 429, 'RATE_LIMITED');
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThan(0);
    const denied = (await auditFor(t.database, `rotation:${token.id}`)).filter((e) => e.details.reason === 'throttled');
    expect(denied.map((e) => [e.action, e.outcome])).toEqual([['rotation.execute', 'denied']]);
    expect(await tokenRow(t.database, token.id)).toMatchObject({ status: 'approved', failed_attempts: 0 });
    expect(await keyVersion(t.database, carol.id)).toBe(1);
    // Once the lock time has passed (database clock), the right password rotates.
    clock.offsetMs += (t.config.LOGIN_LOCK_SECONDS + 1) * 1000;
    expect((await executeRes(t, carol, { tokenId: token.id, tempPassword })).statusCode).toBe(200);
  });

  // ------------------------------------------------------------------------------- C9
  it('C9: a temporary password is bound to its token: T1’s is refused for T2, and for another user’s token', async () => {
    const t1 = await requestRotation(t, alice);
    const temp1 = (await approve(t1.id)).tempPassword;
    expect((await cancelRes(t, alice, t1.id)).statusCode).toBe(200);
    const t2 = await requestRotation(t, alice);
    const temp2 = (await approve(t2.id)).tempPassword;
    const bobs = await requestRotation(t, bob);
    const tempBob = (await approve(bobs.id)).tempPassword;

    const e = expectError(await executeRes(t, alice, { tokenId: t2.id, tempPassword: temp1 }), 401, 'WRONG_TEMP_PASSWORD');
    expect(e.details).toEqual({ attemptsLeft: 4 });
    expectError(await executeRes(t, alice, { tokenId: t1.id, tempPassword: temp1 }), 409, 'INVALID_STATE');
    // Alice's temp password on bob's token, by bob: wrong; by alice: not her token.
    expectError(await executeRes(t, bob, { tokenId: bobs.id, tempPassword: temp2 }), 401, 'WRONG_TEMP_PASSWORD');
    expectError(await executeRes(t, alice, { tokenId: bobs.id, tempPassword: tempBob }), 404, 'NOT_FOUND');
    expect((await tokenRow(t.database, t2.id))?.status).toBe('approved');
    expect((await tokenRow(t.database, bobs.id))?.status).toBe('approved');

    alice = afterRotation(alice, await executeRes(t, alice, { tokenId: t2.id, tempPassword: temp2 }));
    bob = afterRotation(bob, await executeRes(t, bob, { tokenId: bobs.id, tempPassword: tempBob }));
  });

  // ------------------------------------------------------------------------------- C8 / D8 / G6
  it('C8/D8: no temporary password, password or secret value appears in any table, log line, audit export or listing', async () => {
    // One more full flow with a new password, finalized, so every code path has run.
    const newPassword = strongPassword();
    planted.push(newPassword);
    const r = await rotate(t, admin, alice, { newPassword });
    tempPasswords.push(r.approval.tempPassword);
    alice = r.user;
    expect((await finalizeRes(t, admin, r.token.id)).statusCode).toBe(200);
    expect((await loginAndReadVault(t.app, alice)).vault).toEqual(expect.objectContaining({ 'secret 0': expect.stringMatching(/^CANARY/) }));

    expect(tempPasswords.length).toBeGreaterThanOrEqual(10);
    const canaries = [...planted, ...tempPasswords, ...tempPasswords.map((p) => p.replace(/-/g, ''))];
    const adminGet = async (url: string) => (await api(t.app, admin).get(url)).body;
    const haystacks = {
      tables: await dumpAllTables(t.database),
      logs: t.logs.text(),
      auditExport: await adminGet('/admin/api/audit/export'),
      auditList: await adminGet('/admin/api/audit?limit=1000'),
      adminRequests: await adminGet('/admin/api/rotation_requests?limit=200'),
      status: await adminGet('/admin/api/rotation_status'),
      metrics: (await api(t.app).get('/metrics')).body,
      aliceRequests: (await api(t.app, alice).get('/api/rotation_requests')).body,
    };
    expect(haystacks.logs.length).toBeGreaterThan(1000);
    expect(haystacks.auditExport.split('\n').length).toBeGreaterThan(50);
    expect(findCanaries(canaries, haystacks)).toEqual([]);
    // The canary check itself can fail: a planted value is found where it was put.
    expect(findCanaries([tempPasswords[0]!], { probe: `x${tempPasswords[0]}x` }).length).toBeGreaterThan(0);
  });
});
