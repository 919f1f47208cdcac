import { randomUUID } from 'node:crypto';
import {
  AppError,
  type RequestRotationBody,
  type RotateResult,
  type RotateWithTokenBody,
  type RotationListQuery,
} from '@keyturn/shared';
import {
  dekMatchesCheckValue,
  fingerprint,
  generateDek,
  generateTempPassword,
  hashTempPassword,
  type KdfParams,
  newKeyMaterial,
  openPendingADek,
  sealFinalADek,
  tempPasswordMatches,
  unlockKeyMaterial,
  unwrapAmkForAdmin,
  wipe,
  wrapAmkForAdmin,
} from '@keyturn/shared/crypto';
import { BackupChunkError, createRowsDigest, reencryptAll, RotationAbort, type RotationHooks } from '@keyturn/shared/rotation';
import { sql } from 'drizzle-orm';
import { type Database, type Db, type DbOrTx, isUniqueViolation } from '../../db/client';
import type { Clock } from '../../lib/clock';
import type { RequestCtx } from '../../lib/context';
import type { AuditService } from '../audit/audit.service';
import type { AuthRepo } from '../auth/auth.repo';
import type { AuthContext, AuthService } from '../auth/auth.service';
import type { Metrics } from '../health/metrics';
import type { AmkRepo } from '../setup/amk.repo';
import { type KeySnapshot, type RotationRepo, snapshotKeyRow, type TokenRow } from './rotation.repo';
import { actorIdsOf, toView } from './rotation.view';

export type { RotationHooks };

export interface RotationServiceDeps {
  db: Db;
  database: Database;
  repo: RotationRepo;
  authRepo: AuthRepo;
  amkRepo: AmkRepo;
  auth: AuthService;
  audit: AuditService;
  clock: Clock;
  metrics: Metrics;
  hooks: RotationHooks;
  config: {
    kdf: KdfParams;
    instanceId: string;
    TOKEN_TTL_SECONDS: number;
    PENDING_TTL_SECONDS: number;
    TEMP_PASSWORD_MAX_ATTEMPTS: number;
    ROTATION_BATCH_SIZE: number;
  };
}

const notFound = () => new AppError('NOT_FOUND', 'No such rotation request.');
/** Other attempts for this rotation hold every evaluation slot (R4, and the password throttle's). */
const inFlight = () => new AppError('LOST_RACE', 'Another attempt for this rotation is being checked. Try again in a moment.');
const target = (id: string) => `rotation:${id}`;

