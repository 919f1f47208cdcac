import { AppError, type RotateResult, type RotateWithTokenBody } from '@keyturn/shared';
import { generateDek, newKeyMaterial, tempPasswordMatches, unlockKeyMaterial, wipe } from '@keyturn/shared/crypto';
import { sql } from 'drizzle-orm';
import type { RequestCtx } from '../../lib/context';
import { messages } from '../notifications/messages';
import type { AuthContext } from '../auth/auth.service';
import type { CommitRotation } from './rotation.commit';
import { inFlight, notFound, type RotationCommon, type RotationServiceDeps, target } from './rotation.common';
import type { TokenRow } from './rotation.repo';

/**
 * Execute an approved rotation (DESIGN §3; README R3–R8, R12). Credentials and argon2 first,
 * outside any transaction; then one compare-and-set claims the token; then one transaction
 * re-encrypts. Every piece of key material this request derives is wiped in one `finally`,
 * whichever step throws.
 */
export function createExecute(deps: RotationServiceDeps, common: RotationCommon, commit: CommitRotation) {
  const { db, repo, audit, clock, config } = deps;
  const action = 'rotation.execute';

  /** The attempt cap was reached: approved → revoked (once), then 423. */
  async function revoke(ctx: RequestCtx, tokenId: string, attempts: number): Promise<never> {
    await db.transaction(async (tx) => {
      const moved = await repo.transition(tx, tokenId, ['approved'], {
        status: 'revoked',
        decidedAt: sql`${clock.now()}`,
        tempHash: null,
        decisionNote: 'too many wrong temporary passwords',
      });
      if (moved) {
        await deps.notify(tx, messages.rotationRevoked(tokenId, moved.userId, ctx.actor.email ?? ''));
        await audit.record(tx, ctx, { action: 'rotation.revoked', outcome: 'success', target: target(tokenId), details: { attempts } });
      }
    });
    throw new AppError('TOKEN_REVOKED', 'Too many wrong temporary passwords: this rotation request is revoked. Ask for a new one.');
  }

  /** approved → failed before anything was claimed or touched, so the token does not block a new request. */
  async function failUnclaimed(ctx: RequestCtx, tokenId: string, reason: 'KEY_CHECK_FAILED' | 'KEY_CHANGED'): Promise<void> {
    await db.transaction(async (tx) => {
      const moved = await repo.transition(tx, tokenId, ['approved'], { status: 'failed', failedAt: sql`${clock.now()}`, failureReason: reason, tempHash: null });
      if (moved) await audit.record(tx, ctx, { action: 'rotation.failed', outcome: 'failure', target: target(tokenId), details: { reason } });
    });
  }

  /** R4: reserve one evaluation atomically, so parallel guesses never evaluate past the cap; a right guess gives its slot back. */
  async function checkTempPassword(ctx: RequestCtx, t: TokenRow, tempPassword: string): Promise<void> {
    const slot = await repo.reserveAttempt(db, t.id, common.max);
    if (slot === null) {
      const now = await repo.get(db, t.id);
      // Still approved: the cap is taken by evaluations in flight (a right guess gives its slot
      // back; the wrong guess that takes the last slot revokes the token itself). Revoking here
      // would let parallel executes with the right password revoke their own token (C4).
      if (now && now.status === 'approved') throw inFlight();
      throw common.stateError(now ?? t, 'executed');
    }
    if (!t.tempHash || !tempPasswordMatches(t.id, tempPassword, t.tempHash)) {
      const left = common.max - slot;
      await audit.recordDetached(ctx, { action, outcome: 'failure', target: target(t.id), details: { reason: 'wrong_temp_password', attempt: slot } });
      if (left <= 0) await revoke(ctx, t.id, slot);
      throw new AppError('WRONG_TEMP_PASSWORD', `The temporary password is not right. ${left} ${left === 1 ? 'try' : 'tries'} left.`, { attemptsLeft: left });
    }
    await repo.releaseAttempt(db, t.id);
  }

  return async function execute(ctx: RequestCtx, a: AuthContext, body: RotateWithTokenBody): Promise<RotateResult & { sessionToken: string }> {
    const t = await common.loadOwned(ctx, a, body.tokenId, action);
    if (t.status !== 'approved') await common.refuseState(ctx, t, action, 'executed');
    await common.expireIfOverdue(ctx, t);

    // 1. The temporary password.
    await checkTempPassword(ctx, t, body.tempPassword);

    // 2. The user's current password (argon2, outside any transaction), proven by the DEK check
    //    value. Guesses count on the sign-in throttle, reserved before the derivation (auth README
    //    A5): a blocked account evaluates none here either.
    const user = await deps.authRepo.findUserWithKeys(db, a.userId);
    if (!user) throw notFound();
    const attempt = await deps.auth.reserveAttempt(`login:${user.user.email}`, { ...deps.auth.loginLimit(), busy: inFlight }, () =>
      audit.recordDetached(ctx, { action, outcome: 'denied', target: target(t.id), details: { reason: 'throttled' } }),
    );
    /** Every key this request holds, wiped whatever happens from here on. */
    const held: (Buffer | null | undefined)[] = [];
    try {
      const unlocked = await deps.auth.kdfCost(() => unlockKeyMaterial(a.userId, body.currentPassword, user.keys));
      if (unlocked.ok) held.push(unlocked.dek, unlocked.kek);
      if (!unlocked.ok && unlocked.reason === 'WRONG_PASSWORD') {
        await attempt.failed();
        await audit.recordDetached(ctx, { action, outcome: 'failure', target: target(t.id), details: { reason: 'wrong_current_password' } });
        throw new AppError('INVALID_CREDENTIALS', 'Your current password is not right.');
      }
      if (unlocked.ok) await attempt.succeeded();
      if (!unlocked.ok) {
        // The stored key does not match its check value: fail before touching any secret.
        await failUnclaimed(ctx, t.id, 'KEY_CHECK_FAILED');
        throw new AppError('KEY_CHECK_FAILED', 'Your stored key failed its integrity check, so nothing was rotated. An administrator must look at this account.');
      }
      if (user.keys.keyVersion !== t.fromKeyVersion) {
        // E.g. an admin restored an older rotation meanwhile: settle this token so it does not
        // stay open (and block a new request) until it expires.
        await failUnclaimed(ctx, t.id, 'KEY_CHANGED');
        throw new AppError('INVALID_STATE', 'Your keys changed since this request was made. Ask for a new rotation.', { reason: 'KEY_CHANGED' });
      }

      // 3. New key material from the new (or same) password, with a new salt — still outside.
      const amk = await deps.amkRepo.get(db);
      const toKv = t.fromKeyVersion + 1;
      const newDek = generateDek();
      held.push(newDek);
      const fresh = await deps.auth.kdfCost(() =>
        newKeyMaterial({ userId: a.userId, password: body.newPassword ?? body.currentPassword, keyVersion: toKv, kdf: config.kdf, amkPublic: amk?.publicKey ?? null, dek: newDek }),
      );
      held.push(fresh.kek, fresh.dek);
      // An admin's share of the AMK follows their KEK to the new password (R12): opened here,
      // checked against the stored public key (the new pending escrow copy was just sealed to it).
      const share = user.user.role === 'admin' ? await deps.amkGuard.open(ctx, a.userId, unlocked.kek, action) : null;
      held.push(share?.priv);

      // 4. Claim: approved → in_progress, one compare-and-set; exactly one executor wins.
      const lockOwner = `${config.instanceId}/${ctx.requestId}`;
      const claimed = await db.transaction(async (tx) => {
        const c = await repo.transition(tx, t.id, ['approved'], { status: 'in_progress', lockedAt: sql`${clock.now()}`, lockOwner }, sql`expires_at > ${clock.now()}`);
        if (c) await audit.record(tx, ctx, { action: 'rotation.started', outcome: 'success', target: target(t.id), details: { fromKeyVersion: t.fromKeyVersion } });
        return c;
      });
      if (!claimed) {
        const now = await repo.get(db, t.id);
        if (now?.status === 'approved') await common.expireIfOverdue(ctx, now);
        throw new AppError('LOST_RACE', 'This rotation is already running or finished.');
      }

      // 5. The rotation's one transaction (R7), shared with account recovery (rotation.commit.ts).
      const r = await commit(ctx, {
        tokenId: t.id,
        lockOwner,
        fromKeyVersion: t.fromKeyVersion,
        user: user.user,
        keysBefore: user.keys,
        oldDek: unlocked.dek,
        newDek,
        fresh,
        share,
        keepBackup: user.user.role !== 'admin',
        revokeReason: 'key_rotation',
        callerSessionId: a.sessionId,
        details: { passwordChanged: !!body.newPassword },
        inTransaction: (tx, r) => deps.notify(tx, messages.rotationCompleted(t.id, a.userId, a.email, r.toKeyVersion)),
      });
      return {
        status: 'completed',
        keyVersion: r.keyVersion,
        secretsReencrypted: r.count,
        sessionsRevoked: r.othersRevoked,
        session: r.session!,
        sessionToken: r.session!.token,
      };
    } finally {
      await attempt.abandoned();
      wipe(...held);
    }
  };
}
