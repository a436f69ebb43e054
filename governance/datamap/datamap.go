// Package datamap builds Steward's data map: every column of every store,
// with the data category it is tagged with and what the taxonomy says of
// that category (purposes, legal basis, retention, erasure, export).
//
// The map is built from two sides that must agree: the bun models each
// module declares (struct tag
// `privacy:"<category>[,subject=<kind>|,holds=<kind>][,collected]"`) and
// the live, migrated schemas (SQL columns, and ClickHouse columns whose
// COMMENT carries the same text). A column that only one side knows, a column
// without a category and a category the taxonomy lacks are problems that
// name the store, table and column; tests fail on any of them, so new
// personal data cannot be stored without being governed.
package datamap

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/policies"
)

// Stores a field can live in.
const (
	StoreSQL       = policies.StoreSQL
	StoreWarehouse = policies.StoreWarehouse
)

// TagKey is the struct tag that carries a field's data category.
const TagKey = "privacy"

// subjectOption marks the column that identifies the data subject of a
// row, with the kind of identifier it holds: "subject=user".
const subjectOption = "subject"

// holdsOption marks a column that holds one of the subject's identifiers
// without being the row's subject column, such as the account's own email
// address or a ticket's contact address: "holds=email". Requests by that
// identifier find the rows, and erasure checks it is gone.
const holdsOption = "holds"

// Identifier kinds: which of a subject's identifiers a column holds.
const (
	// IdentifierUser is an account id.
	IdentifierUser = "user"
	// IdentifierVisitor is a browser's visitor id (the tracker's cookie).
	IdentifierVisitor = "visitor"
	// IdentifierEmail is an email address.
	IdentifierEmail = "email"
)

var identifierKinds = []string{IdentifierUser, IdentifierVisitor, IdentifierEmail}

// collectedOption marks the column holding the time a row's retention
// period counts from (its creation, last activity or payment): one per
// table, read by the retention runner.
const collectedOption = "collected"

// Source is the set of tagged models one module (or the platform) stores.
type Source struct {
	Module string
	Models []any
}

// Field is one stored column and its tag.
type Field struct {
	Store  string `json:"store"`
	Table  string `json:"table"`
	Column string `json:"column"`
	Type   string `json:"type"`
	// Category is the data category key the column is tagged with.
	Category string `json:"category"`
	// Subject marks the column that identifies the row's data subject.
	Subject bool `json:"subject,omitempty"`
	// Identifier is the kind of the subject's identifier the column holds
	// (IdentifierUser, IdentifierVisitor, IdentifierEmail): set on every
	// subject column and on the columns tagged "holds".
	Identifier string `json:"identifier,omitempty"`
	// Collected marks the column holding the time the row's retention
	// period counts from.
	Collected bool `json:"collected,omitempty"`
	// Module owns the table; "warehouse" columns belong to analytics.
	Module string `json:"module"`
	// Derived marks a column the store computes from other columns of
	// its row (a MATERIALIZED column of the warehouse). No one writes it:
	// it is computed again whenever they change and goes with its row, so
	// retention never clears it on its own.
	Derived bool `json:"derived,omitempty"`
}

// Entry is a field with what the taxonomy says of its category and what
// the policy decides for it.
type Entry struct {
	Field
	CategoryName string              `json:"category_name"`
	Section      policies.Section    `json:"policy_section"`
	Purposes     []string            `json:"purposes"`
	LegalBasis   policies.LegalBasis `json:"legal_basis"`
	Personal     bool                `json:"personal"`
	// Retention, Erasure and Export are the policy's decisions for the
	// category, asked once when the map is built. Retention, access
	// export and erasure read them here; none asks the policy again.
	Retention policies.RetentionRule   `json:"retention"`
	Erasure   policies.ErasureDecision `json:"erasure"`
	Export    policies.ExportDecision  `json:"export"`
}

// Problem is a coverage failure: a column the map cannot govern.
type Problem struct {
	Store  string `json:"store"`
	Table  string `json:"table"`
	Column string `json:"column,omitempty"`
	// Rule is a stable name for what is wrong, such as "untagged-column".
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	where := p.Store + " " + p.Table
	if p.Column != "" {
		where += "." + p.Column
	}
	return fmt.Sprintf("%s: %s (%s)", where, p.Message, p.Rule)
}

