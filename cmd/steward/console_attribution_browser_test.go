package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestBrowserConsoleAttribution uses the attribution workspace in
// headless Chromium with the keyboard only and JavaScript off, as an
// analyst: the console sends them to sign in and back to the workspace,
// which shows the last 30 days' report; they switch the model to linear
// and group by source, then campaign, submit, and read the report in
// German; a bad period is explained on the page. Every state passes
// axe-core, and the reports are saved as screenshots.
func TestBrowserConsoleAttribution(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	srv, base := liveServer(t, nil)
	ctx := context.Background()
	if err := srv.start(ctx); err != nil {
		t.Fatal(err)
	}
	sendAttributionVisitors(t, srv)
	// The account is an analyst's before they sign in.
	if _, err := srv.wired.accounts.CreateToken(ctx, "ana.analyst@example.com", "analyst"); err != nil {
		t.Fatal(err)
	}

	p := signInOnTheWay(t, base, "/console/attribution", "ana.analyst@example.com", "#report-heading")
	if loc := p.Location(); loc != base+"/console/attribution" {
		t.Fatalf("the sign-in led to %s, want back to the workspace", loc)
	}
	if got := p.Text("#total-conversions"); got != "25" {
		t.Errorf("the default report totals %q conversions, want 25", got)
	}
	p.CheckA11y("the workspace (en)")
	p.Screenshot("console-attribution-en")

	// Last touch is the default; two steps down is linear. Source is the
	// one dimension that starts with s, campaign the first with c.
	p.TabTo("#field-model")
	p.Press("step to last non-direct", kb.ArrowDown)
	p.Press("step to linear", kb.ArrowDown)
	p.TabTo("#field-group_by")
	p.Press("pick source", "s")
	p.TabTo("#field-then_by")
	p.Press("pick campaign", "c")
	var picked []string
	p.Eval("read the choices", `["#field-model", "#field-group_by", "#field-then_by"].map(s => document.querySelector(s).value)`, &picked)
	if strings.Join(picked, " ") != "linear source campaign" {
		t.Fatalf("the keyboard picked %q", picked)
	}
	p.TabTo(`form.attribution-form button[type="submit"]`)
	p.PressAndLoad("show the report", "\r", "#report-heading")
	loc, err := url.Parse(p.Location())
	if err != nil {
		t.Fatal(err)
	}
	if q := loc.Query(); q.Get("model") != "linear" || q.Get("group_by") != "source" || q.Get("then_by") != "campaign" {
		t.Fatalf("the form led to %s", loc)
	}
	var bars []string
	p.Eval("read the bars", `[...document.querySelectorAll("svg.bar-chart")[0].querySelectorAll("rect.bar")].map(r => r.dataset.group + "=" + r.dataset.value)`, &bars)
	if want := "google / spring=12 google / brand=5 newsletter / spring=5 (other)=3"; strings.Join(bars, " ") != want {
		t.Errorf("the linear bars by source and campaign: %q, want %q", bars, want)
	}
	p.CheckA11y("the linear report by source and campaign (en)")
	p.Screenshot("console-attribution-linear-en")

	p.TabTo(`nav.languages a[hreflang="de"]`)
	p.PressAndLoad("switch to German", "\r", `nav.languages a[aria-current="true"][hreflang="de"]`)
	if h := p.Text("#report-heading"); h != "Bericht" {
		t.Errorf("the German report's heading reads %q", h)
	}
	p.CheckA11y("the linear report by source and campaign (de)")
	p.Screenshot("console-attribution-de")

	p.Load("a period that ends before it starts", chromedp.Navigate(base+"/console/attribution?from=2026-03-10&to=2026-03-01"), "#attribution-errors")
	if got := p.Text("#field-to-error"); !strings.HasPrefix(got, "Der Zeitraum muss nach seinem Beginn enden") {
		t.Errorf("the error under the end reads %q", got)
	}
	p.CheckA11y("a bad period (de)")
	t.Logf("screenshots in %s", p.ScreenshotFolder())
}
