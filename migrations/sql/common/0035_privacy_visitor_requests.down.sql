DROP INDEX privacy_requests_visitor_idx;
ALTER TABLE privacy_requests DROP COLUMN language;
ALTER TABLE privacy_requests DROP COLUMN browsing_after;
ALTER TABLE privacy_requests DROP COLUMN visitor_id;
