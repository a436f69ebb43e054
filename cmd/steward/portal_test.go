package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/portal"
)

var portalDBs atomic.Int64

// newPortalServer wires a server as `serve` does, on a SQLite store of
// its own and a warehouse database of its own in the test binary's
// engine, in development unless tweak says otherwise. With mount, the
// pages are mounted the way assemble mounts them, unless assemble
// already did.
func newPortalServer(t *testing.T, mount bool, tweak func(*config.Config)) *server {
	t.Helper()
	srv, err := tryPortalServer(t, tweak)
	if err != nil {
		t.Fatal(err)
	}
	if mount && !srv.doc.Documented(http.MethodGet, "/") {
		if err := srv.mountPortal(srv.app); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// tryPortalServer is newPortalServer, unmounted, with the error of a
// server that does not assemble.
func tryPortalServer(t *testing.T, tweak func(*config.Config)) (*server, error) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	chDB := fmt.Sprintf("portal_%d", portalDBs.Add(1))
	st := ownStores(t, sqlstore.Config{DataDir: dir}, chDB)
	cfg := config.Defaults()
	cfg.DataDir, cfg.CHDBLib, cfg.ClickHouseDatabase = dir, embedded.cfg.CHDBLib, chDB
	cfg.AutoMigrate = false
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := assemble(ctx, cfg, discardLogger(), st, time.Now)
	if err != nil {
		return nil, err
	}
	dropOnCleanup(t, func() *server { return srv }, chDB)
	return srv, nil
}

// pageClient is a browser's cookies against one server.
type pageClient struct {
	t       *testing.T
	srv     *server
	cookies map[string]string
	token   string
}

func (c *pageClient) send(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.srv.app.Test(req, -1)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
			continue
		}
		c.cookies[ck.Name] = ck.Value
	}
	return resp, string(body)
}

func (c *pageClient) get(path string) (*http.Response, string) {
	c.t.Helper()
	return c.send(httptest.NewRequest(http.MethodGet, path, nil))
}

func (c *pageClient) postForm(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(req)
}

func newPageClient(t *testing.T, srv *server) *pageClient {
	return &pageClient{t: t, srv: srv, cookies: map[string]string{}}
}

var pageLink = regexp.MustCompile(`<li>\s*<a href="([^"]+)"`)

