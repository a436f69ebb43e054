-- Support: tickets of signed-in users with their conversation and
-- attachments, and feedback sent by signed-out visitors.

-- support_tickets holds one row per ticket. user_id is the user the ticket
-- is about and who opened it.
CREATE TABLE support_tickets (
    id            TEXT        NOT NULL PRIMARY KEY,
    user_id       TEXT        NOT NULL,
    subject       TEXT        NOT NULL,
    contact_email TEXT        NOT NULL,
    status        TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX support_tickets_user_idx ON support_tickets (user_id, created_at);
CREATE INDEX support_tickets_status_idx ON support_tickets (status, created_at);

-- support_messages is the conversation of a ticket. user_id repeats the
-- ticket's owner so the subject's rows are found without a join.
CREATE TABLE support_messages (
    id          TEXT        NOT NULL PRIMARY KEY,
    ticket_id   TEXT        NOT NULL REFERENCES support_tickets (id) ON DELETE CASCADE,
    user_id     TEXT        NOT NULL,
    author_id   TEXT        NOT NULL,
    author_role TEXT        NOT NULL,
    body        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX support_messages_ticket_idx ON support_messages (ticket_id, created_at);
CREATE INDEX support_messages_user_idx ON support_messages (user_id);

-- support_attachments references uploaded assets attached to a message;
-- the file itself stays with the assets module.
CREATE TABLE support_attachments (
    id         TEXT        NOT NULL PRIMARY KEY,
    ticket_id  TEXT        NOT NULL REFERENCES support_tickets (id) ON DELETE CASCADE,
    message_id TEXT        NOT NULL REFERENCES support_messages (id) ON DELETE CASCADE,
    user_id    TEXT        NOT NULL,
    asset_id   TEXT        NOT NULL,
    file_name  TEXT        NOT NULL,
    mime_type  TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX support_attachments_ticket_idx ON support_attachments (ticket_id);
CREATE INDEX support_attachments_user_idx ON support_attachments (user_id);

-- support_feedback holds messages from the feedback form for signed-out
-- visitors. It has no user id: the contact email is the only way back.
CREATE TABLE support_feedback (
    id         TEXT        NOT NULL PRIMARY KEY,
    email      TEXT        NOT NULL,
    name       TEXT        NOT NULL,
    message    TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX support_feedback_email_idx ON support_feedback (email);
