// Package ipaddr truncates client addresses before anything stores them.
//
// Steward never stores a whole client address. Every stored address (the
// analytics events' ip_truncated in the warehouse, and ip_truncated of
// consent_log and abuse_events in the SQL store) is the address with its
// host part zeroed, written as an address: the first 24 bits of IPv4 kept
// ("203.0.113.77" is stored as "203.0.113.0") and the first 48 bits of
// IPv6 ("2001:db8:abcd:12::1" as "2001:db8:abcd::"). This is the reduction
// the taxonomy and the consent policy name (user.device.ip_address,
// transform "truncate"), and one form in every store means one value of
// the same network compares equal wherever it is kept.
package ipaddr

import (
	"net/netip"
	"strings"
)

// Prefix lengths Truncate keeps.
const (
	ipv4Bits = 24
	ipv6Bits = 48
)

// Truncate returns ip with its host part zeroed: the last octet of IPv4
// (a /24) and the last 80 bits of IPv6 (a /48), written as an address
// without the prefix length. An IPv4-mapped IPv6 address counts as IPv4,
// and an IPv6 zone is dropped. Anything that does not parse as one
// address, surrounding space aside, gives "", so a malformed header is
// never stored as it came.
func Truncate(ip string) string {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	bits := ipv6Bits
	if addr.Is4() {
		bits = ipv4Bits
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.Addr().String()
}
