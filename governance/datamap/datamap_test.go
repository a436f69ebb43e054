package datamap

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"go.yaml.in/yaml/v3"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/policies"
)

func TestMain(m *testing.M) { chtest.MainWith(m, sqltest.Main) }

func engine(t *testing.T) *policies.Engine {
	t.Helper()
	return authtest.Engine(t)
}

func platform() []Source { return []Source{{Module: "platform", Models: sqlstore.Models()}} }

// only keeps the problems about the given tables. The migrated schema
// holds every module's tables; these tests declare the platform's models
// alone, and the whole product's coverage is checked where every module is
// wired (cmd/steward).
func only(problems []Problem, tables ...string) []Problem {
	var out []Problem
	for _, p := range problems {
		for _, t := range tables {
			if p.Table == t {
				out = append(out, p)
			}
		}
	}
	return out
}

// rogue is a model of a table the tests create by hand.
type rogue struct {
	bun.BaseModel `bun:"table:rogue"`
	ID            string `bun:"id,pk" privacy:"system.operations"`
	Email         string `bun:"email" privacy:"user.contact.email,subject=email"`
	Note          string `bun:"note"`
	Ghost         string `bun:"ghost" privacy:"user.name"`
	Odd           string `bun:"odd" privacy:"user.no_such_category"`
	Group         string `bun:"grp" privacy:"user.content"`
	BadOption     string `bun:"bad_option" privacy:"user.name,primary"`
}

func TestPlatformSchemaIsCovered(t *testing.T) {
	pol := engine(t)
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		m, problems, err := Build(context.Background(), Inputs{SQL: db, Sources: platform(), Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range only(problems, "decision_log", "settings") {
			t.Errorf("problem: %s", p)
		}
		if len(m.Entries) == 0 {
			t.Fatal("empty data map")
		}
		for _, e := range m.Entries {
			if e.Table == "decision_log" && e.Column == "subject_ref" && e.Category != "user.unique_id.pseudonymous" {
				t.Errorf("decision_log.subject_ref category = %s", e.Category)
			}
		}
	})
}

func TestCoverageProblemsNameTheColumn(t *testing.T) {
	pol := engine(t)
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		_, err := db.ExecContext(ctx, `CREATE TABLE rogue (id TEXT PRIMARY KEY, email TEXT, note TEXT, odd TEXT, grp TEXT, bad_option TEXT, unknown_col TEXT)`)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.ExecContext(ctx, `CREATE TABLE orphan (id TEXT PRIMARY KEY)`)
		if err != nil {
			t.Fatal(err)
		}
		sources := append(platform(), Source{Module: "test", Models: []any{(*rogue)(nil)}})
		_, problems, err := Build(ctx, Inputs{SQL: db, Sources: sources, Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, p := range only(problems, "rogue", "orphan", "decision_log", "settings") {
			got[p.Table+"."+p.Column] = p.Rule
			if !strings.Contains(p.String(), "sql "+p.Table+"."+p.Column) {
				t.Errorf("message %q does not name store, table and column", p)
			}
		}
		want := map[string]string{
			"rogue.note":        "untagged-field",
			"rogue.unknown_col": "untagged-column",
			"rogue.ghost":       "missing-column",
			"rogue.odd":         "unknown-category",
			"rogue.grp":         "group-category",
			"rogue.bad_option":  "bad-tag",
			"orphan.id":         "untagged-column",
		}
		for col, rule := range want {
			if got[col] != rule {
				t.Errorf("%s: rule %q, want %q (all: %v)", col, got[col], rule, got)
			}
		}
		if len(got) != len(want) {
			t.Errorf("problems %v, want exactly %v", got, want)
		}
	})
}

