/**
 * The API test harness (STYLE.md, Tests): every test file builds the real app on a fresh,
 * migrated database and talks to it through `app.inject`. The same describe block runs on PGlite
 * (in memory) and on real Postgres in a database of its own (TEST_DATABASE_URL's server when set,
 * else the throw-away server global-setup.ts starts).
 *
 *   describeBoth('secrets', (backend) => {
 *     const t = useTestApp(backend);
 *     it('…', async () => { const admin = await setupAdmin(t.app); … });
 *   });
 *
 * PGlite apps start from a migrated snapshot made once per run (global-setup.ts); Postgres apps
 * get `CREATE DATABASE kt_test_<random>` on that server, dropped WITH (FORCE) in
 * teardown. Logs are captured at debug level (`t.logs`) so tests can grep them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { ErrorBody, Secret, Session } from '@keyturn/shared';
import { sql } from 'drizzle-orm';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject } from 'vitest';
import { type BuildAppDeps, buildApp } from '../src/app';
import { type Config, loadConfig } from '../src/config';
import { type Database, openDatabase, runMigrations } from '../src/db/client';

export type Backend = 'pglite' | 'postgres';
export type Response = LightMyRequestResponse;

/**
 * The real-Postgres server of this run (global-setup.ts): TEST_DATABASE_URL's when set, else a
 * throw-away embedded server; undefined when neither could be had. Each test app gets a database
 * of its own on it.
 */
export const TEST_DATABASE_URL = inject('pgServerUrl') || undefined;
/** Why there is no Postgres server in this run (shown in the skipped blocks' names). */
const PG_SKIP_REASON = inject('pgSkipReason') || 'no Postgres server';

// ---------------------------------------------------------------------------------------------
// running a block on both backends

/**
 * Runs `fn` as a describe block once on PGlite and once on Postgres. Without a Postgres server
 * (see TEST_DATABASE_URL) the Postgres block is reported as skipped, with the reason in its name.
 */
export function describeBoth(name: string, fn: (backend: Backend) => void): void {
  describe(`${name} [pglite]`, () => fn('pglite'));
  describe.skipIf(!TEST_DATABASE_URL)(
    TEST_DATABASE_URL ? `${name} [postgres]` : `${name} [postgres: skipped, ${PG_SKIP_REASON}]`,
    () => fn('postgres'),
  );
}

// ---------------------------------------------------------------------------------------------
// captured logs

export interface LogCapture {
  /** Every JSON log line written so far. */
  readonly lines: string[];
  text(): string;
  /** Parsed log entries (lines that are not JSON are kept as `{ raw }`). */
  entries(): Record<string, unknown>[];
}

function captureLogs(): LogCapture & { stream: Writable } {
  const lines: string[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      partial += chunk.toString();
      for (let i = partial.indexOf('\n'); i >= 0; i = partial.indexOf('\n')) {
        lines.push(partial.slice(0, i));
        partial = partial.slice(i + 1);
      }
      cb();
    },
  });
  return {
    stream,
    lines,
    text: () => lines.join('\n') + (partial ? `\n${partial}` : ''),
    entries: () =>
      lines.map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return { raw: l };
        }
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// building an app on a fresh database

export interface CreateTestAppOptions {
  backend?: Backend;
  /** Environment overrides, e.g. `{ LOGIN_MAX_FAILURES: '3' }`; merged over the test defaults. */
  env?: Record<string, string>;
  /** Extra buildApp dependencies (clock, rotation fault hooks). */
  deps?: Partial<Omit<BuildAppDeps, 'config' | 'database' | 'logStream'>>;
}

export interface TestApp {
  readonly backend: Backend;
  readonly app: FastifyInstance;
  readonly database: Database;
  readonly config: Config;
  readonly logs: LogCapture;
  /** Closes the app and the database; drops the Postgres database; removes the data dir. */
  close(): Promise<void>;
}