// Map is the data map of one running Steward.
type Map struct {
	// Revision is the policy revision whose taxonomy described the fields.
	Revision string `json:"policy_revision"`
	// Stores names the backend of each store, e.g. sql=sqlite.
	Stores  map[string]string `json:"stores"`
	Entries []Entry           `json:"entries"`
	// Categories holds every taxonomy category that some column uses.
	Categories map[string]policies.Category `json:"categories"`

	taxonomy map[string]policies.Category
}

// Policy is what the map asks of the policy engine: the taxonomy that
// describes each category and the decisions on it. *policies.Engine is
// one.
type Policy interface {
	Revision() string
	Taxonomy() map[string]policies.Category
	Retention(ctx context.Context, category string) (policies.RetentionRule, error)
	Export(ctx context.Context, category string) (policies.ExportDecision, error)
	Erasure(ctx context.Context, category, store string) (policies.ErasureDecision, error)
}

// Inputs is what Build reads.
type Inputs struct {
	SQL       *bun.DB
	Warehouse warehouse.Warehouse
	Sources   []Source
	Policy    Policy
}

// Build reads the live schemas, matches them with the tagged models and the
// taxonomy, and returns the map with every coverage problem found. An
// error means a store could not be read; problems are not errors.
func Build(ctx context.Context, in Inputs) (*Map, []Problem, error) {
	if in.Policy == nil {
		return nil, nil, errors.New("data map: a policy is required")
	}
	tax := in.Policy.Taxonomy()
	m := &Map{
		Revision:   in.Policy.Revision(),
		Stores:     map[string]string{},
		Categories: map[string]policies.Category{},
		taxonomy:   tax,
	}
	var problems []Problem
	var fields []Field
	if in.SQL != nil {
		m.Stores[StoreSQL] = sqlstore.Dialect(in.SQL)
		f, p, err := sqlFields(ctx, in.SQL, in.Sources)
		if err != nil {
			return nil, nil, err
		}
		fields, problems = append(fields, f...), append(problems, p...)
	}
	if in.Warehouse != nil {
		m.Stores[StoreWarehouse] = in.Warehouse.Backend()
		f, p, err := warehouseFields(ctx, in.Warehouse)
		if err != nil {
			return nil, nil, err
		}
		fields, problems = append(fields, f...), append(problems, p...)
	}
	decided := map[string]decisions{}
	for _, f := range fields {
		c, p := lookup(tax, f)
		if p != nil {
			problems = append(problems, *p)
			continue
		}
		// The erasure of a category may differ by store; its retention
		// and export do not.
		key := f.Store + "\x00" + c.Key
		d, ok := decided[key]
		if !ok {
			var err error
			if d, err = decide(ctx, in.Policy, c.Key, f.Store); err != nil {
				return nil, nil, err
			}
			decided[key] = d
		}
		m.Categories[c.Key] = c
		m.Entries = append(m.Entries, Entry{
			Field:        f,
			CategoryName: c.Name,
			Section:      c.Section,
			Purposes:     c.Purposes,
			LegalBasis:   c.LegalBasis,
			Personal:     c.Personal,
			Retention:    d.retention,
			Erasure:      d.erasure,
			Export:       d.export,
		})
	}
	sort.Slice(m.Entries, func(i, j int) bool { return lessField(m.Entries[i].Field, m.Entries[j].Field) })
	sort.Slice(problems, func(i, j int) bool {
		a, b := problems[i], problems[j]
		if a.Store != b.Store {
			return a.Store < b.Store
		}
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Rule < b.Rule
	})
	return m, problems, nil
}

func lessField(a, b Field) bool {
	if a.Store != b.Store {
		return a.Store < b.Store
	}
	if a.Table != b.Table {
		return a.Table < b.Table
	}
	return a.Column < b.Column
}

// decisions are the policy's answers for one category.
type decisions struct {
	retention policies.RetentionRule
	erasure   policies.ErasureDecision
	export    policies.ExportDecision
}

// decide asks the policy what it decides for a category in a store.
func decide(ctx context.Context, pol Policy, category, store string) (decisions, error) {
	var d decisions
	var err error
	if d.retention, err = pol.Retention(ctx, category); err != nil {
		return d, fmt.Errorf("data map: retention of %s: %w", category, err)
	}
	if d.erasure, err = pol.Erasure(ctx, category, store); err != nil {
		return d, fmt.Errorf("data map: erasure of %s: %w", category, err)
	}
	if d.export, err = pol.Export(ctx, category); err != nil {
		return d, fmt.Errorf("data map: export of %s: %w", category, err)
	}
	return d, nil
}

