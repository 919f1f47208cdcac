import { defineConfig, devices } from '@playwright/test';
import { CHROMIUM_PATH } from './support/env';

/**
 * End-to-end tests: Debian's Chromium drives the built SPA served by the real API (one process,
 * PGlite on a fresh data directory, started by support/global-setup.ts).
 *
 * The first-run setup can happen only once per server, so the test that walks through it in the
 * browser runs in its own project; every other spec depends on it and finds an initialised server
 * (support/api.ts ensureSetup() also works when that project is filtered out).
 */
const FIRST_RUN = /smoke\.spec\.ts$/;

export default defineConfig({
  testDir: 'tests',
  outputDir: 'test-results',
  globalSetup: './support/global-setup.ts',
  globalTeardown: './support/global-teardown.ts',
  workers: 1,
  retries: 0,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [['list'], ['html', { outputFolder: 'playwright-report', open: 'never' }]],
  use: {
    ...devices['Desktop Chrome'],
    // baseURL comes from global setup through the environment (see support/fixtures.ts).
    screenshot: 'on',
    trace: 'retain-on-failure',
    video: 'off',
    actionTimeout: 10_000,
    navigationTimeout: 20_000,
    launchOptions: {
      executablePath: CHROMIUM_PATH,
      args: [
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
  projects: [
    { name: 'first-run', testMatch: FIRST_RUN },
    { name: 'chromium', testIgnore: FIRST_RUN, dependencies: ['first-run'] },
  ],
});
