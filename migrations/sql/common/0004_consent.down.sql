DROP TABLE consent_log;
DROP TABLE consent_state;
