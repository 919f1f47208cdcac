/**
 * Maintenance (issue 5; DESIGN §4; RELIABILITY C10, E6 single-instance part, E7): cleanup,
 * recover and status against fixtures in every token state, each run twice (the second changes
 * nothing), through the service and the admin endpoints; the in-process scheduler; the DB clock.
 * The multi-process races (several instances at once) are proven in test/pg/.
 */
import { MaintenanceRunSchema, type MaintenanceRun, type SystemStatus, SystemStatusSchema } from '@keyturn/shared';
import { beforeAll, expect, it } from 'vitest';
import { offsetClock } from '../src/lib/clock';
import { RUN_RETENTION_SECONDS } from '../src/modules/maintenance/maintenance.service';
import { systemCtx } from '../src/lib/context';
import {
  api,
  countRows,
  createSecret,
  describeBoth,
  expectError,
  json,
  login,
  queryRows,
  registerUser,
  setupAdmin,
  type TestUser,
  useTestApp,
} from './harness';
import {
  approveRotation,
  auditHead,
  auditSince,
  cancelRes,
  dump,
  dumpToken,
  finalizeRes,
  keyVersion,
  readVault,
  rejectRes,
  requestRotation,
  rotate,
  runSql,
  tokenRow,
} from './rotation.helpers';

const PENDING_TTL = 7 * 86_400; // default
const TOKEN_TTL = 86_400; // default
const LOCK_TIMEOUT = 600; // default
const RETENTION = 3_600; // set below: backups live one hour after a rotation ended

const NAMES = [
  'pendingFresh',
  'pendingOverdue',
  'approvedFresh',
  'approvedOverdue',
  'staleUncommitted',
  'staleCommitted',
  'liveLock',
  'completed',
  'finalizedOld',
  'finalizedNew',
  'rejected',
  'cancelled',
] as const;
type Name = (typeof NAMES)[number];

/** The session id inside a session token (JWT claim `sid`). */
const sidOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')).sid;

const countsOf = async (db: Parameters<typeof queryRows>[0]): Promise<Record<string, number>> => {
  const rows = await queryRows<{ status: string; n: number }>(db, 'select status, count(*)::int as n from rotation_tokens group by status');
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
};

/** Per token, what its backup holds: key-row snapshots (rotation_backups) + secrets (packed in rotation_backup_chunks). */
const backupsPerToken = async (db: Parameters<typeof queryRows>[0]): Promise<Record<string, number>> => {
  const rows = await queryRows<{ token_id: string; n: number }>(
    db,
    `select token_id, sum(n)::int as n from (
       select token_id, count(*)::int as n from rotation_backups group by token_id
       union all
       select token_id, sum(row_count)::int from rotation_backup_chunks group by token_id) x
     group by token_id`,
  );
  return Object.fromEntries(rows.map((r) => [r.token_id, Number(r.n)]));
};

const sortedActions = (rows: { action: string }[]) => rows.map((r) => r.action).sort();

