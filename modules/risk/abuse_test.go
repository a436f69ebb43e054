package risk_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/risk"
)

func TestAbuseEventsAccessFollowsPolicy(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, risk.Config{})
		ctx := context.Background()
		if err := e.mod.RecordAbuse(ctx, "sign_in_failed", "u1", "203.0.113.77", "Chrome on Windows", "bad_token"); err != nil {
			t.Fatal(err)
		}
		if err := e.mod.RecordAbuse(ctx, "rate_limited", "u2", "198.51.100.9", "Firefox on Linux", "auth_ip"); err != nil {
			t.Fatal(err)
		}
		if err := e.mod.RecordAbuse(ctx, "rate_limited", "", "192.0.2.1", "", "auth_ip"); err != nil {
			t.Fatal(err)
		}

		tests := []listCase{
			{name: "the dpo reads one user's events", principal: "d1:dpo", query: url.Values{"user_id": {"u1"}}, want: http.StatusOK, wantItems: 1},
			{name: "the dpo reads every event", principal: "d1:dpo", want: http.StatusOK, wantItems: 3},
			{name: "the admin filters by rule", principal: "a1:admin", query: url.Values{"kind": {"rate_limited"}}, want: http.StatusOK, wantItems: 2},
			{name: "a support agent may not", principal: "s1:support", query: url.Values{"user_id": {"u1"}}, want: http.StatusForbidden},
			{name: "an analyst may not", principal: "n1:analyst", want: http.StatusForbidden},
			{name: "a user may not read the log about themself", principal: "u1:user", query: url.Values{"user_id": {"u1"}}, want: http.StatusForbidden},
			{name: "a user may not read the whole log", principal: "u1:user", want: http.StatusForbidden},
			{name: "a bad limit", principal: "d1:dpo", query: url.Values{"limit": {"0x"}}, want: http.StatusBadRequest},
			{name: "signed out", principal: "", want: http.StatusUnauthorized},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p, out, ok := e.list(t, "/v1/risk/abuse-events", tt)
				if !ok {
					return
				}
				if len(p.Items) != tt.wantItems || p.NextCursor != "" {
					t.Fatalf("got %d items (next %q), want %d on one page: %s", len(p.Items), p.NextCursor, tt.wantItems, out)
				}
				for _, it := range p.Items {
					if it["kind"] == nil || it["ip_truncated"] == nil || it["occurred_at"] == nil {
						t.Errorf("item %v has its abuse data redacted", it)
					}
				}
				if uid := tt.query.Get("user_id"); uid != "" && p.Items[0]["user_id"] != uid {
					t.Errorf("filtered by %s, got %v", uid, p.Items[0])
				}
			})
		}
	})
}

// TestAbuseEventsPaging walks the log a page at a time, with several events
// recorded in the same microsecond, and checks every event comes exactly
// once, newest first.
func TestAbuseEventsPaging(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, risk.Config{})
		ctx := context.Background()
		base := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
		// Seven events at four instants: three share one instant, two
		// another.
		offsets := []time.Duration{0, time.Second, time.Second, time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}
		for _, off := range offsets {
			e.clock.Set(base.Add(off))
			if err := e.mod.RecordAbuse(ctx, "rate_limited", "u1", "203.0.113.7", "", "auth_ip"); err != nil {
				t.Fatal(err)
			}
		}
		for _, limit := range []string{"1", "2", "3", "7"} {
			t.Run("limit "+limit, func(t *testing.T) {
				seen := map[string]bool{}
				var last time.Time
				cur, pages := "", 0
				for {
					q := url.Values{"user_id": {"u1"}, "limit": {limit}}
					if cur != "" {
						q.Set("cursor", cur)
					}
					status, out := e.do(fiber.MethodGet, "/v1/risk/abuse-events?"+q.Encode(), "d1:dpo")
					var p page
					if status != http.StatusOK || json.Unmarshal(out, &p) != nil {
						t.Fatalf("page = %d %s", status, out)
					}
					pages++
					for _, it := range p.Items {
						id := it["id"].(string)
						if seen[id] {
							t.Errorf("event %s listed twice", id)
						}
						seen[id] = true
						at, err := time.Parse(time.RFC3339Nano, it["occurred_at"].(string))
						if err != nil {
							t.Fatal(err)
						}
						if !last.IsZero() && at.After(last) {
							t.Errorf("event at %v listed after one at %v", at, last)
						}
						last = at
					}
					if cur = p.NextCursor; cur == "" || pages > 10 {
						break
					}
				}
				if len(seen) != len(offsets) {
					t.Errorf("paged through %d events, want %d", len(seen), len(offsets))
				}
			})
		}
	})
}
