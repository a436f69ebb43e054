-- Generation: projects, generation tasks with every creative input, their
-- outputs, and the prompt-safety result of every request. Portable SQL for
-- both dialects.
--
-- No foreign key points at users: the governance package erases these rows
-- through the data map (user_id is the subject column of each table), and
-- prompt_safety_results must outlive an erasure for the time its category
-- is kept, which a cascade would defeat.

-- projects group a user's generations.
CREATE TABLE projects (
    id         TEXT        NOT NULL PRIMARY KEY,
    user_id    TEXT        NOT NULL,
    name       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX projects_user_id_idx ON projects (user_id, created_at);

-- generations holds one row per task. status moves queued -> running ->
-- succeeded | failed; a worker claims a task with a conditional UPDATE on
-- status, so two workers never run it at once. heartbeat_at is renewed
-- while a task runs; a running task whose heartbeat is older than the
-- lease was left by a stopped process and is queued again.
CREATE TABLE generations (
    id               TEXT        NOT NULL PRIMARY KEY,
    user_id          TEXT        NOT NULL,
    project_id       TEXT,
    prompt           TEXT        NOT NULL,
    negative_prompt  TEXT        NOT NULL,
    model            TEXT        NOT NULL,
    kind             TEXT        NOT NULL CHECK (kind IN ('image', 'video')),
    aspect_ratio     TEXT        NOT NULL,
    resolution       TEXT        NOT NULL,
    duration_seconds BIGINT      NOT NULL,
    audio            BOOLEAN     NOT NULL,
    watermark        BOOLEAN     NOT NULL,
    seed             BIGINT      NOT NULL,
    refs             TEXT        NOT NULL,
    status           TEXT        NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    failure_reason   TEXT,
    provider         TEXT        NOT NULL,
    provider_task_id TEXT,
    cost_credits     BIGINT      NOT NULL,
    reservation_id   TEXT,
    attempts         BIGINT      NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    heartbeat_at     TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ
);

CREATE INDEX generations_user_id_idx ON generations (user_id, created_at, id);
CREATE INDEX generations_status_idx ON generations (status, created_at);

-- generation_outputs lists the assets a task produced, in order.
CREATE TABLE generation_outputs (
    generation_id TEXT        NOT NULL,
    position      BIGINT      NOT NULL,
    user_id       TEXT        NOT NULL,
    asset_id      TEXT        NOT NULL,
    mime_type     TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (generation_id, position)
);

CREATE INDEX generation_outputs_user_id_idx ON generation_outputs (user_id);

-- prompt_safety_results keeps the safety check of every request, allowed
-- or not. violation is true when the request was refused; the text checked
-- is not repeated here, only the categories that matched.
CREATE TABLE prompt_safety_results (
    id            TEXT        NOT NULL PRIMARY KEY,
    user_id       TEXT        NOT NULL,
    generation_id TEXT,
    allowed       BOOLEAN     NOT NULL,
    violation     BOOLEAN     NOT NULL,
    flags         TEXT        NOT NULL,
    reason        TEXT        NOT NULL,
    revision      TEXT        NOT NULL,
    decision_id   TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX prompt_safety_results_user_id_idx ON prompt_safety_results (user_id, created_at);
