/**
 * Observability (issue 5 §4; RELIABILITY D8, G6, G7): /healthz, /readyz (ready, before setup,
 * database gone, migrations missing), /metrics parsed as Prometheus text and checked for the
 * rotation series, and the JSON logs: every line parses, no secret reaches them (canaries, bearer
 * tokens, cookies, temporary passwords), and CRLF / ANSI content cannot forge a line.
 */
import type { ApproveResult, RotateResult } from '@keyturn/shared';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { REDACT_PATHS } from '../src/app';
import { READY_TIMEOUT_MS } from '../src/modules/health/health.service';
import {
  api,
  canary,
  createTestApp,
  describeBoth,
  dumpAllTables,
  findCanaries,
  json,
  login,
  queryRows,
  registerUser,
  setupAdmin,
  type TestUser,
  useTestApp,
} from './harness';
import { approveRotation, finalizeRes, requestRotation, runSql } from './rotation.helpers';

// ---------------------------------------------------------------------------------------------
// a small Prometheus text-format parser (exposition format 0.0.4)

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Exposition {
  samples: Sample[];
  help: Map<string, string>;
  type: Map<string, string>;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL_RE = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(?:,|$)/;

function parseValue(v: string): number {
  if (v === '+Inf') return Number.POSITIVE_INFINITY;
  if (v === '-Inf') return Number.NEGATIVE_INFINITY;
  if (v === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) throw new Error(`not a sample value: ${v}`);
  return Number(v);
}

function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = s ?? '';
  while (rest.length > 0) {
    const m = LABEL_RE.exec(rest);
    if (!m) throw new Error(`bad label set near: ${rest}`);
    if (m[1]! in out) throw new Error(`duplicate label ${m[1]}`);
    out[m[1]!] = m[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    rest = rest.slice(m[0].length);
  }
  return out;
}

/** Parses the exposition; throws on any line that is not a comment, HELP, TYPE or a sample. */
function parsePrometheus(text: string): Exposition {
  const samples: Sample[] = [];
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    if (line.trim() === '') continue;
    if (line.startsWith('# HELP ')) {
      const m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
      if (!m) throw new Error(`bad HELP line: ${line}`);
      if (help.has(m[1]!)) throw new Error(`second HELP for ${m[1]}`);
      help.set(m[1]!, m[2]!);
    } else if (line.startsWith('# TYPE ')) {
      const m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
      if (!m) throw new Error(`bad TYPE line: ${line}`);
      if (type.has(m[1]!)) throw new Error(`second TYPE for ${m[1]}`);
      type.set(m[1]!, m[2]!);
    } else if (line.startsWith('#')) {
      // a plain comment
    } else {
      const m = SAMPLE_RE.exec(line);
      if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
      samples.push({ name: m[1]!, labels: parseLabels(m[2]), value: parseValue(m[3]!) });
    }
  }
  return { samples, help, type };
}

const familyOf = (e: Exposition, name: string): string => {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && e.type.get(base) === 'histogram') return base;
  }
  return name;
};

/** Structural rules: every series typed and documented, no duplicate series, histograms consistent. */
function checkExposition(e: Exposition): void {
  const seen = new Set<string>();
  for (const s of e.samples) {
    const family = familyOf(e, s.name);
    expect(e.type.has(family), `TYPE for ${family}`).toBe(true);
    expect(e.help.has(family), `HELP for ${family}`).toBe(true);
    const id = `${s.name}{${Object.keys(s.labels)
      .sort()
      .map((k) => `${k}=${s.labels[k]}`)
      .join(',')}}`;
    expect(seen.has(id), `duplicate series ${id}`).toBe(false);
    seen.add(id);
    if (e.type.get(family) === 'counter') expect(s.value).toBeGreaterThanOrEqual(0);
  }
  for (const [family, kind] of e.type) {
    if (kind !== 'histogram') continue;
    const buckets = e.samples.filter((s) => s.name === `${family}_bucket`);
    const groups = new Map<string, Sample[]>();
    for (const b of buckets) {
      const { le, ...rest } = b.labels;
      expect(le, `${family}_bucket needs le`).toBeDefined();
      const k = JSON.stringify(rest);
      groups.set(k, [...(groups.get(k) ?? []), b]);
    }
    for (const [k, group] of groups) {
      const les = group.map((b) => parseValue(b.labels.le!));
      expect(les, `${family} buckets ascending`).toEqual([...les].sort((a, b) => a - b));
      expect(les.at(-1)).toBe(Number.POSITIVE_INFINITY);
      const counts = group.map((b) => b.value);
      for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThanOrEqual(counts[i - 1]!);
      const labels = JSON.parse(k) as Record<string, string>;
      const count = e.samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === JSON.stringify(labels));
      expect(count?.value, `${family}_count for ${k}`).toBe(counts.at(-1));
      expect(e.samples.some((s) => s.name === `${family}_sum` && JSON.stringify(s.labels) === JSON.stringify(labels))).toBe(true);
    }
  }
}

