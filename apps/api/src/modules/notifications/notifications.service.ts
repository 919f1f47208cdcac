import { AppError, type ChannelStatus, type DeliveryQuery, type InboxItem, type InboxQuery, type NotificationEvent, type TestEmailResult } from '@keyturn/shared';
import type { Db } from '../../db/client';
import type { RequestCtx } from '../../lib/context';
import type { AuditService } from '../audit/audit.service';
import type { AuthContext } from '../auth/auth.service';
import type { Mailer } from './mailer';
import { toDelivery } from './delivery-view';
import type { InboxRow, NotificationsRepo } from './notifications.repo';
import { createWebhooksService, type WebhooksServiceDeps } from './webhooks.service';

/** Mail failing with no success for this long turns the channel (and the health page) amber. */
export const EMAIL_DEGRADED_AFTER_MS = 15 * 60 * 1000;

const toInbox = (r: InboxRow): InboxItem => ({
  id: r.id,
  event: r.event as NotificationEvent,
  title: r.title,
  body: r.body,
  link: r.link,
  security: r.security,
  createdAt: r.createdAt.toISOString(),
  readAt: r.readAt?.toISOString() ?? null,
});

/** The inbox (every user) and the channels' operations (admins), webhook endpoints included. */
export function createNotificationsService(deps: { db: Db; repo: NotificationsRepo; mailer: Mailer; audit: AuditService; config: WebhooksServiceDeps['config'] }) {
  const { db, repo, mailer, audit } = deps;
  const webhooks = createWebhooksService(deps);
  return {
    webhooks,

    async inbox(a: AuthContext, q: InboxQuery) {
      const r = await repo.inbox(db, a.userId, { unread: q.unread === 'true', limit: q.limit, offset: q.offset });
      return { items: r.items.map(toInbox), unread: r.unread, total: r.total };
    },

    async markRead(a: AuthContext, id: string): Promise<void> {
      if (await repo.markRead(db, a.userId, id)) return;
      if (!(await repo.inboxItem(db, a.userId, id))) throw new AppError('NOT_FOUND', 'No such notification.');
    },

    markAllRead: (a: AuthContext) => repo.markRead(db, a.userId),

    async channels(): Promise<ChannelStatus> {
      const [state, counts] = await Promise.all([repo.emailState(db), repo.counts(db)]);
      const { failingSince, ...email } = state;
      return {
        inbox: { enabled: true },
        email: {
          enabled: mailer.enabled,
          from: mailer.from,
          ...email,
          degraded: mailer.enabled && !!failingSince && Date.now() - new Date(failingSince).getTime() > EMAIL_DEGRADED_AFTER_MS,
        },
        queue: { pending: counts.pending ?? 0, retrying: counts.retrying ?? 0, dead: counts.dead ?? 0 },
      };
    },

    async queue(q: DeliveryQuery) {
      const r = await repo.list(db, { ...(q.status ? { statuses: q.status } : {}), limit: q.limit, offset: q.offset });
      return { items: r.items.map(toDelivery), total: r.total };
    },

    async resend(ctx: RequestCtx, id: string): Promise<void> {
      await db.transaction(async (tx) => {
        if (!(await repo.resend(tx, id))) throw new AppError('INVALID_STATE', 'Only a dead notification can be sent again.');
        await audit.record(tx, ctx, { action: 'notification.resent', outcome: 'success', target: `notification:${id}` });
      });
    },

    /** Send one test email now, outside the queue, and report the SMTP server's answer. */
    async testEmail(ctx: RequestCtx, a: AuthContext, to: string | undefined): Promise<TestEmailResult> {
      const recipient = to ?? a.email;
      if (!mailer.enabled) return { ok: false, response: 'Email is not configured: set SMTP_URL (and MAIL_FROM) and restart Keyturn.' };
      let result: TestEmailResult;
      try {
        const response = await mailer.send({
          to: recipient,
          subject: '[Keyturn] Test email',
          text: 'This is a test email from Keyturn. If you can read it, notification emails reach this address.',
          html: '<p>This is a test email from Keyturn. If you can read it, notification emails reach this address.</p>',
          idempotencyKey: `test:${ctx.requestId}`,
        });
        result = { ok: true, response };
        await repo.recordEmailOutcome(db, { ok: true });
      } catch (e) {
        result = { ok: false, response: (e instanceof Error ? e.message : String(e)).slice(0, 500) };
        await repo.recordEmailOutcome(db, { ok: false, error: result.response });
      }
      await audit.recordDetached(ctx, { action: 'notification.test_email', outcome: result.ok ? 'success' : 'failure', target: `email:${recipient}`, details: { response: result.response } });
      return result;
    },
  };
}
export type NotificationsService = ReturnType<typeof createNotificationsService>;
