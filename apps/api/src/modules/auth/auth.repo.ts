import type { KeyMaterial } from '@keyturn/shared/crypto';
import { and, eq, isNull, ne, type SQL, sql } from 'drizzle-orm';
import { type Db, type DbOrTx, preparedPerDb } from '../../db/client';
import { secrets, sessions, throttles, userKeys, users } from '../../db/schema';
import { type Clock, PREPARED_NOW } from '../../lib/clock';

export type UserRow = typeof users.$inferSelect;
export type KeyRow = typeof userKeys.$inferSelect;

/** What a request needs of its session and user: only these columns are read and decoded. */
const LIVE_SESSION_FIELDS = {
  session: { id: sessions.id, keyVersion: sessions.keyVersion, wrappedDek: sessions.wrappedDek, expiresAt: sessions.expiresAt },
  user: { id: users.id, email: users.email, role: users.role },
  currentKeyVersion: userKeys.keyVersion,
};

/** The per-request session lookup and the login's reads, prepared (see preparedPerDb). */
const statementsOf = preparedPerDb((db: Db) => {
  const live = and(eq(sessions.id, sql.placeholder('sid')), isNull(sessions.revokedAt), sql`${sessions.expiresAt} > ${PREPARED_NOW}`, eq(users.disabled, false));
  return {
    liveSession: db
      .select(LIVE_SESSION_FIELDS)
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .innerJoin(userKeys, eq(userKeys.userId, sessions.userId))
      .where(live)
      .prepare('auth_live_session'),
    /** The same, plus one of the session user's secrets (joined on the session's user: no IDOR). */
    liveSessionWithSecret: db
      .select({ ...LIVE_SESSION_FIELDS, secret: secrets })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .innerJoin(userKeys, eq(userKeys.userId, sessions.userId))
      .leftJoin(secrets, and(eq(secrets.id, sql.placeholder('secretId')), eq(secrets.userId, sessions.userId)))
      .where(live)
      .prepare('auth_live_session_with_secret'),
    userByEmail: db
      .select({ user: users, keys: userKeys })
      .from(users)
      .innerJoin(userKeys, eq(userKeys.userId, users.id))
      .where(eq(users.email, sql.placeholder('email')))
      .prepare('auth_user_by_email'),
    throttle: db
      .select({ blockedFor: sql<number>`ceil(greatest(0, extract(epoch from (${throttles.blockedUntil} - ${PREPARED_NOW}))))::int` })
      .from(throttles)
      .where(eq(throttles.key, sql.placeholder('key')))
      .prepare('auth_throttle'),
  };
});

export function createAuthRepo() {
  return {
    async findUserWithKeysByEmail(db: DbOrTx, email: string) {
      const [r] = await db.select({ user: users, keys: userKeys }).from(users).innerJoin(userKeys, eq(userKeys.userId, users.id)).where(eq(users.email, email));
      return r ?? null;
    },

    /** findUserWithKeysByEmail on the pool handle, prepared (the login path). */
    async userByEmail(db: Db, email: string) {
      const [r] = await statementsOf(db).userByEmail.execute({ email });
      return r ?? null;
    },

    /**
     * A throttle key's state, prepared (login, admin re-authentication, rotation execute): whether it has a row at all (failures counted, so a
     * success must reset it) and for how many more seconds it is blocked (0: not blocked).
     */
    async throttleState(db: Db, key: string, clock: Clock): Promise<{ exists: boolean; blockedFor: number }> {
      const [r] = await statementsOf(db).throttle.execute({ key, ...clock.params() });
      return { exists: !!r, blockedFor: r?.blockedFor ?? 0 };
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

    /** Insert a session; its expiry is computed by the database clock in the same statement. */
    async insertSession(tx: DbOrTx, s: Omit<typeof sessions.$inferInsert, 'expiresAt'>, ttlSeconds: number, now: SQL): Promise<Date> {
      const [r] = await tx
        .insert(sessions)
        .values({ ...s, expiresAt: sql`${now} + ${ttlSeconds} * interval '1 second'` })
        .returning({ expiresAt: sessions.expiresAt });
      return r!.expiresAt;
    },

    /** A live session with its user and the user's *current* key version (prepared). */
    async findLiveSession(db: Db, sid: string, clock: Clock) {
      const [r] = await statementsOf(db).liveSession.execute({ sid, ...clock.params() });
      return r ?? null;
    },

    /** findLiveSession and one secret of that session's user in one round trip (the read path). */
    async findLiveSessionWithSecret(db: Db, sid: string, secretId: string, clock: Clock) {
      const [r] = await statementsOf(db).liveSessionWithSecret.execute({ sid, secretId, ...clock.params() });
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
