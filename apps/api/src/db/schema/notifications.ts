import { sql } from 'drizzle-orm';
import { boolean, index, integer, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { bytea, tsz, users } from './users';

/**
 * The in-app inbox (modules/notifications/README.md): written in the same transaction as the
 * state change it reports, so it is delivered exactly when the change commits.
 */
export const notificationInbox = pgTable(
  'notification_inbox',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    event: text('event').notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    link: text('link'),
    security: boolean('security').notNull().default(false),
    createdAt: tsz('created_at').notNull().defaultNow(),
    readAt: tsz('read_at'),
  },
  (t) => [index('notification_inbox_user_idx').on(t.userId, t.createdAt), index('notification_inbox_unread_idx').on(t.userId).where(sql`read_at is null`)],
);

/**
 * The outbox of outgoing channels (email, webhook): one row per notification, channel and
 * recipient (an email address, or a webhook endpoint's id), written in the state change's
 * transaction; a dispatcher in every instance claims due rows
 * (FOR UPDATE SKIP LOCKED, with a lease), delivers them outside any transaction and settles
 * them: sent, retrying (exponential backoff) or dead (too many attempts or too old).
 */
export const notificationDeliveries = pgTable(
  'notification_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** event + subject + channel + recipient: a notification is queued once, and receivers can dedupe on it. */
    idempotencyKey: text('idempotency_key').notNull().unique(),
    event: text('event').notNull(),
    channel: text('channel').notNull(),
    recipient: text('recipient').notNull(),
    subject: text('subject').notNull(),
    textBody: text('text_body').notNull(),
    htmlBody: text('html_body').notNull(),
    security: boolean('security').notNull().default(false),
    status: text('status').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: tsz('next_attempt_at').notNull().defaultNow(),
    /** A dispatcher holds the row until then; a crashed one's lease runs out and the row is due again. */
    leaseUntil: tsz('lease_until'),
    leaseOwner: text('lease_owner'),
    lastError: text('last_error'),
    createdAt: tsz('created_at').notNull().defaultNow(),
    sentAt: tsz('sent_at'),
    updatedAt: tsz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('notification_deliveries_due_idx').on(t.status, t.nextAttemptAt),
    index('notification_deliveries_created_idx').on(t.createdAt),
    // A webhook endpoint's delivery log.
    index('notification_deliveries_recipient_idx').on(t.channel, t.recipient, t.createdAt),
  ],
);

/**
 * Webhook endpoints (modules/notifications/README.md, "Webhooks"), configured by admins. Each has
 * its own signing secret (Standard Webhooks), shown once at creation and stored only sealed:
 * AES-256-GCM under HKDF-SHA256(JWT_SECRET, "keyturn/webhook-secret/v1"), the AAD naming this
 * endpoint's id and the key version, so a blob copied to another row does not open.
 */
export const webhookEndpoints = pgTable('webhook_endpoints', {
  id: uuid('id').primaryKey().defaultRandom(),
  url: text('url').notNull(),
  description: text('description').notNull().default(''),
  /** The sealed 32-byte signing secret; never leaves the server after the creation response. */
  secretCt: bytea('secret_ct').notNull(),
  /** The version of the key secret_ct is sealed under (part of the AAD). */
  secretKeyVersion: integer('secret_key_version').notNull().default(1),
  createdAt: tsz('created_at').notNull().defaultNow(),
  /** A disabled endpoint is queued nothing (no API toggles it yet). */
  disabled: boolean('disabled').notNull().default(false),
});
