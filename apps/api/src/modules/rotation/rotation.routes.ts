import {
  AdminPasswordBodySchema,
  ApproveResultSchema,
  RejectBodySchema,
  RequestRotationBodySchema,
  RestoreResultSchema,
  RotateResultSchema,
  RotateWithTokenBodySchema,
  RotationListQuerySchema,
  RotationListSchema,
  RotationTokenSchema,
  TokenIdParamsSchema,
} from '@keyturn/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf, ctxOf } from '../../plugins/auth';
import { errorResponses } from '../../plugins/openapi';
import type { RotationService } from './rotation.service';

const noStore = { 'cache-control': 'no-store' };

/** The user's side; the seed's paths are kept exactly. */
export const rotationUserRoutes =
  (rotation: RotationService, authRateLimit: number): FastifyPluginAsyncZod =>
  async (app) => {
    const tags = ['rotation'];
    app.post(
      '/api/request_key_rotation',
      { preHandler: app.requireUser, schema: { tags, summary: 'Ask for a key rotation, with a reason', body: RequestRotationBodySchema, response: { 201: RotationTokenSchema, ...errorResponses } } },
      async (request, reply) => reply.code(201).send(await rotation.request(ctxOf(request), authOf(request), request.body)),
    );

    app.get(
      '/api/rotation_requests',
      { preHandler: app.requireUser, schema: { tags, summary: 'My rotation requests with their timelines', response: { 200: RotationListSchema, ...errorResponses } } },
      async (request) => rotation.listMine(authOf(request)),
    );

    app.post(
      '/api/rotation_requests/:tokenId/cancel',
      { preHandler: app.requireUser, schema: { tags, summary: 'Cancel my pending or approved request', params: TokenIdParamsSchema, response: { 200: RotationTokenSchema, ...errorResponses } } },
      async (request) => rotation.cancel(ctxOf(request), authOf(request), request.params.tokenId),
    );

    app.post(
      '/api/rotate_keys_with_token',
      {
        preHandler: app.requireUser,
        config: { rateLimit: { max: authRateLimit, timeWindow: '1 minute' } },
        schema: {
          tags,
          summary: 'Execute an approved rotation: re-encrypt every secret under a new DEK, atomically',
          body: RotateWithTokenBodySchema,
          response: { 200: RotateResultSchema, ...errorResponses },
        },
      },
      async (request, reply) => {
        const { sessionToken, ...result } = await rotation.execute(ctxOf(request), authOf(request), request.body);
        // The old session was revoked with all others; the caller continues on the new one.
        app.setSessionCookie(request, reply, sessionToken);
        return reply.headers(noStore).send(result);
      },
    );
  };

export const rotationAdminRoutes =
  (rotation: RotationService): FastifyPluginAsyncZod =>
  async (app) => {
    app.addHook('preHandler', app.requireAdmin);
    const tags = ['admin: rotation'];

    app.get(
      '/admin/api/rotation_requests',
      { schema: { tags, summary: 'Rotation requests (filter by status, paginated)', querystring: RotationListQuerySchema, response: { 200: RotationListSchema, ...errorResponses } } },
      async (request) => rotation.listAll(request.query),
    );

    app.post(
      '/admin/api/approve_rotation/:tokenId',
      {
        schema: {
          tags,
          summary: 'Approve with fresh admin credentials; returns the one-time temporary password (shown only here)',
          params: TokenIdParamsSchema,
          body: AdminPasswordBodySchema,
          response: { 200: ApproveResultSchema, ...errorResponses },
        },
      },
      async (request, reply) => reply.headers(noStore).send(await rotation.approve(ctxOf(request), authOf(request), request.params.tokenId, request.body.adminPassword)),
    );

    app.post(
      '/admin/api/reject_rotation/:tokenId',
      { schema: { tags, summary: 'Reject a pending request, with a reason', params: TokenIdParamsSchema, body: RejectBodySchema, response: { 200: RotationTokenSchema, ...errorResponses } } },
      async (request) => rotation.reject(ctxOf(request), authOf(request), request.params.tokenId, request.body.reason),
    );

    app.post(
      '/admin/api/finalize_a_dek/:tokenId',
      {
        schema: {
          tags,
          summary: 'Finalize the escrowed A-DEK with the admin master key (fresh admin credentials)',
          params: TokenIdParamsSchema,
          body: AdminPasswordBodySchema,
          response: { 200: z.object({ status: z.literal('finalized') }), ...errorResponses },
        },
      },
      async (request, reply) => reply.headers(noStore).send(await rotation.finalize(ctxOf(request), authOf(request), request.params.tokenId, request.body.adminPassword)),
    );

    app.post(
      '/admin/api/restore_rotation/:tokenId',
      {
        schema: {
          tags,
          summary: 'Restore a completed, unfinalized rotation from its backup (only if nothing changed since)',
          params: TokenIdParamsSchema,
          body: AdminPasswordBodySchema,
          response: { 200: RestoreResultSchema, ...errorResponses },
        },
      },
      async (request, reply) => reply.headers(noStore).send(await rotation.restore(ctxOf(request), authOf(request), request.params.tokenId, request.body.adminPassword)),
    );
  };
