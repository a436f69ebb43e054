package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	"github.com/uptrace/bun"
	"pgregory.net/rapid"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
	"github.com/stewardhq/steward/internal/testutil/stripetest"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/modules/generation"
	"github.com/stewardhq/steward/modules/support"
)

// The generated-history suite drives the wired server the way people use
// it: several people on several browsers, signed out and signed in,
// sharing browsers one after another, choosing and changing consent,
// sending events from pages and from programs with API tokens, uploading,
// generating, writing to support, and asking for their data or its
// erasure in any order, sometimes with the erasure cut short and resumed.
// After every access export and erasure it reads the stores directly (SQL
// rows, warehouse rows, files) and holds Steward to its promises:
//
//   - an export holds every event of the person, their anonymous browsing
//     before each sign-in included, and nothing of anyone else; the same
//     holds for the visits and conversions kept for attribution;
//   - its SQL rows name the person and no one else, and are all of theirs;
//   - an erasure always completes, and afterwards nothing of the person
//     remains but what the certificate keeps, each kept item with its
//     reason and end;
//   - the certificate's counts equal a direct count;
//   - every other person's export is the same before and after;
//   - a second erasure changes nothing;
//   - a visitor who is not signed in downloads exactly the anonymous
//     events of their browser that no sign-in claims, and erasing them
//     removes those and nothing of anyone else (history_visitor_test.go).
//
// Whose anonymous events are whose is decided here from the history itself
// (the order of sign-ins per browser), not by asking Steward: the identity
// rule of docs/policies.md, written a second time.
//
// STEWARD_PRIVACY_CHECKS sets how many histories run per store (default
// 4) and STEWARD_PRIVACY_SEED the seed (fixed by default; random when only
// the count is given); `make test-privacy SEEDS=N` runs N. A failure prints
// the shrunk history, one action a line.

// historyCatalog is what the histories buy: a credit pack and a monthly
// subscription, both sold through Stripe.
const historyCatalog = `[
  {"id": "pack", "name": "100 credits", "kind": "one_time", "price_cents": 500, "currency": "eur", "credits": 100, "stripe_price_id": "price_pack"},
  {"id": "pro", "name": "Pro", "kind": "subscription", "interval": "month", "price_cents": 1500, "currency": "eur", "credits": 1000, "stripe_price_id": "price_pro"}
]`

const historyWebhookSecret = "whsec_history"

// historyUA is a desktop browser: the tracker's events of a bot are
// dropped.
const historyUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

// tickClock is the servers' clock in the suite: real time, but never the
// same millisecond twice and never backwards, so the order of two requests
// is the order of their times, and it can jump ahead as months pass.
type tickClock struct {
	mu     sync.Mutex
	last   time.Time
	offset time.Duration
}

func (c *tickClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := time.Now().UTC().Add(c.offset).Truncate(time.Millisecond)
	if !t.After(c.last) {
		t = c.last.Add(time.Millisecond)
	}
	c.last = t
	return t
}

// ahead is how far the clock has jumped ahead of real time.
func (c *tickClock) ahead() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

func (c *tickClock) jump(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// histEnv is one wired server on stores of its own, shared by every
// history of one store kind: each history makes new people.
type histEnv struct {
	srv   *server
	clock *tickClock
	dir   string
	warns *warnings
}

var histDBs atomic.Int64

func newHistEnv(t *testing.T, dialect string) *histEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	var sqlCfg sqlstore.Config
	switch dialect {
	case "sqlite":
		sqlCfg.DataDir = dir
	case "postgres":
		sqlCfg.URL = pgtest.NewDatabase(t)
	}
	chDB := fmt.Sprintf("history_%s_%d", dialect, histDBs.Add(1))
	st := ownStores(t, sqlCfg, chDB)
	cfg := config.Defaults()
	cfg.DataDir, cfg.CHDBLib, cfg.ClickHouseDatabase = dir, embedded.cfg.CHDBLib, chDB
	cfg.DatabaseURL = sqlCfg.URL
	cfg.Dev, cfg.AutoMigrate = true, false
	// Purchases go through Stripe's own mock and signed webhooks.
	cfg.StripeSecretKey, cfg.StripeWebhookSecret, cfg.StripeAPIURL = "sk_test_history", historyWebhookSecret, stripetest.URL(t)
	cfg.Catalog = filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(cfg.Catalog, []byte(historyCatalog), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := &tickClock{}
	warns := &warnings{}
	srv, err := assemble(ctx, cfg, slog.New(warns), st, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	// Only the event drain runs in the background: requests are processed
	// by the histories themselves, so that they can be cut short.
	if err := srv.wired.events.Start(ctx); err != nil {
		_ = srv.close(ctx)
		t.Fatal(err)
	}
	env := &histEnv{srv: srv, clock: clock, dir: dir, warns: warns}
	dropOnCleanup(t, func() *server { return env.srv }, chDB)
	return env
}

// restart stops the server and starts a new one on the same stores, with
// the privacy policy version given: what an operator does to publish a new
// policy, and what a crash and a restart look like to the stores.
func (env *histEnv) restart(t failer, policyVersion string) {
	ctx := context.Background()
	if err := env.srv.stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	cfg := env.srv.cfg
	cfg.ConsentPolicyVersion = policyVersion
	srv, err := assemble(ctx, cfg, slog.New(env.warns), env.srv.stores, env.clock.Now)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := srv.wired.events.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	env.srv = srv
}

// warnings is a log handler that keeps the warnings and errors the server
// logs: ordinary use must log none.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	if strings.HasPrefix(r.Message, "DEV SIGN-IN") {
		// Every development sign-in is announced; the histories use it.
		return nil
	}
	w.mu.Lock()
	w.msgs = append(w.msgs, msg)
	w.mu.Unlock()
	return nil
}

