package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/testutil/visitortest"
	"github.com/stewardhq/steward/internal/web"
)

func TestMain(m *testing.M) {
	// The crash test runs this binary again as the ingesting process.
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	chtest.MainWith(m, sqltest.Main)
}

const (
	policyVer = "2026-05"
	bannerVer = "b1"
)

// stack is the consent and events modules wired as cmd/steward wires them,
// on real SQLite, the real policy engine and the embedded ClickHouse.
type stack struct {
	t       testing.TB
	db      *bun.DB
	wh      warehouse.Warehouse
	consent *consent.Module
	events  *ingest.Module
	app     *fiber.App
}

type stackOptions struct {
	warehouse warehouse.Warehouse // nil: a fresh embedded database
	spoolDir  string              // empty: a temporary folder
	mutate    func(*ingest.Config)
	now       func() time.Time // nil: time.Now
	noStart   bool
	// before runs ahead of every route, as a slow network or proxy would.
	before fiber.Handler
}

func newStack(t testing.TB, so stackOptions) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{t: t, db: sqltest.SQLite(t)}
	s.wh = so.warehouse
	if s.wh == nil {
		s.wh = chtest.Embedded(t)
	}
	// The tests count rows to prove each event is stored once; background
	// merges of the ReplacingMergeTree would fold duplicates away first.
	if err := s.wh.Exec(ctx, "SYSTEM STOP MERGES events"); err != nil {
		t.Fatal(err)
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32"), netip.MustParsePrefix("127.0.0.1/32")}
	var err error
	s.consent, err = consent.New(consent.Config{PolicyVersion: policyVer, BannerVersion: bannerVer, TrustedProxies: proxies}, consent.Deps{DB: s.db})
	if err != nil {
		t.Fatal(err)
	}
	spoolDir := so.spoolDir
	if spoolDir == "" {
		spoolDir = t.TempDir()
	}
	cfg := ingest.Config{
		SpoolDir:       spoolDir,
		FlushInterval:  50 * time.Millisecond,
		RetryMin:       20 * time.Millisecond,
		RetryMax:       200 * time.Millisecond,
		TrustedProxies: proxies,
	}
	if so.mutate != nil {
		so.mutate(&cfg)
	}
	s.events, err = ingest.New(cfg, ingest.Deps{
		Warehouse: s.wh,
		Policy:    authtest.Engine(t),
		Consent:   s.consent,
		Logger:    testLogger(),
		Now:       so.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The app and the modules share one document, as in cmd/steward: the
	// server finds the events route's raised body limit there.
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	s.app = web.New(web.Options{Logger: slog.New(slog.DiscardHandler), MaxBodyLimit: s.events.BodyLimit(), OpenAPI: doc})
	if so.before != nil {
		s.app.Use(so.before)
	}
	s.app.Use(authz.Middleware(visitortest.Auth{}))
	s.consent.Mount(s.app, doc)
	s.events.Mount(s.app, doc)
	if !so.noStart {
		if err := s.events.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := s.events.Stop(ctx); err != nil {
			t.Errorf("stop events: %v", err)
		}
	})
	return s
}

func testLogger() *slog.Logger {
	if os.Getenv("STEWARD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// client is one browser, or a back end calling with a user's API token,
// in front of the stack.
type client struct {
	s *stack
	visitortest.Visitor
}

func (s *stack) client() *client {
	return &client{s: s, Visitor: visitortest.Visitor{UserAgent: visitortest.Firefox}}
}

// accepting is a browser whose visitor accepted everything on the banner.
func (s *stack) accepting() *client {
	c := s.client()
	c.choose(consent.MethodBannerAccept, nil)
	return c
}

// do sends body as it is when it is a []byte, as JSON otherwise.
func (c *client) do(method, path string, body any, contentType string) (*http.Response, []byte) {
	c.s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.s.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	return c.Do(c.s.t, c.s.app, method, path, r, contentType)
}

// acceptOverHTTP records a visitor's "accept all" through PUT /v1/consent
// of the server at base, over a real connection, and returns the answer,
// its body closed, for the visitor cookie it sets.
func acceptOverHTTP(tb testing.TB, httpc *http.Client, base string) *http.Response {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"method": "banner_accept", "policy_version": policyVer, "banner_version": bannerVer})
	req, _ := http.NewRequest("PUT", base+"/v1/consent", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", visitortest.Firefox)
	resp, err := httpc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("record consent: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// postOverHTTP sends a JSON batch to POST /v1/events of the server at
// base, over a real connection, as a Firefox browser sending cookie (a
// Cookie header; none when empty), and returns the status. It may run on
// any goroutine.
func postOverHTTP(httpc *http.Client, base string, batch []byte, cookie string) (int, error) {
	req, err := http.NewRequest("POST", base+"/v1/events", bytes.NewReader(batch))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", visitortest.Firefox)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// choose records a consent choice through PUT /v1/consent.
func (c *client) choose(method string, purposes map[string]bool) {
	c.s.t.Helper()
	body := map[string]any{"method": method, "policy_version": policyVer, "banner_version": bannerVer}
	if purposes != nil {
		body["purposes"] = purposes
	}
	resp, raw := c.do("PUT", "/v1/consent", body, "")
	if resp.StatusCode != 200 {
		c.s.t.Fatalf("PUT /v1/consent: %d %s", resp.StatusCode, raw)
	}
}

// send posts events and returns the status and the decoded answer.
func (c *client) send(body any) (int, ingest.Result, []byte) {
	c.s.t.Helper()
	resp, raw := c.do("POST", "/v1/events", body, "")
	var res ingest.Result
	if resp.StatusCode == 202 {
		if err := json.Unmarshal(raw, &res); err != nil {
			c.s.t.Fatalf("decode answer %s: %v", raw, err)
		}
	}
	return resp.StatusCode, res, raw
}

// fullEvent is an event carrying every field, so a test sees what the gate
// strips.
func fullEvent(typ string) map[string]any {
	return map[string]any{
		"event_id":     uuid.NewString(),
		"type":         typ,
		"name":         typ,
		"time":         time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano),
		"url":          "https://app.example.com/pricing?plan=pro&token=secret#top",
		"referrer":     "https://www.google.com/search?q=ai+video",
		"landing_page": "https://app.example.com/landing?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_term=video&utm_content=a&gclid=CLICK123",
		"session_id":   "sess_abc123",
		"screen":       "1920x1080",
		"language":     "de-DE",
		"props":        map[string]any{"plan": "pro"},
	}
}

// rowsByID reads the stored rows of the given event ids, every copy (no
// FINAL), keyed by id.
func (s *stack) rowsByID(ids []string) map[string][]chtest.Event {
	s.t.Helper()
	var rows []chtest.Event
	if err := s.wh.Select(context.Background(), &rows, "SELECT * FROM events WHERE event_id IN {ids:Array(String)}",
		warehouse.Named("ids", ids)); err != nil {
		s.t.Fatal(err)
	}
	out := map[string][]chtest.Event{}
	for _, r := range rows {
		out[r.EventID] = append(out[r.EventID], r)
	}
	return out
}

type countRow struct {
	N uint64 `ch:"n"`
}

// countRows counts every stored row, duplicates included.
func countRows(t testing.TB, w warehouse.Warehouse) uint64 {
	t.Helper()
	var rows []countRow
	if err := w.Select(context.Background(), &rows, "SELECT count() AS n FROM events"); err != nil {
		t.Fatal(err)
	}
	return rows[0].N
}

// waitTimeout bounds how long a test waits for work done in the
// background, such as a flush into the warehouse. Only a broken test
// reaches it: it is generous so that a slow, busy machine never does.
const waitTimeout = 2 * time.Minute

func (s *stack) flush() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.events.Flush(ctx); err != nil {
		s.t.Fatal(err)
	}
}

// flakyWarehouse is the real warehouse behind a switch: while down, every
// insert fails; lostAnswers makes that many inserts succeed but report a
// failure, as a server whose answer is lost would.
type flakyWarehouse struct {
	warehouse.Warehouse
	down        atomic.Bool
	lostAnswers atomic.Int32
	failed      atomic.Int32
}

func (f *flakyWarehouse) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	if f.down.Load() {
		f.failed.Add(1)
		return fmt.Errorf("warehouse down")
	}
	if err := f.Warehouse.Insert(ctx, table, columns, rows); err != nil {
		return err
	}
	if f.lostAnswers.Load() > 0 {
		f.lostAnswers.Add(-1)
		return fmt.Errorf("connection reset after the insert was applied")
	}
	return nil
}

func (f *flakyWarehouse) Select(ctx context.Context, dest any, query string, args ...any) error {
	if f.down.Load() && !strings.Contains(query, "system.columns") {
		f.failed.Add(1)
		return fmt.Errorf("warehouse down")
	}
	return f.Warehouse.Select(ctx, dest, query, args...)
}
