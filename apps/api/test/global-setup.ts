import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';
import { openDatabase, runMigrations } from '../src/db/client';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A migrated PGlite data directory (tar), so each test app skips initdb and migrations. */
    pgliteTemplate: string;
  }
}

/**
 * Once per run: a PGlite cluster with every migration applied, dumped to a file. PGlite's initdb
 * costs about two seconds of WASM per cluster; loading this snapshot costs a fraction of that.
 */
export async function setup(project: TestProject) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyturn-pglite-template-'));
  const database = await openDatabase({ dataDir: dir, inMemory: true });
  await runMigrations(database);
  const client = (database.db as unknown as { $client: PGlite }).$client;
  const blob = await client.dumpDataDir('none');
  await database.close();
  const file = path.join(dir, 'template.tar');
  writeFileSync(file, Buffer.from(await blob.arrayBuffer()));
  project.provide('pgliteTemplate', file);
  return () => rmSync(dir, { recursive: true, force: true });
}
