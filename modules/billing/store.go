package billing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/rowcount"
)

// Refund states of orders and invoices.
const (
	refundNone    = "none"
	refundPartial = "partially_refunded"
	refundFull    = "refunded"
)

// Payment states of orders.
const (
	statusPending = "pending"
	statusPaid    = "paid"
	statusExpired = "expired"
)

// store holds every SQL statement of the module, the ledger's included.
// The ledger's methods that take a bun.Tx run inside a transaction of
// inTx.
type store struct {
	db *bun.DB
}

func (s *store) customerID(ctx context.Context, userID, provider string) (string, error) {
	var c Customer
	err := s.db.NewSelect().Model(&c).Where("user_id = ? AND provider = ?", userID, provider).Scan(ctx)
	if err := rowcount.Found(err, errs.E(errs.ErrNotFound, "No customer record at this payment provider."), "read customer"); err != nil {
		return "", err
	}
	return c.CustomerID, nil
}

func (s *store) customerIDs(ctx context.Context, userID, provider string) ([]string, error) {
	var ids []string
	if err := s.db.NewSelect().Model((*Customer)(nil)).Column("customer_id").
		Where("user_id = ? AND provider = ?", userID, provider).Scan(ctx, &ids); err != nil {
		return nil, fmt.Errorf("read customers: %w", err)
	}
	return ids, nil
}

// saveCustomer records the user's customer id at a provider; a later id
// replaces an earlier one.
func (s *store) saveCustomer(ctx context.Context, userID, provider, id string, now time.Time) error {
	c := Customer{UserID: userID, Provider: provider, CustomerID: id, CreatedAt: now}
	if _, err := s.db.NewInsert().Model(&c).
		On("CONFLICT (user_id, provider) DO UPDATE").Set("customer_id = EXCLUDED.customer_id").
		Exec(ctx); err != nil {
		return fmt.Errorf("save customer: %w", err)
	}
	return nil
}

// userForCustomer finds the user behind a provider's customer id.
func (s *store) userForCustomer(ctx context.Context, provider, id string) (string, error) {
	var c Customer
	err := s.db.NewSelect().Model(&c).Where("provider = ? AND customer_id = ?", provider, id).
		OrderExpr("created_at DESC").Limit(1).Scan(ctx)
	if err := rowcount.Found(err, errs.E(errs.ErrNotFound, "Unknown customer."), "read customer"); err != nil {
		return "", err
	}
	return c.UserID, nil
}

func (s *store) getOrder(ctx context.Context, id string) (Order, error) {
	var o Order
	err := s.db.NewSelect().Model(&o).Where("id = ?", id).Scan(ctx)
	return o, rowcount.Found(err, errs.Ef(errs.ErrNotFound, "No order %s.", id), "read order")
}

func (s *store) orderByPayment(ctx context.Context, provider, paymentID string) (Order, error) {
	var o Order
	err := s.db.NewSelect().Model(&o).Where("provider = ? AND payment_id = ? AND payment_id <> ''", provider, paymentID).
		Limit(1).Scan(ctx)
	return o, rowcount.Found(err, errs.E(errs.ErrNotFound, "No order for this payment."), "read order")
}

func (s *store) invoiceByProviderID(ctx context.Context, provider, invoiceID string) (Invoice, error) {
	var inv Invoice
	err := s.db.NewSelect().Model(&inv).Where("provider = ? AND invoice_id = ?", provider, invoiceID).Scan(ctx)
	return inv, rowcount.Found(err, errs.E(errs.ErrNotFound, "No such invoice."), "read invoice")
}

func (s *store) invoiceByPayment(ctx context.Context, provider, paymentID string) (Invoice, error) {
	var inv Invoice
	err := s.db.NewSelect().Model(&inv).Where("provider = ? AND payment_id = ? AND payment_id <> ''", provider, paymentID).
		Limit(1).Scan(ctx)
	return inv, rowcount.Found(err, errs.E(errs.ErrNotFound, "No invoice for this payment."), "read invoice")
}

