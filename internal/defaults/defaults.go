// Package defaults fills the settings and collaborators a constructor was
// not given, so that every module treats an unset value the same way: a zero
// or negative number, an empty string, a nil logger or a nil clock each take
// the documented default.
package defaults

import (
	"log/slog"
	"time"
)

// Number is any numeric kind a setting may have, durations included.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 |
		~float32 | ~float64
}

// Positive sets *v to def when *v is zero or negative.
func Positive[T Number](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// String sets *v to def when *v is empty.
func String(v *string, def string) {
	if *v == "" {
		*v = def
	}
}

// Logger sets *l to a logger that discards every message when *l is nil.
func Logger(l **slog.Logger) {
	if *l == nil {
		*l = slog.New(slog.DiscardHandler)
	}
}

// Clock sets *now to time.Now when *now is nil.
func Clock(now *func() time.Time) {
	if *now == nil {
		*now = time.Now
	}
}
