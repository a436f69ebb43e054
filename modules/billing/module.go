// Package billing provides the billing module: a catalog of credit packs
// and subscriptions, checkouts and webhooks of two payment providers
// (Stripe through stripe-go, and Creem), the orders, paid periods and
// subscriptions they produce, and the credits ledger that generations spend.
//
// Routes:
//
//	GET  /v1/billing/products          the catalog (public)
//	POST /v1/billing/checkout          open a checkout: {"product_id", "provider"}
//	POST /v1/billing/portal            open the Stripe Customer Portal
//	GET  /v1/billing/orders            the caller's orders; staff add ?user_id=
//	POST /v1/billing/webhooks/stripe   Stripe events (Stripe-Signature)
//	POST /v1/billing/webhooks/creem    Creem events (creem-signature)
//
// Webhook events are applied once each (their ids are stored), in any
// order: subscription state carries the provider's event time and an older
// event never overwrites a newer state. Credits are granted on a paid
// one-time checkout and on every paid subscription period; a refund claws
// back the refunded share of them without taking the balance below zero.
//
// No card number or payment credential is ever stored. Kept are the
// providers' object ids (customer, checkout session, payment intent or
// order, invoice, subscription, charge in ledger references), amounts,
// currencies, statuses and periods.
package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
)

// Product kinds.
const (
	KindOneTime      = "one_time"
	KindSubscription = "subscription"
)

// Product is a catalog entry: a credit pack (one_time) or a subscription
// granting Credits every Interval. Its JSON form is the configuration's.
type Product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	PriceCents int64  `json:"price_cents"`
	// Currency is an ISO 4217 code in lower case ("eur").
	Currency string `json:"currency"`
	Credits  int64  `json:"credits"`
	// Interval is month or year for subscriptions, "" otherwise.
	Interval string `json:"interval,omitempty"`
	// StripePriceID is the Stripe price (price_...) sold.
	StripePriceID string `json:"stripe_price_id,omitempty"`
	// CreemProductID is the Creem product (prod_...) sold.
	CreemProductID string `json:"creem_product_id,omitempty"`
}

// ProductView is a catalog entry as GET /v1/billing/products shows it,
// without the providers' ids.
type ProductView struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	PriceCents int64    `json:"price_cents"`
	Currency   string   `json:"currency"`
	Credits    int64    `json:"credits"`
	Interval   string   `json:"interval,omitempty"`
	Providers  []string `json:"providers"`
}

// Config configures the billing module.
type Config struct {
	Products []Product
	// DefaultProvider serves checkouts that name none: "stripe" (the
	// default) or "creem".
	DefaultProvider string
	// SuccessURL and CancelURL are where the hosted checkout sends the
	// user back; PortalReturnURL is where the Customer Portal does.
	SuccessURL      string
	CancelURL       string
	PortalReturnURL string
	// Stripe is used when its SecretKey is set; Creem when its APIKey is.
	Stripe StripeConfig
	Creem  CreemConfig
}

// Validate checks the catalog and the provider settings.
func (c Config) Validate() error {
	var problems []string
	seen := map[string]bool{}
	for i, p := range c.Products {
		switch {
		case p.ID == "" || seen[p.ID]:
			problems = append(problems, fmt.Sprintf("product %d: id is empty or repeated", i))
		case p.Kind != KindOneTime && p.Kind != KindSubscription:
			problems = append(problems, fmt.Sprintf("product %s: kind must be one_time or subscription", p.ID))
		case p.Kind == KindSubscription && p.Interval != "month" && p.Interval != "year":
			problems = append(problems, fmt.Sprintf("product %s: interval must be month or year", p.ID))
		case p.Credits <= 0 || p.PriceCents < 0 || p.Currency == "":
			problems = append(problems, fmt.Sprintf("product %s: needs positive credits, a price and a currency", p.ID))
		}
		seen[p.ID] = true
	}
	if c.Stripe.SecretKey != "" && c.Stripe.WebhookSecret == "" {
		problems = append(problems, "stripe: webhook secret is required with a secret key")
	}
	if c.Creem.APIKey != "" && c.Creem.WebhookSecret == "" {
		problems = append(problems, "creem: webhook secret is required with an API key")
	}
	if len(problems) > 0 {
		return errors.New("billing config: " + strings.Join(problems, "; "))
	}
	return nil
}

// Deps are what the module needs from the rest of Steward.
type Deps struct {
	DB     *bun.DB
	Guard  *authz.Guard
	Logger *slog.Logger
}

