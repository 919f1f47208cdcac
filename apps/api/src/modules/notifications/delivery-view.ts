import type { Delivery, NotificationEvent } from '@keyturn/shared';
import type { DeliveryRow } from './notifications.repo';

/** An outbox row as admins see it (the queue, a webhook endpoint's delivery log): never its body. */
export const toDelivery = (d: DeliveryRow): Delivery => ({
  id: d.id,
  event: d.event as NotificationEvent,
  channel: d.channel === 'webhook' ? 'webhook' : 'email',
  recipient: d.recipient,
  status: d.status as Delivery['status'],
  attempts: d.attempts,
  nextAttemptAt: d.status === 'pending' || d.status === 'retrying' ? d.nextAttemptAt.toISOString() : null,
  lastError: d.lastError,
  createdAt: d.createdAt.toISOString(),
  updatedAt: d.updatedAt.toISOString(),
  sentAt: d.sentAt?.toISOString() ?? null,
});
