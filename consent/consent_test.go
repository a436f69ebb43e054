package consent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

func proofs(t *testing.T, h *harness, visitorID, userID string) []consent.Proof {
	t.Helper()
	p, err := h.mod.Proofs(context.Background(), visitorID, userID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func consentFor(t *testing.T, h *harness, visitorID, userID string) (string, bool) {
	t.Helper()
	p, explicit, err := h.mod.ConsentFor(context.Background(), visitorID, userID)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(p, ","), explicit
}

// TestGiveWithdrawReconsentExpire walks one visitor through the life of a
// choice: none, give, withdraw, a new privacy policy, expiry.
func TestGiveWithdrawReconsentExpire(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		clk := newClock()
		h := newHarness(t, db, clk, nil)
		b := h.browser()

		v := b.get()
		if !v.Ask || v.AskReason != consent.AskNoChoice || granted(v) != "necessary" || v.Subject != "none" {
			t.Fatalf("fresh visitor: %+v", v)
		}
		if b.VID != "" {
			t.Fatal("GET without a choice set a visitor cookie")
		}

		v = b.put(consent.MethodBannerAccept, nil)
		if v.Ask || granted(v) != "necessary,functional,analytics,marketing" || v.Subject != "visitor" {
			t.Fatalf("after accept all: %+v", v)
		}
		c := b.Cookie
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Fatalf("visitor cookie %+v: want HttpOnly, SameSite=Lax, Path=/", c)
		}
		if life := time.Duration(c.MaxAge) * time.Second; life < 390*24*time.Hour || life > 400*24*time.Hour {
			t.Fatalf("visitor cookie lives %s, want 13 months", life)
		}
		if got, _ := consentFor(t, h, b.VID, ""); got != "necessary,functional,analytics,marketing" {
			t.Fatalf("ConsentFor after accept = %s", got)
		}

		// Withdrawing one purpose is one request, like giving it.
		clk.Advance(time.Hour)
		v = b.put(consent.MethodPreferences, map[string]bool{"analytics": false})
		if granted(v) != "necessary,functional,marketing" || v.Choice.Method != consent.MethodPreferences {
			t.Fatalf("after withdrawing analytics: %+v", v)
		}
		if got, _ := consentFor(t, h, b.VID, ""); got != "necessary,functional,marketing" {
			t.Fatalf("ConsentFor after withdrawal = %s", got)
		}
		// Reject all withdraws everything at once.
		v = b.put(consent.MethodBannerReject, nil)
		if granted(v) != "necessary" {
			t.Fatalf("after reject all: %+v", v)
		}
		v = b.put(consent.MethodBannerSave, map[string]bool{"analytics": true, "functional": true})
		if granted(v) != "necessary,functional,analytics" {
			t.Fatalf("after saving analytics and functional: %+v", v)
		}

		// The proof log holds every choice, append-only: 4 rows for accept
		// (necessary and the three optional purposes), 2 for the
		// withdrawal (necessary, analytics), 4 for reject, 3 for the save.
		log := proofs(t, h, b.VID, "")
		if len(log) != 4+2+4+3 {
			t.Fatalf("proof log has %d rows, want 13", len(log))
		}
		first := log[0]
		if first.Method != consent.MethodBannerAccept || first.PolicyVersion != "2026-05" || first.BannerVersion != "b1" ||
			first.UserAgent != "Firefox 128 (Linux, desktop)" || first.IPTruncated != "198.51.100.0" {
			t.Fatalf("first proof row %+v", first)
		}

		// A new privacy policy asks again; the choice stays in effect.
		h2 := newHarness(t, db, clk, func(o *consent.Config) { o.PolicyVersion = "2026-09" })
		b2 := h2.browser()
		b2.VID = b.VID
		v = b2.get()
		if !v.Ask || v.AskReason != consent.AskPolicyChanged || v.PolicyVersion != "2026-09" || granted(v) != "necessary,functional,analytics" {
			t.Fatalf("after a policy change: %+v", v)
		}

		// 13 months later the choice has lapsed: asked again, nothing
		// granted.
		clk.Advance(13*31*24*time.Hour + time.Hour)
		v = b.get()
		if !v.Ask || v.AskReason != consent.AskExpired || granted(v) != "necessary" {
			t.Fatalf("after 13 months: %+v", v)
		}
		if got, _ := consentFor(t, h, b.VID, ""); got != "necessary" {
			t.Fatalf("ConsentFor after expiry = %s", got)
		}
	})
}