/** A Postgres database made for one test app, dropped (WITH FORCE) in teardown. */
export async function createPostgresDatabase(serverUrl: string): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `kt_test_${randomBytes(8).toString('hex')}`;
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

let templateBlob: Blob | undefined;
/** The migrated PGlite snapshot made by global-setup.ts (read once per worker). */
function pgliteTemplate(): Blob | undefined {
  const file = inject('pgliteTemplate');
  if (!file) return undefined;
  templateBlob ??= new Blob([readFileSync(file)]);
  return templateBlob;
}

export async function createTestApp(opts: CreateTestAppOptions = {}): Promise<TestApp> {
  const backend = opts.backend ?? 'pglite';
  if (backend === 'postgres' && !TEST_DATABASE_URL) throw new Error(`the postgres backend needs a server: ${PG_SKIP_REASON}`);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keyturn-test-'));
  const pgDb = backend === 'postgres' ? await createPostgresDatabase(TEST_DATABASE_URL!) : undefined;
  const logs = captureLogs();
  let database: Database | undefined;
  let app: FastifyInstance | undefined;
  const close = async () => {
    await app?.close().catch(() => {});
    await database?.close().catch(() => {});
    await pgDb?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const config = loadConfig({
      DATA_DIR: dataDir,
      // Fixed for this app, random per app: tests that forge tokens read it from config.jwtSecret.
      JWT_SECRET: randomBytes(32).toString('base64url'),
      LOG_LEVEL: 'debug',
      MAINTENANCE_INTERVAL_SECONDS: '0',
      AUDIT_VERIFY_INTERVAL_SECONDS: '0',
      // No SPA in API tests: unknown routes answer with the JSON error body.
      WEB_DIST_DIR: path.join(dataDir, 'no-web-build'),
      // Every request comes from 127.0.0.1; tests that exercise the limiter set these low.
      RATE_LIMIT_PER_MINUTE: '100000',
      AUTH_RATE_LIMIT_PER_MINUTE: '100000',
      ...(pgDb ? { DATABASE_URL: pgDb.url } : {}),
      ...opts.env,
    });
    const loadDataDir = backend === 'pglite' ? pgliteTemplate() : undefined;
    database = await openDatabase({ databaseUrl: pgDb?.url, dataDir, inMemory: backend === 'pglite', poolSize: 5, ...(loadDataDir ? { loadDataDir } : {}) });
    // Idempotent: a no-op on the migrated template, the real thing on a fresh Postgres database.
    await runMigrations(database);
    app = await buildApp({ ...opts.deps, config, database, logStream: logs.stream });
    await app.ready();
    return { backend, app, database, config, logs, close };
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}

/**
 * One app for the enclosing describe block: built in beforeAll, closed in afterAll. The returned
 * handle's fields are readable inside tests and hooks only.
 */
export function useTestApp(backend: Backend, opts: Omit<CreateTestAppOptions, 'backend'> = {}): TestApp {
  let current: TestApp | undefined;
  beforeAll(async () => {
    current = await createTestApp({ ...opts, backend });
  });
  afterAll(async () => {
    await current?.close();
    current = undefined;
  });
  const get = (): TestApp => {
    if (!current) throw new Error('the test app exists only inside tests and hooks');
    return current;
  };
  return {
    backend,
    get app() {
      return get().app;
    },
    get database() {
      return get().database;
    },
    get config() {
      return get().config;
    },
    get logs() {
      return get().logs;
    },
    close: () => get().close(),
  };
}

// ---------------------------------------------------------------------------------------------
// requests

export type Auth = string | { token: string } | undefined;
type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS';

const tokenOf = (auth: Auth) => (typeof auth === 'string' ? auth : auth?.token);

/** JSON requests through app.inject, with `authorization: Bearer` when a session is given. */
export function api(app: FastifyInstance, auth?: Auth) {
  const token = tokenOf(auth);
  const send = (method: Method, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method,
      url,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  return {
    get: (url: string, headers?: Record<string, string>) => send('GET', url, undefined, headers),
    post: (url: string, payload?: unknown, headers?: Record<string, string>) => send('POST', url, payload, headers),
    put: (url: string, payload?: unknown, headers?: Record<string, string>) => send('PUT', url, payload, headers),
    delete: (url: string, headers?: Record<string, string>) => send('DELETE', url, undefined, headers),
    send,
  };
}

export const json = <T = Record<string, unknown>>(res: Response): T => JSON.parse(res.body) as T;

/** Asserts the one error body shape and status; returns the `error` object. */
export function expectError(res: Response, status: number, code?: string): ErrorBody['error'] {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = json<ErrorBody>(res);
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error).toMatchObject({ code: expect.any(String), message: expect.any(String), requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  if (code) expect(body.error.code).toBe(code);
  return body.error;
}

/** An error body with its request id blanked, to compare two answers byte for byte. */
export const withoutRequestId = (res: Response): string => {
  const body = json<ErrorBody>(res);
  expect(body.error.requestId).toMatch(/^[0-9a-f-]{36}$/);
  return res.body.replace(body.error.requestId, '<request-id>');
};

// ---------------------------------------------------------------------------------------------
// factories

export const uniqueEmail = (prefix = 'user') => `${prefix}-${randomBytes(5).toString('hex')}@example.test`;
/** A password the policy accepts: 22 random characters. */
export const strongPassword = () => `pw-${randomBytes(14).toString('base64url')}`;

export interface TestUser {
  id: string;
  email: string;
  password: string;
  token: string;
  csrfToken: string;
  session: Session;
}

function asUser(res: Response, status: number, password: string): TestUser {
  expect(res.statusCode, res.body).toBe(status);
  const session = json<Session>(res);
  return { id: session.user.id, email: session.user.email, password, token: session.token, csrfToken: session.csrfToken, session };
}

/** First-run setup with the one-time code the server would print: the first admin. */
export async function setupAdmin(app: FastifyInstance, opts: { email?: string; password?: string } = {}): Promise<TestUser> {
  const prepared = await app.container.setup.prepareSetupCode();
  if (!prepared) throw new Error('setup is already done on this app');
  const email = opts.email ?? uniqueEmail('admin');
  const password = opts.password ?? strongPassword();
  const res = await api(app).post('/api/setup', { setupCode: prepared.code, email, password });
  return asUser(res, 201, password);
}

export async function registerUser(app: FastifyInstance, opts: { email?: string; password?: string } = {}): Promise<TestUser> {
  const email = opts.email ?? uniqueEmail();
  const password = opts.password ?? strongPassword();
  const res = await api(app).post('/api/auth/register', { email, password });
  return asUser(res, 201, password);
}

/** A new session for an existing account. */
export async function login(app: FastifyInstance, email: string, password: string): Promise<TestUser> {
  const res = await api(app).post('/api/auth/login', { email, password });
  return asUser(res, 200, password);
}

export async function createSecret(app: FastifyInstance, auth: Auth, body: { name: string; value: string }): Promise<Secret> {
  const res = await api(app, auth).post('/api/secrets', body);
  expect(res.statusCode, res.body).toBe(201);
  return json<Secret>(res);
}

// ---------------------------------------------------------------------------------------------
// looking at the database

export async function queryRows<T = Record<string, unknown>>(database: Database, query: string): Promise<T[]> {
  return database.rows<T>(sql.raw(query));
}

export async function countRows(database: Database, table: string, where = 'true'): Promise<number> {
  const [r] = await queryRows<{ n: number }>(database, `select count(*)::int as n from "${table}" where ${where}`);
  return Number(r?.n ?? 0);
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

/** A bytea column as a Buffer, whichever driver returned it (PGlite: Uint8Array, pg: Buffer). */
export function bytes(v: unknown): Buffer {
  if (!isBytes(v)) throw new Error(`expected bytea, got ${typeof v}`);
  return Buffer.from(v);
}

/** bytea rendered every way a grep might need: hex, base64, base64url and the raw bytes as latin1. */
function renderBytes(v: Uint8Array): string {
  const b = Buffer.from(v);
  return `bytea(hex=${b.toString('hex')} base64=${b.toString('base64')} base64url=${b.toString('base64url')} latin1=${b.toString('latin1')})`;
}

function renderValue(v: unknown): unknown {
  if (isBytes(v)) return renderBytes(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(renderValue);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renderValue(x)]));
  return v;
}

export async function publicTables(database: Database): Promise<string[]> {
  const r = await queryRows<{ table_name: string }>(
    database,
    `select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`,
  );
  return r.map((x) => x.table_name);
}

/**
 * Every row of every public table as text, one `table: {json}` line per row (a pg_dump for greps).
 * The per-client request counters (`rate_limits`, written by every request on Postgres) are left
 * out unless asked for: they are not state a request may "change", and a canary grep asks for them.
 */
export async function dumpAllTables(database: Database, opts: { counters?: boolean } = {}): Promise<string> {
  const out: string[] = [];
  for (const table of await publicTables(database)) {
    if (table === 'rate_limits' && !opts.counters) continue;
    const rows = await queryRows(database, `select * from "${table}"`);
    out.push(`-- ${table} (${rows.length} rows)`);
    for (const row of rows) out.push(`${table}: ${JSON.stringify(renderValue(row))}`);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// canaries (RELIABILITY D8)

/** A recognisable random string to plant in secret material and grep for afterwards. */
export const canary = (label: string) => `CANARY${label}${randomBytes(9).toString('hex')}`;

/** A canary: a string (a password, a secret) or raw key bytes (a DEK, a session key). */
export type Canary = string | Uint8Array;

/**
 * The forms a canary can take once stored or logged: raw (bytes as latin1, matching the dump's
 * bytea rendering), JSON-escaped, hex (both cases), and base64 / base64url at each of the three
 * byte alignments (only the characters that do not depend on neighbouring bytes, so an embedded
 * copy is found too).
 */
export function canaryForms(value: Canary): { form: string; text: string }[] {
  const isText = typeof value === 'string';
  const bytes = isText ? Buffer.from(value, 'utf8') : Buffer.from(value);
  const forms = [
    { form: 'raw', text: isText ? value : bytes.toString('latin1') },
    { form: 'hex', text: bytes.toString('hex') },
    { form: 'HEX', text: bytes.toString('hex').toUpperCase() },
  ];
  if (isText) forms.push({ form: 'json', text: JSON.stringify(value).slice(1, -1) });
  for (let shift = 0; shift < 3; shift++) {
    const padded = Buffer.concat([Buffer.alloc(shift), bytes]);
    const skipStart = shift === 0 ? 0 : Math.ceil((shift * 8) / 6);
    const keepChars = (Math.floor(padded.length / 3) * 3 * 4) / 3;
    for (const enc of ['base64', 'base64url'] as const) {
      const text = padded.toString(enc).slice(skipStart, keepChars);
      if (text.length >= 8) forms.push({ form: `${enc}@${shift}`, text });
    }
  }
  return forms;
}

export interface CanaryHit {
  canary: string;
  form: string;
  where: string;
  context: string;
}

/** Every place any canary appears, in any of its forms, in the named haystacks. */
export function findCanaries(canaries: Canary[], haystacks: Record<string, string>): CanaryHit[] {
  const hits: CanaryHit[] = [];
  for (const c of canaries) {
    const label = typeof c === 'string' ? c : `bytes:${Buffer.from(c).toString('hex').slice(0, 16)}…`;
    for (const f of canaryForms(c)) {
      for (const [where, hay] of Object.entries(haystacks)) {
        const i = hay.indexOf(f.text);
        if (i >= 0) hits.push({ canary: label, form: f.form, where, context: hay.slice(Math.max(0, i - 80), i + f.text.length + 40) });
      }
    }
  }
  return hits;
}
