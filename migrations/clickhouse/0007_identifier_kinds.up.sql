-- A subject column names the kind of identifier it holds: an account id
-- (subject=user) or a browser's visitor id (subject=visitor). Export,
-- erasure and the seeder read the kind from the comment rather than guess
-- it from the category.
ALTER TABLE events COMMENT COLUMN user_id 'user.unique_id,subject=user';
ALTER TABLE events COMMENT COLUMN visitor_id 'user.unique_id.analytics_id,subject=visitor';
ALTER TABLE visitor_links COMMENT COLUMN user_id 'user.unique_id,subject=user';
ALTER TABLE visitor_links COMMENT COLUMN visitor_id 'user.device.cookie_id,subject=visitor';
ALTER TABLE touches COMMENT COLUMN user_id 'user.unique_id,subject=user';
ALTER TABLE touches COMMENT COLUMN visitor_id 'user.unique_id.analytics_id,subject=visitor';
ALTER TABLE conversions COMMENT COLUMN user_id 'user.unique_id,subject=user';
ALTER TABLE conversions COMMENT COLUMN visitor_id 'user.unique_id.analytics_id,subject=visitor';
