-- Back to the prefix form the risk module wrote before 0034: /24 for IPv4
-- (dotted) and /48 for IPv6 (with colons). Empty values stay empty.
UPDATE abuse_events
SET ip_truncated = ip_truncated || '/24'
WHERE ip_truncated LIKE '%.%' AND ip_truncated NOT LIKE '%/%';

UPDATE abuse_events
SET ip_truncated = ip_truncated || '/48'
WHERE ip_truncated LIKE '%:%' AND ip_truncated NOT LIKE '%/%';
