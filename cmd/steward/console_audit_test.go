package main

import (
	"context"
	"encoding/json"
	"html"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/audit"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/modules/generation"
)

// rowCounts counts the rows of every table of the SQL store (SQLite),
// read from its own catalogue: whatever a request writes shows up here,
// whichever module's table it is.
func rowCounts(t *testing.T, db *bun.DB) map[string]int {
	t.Helper()
	ctx := context.Background()
	var tables []string
	if err := db.NewRaw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").Scan(ctx, &tables); err != nil {
		t.Fatal(err)
	}
	if len(tables) < 20 {
		t.Fatalf("the SQL store lists only %d tables: %v", len(tables), tables)
	}
	out := make(map[string]int, len(tables))
	for _, name := range tables {
		n, err := db.NewSelect().TableExpr("?", bun.Ident(name)).Count(ctx)
		if err != nil {
			t.Fatalf("count %s: %v", name, err)
		}
		out[name] = int(n)
	}
	return out
}

// settledRowCounts is rowCounts once the decision log has written what
// its queue held: the policy engine records each evaluation there, off
// the request path, within its batch interval.
func settledRowCounts(t *testing.T, db *bun.DB) map[string]int {
	t.Helper()
	last := rowCounts(t, db)
	for range 50 {
		time.Sleep(300 * time.Millisecond)
		now := rowCounts(t, db)
		if maps.Equal(now, last) {
			return now
		}
		last = now
	}
	t.Fatal("the SQL store's row counts never settled")
	return nil
}

// changedTables names the tables whose row counts differ, with both
// counts.
func changedTables(before, after map[string]int, except ...string) map[string][2]int {
	out := map[string][2]int{}
	for name := range before {
		if before[name] != after[name] && !slices.Contains(except, name) {
			out[name] = [2]int{before[name], after[name]}
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok && !slices.Contains(except, name) {
			out[name] = [2]int{-1, after[name]}
		}
	}
	return out
}

// TestAuditReadsWriteNothing holds every GET of the audit to writing
// nothing, on a wired server whose SQL store holds a row past its
// retention rule: the report's retention check previews the rule and
// keeps nothing of it, and the row stays. The rows of every table are
// counted directly before and after.
func TestAuditReadsWriteNothing(t *testing.T) {
	ctx := context.Background()
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev = true })
	db := srv.stores.sql
	tok, err := srv.wired.accounts.CreateToken(ctx, "dana.reads@example.com", "dpo")
	if err != nil {
		t.Fatal(err)
	}
	old := generation.SafetyResult{ID: "s_reads_old", UserID: "u_reads", Allowed: true, Flags: "[]",
		CreatedAt: time.Now().UTC().AddDate(0, 0, -400)}
	if _, err := db.NewInsert().Model(&old).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	dpo := &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
	reads := []string{"/v1/audit/report", "/v1/audit/datamap", "/v1/audit/runs", "/console/audit"}

	// The first reads evaluate the policies for the first time; the
	// engine records those evaluations in decision_log, its evidence of
	// what the policy decided, and answers later reads from its cache.
	// Nothing else may change.
	before := settledRowCounts(t, db)
	for _, path := range reads {
		if resp, body := dpo.get(path); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
	}
	warm := settledRowCounts(t, db)
	if changed := changedTables(before, warm, "decision_log"); len(changed) > 0 {
		t.Fatalf("the first reads of the audit changed rows (table: before, after): %v", changed)
	}

	// From then on, a read changes no table at all.
	for _, path := range reads {
		resp, body := dpo.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
		after := settledRowCounts(t, db)
		if changed := changedTables(warm, after); len(changed) > 0 {
			t.Errorf("GET %s changed rows (table: before, after): %v", path, changed)
		}
	}
	if warm["prompt_safety_results"] != before["prompt_safety_results"] || warm["retention_runs"] != 0 {
		t.Fatalf("the expired row or a retention run changed: %v", changedTables(before, warm))
	}
}

