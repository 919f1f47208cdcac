/**
 * The server as a real process (`node --import tsx src/server.ts`, cwd apps/api): what it prints
 * at start-up, what it refuses to start with, and how it stops (hardening items 8a, 12, 13).
 *
 * Shutdown contract (README, Operating): on SIGTERM the maintenance scheduler stops first; the
 * server stops accepting; idle keep-alive connections are closed at once and busy ones after
 * their response (`Connection: close`); in-flight requests finish; the database closes; exit 0 —
 * within seconds when nothing is in flight, and within SHUTDOWN_TIMEOUT_SECONDS in every case,
 * whatever the state of stdout (a pipe nobody reads) or of the main thread.
 *
 * (a), (c), (d) and the start-up checks run on PGlite (a data directory of their own) and, with
 * TEST_DATABASE_URL, on a fresh Postgres database too; (b) and (e) need 20k secrets inserted
 * beside a running server, so they run on Postgres only. (d) blocks the main thread with a
 * fixture loaded by `--import` (test/fixtures/), not with anything in src.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase, describeBoth, strongPassword, TEST_DATABASE_URL, uniqueEmail } from './harness';
import { createFreshDatabase, type FreshDatabase, keyVersionOf, PG_SERVER_URL, pgSuiteName, seedSecrets, tokenRow, waitFor } from './pg/support';
import { freePort } from './support/net';

const API_DIR = path.resolve(import.meta.dirname, '..');
/** Loaded with --import by (d): blocks the main thread for good once the shutdown has begun. */
const BLOCK_MAIN_FIXTURE = path.join(import.meta.dirname, 'fixtures', 'block-main-thread-after-sigterm.mjs');
const SLOW = 120_000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

interface Server {
  base: string;
  port: number;
  child: ChildProcess;
  /** stdout (unless left unread) and stderr so far. */
  stdout(): string;
  stderr(): string;
  /** The JSON log lines on stdout. */
  logs(): { msg?: string; level?: number; [k: string]: unknown }[];
  exited: Promise<Exit>;
  /** Sends SIGTERM; returns when it was sent. */
  term(): number;
}

const running: Server[] = [];
const tmpDirs: string[] = [];
afterAll(async () => {
  for (const s of running) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await Promise.all(running.map((s) => s.exited));
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});


interface StartOptions {
  /** Leave stdout a pipe that nobody reads (it fills up and stays full). */
  unreadStdout?: boolean;
  /** Extra node flags before `--import tsx` (fault fixtures). */
  nodeArgs?: string[];
  /** Don't wait for /readyz (for a server expected to refuse to start). */
  noWait?: boolean;
}

/** One server process with a clean environment plus `env`; waits until /readyz answers 200. */
async function startServer(env: Record<string, string>, opts: StartOptions = {}): Promise<Server> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keyturn-server-'));
  tmpDirs.push(dataDir);
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', 'src/server.ts'], {
    cwd: API_DIR,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? os.tmpdir(),
      TMPDIR: process.env.TMPDIR ?? os.tmpdir(),
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
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
  let err = '';
  if (!opts.unreadStdout) child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  const base = `http://127.0.0.1:${port}`;
  const server: Server = {
    base,
    port,
    child,
    stdout: () => out,
    stderr: () => err,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; level?: number }),
    exited,
    term: () => {
      child.kill('SIGTERM');
      return Date.now();
    },
  };
  running.push(server);
  if (opts.noWait) return server;
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(
    `the server's /readyz on ${base}`,
    async () => {
      if (gone) throw new Error(`the server exited during start-up:\n${out}\n${err}`);
      try {
        return (await fetch(`${base}/readyz`)).status === 200;
      } catch {
        return false;
      }
    },
    60_000,
    100,
  );
  return server;
}

/** The exit within `ms`, or a failure that says the process was still running (then killed). */
async function exitWithin(s: Server, ms: number): Promise<Exit> {
  const r = await Promise.race([s.exited, sleep(ms).then(() => null)]);
  if (r) return r;
  s.child.kill('SIGKILL');
  await s.exited;
  throw new Error(`still running ${ms} ms after SIGTERM (killed now)\nstderr: ${s.stderr().slice(-2000)}\nlast log lines: ${s.stdout().split('\n').slice(-8).join('\n')}`);
}

/** GET over a keep-alive agent; resolves with the status once the body is read. */
function keepAliveGet(agent: http.Agent, base: string, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}${url}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

const indexOfMsg = (logs: { msg?: string }[], re: RegExp) => logs.findIndex((l) => re.test(l.msg ?? ''));

/**
 * The log of a graceful shutdown: "shutting down", then the scheduler stopped (at most the one
 * run that was in flight at the signal finishes in between, none after) and the HTTP server
 * closed, then the database closed, then "shutdown complete". Returns the lines after the signal.
 */