func TestGlobalPrivacyControl(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		clk := newClock()
		h := newHarness(t, db, clk, nil)

		t.Run("header opts out of marketing and is recorded once", func(t *testing.T) {
			b := h.browser()
			b.put(consent.MethodBannerSave, map[string]bool{"analytics": true, "marketing": true})
			b.GPC = true
			v := b.get()
			if v.Purposes["marketing"] || !v.GPC || !v.Purposes["analytics"] {
				t.Fatalf("GET with Sec-GPC: %+v", v)
			}
			b.get()
			var gpcRows int
			for _, p := range proofs(t, h, b.VID, "") {
				if p.Method == consent.MethodGPC {
					gpcRows++
					if p.Purpose != "marketing" || p.Granted || !p.GPC {
						t.Errorf("gpc proof row %+v", p)
					}
				}
			}
			if gpcRows != 1 {
				t.Fatalf("%d gpc proof rows, want 1", gpcRows)
			}
			if got, explicit := consentFor(t, h, b.VID, ""); got != "necessary,analytics" || explicit {
				t.Fatalf("ConsentFor = %s, explicit %v", got, explicit)
			}

			// Switching marketing on while the signal is on is an explicit
			// opt-in the signal no longer overrides.
			clk.Advance(time.Minute)
			v = b.put(consent.MethodPreferences, map[string]bool{"marketing": true})
			if !v.Purposes["marketing"] || v.GPC {
				t.Fatalf("explicit opt-in under GPC: %+v", v)
			}
			if got, explicit := consentFor(t, h, b.VID, ""); got != "necessary,analytics,marketing" || !explicit {
				t.Fatalf("ConsentFor after explicit opt-in = %s, explicit %v", got, explicit)
			}
			before := len(proofs(t, h, b.VID, ""))
			if v := b.get(); !v.Purposes["marketing"] {
				t.Fatalf("GET with GPC after explicit opt-in: %+v", v)
			}
			if after := len(proofs(t, h, b.VID, "")); after != before {
				t.Fatalf("GET with GPC after an explicit opt-in recorded %d rows", after-before)
			}
		})

		t.Run("accept all under the signal leaves marketing off", func(t *testing.T) {
			b := h.browser()
			b.GPC = true
			v := b.put(consent.MethodBannerAccept, nil)
			if granted(v) != "necessary,functional,analytics" || !v.GPC {
				t.Fatalf("accept all with GPC: %+v", v)
			}
			if _, explicit := consentFor(t, h, b.VID, ""); explicit {
				t.Fatal("accept all under GPC counted as an explicit marketing opt-in")
			}
		})

		t.Run("client-side signal", func(t *testing.T) {
			b := h.browser()
			b.put(consent.MethodBannerAccept, nil)
			resp, raw := b.do("GET", "/v1/consent?gpc=1", nil)
			var v consent.View
			if err := json.Unmarshal(raw, &v); err != nil || resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, raw)
			}
			if v.Purposes["marketing"] || !v.GPC {
				t.Fatalf("GET ?gpc=1: %+v", v)
			}
			v = b.put(consent.MethodGPC, nil)
			if v.Purposes["marketing"] || !v.Purposes["analytics"] {
				t.Fatalf("PUT method gpc: %+v", v)
			}
		})

		t.Run("gpc.json", func(t *testing.T) {
			resp, raw := h.browser().do("GET", "/.well-known/gpc.json", nil)
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil || resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, raw)
			}
			if doc["gpc"] != true {
				t.Fatalf("gpc.json = %s", raw)
			}
			if _, err := time.Parse("2006-01-02", doc["lastUpdate"].(string)); err != nil {
				t.Fatalf("lastUpdate: %v", err)
			}
		})
	})
}

