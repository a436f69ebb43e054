package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/stewardhq/steward/internal/errs"
)

// DefaultWebhookTolerance is how old a signed webhook delivery may be.
const DefaultWebhookTolerance = 300 * time.Second

// DefaultWebhookClockSkew is how far in the future a delivery's signature
// timestamp may be: the clocks of the provider and of this server differ
// by seconds when both keep time, and a delivery stamped later than that
// was signed for a replay in the future.
const DefaultWebhookClockSkew = time.Minute

// StripeConfig configures the Stripe provider.
type StripeConfig struct {
	// SecretKey is the API key (sk_live_..., sk_test_...).
	SecretKey string
	// WebhookSecret is the signing secret of the webhook endpoint (whsec_...).
	WebhookSecret string
	// APIURL overrides the API's base URL; tests point it at stripe-mock.
	// Empty means Stripe's.
	APIURL string
	// WebhookTolerance bounds the age of a delivery's signature timestamp,
	// against replays of captured deliveries. Zero means
	// DefaultWebhookTolerance.
	WebhookTolerance time.Duration
	// WebhookClockSkew bounds how far ahead of this server's clock a
	// delivery's signature timestamp may be. Zero means
	// DefaultWebhookClockSkew.
	WebhookClockSkew time.Duration
	// HTTPClient makes the API calls. Nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
}

// stripeProvider is Stripe through stripe-go.
type stripeProvider struct {
	api *client.API
	cfg StripeConfig
	// urls of the checkout and portal pages.
	successURL, cancelURL, portalReturnURL string
}

func newStripe(cfg StripeConfig, successURL, cancelURL, portalReturnURL string) *stripeProvider {
	if cfg.WebhookTolerance <= 0 {
		cfg.WebhookTolerance = DefaultWebhookTolerance
	}
	if cfg.WebhookClockSkew <= 0 {
		cfg.WebhookClockSkew = DefaultWebhookClockSkew
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	bc := &stripe.BackendConfig{
		HTTPClient: hc,
		// stripe-go's default logger prints request errors to stderr; the
		// module reports errors itself.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if cfg.APIURL != "" {
		bc.URL = stripe.String(cfg.APIURL)
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, bc),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, bc),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, bc),
	}
	return &stripeProvider{
		api: client.New(cfg.SecretKey, backends), cfg: cfg,
		successURL: successURL, cancelURL: cancelURL, portalReturnURL: portalReturnURL,
	}
}

func (s *stripeProvider) Name() string { return ProviderStripe }

// Checkout creates the user's Stripe customer on their first purchase and a
// Checkout Session for the product. The order and user ids travel in the
// session's client_reference_id and metadata, and in the subscription's or
// payment's metadata, so every later event leads back to them.
func (s *stripeProvider) Checkout(ctx context.Context, req CheckoutRequest) (CheckoutResult, error) {
	var res CheckoutResult
	customerID := req.CustomerID
	if customerID == "" {
		params := &stripe.CustomerParams{Email: stripe.String(req.Email)}
		params.Context = ctx
		params.AddMetadata("user_id", req.UserID)
		cus, err := s.api.Customers.New(params)
		if err != nil {
			return res, fmt.Errorf("create stripe customer: %w", err)
		}
		customerID, res.CustomerID = cus.ID, cus.ID
	}
	meta := map[string]string{"order_id": req.OrderID, "user_id": req.UserID, "product_id": req.Product.ID}
	params := &stripe.CheckoutSessionParams{
		Customer:          stripe.String(customerID),
		ClientReferenceID: stripe.String(req.OrderID),
		SuccessURL:        stripe.String(s.successURL),
		CancelURL:         stripe.String(s.cancelURL),
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			Price: stripe.String(req.Product.StripePriceID), Quantity: stripe.Int64(1),
		}},
	}
	params.Context = ctx
	params.Metadata = meta
	if req.Product.Kind == KindSubscription {
		params.Mode = stripe.String(string(stripe.CheckoutSessionModeSubscription))
		params.SubscriptionData = &stripe.CheckoutSessionSubscriptionDataParams{Metadata: meta}
	} else {
		params.Mode = stripe.String(string(stripe.CheckoutSessionModePayment))
		params.PaymentIntentData = &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: meta}
	}
	sess, err := s.api.CheckoutSessions.New(params)
	if err != nil {
		return res, fmt.Errorf("create stripe checkout session: %w", err)
	}
	res.URL, res.SessionID = sess.URL, sess.ID
	return res, nil
}

