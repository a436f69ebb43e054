// Package ratelimit limits requests per key, such as a client address or
// an account, with a token bucket per key (golang.org/x/time/rate) and a
// bound on the keys it holds, so a flood of keys cannot grow its memory.
// Every limit in Steward is one of these: the sign-in limits per address
// and per account, the failed-authentication throttle, the abuse-log
// throttle and the signed-out feedback form.
//
// Callers pass the time, so tests drive a limiter with a fake clock.
package ratelimit

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// WhenFull says what a Limiter does with a new key while it holds MaxKeys
// keys and none of them is idle.
type WhenFull int

const (
	// EvictOldest forgets the least recently used key to make room. The
	// forgotten key starts again with a full bucket: harmless for a key
	// idle long enough to have refilled, and the price of the bound for
	// the rest. It suits limits where refusing a newcomer would lock out
	// people who did nothing wrong, such as signing in.
	EvictOldest WhenFull = iota
	// RefuseNew refuses the new key until a key goes idle, so a flood of
	// keys can neither grow the limiter nor push a limited key out to
	// reset its count. It suits signed-out forms, where a newcomer can
	// wait.
	RefuseNew
)

// Config configures a Limiter.
type Config struct {
	// Rate is how fast a key's bucket refills, in tokens per second;
	// rate.Every(d) gives one token per d.
	Rate rate.Limit
	// Burst is the size of a key's bucket: how many requests a key may
	// make at once. Below 1 counts as 1.
	Burst int
	// MaxKeys bounds the keys held. Below 1 counts as 1.
	MaxKeys int
	// WhenFull is what a new key meets when MaxKeys keys are held and
	// none is idle.
	WhenFull WhenFull
}

// Limiter holds a token bucket per key. A key whose bucket is full again
// (idle for as long as the bucket takes to refill) is the same as a key
// never seen, so it may be forgotten at any time. It is safe for
// concurrent use.
type Limiter struct {
	cfg Config

	mu sync.Mutex
	// keys is ordered by last use, most recent first; Allow moves a key
	// to the front, Blocked does not.
	keys *simplelru.LRU[string, *rate.Limiter]
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	cfg.Burst = max(cfg.Burst, 1)
	cfg.MaxKeys = max(cfg.MaxKeys, 1)
	// NewLRU fails only for a size below 1.
	keys, _ := simplelru.NewLRU[string, *rate.Limiter](cfg.MaxKeys, nil)
	return &Limiter{cfg: cfg, keys: keys}
}

// Allow takes a token from key's bucket at now. When none is left, or when
// the key is new and the limiter is full under RefuseNew, it returns false
// and how long to wait before trying again; a refusal takes no token.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.keys.Get(key)
	if !ok {
		if l.keys.Len() >= l.cfg.MaxKeys {
			l.forgetIdle(now)
			if l.keys.Len() >= l.cfg.MaxKeys && l.cfg.WhenFull == RefuseNew {
				_, oldest, _ := l.keys.GetOldest()
				return false, l.untilTokens(oldest, now, float64(l.cfg.Burst))
			}
		}
		lim = rate.NewLimiter(l.cfg.Rate, l.cfg.Burst)
		// Under EvictOldest a full LRU drops its oldest key here.
		l.keys.Add(key, lim)
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

// Blocked reports, without taking a token or counting as a use, whether
// key has no token left at now, and how long until it has one.
func (l *Limiter) Blocked(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.keys.Peek(key)
	if !ok || lim.TokensAt(now) >= 1 {
		return false, 0
	}
	return true, l.untilTokens(lim, now, 1)
}

// Len returns how many keys the limiter holds.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keys.Len()
}

// forgetIdle drops idle keys (full buckets) from the least recently used
// end, stopping at the first key that is not idle. Every key unused for a
// whole refill period (Burst/Rate) is idle, and those are all at that
// end, so each of them goes; a lightly used key among the recent ones may
// stay until its turn comes.
func (l *Limiter) forgetIdle(now time.Time) {
	for {
		key, lim, ok := l.keys.GetOldest()
		if !ok || lim.TokensAt(now) < float64(l.cfg.Burst) {
			return
		}
		l.keys.Remove(key)
	}
}

// untilTokens returns how long lim takes from now to hold n tokens.
func (l *Limiter) untilTokens(lim *rate.Limiter, now time.Time, n float64) time.Duration {
	missing := n - lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	if l.cfg.Rate <= 0 {
		return time.Minute
	}
	return time.Duration(missing / float64(l.cfg.Rate) * float64(time.Second))
}
