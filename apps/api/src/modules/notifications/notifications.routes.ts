import {
  ChannelStatusSchema,
  DeliveryListSchema,
  DeliveryQuerySchema,
  IdParamsSchema,
  InboxListSchema,
  InboxQuerySchema,
  InboxReadAllResultSchema,
  OkSchema,
  TestEmailBodySchema,
  TestEmailResultSchema,
  WebhookCreatedSchema,
  WebhookCreateSchema,
  WebhookEndpointListSchema,
} from '@keyturn/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { authOf, ctxOf } from '../../plugins/auth';
import { errorResponses } from '../../plugins/openapi';
import type { NotificationsService } from './notifications.service';

const noStore = { 'cache-control': 'no-store' };

export const notificationUserRoutes =
  (n: NotificationsService): FastifyPluginAsyncZod =>
  async (app) => {
    const tags = ['notifications'];
    app.get(
      '/api/notifications',
      { preHandler: app.requireUser, schema: { tags, summary: 'My in-app notifications, newest first, with the unread count', querystring: InboxQuerySchema, response: { 200: InboxListSchema, ...errorResponses } } },
      async (request, reply) => reply.headers(noStore).send(await n.inbox(authOf(request), request.query)),
    );
    app.post(
      '/api/notifications/read_all',
      { preHandler: app.requireUser, schema: { tags, summary: 'Mark all my notifications as read', response: { 200: InboxReadAllResultSchema, ...errorResponses } } },
      async (request) => ({ updated: await n.markAllRead(authOf(request)) }),
    );
    app.post(
      '/api/notifications/:id/read',
      { preHandler: app.requireUser, schema: { tags, summary: 'Mark one notification as read', params: IdParamsSchema, response: { 200: OkSchema, ...errorResponses } } },
      async (request) => {
        await n.markRead(authOf(request), request.params.id);
        return { ok: true as const };
      },
    );
  };

export const notificationAdminRoutes =
  (n: NotificationsService, authRateLimit: number): FastifyPluginAsyncZod =>
  async (app) => {
    app.addHook('preHandler', app.requireAdmin);
    const tags = ['admin: notifications'];
    app.get(
      '/admin/api/notifications/channels',
      { schema: { tags, summary: 'Channel status: email configured, last success and failure, queue counts', response: { 200: ChannelStatusSchema, ...errorResponses } } },
      async (_request, reply) => reply.headers(noStore).send(await n.channels()),
    );
    app.get(
      '/admin/api/notifications/queue',
      { schema: { tags, summary: 'Outgoing notifications (email, webhooks): pending, retrying with the last error, sent, dead', querystring: DeliveryQuerySchema, response: { 200: DeliveryListSchema, ...errorResponses } } },
      async (request, reply) => reply.headers(noStore).send(await n.queue(request.query)),
    );
    app.post(
      '/admin/api/notifications/queue/:id/resend',
      { schema: { tags, summary: 'Queue a dead notification again', params: IdParamsSchema, response: { 200: OkSchema, ...errorResponses } } },
      async (request) => {
        await n.resend(ctxOf(request), request.params.id);
        return { ok: true as const };
      },
    );
    app.post(
      '/admin/api/notifications/test_email',
      {
        config: { rateLimit: { max: authRateLimit, timeWindow: '1 minute' } },
        schema: { tags, summary: 'Send a test email now and report the SMTP server’s answer', body: TestEmailBodySchema, response: { 200: TestEmailResultSchema, ...errorResponses } },
      },
      async (request) => n.testEmail(ctxOf(request), authOf(request), request.body?.to),
    );

    // Webhook endpoints (README "Webhooks").
    app.get(
      '/admin/api/notifications/webhooks',
      { schema: { tags, summary: 'Webhook endpoints (never their secrets)', response: { 200: WebhookEndpointListSchema, ...errorResponses } } },
      async (_request, reply) => reply.headers(noStore).send({ items: await n.webhooks.list() }),
    );
    app.post(
      '/admin/api/notifications/webhooks',
      {
        schema: {
          tags,
          summary: 'Add a webhook endpoint; its signing secret (whsec_…) is in this answer only',
          description: 'Refused (400) when the host is, or resolves to, a loopback, private or link-local address, unless WEBHOOK_ALLOW_PRIVATE=true.',
          body: WebhookCreateSchema,
          response: { 201: WebhookCreatedSchema, ...errorResponses },
        },
      },
      async (request, reply) => reply.code(201).headers(noStore).send(await n.webhooks.create(ctxOf(request), request.body)),
    );
    app.delete(
      '/admin/api/notifications/webhooks/:id',
      { schema: { tags, summary: 'Delete a webhook endpoint (its undelivered notifications become dead)', params: IdParamsSchema, response: { 200: OkSchema, ...errorResponses } } },
      async (request) => {
        await n.webhooks.remove(ctxOf(request), request.params.id);
        return { ok: true as const };
      },
    );
    app.get(
      '/admin/api/notifications/webhooks/:id/deliveries',
      {
        schema: {
          tags,
          summary: 'A webhook endpoint’s delivery log: status, attempts, last error (HTTP status or network error), times',
          params: IdParamsSchema,
          querystring: DeliveryQuerySchema,
          response: { 200: DeliveryListSchema, ...errorResponses },
        },
      },
      async (request, reply) => reply.headers(noStore).send(await n.webhooks.deliveries(request.params.id, request.query)),
    );
  };
