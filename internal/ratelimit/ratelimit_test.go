package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestEvictOldest is the sign-in limiter: one token a second, bursts of
// two, three keys, and the least recently used key forgotten when full.
func TestEvictOldest(t *testing.T) {
	l := New(Config{Rate: 1, Burst: 2, MaxKeys: 3, WhenFull: EvictOldest})

	for i := range 2 {
		if ok, _ := l.Allow("a", t0); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait := l.Allow("a", t0)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("third request: allowed %v, wait %v; want refused with a wait up to 1s", ok, wait)
	}
	// A refusal does not spend a token: after the wait, one request passes.
	if ok, _ := l.Allow("a", t0.Add(wait)); !ok {
		t.Fatal("refused after waiting the announced time")
	}
	// Other keys have their own buckets.
	if ok, _ := l.Allow("b", t0); !ok {
		t.Fatal("another key was limited")
	}
	// Memory is bounded: many keys never hold more than max, and a new
	// key is always let in.
	for i := range 1000 {
		if ok, _ := l.Allow(fmt.Sprintf("k%d", i), t0); !ok {
			t.Fatalf("new key k%d refused", i)
		}
	}
	if got := l.Len(); got != 3 {
		t.Fatalf("holds %d keys, want at most 3", got)
	}
	// The most recently used keys are the ones kept.
	l.Allow("k998", t0)
	l.Allow("fresh", t0)
	if !l.keys.Contains("k998") {
		t.Error("a recently used key was evicted before older ones")
	}
	if l.keys.Contains("k997") {
		t.Error("the least recently used key was kept")
	}
}

// TestRefuseNew is the feedback form's limiter: two per minute, three
// addresses, and a new address refused while the others are still
// counting.
func TestRefuseNew(t *testing.T) {
	l := New(Config{Rate: rate.Every(time.Minute / 2), Burst: 2, MaxKeys: 3, WhenFull: RefuseNew})
	tests := []struct {
		name string
		key  string
		at   time.Time
		want bool
	}{
		{name: "first", key: "a", at: t0, want: true},
		{name: "second", key: "a", at: t0, want: true},
		{name: "over the limit", key: "a", at: t0, want: false},
		{name: "other address", key: "b", at: t0, want: true},
		{name: "third address", key: "c", at: t0, want: true},
		{name: "memory full while buckets refill", key: "d", at: t0.Add(time.Second), want: false},
		{name: "buckets full again: old keys forgotten", key: "d", at: t0.Add(2 * time.Minute), want: true},
		{name: "a again after it refilled", key: "a", at: t0.Add(2 * time.Minute), want: true},
	}
	for _, tt := range tests {
		got, wait := l.Allow(tt.key, tt.at)
		if got != tt.want {
			t.Fatalf("%s: Allow(%s) = %v, want %v", tt.name, tt.key, got, tt.want)
		}
		if !got && (wait <= 0 || wait > time.Minute) {
			t.Fatalf("%s: refused with a wait of %v, want one within the refill time", tt.name, wait)
		}
		if n := l.Len(); n > 3 {
			t.Fatalf("%s: limiter holds %d keys, more than its bound 3", tt.name, n)
		}
	}
	for i := range 1000 {
		l.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), t0.Add(3*time.Minute))
	}
	if n := l.Len(); n > 3 {
		t.Fatalf("after a flood the limiter holds %d keys", n)
	}
	// A key the flood found in the limiter is still counted: the flood
	// could not push it out to reset it.
	l = New(Config{Rate: rate.Every(time.Hour), Burst: 1, MaxKeys: 2, WhenFull: RefuseNew})
	l.Allow("abuser", t0)
	for i := range 100 {
		l.Allow(fmt.Sprintf("flood%d", i), t0)
	}
	if ok, _ := l.Allow("abuser", t0.Add(time.Minute)); ok {
		t.Error("a flood of new keys reset a limited key")
	}
}

func TestBlocked(t *testing.T) {
	tests := []struct {
		name     string
		spend    int // requests at t0
		at       time.Duration
		want     bool
		wantWait time.Duration
	}{
		{name: "unknown key", spend: 0, want: false},
		{name: "tokens left", spend: 1, want: false},
		{name: "spent", spend: 2, want: true, wantWait: 30 * time.Second},
		{name: "half refilled", spend: 2, at: 15 * time.Second, want: true, wantWait: 15 * time.Second},
		{name: "refilled", spend: 2, at: 30 * time.Second, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(Config{Rate: rate.Every(30 * time.Second), Burst: 2, MaxKeys: 10})
			for range tt.spend {
				l.Allow("k", t0)
			}
			got, wait := l.Blocked("k", t0.Add(tt.at))
			if got != tt.want || wait != tt.wantWait {
				t.Errorf("Blocked = %v, %v; want %v, %v", got, wait, tt.want, tt.wantWait)
			}
			// Blocked takes no token.
			if again, _ := l.Blocked("k", t0.Add(tt.at)); again != got {
				t.Error("Blocked changed the bucket")
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	l := New(Config{Rate: 0, Burst: 50, MaxKeys: 16})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for g := range 8 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := l.Allow("shared", t0); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
				l.Allow(fmt.Sprintf("own%d", g), t0)
			}
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Errorf("%d requests of one key allowed at once, want the burst of 50", allowed)
	}
}
