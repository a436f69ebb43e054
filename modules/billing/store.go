package billing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/errs"
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

func customerID(ctx context.Context, db bun.IDB, userID, provider string) (string, error) {
	var c Customer
	err := db.NewSelect().Model(&c).Where("user_id = ? AND provider = ?", userID, provider).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.ErrNotFound, "No customer record at this payment provider.")
	}
	if err != nil {
		return "", fmt.Errorf("read customer: %w", err)
	}
	return c.CustomerID, nil
}

func customerIDs(ctx context.Context, db bun.IDB, userID, provider string) ([]string, error) {
	var ids []string
	if err := db.NewSelect().Model((*Customer)(nil)).Column("customer_id").
		Where("user_id = ? AND provider = ?", userID, provider).Scan(ctx, &ids); err != nil {
		return nil, fmt.Errorf("read customers: %w", err)
	}
	return ids, nil
}

// saveCustomer records the user's customer id at a provider; a later id
// replaces an earlier one.
func saveCustomer(ctx context.Context, db bun.IDB, userID, provider, id string, now time.Time) error {
	c := Customer{UserID: userID, Provider: provider, CustomerID: id, CreatedAt: now}
	if _, err := db.NewInsert().Model(&c).
		On("CONFLICT (user_id, provider) DO UPDATE").Set("customer_id = EXCLUDED.customer_id").
		Exec(ctx); err != nil {
		return fmt.Errorf("save customer: %w", err)
	}
	return nil
}

// userForCustomer finds the user behind a provider's customer id.
func userForCustomer(ctx context.Context, db bun.IDB, provider, id string) (string, error) {
	var c Customer
	err := db.NewSelect().Model(&c).Where("provider = ? AND customer_id = ?", provider, id).
		OrderExpr("created_at DESC").Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.ErrNotFound, "Unknown customer.")
	}
	if err != nil {
		return "", fmt.Errorf("read customer: %w", err)
	}
	return c.UserID, nil
}

func getOrder(ctx context.Context, db bun.IDB, id string) (Order, error) {
	var o Order
	err := db.NewSelect().Model(&o).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return o, errs.Ef(errs.ErrNotFound, "No order %s.", id)
	}
	if err != nil {
		return o, fmt.Errorf("read order: %w", err)
	}
	return o, nil
}

func orderByPayment(ctx context.Context, db bun.IDB, provider, paymentID string) (Order, error) {
	var o Order
	err := db.NewSelect().Model(&o).Where("provider = ? AND payment_id = ? AND payment_id <> ''", provider, paymentID).
		Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return o, errs.E(errs.ErrNotFound, "No order for this payment.")
	}
	if err != nil {
		return o, fmt.Errorf("read order: %w", err)
	}
	return o, nil
}

func invoiceByProviderID(ctx context.Context, db bun.IDB, provider, invoiceID string) (Invoice, error) {
	var inv Invoice
	err := db.NewSelect().Model(&inv).Where("provider = ? AND invoice_id = ?", provider, invoiceID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, errs.E(errs.ErrNotFound, "No such invoice.")
	}
	if err != nil {
		return inv, fmt.Errorf("read invoice: %w", err)
	}
	return inv, nil
}

func invoiceByPayment(ctx context.Context, db bun.IDB, provider, paymentID string) (Invoice, error) {
	var inv Invoice
	err := db.NewSelect().Model(&inv).Where("provider = ? AND payment_id = ? AND payment_id <> ''", provider, paymentID).
		Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, errs.E(errs.ErrNotFound, "No invoice for this payment.")
	}
	if err != nil {
		return inv, fmt.Errorf("read invoice: %w", err)
	}
	return inv, nil
}

func listOrders(ctx context.Context, db bun.IDB, userID string, limit int) ([]Order, error) {
	var out []Order
	q := db.NewSelect().Model(&out).Order("created_at DESC", "id DESC").Limit(int64(limit))
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
func saveSubscription(ctx context.Context, db bun.IDB, s Subscription) error {
	if _, err := db.NewInsert().Model(&s).On("CONFLICT (id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("save subscription: %w", err)
	}
	q := db.NewUpdate().Model(&s).
		Column("status", "current_period_start", "current_period_end", "cancel_at_period_end",
			"canceled_at", "event_created", "updated_at").
		Where("id = ? AND event_created <= ?", s.ID, s.EventCreated)
	if s.ProductID != "" {
		q = q.Column("product_id")
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("save subscription: %w", err)
	}
	return nil
}

func getSubscription(ctx context.Context, db bun.IDB, provider, subscriptionID string) (Subscription, error) {
	var s Subscription
	err := db.NewSelect().Model(&s).Where("id = ?", provider+":"+subscriptionID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return s, errs.E(errs.ErrNotFound, "No such subscription.")
	}
	if err != nil {
		return s, fmt.Errorf("read subscription: %w", err)
	}
	return s, nil
}

// latestSubscriptionStatus returns the status of the user's subscription
// that ends last, or "none".
func latestSubscriptionStatus(ctx context.Context, db bun.IDB, userID string) (string, error) {
	var s Subscription
	err := db.NewSelect().Model(&s).Where("user_id = ?", userID).
		OrderExpr("current_period_end DESC NULLS LAST, updated_at DESC").Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return "none", nil
	}
	if err != nil {
		return "", fmt.Errorf("read subscription status: %w", err)
	}
	return s.Status, nil
}

func eventSeen(ctx context.Context, db bun.IDB, provider, id string) (bool, error) {
	n, err := db.NewSelect().Model((*ProcessedEvent)(nil)).
		Where("provider = ? AND event_id = ?", provider, id).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("read processed events: %w", err)
	}
	return n > 0, nil
}

func markEvent(ctx context.Context, db bun.IDB, ev Event, now time.Time) error {
	pe := ProcessedEvent{Provider: ev.Provider, EventID: ev.ID, EventType: ev.Type, ProcessedAt: now}
	if _, err := db.NewInsert().Model(&pe).On("CONFLICT (provider, event_id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("record processed event: %w", err)
	}
	return nil
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
