package accounts_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/accounts"
)

// pageConfig is a dev server with a sign-in page at "/", as cmd/steward
// configures it.
func pageConfig() accounts.Config {
	cfg := devConfig()
	cfg.AfterSignInURL = "/"
	cfg.SignInURL = "/"
	return cfg
}

func TestDevSignInForm(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, pageConfig())
		tests := []struct {
			name        string
			email       string
			wantStatus  int
			wantTo      string
			wantSession bool
		}{
			{name: "valid address", email: "ann@example.com", wantStatus: http.StatusSeeOther, wantTo: "/", wantSession: true},
			{name: "upper case and spaces", email: "  Bea@Example.com ", wantStatus: http.StatusSeeOther, wantTo: "/", wantSession: true},
			{name: "display-name address", email: "Ann <ann@example.com>", wantStatus: http.StatusSeeOther, wantTo: "/?error=" + accounts.SignInErrorEmail},
			{name: "empty", email: "", wantStatus: http.StatusSeeOther, wantTo: "/?error=" + accounts.SignInErrorEmail},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := e.browser()
				r := b.postForm("/v1/auth/dev", url.Values{"email": {tt.email}})
				if r.StatusCode != tt.wantStatus || r.Header.Get("Location") != tt.wantTo {
					t.Fatalf("form sign-in: %d Location %q, want %d %q: %s", r.StatusCode, r.Header.Get("Location"), tt.wantStatus, tt.wantTo, r.body)
				}
				if got := b.cookie(accounts.CookieSession) != ""; got != tt.wantSession {
					t.Fatalf("session cookie set %v, want %v", got, tt.wantSession)
				}
				if !tt.wantSession {
					return
				}
				me := b.do(http.MethodGet, "/v1/me", nil)
				if me.StatusCode != http.StatusOK || me.json(t)["email"] != strings.ToLower(strings.TrimSpace(tt.email)) {
					t.Fatalf("after the form sign-in: %d %s", me.StatusCode, me.body)
				}
			})
		}

		t.Run("JSON callers keep the JSON answer", func(t *testing.T) {
			r := e.browser().do(http.MethodPost, "/v1/auth/dev", map[string]string{"email": "cleo@example.com"})
			if r.StatusCode != http.StatusOK || r.json(t)["email"] != "cleo@example.com" {
				t.Fatalf("JSON sign-in: %d %s", r.StatusCode, r.body)
			}
			r = e.browser().do(http.MethodPost, "/v1/auth/dev", map[string]string{"email": "not an address"})
			if r.StatusCode != http.StatusBadRequest || r.problem(t).Errors[0].Field != "email" {
				t.Fatalf("JSON sign-in with a bad address: %d %s", r.StatusCode, r.body)
			}
		})
	})
}

func TestDevSignInFormWithoutPage(t *testing.T) {
	// Without a sign-in page configured, a form post is answered like a
	// JSON call: the account, or a problem document.
	e := newEnv(t, sqltest.SQLite(t), devConfig())
	r := e.browser().postForm("/v1/auth/dev", url.Values{"email": {"ann@example.com"}})
	if r.StatusCode != http.StatusOK || r.json(t)["email"] != "ann@example.com" {
		t.Fatalf("form sign-in without a page: %d %s", r.StatusCode, r.body)
	}
	r = e.browser().postForm("/v1/auth/dev", url.Values{"email": {"nope"}})
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad form sign-in without a page: %d %s", r.StatusCode, r.body)
	}
}

func TestDevSignInFormRateLimited(t *testing.T) {
	cfg := pageConfig()
	cfg.RateLimit = accounts.RateLimit{IPPerMinute: 1, IPBurst: 1, AccountPerMinute: 60, AccountBurst: 60}
	e := newEnv(t, sqltest.SQLite(t), cfg)
	b := e.browser()
	if r := b.postForm("/v1/auth/dev", url.Values{"email": {"ann@example.com"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("first sign-in: %d %s", r.StatusCode, r.body)
	}
	r := e.browser().postForm("/v1/auth/dev", url.Values{"email": {"ann@example.com"}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/?error="+accounts.SignInErrorRateLimited {
		t.Fatalf("rate-limited form sign-in: %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestLogoutForm(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, pageConfig())
		b := e.devSignIn("ann@example.com")
		r := b.postForm("/v1/auth/logout", url.Values{accounts.FieldCSRF: {b.cookie(accounts.CookieCSRF)}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
			t.Fatalf("form logout: %d Location %q: %s", r.StatusCode, r.Header.Get("Location"), r.body)
		}
		if b.cookie(accounts.CookieSession) != "" || b.cookie(accounts.CookieCSRF) != "" {
			t.Error("form logout left the session cookies")
		}
		if n := count(t, db, "sessions", ""); n != 0 {
			t.Errorf("%d sessions after logout, want 0", n)
		}
		// A script's logout keeps its empty answer.
		js := e.devSignIn("ann@example.com")
		if r := js.do(http.MethodPost, "/v1/auth/logout", nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("script logout: %d", r.StatusCode)
		}
	})
}

func TestCSRFFormField(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, pageConfig())
		other := e.devSignIn("bob@example.com").cookie(accounts.CookieCSRF)
		tests := []struct {
			name   string
			form   url.Values
			header string
			want   int
		}{
			{name: "the session's token", form: url.Values{accounts.FieldCSRF: {"SESSION"}}, want: http.StatusSeeOther},
			{name: "wrong token", form: url.Values{accounts.FieldCSRF: {"not-the-token"}}, want: http.StatusForbidden},
			{name: "another session's token", form: url.Values{accounts.FieldCSRF: {other}}, want: http.StatusForbidden},
			{name: "missing field", form: url.Values{}, want: http.StatusForbidden},
			{name: "empty field", form: url.Values{accounts.FieldCSRF: {""}}, want: http.StatusForbidden},
			{name: "wrong header wins over a right field", form: url.Values{accounts.FieldCSRF: {"SESSION"}}, header: "not-the-token", want: http.StatusForbidden},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := e.devSignIn("ann@example.com")
				tok := b.cookie(accounts.CookieCSRF)
				form := url.Values{}
				for k, vs := range tt.form {
					for _, v := range vs {
						if v == "SESSION" {
							v = tok
						}
						form.Add(k, v)
					}
				}
				req := newFormRequest(http.MethodPost, "/v1/auth/logout", form)
				if tt.header != "" {
					req.Header.Set(accounts.HeaderCSRF, tt.header)
				}
				r := b.send(req)
				if r.StatusCode != tt.want {
					t.Fatalf("form logout: %d, want %d: %s", r.StatusCode, tt.want, r.body)
				}
				signedIn := b.do(http.MethodGet, "/v1/me", nil).StatusCode == http.StatusOK
				if signedIn != (tt.want == http.StatusForbidden) {
					t.Errorf("signed in after the post: %v", signedIn)
				}
			})
		}

		t.Run("the field is read from forms only", func(t *testing.T) {
			b := e.devSignIn("ann@example.com")
			req := newJSONRequest(t, http.MethodPatch, "/v1/me", map[string]string{"name": "Ann", accounts.FieldCSRF: b.cookie(accounts.CookieCSRF)})
			if r := b.send(req); r.StatusCode != http.StatusForbidden {
				t.Fatalf("JSON body with a csrf_token field: %d", r.StatusCode)
			}
		})
	})
}

