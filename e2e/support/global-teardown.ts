import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CHROMIUM_PATH, E2E_DIR, ENV, SKIP_REASON, chromiumAvailable } from './env';
import { stopPid } from './server';

/** Stops the API server started by global setup (by PID) and removes its data directory. */
export default async function globalTeardown(): Promise<void> {
  if (!chromiumAvailable()) {
    // Repeat the banner at the end of the output, where nobody can miss it.
    console.warn(`\n######## ${SKIP_REASON} (${CHROMIUM_PATH} is missing): no browser test ran ########\n`);
  }
  const pid = Number(process.env[ENV.serverPid]);
  const runDir = process.env[ENV.runDir];

  await stopPid(pid); // graceful shutdown, SIGKILL after 10 s

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