describeBoth('ops: maintenance (cleanup, recover, status)', (backend) => {
  const clock = offsetClock();
  const t = useTestApp(backend, { env: { BACKUP_RETENTION_SECONDS: String(RETENTION) }, deps: { clock } });
  const ctx = () => systemCtx(`test-${Date.now()}`, 'test-instance');
  const service = () => t.app.container.maintenance;

  let admin: TestUser;
  const u = {} as Record<Name, TestUser>;
  const tok = {} as Record<Name, string>;
  /** The completed user's first rotation, superseded by their second one. */
  let superseded: string;
  let loggedOutSid: string;
  let loggedOutToken: string;
  let expiredSid: string;
  let staleThrottle: string;
  let freshThrottle: string;

  const ago = (seconds: number) => `now() - interval '${seconds} seconds'`;
  const setToken = (id: string, set: string) => runSql(t.database, `update rotation_tokens set ${set} where id = '${id}'`);

  beforeAll(async () => {
    admin = await setupAdmin(t.app);
    for (const n of NAMES) u[n] = await registerUser(t.app);
    for (const n of ['staleUncommitted', 'staleCommitted', 'completed', 'finalizedOld', 'finalizedNew'] as const) {
      await createSecret(t.app, u[n], { name: `${n}-a`, value: `value a of ${n}` });
      await createSecret(t.app, u[n], { name: `${n}-b`, value: `value b of ${n}` });
    }

    // pending: one fresh, one created past PENDING_TTL
    tok.pendingFresh = (await requestRotation(t, u.pendingFresh)).id;
    tok.pendingOverdue = (await requestRotation(t, u.pendingOverdue)).id;
    await setToken(tok.pendingOverdue, `created_at = ${ago(PENDING_TTL + 3_600)}`);

    // approved: one fresh, one past its expires_at
    for (const n of ['approvedFresh', 'approvedOverdue', 'staleUncommitted', 'liveLock'] as const) {
      tok[n] = (await requestRotation(t, u[n])).id;
      await approveRotation(t, admin, tok[n]);
    }
    await setToken(tok.approvedOverdue, `expires_at = ${ago(60)}`);

    // in_progress, claimed by an instance that died before committing (its lock is stale), and
    // also past expires_at: cleanup must leave it to recover.
    await setToken(
      tok.staleUncommitted,
      `status = 'in_progress', locked_at = ${ago(LOCK_TIMEOUT + 120)}, lock_owner = 'crashed-instance/req-1', expires_at = ${ago(60)}`,
    );
    // in_progress, a live lock (claimed just now), also past expires_at
    await setToken(tok.liveLock, `status = 'in_progress', locked_at = now(), lock_owner = 'live-instance/req-3', expires_at = ${ago(60)}`);

    // in_progress with a stale lock, but the key version was committed (the instance died after
    // COMMIT, before the token row said so): recover must settle it as completed.
    const sc = await rotate(t, admin, u.staleCommitted);
    u.staleCommitted = sc.user;
    tok.staleCommitted = sc.token.id;
    await setToken(
      tok.staleCommitted,
      `status = 'in_progress', completed_at = null, to_key_version = null, locked_at = ${ago(LOCK_TIMEOUT + 120)}, lock_owner = 'crashed-instance/req-2'`,
    );

    // completed (never finalized) long ago, past the restore window (7 days by default): its
    // backups go all the same (issue 10 item 5: old key material does not outlive the window,
    // finalized or not); its predecessor was superseded past retention: those backups go too.
    const c1 = await rotate(t, admin, u.completed);
    const c2 = await rotate(t, admin, c1.user);
    u.completed = c2.user;
    superseded = c1.token.id;
    tok.completed = c2.token.id;
    expect((await tokenRow(t.database, superseded))?.status).toBe('superseded');
    await setToken(superseded, `ended_at = ${ago(RETENTION + 600)}`);
    await setToken(tok.completed, `completed_at = ${ago(30 * 86_400)}`);

    // finalized: one past retention (backups purged), one within (kept)
    for (const n of ['finalizedOld', 'finalizedNew'] as const) {
      const r = await rotate(t, admin, u[n]);
      u[n] = r.user;
      tok[n] = r.token.id;
      const f = await finalizeRes(t, admin, tok[n]);
      expect(f.statusCode, f.body).toBe(200);
    }
    await setToken(tok.finalizedOld, `finalized_at = ${ago(RETENTION + 600)}`);

    tok.rejected = (await requestRotation(t, u.rejected)).id;
    expect((await rejectRes(t, admin, tok.rejected)).statusCode).toBe(200);
    tok.cancelled = (await requestRotation(t, u.cancelled)).id;
    expect((await cancelRes(t, u.cancelled, tok.cancelled)).statusCode).toBe(200);

    // sessions: one logged out, one past expires_at (rotations revoked more)
    const extra = await login(t.app, u.rejected.email, u.rejected.password);
    loggedOutToken = extra.token;
    loggedOutSid = sidOf(extra.token);
    expect((await api(t.app, extra).post('/api/auth/logout')).statusCode).toBe(200);
    const expiring = await login(t.app, u.cancelled.email, u.cancelled.password);
    expiredSid = sidOf(expiring.token);
    await runSql(t.database, `update sessions set expires_at = ${ago(1)} where id = '${expiredSid}'`);

    // throttles: a failed sign-in two days ago (stale) and one just now (kept)
    staleThrottle = `login:${u.pendingFresh.email}`;
    freshThrottle = `login:${u.approvedFresh.email}`;
    for (const email of [u.pendingFresh.email, u.approvedFresh.email]) {
      expect((await api(t.app).post('/api/auth/login', { email, password: 'not the password at all' })).statusCode).toBe(401);
    }
    await runSql(t.database, `update throttles set window_started_at = ${ago(2 * 86_400)} where key = '${staleThrottle}'`);
    expect(await countRows(t.database, 'throttles', `key in ('${staleThrottle}', '${freshThrottle}')`)).toBe(2);
  }, 120_000); // ~40 argon2 derivations: seconds on an idle machine, more on a busy CI box

  const runOf = (res: Awaited<ReturnType<ReturnType<typeof api>['post']>>): MaintenanceRun => {
    expect(res.statusCode, res.body).toBe(200);
    return MaintenanceRunSchema.parse(json(res));
  };

  it('fixtures: every state is present as intended', async () => {
    expect(await countsOf(t.database)).toEqual({
      pending: 2,
      approved: 2,
      in_progress: 3,
      completed: 1,
      finalized: 2,
      superseded: 1,
      rejected: 1,
      cancelled: 1,
    });
    const b = await backupsPerToken(t.database);
    // one key-row backup + one per secret (2)
    const rotated = [tok.staleCommitted, superseded, tok.completed, tok.finalizedOld, tok.finalizedNew];
    for (const id of rotated) expect(b[id]).toBe(3);
    expect(Object.keys(b)).toHaveLength(5);
    // stored as: the key-row snapshot in rotation_backups, the two secrets packed in one chunk
    expect(await countRows(t.database, 'rotation_backups', 'secret_id is not null')).toBe(0);
    const chunks = await queryRows<{ token_id: string; chunk: number; row_count: number }>(t.database, 'select token_id, chunk, row_count from rotation_backup_chunks');
    expect(chunks.map((c) => [c.token_id, c.chunk, c.row_count]).sort()).toEqual(rotated.map((id) => [id, 0, 2]).sort());
  });

  it('with MAINTENANCE_INTERVAL_SECONDS=0 and AUDIT_VERIFY_INTERVAL_SECONDS=0 (this app) the scheduler runs nothing', async () => {
    expect(t.config.MAINTENANCE_INTERVAL_SECONDS).toBe(0);
    expect(t.config.AUDIT_VERIFY_INTERVAL_SECONDS).toBe(0);
    const stop = service().startScheduler(t.app.log);
    await new Promise((r) => setTimeout(r, 1_200));
    await stop();
    expect(await countRows(t.database, 'maintenance_runs')).toBe(0);
    expect((await tokenRow(t.database, tok.pendingOverdue))?.status).toBe('pending');
  });

  it('status reports counts, oldest pending age, awaiting finalization, stale locks, overdue expiries, no runs yet, never verified', async () => {
    const s = await service().status();
    expect(SystemStatusSchema.parse(s)).toEqual(s);
    expect(s.counts).toEqual(await countsOf(t.database));
    // created PENDING_TTL + 1 h ago (a few seconds of test run on top)
    expect(s.oldestPendingAgeSeconds).toBeGreaterThanOrEqual(PENDING_TTL + 3_600);
    expect(s.oldestPendingAgeSeconds).toBeLessThan(PENDING_TTL + 3_600 + 600);
    expect(s.awaitingFinalization).toBe(1);
    expect(s.staleLocks).toBe(2);
    expect(s.overdueExpiries).toBe(2);
    expect(s.lastCleanup).toBeNull();
    expect(s.lastRecover).toBeNull();
    // No full verify ran yet: status says so instead of walking the chain (ops.audit-verdict.test.ts).
    expect(s.audit).toEqual({
      ok: false,
      checked: 0,
      firstBadSeq: null,
      verdict: 'never_verified',
      problem: null,
      verifiedAt: null,
      verifiedHead: null,
      appendedSince: await countRows(t.database, 'audit_events'),
    });
    expect(s.rotationsByDay).toHaveLength(14);
    expect(s.rotationsByDay.reduce((n, d) => n + d.failed, 0)).toBe(0);
  });

  it('GET /admin/api/rotation_status answers what the service computes', async () => {
    const res = await api(t.app, admin).get('/admin/api/rotation_status');
    expect(res.statusCode, res.body).toBe(200);
    const viaHttp = SystemStatusSchema.parse(json(res));
    const direct = await service().status();
    const strip = ({ at: _a, oldestPendingAgeSeconds: _o, ...rest }: SystemStatus) => rest;
    expect(strip(viaHttp)).toEqual(strip(direct));
    expect(Math.abs((viaHttp.oldestPendingAgeSeconds ?? 0) - (direct.oldestPendingAgeSeconds ?? 0))).toBeLessThanOrEqual(5);
  });

  it('admin endpoints: 401 without a session, 403 for a non-admin, and nothing runs', async () => {
    const runsBefore = await countRows(t.database, 'maintenance_runs');
    const tokensBefore = await dump(t.database, 'select * from rotation_tokens order by id');
    for (const [method, url] of [
      ['POST', '/admin/api/maintenance/cleanup'],
      ['POST', '/admin/api/maintenance/recover'],
      ['GET', '/admin/api/rotation_status'],
    ] as const) {
      expectError(await api(t.app).send(method, url), 401, 'UNAUTHENTICATED');
      expectError(await api(t.app, 'not.a.valid-token').send(method, url), 401, 'UNAUTHENTICATED');
      expectError(await api(t.app, loggedOutToken).send(method, url), 401, 'UNAUTHENTICATED');
      expectError(await api(t.app, u.rejected).send(method, url), 403, 'FORBIDDEN');
    }
    expect(await countRows(t.database, 'maintenance_runs')).toBe(runsBefore);
    expect(await dump(t.database, 'select * from rotation_tokens order by id')).toBe(tokensBefore);
  });

  it('cleanup (POST /admin/api/maintenance/cleanup) expires exactly the overdue tokens and purges exactly what is past its time', async () => {
    const counts = await countsOf(t.database);
    const untouchedIds = Object.values(tok).filter((id) => id !== tok.pendingOverdue && id !== tok.approvedOverdue);
    untouchedIds.push(superseded);
    const untouchedQuery = `select * from rotation_tokens where id in (${untouchedIds.map((id) => `'${id}'`).join(',')}) order by id`;
    const untouchedBefore = await dump(t.database, untouchedQuery);
    const inProgressBefore = await Promise.all([tok.staleUncommitted, tok.staleCommitted, tok.liveLock].map((id) => dumpToken(t.database, id)));
    const backupsBefore = await backupsPerToken(t.database);
    const endedSessions = (
      await queryRows<{ id: string }>(t.database, 'select id from sessions where revoked_at is not null or expires_at <= now()')
    ).map((r) => r.id);
    expect(endedSessions).toEqual(expect.arrayContaining([loggedOutSid, expiredSid]));
    const liveSessions = (await queryRows<{ id: string }>(t.database, 'select id from sessions where revoked_at is null and expires_at > now()')).map(
      (r) => r.id,
    );
    const auditRowsBefore = await dump(t.database, 'select seq, hash from audit_events order by seq');
    const auditCountBefore = await countRows(t.database, 'audit_events');
    const head = await auditHead(t.database);

    const cleanup1 = runOf(await api(t.app, admin).post('/admin/api/maintenance/cleanup'));

    expect(cleanup1.kind).toBe('cleanup');
    expect(cleanup1.changes).toEqual({
      tokensExpired: 2,
      recoveriesExpired: 0,
      backupsPurged: 9, // three rotations × (key-row snapshot + two secrets in a chunk)
      sessionsPurged: endedSessions.length,
      throttlesPurged: 1,
      rateLimitsPurged: 0,
      runsPurged: 0,
    });
    // tokens: the oracle is the counts before with the two overdue ones moved to expired
    expect(await countsOf(t.database)).toEqual({ ...counts, pending: counts.pending! - 1, approved: counts.approved! - 1, expired: 2 });
    for (const id of [tok.pendingOverdue, tok.approvedOverdue]) {
      expect(await tokenRow(t.database, id)).toMatchObject({ status: 'expired', decision_note: 'expired by cleanup', temp_hash: null });
    }
    expect(await dump(t.database, untouchedQuery)).toBe(untouchedBefore);
    const inProgressAfter = await Promise.all([tok.staleUncommitted, tok.staleCommitted, tok.liveLock].map((id) => dumpToken(t.database, id)));
    expect(inProgressAfter).toEqual(inProgressBefore);

    // backups: exactly those of rotations that ended more than RETENTION ago or completed more
    // than the restore window ago
    const backupsAfter = await backupsPerToken(t.database);
    expect(backupsAfter).toEqual({
      [tok.staleCommitted]: backupsBefore[tok.staleCommitted],
      [tok.finalizedNew]: backupsBefore[tok.finalizedNew],
    });

    // sessions: the ended ones are gone, every live one is still there and still works
    expect(await countRows(t.database, 'sessions', `id in (${endedSessions.map((id) => `'${id}'`).join(',')})`)).toBe(0);
    const liveAfter = (await queryRows<{ id: string }>(t.database, 'select id from sessions')).map((r) => r.id).sort();
    expect(liveAfter).toEqual([...liveSessions].sort());
    expect((await api(t.app, admin).get('/api/auth/me')).statusCode).toBe(200);
    expectError(await api(t.app, loggedOutToken).get('/api/auth/me'), 401, 'UNAUTHENTICATED');

    // throttles: the stale one only
    expect((await queryRows<{ key: string }>(t.database, `select key from throttles where key in ('${staleThrottle}', '${freshThrottle}')`)).map((r) => r.key)).toEqual([
      freshThrottle,
    ]);

    // audit: nothing deleted or changed; one event per expired token and one for the run
    expect(await countRows(t.database, 'audit_events')).toBeGreaterThanOrEqual(auditCountBefore);
    expect(await dump(t.database, `select seq, hash from audit_events where seq <= ${head} order by seq`)).toBe(auditRowsBefore);
    const events = await auditSince(t.database, head);
    expect(sortedActions(events)).toEqual(['maintenance.cleanup', 'rotation.expired', 'rotation.expired']);
    expect(events.filter((e) => e.action === 'rotation.expired').map((e) => e.target).sort()).toEqual(
      [`rotation:${tok.pendingOverdue}`, `rotation:${tok.approvedOverdue}`].sort(),
    );
    const runEvent = events.find((e) => e.action === 'maintenance.cleanup')!;
    expect(runEvent).toMatchObject({ actor_id: admin.id, role: 'admin', outcome: 'success', details: cleanup1.changes });
    expect(await countRows(t.database, 'maintenance_runs', `kind = 'cleanup'`)).toBe(1);
  });

  it('a second cleanup reports 0 changes and changes nothing but its own record', async () => {
    const state = await dump(t.database, 'select * from rotation_tokens order by id');
    const backups = await dump(t.database, 'select id from rotation_backups order by id');
    const chunks = await dump(t.database, 'select token_id, chunk, row_count, md5(data) from rotation_backup_chunks order by token_id, chunk');
    const sessions = await dump(t.database, 'select id from sessions order by id');
    const head = await auditHead(t.database);
    const run = (await service().cleanup(ctx()))!;
    expect(run.changes).toEqual({ tokensExpired: 0, recoveriesExpired: 0, backupsPurged: 0, sessionsPurged: 0, throttlesPurged: 0, rateLimitsPurged: 0, runsPurged: 0 });
    expect(await dump(t.database, 'select * from rotation_tokens order by id')).toBe(state);
    expect(await dump(t.database, 'select id from rotation_backups order by id')).toBe(backups);
    expect(await dump(t.database, 'select token_id, chunk, row_count, md5(data) from rotation_backup_chunks order by token_id, chunk')).toBe(chunks);
    expect(await dump(t.database, 'select id from sessions order by id')).toBe(sessions);
    const events = await auditSince(t.database, head);
    expect(events.map((e) => [e.action, e.role, e.details])).toEqual([['maintenance.cleanup', 'system', run.changes]]);
  });

  it('recover (POST /admin/api/maintenance/recover) settles exactly the stale locks from the database truth', async () => {
    const liveBefore = await dumpToken(t.database, tok.liveLock);
    const others = [...Object.values(tok), superseded].filter((id) => id !== tok.staleUncommitted && id !== tok.staleCommitted);
    const othersQuery = `select * from rotation_tokens where id in (${others.map((id) => `'${id}'`).join(',')}) order by id`;
    const othersBefore = await dump(t.database, othersQuery);
    const counts = await countsOf(t.database);
    const head = await auditHead(t.database);
    const kvBefore = await keyVersion(t.database, u.staleUncommitted.id);

    const recover1 = runOf(await api(t.app, admin).post('/admin/api/maintenance/recover'));

    expect(recover1.kind).toBe('recover');
    expect(recover1.changes).toEqual({ settled: 2, failed: 1 });
    expect([...(recover1.settled ?? [])].sort((a, b) => a.tokenId.localeCompare(b.tokenId))).toEqual(
      [
        { tokenId: tok.staleUncommitted, to: 'failed', reason: expect.any(String) },
        { tokenId: tok.staleCommitted, to: 'completed', reason: expect.any(String) },
      ].sort((a, b) => a.tokenId.localeCompare(b.tokenId)),
    );
    expect(await countsOf(t.database)).toEqual({ ...counts, in_progress: 1, failed: 1, completed: counts.completed! + 1 });
    expect(await tokenRow(t.database, tok.staleUncommitted)).toMatchObject({ status: 'failed', failure_reason: 'INTERRUPTED', temp_hash: null });
    const committed = await tokenRow(t.database, tok.staleCommitted);
    expect(committed).toMatchObject({ status: 'completed', to_key_version: 2 });
    expect(await keyVersion(t.database, u.staleCommitted.id)).toBe(2);
    // the live lock and every other token are exactly as they were
    expect(await dumpToken(t.database, tok.liveLock)).toBe(liveBefore);
    expect(await dump(t.database, othersQuery)).toBe(othersBefore);

    // the interrupted user's keys and secrets are untouched, and they may ask again
    expect(await keyVersion(t.database, u.staleUncommitted.id)).toBe(kvBefore);
    expect(await readVault(t.app, u.staleUncommitted)).toEqual({
      'staleUncommitted-a': 'value a of staleUncommitted',
      'staleUncommitted-b': 'value b of staleUncommitted',
    });

    const events = await auditSince(t.database, head);
    expect(sortedActions(events)).toEqual(['maintenance.recover', 'rotation.recovered', 'rotation.recovered']);
    const settledEvents = events.filter((e) => e.action === 'rotation.recovered');
    expect(Object.fromEntries(settledEvents.map((e) => [e.target, e.details.to]))).toEqual({
      [`rotation:${tok.staleUncommitted}`]: 'failed',
      [`rotation:${tok.staleCommitted}`]: 'completed',
    });
    expect(events.find((e) => e.action === 'maintenance.recover')).toMatchObject({ actor_id: admin.id, details: { settled: 2, failed: 1 } });

    // no open token is left for the interrupted user
    tok.staleUncommitted = (await requestRotation(t, u.staleUncommitted, 'after the interruption')).id;
  });

  let recover2: MaintenanceRun;
  let cleanup2: MaintenanceRun;

  it('a second recover settles nothing (and a third cleanup still nothing)', async () => {
    const state = await dump(t.database, 'select * from rotation_tokens order by id');
    const head = await auditHead(t.database);
    recover2 = (await service().recover(ctx()))!;
    expect(recover2.changes).toEqual({ settled: 0, failed: 0 });
    expect(recover2.settled).toEqual([]);
    cleanup2 = (await service().cleanup(ctx()))!;
    expect(Object.values(cleanup2.changes).every((n) => n === 0)).toBe(true);
    expect(await dump(t.database, 'select * from rotation_tokens order by id')).toBe(state);
    expect((await auditSince(t.database, head)).map((e) => e.action)).toEqual(['maintenance.recover', 'maintenance.cleanup']);
  });

  it('status after the runs and a verify: the new counts, no stale locks or overdue expiries, the last runs and a sound chain', async () => {
    const verify = await api(t.app, admin).get('/admin/api/audit/verify');
    expect(verify.statusCode, verify.body).toBe(200);
    const verified = json<{ ok: boolean; checked: number; head: { seq: number; hash: string } }>(verify);
    const res = await api(t.app, admin).get('/admin/api/rotation_status');
    expect(res.statusCode, res.body).toBe(200);
    const s = SystemStatusSchema.parse(json(res));
    expect(s.counts).toEqual({
      pending: 2,
      approved: 1,
      in_progress: 1,
      completed: 2,
      finalized: 2,
      superseded: 1,
      rejected: 1,
      cancelled: 1,
      expired: 2,
      failed: 1,
    });
    expect(s.oldestPendingAgeSeconds).toBeGreaterThanOrEqual(0);
    expect(s.oldestPendingAgeSeconds).toBeLessThan(600);
    expect(s.awaitingFinalization).toBe(2);
    expect(s.staleLocks).toBe(0);
    expect(s.overdueExpiries).toBe(0);
    expect(s.lastCleanup).toEqual(cleanup2);
    expect(s.lastRecover).toEqual(recover2);
    expect(s.audit).toEqual({
      ok: true,
      checked: await countRows(t.database, 'audit_events'),
      firstBadSeq: null,
      verdict: 'ok',
      problem: null,
      verifiedAt: expect.any(String),
      verifiedHead: verified.head,
      appendedSince: 0,
    });
    expect(verified).toMatchObject({ ok: true, checked: s.audit.checked });
    const today = s.rotationsByDay.at(-1)!;
    expect(today.failed).toBe(1); // the interrupted one, settled today
    expect(await countRows(t.database, 'maintenance_runs')).toBe(6); // cleanup ×3, recover ×2, audit_verify ×1
  });

  it('expiry and lock age follow the database clock (moved through the injected clock), not the host', async () => {
    try {
      // just short of the lock timeout: nothing is stale, nothing expires
      clock.offsetMs = (LOCK_TIMEOUT - 120) * 1000;
      expect((await service().status()).staleLocks).toBe(0);
      expect((await service().recover(ctx()))!.changes).toEqual({ settled: 0, failed: 0 });
      expect((await service().cleanup(ctx()))!.changes.tokensExpired).toBe(0);

      // past the lock timeout: the live lock of a moment ago is now stale and is settled
      clock.offsetMs = (LOCK_TIMEOUT + 120) * 1000;
      expect((await service().status()).staleLocks).toBe(1);
      const r = (await service().recover(ctx()))!;
      expect(r.settled).toEqual([{ tokenId: tok.liveLock, to: 'failed', reason: expect.any(String) }]);
      expect((await tokenRow(t.database, tok.liveLock))?.failure_reason).toBe('INTERRUPTED');

      // past TOKEN_TTL: the approved token expires, the pending ones (7 days) do not
      clock.offsetMs = (TOKEN_TTL + 120) * 1000;
      expect((await service().status()).overdueExpiries).toBe(1);
      expect((await service().cleanup(ctx()))!.changes.tokensExpired).toBe(1);
      expect((await tokenRow(t.database, tok.approvedFresh))?.status).toBe('expired');
      expect((await tokenRow(t.database, tok.pendingFresh))?.status).toBe('pending');

      // past PENDING_TTL: both pending tokens expire
      clock.offsetMs = (PENDING_TTL + 120) * 1000;
      const c = (await service().cleanup(ctx()))!;
      expect(c.changes.tokensExpired).toBe(2);
      const s = await service().status();
      expect(s.counts.pending ?? 0).toBe(0);
      expect(s.counts.approved ?? 0).toBe(0);
      expect(s.counts.in_progress ?? 0).toBe(0);
      // the run is stamped with the database's (moved) time
      expect(Date.parse(c.at) - Date.now()).toBeGreaterThan((PENDING_TTL - 3_600) * 1000);
      expect(s.audit.ok).toBe(true);
    } finally {
      clock.offsetMs = 0;
    }
  });
  it('cleanup drops run records older than 30 days but keeps the newest of each kind, which status shows', async () => {
    const kinds = async () => new Map((await queryRows<{ kind: string; n: number }>(t.database, 'select kind, count(*)::int as n from maintenance_runs group by kind')).map((r) => [r.kind, r.n]));
    const before = await kinds();
    const total = [...before.values()].reduce((a, b) => a + b, 0);
    expect(before.get('audit_verify')).toBeGreaterThanOrEqual(1);
    try {
      // every run so far was made at most a few days into the (moved) clock: 40 days on, all are old
      clock.offsetMs = (RUN_RETENTION_SECONDS + 10 * 86_400) * 1000;
      const run = (await service().cleanup(ctx()))!;
      expect(run.changes.runsPurged).toBe(total - before.size);
      const after = await kinds();
      expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
      for (const [kind, n] of after) expect(n, kind).toBe(kind === 'cleanup' ? 2 : 1); // + the run just recorded
      expect((await service().status()).audit.verdict).not.toBe('never_verified');
      // the next cleanup drops the old cleanup record the last one kept (no longer the newest);
      // the one after that finds nothing
      expect((await service().cleanup(ctx()))!.changes.runsPurged).toBe(1);
      expect((await service().cleanup(ctx()))!.changes.runsPurged).toBe(0);
    } finally {
      clock.offsetMs = 0;
    }
  });
});

