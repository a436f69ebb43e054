ALTER TABLE events COMMENT COLUMN event_time 'user.behavior.timestamp';
