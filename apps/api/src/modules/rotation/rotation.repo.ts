import type { SecretCipherRow } from '@keyturn/shared/rotation';
import { and, count, desc, eq, inArray, isNull, type SQL, sql } from 'drizzle-orm';
import { type DbOrTx, rowsOf, userKeyGate } from '../../db/client';
import { type amkWraps, rotationBackups, rotationTokens, secrets, userKeys, users } from '../../db/schema';

export type TokenRow = typeof rotationTokens.$inferSelect;
/** Column values for an UPDATE: plain values or SQL expressions (e.g. the clock's now()). */
export type SetOf<T> = { [K in keyof T]?: T[K] | SQL };
export type KeyRow = typeof userKeys.$inferSelect;

/** Serialise a key row into the backup's JSON (bytea as base64). */
export const snapshotKeyRow = (k: KeyRow, amkWrap: typeof amkWraps.$inferSelect | null) => ({
  keyVersion: k.keyVersion,
  kdfSalt: k.kdfSalt.toString('base64'),
  kdfParams: k.kdfParams,
  authHash: k.authHash.toString('base64'),
  wrappedDek: k.wrappedDek.toString('base64'),
  dekKcv: k.dekKcv.toString('base64'),
  adekPending: k.adekPending?.toString('base64') ?? null,
  adekFinal: k.adekFinal?.toString('base64') ?? null,
  adekFinalizedAt: k.adekFinalizedAt?.toISOString() ?? null,
  amkWrap: amkWrap ? { amkId: amkWrap.amkId, wrappedPrivate: amkWrap.wrappedPrivate.toString('base64'), keyVersion: amkWrap.keyVersion } : null,
});
export type KeySnapshot = ReturnType<typeof snapshotKeyRow>;