// lookup finds the field's category and checks it can govern a column.
func lookup(tax map[string]policies.Category, f Field) (policies.Category, *Problem) {
	problem := func(rule, format string, args ...any) *Problem {
		return &Problem{Store: f.Store, Table: f.Table, Column: f.Column, Rule: rule, Message: fmt.Sprintf(format, args...)}
	}
	c, ok := tax[f.Category]
	if !ok {
		return c, problem("unknown-category", "category %q is not in the taxonomy (policies/data/taxonomy.json)", f.Category)
	}
	c.Key = f.Category
	switch {
	case c.Group:
		return c, problem("group-category", "category %q only groups other categories; tag the column with one of its children", f.Category)
	case len(c.Purposes) == 0:
		return c, problem("incomplete-category", "category %q has no purpose", f.Category)
	case c.LegalBasis.Basis == "":
		return c, problem("incomplete-category", "category %q has no legal basis", f.Category)
	case c.Retention.Duration == "":
		return c, problem("incomplete-category", "category %q has no retention rule", f.Category)
	case c.Erasure.Action == "":
		return c, problem("incomplete-category", "category %q has no erasure action", f.Category)
	}
	return c, nil
}

// ParseTag splits a privacy tag or column comment,
// "<category>[,subject=<kind>|,holds=<kind>][,collected]".
func ParseTag(tag string) (category string, subject bool, err error) {
	t, err := ParseTagOptions(tag)
	return t.Category, t.Subject, err
}

// Tag is a parsed privacy tag or column comment.
type Tag struct {
	Category string
	// Subject marks the column identifying the row's data subject.
	Subject bool
	// Identifier is the kind of identifier a subject column, or a column
	// tagged "holds", holds.
	Identifier string
	// Collected marks the column holding the time the row's retention
	// period counts from.
	Collected bool
}

// ParseTagOptions parses a privacy tag or column comment with all its
// options, "<category>[,subject=<kind>|,holds=<kind>][,collected]", the
// kind being user, visitor or email.
func ParseTagOptions(tag string) (Tag, error) {
	parts := strings.Split(strings.TrimSpace(tag), ",")
	t := Tag{Category: strings.TrimSpace(parts[0])}
	if t.Category == "" {
		return Tag{}, fmt.Errorf("empty category in %q", tag)
	}
	for _, opt := range parts[1:] {
		name, value, hasValue := strings.Cut(strings.TrimSpace(opt), "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case name == collectedOption && !hasValue:
			t.Collected = true
		case name == subjectOption || name == holdsOption:
			if !slices.Contains(identifierKinds, value) {
				return Tag{}, fmt.Errorf("option %q in %q names no identifier kind (want %s=%s)",
					opt, tag, name, strings.Join(identifierKinds, "|"))
			}
			if t.Identifier != "" {
				return Tag{}, fmt.Errorf("%q names an identifier twice", tag)
			}
			t.Subject, t.Identifier = name == subjectOption, value
		default:
			return Tag{}, fmt.Errorf("unknown option %q in %q (want %s=<kind>, %s=<kind> or %s)",
				opt, tag, subjectOption, holdsOption, collectedOption)
		}
	}
	return t, nil
}

type tableColumn struct{ table, column string }

