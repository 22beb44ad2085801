-- Read paths that stay flat as a task's log and the task list grow (issue 11, goal 3).
--
-- Log pages are keyset pages in id order. A level filter is read as one ordered branch per level
-- (level_no = 30, = 40, ...), each served by (task_id, level_no, id); a step filter, with or without
-- a level, by (task_id, step_name, level_no, id). Those two replace the single-column indexes on
-- log_level and step_name, which no query could use well (five values, a handful of steps).
-- Text search (`q`, ILIKE '%text%') on log messages and the task list's search (over id, name,
-- database and business context) are served by trigram indexes (pg_trgm, a trusted contrib
-- extension: a role with CREATE on the database, as the migrator, may create it). It lives in `public`, never in a
-- pipeline schema, so dropping one schema cannot take other schemas' indexes with it.
-- Task list filters by status, database or creator keep the newest-first order in their index.
--
-- The migration runs in one transaction, so these indexes are built without CONCURRENTLY and block
-- writes to the two tables while they build (about 10 s per million log lines on a small machine). On
-- a large installation build them beforehand with CREATE INDEX CONCURRENTLY under the same names (the
-- statements below then skip them: IF NOT EXISTS).

CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;

-- The level filter's branches name every level; a line outside the five would never be found.
ALTER TABLE {schema}.data_pipeline_task_logs
    ADD CONSTRAINT data_pipeline_task_logs_level_no_known CHECK (level_no IN (10, 20, 30, 40, 50)) NOT VALID;
ALTER TABLE {schema}.data_pipeline_task_logs VALIDATE CONSTRAINT data_pipeline_task_logs_level_no_known;

CREATE INDEX IF NOT EXISTS idx_logs_task_level ON {schema}.data_pipeline_task_logs (task_id, level_no, id);
CREATE INDEX IF NOT EXISTS idx_logs_task_step ON {schema}.data_pipeline_task_logs (task_id, step_name, level_no, id);
DROP INDEX IF EXISTS {schema}.idx_logs_level;
DROP INDEX IF EXISTS {schema}.idx_logs_step;

CREATE INDEX IF NOT EXISTS idx_tasks_status_created ON {schema}.data_pipeline_tasks (status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS idx_tasks_db_name_created ON {schema}.data_pipeline_tasks (db_name, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS idx_tasks_created_by_created ON {schema}.data_pipeline_tasks (created_by, created_at DESC, id DESC);
DROP INDEX IF EXISTS {schema}.idx_tasks_status;
DROP INDEX IF EXISTS {schema}.idx_tasks_db_name;
DROP INDEX IF EXISTS {schema}.idx_tasks_created_by;

-- The opclass is named with the schema the extension is in (public, or wherever an operator put it).
DO $$
DECLARE
    ops text := (SELECT quote_ident(n.nspname) || '.gin_trgm_ops'
                 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                 WHERE e.extname = 'pg_trgm');
BEGIN
    EXECUTE format('CREATE INDEX IF NOT EXISTS idx_logs_message_trgm'
                   ' ON {schema}.data_pipeline_task_logs USING gin (message %s)', ops);
    -- The expression must stay exactly read_models.TASK_SEARCH_TEXT for the planner to use it.
    EXECUTE format('CREATE INDEX IF NOT EXISTS idx_tasks_search_trgm ON {schema}.data_pipeline_tasks'
                   ' USING gin ((id || chr(10) || coalesce(task_name, '''') || chr(10) || coalesce(db_name, '''')'
                   ' || chr(10) || coalesce(business_context, '''')) %s)', ops);
END $$;
