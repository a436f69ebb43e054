package accounts

import (
	"net/netip"

	"golang.org/x/time/rate"

	"github.com/stewardhq/steward/internal/ratelimit"
)

// perMinute returns a limiter of n requests a minute per key in bursts of
// up to burst, holding at most maxKeys keys. When full it forgets the
// least recently used key: refusing a new address or account instead
// would lock out people who did nothing wrong.
func perMinute(n float64, burst, maxKeys int) *ratelimit.Limiter {
	return ratelimit.New(ratelimit.Config{Rate: rate.Limit(n / 60), Burst: burst, MaxKeys: maxKeys, WhenFull: ratelimit.EvictOldest})
}

// sourceKey is the key of a client address for the limits: the address
// itself, or for IPv6 its /64, which one client usually holds whole.
func sourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
