package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stewardhq/steward/analytics/spool"
	"github.com/stewardhq/steward/analytics/warehouse"
)

// drain moves spooled events to the warehouse until Stop has been called
// and the spool is empty, or ctx ends.
//
// Reading and delivery overlap: while the warehouse stores a batch, the
// drainer reads and encodes the next, so that the warehouse waits for
// neither; deliver inserts up to maxInflight batches at once and commits
// them in order.
func (m *Module) drain(ctx context.Context) {
	defer func() {
		if err := m.spool.Close(); err != nil {
			m.log.Error("close event spool", slog.Any("error", err))
		}
	}()
	// Waiting for a batch to fill ends early on Stop, so that the drain
	// of what is left starts at once; inserts keep ctx.
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	go func() {
		select {
		case <-m.stopping:
			cancelWait()
		case <-waitCtx.Done():
		}
	}()

	batches := make(chan prepared)
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		if err := m.deliver(ctx, batches); err != nil {
			// Only a stop ends delivery; the batch stays spooled.
			m.log.Warn("event delivery stopped; the batch stays spooled for the next start", slog.Any("error", err))
		}
	}()
	defer func() {
		close(batches)
		<-delivered
	}()

	// The batches left in flight by the last run (up to maxInflight of
	// them) may have reached the warehouse before the process stopped:
	// read exactly their records again and check the ids before
	// inserting.
	start, end, recovering := m.spool.Recovered()
	if recovering {
		m.log.Info("resuming an event batch that was in flight when the last run stopped",
			slog.Any("from", start), slog.Any("to", end))
	}
	seen := map[string]bool{}
	for {
		var limit *spool.Position
		if recovering {
			limit = &end
		}
		stopping := m.isStopping()
		// While stopping, read whatever is there at once instead of waiting
		// to fill a batch.
		wait := m.cfg.FlushInterval
		if stopping {
			wait = 0
		}
		batch, err := m.next(waitCtx, wait, limit)
		if err != nil {
			m.log.Error("read event spool", slog.Any("error", err))
			return
		}
		p := prepared{end: batch.End, uncertain: recovering}
		if recovering && !batch.End.Less(end) {
			recovering = false
		}
		if len(batch.Records) == 0 {
			if ctx.Err() != nil || (stopping && !m.spool.Pending()) {
				return
			}
			if batch.Start == batch.End {
				continue
			}
			// Only empty segments were passed; the delivery remembers
			// that in its turn.
		} else {
			p.rows = m.decodeRows(batch.Records, seen)
			if _, ok := m.deps.Warehouse.(warehouse.TextInserter); ok {
				// Encoding here, while the warehouse stores the batch
				// before, keeps it off the delivery's path.
				p.text = appendRowsTSV(make([]byte, 0, textSizeHint(batch.Records)), p.rows)
			}
		}
		select {
		case batches <- p:
		case <-delivered:
			// Delivery has stopped; what is left stays spooled.
			return
		}
	}
}

// prepared is a batch read from the spool and decoded, ready to deliver.
type prepared struct {
	// end is where the record after the batch begins.
	end  spool.Position
	rows []Row
	// text is rows encoded for a warehouse.TextInserter, nil for another
	// warehouse.
	text []byte
	// uncertain says the batch may already be in the warehouse: it was
	// in flight when the last run stopped.
	uncertain bool
}

// decodeRows decodes the records of a batch, each event id once; seen is
// the caller's map, cleared and reused for each batch.
func (m *Module) decodeRows(records [][]byte, seen map[string]bool) []Row {
	clear(seen)
	rows := make([]Row, 0, len(records))
	// One string holds the bytes of every record, and the rows' strings
	// are slices of it: one allocation for the batch instead of one for
	// each row.
	size := 0
	for _, rec := range records {
		size += len(rec)
	}
	var all strings.Builder
	all.Grow(size)
	for _, rec := range records {
		all.Write(rec)
	}
	data := all.String()
	var purposes []string
	for _, rec := range records {
		r := Row{ConsentPurposes: purposes}
		err := decodeRowFrom(rec, data[:len(rec)], &r)
		data = data[len(rec):]
		if err != nil {
			// A record that passed its checksum but does not decode was
			// written by an incompatible build; it cannot be stored.
			m.log.Error("skipping an undecodable spooled event", slog.Any("error", err))
			continue
		}
		// A client that resends an event before its first send was
		// answered can put both copies in one batch.
		if seen[r.EventID] {
			continue
		}
		seen[r.EventID] = true
		purposes = r.ConsentPurposes
		rows = append(rows, r)
	}
	return rows
}

// next reads the next batch; a Flush call ends the wait for a full batch.
func (m *Module) next(ctx context.Context, wait time.Duration, limit *spool.Position) (spool.Batch, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-m.flushReq:
			cancel()
		case <-ctx.Done():
		}
	}()
	return m.spool.Next(ctx, m.cfg.BatchRows, wait, limit)
}

func (m *Module) isStopping() bool {
	select {
	case <-m.stopping:
		return true
	default:
		return false
	}
}

// maxInflight is how many batches the drainer inserts at once. The
// engine spreads one insert over fewer threads than two cores offer, and
// a second insert keeps it busy while the first one's commit is synced.
const maxInflight = 2

// flight is a batch being inserted; done receives the insert's result.
type flight struct {
	p    prepared
	done chan error
}

