package consent_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/testutil/testclock"
	"github.com/stewardhq/steward/internal/web"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// clock is the settable time source the tests hand the module.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)) }

// headerAuth signs a request in as the user named by X-Test-User, the way
// the accounts module's session check would.
type headerAuth struct{}

func (headerAuth) Authenticate(c *fiber.Ctx) (authz.Principal, error) {
	id := c.Get("X-Test-User")
	if id == "" {
		return authz.Principal{}, authz.ErrNoCredentials
	}
	return authz.Principal{UserID: id, Role: authz.RoleUser, Method: "session"}, nil
}

// harness is a consent module on a real database behind the real HTTP
// platform.
type harness struct {
	t     *testing.T
	db    *bun.DB
	clock *clock
	mod   *consent.Module
	app   *fiber.App
}

func newHarness(t *testing.T, db *bun.DB, clk *clock, mutate func(*consent.Config)) *harness {
	t.Helper()
	cfg := consent.Config{
		PolicyVersion: "2026-05",
		BannerVersion: "b1",
		HashKey:       []byte("test erasure key"),
		CacheTTL:      -1,
		// app.Test connects from 0.0.0.0; treating that as the proxy makes
		// X-Forwarded-For the client's address.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	mod, err := consent.New(cfg, consent.Deps{DB: db, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler)})
	app.Use(authz.Middleware(headerAuth{}))
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	mod.Mount(app, doc)
	return &harness{t: t, db: db, clock: clk, mod: mod, app: app}
}

// browser carries a cookie jar of one: the visitor cookie.
type browser struct {
	h      *harness
	vid    string
	user   string
	gpc    bool
	cookie *http.Cookie // the last Set-Cookie seen
}

func (h *harness) browser() *browser { return &browser{h: h} }

func (b *browser) do(method, path string, body any) (*http.Response, []byte) {
	b.h.t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			b.h.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("X-Forwarded-For", "198.51.100.77")
	req.Header.Set("User-Agent", firefox)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.vid != "" {
		req.AddCookie(&http.Cookie{Name: "steward_vid", Value: b.vid})
	}
	if b.user != "" {
		req.Header.Set("X-Test-User", b.user)
	}
	if b.gpc {
		req.Header.Set("Sec-GPC", "1")
	}
	resp, err := b.h.app.Test(req, -1)
	if err != nil {
		b.h.t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == "steward_vid" {
			b.vid = c.Value
			b.cookie = c
		}
	}
	return resp, raw
}

func (b *browser) get() consent.View {
	b.h.t.Helper()
	resp, raw := b.do("GET", "/v1/consent", nil)
	if resp.StatusCode != 200 {
		b.h.t.Fatalf("GET /v1/consent: %d %s", resp.StatusCode, raw)
	}
	var v consent.View
	if err := json.Unmarshal(raw, &v); err != nil {
		b.h.t.Fatal(err)
	}
	return v
}

func (b *browser) put(method string, purposes map[string]bool) consent.View {
	b.h.t.Helper()
	body := map[string]any{"method": method, "policy_version": "2026-05", "banner_version": "b1"}
	if purposes != nil {
		body["purposes"] = purposes
	}
	resp, raw := b.do("PUT", "/v1/consent", body)
	if resp.StatusCode != 200 {
		b.h.t.Fatalf("PUT /v1/consent %s: %d %s", method, resp.StatusCode, raw)
	}
	var v consent.View
	if err := json.Unmarshal(raw, &v); err != nil {
		b.h.t.Fatal(err)
	}
	return v
}

// granted lists the purposes in effect in a view, sorted.
func granted(v consent.View) string {
	var out []string
	for _, p := range consent.Purposes() {
		if v.Purposes[p] {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}

// problem is the part of a problem document the tests read.
type problem struct {
	Status int `json:"status"`
	Errors []struct {
		Field string `json:"field"`
		Rule  string `json:"rule"`
	} `json:"errors"`
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
