/**
 * Hardening (issue 10, items 5, 7 and 10): old key material does not outlive the restore window
 * and an admin's old AMK share is never kept; the rotation's batches are bounded in bytes from
 * the first; the AMK public key is checked, not trusted; refusals are audited; the audit hash
 * covers `at` and refuses what it cannot hash faithfully; the export streams; bad emails are 400;
 * the plain cookie does not count over HTTPS; "other sessions signed out" counts only others.
 */
import { amkFingerprint } from '@keyturn/shared/crypto';
import { BATCH_BYTES } from '@keyturn/shared/rotation';
import { describe, expect, it } from 'vitest';
import { canonical, eventHash } from '../src/modules/audit/audit.repo';
import { api, countRows, createSecret, describeBoth, expectError, json, login, queryRows, registerUser, setupAdmin, strongPassword, type TestUser, uniqueEmail, useTestApp } from './harness';
import { approveRotation, auditFor, cancelRes, executeRes, finalizeRes, rejectRes, requestRotation, restoreRes, rotate, runSql, testClock } from './rotation.helpers';

const DAY = 86_400;

describeBoth('item 10: "other sessions signed out" counts only the other sessions', (backend) => {
  const t = useTestApp(backend);
  let admin: TestUser;

  it('0 with no other session, 2 with two (the caller’s own session is replaced, not counted)', async () => {
    admin = await setupAdmin(t.app);
    const alone = await registerUser(t.app);
    const r1 = await rotate(t, admin, alone);
    expect(r1.result.sessionsRevoked).toBe(0);
    const busy = await registerUser(t.app);
    await login(t.app, busy.email, busy.password);
    await login(t.app, busy.email, busy.password);
    const r2 = await rotate(t, admin, busy);
    expect(r2.result.sessionsRevoked).toBe(2);
    // Still, every old session is over, the caller's included.
    expect(await countRows(t.database, 'sessions', `user_id = '${busy.id}' and key_version = 1 and revoked_at is null`)).toBe(0);
    const [ev] = await auditFor(t.database, `rotation:${r2.token.id}`).then((rows) => rows.filter((r) => r.action === 'rotation.completed'));
    expect(ev?.details).toMatchObject({ sessionsRevoked: 2 });
  });
});

