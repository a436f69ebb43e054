package portal_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/portal"
)

const (
	strictCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	googleCSP = "default-src 'none'; script-src 'self' https://accounts.google.com/gsi/client; " +
		"style-src 'self' https://accounts.google.com/gsi/style; img-src 'self' data:; " +
		"frame-src https://accounts.google.com/gsi/; connect-src https://accounts.google.com/gsi/; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// people are the signed-in people of the handler tests, by user id;
// authtest's header names the id and the role.
var people = map[string]portal.Account{
	"u_ann":  {Name: "Ann Example", Email: "ann@example.com", Role: authz.RoleUser},
	"u_sam":  {Name: "Sam Support", Email: "sam@example.com", Role: authz.RoleSupport},
	"u_ana":  {Name: "", Email: "ana@example.com", Role: authz.RoleAnalyst},
	"u_dora": {Name: "Dora DPO", Email: "dora@example.com", Role: authz.RoleDPO},
	"u_adam": {Name: "Adam Admin", Email: "adam@example.com", Role: authz.RoleAdmin},
}

// logBuffer collects the portal's log lines.
type logBuffer struct{ bytes.Buffer }

// newApp mounts the pages on the platform app with authtest's header
// authentication, the real policy engine and fakes of the accounts
// module's functions.
func newApp(t *testing.T, tweak func(*portal.Config, *portal.Deps)) (*fiber.App, *web.OpenAPI, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := portal.Config{BaseURL: "https://steward.example.test"}
	deps := portal.Deps{
		Account: func(_ context.Context, id string) (portal.Account, error) { return people[id], nil },
		CSRFToken: func(c *fiber.Ctx) string {
			if _, ok := authz.FromContext(c.UserContext()); ok {
				return "csrf-of-the-session"
			}
			return ""
		},
		Allowed: portal.GuardAllowed(authtest.Guard(t), authtest.Engine(t).Taxonomy),
		Now:     func() time.Time { return time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC) },
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
	}
	if tweak != nil {
		tweak(&cfg, &deps)
	}
	p, err := portal.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), OpenAPI: doc})
	app.Use(authz.Middleware(authtest.HeaderAuth{}))
	p.Mount(app, doc)
	return app, doc, logs
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, app *fiber.App, path string, headers ...string) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func TestSignInPage(t *testing.T) {
	tests := []struct {
		name     string
		google   string
		dev      bool
		wantCSP  string
		want     []string
		wantNone []string
	}{
		{
			name: "google", google: "client-1.apps.googleusercontent.com", wantCSP: googleCSP,
			want: []string{
				`<script src="https://accounts.google.com/gsi/client" async></script>`,
				`id="g_id_onload" data-client_id="client-1.apps.googleusercontent.com"`,
				`data-login_uri="https://steward.example.test/v1/auth/google" data-ux_mode="redirect"`,
				`class="g_id_signin"`, `<noscript>`,
			},
			wantNone: []string{`action="/v1/auth/dev"`, "No sign-in method is configured"},
		},
		{
			name: "dev", dev: true, wantCSP: strictCSP,
			want: []string{
				`<form class="form" method="post" action="/v1/auth/dev">`, `<label for="email">Email address</label>`,
				`name="email" type="email" autocomplete="email"`, "runs with --dev",
			},
			wantNone: []string{"accounts.google.com", "g_id_onload", "No sign-in method is configured"},
		},
		{
			name: "google and dev", google: "client-1.apps.googleusercontent.com", dev: true, wantCSP: googleCSP,
			want:     []string{"g_id_onload", `action="/v1/auth/dev"`},
			wantNone: []string{"No sign-in method is configured"},
		},
		{
			name: "neither", wantCSP: strictCSP,
			want: []string{
				"No sign-in method is configured", "STEWARD_GOOGLE_CLIENT_ID", "steward serve --dev", "steward token create",
			},
			wantNone: []string{"accounts.google.com", "g_id_onload", "<form"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, _, logs := newApp(t, func(c *portal.Config, _ *portal.Deps) { c.GoogleClientID, c.Dev = tt.google, tt.dev })
			a := get(t, app, "/")
			if a.status != http.StatusOK || a.header.Get("Content-Type") != fiber.MIMETextHTMLCharsetUTF8 {
				t.Fatalf("GET /: %d %q", a.status, a.header.Get("Content-Type"))
			}
			if got := a.header.Get("Content-Security-Policy"); got != tt.wantCSP {
				t.Errorf("CSP\n got %s\nwant %s", got, tt.wantCSP)
			}
			wantReferrer := "same-origin"
			if tt.google != "" {
				wantReferrer = "strict-origin-when-cross-origin"
			}
			for h, want := range map[string]string{
				"X-Content-Type-Options": "nosniff", "Referrer-Policy": wantReferrer,
				"X-Frame-Options": "DENY", "Cache-Control": "no-store",
			} {
				if got := a.header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
			for _, s := range tt.want {
				if !strings.Contains(a.body, s) {
					t.Errorf("page lacks %s", s)
				}
			}
			for _, s := range tt.wantNone {
				if strings.Contains(a.body, s) {
					t.Errorf("page has %s", s)
				}
			}
			checkNoInline(t, a.body)
			checkLandmarks(t, a.body)
			if strings.Contains(logs.String(), "messages") {
				t.Errorf("missing messages: %s", logs.String())
			}
		})
	}
}

var (
	scriptTag    = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	inlineAttr   = regexp.MustCompile(`(?i)\s(style|on[a-z]+)\s*=`)
	styleElement = regexp.MustCompile(`(?i)<style\b`)
	jsURL        = regexp.MustCompile(`(?i)(href|src|action)\s*=\s*"\s*javascript:`)
)

// checkNoInline fails when the page has anything the CSP would block:
// an inline script, a style element or attribute, an event handler
// attribute or a javascript: URL.
func checkNoInline(t *testing.T, body string) {
	t.Helper()
	for _, m := range scriptTag.FindAllStringSubmatch(body, -1) {
		if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
			t.Errorf("inline script: %s", m[0])
		}
	}
	if m := inlineAttr.FindString(body); m != "" {
		t.Errorf("inline style or event handler attribute: %q", m)
	}
	if styleElement.MatchString(body) || jsURL.MatchString(body) {
		t.Error("style element or javascript: URL")
	}
}

