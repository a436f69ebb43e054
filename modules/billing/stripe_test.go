package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/billing"
)

// sessionCompleted is a checkout.session.completed event for an order. Its
// payment details carry card-like data, which must never be stored.
func sessionCompleted(evID string, created time.Time, orderID, user, mode, paymentIntent, subscription string) []byte {
	obj := map[string]any{
		"id": "cs_test_" + orderID, "object": "checkout.session", "mode": mode,
		"client_reference_id": orderID, "customer": "cus_" + user,
		"payment_status": "paid", "status": "complete", "amount_total": 1000, "currency": "eur",
		"metadata":         map[string]string{"order_id": orderID, "user_id": user},
		"customer_details": map[string]any{"email": user + "@example.com", "name": "Ann Example"},
		"payment_method_details": map[string]any{
			"card": map[string]any{"number": "4242424242424242", "fingerprint": "fp_x"},
			"id":   "pm_1SecretCardMethod",
		},
	}
	if paymentIntent != "" {
		obj["payment_intent"] = paymentIntent
	}
	if subscription != "" {
		obj["subscription"] = subscription
		obj["invoice"] = "in_first_" + subscription
	}
	return stripeEvent(evID, "checkout.session.completed", created, obj)
}

// TestStripeCheckoutCarriesTheBuyersEmail checks that the address of the
// request's principal reaches Stripe with the customer created at the
// first checkout, and that a second checkout reuses that customer.
func TestStripeCheckoutCarriesTheBuyersEmail(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		var mu sync.Mutex
		var customers []url.Values
		mock, err := url.Parse(stripeMockURL(t))
		if err != nil {
			t.Fatal(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(mock)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == "/v1/customers" {
				body, _ := io.ReadAll(r.Body)
				form, _ := url.ParseQuery(string(body))
				mu.Lock()
				customers = append(customers, form)
				mu.Unlock()
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			proxy.ServeHTTP(w, r)
		}))
		defer srv.Close()
		e := newEnvAt(t, db, srv.URL, "")

		e.checkout("u9", "pack_100", "")
		e.checkout("u9", "pack_100", "")
		mu.Lock()
		defer mu.Unlock()
		if len(customers) != 1 {
			t.Fatalf("Stripe got %d customers, want 1 for two checkouts", len(customers))
		}
		if got := customers[0].Get("email"); got != "u9@example.com" {
			t.Fatalf("Stripe customer email = %q, want the buyer's", got)
		}
	})
}

func TestStripeOneTimePurchase(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "")
		res := e.checkout("u1", "pack_100", "")
		if res.URL == "" || res.OrderID == "" {
			t.Fatalf("checkout answered %+v", res)
		}
		if o := e.order("u1", res.OrderID); o["status"] != "pending" {
			t.Fatalf("order before payment = %v", o)
		}
		now := time.Now()
		paid := sessionCompleted("evt_paid_1", now, res.OrderID, "u1", "payment", "pi_1", "")

		// A delivery signed with another secret is refused and grants nothing.
		if status, _ := e.sendStripe(paid, "whsec_wrong"); status != http.StatusBadRequest {
			t.Fatalf("mis-signed webhook = %d, want 400", status)
		}
		e.wantBalance("u1", 0)

		e.mustSendStripe(paid)
		e.wantBalance("u1", 100)
		// A replay is acknowledged and grants nothing more.
		e.mustSendStripe(paid)
		e.wantBalance("u1", 100)
		o := e.order("u1", res.OrderID)
		if o["status"] != "paid" || o["payment_id"] != "pi_1" || o["refund_status"] != "none" {
			t.Fatalf("paid order = %v", o)
		}

		// The user spends 60 credits, then the payment is refunded in two
		// halves: the first half claws back 50 but finds only 40 left, so
		// it records a shortfall of 10.
		ctx := context.Background()
		r, err := e.mod.Ledger().Reserve(ctx, "u1", 60, "gen_1")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.mod.Ledger().Commit(ctx, r); err != nil {
			t.Fatal(err)
		}
		charge := func(evID string, refunded int64) []byte {
			return stripeEvent(evID, "charge.refunded", now, map[string]any{
				"id": "ch_1", "object": "charge", "amount": 1000, "amount_refunded": refunded,
				"currency": "eur", "payment_intent": "pi_1", "customer": "cus_u1", "refunded": refunded == 1000,
				"payment_method":         "pm_1SecretCardMethod",
				"payment_method_details": map[string]any{"card": map[string]any{"last4": "4242", "number": "4000056655665556"}},
			})
		}
		e.mustSendStripe(charge("evt_refund_half", 500))
		e.wantBalance("u1", 0)
		if o := e.order("u1", res.OrderID); o["refund_status"] != "partially_refunded" || o["refunded_cents"] != float64(500) {
			t.Fatalf("order after half refund = %v", o)
		}
		// 45 credits come back in between; the second half wants 50 and
		// finds 45, a shortfall of 5.
		if err := e.mod.Ledger().Grant(ctx, "u1", 45, "goodwill", "adj_1"); err != nil {
			t.Fatal(err)
		}
		e.mustSendStripe(charge("evt_refund_full", 1000))
		e.mustSendStripe(charge("evt_refund_full", 1000))
		e.wantBalance("u1", 0)
		if o := e.order("u1", res.OrderID); o["refund_status"] != "refunded" {
			t.Fatalf("order after full refund = %v", o)
		}
		entries, _ := e.mod.Ledger().Entries(ctx, "u1")
		var taken, short int64
		for _, en := range entries {
			if en.Kind == "refund_clawback" {
				taken += -en.Amount
				short += en.Shortfall
			}
		}
		if taken != 85 || short != 15 {
			t.Fatalf("clawed back %d with shortfall %d; want 85 taken and 15 short", taken, short)
		}
		assertNoCardData(t, db)
	})
}

