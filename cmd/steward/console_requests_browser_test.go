package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stewardhq/steward/governance/privacy"
)

// TestBrowserConsoleRequests works through the requests queue in
// headless Chromium with the keyboard only and JavaScript off, as a data
// protection officer: signed out, the queue sends them to sign in and
// back; they open the overdue request at the top, extend its deadline
// with a reason, go back and reject another request with a reason, read
// what a completed download's package holds, and read the queue in
// German. Every state passes axe-core; the queue and a
// request's page are saved as screenshots.
func TestBrowserConsoleRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	ctx := context.Background()
	srv, base := liveServer(t, nil)
	if _, err := srv.wired.accounts.CreateToken(ctx, "dana.dpo@example.com", "dpo"); err != nil {
		t.Fatal(err)
	}
	pm := srv.wired.privacy
	file := func(typ, email string) privacy.Request {
		t.Helper()
		r, err := pm.FileForOperator(ctx, typ, email, "asked by letter")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	file(privacy.TypeErasure, "lena.later@example.com")
	soon := file(privacy.TypeAccess, "sam.soon@example.com")
	setRequest(t, srv, soon.ID, "due_at = ?", time.Now().UTC().Add(4*24*time.Hour))
	overdue := file(privacy.TypeAccess, "otto.overdue@example.com")
	setRequest(t, srv, overdue.ID, "due_at = ?", time.Now().UTC().Add(-3*24*time.Hour))
	done := file(privacy.TypeAccess, "dora.done@example.com")
	if _, err := pm.Process(ctx, done.ID); err != nil {
		t.Fatal(err)
	}
	excessive := file(privacy.TypeErasure, "rex.repeat@example.com")

	p := signInOnTheWay(t, base, "/console/requests", "dana.dpo@example.com", "table.queue")
	if loc := p.Location(); loc != base+"/console/requests" {
		t.Fatalf("the sign-in led to %s, want back to the queue", loc)
	}
	var first string
	p.Eval("read the first row", `document.querySelector("table.queue tbody tr th a").getAttribute("href")`, &first)
	if first != "/console/requests/"+overdue.ID {
		t.Fatalf("the queue starts with %s, want the overdue %s", first, overdue.ID)
	}
	p.CheckA11y("the queue (en)")
	p.Screenshot("console-requests-en")

	p.TabTo(`tr.overdue th a`)
	p.PressAndLoad("open the overdue request", "\r", "#extend-reason")
	if h := p.Text("h1"); !strings.HasPrefix(h, "Access request") {
		t.Errorf("the request's heading reads %q", h)
	}
	p.CheckA11y("the overdue request (en)")
	p.Screenshot("console-request-en")

	// Two months: the select takes the digit, as any select.
	p.TabTo("#extend-months")
	p.Press("pick two months", "2")
	p.TabTo("#extend-reason")
	p.Run("type the reason", chromedp.KeyEvent("The subject's data spans three stores."))
	p.TabTo(`form[action$="/extend"] button[type="submit"]`)
	p.PressAndLoad("extend", "\r", `div.note[role="status"]`)
	r := storedRequest(t, srv, overdue.ID)
	if r.ExtensionReason != "The subject's data spans three stores." || !r.DueAt.Equal(r.ReceivedAt.AddDate(0, 3, 0)) {
		t.Fatalf("the stored request: due %s (received %s), reason %q", r.DueAt, r.ReceivedAt, r.ExtensionReason)
	}
	p.CheckA11y("the extended request (en)")

	p.TabTo(`main > p > a[href="/console/requests"]`)
	p.PressAndLoad("back to the queue", "\r", "table.queue")
	p.TabTo(`table.queue a[href="/console/requests/` + excessive.ID + `"]`)
	p.PressAndLoad("open the request to reject", "\r", "#reject-reason")
	p.TabTo("#reject-reason")
	p.Run("type the reason", chromedp.KeyEvent("Manifestly excessive: the fourth identical request this month."))
	p.TabTo(`form[action$="/reject"] button[type="submit"]`)
	p.PressAndLoad("reject", "\r", `div.note[role="status"]`)
	if r := storedRequest(t, srv, excessive.ID); r.Status != privacy.StatusRejected {
		t.Fatalf("the stored request is %s, want rejected", r.Status)
	}
	evs := storedTrail(t, srv, excessive.ID)
	if last := evs[len(evs)-1]; last.Note != "Manifestly excessive: the fourth identical request this month." {
		t.Errorf("the trail ends with %+v", last)
	}
	p.CheckA11y("the rejected request (en)")

	// The completed download's page counts what its package holds.
	p.TabTo(`main > p > a[href="/console/requests"]`)
	p.PressAndLoad("back to the queue", "\r", "table.queue")
	p.TabTo(`table.queue a[href="/console/requests/` + done.ID + `"]`)
	p.PressAndLoad("open the completed request", "\r", "#package-heading")
	p.CheckA11y("the completed request (en)")

	p.TabTo(`main > p > a[href="/console/requests"]`)
	p.PressAndLoad("back to the queue", "\r", "table.queue")
	p.TabTo(`nav.languages a[hreflang="de"]`)
	p.PressAndLoad("switch to German", "\r", `nav.languages a[aria-current="true"][hreflang="de"]`)
	if h := p.Text("h1"); h != "Anfragen" {
		t.Errorf("the German heading reads %q", h)
	}
	p.CheckA11y("the queue (de)")
	p.Screenshot("console-requests-de")
	t.Logf("screenshots in %s", p.ScreenshotFolder())
}
