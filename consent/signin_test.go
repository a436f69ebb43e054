package consent_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
)

// warehouseCopy records the rows the module copies to the warehouse.
type warehouseCopy struct {
	mu   sync.Mutex
	rows map[string][][]any
	err  error
}

func (w *warehouseCopy) Insert(_ context.Context, table string, _ []string, rows [][]any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.rows[table] = append(w.rows[table], rows...)
	return nil
}

// TestOnSignIn checks the accounts module's sign-in hook: the browser's
// choices follow it into the account, and the sign-in is recorded in SQL
// and copied to the warehouse; a browser without a consent cookie links
// nothing, and a failed copy is reported.
func TestOnSignIn(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		clk := newClock()
		h := newHarness(t, db, clk, nil)
		wh := &warehouseCopy{rows: map[string][][]any{}}
		mod, err := consent.New(consent.Config{
			PolicyVersion: "2026-05", BannerVersion: "b1", HashKey: []byte("test erasure key"), CacheTTL: -1,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")},
		}, consent.Deps{DB: db, Now: clk.Now, Warehouse: wh})
		if err != nil {
			t.Fatal(err)
		}
		app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler)})
		app.Post("/sign-in/:user", func(c *fiber.Ctx) error { return mod.OnSignIn(c, c.Params("user")) })
		signIn := func(user, vid string) int {
			t.Helper()
			req := httptest.NewRequest(http.MethodPost, "/sign-in/"+user, nil)
			if vid != "" {
				req.AddCookie(&http.Cookie{Name: consent.DefaultCookieName, Value: vid})
			}
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}

		b := h.browser()
		b.put(consent.MethodBannerSave, map[string]bool{"functional": false, "analytics": true, "marketing": false})
		if s := signIn("user-a", b.VID); s != http.StatusOK {
			t.Fatalf("sign-in hook = %d", s)
		}
		if got, _ := consentFor(t, h, "", "user-a"); got != "necessary,analytics" {
			t.Errorf("account after sign-in: %s, want the browser's necessary,analytics", got)
		}
		if linked, err := h.mod.Browsing(ctx, "user-a"); err != nil || len(linked) != 1 || linked[0].VisitorID != b.VID {
			t.Errorf("Browsing = %+v, %v; want the browser linked", linked, err)
		}
		copied := wh.rows["visitor_links"]
		if len(copied) != 1 || copied[0][1] != b.VID || copied[0][2] != "user-a" {
			t.Errorf("warehouse copy = %v, want one link of %s to user-a", copied, b.VID)
		}

		if s := signIn("user-b", ""); s != http.StatusOK || len(wh.rows["visitor_links"]) != 1 {
			t.Errorf("sign-in without a consent cookie = %d, %d copies; want nothing linked", s, len(wh.rows["visitor_links"]))
		}

		wh.err = errors.New("warehouse down")
		c := h.browser()
		c.put(consent.MethodBannerSave, map[string]bool{"functional": false, "analytics": false, "marketing": false})
		if s := signIn("user-c", c.VID); s == http.StatusOK {
			t.Errorf("sign-in hook with the warehouse down = %d, want the failure reported", s)
		}
	})
}
