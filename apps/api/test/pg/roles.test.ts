/**
 * Migrations use a separate role (RELIABILITY G4; src/db/roles.ts). Two fresh roles per run: an
 * owner, which MIGRATION_DATABASE_URL names and which owns the database, and an app role for
 * DATABASE_URL. The real server process migrates as the owner and serves as the app role through
 * a whole flow (setup, register, secret write, rotation request and approval, each audited); the
 * app role then gets a permission error for everything that could rewrite history or the schema.
 * Roles are cluster-wide: they are dropped in teardown.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config';
import { type Database, openDatabase, runMigrations } from '../../src/db/client';
import { http, PG_SERVER_URL, pgSuiteName, type ServerProcess, spawnServer } from './support';

const rand = () => randomBytes(6).toString('hex');
const REPO_ROOT = path.resolve(import.meta.dirname, '../../../..');

async function asUser<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The error a statement fails with (its SQLSTATE and message); throws if it succeeds. */
async function refusal(url: string, statement: string): Promise<{ code: string; message: string }> {
  return asUser(url, async (c) => {
    try {
      await c.query(statement);
    } catch (e) {
      const { code, message } = e as { code: string; message: string };
      return { code, message };
    }
    throw new Error(`the app role was allowed: ${statement}`);
  });
}

const urlFor = (server: string, user: string, password: string, database: string) => {
  const u = new URL(server);
  u.username = user;
  u.password = password;
  u.pathname = `/${database}`;
  return u.toString();
};

describe('MIGRATION_DATABASE_URL (configuration)', () => {
  it('needs DATABASE_URL: the embedded database has no roles', () => {
    expect(() => loadConfig({ MIGRATION_DATABASE_URL: 'postgres://owner@127.0.0.1/x', DATA_DIR: os.tmpdir(), JWT_SECRET: 'x'.repeat(32) })).toThrow(ConfigError);
    expect(() => loadConfig({ MIGRATION_DATABASE_URL: 'postgres://owner@127.0.0.1/x', DATA_DIR: os.tmpdir(), JWT_SECRET: 'x'.repeat(32) })).toThrow(
      /MIGRATION_DATABASE_URL: needs DATABASE_URL/,
    );
    const config = loadConfig({ DATABASE_URL: 'postgres://app@h/x', MIGRATION_DATABASE_URL: 'postgres://owner@h/x', DATA_DIR: os.tmpdir(), JWT_SECRET: 'x'.repeat(32) });
    expect(config.MIGRATION_DATABASE_URL).toBe('postgres://owner@h/x');
  });
});

