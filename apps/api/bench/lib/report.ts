import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchResult } from '../harness';
import { fmtN, fmtSize } from '../harness';

/** results.json, chart.svg and table.txt in `outDir`; returns the table. */
export function writeResults(result: BenchResult, outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const table = renderTable(result);
  writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(path.join(outDir, 'chart.svg'), renderSvg(result));
  writeFileSync(path.join(outDir, 'table.txt'), `${table}\n`);
  return table;
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
const ms = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 1 : 0)} ms`);

function table(head: string[], rows: string[][], right: boolean[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (right[i] ? lpad(c, w[i]!) : pad(c, w[i]!))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** The ratio table printed at the end of a run (also saved as table.txt). */
export function renderTable(r: BenchResult): string {
  const out: string[] = [];
  out.push(`Keyturn benchmark — ${r.meta.backend} (${r.meta.database.split(' on ')[0]}), ${r.meta.machine.cpus} CPUs, Node ${r.meta.machine.node}, ${r.meta.startedAt}`);
  const m = r.meta.machine;
  if (m.loadAvgStart && m.loadAvgEnd) out.push(`load average (1/5/15 min): ${m.loadAvgStart.join(' / ')} at start, ${m.loadAvgEnd.join(' / ')} at end`);
  out.push(`argon2id m=${r.meta.api.kdf.m} KiB t=${r.meta.api.kdf.t} p=${r.meta.api.kdf.p}; rotation batch ${r.meta.api.rotationBatchSize}; medians of ${r.meta.options.runs} run(s) [min–max]`);
  out.push('');
  out.push(
    table(
      ['N', 'size', 'API rotation', 'floor', 'per-row baseline', 'API ÷ floor', 'baseline ÷ API', 'peak RSS growth'],
      r.rotation.map((c) => [
        fmtN(c.n),
        fmtSize(c.size),
        `${ms(c.api.median)} [${ms(c.api.min)}–${ms(c.api.max)}]`,
        `${ms(c.floor.median)} [${ms(c.floor.min)}–${ms(c.floor.max)}]`,
        `${ms(c.naive.median)}${c.naive.runs.length > 1 ? ` [${ms(c.naive.min)}–${ms(c.naive.max)}]` : ' (1 run)'}`,
        `${c.ratios.apiOverFloor.toFixed(2)}×`,
        `${c.ratios.naiveOverApi.toFixed(1)}×`,
        `${c.rss.growthMb.toFixed(0)} MB`,
      ]),
      [true, true, true, true, true, true, true, true],
    ),
  );
  out.push('');
  const l = r.login;
  const rd = r.reads;
  out.push(
    table(
      ['measure', 'API', 'reference', 'ratio'],
      [
        ['login p50', ms(l.p50Ms), `argon2id ${ms(l.argon2.p50Ms)}`, `+${l.overheadP50Ms.toFixed(1)} ms`],
        ['login p99', ms(l.p99Ms), `argon2id ${ms(l.argon2.p99Ms)}`, ''],
        [`read p99 during ${l.burst.logins} logins`, ms(l.burst.readP99DuringMs), `before ${ms(l.burst.readP99BeforeMs)}`, `max ${ms(l.burst.readMaxDuringMs)}`],
        [`GET /api/secrets/:id (${rd.api.connections} conn)`, `${rd.api.rps} req/s`, `SELECT 1 ${rd.ceiling.rps} req/s`, `${Math.round(rd.ratio * 100)} %`],
        ['  read p50 / p99', `${ms(rd.api.p50Ms)} / ${ms(rd.api.p99Ms)}`, `${ms(rd.ceiling.p50Ms)} / ${ms(rd.ceiling.p99Ms)}`, ''],
        ['  (bare Fastify, no DB)', '', `${rd.plain.rps} req/s`, ''],
      ],
      [false, true, true, true],
    ),
  );
  out.push('');
  out.push(
    table(
      ['target', 'wanted', 'measured', 'verdict'],
      r.targets.map((t) => [t.name, t.target, t.value, t.met === null ? 'n/a' : t.met ? `MET${t.note ? ' *' : ''}` : `MISSED${t.note ? ' *' : ''}`]),
      [false, false, false, false],
    ),
  );
  const notes = [...new Set(r.targets.filter((t) => t.note).map((t) => t.note!))];
  for (const n of notes) out.push(`* ${n}`);
  return out.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A self-contained SVG: rotation times per case (log scale), then reads and login. */
export function renderSvg(r: BenchResult): string {
  const W = 960;
  const series = [
    { key: 'floor', label: 'floor (SELECT → crypto → COPY+UPDATE)', color: '#4c9f70' },
    { key: 'api', label: 'API rotation (everything included)', color: '#3366cc' },
    { key: 'naive', label: 'per-row UPDATE baseline', color: '#d9534f' },
  ] as const;
  const cases = r.rotation;
  const chartTop = 70;
  const chartH = 300;
  const left = 70;
  const right = W - 20;
  const values = cases.flatMap((c) => [c.floor.median, c.api.median, c.naive.median]).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...values))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values)));
  const y = (v: number) => chartTop + chartH - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * chartH;
  const parts: string[] = [];
  parts.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">Keyturn key rotation — ${esc(r.meta.backend)}, ${r.meta.machine.cpus} CPUs (${esc(r.meta.startedAt.slice(0, 10))})</text>`);
  parts.push(`<text x="${W / 2}" y="44" text-anchor="middle" font-size="12" fill="#555">median wall time per rotation, log scale; label above API bar: API ÷ floor</text>`);
  for (let d = lo; d <= hi; d *= 10) {
    parts.push(`<line x1="${left}" x2="${right}" y1="${y(d)}" y2="${y(d)}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${y(d) + 4}" text-anchor="end" font-size="11">${d >= 1000 ? `${d / 1000} s` : `${d} ms`}</text>`);
  }
  const groupW = (right - left) / Math.max(1, cases.length);
  const barW = Math.min(40, (groupW - 20) / 3);
  cases.forEach((c, i) => {
    const gx = left + i * groupW + (groupW - barW * 3) / 2;
    series.forEach((s, j) => {
      const v = c[s.key].median;
      const x = gx + j * barW;
      parts.push(`<rect x="${x}" y="${y(v)}" width="${barW - 2}" height="${chartTop + chartH - y(v)}" fill="${s.color}"><title>${esc(`${s.label}: ${v} ms`)}</title></rect>`);
      if (s.key === 'api') parts.push(`<text x="${x + barW / 2}" y="${y(v) - 4}" text-anchor="middle" font-size="10">${c.ratios.apiOverFloor.toFixed(2)}×</text>`);
    });
    parts.push(`<text x="${gx + barW * 1.5}" y="${chartTop + chartH + 16}" text-anchor="middle" font-size="11">${fmtN(c.n)} × ${esc(fmtSize(c.size))}</text>`);
    parts.push(`<text x="${gx + barW * 1.5}" y="${chartTop + chartH + 30}" text-anchor="middle" font-size="10" fill="#555">RSS +${c.rss.growthMb.toFixed(0)} MB</text>`);
  });
  series.forEach((s, j) => {
    const lx = left + j * 300;
    parts.push(`<rect x="${lx}" y="${chartTop + chartH + 42}" width="12" height="12" fill="${s.color}"/>`);
    parts.push(`<text x="${lx + 16}" y="${chartTop + chartH + 52}" font-size="11">${esc(s.label)}</text>`);
  });

  // reads and login: horizontal bars
  const top2 = chartTop + chartH + 90;
  parts.push(`<text x="${left}" y="${top2}" font-size="14" font-weight="bold">Reads (req/s, ${r.reads.api.connections} connections) and login (ms)</text>`);
  const bars = [
    { label: 'bare Fastify + SELECT 1', v: r.reads.ceiling.rps, unit: 'req/s', color: '#4c9f70', max: r.reads.ceiling.rps },
    { label: 'GET /api/secrets/:id', v: r.reads.api.rps, unit: `req/s (${Math.round(r.reads.ratio * 100)} %)`, color: '#3366cc', max: r.reads.ceiling.rps },
    { label: 'argon2id alone (p50)', v: r.login.argon2.p50Ms, unit: 'ms', color: '#4c9f70', max: Math.max(r.login.p99Ms, r.login.argon2.p99Ms) },
    { label: 'login p50', v: r.login.p50Ms, unit: 'ms', color: '#3366cc', max: Math.max(r.login.p99Ms, r.login.argon2.p99Ms) },
    { label: 'login p99', v: r.login.p99Ms, unit: 'ms', color: '#7a9fe0', max: Math.max(r.login.p99Ms, r.login.argon2.p99Ms) },
  ];
  const bx = left + 170;
  const bw = right - bx - 180;
  bars.forEach((b, i) => {
    const by = top2 + 14 + i * 24;
    const w = b.max > 0 ? (b.v / b.max) * bw : 0;
    parts.push(`<text x="${bx - 8}" y="${by + 13}" text-anchor="end" font-size="11">${esc(b.label)}</text>`);
    parts.push(`<rect x="${bx}" y="${by}" width="${Math.max(1, w)}" height="18" fill="${b.color}"/>`);
    parts.push(`<text x="${bx + w + 6}" y="${by + 13}" font-size="11">${b.v} ${esc(b.unit)}</text>`);
  });
  const H = top2 + 14 + bars.length * 24 + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif">\n<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}
