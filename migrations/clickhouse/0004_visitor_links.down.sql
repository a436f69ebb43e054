DROP TABLE IF EXISTS visitor_links;
