import {
  CreateSecretBodySchema,
  IdParamsSchema,
  OkSchema,
  SecretListSchema,
  SecretSchema,
  UpdateSecretBodySchema,
} from '@keyturn/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { authOf, ctxOf } from '../../plugins/auth';
import { errorResponses } from '../../plugins/openapi';
import type { SecretsService } from './secrets.service';

export const secretsRoutes =
  (secrets: SecretsService): FastifyPluginAsyncZod =>
  async (app) => {
    app.addHook('preHandler', app.requireUser);
    // Secret material must never sit in a browser or proxy cache.
    app.addHook('onSend', async (_req, reply) => {
      reply.header('cache-control', 'no-store');
    });
    const tags = ['secrets'];

    app.get('/api/secrets', { schema: { tags, summary: 'List my secrets (names, no values)', response: { 200: SecretListSchema, ...errorResponses } } }, async (request) => ({
      items: await secrets.list(authOf(request)),
    }));

    app.post(
      '/api/secrets',
      { schema: { tags, summary: 'Add a secret', body: CreateSecretBodySchema, response: { 201: SecretSchema, ...errorResponses } } },
      async (request, reply) => reply.code(201).send(await secrets.create(ctxOf(request), authOf(request), request.body)),
    );

    app.get(
      '/api/secrets/:id',
      {
        // The params are validated before the preHandler runs, so the id is a UUID here.
        config: { prefetchSecretId: (request) => (request.params as { id: string }).id },
        schema: { tags, summary: 'Reveal a secret', params: IdParamsSchema, response: { 200: SecretSchema, ...errorResponses } },
      },
      async (request) => secrets.get(authOf(request), request.params.id, request.prefetchedSecret),
    );

    app.put(
      '/api/secrets/:id',
      { schema: { tags, summary: 'Change a secret', params: IdParamsSchema, body: UpdateSecretBodySchema, response: { 200: SecretSchema, ...errorResponses } } },
      async (request) => secrets.update(ctxOf(request), authOf(request), request.params.id, request.body),
    );

    app.delete(
      '/api/secrets/:id',
      { schema: { tags, summary: 'Delete a secret', params: IdParamsSchema, response: { 200: OkSchema, ...errorResponses } } },
      async (request) => {
        await secrets.remove(ctxOf(request), authOf(request), request.params.id);
        return { ok: true as const };
      },
    );
  };
