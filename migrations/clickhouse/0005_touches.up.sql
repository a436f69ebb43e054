-- touches holds one row per visit: the first page view of each session of
-- each identity, kept by a materialized view as events arrive. Attribution
-- credits visits rather than page views: the page views of one session
-- share their landing page, source, medium, campaign and channel (the
-- tracker sends the session's, see analytics/enrich), so a visit is one
-- touch however many pages it shows, and a report reads about one row per
-- visit instead of one per page view (docs/scaling.md, "Attribution").
--
-- A session is the tracker's session id, or the event id of a page view
-- sent without one (then every such page view is a visit of its own). The
-- key keeps identities apart: a tab where someone signs in mid-session
-- gives an anonymous touch and a signed-in one, and a shared computer never
-- mixes two accounts in one row.
--
-- ReplacingMergeTree(precedence), where precedence falls as touch_time
-- rises: merges keep each session's earliest page view, and a page view
-- resent with the same event id changes nothing. Until parts merge a
-- session can have several rows, so readers use FINAL, which
-- do_not_merge_across_partitions_select_final keeps to the partitions that
-- still have several parts. A session that runs over the end of a month is
-- a visit in each month.
--
-- Erasure, export and retention reach the table through its column
-- categories, as they reach events. TTL follows events.
CREATE TABLE IF NOT EXISTS touches
(
    visitor_id   String                 COMMENT 'user.unique_id.analytics_id,subject',
    user_id      String                 COMMENT 'user.unique_id,subject',
    session_id   String                 COMMENT 'user.device.session_id',
    touch_time   DateTime64(3, 'UTC')   COMMENT 'user.behavior.timestamp,collected',
    precedence   UInt64                 COMMENT 'system.operations',
    landing_page String                 COMMENT 'user.behavior.attribution.landing_page',
    source       LowCardinality(String) COMMENT 'user.behavior.attribution.utm',
    medium       LowCardinality(String) COMMENT 'user.behavior.attribution.utm',
    campaign     LowCardinality(String) COMMENT 'user.behavior.attribution.utm',
    channel      LowCardinality(String) COMMENT 'user.behavior.attribution.utm'
)
ENGINE = ReplacingMergeTree(precedence)
PARTITION BY toYYYYMM(touch_time)
ORDER BY (visitor_id, user_id, session_id)
TTL toDateTime(touch_time) + INTERVAL 25 MONTH
COMMENT 'Visits (the first page view of each session), kept from events for attribution.';

CREATE MATERIALIZED VIEW IF NOT EXISTS touches_from_events TO touches AS
SELECT visitor_id,
       ifNull(user_id, '') AS user_id,
       if(session_id = '', event_id, session_id) AS session_id,
       event_time AS touch_time,
       toUInt64(9223372036854775807 - toUnixTimestamp64Milli(event_time)) AS precedence,
       landing_page, source, medium, campaign, channel
FROM events
WHERE event_type = 'page_view' AND (visitor_id != '' OR ifNull(user_id, '') != '');

-- The page views stored before this migration.
INSERT INTO touches
SELECT visitor_id,
       ifNull(user_id, '') AS user_id,
       if(session_id = '', event_id, session_id) AS session_id,
       event_time AS touch_time,
       toUInt64(9223372036854775807 - toUnixTimestamp64Milli(event_time)) AS precedence,
       landing_page, source, medium, campaign, channel
FROM events
WHERE event_type = 'page_view' AND (visitor_id != '' OR ifNull(user_id, '') != '');