func newFormRequest(method, path string, form url.Values) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestCSRFToken(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), pageConfig())
	// A route standing in for a page that renders the hidden field.
	e.app.Get("/page", func(c *fiber.Ctx) error { return c.SendString(e.m.CSRFToken(c)) })
	b := e.devSignIn("ann@example.com")
	if r := b.do(http.MethodGet, "/page", nil); string(r.body) != b.cookie(accounts.CookieCSRF) || len(r.body) == 0 {
		t.Errorf("signed in: CSRFToken %q, want the steward_csrf cookie %q", r.body, b.cookie(accounts.CookieCSRF))
	}
	if r := e.browser().do(http.MethodGet, "/page", nil); len(r.body) != 0 {
		t.Errorf("signed out: CSRFToken %q, want none", r.body)
	}
	tok, err := e.m.CreateToken(context.Background(), "bob@example.com", authz.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.bearer(tok, http.MethodGet, "/page", nil); len(r.body) != 0 {
		t.Errorf("bearer token: CSRFToken %q, want none", r.body)
	}
	// An ended session's cookie gives no token either.
	stale := e.devSignIn("cleo@example.com")
	e.clock.Advance(accounts.DefaultSessionAbsolute + time.Second)
	if r := stale.do(http.MethodGet, "/page", nil); len(r.body) != 0 {
		t.Errorf("ended session: CSRFToken %q, want none", r.body)
	}
}

func TestGoogleRedirectFlowErrorsGoBackToThePage(t *testing.T) {
	g := newGoogleServer(t)
	cfg := g.config()
	cfg.AfterSignInURL, cfg.SignInURL = "/", "/"
	e := newEnv(t, sqltest.SQLite(t), cfg)
	tests := []struct {
		name     string
		form     url.Values
		cookie   string
		wantTo   string
		wantCode int
	}{
		{name: "signed in", form: url.Values{"credential": {g.sign("k1", claims(e.clock.Now()))}, "g_csrf_token": {"c1"}}, cookie: "c1",
			wantCode: http.StatusSeeOther, wantTo: "/"},
		{name: "CSRF mismatch", form: url.Values{"credential": {g.sign("k1", claims(e.clock.Now()))}, "g_csrf_token": {"c1"}}, cookie: "c2",
			wantCode: http.StatusSeeOther, wantTo: "/?error=" + accounts.SignInErrorRefused},
		{name: "bad credential", form: url.Values{"credential": {"not-a-jwt"}, "g_csrf_token": {"c1"}}, cookie: "c1",
			wantCode: http.StatusSeeOther, wantTo: "/?error=" + accounts.SignInErrorRefused},
		{name: "no credential", form: url.Values{"g_csrf_token": {"c1"}}, cookie: "c1",
			wantCode: http.StatusSeeOther, wantTo: "/?error=" + accounts.SignInErrorRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser()
			b.setCookie(accounts.CookieGoogleCSRF, tt.cookie)
			r := b.postForm("/v1/auth/google", tt.form)
			if r.StatusCode != tt.wantCode || r.Header.Get("Location") != tt.wantTo {
				t.Fatalf("%d Location %q, want %d %q: %s", r.StatusCode, r.Header.Get("Location"), tt.wantCode, tt.wantTo, r.body)
			}
		})
	}
	// One Tap's JSON callback keeps its problem document.
	b := e.browser()
	b.setCookie(accounts.CookieGoogleCSRF, "c1")
	if r := b.do(http.MethodPost, "/v1/auth/google", map[string]string{"credential": "not-a-jwt", "g_csrf_token": "c1"}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("JSON callback: %d %s", r.StatusCode, r.body)
	}
}
