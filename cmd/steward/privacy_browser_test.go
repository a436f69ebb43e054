package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/testutil/browsertest"
)

// productPage is a page of the product that embeds the consent banner,
// as a site using Steward does.
const productPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Make images</title>
<script src="/consent.js"></script></head>
<body><main><h1>Make images</h1></main></body></html>`

// TestBrowserPrivacyCenter uses the privacy center in headless Chromium,
// with the keyboard only and JavaScript off except where the banner needs
// it, on a wired development server:
//
//   - a visitor follows the banner's "Privacy policy" link and lands on
//     what Steward keeps;
//   - they open a category, go to their choices, switch analytics on and
//     save, then reject everything;
//   - they sign in, read their counts in German, file the download of
//     their data, watch it finish and find the link.
//
// Every page state passes axe-core with no violation, and each is saved
// as a screenshot, in English and in German.
func TestBrowserPrivacyCenter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev, c.BaseURL = true, base })
	srv.app.Get("/site", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.SendString(productPage)
	})
	go func() { _ = srv.app.Listener(ln) }()
	t.Cleanup(func() { _ = srv.app.Shutdown() })

	p := browsertest.NewPage(t, 1024, 900, "en")
	ctx := context.Background()
	// switchTo picks a language with the switcher, as a person does, and
	// waits for sel in the page it reloads.
	switchTo := func(tag, sel string) {
		t.Helper()
		p.TabTo(`nav.languages a[hreflang="` + tag + `"]`)
		p.PressAndLoad("switch to "+tag, "\r", `nav.languages a[aria-current="true"][hreflang="`+tag+`"]`)
		p.Run("wait for "+sel, chromedp.WaitVisible(sel, chromedp.ByQuery))
	}

	// download presses the focused download button, which files an access
	// request and shows its page, processes the request, and reloads the
	// page until it offers the package.
	download := func(what string) {
		t.Helper()
		p.PressAndLoad("prepare "+what, "\r", "ol.stages")
		loc := p.Location()
		id := strings.TrimPrefix(loc, base+"/privacy/requests/")
		if id == loc || id == "" {
			t.Fatalf("the form of %s led to %s", what, loc)
		}
		// The worker picks the request up on its own; process it now
		// rather than wait for its poll.
		if _, err := srv.wired.privacy.Process(ctx, id); err != nil {
			t.Fatal(err)
		}
		p.Run("reload the request", chromedp.Reload(), chromedp.WaitVisible(`a.button[download]`, chromedp.ByQuery))
	}

	// The banner's policy link, with the banner's script running.
	p.Run("open a product page with the banner",
		emulation.SetScriptExecutionDisabled(false),
		chromedp.Navigate(base+"/site"),
		chromedp.WaitVisible(".stw-banner a", chromedp.ByQuery))
	if link := p.Text(".stw-banner a"); link != "Privacy policy" {
		t.Fatalf("the banner's link reads %q", link)
	}
	p.Run("follow the banner's policy link",
		chromedp.Click(".stw-banner a", chromedp.ByQuery),
		chromedp.WaitVisible("nav.subnav", chromedp.ByQuery),
		emulation.SetScriptExecutionDisabled(true))
	if loc, h := p.Location(), p.Text("h1"); loc != base+"/privacy" || h != "What we keep about you" {
		t.Fatalf("the policy link landed on %s with heading %q", loc, h)
	}
	p.Load("reload without script", chromedp.Reload(), "nav.subnav")
	p.CheckA11y("what we keep, signed out (en)")
	p.Screenshot("privacy-keep-visitor-en")

	// Open a category with the keyboard.
	p.TabTo("details.category summary")
	p.Press("open the first category", "\r")
	var open bool
	p.Eval("read whether it opened", `document.querySelector("details.category").open`, &open)
	if !open {
		t.Error("Enter on a category's summary did not open it")
	}
	p.CheckA11y("what we keep with a category open")

	// Choices: analytics on, saved; then reject all.
	p.TabTo(`nav.subnav a[href="/privacy/consent"]`)
	p.PressAndLoad("go to your choices", "\r", "#purpose-analytics")
	p.CheckA11y("your choices, no choice yet (en)")
	p.Screenshot("privacy-consent-new-en")
	p.TabTo("#purpose-analytics")
	p.Press("switch analytics on", " ")
	p.TabTo(`button[value="save"]`)
	p.PressAndLoad("save", "\r", `.note[role="status"]`)
	var analytics, marketing bool
	p.Eval("read the analytics box", `document.querySelector("#purpose-analytics").checked`, &analytics)
	p.Eval("read the marketing box", `document.querySelector("#purpose-marketing").checked`, &marketing)
	if !analytics || marketing {
		t.Errorf("after saving analytics: analytics %v, marketing %v", analytics, marketing)
	}
	if hist := p.Text("table tbody"); !strings.Contains(hist, "Analytics") || !strings.Contains(hist, "Saved in the preferences") {
		t.Errorf("the history after saving: %q", hist)
	}
	p.CheckA11y("your choices, saved (en)")
	p.Screenshot("privacy-consent-saved-en")
	p.TabTo(`button[value="reject_all"]`)
	p.PressAndLoad("reject all", "\r", `.note[role="status"]`)
	p.Eval("read the analytics box", `document.querySelector("#purpose-analytics").checked`, &analytics)
	if analytics {
		t.Error("analytics is still on after Reject all")
	}

	// The language switcher, with the keyboard.
	p.TabTo(`nav.languages a[hreflang="de"]`)
	p.PressAndLoad("switch to German", "\r", `nav.languages a[aria-current="true"][hreflang="de"]`)
	if loc, h := p.Location(), p.Text("h1"); loc != base+"/privacy/consent?saved=1" || h != "Ihre Cookie- und Analyse-Entscheidungen" {
		t.Errorf("after switching to German: %s, heading %q", loc, h)
	}
	p.CheckA11y("your choices, switched to German")
	p.TabTo(`nav.languages a[hreflang="en"]`)
	p.PressAndLoad("switch back to English", "\r", `nav.languages a[aria-current="true"][hreflang="en"]`)

	// Your data, signed out: the browser's choice gave it a cookie, so
	// the visitor can download what it holds, and sign in for the rest.
	p.TabTo(`nav.subnav a[href="/privacy/data"]`)
	p.PressAndLoad("go to your data", "\r", `main a.button[href="/"]`)
	p.CheckA11y("your data, signed out (en)")
	p.Screenshot("privacy-data-visitor-en")
	p.TabTo(`form[action="/privacy/data/export"] button`)
	download("the browser's download")
	p.CheckA11y("a visitor's finished download (en)")
	p.Screenshot("privacy-request-visitor-en")
	p.Load("open your data", chromedp.Navigate(base+"/privacy/data"), `a[href="/privacy/delete"]`)
	p.TabTo(`a[href="/privacy/delete"]`)
	p.PressAndLoad("open the browser's erasure", "\r", "#confirm")
	if lead := p.Text("p.lead"); !strings.Contains(lead, "since the last sign-in") {
		t.Errorf("the visitor's erasure page says %q", lead)
	}
	p.CheckA11y("a visitor's erasure preview (en)")
	p.Screenshot("privacy-delete-visitor-en")
	switchTo("de", "#confirm")
	p.CheckA11y("a visitor's erasure preview (de)")
	p.Screenshot("privacy-delete-visitor-de")
	switchTo("en", "#confirm")
	p.Load("back to your data", chromedp.Navigate(base+"/privacy/data"), `main a.button[href="/"]`)

	// Sign in with the keyboard.
	p.TabTo(`main a.button[href="/"]`)
	p.PressAndLoad("go to sign in", "\r", "#email")
	p.TabTo("#email")
	p.Run("type the address", chromedp.KeyEvent("dora@example.com"))
	p.PressAndLoad("sign in", "\r", "form.sign-out")
	p.TabTo(`a[href="/privacy"]`)
	p.PressAndLoad("open what we keep", "\r", "section.summary")
	if sum := p.Text("section.summary"); !strings.Contains(sum, "items about you") {
		t.Errorf("the signed-in summary: %q", sum)
	}
	p.CheckA11y("what we keep, signed in (en)")
	p.Screenshot("privacy-keep-user-en")

	// German, every page.
	switchTo("de", "section.summary")
	if h := p.Text("h1"); h != "Was wir über Sie speichern" {
		t.Errorf("German heading %q", h)
	}
	p.CheckA11y("what we keep, signed in (de)")
	p.Screenshot("privacy-keep-user-de")
	p.TabTo(`nav.subnav a[href="/privacy/consent"]`)
	p.PressAndLoad("go to your choices", "\r", "#purpose-analytics")
	p.CheckA11y("your choices, signed in (de)")
	p.Screenshot("privacy-consent-user-de")

	// Download: file the request from the page, watch it finish.
	p.TabTo(`nav.subnav a[href="/privacy/data"]`)
	p.PressAndLoad("go to your data", "\r", `form[action="/privacy/data/export"]`)
	p.CheckA11y("your data, signed in (de)")
	p.Screenshot("privacy-data-user-de")
	p.TabTo(`form[action="/privacy/data/export"] button`)
	download("the download")
	if link := p.Text(`a.button[download]`); !strings.Contains(link, "Ihre Daten herunterladen") {
		t.Errorf("the download link reads %q", link)
	}
	p.CheckA11y("a finished download (de)")
	p.Screenshot("privacy-request-done-de")
	switchTo("en", `a.button[download]`)
	p.CheckA11y("a finished download (en)")
	p.Screenshot("privacy-request-done-en")
	p.TabTo(`nav.subnav a[href="/privacy/data"]`)
	p.PressAndLoad("back to your data", "\r", "table")
	if list := p.Text("table tbody"); !strings.Contains(list, "Download of your data") || !strings.Contains(list, "Done") {
		t.Errorf("the list of requests: %q", list)
	}
	p.CheckA11y("your data with a request (en)")
	p.Screenshot("privacy-data-user-en")
	p.Run("choices in English", chromedp.Navigate(base+"/privacy/consent"), chromedp.WaitVisible("#purpose-analytics", chromedp.ByQuery))
	p.Screenshot("privacy-consent-user-en")

	// Delete the account: the preview, the confirmation, the certificate.
	p.Load("open your data", chromedp.Navigate(base+"/privacy/data"), `a[href="/privacy/delete"]`)
	p.TabTo(`a[href="/privacy/delete"]`)
	p.PressAndLoad("open the deletion", "\r", "#confirm")
	if kept := p.Text("section.card"); !strings.Contains(kept, "Deleted") || !strings.Contains(kept, "Email address") {
		t.Errorf("the preview: %q", kept)
	}
	p.CheckA11y("the deletion preview (en)")
	p.Screenshot("privacy-delete-preview-en")
	switchTo("de", "#confirm")
	p.CheckA11y("the deletion preview (de)")
	p.Screenshot("privacy-delete-preview-de")
	p.TabTo("#confirm")
	p.Press("tick the confirmation", " ")
	p.TabTo("button.danger")
	p.PressAndLoad("delete the account", "\r", "ol.stages")
	loc := p.Location()
	rest := strings.TrimPrefix(loc, base+"/privacy/requests/")
	eid, token, ok := strings.Cut(rest, "?token=")
	if rest == loc || !ok || token == "" {
		t.Fatalf("the deletion led to %s, want the request's page with its token", loc)
	}
	if _, err := srv.wired.privacy.Process(ctx, eid); err != nil {
		t.Fatal(err)
	}
	p.Load("reload the erasure", chromedp.Reload(), "section.certificate")
	if h := p.Text("section.certificate h2"); h != "Löschbescheinigung" {
		t.Errorf("the certificate's heading %q", h)
	}
	p.CheckA11y("the certificate (de)")
	p.Screenshot("privacy-delete-done-de")
	switchTo("en", "section.certificate")
	p.CheckA11y("the certificate (en)")
	p.Screenshot("privacy-delete-done-en")
	// The account is gone: the browser is signed out.
	p.Load("open what we keep", chromedp.Navigate(base+"/privacy"), "nav.subnav")
	if lead := p.Text("p.lead"); !strings.Contains(lead, "not signed in") {
		t.Errorf("after the deletion /privacy says %q", lead)
	}

	// Signed out, the browser browses on under its cookie; a visitor
	// erases what it holds since the sign-in.
	p.Load("open your data", chromedp.Navigate(base+"/privacy/delete"), "#confirm")
	p.TabTo("#confirm")
	p.Press("tick the confirmation", " ")
	p.TabTo("button.danger")
	p.PressAndLoad("erase the browser's data", "\r", "ol.stages")
	loc = p.Location()
	rest = strings.TrimPrefix(loc, base+"/privacy/requests/")
	vid, token, ok := strings.Cut(rest, "?token=")
	if rest == loc || !ok || token == "" {
		t.Fatalf("the visitor's erasure led to %s, want the request's page with its token", loc)
	}
	if _, err := srv.wired.privacy.Process(ctx, vid); err != nil {
		t.Fatal(err)
	}
	p.Load("reload the visitor's erasure", chromedp.Reload(), "section.certificate")
	p.CheckA11y("a visitor's certificate (en)")
	p.Screenshot("privacy-delete-visitor-done-en")
	t.Logf("screenshots in %s", p.ScreenshotFolder())
}
