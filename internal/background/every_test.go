package background_test

import (
	"context"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/background"
)

func TestEveryCallsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		background.Every(ctx, time.Millisecond, func(context.Context) {
			calls++
			if calls == 3 {
				cancel()
			}
		})
	}()
	// Generous: only a broken Every reaches it, never a slow machine.
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Every did not return after its context ended")
	}
	if calls != 3 {
		t.Fatalf("calls = %d, want 3", calls)
	}
}
