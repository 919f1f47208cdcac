import { defineConfig } from 'vitest/config';

/**
 * The API suite. Every test file builds its own app on a fresh migrated database (PGlite in
 * memory, and a fresh database on the run's Postgres server: TEST_DATABASE_URL's, else the
 * throw-away server global-setup.ts starts), so files are independent
 * and may run side by side; two workers match the 2-core CI machine (argon2 and PGlite's WASM are
 * CPU-bound, more workers only contend).
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    // Files share a worker's module graph (Fastify, Drizzle, PGlite's WASM load once per worker,
    // not once per file): half the CPU of the suite. Safe because nothing in src or the harness
    // keeps module-level state; every file builds its own app and database.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests inside a file share one app and run in order (workflow tests build on earlier steps).
    sequence: { concurrent: false },
  },
});