func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// take returns the warnings logged since the last call.
func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// configureRapid sets the number of histories and the seed from the
// environment, unless the rapid flags were given.
func configureRapid(t *testing.T) {
	t.Helper()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	checks := os.Getenv("STEWARD_PRIVACY_CHECKS")
	seed := os.Getenv("STEWARD_PRIVACY_SEED")
	if checks == "" {
		checks = "4"
		if seed == "" {
			seed = "20261205"
		}
	}
	if !set["rapid.checks"] {
		if err := flag.Set("rapid.checks", checks); err != nil {
			t.Fatal(err)
		}
	}
	if seed != "" && !set["rapid.seed"] {
		if err := flag.Set("rapid.seed", seed); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGeneratedHistories(t *testing.T) {
	configureRapid(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := newHistEnv(t, dialect)
			rapid.Check(t, func(rt *rapid.T) {
				// Histories let months pass. Long before the clock nears the
				// end of ClickHouse's DateTime (2106), whose TTL arithmetic
				// would expire every event, a fresh server starts today.
				if env.clock.ahead() > 40*365*24*time.Hour {
					env = newHistEnv(t, dialect)
				}
				generated(env, rt)
			})
			t.Logf("%d histories, %d actions so far", histRuns.Load(), histActions.Load())
		})
	}
}

// histRuns and histActions count the histories and actions run by this
// test binary.
var histRuns, histActions atomic.Int64

// actor is one person of a history.
type actor struct {
	name   string
	email  string
	userID string // known after the first sign-in
	token  string // an API token, once made
	erased bool
	assets []string
}

// browser is one browser with its cookies; user is who is signed in.
type browser struct {
	name string
	jar  map[string]string
	user *actor
	gpc  bool
}

// signIn is a sign-in on a browser that had a visitor id.
type signIn struct {
	step   int
	vid    string
	person *actor
}

// sentEvent is what the history knows of an event it sent.
type sentEvent struct {
	step   int
	signed *actor // the person signed in (session or token), if any
	// session is the tracker's session id of a page view: the visit
	// (a row of the warehouse's touches) the page view opens. The
	// histories give every page view a session of its own.
	session string
}

// failer is what a history reports to: a generated one to rapid, a
// written one to testing.
type failer interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

type history struct {
	env      *histEnv
	rt       failer
	ctx      context.Context
	people   []*actor
	browsers []*browser
	signIns  []signIn
	events   map[string]*sentEvent
	step     int
}

// newHistory starts a history of n people and m browsers on env.
func newHistory(env *histEnv, rt failer, n, m int) *history {
	h := &history{env: env, rt: rt, ctx: context.Background(), events: map[string]*sentEvent{}}
	run := histRuns.Add(1)
	// Each history starts an hour later: the sign-in rate limits of the
	// shared client address have refilled.
	env.clock.jump(time.Hour)
	for i := range n {
		name := string(rune('a' + i))
		h.people = append(h.people, &actor{name: name, email: fmt.Sprintf("%s.h%d.%d@example.com", name, run, time.Now().UnixNano()%1e6)})
	}
	for i := range m {
		h.browsers = append(h.browsers, &browser{name: fmt.Sprintf("B%d", i), jar: map[string]string{}})
	}
	return h
}

// generated runs a history drawn by rapid.
func generated(env *histEnv, rt *rapid.T) {
	h := newHistory(env, rt, rapid.IntRange(2, 4).Draw(rt, "people"), rapid.IntRange(1, 3).Draw(rt, "browsers"))
	rt.Repeat(map[string]func(*rapid.T){
		"":        func(*rapid.T) {},
		"browse":  h.browse,
		"consent": h.consent,
		"signIn":  h.signIn,
		"signOut": h.signOut,
		"token":   h.tokenEvents,
		"upload":  h.upload,
		"ticket":  h.ticket,
		"generate": func(rt *rapid.T) {
			h.generate(rt)
		},
		"checkIn": h.checkIn,
		"buy":     h.buy,
		"restart": h.restart,
		"badSignIn": func(rt *rapid.T) {
			b := rapid.SampledFrom(h.browsers).Draw(rt, "browser")
			h.logf("someone on %s fails to sign in", b.name)
			if s := h.jsonCall(b, "", "POST", "/v1/auth/dev", map[string]string{"email": "not an address"}, nil); s != http.StatusBadRequest {
				rt.Fatalf("sign-in with a broken address = %d, want 400", s)
			}
		},
		"wait":          h.wait,
		"export":        h.export,
		"erase":         h.erase,
		"visitorExport": h.visitorExport,
		"visitorErase":  h.visitorErase,
	})
	h.finish()
}

// finish checks the export of every person still here.
func (h *history) finish() {
	for _, p := range h.people {
		if p.userID != "" && !p.erased {
			h.checkExport(p)
		}
	}
}

func (h *history) logf(format string, args ...any) {
	h.step++
	histActions.Add(1)
	h.rt.Logf("%3d "+format, append([]any{h.step}, args...)...)
}

func (h *history) live() []*actor {
	var out []*actor
	for _, p := range h.people {
		if !p.erased {
			out = append(out, p)
		}
	}
	return out
}

// request sends one request from a browser (cookies, CSRF header) or, with
// a token, from a program.
func (h *history) request(b *browser, token, method, path, contentType string, body io.Reader) (int, []byte) {
	status, _, raw := h.send(b, token, method, path, contentType, body)
	return status, raw
}

// send is request, with the response's headers.
func (h *history) send(b *browser, token, method, path, contentType string, body io.Reader) (int, http.Header, []byte) {
	req := httptest.NewRequest(method, path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", historyUA)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if b != nil {
		for k, v := range b.jar {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		if v := b.jar[accounts.CookieCSRF]; v != "" {
			req.Header.Set(accounts.HeaderCSRF, v)
		}
		if b.gpc {
			req.Header.Set(consent.HeaderGPC, "1")
		}
	}
	resp, err := h.env.srv.app.Test(req, -1)
	if err != nil {
		h.rt.Fatalf("%s %s: %v", method, path, err)
	}
	if w := h.env.warns.take(); len(w) > 0 {
		h.rt.Fatalf("%s %s: the server logged %q", method, path, w)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.rt.Fatal(err)
	}
	if b != nil {
		for _, c := range resp.Cookies() {
			if c.Value == "" || c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Unix(1, 0).Add(time.Hour))) {
				delete(b.jar, c.Name)
			} else {
				b.jar[c.Name] = c.Value
			}
		}
	}
	return resp.StatusCode, resp.Header, raw
}

func (h *history) jsonCall(b *browser, token, method, path string, in, out any) int {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			h.rt.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	status, raw := h.request(b, token, method, path, "application/json", body)
	if out != nil && status < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			h.rt.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	if status >= 500 {
		h.rt.Fatalf("%s %s answered %d: %s", method, path, status, raw)
	}
	return status
}

