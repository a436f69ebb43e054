package background

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupLifecycle(t *testing.T) {
	var g Group
	var running atomic.Int32
	worker := func(ctx context.Context) {
		running.Add(1)
		<-ctx.Done()
		running.Add(-1)
	}
	// The group outlives the context that started it.
	startCtx, cancelStart := context.WithCancel(context.Background())
	if err := g.Start(startCtx, worker, worker, worker); err != nil {
		t.Fatal(err)
	}
	cancelStart()
	if err := g.Start(context.Background(), worker); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start = %v, want ErrRunning", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for running.Load() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers running, want 3", running.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := running.Load(); n != 0 {
		t.Fatalf("%d workers still running after Stop", n)
	}
	if g.Running() {
		t.Fatal("Running after Stop")
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	// A stopped group starts again.
	if err := g.Start(context.Background(), worker); err != nil {
		t.Fatal(err)
	}
	_ = g.Stop(context.Background())
}

func TestStopGivesUpWhenCtxEnds(t *testing.T) {
	var g Group
	release := make(chan struct{})
	if err := g.Start(context.Background(), func(context.Context) { <-release }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v, want context.Canceled", err)
	}
	close(release)
}
