package accounts_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/accounts"
)

func TestMe(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, devConfig())
		if r := e.browser().do(http.MethodGet, "/v1/me", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous GET /v1/me: %d", r.StatusCode)
		}
		b := e.devSignIn("Ann@Example.com")
		me := b.do(http.MethodGet, "/v1/me", nil).json(t)
		if me["email"] != "ann@example.com" || me["role"] != "user" || me["status"] != "active" || me["language"] != "en" {
			t.Fatalf("me = %v", me)
		}
		if _, ok := me["credit_balance"]; ok {
			t.Errorf("credit balance shown without billing: %v", me)
		}

		tests := []struct {
			name  string
			body  map[string]any
			field string
			rule  string
		}{
			{name: "empty name", body: map[string]any{"name": "   "}, field: "name", rule: "required"},
			{name: "long name", body: map[string]any{"name": strings.Repeat("é", 101)}, field: "name", rule: "max_length"},
			{name: "line break", body: map[string]any{"name": "Ann\nEx"}, field: "name", rule: "control_characters"},
			{name: "not a language tag", body: map[string]any{"language": "english!"}, field: "language", rule: "format"},
			{name: "unsupported language", body: map[string]any{"language": "ja"}, field: "language", rule: "supported"},
			{name: "nothing to change", body: map[string]any{}, field: "body", rule: "empty"},
			{name: "unknown field", body: map[string]any{"role": "admin"}, field: "role", rule: "unknown"},
			{name: "wrong type", body: map[string]any{"name": 7}, field: "name", rule: "type"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := b.do(http.MethodPatch, "/v1/me", tt.body)
				if r.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d: %s", r.StatusCode, r.body)
				}
				p := r.problem(t)
				if len(p.Errors) != 1 || p.Errors[0].Field != tt.field || p.Errors[0].Rule != tt.rule {
					t.Errorf("errors = %+v, want %s/%s", p.Errors, tt.field, tt.rule)
				}
			})
		}

		r := b.do(http.MethodPatch, "/v1/me", map[string]any{"name": "  Ann Émile  ", "language": "pt-br"})
		if r.StatusCode != 200 {
			t.Fatalf("valid PATCH: %d %s", r.StatusCode, r.body)
		}
		if me := r.json(t); me["name"] != "Ann Émile" || me["language"] != "pt-BR" {
			t.Errorf("after PATCH: %v", me)
		}
		if me := b.do(http.MethodGet, "/v1/me", nil).json(t); me["name"] != "Ann Émile" || me["language"] != "pt-BR" {
			t.Errorf("PATCH did not stick: %v", me)
		}
	})
}

func TestMeShowsBalance(t *testing.T) {
	db := sqltest.SQLite(t)
	e := newEnv(t, db, devConfig(), func(d *accounts.Deps) {
		d.Balance = func(_ context.Context, userID string) (accounts.Balance, error) {
			if !strings.HasPrefix(userID, "u_") {
				return accounts.Balance{}, errors.New("unexpected id")
			}
			return accounts.Balance{Credits: 120, SubscriptionStatus: "active"}, nil
		}
	})
	me := e.devSignIn("ann@example.com").do(http.MethodGet, "/v1/me", nil).json(t)
	if me["credit_balance"] != float64(120) || me["subscription_status"] != "active" {
		t.Fatalf("me = %v", me)
	}
}