func (s *store) listOrders(ctx context.Context, userID string, limit int) ([]Order, error) {
	var out []Order
	q := s.db.NewSelect().Model(&out).Order("created_at DESC", "id DESC").Limit(int64(limit))
	if userID != "" {
		q = q.Where("user_id = ?", userID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	return out, nil
}

// saveSubscription writes a subscription state unless a state from a newer
// event is already stored. The conditional UPDATE makes the check and the
// write one step, so two deliveries racing cannot undo each other.
func (s *store) saveSubscription(ctx context.Context, sub Subscription) error {
	if _, err := s.db.NewInsert().Model(&sub).On("CONFLICT (id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("save subscription: %w", err)
	}
	q := s.db.NewUpdate().Model(&sub).
		Column("status", "current_period_start", "current_period_end", "cancel_at_period_end",
			"canceled_at", "event_created", "updated_at").
		Where("id = ? AND event_created <= ?", sub.ID, sub.EventCreated)
	if sub.ProductID != "" {
		q = q.Column("product_id")
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("save subscription: %w", err)
	}
	return nil
}

func (s *store) getSubscription(ctx context.Context, provider, subscriptionID string) (Subscription, error) {
	var sub Subscription
	err := s.db.NewSelect().Model(&sub).Where("id = ?", provider+":"+subscriptionID).Scan(ctx)
	return sub, rowcount.Found(err, errs.E(errs.ErrNotFound, "No such subscription."), "read subscription")
}

// latestSubscriptionStatus returns the status of the user's subscription
// that ends last, or "none".
func (s *store) latestSubscriptionStatus(ctx context.Context, userID string) (string, error) {
	var sub Subscription
	err := s.db.NewSelect().Model(&sub).Where("user_id = ?", userID).
		OrderExpr("current_period_end DESC NULLS LAST, updated_at DESC").Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return "none", nil
	}
	if err != nil {
		return "", fmt.Errorf("read subscription status: %w", err)
	}
	return sub.Status, nil
}

func (s *store) eventSeen(ctx context.Context, provider, id string) (bool, error) {
	n, err := s.db.NewSelect().Model((*ProcessedEvent)(nil)).
		Where("provider = ? AND event_id = ?", provider, id).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("read processed events: %w", err)
	}
	return n > 0, nil
}

func (s *store) markEvent(ctx context.Context, ev Event, now time.Time) error {
	pe := ProcessedEvent{Provider: ev.Provider, EventID: ev.ID, EventType: ev.Type, ProcessedAt: now}
	if _, err := s.db.NewInsert().Model(&pe).On("CONFLICT (provider, event_id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("record processed event: %w", err)
	}
	return nil
}

// insertOrder stores a new order.
func (s *store) insertOrder(ctx context.Context, o *Order) error {
	if _, err := s.db.NewInsert().Model(o).Exec(ctx); err != nil {
		return fmt.Errorf("insert order: %w", err)
	}
	return nil
}

// setCheckoutSession records the provider's checkout session of an order.
func (s *store) setCheckoutSession(ctx context.Context, orderID, sessionID string) error {
	if _, err := s.db.NewUpdate().Model((*Order)(nil)).Set("checkout_session_id = ?", sessionID).
		Where("id = ?", orderID).Exec(ctx); err != nil {
		return fmt.Errorf("update order: %w", err)
	}
	return nil
}

// completeCheckout records what a completed checkout event tells of the
// order: its session, payment and subscription ids when the event has
// them, and its payment when the event says it is paid.
func (s *store) completeCheckout(ctx context.Context, orderID string, ev Event, now time.Time) error {
	q := s.db.NewUpdate().Model((*Order)(nil)).Set("updated_at = ?", now).Where("id = ?", orderID)
	if ev.SessionID != "" {
		q = q.Set("checkout_session_id = ?", ev.SessionID)
	}
	if ev.PaymentID != "" {
		q = q.Set("payment_id = ?", ev.PaymentID)
	}
	if ev.SubscriptionID != "" {
		q = q.Set("subscription_id = ?", ev.SubscriptionID)
	}
	if ev.Paid {
		q = q.Set("status = ?", statusPaid)
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("update order: %w", err)
	}
	return nil
}

// expireOrder marks an order expired if it is still pending.
func (s *store) expireOrder(ctx context.Context, orderID string, now time.Time) error {
	if _, err := s.db.NewUpdate().Model((*Order)(nil)).
		Set("status = ?", statusExpired).Set("updated_at = ?", now).
		Where("id = ? AND status = ?", orderID, statusPending).Exec(ctx); err != nil {
		return fmt.Errorf("expire order: %w", err)
	}
	return nil
}

// refundedOrders returns the orders created in [from, to) with a refund.
func (s *store) refundedOrders(ctx context.Context, from, to time.Time) ([]Order, error) {
	var orders []Order
	if err := s.db.NewSelect().Model(&orders).Column("id", "refunded_cents", "currency").
		Where("refunded_cents > 0").Where("created_at >= ?", from).Where("created_at < ?", to).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read refunds: %w", err)
	}
	return orders, nil
}

// insertInvoice stores a paid period unless its invoice is stored.
func (s *store) insertInvoice(ctx context.Context, inv *Invoice) error {
	if _, err := s.db.NewInsert().Model(inv).On("CONFLICT (provider, invoice_id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("save invoice: %w", err)
	}
	return nil
}

// recordRefund sets the refunded total and refund status of the order or
// invoice id in table, unless a larger total is already stored.
func (s *store) recordRefund(ctx context.Context, table, id string, refunded int64, status string) error {
	if _, err := s.db.NewUpdate().Table(table).
		Set("refunded_cents = ?", refunded).Set("refund_status = ?", status).
		Where("id = ? AND refunded_cents <= ?", id, refunded).Exec(ctx); err != nil {
		return fmt.Errorf("record refund: %w", err)
	}
	return nil
}

