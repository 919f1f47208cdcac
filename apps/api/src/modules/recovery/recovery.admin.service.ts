import { AppError, type RecoveryApproveBody, type RecoveryListQuery, type RecoveryRequestView, type RecoveryStatus } from '@keyturn/shared';
import {
  dekMatchesCheckValue,
  openFinalADek,
  openPendingADek,
  recoveryFingerprint,
  sealRecoveryAmk,
  sealRecoveryDek,
  wipe,
} from '@keyturn/shared/crypto';
import { sql } from 'drizzle-orm';
import type { RequestCtx } from '../../lib/context';
import { messages } from '../notifications/messages';
import type { AuthContext } from '../auth/auth.service';
import { type RecoveryDeps, recoveryNotFound, recoveryTarget } from './recovery.deps';
import type { RecoveryRow } from './recovery.repo';

export function toRecoveryView(r: RecoveryRow, user: { email: string; role: 'user' | 'admin' }, emails: Map<string, string>, maxAttempts: number): RecoveryRequestView {
  const who = (id: string | null) => (id ? (emails.get(id) ?? null) : null);
  const timeline: RecoveryRequestView['timeline'] = [{ status: 'pending', at: r.createdAt.toISOString(), by: null, note: 'requested from the sign-in page' }];
  const push = (status: RecoveryStatus, at: Date | null, by: string | null, note: string | null = null) => {
    if (at) timeline.push({ status, at: at.toISOString(), by, note });
  };
  push('approved', r.approvedAt, who(r.approvedBy), r.escrowSource ? `opened the ${r.escrowSource} escrow copy` : null);
  if (['rejected', 'cancelled', 'expired', 'revoked', 'superseded'].includes(r.status)) push(r.status as RecoveryStatus, r.decidedAt, who(r.decidedBy), r.decisionNote);
  push('completed', r.completedAt, user.email);
  push('failed', r.failedAt, null, r.failureReason);
  timeline.sort((a, b) => a.at.localeCompare(b.at));
  return {
    id: r.id,
    kind: 'recovery',
    userId: r.userId,
    userEmail: user.email,
    userRole: user.role,
    status: r.status as RecoveryStatus,
    fingerprint: recoveryFingerprint(r.id, r.publicKey),
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    requesterAddress: r.requesterAddress,
    requesterUserAgent: r.requesterUserAgent,
    keyVersion: r.keyVersion,
    attemptsLeft: Math.max(0, maxAttempts - r.failedAttempts),
    decisionNote: r.decisionNote,
    rotationTokenId: r.rotationTokenId,
    timeline,
  };
}

