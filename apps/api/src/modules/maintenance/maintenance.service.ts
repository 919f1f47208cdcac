import { type MaintenanceRun, RotationStatusSchema, type SystemStatus } from '@keyturn/shared';
import { amkFingerprint } from '@keyturn/shared/crypto';
import { and, desc, eq, inArray, isNotNull, lte, or, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import { type Database, type Db, type DbOrTx, rowsOf } from '../../db/client';
import { amk, maintenanceRuns, rotationBackupChunks, rotationBackups, rotationTokens, sessions, throttles, userKeys, users } from '../../db/schema';
import type { Clock } from '../../lib/clock';
import { loggable } from '../../lib/loggable';
import { type RequestCtx, systemCtx } from '../../lib/context';
import type { AuditEventSpec, AuditService } from '../audit/audit.service';
import type { AuditVerdicts } from '../audit/audit.verdicts';
import type { Metrics } from '../health/metrics';
import { messages } from '../notifications/messages';
import type { Notify } from '../notifications/notifier';
import type { RecoveryRepo } from '../recovery/recovery.repo';
import type { RotationRepo } from '../rotation/rotation.repo';
import type { RotationService } from '../rotation/rotation.service';

export interface MaintenanceDeps {
  db: Db;
  database: Database;
  rotationRepo: RotationRepo;
  recoveryRepo: RecoveryRepo;
  audit: AuditService;
  /** The last full verify's verdict (status reads it; the scheduler records new ones). */
  auditVerdicts: AuditVerdicts;
  clock: Clock;
  metrics: Metrics;
  rotation: RotationService;
  /** Notifications: an interrupted rotation settled by recover tells the admins; status shows the email channel. */
  notify?: Notify;
  notificationChannels?: () => Promise<{ email: { enabled: boolean; degraded: boolean }; queue: { dead: number } }>;
  config: {
    instanceId: string;
    PENDING_TTL_SECONDS: number;
    LOCK_TIMEOUT_SECONDS: number;
    BACKUP_RETENTION_SECONDS: number;
    RESTORE_WINDOW_SECONDS: number;
    MAINTENANCE_INTERVAL_SECONDS: number;
    AUDIT_VERIFY_INTERVAL_SECONDS: number;
  };
}

/** One maintenance run at a time across every instance (waits, or skips for the scheduler). */
const MAINTENANCE_LOCK = 727_274_003;
/** How long maintenance run records (and audit verify verdicts) are kept: 30 days. */
export const RUN_RETENTION_SECONDS = 30 * 86_400;
const ENDED = ['rejected', 'cancelled', 'expired', 'revoked', 'failed', 'finalized', 'rolled_back', 'superseded'];

export function createMaintenanceService(deps: MaintenanceDeps) {
  const { db, clock, config, audit, auditVerdicts } = deps;
  const secs = (n: number) => sql`${n} * interval '1 second'`;

  async function acquire(tx: DbOrTx, wait: boolean): Promise<boolean> {
    if (wait) {
      await tx.execute(sql`select pg_advisory_xact_lock(${MAINTENANCE_LOCK})`);
      return true;
    }
    const [r] = await rowsOf<{ ok: boolean }>(tx, sql`select pg_try_advisory_xact_lock(${MAINTENANCE_LOCK}) as ok`);
    return !!r?.ok;
  }

  /**
   * The run's record, then its audit events: the events of what it changed (collected while it
   * worked) and its own. The appends come last, after every row lock the run takes, so a run
   * never holds the audit chain's lock while it waits for a row (one lock order everywhere:
   * rows first, audit append last; audit README).
   */
  async function record(tx: DbOrTx, ctx: RequestCtx, run: Omit<MaintenanceRun, 'at'>, events: AuditEventSpec[]): Promise<MaintenanceRun> {
    const [row] = await tx
      .insert(maintenanceRuns)
      .values({ kind: run.kind, instance: config.instanceId, changes: run.changes, settled: run.settled ?? null, at: sql`${clock.now()}` })
      .returning();
    for (const e of events) await audit.record(tx, ctx, e);
    await audit.record(tx, ctx, {
      action: `maintenance.${run.kind}`,
      outcome: 'success',
      details: { ...run.changes, ...(run.settled?.length ? { settledTokens: run.settled.map((s) => `${s.tokenId}:${s.to}`).join(',') } : {}) },
    });
    return { ...run, at: row!.at.toISOString() };
  }

  /** Counted once the run's transaction committed (a retried transaction runs its body again). */
  function counted(run: MaintenanceRun | null): MaintenanceRun | null {
    if (run) deps.metrics.maintenanceRuns.inc({ kind: run.kind });
    return run;
  }

  const service = {
    /**
     * Expire overdue tokens, drop backups past retention, purge ended sessions and stale
     * throttles. Never touches audit events or a live lock. Idempotent: a second run changes nothing.
     */
    async cleanup(ctx: RequestCtx, opts: { wait?: boolean } = {}): Promise<MaintenanceRun | null> {
      const run = await db.transaction(async (tx) => {
        if (!(await acquire(tx, opts.wait ?? true))) return null;
        const now = clock.now();
        const overdue = await tx
          .select({ id: rotationTokens.id, status: rotationTokens.status })
          .from(rotationTokens)
          .where(
            or(
              and(eq(rotationTokens.status, 'pending'), sql`${rotationTokens.createdAt} + ${secs(config.PENDING_TTL_SECONDS)} <= ${now}`),
              and(eq(rotationTokens.status, 'approved'), sql`${rotationTokens.expiresAt} <= ${now}`),
            ),
          )
          .for('update', { skipLocked: true });
        const events: AuditEventSpec[] = [];
        for (const t of overdue) {
          const moved = await deps.rotationRepo.transition(tx, t.id, [t.status], { status: 'expired', decidedAt: now, decisionNote: 'expired by cleanup', tempHash: null });
          if (moved) events.push({ action: 'rotation.expired', outcome: 'success', target: `rotation:${t.id}`, details: { from: t.status, note: 'expired by cleanup' } });
        }
        // Backups (old ciphertexts and the old key row, which opens them with the old password):
        // of rotations that ended (finalized, superseded, rolled back…) past retention, and of
        // every rotation past its restore window, finalized or not (README R13): old key
        // material does not outlive the window in which it can be used.
        const endedAt = sql`coalesce(${rotationTokens.finalizedAt}, ${rotationTokens.rolledBackAt}, ${rotationTokens.endedAt}, ${rotationTokens.failedAt})`;
        const purgeable = tx
          .select({ id: rotationTokens.id })
          .from(rotationTokens)
          .where(
            or(
              and(inArray(rotationTokens.status, ENDED), sql`${endedAt} + ${secs(config.BACKUP_RETENTION_SECONDS)} <= ${now}`),
              sql`${rotationTokens.completedAt} + ${secs(config.RESTORE_WINDOW_SECONDS)} <= ${now}`,
            ),
          );
        // backupsPurged counts what was backed up, not storage rows: one per key-row snapshot plus
        // one per secret, whether packed in a chunk (row_count) or a pre-0002 per-secret row.
        const backups = await tx.delete(rotationBackups).where(inArray(rotationBackups.tokenId, purgeable)).returning({ id: rotationBackups.id });
        const chunks = await tx
          .delete(rotationBackupChunks)
          .where(inArray(rotationBackupChunks.tokenId, purgeable))
          .returning({ rows: rotationBackupChunks.rowCount });
        const backupsPurged = backups.length + chunks.reduce((n, c) => n + c.rows, 0);
        const ended = await tx
          .delete(sessions)
          .where(or(isNotNull(sessions.revokedAt), lte(sessions.expiresAt, now)))
          .returning({ id: sessions.id });
        // Account recovery requests past their expiry, sealed copies dropped (recovery README V9);
        // after the session purge, in the order a recovery's completion locks them (sessions, then request).
        const recoveries = await deps.recoveryRepo.expireOverdue(tx, now);
        for (const r of recoveries) {
          events.push({ action: 'recovery.expired', outcome: 'success', target: `recovery:${r.id}`, details: { from: r.from, note: 'expired by cleanup' } });
        }
        const thr = await tx
          .delete(throttles)
          .where(and(sql`coalesce(${throttles.blockedUntil}, ${throttles.windowStartedAt}) < ${now} - interval '1 day'`))
          .returning({ k: throttles.key });
        // Request counters of windows long over (the rate limiter's store on Postgres, which
        // runs on the database's own clock, not the injectable one).
        const [limits] = await rowsOf<{ n: number }>(
          tx,
          sql`with d as (delete from rate_limits where window_started_at < now() - interval '1 hour' returning 1) select count(*)::int as n from d`,
        );
        // The run records themselves (cleanup, recover, audit verdicts: several an hour) past
        // RUN_RETENTION, keeping the newest of each kind, which status reports.
        const runs = await rowsOf<{ id: string }>(
          tx,
          sql`delete from maintenance_runs m
              where m.at < ${now} - ${secs(RUN_RETENTION_SECONDS)}
                and m.id <> (select x.id from maintenance_runs x where x.kind = m.kind order by x.at desc, x.id desc limit 1)
              returning m.id`,
        );
        return record(
          tx,
          ctx,
          {
            kind: 'cleanup',
            changes: { tokensExpired: events.length - recoveries.length, recoveriesExpired: recoveries.length, backupsPurged, sessionsPurged: ended.length, throttlesPurged: thr.length, rateLimitsPurged: limits?.n ?? 0, runsPurged: runs.length },
          },
          events,
        );
      });
      return counted(run);
    },

    /**
     * Settle in_progress tokens whose lock is older than LOCK_TIMEOUT_SECONDS, from the
     * database's truth. A live rotation holds its token row FOR UPDATE for its whole
     * transaction, and SKIP LOCKED passes over it: only truly abandoned locks are settled.
     */
    async recover(ctx: RequestCtx, opts: { wait?: boolean } = {}): Promise<MaintenanceRun | null> {
      const run = await db.transaction(async (tx) => {
        if (!(await acquire(tx, opts.wait ?? true))) return null;
        const now = clock.now();
        const stale = await tx
          .select()
          .from(rotationTokens)
          .where(and(eq(rotationTokens.status, 'in_progress'), sql`${rotationTokens.lockedAt} + ${secs(config.LOCK_TIMEOUT_SECONDS)} <= ${now}`))
          .for('update', { skipLocked: true });
        const settled: NonNullable<MaintenanceRun['settled']> = [];
        const events: AuditEventSpec[] = [];
        for (const t of stale) {
          const [k] = await tx.select({ kv: userKeys.keyVersion }).from(userKeys).where(eq(userKeys.userId, t.userId));
          const committed = (k?.kv ?? 0) > t.fromKeyVersion;
          const moved = committed
            ? await deps.rotationRepo.transition(tx, t.id, ['in_progress'], { status: 'completed', completedAt: now, toKeyVersion: k!.kv, tempHash: null })
            : await deps.rotationRepo.transition(tx, t.id, ['in_progress'], { status: 'failed', failedAt: now, failureReason: 'INTERRUPTED', tempHash: null });
          if (!moved) continue;
          const to = committed ? 'completed' : 'failed';
          const reason = committed ? 'key version was committed' : 'interrupted before commit; nothing changed';
          if (!committed && deps.notify) {
            const [u] = await tx.select({ email: users.email }).from(users).where(eq(users.id, t.userId));
            await deps.notify(tx, messages.rotationFailed(t.id, u?.email ?? t.userId, 'INTERRUPTED'));
          }
          settled.push({ tokenId: t.id, to, reason });
          events.push({ action: 'rotation.recovered', outcome: 'success', target: `rotation:${t.id}`, details: { to, reason, lockOwner: t.lockOwner } });
        }
        return record(tx, ctx, { kind: 'recover', changes: { settled: settled.length, failed: settled.filter((s) => s.to === 'failed').length }, settled }, events);
      });
      return counted(run);
    },

    async status(): Promise<SystemStatus> {
      const now = clock.now();
      const counts: Record<string, number> = {};
      for (const r of await db.select({ s: rotationTokens.status, n: sql<number>`count(*)::int` }).from(rotationTokens).groupBy(rotationTokens.status)) counts[r.s] = r.n;
      const [agg] = await rowsOf<{ oldest: number | null; stale: number; overdue: number; at: string | Date }>(
        db,
        sql`select
              (select extract(epoch from (${now} - min(created_at)))::float8 from rotation_tokens where status = 'pending') as oldest,
              (select count(*)::int from rotation_tokens where status = 'in_progress' and locked_at + ${secs(config.LOCK_TIMEOUT_SECONDS)} <= ${now}) as stale,
              (select count(*)::int from rotation_tokens where (status = 'pending' and created_at + ${secs(config.PENDING_TTL_SECONDS)} <= ${now})
                                                         or (status = 'approved' and expires_at <= ${now})) as overdue,
              ${now} as at`,
      );
      const last = async (kind: string): Promise<MaintenanceRun | null> => {
        const [r] = await db.select().from(maintenanceRuns).where(eq(maintenanceRuns.kind, kind)).orderBy(desc(maintenanceRuns.at)).limit(1);
        return r ? { kind: r.kind as MaintenanceRun['kind'], at: r.at.toISOString(), changes: r.changes, ...(r.settled ? { settled: r.settled as MaintenanceRun['settled'] } : {}) } : null;
      };
      const byDay = await rowsOf<{ day: string; completed: number; failed: number }>(
        db,
        sql`select to_char(d, 'YYYY-MM-DD') as day,
                   (select count(*)::int from rotation_tokens where completed_at >= d and completed_at < d + interval '1 day') as completed,
                   (select count(*)::int from rotation_tokens where failed_at >= d and failed_at < d + interval '1 day') as failed
            from generate_series(date_trunc('day', ${now}) - interval '13 days', date_trunc('day', ${now}), interval '1 day') as d
            order by d`,
      );
      // The last full verify's verdict: status never walks the chain (O(events)) itself.
      const auditStatus = await auditVerdicts.status();
      const [restorable] = await rowsOf<{ n: number; next: string | Date | null }>(
        db,
        sql`select count(*)::int as n, min(t.completed_at + ${secs(config.RESTORE_WINDOW_SECONDS)}) as next
            from rotation_tokens t
            where t.status = 'completed' and t.completed_at + ${secs(config.RESTORE_WINDOW_SECONDS)} > ${now}
              and exists (select 1 from rotation_backups b where b.token_id = t.id and b.secret_id is null)`,
      );
      const [amkRow] = await db.select({ publicKey: amk.publicKey }).from(amk).limit(1);
      // Every state, so one that emptied reads 0 instead of keeping its last count.
      for (const s of new Set([...RotationStatusSchema.options, ...Object.keys(counts)])) deps.metrics.tokensByState.set({ state: s }, counts[s] ?? 0);
      return {
        at: new Date(agg!.at).toISOString(),
        counts,
        oldestPendingAgeSeconds: agg?.oldest === null || agg?.oldest === undefined ? null : Math.round(Number(agg.oldest)),
        awaitingFinalization: counts.completed ?? 0,
        staleLocks: agg?.stale ?? 0,
        overdueExpiries: agg?.overdue ?? 0,
        restorable: { count: restorable?.n ?? 0, nextWindowEnd: restorable?.next ? new Date(restorable.next).toISOString() : null },
        amkFingerprint: amkRow ? amkFingerprint(amkRow.publicKey) : null,
        lastCleanup: await last('cleanup'),
        lastRecover: await last('recover'),
        audit: auditStatus,
        rotationsByDay: byDay,
        notifications: await (async () => {
          const ch = await deps.notificationChannels?.();
          return { emailEnabled: ch?.email.enabled ?? false, emailDegraded: ch?.email.degraded ?? false, dead: ch?.queue.dead ?? 0 };
        })(),
      };
    },

    /**
     * In-process scheduler: cleanup then recover every MAINTENANCE_INTERVAL_SECONDS (skipped if
     * another instance is at it), and a full audit verify whenever no instance has recorded one for
     * AUDIT_VERIFY_INTERVAL_SECONDS (checked every minute at most). 0 disables either.
     */
    startScheduler(log: FastifyBaseLogger): () => Promise<void> {
      const timers: NodeJS.Timeout[] = [];
      const inFlight: { maintenance: Promise<void> | null; verify: Promise<void> | null } = { maintenance: null, verify: null };
      const every = (slot: keyof typeof inFlight, seconds: number, fn: () => Promise<void>) => {
        const timer = setInterval(() => {
          if (inFlight[slot]) return;
          inFlight[slot] = fn().finally(() => {
            inFlight[slot] = null;
          });
        }, seconds * 1000);
        timer.unref();
        timers.push(timer);
      };

      if (config.MAINTENANCE_INTERVAL_SECONDS > 0) {
        every('maintenance', config.MAINTENANCE_INTERVAL_SECONDS, async () => {
          try {
            const ctx = systemCtx(`scheduler-${Date.now()}`, config.instanceId);
            const c = await service.cleanup(ctx, { wait: false });
            const r = await service.recover(ctx, { wait: false });
            if (c || r) log.info({ cleanup: c?.changes, recover: r?.changes }, 'maintenance run');
          } catch (err) {
            log.error({ err: loggable(err) }, 'maintenance run failed');
          }
        });
      }

      const verifyEvery = config.AUDIT_VERIFY_INTERVAL_SECONDS;
      if (verifyEvery > 0) {
        // Look often enough that the verdict is at most about one interval old, whichever
        // instance recorded the last one; the look itself is one index probe.
        const look = Math.max(1, Math.min(60, Math.floor(verifyEvery / 4)));
        every('verify', look, async () => {
          try {
            if (!(await auditVerdicts.due(verifyEvery - look / 2))) return;
            const v = await auditVerdicts.verifyAndRecord({ source: 'scheduler' });
            if (v.ok) log.info({ checked: v.checked, head: v.head?.seq ?? 0 }, 'audit chain verified');
            else log.error({ firstBadSeq: v.firstBadSeq, problem: v.problem, checked: v.checked }, 'audit chain verify FAILED: the chain is broken');
          } catch (err) {
            log.error({ err: loggable(err) }, 'audit chain verify failed to run');
          }
        });
      }

      // Stopping waits for runs in flight, so shutdown never closes the database under them.
      return async () => {
        for (const t of timers) clearInterval(t);
        await Promise.all([inFlight.maintenance, inFlight.verify]);
      };
    },

    /** Cheap gauges for a /metrics scrape: tokens per state, the last verify's verdict (no chain walk). */
    async refreshGauges(): Promise<void> {
      await auditVerdicts.refreshGauge();
      const counts = new Map<string, number>();
      for (const r of await db.select({ s: rotationTokens.status, n: sql<number>`count(*)::int` }).from(rotationTokens).groupBy(rotationTokens.status)) counts.set(r.s, r.n);
      for (const s of RotationStatusSchema.options) deps.metrics.tokensByState.set({ state: s }, counts.get(s) ?? 0);
    },
  };
  return service;
}
export type MaintenanceService = ReturnType<typeof createMaintenanceService>;
