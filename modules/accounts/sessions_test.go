package accounts_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/accounts"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tableText returns every value of every row of table as text.
func tableText(t *testing.T, db *bun.DB, table string) string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT * FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var sb strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			fmt.Fprintf(&sb, "%v\n", v)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func devConfig() accounts.Config {
	cfg := testConfig()
	cfg.Dev = true
	return cfg
}

func TestSecretsAreHashedAtRest(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		e := newEnv(t, db, devConfig())
		b := e.devSignIn("ann@example.com")
		secret := b.cookie(accounts.CookieSession)
		device := b.cookie(accounts.CookieDevice)
		if len(secret) < 43 || len(device) < 43 {
			t.Fatalf("session secret %d and device id %d characters, want 256-bit values", len(secret), len(device))
		}
		cliToken, err := e.m.CreateToken(ctx, "bob@example.com", "analyst")
		if err != nil {
			t.Fatal(err)
		}
		r := b.do(http.MethodPost, "/v1/me/tokens", map[string]string{"name": "laptop script"})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("create token: %d %s", r.StatusCode, r.body)
		}
		apiToken, _ := r.json(t)["token"].(string)
		for _, tok := range []string{cliToken, apiToken} {
			if !strings.HasPrefix(tok, accounts.TokenPrefix) {
				t.Errorf("token %q lacks the %s prefix", tok[:6], accounts.TokenPrefix)
			}
		}

		secrets := map[string]string{"session secret": secret, "device id": device, "CLI token": cliToken, "API token": apiToken}
		for _, table := range []string{"users", "sessions", "api_tokens", "sign_in_events", "device_bindings", "admin_log", "abuse_events"} {
			text := tableText(t, db, table)
			for what, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("table %s holds the %s in the clear", table, what)
				}
			}
		}
		if n := count(t, db, "sessions", "secret_hash = ?", sha256Hex(secret)); n != 1 {
			t.Errorf("no session stored under the secret's SHA-256")
		}
		for _, tok := range []string{cliToken, apiToken} {
			if n := count(t, db, "api_tokens", "secret_hash = ?", sha256Hex(tok)); n != 1 {
				t.Errorf("no token stored under its SHA-256")
			}
		}
		if n := count(t, db, "device_bindings", "device_hash = ?", sha256Hex(device)); n != 1 {
			t.Errorf("no device binding stored under the device id's SHA-256")
		}
		// The token list shows tokens, never the secrets.
		list := b.do(http.MethodGet, "/v1/me/tokens", nil)
		if list.StatusCode != 200 || strings.Contains(string(list.body), apiToken) || strings.Contains(string(list.body), sha256Hex(apiToken)) {
			t.Errorf("token list: %d %s", list.StatusCode, list.body)
		}
	})
}

func TestRevocationIsImmediate(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, devConfig())
		laptop := e.devSignIn("ann@example.com")
		phone := e.devSignIn("ann@example.com")
		phone.ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"

		r := laptop.do(http.MethodGet, "/v1/me/sessions", nil)
		if r.StatusCode != 200 {
			t.Fatalf("list sessions: %d %s", r.StatusCode, r.body)
		}
		body := string(r.body)
		if strings.Contains(body, laptop.cookie(accounts.CookieSession)) || strings.Contains(body, "secret") {
			t.Fatalf("session list shows secrets: %s", body)
		}
		var phoneID string
		var current int
		var sessions []map[string]any
		decodeJSON(t, r.body, &sessions)
		if len(sessions) != 2 {
			t.Fatalf("%d sessions listed, want 2: %s", len(sessions), body)
		}
		for _, s := range sessions {
			if s["current"] == true {
				current++
				if s["ua_family"] != "Chrome on macOS" {
					t.Errorf("ua_family = %v", s["ua_family"])
				}
			} else {
				phoneID, _ = s["id"].(string)
			}
		}
		if current != 1 || phoneID == "" {
			t.Fatalf("want one current session and one other: %s", body)
		}

		if r := phone.do(http.MethodGet, "/v1/me", nil); r.StatusCode != 200 {
			t.Fatalf("phone before revocation: %d", r.StatusCode)
		}
		if r := laptop.do(http.MethodDelete, "/v1/me/sessions/"+phoneID, nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
		}
		if r := phone.do(http.MethodGet, "/v1/me", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked session still answers %d", r.StatusCode)
		}
		if phone.cookie(accounts.CookieSession) != "" {
			t.Error("the revoked session's cookie was not cleared")
		}
		if r := laptop.do(http.MethodGet, "/v1/me", nil); r.StatusCode != 200 {
			t.Fatalf("the other session stopped working: %d", r.StatusCode)
		}
		// Someone else's session is not found, not revoked.
		other := e.devSignIn("bob@example.com")
		if r := other.do(http.MethodDelete, "/v1/me/sessions/"+sessions[0]["id"].(string), nil); r.StatusCode != http.StatusNotFound {
			t.Fatalf("revoking another account's session: %d", r.StatusCode)
		}

		// API tokens: revoked, the next request is refused.
		r = laptop.do(http.MethodPost, "/v1/me/tokens", map[string]string{"name": "ci"})
		tok, _ := r.json(t)["token"].(string)
		id, _ := r.json(t)["id"].(string)
		if r := e.bearer(tok, http.MethodGet, "/v1/me", nil); r.StatusCode != 200 {
			t.Fatalf("fresh token: %d %s", r.StatusCode, r.body)
		}
		if r := e.bearer(tok, http.MethodDelete, "/v1/me/tokens/"+id, nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke token: %d %s", r.StatusCode, r.body)
		}
		if r := e.bearer(tok, http.MethodGet, "/v1/me", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked token still answers %d", r.StatusCode)
		}
		// A revoked token is refused even on a route open to anyone.
		if r := e.bearer(tok, http.MethodPost, "/v1/auth/logout", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked token on a public route: %d", r.StatusCode)
		}
	})
}

