package datamap

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/stewardhq/steward/policies"
)

// Formats the map renders to.
const (
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
	FormatCSV      = "csv"
	FormatFides    = "fides"
)

// Formats lists every supported format.
func Formats() []string {
	return []string{FormatJSON, FormatMarkdown, FormatHTML, FormatCSV, FormatFides}
}

// Render writes the map in the given format. Markdown is the record of
// processing activities; it needs the processing facts (controller,
// recipients, security measures). HTML is the same record as one page
// with nothing remote and no script, to archive or mail; CSV is one row
// per column with its category and the policy's rules, for a
// spreadsheet.
func Render(w io.Writer, m *Map, format string, proc Processing) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(m); err != nil {
			return fmt.Errorf("render json: %w", err)
		}
		return nil
	case FormatMarkdown:
		return renderMarkdown(w, m, proc)
	case FormatHTML:
		return renderHTML(w, m, proc)
	case FormatCSV:
		return renderCSV(w, m.Entries)
	case FormatFides:
		return renderFides(w, m)
	default:
		return fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Formats(), ", "))
	}
}

// columnsByCategory groups the map's columns under their categories.
func (m *Map) columnsByCategory() map[string][]Field {
	out := map[string][]Field{}
	for _, e := range m.Entries {
		out[e.Category] = append(out[e.Category], e.Field)
	}
	return out
}

// decisionsByCategory gives the policy's decisions for each category the
// map's columns carry.
// decisionsByCategory returns each category's decisions in the store
// that holds its records: the SQL store's where it has the category, the
// warehouse's otherwise.
func (m *Map) decisionsByCategory() map[string]decisions {
	out := map[string]decisions{}
	for _, e := range m.Entries {
		if _, ok := out[e.Category]; !ok || e.Store == StoreSQL {
			out[e.Category] = decisions{retention: e.Retention, erasure: e.Erasure, export: e.Export}
		}
	}
	return out
}

// warehouseErasure returns, per category, the warehouse's erasure action
// where it differs from the one decisionsByCategory reports.
func (m *Map) warehouseErasure(rules map[string]decisions) map[string]string {
	out := map[string]string{}
	for _, e := range m.Entries {
		if e.Store == StoreWarehouse && e.Erasure.Action != rules[e.Category].erasure.Action {
			out[e.Category] = e.Erasure.Action
		}
	}
	return out
}

