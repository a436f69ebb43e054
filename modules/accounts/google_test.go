package accounts_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/accounts"
)

func TestGoogleSignIn(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		g := newGoogleServer(t)
		g.unpublished("k9")
		forger := rsaKey(t)
		e := newEnv(t, db, g.config())
		now := e.clock.Now()
		with := func(changes map[string]any) map[string]any {
			c := claims(now)
			for k, v := range changes {
				if v == nil {
					delete(c, k)
				} else {
					c[k] = v
				}
			}
			return c
		}
		valid := g.sign("k1", claims(now))

		tests := []struct {
			name string
			// send posts the sign-in from a fresh browser.
			send   func(b *browser) response
			status int
			// reason is the abuse log's code for a refused sign-in; the
			// answer's detail must be that reason's and no other's.
			reason string
		}{
			{name: "valid token signs in", status: 200,
				send: func(b *browser) response { return b.googleSignIn(valid) }},
			{name: "issuer without scheme is Google's too", status: 200,
				send: func(b *browser) response {
					return b.googleSignIn(g.sign("k1", with(map[string]any{"iss": "accounts.google.com"})))
				}},
			{name: "expired within the clock skew passes", status: 200,
				send: func(b *browser) response {
					return b.googleSignIn(g.sign("k1", with(map[string]any{"exp": now.Add(-30 * time.Second).Unix()})))
				}},
			{name: "expired", status: 401, reason: accounts.ReasonExpired,
				send: func(b *browser) response {
					return b.googleSignIn(g.sign("k1", with(map[string]any{"exp": now.Add(-2 * time.Minute).Unix()})))
				}},
			{name: "wrong audience", status: 401, reason: accounts.ReasonWrongAudience,
				send: func(b *browser) response {
					return b.googleSignIn(g.sign("k1", with(map[string]any{"aud": "someone-else.apps.googleusercontent.com"})))
				}},
			{name: "several audiences naming us as the authorized party", status: 200,
				send: func(b *browser) response {
					return b.googleSignIn(g.sign("k1", with(map[string]any{"aud": []string{clientID, "other.apps.googleusercontent.com"}, "azp": clientID})))
				}},
			{name: "several audiences without an authorized party", status: 401, reason: accounts.ReasonWrongAudience,
				send: func(b *browser) response {
					return b.googleSignIn(g.sign("k1", with(map[string]any{"aud": []string{clientID, "other.apps.googleusercontent.com"}})))
				}},
			{name: "issued to another party", status: 401, reason: accounts.ReasonWrongAudience,
				send: func(b *browser) response {
					return b.googleSignIn(g.sign("k1", with(map[string]any{"aud": []string{clientID, "other.apps.googleusercontent.com"}, "azp": "other.apps.googleusercontent.com"})))
				}},
			{name: "wrong issuer", status: 401, reason: accounts.ReasonWrongIssuer,
				send: func(b *browser) response {
					return b.googleSignIn(g.sign("k1", with(map[string]any{"iss": "https://evil.example"})))
				}},
			{name: "bad signature", status: 401, reason: accounts.ReasonBadSignature,
				send: func(b *browser) response { return b.googleSignIn(g.signWith("k1", forger, claims(now))) }},
			{name: "tampered payload", status: 401, reason: accounts.ReasonBadSignature,
				send: func(b *browser) response {
					other := g.sign("k1", with(map[string]any{"sub": "108842159999000000666"}))
					parts, otherParts := strings.Split(valid, "."), strings.Split(other, ".")
					return b.googleSignIn(parts[0] + "." + otherParts[1] + "." + parts[2])
				}},
			{name: "unknown key id", status: 401, reason: accounts.ReasonUnknownKey,
				send: func(b *browser) response { return b.googleSignIn(g.sign("k9", claims(now))) }},
			{name: "issued in the future", status: 401, reason: accounts.ReasonNotYetValid,
				send: func(b *browser) response {
					return b.googleSignIn(g.sign("k1", with(map[string]any{"iat": now.Add(10 * time.Minute).Unix()})))
				}},
			{name: "email not verified", status: 401, reason: accounts.ReasonEmailNotVerified,
				send: func(b *browser) response {
					return b.googleSignIn(g.sign("k1", with(map[string]any{"email_verified": false})))
				}},
			{name: "no email", status: 401, reason: accounts.ReasonMissingClaim,
				send: func(b *browser) response { return b.googleSignIn(g.sign("k1", with(map[string]any{"email": nil}))) }},
			{name: "no expiry", status: 401, reason: accounts.ReasonMissingClaim,
				send: func(b *browser) response { return b.googleSignIn(g.sign("k1", with(map[string]any{"exp": nil}))) }},
			{name: "not a JWT", status: 401, reason: accounts.ReasonMalformed,
				send: func(b *browser) response { return b.googleSignIn("not.a.jwt") }},
			{name: "not RS256", status: 401, reason: accounts.ReasonAlgorithm,
				send: func(b *browser) response {
					key, _ := jwk.Import([]byte("a shared secret that anyone could know"))
					_ = key.Set(jwk.KeyIDKey, "k1")
					tok := jwt.New()
					for k, v := range claims(now) {
						_ = tok.Set(k, v)
					}
					raw, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), key))
					if err != nil {
						t.Fatal(err)
					}
					return b.googleSignIn(string(raw))
				}},
			{name: "missing CSRF cookie", status: 401, reason: accounts.ReasonCSRFMissing,
				send: func(b *browser) response {
					return b.postForm("/v1/auth/google", url.Values{"credential": {valid}, "g_csrf_token": {"csrf-abc123"}})
				}},
			{name: "missing CSRF field", status: 401, reason: accounts.ReasonCSRFMissing,
				send: func(b *browser) response {
					b.setCookie(accounts.CookieGoogleCSRF, "csrf-abc123")
					return b.postForm("/v1/auth/google", url.Values{"credential": {valid}})
				}},
			{name: "mismatched CSRF", status: 401, reason: accounts.ReasonCSRFMismatch,
				send: func(b *browser) response {
					b.setCookie(accounts.CookieGoogleCSRF, "csrf-abc123")
					return b.postForm("/v1/auth/google", url.Values{"credential": {valid}, "g_csrf_token": {"csrf-evil"}})
				}},
			{name: "One Tap JSON with its CSRF pair", status: 200,
				send: func(b *browser) response {
					b.setCookie(accounts.CookieGoogleCSRF, "csrf-xyz")
					return b.do(http.MethodPost, "/v1/auth/google", map[string]string{
						"credential": valid, "g_csrf_token": "csrf-xyz", "select_by": "auto", "clientId": clientID})
				}},
			{name: "One Tap JSON without a CSRF token", status: 401, reason: accounts.ReasonCSRFMissing,
				send: func(b *browser) response {
					return b.do(http.MethodPost, "/v1/auth/google", map[string]string{"credential": valid})
				}},
			{name: "One Tap JSON with a mismatched CSRF token", status: 401, reason: accounts.ReasonCSRFMismatch,
				send: func(b *browser) response {
					b.setCookie(accounts.CookieGoogleCSRF, "csrf-xyz")
					return b.do(http.MethodPost, "/v1/auth/google", map[string]string{"credential": valid, "g_csrf_token": "other"})
				}},
			{name: "no credential", status: 400,
				send: func(b *browser) response {
					b.setCookie(accounts.CookieGoogleCSRF, "c")
					return b.postForm("/v1/auth/google", url.Values{"g_csrf_token": {"c"}})
				}},
			{name: "neither form nor JSON", status: 415,
				send: func(b *browser) response {
					req := httptest.NewRequest(http.MethodPost, "/v1/auth/google", strings.NewReader(valid))
					req.Header.Set("Content-Type", "text/plain")
					return b.send(req)
				}},
		}
		details := map[string]string{} // detail -> reason, to prove each reason has its own
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := e.browser()
				r := tt.send(b)
				if r.StatusCode != tt.status {
					t.Fatalf("status %d, want %d: %s", r.StatusCode, tt.status, r.body)
				}
				if tt.status == 200 {
					me := r.json(t)
					if id, _ := me["id"].(string); !strings.HasPrefix(id, "u_") || me["email"] != "ann@example.com" {
						t.Errorf("signed-in account = %v", me)
					}
					if b.cookie(accounts.CookieSession) == "" {
						t.Error("no session cookie after sign-in")
					}
					if r := b.do(http.MethodGet, "/v1/me", nil); r.StatusCode != 200 {
						t.Errorf("GET /v1/me with the new session: %d %s", r.StatusCode, r.body)
					}
					return
				}
				p := r.problem(t)
				if b.cookie(accounts.CookieSession) != "" {
					t.Error("a refused sign-in set a session cookie")
				}
				if tt.reason == "" {
					return
				}
				if p.Type != web.ProblemTypeBase+"unauthenticated" {
					t.Errorf("type %s", p.Type)
				}
				if prev, ok := details[p.Detail]; ok && prev != tt.reason {
					t.Errorf("reasons %s and %s answer the same detail %q", prev, tt.reason, p.Detail)
				}
				details[p.Detail] = tt.reason
				for _, internal := range []string{"jws", "jwt.", "failed to", "http://", "127.0.0.1", clientID} {
					if strings.Contains(p.Detail, internal) {
						t.Errorf("detail %q leaks %q", p.Detail, internal)
					}
				}
				if n := count(t, db, "abuse_events", "kind = ? AND detail = ?", accounts.AbuseSignInFailed, tt.reason); n == 0 {
					t.Errorf("no abuse event for %s", tt.reason)
				}
			})
		}
	})
}