func TestLogout(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, devConfig())
		b := e.devSignIn("ann@example.com")
		old := b.cookie(accounts.CookieSession)
		if r := b.do(http.MethodPost, "/v1/auth/logout", nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("logout: %d %s", r.StatusCode, r.body)
		}
		if b.cookie(accounts.CookieSession) != "" || b.cookie(accounts.CookieCSRF) != "" {
			t.Error("logout left the session cookies")
		}
		b.setCookie(accounts.CookieSession, old)
		if r := b.do(http.MethodGet, "/v1/me", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the signed-out session answers %d", r.StatusCode)
		}
		var events []accounts.SignInEvent
		if err := db.NewSelect().Model(&events).Order("occurred_at", "event").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 || events[0].Event != accounts.EventSignIn || events[0].Method != accounts.MethodDev ||
			events[1].Event != accounts.EventSignOut || events[0].UAFamily != "Chrome on macOS" {
			t.Fatalf("sign-in history = %+v", events)
		}
		// Signing out twice, or anonymously, is harmless.
		if r := e.browser().do(http.MethodPost, "/v1/auth/logout", nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("anonymous logout: %d", r.StatusCode)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		cfg := devConfig()
		cfg.SessionIdle = 2 * time.Hour
		cfg.SessionAbsolute = 5 * time.Hour
		e := newEnv(t, db, cfg)

		idle := e.devSignIn("ann@example.com")
		e.clock.Advance(time.Hour)
		if r := idle.do(http.MethodGet, "/v1/me", nil); r.StatusCode != 200 {
			t.Fatalf("within the idle time: %d", r.StatusCode)
		}
		e.clock.Advance(2*time.Hour + time.Second)
		if r := idle.do(http.MethodGet, "/v1/me", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after the idle time: %d", r.StatusCode)
		}

		busy := e.devSignIn("bea@example.com")
		for range 4 {
			e.clock.Advance(time.Hour)
			if r := busy.do(http.MethodGet, "/v1/me", nil); r.StatusCode != 200 {
				t.Fatalf("active session before its absolute end: %d", r.StatusCode)
			}
		}
		e.clock.Advance(time.Hour)
		if r := busy.do(http.MethodGet, "/v1/me", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after the absolute end: %d", r.StatusCode)
		}

		n, err := e.m.PurgeSessions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 || count(t, db, "sessions", "") != 0 {
			t.Errorf("purged %d sessions, want both ended ones", n)
		}
	})
}

// election is one process's part in the leader election, switched by the
// test.
type election struct{ leads atomic.Bool }

func (e *election) Leading() bool { return e.leads.Load() }

// TestSessionPurgeRunsOnTheLeader runs two processes' modules on one
// store: ended sessions stay while neither leads, however many purge
// intervals pass, and go once one of them leads.
func TestSessionPurgeRunsOnTheLeader(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		cfg := devConfig()
		cfg.SessionIdle = time.Hour
		cfg.PurgeInterval = 10 * time.Millisecond
		var first, second election
		a := newEnv(t, db, cfg, func(d *accounts.Deps) { d.Leader = &first })
		b := newEnv(t, db, cfg, func(d *accounts.Deps) { d.Leader = &second })
		a.devSignIn("ann@example.com")
		b.devSignIn("bea@example.com")
		a.clock.Advance(2 * time.Hour)
		b.clock.Advance(2 * time.Hour)

		time.Sleep(50 * cfg.PurgeInterval)
		if n := count(t, db, "sessions", ""); n != 2 {
			t.Fatalf("%d sessions left while no process leads, want both ended ones kept", n)
		}
		second.leads.Store(true)
		deadline := time.Now().Add(time.Minute)
		for count(t, db, "sessions", "") != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the leader did not purge the ended sessions within a minute")
			}
			time.Sleep(cfg.PurgeInterval)
		}
	})
}