func TestMergeVisitorIntoAccount(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		clk := newClock()
		h := newHarness(t, db, clk, nil)
		ctx := context.Background()

		tests := []struct {
			name    string
			account map[string]bool // nil: the account has no choice
			visitor map[string]bool
			want    string
		}{
			{"account without a choice takes the visitor's", nil,
				map[string]bool{"functional": true, "analytics": true, "marketing": false}, "necessary,functional,analytics"},
			{"a denial beats a grant, both ways", map[string]bool{"functional": true, "analytics": false, "marketing": true},
				map[string]bool{"functional": false, "analytics": true, "marketing": true}, "necessary,marketing"},
			{"grants on both sides stay", map[string]bool{"functional": true, "analytics": true, "marketing": true},
				map[string]bool{"functional": true, "analytics": true, "marketing": true}, "necessary,functional,analytics,marketing"},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				user := "user-" + string(rune('a'+i))
				if tc.account != nil {
					// The account's choice, made on another browser.
					other := h.browser()
					other.User = user
					other.put(consent.MethodBannerSave, tc.account)
				}
				clk.Advance(time.Minute)
				b := h.browser()
				b.put(consent.MethodBannerSave, tc.visitor)
				if _, err := h.mod.SignedIn(ctx, b.VID, user); err != nil {
					t.Fatal(err)
				}
				if got, _ := consentFor(t, h, "", user); got != tc.want {
					t.Fatalf("account after merge: %s, want %s", got, tc.want)
				}
				// The sign-in links the browser's anonymous past to the
				// account, so exports and erasures follow it into the events.
				linked, err := h.mod.Browsing(ctx, user)
				if err != nil || len(linked) != 1 || linked[0].VisitorID != b.VID || !linked[0].After.IsZero() {
					t.Fatalf("Browsing(%s) = %+v, %v; want all of %s up to the sign-in", user, linked, err, b.VID)
				}
				b.User = user
				if v := b.get(); granted(v) != tc.want || v.Subject != "user" {
					t.Fatalf("GET as the user after merge: %+v", v)
				}
				// The user chooses again: their new choice wins.
				v := b.put(consent.MethodPreferences, map[string]bool{"functional": true, "analytics": true, "marketing": true})
				if granted(v) != "necessary,functional,analytics,marketing" {
					t.Fatalf("choice after merge: %+v", v)
				}
				// A signed-in choice also binds the browser, so signing out
				// does not bring back an older one.
				v = b.put(consent.MethodBannerReject, nil)
				b.User = ""
				if v := b.get(); granted(v) != "necessary" {
					t.Fatalf("visitor after the user rejected all: %+v", v)
				}
			})
		}
		if err := h.mod.MergeVisitor(ctx, "", "user-z"); err != nil {
			t.Fatalf("merge without a visitor id: %v", err)
		}
	})
}

