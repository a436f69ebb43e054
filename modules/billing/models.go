package billing

import (
	"time"

	"github.com/uptrace/bun"
)

// Customer links a user to their customer record at a payment provider.
type Customer struct {
	bun.BaseModel `bun:"table:billing_customers"`

	UserID     string    `bun:"user_id,pk" privacy:"user.unique_id,subject=user"`
	Provider   string    `bun:"provider,pk" privacy:"system.operations" seed:"stripe"`
	CustomerID string    `bun:"customer_id,notnull" privacy:"user.financial.customer_id"`
	CreatedAt  time.Time `bun:"created_at,notnull" privacy:"system.operations,collected"`
}

// Order is one checkout: a credit pack or the start of a subscription.
type Order struct {
	bun.BaseModel `bun:"table:billing_orders" seed:"typical=2,heavy=20"`

	ID          string `bun:"id,pk" json:"id" privacy:"user.financial.order"`
	UserID      string `bun:"user_id,notnull" json:"user_id" privacy:"user.unique_id,subject=user"`
	Provider    string `bun:"provider,notnull" json:"provider" privacy:"system.operations" seed:"stripe"`
	ProductID   string `bun:"product_id,notnull" json:"product_id" privacy:"user.financial.product"`
	Kind        string `bun:"kind,notnull" json:"kind" privacy:"user.financial.product" seed:"credits|subscription"`
	AmountCents int64  `bun:"amount_cents,notnull" json:"amount_cents" privacy:"user.financial.price"`
	Currency    string `bun:"currency,notnull" json:"currency" privacy:"user.financial.currency" seed:"eur"`
	Credits     int64  `bun:"credits,notnull" json:"credits" privacy:"user.financial.product"`
	// Status is the payment status: pending, paid, failed or expired.
	Status string `bun:"status,notnull" json:"status" privacy:"user.financial.payment_status" seed:"paid|pending"`
	// CheckoutSessionID is the provider's checkout session id.
	CheckoutSessionID string `bun:"checkout_session_id,notnull" json:"checkout_session_id" privacy:"user.financial.checkout_session"`
	// PaymentID is the provider's id of the payment (a Stripe payment
	// intent, a Creem order), by which refunds find the order.
	PaymentID      string `bun:"payment_id,notnull" json:"payment_id" privacy:"user.financial.order"`
	SubscriptionID string `bun:"subscription_id,notnull" json:"subscription_id" privacy:"user.financial.order"`
	RefundedCents  int64  `bun:"refunded_cents,notnull" json:"refunded_cents" privacy:"user.financial.refund_status"`
	// RefundStatus is none, partially_refunded or refunded.
	RefundStatus string    `bun:"refund_status,notnull" json:"refund_status" privacy:"user.financial.refund_status" seed:"none"`
	CreatedAt    time.Time `bun:"created_at,notnull" json:"created_at" privacy:"user.financial.order,collected"`
	UpdatedAt    time.Time `bun:"updated_at,notnull" json:"updated_at" privacy:"system.operations"`
}

// OwnerID returns the user the order belongs to.
func (o Order) OwnerID() string { return o.UserID }

// Invoice is one paid subscription period: a Stripe invoice or a Creem
// subscription transaction. Each grants the product's credits once.
type Invoice struct {
	bun.BaseModel `bun:"table:billing_invoices"`

	ID             string     `bun:"id,pk" privacy:"system.operations"`
	UserID         string     `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	Provider       string     `bun:"provider,notnull" privacy:"system.operations" seed:"stripe"`
	InvoiceID      string     `bun:"invoice_id,notnull" privacy:"user.financial.invoice_id"`
	SubscriptionID string     `bun:"subscription_id,notnull" privacy:"user.financial.order"`
	ProductID      string     `bun:"product_id,notnull" privacy:"user.financial.product"`
	AmountCents    int64      `bun:"amount_cents,notnull" privacy:"user.financial.price"`
	Currency       string     `bun:"currency,notnull" privacy:"user.financial.currency" seed:"eur"`
	Credits        int64      `bun:"credits,notnull" privacy:"user.financial.product"`
	Status         string     `bun:"status,notnull" privacy:"user.financial.payment_status" seed:"paid"`
	PaymentID      string     `bun:"payment_id,notnull" privacy:"user.financial.order"`
	PeriodStart    *time.Time `bun:"period_start" privacy:"user.financial.subscription_period"`
	PeriodEnd      *time.Time `bun:"period_end" privacy:"user.financial.subscription_period"`
	RefundedCents  int64      `bun:"refunded_cents,notnull" privacy:"user.financial.refund_status"`
	RefundStatus   string     `bun:"refund_status,notnull" privacy:"user.financial.refund_status"`
	CreatedAt      time.Time  `bun:"created_at,notnull" privacy:"user.financial.order,collected"`
}

// Subscription is the latest known state of one subscription.
type Subscription struct {
	bun.BaseModel `bun:"table:billing_subscriptions"`

	// ID is the provider's name and its subscription id, so two providers'
	// ids never clash.
	ID                 string     `bun:"id,pk" privacy:"system.operations"`
	UserID             string     `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	Provider           string     `bun:"provider,notnull" privacy:"system.operations" seed:"stripe"`
	SubscriptionID     string     `bun:"subscription_id,notnull" privacy:"user.financial.order"`
	ProductID          string     `bun:"product_id,notnull" privacy:"user.financial.product" seed:"pro-monthly"`
	Status             string     `bun:"status,notnull" privacy:"user.financial.subscription_status" seed:"active|canceled"`
	CurrentPeriodStart *time.Time `bun:"current_period_start" privacy:"user.financial.subscription_period"`
	CurrentPeriodEnd   *time.Time `bun:"current_period_end" privacy:"user.financial.subscription_period"`
	CancelAtPeriodEnd  bool       `bun:"cancel_at_period_end,notnull" privacy:"user.financial.refund_status"`
	CanceledAt         *time.Time `bun:"canceled_at" privacy:"user.financial.refund_status"`
	// EventCreated is the provider's time (Unix seconds) of the event that
	// set this state; older events do not overwrite it.
	EventCreated int64     `bun:"event_created,notnull" privacy:"system.operations"`
	UpdatedAt    time.Time `bun:"updated_at,notnull" privacy:"system.operations,collected"`
}

