-- Accounts: users, their sessions, API tokens, sign-in history and
-- device bindings, and the hash-chained admin audit log. Portable SQL for
-- both dialects.
--
-- Foreign keys decide what an erasure of a user row takes with it, so each
-- is chosen to match the category's erasure rule in the taxonomy:
--   - sessions, api_tokens and sign_in_events are deleted with the account
--     (ON DELETE CASCADE): their categories are erased with it.
--   - device_bindings has no foreign key: user.security.device_binding is
--     kept after an erasure until its retention ends, with the user id
--     replaced by a random one, which a foreign key would refuse.
--   - admin_log has no foreign key either: the log must outlive the
--     accounts it names, and its hash chain covers the ids, so they can
--     be neither cascaded away nor nulled.

-- users holds one row per account. google_sub is NULL for accounts made
-- by email (the CLI, dev sign-in) until they sign in with Google; a
-- unique index allows many NULLs on both dialects. Emails are stored in
-- lower case, so the unique index is case-insensitive in effect.
CREATE TABLE users (
    id          TEXT        NOT NULL PRIMARY KEY,
    google_sub  TEXT,
    email       TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    avatar_url  TEXT        NOT NULL,
    language    TEXT        NOT NULL,
    role        TEXT        NOT NULL CHECK (role IN ('user', 'support', 'analyst', 'dpo', 'admin')),
    status      TEXT        NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE UNIQUE INDEX users_google_sub_key ON users (google_sub);
CREATE UNIQUE INDEX users_email_key ON users (email);

-- sessions are server-side: the cookie holds a random secret and this
-- table only its SHA-256. A session ends at expires_at (absolute) or when
-- it has been idle for the configured time since last_seen_at.
CREATE TABLE sessions (
    id           TEXT        NOT NULL PRIMARY KEY,
    user_id      TEXT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash  TEXT        NOT NULL,
    ua_family    TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);

CREATE UNIQUE INDEX sessions_secret_hash_key ON sessions (secret_hash);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- api_tokens are bearer tokens for programs and the CLI, stored as the
-- SHA-256 of the token.
CREATE TABLE api_tokens (
    id           TEXT        NOT NULL PRIMARY KEY,
    user_id      TEXT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash  TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);

CREATE UNIQUE INDEX api_tokens_secret_hash_key ON api_tokens (secret_hash);
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);

-- sign_in_events is the sign-in history: one row per sign-in, sign-out
-- and session revocation.
CREATE TABLE sign_in_events (
    id          TEXT        NOT NULL PRIMARY KEY,
    user_id     TEXT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    occurred_at TIMESTAMPTZ NOT NULL,
    event       TEXT        NOT NULL,
    method      TEXT        NOT NULL,
    ua_family   TEXT        NOT NULL
);

CREATE INDEX sign_in_events_user_id_idx ON sign_in_events (user_id, occurred_at);
CREATE INDEX sign_in_events_occurred_at_idx ON sign_in_events (occurred_at);

-- device_bindings links a first-party device id (its SHA-256 only) to the
-- accounts that signed in from it.
CREATE TABLE device_bindings (
    id            TEXT        NOT NULL PRIMARY KEY,
    device_hash   TEXT        NOT NULL,
    user_id       TEXT        NOT NULL,
    ua_family     TEXT        NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL
);

CREATE UNIQUE INDEX device_bindings_device_user_key ON device_bindings (device_hash, user_id);
CREATE INDEX device_bindings_user_id_idx ON device_bindings (user_id);
CREATE INDEX device_bindings_last_seen_at_idx ON device_bindings (last_seen_at);

-- admin_log is the append-only, hash-chained log of staff actions. details
-- is TEXT on PostgreSQL too, never jsonb: the hash covers the stored text
-- byte for byte, and jsonb would rewrite it. The unique prev_hash means two
-- entries can never follow the same predecessor, so the chain cannot fork.
CREATE TABLE admin_log (
    seq         BIGINT      NOT NULL PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_id    TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    target_id   TEXT        NOT NULL,
    details     TEXT        NOT NULL,
    prev_hash   TEXT        NOT NULL,
    hash        TEXT        NOT NULL
);

CREATE UNIQUE INDEX admin_log_prev_hash_key ON admin_log (prev_hash);
CREATE INDEX admin_log_target_id_idx ON admin_log (target_id);
CREATE INDEX admin_log_occurred_at_idx ON admin_log (occurred_at);
