package consent_test

import (
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// TestReportCountsChoicesAndHidesSmallGroups makes choices through the
// HTTP routes, as browsers do, over two days, and reads the consent report
// against what the browsers did: opt-in rates per purpose and day, per
// policy and banner version, choices by method, the GPC share; and a row
// of k-1 people suppressed where k people show.
func TestReportCountsChoicesAndHidesSmallGroups(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		clk := newClock()
		h := newHarness(t, db, clk, nil)
		const k = 3
		all := map[string]bool{"functional": true, "analytics": true, "marketing": true}
		none := map[string]bool{"functional": false, "analytics": false, "marketing": false}
		day1 := clk.Now().UTC().Truncate(24 * time.Hour)
		// Day one: k browsers accept all, one of them with GPC on (GPC
		// takes marketing away).
		for i := range k {
			b := h.browser()
			b.GPC = i == 0
			b.put("banner_accept", all)
		}
		// Day two: k-1 browsers reject all.
		clk.Set(day1.Add(30 * time.Hour))
		for range k - 1 {
			h.browser().put("banner_reject", none)
		}
		rep, err := h.mod.Report(t.Context(), consent.ReportQuery{From: day1, To: day1.Add(72 * time.Hour), MinGroup: k})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Bucket != "day" || rep.Suppressed || rep.Choices != 2*k-1 || rep.GPCChoices != 1 {
			t.Fatalf("totals: bucket %s suppressed %v choices %d gpc %d", rep.Bucket, rep.Suppressed, rep.Choices, rep.GPCChoices)
		}
		series := map[[2]string]consent.ReportRow{}
		for _, r := range rep.Series {
			series[[2]string{r.Bucket, r.Purpose}] = r
		}
		d1, d2 := day1.Format(time.DateOnly), day1.AddDate(0, 0, 1).Format(time.DateOnly)
		if r := series[[2]string{d1, "analytics"}]; r.Suppressed || r.Choices != k || r.Granted != k || r.Rate() != 1 {
			t.Errorf("analytics on day one: %+v", r)
		}
		if r := series[[2]string{d1, "marketing"}]; r.Choices != k || r.Granted != k-1 {
			t.Errorf("marketing on day one, one browser under GPC: %+v", r)
		}
		// k-1 people: the row is there, its numbers are not.
		if r, ok := series[[2]string{d2, "analytics"}]; !ok || !r.Suppressed || r.Choices != 0 || r.Granted != 0 {
			t.Errorf("analytics on day two, %d people: %+v", k-1, r)
		}
		methods := map[string]consent.ReportRow{}
		for _, r := range rep.Methods {
			methods[r.Method] = r
		}
		if r := methods["banner_accept"]; r.Suppressed || r.Choices != k {
			t.Errorf("accept all: %+v", r)
		}
		if r := methods["banner_reject"]; !r.Suppressed {
			t.Errorf("reject all by %d people: %+v", k-1, r)
		}
		for _, r := range rep.Versions {
			if r.PolicyVersion != "2026-05" || r.BannerVersion != "b1" {
				t.Errorf("a version row: %+v", r)
			}
			if r.Purpose == "analytics" && (r.Suppressed || r.Choices != 2*k-1 || r.Granted != k) {
				t.Errorf("analytics under 2026-05/b1: %+v", r)
			}
		}
		// One more browser rejecting makes k: the row shows.
		h.browser().put("banner_reject", none)
		rep, err = h.mod.Report(t.Context(), consent.ReportQuery{From: day1, To: day1.Add(72 * time.Hour), MinGroup: k})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Series {
			if r.Bucket == d2 && r.Purpose == "analytics" && (r.Suppressed || r.Choices != k || r.Granted != 0) {
				t.Errorf("analytics on day two, %d people: %+v", k, r)
			}
		}
		// A long period is reported per month; fewer than k people in all
		// suppresses everything.
		long, err := h.mod.Report(t.Context(), consent.ReportQuery{From: day1.AddDate(0, -3, 0), To: day1.AddDate(0, 1, 0), MinGroup: 100})
		if err != nil {
			t.Fatal(err)
		}
		if long.Bucket != "month" || !long.Suppressed || long.Choices != 0 || len(long.Series) == 0 || long.Series[0].Bucket != day1.Format("2006-01") {
			t.Errorf("a long period under k=100: %+v", long)
		}
	})
}
