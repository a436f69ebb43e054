package ingest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/analytics/spool"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// holdFirstWarehouse holds the first insert before it reaches the
// warehouse until its context ends, and then fails it, as a process that
// dies mid-insert would; every later insert goes through and is counted.
type holdFirstWarehouse struct {
	warehouse.Warehouse
	calls, done atomic.Int32
	held        chan struct{} // closed when the first insert is held
}

func (w *holdFirstWarehouse) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	if w.calls.Add(1) == 1 {
		close(w.held)
		<-ctx.Done()
		return ctx.Err()
	}
	err := w.Warehouse.Insert(ctx, table, columns, rows)
	if err == nil {
		w.done.Add(1)
	}
	return err
}

// TestBatchesInFlightCommitInOrder holds the first of two batches in
// flight while the second is stored, stops the process's drain there,
// and starts again on the same spool: the second batch's commit must not
// have moved past the first, nor the in-flight mark have left out the
// second, so that every event is stored exactly once in the end.
func TestBatchesInFlightCommitInOrder(t *testing.T) {
	ctx := context.Background()
	wh := chtest.Embedded(t)
	spoolDir := t.TempDir()
	held := &holdFirstWarehouse{Warehouse: wh, held: make(chan struct{})}
	small := func(o *ingest.Config) { o.BatchRows = 2 }
	s := newStack(t, stackOptions{warehouse: held, spoolDir: spoolDir, mutate: small})
	cl := s.accepting()

	var ids []string
	send := func() {
		t.Helper()
		batch := []any{fullEvent("page_view"), fullEvent("page_view")}
		for _, ev := range batch {
			ids = append(ids, idOf(ev.(map[string]any)))
		}
		if status, res, raw := cl.send(batch); status != 202 || res.Stored != 2 {
			t.Fatalf("send: %d %s", status, raw)
		}
	}
	send()
	select {
	case <-held.held:
	case <-time.After(waitTimeout):
		t.Fatal("the first batch never reached the warehouse")
	}
	send()
	for deadline := time.Now().Add(waitTimeout); held.done.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second batch was not inserted while the first was in flight")
		}
	}
	if n := countRows(t, wh); n != 2 {
		t.Fatalf("%d rows stored while the first batch is held, want the second batch's 2", n)
	}

	// The drain is cut short with both batches uncommitted.
	stopCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := s.events.Stop(stopCtx); err == nil {
		t.Fatal("Stop returned no error while an insert was held")
	}

	// Start again on the same spool once the first drain has let go of it.
	var again *stack
	for deadline := time.Now().Add(waitTimeout); again == nil; {
		sp, err := spool.Open(spoolDir, spool.Options{})
		switch {
		case err == nil:
			start, end, ok := sp.Recovered()
			sp.Close()
			if !ok {
				t.Fatal("no batch marked in flight after the drain was cut short")
			}
			t.Logf("in flight after the stop: %+v to %+v", start, end)
			again = newStack(t, stackOptions{warehouse: wh, spoolDir: spoolDir, mutate: small})
		case errors.Is(err, spool.ErrInUse) && time.Now().Before(deadline):
			time.Sleep(10 * time.Millisecond)
		default:
			t.Fatal(err)
		}
	}
	again.flush()
	stored := again.rowsByID(ids)
	for _, id := range ids {
		if n := len(stored[id]); n != 1 {
			t.Errorf("event %s stored %d times, want once", id, n)
		}
	}
}
