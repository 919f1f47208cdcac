import { sql } from 'drizzle-orm';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Container } from '../../container';
import { migrationsCurrent } from '../../db/client';
import { amk } from '../../db/schema';

const ReadySchema = z.object({ ready: z.boolean(), checks: z.record(z.string(), z.boolean()) });

export const healthRoutes =
  (c: Container): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/healthz', { config: { rateLimit: false }, schema: { tags: ['ops'], summary: 'The process is alive' } }, async () => ({ ok: true }));

    app.get(
      '/readyz',
      { config: { rateLimit: false }, schema: { tags: ['ops'], summary: 'Database reachable, migrations current, AMK present', response: { 200: ReadySchema, 503: ReadySchema } } },
      async (_request, reply) => {
        const checks: Record<string, boolean> = { database: false, migrations: false, amk: false };
        try {
          await Promise.race([c.database.ping(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 5000))]);
          checks.database = true;
          checks.migrations = await migrationsCurrent(c.database);
          const [row] = await c.db.select({ n: sql<number>`count(*)::int` }).from(amk);
          // Before first-run setup there is no AMK yet: still ready, so the setup page can load.
          checks.amk = (row?.n ?? 0) > 0 || (await c.setup.needed());
        } catch {
          /* reported through the checks */
        }
        const ready = Object.values(checks).every(Boolean);
        return reply.code(ready ? 200 : 503).send({ ready, checks });
      },
    );

    app.get('/metrics', { config: { rateLimit: false }, schema: { hide: true } }, async (_request, reply) => {
      reply.type('text/plain; version=0.0.4; charset=utf-8');
      try {
        await c.maintenance.refreshGauges();
      } catch {
        /* the database may be down: still serve the process metrics */
      }
      return c.metrics.render();
    });
  };
