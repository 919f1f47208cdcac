import { z } from 'zod';
import { IsoDate, NewPasswordSchema, PasswordInputSchema, text } from './common';

export const ROTATION_STATUSES = [
  'pending',
  'approved',
  'rejected',
  'cancelled',
  'expired',
  'revoked',
  'in_progress',
  'completed',
  'failed',
  'finalized',
  'rolled_back',
  'superseded',
] as const;
export const RotationStatusSchema = z.enum(ROTATION_STATUSES);
export type RotationStatus = z.infer<typeof RotationStatusSchema>;
export const OPEN_STATUSES: readonly RotationStatus[] = ['pending', 'approved', 'in_progress'];

export const REASON_MAX = 500;
export const TEMP_PASSWORD_MAX = 200;

export const TimelineEntrySchema = z.object({
  status: RotationStatusSchema,
  at: IsoDate,
  by: z.string().nullable(),
  note: z.string().nullable(),
});

/** A user's own rotation, or the rotation a completed account recovery ran (modules/recovery). */
export const RotationKindSchema = z.enum(['rotation', 'recovery']);
export type RotationKind = z.infer<typeof RotationKindSchema>;

export const RotationTokenSchema = z.object({
  id: z.uuid(),
  kind: RotationKindSchema,
  userId: z.uuid(),
  userEmail: z.string(),
  status: RotationStatusSchema,
  reason: z.string(),
  /** Four words derived from the token id: read aloud to confirm both sides mean one request. */
  fingerprint: z.string(),
  createdAt: IsoDate,
  expiresAt: IsoDate.nullable(),
  fromKeyVersion: z.number().int(),
  toKeyVersion: z.number().int().nullable(),
  secretsReencrypted: z.number().int().nullable(),
  attemptsLeft: z.number().int(),
  failureReason: z.string().nullable(),
  decisionNote: z.string().nullable(),
  selfApproved: z.boolean(),
  timeline: z.array(TimelineEntrySchema),
});
export type RotationToken = z.infer<typeof RotationTokenSchema>;

export const RotationListSchema = z.object({ items: z.array(RotationTokenSchema), total: z.number().int() });
export type RotationList = z.infer<typeof RotationListSchema>;

export const RotationListQuerySchema = z.strictObject({
  /** One status or several, comma-separated (`?status=completed,finalized`). Given twice → 400. */
  status: z
    .string()
    .max(300)
    .transform((s) => s.split(',').map((x) => x.trim()))
    .pipe(z.array(RotationStatusSchema).min(1).max(ROTATION_STATUSES.length))
    .optional(),
  /** Only a user's own rotations, or only the rotations account recoveries ran. */
  kind: RotationKindSchema.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});
export type RotationListQuery = z.infer<typeof RotationListQuerySchema>;

export const RequestRotationBodySchema = z.strictObject({
  reason: text(REASON_MAX, 1).refine((s) => s.trim().length > 0, 'must not be blank'),
});
export type RequestRotationBody = z.infer<typeof RequestRotationBodySchema>;

export const RotateWithTokenBodySchema = z.strictObject({
  tokenId: z.uuid(),
  tempPassword: text(TEMP_PASSWORD_MAX, 1),
  currentPassword: PasswordInputSchema,
  /** Optional: without it the current password is re-derived with a new salt. */
  newPassword: NewPasswordSchema.optional(),
});
export type RotateWithTokenBody = z.infer<typeof RotateWithTokenBodySchema>;

export const RotateResultSchema = z.object({
  status: z.literal('completed'),
  keyVersion: z.number().int(),
  secretsReencrypted: z.number().int(),
  sessionsRevoked: z.number().int(),
  session: z.object({ token: z.string(), csrfToken: z.string(), expiresAt: IsoDate }),
});
export type RotateResult = z.infer<typeof RotateResultSchema>;

export const AdminPasswordBodySchema = z.strictObject({ adminPassword: PasswordInputSchema });
export type AdminPasswordBody = z.infer<typeof AdminPasswordBodySchema>;

export const ApproveResultSchema = z.object({
  status: z.literal('approved'),
  tempPassword: z.string(),
  expiresAt: IsoDate,
  fingerprint: z.string(),
  selfApproved: z.boolean(),
});
export type ApproveResult = z.infer<typeof ApproveResultSchema>;

export const RejectBodySchema = z.strictObject({
  reason: text(REASON_MAX, 1).refine((s) => s.trim().length > 0, 'must not be blank'),
});
export type RejectBody = z.infer<typeof RejectBodySchema>;

export const StatusResultSchema = z.object({ status: RotationStatusSchema });
export const RestoreResultSchema = z.object({ status: z.literal('rolled_back'), secretsRestored: z.number().int() });
export type RestoreResult = z.infer<typeof RestoreResultSchema>;
