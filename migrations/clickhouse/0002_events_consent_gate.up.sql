-- Brings the events table in step with the consent gate and the retention
-- data.
--
-- channel: under analytics-only consent the gate keeps the channel derived
-- from the referrer host (search, social, referral, direct) while it strips
-- the UTM parameters. The column is therefore tagged with the referrer's
-- category, whose host-only tier is exactly what such a channel reveals.
-- Under marketing consent the channel may also come from UTM parameters,
-- which that consent allows.
--
-- event_id_bloom: after a crash or a failed insert the ingest drainer asks
-- which ids of a batch are stored already before it sends the batch again.
-- The index lets that query skip the granules that cannot hold the ids.
--
-- TTL: the retention data keeps usage and attribution data 13 months from
-- collection (taxonomy user.behavior.*, P13M) and the truncated IP address
-- 30 days (user.device.ip_address, P30D, then anonymized: the column is
-- emptied and the event kept).
ALTER TABLE events COMMENT COLUMN channel 'user.behavior.browsing_history.referrer';
ALTER TABLE events ADD INDEX IF NOT EXISTS event_id_bloom event_id TYPE bloom_filter GRANULARITY 4;
ALTER TABLE events MODIFY COLUMN ip_truncated String TTL toDateTime(event_time) + INTERVAL 30 DAY;
ALTER TABLE events MODIFY TTL toDateTime(event_time) + INTERVAL 13 MONTH;
