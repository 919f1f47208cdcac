import { and, asc, eq, sql } from 'drizzle-orm';
import { type Db, type DbOrTx, preparedPerDb, userKeyGate } from '../../db/client';
import { secrets, userKeys } from '../../db/schema';

export type SecretRow = typeof secrets.$inferSelect;

/** The read of one secret, prepared (see preparedPerDb). */
const getSecret = preparedPerDb((db: Db) =>
  db
    .select()
    .from(secrets)
    .where(and(eq(secrets.id, sql.placeholder('id')), eq(secrets.userId, sql.placeholder('userId'))))
    .prepare('secrets_get'),
);

export function createSecretsRepo() {
  return {
    listForUser: (db: DbOrTx, userId: string) => db.select().from(secrets).where(eq(secrets.userId, userId)).orderBy(asc(secrets.createdAt), asc(secrets.id)),

    async get(db: Db, userId: string, id: string): Promise<SecretRow | null> {
      const [r] = await getSecret(db).execute({ id, userId });
      return r ?? null;
    },

    /**
     * The write guard of DESIGN §3: a shared lock on the user's key row (a rotation holds it
     * exclusively), then the current key version, which the caller compares with its session's.
     */
    async currentKeyVersionShared(tx: DbOrTx, userId: string): Promise<number | null> {
      await tx.execute(userKeyGate(userId, 'shared'));
      const [r] = await tx.select({ kv: userKeys.keyVersion }).from(userKeys).where(eq(userKeys.userId, userId)).for('share');
      return r?.kv ?? null;
    },

    async insert(tx: DbOrTx, row: typeof secrets.$inferInsert): Promise<SecretRow> {
      const [r] = await tx.insert(secrets).values(row).returning();
      return r!;
    },

    async update(tx: DbOrTx, userId: string, id: string, set: Partial<Pick<SecretRow, 'nameCt' | 'valueCt' | 'keyVersion'>>): Promise<SecretRow | null> {
      const [r] = await tx
        .update(secrets)
        .set({ ...set, updatedAt: sql`clock_timestamp()` })
        .where(and(eq(secrets.id, id), eq(secrets.userId, userId)))
        .returning();
      return r ?? null;
    },

    async delete(tx: DbOrTx, userId: string, id: string): Promise<boolean> {
      const r = await tx.delete(secrets).where(and(eq(secrets.id, id), eq(secrets.userId, userId))).returning({ id: secrets.id });
      return r.length > 0;
    },
  };
}
export type SecretsRepo = ReturnType<typeof createSecretsRepo>;
