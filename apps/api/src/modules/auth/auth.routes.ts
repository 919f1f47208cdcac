import { LoginBodySchema, MeSchema, OkSchema, RegisterBodySchema, SessionSchema } from '@keyturn/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { authOf, ctxOf } from '../../plugins/auth';
import { errorResponses } from '../../plugins/openapi';
import type { AuthService } from './auth.service';

export const authRoutes =
  (auth: AuthService, authRateLimit: number): FastifyPluginAsyncZod =>
  async (app) => {
    const limited = { rateLimit: { max: authRateLimit, timeWindow: '1 minute' } };

    app.post(
      '/api/auth/register',
      {
        config: limited,
        schema: { tags: ['auth'], summary: 'Create an account (key version 1, escrowed at once) and sign in', body: RegisterBodySchema, response: { 201: SessionSchema, ...errorResponses } },
      },
      async (request, reply) => {
        const s = await auth.register(ctxOf(request), request.body);
        app.setSessionCookie(request, reply, s.token);
        return reply.code(201).header('cache-control', 'no-store').send(s);
      },
    );

    app.post(
      '/api/auth/login',
      { config: limited, schema: { tags: ['auth'], summary: 'Sign in', body: LoginBodySchema, response: { 200: SessionSchema, ...errorResponses } } },
      async (request, reply) => {
        const s = await auth.login(ctxOf(request), request.body);
        app.setSessionCookie(request, reply, s.token);
        return reply.header('cache-control', 'no-store').send(s);
      },
    );

    app.post(
      '/api/auth/logout',
      { preHandler: app.requireUser, schema: { tags: ['auth'], summary: 'End this session at once', response: { 200: OkSchema, ...errorResponses } } },
      async (request, reply) => {
        await auth.logout(ctxOf(request), authOf(request));
        app.clearSessionCookie(reply);
        reply.header('cache-control', 'no-store');
        return { ok: true as const };
      },
    );

    app.get(
      '/api/auth/me',
      { preHandler: app.requireUser, schema: { tags: ['auth'], summary: 'The signed-in user and session', response: { 200: MeSchema, ...errorResponses } } },
      async (request, reply) => {
        reply.header('cache-control', 'no-store');
        return auth.me(authOf(request));
      },
    );
  };
