package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/modules/generation"
)

// TestBrowserConsoleAudit uses the audit in headless Chromium with the
// keyboard only and JavaScript off, as a data protection officer: the
// audit sends them to sign in and back, they run it, a row goes past its
// retention rule, they run it again and read the new finding, follow its
// fix to the table's rule in the data map and come back, open the
// unchanged findings, read the history and read it all in German. Every
// state passes axe-core and is saved as a screenshot.
func TestBrowserConsoleAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	ctx := context.Background()
	srv, base := liveServer(t, nil)
	if _, err := srv.wired.accounts.CreateToken(ctx, "dana.dpo@example.com", "dpo"); err != nil {
		t.Fatal(err)
	}

	p := signInOnTheWay(t, base, "/console/audit", "dana.dpo@example.com", "form.run-audit")
	if loc := p.Location(); loc != base+"/console/audit" {
		t.Fatalf("the sign-in led to %s, want back to the audit", loc)
	}
	if got := p.Text("p.empty"); !strings.Contains(got, "No run of the audit") {
		t.Fatalf("before any run the page says %q", got)
	}
	p.CheckA11y("the audit before any run (en)")
	p.Screenshot("console-audit-empty-en")

	p.TabTo(`form.run-audit button[type="submit"]`)
	p.PressAndLoad("run the audit", "\r", `div[role="status"]`)
	if got := p.Text(`div[role="status"]`); !strings.Contains(got, "The audit ran and was kept") {
		t.Fatalf("after the run the page says %q", got)
	}
	p.CheckA11y("the audit's first run (en)")
	p.Screenshot("console-audit-first-en")

	// A safety check's result outlives its rule before the second run.
	old := generation.SafetyResult{ID: "s_browser_old", UserID: "u_browser", Allowed: true, Flags: "[]",
		CreatedAt: time.Now().UTC().AddDate(0, 0, -400)}
	if _, err := srv.stores.sql.NewInsert().Model(&old).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	p.TabTo(`form.run-audit button[type="submit"]`)
	p.PressAndLoad("run the audit again", "\r", `ul[data-diff="new"]`)
	var newItems []string
	p.Eval("read the new findings", `[...document.querySelectorAll('ul[data-diff="new"] li')].map(li => li.textContent)`, &newItems)
	if len(newItems) != 1 || !strings.Contains(newItems[0], "rows past their retention period") || !strings.Contains(newItems[0], "sql prompt_safety_results") {
		t.Fatalf("the new findings read %q", newItems)
	}
	var marked []string
	p.Eval("read the findings marked new", `[...document.querySelectorAll("#check-retention tr")].filter(tr => tr.querySelector(".badge-new")).map(tr => tr.querySelector("th").textContent)`, &marked)
	if len(marked) != 1 || marked[0] != "rows past their retention period" {
		t.Fatalf("the retention check marks %q as new", marked)
	}
	var history []string
	p.Eval("read the history", `[...document.querySelectorAll("table.history tbody tr")].map(tr => tr.textContent.replace(/\s+/g, " ").trim())`, &history)
	if len(history) != 2 || !strings.Contains(history[0], "(latest)") || !strings.Contains(history[0], "Finding") || !strings.Contains(history[1], "Warning") {
		t.Fatalf("the history reads %q", history)
	}
	p.CheckA11y("the audit with a new finding (en)")
	p.Screenshot("console-audit-en")

	// The finding's fix: the table's rule in the data map, and back.
	p.TabTo(`#check-retention a[href="/console/datamap?store=sql&table=prompt_safety_results"]`)
	p.PressAndLoad("open the table's rule", "\r", "table.datamap")
	var tables []string
	p.Eval("read the rows' tables", `[...document.querySelectorAll("table.datamap tbody th code")].map(c => c.textContent.split(".")[1])`, &tables)
	if len(tables) == 0 {
		t.Fatal("the fix's link shows no column")
	}
	for _, table := range tables {
		if table != "prompt_safety_results" {
			t.Fatalf("the fix's link shows the columns of %q", tables)
		}
	}
	p.TabTo(`nav.subnav a[href="/console/audit"]`)
	p.PressAndLoad("back to the audit", "\r", "table.history")

	p.TabTo(`details summary`)
	p.Press("show the unchanged findings", "\r")
	var open bool
	p.Eval("is it open", `document.querySelector("details").open`, &open)
	if !open {
		t.Fatal("Enter did not open the unchanged findings")
	}
	p.CheckA11y("the audit's unchanged findings (en)")

	p.TabTo(`nav.languages a[hreflang="de"]`)
	p.PressAndLoad("switch to German", "\r", `nav.languages a[aria-current="true"][hreflang="de"]`)
	if h := p.Text("h1"); h != "Prüfung" {
		t.Errorf("the German heading reads %q", h)
	}
	if b := p.Text(`form.run-audit button`); b != "Prüfung jetzt ausführen" {
		t.Errorf("the German button reads %q", b)
	}
	p.CheckA11y("the audit (de)")
	p.Screenshot("console-audit-de")
	t.Logf("screenshots in %s", p.ScreenshotFolder())
}