// actor draws who acts: a signed-in browser, or a person's token.
func (h *history) signedInBrowser(rt *rapid.T) *browser {
	var in []*browser
	for _, b := range h.browsers {
		if b.user != nil {
			in = append(in, b)
		}
	}
	if len(in) == 0 {
		return nil
	}
	return rapid.SampledFrom(in).Draw(rt, "signed-in browser")
}

func (h *history) browse(rt *rapid.T) {
	b := rapid.SampledFrom(h.browsers).Draw(rt, "browser")
	n := rapid.IntRange(1, 4).Draw(rt, "pages")
	types := []string{"page_view", "page_view", "feature_interaction", "pricing_view", "error"}
	pages := make([][2]string, n)
	for i := range pages {
		pages[i] = [2]string{rapid.SampledFrom(types).Draw(rt, "type"), rapid.SampledFrom([]string{"home", "pricing", "gallery", "create"}).Draw(rt, "page")}
	}
	h.browseOn(b, pages...)
}

// browseOn sends page events (type and page) from a browser.
func (h *history) browseOn(b *browser, pages ...[2]string) {
	n := len(pages)
	var batch []map[string]any
	var ids []string
	for _, pg := range pages {
		id := newEventID()
		ids = append(ids, id)
		batch = append(batch, map[string]any{
			"event_id": id, "type": pg[0],
			"url":          "https://app.example.test/" + pg[1] + "/e/" + id + "?utm_source=news&utm_medium=email&utm_campaign=winter",
			"landing_page": "https://app.example.test/?utm_source=news&utm_medium=email&utm_campaign=winter",
			"referrer":     "https://news.example.org/article",
			"session_id":   "s" + id[:8],
		})
	}
	who := "signed out"
	if b.user != nil {
		who = "as " + b.user.name
	}
	h.logf("%s browses %d pages %s", b.name, n, who)
	status := h.jsonCall(b, "", "POST", "/v1/events", batch, nil)
	if status != http.StatusAccepted {
		h.rt.Fatalf("POST /v1/events = %d", status)
	}
	for i, id := range ids {
		ev := &sentEvent{step: h.step, signed: b.user}
		if pages[i][0] == "page_view" {
			ev.session = batch[i]["session_id"].(string)
		}
		h.events[id] = ev
	}
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (h *history) consent(rt *rapid.T) {
	b := rapid.SampledFrom(h.browsers).Draw(rt, "browser")
	h.choose(b, rapid.SampledFrom([]string{"accept all", "reject all", "analytics only", "withdraw", "gpc on"}).Draw(rt, "choice"))
}

// choose makes a consent choice on a browser.
func (h *history) choose(b *browser, choice string) {
	rt := h.rt
	in := consent.Choice{PolicyVersion: h.env.srv.cfg.ConsentPolicyVersion, BannerVersion: h.env.srv.cfg.ConsentBannerVersion}
	switch choice {
	case "accept all":
		in.Method = consent.MethodBannerAccept
		in.Purposes = map[string]bool{"functional": true, "analytics": true, "marketing": true}
	case "reject all":
		in.Method = consent.MethodBannerReject
		in.Purposes = map[string]bool{"functional": false, "analytics": false, "marketing": false}
	case "analytics only":
		in.Method = consent.MethodBannerSave
		in.Purposes = map[string]bool{"functional": true, "analytics": true, "marketing": false}
	case "withdraw":
		in.Method = consent.MethodPreferences
		in.Purposes = map[string]bool{"functional": false, "analytics": false, "marketing": false}
	case "gpc on":
		b.gpc = true
		h.logf("%s turns GPC on and loads the banner", b.name)
		if s := h.jsonCall(b, "", "GET", "/v1/consent", nil, nil); s != 200 {
			rt.Fatalf("GET /v1/consent = %d", s)
		}
		return
	}
	h.logf("%s chooses %s", b.name, choice)
	if s := h.jsonCall(b, "", "PUT", "/v1/consent", in, nil); s != 200 {
		rt.Fatalf("PUT /v1/consent = %d", s)
	}
}

func (h *history) signIn(rt *rapid.T) {
	live := h.live()
	if len(live) == 0 {
		return
	}
	b := rapid.SampledFrom(h.browsers).Draw(rt, "browser")
	h.signInOn(b, rapid.SampledFrom(live).Draw(rt, "person"))
}

// signInOn signs p in on b with the development sign-in.
func (h *history) signInOn(b *browser, p *actor) {
	rt := h.rt
	h.logf("%s signs in on %s", p.name, b.name)
	vid := b.jar[consent.DefaultCookieName]
	if s := h.jsonCall(b, "", "POST", "/v1/auth/dev", map[string]string{"email": p.email}, nil); s != 200 && s != 201 {
		rt.Fatalf("dev sign-in = %d", s)
	}
	var me accounts.MeView
	if s := h.jsonCall(b, "", "GET", "/v1/me", nil, &me); s != 200 {
		rt.Fatalf("GET /v1/me after sign-in = %d", s)
	}
	if p.userID != "" && p.userID != me.ID {
		rt.Fatalf("%s signed in as account %s, was %s", p.name, me.ID, p.userID)
	}
	p.userID = me.ID
	b.user = p
	if vid != "" {
		h.signIns = append(h.signIns, signIn{step: h.step, vid: vid, person: p})
	}
}

func (h *history) signOut(rt *rapid.T) {
	if b := h.signedInBrowser(rt); b != nil {
		h.signOutOf(b)
	}
}

// signOutOf signs the browser's person out.
func (h *history) signOutOf(b *browser) {
	rt := h.rt
	h.logf("%s signs out of %s", b.user.name, b.name)
	if s := h.jsonCall(b, "", "POST", "/v1/auth/logout", nil, nil); s >= 300 {
		rt.Fatalf("logout = %d", s)
	}
	b.user = nil
	delete(b.jar, accounts.CookieSession)
}

// tokenEvents sends events from a program of the person: a bearer token,
// no browser, no visitor id.
func (h *history) tokenEvents(rt *rapid.T) {
	var known []*actor
	for _, p := range h.live() {
		if p.userID != "" {
			known = append(known, p)
		}
	}
	if len(known) == 0 {
		return
	}
	p := rapid.SampledFrom(known).Draw(rt, "person")
	if p.token == "" {
		tok, err := h.env.srv.wired.accounts.CreateToken(h.ctx, p.email, authz.RoleUser)
		if err != nil {
			rt.Fatal(err)
		}
		p.token = tok
	}
	h.logf("%s's program sends a signup event with a token", p.name)
	id := newEventID()
	if s := h.jsonCall(nil, p.token, "POST", "/v1/events", map[string]any{"event_id": id, "type": "signup", "url": "https://app.example.test/welcome/e/" + id}, nil); s != http.StatusAccepted {
		rt.Fatalf("token POST /v1/events = %d", s)
	}
	h.events[id] = &sentEvent{step: h.step, signed: p}
}

func (h *history) upload(rt *rapid.T) {
	if b := h.signedInBrowser(rt); b != nil {
		h.uploadOn(b)
	}
}

// uploadOn uploads an image as the browser's person.
func (h *history) uploadOn(b *browser) {
	rt := h.rt
	h.logf("%s uploads an image on %s", b.user.name, b.name)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, err := w.CreateFormFile("file", "photo.png")
	if err != nil {
		rt.Fatal(err)
	}
	_, _ = part.Write(historyPNG)
	_ = w.WriteField("purpose", "reference")
	_ = w.Close()
	status, raw := h.request(b, "", "POST", "/v1/assets", w.FormDataContentType(), &body)
	if status != 201 && status != 200 {
		rt.Fatalf("upload = %d %s", status, raw)
	}
	var a struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &a); err != nil || a.ID == "" {
		rt.Fatalf("upload answer %s: %v", raw, err)
	}
	b.user.assets = append(b.user.assets, a.ID)
}

