import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { bytea, tsz, users } from './users';

/** One row carries a rotation's whole lifecycle (DESIGN §3); every transition is timestamped. */
export const rotationTokens = pgTable(
  'rotation_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    status: text('status').notNull(),
    /** 'rotation' (the user's own request) or 'recovery' (the rotation a completed account recovery ran). */
    kind: text('kind', { enum: ['rotation', 'recovery'] }).notNull().default('rotation'),
    reason: text('reason').notNull(),
    fromKeyVersion: integer('from_key_version').notNull(),
    toKeyVersion: integer('to_key_version'),
    createdAt: tsz('created_at').notNull().defaultNow(),
    approvedAt: tsz('approved_at'),
    approvedBy: uuid('approved_by').references(() => users.id),
    selfApproved: boolean('self_approved').notNull().default(false),
    /** Approval + TOKEN_TTL_SECONDS, from the database clock. */
    expiresAt: tsz('expires_at'),
    /** SHA-256 of the temporary password, bound to this token id. Never the password. */
    tempHash: bytea('temp_hash'),
    /** Wrong temporary passwords; incremented atomically; at the cap the token is revoked. */
    failedAttempts: integer('failed_attempts').notNull().default(0),
    decidedAt: tsz('decided_at'),
    decidedBy: uuid('decided_by').references(() => users.id),
    decisionNote: text('decision_note'),
    /** in_progress lock: when and by which API instance/request it was claimed. */
    lockedAt: tsz('locked_at'),
    lockOwner: text('lock_owner'),
    completedAt: tsz('completed_at'),
    secretsReencrypted: integer('secrets_reencrypted'),
    /** SHA-256 over the user's secret rows as committed; restore refuses if they changed since. */
    resultDigest: bytea('result_digest'),
    failedAt: tsz('failed_at'),
    failureReason: text('failure_reason'),
    finalizedAt: tsz('finalized_at'),
    finalizedBy: uuid('finalized_by').references(() => users.id),
    rolledBackAt: tsz('rolled_back_at'),
    rolledBackBy: uuid('rolled_back_by').references(() => users.id),
    endedAt: tsz('ended_at'),
    updatedAt: tsz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    // The database enforces DESIGN §3: at most one open token per user.
    uniqueIndex('rotation_tokens_one_open_per_user')
      .on(t.userId)
      .where(sql`status in ('pending', 'approved', 'in_progress')`),
    index('rotation_tokens_user_idx').on(t.userId),
    index('rotation_tokens_status_idx').on(t.status),
    index('rotation_tokens_approved_by_idx').on(t.approvedBy),
    index('rotation_tokens_decided_by_idx').on(t.decidedBy),
    index('rotation_tokens_finalized_by_idx').on(t.finalizedBy),
    index('rotation_tokens_rolled_back_by_idx').on(t.rolledBackBy),
  ],
);

/**
 * The pre-rotation key row, written inside the rotation's transaction: one row per rotation with
 * secret_id null and key_snapshot set. The secrets' old ciphertexts are in rotation_backup_chunks.
 * Rotations before migration 0002 also wrote one row here per secret (secret_id, name_ct, value_ct,
 * secret_*_at set); restore still reads those when a token has no chunks.
 */
export const rotationBackups = pgTable(
  'rotation_backups',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tokenId: uuid('token_id')
      .notNull()
      .references(() => rotationTokens.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    secretId: uuid('secret_id'),
    keyVersion: integer('key_version').notNull(),
    nameCt: bytea('name_ct'),
    valueCt: bytea('value_ct'),
    secretCreatedAt: tsz('secret_created_at'),
    secretUpdatedAt: tsz('secret_updated_at'),
    keySnapshot: jsonb('key_snapshot').$type<Record<string, unknown>>(),
    createdAt: tsz('created_at').notNull().defaultNow(),
  },
  (t) => [index('rotation_backups_token_idx').on(t.tokenId), index('rotation_backups_user_idx').on(t.userId)],
);

/**
 * The secrets as they were before a rotation, packed: chunk i holds the old rows of the rotation's
 * batch i (format: packages/shared/src/rotation/backup-chunk.ts), packed by the database in the
 * same statement as that batch's UPDATE, inside the rotation's transaction. `data` is stored EXTERNAL
 * (uncompressed: ciphertext does not compress), set by hand in migration 0002.
 */
export const rotationBackupChunks = pgTable(
  'rotation_backup_chunks',
  {
    tokenId: uuid('token_id')
      .notNull()
      .references(() => rotationTokens.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    chunk: integer('chunk').notNull(),
    rowCount: integer('row_count').notNull(),
    data: bytea('data').notNull(),
    createdAt: tsz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tokenId, t.chunk] }), index('rotation_backup_chunks_user_idx').on(t.userId)],
);