function expectOrderlyShutdown(logs: { msg?: string; [k: string]: unknown }[]) {
  const msgs = JSON.stringify(logs.map((l) => l.msg));
  const down = indexOfMsg(logs, /^shutting down/);
  expect(down, `the shutdown is logged: ${msgs}`).toBeGreaterThanOrEqual(0);
  const after = logs.slice(down + 1);
  const stopped = indexOfMsg(after, /^maintenance scheduler stopped/);
  const server = indexOfMsg(after, /^HTTP server closed/);
  const database = indexOfMsg(after, /^database closed/);
  const complete = indexOfMsg(after, /^shutdown complete/);
  expect([stopped, server, database, complete].every((i) => i >= 0), msgs).toBe(true);
  expect(Math.max(stopped, server), msgs).toBeLessThan(database);
  expect(database, msgs).toBeLessThan(complete);
  const runs = after.map((l, i) => (l.msg === 'maintenance run' ? i : -1)).filter((i) => i >= 0);
  expect(runs.filter((i) => i > stopped), `scheduler runs after it stopped: ${msgs}`).toEqual([]);
  expect(runs.length, `scheduler runs after "shutting down" (one in flight at most): ${msgs}`).toBeLessThanOrEqual(1);
  return after;
}

describeBoth('ops: the server process', (backend) => {
  let dropDb: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await dropDb?.();
  });
  /** PGlite: a data directory of its own (startServer's); Postgres: a fresh database. */
  async function backendEnv(): Promise<Record<string, string>> {
    if (backend === 'pglite') return {};
    const db = await createPostgresDatabase(TEST_DATABASE_URL!);
    const previous = dropDb;
    dropDb = async () => {
      await previous?.();
      await db.drop();
    };
    return { DATABASE_URL: db.url, JWT_SECRET: randomBytes(32).toString('base64url') };
  }

  it('(13) the first-run banner: every line the same width, with the setup URL and the generated code', async () => {
    const s = await startServer({ ...(await backendEnv()) });
    const banner = s
      .stdout()
      .split('\n')
      .filter((l) => /^\s*[┌│└]/.test(l));
    s.child.kill('SIGKILL');
    expect(banner.length, s.stdout()).toBeGreaterThanOrEqual(5);
    expect(banner.join('\n')).toMatch(/([0-9A-Z]{4}-){7}[0-9A-Z]{4}/);
    expect(banner.join('\n')).toContain(`http://127.0.0.1:${s.port}/setup`);
    expect(new Set(banner.map((l) => [...l].length)).size, banner.join('\n')).toBe(1);
  }, SLOW);

  it(
    '(a) keep-alive clients that got their answers, an idle connection, the scheduler every second: SIGTERM → exit 0 within 2 s; the scheduler stops first, the database is closed',
    async () => {
      const s = await startServer({ ...(await backendEnv()), MAINTENANCE_INTERVAL_SECONDS: '1', SHUTDOWN_TIMEOUT_SECONDS: '20' });

      await waitFor('two scheduler runs', async () => s.logs().filter((l) => l.msg === 'maintenance run').length >= 2, 20_000, 100);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      const statuses = await Promise.all(Array.from({ length: 12 }, (_, i) => keepAliveGet(agent, s.base, i % 2 ? '/healthz' : '/readyz')));
      expect(statuses.every((x) => x === 200)).toBe(true);
      const openSockets = Object.values(agent.freeSockets).flat().length;
      expect(openSockets, 'keep-alive sockets held open by the client').toBeGreaterThanOrEqual(1);
      // and a client that connected and never sent a request
      const idle = net.connect(s.port, '127.0.0.1');
      await new Promise((r) => idle.once('connect', r));
      let idleClosed = false;
      idle.on('close', () => (idleClosed = true));
      idle.on('error', () => {});

      const sent = s.term();
      const exit = await exitWithin(s, 8_000);
      const took = exit.at - sent;
      agent.destroy();
      idle.destroy();
      expect(exit, s.stderr()).toMatchObject({ code: 0, signal: null });
      expect(took, 'ms from SIGTERM to exit').toBeLessThan(2_000);
      expect(idleClosed).toBe(true);

      expectOrderlyShutdown(s.logs());
      console.log(`(a) ${backend}: exit ${exit.code} ${took} ms after SIGTERM; ${openSockets} keep-alive sockets + 1 idle connection open at the signal`);
    },
    SLOW,
  );

  it(
    '(c) stdout a pipe nobody reads, filled by 3000 requests at LOG_LEVEL=debug: the server keeps answering, drops what it cannot queue, and after SIGTERM exits 0 within the bound',
    async () => {
      const bound = 5;
      const s = await startServer({ ...(await backendEnv()), LOG_LEVEL: 'debug', SHUTDOWN_TIMEOUT_SECONDS: String(bound) }, { unreadStdout: true });
      const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
      // ~2 KiB of URL in each request's log line: 3000 requests log over 6 MiB; the pipe holds 64 KiB.
      const url = `/healthz?pad=${'p'.repeat(2000)}`;
      let ok = 0;
      for (let i = 0; i < 3000; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, () => keepAliveGet(agent, s.base, url)));
        ok += batch.filter((x) => x === 200).length;
      }
      expect(ok).toBe(3000);
      const sent = s.term();
      const exit = await exitWithin(s, (bound + 3) * 1000);
      agent.destroy();
      const took = exit.at - sent;
      expect(took, 'ms from SIGTERM to exit').toBeLessThanOrEqual(bound * 1000 + 250);
      // Nothing was wrong but stdout: the shutdown itself completes (log lines are dropped, not waited for).
      expect(exit, s.stderr()).toMatchObject({ code: 0, signal: null });
      expect(s.stderr()).toMatch(/log lines? (were|was) dropped/);
      console.log(`(c) ${backend}: exit ${exit.code ?? exit.signal} ${took} ms after SIGTERM with stdout full; stderr: ${s.stderr().trim().slice(-200)}`);
    },
    SLOW,
  );

  it(
    '(c2) stdout a pipe whose reader went away (closed: every write fails with EPIPE): the server keeps answering and after SIGTERM exits 0 at once',
    async () => {
      const bound = 5;
      const s = await startServer({ ...(await backendEnv()), LOG_LEVEL: 'debug', SHUTDOWN_TIMEOUT_SECONDS: String(bound) });
      // The reader goes away for good: the server's next log lines hit a closed pipe.
      s.child.stdout!.destroy();
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      const statuses = await Promise.all(Array.from({ length: 200 }, (_, i) => keepAliveGet(agent, s.base, i % 2 ? '/healthz' : '/readyz')));
      expect(statuses.every((x) => x === 200)).toBe(true);
      const sent = s.term();
      const exit = await exitWithin(s, (bound + 3) * 1000);
      agent.destroy();
      const took = exit.at - sent;
      expect(exit, s.stderr()).toMatchObject({ code: 0, signal: null });
      expect(took, 'ms from SIGTERM to exit').toBeLessThanOrEqual(2000);
      expect(s.stderr()).not.toMatch(/EPIPE|Unhandled|uncaught/i);
      console.log(`(c2) ${backend}: exit 0 ${took} ms after SIGTERM with stdout closed`);
    },
    SLOW,
  );

  it(
    '(d) the main thread blocked for good after SIGTERM (a stuck synchronous call): the watchdog thread still ends the process within the bound',
    async () => {
      const bound = 3;
      const s = await startServer({ ...(await backendEnv()), SHUTDOWN_TIMEOUT_SECONDS: String(bound) }, { nodeArgs: ['--import', BLOCK_MAIN_FIXTURE] });
      const sent = s.term();
      const exit = await exitWithin(s, (bound + 4) * 1000);
      const took = exit.at - sent;
      expect(exit.signal, `${JSON.stringify(exit)} ${s.stderr()}`).toBe('SIGKILL');
      // the watchdog kills half a second before the bound (shutdownDeadlines): gone by the bound,
      // not long before it (+250 ms: this runner's own event loop may notice the exit late)
      expect(took).toBeGreaterThanOrEqual(bound * 1000 - 1000);
      expect(took).toBeLessThanOrEqual(bound * 1000 + 250);
      console.log(`(d) ${backend}: killed by the watchdog ${took} ms after SIGTERM (bound ${bound} s)`);
    },
    SLOW,
  );

  it('(8a) DATABASE_URL without JWT_SECRET: the server refuses to start (exit 2), naming JWT_SECRET', async () => {
    const s = await startServer({ DATABASE_URL: 'postgres://keyturn@127.0.0.1:1/keyturn' }, { noWait: true });
    const exit = await exitWithin(s, 30_000);
    expect(exit.code, s.stderr()).toBe(2);
    expect(s.stderr()).toMatch(/\bJWT_SECRET\b/);
    expect(s.stdout()).not.toContain('listening');
  }, SLOW);
});

