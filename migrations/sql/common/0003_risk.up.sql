-- The abuse-prevention log: rate-limit hits, failed sign-ins and later
-- other abuse signals, with the rule that fired. Client addresses are
-- stored truncated (/24 for IPv4, /48 for IPv6), never whole.
--
-- user_id has no foreign key: user.security.abuse_log is kept after an
-- erasure until its retention ends (the user id replaced by a random one),
-- and many events (a failed sign-in) belong to no known account.
CREATE TABLE abuse_events (
    id           TEXT        NOT NULL PRIMARY KEY,
    occurred_at  TIMESTAMPTZ NOT NULL,
    kind         TEXT        NOT NULL,
    user_id      TEXT,
    ip_truncated TEXT        NOT NULL,
    ua_family    TEXT        NOT NULL,
    detail       TEXT        NOT NULL
);

CREATE INDEX abuse_events_occurred_at_idx ON abuse_events (occurred_at);
CREATE INDEX abuse_events_user_id_idx ON abuse_events (user_id);
CREATE INDEX abuse_events_ip_idx ON abuse_events (ip_truncated, occurred_at);
