package ingest_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/testutil/browsertest"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/web/webtest"
)

// chromeUA is a desktop Chrome user agent: headless Chromium announces
// itself as HeadlessChrome, which the bot filter drops.
const chromeUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

// testPage loads the banner and the tracker the way a site would, with a
// gtag stub that records Consent Mode calls and a script gated on
// analytics consent.
const testPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Steward test page</title>
<script>
window.gtagCalls = [];
document.cookie = "steward_csrf=tok123; path=/";
window.fetchLog = [];
var realFetch = window.fetch;
window.fetch = function (url, opts) {
  var entry = {url: String(url), method: (opts && opts.method) || "GET", headers: (opts && opts.headers) || {}, status: 0};
  window.fetchLog.push(entry);
  return realFetch.apply(this, arguments).then(function (res) { entry.status = res.status; return res; },
    function (err) { entry.status = -1; throw err; });
};
window.gtag = function () { window.gtagCalls.push(Array.prototype.slice.call(arguments)); };
</script>
<script type="text/plain" data-consent="analytics">window.gatedRan = (window.gatedRan || 0) + 1;</script>
<script src="/consent.js"></script>
<script src="/t.js"></script>
</head><body><h1>Pricing</h1><button id="outside">outside</button></body></html>`

// TestBrowserBannerAndTracker drives consent.js and t.js in headless
// Chromium: the banner's accessibility and equal prominence, the dialog's
// focus trap, the JavaScript API, Consent Mode, gated scripts, and the
// tracker sending only what consent allows, read back from ClickHouse.
func TestBrowserBannerAndTracker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	exe := browsertest.ChromiumPath(t)
	s := newStack(t, stackOptions{})
	s.app.Get("/page", servePage)
	s.app.Get("/page/*", servePage)
	base := webtest.Serve(t, s.app)

	ctx := browserContext(t, exe)

	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(what, js string, out any) {
		t.Helper()
		run(what, chromedp.Evaluate(js, out, func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
	}

	run("open the page", chromedp.Navigate(base+"/page?utm_source=newsletter&utm_medium=email&utm_campaign=spring&gclid=XYZ"),
		chromedp.WaitVisible(".stw-banner", chromedp.ByQuery))

	// The banner is a labelled region; Accept all and Reject all look the
	// same and sit side by side.
	var banner struct {
		Role, Label      string
		Accept, Reject   string
		SameRow          bool
		AcceptText       string
		RejectText       string
		GatedRan         any
		DefaultConsent   map[string]string
		AnalyticsGranted bool
	}
	eval("read the banner", `(() => {
		const b = document.querySelector('.stw-banner');
		const a = b.querySelector('[data-action=accept]'), r = b.querySelector('[data-action=reject]');
		const look = e => { const s = getComputedStyle(e), q = e.getBoundingClientRect();
			return [s.backgroundColor, s.color, s.fontSize, s.fontWeight, s.borderColor, Math.round(q.height)].join('|'); };
		const ra = a.getBoundingClientRect(), rr = r.getBoundingClientRect();
		const def = (window.gtagCalls.find(c => c[0] === 'consent' && c[1] === 'default') || [])[2];
		return {Role: b.getAttribute('role'), Label: b.getAttribute('aria-label'), Accept: look(a), Reject: look(r),
			SameRow: Math.abs(ra.top - rr.top) < 2, AcceptText: a.textContent, RejectText: r.textContent,
			GatedRan: window.gatedRan || null, DefaultConsent: def || null,
			AnalyticsGranted: window.steward.consent.get().purposes.analytics};
	})()`, &banner)
	if banner.Role != "region" || banner.Label == "" {
		t.Errorf("banner role %q label %q, want a labelled region", banner.Role, banner.Label)
	}
	if banner.Accept != banner.Reject || !banner.SameRow {
		t.Errorf("accept %q and reject %q differ in prominence (same row: %v)", banner.Accept, banner.Reject, banner.SameRow)
	}
	if banner.AcceptText != "Accept all" || banner.RejectText != "Reject all" {
		t.Errorf("button texts %q / %q", banner.AcceptText, banner.RejectText)
	}
	if banner.GatedRan != nil || banner.AnalyticsGranted {
		t.Errorf("before any choice: gated script ran %v, analytics %v", banner.GatedRan, banner.AnalyticsGranted)
	}
	if banner.DefaultConsent["analytics_storage"] != "denied" || banner.DefaultConsent["ad_user_data"] != "denied" {
		t.Errorf("Consent Mode default %v, want everything denied", banner.DefaultConsent)
	}

	// The preferences dialog keeps keyboard focus inside and closes on
	// Escape.
	run("open the dialog", chromedp.Click(".stw-banner [data-action=customize]", chromedp.ByQuery),
		chromedp.WaitVisible("[role=dialog]", chromedp.ByQuery))
	var dialog struct {
		Modal, LabelledBy string
		Focusables        int
		FocusInside       bool
	}
	inside := `(() => { const d = document.querySelector('[role=dialog]');
		return {Modal: d.getAttribute('aria-modal'), LabelledBy: document.getElementById(d.getAttribute('aria-labelledby')).textContent,
			Focusables: d.querySelectorAll('button,input:not([disabled])').length, FocusInside: d.contains(document.activeElement)}; })()`
	eval("read the dialog", inside, &dialog)
	if dialog.Modal != "true" || dialog.LabelledBy == "" || !dialog.FocusInside {
		t.Fatalf("dialog %+v: want aria-modal, a label and focus inside", dialog)
	}
	for i := 0; i < dialog.Focusables+2; i++ {
		run("tab", chromedp.KeyEvent(kb.Tab))
		eval("focus after tab", inside, &dialog)
		if !dialog.FocusInside {
			t.Fatalf("Tab %d moved focus out of the dialog", i+1)
		}
	}
	for i := 0; i < dialog.Focusables+2; i++ {
		run("shift-tab", chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(input.ModifierShift)))
		eval("focus after shift-tab", inside, &dialog)
		if !dialog.FocusInside {
			t.Fatalf("Shift+Tab %d moved focus out of the dialog", i+1)
		}
	}
	var open bool
	run("escape", chromedp.KeyEvent(kb.Escape))
	eval("dialog closed", `!!document.querySelector('[role=dialog]')`, &open)
	if open {
		t.Fatal("Escape did not close the dialog")
	}

	// Reject all: nothing but strictly necessary, no page view sent.
	run("reject all", chromedp.Click(".stw-banner [data-action=reject]", chromedp.ByQuery),
		chromedp.WaitNotPresent(".stw-banner", chromedp.ByQuery))
	var state struct {
		Purposes map[string]bool
	}
	eval("state after reject", `window.steward.consent.ready.then(() => window.steward.consent.get())`, &state)
	if state.Purposes["analytics"] || state.Purposes["marketing"] || !state.Purposes["necessary"] {
		t.Fatalf("after reject all: %v", state.Purposes)
	}
	// A signed-in visitor's PUT must echo the session's CSRF token.
	var csrf string
	eval("csrf header", `(window.fetchLog.find(f => f.method === 'PUT') || {headers: {}}).headers['X-CSRF-Token'] || ''`, &csrf)
	if csrf != "tok123" {
		t.Errorf("PUT /v1/consent carried X-CSRF-Token %q, want the steward_csrf cookie's value", csrf)
	}

	// Granting analytics through the API runs the gated script, updates
	// Consent Mode, and lets the tracker send the page view.
	var after struct {
		GatedRan int
		Update   map[string]string
	}
	eval("grant analytics", `window.steward.consent.set({analytics: true}).then(() => {
		const ups = window.gtagCalls.filter(c => c[0] === 'consent' && c[1] === 'update');
		return {GatedRan: window.gatedRan || 0, Update: ups[ups.length - 1][2]};
	})`, &after)
	if after.GatedRan != 1 || after.Update["analytics_storage"] != "granted" || after.Update["ad_storage"] != "denied" {
		t.Fatalf("after granting analytics: %+v", after)
	}
	var ok bool
	eval("use the tracker", `(() => {
		history.pushState({}, '', '/page/two?ref=internal');
		window.steward.track('video_play', {seconds: 3});
		window.steward.conversion('purchase', 19.99, 'eur');
		return new Promise(r => setTimeout(() => { window.steward.flush(); r(true); }, 100));
	})()`, &ok)

	rows := waitForEvents(t, ctx, s, 4)
	byKey := map[string]chtest.Event{}
	for _, r := range rows {
		byKey[r.EventType+" "+r.Path] = r
	}
	first, second := byKey["page_view /page"], byKey["page_view /page/two"]
	custom, purchase := byKey["feature_interaction /page/two"], byKey["purchase /page/two"]
	if first.EventID == "" || second.EventID == "" || custom.EventID == "" || purchase.EventID == "" {
		t.Fatalf("stored events %v, want two page views, a custom event and a purchase", keys(byKey))
	}
	for _, r := range rows {
		if r.SessionID == "" || r.SessionID != first.SessionID || r.VisitorID == "" {
			t.Errorf("%s %s: session %q visitor %q, want one session of a known visitor", r.EventType, r.Path, r.SessionID, r.VisitorID)
		}
		// Analytics without marketing: no campaign data, no click id, no
		// account link, the landing page without its query.
		if r.Source != "" || r.Campaign != "" || r.ClickID != "" || r.UserID != nil || r.LandingPage != "/page" {
			t.Errorf("%s %s: source %q campaign %q click %q landing %q: marketing data without marketing consent",
				r.EventType, r.Path, r.Source, r.Campaign, r.ClickID, r.LandingPage)
		}
		if r.Browser != "Chrome 126" || r.Screen == "" || r.Language == "" {
			t.Errorf("%s: device %q screen %q language %q", r.EventType, r.Browser, r.Screen, r.Language)
		}
	}
	if custom.EventName != "video_play" || custom.Props != `{"seconds":3}` {
		t.Errorf("custom event %q props %q", custom.EventName, custom.Props)
	}
	if purchase.ConversionValue.String() != "19.99" || purchase.Currency != "EUR" {
		t.Errorf("purchase %s %s", purchase.ConversionValue, purchase.Currency)
	}

	// With marketing too, a new visit's campaign and click id are kept.
	eval("grant marketing", `window.steward.consent.set({marketing: true}).then(() => true)`, &ok)
	run("revisit", chromedp.Evaluate(`sessionStorage.clear()`, nil),
		chromedp.Navigate(base+"/page/three?utm_source=newsletter&utm_medium=email&utm_campaign=autumn&gclid=XYZ"),
		chromedp.WaitReady("body", chromedp.ByQuery))
	eval("flush", `window.steward.consent.ready.then(() => new Promise(r => setTimeout(() => { window.steward.flush(); r(true); }, 300)))`, &ok)
	rows = waitForEvents(t, ctx, s, 5)
	var third chtest.Event
	for _, r := range rows {
		if r.Path == "/page/three" {
			third = r
		}
	}
	if third.Source != "newsletter" || third.Medium != "email" || third.Campaign != "autumn" || third.ClickID != "XYZ" || third.Channel != "Email" {
		t.Fatalf("page view with marketing consent: source %q medium %q campaign %q click %q channel %q",
			third.Source, third.Medium, third.Campaign, third.ClickID, third.Channel)
	}
}

// TestBrowserGlobalPrivacyControl loads the banner in a browser whose
// navigator.globalPrivacyControl is on: marketing stays off after "Accept
// all" and comes on only when switched on in the preferences dialog.
func TestBrowserGlobalPrivacyControl(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	exe := browsertest.ChromiumPath(t)
	s := newStack(t, stackOptions{})
	s.app.Get("/gpc", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.SendString(strings.Replace(testPage, "<script src=\"/consent.js\">",
			"<script>Object.defineProperty(navigator, 'globalPrivacyControl', {value: true});</script><script src=\"/consent.js\">", 1))
	})
	base := webtest.Serve(t, s.app)
	ctx := browserContext(t, exe)
	await := func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }

	type view struct {
		Purposes map[string]bool
		GPC      bool
	}
	var v view
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/gpc"),
		chromedp.WaitVisible(".stw-banner", chromedp.ByQuery),
		chromedp.Evaluate(`window.steward.consent.ready`, &v, await)); err != nil {
		t.Fatal(err)
	}
	if !v.GPC || v.Purposes["marketing"] {
		t.Fatalf("with the signal on: %+v", v)
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(watchNextState, nil),
		chromedp.Click(".stw-banner [data-action=accept]", chromedp.ByQuery),
		chromedp.WaitNotPresent(".stw-banner", chromedp.ByQuery),
		chromedp.Evaluate(nextState, &v, await)); err != nil {
		t.Fatal(err)
	}
	if !v.Purposes["analytics"] || !v.Purposes["functional"] || v.Purposes["marketing"] {
		t.Fatalf("accept all under the signal: %+v", v.Purposes)
	}
	var notice bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.steward.consent.show()`, nil),
		chromedp.WaitVisible("[role=dialog]", chromedp.ByQuery),
		chromedp.Evaluate(`!!document.querySelector('[role=dialog] .stw-note')`, &notice),
		chromedp.Click("#stw-purpose-marketing", chromedp.ByQuery),
		chromedp.Evaluate(watchNextState, nil),
		chromedp.Click("[role=dialog] [data-action=save]", chromedp.ByQuery),
		chromedp.Evaluate(nextState, &v, await)); err != nil {
		t.Fatal(err)
	}
	if !notice {
		t.Error("the preferences dialog does not explain the GPC signal")
	}
	if !v.Purposes["marketing"] || v.GPC {
		t.Fatalf("after switching marketing on in the dialog: %+v", v)
	}
}

