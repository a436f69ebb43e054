-- visitor_links records every sign-in of an account on a browser: the
-- browser's visitor id (the steward_vid cookie), the account, and when.
--
-- It decides whose anonymous records of a shared browser are whose (the
-- identity rule in docs/policies.md): the anonymous events and choices of
-- a browser belong to the account that next signs in on it. Access
-- exports, erasures and attribution read the stretches this table gives;
-- an erasure deletes the subject's rows, and the records they linked go
-- with them.
--
-- Sign-ins recorded before this table existed are taken from the consent
-- proofs that merged a visitor's choices into an account at sign-in.
CREATE TABLE visitor_links (
    id         TEXT        NOT NULL PRIMARY KEY,
    visitor_id TEXT        NOT NULL,
    user_id    TEXT        NOT NULL,
    linked_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX visitor_links_visitor_idx ON visitor_links (visitor_id, linked_at);
CREATE INDEX visitor_links_user_idx ON visitor_links (user_id);

INSERT INTO visitor_links (id, visitor_id, user_id, linked_at)
SELECT change_id, MIN(visitor_id), MIN(user_id), MIN(recorded_at)
FROM consent_log
WHERE method = 'merge' AND visitor_id IS NOT NULL AND user_id IS NOT NULL
GROUP BY change_id;
