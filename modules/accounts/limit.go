package accounts

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter is a token bucket per key (a client address, an account)
// with bounded memory: it holds at most max keys and forgets the least
// recently used when full. Forgetting a key gives it a full bucket again,
// which is harmless for a key idle long enough to have refilled and the
// price of a bound for the rest.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu   sync.Mutex
	keys map[string]*list.Element
	lru  list.List // of *limiterEntry, most recently used first
}

type limiterEntry struct {
	key string
	lim *rate.Limiter
}

func newKeyedLimiter(perMinute float64, burst, max int) *keyedLimiter {
	return &keyedLimiter{
		limit: rate.Limit(perMinute / 60),
		burst: burst,
		max:   max,
		keys:  make(map[string]*list.Element),
	}
}

// allow takes a token for key at now. When none is left it returns false
// and how long until one is.
func (k *keyedLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var lim *rate.Limiter
	if el, ok := k.keys[key]; ok {
		k.lru.MoveToFront(el)
		lim = el.Value.(*limiterEntry).lim
	} else {
		if k.lru.Len() >= k.max {
			oldest := k.lru.Back()
			k.lru.Remove(oldest)
			delete(k.keys, oldest.Value.(*limiterEntry).key)
		}
		lim = rate.NewLimiter(k.limit, k.burst)
		k.keys[key] = k.lru.PushFront(&limiterEntry{key: key, lim: lim})
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// blocked reports, without taking a token, whether key has none left at
// now, and how long until it has one.
func (k *keyedLimiter) blocked(key string, now time.Time) (bool, time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	el, ok := k.keys[key]
	if !ok {
		return false, 0
	}
	tokens := el.Value.(*limiterEntry).lim.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - tokens) / float64(k.limit) * float64(time.Second))
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

// size returns the number of keys held.
func (k *keyedLimiter) size() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lru.Len()
}
