import { Readable } from 'node:stream';
import { AuditExportQuerySchema, AuditListSchema, AuditQuerySchema, AuditVerifyQuerySchema, AuditVerifySchema } from '@keyturn/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorResponses } from '../../plugins/openapi';
import type { AuditService } from './audit.service';
import type { AuditVerdicts } from './audit.verdicts';

const toApi = (r: Awaited<ReturnType<AuditService['list']>>['items'][number]) => ({
  seq: r.seq,
  at: r.atText,
  actorId: r.actorId,
  actorEmail: r.actorEmail,
  role: r.role,
  action: r.action,
  target: r.target,
  outcome: r.outcome as 'success' | 'failure' | 'denied',
  requestId: r.requestId,
  clientAddress: r.clientAddress,
  details: r.details,
  hash: r.hash,
});

export const auditRoutes =
  (audit: AuditService, verdicts: AuditVerdicts): FastifyPluginAsyncZod =>
  async (app) => {
    app.addHook('preHandler', app.requireAdmin);
    const tags = ['admin: audit'];

    app.get(
      '/admin/api/audit',
      { schema: { tags, summary: 'Audit events, newest first (filters, pagination)', querystring: AuditQuerySchema, response: { 200: AuditListSchema, ...errorResponses } } },
      async (request) => {
        const { items, total } = await audit.list(request.query);
        return { items: items.map(toApi), total };
      },
    );

    app.get(
      '/admin/api/audit/verify',
      {
        schema: {
          tags,
          summary: 'Recompute the hash chain; with a checkpoint (seq + hash) also detect truncation or a rewritten history',
          description: 'A full walk of the chain. Its verdict is recorded: /admin/api/rotation_status reports the last one instead of walking the chain.',
          querystring: AuditVerifyQuerySchema,
          response: { 200: AuditVerifySchema, ...errorResponses },
        },
      },
      async (request) => {
        const { checkpointSeq, checkpointHash } = request.query;
        const checkpoint = checkpointSeq && checkpointHash ? { seq: checkpointSeq, hash: checkpointHash } : undefined;
        return verdicts.verifyAndRecord({ checkpoint, source: 'request' });
      },
    );

    app.get(
      '/admin/api/audit/export',
      {
        schema: {
          tags,
          summary: 'The trail as NDJSON (oldest first), for shipping off-box; the list’s filters narrow it (none: everything)',
          querystring: AuditExportQuerySchema,
        },
      },
      async (request, reply) => {
        const filtered = Object.keys(request.query).length > 0;
        // Streamed page by page: memory stays one page whatever the size of the trail. A database
        // failure after the first bytes ends the download early (the client sees a cut transfer).
        async function* lines() {
          for await (const page of audit.pages(request.query)) yield `${page.map((r) => JSON.stringify(toApi(r))).join('\n')}\n`;
        }
        return reply
          .type('application/x-ndjson; charset=utf-8')
          .header('content-disposition', `attachment; filename="keyturn-audit${filtered ? '-filtered' : ''}.ndjson"`)
          .header('cache-control', 'no-store')
          .send(Readable.from(lines()));
      },
    );
  };
