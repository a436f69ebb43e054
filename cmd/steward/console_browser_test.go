package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/testutil/browsertest"
)

// TestBrowserConsole uses the console in headless Chromium with the
// keyboard only and JavaScript off, as a data protection officer: the
// console sends them to sign in and back, they open the data map, filter
// it to one store and read it in German. Every state passes axe-core and
// is saved as a screenshot.
func TestBrowserConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	srv, base := liveServer(t, nil)
	// The account is a DPO's before they sign in.
	if _, err := srv.wired.accounts.CreateToken(context.Background(), "dana.dpo@example.com", "dpo"); err != nil {
		t.Fatal(err)
	}

	p := signInOnTheWay(t, base, "/console", "dana.dpo@example.com", "ul.links")
	if loc := p.Location(); loc != base+"/console" {
		t.Fatalf("the sign-in led to %s, want back to the console", loc)
	}
	p.CheckA11y("the console (en)")
	p.Screenshot("console-home-en")

	p.TabTo(`ul.links a[href="/console/datamap"]`)
	p.PressAndLoad("open the data map", "\r", "table.datamap")
	p.CheckA11y("the data map (en)")
	p.Screenshot("console-datamap-en")

	// Filter to the warehouse: the select takes a letter, as any select.
	p.TabTo("#filter-store")
	p.Press("pick the warehouse", "w")
	p.TabTo(`form.filters button[type="submit"]`)
	p.PressAndLoad("filter", "\r", "table.datamap")
	if loc := p.Location(); !strings.Contains(loc, "store=warehouse") {
		t.Fatalf("the filter led to %s", loc)
	}
	var stores []string
	p.Eval("read the rows' stores", `[...document.querySelectorAll("table.datamap tbody th code")].map(c => c.textContent.split(".")[0])`, &stores)
	if len(stores) == 0 {
		t.Fatal("the filtered data map shows no column")
	}
	for _, s := range stores {
		if s != "warehouse" {
			t.Fatalf("the warehouse's columns include one of %s", s)
		}
	}
	p.CheckA11y("the data map, filtered (en)")
	p.Screenshot("console-datamap-filtered-en")

	p.TabTo(`nav.languages a[hreflang="de"]`)
	p.PressAndLoad("switch to German", "\r", `nav.languages a[aria-current="true"][hreflang="de"]`)
	if h := p.Text("h1"); h != "Datenübersicht" {
		t.Errorf("the German heading reads %q", h)
	}
	p.CheckA11y("the data map, filtered (de)")
	p.Screenshot("console-datamap-filtered-de")
	p.Load("the console in German", chromedp.Navigate(base+"/console"), "ul.links")
	p.CheckA11y("the console (de)")
	p.Screenshot("console-home-de")

	// Consent reporting, after browsers made their choices.
	for i := range 12 {
		chooseOnPage(t, newPageClient(t, srv), []string{"accept_all", "reject_all", "accept_all"}[i%3])
	}
	p.TabTo(`nav.subnav a[href="/console/consent"]`)
	p.PressAndLoad("open consent reporting", "\r", "form.filters")
	p.CheckA11y("consent reporting (de)")
	p.Screenshot("console-consent-de")
	p.TabTo(`nav.languages a[hreflang="en"]`)
	p.PressAndLoad("switch to English", "\r", `nav.languages a[aria-current="true"][hreflang="en"]`)
	if lead := p.Text("p.lead"); !strings.Contains(lead, "12 choices in the period") {
		t.Errorf("the consent report says %q", lead)
	}
	p.CheckA11y("consent reporting (en)")
	p.Screenshot("console-consent-en")
	// The CSV download, with the keyboard, saved where the test looks.
	downloads := t.TempDir()
	p.Run("allow downloads", cdpbrowser.SetDownloadBehavior(cdpbrowser.SetDownloadBehaviorBehaviorAllow).WithDownloadPath(downloads))
	p.TabTo(`a[href^="/console/consent.csv"]`)
	p.Press("download the consent CSV", "\r")
	var csvText string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if raw, err := os.ReadFile(filepath.Join(downloads, "consent-report.csv")); err == nil && len(raw) > 0 {
			csvText = string(raw)
			break
		}
	}
	if !strings.HasPrefix(csvText, "table,bucket,policy_version,banner_version,purpose,method,choices,granted,opt_in_rate,suppressed") ||
		!strings.Contains(csvText, "method,,,,,banner_accept,") {
		t.Errorf("the downloaded consent CSV:\n%s", csvText)
	}
	t.Logf("screenshots in %s", p.ScreenshotFolder())
}

