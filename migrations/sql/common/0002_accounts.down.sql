DROP TABLE admin_log;
DROP TABLE device_bindings;
DROP TABLE sign_in_events;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE users;
