-- PostgreSQL version of common/0001_platform.up.sql: the same tables and
-- columns, with the decision result stored as jsonb instead of text so it
-- is validated on write and can be queried by key.

-- decision_log keeps every decision of the embedded policy engine, which
-- records none itself: what was decided, under which policy revision, over
-- which input (its digest only) and with which result.
CREATE TABLE decision_log (
    id           TEXT        NOT NULL PRIMARY KEY,
    decided_at   TIMESTAMPTZ NOT NULL,
    policy       TEXT        NOT NULL,
    revision     TEXT        NOT NULL,
    input_digest TEXT        NOT NULL,
    allowed      BOOLEAN,
    result       JSONB       NOT NULL,
    subject_ref  TEXT
);

CREATE INDEX decision_log_decided_at_idx ON decision_log (decided_at);
CREATE INDEX decision_log_subject_ref_idx ON decision_log (subject_ref);

-- settings holds small per-instance values, such as the id of the
-- instance's signing key.
CREATE TABLE settings (
    key        TEXT        NOT NULL PRIMARY KEY,
    value      TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
