import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';
import { openDatabase, runMigrations } from '../src/db/client';
import { banner, resolvePgServer } from './support/pg-server';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A migrated PGlite data directory (tar), so each test app skips initdb and migrations. */
    pgliteTemplate: string;
    /** The Postgres server the real-Postgres suites make their databases on; '' → they are skipped. */
    pgServerUrl: string;
    /** Why pgServerUrl is empty, for the names of the skipped suites. */
    pgSkipReason: string;
  }
}

/**
 * A PGlite cluster with every migration applied, dumped to a file. PGlite's initdb costs about
 * two seconds of WASM per cluster; loading this snapshot costs a fraction of that.
 */
async function pgliteTemplate(): Promise<{ file: string; remove(): void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyturn-pglite-template-'));
  try {
    const database = await openDatabase({ dataDir: dir, inMemory: true });
    await runMigrations(database);
    const client = (database.db as unknown as { $client: PGlite }).$client;
    const blob = await client.dumpDataDir('none');
    await database.close();
    const file = path.join(dir, 'template.tar');
    writeFileSync(file, Buffer.from(await blob.arrayBuffer()));
    return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Once per run, before any worker starts: the PGlite template and the real-Postgres server
 * (support/pg-server.ts), both removed in teardown.
 */
export async function setup(project: TestProject) {
  // Side by side: the PGlite template is WASM in this process, initdb + postgres are processes.
  const [template, server] = await Promise.allSettled([pgliteTemplate(), resolvePgServer({ env: process.env })]);
  if (template.status === 'rejected' || server.status === 'rejected') {
    if (template.status === 'fulfilled') template.value.remove();
    if (server.status === 'fulfilled') await server.value.stop();
    throw template.status === 'rejected' ? template.reason : (server as PromiseRejectedResult).reason;
  }
  project.provide('pgliteTemplate', template.value.file);
  project.provide('pgServerUrl', server.value.url);
  project.provide('pgSkipReason', server.value.skipReason);
  return async () => {
    await server.value.stop();
    template.value.remove();
    // Again at the end, where it is not scrolled away by the test output.
    if (server.value.skipReason) console.warn(banner(['POSTGRES SKIPPED in this run:', server.value.skipReason]));
  };
}
