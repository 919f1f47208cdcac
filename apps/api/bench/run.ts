/**
 * `pnpm bench [--quick] [--out DIR] [--n 1000,10000] [--sizes 256,2048] [--runs 3] …`
 *
 * PGlite by default; with DATABASE_URL (a Postgres server) a fresh database is created on that
 * server for the run and dropped afterwards. Prints the ratio table and writes results.json,
 * chart.svg and table.txt under bench/results/<timestamp>/ (or --out).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { API_DIR, type BenchOptions, runBench } from './harness';
import { writeResults } from './lib/report';

const HELP = `Usage: pnpm bench [options]

  --quick                 a short run (< 1 min): N=1k,10k, 256 B, 2 runs, 2 s of reads
  --out DIR               where to write results.json, chart.svg, table.txt
                          (default: apps/api/bench/results/<timestamp>/)
  --n LIST                secrets per user, e.g. 1000,10000,100000 (default)
  --sizes LIST            secret value sizes in bytes (default 256,2048)
  --runs N                runs per measurement (default 3; median/min/max)
  --naive-runs-large N    runs of the per-row baseline at N >= 100k (default 1)
  --read-seconds S        duration of each read load (default 5)
  --connections N         concurrent read connections (default 10)
  --logins N              sequential logins (and bare argon2id runs) (default 30)
  --burst N               concurrent logins fired during a read load (default 20)
  --batch-size N          the API's ROTATION_BATCH_SIZE (default: the API's default)

Environment: DATABASE_URL=postgres://user@host:5432/postgres benchmarks Postgres (a fresh
bench_<timestamp> database on that server, dropped afterwards); unset, PGlite on a temp directory.`;

const list = (s: string) => s.split(',').map((x) => Number(x.trim().replace(/k$/i, '000')));

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      n: { type: 'string' },
      sizes: { type: 'string' },
      runs: { type: 'string' },
      'naive-runs-large': { type: 'string' },
      'read-seconds': { type: 'string' },
      connections: { type: 'string' },
      logins: { type: 'string' },
      burst: { type: 'string' },
      'batch-size': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const quick = values.quick;
  const opts: BenchOptions = {
    ns: values.n ? list(values.n) : quick ? [1_000, 10_000] : [1_000, 10_000, 100_000],
    sizes: values.sizes ? list(values.sizes) : quick ? [256] : [256, 2048],
    runs: Number(values.runs ?? (quick ? 2 : 3)),
    naiveRunsLarge: Number(values['naive-runs-large'] ?? 1),
    readSeconds: Number(values['read-seconds'] ?? (quick ? 2 : 5)),
    readConnections: Number(values.connections ?? 10),
    logins: Number(values.logins ?? (quick ? 10 : 30)),
    burst: Number(values.burst ?? 20),
    quick,
    log: (line) => console.log(line),
    ...(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {}),
    ...(values['batch-size'] ? { apiEnv: { ROTATION_BATCH_SIZE: values['batch-size'] } } : {}),
  };
  for (const [k, v] of Object.entries({ n: opts.ns, sizes: opts.sizes, runs: [opts.runs], 'read-seconds': [opts.readSeconds] })) {
    if (v.some((x) => !Number.isFinite(x) || x <= 0)) throw new Error(`--${k}: expected positive numbers`);
  }

  const result = await runBench(opts);
  const stamp = result.meta.startedAt.replace(/[:.]/g, '-');
  const outDir = path.resolve(values.out ?? path.join(API_DIR, 'bench', 'results', stamp));
  const table = writeResults(result, outDir);
  console.log(`\n${table}\n`);
  console.log(`results: ${outDir} (results.json, chart.svg, table.txt); ${result.meta.durationS} s`);
}

main().catch((e) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
