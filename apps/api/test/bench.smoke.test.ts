/**
 * Keeps `pnpm bench` working: the whole harness (fresh PGlite, fast seeding, the API and the
 * ceiling server as child processes, autocannon, /proc sampling, the report) at tiny N. It checks
 * the shape of the result, never a timing: this machine's speed is not under test here.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { type BenchResult, runBench } from '../bench/harness';
import { writeResults } from '../bench/lib/report';

const summary = { runs: expect.any(Array), median: expect.any(Number), min: expect.any(Number), max: expect.any(Number) };
const load = { rps: expect.any(Number), p50Ms: expect.any(Number), p99Ms: expect.any(Number), non2xx: 0, errors: 0, connections: 2 };

describe('benchmark harness (smoke: 50 secrets, 1 run, PGlite)', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'keyturn-bench-smoke-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs end to end and writes results.json, chart.svg and table.txt with every field', async () => {
    // The suite's migrated PGlite snapshot (global-setup.ts) spares the harness an initdb.
    const template = inject('pgliteTemplate');
    const result = await runBench({
      ...(template ? { pgliteTemplate: new Blob([readFileSync(template)]) } : {}),
      ns: [50],
      sizes: [256],
      runs: 1,
      readSeconds: 1,
      warmupSeconds: 0,
      readConnections: 2,
      readerSecrets: 20,
      logins: 2,
      burst: 2,
    });
    const table = writeResults(result, out);

    const json = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as BenchResult;
    expect(json).toEqual(JSON.parse(JSON.stringify(result)));
    expect(json.meta).toMatchObject({
      tool: 'keyturn-bench',
      version: 1,
      backend: 'pglite',
      options: { ns: [50], sizes: [256], runs: 1 },
      api: { kdf: { alg: 'argon2id', m: expect.any(Number), t: expect.any(Number), p: expect.any(Number) }, rotationBatchSize: expect.any(Number) },
      machine: { cpus: expect.any(Number), node: process.version },
    });

    expect(json.rotation).toHaveLength(1);
    const c = json.rotation[0]!;
    expect(c).toMatchObject({
      n: 50,
      size: 256,
      seedMs: expect.any(Number),
      api: { ...summary, perRun: [{ ms: expect.any(Number), rssBaselineMb: expect.any(Number), rssPeakMb: expect.any(Number), rssGrowthMb: expect.any(Number) }] },
      floor: { ...summary, stages: { select: expect.any(Number), crypto: expect.any(Number), write: expect.any(Number), commit: expect.any(Number) } },
      naive: { ...summary, stages: expect.any(Object) },
      ratios: { apiOverFloor: expect.any(Number), naiveOverApi: expect.any(Number) },
      rss: { baselineMb: expect.any(Number), peakMb: expect.any(Number), growthMb: expect.any(Number) },
    });
    expect(c.api.runs).toHaveLength(1);
    // /proc sampling of the API child really happened.
    expect(c.rss.baselineMb).toBeGreaterThan(0);

    expect(json.login).toMatchObject({ count: 2, p50Ms: expect.any(Number), p99Ms: expect.any(Number), argon2: { count: 2, p50Ms: expect.any(Number) }, overheadP50Ms: expect.any(Number) });
    expect(json.login.burst).toMatchObject({ logins: 2, loginP50Ms: expect.any(Number), readP99BeforeMs: expect.any(Number), readsDuring: expect.any(Number) });

    // Every read was an authenticated 200 (a 401 or 429 would make the throughput meaningless).
    expect(json.reads).toMatchObject({ api: load, ceiling: load, plain: { non2xx: 0, errors: 0 }, ratio: expect.any(Number) });
    expect(json.reads.api.requests).toBeGreaterThan(0);
    expect(json.reads.ceiling.requests).toBeGreaterThan(0);

    const names = json.targets.map((t) => t.name).join('\n');
    for (const re of [/API ÷ floor/, /baseline ÷ API/, /peak RSS growth/, /login p50/, /event-loop stall/, /reads ÷ SELECT 1/]) expect(names).toMatch(re);
    for (const t of json.targets) expect(t).toMatchObject({ target: expect.any(String), value: expect.any(String) });

    expect(table).toContain('API ÷ floor');
    expect(readFileSync(path.join(out, 'chart.svg'), 'utf8')).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
  }, 90_000);
});