// Portal opens a Customer Portal session and returns its id and URL.
func (s *stripeProvider) Portal(ctx context.Context, customerID string) (id, url string, err error) {
	params := &stripe.BillingPortalSessionParams{
		Customer:  stripe.String(customerID),
		ReturnURL: stripe.String(s.portalReturnURL),
	}
	params.Context = ctx
	sess, err := s.api.BillingPortalSessions.New(params)
	if err != nil {
		return "", "", fmt.Errorf("create stripe portal session: %w", err)
	}
	return sess.ID, sess.URL, nil
}

// customerRecord is what Stripe holds about a customer, for access exports.
type customerRecord struct {
	ID       string            `json:"id"`
	Email    string            `json:"email"`
	Name     string            `json:"name"`
	Phone    string            `json:"phone"`
	Created  time.Time         `json:"created"`
	Metadata map[string]string `json:"metadata"`
}

func (s *stripeProvider) customer(ctx context.Context, id string) (customerRecord, error) {
	params := &stripe.CustomerParams{}
	params.Context = ctx
	c, err := s.api.Customers.Get(id, params)
	if err != nil {
		return customerRecord{}, fmt.Errorf("read stripe customer: %w", err)
	}
	return customerRecord{ID: c.ID, Email: c.Email, Name: c.Name, Phone: c.Phone,
		Created: time.Unix(c.Created, 0).UTC(), Metadata: c.Metadata}, nil
}

// deleteCustomer deletes a Stripe customer. A customer already gone counts
// as deleted, so an erasure can be retried.
func (s *stripeProvider) deleteCustomer(ctx context.Context, id string) error {
	params := &stripe.CustomerParams{}
	params.Context = ctx
	_, err := s.api.Customers.Del(id, params)
	var se *stripe.Error
	if errors.As(err, &se) && se.Code == stripe.ErrorCodeResourceMissing {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete stripe customer: %w", err)
	}
	return nil
}

