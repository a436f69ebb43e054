package accounts_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/accounts"
)

const baseURL = "http://127.0.0.1:8080"

// firstRunConfig is a development server as `steward serve` runs it.
func firstRunConfig() accounts.Config {
	cfg := testConfig()
	cfg.Env = "development"
	cfg.AfterSignInURL = "/"
	cfg.SignInURL = "/"
	return cfg
}

// firstRunLink makes a link and returns its path and query.
func (e *env) firstRunLink() string {
	e.t.Helper()
	link, ok, err := e.m.FirstRunLink(context.Background(), baseURL)
	if err != nil || !ok {
		e.t.Fatalf("FirstRunLink: %q %v %v", link, ok, err)
	}
	prefix := baseURL + "/v1/auth/first-run?token="
	if !strings.HasPrefix(link, prefix) || len(link) != len(prefix)+43 {
		e.t.Fatalf("link %q, want %s and a 43-character token", link, prefix)
	}
	return strings.TrimPrefix(link, baseURL)
}

func TestFirstRunLink(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		e := newEnv(t, db, firstRunConfig())
		path := e.firstRunLink()

		b := e.browser()
		r := b.do(http.MethodGet, path, nil)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
			t.Fatalf("first use: %d Location %q: %s", r.StatusCode, r.Header.Get("Location"), r.body)
		}
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("Cache-Control %q, Referrer-Policy %q", r.Header.Get("Cache-Control"), r.Header.Get("Referrer-Policy"))
		}
		me := b.do(http.MethodGet, "/v1/me", nil)
		if me.StatusCode != http.StatusOK || me.json(t)["role"] != authz.RoleAdmin || me.json(t)["email"] != accounts.FirstAdminEmail {
			t.Fatalf("signed in as: %d %s", me.StatusCode, me.body)
		}

		// A second use, in this browser or another, signs nobody in.
		again := e.browser()
		r = again.do(http.MethodGet, path, nil)
		if r.StatusCode != http.StatusForbidden || !strings.Contains(r.problem(t).Detail, "already used") {
			t.Fatalf("second use: %d %s", r.StatusCode, r.body)
		}
		if again.cookie(accounts.CookieSession) != "" {
			t.Error("the second use set a session cookie")
		}

		// The account is a real one: usable afterwards through a token.
		tok, err := e.m.CreateToken(ctx, accounts.FirstAdminEmail, authz.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		if r := e.bearer(tok, http.MethodGet, "/v1/me", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("token of the first admin: %d", r.StatusCode)
		}
		if n := count(t, db, "sign_in_events", "method = ?", accounts.MethodFirstRun); n != 1 {
			t.Errorf("%d first-run sign-ins recorded, want 1", n)
		}
		var entries []adminlog.Record
		if err := db.NewSelect().Model(&entries).Where("action = ?", accounts.ActionFirstRunAdmin).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].ActorID != accounts.ActorFirstRun {
			t.Errorf("admin log = %+v, want one first-run entry", entries)
		}

		// Once an admin exists, no link is made.
		if link, ok, err := e.m.FirstRunLink(ctx, baseURL); ok || link != "" || err != nil {
			t.Errorf("FirstRunLink with an admin: %q %v %v", link, ok, err)
		}
	})
}

