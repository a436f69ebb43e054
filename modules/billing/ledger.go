package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
)

// Kinds of ledger entries.
const (
	EntryGrant      = "grant"
	EntryReserve    = "reserve"
	EntryCommit     = "commit"
	EntryRelease    = "release"
	EntryClawback   = "refund_clawback"
	EntryReward     = "reward"
	EntryAdjustment = "adjustment"
)

// Reservation states.
const (
	reservationHeld      = "held"
	reservationCommitted = "committed"
	reservationReleased  = "released"
)

// Ledger is the credits ledger. Every change of a user's spendable balance
// is one transaction that updates the user's credit_balances row and
// appends an entry to credit_ledger, so the balance and its history never
// disagree. A debit is a conditional UPDATE (balance >= amount) on that
// row, which the database serialises per user: on PostgreSQL the row lock,
// on SQLite the write lock taken at BEGIN. The balance therefore never goes
// negative, however many reservations run at once.
//
// Every operation carries an idempotency key, stored unique with its entry,
// so a retried call (a redelivered webhook, a worker restarted after a
// crash) applies nothing twice. A Ledger is safe for concurrent use.
type Ledger struct {
	store store
	now   func() time.Time
}

// NewLedger returns the ledger stored in db.
func NewLedger(db *bun.DB) *Ledger {
	return &Ledger{store: store{db: db}, now: func() time.Time { return time.Now().UTC() }}
}

// Balance returns the user's spendable credits: zero for a user who never
// had any.
func (l *Ledger) Balance(ctx context.Context, userID string) (int64, error) {
	return l.store.balance(ctx, userID)
}

// Grant adds amount credits to the user's balance for reason. ref
// identifies what the credits are for (an order, an invoice); a second
// grant with the same ref does nothing, so a retried grant is safe.
func (l *Ledger) Grant(ctx context.Context, userID string, amount int64, reason, ref string) error {
	return l.credit(ctx, userID, EntryGrant, amount, reason, ref)
}

// Reward adds amount credits as a reward (for example a referral); like
// Grant it happens once per ref.
func (l *Ledger) Reward(ctx context.Context, userID string, amount int64, reason, ref string) error {
	return l.credit(ctx, userID, EntryReward, amount, reason, ref)
}

// Adjust changes the balance by a signed amount, for corrections made by
// staff. A negative adjustment larger than the balance is refused with
// errs.ErrConflict. It happens once per ref.
func (l *Ledger) Adjust(ctx context.Context, userID string, amount int64, reason, ref string) error {
	if ref == "" {
		return errors.New("adjust credits: ref is required")
	}
	if amount >= 0 {
		return l.credit(ctx, userID, EntryAdjustment, amount, reason, ref)
	}
	return l.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		done, err := l.store.applied(ctx, tx, EntryAdjustment+":"+ref)
		if err != nil || done {
			return err
		}
		ok, err := l.store.debit(ctx, tx, userID, -amount, l.now())
		if err != nil {
			return err
		}
		if !ok {
			return errs.E(errs.ErrConflict, "The adjustment is larger than the balance.")
		}
		return l.append(ctx, tx, Entry{UserID: userID, Kind: EntryAdjustment, Amount: amount, Reason: reason, Ref: ref, IdemKey: EntryAdjustment + ":" + ref})
	})
}

func (l *Ledger) credit(ctx context.Context, userID, kind string, amount int64, reason, ref string) error {
	if amount <= 0 {
		return fmt.Errorf("%s credits: amount must be positive, got %d", kind, amount)
	}
	if userID == "" || ref == "" {
		return fmt.Errorf("%s credits: user and ref are required", kind)
	}
	return l.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		key := kind + ":" + ref
		done, err := l.store.applied(ctx, tx, key)
		if err != nil || done {
			return err
		}
		if err := l.store.creditRow(ctx, tx, userID, amount, l.now()); err != nil {
			return err
		}
		return l.append(ctx, tx, Entry{UserID: userID, Kind: kind, Amount: amount, Reason: reason, Ref: ref, IdemKey: key})
	})
}