describe.skipIf(!PG_SERVER_URL)(pgSuiteName('ops: the server process, a rotation in flight at SIGTERM'), () => {
  const dbs: FreshDatabase[] = [];
  afterAll(async () => {
    for (const s of running) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await Promise.all(dbs.map((d) => d.drop()));
  }, 60_000);

  async function json<T>(base: string, method: string, url: string, body?: unknown, token?: string): Promise<{ status: number; headers: Headers; body: T }> {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as T };
  }

  /** A server on a fresh database, an admin, a user with N secrets and an approved rotation. */
  async function readyToRotate(N: number, env: Record<string, string>) {
    const fresh = await createFreshDatabase();
    dbs.push(fresh);
    const setupCode = `kt-setup-${randomBytes(16).toString('hex')}`;
    const s = await startServer({
      DATABASE_URL: fresh.url,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      SETUP_CODE: setupCode,
      ROTATION_BATCH_SIZE: '1000',
      ...env,
    });
    const adminPassword = strongPassword();
    const admin = await json<{ token: string }>(s.base, 'POST', '/api/setup', { setupCode, email: uniqueEmail('admin'), password: adminPassword });
    expect(admin.status, JSON.stringify(admin.body)).toBe(201);
    const password = strongPassword();
    const user = await json<{ token: string; user: { id: string } }>(s.base, 'POST', '/api/auth/register', { email: uniqueEmail(), password });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    await seedSecrets(fresh.url, user.body.user.id, password, N, 'shutdown');
    const req = await json<{ id: string }>(s.base, 'POST', '/api/request_key_rotation', { reason: 'shutdown test' }, user.body.token);
    expect(req.status, JSON.stringify(req.body)).toBe(201);
    const approved = await json<{ tempPassword: string }>(s.base, 'POST', `/admin/api/approve_rotation/${req.body.id}`, { adminPassword }, admin.body.token);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    const tokenId = req.body.id;
    return {
      s,
      db: fresh,
      userId: user.body.user.id,
      tokenId,
      /** Starts the execute, resolves once the rotation is in progress (with the pending answer). */
      async executeInFlight() {
        const answer = json<{ keyVersion: number; secretsReencrypted: number }>(
          s.base,
          'POST',
          '/api/rotate_keys_with_token',
          { tokenId, tempPassword: approved.body.tempPassword, currentPassword: password },
          user.body.token,
        ).catch((e: unknown) => ({ status: 0, headers: new Headers(), body: { error: String(e) } as unknown as { keyVersion: number; secretsReencrypted: number } }));
        await waitFor('the rotation in progress', async () => (await tokenRow(fresh.observer, tokenId)).status === 'in_progress', 30_000, 5);
        return { answer };
      },
    };
  }

  it(
    '(b) 20k secrets re-encrypting when SIGTERM arrives: the rotation completes and its answer arrives (Connection: close), no scheduler run after "shutting down", the database closes, exit 0',
    async () => {
      const N = 20_000;
      const r = await readyToRotate(N, { MAINTENANCE_INTERVAL_SECONDS: '1', SHUTDOWN_TIMEOUT_SECONDS: '60' });
      const { s } = r;
      await waitFor('a scheduler run', async () => s.logs().some((l) => l.msg === 'maintenance run'), 20_000, 100);
      const { answer: pending } = await r.executeInFlight();
      const sent = s.term();
      const answer = await pending;
      const exit = await exitWithin(s, 60_000);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body).toMatchObject({ keyVersion: 2, secretsReencrypted: N });
      expect(answer.headers.get('connection')).toBe('close');
      expect(exit, s.stderr()).toMatchObject({ code: 0, signal: null });
      expect((await tokenRow(r.db.observer, r.tokenId)).status).toBe('completed');
      expect(await keyVersionOf(r.db.observer, r.userId)).toBe(2);

      const after = expectOrderlyShutdown(s.logs());
      // the rotation's request completed after the signal
      expect(after.some((l) => l.msg === 'request completed' && (l.res as { statusCode?: number } | undefined)?.statusCode === 200)).toBe(true);
      console.log(`(b) rotation answered ${answer.status} and the process exited ${exit.code} ${exit.at - sent} ms after SIGTERM`);
    },
    SLOW,
  );

  it(
    '(e) a rotation longer than SHUTDOWN_TIMEOUT_SECONDS=1: a logged forced exit (code 1) within the bound; the rotation rolls back, its lock is left for recover',
    async () => {
      const r = await readyToRotate(20_000, { SHUTDOWN_TIMEOUT_SECONDS: '1' });
      const { s } = r;
      const { answer } = await r.executeInFlight();
      const sent = s.term();
      const exit = await exitWithin(s, 5_000);
      const took = exit.at - sent;
      expect(exit, s.stderr()).toMatchObject({ code: 1, signal: null });
      expect(took).toBeLessThanOrEqual(1_000 + 250);
      expect(s.logs().some((l) => /did not finish within SHUTDOWN_TIMEOUT_SECONDS/.test(l.msg ?? '') && l.level === 50)).toBe(true);
      expect((await answer).status, 'no answer: the process was gone').toBe(0);
      // nothing committed: the old key version, the token still in_progress until recover settles it
      expect(await keyVersionOf(r.db.observer, r.userId)).toBe(1);
      expect((await tokenRow(r.db.observer, r.tokenId)).status).toBe('in_progress');
      console.log(`(e) forced exit ${exit.code} ${took} ms after SIGTERM (bound 1 s)`);
    },
    SLOW,
  );
});
