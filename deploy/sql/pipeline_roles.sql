-- Least-privilege roles for the pipeline database. Run once per database, as a superuser or the
-- database owner, BEFORE the first migration (idempotent: safe to run again after an upgrade):
--
--   psql "postgresql://postgres@dp-postgres:5432/data_pipeline" -v ON_ERROR_STOP=1 \
--        -v schema=data_pipeline -v training_schema=dp_training -f deploy/sql/pipeline_roles.sql
--   psql ... -c "\password dp_migrator"    (and dp_runtime, dp_training; or ALTER ROLE ... PASSWORD)
--
-- Roles (none is a superuser, none may create roles or databases):
--   dp_migrator  owns the pipeline schema; only the migration Job (dp-migrate) and `rebuild` use it.
--   dp_runtime   what the four services use: SELECT/INSERT/UPDATE/DELETE on the pipeline schema's
--                tables and their sequences, nothing else (no DDL, no TRUNCATE, no other schema).
--   dp_training  owns the training-data store's schema (DP_TRAINING_DATABASE_URL of the step runners
--                and the gateway): step 4 creates its tables there and snapshots them (CREATE TABLE AS).
-- Role names can be changed with -v migrator=... -v runtime=... -v training=... (the tests do).
\set ON_ERROR_STOP on
\if :{?schema} \else \set schema data_pipeline \endif
\if :{?training_schema} \else \set training_schema dp_training \endif
\if :{?migrator} \else \set migrator dp_migrator \endif
\if :{?runtime} \else \set runtime dp_runtime \endif
\if :{?training} \else \set training dp_training \endif

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', r)
FROM unnest(ARRAY[:'migrator', :'runtime', :'training']) AS r
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
-- A role that already existed (a re-run, or one made by hand) is brought back to these attributes.
SELECT format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', r)
FROM unnest(ARRAY[:'migrator', :'runtime', :'training']) AS r \gexec

-- Nobody else connects or creates objects in public by default (PostgreSQL < 15 allowed both).
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I, %I', current_database(),
              :'migrator', :'runtime', :'training') \gexec
-- The migrations and the training store issue CREATE SCHEMA IF NOT EXISTS, which PostgreSQL checks
-- against the database's CREATE privilege even when the schema exists; the runtime role gets none.
SELECT format('GRANT CREATE ON DATABASE %I TO %I, %I', current_database(), :'migrator', :'training') \gexec

-- The pipeline schema: owned by the migrator, used by the runtime role.
CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"migrator";
ALTER SCHEMA :"schema" OWNER TO :"migrator";
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"schema" TO :"runtime";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA :"schema" TO :"runtime";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA :"schema" TO :"runtime";
-- Tables and sequences later migrations create get the same grants.
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator" IN SCHEMA :"schema"
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"runtime";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator" IN SCHEMA :"schema"
    GRANT USAGE, SELECT ON SEQUENCES TO :"runtime";

-- The training-data store: its own schema and owner (it manages its own tables at run time).
CREATE SCHEMA IF NOT EXISTS :"training_schema" AUTHORIZATION :"training";
ALTER SCHEMA :"training_schema" OWNER TO :"training";
REVOKE ALL ON SCHEMA :"training_schema" FROM PUBLIC;
