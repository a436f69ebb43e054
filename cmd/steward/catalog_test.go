package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/stewardhq/steward/internal/testutil/stripetest"
)

func TestLoadCatalog(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		wantIDs []string
		wantErr []string
	}{
		{name: "the demo catalog", path: "", wantIDs: []string{"credits-100", "credits-500", "pro-monthly", "pro-yearly"}},
		{
			name: "yaml with provider ids",
			path: write("shop.yaml", "- id: pack\n  name: 100 credits\n  kind: one_time\n  price_cents: 500\n  currency: eur\n  credits: 100\n  stripe_price_id: price_123\n"+
				"- id: pro\n  name: Pro\n  kind: subscription\n  interval: month\n  price_cents: 1500\n  currency: usd\n  credits: 1000\n  creem_product_id: prod_9\n"),
			wantIDs: []string{"pack", "pro"},
		},
		{
			name:    "json",
			path:    write("shop.json", `[{"id":"pack","name":"Pack","kind":"one_time","price_cents":100,"currency":"eur","credits":10}]`),
			wantIDs: []string{"pack"},
		},
		{name: "missing file", path: filepath.Join(dir, "nope.json"), wantErr: []string{"STEWARD_CATALOG", "nope.json"}},
		{name: "unknown field", path: write("typo.json", `[{"id":"p","name":"P","kind":"one_time","price_cents":1,"currency":"eur","price":5}]`), wantErr: []string{"typo.json", "price"}},
		{
			name:    "broken rules are named",
			path:    write("bad.yaml", "- id: a\n  name: A\n  kind: rental\n  price_cents: 0\n  currency: EUR\n  stripe_price_id: prod_1\n- id: a\n  name: ''\n  kind: subscription\n  price_cents: 5\n  currency: eur\n"),
			wantErr: []string{"bad.yaml", "products[0].kind", "products[0].price_cents", "products[0].currency", "products[0].stripe_price_id", "products[1].id", "products[1].name", "products[1].interval"},
		},
		{name: "empty", path: write("empty.json", `[]`), wantErr: []string{"no products"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadCatalog(tc.path)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("loaded %+v, want an error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, p := range got {
				ids = append(ids, p.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.wantIDs, ",") {
				t.Fatalf("products %v, want %v", ids, tc.wantIDs)
			}
		})
	}
}

// TestConfiguredCatalogSellsThroughStripe is an operator's first sale:
// serve with a catalog file and Stripe (stripe-mock), a token made in a
// second terminal, a checkout that answers Stripe's URL, and the signed
// checkout.session.completed webhook crediting the account.
func TestConfiguredCatalogSellsThroughStripe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server as a child process")
	}
	const secret = "whsec_catalog_test"
	dir := t.TempDir()
	catalog := filepath.Join(t.TempDir(), "products.yaml")
	if err := os.WriteFile(catalog, []byte(`- id: starter
  name: 250 credits
  kind: one_time
  price_cents: 900
  currency: usd
  credits: 250
  stripe_price_id: price_starter
`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServeChild(t, dir,
		"STEWARD_CATALOG="+catalog,
		"STEWARD_STRIPE_SECRET_KEY=sk_test_catalog",
		"STEWARD_STRIPE_WEBHOOK_SECRET="+secret,
		"STEWARD_STRIPE_API_URL="+stripetest.URL(t),
	)
	token := strings.TrimSpace(mustRunChild(t, dir, "token create --role user --email buyer@example.com"))
	call := func(method, path string, body any, sign bool) (int, []byte) {
		t.Helper()
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(method, srv.base+path, bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if sign {
			signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: raw, Secret: secret, Timestamp: time.Now()})
			req.Header.Set("Stripe-Signature", signed.Header)
		} else {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}

	var products []struct {
		ID string `json:"id"`
	}
	code, raw := call("GET", "/v1/billing/products", nil, false)
	if err := json.Unmarshal(raw, &products); code != 200 || err != nil || len(products) != 1 || products[0].ID != "starter" {
		t.Fatalf("GET /v1/billing/products = %d %s, want the configured catalog", code, raw)
	}

	var co struct {
		OrderID string `json:"order_id"`
		URL     string `json:"url"`
	}
	code, raw = call("POST", "/v1/billing/checkout", map[string]string{"product_id": "starter", "provider": "stripe"}, false)
	if err := json.Unmarshal(raw, &co); code != 200 || err != nil || co.OrderID == "" || !strings.HasPrefix(co.URL, "https://") {
		t.Fatalf("checkout = %d %s, want an order and Stripe's URL", code, raw)
	}

	var me struct {
		ID            string `json:"id"`
		CreditBalance *int64 `json:"credit_balance"`
	}
	code, raw = call("GET", "/v1/me", nil, false)
	if err := json.Unmarshal(raw, &me); code != 200 || err != nil {
		t.Fatalf("GET /v1/me = %d %s", code, raw)
	}
	before := int64(0)
	if me.CreditBalance != nil {
		before = *me.CreditBalance
	}
	code, raw = call("POST", "/v1/billing/webhooks/stripe", map[string]any{
		"id": "evt_catalog_1", "object": "event", "type": "checkout.session.completed", "api_version": "2023-10-16",
		"created": time.Now().Unix(), "livemode": false, "data": map[string]any{"object": map[string]any{
			"id": "cs_test_" + co.OrderID, "object": "checkout.session", "mode": "payment",
			"client_reference_id": co.OrderID, "customer": "cus_catalog",
			"payment_status": "paid", "status": "complete", "amount_total": 900, "currency": "usd",
			"metadata":       map[string]string{"order_id": co.OrderID, "user_id": me.ID},
			"payment_intent": "pi_" + co.OrderID,
		}},
	}, true)
	if code != 200 {
		t.Fatalf("signed webhook = %d %s", code, raw)
	}
	code, raw = call("GET", "/v1/me", nil, false)
	if err := json.Unmarshal(raw, &me); code != 200 || err != nil || me.CreditBalance == nil || *me.CreditBalance != before+250 {
		t.Fatalf("after the payment GET /v1/me = %d %s, want %d credits more", code, raw, 250)
	}
}