describeBoth('item 5: the restore window, and no old AMK share', (backend) => {
  const clock = testClock();
  const t = useTestApp(backend, { env: { RESTORE_WINDOW_SECONDS: String(2 * DAY), BACKUP_RETENTION_SECONDS: String(30 * DAY), SESSION_TTL_SECONDS: String(30 * DAY) }, deps: { clock } });
  let admin: TestUser;

  it('a completed, unfinalized rotation restores inside the window, and not past it (409, audited, nothing changed)', async () => {
    admin = await setupAdmin(t.app);
    const inside = await rotate(t, admin, await withSecrets());
    const past = await rotate(t, admin, await withSecrets());
    clock.offsetMs = DAY * 1000;
    expect((await restoreRes(t, admin, inside.token.id)).statusCode).toBe(200);
    clock.offsetMs = 2 * DAY * 1000 + 1000;
    const before = await queryRows(t.database, `select * from secrets where user_id = '${past.user.id}' order by id`);
    const err = expectError(await restoreRes(t, admin, past.token.id), 409, 'INVALID_STATE');
    expect(err.details).toMatchObject({ reason: 'RESTORE_WINDOW_PASSED' });
    expect(await queryRows(t.database, `select * from secrets where user_id = '${past.user.id}' order by id`)).toEqual(before);
    const denied = (await auditFor(t.database, `rotation:${past.token.id}`)).filter((e) => e.action === 'rotation.rolled_back');
    expect(denied.map((e) => [e.outcome, (e.details as { reason?: string }).reason])).toEqual([['denied', 'RESTORE_WINDOW_PASSED']]);
    clock.reset();
  });

  it('cleanup purges the backup of a rotation past its window whether or not anyone finalized it; status shows what is restorable', async () => {
    clock.reset();
    const fresh = await rotate(t, admin, await withSecrets());
    const status0 = json<{ restorable: { count: number; nextWindowEnd: string | null } }>(await api(t.app, admin).get('/admin/api/rotation_status'));
    expect(status0.restorable.count).toBeGreaterThanOrEqual(1);
    expect(status0.restorable.nextWindowEnd).not.toBeNull();
    const backups = () => countRows(t.database, 'rotation_backups', `token_id = '${fresh.token.id}'`);
    const chunks = () => countRows(t.database, 'rotation_backup_chunks', `token_id = '${fresh.token.id}'`);
    expect(await backups()).toBe(1);
    expect(await chunks()).toBe(1);
    clock.offsetMs = 2 * DAY * 1000 + 1000;
    const run = await api(t.app, admin).post('/admin/api/maintenance/cleanup');
    expect(run.statusCode, run.body).toBe(200);
    expect(await backups()).toBe(0);
    expect(await chunks()).toBe(0);
    // Still awaiting finalization (the escrow copy is what finalize needs), but not restorable.
    expect(await countRows(t.database, 'rotation_tokens', `id = '${fresh.token.id}' and status = 'completed'`)).toBe(1);
    const status1 = json<{ restorable: { count: number } }>(await api(t.app, admin).get('/admin/api/rotation_status'));
    expect(status1.restorable.count).toBe(0);
    expect((await finalizeRes(t, admin, fresh.token.id)).statusCode).toBe(200);
    clock.reset();
  });

  it('an admin’s rotation keeps no backup (no old AMK share, no old key row or ciphertexts), is not restorable (409 with the reason) nor counted as such', async () => {
    clock.reset();
    const second = await addAdmin(admin);
    const token = await requestRotation(t, second);
    const approval = await approveRotation(t, admin, token.id);
    const newPassword = strongPassword();
    const restorableBefore = json<{ restorable: { count: number } }>(await api(t.app, admin).get('/admin/api/rotation_status')).restorable.count;
    const ex = await executeRes(t, second, { tokenId: token.id, tempPassword: approval.tempPassword, newPassword });
    expect(ex.statusCode, ex.body).toBe(200);
    // No backup at all: neither the old key row (no AMK share in it either) nor the old ciphertexts.
    expect(await countRows(t.database, 'rotation_backups', `token_id = '${token.id}'`)).toBe(0);
    expect(await countRows(t.database, 'rotation_backup_chunks', `token_id = '${token.id}'`)).toBe(0);
    const share = await queryRows<{ key_version: number }>(t.database, `select key_version from amk_wraps where admin_id = '${second.id}'`);
    expect(share).toEqual([{ key_version: 2 }]);
    const err = expectError(await restoreRes(t, admin, token.id), 409, 'INVALID_STATE');
    expect(err.details).toMatchObject({ reason: 'ADMIN_ROTATION' });
    expect(err.message).toMatch(/administrator/);
    expect(json<{ restorable: { count: number } }>(await api(t.app, admin).get('/admin/api/rotation_status')).restorable.count).toBe(restorableBefore);
    // The admin's new password still opens the AMK: they can approve.
    const u = await registerUser(t.app);
    const req = await requestRotation(t, u);
    const login2 = await login(t.app, second.email, newPassword);
    expect((await api(t.app, login2).post(`/admin/api/approve_rotation/${req.id}`, { adminPassword: newPassword })).statusCode).toBe(200);
  });

  async function withSecrets(): Promise<TestUser> {
    const u = await registerUser(t.app);
    await createSecret(t.app, u, { name: 'a', value: '1' });
    return u;
  }
  async function addAdmin(by: TestUser): Promise<TestUser> {
    const email = uniqueEmail('admin2');
    const password = strongPassword();
    const res = await api(t.app, by).post('/admin/api/admins', { email, password, adminPassword: by.password });
    expect(res.statusCode, res.body).toBe(201);
    return login(t.app, email, password);
  }
});