func TestPutValidation(t *testing.T) {
	h := newHarness(t, sqltest.SQLite(t), newClock(), nil)
	tests := []struct {
		name   string
		body   any
		fields []string
	}{
		{"missing method", map[string]any{"purposes": map[string]bool{"analytics": true}, "policy_version": "2026-05", "banner_version": "b1"}, []string{"method"}},
		{"unknown method", map[string]any{"method": "merge", "purposes": map[string]bool{"analytics": true}, "policy_version": "2026-05", "banner_version": "b1"}, []string{"method"}},
		{"unknown purpose", map[string]any{"method": "banner_save", "purposes": map[string]bool{"advertising": true}, "policy_version": "2026-05", "banner_version": "b1"}, []string{"purposes.advertising"}},
		{"necessary refused", map[string]any{"method": "banner_save", "purposes": map[string]bool{"necessary": false}, "policy_version": "2026-05", "banner_version": "b1"}, []string{"purposes.necessary"}},
		{"accept all with a denial", map[string]any{"method": "banner_accept", "purposes": map[string]bool{"marketing": false}, "policy_version": "2026-05", "banner_version": "b1"}, []string{"purposes.marketing"}},
		{"reject all with a grant", map[string]any{"method": "banner_reject", "purposes": map[string]bool{"analytics": true}, "policy_version": "2026-05", "banner_version": "b1"}, []string{"purposes.analytics"}},
		{"save without purposes", map[string]any{"method": "banner_save", "policy_version": "2026-05", "banner_version": "b1"}, []string{"purposes"}},
		{"no versions", map[string]any{"method": "banner_accept"}, []string{"banner_version", "policy_version"}},
		{"bad version", map[string]any{"method": "banner_accept", "policy_version": "<b>", "banner_version": "b1"}, []string{"policy_version"}},
		{"wrong type", map[string]any{"method": "banner_save", "purposes": map[string]any{"analytics": "yes"}, "policy_version": "2026-05", "banner_version": "b1"}, []string{"purposes"}},
		{"unknown field", map[string]any{"method": "banner_accept", "policy_version": "2026-05", "banner_version": "b1", "color": "red"}, []string{"color"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser()
			resp, raw := b.do("PUT", "/v1/consent", tc.body)
			if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
			}
			var p problem
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			var fields []string
			for _, e := range p.Errors {
				fields = append(fields, e.Field)
			}
			slices.Sort(fields)
			if strings.Join(fields, " ") != strings.Join(tc.fields, " ") {
				t.Fatalf("fields %v, want %v (%s)", fields, tc.fields, raw)
			}
			if b.VID != "" {
				t.Fatal("a refused choice set a visitor cookie")
			}
		})
	}
}

func TestPseudonymize(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		h := newHarness(t, db, newClock(), nil)
		ctx := context.Background()
		b := h.browser()
		b.User = "user-erase"
		b.put(consent.MethodBannerAccept, nil)
		other := h.browser()
		other.put(consent.MethodBannerReject, nil)

		n, err := h.mod.Pseudonymize(ctx, module.SubjectRef{UserID: "user-erase", Browsing: []module.Browsing{{VisitorID: b.VID, Until: time.Now()}}})
		if err != nil {
			t.Fatal(err)
		}
		if n != 4 {
			t.Fatalf("pseudonymized %d proof rows, want 4", n)
		}
		if left := proofs(t, h, b.VID, "user-erase"); len(left) != 0 {
			t.Fatalf("%d proof rows still name the subject", len(left))
		}
		var kept []consent.Proof
		if err := db.NewSelect().Model(&kept).Where("subject_hash = ?", consent.SubjectHash([]byte("test erasure key"), "user_id", "user-erase")).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if len(kept) != 4 || kept[0].VisitorID != nil || kept[0].UserID != nil || kept[0].Method != consent.MethodBannerAccept {
			t.Fatalf("kept proof %+v", kept)
		}
		if got, _ := consentFor(t, h, b.VID, "user-erase"); got != "necessary" {
			t.Fatalf("state after erasure: %s", got)
		}
		if got := proofs(t, h, other.VID, ""); len(got) != 4 {
			t.Fatalf("another visitor's proof changed: %d rows", len(got))
		}
		if n, err := h.mod.Pseudonymize(ctx, module.SubjectRef{UserID: "user-erase", Browsing: []module.Browsing{{VisitorID: b.VID, Until: time.Now()}}}); err != nil || n != 0 {
			t.Fatalf("second erasure: %d, %v", n, err)
		}
	})
}

