import { AppError } from '@keyturn/shared';
import { type KeyMaterial, wrapAmkForAdmin } from '@keyturn/shared/crypto';
import { reencryptAll, RotationAbort } from '@keyturn/shared/rotation';
import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client';
import type { RequestCtx } from '../../lib/context';
import { messages } from '../notifications/messages';
import type { UserRow } from '../auth/auth.repo';
import type { AmkRepo } from '../setup/amk.repo';
import type { RotationServiceDeps } from './rotation.common';
import { target } from './rotation.common';
import { type KeySnapshot, type KeyRow, snapshotKeyRow } from './rotation.repo';

/** An admin's AMK share, opened and checked (setup/amk.guard.ts), to re-wrap under the new KEK. */
export interface AmkShare {
  priv: Buffer;
  wrap: Pick<NonNullable<Awaited<ReturnType<AmkRepo['wrapFor']>>>, 'amkId'>;
}

/** A claimed (in_progress) token and everything its one transaction needs (README R7). */
export interface CommitInput {
  tokenId: string;
  lockOwner: string;
  fromKeyVersion: number;
  user: UserRow;
  /** The key row the old DEK came from: the engine refuses (KEY_CHANGED) if it changed since. */
  keysBefore: KeyRow;
  oldDek: Buffer;
  newDek: Buffer;
  /** New key material (new salt, KEK, wrap, check value, pending A-DEK) for toKeyVersion. */
  fresh: { material: KeyMaterial; kek: Buffer };
  share: AmkShare | null;
  /** false: the backup is dropped before COMMIT and the rotation is never restorable (R12, recovery V8). */
  keepBackup: boolean;
  /** Why the user's sessions end (`sessions.revoked_reason`). */
  revokeReason: string;
  /** The caller's own session, replaced by a new one for the new key version; null: none opened. */
  callerSessionId: string | null;
  /** Extra details for `rotation.completed`. */
  details: Record<string, unknown>;
  /** More writes of the caller in the same transaction, before the audit events (e.g. a recovery request → completed). */
  inTransaction?: (tx: DbOrTx, r: { count: number; toKeyVersion: number }) => Promise<void>;
  /** Audit events of the caller, appended after the rotation's own (one lock order: rows first, chain last). */
  auditAfter?: (tx: DbOrTx) => Promise<void>;
}

export interface CommitResult {
  keyVersion: number;
  count: number;
  batches: number;
  othersRevoked: number;
  session: { token: string; csrfToken: string; expiresAt: string } | null;
}

/**
 * The rotation's one transaction (README R7) for a token already claimed `in_progress`, and the
 * token's settlement when it fails: shared by a user's execute and an account recovery's
 * completion (modules/recovery), so there is one re-encryption path. Any throw rolls everything
 * back; the token then moves to `failed` (reason code) in its own transaction and the error goes
 * on (RotationAbort as 409 INVALID_STATE). The caller wipes the keys it passed in.
 */