describe.skipIf(!PG_SERVER_URL)(pgSuiteName('roles: migrations as the owner, the app as a role that owns nothing (G4)'), () => {
  const id = rand();
  const owner = { name: `kt_owner_${id}`, password: rand() };
  const app = { name: `kt_app_${id}`, password: rand() };
  const member = { name: `kt_member_${id}`, password: rand() };
  const dbName = `kt_roles_${id}`;
  const legacyDb = `kt_roles_legacy_${id}`;
  let ownerUrl: string;
  let appUrl: string;
  let server: ServerProcess | undefined;
  const opened: Database[] = [];
  /** As the test server's own (superuser) role, on its database or on `database`. */
  const su = <T>(fn: (c: pg.Client) => Promise<T>, database?: string) => {
    const u = new URL(PG_SERVER_URL!);
    if (database) u.pathname = `/${database}`;
    return asUser(u.toString(), fn);
  };

  beforeAll(async () => {
    await su(async (c) => {
      await c.query(`CREATE ROLE ${owner.name} LOGIN PASSWORD '${owner.password}'`);
      await c.query(`CREATE ROLE ${app.name} LOGIN PASSWORD '${app.password}'`);
      await c.query(`CREATE ROLE ${member.name} LOGIN PASSWORD '${member.password}' IN ROLE ${owner.name}`);
      await c.query(`CREATE DATABASE ${dbName} OWNER ${owner.name}`);
      await c.query(`CREATE DATABASE ${legacyDb} OWNER ${owner.name}`);
    });
    ownerUrl = urlFor(PG_SERVER_URL!, owner.name, owner.password, dbName);
    appUrl = urlFor(PG_SERVER_URL!, app.name, app.password, dbName);
  }, 60_000);

  afterAll(async () => {
    await server?.kill('SIGKILL');
    await Promise.all(opened.map((d) => d.close().catch(() => {})));
    await su(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await c.query(`DROP DATABASE IF EXISTS ${legacyDb} WITH (FORCE)`);
      await c.query(`DROP ROLE IF EXISTS ${member.name}`);
      await c.query(`DROP ROLE IF EXISTS ${app.name}`);
      await c.query(`DROP ROLE IF EXISTS ${owner.name}`);
    });
  }, 60_000);

  const openAs = async (databaseUrl: string, migrationDatabaseUrl: string) => {
    const d = await openDatabase({ databaseUrl, migrationDatabaseUrl, dataDir: os.tmpdir(), poolSize: 2 });
    opened.push(d);
    return d;
  };

  it('the server migrates as the owner and runs a real flow as the app role; every step is audited', async () => {
    const setupCode = randomBytes(16).toString('hex');
    // spawnServer waits for /readyz: the app role reads drizzle.__drizzle_migrations.
    server = await spawnServer('roles', { DATABASE_URL: appUrl, MIGRATION_DATABASE_URL: ownerUrl, JWT_SECRET: randomBytes(32).toString('base64url'), SETUP_CODE: setupCode });
    const base = server.base;
    const adminPw = `pw-${rand()}-${rand()}`;
    const admin = await http<{ token: string }>(base, 'POST', '/api/setup', { setupCode, email: `admin-${id}@example.test`, password: adminPw });
    expect(admin.status, JSON.stringify(admin.body)).toBe(201);
    const user = await http<{ token: string }>(base, 'POST', '/api/auth/register', { email: `user-${id}@example.test`, password: `pw-${rand()}-${rand()}` });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    const secret = await http<{ id: string }>(base, 'POST', '/api/secrets', { name: 'db password', value: 'hunter2-but-longer' }, user.body.token);
    expect(secret.status, JSON.stringify(secret.body)).toBe(201);
    const request = await http<{ id: string }>(base, 'POST', '/api/request_key_rotation', { reason: 'roles test' }, user.body.token);
    expect(request.status, JSON.stringify(request.body)).toBe(201);
    const approve = await http(base, 'POST', `/admin/api/approve_rotation/${request.body.id}`, { adminPassword: adminPw }, admin.body.token);
    expect(approve.status, JSON.stringify(approve.body)).toBe(200);
    expect((await http(base, 'GET', '/readyz')).status).toBe(200);

    const audit = await asUser(ownerUrl, async (c) => (await c.query<{ action: string; seq: string }>('select action, seq from audit_events order by seq')).rows);
    expect(audit.map((a) => Number(a.seq))).toEqual(audit.map((_, i) => i + 1));
    expect(audit.length).toBeGreaterThanOrEqual(5);

    // Who owns what: the owner every table; the app role nothing.
    const owners = await asUser(ownerUrl, async (c) =>
      (
        await c.query<{ owner: string; n: number }>(
          `select pg_get_userbyid(c.relowner) as owner, count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('public', 'drizzle') and c.relkind in ('r', 'p', 'S') group by 1`,
        )
      ).rows,
    );
    expect(owners).toEqual([{ owner: owner.name, n: expect.any(Number) }]);
  }, 120_000);

  it('the app role may read and append audit events, but not UPDATE, DELETE or TRUNCATE them', async () => {
    const [{ n }] = await asUser(appUrl, async (c) => (await c.query<{ n: number }>('select count(*)::int as n from audit_events')).rows as [{ n: number }]);
    expect(n).toBeGreaterThan(0);
    // "permission denied for table": refused by privileges, before the append-only trigger could be reached.
    for (const statement of ['UPDATE audit_events SET outcome = outcome', 'DELETE FROM audit_events', 'TRUNCATE audit_events']) {
      expect(await refusal(appUrl, statement), statement).toEqual({ code: '42501', message: 'permission denied for table audit_events' });
    }
  });

  it('the app role cannot disable the audit triggers, drop a table, create one, or become the owner', async () => {
    expect(await refusal(appUrl, 'ALTER TABLE audit_events DISABLE TRIGGER ALL')).toEqual({ code: '42501', message: 'must be owner of table audit_events' });
    expect(await refusal(appUrl, 'ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update')).toEqual({ code: '42501', message: 'must be owner of table audit_events' });
    expect(await refusal(appUrl, 'DROP TABLE audit_events')).toEqual({ code: '42501', message: 'must be owner of table audit_events' });
    expect(await refusal(appUrl, 'DROP TABLE secrets')).toEqual({ code: '42501', message: 'must be owner of table secrets' });
    expect(await refusal(appUrl, 'CREATE TABLE public.kt_probe (i int)')).toMatchObject({ code: '42501', message: 'permission denied for schema public' });
    expect(await refusal(appUrl, `SET ROLE ${owner.name}`)).toMatchObject({ code: '42501', message: expect.stringContaining('permission denied to set role') });
    // The triggers are still there and enabled, and still refuse the owner itself.
    expect(await refusal(ownerUrl, 'DELETE FROM audit_events')).toMatchObject({ message: 'audit_events is append-only (DELETE refused)' });
  });

  it('every migration run grants again: tables of later migrations are covered, privileges granted by hand are taken back', async () => {
    await asUser(ownerUrl, async (c) => {
      // What a later migration might add: a plain table, and another append-only one.
      await c.query('CREATE TABLE later_things (i int)');
      await c.query('CREATE TABLE later_log (i int)');
      await c.query('CREATE TRIGGER later_log_no_update BEFORE UPDATE OR DELETE ON later_log FOR EACH ROW EXECUTE FUNCTION keyturn_audit_append_only()');
      await c.query(`GRANT TRUNCATE ON audit_events TO ${app.name}`);
    });
    expect(await refusal(appUrl, 'INSERT INTO later_things VALUES (1)')).toMatchObject({ message: 'permission denied for table later_things' });

    await runMigrations(await openAs(appUrl, ownerUrl));

    await asUser(appUrl, async (c) => {
      await c.query('INSERT INTO later_things VALUES (1)');
      await c.query('UPDATE later_things SET i = 2');
      await c.query('DELETE FROM later_things');
      await c.query('INSERT INTO later_log VALUES (1)');
    });
    expect(await refusal(appUrl, 'UPDATE later_log SET i = 2')).toEqual({ code: '42501', message: 'permission denied for table later_log' });
    expect(await refusal(appUrl, 'TRUNCATE later_things')).toEqual({ code: '42501', message: 'permission denied for table later_things' });
    expect(await refusal(appUrl, 'TRUNCATE audit_events')).toEqual({ code: '42501', message: 'permission denied for table audit_events' });
  }, 60_000);

  it('the compose init script (deploy/postgres) makes a login role without superuser, CREATEDB or CREATEROLE; run twice, it still succeeds; without a password it refuses', async (ctx) => {
    if (spawnSync('psql', ['--version']).status !== 0) return ctx.skip('psql is not installed here (postgresql-client); the script runs inside the postgres image');
    const server = new URL(PG_SERVER_URL!);
    const scriptRole = `kt_script_${id}`;
    const runScript = (password: string) =>
      spawnSync('sh', [path.join(REPO_ROOT, 'deploy/postgres/10-keyturn-app-role.sh')], {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH ?? '',
          PGHOST: server.hostname,
          PGPORT: server.port || '5432',
          POSTGRES_USER: decodeURIComponent(server.username) || 'postgres',
          POSTGRES_DB: dbName,
          KEYTURN_APP_DB_USER: scriptRole,
          KEYTURN_APP_DB_PASSWORD: password,
        },
      });
    try {
      for (const password of ['first-password', `it's "changed"`]) {
        const r = runScript(password);
        expect(r.status, r.stderr).toBe(0);
      }
      const [role] = await su(async (c) => (await c.query('select rolsuper, rolcanlogin, rolcreatedb, rolcreaterole from pg_roles where rolname = $1', [scriptRole])).rows);
      expect(role).toEqual({ rolsuper: false, rolcanlogin: true, rolcreatedb: false, rolcreaterole: false });
      const missing = spawnSync('sh', [path.join(REPO_ROOT, 'deploy/postgres/10-keyturn-app-role.sh')], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
      expect(missing.status).not.toBe(0);
      expect(missing.stderr).toContain('KEYTURN_APP_DB_PASSWORD is not set');
    } finally {
      await su((c) => c.query(`DROP ROLE IF EXISTS ${scriptRole}`));
    }
  });

  it('refuses to start when the roles would not be separate: one role twice, a member of the owner, CREATEROLE, an app role that owns a table', async () => {
    await expect(runMigrations(await openAs(ownerUrl, ownerUrl))).rejects.toThrow(/both name the role "kt_owner_/);
    await expect(runMigrations(await openAs(urlFor(PG_SERVER_URL!, member.name, member.password, dbName), ownerUrl))).rejects.toThrow(/is a member of "kt_owner_.*" and could SET ROLE/);

    // CREATEROLE lets a role (before Postgres 16) grant itself the owner role: refused too.
    await su((c) => c.query(`ALTER ROLE ${app.name} CREATEROLE`));
    await expect(runMigrations(await openAs(appUrl, ownerUrl))).rejects.toThrow(/has CREATEROLE/);
    await su((c) => c.query(`ALTER ROLE ${app.name} NOCREATEROLE`));

    // A deployment that used one role so far: its tables belong to what is now the app role.
    await su(async (c) => {
      await c.query('CREATE TABLE public.legacy_secrets (i int)');
      await c.query(`ALTER TABLE public.legacy_secrets OWNER TO ${app.name}`);
    }, legacyDb);
    await expect(runMigrations(await openAs(urlFor(PG_SERVER_URL!, app.name, app.password, legacyDb), urlFor(PG_SERVER_URL!, owner.name, owner.password, legacyDb)))).rejects.toThrow(
      /"kt_app_\w+" owns public\.legacy_secrets\. .*REASSIGN OWNED BY "kt_app_\w+" TO "kt_owner_\w+";/,
    );
    // Nothing was migrated there.
    const tables = await su(async (c) => (await c.query(`select count(*)::int as n from pg_tables where schemaname = 'public'`)).rows[0].n, legacyDb);
    expect(tables).toBe(1);
  }, 60_000);
});
