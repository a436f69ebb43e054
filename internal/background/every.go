package background

import (
	"context"
	"time"
)

// Every calls fn each time interval passes, until ctx ends; the first call
// comes one interval after Every starts. A call that outlasts the interval
// delays the next one rather than running beside it.
func Every(ctx context.Context, interval time.Duration, fn func(ctx context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