// checkLandmarks fails when the page lacks a landmark or the skip link.
func checkLandmarks(t *testing.T, body string) {
	t.Helper()
	for _, s := range []string{`<html lang="`, `<a class="skip-link" href="#main">`, `<header`, `<main id="main"`, `<footer`, `<h1>`} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %s", s)
		}
	}
}

func TestSignInErrors(t *testing.T) {
	app, _, _ := newApp(t, func(c *portal.Config, _ *portal.Deps) { c.Dev = true })
	tests := []struct {
		name, query, lang string
		want              string
		wantInvalid       bool
	}{
		{name: "bad email", query: "?error=email_invalid", want: "That is not an email address.", wantInvalid: true},
		{name: "bad email, German", query: "?error=email_invalid", lang: "de", want: "Das ist keine E-Mail-Adresse.", wantInvalid: true},
		{name: "rate limited", query: "?error=rate_limited", want: "Too many sign-in attempts."},
		{name: "unknown code is not echoed", query: "?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E", want: "Signing in did not work."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := get(t, app, "/"+tt.query, "Accept-Language", tt.lang)
			if a.status != http.StatusOK || !strings.Contains(a.body, `role="alert"`) || !strings.Contains(a.body, tt.want) {
				t.Fatalf("GET /%s: %d, want an alert saying %q:\n%s", tt.query, a.status, tt.want, a.body)
			}
			if got := strings.Contains(a.body, `aria-invalid="true"`); got != tt.wantInvalid {
				t.Errorf("email field marked invalid: %v, want %v", got, tt.wantInvalid)
			}
			if strings.Contains(a.body, "alert(1)") {
				t.Error("the page echoes the error parameter")
			}
		})
	}
	if a := get(t, app, "/"); strings.Contains(a.body, `role="alert"`) {
		t.Error("an alert without an error")
	}
}

