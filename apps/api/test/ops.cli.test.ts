/**
 * The CLI as real processes (issue 5 §3): `node --import tsx src/cli/main.ts …` in apps/api,
 * against a fresh PGlite data directory or (with TEST_DATABASE_URL) a fresh Postgres database.
 * Exit codes: 0 ok · 1 check failed or refused · 2 usage · 3 configuration · 4 unexpected.
 * Between CLI runs the test seeds tokens through the real app on the same database (the CLI's
 * PGlite allows one process at a time, so never while a CLI process runs).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditVerify, MaintenanceRun, SystemStatus } from '@keyturn/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';
import { openDatabase } from '../src/db/client';
import { createPostgresDatabase, describeBoth, login, queryRows, registerUser, strongPassword, TEST_DATABASE_URL, uniqueEmail } from './harness';
import { approveRotation, finalizeRes, requestRotation, rotate, runSql } from './rotation.helpers';

const API_DIR = path.resolve(import.meta.dirname, '..');
/** Each CLI run is a process that loads tsx and opens the database (PGlite: WASM): seconds each. */
const SLOW = 120_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface CliOptions {
  /** Piped to stdin (then stdin is closed), so passwords come from it. */
  input?: string;
  env?: Record<string, string>;
}

/** One CLI process; `input` is piped to stdin (and stdin closed), so passwords come from it. */
function runCli(target: { dataDir: string; databaseUrl?: string | undefined }, args: string[], opts: CliOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: API_DIR,
      // a clean environment: nothing from the test runner's (DATABASE_URL, PORT, …) leaks in
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? os.tmpdir(),
        DATA_DIR: target.dataDir,
        ...(target.databaseUrl ? { DATABASE_URL: target.databaseUrl } : {}),
        ...opts.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

const ok = (r: Run, code = 0): Run => {
  expect(r.code, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(code);
  return r;
};
const parsed = <T>(r: Run): T => JSON.parse(r.stdout) as T;

describe('ops: CLI without a database (usage and configuration)', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keyturn-cli-nodb-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
  const cli = (args: string[], opts: CliOptions = {}) => runCli({ dataDir }, args, opts);

  it('--help exits 0, no command 2, a bad value 3 naming the variable (and never echoing a secret)', async () => {
    const [help, none, badPort, badSecret, badKdf] = await Promise.all([
      cli(['--help']),
      cli([]),
      cli(['status'], { env: { PORT: 'abc' } }),
      cli(['status'], { env: { JWT_SECRET: 'too-short' } }),
      cli(['status'], { env: { KDF_MEMORY_KIB: '1024' } }),
    ]);
    expect(ok(help).stdout).toContain('admin create --email');
    expect(help.stdout).toContain('Exit codes');
    expect(ok(none, 2).stdout).toContain('usage');
    expect(ok(badPort, 3).stderr).toMatch(/\bPORT\b/);
    expect(ok(badSecret, 3).stderr).toContain('JWT_SECRET');
    expect(badSecret.stderr).not.toContain('too-short');
    expect(ok(badKdf, 3).stderr).toContain('KDF_MEMORY_KIB');
  }, SLOW);
});

describeBoth('ops: CLI', (backend) => {
  let dataDir: string;
  let databaseUrl: string | undefined;
  let dropDatabase: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'keyturn-cli-'));
    if (backend === 'postgres') {
      const db = await createPostgresDatabase(TEST_DATABASE_URL!);
      databaseUrl = db.url;
      dropDatabase = db.drop;
    }
  });
  afterAll(async () => {
    await dropDatabase?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const cli = (args: string[], opts: CliOptions = {}) => runCli({ dataDir, databaseUrl }, args, opts);

  /** The real app on the CLI's database, for seeding between CLI runs; closed afterwards. */
  async function withApp(fn: (t: Parameters<typeof rotate>[0]) => Promise<void>): Promise<void> {
    const config = loadConfig({
      DATA_DIR: dataDir,
      // the app signs sessions: on Postgres it needs a JWT_SECRET (the CLI processes do not)
      ...(databaseUrl ? { DATABASE_URL: databaseUrl, JWT_SECRET: randomBytes(32).toString('base64url') } : {}),
      LOG_LEVEL: 'silent',
      MAINTENANCE_INTERVAL_SECONDS: '0',
      WEB_DIST_DIR: path.join(dataDir, 'no-web-build'),
      RATE_LIMIT_PER_MINUTE: '100000',
      AUTH_RATE_LIMIT_PER_MINUTE: '100000',
    });
    const database = await openDatabase({ databaseUrl, dataDir, poolSize: 2 });
    const app = await buildApp({ config, database });
    try {
      await app.ready();
      await fn({ app, database });
    } finally {
      await app.close();
      await database.close();
    }
  }

  const adminA = { email: uniqueEmail('cli-admin'), password: strongPassword() };
  const adminB = { email: uniqueEmail('cli-admin2'), password: strongPassword() };
  const tokens: { finalized?: string; overdue?: string; stale?: string } = {};

  it('an unknown command exits 2', async () => {
    // the unknown command opens (and migrates) the database first: this is its first use
    const unknown = ok(await cli(['frobnicate', '--json']), 2);
    expect(unknown.stderr).toContain('unknown command: frobnicate');
  }, SLOW);

  it('admin create never replaces the setup code a running server printed (issue 10 item 8), even when it fails', async () => {
    const taken = uniqueEmail('not-yet-admin');
    let storedBefore: unknown;
    await withApp(async (t) => {
      // As a server start does: the code it prints, stored as a hash.
      expect(await t.app.container.setup.prepareSetupCode()).not.toBeNull();
      [storedBefore] = await queryRows(t.database, `select value from system_settings where key = 'setup_code_sha256'`);
      // A row that makes the CLI's first-admin attempt fail after the point where it used to re-issue the code.
      await runSql(t.database, `insert into users (id, email, role) values (gen_random_uuid(), '${taken}', 'user')`);
    });
    ok(await cli(['admin', 'create', '--email', taken], { input: `${strongPassword()}\n` }), 1);
    await withApp(async (t) => {
      const [storedAfter] = await queryRows(t.database, `select value from system_settings where key = 'setup_code_sha256'`);
      expect(storedAfter).toEqual(storedBefore);
      await runSql(t.database, `delete from users where email = '${taken}'`);
    });
  }, SLOW);

  it('admin create: the first admin from a piped password (--json), then refusals', async () => {
    const first = ok(await cli(['admin', 'create', '--email', adminA.email, '--json'], { input: `${adminA.password}\n` }));
    expect(parsed(first)).toEqual({ created: adminA.email, first: true });
    // the password never reaches the output
    expect(first.stdout + first.stderr).not.toContain(adminA.password);

    // an admin exists: another one needs --existing-admin
    const noExisting = ok(await cli(['admin', 'create', '--email', adminB.email], { input: `${adminB.password}\n` }), 2);
    expect(noExisting.stderr).toContain('--existing-admin');
  }, SLOW);

  it('admin create --existing-admin: wrong existing password → 1; the right one → 0 (the AMK is shared)', async () => {
    const wrong = ok(
      await cli(['admin', 'create', '--email', adminB.email, '--existing-admin', adminA.email, '--json'], { input: `${adminB.password}\nnot the right password\n` }),
      1,
    );
    expect(wrong.stderr).toContain('ADMIN_REAUTH_FAILED');
    const second = ok(
      await cli(['admin', 'create', '--email', adminB.email, '--existing-admin', adminA.email, '--json'], { input: `${adminB.password}\n${adminA.password}\n` }),
    );
    expect(parsed(second)).toMatchObject({ created: adminB.email, first: false, id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  }, SLOW);

  it('(seed through the app) both CLI admins sign in; the second one finalizes, so it holds the AMK', async () => {
    await withApp(async (t) => {
      const a = await login(t.app, adminA.email, adminA.password);
      const b = await login(t.app, adminB.email, adminB.password);
      expect(a.session.user.role).toBe('admin');
      expect(b.session.user.role).toBe('admin');
      // a finalized rotation: approve needs only a fresh password, finalize needs the AMK share
      const user = await registerUser(t.app);
      const r = await rotate(t, b, user);
      const fin = await finalizeRes(t, b, r.token.id);
      expect(fin.statusCode, fin.body).toBe(200);
      tokens.finalized = r.token.id;
      // an overdue pending request, and an in_progress token whose lock is stale
      const u2 = await registerUser(t.app);
      tokens.overdue = (await requestRotation(t, u2)).id;
      await runSql(t.database, `update rotation_tokens set created_at = now() - interval '8 days' where id = '${tokens.overdue}'`);
      const u3 = await registerUser(t.app);
      tokens.stale = (await requestRotation(t, u3)).id;
      await approveRotation(t, a, tokens.stale);
      await runSql(
        t.database,
        `update rotation_tokens set status = 'in_progress', locked_at = now() - interval '1 hour', lock_owner = 'dead/${randomBytes(4).toString('hex')}' where id = '${tokens.stale}'`,
      );
    });
  }, SLOW);

  it('status --json parses with the counts, and exits 1 while a lock is stale', async () => {
    const r = ok(await cli(['status', '--json']), 1);
    const s = parsed<SystemStatus>(r);
    expect(s.counts).toEqual({ finalized: 1, pending: 1, in_progress: 1 });
    expect(s.staleLocks).toBe(1);
    expect(s.overdueExpiries).toBe(1);
    expect(s.oldestPendingAgeSeconds).toBeGreaterThanOrEqual(8 * 86_400);
    expect(s.lastCleanup).toBeNull();
    // no full verify has run: status says so (it never walks the chain itself)
    expect(s.audit).toMatchObject({ ok: false, verdict: 'never_verified', verifiedAt: null, checked: 0 });
    expect(s.audit.appendedSince).toBeGreaterThan(10);
  }, SLOW);

  it('maintenance cleanup --json and recover --json parse, and do the work', async () => {
    const c = parsed<MaintenanceRun>(ok(await cli(['maintenance', 'cleanup', '--json'])));
    expect(c.kind).toBe('cleanup');
    expect(c.changes.tokensExpired).toBe(1);
    const r = parsed<MaintenanceRun>(ok(await cli(['maintenance', 'recover', '--json'])));
    expect(r.kind).toBe('recover');
    expect(r.changes).toEqual({ settled: 1, failed: 1 });
    expect(r.settled).toEqual([{ tokenId: tokens.stale, to: 'failed', reason: expect.any(String) }]);

    const s = parsed<SystemStatus>(ok(await cli(['status', '--json'])));
    expect(s.counts).toEqual({ finalized: 1, expired: 1, failed: 1 });
    expect(s.staleLocks).toBe(0);
    expect(s.lastCleanup).toEqual(c);
    expect(s.lastRecover).toEqual(r);
  }, SLOW);

  it('audit verify exits 0; audit checkpoint --json gives {seq, hash}; verify against it exits 0, against a wrong hash 1', async () => {
    expect(ok(await cli(['audit', 'verify'])).stdout).toMatch(/^audit chain ok: \d+ events, head #\d+$/m);

    const cp = parsed<{ seq: number; hash: string; at: string }>(ok(await cli(['audit', 'checkpoint', '--json'])));
    expect(cp.seq).toBeGreaterThan(10);
    expect(cp.hash).toMatch(/^[0-9a-f]{64}$/);

    const right = ok(await cli(['audit', 'verify', '--checkpoint-seq', String(cp.seq), '--checkpoint-hash', cp.hash]));
    expect(right.stdout).toContain(`audit chain ok: ${cp.seq} events, head #${cp.seq}`);

    const wrongHash = cp.hash.replace(/^./, (ch) => (ch === '0' ? '1' : '0'));
    const wrong = ok(await cli(['audit', 'verify', '--json', '--checkpoint-seq', String(cp.seq), '--checkpoint-hash', wrongHash]), 1);
    expect(parsed<AuditVerify>(wrong)).toMatchObject({ ok: false, firstBadSeq: cp.seq, checkpoint: { seq: cp.seq, hash: wrongHash, matches: false } });
  }, SLOW);

  it('status reports the last verify\'s verdict: the failed checkpoint verify (exit 1) until a plain verify passes (exit 0)', async () => {
    const broken = parsed<SystemStatus>(ok(await cli(['status', '--json']), 1));
    expect(broken.audit).toMatchObject({ ok: false, verdict: 'broken', problem: expect.stringMatching(/checkpoint/), verifiedHead: null });
    expect(broken.audit.verifiedAt).toEqual(expect.any(String));

    ok(await cli(['audit', 'verify']));
    const human = ok(await cli(['status']));
    expect(human.stdout).toMatch(/^audit chain\s+ok: \d+ events verified at \S+, 0 appended since$/m);
  }, SLOW);
});
