/**
 * Helpers for the real-Postgres suites in this folder (RELIABILITY rows C4–C10, E1, E5, E6, F2,
 * F4, G5). Every suite makes a fresh database of its own on the run's Postgres server, and may
 * put several in-process apps (each with its own pool) or several real API processes on it: the
 * races these files prove are settled by the database, so they need more than one connection and
 * more than one instance, which PGlite cannot give.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { aad, openText, sealText, unlockKeyMaterial, wipe } from '@keyturn/shared/crypto';
import { type SQL, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { inject } from 'vitest';
import { type BuildAppDeps, buildApp } from '../../src/app';
import { type Config, loadConfig } from '../../src/config';
import { type Database, openDatabase, runMigrations } from '../../src/db/client';
import { api, json, type TestUser } from '../harness';
import { freePort } from '../support/net';

export { sleep };

/**
 * The server the suites make their databases on (global-setup.ts: TEST_DATABASE_URL's, else a
 * throw-away embedded server); unset → every suite here is skipped, and the run says so loudly.
 */
export const PG_SERVER_URL = inject('pgServerUrl') || undefined;

/** describe.skipIf's name: says why the suite did not run. */
export const pgSuiteName = (name: string) =>
  PG_SERVER_URL ? `${name} [postgres]` : `${name} [postgres: skipped, ${inject('pgSkipReason') || 'no Postgres server'}]`;

export const API_DIR = path.resolve(import.meta.dirname, '../..');

// ---------------------------------------------------------------------------------------------
// a fresh database per suite

export interface FreshDatabase {
  name: string;
  url: string;
  /** A small pool of the test's own, for looking at rows (not one of the apps' pools). */
  observer: Database;
  drop(): Promise<void>;
}

