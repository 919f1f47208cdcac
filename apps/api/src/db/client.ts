import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { type SQL, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import type { Config } from '../config';
import { openDurablePglite } from './pglite-durable';
import { MIGRATION_LOCK, migrateAsOwner } from './roles';
import { retryTransactions } from './retry';
import * as schema from './schema';

/** One database type for both drivers (PGlite embedded, node-postgres pool). */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
/** A transaction handle is a Db as far as repos care; inside one, use only it. */
export type Tx = Db;
export type DbOrTx = Db;

/**
 * How a commit reaches the disk (db/README.md): `fsync` — embedded PGlite on disk, COMMIT returns
 * after fsync(2) of its WAL (the default); `page-cache` — PGlite with PGLITE_FSYNC=off, COMMIT
 * returns once the OS page cache has it (a crash of the machine may lose recent commits);
 * `memory` — in-memory PGlite (tests); `server` — Postgres, whose own settings decide.
 */
export type Durability = 'fsync' | 'page-cache' | 'memory' | 'server';

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  durability: Durability;
  /** fsync(2) calls the embedded database has made since it opened (0 unless durability is `fsync`). */
  readonly fsyncs: number;
  /** Raw rows of a statement, on whichever driver. */
  rows<T = Record<string, unknown>>(q: SQL, tx?: DbOrTx): Promise<T[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** node-postgres pool (postgres only), for pool metrics. */
  pool?: pg.Pool;
  /** Postgres only: migrations run as this URL's role (MIGRATION_DATABASE_URL; see roles.ts). */
  migrationDatabaseUrl?: string;
}

/**
 * A fair per-user gate in front of the user's key row (RELIABILITY F2, E5). Row-level FOR SHARE
 * lockers never queue behind a waiting FOR UPDATE, so overlapping secret writes of one user could
 * starve that user's rotation indefinitely. Advisory locks do queue: secret writes take this
 * shared, key-row lockers (rotation, finalize, restore) exclusive, each before the row lock.
 */
export const userKeyGate = (userId: string, mode: 'shared' | 'exclusive'): SQL =>
  mode === 'shared'
    ? sql`select pg_advisory_xact_lock_shared(727274004::int, hashtext(${userId}::text))`
    : sql`select pg_advisory_xact_lock(727274004::int, hashtext(${userId}::text))`;

/** Serialises the recovery requests of one account (modules/recovery README V1): supersede, then insert. */
export const recoveryRequestGate = (userId: string): SQL => sql`select pg_advisory_xact_lock(727274005::int, hashtext(${userId}::text))`;

/**
 * True when a statement failed on a unique constraint or index (SQLSTATE 23505). Drizzle wraps
 * driver errors ("Failed query: …"), so the code is on the error or on its cause; both drivers
 * (node-postgres, PGlite) report it the same way.
 */
export function isUniqueViolation(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    if ((cur as { code?: unknown }).code === '23505') return true;
  }
  return false;
}

/**
 * Statements prepared once per database handle (the pool's, never a transaction's): Drizzle
 * builds their SQL once and node-postgres parses each once per connection (named statements).
 * For the per-request hot paths, where building a query costs more than running it.
 */
export function preparedPerDb<T>(build: (db: Db) => T): (db: Db) => T {
  const cache = new WeakMap<Db, T>();
  return (db) => {
    let p = cache.get(db);
    if (p === undefined) {
      p = build(db);
      cache.set(db, p);
    }
    return p;
  };
}

export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, 'migrations');

export async function rowsOf<T>(db: DbOrTx, q: SQL): Promise<T[]> {
  const res = (await db.execute(q)) as unknown as { rows: T[] };
  return res.rows;
}

export interface OpenDbOptions {
  databaseUrl?: string;
  dataDir: string;
  /** PGlite in memory (tests). */
  inMemory?: boolean;
  /**
   * PGlite only: start from a data-directory snapshot (`PGlite#dumpDataDir`) instead of running
   * initdb, e.g. an already-migrated template; seconds faster than a fresh cluster.
   */
  loadDataDir?: Blob;
  poolSize?: number;
  /** On-disk PGlite only: fsync every commit (default true; PGLITE_FSYNC=off turns it off). */
  fsync?: boolean;
  /** Postgres only: the owner role migrations run as (MIGRATION_DATABASE_URL). */
  migrationDatabaseUrl?: string;
}

