-- Rewards: daily check-ins and one-time reward tasks, and the credits each
-- gave. The credits themselves live in the billing ledger; this table is the
-- record of what was earned and when, and it is what stops a second grant.
--
-- day is the calendar day of the grant (YYYY-MM-DD) in the time zone the
-- risk module is configured with; task names the reward task and is empty
-- for a check-in.
--
-- user_id has no foreign key, as in every table of the risk module: the
-- record is erased with the account through the data map, not by cascade.
CREATE TABLE reward_records (
    id         TEXT        NOT NULL PRIMARY KEY,
    user_id    TEXT        NOT NULL,
    kind       TEXT        NOT NULL,
    task       TEXT        NOT NULL,
    day        TEXT        NOT NULL,
    credits    BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One check-in per user and day, one grant per user and task, however many
-- requests race: the losers' inserts do nothing.
CREATE UNIQUE INDEX reward_records_checkin_idx ON reward_records (user_id, day) WHERE kind = 'checkin';
CREATE UNIQUE INDEX reward_records_task_idx ON reward_records (user_id, task) WHERE kind = 'task';
CREATE INDEX reward_records_user_idx ON reward_records (user_id, created_at);
CREATE INDEX reward_records_created_at_idx ON reward_records (created_at);