func (h *history) ticket(rt *rapid.T) {
	if b := h.signedInBrowser(rt); b != nil {
		h.ticketOn(b, rapid.Bool().Draw(rt, "attach"), rapid.Bool().Draw(rt, "reply"))
	}
}

// ticketOn opens a ticket as the browser's person, with their last upload
// attached and a reply when asked.
func (h *history) ticketOn(b *browser, attach bool, reply ...bool) {
	rt := h.rt
	p := b.user
	req := support.CreateTicketRequest{Subject: "Render stuck", Message: "My video has been queued for an hour."}
	if len(p.assets) > 0 && attach {
		req.Attachments = []string{p.assets[len(p.assets)-1]}
	}
	h.logf("%s opens a ticket on %s (%d attachments)", p.name, b.name, len(req.Attachments))
	var tk support.TicketView
	if s := h.jsonCall(b, "", "POST", "/v1/support/tickets", req, &tk); s != 201 && s != 200 {
		rt.Fatalf("create ticket = %d", s)
	}
	if len(reply) > 0 && reply[0] {
		h.logf("%s replies on the ticket", p.name)
		if s := h.jsonCall(b, "", "POST", "/v1/support/tickets/"+tk.ID+"/messages", support.MessageRequest{Body: "Any news?"}, nil); s >= 300 {
			rt.Fatalf("reply = %d", s)
		}
	}
}

func (h *history) generate(rt *rapid.T) {
	b := h.signedInBrowser(rt)
	if b == nil {
		return
	}
	p := b.user
	if err := h.env.srv.wired.billing.Ledger().Grant(h.ctx, p.userID, 5, "welcome", fmt.Sprintf("hist-%s-%d", p.userID, h.step)); err != nil {
		rt.Fatal(err)
	}
	req := generation.CreateRequest{Prompt: "a lighthouse at dusk", Model: "local-image"}
	if len(p.assets) > 0 && rapid.Bool().Draw(rt, "with reference") {
		req.References = []generation.Reference{{Kind: "image", AssetID: p.assets[0]}}
	}
	h.logf("%s starts a generation on %s (%d references)", p.name, b.name, len(req.References))
	if s := h.jsonCall(b, "", "POST", "/v1/generations", req, nil); s != 201 && s != 202 {
		rt.Fatalf("create generation = %d", s)
	}
}

// restart restarts the server, publishing a new privacy policy version
// half of the time: every visitor is asked again.
func (h *history) restart(rt *rapid.T) {
	v := h.env.srv.cfg.ConsentPolicyVersion
	if rapid.Bool().Draw(rt, "new policy") {
		n, _ := strconv.Atoi(v)
		v = strconv.Itoa(n + 1)
	}
	h.logf("the server restarts with privacy policy version %s", v)
	h.env.restart(h.rt, v)
}

func (h *history) buy(rt *rapid.T) {
	if b := h.signedInBrowser(rt); b != nil {
		h.buyOn(b, rapid.SampledFrom([]string{"pack", "pro"}).Draw(rt, "product"), rapid.Bool().Draw(rt, "refunded"))
	}
}

// buyOn buys a product as the browser's person: checkout, then Stripe's
// signed webhooks for the payment (and the first invoice of a
// subscription), and for a one-time purchase a full refund when asked.
func (h *history) buyOn(b *browser, product string, refund bool) {
	rt := h.rt
	p := b.user
	h.logf("%s buys %s on %s (refunded: %v)", p.name, product, b.name, refund)
	var co struct {
		OrderID string `json:"order_id"`
	}
	if s := h.jsonCall(b, "", "POST", "/v1/billing/checkout", map[string]string{"product_id": product, "provider": "stripe"}, &co); s != 200 {
		rt.Fatalf("checkout = %d", s)
	}
	now := h.env.clock.Now()
	obj := map[string]any{
		"id": "cs_test_" + co.OrderID, "object": "checkout.session", "mode": "payment",
		"client_reference_id": co.OrderID, "customer": "cus_" + p.userID,
		"payment_status": "paid", "status": "complete", "amount_total": 500, "currency": "eur",
		"metadata":         map[string]string{"order_id": co.OrderID, "user_id": p.userID},
		"customer_details": map[string]any{"email": p.email, "name": "History Buyer"},
		"payment_intent":   "pi_" + co.OrderID,
	}
	if product == "pro" {
		delete(obj, "payment_intent")
		obj["mode"], obj["subscription"], obj["invoice"] = "subscription", "sub_"+co.OrderID, "in_"+co.OrderID
	}
	h.webhook("checkout.session.completed", now, obj)
	defer h.wantOrder(co.OrderID, product == "pack" && refund)
	if product == "pro" {
		h.webhook("invoice.paid", now, map[string]any{
			"id": "in_" + co.OrderID, "object": "invoice", "customer": "cus_" + p.userID, "subscription": "sub_" + co.OrderID,
			"billing_reason": "subscription_create", "paid": true, "status": "paid",
			"amount_paid": 1500, "currency": "eur", "charge": "ch_" + co.OrderID,
			"lines": map[string]any{"data": []any{map[string]any{
				"price":  map[string]any{"id": "price_pro"},
				"period": map[string]any{"start": now.Unix(), "end": now.Add(30 * 24 * time.Hour).Unix()},
			}}},
		})
		return
	}
	if refund {
		h.webhook("charge.refunded", now, map[string]any{
			"id": "ch_" + co.OrderID, "object": "charge", "amount": 500, "amount_refunded": 500,
			"currency": "eur", "payment_intent": "pi_" + co.OrderID, "customer": "cus_" + p.userID, "refunded": true,
		})
	}
}

