import { BACKUP_CHUNK_FORMAT_V1, BackupChunkError, type SecretBackupRow, type SecretCipherRow, unpackBackupChunk } from '@keyturn/shared/rotation';
import { and, count, desc, eq, inArray, isNull, type SQL, sql } from 'drizzle-orm';
import { type DbOrTx, rowsOf, userKeyGate } from '../../db/client';
import { rotationBackupChunks, rotationBackups, rotationTokens, secrets, userKeys, users } from '../../db/schema';

export type TokenRow = typeof rotationTokens.$inferSelect;
/** Column values for an UPDATE: plain values or SQL expressions (e.g. the clock's now()). */
export type SetOf<T> = { [K in keyof T]?: T[K] | SQL };
export type KeyRow = typeof userKeys.$inferSelect;

/**
 * Serialise a key row into the backup's JSON (bytea as base64). Never an admin's AMK share: a
 * share wrapped under the old password is not kept past the rotation (README R12). Snapshots
 * written before migration 0004 may carry `amkWrap`; that migration strips it.
 */
export const snapshotKeyRow = (k: KeyRow) => ({
  keyVersion: k.keyVersion,
  kdfSalt: k.kdfSalt.toString('base64'),
  kdfParams: k.kdfParams,
  authHash: k.authHash.toString('base64'),
  wrappedDek: k.wrappedDek.toString('base64'),
  dekKcv: k.dekKcv.toString('base64'),
  adekPending: k.adekPending?.toString('base64') ?? null,
  adekFinal: k.adekFinal?.toString('base64') ?? null,
  adekFinalizedAt: k.adekFinalizedAt?.toISOString() ?? null,
});
export type KeySnapshot = ReturnType<typeof snapshotKeyRow>;