// TestBrowserConsolePolicy previews and applies a policy change in
// Chromium, keyboard only: the DPO opens the policy page (signing in on the
// way), reads what the changed bundle folder would change in English and
// German, and applies it.
func TestBrowserConsolePolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	dir := newBundle(t, nil)
	srv, base := liveServer(t, func(c *config.Config) { c.PolicyDir = dir })
	if _, err := srv.wired.accounts.CreateToken(context.Background(), "dora.dpo@example.com", "dpo"); err != nil {
		t.Fatal(err)
	}
	// The folder now shortens a retention period and withholds a category
	// from access exports.
	edited := newBundle(t, func(tax map[string]map[string]any) {
		tax["user.security.reward_record"]["retention"] = map[string]any{"duration": "P30D", "from": "collected_at", "action": "delete"}
		tax["user.support.status"]["export"] = map[string]any{"include": false, "withheld_reason": "Ticket states are kept internal."}
	})
	raw, err := os.ReadFile(filepath.Join(edited, "data", "taxonomy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "taxonomy.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}

	p := signInOnTheWay(t, base, "/console/policy", "dora.dpo@example.com", `form[action="/console/policy/apply"]`)
	if rules := p.Text("section.card table"); !strings.Contains(rules, "user.security.reward_record") || !strings.Contains(rules, "user.support.status") {
		t.Errorf("the rules that change: %q", rules)
	}
	p.CheckA11y("a policy change previewed (en)")
	p.Screenshot("console-policy-en")
	p.TabTo(`nav.languages a[hreflang="de"]`)
	p.PressAndLoad("switch to German", "\r", `nav.languages a[aria-current="true"][hreflang="de"]`)
	p.CheckA11y("a policy change previewed (de)")
	p.Screenshot("console-policy-de")
	p.TabTo(`form[action="/console/policy/apply"] button`)
	p.PressAndLoad("apply it", "\r", `.note[role="status"]`)
	p.CheckA11y("a policy change applied (de)")
	p.Screenshot("console-policy-applied-de")
	r, err := srv.engine.Retention(context.Background(), "user.security.reward_record")
	if err != nil || r.Duration != "P30D" {
		t.Fatalf("after applying: %+v %v", r, err)
	}
}

// liveServer starts a wired development server (the email sign-in on) on
// a local port for a browser test, with tweak applied to its
// configuration, and returns it with its base URL. It stops with the
// test.
func liveServer(t *testing.T, tweak func(*config.Config)) (*server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	srv := newPortalServer(t, false, func(c *config.Config) {
		c.Dev, c.BaseURL = true, base
		if tweak != nil {
			tweak(c)
		}
	})
	go func() { _ = srv.app.Listener(ln) }()
	t.Cleanup(func() { _ = srv.app.Shutdown() })
	return srv, base
}

// signInOnTheWay opens path of the server at base in a new keyboard-only
// Chromium page, signed out: the page sends the browser to sign in, the
// person types email and presses Enter, and the sign-in brings them back
// to path, whose element sel it waits for.
func signInOnTheWay(t *testing.T, base, path, email, sel string) *browsertest.Page {
	t.Helper()
	p := browsertest.NewPage(t, 1280, 900, "en")
	p.Load("open "+path+" signed out", chromedp.Navigate(base+path), "#email")
	p.TabTo("#email")
	p.Run("type the address", chromedp.KeyEvent(email))
	p.PressAndLoad("sign in", "\r", sel)
	return p
}
