import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError } from '@keyturn/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HealthService } from './health.service';
import type { Metrics } from './metrics';

const ReadySchema = z.object({ ready: z.boolean(), checks: z.record(z.string(), z.boolean()) });

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * `Authorization: Bearer <token>` against the expected token, in constant time: both sides are
 * hashed to 32 bytes first, so neither the comparison nor the lengths tell how close a guess was.
 */
export function bearerMatches(header: string | undefined, expectedDigest: Buffer): boolean {
  const m = /^Bearer ([\x21-\x7e]+)$/.exec(header ?? '');
  const same = timingSafeEqual(sha256(m?.[1] ?? ''), expectedDigest);
  return same && m !== null;
}

export interface HealthRouteDeps {
  health: HealthService;
  metrics: Metrics;
  /** METRICS_TOKEN: when set, /metrics answers only to `Authorization: Bearer <it>`. */
  metricsToken: string | undefined;
}

export const healthRoutes =
  ({ health, metrics, metricsToken }: HealthRouteDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const tokenDigest = metricsToken === undefined ? null : sha256(metricsToken);

    app.get('/healthz', { config: { rateLimit: false }, schema: { tags: ['ops'], summary: 'The process is alive' } }, async () => ({ ok: true }));

    app.get(
      '/readyz',
      {
        config: { rateLimit: false },
        schema: { tags: ['ops'], summary: 'Database reachable, migrations current, AMK present (a verdict reused for HEALTH_CACHE_SECONDS)', response: { 200: ReadySchema, 503: ReadySchema } },
      },
      async (_request, reply) => {
        const r = await health.readiness();
        return reply.code(r.ready ? 200 : 503).send(r);
      },
    );

    app.get('/metrics', { config: { rateLimit: false }, schema: { hide: true } }, async (request, reply) => {
      if (tokenDigest && !bearerMatches(request.headers.authorization, tokenDigest)) {
        reply.header('www-authenticate', 'Bearer realm="metrics"');
        throw new AppError('UNAUTHENTICATED', 'The metrics need their token: Authorization: Bearer <METRICS_TOKEN>.');
      }
      await health.refreshGauges();
      reply.type('text/plain; version=0.0.4; charset=utf-8');
      return metrics.render();
    });
  };
