-- The read model's roles on one shard (psql as the cluster's master user, variable `admin`;
-- idempotent, run at every sync by postgres-roles.sh):
--   holdfast_projection  owns the read-model database: creates the generations' schemas and tables
--   holdfast_query       may connect and read every table holdfast_projection makes, nothing else
-- Both log in over TLS only: the cluster refuses anything else (rds.force_ssl). Their passwords
-- are set after this, with \password.

SELECT 'CREATE ROLE holdfast_projection' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'holdfast_projection')
\gexec
SELECT 'CREATE ROLE holdfast_query' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'holdfast_query')
\gexec
ALTER ROLE holdfast_projection WITH LOGIN NOCREATEDB NOCREATEROLE;
ALTER ROLE holdfast_query WITH LOGIN NOCREATEDB NOCREATEROLE;

-- The master user acts for the owner (PostgreSQL 16: making a role an owner, or setting its
-- default privileges, takes membership in it).
GRANT holdfast_projection TO :"admin";

-- A database set up with the former shared role `holdfast`: what it owned moves to
-- holdfast_projection (once; afterwards `holdfast` owns nothing here).
SELECT format('GRANT holdfast TO %I', :'admin') WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = 'holdfast')
\gexec
SELECT 'REASSIGN OWNED BY holdfast TO holdfast_projection' WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = 'holdfast')
\gexec
-- Pods of the previous release, still signed in as `holdfast` until the rollout replaces them,
-- keep their access through membership; the role is switched off once they are gone
-- (docs/operations/runbooks/deploy.md).
SELECT 'GRANT holdfast_projection TO holdfast' WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = 'holdfast')
\gexec

SELECT format('ALTER DATABASE %I OWNER TO holdfast_projection', current_database())
\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database())
\gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO holdfast_query', current_database())
\gexec

-- Every schema and table holdfast_projection makes from now on is readable by holdfast_query...
ALTER DEFAULT PRIVILEGES FOR ROLE holdfast_projection GRANT USAGE ON SCHEMAS TO holdfast_query;
ALTER DEFAULT PRIVILEGES FOR ROLE holdfast_projection GRANT SELECT ON TABLES TO holdfast_query;

-- ...and so is what it made before these defaults existed (or took over above).
SELECT format('GRANT USAGE ON SCHEMA %I TO holdfast_query', nspname)
  FROM pg_namespace WHERE nspowner = 'holdfast_projection'::regrole
\gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO holdfast_query', schemaname)
  FROM (SELECT DISTINCT schemaname FROM pg_tables WHERE tableowner = 'holdfast_projection') AS owned
\gexec
