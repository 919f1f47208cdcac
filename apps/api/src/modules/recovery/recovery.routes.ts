import {
  ChangePasswordBodySchema,
  ChangePasswordResultSchema,
  OkSchema,
  RecoveryApproveBodySchema,
  RecoveryApprovedSchema,
  RecoveryCompleteBodySchema,
  RecoveryCompletedSchema,
  RecoveryIdParamsSchema,
  RecoveryListQuerySchema,
  RecoveryListSchema,
  RecoveryNoticeListSchema,
  RecoveryRejectBodySchema,
  RecoveryRequestBodySchema,
  RecoveryRequestedSchema,
  RecoveryRequestViewSchema,
} from '@keyturn/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { authOf, ctxOf } from '../../plugins/auth';
import { errorResponses } from '../../plugins/openapi';
import type { Recovery } from './recovery.module';

const noStore = { 'cache-control': 'no-store' };
/** The user agent as the admin sees it beside a request: bounded, control characters dropped. */
const userAgentOf = (ua: string | undefined): string | null =>
  ua
    ? [...ua]
        .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
        .join('')
        .slice(0, 300)
    : null;

/** Password change (signed in) and the unauthenticated recovery steps, rate-limited like sign-in. */
export const recoveryUserRoutes =
  (recovery: Recovery, authRateLimit: number): FastifyPluginAsyncZod =>
  async (app) => {
    const limited = { rateLimit: { max: authRateLimit, timeWindow: '1 minute' } };

    app.post(
      '/api/auth/change_password',
      {
        preHandler: app.requireUser,
        config: limited,
        schema: {
          tags: ['auth'],
          summary: 'Change my password: the same data key re-wrapped, every other session signed out, this one replaced',
          body: ChangePasswordBodySchema,
          response: { 200: ChangePasswordResultSchema, ...errorResponses },
        },
      },
      async (request, reply) => {
        const { sessionToken, ...result } = await recovery.changePassword(ctxOf(request), authOf(request), request.body);
        app.setSessionCookie(request, reply, sessionToken);
        return reply.headers(noStore).send(result);
      },
    );

    const tags = ['recovery'];
    app.post(
      '/api/recovery/request',
      {
        config: limited,
        schema: {
          tags,
          summary: 'Forgot password: ask for an account recovery with the new password (same answer whether or not the account exists)',
          body: RecoveryRequestBodySchema,
          response: { 202: RecoveryRequestedSchema, ...errorResponses },
        },
      },
      async (request, reply) => reply.code(202).headers(noStore).send(await recovery.request(ctxOf(request), userAgentOf(request.headers['user-agent']), request.body)),
    );

    app.post(
      '/api/recovery/complete',
      {
        config: limited,
        schema: {
          tags,
          summary: 'Complete an approved recovery with the new password: every secret re-encrypted under a new key, every session signed out',
          body: RecoveryCompleteBodySchema,
          response: { 200: RecoveryCompletedSchema, ...errorResponses },
        },
      },
      async (request, reply) => reply.headers(noStore).send(await recovery.complete(ctxOf(request), request.body)),
    );

    app.get(
      '/api/recovery/notices',
      { preHandler: app.requireUser, schema: { tags, summary: 'Times an administrator opened my recovery copy, not yet acknowledged', response: { 200: RecoveryNoticeListSchema, ...errorResponses } } },
      async (request, reply) => reply.headers(noStore).send(await recovery.notices(authOf(request))),
    );

    app.post(
      '/api/recovery/requests/:id/cancel',
      {
        preHandler: app.requireUser,
        schema: { tags, summary: "Cancel an open recovery request of my account (\"this wasn't me\")", params: RecoveryIdParamsSchema, response: { 200: OkSchema, ...errorResponses } },
      },
      async (request) => {
        await recovery.cancelMine(ctxOf(request), authOf(request), request.params.id);
        return { ok: true as const };
      },
    );

    app.post(
      '/api/recovery/notices/:id/ack',
      { preHandler: app.requireUser, schema: { tags, summary: 'Acknowledge a recovery notice', params: RecoveryIdParamsSchema, response: { 200: OkSchema, ...errorResponses } } },
      async (request) => {
        await recovery.ackNotice(ctxOf(request), authOf(request), request.params.id);
        return { ok: true as const };
      },
    );
  };

export const recoveryAdminRoutes =
  (recovery: Recovery, authRateLimit: number): FastifyPluginAsyncZod =>
  async (app) => {
    app.addHook('preHandler', app.requireAdmin);
    const tags = ['admin: recovery'];

    app.get(
      '/admin/api/recovery_requests',
      { schema: { tags, summary: 'Account recovery requests (filter by status, paginated)', querystring: RecoveryListQuerySchema, response: { 200: RecoveryListSchema, ...errorResponses } } },
      async (request, reply) => reply.headers(noStore).send(await recovery.list(request.query)),
    );

    app.post(
      '/admin/api/recovery_requests/:id/approve',
      {
        config: { rateLimit: { max: authRateLimit, timeWindow: '1 minute' } },
        schema: {
          tags,
          summary: "Approve with fresh admin credentials (another admin's for an admin): opens the user's escrow copy and seals it to the requester's key",
          params: RecoveryIdParamsSchema,
          body: RecoveryApproveBodySchema,
          response: { 200: RecoveryApprovedSchema, ...errorResponses },
        },
      },
      async (request, reply) => reply.headers(noStore).send(await recovery.approve(ctxOf(request), authOf(request), request.params.id, request.body)),
    );

    app.post(
      '/admin/api/recovery_requests/:id/reject',
      {
        schema: { tags, summary: 'Reject a pending or approved recovery request, with a reason', params: RecoveryIdParamsSchema, body: RecoveryRejectBodySchema, response: { 200: RecoveryRequestViewSchema, ...errorResponses } },
      },
      async (request) => recovery.reject(ctxOf(request), authOf(request), request.params.id, request.body.reason),
    );
  };
