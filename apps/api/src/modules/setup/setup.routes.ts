import { SessionSchema, SetupBodySchema, SetupStatusSchema } from '@keyturn/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ctxOf } from '../../plugins/auth';
import { errorResponses } from '../../plugins/openapi';
import type { SetupService } from './setup.service';

export const setupRoutes =
  (setup: SetupService, authRateLimit: number): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/api/setup', { schema: { tags: ['setup'], summary: 'Whether first-run setup is still needed', response: { 200: SetupStatusSchema } } }, async () => ({
      needed: await setup.needed(),
    }));

    app.post(
      '/api/setup',
      {
        config: { rateLimit: { max: authRateLimit, timeWindow: '1 minute' } },
        schema: {
          tags: ['setup'],
          summary: 'Create the first admin and the admin master key (needs the one-time setup code)',
          body: SetupBodySchema,
          response: { 201: SessionSchema, ...errorResponses },
        },
      },
      async (request, reply) => {
        const s = await setup.complete(ctxOf(request), request.body);
        app.setSessionCookie(request, reply, s.token);
        return reply.code(201).header('cache-control', 'no-store').send(s);
      },
    );
  };
