package billing

import (
	"context"
	"database/sql"
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
	db  *bun.DB
	now func() time.Time
}

// NewLedger returns the ledger stored in db.
func NewLedger(db *bun.DB) *Ledger {
	return &Ledger{db: db, now: func() time.Time { return time.Now().UTC() }}
}

// Balance returns the user's spendable credits: zero for a user who never
// had any.
func (l *Ledger) Balance(ctx context.Context, userID string) (int64, error) {
	var b Balance
	err := l.db.NewSelect().Model(&b).Where("user_id = ?", userID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read credit balance: %w", err)
	}
	return b.Balance, nil
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
		done, err := l.applied(ctx, tx, EntryAdjustment+":"+ref)
		if err != nil || done {
			return err
		}
		ok, err := debit(ctx, tx, userID, -amount, l.now())
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
		done, err := l.applied(ctx, tx, key)
		if err != nil || done {
			return err
		}
		if err := creditRow(ctx, tx, userID, amount, l.now()); err != nil {
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
	if id, err := l.reservationFor(ctx, l.db, userID, ref); err == nil || !errors.Is(err, errs.ErrNotFound) {
		return id, err
	}
	id := ids.New("res")
	err := l.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// Checked again inside the transaction: a concurrent retry may have
		// reserved between the read above and the lock.
		if _, err := l.reservationFor(ctx, tx, userID, ref); err == nil {
			return errReserved
		}
		now := l.now()
		ok, err := debit(ctx, tx, userID, amount, now)
		if err != nil {
			return err
		}
		if !ok {
			return errs.E(errs.ErrPaymentRequired, "Not enough credits for this request.")
		}
		r := Reservation{ID: id, UserID: userID, Amount: amount, Ref: ref, Status: reservationHeld, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.NewInsert().Model(&r).Exec(ctx); err != nil {
			return fmt.Errorf("insert reservation: %w", err)
		}
		return l.append(ctx, tx, Entry{UserID: userID, Kind: EntryReserve, Amount: -amount, Reason: "reserved", Ref: ref, ReservationID: id, IdemKey: EntryReserve + ":" + id})
	})
	if errors.Is(err, errReserved) {
		return l.reservationFor(ctx, l.db, userID, ref)
	}
	if err != nil {
		return "", fmt.Errorf("reserve credits: %w", err)
	}
	return id, nil
}

// errReserved ends a reservation transaction that found the work already
// reserved.
var errReserved = errors.New("already reserved")

func (l *Ledger) reservationFor(ctx context.Context, db bun.IDB, userID, ref string) (string, error) {
	var r Reservation
	err := db.NewSelect().Model(&r).Where("user_id = ? AND ref = ?", userID, ref).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.ErrNotFound, "No such reservation.")
	}
	if err != nil {
		return "", fmt.Errorf("read reservation: %w", err)
	}
	return r.ID, nil
}

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
		var r Reservation
		res, err := tx.NewUpdate().Model(&r).
			Set("status = ?", to).Set("updated_at = ?", now).
			Where("id = ? AND status = ?", reservationID, reservationHeld).
			Returning("*").Exec(ctx)
		if err != nil {
			return fmt.Errorf("update reservation: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			err := tx.NewSelect().Model(&r).Where("id = ?", reservationID).Scan(ctx)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return errs.E(errs.ErrNotFound, "No such reservation.")
			case err != nil:
				return fmt.Errorf("read reservation: %w", err)
			case r.Status == to:
				return nil
			default:
				return errs.Ef(errs.ErrConflict, "The reservation is already %s.", r.Status)
			}
		}
		kind, amount := EntryCommit, int64(0)
		if to == reservationReleased {
			kind, amount = EntryRelease, r.Amount
			if err := creditRow(ctx, tx, r.UserID, amount, now); err != nil {
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
		done, err := l.applied(ctx, tx, key)
		if err != nil || done {
			return err
		}
		// Updating the row to itself locks it on PostgreSQL until the
		// transaction ends and reads the balance in the same statement; on
		// SQLite the transaction already holds the write lock.
		var balance int64
		err = tx.NewUpdate().Model((*Balance)(nil)).Set("balance = balance").
			Where("user_id = ?", userID).Returning("balance").Scan(ctx, &balance)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("lock credit balance: %w", err)
		}
		taken = min(balance, amount)
		shortfall = amount - taken
		if taken > 0 {
			if ok, err := debit(ctx, tx, userID, taken, l.now()); err != nil {
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
	var entries []Entry
	if err := l.db.NewSelect().Model(&entries).Where("ref = ?", ref).
		Where("kind IN (?)", bun.In([]string{EntryGrant, EntryClawback})).Scan(ctx); err != nil {
		return 0, 0, fmt.Errorf("read grants: %w", err)
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
	var out []Entry
	if err := l.db.NewSelect().Model(&out).Where("user_id = ?", userID).
		Order("created_at ASC", "id ASC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	return out, nil
}

func (l *Ledger) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return l.db.RunInTx(ctx, nil, fn)
}

func (l *Ledger) applied(ctx context.Context, tx bun.Tx, key string) (bool, error) {
	n, err := tx.NewSelect().Model((*Entry)(nil)).Where("idem_key = ?", key).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("read ledger: %w", err)
	}
	return n > 0, nil
}

func (l *Ledger) append(ctx context.Context, tx bun.Tx, e Entry) error {
	e.ID = ids.New("led")
	e.CreatedAt = l.now()
	if _, err := tx.NewInsert().Model(&e).Exec(ctx); err != nil {
		return fmt.Errorf("append ledger entry: %w", err)
	}
	return nil
}

// creditRow adds amount to the user's balance row, creating it first.
func creditRow(ctx context.Context, tx bun.Tx, userID string, amount int64, now time.Time) error {
	b := Balance{UserID: userID, UpdatedAt: now}
	if _, err := tx.NewInsert().Model(&b).On("CONFLICT (user_id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("create credit balance: %w", err)
	}
	if _, err := tx.NewUpdate().Model((*Balance)(nil)).
		Set("balance = balance + ?", amount).Set("updated_at = ?", now).
		Where("user_id = ?", userID).Exec(ctx); err != nil {
		return fmt.Errorf("credit balance: %w", err)
	}
	return nil
}

// debit takes amount from the user's balance when it holds that much, and
// reports whether it did.
func debit(ctx context.Context, tx bun.Tx, userID string, amount int64, now time.Time) (bool, error) {
	res, err := tx.NewUpdate().Model((*Balance)(nil)).
		Set("balance = balance - ?", amount).Set("updated_at = ?", now).
		Where("user_id = ? AND balance >= ?", userID, amount).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("debit balance: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("debit balance: %w", err)
	}
	return n == 1, nil
}