/** A backup chunk's format byte, as a bytea expression for the SQL that packs chunks. */
const BACKUP_CHUNK_HEADER = sql.raw(`decode('${BACKUP_CHUNK_FORMAT_V1.toString(16).padStart(2, '0')}', 'hex')`);

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

    async list(db: DbOrTx, opts: { userId?: string; statuses?: string[]; kind?: 'rotation' | 'recovery'; limit: number; offset: number }) {
      const conds: SQL[] = [];
      if (opts.userId) conds.push(eq(rotationTokens.userId, opts.userId));
      if (opts.kind) conds.push(eq(rotationTokens.kind, opts.kind));
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

    /**
     * The next batch in id order: at most `limit` rows, cut where the ciphertext bytes would pass
     * `maxBytes` (at least one row), so no batch, the first included, holds more than about
     * BATCH_BYTES whatever the secrets' sizes. The sizes come from octet_length, which reads a
     * toasted value's size without fetching it. `more`: the limit or the byte cut ended the batch.
     * The ciphertexts travel as base64 text and are decoded here with Buffer.from:
     * node-postgres's and PGlite's bytea (hex) codecs are many times slower on 10^5 rows
     * (PGlite's parses byte by byte in JS).
     */
    async readBatch(tx: DbOrTx, userId: string, afterId: string | null, limit: number, maxBytes: number): Promise<{ rows: SecretCipherRow[]; more: boolean }> {
      const rows = await rowsOf<{ id: string; kv: number; n: string; v: string; candidates: number }>(
        tx,
        sql`select c.id, c.kv, encode(c.name_ct, 'base64') as n, encode(c.value_ct, 'base64') as v, c.candidates
            from (select w.id, w.key_version as kv, w.name_ct, w.value_ct, count(*) over () as candidates,
                         octet_length(w.name_ct) + octet_length(w.value_ct) as len,
                         sum(octet_length(w.name_ct) + octet_length(w.value_ct)) over (order by w.id) as cum
                  from (select id, key_version, name_ct, value_ct from secrets
                        where user_id = ${userId}::uuid${afterId ? sql` and id > ${afterId}::uuid` : sql``}
                        order by id
                        limit ${limit}) as w) as c
            where c.cum <= ${maxBytes}::bigint or c.cum = c.len
            order by c.id`,
      );
      const candidates = Number(rows[0]?.candidates ?? 0);
      return {
        rows: rows.map((r) => ({ id: r.id, keyVersion: r.kv, nameCt: Buffer.from(r.n, 'base64'), valueCt: Buffer.from(r.v, 'base64') })),
        more: candidates === limit || rows.length < candidates,
      };
    },

    /**
     * ONE statement per batch, whatever its size, that backs the batch up and rewrites it:
     *
     * - `b` inserts backup chunk `chunk`: the batch's rows as they are before this statement (all
     *   parts of one statement see the same snapshot, so the UPDATE beside it does not show), in id
     *   order, packed by the database in the format of packages/shared/src/rotation/backup-chunk.ts
     *   (v1; the tests compare these bytes with packBackupChunk's). Under the key row lock these are
     *   exactly the rows the engine read. The old ciphertexts never leave the database;
     * - `u` is the UPDATE … FROM unnest of the new ciphertexts. Each column travels as one
     *   comma-joined text parameter (uuids, integers and base64 contain no comma) split by
     *   string_to_array and decoded in the database: no per-element array quoting in the driver and
     *   no bytea hex codec on either side.
     *
     * Returns the rows the stored chunk holds (counted by the database) and the rows updated: the
     * engine's completeness guard.
     */
    async writeBatch(tx: DbOrTx, tokenId: string, userId: string, rows: SecretCipherRow[], chunk: number): Promise<{ backedUp: number; updated: number }> {
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
      const idList = ids.join(',');
      const [r] = await rowsOf<{ b: number; u: number }>(
        tx,
        sql`with b as (
              insert into rotation_backup_chunks (token_id, user_id, chunk, row_count, data)
              select ${tokenId}::uuid, ${userId}::uuid, ${chunk}::int, count(*)::int,
                     ${BACKUP_CHUNK_HEADER} || int4send(count(*)::int) || coalesce(string_agg(
                       uuid_send(o.id) || int4send(o.key_version)
                       || int8send((extract(epoch from o.created_at) * 1000000)::int8) || int8send((extract(epoch from o.updated_at) * 1000000)::int8)
                       || int4send(length(o.name_ct)) || o.name_ct || int4send(length(o.value_ct)) || o.value_ct,
                       ''::bytea order by o.id), ''::bytea)
              from secrets o
              where o.user_id = ${userId}::uuid and o.id = any(string_to_array(${idList}::text, ',')::uuid[])
              returning row_count),
            u as (
              update secrets s set key_version = v.kv, name_ct = decode(v.n, 'base64'), value_ct = decode(v.v, 'base64')
              from unnest(string_to_array(${idList}::text, ',')::uuid[], string_to_array(${kvs.join(',')}::text, ',')::int[],
                          string_to_array(${names.join(',')}::text, ','), string_to_array(${values.join(',')}::text, ',')) as v(id, kv, n, v)
              where s.id = v.id and s.user_id = ${userId}::uuid
              returning 1)
            select (select coalesce(sum(row_count), 0)::int from b) as b, (select count(*)::int from u) as u`,
      );
      return { backedUp: r?.b ?? 0, updated: r?.u ?? 0 };
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

    /** Drop a rotation's backup: its key-row snapshot and its chunks (an admin's rotation keeps none, R12). */
    async deleteBackups(tx: DbOrTx, tokenId: string): Promise<void> {
      await tx.delete(rotationBackups).where(eq(rotationBackups.tokenId, tokenId));
      await tx.delete(rotationBackupChunks).where(eq(rotationBackupChunks.tokenId, tokenId));
    },

    /**
     * Drop every backup of a user (old key rows, which an old password opens, and the old
     * ciphertexts): when no rotation of theirs can be restored any more (a password change, a
     * rotation that is never restorable). Returns how many token backups went.
     */
    async deleteUserBackups(tx: DbOrTx, userId: string): Promise<number> {
      const rows = await tx.delete(rotationBackups).where(eq(rotationBackups.userId, userId)).returning({ tokenId: rotationBackups.tokenId });
      await tx.delete(rotationBackupChunks).where(eq(rotationBackupChunks.userId, userId));
      return new Set(rows.map((r) => r.tokenId)).size;
    },

    /** The rotation's key-row snapshot (null once purged past retention). */
    async keyBackupOf(db: DbOrTx, tokenId: string): Promise<KeySnapshot | null> {
      const [r] = await db
        .select({ snapshot: rotationBackups.keySnapshot })
        .from(rotationBackups)
        .where(and(eq(rotationBackups.tokenId, tokenId), isNull(rotationBackups.secretId)));
      return (r?.snapshot as KeySnapshot | undefined) ?? null;
    },

    /**
     * Restore: drop the user's rows, then put the backed-up rows back exactly (id, key_version,
     * ciphertexts, created_at, updated_at). From the packed chunks, in chunk order: per chunk one
     * SELECT of its data and one INSERT … SELECT FROM unnest (the chunk is unpacked here; a chunk
     * that does not parse, or a gap in the chunk numbers, throws BackupChunkError). The epoch
     * microseconds go back to timestamptz in whole days ('24 hours', never calendar days, so no
     * time zone applies) plus microseconds: each product is exact in the float8 that interval
     * multiplication uses, over the whole timestamptz range. A token without chunks was backed up
     * by a version before migration 0002 (one rotation_backups row per secret): one INSERT …
     * SELECT from those. Returns the number of rows restored.
     */
    async restoreSecrets(tx: DbOrTx, tokenId: string, userId: string): Promise<number> {
      await tx.delete(secrets).where(eq(secrets.userId, userId));
      const chunks = await rowsOf<{ chunk: number; n: number }>(
        tx,
        sql`select chunk, row_count as n from rotation_backup_chunks where token_id = ${tokenId}::uuid order by chunk`,
      );
      if (chunks.length === 0) {
        const [legacy] = await rowsOf<{ n: number }>(
          tx,
          sql`with ins as (
                insert into secrets (id, user_id, key_version, name_ct, value_ct, created_at, updated_at)
                select secret_id, user_id, key_version, name_ct, value_ct, secret_created_at, secret_updated_at
                from rotation_backups where token_id = ${tokenId}::uuid and secret_id is not null
                returning 1)
              select count(*)::int as n from ins`,
        );
        return legacy?.n ?? 0;
      }
      let restored = 0;
      for (const [i, c] of chunks.entries()) {
        if (c.chunk !== i) throw new BackupChunkError(`chunk ${i} is missing`);
        const [d] = await rowsOf<{ d: string }>(
          tx,
          sql`select encode(data, 'base64') as d from rotation_backup_chunks where token_id = ${tokenId}::uuid and chunk = ${c.chunk}::int`,
        );
        const rows = unpackBackupChunk(Buffer.from(d!.d, 'base64'), c.n);
        if (rows.length === 0) continue;
        const col = <T>(f: (r: SecretBackupRow) => T) => rows.map(f).join(',');
        const [ins] = await rowsOf<{ n: number }>(
          tx,
          sql`with ins as (
                insert into secrets (id, user_id, key_version, name_ct, value_ct, created_at, updated_at)
                select v.id, ${userId}::uuid, v.kv, decode(v.n, 'base64'), decode(v.v, 'base64'),
                       timestamptz 'epoch' + (v.c / 86400000000) * interval '24 hours' + (v.c % 86400000000) * interval '1 microsecond',
                       timestamptz 'epoch' + (v.u / 86400000000) * interval '24 hours' + (v.u % 86400000000) * interval '1 microsecond'
                from unnest(string_to_array(${col((r) => r.id)}::text, ',')::uuid[], string_to_array(${col((r) => r.keyVersion)}::text, ',')::int[],
                            string_to_array(${col((r) => r.nameCt.toString('base64'))}::text, ','), string_to_array(${col((r) => r.valueCt.toString('base64'))}::text, ','),
                            string_to_array(${col((r) => r.createdAtUs)}::text, ',')::int8[], string_to_array(${col((r) => r.updatedAtUs)}::text, ',')::int8[])
                     as v(id, kv, n, v, c, u)
                returning 1)
              select count(*)::int as n from ins`,
        );
        if (ins?.n !== rows.length) throw new Error(`restore: chunk ${c.chunk} put back ${ins?.n ?? 0} of ${rows.length} rows`);
        restored += rows.length;
      }
      return restored;
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
