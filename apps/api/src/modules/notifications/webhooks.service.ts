import { randomUUID } from 'node:crypto';
import { AppError, type DeliveryQuery, type WebhookCreate, type WebhookCreated, type WebhookEndpoint } from '@keyturn/shared';
import type { Db } from '../../db/client';
import type { RequestCtx } from '../../lib/context';
import type { AuditService } from '../audit/audit.service';
import { toDelivery } from './delivery-view';
import type { NotificationsRepo, WebhookEndpointRow } from './notifications.repo';
import { checkedAddresses, WebhookAddressError } from './webhook-address';
import { formatWebhookSecret, newWebhookSecret } from './webhook-secrets';

/** An endpoint as admins see it: never its secret (W1). */
const toEndpoint = (r: WebhookEndpointRow): WebhookEndpoint => ({
  id: r.id,
  url: r.url,
  description: r.description,
  disabled: r.disabled,
  createdAt: r.createdAt.toISOString(),
});

export interface WebhooksServiceDeps {
  db: Db;
  repo: NotificationsRepo;
  audit: AuditService;
  config: { jwtSecret: string; WEBHOOK_ALLOW_PRIVATE: 'true' | 'false' };
}

/** Admin-configured webhook endpoints (README "Webhooks"): create (secret shown once), list, delete, delivery log. */
export function createWebhooksService({ db, repo, audit, config }: WebhooksServiceDeps) {
  const allowPrivate = config.WEBHOOK_ALLOW_PRIVATE === 'true';
  return {
    async list(): Promise<WebhookEndpoint[]> {
      return (await repo.webhookEndpoints(db)).map(toEndpoint);
    },

    async create(ctx: RequestCtx, body: WebhookCreate): Promise<WebhookCreated> {
      const url = new URL(body.url);
      // The SSRF guard (W3) before anything is written; DNS is slow, so outside the transaction.
      try {
        await checkedAddresses(url.hostname, allowPrivate);
      } catch (e) {
        if (!(e instanceof WebhookAddressError)) throw e;
        await audit.recordDetached(ctx, { action: 'notification.webhook_created', outcome: 'denied', target: `webhook:${url.host}`, details: { host: url.host, reason: e.message } });
        throw new AppError('VALIDATION_FAILED', e.message, [{ field: 'body.url', message: e.message }]);
      }
      const id = randomUUID();
      const secret = newWebhookSecret(config.jwtSecret, id);
      try {
        const row = await db.transaction(async (tx) => {
          const r = await repo.insertWebhookEndpoint(tx, { id, url: body.url, description: body.description ?? '', secretCt: secret.sealed, secretKeyVersion: secret.keyVersion });
          await audit.record(tx, ctx, { action: 'notification.webhook_created', outcome: 'success', target: `webhook:${id}`, details: { host: url.host } });
          return r;
        });
        // The only time the secret leaves the server.
        return { ...toEndpoint(row), secret: formatWebhookSecret(secret.raw) };
      } finally {
        secret.raw.fill(0);
      }
    },

    async remove(ctx: RequestCtx, id: string): Promise<void> {
      await db.transaction(async (tx) => {
        const r = await repo.deleteWebhookEndpoint(tx, id);
        if (!r.deleted) throw new AppError('NOT_FOUND', 'No such webhook endpoint.');
        await audit.record(tx, ctx, { action: 'notification.webhook_deleted', outcome: 'success', target: `webhook:${id}`, details: { abandonedDeliveries: r.abandoned } });
      });
    },

    /** One endpoint's delivery log: every notification queued for it, newest first. */
    async deliveries(id: string, q: DeliveryQuery) {
      if (!(await repo.webhookEndpoint(db, id))) throw new AppError('NOT_FOUND', 'No such webhook endpoint.');
      const r = await repo.list(db, { ...(q.status ? { statuses: q.status } : {}), webhookEndpointId: id, limit: q.limit, offset: q.offset });
      return { items: r.items.map(toDelivery), total: r.total };
    },
  };
}
export type WebhooksService = ReturnType<typeof createWebhooksService>;
