package accounts_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/logging"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/testutil/testclock"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/modules/risk"
	"github.com/stewardhq/steward/policies"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

// The risk module is the abuse recorder cmd/steward wires in.
var _ accounts.AbuseRecorder = (*risk.Module)(nil)

const clientID = "steward-test.apps.googleusercontent.com"

// engine is one policy engine for the whole test binary: compiling the
// policies is the slow part of building one.
var engine = sync.OnceValues(func() (*policies.Engine, error) {
	return policies.New(context.Background(), policies.Options{})
})

// clock is the settable time source the tests hand the module.
type clock = testclock.Clock

func newClock() *clock {
	return testclock.New(time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC))
}

// syncBuffer is a log destination safe for the module's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is the module mounted the way cmd/steward mounts it, on a real
// database, with the real policy engine and the real risk module.
type env struct {
	t     *testing.T
	db    *bun.DB
	app   *fiber.App
	doc   *web.OpenAPI
	m     *accounts.Module
	clock *clock
	logs  *syncBuffer
}

// testConfig is a configuration with limits high enough not to interfere.
func testConfig() accounts.Config {
	return accounts.Config{
		CookieSecure:       true,
		SupportedLanguages: []string{"en", "de", "fr", "pt-BR"},
		RateLimit:          accounts.RateLimit{IPPerMinute: 6000, IPBurst: 1000, AccountPerMinute: 6000, AccountBurst: 1000},
	}
}

func newEnv(t *testing.T, db *bun.DB, cfg accounts.Config, tweak ...func(*accounts.Deps)) *env {
	t.Helper()
	eng, err := engine()
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	logs := &syncBuffer{}
	logger := logging.New(logs, slog.LevelDebug, "text")
	rm, err := risk.New(risk.Config{}, risk.Deps{DB: db, Logger: logger, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	deps := accounts.Deps{DB: db, Logger: logger, Guard: authz.NewGuard(eng), Abuse: rm, Now: clk.Now}
	for _, f := range tweak {
		f(&deps)
	}
	m, err := accounts.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := web.New(web.Options{Logger: logger, OpenAPI: doc})
	app.Use(m.CSRF())
	app.Use(authz.Middleware(m.Authenticator()))
	m.Mount(app, doc)
	return &env{t: t, db: db, app: app, doc: doc, m: m, clock: clk, logs: logs}
}

// browser carries cookies from one request to the next, as a browser
// would (Secure cookies included: the tests stand in for https).
type browser struct {
	e       *env
	cookies map[string]*http.Cookie
	ua      string
}

func (e *env) browser() *browser {
	return &browser{e: e, cookies: map[string]*http.Cookie{},
		ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"}
}

func (b *browser) cookie(name string) string {
	if c, ok := b.cookies[name]; ok {
		return c.Value
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	b.cookies[name] = &http.Cookie{Name: name, Value: value}
}

// response is an answer with its body read.
type response struct {
	*http.Response
	body []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("answer %d is not a JSON object: %s", r.StatusCode, r.body)
	}
	return out
}

func (r response) problem(t *testing.T) web.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, web.ContentTypeProblem) {
		t.Fatalf("answer %d has content type %q, want a problem document: %s", r.StatusCode, ct, r.body)
	}
	var p web.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// send runs req through the app, with and into the browser's cookies.
func (b *browser) send(req *http.Request) response {
	b.e.t.Helper()
	if b.ua != "" && req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", b.ua)
	}
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := b.e.app.Test(req, -1)
	if err != nil {
		b.e.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	_ = resp.Body.Close()
	for _, c := range resp.Cookies() {
		// A cookie is cleared with an expiry in the distant past.
		if c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Year() < 2000) {
			delete(b.cookies, c.Name)
			continue
		}
		b.cookies[c.Name] = c
	}
	return response{Response: resp, body: body}
}

// do sends a JSON request (body may be nil); unsafe methods carry the CSRF
// header as the web app's scripts would.
func (b *browser) do(method, path string, body any) response {
	b.e.t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			b.e.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		if tok := b.cookie(accounts.CookieCSRF); tok != "" {
			req.Header.Set(accounts.HeaderCSRF, tok)
		}
	}
	return b.send(req)
}

// bearer sends a request authenticated by an API token only.
func (e *env) bearer(token, method, path string, body any) response {
	e.t.Helper()
	b := &browser{e: e, cookies: map[string]*http.Cookie{}, ua: "steward-cli/1.0"}
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return b.send(req)
}

