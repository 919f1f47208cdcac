import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { rotationTokens } from './rotation';
import { bytea, tsz, users } from './users';

/**
 * Account recovery through the escrow (modules/recovery/README.md). Holds only the requester's
 * recovery *public* key (with its salt and parameters), never a password; `sealed_dek` and
 * `sealed_amk` are HPKE-sealed to that key and exist only while the request is `approved`.
 */
export const recoveryRequests = pgTable(
  'recovery_requests',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    status: text('status').notNull(),
    /** The user's key version when the request was made (and, once approved, of the sealed DEK). */
    keyVersion: integer('key_version').notNull(),
    publicKey: bytea('public_key').notNull(),
    kdfSalt: bytea('kdf_salt').notNull(),
    kdfParams: jsonb('kdf_params').$type<{ alg: 'argon2id'; m: number; t: number; p: number }>().notNull(),
    requesterAddress: text('requester_address'),
    requesterUserAgent: text('requester_user_agent'),
    createdAt: tsz('created_at').notNull().defaultNow(),
    /** Creation + RECOVERY_TTL_SECONDS while pending; approval + RECOVERY_TTL_SECONDS once approved. */
    expiresAt: tsz('expires_at').notNull(),
    approvedAt: tsz('approved_at'),
    approvedBy: uuid('approved_by').references(() => users.id),
    /** Which escrow copy the approval opened: 'final' or 'pending'. */
    escrowSource: text('escrow_source'),
    sealedDek: bytea('sealed_dek'),
    sealedAmk: bytea('sealed_amk'),
    amkId: uuid('amk_id'),
    /** Wrong completions, reserved before each evaluation (V5). */
    failedAttempts: integer('failed_attempts').notNull().default(0),
    decidedAt: tsz('decided_at'),
    decidedBy: uuid('decided_by').references(() => users.id),
    decisionNote: text('decision_note'),
    completedAt: tsz('completed_at'),
    rotationTokenId: uuid('rotation_token_id').references(() => rotationTokens.id),
    failedAt: tsz('failed_at'),
    failureReason: text('failure_reason'),
    /** When the user dismissed "an administrator opened your recovery copy". */
    noticeAckedAt: tsz('notice_acked_at'),
    updatedAt: tsz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    // One open request per account: a new one supersedes the old in the same transaction.
    uniqueIndex('recovery_requests_one_open_per_user')
      .on(t.userId)
      .where(sql`status in ('pending', 'approved')`),
    index('recovery_requests_user_idx').on(t.userId),
    index('recovery_requests_status_idx').on(t.status),
    index('recovery_requests_approved_by_idx').on(t.approvedBy),
    index('recovery_requests_decided_by_idx').on(t.decidedBy),
    index('recovery_requests_rotation_token_idx').on(t.rotationTokenId),
  ],
);
