DROP VIEW IF EXISTS touches_from_events;
DROP TABLE IF EXISTS touches;
