import { eq, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client';
import { amk, amkWraps, systemSettings } from '../../db/schema';

export function createAmkRepo() {
  return {
    async get(db: DbOrTx) {
      const [r] = await db.select().from(amk).limit(1);
      return r ?? null;
    },
    async insert(tx: DbOrTx, publicKey: Buffer) {
      const [r] = await tx.insert(amk).values({ publicKey }).returning();
      return r!;
    },
    async wrapFor(db: DbOrTx, adminId: string) {
      const [r] = await db.select().from(amkWraps).where(eq(amkWraps.adminId, adminId));
      return r ?? null;
    },
    async upsertWrap(tx: DbOrTx, w: typeof amkWraps.$inferInsert) {
      await tx
        .insert(amkWraps)
        .values(w)
        .onConflictDoUpdate({ target: amkWraps.adminId, set: { wrappedPrivate: w.wrappedPrivate, keyVersion: w.keyVersion, amkId: w.amkId } });
    },
    async getSetting<T>(db: DbOrTx, key: string): Promise<T | null> {
      const [r] = await db.select().from(systemSettings).where(eq(systemSettings.key, key));
      return (r?.value as T) ?? null;
    },
    async putSetting(db: DbOrTx, key: string, value: unknown) {
      await db
        .insert(systemSettings)
        .values({ key, value })
        .onConflictDoUpdate({ target: systemSettings.key, set: { value, updatedAt: sql`now()` } });
    },
    async deleteSetting(db: DbOrTx, key: string) {
      await db.delete(systemSettings).where(eq(systemSettings.key, key));
    },
  };
}
export type AmkRepo = ReturnType<typeof createAmkRepo>;