func TestLanguage(t *testing.T) {
	app, _, _ := newApp(t, nil)
	tests := []struct {
		accept, wantLang, wantHeading string
	}{
		{"", "en", "Sign in to Steward"},
		{"de", "de", "Bei Steward anmelden"},
		{"de-CH, fr;q=0.8", "de", "Bei Steward anmelden"},
		{"fr, ja;q=0.5", "en", "Sign in to Steward"},
		{"de;q=0.2, en;q=0.9", "en", "Sign in to Steward"},
		{"not a header ;;;", "en", "Sign in to Steward"},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			a := get(t, app, "/", "Accept-Language", tt.accept)
			if !strings.Contains(a.body, `<html lang="`+tt.wantLang+`">`) || !strings.Contains(a.body, "<h1>"+tt.wantHeading+"</h1>") {
				t.Fatalf("Accept-Language %q: want lang %s and heading %q:\n%s", tt.accept, tt.wantLang, tt.wantHeading, a.body)
			}
		})
	}
}

// TestLanguageSwitcher checks the order a page's language is chosen in:
// the switcher's cookie, then the account's language, then
// Accept-Language; and that the switcher only ever sends people back to
// this site.
func TestLanguageSwitcher(t *testing.T) {
	app, _, _ := newApp(t, func(_ *portal.Config, d *portal.Deps) {
		d.Account = func(_ context.Context, id string) (portal.Account, error) {
			acc := people[id]
			if id == "u_ann" {
				acc.Language = "de"
			}
			return acc, nil
		}
	})
	tests := []struct {
		name     string
		headers  []string
		wantLang string
	}{
		{"a visitor, by Accept-Language", []string{"Accept-Language", "de"}, "de"},
		{"a visitor who picked English", []string{"Accept-Language", "de", "Cookie", "steward_lang=en"}, "en"},
		{"an account's language beats Accept-Language", []string{authtest.Header, "u_ann", "Accept-Language", "en"}, "de"},
		{"the switcher beats the account", []string{authtest.Header, "u_ann", "Cookie", "steward_lang=en"}, "en"},
		{"an account without a language", []string{authtest.Header, "u_sam", "Accept-Language", "de-AT"}, "de"},
		{"a cookie of a language the pages lack", []string{"Accept-Language", "de", "Cookie", "steward_lang=fr"}, "de"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := get(t, app, "/", tt.headers...)
			if a.status != http.StatusOK || !strings.Contains(a.body, `<html lang="`+tt.wantLang+`">`) {
				t.Fatalf("want lang %s: %d\n%s", tt.wantLang, a.status, a.body)
			}
			if !strings.Contains(a.body, `aria-current="true">`+map[string]string{"en": "English", "de": "Deutsch"}[tt.wantLang]+`</a>`) {
				t.Errorf("the switcher does not mark %s as current", tt.wantLang)
			}
		})
	}
	switches := []struct {
		query, wantStatus, wantLocation, wantCookie string
	}{
		{"to=de&back=%2Fprivacy%3Fx%3D1", "303", "/privacy?x=1", "steward_lang=de"},
		{"to=de-CH&back=%2F", "303", "/", "steward_lang=de"},
		{"to=en&back=%2F%2Fevil.example%2F", "303", "/", "steward_lang=en"},
		{"to=en&back=https%3A%2F%2Fevil.example%2F", "303", "/", "steward_lang=en"},
		{"to=en&back=%2F%5Cevil.example", "303", "/", "steward_lang=en"},
		{"to=en", "303", "/", "steward_lang=en"},
		{"to=fr&back=%2F", "400", "", ""},
		{"back=%2F", "400", "", ""},
	}
	for _, sw := range switches {
		t.Run(sw.query, func(t *testing.T) {
			a := get(t, app, "/language?"+sw.query)
			if fmt.Sprint(a.status) != sw.wantStatus || a.header.Get("Location") != sw.wantLocation ||
				!strings.HasPrefix(a.header.Get("Set-Cookie"), sw.wantCookie) {
				t.Errorf("GET /language?%s: %d Location %q Set-Cookie %q", sw.query, a.status, a.header.Get("Location"), a.header.Get("Set-Cookie"))
			}
			if sw.wantCookie != "" && !strings.Contains(strings.ToLower(a.header.Get("Set-Cookie")), "httponly") {
				t.Errorf("the language cookie is not HttpOnly: %q", a.header.Get("Set-Cookie"))
			}
		})
	}
}

