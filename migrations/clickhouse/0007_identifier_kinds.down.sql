ALTER TABLE events COMMENT COLUMN user_id 'user.unique_id,subject';
ALTER TABLE events COMMENT COLUMN visitor_id 'user.unique_id.analytics_id,subject';
ALTER TABLE visitor_links COMMENT COLUMN user_id 'user.unique_id,subject';
ALTER TABLE visitor_links COMMENT COLUMN visitor_id 'user.device.cookie_id,subject';
ALTER TABLE touches COMMENT COLUMN user_id 'user.unique_id,subject';
ALTER TABLE touches COMMENT COLUMN visitor_id 'user.unique_id.analytics_id,subject';
ALTER TABLE conversions COMMENT COLUMN user_id 'user.unique_id,subject';
ALTER TABLE conversions COMMENT COLUMN visitor_id 'user.unique_id.analytics_id,subject';
