import { z } from 'zod';
import { IsoDate } from './common';

// Notifications (apps/api/src/modules/notifications/README.md): a transactional outbox, the
// in-app inbox (always on), email (when SMTP_URL is set) and webhooks (admin-configured
// endpoints, signed per Standard Webhooks). No notification ever carries a password, temporary
// password, secret name or value, key or session token.

/** What happened; `security` events cannot be muted. */
export const NOTIFICATION_EVENTS = [
  'rotation.requested',
  'rotation.approved',
  'rotation.rejected',
  'rotation.expiring',
  'rotation.completed',
  'rotation.finalized',
  'rotation.failed',
  'rotation.revoked',
  'recovery.requested',
  'recovery.approved',
  'recovery.completed',
  'admin.created',
  'audit.verify_failed',
  'maintenance.failed',
] as const;
export const NotificationEventSchema = z.enum(NOTIFICATION_EVENTS);
export type NotificationEvent = z.infer<typeof NotificationEventSchema>;

export const InboxItemSchema = z.object({
  id: z.uuid(),
  event: NotificationEventSchema,
  title: z.string(),
  body: z.string(),
  /** Where the SPA should go for it (e.g. the admin console), or null. */
  link: z.string().nullable(),
  security: z.boolean(),
  createdAt: IsoDate,
  readAt: IsoDate.nullable(),
});
export type InboxItem = z.infer<typeof InboxItemSchema>;

export const InboxListSchema = z.object({ items: z.array(InboxItemSchema), unread: z.number().int(), total: z.number().int() });
export type InboxList = z.infer<typeof InboxListSchema>;

export const InboxQuerySchema = z.strictObject({
  unread: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});
export type InboxQuery = z.infer<typeof InboxQuerySchema>;

export const InboxReadAllResultSchema = z.object({ updated: z.number().int() });

export const DELIVERY_STATUSES = ['pending', 'retrying', 'sent', 'dead'] as const;
export const DeliveryStatusSchema = z.enum(DELIVERY_STATUSES);
export type DeliveryStatus = z.infer<typeof DeliveryStatusSchema>;

export const DELIVERY_CHANNELS = ['email', 'webhook'] as const;
export const DeliveryChannelSchema = z.enum(DELIVERY_CHANNELS);
export type DeliveryChannel = z.infer<typeof DeliveryChannelSchema>;

/** One notification on one outgoing channel, as admins see the queue. */
export const DeliverySchema = z.object({
  id: z.uuid(),
  event: NotificationEventSchema,
  channel: DeliveryChannelSchema,
  /** An email address, or a webhook endpoint's id. */
  recipient: z.string(),
  status: DeliveryStatusSchema,
  attempts: z.number().int(),
  nextAttemptAt: IsoDate.nullable(),
  lastError: z.string().nullable(),
  createdAt: IsoDate,
  /** The last change: the last attempt's settlement, or the queueing. */
  updatedAt: IsoDate,
  sentAt: IsoDate.nullable(),
});
export type Delivery = z.infer<typeof DeliverySchema>;

export const DeliveryListSchema = z.object({ items: z.array(DeliverySchema), total: z.number().int() });
export type DeliveryList = z.infer<typeof DeliveryListSchema>;

export const DeliveryQuerySchema = z.strictObject({
  status: z
    .string()
    .max(100)
    .transform((s) => s.split(',').map((x) => x.trim()))
    .pipe(z.array(DeliveryStatusSchema).min(1).max(DELIVERY_STATUSES.length))
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});
export type DeliveryQuery = z.infer<typeof DeliveryQuerySchema>;

export const ChannelStatusSchema = z.object({
  inbox: z.object({ enabled: z.literal(true) }),
  email: z.object({
    enabled: z.boolean(),
    from: z.string().nullable(),
    lastSuccessAt: IsoDate.nullable(),
    lastFailureAt: IsoDate.nullable(),
    lastError: z.string().nullable(),
    /** Mail has failed and nothing succeeded for more than 15 minutes (the health page turns amber). */
    degraded: z.boolean(),
  }),
  queue: z.object({ pending: z.number().int(), retrying: z.number().int(), dead: z.number().int() }),
});
export type ChannelStatus = z.infer<typeof ChannelStatusSchema>;

export const TestEmailBodySchema = z.strictObject({
  /** Defaults to the signed-in admin's own address. */
  to: z.email().max(254).optional(),
});
export const TestEmailResultSchema = z.object({ ok: z.boolean(), response: z.string() });
export type TestEmailResult = z.infer<typeof TestEmailResultSchema>;

// Webhooks: admin-configured endpoints; each signs with its own secret, shown once.

/** An http(s) URL; whether its host may be private is checked on the server (WEBHOOK_ALLOW_PRIVATE). */
export const WebhookUrlSchema = z
  .string()
  .trim()
  .max(2000)
  .pipe(z.url({ protocol: /^https?$/, error: 'Enter an http:// or https:// URL.' }));

export const WebhookCreateSchema = z.strictObject({
  url: WebhookUrlSchema,
  description: z.string().trim().max(200).optional(),
});
export type WebhookCreate = z.infer<typeof WebhookCreateSchema>;

/** An endpoint as listed: never its secret. */
export const WebhookEndpointSchema = z.object({
  id: z.uuid(),
  url: z.string(),
  description: z.string(),
  disabled: z.boolean(),
  createdAt: IsoDate,
});
export type WebhookEndpoint = z.infer<typeof WebhookEndpointSchema>;

export const WebhookEndpointListSchema = z.object({ items: z.array(WebhookEndpointSchema) });
export type WebhookEndpointList = z.infer<typeof WebhookEndpointListSchema>;

/** The creation answer: the signing secret (Standard Webhooks, `whsec_<base64>`) appears here once, never again. */
export const WebhookCreatedSchema = WebhookEndpointSchema.extend({ secret: z.string() });
export type WebhookCreated = z.infer<typeof WebhookCreatedSchema>;
