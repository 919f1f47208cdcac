import { AppError, type RotationListQuery } from '@keyturn/shared';
import {
  dekMatchesCheckValue,
  fingerprint,
  generateTempPassword,
  hashTempPassword,
  openPendingADek,
  sealFinalADek,
  wipe,
} from '@keyturn/shared/crypto';
import { BackupChunkError, createRowsDigest } from '@keyturn/shared/rotation';
import { sql } from 'drizzle-orm';
import type { RequestCtx } from '../../lib/context';
import { messages } from '../notifications/messages';
import type { AuthContext } from '../auth/auth.service';
import { type RotationCommon, type RotationServiceDeps, target } from './rotation.common';
import { actorIdsOf, toView } from './rotation.view';

/** The admin side of the rotation: list, approve, reject, finalize the escrow copy, restore. */
export function createRotationAdminService(deps: RotationServiceDeps, common: RotationCommon) {
  const { db, repo, audit, clock, config } = deps;

  /** Fresh admin authentication → the AMK private key, checked, only in this request's memory (R11). */
  async function withAmkPrivate<T>(ctx: RequestCtx, a: AuthContext, password: string, action: string, fn: (amkPrivate: Buffer) => Promise<T>): Promise<T> {
    const kek = await deps.auth.reauthenticateAdmin(ctx, a.userId, password, action);
    let priv: Buffer | null = null;
    try {
      priv = (await deps.amkGuard.open(ctx, a.userId, kek, action)).priv;
      return await fn(priv);
    } finally {
      wipe(kek, priv);
    }
  }

  return {
    async listAll(q: RotationListQuery) {
      const { rows, total } = await repo.list(db, { ...(q.status ? { statuses: q.status } : {}), ...(q.kind ? { kind: q.kind } : {}), limit: q.limit, offset: q.offset });
      const ids = new Set<string>();
      for (const r of rows) for (const id of actorIdsOf(r.token)) ids.add(id);
      const emails = await repo.emailsOf(db, [...ids]);
      return { items: rows.map((r) => toView(r.token, r.email, emails, common.max)), total };
    },

    async approve(ctx: RequestCtx, a: AuthContext, tokenId: string, adminPassword: string) {
      const action = 'rotation.approved';
      const t = await common.loadAny(tokenId);
      if (t.status !== 'pending') await common.refuseState(ctx, t, action, 'approved');
      await common.expireIfOverdue(ctx, t);
      let selfApproved = false;
      if (t.userId === a.userId) {
        const admins = await deps.authRepo.countAdmins(db);
        if (admins > 1) {
          await audit.recordDetached(ctx, { action, outcome: 'denied', target: target(t.id), details: { reason: 'self_approval' } });
          throw new AppError('SELF_APPROVAL_FORBIDDEN', 'Another administrator must approve your own rotation request.');
        }
        selfApproved = true;
      }
      wipe(await deps.auth.reauthenticateAdmin(ctx, a.userId, adminPassword, action));
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
        await deps.notify(tx, messages.rotationApproved(t.id, t.userId, moved.expiresAt!));
        await audit.record(tx, ctx, { action, outcome: 'success', target: target(t.id), details: { selfApproved, fingerprint: fingerprint(t.id) } });
        return { status: 'approved' as const, tempPassword, expiresAt: moved.expiresAt!.toISOString(), fingerprint: fingerprint(t.id), selfApproved };
      });
    },

    async reject(ctx: RequestCtx, a: AuthContext, tokenId: string, reason: string) {
      const action = 'rotation.rejected';
      const t = await common.loadAny(tokenId);
      if (t.status !== 'pending') await common.refuseState(ctx, t, action, 'rejected');
      return db.transaction(async (tx) => {
        const moved = await repo.transition(tx, t.id, ['pending'], { status: 'rejected', decidedAt: sql`${clock.now()}`, decidedBy: a.userId, decisionNote: reason });
        if (!moved) throw new AppError('LOST_RACE', 'This request changed state meanwhile. Reload.');
        await deps.notify(tx, messages.rotationRejected(t.id, t.userId));
        await audit.record(tx, ctx, { action, outcome: 'success', target: target(t.id), details: { note: reason } });
        return common.view(moved, tx);
      });
    },

    /** Open the pending A-DEK with the AMK, prove it with the check value, re-wrap as final (R10). */
    async finalize(ctx: RequestCtx, a: AuthContext, tokenId: string, adminPassword: string) {
      const action = 'rotation.finalized';
      const t = await common.loadAny(tokenId);
      if (t.status !== 'completed') await common.refuseState(ctx, t, action, 'finalized');
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
            await deps.notify(tx, messages.rotationFinalized(t.id, t.userId));
            await audit.record(tx, ctx, { action, outcome: 'success', target: target(t.id), details: { keyVersion: keys.keyVersion } });
            return { status: 'finalized' as const };
          });
        } finally {
          wipe(dek);
        }
      });
    },

    /**
     * Put back the pre-rotation rows (R13), only within the restore window counted from the
     * rotation's completion (RESTORE_WINDOW_SECONDS; cleanup purges the backup after it), only if
     * none of the user's secrets changed since, and never for an administrator's rotation: that
     * would need their AMK share wrapped under the old password, which is not kept (R12).
     */
    async restore(ctx: RequestCtx, a: AuthContext, tokenId: string, adminPassword: string) {
      const action = 'rotation.rolled_back';
      const t = await common.loadAny(tokenId);
      if (t.status !== 'completed') await common.refuseState(ctx, t, action, 'restored');
      const refuse = async (reason: string, message: string): Promise<never> => {
        await audit.recordDetached(ctx, { action, outcome: 'denied', target: target(t.id), details: { reason } });
        throw new AppError('INVALID_STATE', message, { reason });
      };
      const [now, owner] = await Promise.all([common.dbNow(), deps.authRepo.findUserWithKeys(db, t.userId)]);
      if (!t.completedAt || t.completedAt.getTime() + config.RESTORE_WINDOW_SECONDS * 1000 <= now.getTime()) {
        await refuse('RESTORE_WINDOW_PASSED', 'This rotation is past its restore window: its backup is purged (or about to be), and it can no longer be restored.');
      }
      if (owner?.user.role === 'admin') {
        await refuse(
          'ADMIN_ROTATION',
          'An administrator’s rotation cannot be restored: their share of the admin master key is kept only under their current password. They keep their new keys; ask them to rotate again if needed.',
        );
      }
      if (t.kind === 'recovery') {
        await refuse(
          'RECOVERY_ROTATION',
          'The rotation an account recovery ran cannot be restored: the old key passed through an administrator’s hands and the old password was forgotten, so its backup is not kept.',
        );
      }
      const changedPassword = (k: { passwordChangedAt: Date | null } | null | undefined) => !!k?.passwordChangedAt && !!t.completedAt && k.passwordChangedAt > t.completedAt;
      if (changedPassword(owner?.keys)) {
        await refuse('PASSWORD_CHANGED', 'The user changed their password after this rotation; restoring it would bring the old password back. Nothing was changed.');
      }
      wipe(await deps.auth.reauthenticateAdmin(ctx, a.userId, adminPassword, action));
      return db.transaction(async (tx) => {
        const locked = await repo.lockKeyRow(tx, t.userId);
        // Re-checked under the key row lock: a password change may have committed meanwhile (recovery README P4).
        if (changedPassword(locked)) throw new AppError('SECRETS_CHANGED', 'Restore refused: the user changed their password since this rotation. Nothing was changed.');
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
        await deps.authRepo.revokeUserSessions(tx, t.userId, 'rotation_restored', clock.now());
        const moved = await repo.transition(tx, t.id, ['completed'], { status: 'rolled_back', rolledBackAt: sql`${clock.now()}`, rolledBackBy: a.userId });
        if (!moved) throw new AppError('LOST_RACE', 'This rotation changed state meanwhile. Reload.');
        await audit.record(tx, ctx, { action, outcome: 'success', target: target(t.id), details: { secretsRestored: restored, keyVersion: keyBackup.keyVersion } });
        return { status: 'rolled_back' as const, secretsRestored: restored };
      });
    },
  };
}