// ParseWebhook verifies the Stripe-Signature header over the raw body with
// the endpoint's secret and the configured tolerance.
//
// The API version check of stripe-go is turned off: it compares the
// event's API version (set by the webhook endpoint's configuration in the
// Stripe dashboard) with the one this library release was built for, and
// would refuse every event after either is upgraded. The module never
// decodes events into stripe-go's full types; it reads the few fields it
// uses (ids, metadata, amounts, status, periods), which are stable across
// API versions, so a version difference cannot mis-decode them.
//
// The signature and its age are checked first, then that its timestamp is
// not ahead of this server's clock by more than WebhookClockSkew (stripe-go
// bounds the age only, so a delivery stamped for a later replay would pass
// it), and only then is the body read: a signed body that is not an event
// is reported as such, naming the body, not as a bad signature.
func (s *stripeProvider) ParseWebhook(body []byte, header func(string) string) (Event, error) {
	sig := header("Stripe-Signature")
	if err := webhook.ValidatePayloadWithTolerance(body, sig, s.cfg.WebhookSecret, s.cfg.WebhookTolerance); err != nil {
		return Event{}, errs.Wrap(err, errs.ErrInvalidArgument, "The webhook signature is not valid.")
	}
	if at, ok := stripeSignedAt(sig); !ok || time.Until(at) > s.cfg.WebhookClockSkew {
		return Event{}, errs.Ef(errs.ErrInvalidArgument, "The webhook signature is dated more than %s ahead of this server's clock.", s.cfg.WebhookClockSkew)
	}
	var ev stripe.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, errs.Invalid("body", "json", "The webhook body is signed but is not a Stripe event in JSON.")
	}
	if ev.ID == "" {
		return Event{}, errs.Invalid("id", "required", "The webhook event has no id.")
	}
	out := Event{Provider: ProviderStripe, ID: ev.ID, Type: string(ev.Type), Created: time.Unix(ev.Created, 0).UTC()}
	if ev.Data == nil {
		return out, nil
	}
	raw := ev.Data.Raw
	switch ev.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
		var o stripeSession
		if err := json.Unmarshal(raw, &o); err != nil {
			return out, malformedObject("data.object", "checkout session")
		}
		out.Kind = EventCheckoutCompleted
		out.OrderID = o.Metadata["order_id"]
		if out.OrderID == "" {
			out.OrderID = o.ClientReferenceID
		}
		out.UserID = o.Metadata["user_id"]
		out.SessionID, out.CustomerID = o.ID, string(o.Customer)
		out.PaymentID, out.SubscriptionID = string(o.PaymentIntent), string(o.Subscription)
		out.InvoiceID = string(o.Invoice)
		out.Paid = o.PaymentStatus == "paid" || o.PaymentStatus == "no_payment_required"
		out.AmountCents, out.Currency = o.AmountTotal, o.Currency
	case "checkout.session.expired":
		var o stripeSession
		if err := json.Unmarshal(raw, &o); err != nil {
			return out, malformedObject("data.object", "checkout session")
		}
		out.Kind = EventCheckoutExpired
		out.OrderID = o.Metadata["order_id"]
		if out.OrderID == "" {
			out.OrderID = o.ClientReferenceID
		}
		out.SessionID = o.ID
	case "invoice.paid":
		var o stripeInvoice
		if err := json.Unmarshal(raw, &o); err != nil {
			return out, malformedObject("data.object", "invoice")
		}
		out.Kind = EventPeriodPaid
		out.InvoiceID, out.CustomerID, out.SubscriptionID = o.ID, string(o.Customer), string(o.Subscription)
		out.PaymentID = string(o.PaymentIntent)
		out.Paid = o.Paid || o.Status == "paid"
		out.AmountCents, out.Currency = o.AmountPaid, o.Currency
		out.UserID = o.SubscriptionDetails.Metadata["user_id"]
		if len(o.Lines.Data) > 0 {
			line := o.Lines.Data[0]
			out.PriceID = line.Price.ID
			out.PeriodStart, out.PeriodEnd = unixTime(line.Period.Start), unixTime(line.Period.End)
		}
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
		var o stripeSubscription
		if err := json.Unmarshal(raw, &o); err != nil {
			return out, malformedObject("data.object", "subscription")
		}
		out.Kind = EventSubscription
		out.SubscriptionID, out.CustomerID, out.Status = o.ID, string(o.Customer), o.Status
		out.UserID, out.OrderID = o.Metadata["user_id"], o.Metadata["order_id"]
		out.PeriodStart, out.PeriodEnd = unixTime(o.CurrentPeriodStart), unixTime(o.CurrentPeriodEnd)
		out.CancelAtPeriodEnd, out.CanceledAt = o.CancelAtPeriodEnd, unixTime(o.CanceledAt)
		if ev.Type == "customer.subscription.deleted" && out.Status == "" {
			out.Status = "canceled"
		}
		if len(o.Items.Data) > 0 {
			out.PriceID = o.Items.Data[0].Price.ID
		}
	case "charge.refunded":
		var o stripeCharge
		if err := json.Unmarshal(raw, &o); err != nil {
			return out, malformedObject("data.object", "charge")
		}
		out.Kind = EventRefund
		out.PaymentID, out.InvoiceID, out.CustomerID = string(o.PaymentIntent), string(o.Invoice), string(o.Customer)
		out.AmountCents, out.Currency = o.Amount, o.Currency
		out.RefundedTotal = o.AmountRefunded
		// A charge's refunds add up: the total refunded so far names this
		// state of the charge, so each further refund is a new key.
		out.RefundID = o.ID + ":" + strconv.FormatInt(o.AmountRefunded, 10)
	}
	return out, nil
}

