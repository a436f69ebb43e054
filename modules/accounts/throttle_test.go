package accounts_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// TestFailedAuthenticationIsThrottled sends a burst of wrong bearer
// tokens from one address, as a token guesser does: the first 20 get 401,
// then the address is answered 429 with Retry-After, even with a good
// token, until it has waited.
func TestFailedAuthenticationIsThrottled(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, devConfig())
		good, err := e.m.CreateToken(context.Background(), "ann@example.com", "user")
		if err != nil {
			t.Fatal(err)
		}
		wrong := "stw_" + strings.Repeat("a", 52)
		for i := range 20 {
			if r := e.bearer(wrong, http.MethodGet, "/v1/me", nil); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong token %d: status %d, want 401", i+1, r.StatusCode)
			}
		}
		r := e.bearer(wrong, http.MethodGet, "/v1/me", nil)
		if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Fatalf("21st wrong token: status %d Retry-After %q, want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
		}
		if r := e.bearer(good, http.MethodGet, "/v1/me", nil); r.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a good token from the blocked address: status %d, want 429", r.StatusCode)
		}
		// Ten failures a minute refill: after six seconds one more try.
		e.clock.Advance(7 * time.Second)
		if r := e.bearer(good, http.MethodGet, "/v1/me", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("a good token after waiting: status %d %s, want 200", r.StatusCode, r.body)
		}
	})
}
