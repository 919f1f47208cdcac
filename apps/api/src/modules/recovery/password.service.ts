import { AppError, type ChangePasswordBody, type ChangePasswordResult } from '@keyturn/shared';
import { newKeyMaterial, unlockKeyMaterial, wipe, wrapAmkForAdmin } from '@keyturn/shared/crypto';
import { sql } from 'drizzle-orm';
import type { RequestCtx } from '../../lib/context';
import type { AuthContext } from '../auth/auth.service';
import type { RecoveryDeps } from './recovery.deps';

/**
 * Self-service password change (README §1, P1–P5): the same DEK re-wrapped under a KEK from the
 * new password, in one transaction with the admin's AMK share, every session revoked and the
 * caller's replaced. Both argon2 derivations run before the transaction.
 */
export function createPasswordService(deps: RecoveryDeps) {
  const { db, auth, authRepo, rotationRepo, audit, clock, config } = deps;
  const action = 'auth.password_changed';

  return async function changePassword(ctx: RequestCtx, a: AuthContext, body: ChangePasswordBody): Promise<ChangePasswordResult & { sessionToken: string }> {
    const target = `user:${a.userId}`;
    const found = await authRepo.findUserWithKeys(db, a.userId);
    if (!found) throw new AppError('UNAUTHENTICATED', 'Your session is no longer valid. Please sign in again.');
    // P2: a guess of the current password counts on the account's sign-in throttle.
    const attempt = await auth.reserveAttempt(`login:${found.user.email}`, auth.loginLimit(), () =>
      audit.recordDetached(ctx, { action, outcome: 'denied', target, details: { reason: 'throttled' } }),
    );
    const held: (Buffer | null | undefined)[] = [];
    try {
      const unlocked = await auth.kdfCost(() => unlockKeyMaterial(a.userId, body.currentPassword, found.keys));
      if (!unlocked.ok) {
        if (unlocked.reason === 'WRONG_PASSWORD') {
          await attempt.failed();
          await audit.recordDetached(ctx, { action, outcome: 'failure', target, details: { reason: 'wrong_current_password' } });
          throw new AppError('INVALID_CREDENTIALS', 'Your current password is not right.');
        }
        await audit.recordDetached(ctx, { action, outcome: 'failure', target, details: { reason: 'key_check_failed' } });
        throw new AppError('KEY_CHECK_FAILED', 'Your stored key failed its integrity check, so nothing was changed. An administrator must look at this account.');
      }
      held.push(unlocked.dek, unlocked.kek);
      await attempt.succeeded();
      const kv = found.keys.keyVersion;
      // P1: the same DEK and key version; only what the password yields is new.
      const fresh = await auth.kdfCost(() => newKeyMaterial({ userId: a.userId, password: body.newPassword, keyVersion: kv, kdf: config.kdf, amkPublic: null, dek: unlocked.dek }));
      held.push(fresh.kek);
      // P5: an admin's share of the AMK, opened with the old KEK and checked, follows the password.
      const share = found.user.role === 'admin' ? await deps.amkGuard.open(ctx, a.userId, unlocked.kek, action) : null;
      held.push(share?.priv);

      const r = await db.transaction(async (tx) => {
        // P3: still the key row the current password opened, under the user's exclusive gate.
        const locked = await rotationRepo.lockKeyRow(tx, a.userId);
        if (!locked || locked.keyVersion !== kv || !locked.wrappedDek.equals(found.keys.wrappedDek)) {
          throw new AppError('LOST_RACE', 'Your keys changed while the password was being changed (a rotation, a recovery or another change). Nothing was changed; sign in again.');
        }
        const m = fresh.material;
        await rotationRepo.writeKeyRow(tx, a.userId, {
          kdfSalt: m.kdfSalt,
          kdfParams: m.kdfParams,
          authHash: m.authHash,
          wrappedDek: m.wrappedDek,
          passwordChangedAt: sql`${clock.now()}`,
        });
        if (share) {
          await deps.amkRepo.upsertWrap(tx, { adminId: a.userId, amkId: share.wrap.amkId, keyVersion: kv, wrappedPrivate: wrapAmkForAdmin(fresh.kek, share.priv, a.userId, share.wrap.amkId) });
        }
        // P4: no backup of an older rotation (its key row opens with an older password) outlives
        // the change, and an open recovery request is moot once the owner proved their password.
        const backupsDropped = await rotationRepo.deleteUserBackups(tx, a.userId);
        const recoveriesEnded = await deps.repo.supersedeOpen(tx, a.userId, clock.now(), ['pending', 'approved'], 'the account password was changed');
        const othersRevoked = await authRepo.revokeUserSessions(tx, a.userId, 'password_changed', clock.now(), a.sessionId);
        await authRepo.revokeSession(tx, a.sessionId, 'password_changed', clock.now());
        const session = await auth.openSession(tx, found.user, kv, unlocked.dek);
        for (const r of recoveriesEnded) {
          await audit.record(tx, ctx, { action: 'recovery.superseded', outcome: 'success', target: `recovery:${r.id}`, details: { from: r.from, reason: 'password_changed' } });
        }
        await audit.record(tx, ctx, {
          action,
          outcome: 'success',
          target,
          details: { keyVersion: kv, sessionsRevoked: othersRevoked, backupsDropped, session: auth.sessionRef(session.sessionId) },
        });
        return { othersRevoked, session };
      });
      return {
        status: 'changed',
        keyVersion: kv,
        sessionsRevoked: r.othersRevoked,
        session: { token: r.session.token, csrfToken: r.session.csrfToken, expiresAt: r.session.expiresAt },
        sessionToken: r.session.token,
      };
    } finally {
      await attempt.abandoned();
      wipe(...held);
    }
  };
}
