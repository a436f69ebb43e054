-- event_time is the moment each event's retention period counts from: the
-- retention job finds it through the "collected" option of its category tag.
ALTER TABLE events COMMENT COLUMN event_time 'user.behavior.timestamp,collected';