func (m *Map) categoryKeys(personal bool) []string {
	var keys []string
	for k, c := range m.Categories {
		if c.Personal == personal {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// md escapes a value for a Markdown table cell.
func md(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// RetentionText says a retention rule in the record's words ("P13M from
// collected at, then delete").
func RetentionText(r policies.RetentionRule) string {
	switch r.Duration {
	case policies.DurationRowLifetime:
		return "with its row"
	case policies.DurationAccountLifetime:
		return fmt.Sprintf("while the account exists, then %s", r.Action)
	}
	return fmt.Sprintf("%s from %s, then %s", r.Duration, strings.ReplaceAll(r.From, "_", " "), r.Action)
}

func erasureText(e policies.ErasureDecision) string {
	s := e.Action
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Until != "" {
		s += " (until " + e.Until + ")"
	}
	return s
}

func basisText(b policies.LegalBasis) string {
	if b.Article == "" {
		return b.Name
	}
	return b.Name + ", " + b.Article
}

func renderMarkdown(w io.Writer, m *Map, proc Processing) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cols := m.columnsByCategory()
	rules := m.decisionsByCategory()
	copies := m.warehouseErasure(rules)
	personal := m.categoryKeys(true)

	p("# Record of processing activities\n\n")
	p("Kept under GDPR Art. 30(1). Generated from Steward's data map: every stored column of every store, ")
	p("with the data category it is tagged with. Policy revision `%s`.\n\n", m.Revision)
	stores := make([]string, 0, len(m.Stores))
	for k, v := range m.Stores {
		stores = append(stores, fmt.Sprintf("%s: %s", k, v))
	}
	sort.Strings(stores)
	p("Stores: %s.\n\n", strings.Join(stores, "; "))

	p("## (a) Controller\n\n")
	p("- Controller: %s — %s\n", proc.Controller.Name, proc.Controller.Contact)
	if proc.DPO.Contact != "" {
		p("- Data protection officer: %s — %s\n", proc.DPO.Name, proc.DPO.Contact)
	}
	p("\n## (b) Purposes of the processing\n\n")
	p("| purpose (data use) | categories | legal bases |\n|---|---|---|\n")
	byPurpose := map[string][]string{}
	bases := map[string]map[string]bool{}
	for _, k := range personal {
		c := m.Categories[k]
		for _, u := range c.Purposes {
			byPurpose[u] = append(byPurpose[u], k)
			if bases[u] == nil {
				bases[u] = map[string]bool{}
			}
			bases[u][basisText(c.LegalBasis)] = true
		}
	}
	purposes := make([]string, 0, len(byPurpose))
	for u := range byPurpose {
		purposes = append(purposes, u)
	}
	sort.Strings(purposes)
	for _, u := range purposes {
		var bs []string
		for s := range bases[u] {
			bs = append(bs, s)
		}
		sort.Strings(bs)
		p("| `%s` | %s | %s |\n", u, md(strings.Join(byPurpose[u], ", ")), md(strings.Join(bs, "; ")))
	}

	p("\n## (c) Categories of data subjects and of personal data\n\n")
	for _, s := range proc.DataSubjects {
		p("- Data subjects: %s\n", s)
	}
	p("\n| category | name | policy section | legal basis | export | columns |\n|---|---|---|---|---|---|\n")
	for _, k := range personal {
		c := m.Categories[k]
		var where []string
		for _, f := range cols[k] {
			where = append(where, fmt.Sprintf("%s.%s.%s", f.Store, f.Table, f.Column))
		}
		export := "yes"
		if ex := rules[k].export; !ex.Include {
			export = "withheld: " + ex.Reason
		}
		p("| `%s` | %s | %d. %s | %s | %s | %s |\n", k, md(c.Name), c.Section.Number, md(c.Section.Title),
			md(basisText(c.LegalBasis)), md(export), md(strings.Join(where, ", ")))
	}

	p("\n## (d) Recipients\n\n")
	p("| recipient | role | purpose | categories | country |\n|---|---|---|---|---|\n")
	for _, r := range proc.Recipients {
		p("| %s | %s | %s | %s | %s |\n", md(r.Name), md(r.Role), md(r.Purpose), md(strings.Join(r.Categories, ", ")), md(r.Country))
	}

	p("\n## (e) Transfers to third countries\n\n")
	transfers := 0
	for _, r := range proc.Recipients {
		if r.Transfer != "" {
			p("- %s (%s): %s\n", r.Name, r.Country, r.Transfer)
			transfers++
		}
	}
	if transfers == 0 {
		p("None.\n")
	}

	p("\n## (f) Time limits for erasure\n\n")
	p("| category | retention | on an erasure request |\n|---|---|---|\n")
	for _, k := range personal {
		text := erasureText(rules[k].erasure)
		if a, ok := copies[k]; ok {
			text += " The warehouse's analytics copies: " + a + "."
		}
		p("| `%s` | %s | %s |\n", k, md(RetentionText(rules[k].retention)), md(text))
	}

	p("\n## (g) Technical and organisational security measures\n\n")
	for _, s := range proc.SecurityMeasures {
		p("- %s\n", s)
	}

	p("\n## Every stored column\n\n")
	p("| store | table | column | category | subject | retention | erasure |\n|---|---|---|---|---|---|---|\n")
	for _, e := range m.Entries {
		subject := ""
		if e.Subject {
			subject = "yes"
		}
		column := e.Column
		if e.Derived {
			column += " (computed by the store)"
		}
		p("| %s | %s | %s | `%s` | %s | %s | %s |\n", e.Store, e.Table, column, e.Category, subject,
			md(RetentionText(e.Retention)), md(e.Erasure.Action))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("render markdown: %w", err)
	}
	return nil
}

// Fides resources, shaped as fideslang's dataset and data_category YAML.
type fidesDoc struct {
	Dataset      []fidesDataset  `yaml:"dataset"`
	DataCategory []fidesCategory `yaml:"data_category,omitempty"`
}

type fidesDataset struct {
	FidesKey    string            `yaml:"fides_key"`
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Collections []fidesCollection `yaml:"collections"`
}

type fidesCollection struct {
	Name   string       `yaml:"name"`
	Fields []fidesField `yaml:"fields"`
}

type fidesField struct {
	Name           string     `yaml:"name"`
	Description    string     `yaml:"description,omitempty"`
	DataCategories []string   `yaml:"data_categories"`
	FidesMeta      *fidesMeta `yaml:"fides_meta,omitempty"`
}

type fidesMeta struct {
	Identity string `yaml:"identity,omitempty"`
	DataType string `yaml:"data_type,omitempty"`
}

type fidesCategory struct {
	FidesKey    string `yaml:"fides_key"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	ParentKey   string `yaml:"parent_key,omitempty"`
}

// fidesIdentity names each identifier kind as a Fides dataset's
// fides_meta.identity.
var fidesIdentity = map[string]string{
	IdentifierUser:    "user_id",
	IdentifierVisitor: "visitor_id",
	IdentifierEmail:   "email",
}

// renderFides writes a fideslang dataset per store, plus the categories
// that extend the fideslang taxonomy, so Fides can import both.
func renderFides(w io.Writer, m *Map) error {
	var doc fidesDoc
	for _, store := range []string{StoreSQL, StoreWarehouse} {
		backend, ok := m.Stores[store]
		if !ok {
			continue
		}
		ds := fidesDataset{
			FidesKey:    "steward_" + store,
			Name:        fmt.Sprintf("Steward %s store (%s)", store, backend),
			Description: "Every column Steward stores, tagged with its data category.",
		}
		idx := map[string]int{}
		for _, e := range m.Entries {
			if e.Store != store {
				continue
			}
			i, ok := idx[e.Table]
			if !ok {
				i = len(ds.Collections)
				idx[e.Table] = i
				ds.Collections = append(ds.Collections, fidesCollection{Name: e.Table})
			}
			f := fidesField{Name: e.Column, Description: e.CategoryName, DataCategories: []string{e.Category}}
			if e.Subject {
				f.FidesMeta = &fidesMeta{Identity: fidesIdentity[e.Identifier]}
			}
			ds.Collections[i].Fields = append(ds.Collections[i].Fields, f)
		}
		doc.Dataset = append(doc.Dataset, ds)
	}
	// Categories that extend fideslang are declared, with every extended
	// ancestor, so each parent_key resolves in Fides.
	ext := map[string]policies.Category{}
	for k := range m.Categories {
		for key := k; key != ""; {
			c, ok := m.taxonomy[key]
			if !ok || c.Fideslang == key {
				break
			}
			c.Key = key
			ext[key] = c
			key = c.Parent
		}
	}
	keys := make([]string, 0, len(ext))
	for k := range ext {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c := ext[k]
		doc.DataCategory = append(doc.DataCategory, fidesCategory{FidesKey: k, Name: c.Name, Description: c.Description, ParentKey: c.Parent})
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("render fides: %w", err)
	}
	return enc.Close()
}