/** The admin side: list, approve (opens the escrow copy, README V3/V4), reject. */
export function createRecoveryAdminService(deps: RecoveryDeps) {
  const { db, repo, rotationRepo, audit, clock, config } = deps;
  const max = config.RECOVERY_MAX_ATTEMPTS;

  async function view(r: RecoveryRow): Promise<RecoveryRequestView> {
    const emails = await rotationRepo.emailsOf(db, [r.userId, r.approvedBy, r.decidedBy].filter((x): x is string => !!x));
    const owner = await deps.authRepo.findUserWithKeys(db, r.userId);
    return toRecoveryView(r, { email: emails.get(r.userId) ?? '', role: owner?.user.role ?? 'user' }, emails, max);
  }

  async function load(id: string): Promise<RecoveryRow> {
    const r = await repo.get(db, id);
    if (!r) throw recoveryNotFound();
    return r;
  }

  /** A refusal because of the request's state, audited as denied (rotation README R14's rule). */
  async function refuseState(ctx: RequestCtx, r: RecoveryRow, action: string, verb: string): Promise<never> {
    await audit.recordDetached(ctx, { action, outcome: 'denied', target: recoveryTarget(r.id), details: { reason: 'state', status: r.status } });
    throw new AppError('INVALID_STATE', `A recovery request that is ${r.status} cannot be ${verb}.`, { status: r.status });
  }

  /** An overdue open request is expired on sight (410), before cleanup gets to it. */
  async function expireIfOverdue(ctx: RequestCtx, r: RecoveryRow): Promise<void> {
    const now = await deps.rotation.dbNow();
    if (r.expiresAt.getTime() > now.getTime()) return;
    await db.transaction(async (tx) => {
      for (const e of await repo.expireOverdue(tx, clock.now(), r.id)) {
        await audit.record(tx, ctx, { action: 'recovery.expired', outcome: 'success', target: recoveryTarget(e.id), details: { from: e.from } });
      }
    });
    throw new AppError('TOKEN_EXPIRED', 'This recovery request has expired. The user must make a new one.');
  }

  return {
    expireIfOverdue,

    async list(q: RecoveryListQuery) {
      const { rows, total } = await repo.list(db, { ...(q.status ? { statuses: q.status } : {}), limit: q.limit, offset: q.offset });
      const ids = new Set<string>();
      for (const { request: r } of rows) for (const id of [r.approvedBy, r.decidedBy]) if (id) ids.add(id);
      const emails = await rotationRepo.emailsOf(db, [...ids]);
      return { items: rows.map((x) => toRecoveryView(x.request, { email: x.email, role: x.role }, emails, max)), total };
    },

    /**
     * Open the user's escrow copy with the AMK (fresh password of another admin), prove it with
     * the check value, seal the DEK (and, for an admin, the AMK) to the request's public key, and
     * wipe every plaintext key before answering (README V2–V4).
     */
    async approve(ctx: RequestCtx, a: AuthContext, id: string, body: RecoveryApproveBody) {
      const action = 'recovery.approved';
      const r = await load(id);
      if (r.status !== 'pending') await refuseState(ctx, r, action, 'approved');
      await expireIfOverdue(ctx, r);
      if (r.userId === a.userId) {
        await audit.recordDetached(ctx, { action, outcome: 'denied', target: recoveryTarget(r.id), details: { reason: 'self_approval' } });
        throw new AppError('SELF_APPROVAL_FORBIDDEN', 'Another administrator must approve the recovery of your own account.');
      }
      const owner = await deps.authRepo.findUserWithKeys(db, r.userId);
      if (!owner || owner.user.disabled) {
        await audit.recordDetached(ctx, { action, outcome: 'denied', target: recoveryTarget(r.id), details: { reason: 'account_disabled' } });
        throw new AppError('INVALID_STATE', 'This account is disabled; its recovery cannot be approved.');
      }
      const kek = await deps.auth.reauthenticateAdmin(ctx, a.userId, body.adminPassword, action);
      const held: (Buffer | null | undefined)[] = [kek];
      try {
        const { priv, amk } = await deps.amkGuard.open(ctx, a.userId, kek, action);
        held.push(priv);
        const keys = owner.keys;
        const kv = keys.keyVersion;
        const source = keys.adekFinal ? 'final' : keys.adekPending ? 'pending' : null;
        let dek: Buffer | null = null;
        try {
          if (keys.adekFinal) dek = openFinalADek(priv, keys.adekFinal, r.userId, kv);
          else if (keys.adekPending) dek = await openPendingADek(priv, keys.adekPending, r.userId, kv);
        } catch {
          dek = null;
        }
        held.push(dek);
        if (!dek || !dekMatchesCheckValue(dek, keys.dekKcv)) {
          await audit.recordDetached(ctx, { action: 'recovery.escrow_opened', outcome: 'failure', target: `user:${r.userId}`, details: { request: r.id, source, reason: 'escrow_check_failed' } });
          throw new AppError('ESCROW_CHECK_FAILED', 'The user’s escrow copy does not match their key check value, so it cannot be used for recovery. Nothing was changed.');
        }
        const sealedDek = await sealRecoveryDek(r.publicKey, dek, r.userId, r.id, kv);
        const sealedAmk = owner.user.role === 'admin' ? await sealRecoveryAmk(r.publicKey, priv, r.userId, r.id, amk.id) : null;
        return await db.transaction(async (tx) => {
          // The escrow copy opened above must still be the user's key (a rotation may have committed).
          const locked = await rotationRepo.lockKeyRow(tx, r.userId);
          if (!locked || locked.keyVersion !== kv || !locked.dekKcv.equals(keys.dekKcv)) {
            throw new AppError('LOST_RACE', 'The user’s keys changed meanwhile. Reload and approve again.');
          }
          const moved = await repo.transition(tx, r.id, ['pending'], {
            status: 'approved',
            approvedAt: sql`${clock.now()}`,
            approvedBy: a.userId,
            expiresAt: sql`${clock.now()} + ${config.RECOVERY_TTL_SECONDS} * interval '1 second'`,
            escrowSource: source,
            keyVersion: kv,
            sealedDek,
            sealedAmk,
            amkId: sealedAmk ? amk.id : null,
            failedAttempts: 0,
          });
          if (!moved) throw new AppError('LOST_RACE', 'This request changed state meanwhile (approved, rejected or replaced). Reload.');
          const fingerprint = recoveryFingerprint(r.id, r.publicKey);
          await deps.notify(tx, messages.recoveryApproved(r.id, r.userId, owner.user.email, a.email));
          await audit.record(tx, ctx, {
            action: 'recovery.escrow_opened',
            outcome: 'success',
            target: `user:${r.userId}`,
            details: { request: r.id, source, keyVersion: kv, amkShared: !!sealedAmk },
          });
          await audit.record(tx, ctx, { action, outcome: 'success', target: recoveryTarget(r.id), details: { userId: r.userId, fingerprint, confirmedWithUser: true } });
          return { status: 'approved' as const, expiresAt: moved.expiresAt.toISOString(), fingerprint };
        });
      } finally {
        wipe(...held);
      }
    },

    /** Pending or approved → rejected; an approved request's sealed copies are dropped (V9). */
    async reject(ctx: RequestCtx, a: AuthContext, id: string, reason: string) {
      const action = 'recovery.rejected';
      const r = await load(id);
      if (r.status !== 'pending' && r.status !== 'approved') await refuseState(ctx, r, action, 'rejected');
      const moved = await db.transaction(async (tx): Promise<{ refused: RecoveryRow } | { row: RecoveryRow }> => {
        // Read under the row lock, so the audit records the state the request actually left.
        const locked = await repo.get(tx, r.id, 'update');
        if (!locked || (locked.status !== 'pending' && locked.status !== 'approved')) return { refused: locked ?? r };
        const m = await repo.transition(tx, r.id, [locked.status], { status: 'rejected', decidedAt: sql`${clock.now()}`, decidedBy: a.userId, decisionNote: reason });
        if (!m) throw new AppError('LOST_RACE', 'This request changed state meanwhile. Reload.');
        await audit.record(tx, ctx, { action, outcome: 'success', target: recoveryTarget(r.id), details: { from: locked.status, note: reason } });
        return { row: m };
      });
      if ('refused' in moved) return refuseState(ctx, moved.refused, action, 'rejected');
      return view(moved.row);
    },
  };
}
