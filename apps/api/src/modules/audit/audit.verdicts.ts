import type { AuditStatus, AuditVerify } from '@keyturn/shared';
import { desc, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { type Db, rowsOf } from '../../db/client';
import { maintenanceRuns } from '../../db/schema';
import type { Clock } from '../../lib/clock';
import type { Metrics } from '../health/metrics';
import { messages } from '../notifications/messages';
import type { Notify } from '../notifications/notifier';
import type { AuditService } from './audit.service';

/**
 * The verdict of the last full verify, shared by every instance: a full verify walks the whole
 * chain (O(events)), so status reports the last one's verdict instead of walking it again.
 * A verdict is a `maintenance_runs` row of kind `audit_verify`, its verdict in `changes` (jsonb),
 * stamped with the database's time. It appends no audit event (the trail does not grow by itself).
 */
export const AUDIT_VERIFY_KIND = 'audit_verify';

/** Who ran a full verify: the verify endpoint, the CLI, or the in-process scheduler. */
export type VerifySource = 'request' | 'cli' | 'scheduler';

const StoredVerdictSchema = z.object({
  ok: z.boolean(),
  checked: z.number().int(),
  firstBadSeq: z.number().int().nullable(),
  problem: z.string().nullable(),
  /** The head a passing verify reached. */
  head: z.object({ seq: z.number().int(), hash: z.string() }).nullable(),
  /** The chain's last seq when the verdict was recorded (what a failed verify was looking at). */
  chainHeadSeq: z.number().int(),
  checkpointSeq: z.number().int().nullable(),
  source: z.string(),
  durationMs: z.number(),
});
type StoredVerdict = z.infer<typeof StoredVerdictSchema>;

export interface AuditVerdictsDeps {
  db: Db;
  audit: AuditService;
  clock: Clock;
  metrics: Metrics;
  instanceId: string;
  /** Notifications: a broken chain tells every admin (a security notice). */
  notify?: Notify;
}

export function createAuditVerdicts({ db, audit, clock, metrics, instanceId, notify }: AuditVerdictsDeps) {
  /** The chain's head seq: one probe of the primary key, however long the chain. */
  const headSeq = async (): Promise<number> => {
    const [r] = await rowsOf<{ seq: string | number | null }>(db, sql`select max(seq) as seq from audit_events`);
    return Number(r?.seq ?? 0);
  };

  async function latest(): Promise<{ at: Date; verdict: StoredVerdict } | null> {
    const [r] = await db
      .select({ at: maintenanceRuns.at, changes: maintenanceRuns.changes })
      .from(maintenanceRuns)
      .where(eq(maintenanceRuns.kind, AUDIT_VERIFY_KIND))
      .orderBy(desc(maintenanceRuns.at))
      .limit(1);
    if (!r) return null;
    const parsed = StoredVerdictSchema.safeParse(r.changes);
    if (parsed.success) return { at: r.at, verdict: parsed.data };
    // Not what this code writes: never read it as a pass.
    const verdict: StoredVerdict = {
      ok: false,
      checked: 0,
      firstBadSeq: null,
      problem: 'the recorded verify verdict is unreadable; run a verify',
      head: null,
      chainHeadSeq: 0,
      checkpointSeq: null,
      source: 'unknown',
      durationMs: 0,
    };
    return { at: r.at, verdict };
  }

  return {
    /**
     * A full verify (optionally against a checkpoint), its verdict recorded for status. A failed
     * one is recorded too: status reports the break until a later verify passes.
     */
    async verifyAndRecord(opts: { checkpoint?: { seq: number; hash: string }; source: VerifySource; instance?: string }): Promise<AuditVerify> {
      const started = performance.now();
      const v = await audit.verify(opts.checkpoint);
      const stored: StoredVerdict = {
        ok: v.ok,
        checked: v.checked,
        firstBadSeq: v.firstBadSeq,
        problem: v.problem,
        head: v.ok ? v.head : null,
        chainHeadSeq: v.ok ? (v.head?.seq ?? 0) : await headSeq(),
        checkpointSeq: opts.checkpoint?.seq ?? null,
        source: opts.source,
        durationMs: Math.round(performance.now() - started),
      };
      await db.transaction(async (tx) => {
        const [run] = await tx
          .insert(maintenanceRuns)
          .values({
            kind: AUDIT_VERIFY_KIND,
            instance: opts.instance ?? instanceId,
            // jsonb: the column is typed for the counts of cleanup/recover; a verdict has text too.
            changes: stored as unknown as Record<string, number>,
            at: sql`${clock.now()}`,
          })
          .returning({ id: maintenanceRuns.id });
        if (!v.ok && notify) await notify(tx, messages.auditVerifyFailed(run!.id, v.firstBadSeq, v.problem));
      });
      metrics.auditChainOk.set({}, v.ok ? 1 : 0);
      metrics.maintenanceRuns.inc({ kind: AUDIT_VERIFY_KIND });
      return v;
    },

    /** The last verdict and what was appended after it: two index probes, no chain walk. */
    async status(): Promise<AuditStatus> {
      const last = await latest();
      const head = await headSeq();
      if (!last) {
        return { ok: false, checked: 0, firstBadSeq: null, verdict: 'never_verified', problem: null, verifiedAt: null, verifiedHead: null, appendedSince: head };
      }
      const v = last.verdict;
      metrics.auditChainOk.set({}, v.ok ? 1 : 0);
      const covered = v.ok ? (v.head?.seq ?? 0) : v.chainHeadSeq;
      return {
        ok: v.ok,
        checked: v.checked,
        firstBadSeq: v.firstBadSeq,
        verdict: v.ok ? 'ok' : 'broken',
        problem: v.problem,
        verifiedAt: last.at.toISOString(),
        verifiedHead: v.ok ? v.head : null,
        appendedSince: Math.max(0, head - covered),
      };
    },

    /** For a /metrics scrape: the gauge from the last verdict (absent while none was recorded). */
    async refreshGauge(): Promise<void> {
      const last = await latest();
      if (last) metrics.auditChainOk.set({}, last.verdict.ok ? 1 : 0);
    },

    /** True when no verdict was recorded (by any instance) within the last `seconds`, database time. */
    async due(seconds: number): Promise<boolean> {
      const [r] = await rowsOf<{ fresh: boolean }>(
        db,
        sql`select exists(select 1 from maintenance_runs where kind = ${AUDIT_VERIFY_KIND} and at > ${clock.now()} - ${seconds} * interval '1 second') as fresh`,
      );
      return !r?.fresh;
    },
  };
}
export type AuditVerdicts = ReturnType<typeof createAuditVerdicts>;
