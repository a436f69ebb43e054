package ingest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// TestNothingStoredBeyondConsent sends the same fully loaded page view and
// error event under every combination of functional, analytics and
// marketing consent, with and without Global Privacy Control, and reads
// ClickHouse to check that each stored column holds only what the consent
// in effect allows.
func TestNothingStoredBeyondConsent(t *testing.T) {
	s := newStack(t, stackOptions{})
	type tc struct {
		name                             string
		chosen                           bool // false: the visitor never answered the banner
		functional, analytics, marketing bool
		gpc                              bool
	}
	var cases []tc
	for mask := range 8 {
		for _, gpc := range []bool{false, true} {
			c := tc{chosen: true, functional: mask&1 != 0, analytics: mask&2 != 0, marketing: mask&4 != 0, gpc: gpc}
			c.name = fmt.Sprintf("functional=%v,analytics=%v,marketing=%v,gpc=%v", c.functional, c.analytics, c.marketing, c.gpc)
			cases = append(cases, c)
		}
	}
	cases = append(cases, tc{name: "no choice", chosen: false}, tc{name: "no choice with gpc", chosen: false, gpc: true})

	type sent struct {
		tc
		user          string
		pageID, errID string
	}
	var all []sent
	for i, c := range cases {
		cl := s.client()
		cl.User = fmt.Sprintf("user-%02d", i)
		if c.chosen {
			// The choice is made without the signal, so a marketing grant
			// is not an explicit opt-in made under GPC.
			cl.choose(consent.MethodBannerSave, map[string]bool{
				"functional": c.functional, "analytics": c.analytics, "marketing": c.marketing})
		}
		cl.GPC = c.gpc
		page, errEv := fullEvent("page_view"), fullEvent("error")
		status, res, raw := cl.send([]any{page, errEv})
		if status != 202 || res.Accepted != 2 || len(res.Rejected) != 0 {
			t.Fatalf("%s: %d %s", c.name, status, raw)
		}
		all = append(all, sent{tc: c, user: cl.User, pageID: page["event_id"].(string), errID: errEv["event_id"].(string)})
	}
	s.flush()

	var ids []string
	for _, a := range all {
		ids = append(ids, a.pageID, a.errID)
	}
	stored := s.rowsByID(ids)
	for _, a := range all {
		t.Run(a.name, func(t *testing.T) {
			analytics := a.chosen && a.analytics
			marketing := a.chosen && a.marketing && !a.gpc
			wantPurposes := []string{"necessary"}
			if a.chosen && a.functional {
				wantPurposes = append(wantPurposes, "functional")
			}
			if analytics {
				wantPurposes = append(wantPurposes, "analytics")
			}
			if marketing {
				wantPurposes = append(wantPurposes, "marketing")
			}
			slices.Sort(wantPurposes)

			pages := stored[a.pageID]
			if !analytics {
				if len(pages) != 0 {
					t.Fatalf("page view stored without analytics consent: %+v", pages)
				}
			} else {
				if len(pages) != 1 {
					t.Fatalf("page view stored %d times, want once", len(pages))
				}
				check(t, "page view", pages[0], analytics, marketing, a.user, wantPurposes)
			}
			errs := stored[a.errID]
			if len(errs) != 1 {
				t.Fatalf("error event stored %d times, want once (it needs only the necessary purpose)", len(errs))
			}
			check(t, "error event", errs[0], analytics, marketing, a.user, wantPurposes)
		})
	}
}

// check asserts the documented consent table on one stored row.
func check(t *testing.T, what string, r chtest.Event, analytics, marketing bool, user string, purposes []string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(what+": "+format, args...)
	}
	has := func(field, v string, allowed bool) {
		t.Helper()
		if allowed && v == "" {
			fail("%s is empty although consent allows it", field)
		}
		if !allowed && v != "" {
			fail("%s = %q stored without the consent it needs", field, v)
		}
	}
	// haveAll checks columns given as name, value, name, value... that
	// the same consent allows.
	haveAll := func(allowed bool, columns ...string) {
		t.Helper()
		for i := 0; i+1 < len(columns); i += 2 {
			has(columns[i], columns[i+1], allowed)
		}
	}
	// Always: the event itself and a path without its query string.
	if r.Path != "/pricing" {
		fail("path = %q, want /pricing without query or fragment", r.Path)
	}
	// Marketing: the account link, campaign parameters, click ids, the full
	// referrer.
	if marketing {
		if r.UserID == nil || *r.UserID != user {
			fail("user_id = %v, want %s under marketing consent", r.UserID, user)
		}
	} else if r.UserID != nil {
		fail("user_id = %q stored without marketing consent", *r.UserID)
	}
	haveAll(marketing, "source", r.Source, "medium", r.Medium, "campaign", r.Campaign, "term", r.Term,
		"content", r.Content, "click_id", r.ClickID, "click_id_type", r.ClickIDType, "referrer", r.Referrer)
	if marketing {
		if r.Source != "newsletter" || r.Medium != "email" || r.Campaign != "spring" || r.ClickID != "CLICK123" || r.Channel != "Email" {
			fail("attribution %q/%q/%q click %q channel %q", r.Source, r.Medium, r.Campaign, r.ClickID, r.Channel)
		}
		if r.Referrer != "https://www.google.com/search?q=ai+video" {
			fail("referrer = %q, want the full URL under marketing consent", r.Referrer)
		}
	}
	// Analytics: the visitor and session ids, the landing page (path
	// only), the referrer host, device detail, the truncated address,
	// properties.
	haveAll(analytics, "visitor_id", r.VisitorID, "session_id", r.SessionID, "landing_page", r.LandingPage,
		"os", r.OS, "device_class", r.DeviceClass, "screen", r.Screen, "language", r.Language,
		"ip_truncated", r.IPTruncated, "props", r.Props)
	haveAll(analytics || marketing, "referrer_host", r.ReferrerHost, "channel", r.Channel)
	if analytics {
		if r.LandingPage != "/landing" {
			fail("landing_page = %q, want the path without its campaign parameters", r.LandingPage)
		}
		if r.IPTruncated != "198.51.100.0" {
			fail("ip_truncated = %q, want 198.51.100.0", r.IPTruncated)
		}
		if r.Browser != "Firefox 128" || r.OS != "Linux" || r.DeviceClass != "desktop" {
			fail("device %q %q %q", r.Browser, r.OS, r.DeviceClass)
		}
		if !marketing && r.Channel != "Organic Search" {
			fail("channel = %q, want Organic Search from the referrer host alone", r.Channel)
		}
	} else {
		// Necessary only: the browser family, nothing more.
		if r.Browser != "Firefox" {
			fail("browser = %q, want the family alone without analytics consent", r.Browser)
		}
	}
	if got := strings.Join(r.ConsentPurposes, ","); got != strings.Join(purposes, ",") {
		fail("consent_purposes = %s, want %s", got, strings.Join(purposes, ","))
	}
}
