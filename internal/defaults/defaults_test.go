package defaults

import (
	"log/slog"
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want time.Duration
	}{
		{name: "zero takes the default", in: 0, want: time.Minute},
		{name: "negative takes the default", in: -time.Second, want: time.Minute},
		{name: "positive is kept", in: time.Second, want: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.in
			Positive(&v, time.Minute)
			if v != tt.want {
				t.Fatalf("Positive(%v) = %v, want %v", tt.in, v, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	empty, set := "", "kept"
	String(&empty, "default")
	String(&set, "default")
	if empty != "default" || set != "kept" {
		t.Fatalf("String: empty = %q, set = %q", empty, set)
	}
}

func TestLoggerAndClock(t *testing.T) {
	var l *slog.Logger
	Logger(&l)
	if l == nil {
		t.Fatal("Logger left a nil logger")
	}
	given := slog.Default()
	Logger(&given)
	if given != slog.Default() {
		t.Fatal("Logger replaced a given logger")
	}
	var now func() time.Time
	Clock(&now)
	if now == nil {
		t.Fatal("Clock left a nil clock")
	}
	fixed := time.Unix(0, 0)
	clock := func() time.Time { return fixed }
	Clock(&clock)
	if !clock().Equal(fixed) {
		t.Fatal("Clock replaced a given clock")
	}
}
