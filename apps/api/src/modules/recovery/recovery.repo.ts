import { and, count, desc, eq, inArray, isNotNull, isNull, or, type SQL, sql } from 'drizzle-orm';
import { type DbOrTx, rowsOf } from '../../db/client';
import { recoveryRequests, users } from '../../db/schema';
import type { SetOf } from '../rotation/rotation.repo';

export type RecoveryRow = typeof recoveryRequests.$inferSelect;
export const OPEN_RECOVERY = ['pending', 'approved'] as const;
/** Every transition out of `approved` drops the sealed copies in the same statement (README V9). */
const WIPE_SEALED = { sealedDek: null, sealedAmk: null } as const;

export function createRecoveryRepo() {
  return {
    async insert(tx: DbOrTx, r: typeof recoveryRequests.$inferInsert): Promise<RecoveryRow> {
      const [row] = await tx.insert(recoveryRequests).values(r).returning();
      return row!;
    },

    async get(db: DbOrTx, id: string, lock?: 'update'): Promise<RecoveryRow | null> {
      const q = db.select().from(recoveryRequests).where(eq(recoveryRequests.id, id));
      const [r] = await (lock === 'update' ? q.for('update') : q);
      return r ?? null;
    },

    /** Compare-and-set, like rotation tokens (rotation README R2); leaving `approved` wipes the sealed copies. */
    async transition(tx: DbOrTx, id: string, from: readonly string[], set: SetOf<typeof recoveryRequests.$inferInsert>, extra?: SQL): Promise<RecoveryRow | null> {
      const conds = [eq(recoveryRequests.id, id), inArray(recoveryRequests.status, [...from])];
      if (extra) conds.push(extra);
      const wipe = set.status && set.status !== 'approved' ? WIPE_SEALED : {};
      const [r] = await tx
        .update(recoveryRequests)
        .set({ ...set, ...wipe, updatedAt: sql`now()` })
        .where(and(...conds))
        .returning();
      return r ?? null;
    },

    /**
     * End the account's open requests in `statuses` (a new request supersedes a pending one; a
     * password change or the owner ends an approved one too), sealed copies dropped.
     */
    async supersedeOpen(tx: DbOrTx, userId: string, now: SQL, statuses: readonly string[] = OPEN_RECOVERY, note: string | null = null): Promise<{ id: string; from: string }[]> {
      return rowsOf<{ id: string; from: string }>(
        tx,
        sql`update recovery_requests r set status = 'superseded', decided_at = ${now}, decision_note = ${note}, sealed_dek = null, sealed_amk = null, updated_at = now()
            from recovery_requests o
            where o.id = r.id and r.user_id = ${userId} and r.status in (${sql.join(
              statuses.map((x) => sql`${x}`),
              sql`, `,
            )})
            returning r.id as id, o.status as "from"`,
      );
    },

    async openOf(db: DbOrTx, userId: string): Promise<RecoveryRow | null> {
      const [r] = await db
        .select()
        .from(recoveryRequests)
        .where(and(eq(recoveryRequests.userId, userId), inArray(recoveryRequests.status, [...OPEN_RECOVERY])));
      return r ?? null;
    },

    /** Open requests past their expiry: expired, sealed copies dropped (cleanup and on sight). */
    async expireOverdue(tx: DbOrTx, now: SQL, id?: string): Promise<{ id: string; userId: string; from: string }[]> {
      // The old status comes from a self-join: UPDATE … RETURNING sees only the new row.
      return rowsOf<{ id: string; userId: string; from: string }>(
        tx,
        sql`update recovery_requests r set status = 'expired', decided_at = ${now}, sealed_dek = null, sealed_amk = null, updated_at = now()
            from recovery_requests o
            where o.id = r.id and r.status in ('pending', 'approved') and r.expires_at <= ${now} ${id ? sql`and r.id = ${id}` : sql``}
            returning r.id as id, r.user_id as "userId", o.status as "from"`,
      );
    },

    async list(db: DbOrTx, opts: { statuses?: string[]; limit: number; offset: number }) {
      const where = opts.statuses?.length ? inArray(recoveryRequests.status, opts.statuses) : undefined;
      const rows = await db
        .select({ request: recoveryRequests, email: users.email, role: users.role })
        .from(recoveryRequests)
        .innerJoin(users, eq(users.id, recoveryRequests.userId))
        .where(where)
        .orderBy(desc(recoveryRequests.createdAt), desc(recoveryRequests.id))
        .limit(opts.limit)
        .offset(opts.offset);
      const [total] = await db.select({ n: count() }).from(recoveryRequests).where(where);
      return { rows, total: total?.n ?? 0 };
    },

    /** Reserve one completion attempt; null once the cap is reached (or not approved) (README V5). */
    async reserveAttempt(tx: DbOrTx, id: string, max: number): Promise<number | null> {
      const [r] = await tx
        .update(recoveryRequests)
        .set({ failedAttempts: sql`${recoveryRequests.failedAttempts} + 1`, updatedAt: sql`now()` })
        .where(and(eq(recoveryRequests.id, id), eq(recoveryRequests.status, 'approved'), sql`${recoveryRequests.failedAttempts} < ${max}`))
        .returning({ n: recoveryRequests.failedAttempts });
      return r?.n ?? null;
    },

    async releaseAttempt(tx: DbOrTx, id: string): Promise<void> {
      await tx
        .update(recoveryRequests)
        .set({ failedAttempts: sql`greatest(${recoveryRequests.failedAttempts} - 1, 0)` })
        .where(eq(recoveryRequests.id, id));
    },

    /** What the owner is told (README V3): open requests, and every approval, not yet acknowledged. */
    async notices(db: DbOrTx, userId: string) {
      return db
        .select({ request: recoveryRequests, openedBy: users.email })
        .from(recoveryRequests)
        .leftJoin(users, eq(users.id, recoveryRequests.approvedBy))
        .where(
          and(
            eq(recoveryRequests.userId, userId),
            isNull(recoveryRequests.noticeAckedAt),
            or(isNotNull(recoveryRequests.approvedAt), eq(recoveryRequests.status, 'pending')),
          ),
        )
        .orderBy(desc(recoveryRequests.createdAt));
    },

    async ackNotice(tx: DbOrTx, userId: string, id: string, now: SQL): Promise<boolean> {
      const rows = await tx
        .update(recoveryRequests)
        .set({ noticeAckedAt: now })
        .where(and(eq(recoveryRequests.id, id), eq(recoveryRequests.userId, userId), isNull(recoveryRequests.noticeAckedAt)))
        .returning({ id: recoveryRequests.id });
      return rows.length > 0;
    },
  };
}
export type RecoveryRepo = ReturnType<typeof createRecoveryRepo>;
