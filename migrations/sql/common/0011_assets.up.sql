-- Assets: uploaded files and generated media. The bytes live in the files
-- dir at storage_path, a path built from ids only (never from the file
-- name, which is kept for display). Portable SQL for both dialects.
CREATE TABLE assets (
    id           TEXT        NOT NULL PRIMARY KEY,
    user_id      TEXT        NOT NULL,
    purpose      TEXT        NOT NULL,
    file_name    TEXT        NOT NULL,
    size_bytes   BIGINT      NOT NULL,
    mime_type    TEXT        NOT NULL,
    sha256       TEXT        NOT NULL,
    width        BIGINT      NOT NULL,
    height       BIGINT      NOT NULL,
    storage_path TEXT        NOT NULL,
    preview_path TEXT,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX assets_user_id_idx ON assets (user_id, created_at);
