-- abuse_events.ip_truncated takes the one stored form of a truncated
-- address (package internal/ipaddr): the address with its host part
-- zeroed, "203.0.113.0" and "2001:db8:abcd::", as consent_log and the
-- warehouse's events already store it. The risk module used to write the
-- same network as a prefix, "203.0.113.0/24" and "2001:db8:abcd::/48";
-- those rows lose the prefix length, which is always /24 for IPv4 and /48
-- for IPv6, so nothing is lost. Empty values (address unknown) stay empty.
UPDATE abuse_events
SET ip_truncated = substr(ip_truncated, 1, length(ip_truncated) - 3)
WHERE ip_truncated LIKE '%/24' OR ip_truncated LIKE '%/48';
