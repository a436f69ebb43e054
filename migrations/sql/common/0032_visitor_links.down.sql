DROP TABLE visitor_links;
