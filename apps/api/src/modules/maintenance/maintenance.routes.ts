import { MaintenanceRunSchema, SystemStatusSchema } from '@keyturn/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ctxOf } from '../../plugins/auth';
import { errorResponses } from '../../plugins/openapi';
import type { MaintenanceService } from './maintenance.service';

export const maintenanceRoutes =
  (maintenance: MaintenanceService): FastifyPluginAsyncZod =>
  async (app) => {
    app.addHook('preHandler', app.requireAdmin);
    const tags = ['admin: maintenance'];
    app.post(
      '/admin/api/maintenance/cleanup',
      { schema: { tags, summary: 'Expire overdue tokens, purge old backups and ended sessions', response: { 200: MaintenanceRunSchema, ...errorResponses } } },
      async (request) => (await maintenance.cleanup(ctxOf(request), { wait: true }))!,
    );
    app.post(
      '/admin/api/maintenance/recover',
      { schema: { tags, summary: 'Settle interrupted rotations (stale in_progress locks) from the database', response: { 200: MaintenanceRunSchema, ...errorResponses } } },
      async (request) => (await maintenance.recover(ctxOf(request), { wait: true }))!,
    );
    app.get(
      '/admin/api/rotation_status',
      { schema: { tags, summary: 'Health of the rotation system', response: { 200: SystemStatusSchema, ...errorResponses } } },
      async () => maintenance.status(),
    );
  };