export function createRotationCommit(deps: RotationServiceDeps) {
  const { db, repo, audit, clock, config, hooks } = deps;

  return async function commitRotation(ctx: RequestCtx, input: CommitInput): Promise<CommitResult> {
    const { tokenId, lockOwner, user } = input;
    const userId = user.id;
    const toKv = input.fromKeyVersion + 1;
    const started = Date.now();
    try {
      await hooks.afterClaim?.(tokenId);
      const result = await db.transaction(async (tx) => {
        // The token row first: recover skips rows a live rotation holds (SKIP LOCKED).
        await repo.get(tx, tokenId, 'update');
        let keyRowBefore: KeySnapshot | null = null;
        const r = await reencryptAll({
          tokenId,
          userId,
          oldDek: input.oldDek,
          newDek: input.newDek,
          fromKeyVersion: input.fromKeyVersion,
          toKeyVersion: toKv,
          expectedWrappedDek: input.keysBefore.wrappedDek,
          batchSize: config.ROTATION_BATCH_SIZE,
          hooks,
          store: {
            lockKeyRow: async () => {
              const k = await repo.lockKeyRow(tx, userId);
              if (!k) throw new RotationAbort('KEY_CHANGED', 'key row missing');
              // Never the admin's AMK share: a share wrapped under the old (maybe leaked)
              // password is not kept past the rotation (R12); an admin's restore is refused.
              keyRowBefore = snapshotKeyRow(k);
              return k;
            },
            countSecrets: () => repo.countSecrets(tx, userId),
            backupKeyRow: () => repo.backupKeyRow(tx, tokenId, userId, keyRowBefore!),
            readBatch: (after, limit, maxBytes) => repo.readBatch(tx, userId, after, limit, maxBytes),
            // Each batch's write also stores its old rows as one backup chunk (R7).
            writeBatch: (rows, chunk) => repo.writeBatch(tx, tokenId, userId, rows, chunk),
            countNotAt: (kv) => repo.countNotAt(tx, userId, kv),
          },
        });
        await repo.writeKeyRow(tx, userId, { ...input.fresh.material, adekFinal: null, adekFinalizedAt: null });
        // A rotation that is never restorable (an admin's, R12; a recovery's, recovery V8) keeps no
        // backup: dropped before COMMIT, it never reaches the disk as committed data. Nor do the
        // user's older backups survive it (they open with an older password, and the rotations
        // they belong to are superseded by this one).
        if (!input.keepBackup) await repo.deleteUserBackups(tx, userId);
        if (input.share) {
          const amkId = input.share.wrap.amkId;
          await deps.amkRepo.upsertWrap(tx, { adminId: userId, amkId, keyVersion: toKv, wrappedPrivate: wrapAmkForAdmin(input.fresh.kek, input.share.priv, userId, amkId) });
        }
        // Every session of the old key version ends; the caller's is replaced by the new one
        // below, so it is not counted among the "other sessions signed out".
        const othersRevoked = await deps.authRepo.revokeUserSessions(tx, userId, input.revokeReason, clock.now(), input.callerSessionId ?? undefined);
        if (input.callerSessionId) await deps.authRepo.revokeSession(tx, input.callerSessionId, input.revokeReason, clock.now());
        const superseded: string[] = [];
        for (const old of await repo.completedOf(tx, userId)) {
          if (old.id === tokenId) continue;
          if (await repo.transition(tx, old.id, ['completed'], { status: 'superseded', endedAt: sql`${clock.now()}` })) superseded.push(old.id);
        }
        const done = await repo.transition(
          tx,
          tokenId,
          ['in_progress'],
          { status: 'completed', completedAt: sql`${clock.now()}`, toKeyVersion: toKv, secretsReencrypted: r.count, resultDigest: r.digest, tempHash: null },
          sql`lock_owner = ${lockOwner}`,
        );
        if (!done) throw new RotationAbort('KEY_CHANGED', 'the token was settled by someone else meanwhile');
        await input.inTransaction?.(tx, { count: r.count, toKeyVersion: toKv });
        const session = input.callerSessionId ? await deps.auth.openSession(tx, user, toKv, input.newDek) : null;
        await hooks.beforeCommit?.(tokenId);
        // Audit events last (one lock order everywhere: rows first, the chain's lock last).
        for (const id of superseded) await audit.record(tx, ctx, { action: 'rotation.superseded', outcome: 'success', target: target(id), details: { by: tokenId } });
        await audit.record(tx, ctx, {
          action: 'rotation.completed',
          outcome: 'success',
          target: target(tokenId),
          details: { fromKeyVersion: input.fromKeyVersion, toKeyVersion: toKv, secretsReencrypted: r.count, batches: r.batches, sessionsRevoked: othersRevoked, ...input.details },
        });
        await input.auditAfter?.(tx);
        return { r, othersRevoked, session };
      });
      await hooks.afterCommit?.(tokenId);
      deps.metrics.rotations.inc({ outcome: 'completed' });
      deps.metrics.rotationDuration.observe({ outcome: 'completed' }, (Date.now() - started) / 1000);
      const s = result.session;
      return {
        keyVersion: toKv,
        count: result.r.count,
        batches: result.r.batches,
        othersRevoked: result.othersRevoked,
        session: s ? { token: s.token, csrfToken: s.csrfToken, expiresAt: s.expiresAt } : null,
      };
    } catch (e) {
      // The transaction rolled back: the original rows are untouched. Settle the token.
      const reason = e instanceof RotationAbort ? e.reasonCode : e instanceof AppError ? e.code : 'INTERNAL_ERROR';
      try {
        await db.transaction(async (tx) => {
          const moved = await repo.transition(tx, tokenId, ['in_progress'], { status: 'failed', failedAt: sql`${clock.now()}`, failureReason: reason, tempHash: null }, sql`lock_owner = ${lockOwner}`);
          if (moved) {
            await deps.notify(tx, messages.rotationFailed(tokenId, user.email, reason));
            await audit.record(tx, ctx, { action: 'rotation.failed', outcome: 'failure', target: target(tokenId), details: { reason } });
          }
        });
      } catch {
        // Database gone too: recover settles the token from the database's truth later.
      }
      deps.metrics.rotations.inc({ outcome: 'failed' });
      deps.metrics.rotationDuration.observe({ outcome: 'failed' }, (Date.now() - started) / 1000);
      if (e instanceof AppError) throw e;
      if (e instanceof RotationAbort) throw new AppError('INVALID_STATE', `The rotation was refused and rolled back (${e.reasonCode}); nothing changed. Ask for a new rotation.`, { reason: e.reasonCode });
      throw e;
    }
  };
}
export type CommitRotation = ReturnType<typeof createRotationCommit>;
