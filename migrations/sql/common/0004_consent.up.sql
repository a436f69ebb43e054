-- Consent: the current choice of each subject per purpose, and the
-- append-only proof log of every choice.
--
-- A subject is a browser (visitor_id, the random id in the steward_vid
-- cookie) or an account (user_id). consent_state holds one row per subject
-- and purpose (necessary, functional, analytics, marketing); each row has
-- either visitor_id or user_id. A choice replaces the subject's rows; the
-- unique indexes keep one row per subject and purpose (NULLs never clash).
--
-- consent_log is the proof the controller must be able to show (GDPR Art.
-- 7(1)): who chose what, how (method), under which privacy policy and
-- banner version, when, from which browser family and truncated address.
-- Its rows are never updated or deleted except by retention and erasure;
-- erasure replaces visitor_id and user_id with subject_hash, a keyed hash,
-- so the proof stays verifiable without naming the person. change_id
-- groups the rows of one choice. gpc records that the Global Privacy
-- Control signal was on when the choice was made: a marketing grant made
-- while it was on is an explicit opt-in the signal does not override.
CREATE TABLE consent_state (
    id             TEXT        NOT NULL PRIMARY KEY,
    visitor_id     TEXT,
    user_id        TEXT,
    purpose        TEXT        NOT NULL,
    granted        BOOLEAN     NOT NULL,
    method         TEXT        NOT NULL,
    gpc            BOOLEAN     NOT NULL,
    policy_version TEXT        NOT NULL,
    banner_version TEXT        NOT NULL,
    decided_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    proof_id       TEXT        NOT NULL
);

CREATE UNIQUE INDEX consent_state_visitor_idx ON consent_state (visitor_id, purpose);
CREATE UNIQUE INDEX consent_state_user_idx ON consent_state (user_id, purpose);

CREATE TABLE consent_log (
    id             TEXT        NOT NULL PRIMARY KEY,
    change_id      TEXT        NOT NULL,
    visitor_id     TEXT,
    user_id        TEXT,
    subject_hash   TEXT,
    purpose        TEXT        NOT NULL,
    granted        BOOLEAN     NOT NULL,
    method         TEXT        NOT NULL,
    gpc            BOOLEAN     NOT NULL,
    policy_version TEXT        NOT NULL,
    banner_version TEXT        NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    user_agent     TEXT        NOT NULL,
    ip_truncated   TEXT        NOT NULL
);

CREATE INDEX consent_log_visitor_idx ON consent_log (visitor_id);
CREATE INDEX consent_log_user_idx ON consent_log (user_id);
CREATE INDEX consent_log_recorded_at_idx ON consent_log (recorded_at);
