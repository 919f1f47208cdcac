import { z } from 'zod';
import { EmailSchema, IsoDate, NewPasswordSchema, PasswordInputSchema, text } from './common';
import { REASON_MAX } from './rotation';

// Self-service password change and account recovery through the escrow
// (apps/api/src/modules/recovery/README.md).

/** `POST /api/auth/change_password`: same DEK, same key version, new salt, verifier and KEK. */
export const ChangePasswordBodySchema = z
  .strictObject({
    currentPassword: PasswordInputSchema,
    newPassword: NewPasswordSchema,
  })
  .refine((b) => b.newPassword !== b.currentPassword, { path: ['newPassword'], message: 'must differ from the current password' });
export type ChangePasswordBody = z.infer<typeof ChangePasswordBodySchema>;

/** The caller's replacement session (their old one and every other one are revoked). */
export const ChangePasswordResultSchema = z.object({
  status: z.literal('changed'),
  keyVersion: z.number().int(),
  sessionsRevoked: z.number().int(),
  session: z.object({ token: z.string(), csrfToken: z.string(), expiresAt: IsoDate }),
});
export type ChangePasswordResult = z.infer<typeof ChangePasswordResultSchema>;

export const RECOVERY_STATUSES = ['pending', 'approved', 'completed', 'rejected', 'cancelled', 'expired', 'revoked', 'superseded', 'failed'] as const;
export const RecoveryStatusSchema = z.enum(RECOVERY_STATUSES);
export type RecoveryStatus = z.infer<typeof RecoveryStatusSchema>;

/** Unauthenticated, from "Forgot password?": the requester picks the new password now. */
export const RecoveryRequestBodySchema = z.strictObject({
  email: EmailSchema,
  newPassword: NewPasswordSchema,
});
export type RecoveryRequestBody = z.infer<typeof RecoveryRequestBodySchema>;

/**
 * The same shape, status and work whether or not the email has an account (no enumeration).
 * The requester keeps `requestId` (to complete) and reads `fingerprint` to their administrator.
 */
export const RecoveryRequestedSchema = z.object({
  requestId: z.uuid(),
  fingerprint: z.string(),
  expiresAt: IsoDate,
});
export type RecoveryRequested = z.infer<typeof RecoveryRequestedSchema>;

/** The requester, after approval, with the new password chosen at request time. */
export const RecoveryCompleteBodySchema = z.strictObject({
  requestId: z.uuid(),
  newPassword: PasswordInputSchema,
});
export type RecoveryCompleteBody = z.infer<typeof RecoveryCompleteBodySchema>;

export const RecoveryCompletedSchema = z.object({
  status: z.literal('completed'),
  keyVersion: z.number().int(),
  secretsReencrypted: z.number().int(),
  sessionsRevoked: z.number().int(),
});
export type RecoveryCompleted = z.infer<typeof RecoveryCompletedSchema>;

export const RecoveryTimelineEntrySchema = z.object({
  status: RecoveryStatusSchema,
  at: IsoDate,
  by: z.string().nullable(),
  note: z.string().nullable(),
});

/** What an admin sees of a recovery request. */
export const RecoveryRequestViewSchema = z.object({
  id: z.uuid(),
  kind: z.literal('recovery'),
  userId: z.uuid(),
  userEmail: z.string(),
  userRole: z.enum(['user', 'admin']),
  status: RecoveryStatusSchema,
  /** Five words over the request id and its public key: the requester reads them aloud. */
  fingerprint: z.string(),
  createdAt: IsoDate,
  expiresAt: IsoDate,
  /** Where the request came from (client address and user agent, as the server saw them). */
  requesterAddress: z.string().nullable(),
  requesterUserAgent: z.string().nullable(),
  keyVersion: z.number().int(),
  attemptsLeft: z.number().int(),
  decisionNote: z.string().nullable(),
  /** The rotation the completion ran (kind "recovery"): finalize its escrow copy like any other. */
  rotationTokenId: z.uuid().nullable(),
  timeline: z.array(RecoveryTimelineEntrySchema),
});
export type RecoveryRequestView = z.infer<typeof RecoveryRequestViewSchema>;

export const RecoveryListSchema = z.object({ items: z.array(RecoveryRequestViewSchema), total: z.number().int() });
export type RecoveryList = z.infer<typeof RecoveryListSchema>;

export const RecoveryListQuerySchema = z.strictObject({
  status: z
    .string()
    .max(200)
    .transform((s) => s.split(',').map((x) => x.trim()))
    .pipe(z.array(RecoveryStatusSchema).min(1).max(RECOVERY_STATUSES.length))
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});
export type RecoveryListQuery = z.infer<typeof RecoveryListQuerySchema>;

export const RecoveryApproveBodySchema = z.strictObject({
  adminPassword: PasswordInputSchema,
  /** "I confirmed this request and its fingerprint with the user through a channel I trust." */
  confirmedWithUser: z.literal(true, { error: 'confirm that you checked this request and its fingerprint with the user' }),
});
export type RecoveryApproveBody = z.infer<typeof RecoveryApproveBodySchema>;

export const RecoveryApprovedSchema = z.object({
  status: z.literal('approved'),
  expiresAt: IsoDate,
  fingerprint: z.string(),
});
export type RecoveryApproved = z.infer<typeof RecoveryApprovedSchema>;

export const RecoveryRejectBodySchema = z.strictObject({
  reason: text(REASON_MAX, 1).refine((s) => s.trim().length > 0, 'must not be blank'),
});
export type RecoveryRejectBody = z.infer<typeof RecoveryRejectBodySchema>;

/**
 * What the account's owner is told about recovery requests for their account, until they
 * acknowledge it: a pending request ("someone asked to recover your account … cancel it if it
 * wasn't you") and every approval ("an administrator opened your recovery copy on …").
 */
export const RecoveryNoticeSchema = z.object({
  requestId: z.uuid(),
  status: RecoveryStatusSchema,
  requestedAt: IsoDate,
  /** Where the request came from, as the server saw it. */
  requesterAddress: z.string().nullable(),
  /** When and by whom the escrow copy was opened; null while the request is pending. */
  openedAt: IsoDate.nullable(),
  openedBy: z.string().nullable(),
  completedAt: IsoDate.nullable(),
  /** Pending or approved: the owner can still cancel it. */
  cancellable: z.boolean(),
});
export type RecoveryNotice = z.infer<typeof RecoveryNoticeSchema>;
export const RecoveryNoticeListSchema = z.object({ items: z.array(RecoveryNoticeSchema) });
export type RecoveryNoticeList = z.infer<typeof RecoveryNoticeListSchema>;
export const RecoveryIdParamsSchema = z.strictObject({ id: z.uuid() });
