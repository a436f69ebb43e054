package ipaddr_test

import (
	"testing"

	"github.com/stewardhq/steward/internal/ipaddr"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		ip   string
		want string
	}{
		{name: "ipv4 keeps its /24", ip: "203.0.113.77", want: "203.0.113.0"},
		{name: "ipv4 already truncated", ip: "198.51.100.0", want: "198.51.100.0"},
		{name: "ipv6 keeps its /48", ip: "2001:db8:abcd:12:34::1", want: "2001:db8:abcd::"},
		{name: "ipv6 with more set bits", ip: "2001:db8:1234:5678:9abc::1", want: "2001:db8:1234::"},
		{name: "ipv6 short form", ip: "2001:db8::1", want: "2001:db8::"},
		{name: "ipv4-mapped ipv6 is ipv4", ip: "::ffff:198.51.100.9", want: "198.51.100.0"},
		{name: "zone dropped", ip: "fe80::1%eth0", want: "fe80::"},
		{name: "loopback", ip: "127.0.0.1", want: "127.0.0.0"},
		{name: "surrounding space", ip: " 192.0.2.1 ", want: "192.0.2.0"},
		{name: "with a port is not an address", ip: "192.0.2.1:443", want: ""},
		{name: "prefix is not an address", ip: "192.0.2.0/24", want: ""},
		{name: "garbage is not stored", ip: "not-an-ip", want: ""},
		{name: "empty", ip: "", want: ""},
		{name: "forwarded list is not an address", ip: "192.0.2.1, 10.0.0.1", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ipaddr.Truncate(tt.ip); got != tt.want {
				t.Errorf("Truncate(%q) = %q, want %q", tt.ip, got, tt.want)
			}
		})
	}
}