/** The value of the one series of `name` whose labels include `labels`. */
const value = (e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined => {
  const found = e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(found.length, `${name} ${JSON.stringify(labels)} matches one series at most`).toBeLessThanOrEqual(1);
  return found[0]?.value;
};

async function scrape(app: FastifyInstance): Promise<{ text: string; e: Exposition }> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  const e = parsePrometheus(res.body);
  checkExposition(e);
  return { text: res.body, e };
}

describe('ops: the Prometheus parser itself', () => {
  it('accepts the format and refuses what is not', () => {
    const ok = parsePrometheus('# HELP a_total A.\n# TYPE a_total counter\na_total{x="1",y="q\\"uote"} 3\nb 1.5e3\n\n');
    expect(ok.samples).toEqual([
      { name: 'a_total', labels: { x: '1', y: 'q"uote' }, value: 3 },
      { name: 'b', labels: {}, value: 1500 },
    ]);
    expect(() => parsePrometheus('a_total{x=1} 3')).toThrow();
    expect(() => parsePrometheus('a_total 3 4 5')).toThrow();
    expect(() => parsePrometheus('a_total abc')).toThrow();
    expect(() => parsePrometheus('{x="1"} 3')).toThrow();
    expect(() => checkExposition(parsePrometheus('a_total 1'))).toThrow();
  });
});

// ---------------------------------------------------------------------------------------------

