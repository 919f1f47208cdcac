import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { API_DIR, WEB_DIST_DIR } from './env';

/** PGlite initialises a fresh data directory in WebAssembly: ~30 s on a small machine. */
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;

export interface StartedServer {
  baseURL: string;
  setupCode: string;
  pid: number;
  /** Temporary directory holding the data directory and server.log; removed by stop(). */
  runDir: string;
  logFile: string;
  /** SIGTERM, then SIGKILL after 10 s; removes runDir unless keepRunDir. */
  stop(opts?: { keepRunDir?: boolean }): Promise<void>;
}

export interface StartOptions {
  /** Extra environment for this server only, e.g. { TOKEN_TTL_SECONDS: '3' }. */
  env?: Record<string, string>;
  /** Prefix of the temporary directory's name, to tell several servers apart. */
  label?: string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function tail(file: string, lines = 60): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops one server by its PID: SIGTERM (graceful shutdown), SIGKILL if it ignores it. */
export async function stopPid(pid: number, timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) {
    console.warn(`[e2e] API server ${pid} ignored SIGTERM for ${timeoutMs / 1000}s; killing it`);
    process.kill(pid, 'SIGKILL');
  }
}

/**
 * Starts the real API (which also serves the built SPA) as one process on a free port with a
 * fresh data directory (PGlite), and waits for /readyz. Used by global setup for the run's main
 * server, and by specs that need a server of their own (another configuration, or one that has
 * not been set up yet).
 */
export async function startApiServer(opts: StartOptions = {}): Promise<StartedServer> {
  const runDir = mkdtempSync(path.join(tmpdir(), `keyturn-${opts.label ?? 'e2e'}-`));
  const dataDir = path.join(runDir, 'data');
  mkdirSync(dataDir);
  const logFile = path.join(runDir, 'server.log');
  const port = await freePort();
  const setupCode = `e2e-${randomBytes(16).toString('hex')}`;
  const baseURL = `http://127.0.0.1:${port}`;

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    SETUP_CODE: setupCode,
    LOG_LEVEL: 'warn',
    WEB_DIST_DIR,
    MAINTENANCE_INTERVAL_SECONDS: '0',
    // Every test talks from 127.0.0.1, so per-client limits would throttle the suite as it grows.
    // The limits themselves are covered by the API tests.
    RATE_LIMIT_PER_MINUTE: '100000',
    AUTH_RATE_LIMIT_PER_MINUTE: '10000',
    ...opts.env,
  };
  // The e2e app runs on PGlite in its own data directory, never on a shared database, and
  // generates its own JWT secret there.
  delete env.DATABASE_URL;
  delete env.JWT_SECRET;

  const logFd = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: API_DIR,
    env,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd); // the child has its own copy
  if (child.pid === undefined) throw new Error('could not start the API server');
  const pid = child.pid;
  let exited: string | null = null;
  child.on('exit', (code, signal) => {
    exited = `exited with ${signal ?? `code ${code}`}`;
  });
  // Safety net if this process dies without stopping the server.
  process.on('exit', () => {
    if (exited === null) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  const stop = async (o: { keepRunDir?: boolean } = {}) => {
    if (exited === null) await stopPid(pid);
    if (!o.keepRunDir) rmSync(runDir, { recursive: true, force: true });
  };

  try {
    await waitReady(baseURL, logFile, () => exited);
  } catch (err) {
    if (exited === null) process.kill(pid, 'SIGKILL');
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
  return { baseURL, setupCode, pid, runDir, logFile, stop };
}

async function waitReady(baseURL: string, logFile: string, exited: () => string | null): Promise<void> {
  const started = Date.now();
  let last = '';
  while (Date.now() - started < READY_TIMEOUT_MS) {
    const gone = exited();
    if (gone !== null) {
      throw new Error(`The API server ${gone} before it was ready. Server log:\n${tail(logFile)}`);
    }
    try {
      const res = await fetch(`${baseURL}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(200);
  }
  throw new Error(
    `The API server did not answer 200 on /readyz within ${READY_TIMEOUT_MS / 1000}s (last: ${last}). Server log:\n${tail(logFile)}`,
  );
}

export const webBuilt = (): boolean => existsSync(path.join(WEB_DIST_DIR, 'index.html'));