// wantOrder reads an order from the store: paid, and refunded when asked.
func (h *history) wantOrder(id string, refunded bool) {
	var o struct {
		Status       string `bun:"status"`
		RefundStatus string `bun:"refund_status"`
	}
	if err := h.env.srv.stores.sql.NewSelect().Table("billing_orders").Column("status", "refund_status").Where("id = ?", id).Scan(h.ctx, &o); err != nil {
		h.rt.Fatalf("read order: %v", err)
	}
	want := "none"
	if refunded {
		want = "refunded"
	}
	if o.Status != "paid" || o.RefundStatus != want {
		h.rt.Fatalf("order after the webhooks: %+v, want paid and refund %s", o, want)
	}
}

// webhook delivers a Stripe event, signed as Stripe signs it.
func (h *history) webhook(typ string, created time.Time, obj map[string]any) {
	payload, err := json.Marshal(map[string]any{
		"id": "evt_" + newEventID(), "object": "event", "type": typ, "api_version": "2023-10-16",
		"created": created.Unix(), "livemode": false, "data": map[string]any{"object": obj},
	})
	if err != nil {
		h.rt.Fatal(err)
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: historyWebhookSecret, Timestamp: time.Now()})
	req := httptest.NewRequest("POST", "/v1/billing/webhooks/stripe", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", signed.Header)
	resp, err := h.env.srv.app.Test(req, -1)
	if err != nil {
		h.rt.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		h.rt.Fatalf("webhook %s = %d %s", typ, resp.StatusCode, raw)
	}
	if w := h.env.warns.take(); len(w) > 0 {
		h.rt.Fatalf("webhook %s: the server logged %q", typ, w)
	}
}

func (h *history) checkIn(rt *rapid.T) {
	b := h.signedInBrowser(rt)
	if b == nil {
		return
	}
	h.logf("%s checks in on %s", b.user.name, b.name)
	if s := h.jsonCall(b, "", "POST", "/v1/rewards/checkin", nil, nil); s >= 300 && s != http.StatusConflict {
		rt.Fatalf("check-in = %d", s)
	}
}

// wait lets time pass: minutes, or months (sessions and consent lapse).
func (h *history) wait(rt *rapid.T) {
	if rapid.IntRange(0, 5).Draw(rt, "long") == 0 {
		h.logf("fourteen months pass")
		h.env.clock.jump(14 * 30 * 24 * time.Hour)
		// Every session has ended; the browsers keep their cookies.
		for _, b := range h.browsers {
			b.user = nil
		}
		return
	}
	h.logf("ten minutes pass")
	h.env.clock.jump(10 * time.Minute)
}

// owner applies the identity rule to a stored event: the account it was
// sent under, or for an anonymous event of a browser the person who next
// signed in on that browser, or nobody.
func (h *history) owner(id, userID, visitorID string) *actor {
	if userID != "" {
		for _, p := range h.people {
			if p.userID == userID {
				return p
			}
		}
		return nil
	}
	ev := h.events[id]
	if visitorID == "" || ev == nil {
		return nil
	}
	for _, s := range h.signIns {
		if s.vid == visitorID && s.step > ev.step {
			return s.person
		}
	}
	return nil
}

// storedEvents reads this history's events from the warehouse directly,
// after the drain has delivered all accepted events.
func (h *history) storedEvents() map[string]*actor {
	ctx, cancel := context.WithTimeout(h.ctx, 2*time.Minute)
	defer cancel()
	if err := h.env.srv.wired.events.Flush(ctx); err != nil {
		h.rt.Fatal(err)
	}
	ids := make([]string, 0, len(h.events))
	for id := range h.events {
		ids = append(ids, id)
	}
	out := map[string]*actor{}
	if len(ids) == 0 {
		return out
	}
	var rows []struct {
		ID        string  `ch:"event_id"`
		UserID    *string `ch:"user_id"`
		VisitorID string  `ch:"visitor_id"`
	}
	if err := h.env.srv.stores.warehouse.Select(ctx, &rows, "SELECT DISTINCT event_id, user_id, visitor_id FROM events WHERE has({ids:Array(String)}, event_id)",
		warehouse.Named("ids", ids)); err != nil {
		h.rt.Fatal(err)
	}
	for _, r := range rows {
		uid := ""
		if r.UserID != nil {
			uid = *r.UserID
		}
		ev := h.events[r.ID]
		if uid != "" && (ev.signed == nil || ev.signed.userID != uid) {
			h.rt.Fatalf("event %s stored under account %s, sent by %v", r.ID, uid, ev.signed)
		}
		out[r.ID] = h.owner(r.ID, uid, r.VisitorID)
	}
	return out
}

