import { randomBytes, randomUUID } from 'node:crypto';
import { AppError, type RecoveryNoticeList, type RecoveryRequestBody, type RecoveryRequested, type RecoveryStatus } from '@keyturn/shared';
import { deriveRecoveryKeyPair, recoveryFingerprint, SALT_BYTES, wipe } from '@keyturn/shared/crypto';
import { sql } from 'drizzle-orm';
import { rowsOf } from '../../db/client';
import type { RequestCtx } from '../../lib/context';
import type { AuthContext } from '../auth/auth.service';
import { type RecoveryDeps, recoveryTarget } from './recovery.deps';

/** Request (unauthenticated, no enumeration: README V1) and the user's notices (V3). */
export function createRecoveryService(deps: RecoveryDeps) {
  const { db, repo, authRepo, audit, clock, config } = deps;

  return {
    /**
     * Make a recovery request. For an email with no (enabled) account the server does the same
     * work — argon2, key pair, fingerprint, expiry from the database clock, one audit event — and
     * answers the same shape, so the answer tells nothing.
     */
    async request(ctx: RequestCtx, userAgent: string | null, body: RecoveryRequestBody): Promise<RecoveryRequested> {
      const id = randomUUID();
      const salt = randomBytes(SALT_BYTES);
      const [found, kp, expiry] = await Promise.all([
        authRepo.userByEmail(db, body.email),
        deps.auth.kdfCost(() => deriveRecoveryKeyPair(body.newPassword, salt, config.kdf)),
        rowsOf<{ at: Date | string }>(db, sql`select ${clock.now()} + ${config.RECOVERY_TTL_SECONDS} * interval '1 second' as at`),
      ]);
      wipe(kp.privateKey);
      const fingerprint = recoveryFingerprint(id, kp.publicKey);
      const expiresAt = new Date(expiry[0]!.at);
      const answer = { requestId: id, fingerprint, expiresAt: expiresAt.toISOString() };
      const actor = { id: null, email: body.email, role: 'anonymous' as const };
      if (!found || found.user.disabled) {
        await audit.recordDetached(ctx, {
          action: 'recovery.requested',
          outcome: 'denied',
          target: recoveryTarget(id),
          actor,
          details: { reason: found ? 'disabled' : 'unknown_email', email: body.email },
        });
        return answer;
      }
      const userId = found.user.id;
      await db.transaction(async (tx) => {
        const superseded = await repo.supersedeOpen(tx, userId, clock.now());
        await repo.insert(tx, {
          id,
          userId,
          status: 'pending',
          keyVersion: found.keys.keyVersion,
          publicKey: kp.publicKey,
          kdfSalt: salt,
          kdfParams: config.kdf,
          requesterAddress: ctx.clientAddress,
          requesterUserAgent: userAgent,
          createdAt: sql`${clock.now()}` as unknown as Date,
          expiresAt,
        });
        for (const old of superseded) {
          await audit.record(tx, ctx, { action: 'recovery.superseded', outcome: 'success', target: recoveryTarget(old), actor, details: { by: id } });
        }
        await audit.record(tx, ctx, {
          action: 'recovery.requested',
          outcome: 'success',
          target: recoveryTarget(id),
          actor,
          details: { userId, fingerprint, userAgent },
        });
      });
      return answer;
    },

    /** "An administrator opened your recovery copy on …": every approval not yet acknowledged. */
    async notices(a: AuthContext): Promise<RecoveryNoticeList> {
      const rows = await repo.notices(db, a.userId);
      return {
        items: rows.map(({ request: r, openedBy }) => ({
          requestId: r.id,
          status: r.status as RecoveryStatus,
          requestedAt: r.createdAt.toISOString(),
          openedAt: r.approvedAt!.toISOString(),
          openedBy,
          completedAt: r.completedAt?.toISOString() ?? null,
        })),
      };
    },

    async ackNotice(ctx: RequestCtx, a: AuthContext, id: string): Promise<void> {
      await db.transaction(async (tx) => {
        if (!(await repo.ackNotice(tx, a.userId, id, clock.now()))) throw new AppError('NOT_FOUND', 'No such notice.');
        await audit.record(tx, ctx, { action: 'recovery.notice_acknowledged', outcome: 'success', target: recoveryTarget(id) });
      });
    },
  };
}
