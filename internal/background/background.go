// Package background runs a module's long-lived goroutines (worker pools,
// schedulers, pollers): started once, stopped once, and outliving the
// context that started them, which is often a startup timeout.
package background

import (
	"context"
	"errors"
	"sync"
)

// ErrRunning is returned by Start on a group that is already running.
var ErrRunning = errors.New("already started")

// Group is a set of goroutines that start and stop together. The zero
// value is ready to use; a Group must not be copied after first use.
type Group struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs each fn in its own goroutine with a context that ends when
// Stop is called. The context keeps ctx's values but not its deadline or
// cancellation.
func (g *Group) Start(ctx context.Context, fns ...func(ctx context.Context)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cancel != nil {
		return ErrRunning
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(runCtx)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	g.cancel, g.done = cancel, done
	return nil
}

// Running reports whether the group has started and not been stopped.
func (g *Group) Running() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cancel != nil
}

// Stop cancels the goroutines' context and waits until every one has
// returned, or ctx ends. Stopping a group that is not running does
// nothing; after Stop the group may be started again.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	cancel, done := g.cancel, g.done
	g.cancel, g.done = nil, nil
	g.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