// ProcessedEvent records a provider webhook event already handled.
type ProcessedEvent struct {
	bun.BaseModel `bun:"table:billing_events"`

	Provider    string    `bun:"provider,pk" privacy:"system.operations"`
	EventID     string    `bun:"event_id,pk" privacy:"system.operations"`
	EventType   string    `bun:"event_type,notnull" privacy:"system.operations"`
	ProcessedAt time.Time `bun:"processed_at,notnull" privacy:"system.operations,collected"`
}

// Balance is a user's spendable credits.
type Balance struct {
	bun.BaseModel `bun:"table:credit_balances"`

	UserID    string    `bun:"user_id,pk" privacy:"user.unique_id,subject=user"`
	Balance   int64     `bun:"balance,notnull" privacy:"user.financial.credit_balance" seed:"100"`
	UpdatedAt time.Time `bun:"updated_at,notnull" privacy:"system.operations,collected"`
}

// Entry is one append-only line of the credits ledger.
type Entry struct {
	bun.BaseModel `bun:"table:credit_ledger" seed:"typical=4,heavy=100"`

	ID     string `bun:"id,pk" privacy:"system.operations"`
	UserID string `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	// Kind is one of the Entry kinds (grant, reserve, commit, ...).
	Kind string `bun:"kind,notnull" privacy:"user.financial.credit_balance" seed:"grant|spend"`
	// Amount is the signed change of the spendable balance.
	Amount int64 `bun:"amount,notnull" privacy:"user.financial.credit_balance"`
	// Shortfall is the part of a clawback the balance could not cover,
	// because the credits were already spent.
	Shortfall     int64     `bun:"shortfall,notnull" privacy:"user.financial.credit_balance"`
	Reason        string    `bun:"reason,notnull" privacy:"user.financial.credit_balance"`
	Ref           string    `bun:"ref,notnull" privacy:"user.financial.order"`
	ReservationID string    `bun:"reservation_id,notnull" privacy:"system.operations"`
	IdemKey       string    `bun:"idem_key,notnull" privacy:"system.operations"`
	CreatedAt     time.Time `bun:"created_at,notnull" privacy:"user.financial.credit_balance,collected"`
}

// Reservation is credits set aside for work in progress.
type Reservation struct {
	bun.BaseModel `bun:"table:credit_reservations"`

	ID     string `bun:"id,pk" privacy:"system.operations"`
	UserID string `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	Amount int64  `bun:"amount,notnull" privacy:"user.financial.credit_balance"`
	// Ref is the caller's reference of the work, such as a generation id.
	Ref       string    `bun:"ref,notnull" privacy:"system.operations"`
	Status    string    `bun:"status,notnull" privacy:"user.financial.credit_balance" seed:"settled"`
	CreatedAt time.Time `bun:"created_at,notnull" privacy:"system.operations,collected"`
	UpdatedAt time.Time `bun:"updated_at,notnull" privacy:"system.operations"`
}

func models() []any {
	return []any{
		(*Customer)(nil), (*Order)(nil), (*Invoice)(nil), (*Subscription)(nil),
		(*ProcessedEvent)(nil), (*Balance)(nil), (*Entry)(nil), (*Reservation)(nil),
	}
}