async function onServer<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_SERVER_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** CREATE DATABASE kt_pg_<random>, migrated; dropped WITH (FORCE) by drop(). */
export async function createFreshDatabase(): Promise<FreshDatabase> {
  if (!PG_SERVER_URL) throw new Error('no Postgres server in this run (see the POSTGRES SKIPPED banner)');
  const name = `kt_pg_${randomBytes(8).toString('hex')}`;
  await onServer((c) => c.query(`CREATE DATABASE "${name}"`));
  const u = new URL(PG_SERVER_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const observer = await openDatabase({ databaseUrl: url, dataDir: os.tmpdir(), poolSize: 3 });
  await runMigrations(observer);
  return {
    name,
    url,
    observer,
    drop: async () => {
      await observer.close().catch(() => {});
      await onServer((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// in-process apps on a shared database

/** Every SQL statement a pool sent, counted at the driver (pool.query goes through client.query). */
export interface StatementCounter {
  count: number;
  texts: string[];
  reset(): void;
}

function countStatements(pool: pg.Pool): StatementCounter {
  const counter: StatementCounter = {
    count: 0,
    texts: [],
    reset() {
      counter.count = 0;
      counter.texts = [];
    },
  };
  pool.on('connect', (client) => {
    const original = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const q = args[0];
      counter.count++;
      counter.texts.push(typeof q === 'string' ? q : String((q as { text?: string } | undefined)?.text ?? ''));
      return original(...args);
    };
  });
  return counter;
}

export interface PgApp {
  app: FastifyInstance;
  database: Database;
  config: Config;
  statements: StatementCounter;
  close(): Promise<void>;
}

export interface StartAppOptions {
  /** Apps that share a database share the JWT secret, like instances behind one load balancer. */
  jwtSecret: string;
  env?: Record<string, string>;
  deps?: Partial<Omit<BuildAppDeps, 'config' | 'database' | 'logStream'>>;
  poolSize?: number;
}

/** One in-process API instance on an existing database (its own pool, its own instance id). */
export async function startApp(url: string, opts: StartAppOptions): Promise<PgApp> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keyturn-pg-'));
  const config = loadConfig({
    DATA_DIR: dataDir,
    DATABASE_URL: url,
    JWT_SECRET: opts.jwtSecret,
    LOG_LEVEL: 'warn',
    MAINTENANCE_INTERVAL_SECONDS: '0',
    WEB_DIST_DIR: path.join(dataDir, 'no-web-build'),
    RATE_LIMIT_PER_MINUTE: '1000000',
    AUTH_RATE_LIMIT_PER_MINUTE: '1000000',
    ...opts.env,
  });
  const database = await openDatabase({ databaseUrl: url, dataDir, poolSize: opts.poolSize ?? 5 });
  const statements = countStatements(database.pool!);
  let app: FastifyInstance | undefined;
  const close = async () => {
    await app?.close().catch(() => {});
    await database.close().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await runMigrations(database);
    // Warnings and errors still reach the test output; a 5xx is asserted on separately.
    app = await buildApp({ ...opts.deps, config, database });
    await app.ready();
  } catch (e) {
    await close();
    throw e;
  }
  return { app, database, config, statements, close };
}

// ---------------------------------------------------------------------------------------------
// looking at rows

/** Rows of a parameterised statement (drizzle `sql` template). */
export const rows = <T = Record<string, unknown>>(database: Database, q: SQL) => database.rows<T>(q);

export async function one<T = Record<string, unknown>>(database: Database, q: SQL): Promise<T> {
  const [r] = await database.rows<T>(q);
  if (!r) throw new Error('expected one row');
  return r;
}

export async function keyVersionOf(database: Database, userId: string): Promise<number> {
  const r = await one<{ kv: number }>(database, sql`select key_version as kv from user_keys where user_id = ${userId}::uuid`);
  return Number(r.kv);
}

export async function tokenRow(database: Database, tokenId: string) {
  return one<{ status: string; failed_attempts: number; failure_reason: string | null; from_key_version: number; to_key_version: number | null; decision_note: string | null }>(
    database,
    sql`select status, failed_attempts, failure_reason, from_key_version, to_key_version, decision_note from rotation_tokens where id = ${tokenId}::uuid`,
  );
}

/** Audit events with this action (and outcome) for one rotation token. */
export async function auditCount(database: Database, action: string, tokenId: string, outcome = 'success'): Promise<number> {
  const r = await one<{ n: number }>(
    database,
    sql`select count(*)::int as n from audit_events where action = ${action} and target = ${`rotation:${tokenId}`} and outcome = ${outcome}`,
  );
  return Number(r.n);
}

// ---------------------------------------------------------------------------------------------
// flows

export interface Approved {
  tokenId: string;
  tempPassword: string;
}

/** The user asks, an admin approves (fresh password): the token is `approved`. */
export async function requestAndApprove(app: FastifyInstance, user: TestUser, admin: TestUser, adminApp: FastifyInstance = app): Promise<Approved> {
  const req = await api(app, user).post('/api/request_key_rotation', { reason: 'race test' });
  if (req.statusCode !== 201) throw new Error(`request: ${req.statusCode} ${req.body}`);
  const tokenId = json<{ id: string }>(req).id;
  const ap = await api(adminApp, admin).post(`/admin/api/approve_rotation/${tokenId}`, { adminPassword: admin.password });
  if (ap.statusCode !== 200) throw new Error(`approve: ${ap.statusCode} ${ap.body}`);
  return { tokenId, tempPassword: json<{ tempPassword: string }>(ap).tempPassword };
}

/** A temporary password of the right shape that is not the right one. */
export const wrongTempPassword = () => (randomBytes(16).toString('hex').toUpperCase().match(/.{4}/g) ?? []).join('-');

// ---------------------------------------------------------------------------------------------
// seeding many secrets fast: sealed with the user's real DEK, one INSERT … unnest per chunk

export interface SeededSecret {
  id: string;
  name: string;
  value: string;
}

/**
 * Opens the user's DEK from their key row and password (the crypto core, as login would), seals
 * `count` secrets under it with the AAD of their (user, secret, key version), and inserts them
 * with a few bulk statements: what N API calls would store, without N argon2-free round trips.
 */
export async function seedSecrets(url: string, userId: string, password: string, count: number, label = 'bulk'): Promise<SeededSecret[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows: keyRows } = await client.query(
      'select key_version, kdf_salt, kdf_params, auth_hash, wrapped_dek, dek_kcv from user_keys where user_id = $1',
      [userId],
    );
    const k = keyRows[0];
    if (!k) throw new Error(`no key row for ${userId}`);
    const kv = Number(k.key_version);
    const unlocked = await unlockKeyMaterial(userId, password, {
      keyVersion: kv,
      kdfSalt: k.kdf_salt,
      kdfParams: k.kdf_params,
      authHash: k.auth_hash,
      wrappedDek: k.wrapped_dek,
      dekKcv: k.dek_kcv,
    });
    if (!unlocked.ok) throw new Error(`cannot unlock the DEK: ${unlocked.reason}`);
    const out: SeededSecret[] = [];
    try {
      const CHUNK = 5000;
      for (let start = 0; start < count; start += CHUNK) {
        const ids: string[] = [];
        const names: Buffer[] = [];
        const values: Buffer[] = [];
        for (let i = start; i < Math.min(count, start + CHUNK); i++) {
          const s = { id: randomUUID(), name: `${label}-${i}`, value: `${label}-value-${i}-${randomBytes(6).toString('hex')}` };
          ids.push(s.id);
          names.push(sealText(unlocked.dek, s.name, aad.secretName(userId, s.id, kv)));
          values.push(sealText(unlocked.dek, s.value, aad.secretValue(userId, s.id, kv)));
          out.push(s);
        }
        await client.query(
          `insert into secrets (id, user_id, key_version, name_ct, value_ct)
           select v.id, $4::uuid, $5::int, v.n, v.v from unnest($1::uuid[], $2::bytea[], $3::bytea[]) as v(id, n, v)`,
          [ids, names, values, userId, kv],
        );
      }
    } finally {
      wipe(unlocked.dek, unlocked.kek);
    }
    return out;
  } finally {
    await client.end();
  }
}

/** Opens a stored secret row with a DEK recovered from the password (checks I1 from outside the API). */
export async function openSecretRow(url: string, userId: string, password: string, secretId: string): Promise<{ name: string; value: string; keyVersion: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows: [k] } = await client.query(
      'select key_version, kdf_salt, kdf_params, auth_hash, wrapped_dek, dek_kcv from user_keys where user_id = $1',
      [userId],
    );
    const unlocked = await unlockKeyMaterial(userId, password, {
      keyVersion: Number(k.key_version),
      kdfSalt: k.kdf_salt,
      kdfParams: k.kdf_params,
      authHash: k.auth_hash,
      wrappedDek: k.wrapped_dek,
      dekKcv: k.dek_kcv,
    });
    if (!unlocked.ok) throw new Error(`cannot unlock the DEK: ${unlocked.reason}`);
    try {
      const { rows: [s] } = await client.query('select key_version, name_ct, value_ct from secrets where id = $1 and user_id = $2', [secretId, userId]);
      const kv = Number(s.key_version);
      return {
        keyVersion: kv,
        name: openText(unlocked.dek, s.name_ct, aad.secretName(userId, secretId, kv)),
        value: openText(unlocked.dek, s.value_ct, aad.secretValue(userId, secretId, kv)),
      };
    } finally {
      wipe(unlocked.dek, unlocked.kek);
    }
  } finally {
    await client.end();
  }
}