describeBoth('ops: maintenance scheduler', (backend) => {
  const t = useTestApp(backend, { env: { MAINTENANCE_INTERVAL_SECONDS: '1' } });

  it('startScheduler (every second) expires an overdue token once, audited as the system', async () => {
    await setupAdmin(t.app);
    const user = await registerUser(t.app);
    const token = await requestRotation(t, user);
    await runSql(t.database, `update rotation_tokens set created_at = now() - interval '${PENDING_TTL + 60} seconds' where id = '${token.id}'`);
    const stop = t.app.container.maintenance.startScheduler(t.app.log);
    try {
      const deadline = Date.now() + 8_000;
      while ((await tokenRow(t.database, token.id))?.status !== 'expired' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
      }
      // ~2.5 s more: a second tick, which has the chance to (wrongly) act again
      const cleanups = () => countRows(t.database, 'maintenance_runs', `kind = 'cleanup'`);
      const second = Date.now() + 10_000;
      await new Promise((r) => setTimeout(r, 2_500));
      while ((await cleanups()) < 2 && Date.now() < second) await new Promise((r) => setTimeout(r, 250));
    } finally {
      stop();
    }
    // let a tick that was in flight when stopped finish (its recover half included)
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await tokenRow(t.database, token.id)).toMatchObject({ status: 'expired', decision_note: 'expired by cleanup' });
    const events = await queryRows<{ action: string; role: string; actor_email: string }>(
      t.database,
      `select action, role, actor_email from audit_events where target = 'rotation:${token.id}' and action = 'rotation.expired'`,
    );
    expect(events).toEqual([{ action: 'rotation.expired', role: 'system', actor_email: `system:${t.config.instanceId}` }]);
    const runs = await queryRows<{ kind: string; instance: string }>(t.database, 'select kind, instance from maintenance_runs');
    expect(runs.filter((r) => r.kind === 'cleanup').length).toBeGreaterThanOrEqual(2);
    expect(runs.filter((r) => r.kind === 'recover').length).toBeGreaterThanOrEqual(2);
    expect(new Set(runs.map((r) => r.instance))).toEqual(new Set([t.config.instanceId]));
    // its log line is JSON and says what changed
    const logged = t.logs.entries().filter((e) => e.msg === 'maintenance run');
    expect(logged.length).toBeGreaterThanOrEqual(1);
    expect(logged.some((e) => (e.cleanup as { tokensExpired?: number } | undefined)?.tokensExpired === 1)).toBe(true);

    // stopped: no further runs
    const n = await countRows(t.database, 'maintenance_runs');
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await countRows(t.database, 'maintenance_runs')).toBe(n);
  }, 60_000);
});

