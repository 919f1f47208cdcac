import { randomBytes, randomUUID } from 'node:crypto';
import { AppError, type RecoveryNoticeList, type RecoveryRequestBody, type RecoveryRequested, type RecoveryStatus } from '@keyturn/shared';
import { deriveRecoveryKeyPair, recoveryFingerprint, SALT_BYTES, wipe } from '@keyturn/shared/crypto';
import { sql } from 'drizzle-orm';
import { recoveryRequestGate, rowsOf } from '../../db/client';
import type { RequestCtx } from '../../lib/context';
import { messages } from '../notifications/messages';
import type { AuthContext } from '../auth/auth.service';
import { type RecoveryDeps, recoveryNotFound, recoveryTarget } from './recovery.deps';

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
        // One account's requests one at a time (V1: concurrent requests for one email are all 202).
        await tx.execute(recoveryRequestGate(userId));
        // A new request replaces a pending one, never an approved one: an anonymous request must
        // not be able to wipe an approval the real user is about to complete. While one is
        // approved, the new request is recorded as denied and stored nowhere (same answer).
        const approved = await repo.openOf(tx, userId);
        if (approved?.status === 'approved') {
          await audit.record(tx, ctx, {
            action: 'recovery.requested',
            outcome: 'denied',
            target: recoveryTarget(id),
            actor,
            details: { reason: 'approved_request_open', open: approved.id, userId, userAgent },
          });
          return;
        }
        const superseded = await repo.supersedeOpen(tx, userId, clock.now(), ['pending']);
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
        await deps.notify(tx, messages.recoveryRequested(id, userId, body.email));
        for (const old of superseded) {
          await audit.record(tx, ctx, { action: 'recovery.superseded', outcome: 'success', target: recoveryTarget(old.id), actor, details: { by: id } });
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

    /** What the owner is told: "someone asked to recover your account", "an administrator opened your recovery copy on …". */
    async notices(a: AuthContext): Promise<RecoveryNoticeList> {
      const rows = await repo.notices(db, a.userId);
      return {
        items: rows.map(({ request: r, openedBy }) => ({
          requestId: r.id,
          status: r.status as RecoveryStatus,
          requestedAt: r.createdAt.toISOString(),
          requesterAddress: r.requesterAddress,
          openedAt: r.approvedAt?.toISOString() ?? null,
          openedBy: r.approvedAt ? openedBy : null,
          completedAt: r.completedAt?.toISOString() ?? null,
          cancellable: r.status === 'pending' || r.status === 'approved',
        })),
      };
    },

    /**
     * The account's owner, signed in, ends an open recovery request of their account (pending or
     * approved, sealed copy dropped): "this wasn't me" on the notice (README V3).
     */
    async cancelMine(ctx: RequestCtx, a: AuthContext, id: string): Promise<void> {
      const r = await repo.get(db, id);
      if (r?.userId !== a.userId) {
        await audit.recordDetached(ctx, { action: 'recovery.cancelled', outcome: 'denied', target: recoveryTarget(id), details: { reason: r ? 'not_owner' : 'not_found' } });
        throw recoveryNotFound();
      }
      await db.transaction(async (tx) => {
        const moved = await repo.transition(tx, id, ['pending', 'approved'], { status: 'cancelled', decidedAt: clock.now(), decidedBy: a.userId, decisionNote: 'cancelled by the account owner' });
        if (!moved) throw new AppError('INVALID_STATE', `This recovery request is ${r.status} and can no longer be cancelled.`, { status: r.status });
        await audit.record(tx, ctx, { action: 'recovery.cancelled', outcome: 'success', target: recoveryTarget(id), details: { from: r.status } });
      });
    },

    async ackNotice(ctx: RequestCtx, a: AuthContext, id: string): Promise<void> {
      await db.transaction(async (tx) => {
        if (!(await repo.ackNotice(tx, a.userId, id, clock.now()))) throw new AppError('NOT_FOUND', 'No such notice.');
        await audit.record(tx, ctx, { action: 'recovery.notice_acknowledged', outcome: 'success', target: recoveryTarget(id) });
      });
    },
  };
}
