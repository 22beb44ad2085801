-- The seed's four tables (its columns and indexes kept), with what the event-sourced design adds,
-- and the append-only event store. {schema} is replaced by the configured schema name.

CREATE TABLE IF NOT EXISTS {schema}.data_pipeline_events (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    type         VARCHAR(50) NOT NULL,
    task_id      VARCHAR(32) NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    producer     VARCHAR(100) NOT NULL,
    payload      JSONB NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_events_task_seq ON {schema}.data_pipeline_events (task_id, seq);
CREATE INDEX IF NOT EXISTS idx_events_type ON {schema}.data_pipeline_events (type);

CREATE TABLE IF NOT EXISTS {schema}.data_pipeline_tasks (
    id                VARCHAR(32) PRIMARY KEY,
    task_type         VARCHAR(50) NOT NULL DEFAULT 'complete_workflow',
    task_name         TEXT,
    status            VARCHAR(20) NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'in_progress', 'partial_completed', 'completed', 'failed', 'cancelled')),
    parameters        JSONB NOT NULL,
    result            JSONB,
    error_message     TEXT,
    error_step        VARCHAR(100),
    progress          INTEGER NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 100),
    current_step      VARCHAR(100),
    step_status       JSONB NOT NULL DEFAULT '{"ddl_generation": "pending", "qa_generation": "pending", "sql_validation": "pending", "training_load": "pending"}',
    step_stats        JSONB NOT NULL DEFAULT '{}',
    execution_mode    VARCHAR(10) NOT NULL DEFAULT 'complete',
    single_step       INTEGER,
    created_at        TIMESTAMPTZ NOT NULL,
    started_at        TIMESTAMPTZ,
    completed_at      TIMESTAMPTZ,
    updated_at        TIMESTAMPTZ NOT NULL,
    created_by        VARCHAR(50) NOT NULL DEFAULT 'api',
    output_directory  TEXT,
    db_name           VARCHAR(100),
    business_context  TEXT,
    last_event_seq    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_tasks_status ON {schema}.data_pipeline_tasks (status);
CREATE INDEX IF NOT EXISTS idx_tasks_created_at ON {schema}.data_pipeline_tasks (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS idx_tasks_db_name ON {schema}.data_pipeline_tasks (db_name);
CREATE INDEX IF NOT EXISTS idx_tasks_created_by ON {schema}.data_pipeline_tasks (created_by);

CREATE TABLE IF NOT EXISTS {schema}.data_pipeline_task_executions (
    id                SERIAL PRIMARY KEY,
    task_id           VARCHAR(32) REFERENCES {schema}.data_pipeline_tasks (id) ON DELETE CASCADE,
    execution_step    VARCHAR(50) NOT NULL,
    status            VARCHAR(20) NOT NULL,
    started_at        TIMESTAMPTZ,
    completed_at      TIMESTAMPTZ,
    error_message     TEXT,
    execution_result  JSONB,
    execution_id      VARCHAR(100) UNIQUE,
    force_executed    BOOLEAN NOT NULL DEFAULT FALSE,
    files_cleaned     BOOLEAN NOT NULL DEFAULT FALSE,
    duration_seconds  INTEGER,
    attempt           INTEGER NOT NULL DEFAULT 1,
    runner_id         VARCHAR(100),
    progress          INTEGER NOT NULL DEFAULT 0,
    scheduled_at      TIMESTAMPTZ,
    last_heartbeat_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_executions_task_id ON {schema}.data_pipeline_task_executions (task_id);
CREATE INDEX IF NOT EXISTS idx_executions_step ON {schema}.data_pipeline_task_executions (execution_step);
CREATE INDEX IF NOT EXISTS idx_executions_status ON {schema}.data_pipeline_task_executions (status);
CREATE INDEX IF NOT EXISTS idx_executions_started_at ON {schema}.data_pipeline_task_executions (started_at DESC);

CREATE TABLE IF NOT EXISTS {schema}.data_pipeline_task_logs (
    id             BIGSERIAL PRIMARY KEY,
    task_id        VARCHAR(32) REFERENCES {schema}.data_pipeline_tasks (id) ON DELETE CASCADE,
    execution_id   VARCHAR(100) REFERENCES {schema}.data_pipeline_task_executions (execution_id) ON DELETE CASCADE,
    log_level      VARCHAR(10) NOT NULL,
    message        TEXT NOT NULL,
    step_name      VARCHAR(50),
    module_name    VARCHAR(100),
    function_name  VARCHAR(100),
    timestamp      TIMESTAMPTZ NOT NULL,
    extra_data     JSONB NOT NULL DEFAULT '{}',
    event_id       UUID NOT NULL UNIQUE,
    level_no       SMALLINT NOT NULL DEFAULT 20
);
CREATE INDEX IF NOT EXISTS idx_logs_task_id ON {schema}.data_pipeline_task_logs (task_id, id);
CREATE INDEX IF NOT EXISTS idx_logs_execution_id ON {schema}.data_pipeline_task_logs (execution_id);
CREATE INDEX IF NOT EXISTS idx_logs_timestamp ON {schema}.data_pipeline_task_logs (timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_logs_level ON {schema}.data_pipeline_task_logs (log_level);
CREATE INDEX IF NOT EXISTS idx_logs_step ON {schema}.data_pipeline_task_logs (step_name);

CREATE TABLE IF NOT EXISTS {schema}.data_pipeline_task_outputs (
    id               SERIAL PRIMARY KEY,
    task_id          VARCHAR(32) REFERENCES {schema}.data_pipeline_tasks (id) ON DELETE CASCADE,
    execution_id     VARCHAR(100) REFERENCES {schema}.data_pipeline_task_executions (execution_id) ON DELETE SET NULL,
    file_type        VARCHAR(50) NOT NULL,
    file_name        VARCHAR(255) NOT NULL,
    file_path        TEXT NOT NULL,
    file_size        BIGINT NOT NULL DEFAULT 0,
    content_hash     VARCHAR(64),
    description      TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    modified_at      TIMESTAMPTZ NOT NULL,
    is_primary       BOOLEAN NOT NULL DEFAULT FALSE,
    is_downloadable  BOOLEAN NOT NULL DEFAULT TRUE,
    step_name        VARCHAR(50),
    UNIQUE (task_id, file_path)
);
CREATE INDEX IF NOT EXISTS idx_outputs_task_id ON {schema}.data_pipeline_task_outputs (task_id);
CREATE INDEX IF NOT EXISTS idx_outputs_execution_id ON {schema}.data_pipeline_task_outputs (execution_id);
CREATE INDEX IF NOT EXISTS idx_outputs_file_type ON {schema}.data_pipeline_task_outputs (file_type);
CREATE INDEX IF NOT EXISTS idx_outputs_primary ON {schema}.data_pipeline_task_outputs (is_primary) WHERE is_primary = TRUE;