// TestBrowserQuickChangeOfMind has a visitor click "Reject all" and, while
// that answer is still on its way, switch analytics on. The later choice
// must be the one that stands, in the page and in the store, and the
// tracker must act on it.
func TestBrowserQuickChangeOfMind(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	exe := browsertest.ChromiumPath(t)
	var puts atomic.Int32
	s := newStack(t, stackOptions{before: func(c *fiber.Ctx) error {
		// The first save is slow to arrive, as on a congested link.
		if c.Method() == fiber.MethodPut && c.Path() == "/v1/consent" && puts.Add(1) == 1 {
			time.Sleep(time.Second)
		}
		return c.Next()
	}})
	s.app.Get("/page", servePage)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.app.Listener(ln)
	t.Cleanup(func() { _ = s.app.Shutdown() })
	ctx := browserContext(t, exe)
	await := func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }

	var analytics bool
	if err := chromedp.Run(ctx, chromedp.Navigate("http://"+ln.Addr().String()+"/page"),
		chromedp.WaitVisible(".stw-banner", chromedp.ByQuery),
		chromedp.Click(".stw-banner [data-action=reject]", chromedp.ByQuery),
		chromedp.Evaluate(`window.steward.consent.set({analytics: true}).then(s => s.purposes.analytics)`, &analytics, await),
		// Both answers are in.
		chromedp.Poll(`window.fetchLog.filter(f => f.method === 'PUT').every(f => f.status !== 0) &&
			window.fetchLog.filter(f => f.method === 'PUT').length === 2`, nil),
	); err != nil {
		t.Fatal(err)
	}
	var now bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.steward.consent.get().purposes.analytics`, &now)); err != nil {
		t.Fatal(err)
	}
	if !analytics || !now {
		t.Fatalf("analytics after reject then grant: %v when the grant was answered, %v once both were, want true", analytics, now)
	}
	var stored []bool
	if err := s.db.NewRaw("SELECT granted FROM consent_state WHERE purpose = 'analytics'").Scan(context.Background(), &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || !stored[0] {
		t.Fatalf("stored analytics choice %v, want the later grant", stored)
	}
	rows := waitForEvents(t, ctx, s, 1)
	if rows[0].EventType != "page_view" || rows[0].Path != "/page" {
		t.Fatalf("stored %s %s, want the page view the grant allows", rows[0].EventType, rows[0].Path)
	}
}

// watchNextState, run before a click that saves a choice, makes nextState
// a promise of the state the page applies next: the server's answer to
// that save, however long it takes to come.
const (
	watchNextState = `void (window.stewardNextState = new Promise(r => {
		const off = window.steward.consent.onChange(s => { off(); r(s); });
	}))`
	nextState = `window.stewardNextState`
)

// browserContext starts headless Chromium with a fresh profile.
func browserContext(t *testing.T, exe string) context.Context {
	t.Helper()
	return browsertest.Context(t, exe, chromedp.UserAgent(chromeUA))
}

func servePage(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.SendString(testPage)
}

// waitForEvents polls ClickHouse until at least n events are stored. When
// they never come, the failure shows what the page sent and what the
// server answered.
func waitForEvents(t *testing.T, ctx context.Context, s *stack, n int) []chtest.Event {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		s.flush()
		var rows []chtest.Event
		if err := s.wh.Select(context.Background(), &rows, "SELECT * FROM events ORDER BY event_time"); err != nil {
			t.Fatal(err)
		}
		if len(rows) >= n || time.Now().After(deadline) {
			if len(rows) < n {
				raw, _ := json.Marshal(rows)
				var sent any
				_ = chromedp.Run(ctx, chromedp.Evaluate(`window.fetchLog.map(f => f.method + " " + f.url + " " + f.status)`, &sent))
				t.Fatalf("%d events stored, want %d: %s\nthe page's requests: %v", len(rows), n, raw, sent)
			}
			return rows
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func keys(m map[string]chtest.Event) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