// Reserve sets amount credits aside for the work ref names (a generation)
// and returns the reservation's id. When the balance is too small it
// returns an error wrapping errs.ErrPaymentRequired. Reserving again for
// the same user and ref returns the first reservation, so a retried call
// never holds the credits twice.
func (l *Ledger) Reserve(ctx context.Context, userID string, amount int64, ref string) (string, error) {
	if amount <= 0 {
		return "", fmt.Errorf("reserve credits: amount must be positive, got %d", amount)
	}
	if userID == "" || ref == "" {
		return "", errors.New("reserve credits: user and ref are required")
	}
	if id, err := l.store.reservationFor(ctx, l.store.db, userID, ref); err == nil || !errors.Is(err, errs.ErrNotFound) {
		return id, err
	}
	id := ids.New("res")
	err := l.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// Checked again inside the transaction: a concurrent retry may have
		// reserved between the read above and the lock.
		if _, err := l.store.reservationFor(ctx, tx, userID, ref); err == nil {
			return errReserved
		}
		now := l.now()
		ok, err := l.store.debit(ctx, tx, userID, amount, now)
		if err != nil {
			return err
		}
		if !ok {
			return errs.E(errs.ErrPaymentRequired, "Not enough credits for this request.")
		}
		r := Reservation{ID: id, UserID: userID, Amount: amount, Ref: ref, Status: reservationHeld, CreatedAt: now, UpdatedAt: now}
		if err := l.store.insertReservation(ctx, tx, &r); err != nil {
			return err
		}
		return l.append(ctx, tx, Entry{UserID: userID, Kind: EntryReserve, Amount: -amount, Reason: "reserved", Ref: ref, ReservationID: id, IdemKey: EntryReserve + ":" + id})
	})
	if errors.Is(err, errReserved) {
		return l.store.reservationFor(ctx, l.store.db, userID, ref)
	}
	if err != nil {
		return "", fmt.Errorf("reserve credits: %w", err)
	}
	return id, nil
}

// errReserved ends a reservation transaction that found the work already
// reserved.
var errReserved = errors.New("already reserved")

// Commit spends a reservation's credits. Committing a committed
// reservation does nothing; committing a released one is a conflict.
func (l *Ledger) Commit(ctx context.Context, reservationID string) error {
	return l.settle(ctx, reservationID, reservationCommitted)
}

// Release gives a reservation's credits back to the balance, for work that
// failed or was cancelled. Releasing a released reservation does nothing;
// releasing a committed one is a conflict.
func (l *Ledger) Release(ctx context.Context, reservationID string) error {
	return l.settle(ctx, reservationID, reservationReleased)
}

func (l *Ledger) settle(ctx context.Context, reservationID, to string) error {
	err := l.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := l.now()
		r, moved, err := l.store.moveReservation(ctx, tx, reservationID, reservationHeld, to, now)
		if err != nil {
			return err
		}
		if !moved {
			r, err := l.store.reservation(ctx, tx, reservationID)
			switch {
			case err != nil:
				return err
			case r.Status == to:
				return nil
			default:
				return errs.Ef(errs.ErrConflict, "The reservation is already %s.", r.Status)
			}
		}
		kind, amount := EntryCommit, int64(0)
		if to == reservationReleased {
			kind, amount = EntryRelease, r.Amount
			if err := l.store.creditRow(ctx, tx, r.UserID, amount, now); err != nil {
				return err
			}
		}
		return l.append(ctx, tx, Entry{UserID: r.UserID, Kind: kind, Amount: amount, Reason: to, Ref: r.Ref, ReservationID: r.ID, IdemKey: kind + ":" + r.ID})
	})
	if err != nil {
		return fmt.Errorf("%s reservation: %w", to, err)
	}
	return nil
}

// Clawback takes back up to amount credits granted under grantRef because
// the payment was refunded. It never drives the balance negative: what the
// balance cannot cover (credits already spent) is recorded as the entry's
// shortfall. refundKey identifies the refund, so a retried clawback takes
// nothing twice. It returns the credits taken and the shortfall.
func (l *Ledger) Clawback(ctx context.Context, userID string, amount int64, grantRef, refundKey string) (taken, shortfall int64, err error) {
	if amount <= 0 {
		return 0, 0, nil
	}
	key := EntryClawback + ":" + refundKey
	err = l.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		done, err := l.store.applied(ctx, tx, key)
		if err != nil || done {
			return err
		}
		balance, err := l.store.lockBalance(ctx, tx, userID)
		if err != nil {
			return err
		}
		taken = min(balance, amount)
		shortfall = amount - taken
		if taken > 0 {
			if ok, err := l.store.debit(ctx, tx, userID, taken, l.now()); err != nil {
				return err
			} else if !ok {
				return errors.New("credit balance changed under lock")
			}
		}
		return l.append(ctx, tx, Entry{UserID: userID, Kind: EntryClawback, Amount: -taken, Shortfall: shortfall, Reason: "refund", Ref: grantRef, IdemKey: key})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("claw back credits: %w", err)
	}
	return taken, shortfall, nil
}

// granted returns the credits granted under ref and those already clawed
// back from it (taken plus shortfall).
func (l *Ledger) granted(ctx context.Context, ref string) (granted, clawed int64, err error) {
	entries, err := l.store.entriesOfRef(ctx, ref, EntryGrant, EntryClawback)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if e.Kind == EntryGrant {
			granted += e.Amount
		} else {
			clawed += -e.Amount + e.Shortfall
		}
	}
	return granted, clawed, nil
}

// Entries returns the user's ledger, oldest first.
func (l *Ledger) Entries(ctx context.Context, userID string) ([]Entry, error) {
	return l.store.entries(ctx, userID)
}

func (l *Ledger) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return l.store.inTx(ctx, fn)
}

func (l *Ledger) append(ctx context.Context, tx bun.Tx, e Entry) error {
	e.ID = ids.New("led")
	e.CreatedAt = l.now()
	return l.store.appendEntry(ctx, tx, &e)
}
