-- retention_runs holds the report of each retention run: what was deleted
-- or anonymized, how many rows, under which policy revision. The audit
-- reads it to show retention is enforced.
CREATE TABLE retention_runs (
    id              TEXT        NOT NULL PRIMARY KEY,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL,
    dry_run         BOOLEAN     NOT NULL,
    policy_revision TEXT        NOT NULL,
    rows_affected   BIGINT      NOT NULL,
    report          TEXT        NOT NULL
);

CREATE INDEX retention_runs_started_idx ON retention_runs (started_at);
