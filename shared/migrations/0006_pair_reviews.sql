-- Review before load (issue 12, part 1): a task with review_before_load waits as `awaiting_review`
-- after sql_validation, and a person decides on each question/SQL pair before step 4 loads them.
-- pair_reviews is a read model (the log collector writes it from pair_reviewed events): one row per
-- decided pair of the task's current review, with the pair's question and SQL after the decision.
-- The decisions themselves, who made them and what changed, stay in the event store.

ALTER TABLE {schema}.data_pipeline_tasks DROP CONSTRAINT IF EXISTS data_pipeline_tasks_status_check;
ALTER TABLE {schema}.data_pipeline_tasks ADD CONSTRAINT data_pipeline_tasks_status_check
    CHECK (status IN ('pending', 'in_progress', 'awaiting_review', 'partial_completed', 'completed',
                      'failed', 'cancelled'));

CREATE TABLE IF NOT EXISTS {schema}.pair_reviews (
    task_id         VARCHAR(32) NOT NULL REFERENCES {schema}.data_pipeline_tasks (id) ON DELETE CASCADE,
    pair_id         VARCHAR(64) NOT NULL,
    status          VARCHAR(10) NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decision        VARCHAR(10) NOT NULL CHECK (decision IN ('approve', 'reject', 'edit')),
    question        TEXT NOT NULL,
    sql             TEXT NOT NULL,
    edited          BOOLEAN NOT NULL DEFAULT FALSE,
    sql_valid       BOOLEAN,
    sql_error       TEXT,
    actor           VARCHAR(64) NOT NULL,
    actor_role      VARCHAR(16) NOT NULL,
    reviewed_at     TIMESTAMPTZ NOT NULL,
    last_event_seq  BIGINT NOT NULL,
    PRIMARY KEY (task_id, pair_id)
);
