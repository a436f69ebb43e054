-- A visitor who never signed in files privacy requests about what their
-- browser holds. visitor_id is the visitor id of the consent cookie that
-- filed the request (user_id and email are empty then); browsing_after is
-- the browser's last sign-in before the request, which starts the stretch
-- of browsing the request covers (NULL when no one ever signed in on it);
-- language is the language the visitor's pages spoke, in which the access
-- package speaks.
ALTER TABLE privacy_requests ADD COLUMN visitor_id TEXT NOT NULL DEFAULT '';
ALTER TABLE privacy_requests ADD COLUMN browsing_after TIMESTAMPTZ;
ALTER TABLE privacy_requests ADD COLUMN language TEXT NOT NULL DEFAULT '';

CREATE INDEX privacy_requests_visitor_idx ON privacy_requests (visitor_id, received_at);
