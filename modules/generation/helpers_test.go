package generation

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/testutil/apptest"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/assets"
	"github.com/stewardhq/steward/policies"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

func testEngine(t testing.TB) *policies.Engine { return authtest.Engine(t) }

// memCredits is a small ledger with the semantics billing implements:
// a reservation holds part of the balance until it is committed (charged)
// or released (returned); settling twice is harmless.
type memCredits struct {
	mu       sync.Mutex
	balance  map[string]int64
	reserved map[string]*reservation
	n        int
}

type reservation struct {
	user   string
	amount int64
	state  string // held, committed, released
	ref    string
}

func newCredits(balances map[string]int64) *memCredits {
	return &memCredits{balance: balances, reserved: map[string]*reservation{}}
}

func (c *memCredits) available(user string) int64 {
	a := c.balance[user]
	for _, r := range c.reserved {
		if r.user == user && r.state == "held" {
			a -= r.amount
		}
	}
	return a
}

func (c *memCredits) Reserve(_ context.Context, user string, amount int64, ref string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.available(user) < amount {
		return "", errs.E(errs.ErrPaymentRequired, "You do not have enough credits for this generation.")
	}
	c.n++
	id := fmt.Sprintf("r%d", c.n)
	c.reserved[id] = &reservation{user: user, amount: amount, state: "held", ref: ref}
	return id, nil
}

func (c *memCredits) settle(id, state string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reserved[id]
	if !ok {
		return fmt.Errorf("reservation %s: %w", id, errs.ErrNotFound)
	}
	if r.state != "held" {
		return nil
	}
	r.state = state
	if state == "committed" {
		c.balance[r.user] -= r.amount
	}
	return nil
}

func (c *memCredits) Commit(_ context.Context, id string) error  { return c.settle(id, "committed") }
func (c *memCredits) Release(_ context.Context, id string) error { return c.settle(id, "released") }

// states returns the states of the reservations for ref.
func (c *memCredits) states(ref string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.reserved {
		if r.ref == ref {
			out = append(out, r.state)
		}
	}
	return out
}

func (c *memCredits) Balance(user string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.balance[user]
}

type fixture struct {
	db      *bun.DB
	app     *fiber.App
	assets  *assets.Module
	gen     *Module
	credits *memCredits
	files   string
	doc     *web.OpenAPI
}

type fixtureOpts struct {
	cfg       Config
	providers map[string]Provider
	// resolver answers the name lookups of reference URLs; nil means
	// testResolver, since tests reach no DNS.
	resolver Resolver
	credits  *memCredits
	files    string
	noStart  bool
}

// newFixture builds one app with the assets and generation modules
// mounted, as cmd/steward does, and starts the worker pool.
func newFixture(t *testing.T, db *bun.DB, o fixtureOpts) *fixture {
	t.Helper()
	if o.files == "" {
		o.files = t.TempDir()
	}
	if o.credits == nil {
		o.credits = newCredits(map[string]int64{"u1": 100, "u2": 100})
	}
	if o.cfg.PollInterval == 0 {
		o.cfg.PollInterval = 20 * time.Millisecond
	}
	guard := authz.NewGuard(testEngine(t))
	am, err := assets.New(assets.Config{FilesDir: o.files, SigningKey: bytes.Repeat([]byte("s"), 32)}, assets.Deps{DB: db, Guard: guard})
	if err != nil {
		t.Fatalf("assets.New: %v", err)
	}
	if o.resolver == nil {
		o.resolver = testResolver{}
	}
	gm, err := New(o.cfg, Deps{DB: db, Guard: guard, Safety: testEngine(t), Credits: o.credits, Assets: am, Providers: o.providers, Resolver: o.resolver})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := web.New(web.Options{MaxBodyLimit: am.UploadBodyLimit(), Logger: slog.New(slog.DiscardHandler), OpenAPI: doc})
	app.Use(authz.Middleware(authtest.HeaderAuth{}))
	am.Mount(app, doc)
	gm.Mount(app, doc)
	if !o.noStart {
		if err := gm.Start(t.Context()); err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() {
			if err := gm.Stop(context.Background()); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
	return &fixture{db: db, app: app, assets: am, gen: gm, credits: o.credits, files: o.files, doc: doc}
}

// testResolver maps the host names of the tests to addresses: public ones
// for images.example.com and cdn.example.com, internal ones for the rest
// it knows, and no answer for any other.
type testResolver map[string][]netip.Addr

var testHosts = map[string][]netip.Addr{
	"images.example.com":   {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("2606:2800:21f:cb07:6820:80da:af6b:8b2c")},
	"cdn.example.com":      {netip.MustParseAddr("151.101.1.57")},
	"localhost":            {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	"metadata.internal":    {netip.MustParseAddr("169.254.169.254")},
	"intranet.example.com": {netip.MustParseAddr("10.1.2.3")},
	"mixed.example.com":    {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("192.168.1.10")},
	"mapped.example.com":   {netip.MustParseAddr("::ffff:127.0.0.1")},
	"cgnat.example.com":    {netip.MustParseAddr("100.100.100.200")},
	"ula.example.com":      {netip.MustParseAddr("fd00:ec2::254")},
}

func (r testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	if a, ok := testHosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// waitTimeout bounds how long a test waits for work done in the
// background. Only a broken test reaches it: it is generous so that a slow,
// busy machine never does.
const waitTimeout = 2 * time.Minute

func (f *fixture) do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	return authtest.Do(t, f.app, req, "")
}

func jsonRequest(user, method, target string, body any) *http.Request {
	req := authtest.JSONRequest(method, target, body)
	if user != "" {
		req.Header.Set(authtest.Header, user)
	}
	return req
}

func uploadRequest(t *testing.T, user, name string, data []byte) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(data)
	w.WriteField("purpose", "reference")
	w.Close()
	req := httptest.NewRequest(http.MethodPost, "/v1/assets", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("X-Test-User", user)
	return req
}

// createTask starts a generation over HTTP and returns its view.
func (f *fixture) createTask(t *testing.T, user string, req map[string]any) GenerationView {
	t.Helper()
	resp, body := f.do(t, jsonRequest(user, http.MethodPost, "/v1/generations", req))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/generations = %d %s", resp.StatusCode, body)
	}
	return apptest.Decode[GenerationView](t, body)
}

// waitFor polls the generation over HTTP until its status is final.
func (f *fixture) waitFor(t *testing.T, user, id string) GenerationView {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		resp, body := f.do(t, jsonRequest(user, http.MethodGet, "/v1/generations/"+id, nil))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET generation = %d %s", resp.StatusCode, body)
		}
		v := apptest.Decode[GenerationView](t, body)
		if v.Status == StatusSucceeded || v.Status == StatusFailed {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation %s still %s", id, v.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 3), uint8(y * 5), 90, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// countTasks counts the generation rows.
func countTasks(t *testing.T, db *bun.DB) int {
	t.Helper()
	n, err := db.NewSelect().Model((*Generation)(nil)).Count(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}