func TestGoogleKeyRotation(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		g := newGoogleServer(t)
		cfg := g.config()
		cfg.JWKSRefetchInterval = time.Minute
		e := newEnv(t, db, cfg)

		if r := e.browser().googleSignIn(g.sign("k1", claims(e.clock.Now()))); r.StatusCode != 200 {
			t.Fatalf("sign-in with the first key: %d %s", r.StatusCode, r.body)
		}
		// Google rotates: a new key is served after the cache was filled.
		// Once the forced-fetch interval has passed, a token signed with
		// it makes the cache fetch again and signs in.
		g.publish("k2")
		e.clock.Advance(2 * time.Minute)
		before := g.fetches.Load()
		if r := e.browser().googleSignIn(g.sign("k2", claims(e.clock.Now()))); r.StatusCode != 200 {
			t.Fatalf("sign-in with the rotated key: %d %s", r.StatusCode, r.body)
		}
		if g.fetches.Load() == before {
			t.Error("the rotated key was accepted without fetching the key set")
		}

		// Unknown key ids cannot make the server fetch more than once per
		// interval: the second within the minute is refused without one.
		g.unpublished("k3")
		e.clock.Advance(2 * time.Minute)
		before = g.fetches.Load()
		for i := range 3 {
			r := e.browser().googleSignIn(g.sign("k3", claims(e.clock.Now())))
			if r.StatusCode != 401 || !strings.Contains(r.problem(t).Detail, "kid") {
				t.Fatalf("attempt %d with an unknown key: %d %s", i, r.StatusCode, r.body)
			}
		}
		if got := g.fetches.Load() - before; got != 1 {
			t.Errorf("three unknown-key tokens within a minute caused %d fetches, want 1", got)
		}
		// A key published later is still picked up after the interval.
		g.mu.Lock()
		priv := g.private["k3"]
		g.mu.Unlock()
		pub, _ := jwk.Import(priv.Public())
		_ = pub.Set(jwk.KeyIDKey, "k3")
		g.mu.Lock()
		g.public = append(g.public, pub)
		g.mu.Unlock()
		e.clock.Advance(2 * time.Minute)
		if r := e.browser().googleSignIn(g.sign("k3", claims(e.clock.Now()))); r.StatusCode != 200 {
			t.Fatalf("sign-in with a key published after a refusal: %d %s", r.StatusCode, r.body)
		}
	})
}

