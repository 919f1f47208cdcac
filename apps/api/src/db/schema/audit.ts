import { bigint, index, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { tsz } from './users';

/**
 * Append-only and hash-chained: hash = SHA-256(prev_hash | canonical row). A trigger refuses
 * UPDATE, DELETE and TRUNCATE. No foreign keys: the trail outlives what it describes.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey(),
    at: tsz('at').notNull(),
    /** The exact UTC text the hash covers (microseconds), so verification never depends on parsing. */
    atText: text('at_text').notNull(),
    actorId: uuid('actor_id'),
    actorEmail: text('actor_email'),
    role: text('role').notNull(),
    action: text('action').notNull(),
    target: text('target'),
    outcome: text('outcome').notNull(),
    requestId: text('request_id'),
    clientAddress: text('client_address'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [index('audit_events_actor_idx').on(t.actorId), index('audit_events_action_idx').on(t.action), index('audit_events_at_idx').on(t.at)],
);

export const maintenanceRuns = pgTable(
  'maintenance_runs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: text('kind').notNull(),
    at: tsz('at').notNull().defaultNow(),
    instance: text('instance').notNull(),
    changes: jsonb('changes').$type<Record<string, number>>().notNull(),
    settled: jsonb('settled').$type<{ tokenId: string; to: string; reason: string }[]>(),
  },
  (t) => [index('maintenance_runs_kind_at_idx').on(t.kind, t.at)],
);
