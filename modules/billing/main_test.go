package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stripe/stripe-go/v76/webhook"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/testutil/stripetest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/billing"
	"github.com/stewardhq/steward/policies"
)

func TestMain(m *testing.M) {
	code := sqltest.Main(m)
	stripetest.Stop()
	os.Exit(code)
}

// stripeMockURL returns the base URL of the stripe-mock the tests share.
func stripeMockURL(t *testing.T) string { return stripetest.URL(t) }

const (
	stripeSecret  = "whsec_test_secret"
	creemSecret   = "creem_whsec_test"
	creemAPIKey   = "creem_test_key"
	principalHead = authtest.Header
)

// withEmail authenticates as authtest.HeaderAuth does and gives the
// principal an address, as the accounts module does: user u is
// u@example.com.
type withEmail struct{ authtest.HeaderAuth }

func (a withEmail) Authenticate(c *fiber.Ctx) (authz.Principal, error) {
	p, err := a.HeaderAuth.Authenticate(c)
	if err == nil {
		p.Email = p.UserID + "@example.com"
	}
	return p, err
}

var testProducts = []billing.Product{
	{ID: "pack_100", Name: "100 credits", Kind: billing.KindOneTime, PriceCents: 1000, Currency: "eur", Credits: 100,
		StripePriceID: "price_pack100", CreemProductID: "prod_creem_pack100"},
	{ID: "pro_month", Name: "Pro monthly", Kind: billing.KindSubscription, PriceCents: 2000, Currency: "eur", Credits: 500,
		Interval: "month", StripePriceID: "price_pro_month", CreemProductID: "prod_creem_pro"},
}

// env is a billing module mounted on a Steward app.
type env struct {
	t   *testing.T
	db  *bun.DB
	mod *billing.Module
	app *fiber.App
}

func newEnv(t *testing.T, db *bun.DB, creemURL string) *env {
	t.Helper()
	return newEnvAt(t, db, stripeMockURL(t), creemURL)
}

// newEnvAt is newEnv with the Stripe API at stripeURL.
func newEnvAt(t *testing.T, db *bun.DB, stripeURL, creemURL string) *env {
	t.Helper()
	ctx := context.Background()
	engine, err := policies.New(ctx, policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := billing.Config{
		Products:   testProducts,
		SuccessURL: "https://app.example.com/billing/success", CancelURL: "https://app.example.com/billing/cancel",
		PortalReturnURL: "https://app.example.com/account",
		Stripe:          billing.StripeConfig{SecretKey: "sk_test_mock", WebhookSecret: stripeSecret, APIURL: stripeURL},
	}
	if creemURL != "" {
		cfg.Creem = billing.CreemConfig{APIKey: creemAPIKey, WebhookSecret: creemSecret, APIURL: creemURL}
	}
	mod, err := billing.New(cfg, billing.Deps{DB: db, Guard: authz.NewGuard(engine)})
	if err != nil {
		t.Fatal(err)
	}
	app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler)})
	app.Use(authz.Middleware(withEmail{}))
	mod.Mount(app, web.NewOpenAPI(web.OpenAPIInfo{}))
	return &env{t: t, db: db, mod: mod, app: app}
}

// do sends a request as principal ("" for none) and returns the status and
// body.
func (e *env) do(method, path, principal string, body []byte, headers map[string]string) (int, []byte) {
	e.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, out := authtest.Do(e.t, e.app, req, principal)
	return resp.StatusCode, out
}

func (e *env) checkout(user, productID, provider string) billing.CheckoutResponse {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"product_id": productID, "provider": provider})
	status, out := e.do(http.MethodPost, "/v1/billing/checkout", user+":user", body, nil)
	if status != http.StatusOK {
		e.t.Fatalf("checkout: %d %s", status, out)
	}
	var res billing.CheckoutResponse
	if err := json.Unmarshal(out, &res); err != nil {
		e.t.Fatal(err)
	}
	return res
}

// stripeEvent builds a Stripe event delivery around object.
func stripeEvent(id, typ string, created time.Time, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": "2023-10-16",
		"created": created.Unix(), "livemode": false,
		"data": map[string]any{"object": object},
	})
	return b
}

// sendStripe delivers a Stripe event signed with secret and returns the
// status.
func (e *env) sendStripe(payload []byte, secret string) (int, []byte) {
	e.t.Helper()
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: time.Now()})
	return e.do(http.MethodPost, "/v1/billing/webhooks/stripe", "", payload, map[string]string{"Stripe-Signature": signed.Header})
}

func (e *env) mustSendStripe(payload []byte) {
	e.t.Helper()
	if status, out := e.sendStripe(payload, stripeSecret); status != http.StatusOK {
		e.t.Fatalf("stripe webhook: %d %s", status, out)
	}
}

func (e *env) sendCreem(payload []byte, signature string) (int, []byte) {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/billing/webhooks/creem", "", payload, map[string]string{"creem-signature": signature})
}

func (e *env) balance(user string) int64 {
	e.t.Helper()
	b, err := e.mod.Ledger().Balance(context.Background(), user)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) wantBalance(user string, want int64) {
	e.t.Helper()
	if got := e.balance(user); got != want {
		e.t.Fatalf("balance of %s = %d, want %d", user, got, want)
	}
}

func (e *env) order(user, id string) map[string]any {
	e.t.Helper()
	status, out := e.do(http.MethodGet, "/v1/billing/orders", user+":user", nil, nil)
	if status != http.StatusOK {
		e.t.Fatalf("orders: %d %s", status, out)
	}
	var list []map[string]any
	if err := json.Unmarshal(out, &list); err != nil {
		e.t.Fatal(err)
	}
	for _, o := range list {
		if o["id"] == id {
			return o
		}
	}
	e.t.Fatalf("order %s not in %s", id, out)
	return nil
}
