package consent_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
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
	"github.com/stewardhq/steward/internal/testutil/visitortest"
	"github.com/stewardhq/steward/internal/web"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

// clock is the settable time source the tests hand the module.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)) }

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
	app.Use(authz.Middleware(visitortest.Auth{}))
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	mod.Mount(app, doc)
	return &harness{t: t, db: db, clock: clk, mod: mod, app: app}
}

// browser is one visitor's browser in front of the harness.
type browser struct {
	h *harness
	visitortest.Visitor
}

func (h *harness) browser() *browser {
	return &browser{h: h, Visitor: visitortest.Visitor{UserAgent: visitortest.Firefox}}
}

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
	return b.Do(b.h.t, b.h.app, method, path, r, "")
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
