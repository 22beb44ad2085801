-- Events carry the version of their payload's shape (issue 8, point 4). Rows stored before this
-- migration are version 1; shared/event_store.py upcasts older versions to the current shape on read.
ALTER TABLE {schema}.data_pipeline_events ADD COLUMN IF NOT EXISTS version SMALLINT NOT NULL DEFAULT 1;