func TestGoogleKeysUnreachable(t *testing.T) {
	db := sqltest.SQLite(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	g := newGoogleServer(t)
	cfg := testConfig()
	cfg.GoogleClientID = clientID
	cfg.GoogleJWKSURL = dead.URL
	e := newEnv(t, db, cfg)
	r := e.browser().googleSignIn(g.sign("k1", claims(e.clock.Now())))
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("with Google's keys out of reach: %d (Retry-After %q) %s", r.StatusCode, r.Header.Get("Retry-After"), r.body)
	}
}

func TestGoogleSignInOff(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), testConfig())
	b := e.browser()
	b.setCookie(accounts.CookieGoogleCSRF, "c")
	r := b.postForm("/v1/auth/google", url.Values{"credential": {"x"}, "g_csrf_token": {"c"}})
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("without a client id: %d %s", r.StatusCode, r.body)
	}
}

func TestGoogleAccounts(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		g := newGoogleServer(t)
		e := newEnv(t, db, g.config())
		now := e.clock.Now()

		// An account made by email first (the CLI) is linked, not doubled,
		// when its owner signs in with Google.
		if _, err := e.m.CreateToken(ctx, "Ann@Example.com", "user"); err != nil {
			t.Fatal(err)
		}
		before, err := e.m.UserByEmail(ctx, "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		r := b.googleSignIn(g.sign("k1", claims(now)))
		if r.StatusCode != 200 {
			t.Fatalf("sign-in: %d %s", r.StatusCode, r.body)
		}
		me := r.json(t)
		if me["id"] != before.ID || me["role"] != "user" || me["name"] != "Ann Example" || me["avatar_url"] != "https://lh3.googleusercontent.com/a/ann" {
			t.Fatalf("linked account = %v, want %s with Google's name and picture", me, before.ID)
		}
		after, _ := e.m.UserByID(ctx, before.ID)
		if after.GoogleSubject == nil || *after.GoogleSubject != "108842159999000000001" {
			t.Errorf("google subject not stored: %v", after.GoogleSubject)
		}

		// The same Google account finds the same account again, with a new
		// email picked up and the name its owner chose kept.
		if r := b.do(http.MethodPatch, "/v1/me", map[string]string{"name": "Ann E."}); r.StatusCode != 200 {
			t.Fatalf("rename: %d %s", r.StatusCode, r.body)
		}
		c := claims(now)
		c["email"] = "ann@new.example"
		if r := e.browser().googleSignIn(g.sign("k1", c)); r.StatusCode != 200 || r.json(t)["id"] != before.ID ||
			r.json(t)["email"] != "ann@new.example" || r.json(t)["name"] != "Ann E." {
			t.Fatalf("second sign-in: %d %s", r.StatusCode, r.body)
		}
		if n := count(t, db, "users", ""); n != 1 {
			t.Errorf("%d accounts, want 1", n)
		}

		// Another Google account with an email already linked elsewhere is
		// refused rather than merged.
		c = claims(now)
		c["sub"] = "108842159999000000002"
		c["email"] = "ann@new.example"
		if r := e.browser().googleSignIn(g.sign("k1", c)); r.StatusCode != http.StatusConflict {
			t.Fatalf("second Google account on a linked email: %d %s", r.StatusCode, r.body)
		}

		// A new account takes its language from Accept-Language.
		c = claims(now)
		c["sub"] = "108842159999000000003"
		c["email"] = "bea@example.com"
		nb := e.browser()
		nb.setCookie(accounts.CookieGoogleCSRF, "x")
		req := httptest.NewRequest(http.MethodPost, "/v1/auth/google",
			strings.NewReader(url.Values{"credential": {g.sign("k1", c)}, "g_csrf_token": {"x"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept-Language", "ja;q=0.9, de-CH, fr;q=0.8")
		r = nb.send(req)
		if r.StatusCode != 200 || r.json(t)["language"] != "de" || r.json(t)["role"] != "user" {
			t.Fatalf("new account: %d %s", r.StatusCode, r.body)
		}
	})
}

func TestGoogleRedirectFlowLands(t *testing.T) {
	db := sqltest.SQLite(t)
	g := newGoogleServer(t)
	cfg := g.config()
	cfg.AfterSignInURL = "/app"
	e := newEnv(t, db, cfg)
	b := e.browser()
	r := b.googleSignIn(g.sign("k1", claims(e.clock.Now())))
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/app" || b.cookie(accounts.CookieSession) == "" {
		t.Fatalf("redirect flow: %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
}
