/**
 * What fsync on every commit costs the embedded database (db/README.md, "Durability"):
 *
 *   node --import tsx bench/durability.ts [--rounds 3] [--commits 500] [--writes 200]   (from apps/api)
 *
 * For PGLITE_FSYNC=off and =on, alternating within each round so that a busy machine slows both
 * alike: opening a fresh data directory and reopening it; the latency of single-row autocommit
 * INSERTs; and secret writes through the API (`POST /api/secrets`, app.inject, one after another:
 * PGlite has one connection). Prints medians over the rounds.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';
import { databaseOptions, openDatabase, runMigrations } from '../src/db/client';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, commits: { type: 'string', default: '500' }, writes: { type: 'string', default: '200' } },
});
const ROUNDS = Number(values.rounds);
const COMMITS = Number(values.commits);
const WRITES = Number(values.writes);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const since = (t: number) => performance.now() - t;

interface Sample {
  openFreshMs: number;
  reopenMs: number;
  commitP50Ms: number;
  commitMeanMs: number;
  fsyncsPerCommit: number;
  apiWritesPerSec: number;
}

async function measure(fsync: 'on' | 'off'): Promise<Sample> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keyturn-durability-bench-'));
  try {
    const config = loadConfig({
      DATA_DIR: dataDir,
      PGLITE_FSYNC: fsync,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      LOG_LEVEL: 'silent',
      MAINTENANCE_INTERVAL_SECONDS: '0',
      AUDIT_VERIFY_INTERVAL_SECONDS: '0',
      WEB_DIST_DIR: path.join(dataDir, 'no-web-build'),
      RATE_LIMIT_PER_MINUTE: '1000000',
      AUTH_RATE_LIMIT_PER_MINUTE: '1000000',
    });
    let t = performance.now();
    let database = await openDatabase(databaseOptions(config));
    const openFreshMs = since(t);
    await database.close();
    t = performance.now();
    database = await openDatabase(databaseOptions(config));
    const reopenMs = since(t);

    await database.rows(sql`create table bench_commits (id serial primary key, v text not null)`);
    const payload = 'x'.repeat(200);
    const lat: number[] = [];
    const f0 = database.fsyncs;
    for (let i = 0; i < COMMITS; i++) {
      const s = performance.now();
      await database.rows(sql`insert into bench_commits (v) values (${payload})`);
      lat.push(since(s));
    }
    const fsyncsPerCommit = (database.fsyncs - f0) / COMMITS;

    await runMigrations(database);
    const app = await buildApp({ config, database });
    await app.ready();
    const prepared = await app.container.setup.prepareSetupCode();
    const setupRes = await app.inject({
      method: 'POST',
      url: '/api/setup',
      payload: { setupCode: prepared!.code, email: 'bench-admin@example.test', password: `pw-${randomBytes(12).toString('hex')}` },
    });
    if (setupRes.statusCode !== 201) throw new Error(`setup: ${setupRes.statusCode} ${setupRes.body}`);
    const { token } = setupRes.json<{ token: string }>();
    t = performance.now();
    for (let i = 0; i < WRITES; i++) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/secrets',
        headers: { authorization: `Bearer ${token}` },
        payload: { name: `secret-${i}`, value: randomBytes(96).toString('base64') },
      });
      if (res.statusCode !== 201) throw new Error(`secret write: ${res.statusCode} ${res.body}`);
    }
    const apiWritesPerSec = WRITES / (since(t) / 1000);
    await app.close();
    await database.close();
    return { openFreshMs, reopenMs, commitP50Ms: median(lat), commitMeanMs: lat.reduce((a, b) => a + b, 0) / lat.length, fsyncsPerCommit, apiWritesPerSec };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// Warm-up: the first PGlite of a process pays for compiling its WASM; neither mode should.
await (await openDatabase({ dataDir: os.tmpdir(), inMemory: true })).close();

const samples: Record<'on' | 'off', Sample[]> = { on: [], off: [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const mode of r % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
    const s = await measure(mode);
    samples[mode].push(s);
    console.log(`round ${r + 1} PGLITE_FSYNC=${mode}`, JSON.stringify(s, (_k, v) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v)));
  }
}
const row = (mode: 'on' | 'off') => {
  const m = (k: keyof Sample) => median(samples[mode].map((s) => s[k]));
  return `| PGLITE_FSYNC=${mode} | ${m('commitP50Ms').toFixed(2)} ms | ${m('commitMeanMs').toFixed(2)} ms | ${m('fsyncsPerCommit')} | ${m('apiWritesPerSec').toFixed(0)}/s | ${(m('openFreshMs') / 1000).toFixed(2)} s | ${(m('reopenMs') / 1000).toFixed(2)} s |`;
};
console.log(`\nmedians of ${ROUNDS} rounds (${COMMITS} commits, ${WRITES} API secret writes each), ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}`);
console.log('| | commit p50 | commit mean | fsyncs/commit | API secret writes | open (new dir) | reopen |');
console.log('|---|---|---|---|---|---|---|');
console.log(row('off'));
console.log(row('on'));
