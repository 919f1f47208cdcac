import { createHash } from 'node:crypto';
import type { AuditExportQuery, AuditOutcome, AuditQuery } from '@keyturn/shared';
import { and, count, desc, eq, getTableColumns, gte, lte, type SQL, sql } from 'drizzle-orm';
import { type DbOrTx, rowsOf } from '../../db/client';
import { auditEvents } from '../../db/schema';

export interface AuditInput {
  actorId: string | null;
  actorEmail: string | null;
  role: string;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  requestId: string | null;
  clientAddress: string | null;
  details: Record<string, unknown>;
}

export const GENESIS_HASH = '0'.repeat(64);
/** Serialises chain appends for the instant between reading the head and inserting. */
const AUDIT_LOCK = 727_274_002;

/**
 * The JSON the hash covers: object keys sorted at every level. Only plain JSON values are
 * accepted: a Date, a Buffer or a class instance would serialise here differently from how the
 * database stores it (or as `{}`), so it is refused instead of being silently mis-hashed.
 */
export function canonical(v: unknown): unknown {
  if (v === null || v === undefined || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError('audit details must be JSON: a number is not finite');
    return v;
  }
  if (Array.isArray(v)) return v.map(canonical);
  const proto = typeof v === 'object' ? Object.getPrototypeOf(v) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`audit details must be plain JSON values, not ${Object.prototype.toString.call(v)}`);
  }
  return Object.fromEntries(
    Object.keys(v as object)
      .sort()
      .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
  );
}

export function eventHash(prevHash: string, seq: number, atText: string, e: AuditInput): string {
  const body = JSON.stringify([
    seq,
    atText,
    e.actorId,
    e.actorEmail,
    e.role,
    e.action,
    e.target,
    e.outcome,
    e.requestId,
    e.clientAddress,
    canonical(e.details),
  ]);
  return createHash('sha256').update(prevHash).update('|').update(body).digest('hex');
}

/** The list's and the export's filters (actor: case-insensitive substring; the rest exact). */
function whereOf(q: AuditExportQuery): SQL | undefined {
  const conds: SQL[] = [];
  if (q.actor) conds.push(sql`${auditEvents.actorEmail} ilike ${`%${q.actor.replace(/[%_\\]/g, '\\$&')}%`}`);
  if (q.action) conds.push(eq(auditEvents.action, q.action));
  if (q.outcome) conds.push(eq(auditEvents.outcome, q.outcome));
  if (q.target) conds.push(eq(auditEvents.target, q.target));
  if (q.from) conds.push(gte(auditEvents.at, new Date(q.from)));
  if (q.to) conds.push(lte(auditEvents.at, new Date(q.to)));
  return conds.length ? and(...conds) : undefined;
}

export function createAuditRepo() {
  return {
    /**
     * Append one event to the chain inside the caller's transaction. The advisory lock is held
     * from here to the caller's COMMIT, so callers append last, just before they commit.
     * seq = head + 1 under the lock: a rolled-back append leaves no gap.
     */
    async append(tx: DbOrTx, e: AuditInput): Promise<number> {
      // Lock, then head and time, in one round trip (migration 0003 explains the snapshot).
      const [head] = await rowsOf<{ seq: string | number | null; hash: string | null; at_text: string; at: Date }>(
        tx,
        sql`select head_seq as seq, head_hash as hash, at_text, at from keyturn_audit_head_locked(${AUDIT_LOCK})`,
      );
      const seq = Number(head?.seq ?? 0) + 1;
      const prevHash = head?.hash ?? GENESIS_HASH;
      const atText = head!.at_text;
      const hash = eventHash(prevHash, seq, atText, e);
      await tx.insert(auditEvents).values({
        seq,
        // Exactly the time the hash covers (a Date would drop the microseconds).
        at: sql`${atText}::timestamptz` as unknown as Date,
        atText,
        ...e,
        prevHash,
        hash,
      });
      return seq;
    },

    async list(db: DbOrTx, q: AuditQuery) {
      const where = whereOf(q);
      const items = await db.select().from(auditEvents).where(where).orderBy(desc(auditEvents.seq)).limit(q.limit).offset(q.offset);
      const [total] = await db.select({ n: count() }).from(auditEvents).where(where);
      return { items, total: total?.n ?? 0 };
    },

    /** The chain in seq order after `afterSeq` (verify), narrowed by the list's filters (export). */
    async page(db: DbOrTx, afterSeq: number, limit: number, q: AuditExportQuery = {}) {
      return db
        .select({
          ...getTableColumns(auditEvents),
          // Whether `at` is the time the hash covers (at_text), so verify can check the column too.
          // Within a millisecond: events appended before this check existed stored `at` through a
          // JavaScript Date (millisecond precision); newer ones store at_text exactly.
          atMatches: sql<boolean>`(${auditEvents.at} - ${auditEvents.atText}::timestamptz) between interval '-1 millisecond' and interval '1 millisecond'`,
        })
        .from(auditEvents)
        .where(and(sql`${auditEvents.seq} > ${afterSeq}`, whereOf(q)))
        .orderBy(auditEvents.seq)
        .limit(limit);
    },

    async count(db: DbOrTx): Promise<number> {
      const [r] = await db.select({ n: count() }).from(auditEvents);
      return r?.n ?? 0;
    },
  };
}
export type AuditRepo = ReturnType<typeof createAuditRepo>;
