/**
 * The benchmark's database: a fresh one per run (a new PGlite data directory, or a new database
 * on the Postgres server DATABASE_URL points at, dropped afterwards), and the parent process's
 * own handle on it: the in-process app (used only to create the admin and users) and a raw
 * connection for seeding and for the floor and baseline pipelines.
 *
 * PGlite is one process's: the parent closes its handle before the API child opens the same
 * data directory, and opens it again after the child stopped.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { PGlite } from '@electric-sql/pglite';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildApp } from '../../src/app';
import { type Config, loadConfig } from '../../src/config';
import { type Database, databaseOptions, openDatabase, runMigrations } from '../../src/db/client';
import { copyIn } from './copy';

/** One connection, raw SQL: node-postgres client or the PGlite instance. */
export interface RawConn {
  /** Rows as arrays of column values (bytea as Buffer/Uint8Array). */
  rows(text: string, params?: unknown[]): Promise<unknown[][]>;
  exec(text: string, params?: unknown[], name?: string): Promise<void>;
  copyIn(target: string, payload: Buffer): Promise<number>;
}

export interface Parent {
  readonly database: Database;
  readonly app: FastifyInstance;
  readonly config: Config;
  /** A dedicated connection (for the duration of fn). */
  withConn<T>(fn: (c: RawConn) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface Backend {
  readonly kind: 'pglite' | 'postgres';
  /** Environment for the API child (and the parent's config): database, secrets, limits. */
  readonly env: Record<string, string>;
  /** Where the database lives (server URL without credentials, or the data directory). */
  readonly where: string;
  readonly serverVersion: () => Promise<string>;
  open(): Promise<Parent>;
  destroy(): Promise<void>;
}

const quietStream = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

export interface BackendOptions {
  /** A Postgres server: the run gets a database of its own on it. Unset: PGlite. */
  serverUrl?: string;
  extraEnv?: Record<string, string>;
  /** PGlite only: a data-directory snapshot (`dumpDataDir`) to start from instead of initdb. */
  pgliteTemplate?: Blob;
}

export async function createBackend(opts: BackendOptions): Promise<Backend> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keyturn-bench-'));
  if (!opts.serverUrl && opts.pgliteTemplate) {
    const db = new PGlite(path.join(dataDir, 'pgdata'), { loadDataDir: opts.pgliteTemplate });
    await db.waitReady;
    await db.close();
  }
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    JWT_SECRET: randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'warn',
    // The global and auth rate limits (300 and 30 per minute) would turn a load test into a 429
    // test. The limiter still runs on every request; only its ceilings are raised.
    RATE_LIMIT_PER_MINUTE: '100000000',
    AUTH_RATE_LIMIT_PER_MINUTE: '100000000',
    // The login burst signs one account in many times at once: each attempt in flight holds one
    // of the account's throttle slots (LOGIN_MAX_FAILURES, auth README A5), so the cap is raised
    // above the burst for the same reason.
    LOGIN_MAX_FAILURES: '100',
    MAINTENANCE_INTERVAL_SECONDS: '0',
    ...opts.extraEnv,
  };
  let dbName: string | null = null;
  let adminUrl: string | null = null;
  if (opts.serverUrl) {
    adminUrl = opts.serverUrl;
    dbName = `bench_${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}_${randomBytes(3).toString('hex')}`;
    await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE "${dbName}"`));
    const u = new URL(opts.serverUrl);
    u.pathname = `/${dbName}`;
    env.DATABASE_URL = u.toString();
  }
  const kind = opts.serverUrl ? 'postgres' : 'pglite';
  let migrated = false;

  const backend: Backend = {
    kind,
    env,
    where: opts.serverUrl ? redact(env.DATABASE_URL!) : path.join(dataDir, 'pgdata'),
    async serverVersion() {
      if (kind === 'pglite') return 'PGlite';
      return withAdmin(env.DATABASE_URL!, async (c) => (await c.query('select version() as v')).rows[0].v as string);
    },
    async open() {
      const config = loadConfig(env);
      const database = await openDatabase({ ...databaseOptions(config), poolSize: 4 });
      if (!migrated) {
        await runMigrations(database);
        migrated = true;
      }
      const app = await buildApp({ config, database, logStream: quietStream() });
      await app.ready();
      const withConn = async <T>(fn: (c: RawConn) => Promise<T>): Promise<T> => {
        if (database.kind === 'pglite') {
          const client = (database.db as unknown as { $client: PGlite }).$client;
          return fn({
            rows: async (text, params) => (await client.query<unknown[]>(text, params, { rowMode: 'array' })).rows,
            exec: async (text, params) => {
              if (params) await client.query(text, params);
              else await client.exec(text);
            },
            copyIn: (target, payload) => copyIn(client, target, payload),
          });
        }
        const client = await database.pool!.connect();
        try {
          return await fn({
            rows: async (text, params) => (await client.query({ text, values: params ?? [], rowMode: 'array' })).rows as unknown[][],
            exec: async (text, params, name) => {
              await client.query(name ? { name, text, values: params ?? [] } : { text, values: params ?? [] });
            },
            copyIn: (target, payload) => copyIn(client, target, payload),
          });
        } finally {
          client.release();
        }
      };
      return {
        database,
        app,
        config,
        withConn,
        async close() {
          await app.close();
          await database.close();
        },
      };
    },
    async destroy() {
      if (adminUrl && dbName) {
        await withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`)).catch(() => {});
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return backend;
}

async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
