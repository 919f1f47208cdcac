/**
 * Migrations as a separate role (RELIABILITY G4; db/README.md, "Two roles"). With
 * MIGRATION_DATABASE_URL set, migrations run as that role, which owns every table; the app runs
 * as DATABASE_URL's role, which owns nothing and after each migration run is granted exactly:
 *
 *   - SELECT, INSERT, UPDATE, DELETE on the tables of `public`, except append-only tables (those
 *     guarded by the `keyturn_audit_append_only` trigger, i.e. audit_events): SELECT, INSERT only;
 *   - no TRUNCATE, REFERENCES or TRIGGER anywhere, and, owning nothing, no ALTER/DROP: it cannot
 *     `ALTER TABLE audit_events DISABLE TRIGGER`;
 *   - USAGE, SELECT on the sequences of `public`; EXECUTE on its functions;
 *   - USAGE on schema `drizzle` and SELECT on drizzle.__drizzle_migrations (readyz reads it);
 *   - no CREATE on schema `public`.
 *
 * Privileges are revoked and granted again on every run, in one transaction under the migration
 * lock, so tables of later migrations are covered and nothing granted by hand survives. A setup
 * that would defeat the separation (the same role twice, an app role that is a superuser, a member
 * of the migration role, or owns a table) stops start-up with the way to fix it.
 */
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import pg from 'pg';

/** The advisory lock every instance takes around migrations (client.ts uses the same key). */
export const MIGRATION_LOCK = 727274001;

export class RoleSetupError extends Error {}

interface Roles {
  app: string;
  owner: string;
}

async function one<T>(client: pg.ClientBase, text: string, values: unknown[] = []): Promise<T> {
  const { rows } = await client.query(text, values);
  return rows[0] as T;
}

/** Refuses a pair of roles that would not keep the app away from the schema and the audit triggers. */
async function checkSeparation(client: pg.ClientBase, { app, owner }: Roles): Promise<void> {
  const where = 'MIGRATION_DATABASE_URL is set, so DATABASE_URL must name a role that owns nothing';
  if (app === owner) throw new RoleSetupError(`${where}: both name the role "${app}". Use a separate app role (see the README, Docker Compose).`);
  const r = await one<{ superuser: boolean; member: boolean; createrole: boolean; bypassrls: boolean }>(
    client,
    `select rolsuper as superuser, pg_has_role($1, $2, 'MEMBER') as member, rolcreaterole as createrole, rolbypassrls as bypassrls from pg_roles where rolname = $1`,
    [app, owner],
  );
  if (r.superuser) throw new RoleSetupError(`${where}: "${app}" is a superuser, which no privilege binds.`);
  // With CREATEROLE (before Postgres 16) a role can grant itself membership in the owner role.
  if (r.createrole) throw new RoleSetupError(`${where}: "${app}" has CREATEROLE and could make itself a member of "${owner}". ALTER ROLE ${pg.escapeIdentifier(app)} NOCREATEROLE;`);
  if (r.bypassrls) throw new RoleSetupError(`${where}: "${app}" has BYPASSRLS. ALTER ROLE ${pg.escapeIdentifier(app)} NOBYPASSRLS;`);
  if (r.member) throw new RoleSetupError(`${where}: "${app}" is a member of "${owner}" and could SET ROLE to it.`);
  const owned = await client.query<{ name: string }>(
    `select n.nspname || '.' || c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('public', 'drizzle') and c.relowner = (select oid from pg_roles where rolname = $1) order by 1`,
    [app],
  );
  if (owned.rows.length > 0) {
    throw new RoleSetupError(
      `${where}: "${app}" owns ${owned.rows.map((o) => o.name).join(', ')}. Hand them over once, as a superuser: REASSIGN OWNED BY ${pg.escapeIdentifier(app)} TO ${pg.escapeIdentifier(owner)};`,
    );
  }
}

/** Revokes and grants the app role's privileges (see the module comment), in the caller's transaction. */
async function grantAppPrivileges(client: pg.ClientBase, { app }: Roles): Promise<void> {
  const role = pg.escapeIdentifier(app);
  const appendOnly = await client.query<{ name: string }>(
    `select distinct c.relname as name from pg_trigger t
       join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
       join pg_proc p on p.oid = t.tgfoid
      where n.nspname = 'public' and p.proname = 'keyturn_audit_append_only' and not t.tgisinternal`,
  );
  const statements = [
    `REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${role}`,
    `REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ${role}`,
    `REVOKE CREATE ON SCHEMA public FROM ${role}`,
    `GRANT USAGE ON SCHEMA public TO ${role}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`,
    ...appendOnly.rows.map((t) => `REVOKE UPDATE, DELETE ON TABLE public.${pg.escapeIdentifier(t.name)} FROM ${role}`),
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role}`,
    `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ${role}`,
    `REVOKE ALL ON ALL TABLES IN SCHEMA drizzle FROM ${role}`,
    `GRANT USAGE ON SCHEMA drizzle TO ${role}`,
    `GRANT SELECT ON TABLE drizzle.__drizzle_migrations TO ${role}`,
  ];
  for (const s of statements) await client.query(s);

  // Before Postgres 15 every role may create in `public` (a grant to PUBLIC): take it back when
  // the migration role may, else refuse to start rather than run with it.
  const canCreate = async () => (await one<{ ok: boolean }>(client, `select has_schema_privilege($1, 'public', 'CREATE') as ok`, [app])).ok;
  if (await canCreate()) {
    await client.query('SAVEPOINT revoke_public_create');
    try {
      await client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
      await client.query('RELEASE SAVEPOINT revoke_public_create');
    } catch {
      await client.query('ROLLBACK TO SAVEPOINT revoke_public_create');
    }
    if (await canCreate()) {
      throw new RoleSetupError(`"${app}" may create tables in schema public (a grant to PUBLIC); as the schema's owner run: REVOKE CREATE ON SCHEMA public FROM PUBLIC;`);
    }
  }
}

/**
 * Applies the committed migrations as the role of `ownerUrl`, then sets the privileges of the
 * role `appDb` connects as. One connection, holding the migration lock throughout.
 */
export async function migrateAsOwner(appDb: pg.Pool, ownerUrl: string, migrationsFolder: string): Promise<Roles> {
  const appRole = (await appDb.query<{ role: string }>('select current_user as role')).rows[0]!.role;
  const client = new pg.Client({ connectionString: ownerUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const roles: Roles = { app: appRole, owner: (await one<{ role: string }>(client, 'select current_user as role')).role };
    await checkSeparation(client, roles);
    await migratePg(drizzlePg(client), { migrationsFolder });
    await client.query('BEGIN');
    try {
      await grantAppPrivileges(client, roles);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    }
    return roles;
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    await client.end().catch(() => {});
  }
}
