package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stripe/stripe-go/v76/webhook"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/billing"
	"github.com/stewardhq/steward/policies"
)

func TestMain(m *testing.M) {
	code := sqltest.Main(m)
	stripeMock.stop()
	os.Exit(code)
}

// stripeMockServer is one stripe-mock process shared by the tests of this
// binary, started on first use.
type stripeMockServer struct {
	once   sync.Once
	url    string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
	err    error
}

// stripeMockStartTimeout bounds the wait for stripe-mock to answer. It
// loads the whole Stripe API description first, which takes seconds on a
// busy machine; the wait ends early when the process exits.
const stripeMockStartTimeout = 2 * time.Minute

var stripeMock stripeMockServer

const stripeMockInstall = "go install github.com/stripe/stripe-mock@v0.203.0"

// stripeMockURL returns the base URL of a running stripe-mock:
// STEWARD_TEST_STRIPE_MOCK_URL when set, otherwise a stripe-mock binary
// (on PATH, in the repository's .cache/bin or in ~/go/bin) started on a
// free local port.
func stripeMockURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("STEWARD_TEST_STRIPE_MOCK_URL"); u != "" {
		return u
	}
	stripeMock.once.Do(stripeMock.start)
	if stripeMock.err != nil {
		t.Fatalf("stripe-mock: %v", stripeMock.err)
	}
	return stripeMock.url
}

func (s *stripeMockServer) start() {
	bin, err := findStripeMock()
	if err != nil {
		s.err = err
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.err = err
		return
	}
	addr := l.Addr().String()
	_ = l.Close()
	s.cmd = exec.Command(bin, "-http-addr", addr)
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, io.Discard
	if err := s.cmd.Start(); err != nil {
		s.err = fmt.Errorf("start %s: %w", bin, err)
		return
	}
	s.exited = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	s.url = "http://" + addr
	// Each probe is bounded too, in case the port answers but hangs.
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(stripeMockStartTimeout)
	for {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/customers", nil)
		req.SetBasicAuth("sk_test_mock", "")
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			s.err = fmt.Errorf("%s did not answer on %s within %s", bin, addr, stripeMockStartTimeout)
			return
		}
		select {
		case <-s.exited:
			s.err = fmt.Errorf("%s exited before answering on %s", bin, addr)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *stripeMockServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func findStripeMock() (string, error) {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p, nil
	}
	candidates := []string{filepath.Join("..", "..", ".cache", "bin", "stripe-mock")}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "go", "bin", "stripe-mock"))
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return filepath.Abs(c)
		}
	}
	return "", errors.New("the stripe-mock binary is missing: install it with `" + stripeMockInstall + "` (or `make tools`), or set STEWARD_TEST_STRIPE_MOCK_URL")
}

const (
	stripeSecret  = "whsec_test_secret"
	creemSecret   = "creem_whsec_test"
	creemAPIKey   = "creem_test_key"
	principalHead = authtest.Header
)

// emails is the accounts module's part: every user has an address.
type emails struct{}

func (emails) Email(_ context.Context, userID string) (string, error) {
	return userID + "@example.com", nil
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
	ctx := context.Background()
	engine, err := policies.New(ctx, policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := billing.Config{
		Products:   testProducts,
		SuccessURL: "https://app.example.com/billing/success", CancelURL: "https://app.example.com/billing/cancel",
		PortalReturnURL: "https://app.example.com/account",
		Stripe:          billing.StripeConfig{SecretKey: "sk_test_mock", WebhookSecret: stripeSecret, APIURL: stripeMockURL(t)},
	}
	if creemURL != "" {
		cfg.Creem = billing.CreemConfig{APIKey: creemAPIKey, WebhookSecret: creemSecret, APIURL: creemURL}
	}
	mod, err := billing.New(cfg, billing.Deps{DB: db, Guard: authz.NewGuard(engine), Emails: emails{}})
	if err != nil {
		t.Fatal(err)
	}
	app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler)})
	app.Use(authz.Middleware(authtest.HeaderAuth{}))
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
	if principal != "" {
		req.Header.Set(principalHead, principal)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	// No time limit: a slow, busy machine must not fail the test.
	resp, err := e.app.Test(req, -1)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
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