// linkHrefs returns the paths of the page's list of links.
func linkHrefs(body string) []string {
	list := body
	if i := strings.Index(list, `<ul class="links">`); i >= 0 {
		list = list[i:]
	}
	var out []string
	for _, m := range regexp.MustCompile(`<li>\s*<a href="([^"?]+)`).FindAllStringSubmatch(list, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestSignedInPage(t *testing.T) {
	// What each role sees is the access policy's answer for each link's
	// question, not a list kept here: the table repeats the policy's
	// current answers, so a change to roles.json shows up as a failure
	// to look at.
	everyone := []string{"/v1/me", "/v1/me/sessions", "/privacy", "/v1/privacy/requests"}
	tests := []struct {
		user, role string
		want       []string
	}{
		{"u_ann", "user", everyone},
		{"u_sam", "support", everyone},
		{"u_ana", "analyst", append(slices.Clone(everyone), "/console", "/v1/analytics/attribution")},
		{"u_dora", "dpo", append(slices.Clone(everyone), "/console", "/v1/audit/report", "/v1/audit/datamap", "/v1/analytics/attribution")},
		{"u_adam", "admin", append(slices.Clone(everyone), "/console", "/v1/audit/report", "/v1/audit/datamap", "/v1/analytics/attribution")},
	}
	app, _, logs := newApp(t, nil)
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			a := get(t, app, "/", authtest.Header, tt.user+":"+tt.role)
			if a.status != http.StatusOK || a.header.Get("Content-Security-Policy") != strictCSP {
				t.Fatalf("GET / as %s: %d CSP %q", tt.role, a.status, a.header.Get("Content-Security-Policy"))
			}
			acc := people[tt.user]
			for _, s := range []string{"<h1>You are signed in</h1>", acc.Email,
				`<form class="sign-out" method="post" action="/v1/auth/logout">`,
				`<input type="hidden" name="csrf_token" value="csrf-of-the-session">`} {
				if !strings.Contains(a.body, s) {
					t.Errorf("page lacks %s", s)
				}
			}
			if got, want := linkHrefs(a.body), append(slices.Clone(tt.want), "/openapi.json"); !slices.Equal(got, want) {
				t.Errorf("links %v, want %v", got, want)
			}
			checkNoInline(t, a.body)
			checkLandmarks(t, a.body)
		})
	}
	t.Run("commands and periods", func(t *testing.T) {
		a := get(t, app, "/", authtest.Header, "u_dora:dpo")
		for _, s := range []string{
			"<code>steward audit</code>", "<code>steward datamap --format markdown</code>",
			`href="/v1/analytics/attribution?from=2026-04-04&amp;to=2026-05-05"`,
			"<code>steward analytics attribution --from 2026-04-04 --to 2026-05-05</code>",
			`<span class="role">Data protection officer</span>`,
		} {
			if !strings.Contains(a.body, s) {
				t.Errorf("page lacks %s", s)
			}
		}
	})
	t.Run("German", func(t *testing.T) {
		a := get(t, app, "/", authtest.Header, "u_adam:admin", "Accept-Language", "de-DE")
		for _, s := range []string{"<h1>Sie sind angemeldet</h1>", `<span class="role">Administration</span>`, "Abmelden", "Prüfbericht"} {
			if !strings.Contains(a.body, s) {
				t.Errorf("page lacks %s", s)
			}
		}
	})
	t.Run("no name", func(t *testing.T) {
		if a := get(t, app, "/", authtest.Header, "u_ana:analyst"); !strings.Contains(a.body, "No name set") {
			t.Error("an account without a name shows no placeholder")
		}
	})
	if strings.Contains(logs.String(), "messages") {
		t.Errorf("missing messages: %s", logs.String())
	}
}