func TestSetRole(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		e := newEnv(t, db, devConfig())
		adminTok, err := e.m.CreateToken(ctx, "root@example.com", "admin")
		if err != nil {
			t.Fatal(err)
		}
		admin, _ := e.m.UserByEmail(ctx, "root@example.com")
		ann := e.devSignIn("ann@example.com")
		annID, _ := ann.do(http.MethodGet, "/v1/me", nil).json(t)["id"].(string)

		tests := []struct {
			name   string
			send   func() response
			status int
		}{
			{name: "a user may not change roles", status: http.StatusForbidden,
				send: func() response {
					return ann.do(http.MethodPut, "/v1/admin/users/"+annID+"/role", map[string]string{"role": "admin"})
				}},
			{name: "a user may not probe ids", status: http.StatusForbidden,
				send: func() response {
					return ann.do(http.MethodPut, "/v1/admin/users/u_nobody/role", map[string]string{"role": "admin"})
				}},
			{name: "unknown role", status: http.StatusBadRequest,
				send: func() response {
					return e.bearer(adminTok, http.MethodPut, "/v1/admin/users/"+annID+"/role", map[string]string{"role": "root"})
				}},
			{name: "unknown account", status: http.StatusNotFound,
				send: func() response {
					return e.bearer(adminTok, http.MethodPut, "/v1/admin/users/u_nobody/role", map[string]string{"role": "support"})
				}},
			{name: "admin changes a role", status: http.StatusOK,
				send: func() response {
					return e.bearer(adminTok, http.MethodPut, "/v1/admin/users/"+annID+"/role", map[string]string{"role": "support"})
				}},
			{name: "the last admin cannot demote himself", status: http.StatusConflict,
				send: func() response {
					return e.bearer(adminTok, http.MethodPut, "/v1/admin/users/"+admin.ID+"/role", map[string]string{"role": "user"})
				}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if r := tt.send(); r.StatusCode != tt.status {
					t.Fatalf("status %d, want %d: %s", r.StatusCode, tt.status, r.body)
				}
			})
		}
		// The new role applies to Ann's very next request.
		if u, _ := e.m.UserByID(ctx, annID); u.Role != "support" {
			t.Fatalf("role = %s", u.Role)
		}
		// Every admin action is in the hash-chained log, and only those
		// that happened.
		var entries []adminlog.Record
		if err := db.NewSelect().Model(&entries).Order("seq").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 {
			t.Fatalf("admin log has %d entries, want the token creation and the role change: %+v", len(entries), entries)
		}
		if entries[0].Action != accounts.ActionTokenCreate || entries[0].ActorID != accounts.ActorCLI || entries[0].TargetID != admin.ID {
			t.Errorf("first entry = %+v", entries[0])
		}
		last := entries[1]
		if last.Action != accounts.ActionRoleUpdate || last.ActorID != admin.ID || last.TargetID != annID ||
			last.Details != `{"from":"user","to":"support"}` {
			t.Errorf("role entry = %+v", last)
		}
		if strings.Contains(last.Details, "ann@") {
			t.Error("the admin log holds an email address")
		}
		rep, err := adminlog.Verify(ctx, db)
		if err != nil || !rep.OK() {
			t.Fatalf("admin log does not verify: %+v %v", rep.Finding, err)
		}
		// With a second admin, the first may step down.
		if _, err := e.m.CreateToken(ctx, "second@example.com", "admin"); err != nil {
			t.Fatal(err)
		}
		if r := e.bearer(adminTok, http.MethodPut, "/v1/admin/users/"+admin.ID+"/role", map[string]string{"role": "user"}); r.StatusCode != http.StatusOK {
			t.Fatalf("stepping down beside another admin: %d %s", r.StatusCode, r.body)
		}
	})
}

func TestCreateToken(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		e := newEnv(t, db, devConfig())
		tests := []struct {
			name  string
			email string
			role  string
			err   error
		}{
			{name: "new account", email: "ops@example.com", role: "dpo"},
			{name: "existing account, same role", email: "OPS@example.com", role: "dpo"},
			{name: "existing account, new role", email: "ops@example.com", role: "analyst"},
			{name: "bad role", email: "ops@example.com", role: "root", err: errs.ErrInvalidArgument},
			{name: "bad email", email: "ops", role: "user", err: errs.ErrInvalidArgument},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok, err := e.m.CreateToken(ctx, tt.email, tt.role)
				if tt.err != nil {
					if !errors.Is(err, tt.err) {
						t.Fatalf("err = %v, want %v", err, tt.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				r := e.bearer(tok, http.MethodGet, "/v1/me/tokens", nil)
				if r.StatusCode != 200 {
					t.Fatalf("token does not authenticate: %d %s", r.StatusCode, r.body)
				}
				u, err := e.m.UserByEmail(ctx, tt.email)
				if err != nil || u.Role != tt.role {
					t.Fatalf("account = %+v, %v; want role %s", u, err, tt.role)
				}
			})
		}
		if n := count(t, db, "users", ""); n != 1 {
			t.Errorf("%d accounts, want 1", n)
		}
		// Three tokens and one role change, each in the admin log.
		if n := count(t, db, "admin_log", "action = ?", accounts.ActionTokenCreate); n != 3 {
			t.Errorf("%d token entries, want 3", n)
		}
		if n := count(t, db, "admin_log", "action = ?", accounts.ActionRoleUpdate); n != 1 {
			t.Errorf("%d role entries, want 1", n)
		}
		if _, err := e.m.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("UserByEmail of an unknown address: %v", err)
		}
	})
}

