ALTER TABLE events MODIFY TTL toDateTime(event_time) + INTERVAL 25 MONTH;
ALTER TABLE events MODIFY COLUMN ip_truncated REMOVE TTL;
ALTER TABLE events DROP INDEX IF EXISTS event_id_bloom;
ALTER TABLE events COMMENT COLUMN channel 'user.behavior.attribution.utm';
