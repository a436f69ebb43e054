DROP TABLE privacy_request_claims;