describeBoth('ops: health, metrics and logs', (backend) => {
  const t = useTestApp(backend, { env: { LOG_LEVEL: 'trace' } });

  // canaries: every password and secret the flow uses
  const c = {
    adminPassword: canary('ADMINPW'),
    userPassword: canary('USERPW'),
    newPassword: canary('NEWPW'),
    secretName: canary('SECRETNAME'),
    secretValue: canary('SECRETVALUE'),
    wrongPassword: canary('WRONGPW'),
  };
  const secretsSeen: string[] = [];
  const errorBodies: string[] = [];
  let admin: TestUser;
  let user: TestUser;
  let tokenId: string;
  let approval: ApproveResult;

  it('/healthz answers 200 while the process lives', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(json(res)).toEqual({ ok: true });
  });

  it('/readyz is 200 before first-run setup (so the setup page can load), with every check', async () => {
    expect(await t.app.container.setup.needed()).toBe(true);
    const res = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toEqual({ ready: true, checks: { database: true, migrations: true, amk: true } });
  });

  it('drives the whole rotation flow with canaries, bearer headers and cookies', async () => {
    admin = await setupAdmin(t.app, { password: c.adminPassword });
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(json(ready)).toEqual({ ready: true, checks: { database: true, migrations: true, amk: true } });

    user = await registerUser(t.app, { password: c.userPassword });
    // a wrong password and an invalid body carrying a canary: the error bodies must not echo it
    const wrong = await api(t.app).post('/api/auth/login', { email: user.email, password: c.wrongPassword });
    expect(wrong.statusCode).toBe(401);
    const invalid = await api(t.app).post('/api/auth/register', { email: 'not-an-email', password: c.wrongPassword });
    expect(invalid.statusCode).toBe(400);
    errorBodies.push(wrong.body, invalid.body);

    user = await login(t.app, user.email, user.password);
    secretsSeen.push(user.token, admin.token, user.csrfToken);
    // by cookie (+ CSRF) with a decoy bearer-looking cookie, and by bearer with a cookie alongside
    const byCookie = await t.app.inject({
      method: 'POST',
      url: '/api/secrets',
      headers: { cookie: `keyturn_session=${user.token}; other=${c.secretValue}`, 'x-csrf-token': user.csrfToken },
      payload: { name: c.secretName, value: c.secretValue },
    });
    expect(byCookie.statusCode, byCookie.body).toBe(201);
    const list = await api(t.app, user).get('/api/secrets', { cookie: `keyturn_session=${user.token}` });
    expect(list.statusCode).toBe(200);
    const secretId = json<{ items: { id: string }[] }>(list).items[0]!.id;
    const reveal = await api(t.app, user).get(`/api/secrets/${secretId}`);
    expect(json<{ value: string }>(reveal).value).toBe(c.secretValue);

    tokenId = (await requestRotation(t, user, 'routine')).id;
    approval = await approveRotation(t, admin, tokenId);
    secretsSeen.push(approval.tempPassword, approval.tempPassword.replace(/-/g, ''));
    const exec = await api(t.app, user).post(
      '/api/rotate_keys_with_token',
      { tokenId, tempPassword: approval.tempPassword, currentPassword: user.password, newPassword: c.newPassword },
      { cookie: `keyturn_session=${user.token}` },
    );
    expect(exec.statusCode, exec.body).toBe(200);
    const rotated = json<RotateResult>(exec);
    secretsSeen.push(rotated.session.token, rotated.session.csrfToken);
    user = { ...user, token: rotated.session.token, password: c.newPassword };
    // a replay with the used temporary password: refused, and its error must not echo it
    const replay = await api(t.app, user).post('/api/rotate_keys_with_token', { tokenId, tempPassword: approval.tempPassword, currentPassword: c.newPassword });
    expect(replay.statusCode).toBe(409);
    errorBodies.push(replay.body);
    const fin = await finalizeRes(t, admin, tokenId, c.adminPassword);
    expect(fin.statusCode, fin.body).toBe(200);
  });

  it('/metrics parses as Prometheus text and carries the HTTP, rotation, KDF, token, audit and maintenance series', async () => {
    // no full verify yet: the audit gauge is absent (unknown), neither 1 nor 0
    expect(value((await scrape(t.app)).e, 'keyturn_audit_chain_ok')).toBeUndefined();
    // a verify records its verdict (a maintenance run of its own kind); status refreshes the token
    // gauge and reports that verdict; cleanup and recover count runs
    expect((await api(t.app, admin).get('/admin/api/audit/verify')).statusCode).toBe(200);
    expect((await api(t.app, admin).get('/admin/api/rotation_status')).statusCode).toBe(200);
    expect((await api(t.app, admin).post('/admin/api/maintenance/cleanup')).statusCode).toBe(200);
    expect((await api(t.app, admin).post('/admin/api/maintenance/recover')).statusCode).toBe(200);
    const { e } = await scrape(t.app);

    expect(e.type.get('keyturn_http_requests_total')).toBe('counter');
    expect(value(e, 'keyturn_http_requests_total', { method: 'POST', route: '/api/rotate_keys_with_token', status: '200' })).toBe(1);
    expect(value(e, 'keyturn_http_requests_total', { method: 'POST', route: '/api/rotate_keys_with_token', status: '409' })).toBe(1);
    expect(value(e, 'keyturn_http_requests_total', { method: 'POST', route: '/admin/api/approve_rotation/:tokenId', status: '200' })).toBe(1);
    // route labels are patterns, never raw URLs with ids (cardinality, and nothing identifying)
    const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-/i;
    for (const s of e.samples) for (const v of Object.values(s.labels)) expect(v).not.toMatch(uuid);
    expect(e.type.get('keyturn_http_request_duration_seconds')).toBe('histogram');

    expect(value(e, 'keyturn_rotations_total', { outcome: 'completed' })).toBe(1);
    expect(e.type.get('keyturn_rotation_duration_seconds')).toBe('histogram');
    expect(value(e, 'keyturn_rotation_duration_seconds_bucket', { outcome: 'completed', le: '+Inf' })).toBe(1);
    expect(value(e, 'keyturn_rotation_duration_seconds_count', { outcome: 'completed' })).toBe(1);

    const kdf = value(e, 'keyturn_kdf_derivations_total');
    // register, two logins (one wrong), approve, execute ×2, finalize (first-run setup is not counted)
    expect(kdf).toBeGreaterThanOrEqual(7);

    expect(e.type.get('keyturn_rotation_tokens')).toBe('gauge');
    expect(value(e, 'keyturn_rotation_tokens', { state: 'finalized' })).toBe(1);
    expect(value(e, 'keyturn_audit_chain_ok')).toBe(1);
    expect(value(e, 'keyturn_maintenance_runs_total', { kind: 'cleanup' })).toBe(1);
    expect(value(e, 'keyturn_maintenance_runs_total', { kind: 'recover' })).toBe(1);
    expect(value(e, 'keyturn_maintenance_runs_total', { kind: 'audit_verify' })).toBe(1);

    // one more sign-in is exactly one more derivation
    await login(t.app, admin.email, c.adminPassword);
    expect(value((await scrape(t.app)).e, 'keyturn_kdf_derivations_total')).toBe(kdf! + 1);
  });

  it('the token gauge follows the counts: a state that empties drops to 0 (no stale value)', async () => {
    const other = await registerUser(t.app);
    const pending = await requestRotation(t, other);
    expect((await api(t.app, admin).get('/admin/api/rotation_status')).statusCode).toBe(200);
    expect(value((await scrape(t.app)).e, 'keyturn_rotation_tokens', { state: 'pending' })).toBe(1);
    expect((await api(t.app, other).post(`/api/rotation_requests/${pending.id}/cancel`)).statusCode).toBe(200);
    expect((await api(t.app, admin).get('/admin/api/rotation_status')).statusCode).toBe(200);
    const { e } = await scrape(t.app);
    expect(value(e, 'keyturn_rotation_tokens', { state: 'pending' }) ?? 0).toBe(0);
    expect(value(e, 'keyturn_rotation_tokens', { state: 'cancelled' })).toBe(1);
  });

  it('logs: every line is JSON with a request id, and no canary, session token, cookie or temporary password appears anywhere', async () => {
    const lines = t.logs.lines;
    expect(lines.length).toBeGreaterThan(20);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    const requests = t.logs.entries().filter((x) => x.msg === 'incoming request');
    expect(requests.length).toBeGreaterThan(10);
    for (const r of requests) expect(r.reqId).toMatch(/^[0-9a-f-]{36}$/);

    const audit = JSON.stringify(await queryRows(t.database, 'select * from audit_events order by seq'));
    const metrics = (await scrape(t.app)).text;
    const hits = findCanaries([...Object.values(c), ...secretsSeen], {
      logs: t.logs.text(),
      audit,
      metrics,
      errors: errorBodies.join('\n'),
    });
    expect(hits).toEqual([]);
    // nor, as plaintext, in any table
    expect(findCanaries([c.secretValue, c.userPassword, c.newPassword, c.adminPassword], { db: await dumpAllTables(t.database) })).toEqual([]);
  });

  it('the logger redacts every secret field (REDACT_PATHS) wherever it is logged', () => {
    const p = {
      password: canary('P1'),
      currentPassword: canary('P2'),
      newPassword: canary('P3'),
      tempPassword: canary('P4'),
      adminPassword: canary('P5'),
      setupCode: canary('P6'),
      token: canary('P7'),
      authorization: `Bearer ${canary('P8')}`,
      cookie: `keyturn_session=${canary('P9')}`,
    };
    const before = t.logs.lines.length;
    t.app.log.info({ body: p }, 'redaction probe body');
    t.app.log.child({ reqId: 'probe' }).warn({ headers: { authorization: p.authorization, cookie: p.cookie, 'x-other': 'kept' } }, 'redaction probe headers');
    const fresh = t.logs.lines.slice(before).map((l) => JSON.parse(l) as Record<string, Record<string, string>>);
    expect(fresh).toHaveLength(2);
    expect(Object.values(fresh[0]!.body!)).toEqual(Object.keys(p).map(() => '[redacted]'));
    expect(fresh[1]!.headers).toEqual({ authorization: '[redacted]', cookie: '[redacted]', 'x-other': 'kept' });
    expect(findCanaries(Object.values(p), { logs: t.logs.lines.slice(before).join('\n') })).toEqual([]);
    for (const field of ['password', 'tempPassword', 'adminPassword', 'authorization', 'cookie']) {
      expect(REDACT_PATHS.some((r) => r.endsWith(`.${field}`) || r.endsWith(`["${field}"]`))).toBe(true);
    }
  });

  it('CRLF, JSON-breaking and ANSI content does not forge a log line (G7)', async () => {
    const nasty = 'reason\r\n{"level":60,"msg":"FORGED-LINE"}\n\u001b[31mred\u001b[0m\u0007"}\\';
    const before = t.logs.lines.length;
    const other = await registerUser(t.app);
    const req = await api(t.app, other).post('/api/request_key_rotation', { reason: nasty });
    expect(req.statusCode, req.body).toBe(201);
    const rej = await api(t.app, admin).post(`/admin/api/reject_rotation/${json<{ id: string }>(req).id}`, { reason: nasty });
    expect(rej.statusCode, rej.body).toBe(200);
    // the same content in a URL and a query string, and straight into the app's logger
    await t.app.inject({ method: 'GET', url: `/api/secrets/${encodeURIComponent(nasty)}?q=${encodeURIComponent(nasty)}` });
    t.app.log.info({ reason: nasty }, nasty);

    const fresh = t.logs.lines.slice(before);
    expect(fresh.length).toBeGreaterThan(4);
    const parsed = fresh.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.filter((p) => p.msg === 'FORGED-LINE')).toEqual([]);
    for (const l of fresh) {
      for (const ch of ['\r', '\n', '\u001b', '\u0007']) expect(l.includes(ch), JSON.stringify(l)).toBe(false);
      expect(l.startsWith('{') && l.endsWith('}')).toBe(true);
    }
    // the content survived, encoded, where it was logged on purpose
    expect(parsed.some((p) => p.reason === nasty && p.msg === nasty)).toBe(true);
    // and the audit trail keeps it as data (JSON), intact
    const [row] = await queryRows<{ details: { note?: string } }>(t.database, `select details from audit_events where action = 'rotation.rejected' order by seq desc limit 1`);
    expect(row?.details.note).toBe(nasty);
  });
});

