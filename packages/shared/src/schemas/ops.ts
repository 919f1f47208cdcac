import { z } from 'zod';
import { IsoDate } from './common';
import { RotationStatusSchema } from './rotation';

export const MaintenanceRunSchema = z.object({
  kind: z.enum(['cleanup', 'recover']),
  at: IsoDate,
  changes: z.record(z.string(), z.number().int()),
  settled: z.array(z.object({ tokenId: z.uuid(), to: RotationStatusSchema, reason: z.string() })).optional(),
});
export type MaintenanceRun = z.infer<typeof MaintenanceRunSchema>;

/**
 * The audit chain as of the last full verify (any instance, the scheduler, the CLI or an admin):
 * status never walks the chain itself. `ok`, `checked` and `firstBadSeq` keep their meaning from
 * before (ok is false when no verify has run yet: unknown is not intact).
 */
export const AuditVerdictSchema = z.enum(['ok', 'broken', 'never_verified']);
export type AuditVerdict = z.infer<typeof AuditVerdictSchema>;

export const AuditStatusSchema = z.object({
  ok: z.boolean(),
  checked: z.number().int(),
  firstBadSeq: z.number().int().nullable(),
  verdict: AuditVerdictSchema,
  /** What the last verify found wrong (null when ok or never verified). */
  problem: z.string().nullable(),
  /** When the last verify finished, database time (null: never verified). */
  verifiedAt: IsoDate.nullable(),
  /** The head the last passing verify reached (null when broken, never verified, or the log was empty). */
  verifiedHead: z.object({ seq: z.number().int(), hash: z.string() }).nullable(),
  /** Events appended after what the last verify covered (every event when never verified). */
  appendedSince: z.number().int(),
});
export type AuditStatus = z.infer<typeof AuditStatusSchema>;

export const SystemStatusSchema = z.object({
  at: IsoDate,
  counts: z.record(z.string(), z.number().int()),
  oldestPendingAgeSeconds: z.number().nullable(),
  awaitingFinalization: z.number().int(),
  staleLocks: z.number().int(),
  overdueExpiries: z.number().int(),
  /**
   * Completed rotations that can still be restored (inside RESTORE_WINDOW_SECONDS of completion,
   * backup present), and when the first of them stops being restorable.
   */
  restorable: z.object({ count: z.number().int(), nextWindowEnd: IsoDate.nullable() }),
  /** The AMK public key's fingerprint (compare it with the one noted at setup), null before setup. */
  amkFingerprint: z.string().nullable(),
  lastCleanup: MaintenanceRunSchema.nullable(),
  lastRecover: MaintenanceRunSchema.nullable(),
  audit: AuditStatusSchema,
  rotationsByDay: z.array(z.object({ day: z.string(), completed: z.number().int(), failed: z.number().int() })),
  /** Notification email: configured, failing for more than 15 minutes (amber), dead letters waiting. */
  notifications: z.object({ emailEnabled: z.boolean(), emailDegraded: z.boolean(), dead: z.number().int() }),
});
export type SystemStatus = z.infer<typeof SystemStatusSchema>;
