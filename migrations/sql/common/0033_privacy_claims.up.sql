-- privacy_request_claims holds the lease of each privacy request a process
-- is working on. Several processes may serve one database (serve instances,
-- a dsar command): a process runs a request only after it inserted, or took
-- over an expired, row here. It renews claimed_until while the work runs and
-- deletes the row when it ends; a process that dies leaves a lease that
-- expires, and another process resumes the request (an erasure resumes step
-- by step from privacy_erasure_steps).
--
-- claimed_by names the holding process and its claim (host, pid, random
-- suffixes), never a person. The lease is no data about the subject, so it
-- lives apart from the request: access exports, erasures and retention read
-- the request without it.
CREATE TABLE privacy_request_claims (
    request_id    TEXT        NOT NULL PRIMARY KEY REFERENCES privacy_requests (id) ON DELETE CASCADE,
    claimed_by    TEXT        NOT NULL,
    claimed_at    TIMESTAMPTZ NOT NULL,
    claimed_until TIMESTAMPTZ NOT NULL
);

CREATE INDEX privacy_request_claims_until_idx ON privacy_request_claims (claimed_until);
