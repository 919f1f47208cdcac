/**
 * Account recovery under attack (issue 11 §2 "Tests"; modules/recovery/README.md V1–V9):
 * enumeration, wrong and replayed completions, the attempt cap, a recovery racing a rotation or a
 * password change (exactly one wins), and canaries for every secret the flow touches.
 */
import { randomUUID } from 'node:crypto';
import type { ErrorBody } from '@keyturn/shared';
import { deriveRecoveryKeyPair, openPendingADek, unlockKeyMaterial, unwrapAmkForAdmin } from '@keyturn/shared/crypto';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { amkWraps } from '../src/db/schema';
import {
  api,
  type Canary,
  canary,
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
import { approveRecovery, changePassword, changePasswordRes, completeRecoveryRes, requestRecovery, requestRecoveryRes } from './recovery.helpers';
import { approveRotation, auditFor, dumpSecrets, executeRes, keyVersion, loginAndReadVault, loginStatus, requestRotation, tokenRow } from './rotation.helpers';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describeBoth('account recovery security', (backend) => {
  const hooks: { afterClaim?: (tokenId: string) => Promise<void> } = {};
  const t = useTestApp(backend, { deps: { rotationHooks: { afterClaim: async (id) => hooks.afterClaim?.(id) } } });
  let admin: TestUser;

  it('no enumeration: an unknown email gets the same status, body shape and argon2 work, in the same timing class', async () => {
    admin = await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const kdf = t.app.container.metrics.kdfCount;
    const timings: Record<'known' | 'unknown', number[]> = { known: [], unknown: [] };
    const shapes = new Set<string>();
    for (let i = 0; i < 7; i++) {
      for (const kind of ['known', 'unknown'] as const) {
        const before = kdf.get();
        const started = performance.now();
        const res = await requestRecoveryRes(t.app, kind === 'known' ? user.email : uniqueEmail('nobody'), strongPassword());
        timings[kind].push(performance.now() - started);
        expect(res.statusCode, res.body).toBe(202);
        // Exactly one argon2 derivation either way.
        expect(kdf.get() - before).toBe(1);
        const body = json<Record<string, string>>(res);
        shapes.add(JSON.stringify(Object.keys(body).sort()));
        shapes.add(JSON.stringify({ ...res.headers, date: '', 'content-length': '', 'x-request-id': '', 'x-ratelimit-remaining': '', 'x-ratelimit-reset': '' }));
        expect(body.fingerprint).toMatch(/^[a-z]+(-[a-z]+){4}$/);
      }
    }
    // One body shape and one header set (two entries) for both kinds.
    expect(shapes.size).toBe(2);
    // Same class: the argon2 derivation dominates both; neither is a fraction of the other.
    const [k, u] = [median(timings.known), median(timings.unknown)];
    expect(u / k, `known ${k.toFixed(1)} ms, unknown ${u.toFixed(1)} ms`).toBeGreaterThan(0.4);
    expect(u / k, `known ${k.toFixed(1)} ms, unknown ${u.toFixed(1)} ms`).toBeLessThan(2.5);
    // Completing an unknown id answers exactly like a real pending one.
    const pending = await requestRecovery(t.app, user.email, strongPassword());
    const a = await completeRecoveryRes(t.app, pending.requestId, strongPassword());
    const b = await completeRecoveryRes(t.app, randomUUID(), strongPassword());
    expectError(a, 409, 'INVALID_STATE');
    expect(withoutRequestId(a)).toBe(withoutRequestId(b));
    // The unknown-email requests are in the audit trail as denied, with no account behind them.
    const [n] = await queryRows<{ n: number }>(t.database, `select count(*)::int as n from audit_events where action = 'recovery.requested' and outcome = 'denied'`);
    expect(Number(n!.n)).toBe(7);
  });

  it('an account disabled after approval is not recovered', async () => {
    const user = await registerUser(t.app);
    const pw = strongPassword();
    const req = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, req.requestId);
    await queryRows(t.database, `update users set disabled = true where id = '${user.id}'`);
    expect(expectError(await completeRecoveryRes(t.app, req.requestId, pw), 409, 'INVALID_STATE').details).toMatchObject({ reason: 'ACCOUNT_DISABLED' });
    const [row] = await queryRows<{ status: string; sealed_dek: unknown }>(t.database, `select status, sealed_dek from recovery_requests where id = '${req.requestId}'`);
    expect(row).toMatchObject({ status: 'failed', sealed_dek: null });
    expect(await keyVersion(t.database, user.id)).toBe(1);
  });

  it('bad input is 400 and stores nothing', async () => {
    const before = (await queryRows<{ n: number }>(t.database, 'select count(*)::int as n from recovery_requests'))[0]!.n;
    for (const body of [
      {},
      { email: 'not-an-email', newPassword: strongPassword() },
      { email: uniqueEmail(), newPassword: 'short' },
      { email: uniqueEmail(), newPassword: strongPassword(), extra: 1 },
      { email: `${'a'.repeat(300)}@example.test`, newPassword: strongPassword() },
    ]) {
      expectError(await api(t.app).post('/api/recovery/request', body), 400, 'VALIDATION_FAILED');
    }
    for (const body of [{ requestId: 'nope', newPassword: 'x' }, { requestId: randomUUID(), newPassword: '' }, { requestId: randomUUID(), newPassword: 'x'.repeat(3000) }]) {
      expectError(await api(t.app).post('/api/recovery/complete', body), 400, 'VALIDATION_FAILED');
    }
    expect((await queryRows<{ n: number }>(t.database, 'select count(*)::int as n from recovery_requests'))[0]!.n).toBe(before);
  });

  it('wrong completions are refused and audited; the fifth revokes the request (423) and drops the sealed copy', async () => {
    const user = await registerUser(t.app);
    const pw = strongPassword();
    const req = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, req.requestId);
    for (let i = 1; i <= 4; i++) {
      const err = expectError(await completeRecoveryRes(t.app, req.requestId, `${pw}x`), 401, 'INVALID_CREDENTIALS');
      expect(err.details).toEqual({ attemptsLeft: 5 - i });
    }
    expectError(await completeRecoveryRes(t.app, req.requestId, `${pw}x`), 423, 'TOKEN_REVOKED');
    // Revoked: even the right password is refused now, and nothing changed.
    expectError(await completeRecoveryRes(t.app, req.requestId, pw), 409, 'INVALID_STATE');
    const [row] = await queryRows<{ status: string; sealed_dek: unknown; failed_attempts: number }>(t.database, `select * from recovery_requests where id = '${req.requestId}'`);
    expect(row).toMatchObject({ status: 'revoked', sealed_dek: null, failed_attempts: 5 });
    expect(await loginStatus(t.app, user.email, user.password)).toBe(200);
    const trail = (await auditFor(t.database, `recovery:${req.requestId}`)).map((e) => `${e.action}:${e.details.reason ?? ''}`);
    expect(trail.filter((x) => x === 'recovery.denied:wrong_password')).toHaveLength(5);
    expect(trail).toContain('recovery.revoked:');
  });

  it('parallel wrong guesses never evaluate past the cap', async () => {
    const user = await registerUser(t.app);
    const pw = strongPassword();
    const req = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, req.requestId);
    const kdf = t.app.container.metrics.kdfCount;
    const before = kdf.get();
    const answers = await Promise.all(Array.from({ length: 12 }, () => completeRecoveryRes(t.app, req.requestId, `${pw}-guess`)));
    expect(kdf.get() - before).toBeLessThanOrEqual(5);
    const codes = answers.map((r) => json<ErrorBody>(r).error.code);
    expect(codes.filter((c) => c === 'INVALID_CREDENTIALS' || c === 'TOKEN_REVOKED').length).toBeLessThanOrEqual(5);
    expect(codes).toContain('TOKEN_REVOKED');
  });

  it('parallel completions with the right password: exactly one re-keys the account, the others get 409', async () => {
    const user = await registerUser(t.app);
    await createSecret(t.app, user, { name: 'n', value: 'v' });
    const pw = strongPassword();
    const req = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, req.requestId);
    const answers = await Promise.all(Array.from({ length: 4 }, () => completeRecoveryRes(t.app, req.requestId, pw)));
    const codes = answers.map((r) => r.statusCode).sort();
    expect(codes, answers.map((r) => r.body).join('\n')).toEqual([200, 409, 409, 409]);
    expect(await keyVersion(t.database, user.id)).toBe(2);
    const [n] = await queryRows<{ n: number }>(t.database, `select count(*)::int as n from rotation_tokens where user_id = '${user.id}' and status = 'completed'`);
    expect(Number(n!.n)).toBe(1);
    expect((await loginAndReadVault(t.app, user, pw)).vault).toEqual({ n: 'v' });
  });

  it('a recovery racing a rotation: the user’s rotation in progress makes the completion 409, and the recovery still completes after', async () => {
    const user = await registerUser(t.app);
    await createSecret(t.app, user, { name: 'n', value: 'v' });
    const pw = strongPassword();
    const req = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, req.requestId);
    const token = await requestRotation(t, user);
    const approval = await approveRotation(t, admin, token.id);
    let during: Awaited<ReturnType<typeof completeRecoveryRes>> | undefined;
    hooks.afterClaim = async () => {
      hooks.afterClaim = undefined;
      // The rotation is claimed (in_progress): the completion meets the one-open-token rule.
      during = await completeRecoveryRes(t.app, req.requestId, pw);
    };
    const ex = await executeRes(t, user, { tokenId: token.id, tempPassword: approval.tempPassword });
    expect(ex.statusCode, ex.body).toBe(200);
    expectError(during!, 409, 'LOST_RACE');
    // The rotation replaced the DEK the admin sealed: the recovery can never complete now.
    const after = await completeRecoveryRes(t.app, req.requestId, pw);
    expect(expectError(after, 409, 'INVALID_STATE').details).toMatchObject({ reason: 'KEY_CHANGED' });
    const [row] = await queryRows<{ status: string; sealed_dek: unknown }>(t.database, `select status, sealed_dek from recovery_requests where id = '${req.requestId}'`);
    expect(row).toMatchObject({ status: 'failed', sealed_dek: null });
    expect(await keyVersion(t.database, user.id)).toBe(2);
    expect((await loginAndReadVault(t.app, user)).vault).toEqual({ n: 'v' });
  });

  it('a recovery racing a password change: the change that commits after the recovery read the keys makes it lose (409), nothing half-written', async () => {
    const user = await registerUser(t.app);
    await createSecret(t.app, user, { name: 'n', value: 'v' });
    const pw = strongPassword();
    const req = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, req.requestId);
    const changedTo = strongPassword();
    let tokenId = '';
    hooks.afterClaim = async (id) => {
      hooks.afterClaim = undefined;
      tokenId = id;
      // The recovery claimed its rotation with the keys it read; the user changes their password now.
      await changePassword(t.app, user, changedTo);
    };
    const secretsBefore = await dumpSecrets(t.database, user.id);
    const res = await completeRecoveryRes(t.app, req.requestId, pw);
    expect(expectError(res, 409, 'INVALID_STATE').details).toMatchObject({ reason: 'KEY_CHANGED' });
    expect((await tokenRow(t.database, tokenId))!.status).toBe('failed');
    expect(await dumpSecrets(t.database, user.id)).toBe(secretsBefore);
    expect(await keyVersion(t.database, user.id)).toBe(1);
    expect(await loginStatus(t.app, user.email, pw)).toBe(401);
    expect((await loginAndReadVault(t.app, user, changedTo)).vault).toEqual({ n: 'v' });
    // The owner proved their password: the open recovery request ended with the change.
    const [row] = await queryRows<{ status: string; sealed_dek: unknown }>(t.database, `select status, sealed_dek from recovery_requests where id = '${req.requestId}'`);
    expect(row).toMatchObject({ status: 'superseded', sealed_dek: null });
    expectError(await completeRecoveryRes(t.app, req.requestId, pw), 409, 'INVALID_STATE');
    expect(await loginStatus(t.app, user.email, changedTo)).toBe(200);
  });

  it('a password change racing a completed recovery loses: 409 or 401, never a half-written key row', async () => {
    const user = await registerUser(t.app);
    const session = await login(t.app, user.email, user.password);
    const pw = strongPassword();
    const req = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, req.requestId);
    expect((await completeRecoveryRes(t.app, req.requestId, pw)).statusCode).toBe(200);
    // The recovery revoked the session: the change is refused before it touches anything.
    expectError(await changePasswordRes(t.app, session, strongPassword()), 401);
    expect(await loginStatus(t.app, user.email, pw)).toBe(200);
  });

  it('an open rotation request of the user is cancelled by the completed recovery (it was for the old keys)', async () => {
    const user = await registerUser(t.app);
    const token = await requestRotation(t, user);
    const pw = strongPassword();
    const req = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, req.requestId);
    expect((await completeRecoveryRes(t.app, req.requestId, pw)).statusCode).toBe(200);
    expect((await tokenRow(t.database, token.id))!.status).toBe('cancelled');
    const events = await auditFor(t.database, `rotation:${token.id}`);
    expect(events.at(-1)).toMatchObject({ action: 'rotation.cancelled', details: { reason: 'account_recovery', request: req.requestId } });
  });

  it('canaries: no password, recovery key, DEK or AMK in any table, log line, audit record or error body', async () => {
    const credentials: string[] = [];
    const keys: Canary[] = [];
    const bodies: string[] = [];
    const pwc = (label: string) => {
      const p = `${canary(label)} pass`;
      credentials.push(p);
      return p;
    };
    const user = await registerUser(t.app, { password: pwc('UserOld') });
    const value = `value ${canary('Secret')}`;
    await createSecret(t.app, user, { name: 'canary', value });
    const before = await unlockKeyMaterial(user.id, user.password, (await t.app.container.repos.authRepo.findUserWithKeys(t.database.db, user.id))!.keys);
    if (before.ok) keys.push(before.dek, before.kek);

    // Password change (wrong, then right), a recovery request for a real and an unknown email,
    // wrong completions, the completion.
    bodies.push((await changePasswordRes(t.app, user, pwc('Changed0'), pwc('WrongCurrent'))).body);
    const changed = await changePassword(t.app, user, pwc('Changed1'));
    bodies.push((await requestRecoveryRes(t.app, uniqueEmail('ghost'), pwc('Ghost'))).body);
    const recoveryPw = pwc('Recovery');
    const req = await requestRecovery(t.app, user.email, recoveryPw);
    await approveRecovery(t.app, admin, req.requestId);
    bodies.push((await completeRecoveryRes(t.app, req.requestId, pwc('WrongRecovery'))).body);
    const [row] = await queryRows<{ kdf_salt: Uint8Array; kdf_params: { alg: 'argon2id'; m: number; t: number; p: number } }>(t.database, `select * from recovery_requests where id = '${req.requestId}'`);
    const kp = await deriveRecoveryKeyPair(recoveryPw, Buffer.from(row!.kdf_salt), row!.kdf_params);
    keys.push(kp.privateKey);
    bodies.push((await completeRecoveryRes(t.app, req.requestId, recoveryPw)).body);
    bodies.push((await completeRecoveryRes(t.app, req.requestId, recoveryPw)).body);
    const after = await unlockKeyMaterial(user.id, recoveryPw, (await t.app.container.repos.authRepo.findUserWithKeys(t.database.db, user.id))!.keys);
    if (after.ok) keys.push(after.dek, after.kek);
    const adminKeys = await unlockKeyMaterial(admin.id, admin.password, (await t.app.container.repos.authRepo.findUserWithKeys(t.database.db, admin.id))!.keys);
    expect(adminKeys.ok).toBe(true);
    if (adminKeys.ok) {
      const [wrap] = await t.database.db.select().from(amkWraps).where(eq(amkWraps.adminId, admin.id));
      keys.push(unwrapAmkForAdmin(adminKeys.kek, wrap!.wrappedPrivate, admin.id, wrap!.amkId));
    }
    expect(keys).toHaveLength(6);
    // Sanity: the grep sees the secret's plaintext where it must be (a reveal), and the keys are real.
    const k = await openPendingADek(keys[5] as Buffer, (await t.app.container.repos.authRepo.findUserWithKeys(t.database.db, user.id))!.keys.adekPending!, user.id, 2);
    expect(k.equals(keys[3] as Buffer)).toBe(true);
    void changed;

    const haystacks = {
      dump: await dumpAllTables(t.database, { counters: true }),
      logs: t.logs.text(),
      audit: JSON.stringify(await t.app.container.audit.list({ limit: 500, offset: 0 })),
      admin: (await api(t.app, admin).get('/admin/api/recovery_requests?limit=200')).body,
    };
    expect(haystacks.dump).toContain('-- recovery_requests (');
    expect(findCanaries([...credentials, value, ...keys], haystacks)).toEqual([]);
    expect(findCanaries([...credentials, value, ...keys], { responses: bodies.join('\n') })).toEqual([]);
  });
});

