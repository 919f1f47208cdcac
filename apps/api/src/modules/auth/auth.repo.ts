import type { KeyMaterial } from '@keyturn/shared/crypto';
import { and, eq, isNull, ne, type SQL, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client';
import { sessions, throttles, userKeys, users } from '../../db/schema';

export type UserRow = typeof users.$inferSelect;
export type KeyRow = typeof userKeys.$inferSelect;

export function createAuthRepo() {
  return {
    async findUserWithKeysByEmail(db: DbOrTx, email: string) {
      const [r] = await db.select({ user: users, keys: userKeys }).from(users).innerJoin(userKeys, eq(userKeys.userId, users.id)).where(eq(users.email, email));
      return r ?? null;
    },

    async findUserWithKeys(db: DbOrTx, userId: string, lock?: 'update' | 'share') {
      const q = db.select({ user: users, keys: userKeys }).from(users).innerJoin(userKeys, eq(userKeys.userId, users.id)).where(eq(users.id, userId));
      const [r] = await (lock === 'update' ? q.for('update', { of: userKeys }) : lock === 'share' ? q.for('share', { of: userKeys }) : q);
      return r ?? null;
    },

    async insertKeys(tx: DbOrTx, userId: string, m: KeyMaterial): Promise<void> {
      await tx.insert(userKeys).values({ userId, ...m });
    },

    async countAdmins(db: DbOrTx): Promise<number> {
      const [r] = await db.select({ n: sql<number>`count(*)::int` }).from(users).where(and(eq(users.role, 'admin'), eq(users.disabled, false)));
      return r?.n ?? 0;
    },

    async insertSession(tx: DbOrTx, s: typeof sessions.$inferInsert) {
      await tx.insert(sessions).values(s);
    },

    /** A live session with its user and the user's *current* key version. */
    async findLiveSession(db: DbOrTx, sid: string, now: SQL) {
      const [r] = await db
        .select({ session: sessions, user: users, currentKeyVersion: userKeys.keyVersion })
        .from(sessions)
        .innerJoin(users, eq(users.id, sessions.userId))
        .innerJoin(userKeys, eq(userKeys.userId, sessions.userId))
        .where(and(eq(sessions.id, sid), isNull(sessions.revokedAt), sql`${sessions.expiresAt} > ${now}`, eq(users.disabled, false)));
      return r ?? null;
    },

    async revokeSession(db: DbOrTx, sid: string, reason: string, now: SQL): Promise<boolean> {
      const r = await db
        .update(sessions)
        .set({ revokedAt: sql`${now}`, revokedReason: reason })
        .where(and(eq(sessions.id, sid), isNull(sessions.revokedAt)))
        .returning({ id: sessions.id });
      return r.length > 0;
    },

    async revokeUserSessions(tx: DbOrTx, userId: string, reason: string, now: SQL, exceptSid?: string): Promise<number> {
      const conds = [eq(sessions.userId, userId), isNull(sessions.revokedAt)];
      if (exceptSid) conds.push(ne(sessions.id, exceptSid));
      const r = await tx
        .update(sessions)
        .set({ revokedAt: sql`${now}`, revokedReason: reason })
        .where(and(...conds))
        .returning({ id: sessions.id });
      return r.length;
    },

    // ---- throttles (shared by every API instance) ----
    async throttleBlockedFor(db: DbOrTx, key: string, now: SQL): Promise<number> {
      const [r] = await db
        .select({ s: sql<number>`ceil(extract(epoch from (${throttles.blockedUntil} - ${now})))::int` })
        .from(throttles)
        .where(and(eq(throttles.key, key), sql`${throttles.blockedUntil} > ${now}`));
      return r?.s ?? 0;
    },

    /** Count one failure atomically; block for lockSeconds once max failures fall in one window. */
    async throttleFail(db: DbOrTx, key: string, max: number, windowSeconds: number, now: SQL): Promise<number> {
      const [r] = await db
        .insert(throttles)
        .values({ key, failures: 1, windowStartedAt: sql`${now}` })
        .onConflictDoUpdate({
          target: throttles.key,
          set: {
            failures: sql`case when ${throttles.windowStartedAt} < ${now} - ${windowSeconds} * interval '1 second' then 1 else ${throttles.failures} + 1 end`,
            windowStartedAt: sql`case when ${throttles.windowStartedAt} < ${now} - ${windowSeconds} * interval '1 second' then ${now} else ${throttles.windowStartedAt} end`,
          },
        })
        .returning({ failures: throttles.failures });
      const failures = r?.failures ?? 1;
      if (failures >= max) {
        await db
          .update(throttles)
          .set({ blockedUntil: sql`${now} + ${windowSeconds} * interval '1 second'`, failures: 0, windowStartedAt: sql`${now}` })
          .where(eq(throttles.key, key));
      }
      return failures;
    },

    async throttleReset(db: DbOrTx, key: string): Promise<void> {
      await db.delete(throttles).where(eq(throttles.key, key));
    },
  };
}
export type AuthRepo = ReturnType<typeof createAuthRepo>;
