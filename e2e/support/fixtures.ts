import { test as base, expect } from '@playwright/test';
import { type ServerInfo, SKIP_REASON, chromiumAvailable, serverInfo } from './env';

export { expect };

/**
 * Every spec imports `test` from here:
 *   - baseURL points at the API started by global setup;
 *   - `server` gives the setup code and the shared first admin's credentials.
 *
 * Call `skipWithoutChromium()` at the top of each spec file.
 */
export const test = base.extend<{ server: ServerInfo }>({
  // biome-ignore lint/correctness/noEmptyPattern: Playwright requires a destructured first argument
  server: async ({}, use) => {
    await use(serverInfo());
  },
  baseURL: async ({ server }, use) => {
    await use(server.baseURL);
  },
});

/** Skips the whole file (before any browser starts) when Chromium is missing. */
export function skipWithoutChromium(): void {
  test.skip(!chromiumAvailable(), SKIP_REASON);
}
