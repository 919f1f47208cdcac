import { z } from 'zod';
import { IsoDate, text } from './common';

export const AuditOutcomeSchema = z.enum(['success', 'failure', 'denied']);
export type AuditOutcome = z.infer<typeof AuditOutcomeSchema>;

export const AuditEventSchema = z.object({
  seq: z.number().int(),
  at: IsoDate,
  actorId: z.string().nullable(),
  actorEmail: z.string().nullable(),
  role: z.string(),
  action: z.string(),
  target: z.string().nullable(),
  outcome: AuditOutcomeSchema,
  requestId: z.string().nullable(),
  clientAddress: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  hash: z.string(),
});
export type AuditEvent = z.infer<typeof AuditEventSchema>;

export const AuditQuerySchema = z.strictObject({
  actor: text(254).optional(),
  action: text(100).optional(),
  outcome: AuditOutcomeSchema.optional(),
  target: text(200).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
});
export type AuditQuery = z.infer<typeof AuditQuerySchema>;

/** The export takes the list's filters (no paging: it streams every matching event). */
export const AuditExportQuerySchema = AuditQuerySchema.omit({ limit: true, offset: true });
export type AuditExportQuery = z.infer<typeof AuditExportQuerySchema>;

export const AuditListSchema = z.object({ items: z.array(AuditEventSchema), total: z.number().int() });

export const AuditVerifySchema = z.object({
  ok: z.boolean(),
  checked: z.number().int(),
  firstBadSeq: z.number().int().nullable(),
  problem: z.string().nullable(),
  head: z.object({ seq: z.number().int(), hash: z.string() }).nullable(),
  checkpoint: z
    .object({ seq: z.number().int(), hash: z.string(), matches: z.boolean() })
    .nullable(),
});
export type AuditVerify = z.infer<typeof AuditVerifySchema>;

export const AuditVerifyQuerySchema = z.strictObject({
  checkpointSeq: z.coerce.number().int().min(1).optional(),
  checkpointHash: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});