func TestStripeSubscriptionRenewalAndOrdering(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "")
		ctx := context.Background()
		res := e.checkout("u2", "pro_month", "stripe")
		t0 := time.Now().Add(-time.Hour)
		day := 24 * time.Hour

		// Checkout of a subscription grants nothing itself: its credits come
		// with each paid invoice, the first included.
		e.mustSendStripe(sessionCompleted("evt_sub_checkout", t0, res.OrderID, "u2", "subscription", "", "sub_1"))
		e.wantBalance("u2", 0)

		invoice := func(evID, id string, created time.Time, start time.Time) []byte {
			return stripeEvent(evID, "invoice.paid", created, map[string]any{
				"id": id, "object": "invoice", "customer": "cus_u2", "subscription": "sub_1",
				"billing_reason": "subscription_cycle", "paid": true, "status": "paid",
				"amount_paid": 2000, "currency": "eur", "charge": "ch_" + id,
				"lines": map[string]any{"data": []any{map[string]any{
					"price":  map[string]any{"id": "price_pro_month"},
					"period": map[string]any{"start": start.Unix(), "end": start.Add(30 * day).Unix()},
				}}},
			})
		}
		e.mustSendStripe(invoice("evt_inv_1", "in_1", t0.Add(time.Second), t0))
		e.wantBalance("u2", 500)
		e.mustSendStripe(invoice("evt_inv_1", "in_1", t0.Add(time.Second), t0))
		e.wantBalance("u2", 500)
		// Renewal a month later.
		e.mustSendStripe(invoice("evt_inv_2", "in_2", t0.Add(2*time.Second), t0.Add(30*day)))
		e.wantBalance("u2", 1000)

		sub := func(evID, typ string, created time.Time, status string, cancelAtEnd bool) []byte {
			return stripeEvent(evID, typ, created, map[string]any{
				"id": "sub_1", "object": "subscription", "customer": "cus_u2", "status": status,
				"current_period_start": t0.Add(30 * day).Unix(), "current_period_end": t0.Add(60 * day).Unix(),
				"cancel_at_period_end": cancelAtEnd, "canceled_at": nil,
				"metadata": map[string]string{"user_id": "u2", "order_id": res.OrderID},
				"items":    map[string]any{"data": []any{map[string]any{"price": map[string]any{"id": "price_pro_month"}}}},
			})
		}
		// The cancellation (newer) arrives before an older update.
		e.mustSendStripe(sub("evt_sub_cancel", "customer.subscription.updated", t0.Add(20*time.Second), "active", true))
		e.mustSendStripe(sub("evt_sub_deleted", "customer.subscription.deleted", t0.Add(30*time.Second), "canceled", false))
		e.mustSendStripe(sub("evt_sub_old", "customer.subscription.updated", t0.Add(10*time.Second), "past_due", false))
		credits, status, err := e.mod.AccountSummary(ctx, "u2")
		if err != nil || credits != 1000 || status != "canceled" {
			t.Fatalf("AccountSummary = %d, %q, %v; want 1000 and canceled (the late older event must not win)", credits, status, err)
		}

		// Refund of the renewal invoice claws its credits back.
		e.mustSendStripe(stripeEvent("evt_refund_in2", "charge.refunded", t0.Add(time.Minute), map[string]any{
			"id": "ch_in_2", "amount": 2000, "amount_refunded": 2000, "currency": "eur",
			"invoice": "in_2", "customer": "cus_u2",
		}))
		e.wantBalance("u2", 500)
		assertNoCardData(t, db)
	})
}

