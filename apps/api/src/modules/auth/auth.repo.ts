import type { KeyMaterial } from '@keyturn/shared/crypto';
import { and, eq, isNull, ne, type SQL, sql } from 'drizzle-orm';
import { type Db, type DbOrTx, preparedPerDb, rowsOf } from '../../db/client';
import { secrets, sessions, userKeys, users } from '../../db/schema';
import { type Clock, PREPARED_NOW } from '../../lib/clock';

export type UserRow = typeof users.$inferSelect;
export type KeyRow = typeof userKeys.$inferSelect;

/** What a request needs of its session and user: only these columns are read and decoded. */
const LIVE_SESSION_FIELDS = {
  session: { id: sessions.id, keyVersion: sessions.keyVersion, wrappedDek: sessions.wrappedDek, keyHash: sessions.keyHash, expiresAt: sessions.expiresAt },
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

    // ---- throttles (shared by every API instance; modules/auth/README.md A5) ----
    /**
     * Reserve one attempt under `key`, atomically, before the attempt's argon2 work: refused while
     * the key is blocked, or while settled failures plus attempts still being evaluated fill the
     * cap. A new window (failures back to 0) starts when the last one is over and no block is
     * running, or when the block ends; a block always runs its full time. Attempts in flight
     * carry over into a new window (they may still fail); only when there was no reservation for
     * a whole window (and at least two minutes) are slots still counted in flight taken to have
     * been leaked by a crash, and freed. Refused: `blockedFor` is the block's remainder in
     * seconds, or 0 when the key is not blocked but attempts in flight fill the cap (busy: they
     * may yet succeed).
     */
    async throttleReserve(db: DbOrTx, key: string, max: number, windowSeconds: number, now: SQL): Promise<{ reserved: boolean; blockedFor: number }> {
      const window = sql`${windowSeconds} * interval '1 second'`;
      const blocked = sql`coalesce(t.blocked_until > ${now}, false)`;
      const fresh = sql`(t.blocked_until is null and t.window_started_at <= ${now} - ${window}) or coalesce(t.blocked_until <= ${now}, false)`;
      const kept = sql`(case when t.last_reserved_at <= ${now} - greatest(${window}, interval '2 minutes') then 0 else t.in_flight end)`;
      const [r] = await rowsOf<{ reserved: boolean; wait: number | null }>(
        db,
        sql`with ins as (
              insert into throttles as t (key, failures, in_flight, window_started_at, last_reserved_at) values (${key}, 0, 1, ${now}, ${now})
              on conflict (key) do update set
                failures = case when ${fresh} then 0 else t.failures end,
                in_flight = ${kept} + 1,
                window_started_at = case when ${fresh} then ${now} else t.window_started_at end,
                blocked_until = case when ${fresh} then null else t.blocked_until end,
                last_reserved_at = ${now}
              where not ${blocked} and (case when ${fresh} then 0 else t.failures end) + ${kept} < ${max}
              returning 1)
            select exists (select 1 from ins) as reserved,
                   (select ceil(extract(epoch from (t.blocked_until - ${now})))::int from throttles t where t.key = ${key} and t.blocked_until > ${now}) as wait`,
      );
      return { reserved: !!r?.reserved, blockedFor: r?.wait ?? 0 };
    },

    /**
     * Settle a reserved attempt. `failure`: it becomes a counted failure, and the one that reaches
     * `max` blocks the key for `lockSeconds`. `success`: its slot is given back and the
     * consecutive failures are cleared. `abandon`: the slot is given back, nothing counted (the
     * attempt never reached a password check).
     */
    async throttleSettle(db: DbOrTx, key: string, outcome: 'failure' | 'success' | 'abandon', max: number, lockSeconds: number, now: SQL): Promise<void> {
      const set =
        outcome === 'failure'
          ? sql`failures = failures + 1, blocked_until = case when failures + 1 >= ${max} then ${now} + ${lockSeconds} * interval '1 second' else blocked_until end`
          : outcome === 'success'
            ? sql`failures = 0`
            : sql`failures = failures`;
      await db.execute(sql`update throttles set in_flight = greatest(in_flight - 1, 0), ${set} where key = ${key}`);
    },
  };
}
export type AuthRepo = ReturnType<typeof createAuthRepo>;
