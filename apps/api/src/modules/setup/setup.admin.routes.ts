import { CreateAdminBodySchema, UserSchema } from '@keyturn/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { authOf, ctxOf } from '../../plugins/auth';
import { errorResponses } from '../../plugins/openapi';
import type { SetupService } from './setup.service';

export const adminAccountRoutes =
  (setup: SetupService, authRateLimit: number): FastifyPluginAsyncZod =>
  async (app) => {
    app.post(
      '/admin/api/admins',
      {
        preHandler: app.requireAdmin,
        // A password check: the per-client auth limit, as for sign-in (the per-admin throttle is in the service).
        config: { rateLimit: { max: authRateLimit, timeWindow: '1 minute' } },
        schema: {
          tags: ['admin: accounts'],
          summary: 'Add another admin, sharing the admin master key (fresh password of the calling admin)',
          body: CreateAdminBodySchema,
          response: { 201: UserSchema, ...errorResponses },
        },
      },
      async (request, reply) => {
        const user = await setup.addAdmin(ctxOf(request), authOf(request).userId, request.body.adminPassword, request.body);
        return reply.code(201).send(user);
      },
    );
  };
