DROP TABLE privacy_erasure_steps;
DROP TABLE privacy_request_events;
DROP TABLE privacy_requests;