/** openDatabase's options as the configuration sets them (server, CLI, bench). */
export const databaseOptions = (config: Pick<Config, 'DATABASE_URL' | 'MIGRATION_DATABASE_URL' | 'DATA_DIR' | 'PGLITE_FSYNC'>): OpenDbOptions => ({
  databaseUrl: config.DATABASE_URL,
  migrationDatabaseUrl: config.MIGRATION_DATABASE_URL,
  dataDir: config.DATA_DIR,
  fsync: config.PGLITE_FSYNC === 'on',
});

/** One start-up line on what a COMMIT means for this database. */
export function durabilityNote(d: Durability): string {
  switch (d) {
    case 'fsync':
      return 'embedded database (PGlite): every commit is fsynced to disk before it is acknowledged';
    case 'page-cache':
      return 'embedded database (PGlite) WITHOUT fsync (PGLITE_FSYNC=off): a commit is acknowledged once it is in the OS page cache; a power loss or OS crash can lose the latest commits or corrupt the database';
    case 'memory':
      return 'in-memory database: nothing is kept';
    case 'server':
      return 'Postgres: commits are as durable as the server is configured (fsync, synchronous_commit)';
  }
}

export async function openDatabase(opts: OpenDbOptions): Promise<Database> {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: 10_000,
      idle_in_transaction_session_timeout: 120_000,
    });
    pool.on('error', () => {
      /* a dropped idle client is replaced on next checkout; the query that needed it reports */
    });
    const db = drizzlePg(pool, { schema }) as unknown as Db;
    // Deadlock and serialization victims run again (retry.ts); PGlite, one connection, has none.
    retryTransactions(db);
    return {
      db,
      kind: 'postgres',
      durability: 'server',
      fsyncs: 0,
      pool,
      ...(opts.migrationDatabaseUrl ? { migrationDatabaseUrl: opts.migrationDatabaseUrl } : {}),
      rows: (q, tx) => rowsOf(tx ?? db, q),
      ping: async () => {
        await pool.query('select 1');
      },
      close: () => pool.end(),
    };
  }
  let client: PGlite;
  let durability: Durability = 'memory';
  let fsyncs = () => 0;
  if (opts.inMemory) client = new PGlite(opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {});
  else {
    const dir = path.join(opts.dataDir, 'pgdata');
    mkdirSync(dir, { recursive: true });
    if (opts.fsync === false) {
      client = new PGlite(dir);
      durability = 'page-cache';
    } else {
      ({ client, fsyncs } = await openDurablePglite(dir));
      durability = 'fsync';
    }
  }
  await client.waitReady;
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    durability,
    get fsyncs() {
      return fsyncs();
    },
    rows: (q, tx) => rowsOf(tx ?? db, q),
    ping: async () => {
      await client.query('select 1');
    },
    close: () => client.close(),
  };
}

/**
 * Apply committed migrations (idempotent). On Postgres an advisory lock serialises instances; with
 * a migration role they run as that role, and the app's role gets its privileges (roles.ts).
 */
export async function runMigrations(database: Database): Promise<void> {
  if (database.kind === 'pglite') {
    await migratePglite(database.db as never, { migrationsFolder: MIGRATIONS_DIR });
    return;
  }
  if (database.migrationDatabaseUrl) {
    await migrateAsOwner(database.pool!, database.migrationDatabaseUrl, MIGRATIONS_DIR);
    return;
  }
  const client = await database.pool!.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await migratePg(database.db as never, { migrationsFolder: MIGRATIONS_DIR });
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    client.release();
  }
}

/** True when every committed migration is applied (for /readyz). */
export async function migrationsCurrent(database: Database): Promise<boolean> {
  const { readFileSync } = await import('node:fs');
  const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_DIR, 'meta/_journal.json'), 'utf8')) as { entries: unknown[] };
  try {
    const r = await database.rows<{ n: number }>(sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
    return (r[0]?.n ?? 0) >= journal.entries.length;
  } catch {
    return false;
  }
}
