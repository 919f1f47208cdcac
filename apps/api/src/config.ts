import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KDF_CEILING, KDF_FLOOR, SETUP_CODE_MIN_CHARS, setupCodeStrongEnough } from '@keyturn/shared/crypto';
import { z } from 'zod';

/** The repository root (apps/api/src → ../../..), so `./data` means the same thing from anywhere. */
export const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

const seconds = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

/**
 * Every environment variable Keyturn reads, with its default. This module is the only reader of
 * process.env; everything else receives the parsed Config.
 */
export const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z.string().url().optional(),
  // An owner role for migrations only; DATABASE_URL's role then owns nothing (db/roles.ts, RELIABILITY G4).
  MIGRATION_DATABASE_URL: z.string().url().optional(),
  DATA_DIR: z.string().min(1).default(path.join(REPO_ROOT, 'data')),
  // Embedded PGlite only: `on` fsyncs every commit to disk; `off` trades crash safety for speed (db/README.md).
  PGLITE_FSYNC: z.enum(['on', 'off']).default('on'),
  SETUP_CODE: z
    .string()
    .max(200)
    .refine(setupCodeStrongEnough, `SETUP_CODE is too weak: use at least ${SETUP_CODE_MIN_CHARS} random characters of 0-9 and A-Z, dashes and spaces aside (e.g. \`openssl rand -hex 16\`)`)
    .optional(),
  JWT_SECRET: z.string().min(32, 'JWT_SECRET must be at least 32 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  WEB_DIST_DIR: z.string().default(path.join(REPO_ROOT, 'apps/web/dist')),
  SESSION_TTL_SECONDS: seconds(8 * 3600, 60),
  TOKEN_TTL_SECONDS: seconds(86_400, 1),
  PENDING_TTL_SECONDS: seconds(7 * 86_400, 1),
  LOCK_TIMEOUT_SECONDS: seconds(600, 1),
  BACKUP_RETENTION_SECONDS: seconds(7 * 86_400, 0),
  // A completed rotation can be restored for this long after it completed; cleanup then purges
  // its backup (old ciphertexts and key row) whether or not anyone finalized it.
  RESTORE_WINDOW_SECONDS: seconds(7 * 86_400, 0),
  MAINTENANCE_INTERVAL_SECONDS: seconds(300, 0),
  AUDIT_VERIFY_INTERVAL_SECONDS: seconds(600, 0),
  TEMP_PASSWORD_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
  /** Email notifications (modules/notifications): off unless set, e.g. smtp://user:pass@mail.example.com:587 or smtps://…:465. */
  SMTP_URL: z.string().url().refine((u) => /^smtps?:$/.test(new URL(u).protocol), 'SMTP_URL must be smtp:// or smtps://').optional(),
  MAIL_FROM: z.string().max(254).optional(),
  /** How often each instance's dispatcher looks for due notifications (0: not in this process). */
  NOTIFY_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(3600).default(5),
  /** Deliveries of one notification before it is dead (visible to admins, re-sendable). */
  NOTIFY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  /** A notification older than this is not tried again: dead. */
  NOTIFY_MAX_AGE_SECONDS: seconds(86_400, 60),
  /** Webhook endpoints on loopback, private or link-local addresses are refused unless `true` (SSRF guard; development and tests). */
  WEBHOOK_ALLOW_PRIVATE: z.enum(['true', 'false']).default('false'),
  /** Account recovery (modules/recovery): life of a request (pending from creation, approved from approval). */
  RECOVERY_TTL_SECONDS: seconds(86_400, 60),
  /** Wrong completions of an approved recovery request before it is revoked. */
  RECOVERY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
  SECRET_VALUE_MAX_BYTES: z.coerce.number().int().min(1).max(900_000).default(65_536),
  ROTATION_BATCH_SIZE: z.coerce.number().int().min(1).max(50_000).default(2_000),
  // The bounds the crypto core enforces (OWASP floor, anti-DoS ceiling): refused here at start-up,
  // naming the variable, rather than at the first sign-in as a generic 500.
  KDF_MEMORY_KIB: z.coerce.number().int().min(KDF_FLOOR.m).max(KDF_CEILING.m).default(19_456),
  KDF_ITERATIONS: z.coerce.number().int().min(1).max(KDF_CEILING.t).default(2),
  KDF_PARALLELISM: z.coerce.number().int().min(1).max(KDF_CEILING.p).default(1),
  // Concurrent argon2id derivations per process; more wait their turn. 0: one fewer than the cores (at least 1).
  KDF_MAX_CONCURRENCY: z.coerce.number().int().min(0).max(256).default(0),
  // Derivations allowed to wait for a slot; past it, 503 with Retry-After (no unbounded queue).
  KDF_MAX_QUEUE: z.coerce.number().int().min(0).max(100_000).default(64),
  LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).max(100).default(10),
  LOGIN_LOCK_SECONDS: seconds(900, 1),
  ADMIN_REAUTH_MAX_FAILURES: z.coerce.number().int().min(1).max(100).default(5),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(300),
  // Where the per-client request counters live: auto = in Postgres when DATABASE_URL is set (so
  // every instance counts together), in memory on the embedded database (one process).
  RATE_LIMIT_STORE: z.enum(['auto', 'memory', 'database']).default('auto'),
  AUTH_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(30),
  TRUST_PROXY: z.string().optional(),
  COOKIE_SECURE: z.enum(['auto', 'true', 'false']).default('auto'),
  INSTANCE_ID: z.string().max(100).optional(),
  // After SIGTERM/SIGINT the process is gone within this many seconds, whatever is in flight.
  SHUTDOWN_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  // /readyz's verdict and /metrics' database gauges are reused this long: one database round per
  // interval, however many probes and scrapes (0: every call does the round, concurrent ones share it).
  HEALTH_CACHE_SECONDS: z.coerce.number().int().min(0).max(60).default(2),
  // Set: /metrics requires `Authorization: Bearer <METRICS_TOKEN>`.
  METRICS_TOKEN: z.string().min(16, 'METRICS_TOKEN must be at least 16 characters').max(200).optional(),
}).superRefine((e, ctx) => {
  if (e.MIGRATION_DATABASE_URL && !e.DATABASE_URL) {
    ctx.addIssue({ code: 'custom', path: ['MIGRATION_DATABASE_URL'], message: 'needs DATABASE_URL (the embedded database has no roles)' });
  }
  const inBounds = e.KDF_MEMORY_KIB >= KDF_FLOOR.m && e.KDF_ITERATIONS >= 1; // else already named above
  if (inBounds && e.KDF_MEMORY_KIB * e.KDF_ITERATIONS < KDF_FLOOR.mTimesT) {
    ctx.addIssue({ code: 'custom', path: ['KDF_ITERATIONS'], message: `KDF_MEMORY_KIB × KDF_ITERATIONS must be at least ${KDF_FLOOR.mTimesT} (OWASP)` });
  }
});