func TestTokenLastUsedIsThrottled(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		e := newEnv(t, db, devConfig())
		tok, err := e.m.CreateToken(ctx, "bot@example.com", "user")
		if err != nil {
			t.Fatal(err)
		}
		lastUsed := func() time.Time {
			var tk accounts.APIToken
			if err := db.NewSelect().Model(&tk).Scan(ctx); err != nil {
				t.Fatal(err)
			}
			if tk.LastUsedAt == nil {
				return time.Time{}
			}
			return tk.LastUsedAt.UTC()
		}
		if !lastUsed().IsZero() {
			t.Fatal("an unused token has a last-used time")
		}
		start := e.clock.Now()
		e.bearer(tok, http.MethodGet, "/v1/me", nil)
		if !lastUsed().Equal(start) {
			t.Fatalf("first use: last used %v, want %v", lastUsed(), start)
		}
		e.clock.Advance(10 * time.Second)
		e.bearer(tok, http.MethodGet, "/v1/me", nil)
		if !lastUsed().Equal(start) {
			t.Errorf("a use 10 s later was written: %v", lastUsed())
		}
		e.clock.Advance(time.Minute)
		e.bearer(tok, http.MethodGet, "/v1/me", nil)
		if want := start.Add(70 * time.Second); !lastUsed().Equal(want) {
			t.Errorf("a use a minute later: last used %v, want %v", lastUsed(), want)
		}
		list := e.bearer(tok, http.MethodGet, "/v1/me/tokens", nil)
		if !strings.Contains(string(list.body), `"last_used_at":"2026-05-04T10:01:10Z"`) {
			t.Errorf("token list: %s", list.body)
		}
	})
}

func TestRateLimits(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		cfg := devConfig()
		cfg.RateLimit = accounts.RateLimit{IPPerMinute: 6, IPBurst: 3, AccountPerMinute: 1, AccountBurst: 2}
		e := newEnv(t, db, cfg)
		b := e.browser()
		signIn := func(email string) response {
			return b.do(http.MethodPost, "/v1/auth/dev", map[string]string{"email": email})
		}
		// Per account: the third sign-in to one account within the minute.
		for i := range 2 {
			if r := signIn("ann@example.com"); r.StatusCode != 200 {
				t.Fatalf("sign-in %d: %d", i, r.StatusCode)
			}
		}
		r := signIn("ann@example.com")
		if r.StatusCode != http.StatusTooManyRequests || !strings.Contains(r.problem(t).Detail, "account") {
			t.Fatalf("third sign-in to one account: %d %s", r.StatusCode, r.body)
		}
		// Per address: the burst of 3 is spent; more are refused with a
		// delay to wait.
		for range 3 {
			r = signIn("bea@example.com")
		}
		if r.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("requests past the address's burst: %d", r.StatusCode)
		}
		wait, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || wait < 1 || wait > 60 {
			t.Errorf("Retry-After = %q", r.Header.Get("Retry-After"))
		}
		if !strings.Contains(r.problem(t).Detail, "network") {
			t.Errorf("detail = %q", r.problem(t).Detail)
		}
		// Both limits were logged, once each despite repeated hits.
		if n := count(t, db, "abuse_events", "kind = ? AND detail = ?", accounts.AbuseRateLimited, "auth_ip"); n != 1 {
			t.Errorf("%d address rate-limit events, want 1", n)
		}
		if n := count(t, db, "abuse_events", "kind = ? AND detail = ?", accounts.AbuseRateLimited, "auth_account"); n != 1 {
			t.Errorf("%d account rate-limit events, want 1", n)
		}
		// The bucket refills with time.
		e.clock.Advance(time.Duration(wait) * time.Second)
		if r := signIn("cleo@example.com"); r.StatusCode != 200 {
			t.Fatalf("after waiting: %d %s", r.StatusCode, r.body)
		}
	})
}

func TestDevSignIn(t *testing.T) {
	db := sqltest.SQLite(t)
	t.Run("refused in production", func(t *testing.T) {
		cfg := devConfig()
		cfg.Env = "production"
		eng, err := engine()
		if err != nil {
			t.Fatal(err)
		}
		_, err = accounts.New(cfg, accounts.Deps{DB: db, Guard: authz.NewGuard(eng)})
		if err == nil || !strings.Contains(err.Error(), "production") {
			t.Fatalf("New with dev sign-in in production: %v", err)
		}
	})
	t.Run("not mounted without dev", func(t *testing.T) {
		e := newEnv(t, db, testConfig())
		if r := e.browser().do(http.MethodPost, "/v1/auth/dev", map[string]string{"email": "a@example.com"}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("POST /v1/auth/dev without dev: %d", r.StatusCode)
		}
		if strings.Contains(e.logs.String(), "DEV SIGN-IN") {
			t.Error("warned about dev sign-in that is off")
		}
	})
	t.Run("warns loudly when on", func(t *testing.T) {
		e := newEnv(t, db, devConfig())
		if !strings.Contains(e.logs.String(), "level=WARN") || !strings.Contains(e.logs.String(), "DEV SIGN-IN IS ON") {
			t.Fatalf("no warning at start: %s", e.logs.String())
		}
		if r := e.browser().do(http.MethodPost, "/v1/auth/dev", map[string]string{"email": "Ann <ann@example.com>"}); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("display-name address accepted: %d", r.StatusCode)
		}
	})
}

func TestRoutesAreDocumented(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), devConfig())
	if missing := web.UndocumentedRoutes(e.app, e.doc); len(missing) > 0 {
		t.Errorf("undocumented routes: %v", missing)
	}
	if _, err := e.doc.JSON(); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
}