// stripeSignedAt reads the timestamp ("t=") of a Stripe-Signature header.
// Like stripe-go, the last one counts when the header repeats it.
func stripeSignedAt(header string) (at time.Time, ok bool) {
	for _, part := range strings.Split(header, ",") {
		if v, found := strings.CutPrefix(part, "t="); found {
			sec, err := strconv.ParseInt(v, 10, 64)
			at, ok = time.Unix(sec, 0), err == nil
		}
	}
	return at, ok
}

// malformedObject reports a signed event whose object does not have the
// shape its type promises. It names the field, and is a 400: sent again,
// the same delivery would fail the same way.
func malformedObject(field, what string) error {
	return errs.Invalid(field, "format", "The event's object is not a "+what+" as its type says.")
}

func unixTime(sec int64) *time.Time {
	if sec == 0 {
		return nil
	}
	t := time.Unix(sec, 0).UTC()
	return &t
}

// stripeRef is a Stripe reference field: an id string, or the object
// itself when expanded.
type stripeRef string

func (r *stripeRef) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*r = stripeRef(o.ID)
		return nil
	}
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s != nil {
		*r = stripeRef(*s)
	}
	return nil
}

// The Stripe objects below hold only the fields the module reads.

type stripeSession struct {
	ID                string            `json:"id"`
	ClientReferenceID string            `json:"client_reference_id"`
	Customer          stripeRef         `json:"customer"`
	PaymentIntent     stripeRef         `json:"payment_intent"`
	Subscription      stripeRef         `json:"subscription"`
	Invoice           stripeRef         `json:"invoice"`
	PaymentStatus     string            `json:"payment_status"`
	AmountTotal       int64             `json:"amount_total"`
	Currency          string            `json:"currency"`
	Metadata          map[string]string `json:"metadata"`
}

type stripeInvoice struct {
	ID                  string    `json:"id"`
	Customer            stripeRef `json:"customer"`
	Subscription        stripeRef `json:"subscription"`
	PaymentIntent       stripeRef `json:"payment_intent"`
	Paid                bool      `json:"paid"`
	Status              string    `json:"status"`
	AmountPaid          int64     `json:"amount_paid"`
	Currency            string    `json:"currency"`
	SubscriptionDetails struct {
		Metadata map[string]string `json:"metadata"`
	} `json:"subscription_details"`
	Lines struct {
		Data []struct {
			Price struct {
				ID string `json:"id"`
			} `json:"price"`
			Period struct {
				Start int64 `json:"start"`
				End   int64 `json:"end"`
			} `json:"period"`
		} `json:"data"`
	} `json:"lines"`
}

type stripeSubscription struct {
	ID                 string            `json:"id"`
	Customer           stripeRef         `json:"customer"`
	Status             string            `json:"status"`
	CurrentPeriodStart int64             `json:"current_period_start"`
	CurrentPeriodEnd   int64             `json:"current_period_end"`
	CancelAtPeriodEnd  bool              `json:"cancel_at_period_end"`
	CanceledAt         int64             `json:"canceled_at"`
	Metadata           map[string]string `json:"metadata"`
	Items              struct {
		Data []struct {
			Price struct {
				ID string `json:"id"`
			} `json:"price"`
		} `json:"data"`
	} `json:"items"`
}

type stripeCharge struct {
	ID             string    `json:"id"`
	Amount         int64     `json:"amount"`
	AmountRefunded int64     `json:"amount_refunded"`
	Currency       string    `json:"currency"`
	PaymentIntent  stripeRef `json:"payment_intent"`
	Invoice        stripeRef `json:"invoice"`
	Customer       stripeRef `json:"customer"`
}