export type Env = z.infer<typeof EnvSchema>;

export interface Config extends Omit<Env, 'JWT_SECRET' | 'KDF_MEMORY_KIB' | 'KDF_ITERATIONS' | 'KDF_PARALLELISM'> {
  jwtSecret: string;
  kdf: { alg: 'argon2id'; m: number; t: number; p: number };
  instanceId: string;
  usePglite: boolean;
}

export class ConfigError extends Error {}

export interface LoadConfigOptions {
  /**
   * Whether this process signs and checks sessions (default true: the server). The CLI opens
   * none, so it needs no JWT_SECRET on a shared database and writes no generated one.
   */
  sessions?: boolean;
}

/** Parse the environment; a bad value stops start-up with a message naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env, opts: LoadConfigOptions = {}): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const sessions = opts.sessions ?? true;
  if (sessions && e.DATABASE_URL && !e.JWT_SECRET) {
    // A generated secret lives in one instance's DATA_DIR: on a shared database every instance
    // would make its own, and a session signed by one would be refused by the next.
    throw new ConfigError(
      'Invalid configuration:\n  JWT_SECRET: required when DATABASE_URL is set (every instance on the database must sign sessions with the same secret; e.g. `openssl rand -base64 48`)',
    );
  }
  // Relative paths mean the same from every entry point (pnpm scripts run in apps/api): the repo root.
  const dataDir = path.resolve(REPO_ROOT, e.DATA_DIR);
  const { JWT_SECRET, KDF_MEMORY_KIB, KDF_ITERATIONS, KDF_PARALLELISM, ...rest } = e;
  return {
    ...rest,
    DATA_DIR: dataDir,
    WEB_DIST_DIR: path.resolve(REPO_ROOT, e.WEB_DIST_DIR),
    // Without sessions (the CLI) the secret is never used: an unset one stays unset on disk.
    jwtSecret: JWT_SECRET ?? (sessions ? persistedSecret(dataDir) : randomBytes(32).toString('base64url')),
    kdf: { alg: 'argon2id', m: KDF_MEMORY_KIB, t: KDF_ITERATIONS, p: KDF_PARALLELISM },
    instanceId: e.INSTANCE_ID ?? `${process.pid}-${randomBytes(4).toString('hex')}`,
    usePglite: !e.DATABASE_URL,
    KDF_MAX_CONCURRENCY: e.KDF_MAX_CONCURRENCY || Math.max(1, os.availableParallelism() - 1),
  };
}

/** JWT_SECRET unset: generate 256 bits once and keep them in the data directory (mode 0600). */
function persistedSecret(dataDir: string): string {
  const file = path.join(dataDir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return secret;
}
