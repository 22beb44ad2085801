-- Deleting a task purges its events from the store (issue 7, finding 3) and leaves a tombstone with ids
-- and counts only. Read-model row ids are the sequence number of the event that made the row, so a
-- rebuild reproduces them even though purged events leave gaps in the store.
-- The gateway records each task it accepted (id, type, mode and time; no parameters, no text) so that a
-- 202-accepted task is addressable before the collector records it (finding 9). The gateway is the only
-- writer of accepted_commands; it is an intake journal, not a read model.

CREATE TABLE IF NOT EXISTS {schema}.task_tombstones (
    task_id          VARCHAR(32) PRIMARY KEY,
    deleted_at       TIMESTAMPTZ NOT NULL,
    deleted_seq      BIGINT NOT NULL,
    event_count      INTEGER NOT NULL,
    execution_count  INTEGER NOT NULL,
    log_count        INTEGER NOT NULL,
    output_count     INTEGER NOT NULL,
    recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.accepted_commands (
    task_id         VARCHAR(32) PRIMARY KEY,
    task_type       VARCHAR(50) NOT NULL,
    execution_mode  VARCHAR(10) NOT NULL,
    single_step     INTEGER,
    accepted_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_accepted_commands_accepted_at ON {schema}.accepted_commands (accepted_at);

-- Row ids come from the event store's sequence (the collector sets id = seq of the creating event), so
-- the tables' own sequences go; a row inserted without an id draws from the same number space.
ALTER TABLE {schema}.data_pipeline_task_executions ALTER COLUMN id TYPE BIGINT;
ALTER TABLE {schema}.data_pipeline_task_outputs ALTER COLUMN id TYPE BIGINT;
ALTER TABLE {schema}.data_pipeline_task_executions
    ALTER COLUMN id SET DEFAULT nextval('{schema}.data_pipeline_events_seq_seq');
ALTER TABLE {schema}.data_pipeline_task_logs
    ALTER COLUMN id SET DEFAULT nextval('{schema}.data_pipeline_events_seq_seq');
ALTER TABLE {schema}.data_pipeline_task_outputs
    ALTER COLUMN id SET DEFAULT nextval('{schema}.data_pipeline_events_seq_seq');
DROP SEQUENCE IF EXISTS {schema}.data_pipeline_task_executions_id_seq;
DROP SEQUENCE IF EXISTS {schema}.data_pipeline_task_logs_id_seq;
DROP SEQUENCE IF EXISTS {schema}.data_pipeline_task_outputs_id_seq;
