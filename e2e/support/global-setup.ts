import { randomBytes } from 'node:crypto';
import { CHROMIUM_PATH, ENV, SKIP_REASON, WEB_DIST_DIR, chromiumAvailable, e2eRequired } from './env';
import { startApiServer, webBuilt } from './server';

function banner(lines: string[]): string {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const rule = '#'.repeat(width);
  return ['', rule, ...lines.map((l) => `# ${l.padEnd(width - 4)} #`), rule, ''].join('\n');
}

/**
 * Starts the real API (which also serves the built SPA) as one process on a free port with a
 * fresh data directory (PGlite), and waits for /readyz (support/server.ts). Global teardown
 * stops it by PID.
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
  if (!webBuilt()) {
    throw new Error(
      `The SPA is not built (${WEB_DIST_DIR}/index.html is missing): run \`pnpm --filter @keyturn/web build\` first (\`pnpm test\` does).`,
    );
  }

  // On failure startApiServer stops the server and removes its directory itself.
  const server = await startApiServer();

  process.env[ENV.baseURL] = server.baseURL;
  process.env[ENV.setupCode] = server.setupCode;
  process.env[ENV.adminEmail] = `admin-${randomBytes(4).toString('hex')}@keyturn.test`;
  process.env[ENV.adminPassword] = `Admin e2e ${randomBytes(9).toString('base64url')}`;
  process.env[ENV.serverPid] = String(server.pid);
  process.env[ENV.runDir] = server.runDir;
  console.log(`[e2e] API ready at ${server.baseURL} (pid ${server.pid}, data ${server.runDir}/data)`);
}