func TestSignedInWithoutSession(t *testing.T) {
	// A program with a bearer token has no session: no sign-out form.
	app, _, _ := newApp(t, func(_ *portal.Config, d *portal.Deps) { d.CSRFToken = func(*fiber.Ctx) string { return "" } })
	a := get(t, app, "/", authtest.Header, "u_ann:user")
	if a.status != http.StatusOK || strings.Contains(a.body, "sign-out") {
		t.Fatalf("bearer caller: %d, sign-out form shown: %v", a.status, strings.Contains(a.body, "sign-out"))
	}
}

func TestLinksReplaceable(t *testing.T) {
	links := portal.DefaultLinks()
	links[0].Href = "/privacy"
	app, _, _ := newApp(t, func(c *portal.Config, _ *portal.Deps) { c.Links = links })
	if got := linkHrefs(get(t, app, "/", authtest.Header, "u_ann:user").body); got[0] != "/privacy" {
		t.Errorf("links %v, want the replaced entry first", got)
	}
}

func TestStaticFiles(t *testing.T) {
	app, _, _ := newApp(t, nil)
	page := get(t, app, "/").body
	css := regexp.MustCompile(`href="(/static/portal\.css\?v=[0-9a-f]{16})"`).FindStringSubmatch(page)
	if css == nil {
		t.Fatalf("page links no versioned stylesheet:\n%s", page)
	}
	a := get(t, app, css[1])
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "text/css; charset=utf-8" ||
		a.header.Get("Cache-Control") != "public, max-age=31536000, immutable" || !strings.Contains(a.body, ":focus-visible") {
		t.Fatalf("stylesheet: %d %q %q", a.status, a.header.Get("Content-Type"), a.header.Get("Cache-Control"))
	}
	if a.header.Get("X-Content-Type-Options") != "nosniff" || a.header.Get("Content-Security-Policy") != strictCSP {
		t.Errorf("stylesheet headers: %v", a.header)
	}
	if again := get(t, app, css[1], "If-None-Match", a.header.Get("ETag")); again.status != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", again.status)
	}
	if old := get(t, app, "/static/portal.css?v=0000"); old.header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("an old version is cached as %q", old.header.Get("Cache-Control"))
	}
	if icon := get(t, app, "/static/favicon.svg"); icon.status != http.StatusOK || icon.header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("icon: %d %q", icon.status, icon.header.Get("Content-Type"))
	}
	if missing := get(t, app, "/static/nope.css"); missing.status != http.StatusNotFound {
		t.Errorf("unknown file: %d", missing.status)
	}
}

func TestRoutesAreDocumented(t *testing.T) {
	app, doc, _ := newApp(t, nil)
	if missing := web.UndocumentedRoutes(app, doc); len(missing) > 0 {
		t.Errorf("undocumented routes: %v", missing)
	}
}

func TestNewNeedsItsFunctions(t *testing.T) {
	if _, err := portal.New(portal.Config{}, portal.Deps{}); err == nil {
		t.Error("New without Account, CSRFToken and Allowed succeeded")
	}
}
