DROP TABLE settings;
DROP TABLE decision_log;