describe('account recovery rate limits', () => {
  const t = useTestApp('pglite', { env: { AUTH_RATE_LIMIT_PER_MINUTE: '2' } });

  it('request and complete are rate-limited per client like sign-in (429 with Retry-After)', async () => {
    for (const path of ['/api/recovery/request', '/api/recovery/complete']) {
      const body = path.endsWith('request') ? { email: uniqueEmail(), newPassword: strongPassword() } : { requestId: randomUUID(), newPassword: 'x' };
      const codes: number[] = [];
      for (let i = 0; i < 3; i++) codes.push((await api(t.app).post(path, body)).statusCode);
      expect(codes.slice(0, 2).every((c) => c !== 429), path).toBe(true);
      const limited = await api(t.app).post(path, body);
      expectError(limited, 429, 'RATE_LIMITED');
      expect(limited.headers['retry-after']).toBeDefined();
    }
  });
});

describe('account recovery: an attempt that never reached a verdict is not counted', () => {
  const t = useTestApp('pglite', { env: { KDF_MAX_CONCURRENCY: '1', KDF_MAX_QUEUE: '0' } });

  it('a completion refused because the argon2 queue is full (503) gives its slot back', async () => {
    const admin = await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const pw = strongPassword();
    const req = await requestRecovery(t.app, user.email, pw);
    await approveRecovery(t.app, admin, req.requestId);
    let release!: () => void;
    const held = t.app.container.auth.kdfCost(
      () =>
        new Promise<void>((r) => {
          release = r;
        }),
    );
    for (let i = 0; i < 6; i++) expectError(await completeRecoveryRes(t.app, req.requestId, pw), 503, 'UNAVAILABLE');
    release();
    await held;
    const [row] = await queryRows<{ failed_attempts: number; status: string }>(t.database, `select failed_attempts, status from recovery_requests where id = '${req.requestId}'`);
    expect(row).toMatchObject({ failed_attempts: 0, status: 'approved' });
    expect((await completeRecoveryRes(t.app, req.requestId, pw)).statusCode).toBe(200);
  });
});

describeBoth('account recovery: parallel requests', (backend) => {
  // Derivations in parallel, so the requests' transactions overlap (the race needs it).
  const t = useTestApp(backend, { env: { KDF_MAX_CONCURRENCY: '16' } });

  it('parallel requests for one account all answer 202 (never 500), leaving exactly one open request', async () => {
    await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const answers = await Promise.all(Array.from({ length: 16 }, () => requestRecoveryRes(t.app, user.email, strongPassword())));
    expect(answers.map((r) => r.statusCode)).toEqual(Array(16).fill(202));
    const [n] = await queryRows<{ n: number }>(t.database, `select count(*)::int as n from recovery_requests where user_id = '${user.id}' and status = 'pending'`);
    expect(Number(n!.n)).toBe(1);
  });
});