func TestStripeAbandonedCheckoutExpires(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "")
		abandoned := e.checkout("u6", "pack_100", "")
		paid := e.checkout("u6", "pack_100", "")
		now := time.Now()
		e.mustSendStripe(sessionCompleted("evt_paid_6", now, paid.OrderID, "u6", "payment", "pi_6", ""))
		for i, id := range []string{abandoned.OrderID, paid.OrderID} {
			e.mustSendStripe(stripeEvent(fmt.Sprintf("evt_expired_%d", i), "checkout.session.expired", now, map[string]any{
				"id": "cs_" + id, "client_reference_id": id, "status": "expired", "metadata": map[string]string{"order_id": id},
			}))
		}
		if o := e.order("u6", abandoned.OrderID); o["status"] != "expired" {
			t.Fatalf("abandoned order = %v, want expired", o)
		}
		if o := e.order("u6", paid.OrderID); o["status"] != "paid" {
			t.Fatalf("paid order = %v, must stay paid", o)
		}
		e.wantBalance("u6", 100)
	})
}

// TestStripeInvoiceBeforeCheckoutEvent: Stripe does not order deliveries;
// the first invoice may come before checkout.session.completed. Its
// subscription metadata names the user, and the credits are granted once.
func TestStripeInvoiceBeforeCheckoutEvent(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "")
		res := e.checkout("u7", "pro_month", "")
		now := time.Now()
		e.mustSendStripe(stripeEvent("evt_inv_first", "invoice.paid", now, map[string]any{
			"id": "in_u7", "customer": "cus_unknown_yet", "subscription": "sub_u7", "paid": true,
			"amount_paid": 2000, "currency": "eur",
			"subscription_details": map[string]any{"metadata": map[string]string{"user_id": "u7", "order_id": res.OrderID}},
			"lines": map[string]any{"data": []any{map[string]any{"price": map[string]any{"id": "price_pro_month"},
				"period": map[string]any{"start": now.Unix(), "end": now.Add(720 * time.Hour).Unix()}}}},
		}))
		e.wantBalance("u7", 500)
		e.mustSendStripe(sessionCompleted("evt_checkout_late", now.Add(-time.Second), res.OrderID, "u7", "subscription", "", "sub_u7"))
		e.wantBalance("u7", 500)
		credits, status, err := e.mod.AccountSummary(context.Background(), "u7")
		if err != nil || credits != 500 || status != "active" {
			t.Fatalf("AccountSummary = %d, %q, %v; want 500 and active", credits, status, err)
		}
	})
}

func TestStripePortalAndCustomerData(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "")
		if status, _ := e.do(http.MethodPost, "/v1/billing/portal", "u3:user", nil, nil); status != http.StatusNotFound {
			t.Fatalf("portal before any purchase = %d, want 404", status)
		}
		e.checkout("u3", "pack_100", "stripe")
		status, out := e.do(http.MethodPost, "/v1/billing/portal", "u3:user", nil, nil)
		var portal struct {
			URL string `json:"url"`
		}
		if status != http.StatusOK || json.Unmarshal(out, &portal) != nil || portal.URL == "" {
			t.Fatalf("portal = %d %s", status, out)
		}
		testSubjectData(t, e, "u3")
	})
}