// deliver delivers batches until batches is closed or ctx ends. Each
// batch is marked in flight, inserted (retrying until it succeeds or ctx
// ends) and committed, up to maxInflight of them at once. Commits follow
// the batches' order: a batch inserted before the one ahead of it waits
// for it, and the checkpoint's in-flight mark always covers every batch
// being inserted, so that after a crash each of them is checked against
// the stored ids before it is sent again. A batch without rows (only
// undecodable records, or empty segments) is committed in its turn.
func (m *Module) deliver(ctx context.Context, batches <-chan prepared) error {
	var queue []*flight // oldest first
	var marked spool.Position
	// When delivery stops on an error, the inserts still running are
	// cut short and waited for: the spool and the warehouse must outlive
	// them. What they inserted is covered by the in-flight mark.
	insertCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		for _, f := range queue {
			<-f.done
		}
	}()
	in := batches
	for in != nil || len(queue) > 0 {
		var recv <-chan prepared
		if len(queue) < maxInflight {
			recv = in
		}
		var oldest chan error
		if len(queue) > 0 {
			oldest = queue[0].done
		}
		select {
		case p, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			f := &flight{p: p, done: make(chan error, 1)}
			if len(p.rows) == 0 {
				f.done <- nil
			} else {
				if err := m.spool.MarkInflight(p.end); err != nil {
					return err
				}
				marked = p.end
				go func() { f.done <- m.insertRetrying(insertCtx, p) }()
			}
			queue = append(queue, f)
		case err := <-oldest:
			// The result is taken: the deferred wait must not wait for it.
			f := queue[0]
			queue = queue[1:]
			if err != nil {
				return err
			}
			if len(queue) == 0 || !f.p.end.Less(marked) {
				err = m.spool.Commit(f.p.end)
			} else {
				err = m.spool.CommitAndMark(f.p.end, marked)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// insertRetrying inserts one batch, retrying until it succeeds or ctx
// ends.
func (m *Module) insertRetrying(ctx context.Context, p prepared) error {
	uncertain := p.uncertain
	backoff := m.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := m.insert(ctx, p, uncertain)
		if err == nil {
			return nil
		}
		// After a failure the insert may still have been applied (a lost
		// answer from a server), so the next attempt checks first.
		uncertain = true
		m.log.Warn("warehouse insert failed; retrying", slog.Int("attempt", attempt),
			slog.Int("rows", len(p.rows)), slog.Duration("backoff", backoff), slog.Any("error", err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, m.cfg.RetryMax)
	}
}

// insert writes the batch, leaving out the rows already stored when
// uncertain.
func (m *Module) insert(ctx context.Context, p prepared, uncertain bool) error {
	rows, text := p.rows, p.text
	if uncertain {
		stored, err := m.storedIDs(ctx, rows)
		if err != nil {
			return fmt.Errorf("check stored events: %w", err)
		}
		if len(stored) > 0 {
			kept := rows[:0:0]
			for _, r := range rows {
				if !stored[r.EventID] {
					kept = append(kept, r)
				}
			}
			m.log.Info("events of a resent batch were already stored", slog.Int("stored", len(stored)), slog.Int("left", len(kept)))
			rows, text = kept, nil
		}
	}
	if text == nil {
		return Insert(ctx, m.deps.Warehouse, m.cfg.Table, rows)
	}
	return insertText(ctx, m.deps.Warehouse.(warehouse.TextInserter), m.cfg.Table, text)
}

// Store writes rows that are already in their stored form, past the spool
// and the consent gate: for the seeder, which makes events as the gate
// would have stored them. Nothing is retried; an error means the batch may
// be stored in part.
func (m *Module) Store(ctx context.Context, rows []Row) error {
	return Insert(ctx, m.deps.Warehouse, m.cfg.Table, rows)
}

// Insert writes rows into table of w, the events table or one of its
// shape, in one insert.
func Insert(ctx context.Context, w warehouse.Warehouse, table string, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	if ti, ok := w.(warehouse.TextInserter); ok {
		return insertText(ctx, ti, table, appendRowsTSV(nil, rows))
	}
	values := make([][]any, len(rows))
	for i := range rows {
		values[i] = rows[i].Values()
	}
	if err := w.Insert(ctx, table, Columns(), values); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// insertText writes rows encoded by appendRowsTSV.
func insertText(ctx context.Context, w warehouse.TextInserter, table string, text []byte) error {
	if err := w.InsertTSV(ctx, table, Columns(), text); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// storedIDs returns the ids of rows already in the events table. The
// time range lets the engine skip every part outside the batch's days.
func (m *Module) storedIDs(ctx context.Context, rows []Row) (map[string]bool, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]string, len(rows))
	from, to := rows[0].EventTime, rows[0].EventTime
	for i, r := range rows {
		ids[i] = r.EventID
		if r.EventTime.Before(from) {
			from = r.EventTime
		}
		if r.EventTime.After(to) {
			to = r.EventTime
		}
	}
	type idRow struct {
		EventID string `ch:"event_id"`
	}
	var found []idRow
	err := m.deps.Warehouse.Select(ctx, &found,
		"SELECT DISTINCT event_id FROM "+m.cfg.Table+
			" WHERE event_time >= {from:DateTime64(3, 'UTC')} AND event_time <= {to:DateTime64(3, 'UTC')}"+
			" AND event_id IN {ids:Array(String)}",
		warehouse.Named("from", from), warehouse.Named("to", to), warehouse.Named("ids", ids))
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(found))
	for _, f := range found {
		out[f.EventID] = true
	}
	return out, nil
}
