-- visitor_links is the warehouse's copy of the SQL store's browser
-- sign-ins: which account signed in on which browser (visitor id), when.
-- Attribution places each anonymous event with the account that next
-- signed in on its browser, the identity rule of docs/policies.md, with an
-- ASOF JOIN on this table. The SQL table is the record, and a sign-in writes
-- both.
--
-- ReplacingMergeTree keyed on the link's id: a copy written twice is kept
-- once. ORDER BY starts with visitor_id, the join key. The TTL follows the
-- retention of the visitor ids it places (user.device.cookie_id).
CREATE TABLE IF NOT EXISTS visitor_links
(
    link_id    String               COMMENT 'system.operations',
    visitor_id String               COMMENT 'user.device.cookie_id,subject',
    user_id    String               COMMENT 'user.unique_id,subject',
    linked_at  DateTime64(3, 'UTC') COMMENT 'user.device.cookie_id,collected'
)
ENGINE = ReplacingMergeTree
ORDER BY (visitor_id, linked_at, link_id)
TTL toDateTime(linked_at) + INTERVAL 13 MONTH
COMMENT 'Browser sign-ins, copied from the SQL store, for attribution by the identity rule.';
