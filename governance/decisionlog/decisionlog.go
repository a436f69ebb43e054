// Package decisionlog persists the policy engine's decisions in the
// decision_log table. OPA keeps no durable record when embedded, so every
// evaluation (not every cached answer) is written here with its policy
// revision, a digest of its input and its result: the evidence that an
// access, export, erasure or retention step followed the policy in force.
//
// Writes are batched off the request path: Record queues a decision and a
// background loop inserts queued decisions together. When the queue is full
// Record waits for room rather than dropping a record, so the log stays
// complete; evaluations are rare next to cached answers, so the wait is
// short and rare too.
package decisionlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/background"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/policies"
)

// Defaults for Config fields left zero.
const (
	DefaultQueue    = 4096
	DefaultBatch    = 256
	DefaultInterval = 200 * time.Millisecond
)

// Config tunes a Writer. The zero value takes the defaults.
type Config struct {
	// Queue is how many decisions wait for the writer before Record
	// waits; zero means DefaultQueue.
	Queue int
	// Batch is the most decisions one insert writes; zero means
	// DefaultBatch.
	Batch int
	// Interval is the longest a queued decision waits for its batch to
	// fill; zero means DefaultInterval.
	Interval time.Duration
}

// Deps are the Writer's collaborators.
type Deps struct {
	// DB is the SQL store holding decision_log, migrated. Required.
	DB *bun.DB
	// Logger receives write failures and lost decisions; nil discards
	// them.
	Logger *slog.Logger
}

// Writer batches decisions into decision_log.
type Writer struct {
	db     *bun.DB
	cfg    Config
	logger *slog.Logger
	queue  chan policies.Decision
	// bg runs the loop, which ends once the queue is closed and drained.
	bg   background.Group
	once sync.Once
	mu   sync.Mutex
	err  error // the last write error, reported by Close
}

// New returns a Writer and starts its background loop; Close stops it
// after writing everything queued.
func New(cfg Config, deps Deps) (*Writer, error) {
	if deps.DB == nil {
		return nil, errors.New("decision log: a database is required")
	}
	defaults.Positive(&cfg.Queue, DefaultQueue)
	defaults.Positive(&cfg.Batch, DefaultBatch)
	defaults.Positive(&cfg.Interval, DefaultInterval)
	defaults.Logger(&deps.Logger)
	w := &Writer{db: deps.DB, cfg: cfg, logger: deps.Logger, queue: make(chan policies.Decision, cfg.Queue)}
	if err := w.bg.Start(context.Background(), w.loop); err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	return w, nil
}

// Record queues d; it is the engine's Options.Recorder. It waits while the
// queue is full and gives up only when ctx ends, logging the loss.
func (w *Writer) Record(ctx context.Context, d policies.Decision) {
	select {
	case w.queue <- d:
	default:
		select {
		case w.queue <- d:
		case <-ctx.Done():
			w.logger.Error("decision not logged: request ended while the decision log queue was full",
				slog.String("decision_id", d.ID), slog.String("policy", d.Policy))
		}
	}
}

// Close writes every queued decision and stops the loop. Recording after
// Close panics, like sending on a closed channel: stop the engine's users
// first.
func (w *Writer) Close(ctx context.Context) error {
	w.once.Do(func() { close(w.queue) })
	if err := w.bg.Stop(ctx); err != nil {
		return fmt.Errorf("decision log: close: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// loop writes queued decisions in batches. It ends when Close has closed
// the queue and every decision in it is written, not when its context
// ends: cancelling would lose decisions already recorded. The writes
// therefore use a context of their own.
func (w *Writer) loop(context.Context) {
	tick := time.NewTicker(w.cfg.Interval)
	defer tick.Stop()
	batch := make([]policies.Decision, 0, w.cfg.Batch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := w.write(context.Background(), batch); err != nil {
			w.logger.Error("decision log write failed", slog.Int("decisions", len(batch)), slog.Any("error", err))
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
		}
		batch = batch[:0]
	}
	for {
		select {
		case d, ok := <-w.queue:
			if !ok {
				flush()
				return
			}
			batch = append(batch, d)
			if len(batch) >= w.cfg.Batch {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// write inserts one batch, retrying a few times: a busy SQLite writer or a
// PostgreSQL failover should not lose evidence.
func (w *Writer) write(ctx context.Context, batch []policies.Decision) error {
	rows := make([]sqlstore.DecisionRecord, 0, len(batch))
	for _, d := range batch {
		r, err := toRecord(d)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 100 * time.Millisecond)
		}
		_, err = w.db.NewInsert().Model(&rows).On("CONFLICT (id) DO NOTHING").Exec(ctx)
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("insert %d decisions: %w", len(rows), err)
}

func toRecord(d policies.Decision) (sqlstore.DecisionRecord, error) {
	result := map[string]any{}
	if len(d.Result) > 0 {
		if err := json.Unmarshal(d.Result, &result); err != nil {
			return sqlstore.DecisionRecord{}, fmt.Errorf("decision %s result: %w", d.ID, err)
		}
	}
	var allowed *bool
	if v, ok := result["allow"].(bool); ok {
		allowed = &v
	}
	if d.ID == "" || d.Policy == "" || d.Revision == "" {
		return sqlstore.DecisionRecord{}, errors.New("decision without id, policy or revision")
	}
	return sqlstore.DecisionRecord{
		ID:          d.ID,
		DecidedAt:   d.At.UTC(),
		Policy:      d.Policy,
		Revision:    d.Revision,
		InputDigest: d.InputDigest,
		Allowed:     allowed,
		Result:      result,
	}, nil
}