/** n distinct random elements of xs. */
export function sample<T>(xs: T[], n: number): T[] {
  const copy = [...xs];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = randomBytes(4).readUInt32BE(0) % (i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, n);
}

/** Poll until fn returns a truthy value (or throw after timeoutMs). */
export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000, everyMs = 20): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// real API processes (node --import tsx src/server.ts)

export interface ServerProcess {
  name: string;
  pid: number;
  base: string;
  child: ChildProcess;
  output(): string;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}


/** Starts one API process and waits for /readyz; its stdout/stderr are kept for failure messages. */
export async function spawnServer(name: string, env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `keyturn-proc-${name}-`));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: API_DIR,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? os.tmpdir(),
      TMPDIR: process.env.TMPDIR ?? os.tmpdir(),
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      INSTANCE_ID: name,
      WEB_DIST_DIR: path.join(dataDir, 'no-web-build'),
      RATE_LIMIT_PER_MINUTE: '1000000',
      AUTH_RATE_LIMIT_PER_MINUTE: '1000000',
      MAINTENANCE_INTERVAL_SECONDS: '0',
      AUDIT_VERIFY_INTERVAL_SECONDS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      rmSync(dataDir, { recursive: true, force: true });
      resolve(code);
    });
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const base = `http://127.0.0.1:${port}`;
  const proc: ServerProcess = {
    name,
    pid: child.pid!,
    base,
    child,
    output: () => out,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (gone) return;
      process.kill(child.pid!, signal);
      await Promise.race([exited, sleep(15_000)]);
    },
  };
  try {
    await waitFor(
      `${name} /readyz`,
      async () => {
        if (gone) throw new Error(`${name} exited during start-up:\n${out}`);
        try {
          const r = await fetch(`${base}/readyz`);
          return r.status === 200;
        } catch {
          return false;
        }
      },
      45_000,
      100,
    );
  } catch (e) {
    await proc.kill('SIGKILL');
    throw e;
  }
  return proc;
}

export interface HttpAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** JSON over real HTTP to a server process. */
export async function http<T = Record<string, unknown>>(base: string, method: string, url: string, body?: unknown, token?: string): Promise<HttpAnswer<T>> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, body: parsed as T };
}

export const errorCode = (body: unknown): string | undefined => (body as { error?: { code?: string } } | undefined)?.error?.code;
