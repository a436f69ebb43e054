package main

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
)

var datamapRow = regexp.MustCompile(`<th scope="row"><code>([a-z]+)\.([a-z_0-9]+)\.([a-z_0-9]+)</code>`)

// TestConsoleOnAWiredServer uses the console's data map browser as a DPO
// does, on a wired server, and holds every role to what the access policy
// lets it see. What the pages show is checked against the data map built
// directly.
func TestConsoleOnAWiredServer(t *testing.T) {
	ctx := context.Background()
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev = true })
	m, _, err := srv.dataMap.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]*pageClient{}
	for _, role := range authz.Roles() {
		tok, err := srv.wired.accounts.CreateToken(ctx, role+".console@example.com", role)
		if err != nil {
			t.Fatal(err)
		}
		clients[role] = &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
	}

	t.Run("each role reaches what the policy lets it audit, and a visitor is sent to sign in", func(t *testing.T) {
		mayAudit := map[string]bool{"dpo": true, "admin": true}
		// An analyst's console holds the attribution workspace alone.
		mayUse := map[string]bool{"dpo": true, "admin": true, "analyst": true}
		for role, c := range clients {
			for _, path := range []string{"/console", "/console/datamap", "/console/datamap/record.md", "/console/datamap/record.csv", "/console/policy", "/console/consent", "/console/consent.csv"} {
				resp, body := c.get(path)
				want := http.StatusForbidden
				if mayAudit[role] || path == "/console" && mayUse[role] {
					want = http.StatusOK
				}
				if resp.StatusCode != want {
					t.Errorf("GET %s as %s: %d, want %d\n%s", path, role, resp.StatusCode, want, body)
				}
				if want == http.StatusOK && strings.HasSuffix(path, "datamap") && resp.Header.Get("Content-Security-Policy") != strictPageCSP {
					t.Errorf("GET %s: CSP %q", path, resp.Header.Get("Content-Security-Policy"))
				}
			}
		}
		resp, _ := newPageClient(t, srv).get("/console/datamap?category=user")
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/?next="+url.QueryEscape("/console/datamap?category=user") {
			t.Errorf("a visitor: %d to %q", resp.StatusCode, loc)
		}
	})

	dpo := clients["dpo"]
	t.Run("every column is shown, and the filters keep what they say", func(t *testing.T) {
		_, page := dpo.get("/console/datamap")
		if n := len(datamapRow.FindAllString(page, -1)); n != len(m.Entries) {
			t.Fatalf("the browser shows %d columns, the data map has %d", n, len(m.Entries))
		}
		for _, f := range []struct{ query, store, category, purpose string }{
			{query: "store=warehouse", store: "warehouse"},
			{query: "category=user.financial", category: "user.financial"},
			{query: "purpose=essential.legal_obligation&store=sql", store: "sql", purpose: "essential.legal_obligation"},
		} {
			want := 0
			for _, e := range m.Entries {
				if (f.store == "" || e.Store == f.store) &&
					(f.category == "" || strings.HasPrefix(e.Category, f.category+".") || e.Category == f.category) &&
					(f.purpose == "" || slices.Contains(e.Purposes, f.purpose)) {
					want++
				}
			}
			_, page := dpo.get("/console/datamap?" + f.query)
			rows := datamapRow.FindAllStringSubmatch(page, -1)
			if len(rows) != want || want == 0 {
				t.Errorf("?%s shows %d columns, the data map has %d", f.query, len(rows), want)
			}
			for _, r := range rows {
				if f.store != "" && r[1] != f.store {
					t.Errorf("?%s shows %s.%s.%s", f.query, r[1], r[2], r[3])
				}
			}
			// The CSV download carries the same filter.
			_, raw := dpo.get("/console/datamap/record.csv?" + f.query)
			recs, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
			if err != nil || len(recs) != want+1 {
				t.Errorf("record.csv?%s: %d rows (%v), want %d and a header", f.query, len(recs), err, want)
			}
		}
		if _, page := dpo.get("/console/datamap?table=no_such_table"); !strings.Contains(page, "No column matches") {
			t.Error("a filter matching nothing says nothing")
		}
	})

	t.Run("the record downloads as Markdown and as a page", func(t *testing.T) {
		resp, md := dpo.get("/console/datamap/record.md")
		if !strings.Contains(md, "(a) Controller") || !strings.Contains(resp.Header.Get("Content-Disposition"), "record-of-processing.md") {
			t.Errorf("record.md: %q\n%.300s", resp.Header.Get("Content-Disposition"), md)
		}
		_, html := dpo.get("/console/datamap/record.html?category=user.financial")
		if !strings.Contains(html, "<table>") || !strings.Contains(html, "user.financial.") || strings.Contains(html, "user.behavior.") {
			t.Errorf("record.html of user.financial:\n%.500s", html)
		}
		if resp, _ := dpo.get("/console/datamap/record.pdf"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("record.pdf: %d, want 404", resp.StatusCode)
		}
	})
}

// TestConsoleConsentReport makes choices on the privacy center's page in
// many browsers and reads the console's consent report: the totals equal a
// direct count of the proof log, a method chosen by k people shows its
// count and one chosen by k-1 does not, and the CSV says the same.
func TestConsoleConsentReport(t *testing.T) {
	ctx := context.Background()
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev = true })
	k, err := attribution.PolicyMinGroupSize()
	if err != nil {
		t.Fatal(err)
	}
	for range k {
		chooseOnPage(t, newPageClient(t, srv), "accept_all")
	}
	for range k - 1 {
		chooseOnPage(t, newPageClient(t, srv), "reject_all")
	}
	var changes int
	if err := srv.stores.sql.NewSelect().Table("consent_log").ColumnExpr("count(DISTINCT change_id)").Scan(ctx, &changes); err != nil {
		t.Fatal(err)
	}
	tok, err := srv.wired.accounts.CreateToken(ctx, "dpo.consent@example.com", "dpo")
	if err != nil {
		t.Fatal(err)
	}
	dpo := &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
	resp, page := dpo.get("/console/consent")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, strconv.Itoa(changes)+" choices in the period") || changes != 2*k-1 {
		t.Fatalf("the report of %d choices: %d\n%s", changes, resp.StatusCode, page)
	}
	_, raw := dpo.get("/console/consent.csv")
	recs, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string][]string{}
	for _, r := range recs[1:] {
		if r[0] == "method" {
			methods[r[5]] = r
		}
	}
	if r := methods["banner_accept"]; len(r) == 0 || r[6] != strconv.Itoa(k) || r[9] != "false" {
		t.Errorf("accept all by %d people: %v", k, r)
	}
	if r := methods["banner_reject"]; len(r) == 0 || r[6] != "" || r[9] != "true" {
		t.Errorf("reject all by %d people: %v", k-1, r)
	}
	if resp, body := dpo.get("/console/consent?from=2026-13-01"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="from" name="from" type="date" value="2026-13-01" aria-invalid="true"`) {
		t.Errorf("a bad day: %d\n%s", resp.StatusCode, body)
	}
}