func TestStripeWebhookRefusals(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "")
		res := e.checkout("u4", "pack_100", "")
		payload := sessionCompleted("evt_x", time.Now(), res.OrderID, "u4", "payment", "pi_4", "")
		stale := func() map[string]string {
			return map[string]string{"Stripe-Signature": signedAt(payload, time.Now().Add(-10*time.Minute))}
		}
		tests := []struct {
			name    string
			headers map[string]string
			body    []byte
		}{
			{name: "no signature", body: payload},
			{name: "garbage signature", body: payload, headers: map[string]string{"Stripe-Signature": "t=1,v1=abc"}},
			{name: "signature older than the tolerance", body: payload, headers: stale()},
			{name: "body changed after signing", body: append([]byte(nil), append(payload[:len(payload)-1], []byte(`,"x":1}`)...)...),
				headers: map[string]string{"Stripe-Signature": signedAt(payload, time.Now())}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, out := e.do(http.MethodPost, "/v1/billing/webhooks/stripe", "", tt.body, tt.headers)
				if status != http.StatusBadRequest {
					t.Fatalf("status = %d %s, want 400", status, out)
				}
			})
		}
		e.wantBalance("u4", 0)
	})
}

// TestCardDataScanFindsPlantedValues shows the scan used above can fail.
func TestCardDataScanFindsPlantedValues(t *testing.T) {
	db := sqltest.SQLite(t)
	ctx := context.Background()
	for i, reason := range []string{"card 4242 4242 4242 4242", "method pm_1AbC"} {
		id := fmt.Sprintf("led_%d", i)
		if _, err := db.NewInsert().Model(&billing.Entry{ID: id, UserID: "u", Kind: "adjustment", Reason: reason, IdemKey: id}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if found := cardData(t, db); len(found) != 2 {
		t.Fatalf("scan found %v, want the 2 planted values", found)
	}
}

// TestWebhookTimestampsAndMalformedBodies: a correctly signed Stripe
// delivery stamped an hour ahead is refused (stripe-go bounds only the
// age), one a few seconds ahead is taken; a signed body that is not an
// event is reported as a malformed body naming the field, not as a bad
// signature. Nothing is credited by a refused delivery.
func TestWebhookTimestampsAndMalformedBodies(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "")
		res := e.checkout("u6", "pack_100", "")
		payload := sessionCompleted("evt_future", time.Now(), res.OrderID, "u6", "payment", "pi_6", "")
		garbled := sessionCompleted("evt_garbled", time.Now(), res.OrderID, "u6", "payment", "pi_6", "")
		garbled = bytes.Replace(garbled, []byte(`"amount_total":1000`), []byte(`"amount_total":"lots"`), 1)
		tests := []struct {
			name     string
			body     []byte
			at       time.Time
			field    string // named by the problem; "" for none
			detailed string // part of the problem's detail
		}{
			{name: "signed an hour ahead", body: payload, at: time.Now().Add(time.Hour), detailed: "ahead of this server's clock"},
			{name: "signed two minutes ahead", body: payload, at: time.Now().Add(2 * time.Minute), detailed: "ahead of this server's clock"},
			{name: "signed body that is not JSON", body: []byte(`{"id":"evt_1","type":`), at: time.Now(), field: "body"},
			{name: "signed body that is not an object", body: []byte(`["evt_1"]`), at: time.Now(), field: "body"},
			{name: "signed event without an id", body: []byte(`{"type":"checkout.session.completed"}`), at: time.Now(), field: "id"},
			{name: "signed event whose object has the wrong shape", body: garbled, at: time.Now(), field: "data.object"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, out := e.do(http.MethodPost, "/v1/billing/webhooks/stripe", "", tt.body,
					map[string]string{"Stripe-Signature": signedAt(tt.body, tt.at)})
				if status != http.StatusBadRequest {
					t.Fatalf("status = %d %s, want 400", status, out)
				}
				var p struct {
					Detail string `json:"detail"`
					Errors []struct {
						Field string `json:"field"`
					} `json:"errors"`
				}
				if err := json.Unmarshal(out, &p); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(p.Detail, "signature is not valid") {
					t.Fatalf("reported as a bad signature: %s", out)
				}
				if tt.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.field) {
					t.Fatalf("problem = %s, want the field %s named", out, tt.field)
				}
				if tt.detailed != "" && !strings.Contains(p.Detail, tt.detailed) {
					t.Fatalf("detail = %q, want it to say %q", p.Detail, tt.detailed)
				}
			})
		}
		e.wantBalance("u6", 0)
		// Within the allowance for clock skew the delivery is taken.
		status, out := e.do(http.MethodPost, "/v1/billing/webhooks/stripe", "", payload,
			map[string]string{"Stripe-Signature": signedAt(payload, time.Now().Add(20*time.Second))})
		if status != http.StatusOK {
			t.Fatalf("delivery 20 s ahead = %d %s", status, out)
		}
		e.wantBalance("u6", 100)
	})
}
