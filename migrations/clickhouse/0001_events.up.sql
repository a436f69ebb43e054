-- events holds the consented analytics events: page views, conversions and
-- custom events sent by the tracker, enriched with attribution at ingest.
--
-- ReplacingMergeTree keyed on event_id: the tracker and the ingest spool
-- resend an event with the same event_id when a delivery is not confirmed,
-- and merges keep one copy (the latest received_at). Until a merge runs a
-- duplicate can still be seen, so exact counts use uniqExact(event_id) or
-- FINAL.
--
-- PARTITION BY month: retention drops and TTL work part by part, and a time
-- range query reads only the months it covers.
--
-- ORDER BY (toDate(event_time), event_type, visitor_id, event_time, event_id):
-- analytics queries filter on a time range first, and ClickHouse derives a
-- day range from an event_time condition because toDate is monotonic, so the
-- key prunes to the days asked for without storing a separate date column.
-- event_type comes next because it has a handful of values and attribution
-- reads conversions apart from page views. Inside one day and type the rows
-- are sorted by visitor_id, so an erasure (DELETE ... WHERE visitor_id = ...)
-- skips every granule that cannot hold the visitor instead of reading the
-- whole table. user_id is not in the key (most events are anonymous), and its
-- bloom filter index gives erasures by account the same skipping.
--
-- TTL: events are kept 25 months after event_time, and the retention policy
-- changes it with ALTER TABLE events MODIFY TTL.
CREATE TABLE IF NOT EXISTS events
(
    event_id         String                          COMMENT 'system.operations',
    event_time       DateTime64(3, 'UTC')            COMMENT 'user.behavior.timestamp',
    received_at      DateTime64(3, 'UTC')            COMMENT 'user.behavior.timestamp',
    event_type       LowCardinality(String)          COMMENT 'user.behavior.browsing_history',
    event_name       LowCardinality(String)          COMMENT 'user.behavior.browsing_history',
    user_id          Nullable(String)                COMMENT 'user.unique_id,subject',
    visitor_id       String                          COMMENT 'user.unique_id.analytics_id,subject',
    session_id       String                          COMMENT 'user.device.session_id',
    path             String                          COMMENT 'user.behavior.browsing_history',
    landing_page     String                          COMMENT 'user.behavior.attribution.landing_page',
    referrer         String                          COMMENT 'user.behavior.browsing_history.referrer',
    referrer_host    LowCardinality(String)          COMMENT 'user.behavior.browsing_history.referrer',
    source           LowCardinality(String)          COMMENT 'user.behavior.attribution.utm',
    medium           LowCardinality(String)          COMMENT 'user.behavior.attribution.utm',
    campaign         LowCardinality(String)          COMMENT 'user.behavior.attribution.utm',
    term             String                          COMMENT 'user.behavior.attribution.utm',
    content          String                          COMMENT 'user.behavior.attribution.utm',
    channel          LowCardinality(String)          COMMENT 'user.behavior.attribution.utm',
    click_id_type    LowCardinality(String)          COMMENT 'user.behavior.attribution.click_id',
    click_id         String                          COMMENT 'user.behavior.attribution.click_id',
    browser          LowCardinality(String)          COMMENT 'user.device.browser',
    os               LowCardinality(String)          COMMENT 'user.device.browser',
    device_class     LowCardinality(String)          COMMENT 'user.device.browser',
    screen           LowCardinality(String)          COMMENT 'user.device.browser',
    language         LowCardinality(String)          COMMENT 'user.device.browser',
    ip_truncated     String                          COMMENT 'user.device.ip_address',
    consent_purposes Array(LowCardinality(String))   COMMENT 'user.consent.record',
    conversion_value Decimal(18, 4)                  COMMENT 'user.financial.price',
    currency         LowCardinality(String)          COMMENT 'user.financial.currency',
    props            String                          COMMENT 'user.behavior.feature_interaction',
    INDEX user_id_bloom user_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (toDate(event_time), event_type, visitor_id, event_time, event_id)
TTL toDateTime(event_time) + INTERVAL 25 MONTH
COMMENT 'Consented analytics events (page views, conversions, custom events) with attribution.';
