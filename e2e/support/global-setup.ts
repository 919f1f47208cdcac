import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  API_DIR,
  CHROMIUM_PATH,
  ENV,
  SKIP_REASON,
  WEB_DIST_DIR,
  chromiumAvailable,
  e2eRequired,
} from './env';

const READY_TIMEOUT_MS = 60_000;

function banner(lines: string[]): string {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const rule = '#'.repeat(width);
  return ['', rule, ...lines.map((l) => `# ${l.padEnd(width - 4)} #`), rule, ''].join('\n');
}

function freePort(): Promise<number> {
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

function tail(file: string, lines = 60): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}

/**
 * Starts the real API (which also serves the built SPA) as one process on a free port with a
 * fresh data directory (PGlite), and waits for /readyz. Global teardown stops it by PID.
 */
export default async function globalSetup(): Promise<void> {
  if (!chromiumAvailable()) {
    if (e2eRequired()) {
      throw new Error(
        banner([
          `E2E FAILED: ${CHROMIUM_PATH} is missing and E2E_REQUIRED=1.`,
          'Install it with: apt-get install -y chromium',
        ]),
      );
    }
    console.warn(banner([SKIP_REASON, `(${CHROMIUM_PATH} is missing; apt-get install -y chromium)`]));
    return; // every spec skips itself; no server needed
  }
  if (!existsSync(path.join(WEB_DIST_DIR, 'index.html'))) {
    throw new Error(
      `The SPA is not built (${WEB_DIST_DIR}/index.html is missing): run \`pnpm --filter @keyturn/web build\` first (\`pnpm test\` does).`,
    );
  }

  const runDir = mkdtempSync(path.join(tmpdir(), 'keyturn-e2e-'));
  const dataDir = path.join(runDir, 'data');
  mkdirSync(dataDir);
  const logFile = path.join(runDir, 'server.log');
  const port = await freePort();
  const setupCode = `e2e-${randomBytes(12).toString('hex')}`;
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
  // Safety net if the runner dies without running global teardown.
  process.on('exit', () => {
    if (exited === null) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  process.env[ENV.baseURL] = baseURL;
  process.env[ENV.setupCode] = setupCode;
  process.env[ENV.adminEmail] = `admin-${randomBytes(4).toString('hex')}@keyturn.test`;
  process.env[ENV.adminPassword] = `Admin e2e ${randomBytes(9).toString('base64url')}`;
  process.env[ENV.serverPid] = String(pid);
  process.env[ENV.runDir] = runDir;

  try {
    await waitReady(baseURL, logFile, () => exited);
    console.log(`[e2e] API ready at ${baseURL} (pid ${pid}, data ${dataDir})`);
  } catch (err) {
    // Teardown may not run after a failed setup: stop the server and clean up here.
    if (exited === null) process.kill(pid, 'SIGKILL');
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
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
