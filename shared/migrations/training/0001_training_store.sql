-- The training-data store (shared/training_store.py), applied to DP_TRAINING_SCHEMA in the training
-- database (DP_TRAINING_DATABASE_URL, or the pipeline database) by shared.training_store.ensure_schema.
-- Written with IF NOT EXISTS throughout: stores created before this migration existed (by the DDL the
-- step runner used to issue) already hold some or all of it, and only what they lack is added.
CREATE TABLE IF NOT EXISTS {schema}.training_data (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('ddl', 'documentation', 'question_sql')),
    content         text NOT NULL,
    question        text,
    sql             text,
    table_name      text,
    source_task_id  text,
    source_file     text,
    content_hash    text NOT NULL,
    embedding       real[] NOT NULL,
    dimensions      integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, content_hash)
);
CREATE INDEX IF NOT EXISTS training_data_task_idx ON {schema}.training_data (source_task_id);
CREATE INDEX IF NOT EXISTS training_data_kind_dims_idx ON {schema}.training_data (kind, dimensions, id);

CREATE TABLE IF NOT EXISTS {schema}.training_loads (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id         text NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    inserted        jsonb NOT NULL,
    already_present jsonb NOT NULL,
    backup_table    text
);
ALTER TABLE {schema}.training_loads ADD COLUMN IF NOT EXISTS removed jsonb;

CREATE TABLE IF NOT EXISTS {schema}.training_data_sources (
    data_id         bigint NOT NULL REFERENCES {schema}.training_data (id) ON DELETE CASCADE,
    task_id         text NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (data_id, task_id)
);
CREATE INDEX IF NOT EXISTS training_data_sources_task_idx ON {schema}.training_data_sources (task_id);
ALTER TABLE {schema}.training_data_sources ADD COLUMN IF NOT EXISTS db_name text;
CREATE INDEX IF NOT EXISTS training_data_sources_db_idx ON {schema}.training_data_sources (db_name);