export function createRotationRepo() {
  return {
    async insertToken(tx: DbOrTx, t: typeof rotationTokens.$inferInsert): Promise<TokenRow> {
      const [r] = await tx.insert(rotationTokens).values(t).returning();
      return r!;
    },

    async get(db: DbOrTx, id: string, lock?: 'update' | 'update-skip-locked'): Promise<TokenRow | null> {
      const q = db.select().from(rotationTokens).where(eq(rotationTokens.id, id));
      const [r] = await (lock === 'update' ? q.for('update') : lock === 'update-skip-locked' ? q.for('update', { skipLocked: true }) : q);
      return r ?? null;
    },

    /**
     * Compare-and-set: move a token from one of `from` to a new state, only if it is still there
     * (and any extra condition holds). Exactly one of any number of concurrent callers wins.
     */
    async transition(tx: DbOrTx, id: string, from: string[], set: SetOf<typeof rotationTokens.$inferInsert>, extra?: SQL): Promise<TokenRow | null> {
      const conds = [eq(rotationTokens.id, id), inArray(rotationTokens.status, from)];
      if (extra) conds.push(extra);
      const [r] = await tx
        .update(rotationTokens)
        .set({ ...set, updatedAt: sql`now()` })
        .where(and(...conds))
        .returning();
      return r ?? null;
    },

    async list(db: DbOrTx, opts: { userId?: string; statuses?: string[]; limit: number; offset: number }) {
      const conds: SQL[] = [];
      if (opts.userId) conds.push(eq(rotationTokens.userId, opts.userId));
      if (opts.statuses?.length) conds.push(inArray(rotationTokens.status, opts.statuses));
      const where = conds.length ? and(...conds) : undefined;
      const rows = await db
        .select({ token: rotationTokens, email: users.email })
        .from(rotationTokens)
        .innerJoin(users, eq(users.id, rotationTokens.userId))
        .where(where)
        .orderBy(desc(rotationTokens.createdAt), desc(rotationTokens.id))
        .limit(opts.limit)
        .offset(opts.offset);
      const [total] = await db.select({ n: count() }).from(rotationTokens).where(where);
      return { rows, total: total?.n ?? 0 };
    },

    async emailsOf(db: DbOrTx, ids: string[]): Promise<Map<string, string>> {
      if (ids.length === 0) return new Map();
      const rows = await db.select({ id: users.id, email: users.email }).from(users).where(inArray(users.id, ids));
      return new Map(rows.map((r) => [r.id, r.email]));
    },

    /** Reserve one temporary-password evaluation; null once the cap is reached (or not approved). */
    async reserveAttempt(tx: DbOrTx, id: string, max: number): Promise<number | null> {
      const [r] = await tx
        .update(rotationTokens)
        .set({ failedAttempts: sql`${rotationTokens.failedAttempts} + 1`, updatedAt: sql`now()` })
        .where(and(eq(rotationTokens.id, id), eq(rotationTokens.status, 'approved'), sql`${rotationTokens.failedAttempts} < ${max}`))
        .returning({ n: rotationTokens.failedAttempts });
      return r?.n ?? null;
    },

    async releaseAttempt(tx: DbOrTx, id: string): Promise<void> {
      await tx
        .update(rotationTokens)
        .set({ failedAttempts: sql`greatest(${rotationTokens.failedAttempts} - 1, 0)` })
        .where(eq(rotationTokens.id, id));
    },

    // ---------------- the rotation transaction's store ----------------
    async lockKeyRow(tx: DbOrTx, userId: string): Promise<KeyRow | null> {
      await tx.execute(userKeyGate(userId, 'exclusive'));
      const [r] = await tx.select().from(userKeys).where(eq(userKeys.userId, userId)).for('update');
      return r ?? null;
    },

    async getKeyRow(db: DbOrTx, userId: string): Promise<KeyRow | null> {
      const [r] = await db.select().from(userKeys).where(eq(userKeys.userId, userId));
      return r ?? null;
    },

    async countSecrets(tx: DbOrTx, userId: string): Promise<number> {
      const [r] = await tx.select({ n: count() }).from(secrets).where(eq(secrets.userId, userId));
      return r?.n ?? 0;
    },

    async backupKeyRow(tx: DbOrTx, tokenId: string, userId: string, snapshot: KeySnapshot): Promise<void> {
      await tx.insert(rotationBackups).values({ tokenId, userId, secretId: null, keyVersion: snapshot.keyVersion, keySnapshot: snapshot });
    },

    /** One INSERT … SELECT for every secret of the user. */
    async backupSecrets(tx: DbOrTx, tokenId: string, userId: string): Promise<number> {
      const rows = await rowsOf<{ n: number }>(
        tx,
        sql`with ins as (
              insert into rotation_backups (token_id, user_id, secret_id, key_version, name_ct, value_ct, secret_created_at, secret_updated_at)
              select ${tokenId}::uuid, user_id, id, key_version, name_ct, value_ct, created_at, updated_at from secrets where user_id = ${userId}::uuid
              returning 1)
            select count(*)::int as n from ins`,
      );
      return rows[0]?.n ?? 0;
    },

    /**
     * The next batch in id order. The ciphertexts travel as base64 text and are decoded here with
     * Buffer.from: node-postgres's and PGlite's bytea (hex) codecs are many times slower on
     * 10^5 rows (PGlite's parses byte by byte in JS).
     */
    async readBatch(tx: DbOrTx, userId: string, afterId: string | null, limit: number): Promise<SecretCipherRow[]> {
      const rows = await rowsOf<{ id: string; kv: number; n: string; v: string }>(
        tx,
        sql`select id, key_version as kv, encode(name_ct, 'base64') as n, encode(value_ct, 'base64') as v
            from secrets
            where user_id = ${userId}::uuid${afterId ? sql` and id > ${afterId}::uuid` : sql``}
            order by id
            limit ${limit}`,
      );
      return rows.map((r) => ({ id: r.id, keyVersion: r.kv, nameCt: Buffer.from(r.n, 'base64'), valueCt: Buffer.from(r.v, 'base64') }));
    },

    /**
     * One UPDATE … FROM unnest per batch: a fixed statement count, whatever the batch size. Each
     * column travels as one comma-joined text parameter (uuids, integers and base64 contain no
     * comma) split by string_to_array and decoded in the database: no per-element array quoting
     * in the driver and no bytea hex codec on either side.
     */
    async writeBatch(tx: DbOrTx, userId: string, rows: SecretCipherRow[]): Promise<void> {
      if (rows.length === 0) return;
      const ids = new Array<string>(rows.length);
      const kvs = new Array<number>(rows.length);
      const names = new Array<string>(rows.length);
      const values = new Array<string>(rows.length);
      rows.forEach((r, i) => {
        ids[i] = r.id;
        kvs[i] = r.keyVersion;
        names[i] = r.nameCt.toString('base64');
        values[i] = r.valueCt.toString('base64');
      });
      await tx.execute(sql`
        update secrets s set key_version = v.kv, name_ct = decode(v.n, 'base64'), value_ct = decode(v.v, 'base64')
        from unnest(string_to_array(${ids.join(',')}::text, ',')::uuid[], string_to_array(${kvs.join(',')}::text, ',')::int[],
                    string_to_array(${names.join(',')}::text, ','), string_to_array(${values.join(',')}::text, ',')) as v(id, kv, n, v)
        where s.id = v.id and s.user_id = ${userId}::uuid`);
    },

    async countNotAt(tx: DbOrTx, userId: string, kv: number): Promise<number> {
      const [r] = await tx
        .select({ n: count() })
        .from(secrets)
        .where(and(eq(secrets.userId, userId), sql`${secrets.keyVersion} <> ${kv}`));
      return r?.n ?? 0;
    },

    async allSecretRows(db: DbOrTx, userId: string): Promise<SecretCipherRow[]> {
      return db
        .select({ id: secrets.id, keyVersion: secrets.keyVersion, nameCt: secrets.nameCt, valueCt: secrets.valueCt })
        .from(secrets)
        .where(eq(secrets.userId, userId))
        .orderBy(secrets.id);
    },

    async writeKeyRow(tx: DbOrTx, userId: string, set: SetOf<typeof userKeys.$inferInsert>): Promise<void> {
      await tx
        .update(userKeys)
        .set({ ...set, updatedAt: sql`now()` })
        .where(eq(userKeys.userId, userId));
    },

    async backupsOf(db: DbOrTx, tokenId: string) {
      return db.select().from(rotationBackups).where(eq(rotationBackups.tokenId, tokenId)).orderBy(rotationBackups.secretId);
    },

    /** Restore: drop the user's rows, then put the backup rows back in one statement. */
    async restoreSecrets(tx: DbOrTx, tokenId: string, userId: string): Promise<number> {
      await tx.delete(secrets).where(eq(secrets.userId, userId));
      const rows = await rowsOf<{ n: number }>(
        tx,
        sql`with ins as (
              insert into secrets (id, user_id, key_version, name_ct, value_ct, created_at, updated_at)
              select secret_id, user_id, key_version, name_ct, value_ct, secret_created_at, secret_updated_at
              from rotation_backups where token_id = ${tokenId}::uuid and secret_id is not null
              returning 1)
            select count(*)::int as n from ins`,
      );
      return rows[0]?.n ?? 0;
    },

    /** Completed tokens of a user at a key version that is no longer current. */
    async completedOf(tx: DbOrTx, userId: string) {
      return tx
        .select()
        .from(rotationTokens)
        .where(and(eq(rotationTokens.userId, userId), eq(rotationTokens.status, 'completed'), isNull(rotationTokens.finalizedAt)));
    },
  };
}
export type RotationRepo = ReturnType<typeof createRotationRepo>;
