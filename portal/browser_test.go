package portal_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/browsertest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/portal"
)

// stack is a development server's sign-in as cmd/steward wires it: the
// accounts module (with --dev, in development) and the pages, on SQLite
// and the real policy engine, listening on a real port.
type stack struct {
	base string
	acc  *accounts.Module
}

func newStack(t *testing.T, dev bool) *stack {
	t.Helper()
	db := sqltest.SQLite(t)
	guard := authtest.Guard(t)
	acc, err := accounts.New(accounts.Config{
		Dev: dev, Env: "development", AfterSignInURL: "/", SignInURL: "/",
		SupportedLanguages: []string{"en", "de"},
	}, accounts.Deps{DB: db, Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	pages, err := portal.New(portal.Config{Dev: dev, Development: true}, portal.Deps{
		Account: func(ctx context.Context, id string) (portal.Account, error) {
			u, err := acc.UserByID(ctx, id)
			return portal.Account{Name: u.Name, Email: u.Email, Role: u.Role}, err
		},
		CSRFToken: acc.CSRFToken,
		Allowed:   portal.GuardAllowed(guard, authtest.Engine(t).Taxonomy),
	})
	if err != nil {
		t.Fatal(err)
	}
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), OpenAPI: doc})
	app.Use(acc.CSRF())
	app.Use(authz.Middleware(acc.Authenticator()))
	acc.Mount(app, doc)
	pages.Mount(app, doc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return &stack{base: "http://" + ln.Addr().String(), acc: acc}
}

// TestBrowserSignInWithoutJavaScript signs in through the pages in
// headless Chromium with JavaScript off: the email form of a --dev
// server, the sign-out button, and the first-run link, which lands as an
// administrator with the administrator's links; then the page of a server
// with no sign-in method. Every page state passes axe-core with no
// violation, and each is saved as a screenshot.
func TestBrowserSignInWithoutJavaScript(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	s := newStack(t, true)
	p := browsertest.NewPage(t, 1024, 768, "en")
	run, language, checkA11y, screenshot, text := p.Run, p.Language, p.CheckA11y, p.Screenshot, p.Text

	// Signed out, English.
	run("open /", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible("#email", chromedp.ByQuery))
	if h := text("h1"); h != "Sign in to Steward" {
		t.Fatalf("signed-out heading %q", h)
	}
	checkA11y("the sign-in page (en)")
	screenshot("signin-en")

	// A refused address comes back as a message in the page. The address
	// passes the browser's own check of type=email but not the server's,
	// which wants a dot in the domain.
	run("post a refused address",
		chromedp.SendKeys("#email", "ann@localhost", chromedp.ByQuery),
		chromedp.Click(`form.form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#sign-in-error", chromedp.ByQuery))
	if msg := text("#sign-in-error"); !strings.Contains(msg, "not an email address") {
		t.Errorf("error message %q", msg)
	}
	checkA11y("the sign-in page with an error")
	screenshot("signin-error-en")

	// Sign in with the form; the browser lands on / signed in.
	run("sign in with the form",
		chromedp.SendKeys("#email", "ann@example.com", chromedp.ByQuery),
		chromedp.Click(`form.form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("form.sign-out", chromedp.ByQuery))
	if loc := p.Location(); loc != s.base+"/" {
		t.Errorf("landed on %s, want /", loc)
	}
	if h, who := text("h1"), text("dl.facts"); h != "You are signed in" || !strings.Contains(who, "ann@example.com") || !strings.Contains(who, "User") {
		t.Fatalf("signed-in page: heading %q, account %q", h, who)
	}
	checkA11y("the signed-in page (en)")
	screenshot("home-user-en")

	// German, signed in and, after the sign-out button, signed out.
	run("switch to German", language("de"), chromedp.Reload(), chromedp.WaitVisible("form.sign-out", chromedp.ByQuery))
	if h := text("h1"); h != "Sie sind angemeldet" {
		t.Errorf("German heading %q", h)
	}
	checkA11y("the signed-in page (de)")
	screenshot("home-user-de")
	run("sign out", chromedp.Click("form.sign-out button", chromedp.ByQuery), chromedp.WaitVisible("#email", chromedp.ByQuery))
	if h := text("h1"); h != "Bei Steward anmelden" {
		t.Errorf("after signing out: heading %q", h)
	}
	checkA11y("the sign-in page (de)")
	screenshot("signin-de")

	// The first-run link signs in as the first administrator.
	link, ok, err := s.acc.FirstRunLink(context.Background(), s.base)
	if err != nil || !ok {
		t.Fatalf("FirstRunLink: %v %v", ok, err)
	}
	run("open the first-run link", language("en"), chromedp.Navigate(link), chromedp.WaitVisible("form.sign-out", chromedp.ByQuery))
	if loc := p.Location(); loc != s.base+"/" {
		t.Errorf("the first-run link landed on %s, want /", loc)
	}
	who, links := text("dl.facts"), text("ul.links")
	if !strings.Contains(who, accounts.FirstAdminEmail) || !strings.Contains(who, "Administrator") {
		t.Errorf("first-run account: %q", who)
	}
	for _, want := range []string{"Audit report", "Data map", "steward audit", "Attribution"} {
		if !strings.Contains(links, want) {
			t.Errorf("administrator's links lack %q: %s", want, links)
		}
	}
	checkA11y("the administrator's page (en)")
	screenshot("home-admin-en")

	// The link works once.
	run("open the link again", chromedp.Navigate(link))
	var body string
	run("read the answer", chromedp.Text("body", &body, chromedp.ByQuery))
	if !strings.Contains(body, "already used") {
		t.Errorf("second use of the link: %s", body)
	}

	// A server with no sign-in method says how to turn one on.
	none := newStack(t, false)
	run("open / without a sign-in method", chromedp.Navigate(none.base+"/"), chromedp.WaitVisible("dl.ways", chromedp.ByQuery))
	if ways := text("dl.ways"); !strings.Contains(ways, "STEWARD_GOOGLE_CLIENT_ID") || !strings.Contains(ways, "steward serve --dev") {
		t.Errorf("no-method page: %q", ways)
	}
	checkA11y("the page without a sign-in method (en)")
	screenshot("signin-none-en")
	t.Logf("screenshots in %s", p.ScreenshotFolder())
}
