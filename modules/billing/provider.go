package billing

import (
	"context"
	"time"
)

// Provider names.
const (
	ProviderStripe = "stripe"
	ProviderCreem  = "creem"
)

// Provider is a payment provider: it opens checkouts and turns its signed
// webhook deliveries into events the module applies to orders,
// subscriptions and the ledger the same way for every provider.
type Provider interface {
	// Name is the provider's name, as clients pass it in
	// POST /v1/billing/checkout.
	Name() string
	// Checkout opens a hosted checkout for the order.
	Checkout(ctx context.Context, req CheckoutRequest) (CheckoutResult, error)
	// ParseWebhook verifies the signature of a webhook delivery on its raw
	// body and returns its event. A bad signature is an error wrapping
	// errs.ErrInvalidArgument. An event the module does not act on comes
	// back with Kind "".
	ParseWebhook(body []byte, header func(name string) string) (Event, error)
}

// CheckoutRequest is what a provider needs to open a checkout.
type CheckoutRequest struct {
	OrderID string
	UserID  string
	// Email is the buyer's address, read from the request's principal; it
	// pre-fills the checkout and the provider's customer record.
	Email   string
	Product Product
	// CustomerID is the user's customer id at the provider, "" when the
	// user has none yet.
	CustomerID string
}

// CheckoutResult is an opened checkout.
type CheckoutResult struct {
	// URL is the hosted payment page to send the user to.
	URL string
	// SessionID is the provider's checkout session id.
	SessionID string
	// CustomerID is the user's customer id at the provider when the
	// checkout created one, "" otherwise.
	CustomerID string
}

// Event kinds a provider's webhook event maps to.
const (
	// EventCheckoutCompleted: a checkout was paid (or, for a subscription,
	// started). Credits of a one-time product are granted on it.
	EventCheckoutCompleted = "checkout_completed"
	// EventCheckoutExpired: a checkout was abandoned; its order expires.
	EventCheckoutExpired = "checkout_expired"
	// EventPeriodPaid: a subscription period was paid (a Stripe invoice, a
	// Creem subscription transaction). A subscription's credits are granted
	// on it, the first period's included, so they are granted once.
	EventPeriodPaid = "period_paid"
	// EventSubscription: a subscription was created, changed or ended.
	EventSubscription = "subscription"
	// EventRefund: a payment was refunded, in part or in full.
	EventRefund = "refund"
)

// Event is a provider webhook event, reduced to what the module uses.
type Event struct {
	Provider string
	ID       string
	// Type is the provider's event type, such as "invoice.paid".
	Type string
	// Kind is one of the Event kinds, or "" for an event to acknowledge
	// and ignore.
	Kind string
	// Created is when the provider created the event; it orders
	// subscription updates.
	Created time.Time

	// OrderID and UserID are ours, carried through checkout metadata.
	OrderID    string
	UserID     string
	CustomerID string
	SessionID  string
	// PaymentID is the provider's payment id (Stripe payment intent, Creem
	// order), by which a refund finds the order.
	PaymentID string
	// InvoiceID is the provider's id of a paid period (Stripe invoice,
	// Creem transaction).
	InvoiceID      string
	SubscriptionID string
	// PriceID is the provider's price (Stripe) or product (Creem) id.
	PriceID     string
	Paid        bool
	AmountCents int64
	Currency    string

	// Subscription state.
	Status            string
	PeriodStart       *time.Time
	PeriodEnd         *time.Time
	CancelAtPeriodEnd bool
	CanceledAt        *time.Time

	// Refunds. RefundID identifies one refund. RefundedTotal is the total
	// refunded on the payment so far when the provider reports it (Stripe);
	// otherwise RefundAmount is this refund alone (Creem).
	RefundID      string
	RefundedTotal int64
	RefundAmount  int64
}
