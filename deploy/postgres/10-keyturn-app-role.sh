#!/bin/sh
# Keyturn's app role, for the Postgres container of docker-compose.yml (mounted into
# /docker-entrypoint-initdb.d, so it runs once, when the data volume is first initialised).
#
# Two roles (README, "Deploying with Docker Compose"; RELIABILITY G4):
#   POSTGRES_USER (keyturn)      owns the database and every table; Keyturn migrates as it
#                                (MIGRATION_DATABASE_URL)
#   KEYTURN_APP_DB_USER          what Keyturn serves requests as (DATABASE_URL): owns nothing;
#   (keyturn_app)                after each migration run Keyturn grants it exactly what it needs
#                                (no UPDATE/DELETE/TRUNCATE on audit_events, no DDL)
#
# Idempotent: on a volume made before this script existed, run it once by hand
#   docker compose exec postgres /docker-entrypoint-initdb.d/10-keyturn-app-role.sh
# It also sets the password again, so changing KEYTURN_APP_DB_PASSWORD takes effect the same way.
set -eu

app_user="${KEYTURN_APP_DB_USER:-keyturn_app}"
app_password="${KEYTURN_APP_DB_PASSWORD:?KEYTURN_APP_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  -v app_user="$app_user" -v app_password="$app_password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'app_user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
ALTER ROLE :"app_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'app_password';
SQL
echo "keyturn: role $app_user is ready (Keyturn grants its privileges when it migrates)"