// TestModelsCoverSchema checks that every column of the consent tables, as
// migrated, has a model field with a privacy tag, and the other way round.
func TestModelsCoverSchema(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		h := newHarness(t, db, newClock(), nil)
		tagged := map[string]string{}
		for _, m := range h.mod.Models() {
			table := db.Table(reflectType(m))
			for _, f := range table.Fields {
				tag := f.StructField.Tag.Get("privacy")
				if tag == "" {
					t.Errorf("%s.%s has no privacy tag", table.Name, f.Name)
				}
				tagged[table.Name+"."+f.Name] = tag
			}
		}
		cols, err := schemaColumns(db)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, c := range cols {
			if c.Table != "consent_state" && c.Table != "consent_log" && c.Table != "visitor_links" {
				continue
			}
			seen++
			if _, ok := tagged[c.Table+"."+c.Name]; !ok {
				t.Errorf("column %s.%s has no model field", c.Table, c.Name)
			}
		}
		if seen != len(tagged) {
			t.Errorf("schema has %d consent columns, models %d", seen, len(tagged))
		}
	})
}

// TestPolicyVersionInForce: a choice is recorded only under the policy and
// banner versions in force, or under the previous policy version during
// its grace period; any other version is refused with nothing stored, so
// no event is ever accepted under a consent that proves nothing.
func TestPolicyVersionInForce(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		clk := newClock()
		graceEnd := clk.Now().Add(24 * time.Hour)
		h := newHarness(t, db, clk, func(o *consent.Config) {
			o.PreviousPolicyVersion, o.PreviousPolicyUntil = "2026-01", graceEnd
		})
		tests := []struct {
			name          string
			after         time.Duration // from the start of the test's clock
			policy        string
			banner        string
			wantField     string // "" when accepted
			wantAsk       bool
			wantAskReason string
		}{
			{name: "made-up version", policy: "abc", banner: "b1", wantField: "policy_version"},
			{name: "future version", policy: "999", banner: "b1", wantField: "policy_version"},
			{name: "older version than the previous", policy: "2025-06", banner: "b1", wantField: "policy_version"},
			{name: "unknown banner version", policy: "2026-05", banner: "b0", wantField: "banner_version"},
			{name: "versions in force", policy: "2026-05", banner: "b1"},
			{name: "previous version during its grace period", policy: "2026-01", banner: "b1", wantAsk: true, wantAskReason: consent.AskPolicyChanged},
			{name: "previous version after its grace period", after: 25 * time.Hour, policy: "2026-01", banner: "b1", wantField: "policy_version"},
		}
		start := clk.Now()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				clk.Set(start.Add(tt.after))
				b := h.browser()
				resp, raw := b.do("PUT", "/v1/consent", map[string]any{
					"method": consent.MethodBannerAccept, "policy_version": tt.policy, "banner_version": tt.banner,
				})
				if tt.wantField != "" {
					if resp.StatusCode != 400 {
						t.Fatalf("status = %d, want 400: %s", resp.StatusCode, raw)
					}
					var p problem
					if err := json.Unmarshal(raw, &p); err != nil {
						t.Fatal(err)
					}
					if len(p.Errors) != 1 || p.Errors[0].Field != tt.wantField || p.Errors[0].Rule != "version" {
						t.Fatalf("errors = %+v, want %s", p.Errors, tt.wantField)
					}
					if b.VID != "" {
						t.Fatal("a refused choice set a visitor cookie")
					}
					return
				}
				if resp.StatusCode != 200 {
					t.Fatalf("status = %d: %s", resp.StatusCode, raw)
				}
				v := b.get()
				if v.Ask != tt.wantAsk || v.AskReason != tt.wantAskReason || v.Choice == nil || v.Choice.PolicyVersion != tt.policy {
					t.Fatalf("view = %+v", v)
				}
				log := proofs(t, h, b.VID, "")
				if len(log) == 0 || log[0].PolicyVersion != tt.policy || log[0].BannerVersion != tt.banner {
					t.Fatalf("proofs = %+v", log)
				}
			})
		}
	})
}
