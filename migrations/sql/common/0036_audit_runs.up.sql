-- audit_runs keeps each audit a DPO or administrator ran and stored: who
-- ran it (an account id), when, under which policy revision, its worst
-- status, how many findings and warnings it had, and the report as JSON.
-- The report names tables, ids, categories and counts, never a personal
-- value. The console shows the history and what changed between runs.
CREATE TABLE audit_runs (
    id              TEXT        NOT NULL PRIMARY KEY,
    actor_id        TEXT        NOT NULL,
    ran_at          TIMESTAMPTZ NOT NULL,
    policy_revision TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('ok', 'warning', 'finding')),
    findings        BIGINT      NOT NULL,
    warnings        BIGINT      NOT NULL,
    report          TEXT        NOT NULL
);

CREATE INDEX audit_runs_ran_idx ON audit_runs (ran_at);
