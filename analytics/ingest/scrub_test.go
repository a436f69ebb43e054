package ingest_test

import (
	"reflect"
	"strings"
	"testing"
)

// TestURLsLosePersonalData sends page views whose URLs, referrers and
// campaign fields carry e-mail addresses, ids and tokens, as real sites
// do (reset links, account pages, newsletters), and reads the stored rows
// straight from the warehouse: none of it is there.
func TestURLsLosePersonalData(t *testing.T) {
	s := newStack(t, stackOptions{})
	cl := s.accepting()
	tests := []struct {
		name                          string
		url, referrer, landing        string
		wantPath, wantLanding, wantRe string
		wantCampaign                  string
	}{
		{
			name:        "reset link with an e-mail and a token",
			url:         "https://app.example.com/users/carol.smith@example.com/reset/9f86d081884c7d65?email=carol.smith%40example.com",
			referrer:    "https://mail.example.com/inbox/1234567?user=carol.smith%40example.com",
			landing:     "https://app.example.com/welcome?utm_source=newsletter&utm_medium=email&utm_campaign=weekly+for+carol.smith%40example.com",
			wantPath:    "/users/:email/reset/:token",
			wantLanding: "/welcome", wantRe: "https://mail.example.com/inbox/:id?user=%3Aemail",
			wantCampaign: "weekly for :email",
		},
		{
			name:     "account page with a uuid",
			url:      "https://app.example.com/orders/3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b/receipt",
			referrer: "https://www.google.com/",
			landing:  "https://app.example.com/blog/how-to-write-a-good-prompt?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale_2026",
			wantPath: "/orders/:id/receipt", wantLanding: "/blog/how-to-write-a-good-prompt", wantRe: "https://www.google.com/",
			wantCampaign: "spring_sale_2026",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := fullEvent("page_view")
			ev["url"], ev["referrer"], ev["landing_page"] = tt.url, tt.referrer, tt.landing
			if status, res, raw := cl.send(ev); status != 202 || res.Stored != 1 {
				t.Fatalf("send: %d %s", status, raw)
			}
			s.flush()
			rows := s.rowsByID([]string{idOf(ev)})[idOf(ev)]
			if len(rows) != 1 {
				t.Fatalf("%d rows stored, want 1", len(rows))
			}
			r := rows[0]
			if r.Path != tt.wantPath || r.LandingPage != tt.wantLanding || r.Referrer != tt.wantRe || r.Campaign != tt.wantCampaign {
				t.Errorf("stored path %q landing %q referrer %q campaign %q,\nwant %q %q %q %q",
					r.Path, r.LandingPage, r.Referrer, r.Campaign, tt.wantPath, tt.wantLanding, tt.wantRe, tt.wantCampaign)
			}
			// Whatever the expectations above, no column holds the address.
			v := reflect.ValueOf(r)
			for i := range v.NumField() {
				if f := v.Field(i); f.Kind() == reflect.String && (strings.Contains(f.String(), "carol") || strings.Contains(f.String(), "%40")) {
					t.Errorf("column %s holds %q", v.Type().Field(i).Name, f.String())
				}
			}
		})
	}
	// Within a request, the handler reuses the last event's results for
	// a URL it has just seen: each event must still get its own.
	t.Run("one batch with URLs repeated and alternating", func(t *testing.T) {
		order := []int{0, 0, 1, 0, 1, 1}
		batch := make([]any, len(order))
		ids := make([]string, len(order))
		for j, i := range order {
			ev := fullEvent("page_view")
			ev["url"], ev["referrer"], ev["landing_page"] = tests[i].url, tests[i].referrer, tests[i].landing
			batch[j], ids[j] = ev, idOf(ev)
		}
		if status, res, raw := cl.send(batch); status != 202 || res.Stored != len(batch) {
			t.Fatalf("send: %d %s", status, raw)
		}
		s.flush()
		stored := s.rowsByID(ids)
		for j, i := range order {
			rows := stored[ids[j]]
			if len(rows) != 1 {
				t.Fatalf("event %d: %d rows stored, want 1", j, len(rows))
			}
			r, tt := rows[0], tests[i]
			if r.Path != tt.wantPath || r.LandingPage != tt.wantLanding || r.Referrer != tt.wantRe || r.Campaign != tt.wantCampaign {
				t.Errorf("event %d: stored path %q landing %q referrer %q campaign %q,\nwant %q %q %q %q",
					j, r.Path, r.LandingPage, r.Referrer, r.Campaign, tt.wantPath, tt.wantLanding, tt.wantRe, tt.wantCampaign)
			}
		}
	})
}
