import { test as base, expect } from '@playwright/test';
import { type ServerInfo, SKIP_REASON, chromiumAvailable, serverInfo } from './env';
import { type StartedServer, startApiServer } from './server';

export { expect };

/** Rotation tokens of the short-TTL server expire this many seconds after approval. */
export const SHORT_TOKEN_TTL_SECONDS = 3;

/**
 * A second API process with its own fresh data directory and TOKEN_TTL_SECONDS=3, for the specs
 * that need it (an expiring token; the setup page of a server nobody has set up yet). It is
 * started in the background the first time a test of a worker asks for it (its PGlite needs
 * ~30 s to initialise, so a spec can warm it up early and await ready() when it needs it), and
 * stopped by PID when the worker ends.
 */
export interface LazyServer {
  /** Resolves once /readyz answers; rejects with the server log if it could not start. */
  ready(): Promise<StartedServer>;
}

/**
 * Every spec imports `test` from here:
 *   - baseURL points at the API started by global setup;
 *   - `server` gives the setup code and the shared first admin's credentials;
 *   - `shortTtlServer` (worker-scoped, started on first use) is the second server above.
 *
 * Call `skipWithoutChromium()` at the top of each spec file.
 */
export const test = base.extend<{ server: ServerInfo }, { shortTtlServer: LazyServer }>({
  // biome-ignore lint/correctness/noEmptyPattern: Playwright requires a destructured first argument
  server: async ({}, use) => {
    await use(serverInfo());
  },
  baseURL: async ({ server }, use) => {
    await use(server.baseURL);
  },
  shortTtlServer: [
    // biome-ignore lint/correctness/noEmptyPattern: Playwright requires a destructured first argument
    async ({}, use) => {
      const starting = startApiServer({ label: 'e2e-short-ttl', env: { TOKEN_TTL_SECONDS: String(SHORT_TOKEN_TTL_SECONDS) } });
      starting.catch(() => undefined); // reported by ready()
      await use({ ready: () => starting });
      const started = await starting.catch(() => null);
      await started?.stop();
    },
    { scope: 'worker', timeout: 120_000 },
  ],
});

/** Skips the whole file (before any browser starts) when Chromium is missing. */
export function skipWithoutChromium(): void {
  test.skip(!chromiumAvailable(), SKIP_REASON);
}
