-- Privacy requests: access (GDPR Art. 15, 20) and erasure (Art. 17)
-- requests, their audit trail, and the steps an erasure has completed so a
-- crashed erasure resumes where it stopped.

-- privacy_requests holds one row per request. user_id is the subject's
-- account id (empty when the subject has no account), email the address
-- the request names. due_at is one month from receipt (Art. 12(3)).
CREATE TABLE privacy_requests (
    id               TEXT        NOT NULL PRIMARY KEY,
    type             TEXT        NOT NULL,
    status           TEXT        NOT NULL,
    user_id          TEXT        NOT NULL,
    email            TEXT        NOT NULL,
    requested_by     TEXT        NOT NULL,
    on_behalf        BOOLEAN     NOT NULL,
    reason           TEXT        NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL,
    due_at           TIMESTAMPTZ NOT NULL,
    extension_reason TEXT        NOT NULL,
    completed_at     TIMESTAMPTZ,
    failure          TEXT        NOT NULL,
    package_path     TEXT        NOT NULL,
    package_size     BIGINT      NOT NULL,
    certificate      TEXT        NOT NULL,
    policy_revision  TEXT        NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE INDEX privacy_requests_user_idx ON privacy_requests (user_id, received_at);
CREATE INDEX privacy_requests_status_idx ON privacy_requests (status, received_at);

-- privacy_request_events is the audit trail of a request: every status
-- change, extension and download, with who acted.
CREATE TABLE privacy_request_events (
    id         TEXT        NOT NULL PRIMARY KEY,
    request_id TEXT        NOT NULL REFERENCES privacy_requests (id) ON DELETE CASCADE,
    user_id    TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    event      TEXT        NOT NULL,
    actor_id   TEXT        NOT NULL,
    note       TEXT        NOT NULL
);

CREATE INDEX privacy_request_events_request_idx ON privacy_request_events (request_id, at);

-- privacy_erasure_steps records each completed step of an erasure (one per
-- store table, warehouse table and module hook) with what it did, so a rerun
-- skips finished steps. result holds counts only, never a personal value.
CREATE TABLE privacy_erasure_steps (
    request_id TEXT        NOT NULL REFERENCES privacy_requests (id) ON DELETE CASCADE,
    step       TEXT        NOT NULL,
    done_at    TIMESTAMPTZ NOT NULL,
    result     TEXT        NOT NULL,
    PRIMARY KEY (request_id, step)
);