// devSignIn signs a new browser in by email through the dev route.
func (e *env) devSignIn(email string) *browser {
	e.t.Helper()
	b := e.browser()
	if r := b.do(http.MethodPost, "/v1/auth/dev", map[string]string{"email": email}); r.StatusCode != http.StatusOK {
		e.t.Fatalf("dev sign-in: %d %s", r.StatusCode, r.body)
	}
	return b
}

// googleServer serves a JWKS the tests control, and signs ID tokens.
type googleServer struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	public  []jwk.Key
	private map[string]*rsa.PrivateKey
	fetches atomic.Int32
}

func newGoogleServer(t *testing.T) *googleServer {
	t.Helper()
	g := &googleServer{t: t, private: map[string]*rsa.PrivateKey{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.fetches.Add(1)
		g.mu.Lock()
		set := jwk.NewSet()
		for _, k := range g.public {
			_ = set.AddKey(k)
		}
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(g.srv.Close)
	g.publish("k1")
	return g
}

// rsaKey makes a 2048-bit key, the size Google uses.
func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publish makes a key with id kid and serves its public half.
func (g *googleServer) publish(kid string) {
	g.t.Helper()
	priv := g.unpublished(kid)
	pub, err := jwk.Import(priv.Public())
	if err != nil {
		g.t.Fatal(err)
	}
	_ = pub.Set(jwk.KeyIDKey, kid)
	_ = pub.Set(jwk.AlgorithmKey, jwa.RS256())
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	g.mu.Lock()
	g.public = append(g.public, pub)
	g.mu.Unlock()
}

// unpublished makes a key with id kid that the server does not serve.
func (g *googleServer) unpublished(kid string) *rsa.PrivateKey {
	g.t.Helper()
	priv := rsaKey(g.t)
	g.mu.Lock()
	g.private[kid] = priv
	g.mu.Unlock()
	return priv
}

func (g *googleServer) config() accounts.Config {
	cfg := testConfig()
	cfg.GoogleClientID = clientID
	cfg.GoogleJWKSURL = g.srv.URL
	return cfg
}

// claims are the claims of a valid ID token at now.
func claims(now time.Time) map[string]any {
	return map[string]any{
		"iss":            "https://accounts.google.com",
		"aud":            clientID,
		"sub":            "108842159999000000001",
		"email":          "ann@example.com",
		"email_verified": true,
		"name":           "Ann Example",
		"picture":        "https://lh3.googleusercontent.com/a/ann",
		"iat":            now.Add(-time.Minute).Unix(),
		"exp":            now.Add(time.Hour).Unix(),
	}
}

// sign makes an RS256 token with the key kid names, carrying kid in its
// header, with the given claims.
func (g *googleServer) sign(kid string, c map[string]any) string {
	g.t.Helper()
	g.mu.Lock()
	priv := g.private[kid]
	g.mu.Unlock()
	return g.signWith(kid, priv, c)
}

func (g *googleServer) signWith(kid string, priv *rsa.PrivateKey, c map[string]any) string {
	g.t.Helper()
	key, err := jwk.Import(priv)
	if err != nil {
		g.t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, kid)
	tok := jwt.New()
	for k, v := range c {
		if err := tok.Set(k, v); err != nil {
			g.t.Fatalf("claim %s: %v", k, err)
		}
	}
	raw, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256(), key))
	if err != nil {
		g.t.Fatal(err)
	}
	return string(raw)
}

// postForm sends the redirect flow's form post.
func (b *browser) postForm(path string, form url.Values) response {
	b.e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.send(req)
}

// googleSignIn posts credential the way the redirect flow does, with a
// matching g_csrf_token cookie and field.
func (b *browser) googleSignIn(credential string) response {
	b.e.t.Helper()
	b.setCookie(accounts.CookieGoogleCSRF, "csrf-abc123")
	return b.postForm("/v1/auth/google", url.Values{"credential": {credential}, "g_csrf_token": {"csrf-abc123"}})
}

// count returns the number of rows of a table matching where.
func count(t *testing.T, db bun.IDB, table, where string, args ...any) int {
	t.Helper()
	q := db.NewSelect().TableExpr(table)
	if where != "" {
		q = q.Where(where, args...)
	}
	n, err := q.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func decodeJSON(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

func newJSONRequest(t *testing.T, method, path string, body any) *http.Request {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	return req
}
