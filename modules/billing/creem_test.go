package billing_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/billing"
)

// creemAPI is a Creem API stand-in that follows the documented shapes of
// POST /v1/checkouts and records what it was sent.
type creemAPI struct {
	mu       sync.Mutex
	requests []map[string]any
}

func (c *creemAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/checkouts" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("x-api-key") != creemAPIKey {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	var body map[string]any
	data, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(data, &body); err != nil || body["product_id"] == nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.requests = append(c.requests, body)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": "ch_creem_1", "object": "checkout", "mode": "test", "status": "pending",
		"product": body["product_id"], "request_id": body["request_id"], "units": 1,
		"checkout_url": "https://checkout.creem.io/ch_creem_1", "success_url": body["success_url"],
		"metadata": body["metadata"],
	})
}

func creemEvent(id, typ string, created time.Time, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "eventType": typ, "created_at": created.UnixMilli(), "object": object})
	return b
}

func TestCreemCheckoutAndWebhooks(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		api := &creemAPI{}
		srv := httptest.NewServer(api)
		defer srv.Close()
		e := newEnv(t, db, srv.URL)

		res := e.checkout("u5", "pack_100", "creem")
		if res.URL != "https://checkout.creem.io/ch_creem_1" {
			t.Fatalf("checkout url = %q", res.URL)
		}
		if len(api.requests) != 1 {
			t.Fatalf("Creem got %d checkout requests, want 1", len(api.requests))
		}
		sent := api.requests[0]
		meta, _ := sent["metadata"].(map[string]any)
		if sent["product_id"] != "prod_creem_pack100" || sent["request_id"] != res.OrderID || meta["user_id"] != "u5" {
			t.Fatalf("Creem checkout request = %v", sent)
		}
		// The buyer's address comes from the request's principal.
		if customer, _ := sent["customer"].(map[string]any); customer["email"] != "u5@example.com" {
			t.Fatalf("Creem checkout customer = %v, want the buyer's email", sent["customer"])
		}

		now := time.Now()
		completed := creemEvent("evt_creem_1", "checkout.completed", now, map[string]any{
			"id": "ch_creem_1", "object": "checkout", "request_id": res.OrderID, "status": "completed",
			"order": map[string]any{"id": "ord_creem_1", "customer": "cust_1", "product": "prod_creem_pack100",
				"amount": 1000, "currency": "EUR", "status": "paid", "type": "onetime"},
			"product":  map[string]any{"id": "prod_creem_pack100", "price": 1000, "currency": "EUR"},
			"customer": map[string]any{"id": "cust_1", "email": "u5@example.com"},
			"metadata": map[string]string{"order_id": res.OrderID, "user_id": "u5"},
		})
		tests := []struct {
			name      string
			signature string
			want      int
			balance   int64
		}{
			{name: "no signature", signature: "", want: http.StatusBadRequest},
			{name: "signed with another secret", signature: billing.SignCreem(completed, "other"), want: http.StatusBadRequest},
			{name: "not hex", signature: "zz", want: http.StatusBadRequest},
			{name: "valid", signature: billing.SignCreem(completed, creemSecret), want: http.StatusOK, balance: 100},
			{name: "replay", signature: billing.SignCreem(completed, creemSecret), want: http.StatusOK, balance: 100},
		}
		for _, tt := range tests {
			status, out := e.sendCreem(completed, tt.signature)
			if status != tt.want {
				t.Fatalf("%s: status %d %s, want %d", tt.name, status, out, tt.want)
			}
			e.wantBalance("u5", tt.balance)
		}
		if o := e.order("u5", res.OrderID); o["status"] != "paid" || o["payment_id"] != "ord_creem_1" {
			t.Fatalf("order = %v", o)
		}

		// A subscription bought through Creem: each paid period grants.
		sub := e.checkout("u5", "pro_month", "creem")
		subObj := func(tx string) map[string]any {
			return map[string]any{
				"id": "sub_creem_1", "object": "subscription", "product": map[string]any{"id": "prod_creem_pro"},
				"customer": map[string]any{"id": "cust_1"}, "status": "active", "last_transaction_id": tx,
				"current_period_start_date": now.Format(time.RFC3339), "current_period_end_date": now.Add(720 * time.Hour).Format(time.RFC3339),
				"metadata": map[string]string{"order_id": sub.OrderID, "user_id": "u5"},
			}
		}
		for _, ev := range [][]byte{
			creemEvent("evt_creem_sub_paid_1", "subscription.paid", now, subObj("tran_1")),
			creemEvent("evt_creem_sub_paid_2", "subscription.paid", now.Add(time.Second), subObj("tran_2")),
		} {
			if status, out := e.sendCreem(ev, billing.SignCreem(ev, creemSecret)); status != http.StatusOK {
				t.Fatalf("subscription.paid: %d %s", status, out)
			}
		}
		e.wantBalance("u5", 1100)

		// Refund of the one-time order claws back its 100 credits.
		refund := creemEvent("evt_creem_refund", "refund.created", now.Add(2*time.Second), map[string]any{
			"id": "ref_1", "object": "refund", "status": "succeeded", "refund_amount": 1000, "refund_currency": "EUR",
			"order":       map[string]any{"id": "ord_creem_1", "amount": 1000},
			"transaction": map[string]any{"id": "tran_order_1", "amount": 1000},
		})
		if status, out := e.sendCreem(refund, billing.SignCreem(refund, creemSecret)); status != http.StatusOK {
			t.Fatalf("refund.created: %d %s", status, out)
		}
		e.wantBalance("u5", 1000)
		if o := e.order("u5", res.OrderID); o["refund_status"] != "refunded" {
			t.Fatalf("order after refund = %v", o)
		}
		assertNoCardData(t, db)
	})
}

