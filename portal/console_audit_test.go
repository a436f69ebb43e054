package portal

import (
	"slices"
	"testing"
)

func TestAuditFixes(t *testing.T) {
	tests := []struct {
		name, check string
		finding     AuditFinding
		// hrefs, commands and docs the fixes name, in order.
		want []string
	}{
		{name: "an untagged column at its table", check: checkDataMap,
			finding: AuditFinding{What: "untagged-column", Where: "sql users.nickname"},
			want:    []string{"/console/datamap?store=sql&table=users", "docs/policies.md"}},
		{name: "a warehouse column at its table", check: checkDataMap,
			finding: AuditFinding{What: "bad-tag", Where: "warehouse events.page_url"},
			want:    []string{"/console/datamap?store=warehouse&table=events", "docs/policies.md"}},
		{name: "an item of the privacy policy no column keeps", check: checkDataMap,
			finding: AuditFinding{What: "unstored-item", Where: "privacy policy section 3.phone number"},
			want:    []string{"docs/policies.md", "/console/datamap"}},
		{name: "a store behind its migrations", check: checkDataMap,
			finding: AuditFinding{What: "not-migrated", Where: "sql "},
			want:    []string{"steward migrate up", "docs/operations.md"}},
		{name: "rows past retention", check: checkRetention,
			finding: AuditFinding{What: "rows past their retention period", Where: "sql prompt_safety_results"},
			want:    []string{"steward retention run", "/console/datamap?store=sql&table=prompt_safety_results", "docs/operations.md"}},
		{name: "retention never ran", check: checkRetention,
			finding: AuditFinding{What: "retention never ran", Where: "retention_runs"},
			want:    []string{"steward retention run", "docs/operations.md"}},
		{name: "an overdue request", check: checkDeadlines,
			finding: AuditFinding{What: "privacy request overdue", Where: "privacy_requests/pr_1"},
			want:    []string{"/console/requests", "docs/operations.md"}},
		{name: "a choice without proof", check: checkConsentProof,
			finding: AuditFinding{What: "consent without proof", Where: "consent_state/c_1"},
			want:    []string{"docs/policies.md", "/privacy/consent"}},
		{name: "a decision without revision", check: checkDecisionLog,
			finding: AuditFinding{What: "decision without revision or input digest", Where: "decision_log policy steward.access"},
			want:    []string{"docs/policies.md"}},
		{name: "a record that does not render", check: checkRecord,
			finding: AuditFinding{What: "record of processing", Where: "data map"},
			want:    []string{"steward datamap --format markdown", "/console/datamap"}},
		{name: "a broken admin log", check: checkAdminLog,
			finding: AuditFinding{What: "admin log hash mismatch", Where: "admin_log seq 4"},
			want:    []string{"docs/operations.md"}},
		{name: "a module's check the page does not know", check: "module_rule",
			finding: AuditFinding{What: "broken", Where: "table/1"},
			want:    []string{"docs/operations.md"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range auditFixes(tt.check, tt.finding) {
				switch {
				case f.Href != "":
					if !slices.Contains(auditFixLabels, f.LabelID) {
						t.Errorf("link %s has the label %q, which auditFixLabels lacks", f.Href, f.LabelID)
					}
					got = append(got, f.Href)
				case f.Command != "":
					got = append(got, f.Command)
				default:
					if f.Section == "" {
						t.Errorf("%s names no section", f.Doc)
					}
					got = append(got, f.Doc)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fixes %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDiffRuns(t *testing.T) {
	f := func(what, where, detail string) AuditFinding {
		return AuditFinding{Level: "finding", What: what, Where: where, Detail: detail}
	}
	before := AuditRun{ID: "a", Checks: []AuditCheck{
		{Name: "retention", Findings: []AuditFinding{f("rows", "sql a", "1 rows"), f("values", "sql b", "2 rows"), f("values", "sql b", "3 rows")}},
		{Name: "data_map", Findings: []AuditFinding{f("untagged-column", "sql users.x", "")}},
	}}
	latest := AuditRun{ID: "b", Checks: []AuditCheck{
		// The count changed: the same finding.
		{Name: "retention", Findings: []AuditFinding{f("rows", "sql a", "5 rows"), f("values", "sql b", "2 rows")}},
		{Name: "data_map", Findings: []AuditFinding{f("untagged-column", "sql users.y", "")}},
		// The same what and where under another check is another finding.
		{Name: "module_rule", Findings: []AuditFinding{f("rows", "sql a", "")}},
	}}
	d := diffRuns(latest, before)
	keys := func(items []auditDiffItem) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.Check+" "+it.What+" "+it.Where)
		}
		return out
	}
	for _, tt := range []struct {
		name      string
		got, want []string
	}{
		{"new", keys(d.New), []string{"data_map untagged-column sql users.y", "module_rule rows sql a"}},
		{"resolved", keys(d.Resolved), []string{"retention values sql b", "data_map untagged-column sql users.x"}},
		{"unchanged", keys(d.Unchanged), []string{"retention rows sql a", "retention values sql b"}},
	} {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if first := diffRuns(latest, AuditRun{}); len(first.New) != 4 || len(first.Resolved) != 0 {
		t.Errorf("against no run: %d new, %d resolved", len(first.New), len(first.Resolved))
	}
}