// sqlFields matches the live SQL schema with the tagged models.
func sqlFields(ctx context.Context, db *bun.DB, sources []Source) ([]Field, []Problem, error) {
	live, err := sqlstore.Columns(ctx, db)
	if err != nil {
		return nil, nil, fmt.Errorf("read sql schema: %w", err)
	}
	type tagged struct {
		category, module, goName, identifier string
		subject, collected                   bool
	}
	var problems []Problem
	tags := map[tableColumn]tagged{}
	// broken holds columns whose field has a tag problem already reported,
	// so the live column is not reported a second time as untagged.
	broken := map[tableColumn]bool{}
	owner := map[string]string{}
	for _, src := range sources {
		for _, model := range src.Models {
			typ := reflect.TypeOf(model)
			for typ.Kind() == reflect.Pointer {
				typ = typ.Elem()
			}
			table := db.Table(typ)
			if prev, ok := owner[table.Name]; ok && prev != src.Module {
				problems = append(problems, Problem{Store: StoreSQL, Table: table.Name, Rule: "shared-table",
					Message: fmt.Sprintf("declared by modules %s and %s; a table has one owner", prev, src.Module)})
			}
			owner[table.Name] = src.Module
			for _, f := range table.Fields {
				goName := typ.Name() + "." + f.GoName
				raw, ok := f.StructField.Tag.Lookup(TagKey)
				if !ok {
					problems = append(problems, Problem{Store: StoreSQL, Table: table.Name, Column: f.Name, Rule: "untagged-field",
						Message: fmt.Sprintf("field %s has no %s tag", goName, TagKey)})
					broken[tableColumn{table.Name, f.Name}] = true
					continue
				}
				tag, err := ParseTagOptions(raw)
				if err != nil {
					problems = append(problems, Problem{Store: StoreSQL, Table: table.Name, Column: f.Name, Rule: "bad-tag",
						Message: fmt.Sprintf("field %s: %v", goName, err)})
					broken[tableColumn{table.Name, f.Name}] = true
					continue
				}
				tags[tableColumn{table.Name, f.Name}] = tagged{category: tag.Category, module: src.Module, goName: goName,
					subject: tag.Subject, identifier: tag.Identifier, collected: tag.Collected}
			}
		}
	}
	var fields []Field
	seen := map[tableColumn]bool{}
	for _, c := range live {
		key := tableColumn{c.Table, c.Name}
		seen[key] = true
		t, ok := tags[key]
		if !ok && broken[key] {
			continue
		}
		if !ok {
			msg := "no data category: no model field with a privacy tag maps to this column"
			if _, known := owner[c.Table]; !known {
				msg = "no data category: no module declares a model for this table"
			}
			problems = append(problems, Problem{Store: StoreSQL, Table: c.Table, Column: c.Name, Rule: "untagged-column", Message: msg})
			continue
		}
		fields = append(fields, Field{Store: StoreSQL, Table: c.Table, Column: c.Name, Type: c.Type,
			Category: t.category, Subject: t.subject, Identifier: t.identifier, Collected: t.collected, Module: t.module})
	}
	for key, t := range tags {
		if !seen[key] {
			problems = append(problems, Problem{Store: StoreSQL, Table: key.table, Column: key.column, Rule: "missing-column",
				Message: fmt.Sprintf("field %s is tagged but the migrated schema has no such column", t.goName)})
		}
	}
	return fields, problems, nil
}

// warehouseColumn is one row of ClickHouse's system.columns.
type warehouseColumn struct {
	Table   string `ch:"table"`
	Name    string `ch:"name"`
	Type    string `ch:"type"`
	Comment string `ch:"comment"`
	Kind    string `ch:"default_kind"`
}

// warehouseFields reads every column of the warehouse database's tables
// and its category from the column comment. Views are left out: they
// store nothing (a materialized view writes into a table of its own,
// which is read here like any other).
func warehouseFields(ctx context.Context, w warehouse.Warehouse) ([]Field, []Problem, error) {
	var cols []warehouseColumn
	err := w.Select(ctx, &cols,
		// currentDatabase() rather than a bound parameter: servers older
		// than query parameters still answer it.
		`SELECT table, name, type, comment, default_kind FROM system.columns
		 WHERE database = currentDatabase()
		   AND table NOT IN (SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%View')
		 ORDER BY table, name`)
	if err != nil {
		return nil, nil, fmt.Errorf("read warehouse schema: %w", err)
	}
	var fields []Field
	var problems []Problem
	for _, c := range cols {
		if strings.TrimSpace(c.Comment) == "" {
			problems = append(problems, Problem{Store: StoreWarehouse, Table: c.Table, Column: c.Name, Rule: "untagged-column",
				Message: "no data category: the column has no COMMENT naming one"})
			continue
		}
		tag, err := ParseTagOptions(c.Comment)
		if err != nil {
			problems = append(problems, Problem{Store: StoreWarehouse, Table: c.Table, Column: c.Name, Rule: "bad-tag",
				Message: fmt.Sprintf("column comment: %v", err)})
			continue
		}
		fields = append(fields, Field{Store: StoreWarehouse, Table: c.Table, Column: c.Name, Type: c.Type,
			Category: tag.Category, Subject: tag.Subject, Identifier: tag.Identifier, Collected: tag.Collected, Module: "analytics",
			Derived: c.Kind == "MATERIALIZED"})
	}
	return fields, problems, nil
}
