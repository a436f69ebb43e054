package risk_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/testclock"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/billing"
	"github.com/stewardhq/steward/modules/risk"
	"github.com/stewardhq/steward/policies"
)

// principalHead carries the test principal, "user-id:role".
const principalHead = authtest.Header

// clock is the settable time source the tests hand the module.
type clock = testclock.Clock

// env is the risk module mounted on the real web platform, with the real
// access policy and the real billing ledger.
type env struct {
	t      *testing.T
	db     *bun.DB
	mod    *risk.Module
	app    *fiber.App
	doc    *web.OpenAPI
	ledger *billing.Ledger
	clock  *clock
}

// newEnv builds the module with cfg; its Deps get the database, a test
// clock, a guard and the ledger as Rewards, and then any tweak.
func newEnv(t *testing.T, db *bun.DB, cfg risk.Config, tweak ...func(*risk.Deps)) *env {
	t.Helper()
	engine, err := policies.New(context.Background(), policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, ledger: billing.NewLedger(db), clock: testclock.New(time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC))}
	deps := risk.Deps{DB: db, Now: e.clock.Now, Guard: authz.NewGuard(engine), Rewards: e.ledger}
	for _, f := range tweak {
		f(&deps)
	}
	e.mod, err = risk.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.doc = web.NewOpenAPI(web.OpenAPIInfo{})
	e.app = web.New(web.Options{Logger: slog.New(slog.DiscardHandler), OpenAPI: e.doc})
	e.app.Use(authz.Middleware(authtest.HeaderAuth{}))
	e.mod.Mount(e.app, e.doc)
	return e
}

// do sends a request as principal ("" for none) and returns the status and
// body.
func (e *env) do(method, path, principal string) (int, []byte) {
	e.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if principal != "" {
		req.Header.Set(principalHead, principal)
	}
	// No time limit: a slow, busy machine must not fail the test.
	resp, err := e.app.Test(req, -1)
	if err != nil {
		e.t.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// checkIn checks in over HTTP as user and decodes the answer.
func (e *env) checkIn(user string) checkInAnswer {
	e.t.Helper()
	status, out := e.do(fiber.MethodPost, "/v1/rewards/checkin", user+":user")
	var a checkInAnswer
	if status != fiber.StatusOK || json.Unmarshal(out, &a) != nil {
		e.t.Errorf("check-in = %d %s, want 200", status, out)
	}
	return a
}

// balance returns the user's spendable credits in the ledger.
func (e *env) balance(user string) int64 {
	e.t.Helper()
	b, err := e.ledger.Balance(context.Background(), user)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// rewardEntries counts the user's reward entries in the ledger.
func (e *env) rewardEntries(user string) int {
	e.t.Helper()
	entries, err := e.ledger.Entries(context.Background(), user)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, en := range entries {
		if en.Kind == billing.EntryReward {
			n++
		}
	}
	return n
}

type checkInAnswer struct {
	Granted bool      `json:"granted"`
	Credits int64     `json:"credits"`
	Day     string    `json:"day"`
	NextAt  time.Time `json:"next_at"`
}

// page is a decoded list answer.
type page struct {
	Items      []map[string]any `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

// listCase is a list request and the answer it should get.
type listCase struct {
	name      string
	principal string
	query     url.Values
	want      int
	wantItems int
}

// list sends tt's request to path and checks its status. It returns the
// decoded page and the raw answer, and ok only when the status is 200, the
// one answer that carries a page.
func (e *env) list(t *testing.T, path string, tt listCase) (p page, out []byte, ok bool) {
	t.Helper()
	status, out := e.do(fiber.MethodGet, path+"?"+tt.query.Encode(), tt.principal)
	if status != tt.want {
		t.Fatalf("status = %d %s, want %d", status, out, tt.want)
	}
	if tt.want != http.StatusOK {
		return page{}, out, false
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p, out, true
}