func TestCSRF(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		cfg := devConfig()
		cfg.CSRFExemptPaths = []string{"/v1/events"}
		e := newEnv(t, db, cfg)
		// A beacon endpoint of another module, mounted like the others.
		e.app.Post("/v1/events", func(c *fiber.Ctx) error { return c.SendStatus(http.StatusAccepted) })
		b := e.devSignIn("ann@example.com")
		csrf := b.cookie(accounts.CookieCSRF)
		if csrf == "" {
			t.Fatal("sign-in set no CSRF cookie")
		}
		patch := func(header string) int {
			req := newJSONRequest(t, http.MethodPatch, "/v1/me", map[string]string{"name": "Ann"})
			if header != "" {
				req.Header.Set(accounts.HeaderCSRF, header)
			}
			return b.send(req).StatusCode
		}
		tests := []struct {
			name   string
			header string
			want   int
		}{
			{name: "no header", header: "", want: http.StatusForbidden},
			{name: "wrong header", header: "not-the-token", want: http.StatusForbidden},
			{name: "another session's token", header: e.devSignIn("bob@example.com").cookie(accounts.CookieCSRF), want: http.StatusForbidden},
			{name: "the session's token", header: csrf, want: http.StatusOK},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := patch(tt.header); got != tt.want {
					t.Errorf("PATCH /v1/me: %d, want %d", got, tt.want)
				}
			})
		}

		// An exempt path takes the session cookie without a header.
		if r := b.send(newJSONRequest(t, http.MethodPost, "/v1/events", map[string]string{"type": "page_view"})); r.StatusCode != http.StatusAccepted {
			t.Errorf("exempt path: %d %s", r.StatusCode, r.body)
		}
		// A bearer token needs no CSRF token: browsers never add one.
		tok, err := e.m.CreateToken(ctx, "ann@example.com", "user")
		if err != nil {
			t.Fatal(err)
		}
		if r := e.bearer(tok, http.MethodPatch, "/v1/me", map[string]string{"name": "Ann B."}); r.StatusCode != 200 {
			t.Errorf("bearer PATCH: %d %s", r.StatusCode, r.body)
		}
		// A safe request restores a lost CSRF cookie.
		delete(b.cookies, accounts.CookieCSRF)
		b.do(http.MethodGet, "/v1/me", nil)
		if b.cookie(accounts.CookieCSRF) != csrf {
			t.Error("GET did not restore the CSRF cookie")
		}
	})
}

func TestSessionCookies(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), devConfig())
	b := e.devSignIn("ann@example.com")
	sess, csrf, dev := b.cookies[accounts.CookieSession], b.cookies[accounts.CookieCSRF], b.cookies[accounts.CookieDevice]
	for _, c := range []*http.Cookie{sess, csrf, dev} {
		if c == nil {
			t.Fatal("a cookie is missing")
		}
		if !c.Secure || c.Path != "/" || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("%s: Secure %v, Path %q, SameSite %v", c.Name, c.Secure, c.Path, c.SameSite)
		}
	}
	if !sess.HttpOnly || !dev.HttpOnly || csrf.HttpOnly {
		t.Errorf("HttpOnly: session %v, device %v, csrf %v; want true, true, false", sess.HttpOnly, dev.HttpOnly, csrf.HttpOnly)
	}
	if d := dev.Expires.Sub(e.clock.Now()); d < 364*24*time.Hour {
		t.Errorf("device cookie lives %v, want a year", d)
	}
	if d := sess.Expires.Sub(e.clock.Now()); d != accounts.DefaultSessionAbsolute {
		t.Errorf("session cookie lives %v, want the absolute session time", d)
	}

	// Local http: Secure can be turned off.
	cfg := devConfig()
	cfg.CookieSecure = false
	plain := newEnv(t, sqltest.SQLite(t), cfg).devSignIn("ann@example.com")
	if plain.cookies[accounts.CookieSession].Secure {
		t.Error("CookieSecure false still set Secure")
	}
}

