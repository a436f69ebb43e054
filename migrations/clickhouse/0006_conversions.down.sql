DROP VIEW IF EXISTS conversions_from_events;
DROP TABLE IF EXISTS conversions;
