-- The event store takes every event of every task (issue 11, goal 1): each index is paid on each insert.
-- idx_events_type (type alone) served no query: every read is per task (task_id, seq) or by event_id,
-- and the scheduler's scan for finished tasks (shared/event_store.py, _FINISHED_TASKS) reads only the
-- lifecycle types, which the partial index below holds (about one event in ten) while heartbeats,
-- progress and log lines skip it.

CREATE INDEX IF NOT EXISTS idx_events_lifecycle ON {schema}.data_pipeline_events (task_id, seq)
    WHERE type IN ('task_created', 'task_rerun_requested', 'task_finished', 'task_logs_purged',
                   'task_files_cleaned', 'task_deleted');
DROP INDEX IF EXISTS {schema}.idx_events_type;
