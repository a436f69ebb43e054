package billing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/billing"
)

func TestLedgerParallelReservationsNeverOverspend(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		l := billing.NewLedger(db)
		if err := l.Grant(ctx, "u1", 10, "purchase", "ord_1"); err != nil {
			t.Fatal(err)
		}
		const workers = 24
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			ok, poor int
			other    []error
		)
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := l.Reserve(ctx, "u1", 1, fmt.Sprintf("gen_%d", i))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, errs.ErrPaymentRequired):
					poor++
				default:
					other = append(other, err)
				}
			}()
		}
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("unexpected errors: %v", other)
		}
		if ok != 10 || poor != workers-10 {
			t.Fatalf("%d reservations succeeded and %d were refused; want 10 and %d", ok, poor, workers-10)
		}
		if b, _ := l.Balance(ctx, "u1"); b != 0 {
			t.Fatalf("balance = %d, want 0", b)
		}
		entries, err := l.Entries(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, e := range entries {
			sum += e.Amount
		}
		if sum != 0 {
			t.Fatalf("ledger entries add up to %d, want the balance 0", sum)
		}
	})
}

func TestLedgerReservationLifecycle(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		l := billing.NewLedger(db)
		if err := l.Grant(ctx, "u1", 20, "purchase", "ord_1"); err != nil {
			t.Fatal(err)
		}
		// A retried grant adds nothing.
		if err := l.Grant(ctx, "u1", 20, "purchase", "ord_1"); err != nil {
			t.Fatal(err)
		}
		wantBal := func(want int64) {
			t.Helper()
			if b, err := l.Balance(ctx, "u1"); err != nil || b != want {
				t.Fatalf("balance = %d, %v; want %d", b, err, want)
			}
		}
		wantBal(20)

		r1, err := l.Reserve(ctx, "u1", 5, "gen_1")
		if err != nil {
			t.Fatal(err)
		}
		again, err := l.Reserve(ctx, "u1", 5, "gen_1")
		if err != nil || again != r1 {
			t.Fatalf("retried Reserve = %q, %v; want the first reservation %q", again, err, r1)
		}
		wantBal(15)
		r2, err := l.Reserve(ctx, "u1", 7, "gen_2")
		if err != nil {
			t.Fatal(err)
		}
		wantBal(8)
		if _, err := l.Reserve(ctx, "u1", 9, "gen_3"); !errors.Is(err, errs.ErrPaymentRequired) {
			t.Fatalf("Reserve beyond the balance = %v, want payment required", err)
		}

		tests := []struct {
			name    string
			op      func() error
			wantErr error
			balance int64
		}{
			{name: "commit spends", op: func() error { return l.Commit(ctx, r1) }, balance: 8},
			{name: "commit again is a no-op", op: func() error { return l.Commit(ctx, r1) }, balance: 8},
			{name: "release of a committed reservation conflicts", op: func() error { return l.Release(ctx, r1) }, wantErr: errs.ErrConflict, balance: 8},
			{name: "release gives back", op: func() error { return l.Release(ctx, r2) }, balance: 15},
			{name: "release again is a no-op", op: func() error { return l.Release(ctx, r2) }, balance: 15},
			{name: "commit of a released reservation conflicts", op: func() error { return l.Commit(ctx, r2) }, wantErr: errs.ErrConflict, balance: 15},
			{name: "unknown reservation", op: func() error { return l.Commit(ctx, "res_nope") }, wantErr: errs.ErrNotFound, balance: 15},
		}
		for _, tt := range tests {
			err := tt.op()
			if (tt.wantErr == nil && err != nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
			}
			wantBal(tt.balance)
		}
	})
}

func TestLedgerClawbackRecordsShortfall(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		l := billing.NewLedger(db)
		if err := l.Grant(ctx, "u1", 100, "purchase", "ord_1"); err != nil {
			t.Fatal(err)
		}
		r, err := l.Reserve(ctx, "u1", 70, "gen_1")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Commit(ctx, r); err != nil {
			t.Fatal(err)
		}
		taken, short, err := l.Clawback(ctx, "u1", 100, "ord_1", "re_1")
		if err != nil || taken != 30 || short != 70 {
			t.Fatalf("Clawback = %d, %d, %v; want 30 taken and 70 short", taken, short, err)
		}
		// A retried clawback takes nothing more.
		if _, _, err := l.Clawback(ctx, "u1", 100, "ord_1", "re_1"); err != nil {
			t.Fatal(err)
		}
		if b, _ := l.Balance(ctx, "u1"); b != 0 {
			t.Fatalf("balance = %d, want 0", b)
		}
		entries, _ := l.Entries(ctx, "u1")
		var claws int
		for _, e := range entries {
			if e.Kind == billing.EntryClawback {
				claws++
				if e.Shortfall != 70 || e.Amount != -30 {
					t.Errorf("clawback entry = %+v, want amount -30 and shortfall 70", e)
				}
			}
		}
		if claws != 1 {
			t.Fatalf("%d clawback entries, want 1", claws)
		}
	})
}

func TestLedgerAdjustNeverNegative(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		l := billing.NewLedger(db)
		if err := l.Reward(ctx, "u1", 5, "referral", "ref_1"); err != nil {
			t.Fatal(err)
		}
		if err := l.Adjust(ctx, "u1", -6, "correction", "adj_1"); !errors.Is(err, errs.ErrConflict) {
			t.Fatalf("Adjust below zero = %v, want conflict", err)
		}
		if err := l.Adjust(ctx, "u1", -5, "correction", "adj_2"); err != nil {
			t.Fatal(err)
		}
		if b, _ := l.Balance(ctx, "u1"); b != 0 {
			t.Fatalf("balance = %d, want 0", b)
		}
	})
}