func TestFirstRunLinkRefusals(t *testing.T) {
	tests := []struct {
		name string
		// prepare runs after the link was made and returns the path to
		// open.
		prepare    func(t *testing.T, e *env, path string) string
		wantStatus int
		wantDetail string
	}{
		{
			name:       "expired after 15 minutes",
			prepare:    func(t *testing.T, e *env, path string) string { e.clock.Advance(accounts.FirstRunLinkTTL); return path },
			wantStatus: http.StatusForbidden, wantDetail: "expired",
		},
		{
			name: "wrong token",
			prepare: func(t *testing.T, e *env, path string) string {
				return "/v1/auth/first-run?token=" + strings.Repeat("A", 43)
			},
			wantStatus: http.StatusNotFound, wantDetail: "not valid",
		},
		{
			name:       "malformed token",
			prepare:    func(t *testing.T, e *env, path string) string { return "/v1/auth/first-run?token=%27%3B--" },
			wantStatus: http.StatusNotFound, wantDetail: "not valid",
		},
		{
			name:       "no token",
			prepare:    func(t *testing.T, e *env, path string) string { return "/v1/auth/first-run" },
			wantStatus: http.StatusNotFound, wantDetail: "not valid",
		},
		{
			name: "replaced by a newer link",
			prepare: func(t *testing.T, e *env, path string) string {
				e.firstRunLink()
				return path
			},
			wantStatus: http.StatusNotFound, wantDetail: "not valid",
		},
		{
			name: "an admin appeared after the link was printed",
			prepare: func(t *testing.T, e *env, path string) string {
				if _, err := e.m.CreateToken(context.Background(), "boss@example.com", authz.RoleAdmin); err != nil {
					t.Fatal(err)
				}
				return path
			},
			wantStatus: http.StatusForbidden, wantDetail: "administrator exists",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := sqltest.SQLite(t)
			e := newEnv(t, db, firstRunConfig())
			path := tt.prepare(t, e, e.firstRunLink())
			b := e.browser()
			r := b.do(http.MethodGet, path, nil)
			if r.StatusCode != tt.wantStatus || !strings.Contains(r.problem(t).Detail, tt.wantDetail) {
				t.Fatalf("GET %s: %d %s, want %d mentioning %q", path, r.StatusCode, r.body, tt.wantStatus, tt.wantDetail)
			}
			if b.cookie(accounts.CookieSession) != "" || count(t, db, "sessions", "") != 0 {
				t.Error("a refused link signed someone in")
			}
			if n := count(t, db, "users", "email = ?", accounts.FirstAdminEmail); n != 0 {
				t.Errorf("a refused link made the first admin's account")
			}
		})
	}

	t.Run("works until the last second", func(t *testing.T) {
		e := newEnv(t, sqltest.SQLite(t), firstRunConfig())
		path := e.firstRunLink()
		e.clock.Advance(accounts.FirstRunLinkTTL - time.Second)
		if r := e.browser().do(http.MethodGet, path, nil); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("at 14:59: %d %s", r.StatusCode, r.body)
		}
	})
}

func TestFirstRunLinkOnlyInDevelopment(t *testing.T) {
	for _, envName := range []string{"production", "staging", ""} {
		t.Run("env "+envName, func(t *testing.T) {
			cfg := firstRunConfig()
			cfg.Env = envName
			e := newEnv(t, sqltest.SQLite(t), cfg)
			link, ok, err := e.m.FirstRunLink(context.Background(), baseURL)
			if ok || link != "" || err != nil {
				t.Fatalf("FirstRunLink: %q %v %v, want none", link, ok, err)
			}
			r := e.browser().do(http.MethodGet, "/v1/auth/first-run?token="+strings.Repeat("A", 43), nil)
			if r.StatusCode != http.StatusNotFound {
				t.Fatalf("first-run route: %d, want 404", r.StatusCode)
			}
			if e.doc.Documented(http.MethodGet, "/v1/auth/first-run") {
				t.Error("the first-run route is documented outside development")
			}
		})
	}
}

func TestFirstRunRouteIsDocumented(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), firstRunConfig())
	if !e.doc.Documented(http.MethodGet, "/v1/auth/first-run") {
		t.Fatal("the first-run route is not documented in development")
	}
	if missing := web.UndocumentedRoutes(e.app, e.doc); len(missing) > 0 {
		t.Errorf("undocumented routes: %v", missing)
	}
	if _, err := e.doc.JSON(); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
}

func TestFirstRunLinkPromotesTheAccount(t *testing.T) {
	// The first admin's address was used with the user role before (a dev
	// sign-in): the link promotes that account instead of failing.
	db := sqltest.SQLite(t)
	cfg := firstRunConfig()
	cfg.Dev = true
	e := newEnv(t, db, cfg)
	e.devSignIn(accounts.FirstAdminEmail)
	b := e.browser()
	if r := b.do(http.MethodGet, e.firstRunLink(), nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("first use: %d %s", r.StatusCode, r.body)
	}
	if me := b.do(http.MethodGet, "/v1/me", nil); me.json(t)["role"] != authz.RoleAdmin {
		t.Fatalf("role after the link: %s", me.body)
	}
	if n := count(t, db, "users", ""); n != 1 {
		t.Errorf("%d accounts, want the one promoted", n)
	}
}

func TestFirstRunLinkBaseURL(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), firstRunConfig())
	for _, tt := range []struct{ base, wantPrefix string }{
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1/auth/first-run?token="},
		{"https://steward.example.test/base", "https://steward.example.test/base/v1/auth/first-run?token="},
	} {
		link, ok, err := e.m.FirstRunLink(context.Background(), tt.base)
		if err != nil || !ok || !strings.HasPrefix(link, tt.wantPrefix) {
			t.Errorf("base %q: %q %v %v", tt.base, link, ok, err)
		}
		if u, err := url.Parse(link); err != nil || len(u.Query().Get("token")) != 43 {
			t.Errorf("base %q: link %q has no token", tt.base, link)
		}
	}
	if _, _, err := e.m.FirstRunLink(context.Background(), "127.0.0.1:8080"); err == nil {
		t.Error("a base URL without a scheme was accepted")
	}
}
