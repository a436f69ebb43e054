package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
)

// HandleEvent applies a verified provider event once: an event id already
// processed is acknowledged and ignored. Every step below is idempotent
// (ledger operations carry keys, subscription writes are ordered by event
// time), so an event processed halfway before a crash is safe to apply
// again when the provider redelivers it.
func (m *Module) HandleEvent(ctx context.Context, ev Event) error {
	seen, err := m.store.eventSeen(ctx, ev.Provider, ev.ID)
	if err != nil {
		return err
	}
	if seen {
		m.logger.InfoContext(ctx, "billing event replayed", "provider", ev.Provider, "event_type", ev.Type)
		return nil
	}
	switch ev.Kind {
	case EventCheckoutCompleted:
		err = m.checkoutCompleted(ctx, ev)
	case EventCheckoutExpired:
		err = m.checkoutExpired(ctx, ev)
	case EventPeriodPaid:
		err = m.periodPaid(ctx, ev)
	case EventSubscription:
		err = m.subscriptionChanged(ctx, ev)
	case EventRefund:
		err = m.refunded(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("handle %s event %s: %w", ev.Provider, ev.Type, err)
	}
	return m.store.markEvent(ctx, ev, time.Now().UTC())
}

// checkoutCompleted marks the order paid and grants a one-time product's
// credits. A subscription's credits come with its paid periods.
func (m *Module) checkoutCompleted(ctx context.Context, ev Event) error {
	o, err := m.store.getOrder(ctx, ev.OrderID)
	if err != nil {
		return err
	}
	if ev.UserID != "" && ev.UserID != o.UserID {
		return fmt.Errorf("order %s: event names another user", o.ID)
	}
	now := time.Now().UTC()
	if ev.CustomerID != "" {
		if err := m.store.saveCustomer(ctx, o.UserID, ev.Provider, ev.CustomerID, now); err != nil {
			return err
		}
	}
	if err := m.store.completeCheckout(ctx, o.ID, ev, now); err != nil {
		return err
	}
	if ev.SubscriptionID != "" {
		// Links the subscription to the user and product before its own
		// events arrive; the oldest possible time lets any of them win.
		s := Subscription{ID: ev.Provider + ":" + ev.SubscriptionID, UserID: o.UserID, Provider: ev.Provider,
			SubscriptionID: ev.SubscriptionID, ProductID: o.ProductID, Status: "incomplete", UpdatedAt: now}
		if ev.Paid {
			s.Status = "active"
		}
		if err := m.store.saveSubscription(ctx, s); err != nil {
			return err
		}
	}
	if ev.Paid && o.Kind == KindOneTime {
		return m.ledger.Grant(ctx, o.UserID, o.Credits, "purchase", o.ID)
	}
	return nil
}

// checkoutExpired marks a still pending order expired; a paid one stays
// paid.
func (m *Module) checkoutExpired(ctx context.Context, ev Event) error {
	return m.store.expireOrder(ctx, ev.OrderID, time.Now().UTC())
}

// periodPaid records a paid subscription period and grants its credits.
func (m *Module) periodPaid(ctx context.Context, ev Event) error {
	if !ev.Paid {
		return nil
	}
	userID, productID, err := m.subscriber(ctx, ev)
	if err != nil {
		return err
	}
	p, ok := m.products[productID]
	if !ok {
		return fmt.Errorf("paid period of unknown product %q", productID)
	}
	now := time.Now().UTC()
	inv := Invoice{
		ID: ids.New("inv"), UserID: userID, Provider: ev.Provider, InvoiceID: ev.InvoiceID,
		SubscriptionID: ev.SubscriptionID, ProductID: p.ID, AmountCents: ev.AmountCents,
		Currency: ev.Currency, Credits: p.Credits, Status: statusPaid, PaymentID: ev.PaymentID,
		PeriodStart: ev.PeriodStart, PeriodEnd: ev.PeriodEnd, RefundStatus: refundNone, CreatedAt: now,
	}
	if err := m.store.insertInvoice(ctx, &inv); err != nil {
		return err
	}
	if ev.SubscriptionID != "" && ev.PeriodEnd != nil {
		// A paid period proves the subscription active up to its end; the
		// event's time keeps a later cancellation in force.
		s := Subscription{ID: ev.Provider + ":" + ev.SubscriptionID, UserID: userID, Provider: ev.Provider,
			SubscriptionID: ev.SubscriptionID, ProductID: p.ID, Status: "active",
			CurrentPeriodStart: ev.PeriodStart, CurrentPeriodEnd: ev.PeriodEnd,
			EventCreated: ev.Created.Unix(), UpdatedAt: now}
		if err := m.store.saveSubscription(ctx, s); err != nil {
			return err
		}
	}
	return m.ledger.Grant(ctx, userID, p.Credits, "subscription period", grantRefInvoice(ev.Provider, ev.InvoiceID))
}

// subscriber finds the user and our product id behind a subscription
// event: from its metadata, else from the stored subscription, else from
// the customer; the product from the provider's price or product id.
func (m *Module) subscriber(ctx context.Context, ev Event) (userID, productID string, err error) {
	userID = ev.UserID
	if ev.SubscriptionID != "" {
		if s, err := m.store.getSubscription(ctx, ev.Provider, ev.SubscriptionID); err == nil {
			if userID == "" {
				userID = s.UserID
			}
			productID = s.ProductID
		} else if !errors.Is(err, errs.ErrNotFound) {
			return "", "", err
		}
	}
	if userID == "" && ev.CustomerID != "" {
		if userID, err = m.store.userForCustomer(ctx, ev.Provider, ev.CustomerID); err != nil {
			return "", "", err
		}
	}
	if userID == "" {
		return "", "", errors.New("cannot tell whose subscription this is")
	}
	if p, ok := m.productByProviderID(ev.Provider, ev.PriceID); ok {
		productID = p.ID
	}
	return userID, productID, nil
}

func (m *Module) productByProviderID(provider, id string) (Product, bool) {
	if id == "" {
		return Product{}, false
	}
	for _, p := range m.cfg.Products {
		if (provider == ProviderStripe && p.StripePriceID == id) || (provider == ProviderCreem && p.CreemProductID == id) {
			return p, true
		}
	}
	return Product{}, false
}

// subscriptionChanged stores the subscription's new state unless a newer
// one is stored.
func (m *Module) subscriptionChanged(ctx context.Context, ev Event) error {
	userID, productID, err := m.subscriber(ctx, ev)
	if err != nil {
		return err
	}
	s := Subscription{ID: ev.Provider + ":" + ev.SubscriptionID, UserID: userID, Provider: ev.Provider,
		SubscriptionID: ev.SubscriptionID, ProductID: productID, Status: ev.Status,
		CurrentPeriodStart: ev.PeriodStart, CurrentPeriodEnd: ev.PeriodEnd,
		CancelAtPeriodEnd: ev.CancelAtPeriodEnd, CanceledAt: ev.CanceledAt,
		EventCreated: ev.Created.Unix(), UpdatedAt: time.Now().UTC()}
	return m.store.saveSubscription(ctx, s)
}

// refunded records a refund on the order or paid period it refunds and
// claws back the refunded share of its credits.
func (m *Module) refunded(ctx context.Context, ev Event) error {
	target, err := m.refundTarget(ctx, ev)
	if err != nil {
		return err
	}
	total := target.amount
	if total <= 0 {
		total = ev.AmountCents
	}
	refundedTotal := ev.RefundedTotal
	if refundedTotal == 0 {
		refundedTotal = target.refunded + ev.RefundAmount
	}
	refundedTotal = min(refundedTotal, total)
	status := refundStatus(refundedTotal, total)
	if err := m.store.recordRefund(ctx, target.table, target.id, refundedTotal, status); err != nil {
		return err
	}
	granted, clawed, err := m.ledger.granted(ctx, target.grantRef)
	if err != nil {
		return err
	}
	want := granted
	if total > 0 && refundedTotal < total {
		want = granted * refundedTotal / total
	}
	taken, shortfall, err := m.ledger.Clawback(ctx, target.userID, want-clawed, target.grantRef, ev.Provider+":"+ev.RefundID)
	if err != nil {
		return err
	}
	if shortfall > 0 {
		m.logger.WarnContext(ctx, "refund clawback short", "provider", ev.Provider, "taken", taken, "shortfall", shortfall)
	}
	return nil
}

// refundTarget is the order or paid period a refund applies to.
type refundTarget struct {
	table, id, userID, grantRef string
	amount, refunded            int64
}

func (m *Module) refundTarget(ctx context.Context, ev Event) (refundTarget, error) {
	if ev.PaymentID != "" {
		if o, err := m.store.orderByPayment(ctx, ev.Provider, ev.PaymentID); err == nil && o.Kind == KindOneTime {
			return refundTarget{table: "billing_orders", id: o.ID, userID: o.UserID, grantRef: o.ID,
				amount: o.AmountCents, refunded: o.RefundedCents}, nil
		} else if err != nil && !errors.Is(err, errs.ErrNotFound) {
			return refundTarget{}, err
		}
	}
	inv, err := m.store.invoiceByProviderID(ctx, ev.Provider, ev.InvoiceID)
	if errors.Is(err, errs.ErrNotFound) && ev.PaymentID != "" {
		inv, err = m.store.invoiceByPayment(ctx, ev.Provider, ev.PaymentID)
	}
	if err != nil {
		return refundTarget{}, fmt.Errorf("find refunded payment: %w", err)
	}
	return refundTarget{table: "billing_invoices", id: inv.ID, userID: inv.UserID,
		grantRef: grantRefInvoice(inv.Provider, inv.InvoiceID), amount: inv.AmountCents, refunded: inv.RefundedCents}, nil
}

func grantRefInvoice(provider, invoiceID string) string {
	return provider + ":" + invoiceID
}
