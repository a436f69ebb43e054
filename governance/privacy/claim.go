package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/leader"
)

// errLostClaim ends the work of a process whose claim on a request another
// process took over (its lease ran out while it stalled). The other
// process finishes the request; whatever this one did is either done again
// (erasure steps are idempotent) or discarded (its package).
var errLostClaim = errors.New("the request was taken over by another process")

// lease is this process's claim on one request: a row of
// privacy_request_claims naming the claim by a token no other claim has,
// so neither another process nor another goroutine of this one can renew
// or release it.
type lease struct {
	m         *Module
	requestID string
	token     string
}

// claim takes the request's lease when no live lease holds it, and
// returns nil when one does. Taking it is one statement, so of the
// processes trying at once exactly one wins: an insert, or the update of
// an expired lease. On PostgreSQL a lease row being renewed in a
// transaction (see hold) is locked, and the update waits for that
// transaction and then finds the lease live.
func (m *Module) claim(ctx context.Context, requestID string) (*lease, error) {
	now := m.now().UTC()
	row := Claim{RequestID: requestID, ClaimedBy: leader.Instance() + "/" + ids.New("claim"), ClaimedAt: now, ClaimedUntil: now.Add(m.cfg.Lease)}
	res, err := m.deps.DB.NewInsert().Model(&row).
		On("CONFLICT (request_id) DO UPDATE").
		Set("claimed_by = EXCLUDED.claimed_by").
		Set("claimed_at = EXCLUDED.claimed_at").
		Set("claimed_until = EXCLUDED.claimed_until").
		Where("?TableAlias.claimed_until < ?", now).
		Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim privacy request: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, err
	}
	return &lease{m: m, requestID: requestID, token: row.ClaimedBy}, nil
}

// hold renews the lease through db, a transaction when the renewal must
// hold until a write commits, and fails with errLostClaim when another
// claim replaced this one.
func (l *lease) hold(ctx context.Context, db bun.IDB) error {
	res, err := db.NewUpdate().Model((*Claim)(nil)).
		Set("claimed_until = ?", l.m.now().UTC().Add(l.m.cfg.Lease)).
		Where("request_id = ? AND claimed_by = ?", l.requestID, l.token).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("renew claim: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("renew claim: %w", err)
	} else if n != 1 {
		return errLostClaim
	}
	return nil
}

// release gives the request up, if the claim is still this one.
func (l *lease) release(ctx context.Context) error {
	_, err := l.m.deps.DB.NewDelete().Model((*Claim)(nil)).
		Where("request_id = ? AND claimed_by = ?", l.requestID, l.token).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("release claim: %w", err)
	}
	return nil
}

// keep renews the lease every third of its length while the work runs.
// The returned context ends, with errLostClaim as its cause, when another
// process took the request over; done stops the renewal and releases the
// request.
func (l *lease) keep(ctx context.Context) (_ context.Context, done func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(l.m.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := l.hold(ctx, l.m.deps.DB)
			switch {
			case errors.Is(err, errLostClaim):
				l.m.log.Warn("privacy request taken over by another process", slog.String("request_id", l.requestID))
				cancel(errLostClaim)
				return
			case err != nil && ctx.Err() == nil:
				// The next renewal may get through before the lease ends.
				l.m.log.Warn("renew privacy request claim", slog.String("request_id", l.requestID), slog.Any("error", err))
			}
		}
	}()
	return ctx, func() {
		close(stop)
		wg.Wait()
		if err := l.release(context.WithoutCancel(ctx)); err != nil {
			l.m.log.Warn("release privacy request claim", slog.String("request_id", l.requestID), slog.Any("error", err))
		}
		cancel(nil)
	}
}