describeBoth('ops: /readyz when the database is not ready', (backend) => {
  it('503 with migrations=false when a migration is missing, then database=false once the database is gone', async () => {
    // The verdict is reused for HEALTH_CACHE_SECONDS (ops.health-cache.test.ts): each change shows
    // within that interval plus the readiness timeout.
    const t = await createTestApp({ backend, env: { HEALTH_CACHE_SECONDS: '1' } });
    const readyzOnceChanged = async (previous: string) => {
      const until = Date.now() + 1_000 + READY_TIMEOUT_MS + 500;
      for (;;) {
        const res = await t.app.inject({ method: 'GET', url: '/readyz' });
        if (res.body !== previous || Date.now() > until) return res;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(200);

      await runSql(t.database, 'delete from drizzle.__drizzle_migrations where id = (select max(id) from drizzle.__drizzle_migrations)');
      const stale = await readyzOnceChanged(ready.body);
      expect(stale.statusCode).toBe(503);
      expect(json(stale)).toEqual({ ready: false, checks: { database: true, migrations: false, amk: true } });

      await t.database.close();
      const gone = await readyzOnceChanged(stale.body);
      expect(gone.statusCode).toBe(503);
      expect(json(gone)).toEqual({ ready: false, checks: { database: false, migrations: false, amk: false } });
      // the process itself is still alive
      expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});
