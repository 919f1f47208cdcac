import { randomUUID, timingSafeEqual } from 'node:crypto';
import { AppError, type RecoveryCompleteBody, type RecoveryCompleted } from '@keyturn/shared';
import { dekMatchesCheckValue, deriveRecoveryKeyPair, generateDek, newKeyMaterial, openRecoveryAmk, openRecoveryDek, wipe } from '@keyturn/shared/crypto';
import { RotationAbort } from '@keyturn/shared/rotation';
import { sql } from 'drizzle-orm';
import { type DbOrTx, isUniqueViolation } from '../../db/client';
import type { RequestCtx } from '../../lib/context';
import { messages } from '../notifications/messages';
import type { AmkShare } from '../rotation/rotation.commit';
import { target as rotationTarget } from '../rotation/rotation.common';
import { type RecoveryDeps, recoveryTarget } from './recovery.deps';
import type { RecoveryRow } from './recovery.repo';

/**
 * Complete an approved recovery (README §2 "Complete", V1, V4–V8): the requester's password
 * re-derives the recovery key, which opens the DEK an admin sealed to it; then the ordinary
 * rotation transaction (rotation.commit.ts) re-keys the account under a new DEK and password.
 */
export function createRecoveryComplete(deps: RecoveryDeps, expireIfOverdue: (ctx: RequestCtx, r: RecoveryRow) => Promise<void>) {
  const { db, repo, rotationRepo, audit, clock, config } = deps;
  const max = config.RECOVERY_MAX_ATTEMPTS;
  const denied = 'recovery.denied';
  /** One answer for an unknown id and every state but approved (V1); the audit keeps the real reason. */
  const notReady = () =>
    new AppError(
      'INVALID_STATE',
      'There is no approved recovery request with this id: it may not be approved yet, or it has ended (used, rejected, expired or replaced by a newer request).',
    );

  /** A completion that cannot succeed any more: approved → failed, sealed copies dropped (V9). */
  async function fail(ctx: RequestCtx, r: RecoveryRow, reason: string): Promise<void> {
    await db.transaction(async (tx) => {
      const moved = await repo.transition(tx, r.id, ['approved'], { status: 'failed', failedAt: sql`${clock.now()}`, failureReason: reason });
      if (moved) await audit.record(tx, ctx, { action: 'recovery.failed', outcome: 'failure', target: recoveryTarget(r.id), details: { reason } });
    });
  }

  /** The wrong password: counted (the slot stays taken), audited, revoked at the cap (V5). */
  async function wrongPassword(ctx: RequestCtx, r: RecoveryRow, slot: number): Promise<never> {
    const left = max - slot;
    await audit.recordDetached(ctx, { action: denied, outcome: 'denied', target: recoveryTarget(r.id), details: { reason: 'wrong_password', attempt: slot } });
    if (left <= 0) {
      await db.transaction(async (tx) => {
        const moved = await repo.transition(tx, r.id, ['approved'], { status: 'revoked', decidedAt: sql`${clock.now()}`, decisionNote: 'too many wrong passwords' });
        if (moved) await audit.record(tx, ctx, { action: 'recovery.revoked', outcome: 'success', target: recoveryTarget(r.id), details: { attempts: slot } });
      });
      throw new AppError('TOKEN_REVOKED', 'Too many wrong passwords: this recovery request is revoked. Make a new one.');
    }
    throw new AppError('INVALID_CREDENTIALS', `This is not the password you chose for this recovery request. ${left} ${left === 1 ? 'try' : 'tries'} left.`, { attemptsLeft: left });
  }

  return async function complete(ctx: RequestCtx, body: RecoveryCompleteBody): Promise<RecoveryCompleted> {
    const r = await repo.get(db, body.requestId);
    if (r?.status !== 'approved') {
      await audit.recordDetached(ctx, { action: denied, outcome: 'denied', target: recoveryTarget(body.requestId), details: { reason: r ? 'state' : 'not_found', ...(r ? { status: r.status } : {}) } });
      throw notReady();
    }
    await expireIfOverdue(ctx, r);

    // 1. Reserve one evaluation before the argon2 work (V5); a right password gives it back.
    const slot = await repo.reserveAttempt(db, r.id, max);
    if (slot === null) {
      const now = await repo.get(db, r.id);
      if (now?.status === 'approved') throw new AppError('LOST_RACE', 'Other attempts for this request are being checked. Try again in a moment.');
      throw notReady();
    }
    const held: (Buffer | null | undefined)[] = [];
    /** The slot was settled: counted by a wrong password, or given back after a right one. */
    let settled = false;
    try {
      const kp = await deps.auth.kdfCost(() => deriveRecoveryKeyPair(body.newPassword, r.kdfSalt, r.kdfParams));
      held.push(kp.privateKey);
      if (kp.publicKey.length !== r.publicKey.length || !timingSafeEqual(kp.publicKey, r.publicKey)) {
        settled = true;
        await wrongPassword(ctx, r, slot);
      }
      await repo.releaseAttempt(db, r.id);
      settled = true;

      // 2. The DEK the admin sealed to this key, proved against the account's current key row.
      const [owner, amk] = await Promise.all([deps.authRepo.findUserWithKeys(db, r.userId), deps.amkRepo.get(db)]);
      let dek: Buffer | null = null;
      try {
        dek = r.sealedDek ? await openRecoveryDek(kp.privateKey, r.sealedDek, r.userId, r.id, r.keyVersion) : null;
      } catch {
        dek = null;
      }
      held.push(dek);
      if (owner?.user.disabled) {
        await fail(ctx, r, 'ACCOUNT_DISABLED');
        throw new AppError('INVALID_STATE', 'This account is disabled, so it cannot be recovered.', { reason: 'ACCOUNT_DISABLED' });
      }
      if (!owner || !dek || owner.keys.keyVersion !== r.keyVersion || !dekMatchesCheckValue(dek, owner.keys.dekKcv)) {
        await fail(ctx, r, 'KEY_CHANGED');
        throw new AppError('INVALID_STATE', 'This account’s keys changed since the request was approved (for example a key rotation finished), so it cannot be completed. Make a new recovery request.', {
          reason: 'KEY_CHANGED',
        });
      }
      // An admin's AMK share, sealed by the approving admin, checked against the AMK public key.
      let share: AmkShare | null = null;
      if (owner.user.role === 'admin' && r.sealedAmk && r.amkId) {
        const priv = await openRecoveryAmk(kp.privateKey, r.sealedAmk, r.userId, r.id, r.amkId);
        held.push(priv);
        share = await deps.amkGuard.check(ctx, priv, 'recovery.completed');
      }

      // 3. New key material from the new password (outside any transaction).
      const newDek = generateDek();
      held.push(newDek);
      const toKv = r.keyVersion + 1;
      const fresh = await deps.auth.kdfCost(() =>
        newKeyMaterial({ userId: r.userId, password: body.newPassword, keyVersion: toKv, kdf: config.kdf, amkPublic: amk?.publicKey ?? null, dek: newDek }),
      );
      held.push(fresh.kek, fresh.dek);

      // 4. Claim: a recovery rotation token, in_progress. The user's open rotation request is
      //    cancelled (it was for the old keys); one in progress makes this 409 (V7).
      const tokenId = randomUUID();
      const lockOwner = `${config.instanceId}/${ctx.requestId}`;
      try {
        await db.transaction(async (tx) => {
          const open = await rotationRepo.list(tx, { userId: r.userId, statuses: ['pending', 'approved'], limit: 10, offset: 0 });
          const cancelled: string[] = [];
          for (const { token } of open.rows) {
            const m = await rotationRepo.transition(tx, token.id, ['pending', 'approved'], {
              status: 'cancelled',
              decidedAt: sql`${clock.now()}`,
              decisionNote: 'replaced by an account recovery',
              tempHash: null,
            });
            if (m) cancelled.push(token.id);
          }
          await rotationRepo.insertToken(tx, {
            id: tokenId,
            userId: r.userId,
            kind: 'recovery',
            status: 'in_progress',
            reason: `Account recovery (request ${r.id})`,
            fromKeyVersion: r.keyVersion,
            approvedAt: r.approvedAt,
            approvedBy: r.approvedBy,
            lockedAt: sql`${clock.now()}` as unknown as Date,
            lockOwner,
            createdAt: sql`${clock.now()}` as unknown as Date,
          });
          // Exactly one completion claims the request; a retry is allowed only after a failed rotation.
          const claimed = await repo.transition(
            tx,
            r.id,
            ['approved'],
            { rotationTokenId: tokenId },
            sql`expires_at > ${clock.now()} and (rotation_token_id is null or exists (select 1 from rotation_tokens t where t.id = recovery_requests.rotation_token_id and t.status = 'failed'))`,
          );
          if (!claimed) throw new AppError('LOST_RACE', 'This recovery is already being completed, or it has just ended.');
          for (const id of cancelled) {
            await audit.record(tx, ctx, { action: 'rotation.cancelled', outcome: 'success', target: rotationTarget(id), details: { reason: 'account_recovery', request: r.id } });
          }
          await audit.record(tx, ctx, { action: 'rotation.started', outcome: 'success', target: rotationTarget(tokenId), details: { fromKeyVersion: r.keyVersion, kind: 'recovery', request: r.id } });
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw new AppError('LOST_RACE', 'A key rotation of this account is running. Try again when it has finished.');
        throw e;
      }

      // 5. The rotation's one transaction, the same as an ordinary rotation's. If it fails (the
      //    keys changed under it, a fault) nothing changed, and the request stays approved: a
      //    retry re-checks the keys above (a password change keeps the DEK, a rotation does not).
      const res = await deps.rotation
        .commit(ctx, {
          tokenId,
          lockOwner,
          fromKeyVersion: r.keyVersion,
          user: owner.user,
          keysBefore: owner.keys,
          oldDek: dek,
          newDek,
          fresh,
          share,
          keepBackup: false,
          revokeReason: 'account_recovery',
          callerSessionId: null,
          details: { kind: 'recovery', request: r.id },
          inTransaction: async (tx: DbOrTx) => {
            const done = await repo.transition(tx, r.id, ['approved'], { status: 'completed', completedAt: sql`${clock.now()}` }, sql`rotation_token_id = ${tokenId}`);
            if (!done) throw new RotationAbort('KEY_CHANGED', 'the recovery request was settled by someone else meanwhile');
            await deps.notify(tx, messages.recoveryCompleted(r.id, r.userId, owner.user.email));
          },
          auditAfter: async (tx: DbOrTx) => {
            await audit.record(tx, ctx, { action: 'recovery.completed', outcome: 'success', target: recoveryTarget(r.id), details: { userId: r.userId, rotation: tokenId, keyVersion: toKv } });
          },
        })
        .catch((e: unknown) => {
          if (e instanceof AppError && (e.details as { reason?: string } | undefined)?.reason === 'KEY_CHANGED') {
            throw new AppError('INVALID_STATE', 'This account’s keys changed while the recovery ran (a password change or a rotation). Nothing was changed; try again.', { reason: 'KEY_CHANGED' });
          }
          throw e;
        });
      return { status: 'completed', keyVersion: res.keyVersion, secretsReencrypted: res.count, sessionsRevoked: res.othersRevoked };
    } finally {
      // Anything that ended before a verdict (a full argon2 queue, a database error) gives the
      // slot back: only wrong passwords count towards the cap (V5).
      if (!settled) await repo.releaseAttempt(db, r.id).catch(() => {});
      wipe(...held);
    }
  };
}
