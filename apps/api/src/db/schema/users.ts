
import { boolean, customType, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

export const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => (Buffer.isBuffer(v) ? v : Buffer.from(v)),
});

export const tsz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Trimmed and lower-cased at the API edge; unique. */
    email: text('email').notNull().unique(),
    role: text('role', { enum: ['user', 'admin'] }).notNull().default('user'),
    disabled: boolean('disabled').notNull().default(false),
    createdAt: tsz('created_at').notNull().defaultNow(),
  },
);

/**
 * One row per user: the *current* key version's material. The previous version's row is copied
 * into rotation_backups by the rotation that replaces it. Every ciphertext column is bound (AAD)
 * to (user, key_version). Secret writes take FOR SHARE on this row; a rotation takes FOR UPDATE.
 */
export const userKeys = pgTable('user_keys', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  keyVersion: integer('key_version').notNull(),
  /** argon2id salt (16 random bytes, new on every rotation) and parameters. */
  kdfSalt: bytea('kdf_salt').notNull(),
  kdfParams: jsonb('kdf_params').$type<{ alg: 'argon2id'; m: number; t: number; p: number }>().notNull(),
  /** SHA-256 of HKDF(master, "auth"): compared in constant time at login. */
  authHash: bytea('auth_hash').notNull(),
  /** The DEK sealed under HKDF(master, "kek"). */
  wrappedDek: bytea('wrapped_dek').notNull(),
  /** HMAC(DEK, "kcv")[0..16]: proves a recovered DEK is the right one. */
  dekKcv: bytea('dek_kcv').notNull(),
  /** The DEK sealed to the AMK public key (HPKE); written at registration and every rotation. */
  adekPending: bytea('adek_pending'),
  /** After an admin finalized: the DEK sealed under a key derived from the AMK private key. */
  adekFinal: bytea('adek_final'),
  adekFinalizedAt: tsz('adek_finalized_at'),
  /** The last self-service password change: a rotation completed before it is not restored (recovery README P4). */
  passwordChangedAt: tsz('password_changed_at'),
  updatedAt: tsz('updated_at').notNull().defaultNow(),
});

/**
 * Failure counters shared by every API instance (sign-in per account, admin re-authentication,
 * setup code). An attempt reserves a slot (`in_flight`) before its argon2 work and settles it
 * after: a failure moves it to `failures`, a success gives it back (modules/auth/README.md A5).
 */
export const throttles = pgTable('throttles', {
  key: text('key').primaryKey(),
  /** Failed attempts in the current window. */
  failures: integer('failures').notNull().default(0),
  /** Attempts reserved and not yet settled (being evaluated). */
  inFlight: integer('in_flight').notNull().default(0),
  windowStartedAt: tsz('window_started_at').notNull().defaultNow(),
  blockedUntil: tsz('blocked_until'),
  /** The last reservation: with none for a whole window, slots still counted in flight were leaked by a crash. */
  lastReservedAt: tsz('last_reserved_at').notNull().defaultNow(),
});

/**
 * Per-client request counters (fixed windows) shared by every API instance: the store of
 * @fastify/rate-limit on Postgres (plugins/rate-limit-store.ts). UNLOGGED (migration 0004): a
 * database crash forgets the current windows, which is harmless.
 */
export const rateLimits = pgTable('rate_limits', {
  key: text('key').primaryKey(),
  windowStartedAt: tsz('window_started_at').notNull(),
  hits: integer('hits').notNull(),
});

export const systemSettings = pgTable('system_settings', {
  key: text('key').primaryKey(),
  value: jsonb('value').notNull(),
  updatedAt: tsz('updated_at').notNull().defaultNow(),
});

export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** The key version this session's DEK belongs to; writes with an old one get KEY_VERSION_STALE. */
    keyVersion: integer('key_version').notNull(),
    /** The DEK sealed under the per-session key, which only the client's token carries. */
    wrappedDek: bytea('wrapped_dek').notNull(),
    /**
     * SHA-256 of the per-session key (bound to the session id): every request proves it holds the
     * key (modules/auth/README.md A8). Null only for sessions made before migration 0004, which
     * that migration revoked.
     */
    keyHash: bytea('key_hash'),
    createdAt: tsz('created_at').notNull().defaultNow(),
    expiresAt: tsz('expires_at').notNull(),
    revokedAt: tsz('revoked_at'),
    revokedReason: text('revoked_reason'),
  },
  (t) => [index('sessions_user_idx').on(t.userId), index('sessions_expires_idx').on(t.expiresAt)],
);

export const amk = pgTable('amk', {
  id: uuid('id').primaryKey().defaultRandom(),
  /** X25519 public key, raw 32 bytes. The private key exists only wrapped, per admin. */
  publicKey: bytea('public_key').notNull(),
  /** Guarantees a single AMK: the only allowed value is true. */
  singleton: boolean('singleton').notNull().default(true).unique(),
  createdAt: tsz('created_at').notNull().defaultNow(),
});

export const amkWraps = pgTable(
  'amk_wraps',
  {
    adminId: uuid('admin_id')
      .primaryKey()
      .references(() => users.id, { onDelete: 'cascade' }),
    amkId: uuid('amk_id')
      .notNull()
      .references(() => amk.id),
    /** The AMK private key sealed under this admin's KEK (AAD: admin + amk). */
    wrappedPrivate: bytea('wrapped_private').notNull(),
    /** The key version of the admin's own keys the wrap belongs to. */
    keyVersion: integer('key_version').notNull(),
    createdAt: tsz('created_at').notNull().defaultNow(),
  },
  (t) => [index('amk_wraps_amk_idx').on(t.amkId)],
);

