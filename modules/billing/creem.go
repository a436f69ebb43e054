package billing

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/errs"
)

// CreemAPIURL is Creem's production API; https://test-api.creem.io is its
// test mode.
const CreemAPIURL = "https://api.creem.io"

// CreemConfig configures the Creem provider.
type CreemConfig struct {
	// APIKey is sent as the x-api-key header.
	APIKey string
	// WebhookSecret signs webhook deliveries (the creem-signature header).
	WebhookSecret string
	// APIURL is the API's base URL. Empty means CreemAPIURL.
	APIURL string
	// WebhookClockSkew bounds how far ahead of this server's clock an
	// event's created_at may be. Zero means DefaultWebhookClockSkew.
	WebhookClockSkew time.Duration
	// HTTPClient makes the API calls. Nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
}

// creemProvider is Creem through its REST API.
type creemProvider struct {
	cfg        CreemConfig
	hc         *http.Client
	successURL string
}

func newCreem(cfg CreemConfig, successURL string) *creemProvider {
	if cfg.APIURL == "" {
		cfg.APIURL = CreemAPIURL
	}
	if cfg.WebhookClockSkew <= 0 {
		cfg.WebhookClockSkew = DefaultWebhookClockSkew
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &creemProvider{cfg: cfg, hc: hc, successURL: successURL}
}

func (c *creemProvider) Name() string { return ProviderCreem }

type creemCheckoutRequest struct {
	ProductID  string            `json:"product_id"`
	RequestID  string            `json:"request_id"`
	Units      int               `json:"units"`
	SuccessURL string            `json:"success_url,omitempty"`
	Customer   *creemCustomer    `json:"customer,omitempty"`
	Metadata   map[string]string `json:"metadata"`
}

type creemCustomer struct {
	ID    string `json:"id,omitempty"`
	Email string `json:"email,omitempty"`
}

type creemCheckoutResponse struct {
	ID          string `json:"id"`
	CheckoutURL string `json:"checkout_url"`
}

// Checkout creates a Creem checkout session (POST /v1/checkouts). Our order
// id is its request_id and, with the user id, its metadata, which Creem
// returns in the checkout.completed event and on the subscription.
func (c *creemProvider) Checkout(ctx context.Context, req CheckoutRequest) (CheckoutResult, error) {
	body := creemCheckoutRequest{
		ProductID: req.Product.CreemProductID, RequestID: req.OrderID, Units: 1,
		SuccessURL: c.successURL,
		Metadata:   map[string]string{"order_id": req.OrderID, "user_id": req.UserID, "product_id": req.Product.ID},
	}
	switch {
	case req.CustomerID != "":
		body.Customer = &creemCustomer{ID: req.CustomerID}
	case req.Email != "":
		body.Customer = &creemCustomer{Email: req.Email}
	}
	buf, err := json.Marshal(body)
	if err != nil {
		return CheckoutResult{}, fmt.Errorf("encode creem checkout: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.cfg.APIURL, "/")+"/v1/checkouts", bytes.NewReader(buf))
	if err != nil {
		return CheckoutResult{}, fmt.Errorf("create creem checkout: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("x-api-key", c.cfg.APIKey)
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return CheckoutResult{}, errs.Wrap(err, errs.ErrUnavailable, "The payment provider cannot be reached.")
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return CheckoutResult{}, fmt.Errorf("read creem checkout: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		// The body may echo what we sent; only the status is reported.
		return CheckoutResult{}, fmt.Errorf("create creem checkout: status %d", resp.StatusCode)
	}
	var out creemCheckoutResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return CheckoutResult{}, fmt.Errorf("decode creem checkout: %w", err)
	}
	if out.CheckoutURL == "" || out.ID == "" {
		return CheckoutResult{}, fmt.Errorf("create creem checkout: answer has no id or checkout_url")
	}
	return CheckoutResult{URL: out.CheckoutURL, SessionID: out.ID}, nil
}

// SignCreem returns the creem-signature header value of a webhook body:
// the hex HMAC-SHA256 of the raw body keyed with the webhook secret.
func SignCreem(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// ParseWebhook verifies the creem-signature header over the raw body, in
// constant time, and maps Creem's events to the module's. The signature
// covers the body only, whose created_at is the event's time: an event
// dated more than WebhookClockSkew ahead of this server's clock is
// refused. Its age is not bounded, since Creem retries a delivery for
// days; a replay of an old one is caught by its event id. A signed body
// that is not an event is reported as such, naming the field at fault.
func (c *creemProvider) ParseWebhook(body []byte, header func(string) string) (Event, error) {
	got, err := hex.DecodeString(strings.TrimSpace(header("creem-signature")))
	want, _ := hex.DecodeString(SignCreem(body, c.cfg.WebhookSecret))
	if err != nil || c.cfg.WebhookSecret == "" || !hmac.Equal(got, want) {
		return Event{}, errs.E(errs.ErrInvalidArgument, "The webhook signature is not valid.")
	}
	var ev struct {
		ID        string          `json:"id"`
		EventType string          `json:"eventType"`
		CreatedAt int64           `json:"created_at"`
		Object    json.RawMessage `json:"object"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, errs.Invalid("body", "json", "The webhook body is signed but is not a Creem event in JSON.")
	}
	if ev.ID == "" {
		return Event{}, errs.Invalid("id", "required", "The webhook event has no id.")
	}
	if time.Until(time.UnixMilli(ev.CreatedAt)) > c.cfg.WebhookClockSkew {
		return Event{}, errs.Invalid("created_at", "future", fmt.Sprintf("The event is dated more than %s ahead of this server's clock.", c.cfg.WebhookClockSkew))
	}
	// Creem's created_at is in milliseconds.
	out := Event{Provider: ProviderCreem, ID: ev.ID, Type: ev.EventType, Created: time.UnixMilli(ev.CreatedAt).UTC()}
	switch ev.EventType {
	case "checkout.completed":
		var o creemCheckout
		if err := json.Unmarshal(ev.Object, &o); err != nil {
			return out, malformedObject("object", "Creem checkout")
		}
		out.Kind = EventCheckoutCompleted
		out.OrderID = o.Metadata["order_id"]
		if out.OrderID == "" {
			out.OrderID = o.RequestID
		}
		out.UserID = o.Metadata["user_id"]
		out.SessionID = o.ID
		out.CustomerID = o.Customer.ID
		out.PaymentID = o.Order.ID
		out.SubscriptionID = o.Subscription.ID
		out.Paid = o.Order.Status == "paid"
		out.AmountCents, out.Currency = o.Order.Amount, strings.ToLower(o.Order.Currency)
		out.PriceID = o.Product.ID
	case "subscription.paid", "subscription.active", "subscription.update", "subscription.canceled",
		"subscription.expired", "subscription.trialing", "subscription.paused", "subscription.past_due":
		var o creemSubscription
		if err := json.Unmarshal(ev.Object, &o); err != nil {
			return out, malformedObject("object", "Creem subscription")
		}
		out.Kind = EventSubscription
		if ev.EventType == "subscription.paid" {
			out.Kind = EventPeriodPaid
			out.InvoiceID = o.LastTransactionID
			if out.InvoiceID == "" {
				out.InvoiceID = ev.ID
			}
			out.Paid = true
		}
		out.SubscriptionID, out.CustomerID, out.Status = o.ID, o.Customer.ID, o.Status
		out.UserID, out.OrderID = o.Metadata["user_id"], o.Metadata["order_id"]
		out.PriceID = o.Product.ID
		out.PeriodStart, out.PeriodEnd = parseTime(o.CurrentPeriodStart), parseTime(o.CurrentPeriodEnd)
		out.CanceledAt = parseTime(o.CanceledAt)
	case "refund.created":
		var o creemRefund
		if err := json.Unmarshal(ev.Object, &o); err != nil {
			return out, malformedObject("object", "Creem refund")
		}
		out.Kind = EventRefund
		out.RefundID = o.ID
		out.RefundAmount = o.RefundAmount
		out.PaymentID = o.Order.ID
		out.InvoiceID = o.Transaction.ID
		out.AmountCents = o.Transaction.Amount
		if out.AmountCents == 0 {
			out.AmountCents = o.Order.Amount
		}
		out.Currency = strings.ToLower(o.RefundCurrency)
	}
	return out, nil
}

func parseTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	t = t.UTC()
	return &t
}

// creemObjectRef is a Creem reference: an id string or an expanded object.
type creemObjectRef struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Amount int64  `json:"amount"`
	// Currency is set on orders.
	Currency string `json:"currency"`
}

func (r *creemObjectRef) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &r.ID)
	}
	type plain creemObjectRef
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = creemObjectRef(p)
	return nil
}

// The Creem objects below hold only the fields the module reads.

type creemCheckout struct {
	ID           string            `json:"id"`
	RequestID    string            `json:"request_id"`
	Order        creemObjectRef    `json:"order"`
	Product      creemObjectRef    `json:"product"`
	Customer     creemObjectRef    `json:"customer"`
	Subscription creemObjectRef    `json:"subscription"`
	Metadata     map[string]string `json:"metadata"`
}

type creemSubscription struct {
	ID                 string            `json:"id"`
	Product            creemObjectRef    `json:"product"`
	Customer           creemObjectRef    `json:"customer"`
	Status             string            `json:"status"`
	LastTransactionID  string            `json:"last_transaction_id"`
	CurrentPeriodStart string            `json:"current_period_start_date"`
	CurrentPeriodEnd   string            `json:"current_period_end_date"`
	CanceledAt         string            `json:"canceled_at"`
	Metadata           map[string]string `json:"metadata"`
}

type creemRefund struct {
	ID             string         `json:"id"`
	RefundAmount   int64          `json:"refund_amount"`
	RefundCurrency string         `json:"refund_currency"`
	Order          creemObjectRef `json:"order"`
	Transaction    creemObjectRef `json:"transaction"`
}