func TestWarehouseColumnsNeedACategoryComment(t *testing.T) {
	pol := engine(t)
	w := chtest.Embedded(t)
	ctx := context.Background()
	m, problems, err := Build(ctx, Inputs{Warehouse: w, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Fatalf("migrated warehouse has problems: %v", problems)
	}
	var subjects []string
	for _, e := range m.Entries {
		if e.Subject {
			subjects = append(subjects, e.Table+"."+e.Column)
		}
	}
	if strings.Join(subjects, ",") != "conversions.user_id,conversions.visitor_id,events.user_id,events.visitor_id,touches.user_id,touches.visitor_id,visitor_links.user_id,visitor_links.visitor_id" {
		t.Fatalf("subject columns = %v", subjects)
	}
	// An erasure deletes every warehouse row of the subject, and the map
	// says so, even for categories the SQL store keeps (the orders behind
	// conversions.order_id).
	for _, e := range m.Entries {
		if e.Personal && e.Erasure.Action != "delete" {
			t.Errorf("warehouse %s.%s (%s): erasure %q, want delete", e.Table, e.Column, e.Category, e.Erasure.Action)
		}
	}
	// The owner hashes are computed by the engine from the ids; nothing
	// else is.
	var derived []string
	for _, e := range m.Entries {
		if e.Derived {
			derived = append(derived, e.Table+"."+e.Column+" "+e.Category)
		}
	}
	if want := "conversions.owner_hash user.unique_id.analytics_id,touches.owner_hash user.unique_id.analytics_id," +
		"visitor_links.user_hash user.unique_id,visitor_links.visitor_hash user.device.cookie_id"; strings.Join(derived, ",") != want {
		t.Errorf("derived columns = %v, want %s", derived, want)
	}
	// The materialized views that fill touches and conversions store
	// nothing of their own and have no column comments; they are no
	// tables of the map.
	for _, e := range m.Entries {
		if strings.HasSuffix(e.Table, "_from_events") {
			t.Fatalf("the view %s is in the data map: %+v", e.Table, e)
		}
	}

	if err := w.Exec(ctx, "ALTER TABLE events ADD COLUMN leak String"); err != nil {
		t.Fatal(err)
	}
	if err := w.Exec(ctx, "ALTER TABLE events ADD COLUMN odd String COMMENT 'user.nope'"); err != nil {
		t.Fatal(err)
	}
	_, problems, err = Build(ctx, Inputs{Warehouse: w, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, p := range problems {
		msgs = append(msgs, p.String())
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{"warehouse events.leak", "untagged-column", "warehouse events.odd", "unknown-category"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems %q lack %q", joined, want)
		}
	}
}

func TestParseTag(t *testing.T) {
	tests := []struct {
		name, tag string
		cat       string
		subject   bool
		wantErr   bool
	}{
		{"plain", "user.name", "user.name", false, false},
		{"subject", "user.unique_id,subject=user", "user.unique_id", true, false},
		{"spaces", " user.unique_id , subject = user ", "user.unique_id", true, false},
		{"subject without its kind", "user.unique_id,subject", "", false, true},
		{"subject of an unknown kind", "user.unique_id,subject=phone", "", false, true},
		{"holds is no subject", "user.contact.email,holds=email", "user.contact.email", false, false},
		{"empty", "", "", false, true},
		{"unknown option", "user.name,pk", "", false, true},
		{"collected", "user.account.created_at,collected", "user.account.created_at", false, false},
		{"subject and collected", "user.unique_id,collected,subject=user", "user.unique_id", true, false},
		{"two identifiers", "user.contact.email,subject=email,holds=email", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat, subject, err := ParseTag(tt.tag)
			if (err != nil) != tt.wantErr || cat != tt.cat || subject != tt.subject {
				t.Fatalf("ParseTag(%q) = %q, %v, %v", tt.tag, cat, subject, err)
			}
		})
	}
}

func TestParseTagOptions(t *testing.T) {
	tests := []struct {
		name, tag string
		want      Tag
		wantErr   bool
	}{
		{"plain", "user.name", Tag{Category: "user.name"}, false},
		{"collected", "user.account.created_at,collected", Tag{Category: "user.account.created_at", Collected: true}, false},
		{"both", " user.unique_id , subject=user , collected", Tag{Category: "user.unique_id", Subject: true, Identifier: IdentifierUser, Collected: true}, false},
		{"visitor", "user.device.cookie_id,subject=visitor", Tag{Category: "user.device.cookie_id", Subject: true, Identifier: IdentifierVisitor}, false},
		{"holds", "user.support.contact,holds=email", Tag{Category: "user.support.contact", Identifier: IdentifierEmail}, false},
		{"collected takes no value", "user.account.created_at,collected=yes", Tag{}, true},
		{"unknown option", "user.name,time", Tag{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTagOptions(tt.tag)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseTagOptions(%q) = %+v, %v", tt.tag, got, err)
			}
		})
	}
}

func TestRenderFormats(t *testing.T) {
	pol := engine(t)
	db := sqltest.SQLite(t)
	w := chtest.Embedded(t)
	m, problems, err := Build(context.Background(), Inputs{SQL: db, Warehouse: w, Sources: platform(), Policy: pol})
	if problems = only(problems, "decision_log", "settings", "events"); err != nil || len(problems) > 0 {
		t.Fatalf("Build: %v %v", err, problems)
	}
	raw, err := policies.ProcessingFacts()
	if err != nil {
		t.Fatal(err)
	}
	proc, err := ParseProcessing(raw)
	if err != nil {
		t.Fatal(err)
	}
	render := func(format string) string {
		var b bytes.Buffer
		if err := Render(&b, m, format, proc); err != nil {
			t.Fatalf("render %s: %v", format, err)
		}
		return b.String()
	}

	t.Run("json lists every column with its rules", func(t *testing.T) {
		var back Map
		if err := json.Unmarshal([]byte(render(FormatJSON)), &back); err != nil {
			t.Fatal(err)
		}
		if len(back.Entries) != len(m.Entries) {
			t.Fatalf("json has %d entries, map %d", len(back.Entries), len(m.Entries))
		}
		for _, e := range back.Entries {
			if e.Category == "" || len(e.Purposes) == 0 || e.LegalBasis.Basis == "" || e.Retention.Duration == "" || e.Erasure.Action == "" {
				t.Errorf("entry %s.%s.%s lacks a rule: %+v", e.Store, e.Table, e.Column, e)
			}
		}
	})

	t.Run("markdown has the Art. 30(1) sections", func(t *testing.T) {
		out := render(FormatMarkdown)
		for _, want := range []string{"(a) Controller", "(b) Purposes", "(c) Categories of data subjects", "(d) Recipients",
			"(e) Transfers to third countries", "(f) Time limits for erasure", "(g) Technical and organisational security measures",
			"| warehouse | events | visitor_id | `user.unique_id.analytics_id` | yes |", pol.Revision()} {
			if !strings.Contains(out, want) {
				t.Errorf("markdown lacks %q", want)
			}
		}
	})

	t.Run("fides is a dataset whose categories all resolve", func(t *testing.T) {
		var doc fidesDoc
		if err := yaml.Unmarshal([]byte(render(FormatFides)), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Dataset) != 2 {
			t.Fatalf("datasets = %d, want sql and warehouse", len(doc.Dataset))
		}
		declared := map[string]bool{}
		for _, c := range doc.DataCategory {
			declared[c.FidesKey] = true
		}
		fides := fidesKeys(t)
		resolves := func(k string) bool { return declared[k] || fides[k] }
		for _, c := range doc.DataCategory {
			if c.ParentKey != "" && !resolves(c.ParentKey) {
				t.Errorf("category %s has unresolvable parent %s", c.FidesKey, c.ParentKey)
			}
		}
		for _, ds := range doc.Dataset {
			for _, col := range ds.Collections {
				for _, f := range col.Fields {
					for _, k := range f.DataCategories {
						if !resolves(k) {
							t.Errorf("%s.%s.%s: category %s is neither fideslang nor declared", ds.FidesKey, col.Name, f.Name, k)
						}
					}
				}
			}
		}
	})

	t.Run("html is the same record as a page, its text escaped", func(t *testing.T) {
		out := render(FormatHTML)
		for _, want := range []string{"<!doctype html>", "<h2", "(f) Time limits for erasure", "<table>",
			"<td>warehouse</td>", "<code>user.unique_id.analytics_id</code>", pol.Revision()} {
			if !strings.Contains(out, want) {
				t.Errorf("html lacks %q", want)
			}
		}
		if strings.Contains(out, "<script") || strings.Contains(out, "http://") || strings.Contains(out, "https://") && strings.Contains(out, "src=") {
			t.Error("the html page loads or runs something")
		}
		// A category text with markup stays text.
		evil := *m
		evil.Entries = append([]Entry(nil), m.Entries...)
		evil.Categories = map[string]policies.Category{}
		for k, c := range m.Categories {
			c.Name, c.Description = `<img src=x onerror=alert(1)>`, `<img src=x onerror=alert(1)>`
			evil.Categories[k] = c
		}
		var b bytes.Buffer
		if err := Render(&b, &evil, FormatHTML, proc); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "<img") {
			t.Error("a category's text reached the page as markup")
		}
	})

	t.Run("csv has a row per column, read back as written", func(t *testing.T) {
		rows, err := csv.NewReader(strings.NewReader(render(FormatCSV))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(m.Entries)+1 || !slices.Equal(rows[0], CSVHeader) {
			t.Fatalf("csv: %d rows, header %v; want %d and %v", len(rows), rows[0], len(m.Entries)+1, CSVHeader)
		}
		for i, e := range m.Entries {
			r := rows[i+1]
			if r[0] != e.Store || r[1] != e.Table || r[2] != e.Column || r[4] != e.Category || r[12] != e.Erasure.Action {
				t.Errorf("row %d: %v, want %s.%s.%s %s", i+1, r, e.Store, e.Table, e.Column, e.Category)
			}
		}
	})

	t.Run("unknown format", func(t *testing.T) {
		if err := Render(&bytes.Buffer{}, m, "xml", proc); err == nil {
			t.Fatal("xml accepted")
		}
	})
}

// fidesKeys reads the fideslang category keys shipped in policies/data.
func fidesKeys(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("../../policies/data/fideslang.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		DataCategories map[string]json.RawMessage `json:"data_categories"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.DataCategories) == 0 {
		t.Fatal("no fideslang categories read")
	}
	keys := map[string]bool{}
	for k := range ref.DataCategories {
		keys[k] = true
	}
	return keys
}
