-- A read-only role for the pipeline on a BUSINESS database (the db_connection of a task, or a named
-- connection in DP_CONNECTIONS). Run as the business database's owner or a superuser:
--
--   psql "postgresql://admin@shop-db:5432/shop" -v ON_ERROR_STOP=1 \
--        -v schemas=public,sales -f deploy/sql/business_readonly.sql
--   psql ... -c "\password dp_reader"
--
-- The pipeline reads the catalog, samples rows (SELECT ... LIMIT) and EXPLAINs generated SQL; it never
-- writes. What keeps it read-only is that the role is granted SELECT only; default_transaction_read_only
-- is a second layer (a session could switch it off, but has nothing to write with anyway), and the
-- timeouts bound what a runaway statement can cost the business database.
-- Options: -v reader=NAME (default dp_reader), -v schemas=a,b (default public),
--          -v connection_limit=N (default 10), -v statement_timeout=60s.
\set ON_ERROR_STOP on
\if :{?reader} \else \set reader dp_reader \endif
\if :{?schemas} \else \set schemas public \endif
\if :{?connection_limit} \else \set connection_limit 10 \endif
\if :{?statement_timeout} \else \set statement_timeout 60s \endif

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', :'reader')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader') \gexec
SELECT format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %s',
              :'reader', :'connection_limit'::int) \gexec
SELECT format('ALTER ROLE %I IN DATABASE %I SET default_transaction_read_only = on', :'reader', current_database()) \gexec
SELECT format('ALTER ROLE %I IN DATABASE %I SET statement_timeout = %L', :'reader', current_database(),
              :'statement_timeout') \gexec
SELECT format('ALTER ROLE %I IN DATABASE %I SET idle_in_transaction_session_timeout = %L', :'reader',
              current_database(), '60s') \gexec

SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'reader') \gexec
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', s, :'reader'),
       format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', s, :'reader'),
       format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I', s, :'reader')
FROM unnest(string_to_array(:'schemas', ',')) AS s \gexec