// Module is the billing module.
type Module struct {
	cfg       Config
	store     store
	guard     *authz.Guard
	logger    *slog.Logger
	ledger    *Ledger
	stripe    *stripeProvider
	providers map[string]Provider
	products  map[string]Product
}

// New returns the billing module.
func New(cfg Config, deps Deps) (*Module, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil || deps.Guard == nil {
		return nil, errors.New("billing: DB and Guard are required")
	}
	defaults.Logger(&deps.Logger)
	m := &Module{
		cfg: cfg, store: store{db: deps.DB}, guard: deps.Guard,
		logger: deps.Logger.With("module", "billing"), ledger: NewLedger(deps.DB),
		providers: map[string]Provider{}, products: map[string]Product{},
	}
	for _, p := range cfg.Products {
		m.products[p.ID] = p
	}
	if cfg.Stripe.SecretKey != "" {
		m.stripe = newStripe(cfg.Stripe, cfg.SuccessURL, cfg.CancelURL, cfg.PortalReturnURL)
		m.providers[ProviderStripe] = m.stripe
	}
	if cfg.Creem.APIKey != "" {
		m.providers[ProviderCreem] = newCreem(cfg.Creem, cfg.SuccessURL)
	}
	defaults.String(&m.cfg.DefaultProvider, ProviderStripe)
	return m, nil
}

// Name returns "billing".
func (m *Module) Name() string { return "billing" }

// Models returns the module's bun models for the data map.
func (m *Module) Models() []any { return models() }

// Ledger returns the credits ledger, which the generation module spends
// from.
func (m *Module) Ledger() *Ledger { return m.ledger }

// AccountSummary returns the user's credits and the status of their latest
// subscription ("none" when they never subscribed), for GET /v1/me.
func (m *Module) AccountSummary(ctx context.Context, userID string) (credits int64, subscriptionStatus string, err error) {
	credits, err = m.ledger.Balance(ctx, userID)
	if err != nil {
		return 0, "", err
	}
	subscriptionStatus, err = m.store.latestSubscriptionStatus(ctx, userID)
	if err != nil {
		return 0, "", err
	}
	return credits, subscriptionStatus, nil
}

// Refund is the refunded amount to date of one order.
type Refund struct {
	OrderID       string
	RefundedCents int64
	Currency      string
}

// Refunds returns the orders placed in [from, to) that were refunded, in
// part or in whole, for attribution to net from revenue.
func (m *Module) Refunds(ctx context.Context, from, to time.Time) ([]Refund, error) {
	orders, err := m.store.refundedOrders(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]Refund, len(orders))
	for i, o := range orders {
		out[i] = Refund{OrderID: o.ID, RefundedCents: o.RefundedCents, Currency: o.Currency}
	}
	return out, nil
}

// ExportSubject writes the customer records the payment providers hold
// about the subject, read from Stripe's API.
func (m *Module) ExportSubject(ctx context.Context, subject module.SubjectRef, w module.ExportWriter) error {
	if m.stripe == nil || subject.UserID == "" {
		return nil
	}
	ids, err := m.store.customerIDs(ctx, subject.UserID, ProviderStripe)
	if err != nil {
		return err
	}
	for _, id := range ids {
		rec, err := m.stripe.customer(ctx, id)
		if err != nil {
			return fmt.Errorf("export billing: %w", err)
		}
		if err := w.Record(ctx, "user.financial.customer_id", rec); err != nil {
			return fmt.Errorf("export billing: %w", err)
		}
	}
	return nil
}

// EraseSubject deletes the subject's customer records at Stripe. The SQL
// rows (orders, invoices, ledger) are erased or kept by the governance
// package as the policy decides. A customer already deleted counts as
// deleted, so the erasure can be retried.
func (m *Module) EraseSubject(ctx context.Context, subject module.SubjectRef) (module.ErasureResult, error) {
	var res module.ErasureResult
	if m.stripe == nil || subject.UserID == "" {
		return res, nil
	}
	ids, err := m.store.customerIDs(ctx, subject.UserID, ProviderStripe)
	if err != nil {
		return res, err
	}
	for _, id := range ids {
		if err := m.stripe.deleteCustomer(ctx, id); err != nil {
			return res, fmt.Errorf("erase billing: %w", err)
		}
		res.Deleted++
	}
	return res, nil
}

// Mount adds the billing routes.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	m.mount(r, doc)
}

var (
	_ module.Module      = (*Module)(nil)
	_ module.SubjectData = (*Module)(nil)
)
