import { and, count, desc, eq, inArray, isNull, type SQL, sql } from 'drizzle-orm';
import { type DbOrTx, rowsOf } from '../../db/client';
import { notificationDeliveries, notificationInbox, systemSettings, users, webhookEndpoints } from '../../db/schema';

export type InboxRow = typeof notificationInbox.$inferSelect;
export type DeliveryRow = typeof notificationDeliveries.$inferSelect;
export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;
const EMAIL_STATE_KEY = 'notifications.email';
export interface EmailState {
  lastSuccessAt: string | null;
  lastFailureAt: string | null;
  lastError: string | null;
  failingSince?: string | null;
}

export function createNotificationsRepo() {
  return {
    async admins(tx: DbOrTx): Promise<{ id: string; email: string }[]> {
      return tx.select({ id: users.id, email: users.email }).from(users).where(and(eq(users.role, 'admin'), eq(users.disabled, false)));
    },

    async userById(tx: DbOrTx, id: string): Promise<{ id: string; email: string } | null> {
      const [r] = await tx.select({ id: users.id, email: users.email }).from(users).where(eq(users.id, id));
      return r ?? null;
    },

    async insertInbox(tx: DbOrTx, rows: (typeof notificationInbox.$inferInsert)[]): Promise<void> {
      if (rows.length) await tx.insert(notificationInbox).values(rows);
    },

    /** Queued once per idempotency key: a retried transaction or a repeated event queues nothing twice. */
    async insertDeliveries(tx: DbOrTx, rows: (typeof notificationDeliveries.$inferInsert)[]): Promise<void> {
      if (rows.length) await tx.insert(notificationDeliveries).values(rows).onConflictDoNothing({ target: notificationDeliveries.idempotencyKey });
    },

    async inbox(db: DbOrTx, userId: string, opts: { unread?: boolean; limit: number; offset: number }) {
      const where = and(eq(notificationInbox.userId, userId), opts.unread ? isNull(notificationInbox.readAt) : undefined);
      const items = await db.select().from(notificationInbox).where(where).orderBy(desc(notificationInbox.createdAt), desc(notificationInbox.id)).limit(opts.limit).offset(opts.offset);
      const [total] = await db.select({ n: count() }).from(notificationInbox).where(where);
      const [unread] = await db.select({ n: count() }).from(notificationInbox).where(and(eq(notificationInbox.userId, userId), isNull(notificationInbox.readAt)));
      return { items, total: total?.n ?? 0, unread: unread?.n ?? 0 };
    },

    async markRead(tx: DbOrTx, userId: string, id?: string): Promise<number> {
      const rows = await tx
        .update(notificationInbox)
        .set({ readAt: sql`now()` })
        .where(and(eq(notificationInbox.userId, userId), isNull(notificationInbox.readAt), id ? eq(notificationInbox.id, id) : undefined))
        .returning({ id: notificationInbox.id });
      return rows.length;
    },

    async inboxItem(db: DbOrTx, userId: string, id: string): Promise<InboxRow | null> {
      const [r] = await db.select().from(notificationInbox).where(and(eq(notificationInbox.id, id), eq(notificationInbox.userId, userId)));
      return r ?? null;
    },

    /**
     * Claim up to `limit` due deliveries for `owner` until `leaseSeconds` from now: one statement,
     * FOR UPDATE SKIP LOCKED, so dispatchers in several instances never claim one row twice.
     * A row whose lease ran out (its dispatcher crashed) is due again. Only rows of `channels`
     * (a channel that is off, e.g. email without SMTP_URL, keeps its rows queued).
     */
    async claim(db: DbOrTx, owner: string, limit: number, leaseSeconds: number, channels: readonly string[]): Promise<DeliveryRow[]> {
      if (!channels.length) return [];
      const ids = await rowsOf<{ id: string }>(
        db,
        sql`update notification_deliveries d set lease_until = now() + ${leaseSeconds} * interval '1 second', lease_owner = ${owner}, attempts = d.attempts + 1, updated_at = now()
            where d.id in (
              select id from notification_deliveries
              where status in ('pending', 'retrying') and next_attempt_at <= now() and (lease_until is null or lease_until < now())
                and channel in (${sql.join(channels.map((c) => sql`${c}`), sql`, `)})
              order by next_attempt_at, id
              limit ${limit}
              for update skip locked)
            returning d.id`,
      );
      if (!ids.length) return [];
      return db.select().from(notificationDeliveries).where(inArray(notificationDeliveries.id, ids.map((r) => r.id)));
    },

    /** Settle a claimed row, only while this dispatcher still holds it. */
    async settle(db: DbOrTx, id: string, owner: string, set: Partial<typeof notificationDeliveries.$inferInsert> & Record<string, unknown>): Promise<boolean> {
      const rows = await db
        .update(notificationDeliveries)
        .set({ ...set, leaseUntil: null, leaseOwner: null, updatedAt: sql`now()` })
        .where(and(eq(notificationDeliveries.id, id), eq(notificationDeliveries.leaseOwner, owner)))
        .returning({ id: notificationDeliveries.id });
      return rows.length > 0;
    },

    /** The queue, or one webhook endpoint's delivery log (`webhookEndpointId`). */
    async list(db: DbOrTx, opts: { statuses?: string[]; webhookEndpointId?: string; limit: number; offset: number }) {
      const where = and(
        opts.statuses?.length ? inArray(notificationDeliveries.status, opts.statuses) : undefined,
        opts.webhookEndpointId ? and(eq(notificationDeliveries.channel, 'webhook'), eq(notificationDeliveries.recipient, opts.webhookEndpointId)) : undefined,
      );
      const items = await db.select().from(notificationDeliveries).where(where).orderBy(desc(notificationDeliveries.createdAt), desc(notificationDeliveries.id)).limit(opts.limit).offset(opts.offset);
      const [total] = await db.select({ n: count() }).from(notificationDeliveries).where(where);
      return { items, total: total?.n ?? 0 };
    },

    async counts(db: DbOrTx): Promise<Record<string, number>> {
      const rows = await db.select({ status: notificationDeliveries.status, n: count() }).from(notificationDeliveries).groupBy(notificationDeliveries.status);
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    },

    /** A dead delivery goes back to the queue with a fresh budget. */
    async resend(tx: DbOrTx, id: string): Promise<boolean> {
      const rows = await tx
        .update(notificationDeliveries)
        .set({ status: 'pending', attempts: 0, nextAttemptAt: sql`now()`, createdAt: sql`now()`, lastError: null, updatedAt: sql`now()` })
        .where(and(eq(notificationDeliveries.id, id), eq(notificationDeliveries.status, 'dead')))
        .returning({ id: notificationDeliveries.id });
      return rows.length > 0;
    },

    async webhookEndpoints(db: DbOrTx): Promise<WebhookEndpointRow[]> {
      return db.select().from(webhookEndpoints).orderBy(webhookEndpoints.createdAt, webhookEndpoints.id);
    },

    /** The ids of the endpoints a notification is queued for. */
    async enabledWebhookIds(tx: DbOrTx): Promise<string[]> {
      const rows = await tx.select({ id: webhookEndpoints.id }).from(webhookEndpoints).where(eq(webhookEndpoints.disabled, false)).orderBy(webhookEndpoints.id);
      return rows.map((r) => r.id);
    },

    async webhookEndpoint(db: DbOrTx, id: string): Promise<WebhookEndpointRow | null> {
      const [r] = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
      return r ?? null;
    },

    async insertWebhookEndpoint(tx: DbOrTx, row: typeof webhookEndpoints.$inferInsert): Promise<WebhookEndpointRow> {
      const [r] = await tx.insert(webhookEndpoints).values(row).returning();
      return r!;
    },

    /** Deletes the endpoint (its sealed secret with it); its undelivered notifications die with a reason. */
    async deleteWebhookEndpoint(tx: DbOrTx, id: string): Promise<{ deleted: boolean; abandoned: number }> {
      const rows = await tx.delete(webhookEndpoints).where(eq(webhookEndpoints.id, id)).returning({ id: webhookEndpoints.id });
      if (!rows.length) return { deleted: false, abandoned: 0 };
      const abandoned = await tx
        .update(notificationDeliveries)
        .set({ status: 'dead', lastError: 'the webhook endpoint was deleted', updatedAt: sql`now()` })
        .where(and(eq(notificationDeliveries.channel, 'webhook'), eq(notificationDeliveries.recipient, id), inArray(notificationDeliveries.status, ['pending', 'retrying'])))
        .returning({ id: notificationDeliveries.id });
      return { deleted: true, abandoned: abandoned.length };
    },

    async emailState(db: DbOrTx): Promise<EmailState> {
      const [r] = await db.select().from(systemSettings).where(eq(systemSettings.key, EMAIL_STATE_KEY));
      return { lastSuccessAt: null, lastFailureAt: null, lastError: null, ...((r?.value as Partial<EmailState>) ?? {}) };
    },

    /**
     * The email channel's last success and failure; `failingSince` is the first failure after the
     * last success (cleared by a success): mail failing for 15 minutes turns the channel amber.
     */
    async recordEmailOutcome(db: DbOrTx, outcome: { ok: true } | { ok: false; error: string }): Promise<void> {
      const now = sql`to_jsonb(to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`;
      const value: SQL = outcome.ok
        ? sql`(coalesce(system_settings.value, '{}'::jsonb) - 'failingSince') || jsonb_build_object('lastSuccessAt', ${now})`
        : sql`coalesce(system_settings.value, '{}'::jsonb) || jsonb_build_object('lastFailureAt', ${now}, 'lastError', to_jsonb(${outcome.error}::text))
              || case when system_settings.value ? 'failingSince' then '{}'::jsonb else jsonb_build_object('failingSince', ${now}) end`;
      const initial: SQL = outcome.ok
        ? sql`jsonb_build_object('lastSuccessAt', ${now})`
        : sql`jsonb_build_object('lastFailureAt', ${now}, 'lastError', to_jsonb(${outcome.error}::text), 'failingSince', ${now})`;
      await db.execute(
        sql`insert into system_settings (key, value, updated_at) values (${EMAIL_STATE_KEY}, ${initial}, now())
            on conflict (key) do update set value = ${value}, updated_at = now()`,
      );
    },
  };
}
export type NotificationsRepo = ReturnType<typeof createNotificationsRepo>;
