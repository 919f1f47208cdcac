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

export const SystemStatusSchema = z.object({
  at: IsoDate,
  counts: z.record(z.string(), z.number().int()),
  oldestPendingAgeSeconds: z.number().nullable(),
  awaitingFinalization: z.number().int(),
  staleLocks: z.number().int(),
  overdueExpiries: z.number().int(),
  lastCleanup: MaintenanceRunSchema.nullable(),
  lastRecover: MaintenanceRunSchema.nullable(),
  audit: z.object({ ok: z.boolean(), checked: z.number().int(), firstBadSeq: z.number().int().nullable() }),
  rotationsByDay: z.array(z.object({ day: z.string(), completed: z.number().int(), failed: z.number().int() })),
});
export type SystemStatus = z.infer<typeof SystemStatusSchema>;