describeBoth('item 7: the rotation, the AMK and the audit trail', (backend) => {
  const t = useTestApp(backend, { env: { SECRET_VALUE_MAX_BYTES: String(64 * 1024) } });
  let admin: TestUser;

  it('sets up an admin', async () => {
    admin = await setupAdmin(t.app);
  });

  it('bounds every re-encryption batch in bytes, the first included (backup chunks ≤ ~1 MiB with 60 KiB secrets)', async () => {
    const u = await registerUser(t.app);
    const big = 'x'.repeat(60 * 1024);
    for (let i = 0; i < 40; i++) await createSecret(t.app, u, { name: `big-${i}`, value: `${i}${big}` });
    const r = await rotate(t, admin, u);
    expect(r.result.secretsReencrypted).toBe(40);
    const chunks = await queryRows<{ rows: number; bytes: number }>(
      t.database,
      `select row_count as rows, octet_length(data) as bytes from rotation_backup_chunks where token_id = '${r.token.id}' order by chunk`,
    );
    expect(chunks.reduce((n, c) => n + Number(c.rows), 0)).toBe(40);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    // A chunk holds a batch's old ciphertexts plus a few header bytes per row.
    for (const c of chunks) expect(Number(c.bytes)).toBeLessThanOrEqual(BATCH_BYTES + 64 * Number(c.rows));
  });

  it('refuses to finalize when the stored AMK public key is not the AMK’s (alert: audit event and metric; nothing changed)', async () => {
    const u = await registerUser(t.app);
    const r = await rotate(t, admin, u);
    const [amk] = await queryRows<{ id: string; public_key: Uint8Array }>(t.database, 'select id, public_key from amk');
    const real = Buffer.from(amk!.public_key);
    // The status page shows the real key's fingerprint.
    const status = json<{ amkFingerprint: string }>(await api(t.app, admin).get('/admin/api/rotation_status'));
    expect(status.amkFingerprint).toBe(amkFingerprint(real));
    // Someone with write access to the database swaps in a key of their own.
    const forged = Buffer.from(real);
    forged[0] = forged[0]! ^ 0xff;
    await runSql(t.database, `update amk set public_key = '\\x${forged.toString('hex')}'::bytea`);
    const before = await queryRows(t.database, `select * from user_keys where user_id = '${u.id}'`);
    const alarms = t.app.container.metrics.amkMismatch.get();
    expectError(await finalizeRes(t, admin, r.token.id), 409, 'AMK_MISMATCH');
    expect(t.app.container.metrics.amkMismatch.get()).toBe(alarms + 1);
    expect(await queryRows(t.database, `select * from user_keys where user_id = '${u.id}'`)).toEqual(before);
    const events = await queryRows<{ outcome: string; details: { stored: string; expected: string } }>(
      t.database,
      `select outcome, details from audit_events where action = 'amk.public_key_mismatch' order by seq`,
    );
    expect(events).toHaveLength(1);
    expect(events[0]!.details).toMatchObject({ stored: amkFingerprint(forged), expected: amkFingerprint(real) });
    // Every other path that opens the AMK refuses too: adding an admin, an admin's own rotation
    // (whose new escrow copy would be sealed to the swapped key).
    const add = await api(t.app, admin).post('/admin/api/admins', { email: uniqueEmail('x'), password: strongPassword(), adminPassword: admin.password });
    expectError(add, 409, 'AMK_MISMATCH');
    const own = await requestRotation(t, admin);
    const ok = await approveRotation(t, admin, own.id);
    expectError(await executeRes(t, admin, { tokenId: own.id, tempPassword: ok.tempPassword }), 409, 'AMK_MISMATCH');
    expect(await countRows(t.database, 'rotation_tokens', `id = '${own.id}' and status = 'approved'`)).toBe(1);
    expect(t.app.container.metrics.amkMismatch.get()).toBe(alarms + 3);
    const during = await queryRows<{ during: string }>(t.database, `select details->>'during' as during from audit_events where action = 'amk.public_key_mismatch' order by seq`);
    expect(during.map((d) => d.during)).toEqual(['rotation.finalized', 'admin.created', 'rotation.execute']);
    // Put it back: finalize and the admin's own rotation work.
    await runSql(t.database, `update amk set public_key = '\\x${real.toString('hex')}'::bytea`);
    expect((await finalizeRes(t, admin, r.token.id)).statusCode).toBe(200);
    const done = await executeRes(t, admin, { tokenId: own.id, tempPassword: ok.tempPassword });
    expect(done.statusCode, done.body).toBe(200);
    admin = { ...admin, token: json<{ session: { token: string } }>(done).session.token };
  });

  it('audits refused reject and cancel attempts as denied', async () => {
    const u = await registerUser(t.app);
    const token = await requestRotation(t, u);
    await approveRotation(t, admin, token.id);
    expectError(await rejectRes(t, admin, token.id), 409, 'INVALID_STATE');
    expect((await cancelRes(t, u, token.id)).statusCode).toBe(200);
    expectError(await cancelRes(t, u, token.id), 409, 'INVALID_STATE');
    const rows = (await auditFor(t.database, `rotation:${token.id}`)).filter((e) => e.outcome === 'denied');
    expect(rows.map((e) => [e.action, (e.details as { status?: string }).status])).toEqual([
      ['rotation.rejected', 'approved'],
      ['rotation.cancelled', 'cancelled'],
    ]);
    const cancelled = (await auditFor(t.database, `rotation:${token.id}`)).find((e) => e.action === 'rotation.cancelled' && e.outcome === 'success');
    expect(cancelled?.details).toMatchObject({ from: 'approved' });
  });

  it('the audit hash covers `at`: an edited time is caught by verify', async () => {
    const ok = json<{ ok: boolean }>(await api(t.app, admin).get('/admin/api/audit/verify'));
    expect(ok.ok).toBe(true);
    const [mid] = await queryRows<{ seq: number }>(t.database, 'select seq::int as seq from audit_events order by seq limit 1 offset 3');
    await runSql(t.database, 'alter table audit_events disable trigger audit_events_no_update');
    await runSql(t.database, `update audit_events set at = at - interval '3 days' where seq = ${mid!.seq}`);
    await runSql(t.database, 'alter table audit_events enable trigger audit_events_no_update');
    const v = json<{ ok: boolean; firstBadSeq: number; problem: string }>(await api(t.app, admin).get('/admin/api/audit/verify'));
    expect(v).toMatchObject({ ok: false, firstBadSeq: Number(mid!.seq) });
    expect(v.problem).toMatch(/time/);
  });

  it('streams the audit export (no Content-Length: never built whole in memory), every event once', async () => {
    const res = await api(t.app, admin).get('/admin/api/audit/export');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBeUndefined();
    const lines = res.body.trim().split('\n').map((l) => JSON.parse(l) as { seq: number });
    expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i + 1));
    expect(lines.length).toBe(await countRows(t.database, 'audit_events'));
  });
});