export function createRotationService(deps: RotationServiceDeps) {
  const { db, repo, audit, clock, config, hooks } = deps;
  const max = config.TEMP_PASSWORD_MAX_ATTEMPTS;

  async function dbNow(h: DbOrTx = db): Promise<Date> {
    const [r] = await deps.database.rows<{ now: string | Date }>(sql`select ${clock.now()} as now`, h);
    return new Date(r!.now);
  }
  const pendingOverdue = (t: TokenRow, now: Date) => t.status === 'pending' && t.createdAt.getTime() + config.PENDING_TTL_SECONDS * 1000 <= now.getTime();
  const approvedOverdue = (t: TokenRow, now: Date) => t.status === 'approved' && !!t.expiresAt && t.expiresAt.getTime() <= now.getTime();

  async function view(t: TokenRow, h: DbOrTx = db) {
    const emails = await repo.emailsOf(h, [t.userId, ...actorIdsOf(t)]);
    return toView(t, emails.get(t.userId) ?? '', emails, max);
  }

  /** An overdue token is refused (410) even before cleanup runs, and expired on the spot. */
  async function expireIfOverdue(ctx: RequestCtx, t: TokenRow): Promise<void> {
    const now = await dbNow();
    if (!pendingOverdue(t, now) && !approvedOverdue(t, now)) return;
    await expireToken(ctx, t, 'overdue when used');
    throw new AppError('TOKEN_EXPIRED', 'This rotation request has expired. Ask for a new one.');
  }

  async function expireToken(ctx: RequestCtx, t: TokenRow, note: string): Promise<boolean> {
    return db.transaction(async (tx) => {
      const moved = await repo.transition(tx, t.id, [t.status], { status: 'expired', decidedAt: sql`${clock.now()}`, decisionNote: note, tempHash: null });
      if (moved) await audit.record(tx, ctx, { action: 'rotation.expired', outcome: 'success', target: target(t.id), details: { from: t.status, note } });
      return !!moved;
    });
  }

  /** The attempt cap was reached: approved → revoked (once), then 423. */
  async function revoke(ctx: RequestCtx, tokenId: string, attempts: number): Promise<never> {
    await db.transaction(async (tx) => {
      const moved = await repo.transition(tx, tokenId, ['approved'], {
        status: 'revoked',
        decidedAt: sql`${clock.now()}`,
        tempHash: null,
        decisionNote: 'too many wrong temporary passwords',
      });
      if (moved) await audit.record(tx, ctx, { action: 'rotation.revoked', outcome: 'success', target: target(tokenId), details: { attempts } });
    });
    throw new AppError('TOKEN_REVOKED', 'Too many wrong temporary passwords: this rotation request is revoked. Ask for a new one.');
  }

  function refuseState(t: TokenRow, action: string): never {
    if (t.status === 'expired') throw new AppError('TOKEN_EXPIRED', 'This rotation request has expired. Ask for a new one.');
    if (t.status === 'revoked') throw new AppError('TOKEN_REVOKED', 'This rotation request was revoked after too many wrong temporary passwords. Ask for a new one.');
    if (t.status === 'in_progress') throw new AppError('LOST_RACE', 'This rotation is already running.');
    throw new AppError('INVALID_STATE', `A rotation request that is ${t.status.replace('_', ' ')} cannot be ${action}.`, { status: t.status });
  }

  /** The owner's token, or 404 (also for another user's token), with the denial audited. */
  async function loadOwned(ctx: RequestCtx, a: AuthContext, tokenId: string, action: string): Promise<TokenRow> {
    const t = await repo.get(db, tokenId);
    if (!t || t.userId !== a.userId) {
      await audit.recordDetached(ctx, { action, outcome: 'denied', target: target(tokenId), details: { reason: t ? 'not_owner' : 'not_found' } });
      throw notFound();
    }
    return t;
  }

  async function loadAny(tokenId: string): Promise<TokenRow> {
    const t = await repo.get(db, tokenId);
    if (!t) throw notFound();
    return t;
  }

  /** Fresh admin authentication → the AMK private key, only in this request's memory. */
  async function withAmkPrivate<T>(ctx: RequestCtx, a: AuthContext, password: string, action: string, fn: (amkPrivate: Buffer) => Promise<T>): Promise<T> {
    const kek = await deps.auth.reauthenticateAdmin(ctx, a.userId, password, action);
    let priv: Buffer | null = null;
    try {
      const wrap = await deps.amkRepo.wrapFor(db, a.userId);
      if (!wrap) throw new AppError('FORBIDDEN', 'This admin holds no share of the admin master key.');
      priv = unwrapAmkForAdmin(kek, wrap.wrappedPrivate, a.userId, wrap.amkId);
      return await fn(priv);
    } finally {
      wipe(kek, priv);
    }
  }

  return {
    // ---------------------------------------------------------------- user side
    async request(ctx: RequestCtx, a: AuthContext, body: RequestRotationBody) {
      try {
        return await db.transaction(async (tx) => {
          const keys = await deps.authRepo.findUserWithKeys(tx, a.userId);
          if (!keys) throw new AppError('UNAUTHENTICATED', 'Sign in again.');
          const t = await repo.insertToken(tx, {
            id: randomUUID(),
            userId: a.userId,
            status: 'pending',
            reason: body.reason,
            fromKeyVersion: keys.keys.keyVersion,
            createdAt: sql`${clock.now()}` as unknown as Date,
          });
          await audit.record(tx, ctx, { action: 'rotation.requested', outcome: 'success', target: target(t.id), details: { fingerprint: fingerprint(t.id) } });
          return view(t, tx);
        });
      } catch (e) {
        if (isUniqueViolation(e)) {
          throw new AppError('OPEN_REQUEST_EXISTS', 'You already have an open rotation request. Cancel it or finish it first.');
        }
        throw e;
      }
    },

    async listMine(a: AuthContext) {
      const { rows, total } = await repo.list(db, { userId: a.userId, limit: 100, offset: 0 });
      const items = await Promise.all(rows.map((r) => view(r.token)));
      return { items, total };
    },

    async cancel(ctx: RequestCtx, a: AuthContext, tokenId: string) {
      const t = await loadOwned(ctx, a, tokenId, 'rotation.cancelled');
      if (t.status !== 'pending' && t.status !== 'approved') refuseState(t, 'cancelled');
      return db.transaction(async (tx) => {
        const moved = await repo.transition(tx, t.id, ['pending', 'approved'], { status: 'cancelled', decidedAt: sql`${clock.now()}`, decidedBy: a.userId, tempHash: null });
        if (!moved) throw new AppError('LOST_RACE', 'This request changed state meanwhile. Reload and try again.');
        await audit.record(tx, ctx, { action: 'rotation.cancelled', outcome: 'success', target: target(t.id), details: { from: t.status } });
        return view(moved, tx);
      });
    },

    /**
     * Execute an approved rotation (DESIGN §3). Credentials and argon2 first, outside any
     * transaction; then one compare-and-set claims the token; then one transaction re-encrypts.
     */
    async execute(ctx: RequestCtx, a: AuthContext, body: RotateWithTokenBody): Promise<RotateResult & { sessionToken: string }> {
      const action = 'rotation.execute';
      const t = await loadOwned(ctx, a, body.tokenId, action);
      if (t.status !== 'approved') {
        await audit.recordDetached(ctx, { action, outcome: 'denied', target: target(t.id), details: { reason: 'state', status: t.status } });
        refuseState(t, 'executed');
      }
      await expireIfOverdue(ctx, t);

      // 1. Temporary password: reserve one evaluation atomically, so parallel guesses can
      //    never evaluate more than the cap; a right guess gives its slot back.
      const slot = await repo.reserveAttempt(db, t.id, max);
      if (slot === null) {
        const now = await repo.get(db, t.id);
        // Still approved: the cap is taken by evaluations in flight (a right guess gives its slot
        // back; the wrong guess that takes the last slot revokes the token itself). Revoking here
        // would let parallel executes with the right password revoke their own token (C4).
        if (now && now.status === 'approved') throw inFlight();
        refuseState(now ?? t, 'executed');
      }
      if (!t.tempHash || !tempPasswordMatches(t.id, body.tempPassword, t.tempHash)) {
        const left = max - slot;
        await audit.recordDetached(ctx, { action, outcome: 'failure', target: target(t.id), details: { reason: 'wrong_temp_password', attempt: slot } });
        if (left <= 0) await revoke(ctx, t.id, slot);
        throw new AppError('WRONG_TEMP_PASSWORD', `The temporary password is not right. ${left} ${left === 1 ? 'try' : 'tries'} left.`, { attemptsLeft: left });
      }
      await repo.releaseAttempt(db, t.id);

      // 2. The user's current password (argon2, outside any transaction), proven by the DEK check value.
      const user = await deps.authRepo.findUserWithKeys(db, a.userId);
      if (!user) throw notFound();
      // Guesses here count on the login throttle (reserved before the derivation, README of auth
      // A5): a blocked account evaluates none here either.
      const attempt = await deps.auth.reserveAttempt(`login:${user.user.email}`, { ...deps.auth.loginLimit(), busy: inFlight }, () =>
        audit.recordDetached(ctx, { action, outcome: 'denied', target: target(t.id), details: { reason: 'throttled' } }),
      );
      let unlocked: Awaited<ReturnType<typeof unlockKeyMaterial>>;
      try {
        unlocked = await deps.auth.kdfCost(() => unlockKeyMaterial(a.userId, body.currentPassword, user.keys));
        if (!unlocked.ok && unlocked.reason === 'WRONG_PASSWORD') {
          await attempt.failed();
          await audit.recordDetached(ctx, { action, outcome: 'failure', target: target(t.id), details: { reason: 'wrong_current_password' } });
          throw new AppError('INVALID_CREDENTIALS', 'Your current password is not right.');
        }
        if (unlocked.ok) await attempt.succeeded();
      } finally {
        await attempt.abandoned();
      }
      if (!unlocked.ok) {
        // The stored key does not match its check value: fail before touching any secret.
        await db.transaction(async (tx) => {
          const moved = await repo.transition(tx, t.id, ['approved'], { status: 'failed', failedAt: sql`${clock.now()}`, failureReason: 'KEY_CHECK_FAILED', tempHash: null });
          if (moved) await audit.record(tx, ctx, { action: 'rotation.failed', outcome: 'failure', target: target(t.id), details: { reason: 'KEY_CHECK_FAILED' } });
        });
        throw new AppError('KEY_CHECK_FAILED', 'Your stored key failed its integrity check, so nothing was rotated. An administrator must look at this account.');
      }
      if (user.keys.keyVersion !== t.fromKeyVersion) {
        // E.g. an admin restored an older rotation meanwhile: settle this token so it does not
        // stay open (and block a new request) until it expires.
        wipe(unlocked.dek, unlocked.kek);
        await db.transaction(async (tx) => {
          const moved = await repo.transition(tx, t.id, ['approved'], { status: 'failed', failedAt: sql`${clock.now()}`, failureReason: 'KEY_CHANGED', tempHash: null });
          if (moved) await audit.record(tx, ctx, { action: 'rotation.failed', outcome: 'failure', target: target(t.id), details: { reason: 'KEY_CHANGED' } });
        });
        throw new AppError('INVALID_STATE', 'Your keys changed since this request was made. Ask for a new rotation.', { reason: 'KEY_CHANGED' });
      }

      // 3. New key material from the new (or same) password, with a new salt — still outside.
      const amk = await deps.amkRepo.get(db);
      const toKv = t.fromKeyVersion + 1;
      const newDek = generateDek();
      const fresh = await deps.auth.kdfCost(() =>
        newKeyMaterial({
          userId: a.userId,
          password: body.newPassword ?? body.currentPassword,
          keyVersion: toKv,
          kdf: config.kdf,
          amkPublic: amk?.publicKey ?? null,
          dek: newDek,
        }),
      );
      const amkWrap = user.user.role === 'admin' ? await deps.amkRepo.wrapFor(db, a.userId) : null;

      // 4. Claim: approved → in_progress, one compare-and-set; exactly one executor wins.
      const lockOwner = `${config.instanceId}/${ctx.requestId}`;
      const started = Date.now();
      const claimed = await db.transaction(async (tx) => {
        const c = await repo.transition(tx, t.id, ['approved'], { status: 'in_progress', lockedAt: sql`${clock.now()}`, lockOwner }, sql`expires_at > ${clock.now()}`);
        if (c) await audit.record(tx, ctx, { action: 'rotation.started', outcome: 'success', target: target(t.id), details: { fromKeyVersion: t.fromKeyVersion } });
        return c;
      });
      if (!claimed) {
        wipe(unlocked.dek, unlocked.kek, newDek, fresh.kek);
        const now = await repo.get(db, t.id);
        if (now?.status === 'approved') await expireIfOverdue(ctx, now);
        throw new AppError('LOST_RACE', 'This rotation is already running or finished.');
      }

      try {
        await hooks.afterClaim?.(t.id);
        const result = await db.transaction(async (tx) => {
          // The token row first: recover skips rows a live rotation holds (SKIP LOCKED).
          await repo.get(tx, t.id, 'update');
          let keyRowBefore: KeySnapshot | null = null;
          const r = await reencryptAll({
            tokenId: t.id,
            userId: a.userId,
            oldDek: unlocked.dek,
            newDek,
            fromKeyVersion: t.fromKeyVersion,
            toKeyVersion: toKv,
            expectedWrappedDek: user.keys.wrappedDek,
            batchSize: config.ROTATION_BATCH_SIZE,
            hooks,
            store: {
              lockKeyRow: async () => {
                const k = await repo.lockKeyRow(tx, a.userId);
                if (!k) throw new RotationAbort('KEY_CHANGED', 'key row missing');
                keyRowBefore = snapshotKeyRow(k, amkWrap);
                return k;
              },
              countSecrets: () => repo.countSecrets(tx, a.userId),
              backupKeyRow: () => repo.backupKeyRow(tx, t.id, a.userId, keyRowBefore!),
              readBatch: (after, limit) => repo.readBatch(tx, a.userId, after, limit),
              // Each batch's write also stores its old rows as one backup chunk (R7).
              writeBatch: (rows, chunk) => repo.writeBatch(tx, t.id, a.userId, rows, chunk),
              countNotAt: (kv) => repo.countNotAt(tx, a.userId, kv),
            },
          });
          await repo.writeKeyRow(tx, a.userId, { ...fresh.material, adekFinal: null, adekFinalizedAt: null });
          if (amkWrap) {
            // An admin's share of the AMK follows their KEK to the new password.
            const priv = unwrapAmkForAdmin(unlocked.kek, amkWrap.wrappedPrivate, a.userId, amkWrap.amkId);
            try {
              await deps.amkRepo.upsertWrap(tx, { adminId: a.userId, amkId: amkWrap.amkId, keyVersion: toKv, wrappedPrivate: wrapAmkForAdmin(fresh.kek, priv, a.userId, amkWrap.amkId) });
            } finally {
              wipe(priv);
            }
          }
          const revoked = await deps.authRepo.revokeUserSessions(tx, a.userId, 'key_rotation', clock.now());
          // Audit events are appended last (one lock order: rows first, the chain's lock last).
          const superseded: string[] = [];
          for (const old of await repo.completedOf(tx, a.userId)) {
            if (old.id === t.id) continue;
            if (await repo.transition(tx, old.id, ['completed'], { status: 'superseded', endedAt: sql`${clock.now()}` })) superseded.push(old.id);
          }
          const done = await repo.transition(
            tx,
            t.id,
            ['in_progress'],
            { status: 'completed', completedAt: sql`${clock.now()}`, toKeyVersion: toKv, secretsReencrypted: r.count, resultDigest: r.digest, tempHash: null },
            sql`lock_owner = ${lockOwner}`,
          );
          if (!done) throw new RotationAbort('KEY_CHANGED', 'the token was settled by someone else meanwhile');
          const session = await deps.auth.openSession(tx, user.user, toKv, newDek);
          await hooks.beforeCommit?.(t.id);
          for (const id of superseded) await audit.record(tx, ctx, { action: 'rotation.superseded', outcome: 'success', target: target(id), details: { by: t.id } });
          await audit.record(tx, ctx, {
            action: 'rotation.completed',
            outcome: 'success',
            target: target(t.id),
            details: { fromKeyVersion: t.fromKeyVersion, toKeyVersion: toKv, secretsReencrypted: r.count, batches: r.batches, sessionsRevoked: revoked, passwordChanged: !!body.newPassword },
          });
          return { r, revoked, session };
        });
        await hooks.afterCommit?.(t.id);
        deps.metrics.rotations.inc({ outcome: 'completed' });
        deps.metrics.rotationDuration.observe({ outcome: 'completed' }, (Date.now() - started) / 1000);
        return {
          status: 'completed',
          keyVersion: toKv,
          secretsReencrypted: result.r.count,
          sessionsRevoked: result.revoked,
          session: { token: result.session.token, csrfToken: result.session.csrfToken, expiresAt: result.session.expiresAt },
          sessionToken: result.session.token,
        };
      } catch (e) {
        // The transaction rolled back: the original rows are untouched. Settle the token.
        const reason = e instanceof RotationAbort ? e.reasonCode : e instanceof AppError ? e.code : 'INTERNAL_ERROR';
        try {
          await db.transaction(async (tx) => {
            const moved = await repo.transition(tx, t.id, ['in_progress'], { status: 'failed', failedAt: sql`${clock.now()}`, failureReason: reason, tempHash: null }, sql`lock_owner = ${lockOwner}`);
            if (moved) await audit.record(tx, ctx, { action: 'rotation.failed', outcome: 'failure', target: target(t.id), details: { reason } });
          });
        } catch {
          // Database gone too: recover settles the token from the database's truth later.
        }
        deps.metrics.rotations.inc({ outcome: 'failed' });
        deps.metrics.rotationDuration.observe({ outcome: 'failed' }, (Date.now() - started) / 1000);
        if (e instanceof AppError) throw e;
        if (e instanceof RotationAbort) throw new AppError('INVALID_STATE', `The rotation was refused and rolled back (${e.reasonCode}); nothing changed. Ask for a new rotation.`, { reason: e.reasonCode });
        throw e;
      } finally {
        wipe(unlocked.dek, unlocked.kek, newDek, fresh.kek, fresh.dek);
      }
    },

    // ---------------------------------------------------------------- admin side
    async listAll(q: RotationListQuery) {
      const { rows, total } = await repo.list(db, { ...(q.status ? { statuses: q.status } : {}), limit: q.limit, offset: q.offset });
      const ids = new Set<string>();
      for (const r of rows) for (const id of actorIdsOf(r.token)) ids.add(id);
      const emails = await repo.emailsOf(db, [...ids]);
      return { items: rows.map((r) => toView(r.token, r.email, emails, max)), total };
    },

    async approve(ctx: RequestCtx, a: AuthContext, tokenId: string, adminPassword: string) {
      const action = 'rotation.approved';
      const t = await loadAny(tokenId);
      if (t.status !== 'pending') {
        await audit.recordDetached(ctx, { action, outcome: 'denied', target: target(t.id), details: { reason: 'state', status: t.status } });
        refuseState(t, 'approved');
      }
      await expireIfOverdue(ctx, t);
      let selfApproved = false;
      if (t.userId === a.userId) {
        const admins = await deps.authRepo.countAdmins(db);
        if (admins > 1) {
          await audit.recordDetached(ctx, { action, outcome: 'denied', target: target(t.id), details: { reason: 'self_approval' } });
          throw new AppError('SELF_APPROVAL_FORBIDDEN', 'Another administrator must approve your own rotation request.');
        }
        selfApproved = true;
      }
      const kek = await deps.auth.reauthenticateAdmin(ctx, a.userId, adminPassword, action);
      wipe(kek);
      const tempPassword = generateTempPassword();
      return db.transaction(async (tx) => {
        const moved = await repo.transition(tx, t.id, ['pending'], {
          status: 'approved',
          approvedAt: sql`${clock.now()}`,
          approvedBy: a.userId,
          selfApproved,
          expiresAt: sql`${clock.now()} + ${config.TOKEN_TTL_SECONDS} * interval '1 second'`,
          tempHash: hashTempPassword(t.id, tempPassword),
          failedAttempts: 0,
        });
        if (!moved) throw new AppError('LOST_RACE', 'This request changed state meanwhile (approved, rejected or cancelled). Reload.');
        await audit.record(tx, ctx, { action, outcome: 'success', target: target(t.id), details: { selfApproved, fingerprint: fingerprint(t.id) } });
        return { status: 'approved' as const, tempPassword, expiresAt: moved.expiresAt!.toISOString(), fingerprint: fingerprint(t.id), selfApproved };
      });
    },

    async reject(ctx: RequestCtx, a: AuthContext, tokenId: string, reason: string) {
      const t = await loadAny(tokenId);
      if (t.status !== 'pending') refuseState(t, 'rejected');
      return db.transaction(async (tx) => {
        const moved = await repo.transition(tx, t.id, ['pending'], { status: 'rejected', decidedAt: sql`${clock.now()}`, decidedBy: a.userId, decisionNote: reason });
        if (!moved) throw new AppError('LOST_RACE', 'This request changed state meanwhile. Reload.');
        await audit.record(tx, ctx, { action: 'rotation.rejected', outcome: 'success', target: target(t.id), details: { note: reason } });
        return view(moved, tx);
      });
    },

    /** Open the pending A-DEK with the AMK, prove it with the check value, re-wrap as final. */
    async finalize(ctx: RequestCtx, a: AuthContext, tokenId: string, adminPassword: string) {
      const action = 'rotation.finalized';
      const t = await loadAny(tokenId);
      if (t.status !== 'completed') {
        await audit.recordDetached(ctx, { action, outcome: 'denied', target: target(t.id), details: { reason: 'state', status: t.status } });
        refuseState(t, 'finalized');
      }
      const keys = await repo.getKeyRow(db, t.userId);
      if (!keys || keys.keyVersion !== t.toKeyVersion) {
        await db.transaction(async (tx) => {
          const moved = await repo.transition(tx, t.id, ['completed'], { status: 'superseded', endedAt: sql`${clock.now()}` });
          if (moved) await audit.record(tx, ctx, { action: 'rotation.superseded', outcome: 'success', target: target(t.id) });
        });
        throw new AppError('INVALID_STATE', 'A newer rotation has replaced this one; finalize that one instead.', { status: 'superseded' });
      }
      return withAmkPrivate(ctx, a, adminPassword, action, async (priv) => {
        if (!keys.adekPending) throw new AppError('INVALID_STATE', 'There is no pending escrow copy to finalize.');
        let dek: Buffer | null = null;
        try {
          try {
            dek = await openPendingADek(priv, keys.adekPending, t.userId, keys.keyVersion);
          } catch {
            dek = null;
          }
          if (!dek || !dekMatchesCheckValue(dek, keys.dekKcv)) {
            await audit.recordDetached(ctx, { action, outcome: 'failure', target: target(t.id), details: { reason: 'escrow_check_failed' } });
            throw new AppError('ESCROW_CHECK_FAILED', 'The pending escrow copy does not match the user’s key check value. Nothing was changed; the pending copy is kept.');
          }
          const final = sealFinalADek(priv, dek, t.userId, keys.keyVersion);
          return await db.transaction(async (tx) => {
            const locked = await repo.lockKeyRow(tx, t.userId);
            if (!locked || locked.keyVersion !== keys.keyVersion || !locked.adekPending?.equals(keys.adekPending!)) {
              throw new AppError('LOST_RACE', 'The user’s keys changed meanwhile. Reload.');
            }
            // The pending copy is dropped only now that the final one is proven and written.
            await repo.writeKeyRow(tx, t.userId, { adekFinal: final, adekFinalizedAt: sql`${clock.now()}`, adekPending: null });
            const moved = await repo.transition(tx, t.id, ['completed'], { status: 'finalized', finalizedAt: sql`${clock.now()}`, finalizedBy: a.userId });
            if (!moved) throw new AppError('LOST_RACE', 'This rotation changed state meanwhile. Reload.');
            await audit.record(tx, ctx, { action, outcome: 'success', target: target(t.id), details: { keyVersion: keys.keyVersion } });
            return { status: 'finalized' as const };
          });
        } finally {
          wipe(dek);
        }
      });
    },

    /** Put back the pre-rotation rows, only if none of the user's secrets changed since. */
    async restore(ctx: RequestCtx, a: AuthContext, tokenId: string, adminPassword: string) {
      const action = 'rotation.rolled_back';
      const t = await loadAny(tokenId);
      if (t.status !== 'completed') {
        await audit.recordDetached(ctx, { action, outcome: 'denied', target: target(t.id), details: { reason: 'state', status: t.status } });
        refuseState(t, 'restored');
      }
      const kek = await deps.auth.reauthenticateAdmin(ctx, a.userId, adminPassword, action);
      wipe(kek);
      return db.transaction(async (tx) => {
        const locked = await repo.lockKeyRow(tx, t.userId);
        const changed = (why: string) =>
          new AppError('SECRETS_CHANGED', `Restore refused: ${why} since this rotation, and restoring would lose that. Nothing was changed.`);
        if (!locked || locked.keyVersion !== t.toKeyVersion) throw changed('the user’s keys were rotated again');
        const digest = createRowsDigest();
        for (const r of await repo.allSecretRows(tx, t.userId)) digest.add(r);
        if (!t.resultDigest || !digest.digest().equals(t.resultDigest)) throw changed('the user’s secrets were added, changed or deleted');
        const keyBackup = await repo.keyBackupOf(tx, t.id);
        if (!keyBackup) throw new AppError('INVALID_STATE', 'This rotation has no backup left (past retention).');
        let restored: number;
        try {
          restored = await repo.restoreSecrets(tx, t.id, t.userId);
        } catch (e) {
          if (e instanceof BackupChunkError) throw new AppError('INVALID_STATE', `This rotation's backup is damaged (${e.message}); nothing was restored.`);
          throw e;
        }
        // The backup is complete or nothing is restored (this throw rolls the restore back).
        if (t.secretsReencrypted !== null && restored !== t.secretsReencrypted) {
          throw new AppError('INVALID_STATE', `This rotation's backup is incomplete (${restored} of ${t.secretsReencrypted} secrets); nothing was restored.`);
        }
        const b = (s: string | null) => (s === null ? null : Buffer.from(s, 'base64'));
        await repo.writeKeyRow(tx, t.userId, {
          keyVersion: keyBackup.keyVersion,
          kdfSalt: b(keyBackup.kdfSalt)!,
          kdfParams: keyBackup.kdfParams,
          authHash: b(keyBackup.authHash)!,
          wrappedDek: b(keyBackup.wrappedDek)!,
          dekKcv: b(keyBackup.dekKcv)!,
          adekPending: b(keyBackup.adekPending),
          adekFinal: b(keyBackup.adekFinal),
          adekFinalizedAt: keyBackup.adekFinalizedAt ? new Date(keyBackup.adekFinalizedAt) : null,
        });
        if (keyBackup.amkWrap) {
          await deps.amkRepo.upsertWrap(tx, { adminId: t.userId, amkId: keyBackup.amkWrap.amkId, keyVersion: keyBackup.amkWrap.keyVersion, wrappedPrivate: b(keyBackup.amkWrap.wrappedPrivate)! });
        }
        await deps.authRepo.revokeUserSessions(tx, t.userId, 'rotation_restored', clock.now());
        const moved = await repo.transition(tx, t.id, ['completed'], { status: 'rolled_back', rolledBackAt: sql`${clock.now()}`, rolledBackBy: a.userId });
        if (!moved) throw new AppError('LOST_RACE', 'This rotation changed state meanwhile. Reload.');
        await audit.record(tx, ctx, { action, outcome: 'success', target: target(t.id), details: { secretsRestored: restored, keyVersion: keyBackup.keyVersion } });
        return { status: 'rolled_back' as const, secretsRestored: restored };
      });
    },

    /** For maintenance: expire one token (CAS; false if someone else already moved it). */
    expireToken,
    dbNow,
  };
}
export type RotationService = ReturnType<typeof createRotationService>;
