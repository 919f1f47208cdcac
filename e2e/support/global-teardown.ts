import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CHROMIUM_PATH, E2E_DIR, ENV, SKIP_REASON, chromiumAvailable } from './env';

const STOP_TIMEOUT_MS = 10_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops the API server started by global setup (by PID) and removes its data directory. */
export default async function globalTeardown(): Promise<void> {
  if (!chromiumAvailable()) {
    // Repeat the banner at the end of the output, where nobody can miss it.
    console.warn(`\n######## ${SKIP_REASON} (${CHROMIUM_PATH} is missing): no browser test ran ########\n`);
  }
  const pid = Number(process.env[ENV.serverPid]);
  const runDir = process.env[ENV.runDir];

  if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
    process.kill(pid, 'SIGTERM'); // graceful shutdown
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) {
      console.warn(`[e2e] API server ${pid} ignored SIGTERM for ${STOP_TIMEOUT_MS / 1000}s; killing it`);
      process.kill(pid, 'SIGKILL');
    }
  }

  if (runDir) {
    // Keep the server log beside the other artifacts for post-mortems.
    const log = path.join(runDir, 'server.log');
    if (existsSync(log)) {
      const dest = path.join(E2E_DIR, 'test-results');
      mkdirSync(dest, { recursive: true });
      copyFileSync(log, path.join(dest, 'server.log'));
    }
    rmSync(runDir, { recursive: true, force: true });
  }
}
