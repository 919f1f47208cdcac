import type { DbOrTx } from '../../db/client';
import type { Mailer } from './mailer';
import type { NotificationSpec } from './messages';
import type { NotificationsRepo } from './notifications.repo';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The body a webhook endpoint receives (README "Webhooks"): the same words as the inbox and the
 * email, nothing more — never a secret (N6). `timestamp` is when the notification was queued.
 */
export function webhookBody(n: NotificationSpec, at: Date): string {
  return JSON.stringify({
    type: n.event,
    timestamp: at.toISOString(),
    data: { about: n.about, title: n.title, body: n.body, link: n.link, security: n.security },
  });
}

/**
 * The transactional outbox's write side (README "Delivery"): called inside the transaction of
 * the state change it reports, it writes the in-app inbox rows, with email on one outbox row per
 * recipient, and one outbox row per enabled webhook endpoint. A rollback writes none; a commit
 * writes all.
 */
export function createNotifier(deps: { repo: NotificationsRepo; mailer: Pick<Mailer, 'enabled'> }) {
  const { repo, mailer } = deps;
  return {
    async notify(tx: DbOrTx, n: NotificationSpec): Promise<void> {
      const who = new Map<string, string>();
      for (const r of n.to) {
        if (r === 'admins') for (const a of await repo.admins(tx)) who.set(a.id, a.email);
        else {
          const u = await repo.userById(tx, r.userId);
          if (u) who.set(u.id, u.email);
        }
      }
      const endpoints = await repo.enabledWebhookIds(tx);
      if (endpoints.length) {
        const body = webhookBody(n, new Date());
        await repo.insertDeliveries(
          tx,
          endpoints.map((endpointId) => ({
            idempotencyKey: `${n.event}:${n.about}:webhook:${endpointId}`,
            event: n.event,
            channel: 'webhook',
            recipient: endpointId,
            subject: n.event,
            textBody: body,
            htmlBody: '',
            security: n.security,
          })),
        );
      }
      if (!who.size) return;
      await repo.insertInbox(
        tx,
        [...who.keys()].map((userId) => ({ userId, event: n.event, title: n.title, body: n.body, link: n.link, security: n.security })),
      );
      if (!mailer.enabled) return;
      const linkLine = n.link ? `\n\nOpen Keyturn and go to ${n.link}.` : '';
      await repo.insertDeliveries(
        tx,
        [...who.entries()].map(([userId, email]) => ({
          idempotencyKey: `${n.event}:${n.about}:email:${userId}`,
          event: n.event,
          channel: 'email',
          recipient: email,
          subject: `[Keyturn] ${n.title}`,
          textBody: `${n.body}${linkLine}\n\n— Keyturn${n.security ? ' (security notice: these cannot be turned off)' : ''}`,
          htmlBody: `<p>${escapeHtml(n.body)}</p>${n.link ? `<p>Open Keyturn and go to <code>${escapeHtml(n.link)}</code>.</p>` : ''}<p>— Keyturn</p>`,
          security: n.security,
        })),
      );
    },
  };
}
export type Notifier = ReturnType<typeof createNotifier>;
export type Notify = Notifier['notify'];