// shownLinks returns the hrefs of the entry page's links.
func shownLinks(body string) []string {
	var out []string
	for _, m := range pageLink.FindAllStringSubmatch(body, -1) {
		out = append(out, strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	return out
}

// TestPortalOnAWiredServer runs the pages on a freshly wired development
// server: the first-run link printed for a new data dir, the links each
// role is shown against what each route answers, and the sign-in error
// codes of the accounts module against the page's messages.
func TestPortalOnAWiredServer(t *testing.T) {
	ctx := context.Background()
	srv := newPortalServer(t, true, nil)

	t.Run("first-run link", func(t *testing.T) {
		var out bytes.Buffer
		srv.announceFirstRun(ctx, &out)
		line := strings.TrimSpace(out.String())
		prefix := firstRunLine(srv.cfg.BaseURL + "/v1/auth/first-run?token=")
		if !strings.HasPrefix(line, prefix) || strings.Count(out.String(), "\n") != 1 {
			t.Fatalf("announced %q, want one line starting %q", out.String(), prefix)
		}
		link := strings.TrimPrefix(line, firstRunLine(""))
		path := strings.TrimPrefix(link, srv.cfg.BaseURL)

		b := newPageClient(t, srv)
		resp, body := b.get(path)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("first use: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		resp, body = b.get("/")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, accounts.FirstAdminEmail) || !strings.Contains(body, "Administrator") ||
			!strings.Contains(body, `href="/v1/audit/report"`) || !strings.Contains(body, `name="csrf_token"`) {
			t.Fatalf("the page after the link: %d\n%s", resp.StatusCode, body)
		}
		if resp, _ := newPageClient(t, srv).get(path); resp.StatusCode != http.StatusForbidden {
			t.Errorf("second use: %d, want 403", resp.StatusCode)
		}
		// The admin exists now: a restart prints no link.
		out.Reset()
		srv.announceFirstRun(ctx, &out)
		if out.Len() != 0 {
			t.Errorf("announced %q with an admin present", out.String())
		}
		// The sign-out button signs out.
		csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(body)
		if csrf == nil {
			t.Fatal("no CSRF field")
		}
		resp, body = b.postForm("/v1/auth/logout", url.Values{"csrf_token": {csrf[1]}})
		if resp.StatusCode >= 400 || b.cookies[accounts.CookieSession] != "" {
			t.Fatalf("sign-out form: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("links match what each route answers", func(t *testing.T) {
		for _, role := range authz.Roles() {
			t.Run(role, func(t *testing.T) {
				tok, err := srv.wired.accounts.CreateToken(ctx, role+".portal@example.com", role)
				if err != nil {
					t.Fatal(err)
				}
				c := &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
				_, page := c.get("/")
				shown := map[string]bool{}
				for _, href := range shownLinks(page) {
					shown[strings.SplitN(href, "?", 2)[0]] = true
				}
				for _, l := range portal.DefaultLinks() {
					href := l.Href
					if l.PeriodDays > 0 {
						href += "?from=2026-01-01&to=2026-02-01"
					}
					resp, body := c.get(href)
					works := resp.StatusCode == http.StatusOK
					if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden {
						t.Errorf("GET %s as %s: %d %s", href, role, resp.StatusCode, body)
						continue
					}
					if works != shown[l.Href] {
						t.Errorf("%s as %s: the route answers %d but the page shows the link: %v", l.Href, role, resp.StatusCode, shown[l.Href])
					}
				}
			})
		}
	})

	t.Run("every sign-in error code is explained", func(t *testing.T) {
		for _, code := range accounts.SignInErrorCodes() {
			_, body := newPageClient(t, srv).get("/?error=" + code)
			if !strings.Contains(body, `role="alert"`) || strings.Contains(body, "Signing in did not work") {
				t.Errorf("code %s has no message of its own", code)
			}
		}
	})
}

func TestFirstRunLinkNotInProduction(t *testing.T) {
	srv := newPortalServer(t, true, func(c *config.Config) {
		c.Env = config.EnvProduction
		c.SigningKey = strings.Repeat("k", 32)
	})
	var out bytes.Buffer
	srv.announceFirstRun(context.Background(), &out)
	if out.Len() != 0 {
		t.Fatalf("production announced %q", out.String())
	}
	if link, ok, err := srv.firstRunLink(context.Background()); ok || link != "" || err != nil {
		t.Fatalf("firstRunLink in production: %q %v %v", link, ok, err)
	}
	resp, body := newPageClient(t, srv).get("/v1/auth/first-run?token=" + strings.Repeat("A", 43))
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("first-run route in production: %d %s", resp.StatusCode, body)
	}
	if _, page := newPageClient(t, srv).get("/"); strings.Contains(page, "one-time sign-in link") {
		t.Error("the production sign-in page mentions the first-run link")
	}
}

// TestServeMountsThePages checks assemble's own wiring: the pages at /,
// and the accounts module sending form sign-ins and sign-outs back to
// them. It passes once assemble mounts the portal (s.mountPortal after
// module.Mount) and accounts.Config sets AfterSignInURL and SignInURL to
// "/".
func TestServeMountsThePages(t *testing.T) {
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev = true })
	b := newPageClient(t, srv)
	resp, body := b.get("/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET / on the served app: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, `action="/v1/auth/dev"`) {
		t.Errorf("the --dev sign-in page has no email form")
	}
	resp, _ = b.postForm("/v1/auth/dev", url.Values{"email": {"ann@example.com"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || b.cookies[accounts.CookieSession] == "" {
		t.Fatalf("form sign-in: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = newPageClient(t, srv).postForm("/v1/auth/dev", url.Values{"email": {"nope"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?error="+accounts.SignInErrorEmail {
		t.Errorf("bad form sign-in: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.postForm("/v1/auth/logout", url.Values{accounts.FieldCSRF: {b.cookies[accounts.CookieCSRF]}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("form sign-out: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