// inTx runs fn in one transaction, committed when fn returns nil.
func (s *store) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return s.db.RunInTx(ctx, nil, fn)
}

// balance returns the user's spendable credits: zero for a user who never
// had any.
func (s *store) balance(ctx context.Context, userID string) (int64, error) {
	var b Balance
	err := s.db.NewSelect().Model(&b).Where("user_id = ?", userID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read credit balance: %w", err)
	}
	return b.Balance, nil
}

// lockBalance reads the user's balance, zero when there is no row, and
// holds the row until the transaction ends. Updating the row to itself
// locks it on PostgreSQL and reads the balance in the same statement; on
// SQLite the transaction already holds the write lock.
func (s *store) lockBalance(ctx context.Context, tx bun.Tx, userID string) (int64, error) {
	var balance int64
	err := tx.NewUpdate().Model((*Balance)(nil)).Set("balance = balance").
		Where("user_id = ?", userID).Returning("balance").Scan(ctx, &balance)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("lock credit balance: %w", err)
	}
	return balance, nil
}

// creditRow adds amount to the user's balance row, creating it first.
func (s *store) creditRow(ctx context.Context, tx bun.Tx, userID string, amount int64, now time.Time) error {
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
func (s *store) debit(ctx context.Context, tx bun.Tx, userID string, amount int64, now time.Time) (bool, error) {
	res, err := tx.NewUpdate().Model((*Balance)(nil)).
		Set("balance = balance - ?", amount).Set("updated_at = ?", now).
		Where("user_id = ? AND balance >= ?", userID, amount).Exec(ctx)
	return rowcount.One(res, err, "debit balance")
}

// reservationFor returns the id of the user's reservation for ref.
func (s *store) reservationFor(ctx context.Context, db bun.IDB, userID, ref string) (string, error) {
	var r Reservation
	err := db.NewSelect().Model(&r).Where("user_id = ? AND ref = ?", userID, ref).Scan(ctx)
	if err := rowcount.Found(err, errs.E(errs.ErrNotFound, "No such reservation."), "read reservation"); err != nil {
		return "", err
	}
	return r.ID, nil
}

func (s *store) reservation(ctx context.Context, tx bun.Tx, id string) (Reservation, error) {
	var r Reservation
	err := tx.NewSelect().Model(&r).Where("id = ?", id).Scan(ctx)
	return r, rowcount.Found(err, errs.E(errs.ErrNotFound, "No such reservation."), "read reservation")
}

func (s *store) insertReservation(ctx context.Context, tx bun.Tx, r *Reservation) error {
	if _, err := tx.NewInsert().Model(r).Exec(ctx); err != nil {
		return fmt.Errorf("insert reservation: %w", err)
	}
	return nil
}

// moveReservation sets the reservation's status to to if it is from, and
// returns the reservation as updated and whether it moved it.
func (s *store) moveReservation(ctx context.Context, tx bun.Tx, id, from, to string, now time.Time) (Reservation, bool, error) {
	var r Reservation
	res, err := tx.NewUpdate().Model(&r).
		Set("status = ?", to).Set("updated_at = ?", now).
		Where("id = ? AND status = ?", id, from).
		Returning("*").Exec(ctx)
	if err != nil {
		return r, false, fmt.Errorf("update reservation: %w", err)
	}
	n, _ := res.RowsAffected()
	return r, n != 0, nil
}

// applied reports whether the ledger holds an entry with the idempotency
// key.
func (s *store) applied(ctx context.Context, tx bun.Tx, key string) (bool, error) {
	n, err := tx.NewSelect().Model((*Entry)(nil)).Where("idem_key = ?", key).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("read ledger: %w", err)
	}
	return n > 0, nil
}

func (s *store) appendEntry(ctx context.Context, tx bun.Tx, e *Entry) error {
	if _, err := tx.NewInsert().Model(e).Exec(ctx); err != nil {
		return fmt.Errorf("append ledger entry: %w", err)
	}
	return nil
}

// entriesOfRef returns the ledger entries of the kinds under ref.
func (s *store) entriesOfRef(ctx context.Context, ref string, kinds ...string) ([]Entry, error) {
	var entries []Entry
	if err := s.db.NewSelect().Model(&entries).Where("ref = ?", ref).
		Where("kind IN (?)", bun.In(kinds)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	return entries, nil
}

// entries returns the user's ledger, oldest first.
func (s *store) entries(ctx context.Context, userID string) ([]Entry, error) {
	var out []Entry
	if err := s.db.NewSelect().Model(&out).Where("user_id = ?", userID).
		Order("created_at ASC", "id ASC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	return out, nil
}

func refundStatus(refunded, total int64) string {
	switch {
	case refunded <= 0:
		return refundNone
	case refunded >= total:
		return refundFull
	default:
		return refundPartial
	}
}
