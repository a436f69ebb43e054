-- conversions holds the conversions among events (signup and purchase
-- events, custom conversions included), kept by a materialized view as
-- events arrive. Attribution reads them here: in events they are one row in
-- fifty, spread over every day's granules, so reading them there means
-- reading most of the table (docs/scaling.md, "Attribution").
--
-- ReplacingMergeTree keyed on the event id, like events: a resent
-- conversion is an exact copy, and merges keep one. order_id is the
-- order a purchase names in its props, which attribution nets refunds by.
--
-- Erasure, export and retention reach the table through its column
-- categories, as they reach events. TTL follows events.
CREATE TABLE IF NOT EXISTS conversions
(
    event_id         String                 COMMENT 'system.operations',
    event_time       DateTime64(3, 'UTC')   COMMENT 'user.behavior.timestamp,collected',
    event_type       LowCardinality(String) COMMENT 'user.behavior.browsing_history',
    event_name       LowCardinality(String) COMMENT 'user.behavior.browsing_history',
    user_id          String                 COMMENT 'user.unique_id,subject',
    visitor_id       String                 COMMENT 'user.unique_id.analytics_id,subject',
    order_id         String                 COMMENT 'user.financial.order',
    conversion_value Decimal(18, 4)         COMMENT 'user.financial.price',
    currency         LowCardinality(String) COMMENT 'user.financial.currency'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_name, event_time, event_id)
TTL toDateTime(event_time) + INTERVAL 25 MONTH
COMMENT 'Conversions (signup and purchase events), kept from events for attribution.';

CREATE MATERIALIZED VIEW IF NOT EXISTS conversions_from_events TO conversions AS
SELECT event_id, event_time, event_type, event_name,
       ifNull(user_id, '') AS user_id,
       visitor_id,
       if(event_type = 'purchase', JSONExtractString(props, 'order_id'), '') AS order_id,
       conversion_value, currency
FROM events
WHERE event_type IN ('signup', 'purchase');

-- The conversions stored before this migration.
INSERT INTO conversions
SELECT event_id, event_time, event_type, event_name,
       ifNull(user_id, '') AS user_id,
       visitor_id,
       if(event_type = 'purchase', JSONExtractString(props, 'order_id'), '') AS order_id,
       conversion_value, currency
FROM events
WHERE event_type IN ('signup', 'purchase');