// TestCreemWebhookTimestampsAndMalformedBodies: Creem signs the body,
// whose created_at dates the event; one dated an hour ahead is refused,
// and a signed body that is not an event names the field at fault.
func TestCreemWebhookTimestampsAndMalformedBodies(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		api := &creemAPI{}
		srv := httptest.NewServer(api)
		defer srv.Close()
		e := newEnv(t, db, srv.URL)
		res := e.checkout("u7", "pack_100", "creem")
		object := map[string]any{
			"id": "ch_creem_7", "object": "checkout", "request_id": res.OrderID, "status": "completed",
			"order":    map[string]any{"id": "ord_creem_7", "amount": 1000, "currency": "EUR", "status": "paid"},
			"product":  map[string]any{"id": "prod_creem_pack100"},
			"customer": map[string]any{"id": "cust_7"},
			"metadata": map[string]string{"order_id": res.OrderID, "user_id": "u7"},
		}
		tests := []struct {
			name  string
			body  []byte
			field string
		}{
			{name: "dated an hour ahead", body: creemEvent("evt_creem_future", "checkout.completed", time.Now().Add(time.Hour), object), field: "created_at"},
			{name: "not JSON", body: []byte(`{"id":"evt_creem_x",`), field: "body"},
			{name: "no id", body: []byte(`{"eventType":"checkout.completed"}`), field: "id"},
			{name: "object of the wrong shape", body: []byte(`{"id":"evt_creem_y","eventType":"checkout.completed","created_at":1,"object":[1]}`), field: "object"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, out := e.sendCreem(tt.body, billing.SignCreem(tt.body, creemSecret))
				if status != http.StatusBadRequest || !strings.Contains(string(out), `"field":"`+tt.field+`"`) {
					t.Fatalf("status = %d %s, want 400 naming %s", status, out, tt.field)
				}
			})
		}
		e.wantBalance("u7", 0)
		now := creemEvent("evt_creem_now", "checkout.completed", time.Now().Add(10*time.Second), object)
		if status, out := e.sendCreem(now, billing.SignCreem(now, creemSecret)); status != http.StatusOK {
			t.Fatalf("event 10 s ahead = %d %s", status, out)
		}
		e.wantBalance("u7", 100)
	})
}