func (h *history) eventsOf(p *actor, stored map[string]*actor) []string {
	var out []string
	for id, o := range stored {
		if o == p {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// file files a request for p: as p from a browser with a recent sign-in
// when there is one, otherwise as the operator.
func (h *history) file(p *actor, typ string) privacy.Request {
	for _, b := range h.browsers {
		if b.user == p {
			var v struct {
				ID string `json:"id"`
			}
			status := h.jsonCall(b, "", "POST", "/v1/privacy/requests", map[string]string{"type": typ}, &v)
			if status == 201 || status == 200 || status == 202 {
				var req privacy.Request
				if err := h.env.srv.stores.sql.NewSelect().Model(&req).Where("id = ?", v.ID).Scan(h.ctx); err != nil {
					h.rt.Fatalf("read request %s: %v", v.ID, err)
				}
				return req
			}
			// An erasure by the subject needs a recent sign-in; the
			// operator files it instead.
			if status != http.StatusForbidden && status != http.StatusUnauthorized {
				h.rt.Fatalf("POST /v1/privacy/requests %s = %d", typ, status)
			}
		}
	}
	req, err := h.env.srv.wired.privacy.FileForOperator(h.ctx, typ, p.email, "the subject asked by email")
	if err != nil {
		h.rt.Fatal(err)
	}
	return req
}

func (h *history) process(id string) privacy.Request {
	req, err := h.env.srv.wired.privacy.Process(h.ctx, id)
	if err != nil {
		h.rt.Fatalf("process %s: %v", id, err)
	}
	if req.Status != privacy.StatusCompleted {
		h.rt.Fatalf("request %s ended %s (%s)", id, req.Status, req.Failure)
	}
	return req
}

func (h *history) knownPerson(rt *rapid.T) *actor {
	var known []*actor
	for _, p := range h.live() {
		if p.userID != "" {
			known = append(known, p)
		}
	}
	if len(known) == 0 {
		return nil
	}
	return rapid.SampledFrom(known).Draw(rt, "person")
}

func (h *history) export(rt *rapid.T) {
	p := h.knownPerson(rt)
	if p == nil {
		return
	}
	h.logf("%s downloads their data", p.name)
	h.checkExport(p)
}

// exportPackage is a read package: its files by name.
type exportPackage struct {
	manifest privacy.Manifest
	files    map[string][]byte
}

func (h *history) exportOf(p *actor) exportPackage {
	return h.packageOf(h.process(h.file(p, privacy.TypeAccess).ID))
}

// packageOf reads the package of a completed access request.
func (h *history) packageOf(req privacy.Request) exportPackage {
	f, err := h.env.srv.wired.privacy.OpenPackage(req)
	if err != nil {
		h.rt.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		h.rt.Fatal(err)
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		h.rt.Fatal(err)
	}
	pkg := exportPackage{files: map[string][]byte{}}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			h.rt.Fatal(err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			h.rt.Fatal(err)
		}
		pkg.files[zf.Name] = raw
	}
	if err := json.Unmarshal(pkg.files["manifest.json"], &pkg.manifest); err != nil {
		h.rt.Fatal(err)
	}
	return pkg
}

// checkExport exports p's data and compares it with the stores.
func (h *history) checkExport(p *actor) {
	// The export goes first: events acknowledged a moment ago must be in
	// it without anyone waiting for them.
	pkg := h.exportOf(p)
	stored := h.storedEvents()
	want := h.eventsOf(p, stored)
	got := pkg.warehouseValues(h.rt, "events", "event_id")
	if !slices.Equal(got, want) {
		h.rt.Fatalf("%s's export holds events %v\nthe identity rule gives them %v\n(owners: %s)", p.name, got, want, h.describe(stored, got, want))
	}
	// The visits kept for attribution follow their page views: every
	// visit the person opened, anonymous ones before a sign-in included,
	// and none of whoever else used the browser.
	visits := []string{}
	for _, id := range want {
		if s := h.events[id].session; s != "" {
			visits = append(visits, s)
		}
	}
	sort.Strings(visits)
	if got := pkg.warehouseValues(h.rt, "touches", "session_id"); !slices.Equal(got, visits) {
		h.rt.Fatalf("%s's export holds visits %v\nthe identity rule gives them %v", p.name, got, visits)
	}
	// The conversions kept for attribution are theirs.
	for _, id := range pkg.warehouseValues(h.rt, "conversions", "event_id") {
		if _, ok := slices.BinarySearch(want, id); !ok {
			h.rt.Fatalf("%s's export holds conversion %s, which the identity rule gives %v", p.name, id, stored[id])
		}
	}
	for _, f := range pkg.manifest.Sources {
		if f.Store != "sql" || f.Format != "json" {
			continue
		}
		var rows []map[string]any
		if err := json.Unmarshal(pkg.files[f.File], &rows); err != nil {
			h.rt.Fatalf("%s: %v", f.File, err)
		}
		for _, r := range rows {
			if uid, ok := r["user_id"].(string); ok && uid != "" && uid != p.userID {
				h.rt.Fatalf("%s's export holds a row of %s naming account %s", p.name, f.Table, uid)
			}
			if vid, ok := r["visitor_id"].(string); ok && vid != "" && r["user_id"] == nil && !h.browsedOn(p, vid) {
				h.rt.Fatalf("%s's export holds an anonymous row of %s of a browser they never signed in on", p.name, f.Table)
			}
		}
		// Every row naming the account is there; the request being
		// exported keeps adding to its own trail meanwhile.
		if strings.HasPrefix(f.Table, "privacy_") {
			continue
		}
		if n := h.countSQL(f.Table, "user_id", p.userID); n >= 0 {
			var named int64
			for _, r := range rows {
				if r["user_id"] == p.userID {
					named++
				}
			}
			if named != n {
				h.rt.Fatalf("%s's export has %d rows of %s under the account, the store %d", p.name, named, f.Table, n)
			}
		}
	}
	for _, id := range p.assets {
		found := false
		for name := range pkg.files {
			found = found || strings.Contains(name, id)
		}
		if !found {
			h.rt.Fatalf("%s's export lacks the file of upload %s", p.name, id)
		}
	}
}

func (h *history) browsedOn(p *actor, vid string) bool {
	for _, s := range h.signIns {
		if s.vid == vid && s.person == p {
			return true
		}
	}
	return false
}

func (h *history) describe(stored map[string]*actor, got, want []string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, id := range append(append([]string{}, got...), want...) {
		if seen[id] {
			continue
		}
		seen[id] = true
		o := "nobody"
		if p := stored[id]; p != nil {
			o = p.name
		}
		step := -1
		if ev := h.events[id]; ev != nil {
			step = ev.step
		}
		fmt.Fprintf(&b, "%.8s@%d→%s ", id, step, o)
	}
	return b.String()
}

// warehouseValues reads one column of the package's rows of a warehouse
// table, sorted, each value once: the warehouse may hold a resent event
// twice until it merges, the package may too, and the history counts each
// event once. A row without the column fails the history.
func (pkg exportPackage) warehouseValues(rt failer, table, column string) []string {
	out := []string{}
	for _, f := range pkg.manifest.Sources {
		if f.Store != "warehouse" || f.Table != table || f.Format != "jsonl" {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(pkg.files[f.File]))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var row map[string]any
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				rt.Fatalf("%s: %v", f.File, err)
			}
			v, _ := row[column].(string)
			if v == "" {
				rt.Fatalf("%s: a row without its %s", f.File, column)
			}
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return compactStrings(out)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// countSQL counts a table's rows whose column holds value, read directly;
// -1 when the table has no such column.
func (h *history) countSQL(table, column, value string) int64 {
	cols, err := sqlstore.Columns(h.ctx, h.env.srv.stores.sql)
	if err != nil {
		h.rt.Fatal(err)
	}
	for _, c := range cols {
		if c.Table == table && c.Name == column {
			var n int64
			if err := h.env.srv.stores.sql.NewSelect().Table(table).Where("? = ?", bun.Ident(column), value).ColumnExpr("count(*)").Scan(h.ctx, &n); err != nil {
				h.rt.Fatal(err)
			}
			return n
		}
	}
	return -1
}

// digest is what stays the same in a person's export when nothing of
// theirs changed: every data file but the request's own trail. The rows of
// a warehouse table come in no particular order (the engine reads parts in
// parallel, and a delete rewrites parts), so line files compare as sorted
// lines.
func (pkg exportPackage) digest() map[string]string {
	out := map[string]string{}
	for name, raw := range pkg.files {
		if !strings.HasPrefix(name, "data/") || strings.Contains(name, "/privacy/") {
			continue
		}
		if strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".csv") {
			lines := strings.Split(string(raw), "\n")
			sort.Strings(lines)
			raw = []byte(strings.Join(lines, "\n"))
		}
		out[name] = strconv.Itoa(len(raw)) + ":" + string(raw)
	}
	return out
}

func (h *history) erase(rt *rapid.T) {
	if p := h.knownPerson(rt); p != nil {
		h.eraseChecked(p, rapid.IntRange(0, 12).Draw(rt, "cut after step"))
	}
}

// eraseChecked erases p, cut short after `cut` steps and resumed when cut
// is not 0, checks the erasure against the stores and returns its
// certificate.
func (h *history) eraseChecked(p *actor, cut int) privacy.Certificate {
	rt := h.rt
	h.logf("%s asks to be erased (cut short after step %d, 0 = not)", p.name, cut)

	stored := h.storedEvents()
	mine := h.eventsOf(p, stored)
	others := map[*actor]map[string]string{}
	for _, o := range h.live() {
		if o != p && o.userID != "" {
			others[o] = h.exportOf(o).digest()
		}
	}
	req := h.file(p, privacy.TypeErasure)
	if cut > 0 {
		// The process dies after `cut` steps: the context ends there, and
		// a later run resumes.
		ctx, cancel := context.WithCancel(h.ctx)
		ctx = privacy.WithProgress(ctx, func(_ string, done, _ int) {
			if done >= cut {
				cancel()
			}
		})
		_, _ = h.env.srv.wired.privacy.Process(ctx, req.ID)
		cancel()
	}
	req = h.process(req.ID)
	var cert privacy.Certificate
	if err := json.Unmarshal(req.CertificateJSON(), &cert); err != nil {
		rt.Fatal(err)
	}
	if !cert.Verification.Passed {
		rt.Fatalf("%s's erasure certificate failed verification: %+v", p.name, cert.Verification.Checks)
	}
	for _, tr := range cert.Tables {
		if tr.Store == "warehouse" && tr.Table == "events" {
			// Resent events may be stored twice until a merge; the census
			// counts rows, the history counts events.
			if tr.Before < int64(len(mine)) {
				rt.Fatalf("certificate counts %d events of %s before, the stores %d", tr.Before, p.name, len(mine))
			}
		}
		if tr.Store == "sql" {
			if n := h.countSQL(tr.Table, "user_id", p.userID); n > 0 && tr.Mode != "keep" {
				rt.Fatalf("%d rows of %s still name %s after the erasure", n, tr.Table, p.name)
			}
		}
	}
	p.erased = true
	for _, b := range h.browsers {
		if b.user == p {
			b.user = nil
			delete(b.jar, accounts.CookieSession)
		}
	}
	// Nothing of the person is left but what the certificate keeps.
	after := h.storedEvents()
	for _, id := range mine {
		if _, ok := after[id]; ok {
			rt.Fatalf("event %s of %s survived the erasure", id, p.name)
		}
	}
	for id, o := range stored {
		if o != p {
			if _, ok := after[id]; !ok {
				rt.Fatalf("event %s of %v went with %s's erasure", id, o, p.name)
			}
		}
	}
	h.checkNothingLeft(p, cert)
	// No warehouse table keeps a row under the account: events, the
	// browser sign-ins, and the visits and conversions kept from events
	// for attribution. The tables are found in the engine's own catalog.
	var tables []struct {
		Table string `ch:"table"`
	}
	if err := h.env.srv.stores.warehouse.Select(h.ctx, &tables, `SELECT table FROM system.columns
		WHERE database = currentDatabase() AND name = 'user_id'
		  AND table IN (SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT LIKE '%View')`); err != nil {
		rt.Fatal(err)
	}
	if len(tables) < 4 {
		rt.Fatalf("warehouse tables with a user_id: %v, want events, visitor_links, touches and conversions at least", tables)
	}
	for _, tb := range tables {
		var left []struct {
			N uint64 `ch:"n"`
		}
		if err := h.env.srv.stores.warehouse.Select(h.ctx, &left, "SELECT count() AS n FROM "+tb.Table+" WHERE user_id = {u:String}", warehouse.Named("u", p.userID)); err != nil {
			rt.Fatal(err)
		}
		if left[0].N != 0 {
			rt.Fatalf("%d rows of %s are left in the warehouse's %s", left[0].N, p.name, tb.Table)
		}
	}
	for _, id := range p.assets {
		_ = filepath.WalkDir(h.env.dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(path, id) {
				rt.Fatalf("file %s of %s's upload survived the erasure", path, p.name)
			}
			return nil
		})
	}
	for o, before := range others {
		if got := h.exportOf(o).digest(); !reflect.DeepEqual(got, before) {
			rt.Fatalf("%s's export changed with %s's erasure:\n%s", o.name, p.name, diffKeys(before, got))
		}
	}
	// A second erasure finds nothing more to do.
	again := h.process(h.file(p, privacy.TypeErasure).ID)
	var cert2 privacy.Certificate
	if err := json.Unmarshal(again.CertificateJSON(), &cert2); err != nil {
		rt.Fatal(err)
	}
	if !cert2.Verification.Passed {
		rt.Fatalf("second erasure of %s failed verification", p.name)
	}
	if n := len(h.storedEvents()); n != len(after) {
		rt.Fatalf("the second erasure of %s removed events: %d, then %d", p.name, len(after), n)
	}
	return cert
}

// checkNothingLeft scans every text column of every SQL table for the
// person's account id and email address: each hit must be in a table the
// certificate keeps, with a reason and an end.
func (h *history) checkNothingLeft(p *actor, cert privacy.Certificate) {
	kept := map[string]bool{}
	for _, k := range cert.Kept {
		if k.Reason == "" || k.Until == "" {
			h.rt.Fatalf("kept item %s.%s (%s) has no reason or end", k.Table, strings.Join(k.Columns, ","), k.Category)
		}
		kept[k.Table] = true
	}
	cols, err := sqlstore.Columns(h.ctx, h.env.srv.stores.sql)
	if err != nil {
		h.rt.Fatal(err)
	}
	for _, c := range cols {
		if c.Family != sqlstore.FamilyText {
			continue
		}
		if c.Table == "privacy_requests" || c.Table == "privacy_request_events" || c.Table == "privacy_erasure_steps" || c.Table == "schema_migrations" {
			// The requests are the record of the erasure itself.
			continue
		}
		for _, v := range []string{p.userID, p.email} {
			var n int64
			if err := h.env.srv.stores.sql.NewSelect().Table(c.Table).Where("? = ?", bun.Ident(c.Name), v).ColumnExpr("count(*)").Scan(h.ctx, &n); err != nil {
				h.rt.Fatal(err)
			}
			if n > 0 && !kept[c.Table] {
				h.rt.Fatalf("%s.%s still holds %s's identifier in %d rows, and the certificate keeps nothing there", c.Table, c.Name, p.name, n)
			}
		}
	}
}

func diffKeys(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, "changed or gone: "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "new: "+k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// historyPNG is a small real PNG image for uploads.
var historyPNG = func() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		img.Set(x, x, color.RGBA{200, 40, 40, 255})
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}()

// TestReportedHistories replays the histories people reported broken, on
// both SQL stores, with the same checks as the generated ones.
func TestReportedHistories(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := newHistEnv(t, dialect)
			t.Run("erasure after choosing cookies while signed in", func(t *testing.T) {
				h := newHistory(env, t, 1, 1)
				a, b := h.people[0], h.browsers[0]
				h.signInOn(b, a)
				h.choose(b, "accept all")
				h.browseOn(b, [2]string{"page_view", "gallery"}, [2]string{"pricing_view", "pricing"})
				h.ticketOn(b, false)
				h.uploadOn(b)
				h.checkExport(a)
				h.eraseChecked(a, 0)
			})
			t.Run("a buyer with a refund and a subscription is erased", func(t *testing.T) {
				h := newHistory(env, t, 2, 1)
				a, b := h.people[0], h.browsers[0]
				h.choose(b, "accept all")
				h.signInOn(b, a)
				h.buyOn(b, "pack", true)
				h.buyOn(b, "pack", false)
				h.buyOn(b, "pro", false)
				h.ticketOn(b, false)
				h.checkExport(a)
				cert := h.eraseChecked(a, 5)
				kept := map[string]bool{}
				for _, k := range cert.Kept {
					kept[k.Table] = true
				}
				if !kept["billing_invoices"] || !kept["billing_orders"] {
					t.Fatalf("the erasure kept %v; the invoices and orders are kept for tax law", kept)
				}
			})
			t.Run("erased right after browsing", func(t *testing.T) {
				// The events are acknowledged and still on their way to the
				// warehouse when the erasure starts: it must wait for them,
				// or they would land after it.
				h := newHistory(env, t, 1, 1)
				a, b := h.people[0], h.browsers[0]
				h.choose(b, "accept all")
				h.signInOn(b, a)
				for range 3 {
					h.browseOn(b, [2]string{"page_view", "gallery"}, [2]string{"pricing_view", "pricing"})
				}
				req, err := env.srv.wired.privacy.FileForOperator(h.ctx, privacy.TypeErasure, a.email, "the subject wrote to us")
				if err != nil {
					t.Fatal(err)
				}
				h.process(req.ID)
				for id, o := range h.storedEvents() {
					if o == a {
						t.Fatalf("event %s of the erased person was stored after the erasure", id)
					}
				}
			})
			t.Run("two people one after another on one computer", func(t *testing.T) {
				h := newHistory(env, t, 2, 1)
				a, c, b := h.people[0], h.people[1], h.browsers[0]
				h.choose(b, "accept all")
				h.browseOn(b, [2]string{"page_view", "home"})
				h.signInOn(b, a)
				h.browseOn(b, [2]string{"page_view", "create"})
				h.signOutOf(b)
				h.signInOn(b, c)
				h.browseOn(b, [2]string{"page_view", "gallery"}, [2]string{"pricing_view", "pricing"})
				h.checkExport(a)
				h.checkExport(c)
				h.eraseChecked(a, 3)
				h.finish()
			})
			t.Run("a visitor on a shared computer downloads and erases what came after the last sign-in", func(t *testing.T) {
				h := newHistory(env, t, 1, 1)
				a, b := h.people[0], h.browsers[0]
				h.choose(b, "accept all")
				h.browseOn(b, [2]string{"page_view", "home"})
				h.signInOn(b, a)
				h.browseOn(b, [2]string{"page_view", "create"})
				h.signOutOf(b)
				h.browseOn(b, [2]string{"page_view", "gallery"}, [2]string{"pricing_view", "pricing"})
				h.visitorExportOn(b)
				h.visitorEraseOn(b)
				h.choose(b, "accept all")
				h.browseOn(b, [2]string{"page_view", "home"})
				h.visitorExportOn(b)
				h.checkExport(a)
				h.finish()
			})
		})
	}
}
