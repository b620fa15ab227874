#!/usr/bin/env bash
# The schema registry's role and database in the compose PostgreSQL (docker-compose.yml), as
# infra/local/components/postgres.sh makes them for the local stack: the login role
# holdfast_registry and the database holdfast_registry it owns, which no other role may
# connect to. The postgres image runs this once, when it initialises an empty data directory.
# The password comes from the environment (.stack/auth/registry-postgres.env) and reaches psql
# through \getenv, never a command line. No `set` here: the image sources a script that is not
# executable, and its shell options are the entrypoint's.

: "${APICURIO_DATASOURCE_PASSWORD:?is not set: write .stack/auth/registry-postgres.env (see docker-compose.yml)}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv registry_password APICURIO_DATASOURCE_PASSWORD
CREATE ROLE holdfast_registry LOGIN PASSWORD :'registry_password';
CREATE DATABASE holdfast_registry OWNER holdfast_registry;
REVOKE ALL ON DATABASE holdfast_registry FROM PUBLIC;
SQL
