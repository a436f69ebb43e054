-- The platform's own tables. This file is portable SQL and runs as is on
-- SQLite; postgres/0001_platform.up.sql replaces it to store decision
-- results as jsonb.
--
-- Times are TIMESTAMPTZ: a real timestamp with time zone in PostgreSQL, and
-- in SQLite a text column that bun writes as UTC "YYYY-MM-DD HH:MM:SS.ffffff+00:00",
-- which sorts and compares in time order. Primary keys say NOT NULL because
-- SQLite, unlike PostgreSQL, lets a non-integer primary key hold NULL.

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
    result       TEXT        NOT NULL,
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