// storedRun is a row of audit_runs as the SQL store holds it.
type storedRun struct {
	ID, ActorID, Status string
	Findings, Warnings  int64
	Report              audit.Report
	Raw                 string
}

// storedRuns reads audit_runs straight from the SQL store, newest first.
func storedRuns(t *testing.T, db *bun.DB) []storedRun {
	t.Helper()
	rows, err := db.QueryContext(context.Background(),
		"SELECT id, actor_id, status, findings, warnings, report FROM audit_runs ORDER BY ran_at DESC, id DESC")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedRun
	for rows.Next() {
		var r storedRun
		if err := rows.Scan(&r.ID, &r.ActorID, &r.Status, &r.Findings, &r.Warnings, &r.Raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(r.Raw), &r.Report); err != nil {
			t.Fatalf("run %s: the report is not JSON: %v", r.ID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// finding is a finding as the audit page and the diff name it.
type finding struct{ check, what, where string }

func findingsOf(rep audit.Report) []finding {
	var out []finding
	for _, c := range rep.Checks {
		for _, f := range c.Findings {
			out = append(out, finding{c.Name, f.What, f.Where})
		}
	}
	return out
}

// minus is what of a is not in b, each finding of b taken once.
func minus(a, b []finding) []finding {
	left := slices.Clone(b)
	var out []finding
	for _, f := range a {
		if i := slices.Index(left, f); i >= 0 {
			left = slices.Delete(left, i, i+1)
			continue
		}
		out = append(out, f)
	}
	return out
}

var (
	diffList = map[string]*regexp.Regexp{}
	diffItem = regexp.MustCompile(`<li><strong>[^<]*</strong>: <span lang="en">([^<]*)</span>, <code>([^<]*)</code></li>`)
	ranQuery = regexp.MustCompile(`^/console/audit\?ran=(aud_[a-z2-7]+)$`)
)

// shownDiff reads the findings the audit page lists as kind (new,
// resolved, unchanged) as what and where.
func shownDiff(page, kind string) [][2]string {
	re, ok := diffList[kind]
	if !ok {
		re = regexp.MustCompile(`(?s)data-diff="` + kind + `"[^>]*>(.*?)</ul>`)
		diffList[kind] = re
	}
	m := re.FindStringSubmatch(page)
	if m == nil {
		return nil
	}
	var out [][2]string
	for _, it := range diffItem.FindAllStringSubmatch(m[1], -1) {
		out = append(out, [2]string{html.UnescapeString(it[1]), html.UnescapeString(it[2])})
	}
	return out
}

func whatWhere(fs []finding) [][2]string {
	var out [][2]string
	for _, f := range fs {
		out = append(out, [2]string{f.what, f.where})
	}
	return out
}

// runAudit posts the console's form as c and returns the id of the run
// it was sent back to.
func (c *pageClient) runAudit() string {
	c.t.Helper()
	resp, body := c.postForm("/console/audit/run", url.Values{"csrf_token": {""}})
	m := ranQuery.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		c.t.Fatalf("POST /console/audit/run: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return m[1]
}

// TestConsoleAuditOnAWiredServer runs the audit from the console as a
// DPO would, on a wired server: every role's access, two runs with a
// problem caused between them and one fixed before a third, the diff the
// page shows against the runs read straight from audit_runs, where each
// finding is fixed, and the history.
func TestConsoleAuditOnAWiredServer(t *testing.T) {
	ctx := context.Background()
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev = true })
	db := srv.stores.sql
	clients := map[string]*pageClient{}
	userIDs := map[string]string{}
	for _, role := range authz.Roles() {
		email := role + ".audit@example.com"
		tok, err := srv.wired.accounts.CreateToken(ctx, email, role)
		if err != nil {
			t.Fatal(err)
		}
		clients[role] = &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
		var id string
		if err := db.NewRaw("SELECT id FROM users WHERE email = ?", email).Scan(ctx, &id); err != nil {
			t.Fatal(err)
		}
		userIDs[role] = id
	}
	mayAudit := map[string]bool{"dpo": true, "admin": true}

	t.Run("each role, and a visitor sent to sign in", func(t *testing.T) {
		for _, role := range authz.Roles() {
			c := clients[role]
			resp, body := c.get("/console/audit")
			want := http.StatusForbidden
			if mayAudit[role] {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Errorf("GET /console/audit as %s: %d, want %d\n%s", role, resp.StatusCode, want, body)
			}
			if want == http.StatusOK {
				if csp := resp.Header.Get("Content-Security-Policy"); csp != strictPageCSP {
					t.Errorf("GET /console/audit: CSP %q", csp)
				}
				if !strings.Contains(body, `href="/console/audit" aria-current="page"`) {
					t.Errorf("the console's navigation lacks the audit as %s", role)
				}
				if _, home := c.get("/console"); !strings.Contains(home, `<a href="/console/audit">`) {
					t.Errorf("the console's overview does not link the audit for %s", role)
				}
				if id := c.runAudit(); id == "" {
					t.Errorf("no run for %s", role)
				}
				continue
			}
			if resp, _ := c.postForm("/console/audit/run", nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST /console/audit/run as %s: %d, want 403", role, resp.StatusCode)
			}
		}
		visitor := newPageClient(t, srv)
		for _, send := range []func() (*http.Response, string){
			func() (*http.Response, string) { return visitor.get("/console/audit") },
			func() (*http.Response, string) { return visitor.postForm("/console/audit/run", nil) },
		} {
			resp, _ := send()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/?next="+url.QueryEscape("/console/audit") {
				t.Errorf("a visitor: %d to %q", resp.StatusCode, loc)
			}
		}
		// A form sent from another site runs nothing.
		req := httptest.NewRequest(http.MethodPost, "/console/audit/run", nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if resp, _ := clients["dpo"].send(req); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a cross-site post: %d, want 403", resp.StatusCode)
		}
		// The DPO's run and the administrator's, each under its account.
		runs := storedRuns(t, db)
		if len(runs) != 2 || runs[0].ActorID != userIDs["admin"] || runs[1].ActorID != userIDs["dpo"] {
			t.Fatalf("audit_runs holds %d runs %+v, want the DPO's then the administrator's", len(runs), runs)
		}
	})

	dpo := clients["dpo"]
	t.Run("a problem caused between two runs is new, and fixed before a third, resolved", func(t *testing.T) {
		first := dpo.runAudit()
		// A row past its retention rule, and a column no one tagged.
		old := generation.SafetyResult{ID: "s_audit_old", UserID: "u_audit_subject", Allowed: true, Flags: "[]",
			Reason: "planted reason text", CreatedAt: time.Now().UTC().AddDate(0, 0, -400)}
		if _, err := db.NewInsert().Model(&old).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "ALTER TABLE users ADD COLUMN nickname TEXT"); err != nil {
			t.Fatal(err)
		}
		second := dpo.runAudit()
		runs := storedRuns(t, db)
		if runs[0].ID != second || runs[1].ID != first {
			t.Fatalf("audit_runs' newest are %s and %s, want %s and %s", runs[0].ID, runs[1].ID, second, first)
		}
		newFindings := minus(findingsOf(runs[0].Report), findingsOf(runs[1].Report))
		want := []finding{
			{audit.CheckDataMap, "untagged-column", "sql users.nickname"},
			{audit.CheckRetention, "rows past their retention period", "sql prompt_safety_results"},
		}
		if !slices.Equal(newFindings, want) {
			t.Fatalf("the stored runs differ by %v, want %v", newFindings, want)
		}
		if runs[0].Status != audit.StatusFinding || runs[0].Findings != runs[1].Findings+2 {
			t.Errorf("the second run: %s with %d findings, the first %d", runs[0].Status, runs[0].Findings, runs[1].Findings)
		}
		// The report names tables, ids, categories and counts: no value
		// of the planted row, no account's address.
		for _, value := range []string{"u_audit_subject", "planted reason text", "@example.com"} {
			if strings.Contains(runs[0].Raw, value) {
				t.Errorf("the stored report holds %q", value)
			}
		}

		resp, page := dpo.get("/console/audit?ran=" + second)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /console/audit: %d", resp.StatusCode)
		}
		if got := shownDiff(page, "new"); !slices.Equal(got, whatWhere(want)) {
			t.Errorf("the page lists as new %v, want %v", got, whatWhere(want))
		}
		if got := shownDiff(page, "resolved"); len(got) != 0 {
			t.Errorf("the page lists as resolved %v, want nothing", got)
		}
		if got, want := shownDiff(page, "unchanged"), whatWhere(findingsOf(runs[1].Report)); !slices.Equal(got, want) {
			t.Errorf("the page lists as unchanged %v, want the first run's %v", got, want)
		}
		if !strings.Contains(page, `role="status"`) {
			t.Error("the page does not say the run was made")
		}
		// Each new finding links where it is fixed.
		for _, fix := range []string{
			`<a href="/console/datamap?store=sql&amp;table=users">`,
			`<a href="/console/datamap?store=sql&amp;table=prompt_safety_results">`,
			`<code>steward retention run</code>`,
		} {
			if !strings.Contains(page, fix) {
				t.Errorf("the page lacks the fix %s", fix)
			}
		}

		if _, err := db.ExecContext(ctx, "ALTER TABLE users DROP COLUMN nickname"); err != nil {
			t.Fatal(err)
		}
		third := dpo.runAudit()
		runs = storedRuns(t, db)
		if runs[0].ID != third {
			t.Fatalf("the newest run is %s, want %s", runs[0].ID, third)
		}
		resolved := minus(findingsOf(runs[1].Report), findingsOf(runs[0].Report))
		if want := []finding{{audit.CheckDataMap, "untagged-column", "sql users.nickname"}}; !slices.Equal(resolved, want) {
			t.Fatalf("the stored runs resolve %v, want %v", resolved, want)
		}
		_, page = dpo.get("/console/audit")
		if got := shownDiff(page, "resolved"); !slices.Equal(got, whatWhere(resolved)) {
			t.Errorf("the page lists as resolved %v, want %v", got, whatWhere(resolved))
		}
		if got := shownDiff(page, "new"); len(got) != 0 {
			t.Errorf("the page lists as new %v, want nothing", got)
		}
		if got := shownDiff(page, "unchanged"); !slices.Contains(got, [2]string{"rows past their retention period", "sql prompt_safety_results"}) {
			t.Errorf("the row past retention is not unchanged: %v", got)
		}
		if strings.Contains(page, `role="status"`) {
			t.Error("the page says a run was just made without ?ran=")
		}
	})

	t.Run("the history is every run, newest first, as audit_runs holds them", func(t *testing.T) {
		_, page := dpo.get("/console/audit")
		runs := storedRuns(t, db)
		rows := historyRow.FindAllStringSubmatch(page, -1)
		if len(rows) != len(runs) || len(runs) != 5 {
			t.Fatalf("the history shows %d runs, audit_runs holds %d, want 5", len(rows), len(runs))
		}
		for i, r := range rows {
			by, status, findings, warnings := r[1], r[2], r[3], r[4]
			want := runs[i]
			wantBy := "you"
			if want.ActorID != userIDs["dpo"] {
				wantBy = "<code>" + want.ActorID + "</code>"
			}
			if by != wantBy || status != want.Status || findings != itoa(want.Findings) || warnings != itoa(want.Warnings) {
				t.Errorf("history row %d: by %s, %s, %s findings, %s warnings; audit_runs has %+v", i, by, status, findings, warnings, want)
			}
		}
	})
}

var historyRow = regexp.MustCompile(`(?s)<tr>\s*<th scope="row">[^<]*(?:<span class="muted">[^<]*</span>)?</th>\s*<td>(you|<code>[^<]*</code>)</td>\s*<td><span class="badge badge-(\w+)">[^<]*</span></td>\s*<td>(\d+)</td>\s*<td>(\d+)</td>`)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
