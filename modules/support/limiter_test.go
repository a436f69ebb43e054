package support

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiterBoundedMemory(t *testing.T) {
	l := newLimiter(2, time.Minute, 3)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
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
		{name: "memory full while windows run", key: "d", at: t0.Add(time.Second), want: false},
		{name: "window over: old entries forgotten", key: "d", at: t0.Add(2 * time.Minute), want: true},
		{name: "a again after its window", key: "a", at: t0.Add(2 * time.Minute), want: true},
	}
	for _, tt := range tests {
		if got := l.allow(tt.key, tt.at); got != tt.want {
			t.Fatalf("%s: allow(%s) = %v, want %v", tt.name, tt.key, got, tt.want)
		}
		if n := l.size(); n > 3 {
			t.Fatalf("%s: limiter remembers %d addresses, more than its bound 3", tt.name, n)
		}
	}
	for i := range 1000 {
		l.allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), t0.Add(3*time.Minute))
	}
	if n := l.size(); n > 3 {
		t.Fatalf("after a flood the limiter remembers %d addresses", n)
	}
}