func TestDeviceBinding(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, devConfig())
		b := e.devSignIn("ann@example.com")
		device := b.cookie(accounts.CookieDevice)
		// The same browser signs in to a second account, then again to the
		// first: one device, two accounts, the first seen twice.
		e.clock.Advance(time.Hour)
		if r := b.do(http.MethodPost, "/v1/auth/dev", map[string]string{"email": "alt@example.com"}); r.StatusCode != 200 {
			t.Fatal(r.StatusCode)
		}
		e.clock.Advance(time.Hour)
		if r := b.do(http.MethodPost, "/v1/auth/dev", map[string]string{"email": "ann@example.com"}); r.StatusCode != 200 {
			t.Fatal(r.StatusCode)
		}
		if b.cookie(accounts.CookieDevice) != device {
			t.Fatal("the device id changed between sign-ins")
		}
		var binds []accounts.DeviceBinding
		if err := db.NewSelect().Model(&binds).Order("first_seen_at").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(binds) != 2 || binds[0].DeviceHash != binds[1].DeviceHash || binds[0].UserID == binds[1].UserID {
			t.Fatalf("bindings = %+v, want one device bound to two accounts", binds)
		}
		if got := binds[0].LastSeenAt.Sub(binds[0].FirstSeenAt); got != 2*time.Hour {
			t.Errorf("first account's device seen for %v, want 2h", got)
		}
		// Signing in again replaced the earlier session instead of adding
		// one per sign-in.
		if n := count(t, db, "sessions", ""); n != 1 {
			t.Errorf("%d sessions for one browser, want 1", n)
		}
		// A fresh browser is another device.
		e.devSignIn("ann@example.com")
		if n := count(t, db, "device_bindings", ""); n != 3 {
			t.Errorf("%d bindings after a second device, want 3", n)
		}
	})
}

// TestPrincipal checks what a request's principal carries (the account's
// email, for billing's checkout) and when SignedInAt says its session
// began: a session's sign-in, and nothing for a token, another account's
// session or a session that ended.
func TestPrincipal(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		e := newEnv(t, db, devConfig())
		type seen struct {
			UserID, Method, Email string
			SignedInAt            time.Time
			NotFound              bool
		}
		e.app.Get("/test/principal", func(c *fiber.Ctx) error {
			p, err := authz.Require(c)
			if err != nil {
				return err
			}
			at, err := e.m.SignedInAt(c.UserContext(), p)
			if err != nil && !errors.Is(err, errs.ErrNotFound) {
				return err
			}
			return c.JSON(seen{UserID: p.UserID, Method: p.Method, Email: p.Email, SignedInAt: at, NotFound: err != nil})
		})
		read := func(r response) seen {
			t.Helper()
			var s seen
			if r.StatusCode != http.StatusOK || json.Unmarshal(r.body, &s) != nil {
				t.Fatalf("principal: %d %s", r.StatusCode, r.body)
			}
			return s
		}

		signedIn := e.clock.Now()
		ann := e.devSignIn("ann@example.com")
		e.clock.Advance(time.Minute)
		annP := read(ann.do(http.MethodGet, "/test/principal", nil))
		if annP.Method != authz.MethodSession || annP.Email != "ann@example.com" || annP.NotFound || !annP.SignedInAt.Equal(signedIn) {
			t.Errorf("session principal = %+v, want ann@example.com signed in at %v", annP, signedIn)
		}

		tok, err := e.m.CreateToken(ctx, "bob@example.com", authz.RoleUser)
		if err != nil {
			t.Fatal(err)
		}
		if got := read(e.bearer(tok, http.MethodGet, "/test/principal", nil)); got.Method != authz.MethodToken || got.Email != "bob@example.com" || !got.NotFound {
			t.Errorf("token principal = %+v, want bob@example.com and no sign-in", got)
		}

		sessionID := ""
		if err := db.NewSelect().Table("sessions").Column("id").Where("user_id = ?", annP.UserID).Scan(ctx, &sessionID); err != nil {
			t.Fatal(err)
		}
		other := authz.Principal{UserID: "usr_other", Method: authz.MethodSession, CredentialID: sessionID}
		if _, err := e.m.SignedInAt(ctx, other); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("another account's session: %v, want not found", err)
		}
		if r := ann.do(http.MethodPost, "/v1/auth/logout", nil); r.StatusCode >= 300 {
			t.Fatalf("logout: %d %s", r.StatusCode, r.body)
		}
		ended := authz.Principal{UserID: annP.UserID, Method: authz.MethodSession, CredentialID: sessionID}
		if _, err := e.m.SignedInAt(ctx, ended); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("ended session: %v, want not found", err)
		}
	})
}