describe('item 7: the audit hash refuses values it cannot hash faithfully', () => {
  it('a Date, a Buffer or a class instance in details throws instead of hashing as {}', () => {
    for (const bad of [new Date(), Buffer.from('x'), new Map(), new (class X {})(), Number.NaN]) {
      expect(() => canonical({ k: bad })).toThrow(TypeError);
    }
    expect(canonical({ b: 1, a: [{ d: null, c: 'x' }] })).toEqual({ a: [{ c: 'x', d: null }], b: 1 });
    const e = { actorId: null, actorEmail: null, role: 'system', action: 'x', target: null, outcome: 'success' as const, requestId: null, clientAddress: null };
    expect(() => eventHash('0', 1, 't', { ...e, details: { when: new Date() } })).toThrow(TypeError);
  });
});

describeBoth('item 7: input and cookies', (backend) => {
  const t = useTestApp(backend, { env: { COOKIE_SECURE: 'true' } });

  it('refuses emails with NUL, control characters or lone surrogates with 400 (never 500), changing nothing', async () => {
    const admin = await setupAdmin(t.app);
    const users = await countRows(t.database, 'users');
    for (const email of ['a\u0000b@example.test', 'nul@example.test\u0000', 'x\ud800@example.test', 'a\u001bb@example.test']) {
      expectError(await api(t.app).post('/api/auth/register', { email, password: strongPassword() }), 400, 'VALIDATION_FAILED');
      expectError(await api(t.app).post('/api/auth/login', { email, password: 'whatever password' }), 400, 'VALIDATION_FAILED');
      expectError(await api(t.app, admin).post('/admin/api/admins', { email, password: strongPassword(), adminPassword: admin.password }), 400, 'VALIDATION_FAILED');
    }
    expect(await countRows(t.database, 'users')).toBe(users);
  });

  it('over HTTPS only the __Host- cookie authenticates; the plain one is ignored', async () => {
    const u = await registerUser(t.app);
    const plain = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: `keyturn_session=${u.token}` } });
    expectError(plain, 401, 'UNAUTHENTICATED');
    const host = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: `__Host-keyturn_session=${u.token}` } });
    expect(host.statusCode).toBe(200);
  });
});

describeBoth('item 7: execute wipes every key it derived, whichever step throws', (backend) => {
  const t = useTestApp(backend);

  it('a failure after both derivations and before the claim still leaves the DEKs and KEKs zeroed', async () => {
    const admin = await setupAdmin(t.app);
    const token = await requestRotation(t, admin);
    const approval = await approveRotation(t, admin, token.id);
    const derived: { dek?: Buffer; kek?: Buffer }[] = [];
    const auth = t.app.container.auth;
    const kdfCost = auth.kdfCost;
    const amkRepo = t.app.container.repos.amkRepo;
    const wrapFor = amkRepo.wrapFor;
    // Record what each derivation returned, and fail the step right after them (the admin's AMK
    // share lookup, before the claim) as a database error would.
    auth.kdfCost = (async (derive: () => Promise<unknown>) => {
      const r = (await kdfCost(derive)) as { dek?: Buffer; kek?: Buffer };
      derived.push(r);
      return r;
    }) as typeof auth.kdfCost;
    amkRepo.wrapFor = async () => {
      throw new Error('injected: database gone');
    };
    try {
      const res = await executeRes(t, admin, { tokenId: token.id, tempPassword: approval.tempPassword });
      expect(res.statusCode).toBe(500);
    } finally {
      auth.kdfCost = kdfCost;
      amkRepo.wrapFor = wrapFor;
    }
    const keys = derived.flatMap((r) => [r.dek, r.kek]).filter((b): b is Buffer => !!b);
    expect(keys).toHaveLength(4); // the current DEK and KEK, the new DEK and KEK
    for (const k of keys) expect(k.every((b) => b === 0)).toBe(true);
    // Nothing was claimed: the token is still approved.
    expect(await countRows(t.database, 'rotation_tokens', `id = '${token.id}' and status = 'approved'`)).toBe(1);
  });
});
