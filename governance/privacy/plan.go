package privacy

import (
	"sort"
	"strings"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
)

// Policy is the part of the policy engine this package asks: the revision
// a request is filed under. Export and erasure read the policy's
// decisions from the data map. *policies.Engine is one.
type Policy interface {
	Revision() string
}

// Erasure actions the policy gives a category.
const (
	actionDelete    = "delete"
	actionAnonymize = "anonymize"
	actionKeep      = "keep"
)

// Row modes: what an erasure does to a subject's row of a table.
const (
	// modeDelete removes the row: no column must outlive the erasure.
	modeDelete = "delete"
	// modeKeep leaves the row as it is: every personal column is kept for
	// a legal reason (an audit log entry, the request record itself).
	modeKeep = "keep"
	// modePartial keeps the row for its kept columns, blanks the deleted
	// and anonymized ones and replaces the subject's identifiers with a
	// pseudonym.
	modePartial = "partial"
)

// column is one column of a table plan: its entry of the data map, which
// carries the policy's export and erasure decisions for its category.
type column = datamap.Entry

// tablePlan is what access and erasure do to one table.
type tablePlan struct {
	store, table, module string
	columns              []column
	subjects             []column
	mode                 string
	// collected is the column holding the time a row was collected; the
	// identity rule places a browser's anonymous rows by it.
	collected string
	// rowKey holds the columns that tell the table's rows apart, read from
	// the store when the table is exported (see rowKeyColumns).
	rowKey map[string]bool
}

// plan groups the data map by table; each column comes with the policy's
// export and erasure decisions the map holds. Tables with no subject
// column hold nobody's data in particular and are left out.
func plan(m *datamap.Map) []tablePlan {
	byTable := map[string]*tablePlan{}
	var order []string
	for _, e := range m.Entries {
		key := e.Store + "\x00" + e.Table
		tp, ok := byTable[key]
		if !ok {
			tp = &tablePlan{store: e.Store, table: e.Table, module: e.Module}
			byTable[key] = tp
			order = append(order, key)
		}
		if e.Collected {
			tp.collected = e.Column
		}
		if e.Subject {
			tp.subjects = append(tp.subjects, e)
		}
		tp.columns = append(tp.columns, e)
	}
	var out []tablePlan
	for _, key := range order {
		tp := byTable[key]
		if len(tp.subjects) == 0 {
			continue
		}
		tp.mode = rowMode(tp.columns)
		out = append(out, *tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].store != out[j].store {
			return out[i].store < out[j].store
		}
		return out[i].table < out[j].table
	})
	return out
}

// rowMode decides a table's erasure from its columns: a row goes unless a
// personal column other than the subject's identifiers must stay (kept) or
// stay in a reduced form (anonymized); it stays whole when every personal
// column is kept.
func rowMode(cols []column) string {
	allKept, blocked := true, false
	for _, c := range cols {
		if !c.Personal {
			continue
		}
		if c.Erasure.Action != actionKeep {
			allKept = false
		}
		if c.Subject {
			continue
		}
		if c.Erasure.Action == actionKeep || c.Erasure.Action == actionAnonymize {
			blocked = true
		}
	}
	switch {
	case allKept:
		return modeKeep
	case blocked:
		return modePartial
	default:
		return modeDelete
	}
}

// exportColumns returns the columns an access export includes: those the
// export policy includes, and the row's key where it is no personal data,
// which the policy may withhold as technical (see keyedExport).
func (tp *tablePlan) exportColumns() []column {
	var out []column
	for _, c := range tp.columns {
		if c.Export.Include || tp.keyedExport(c) {
			out = append(out, c)
		}
	}
	return out
}

// keyedExport reports a column exported only because it is part of the
// row's key. A key column tells one row from another: with the event ids
// of the events table, a person can see that two rows are one event sent
// twice rather than two events. It is exported only when it is no
// personal data, so a policy withholding a personal category is never
// overridden.
func (tp *tablePlan) keyedExport(c column) bool {
	return !c.Export.Include && tp.rowKey[c.Column] && !c.Personal
}

// placeholder gives the i-th parameter's placeholder in a store's syntax;
// isTime says the parameter is a time.
type placeholder func(i int, isTime bool) string

// sqlPlaceholder is bun's placeholder, whatever the parameter's type.
func sqlPlaceholder(int, bool) string { return "?" }

// subjectRows names the rows of a SQL table found under the subject's
// identifiers in cols, some of its subject columns, and returns false when
// the subject has no identifier those columns use.
func subjectRows(tp *tablePlan, cols []column, s module.SubjectRef) (sqlstore.Rows, bool) {
	where, args, ok := subjectWhereOf(tp, cols, s, sqlPlaceholder)
	return sqlstore.Rows{Table: tp.table, Where: where, Args: args}, ok
}

// subjectWhereOf returns the condition matching the subject's rows of a
// table in some of its subject columns, with its arguments, and false when
// the subject has no identifier those columns use. The SQL store and the
// warehouse share it, each with its placeholders.
//
// It applies the identity rule (docs/policies.md): a row naming an account
// belongs to that account, whatever else it names; a row naming only a
// browser's visitor id belongs to the subject when it was collected within
// one of the subject's stretches of that browser (SubjectRef.Browsing).
// An empty visitor id links nothing.
func subjectWhereOf(tp *tablePlan, cols []column, s module.SubjectRef, ph placeholder) (string, []any, bool) {
	var parts []string
	var args []any
	next := func(v any, isTime bool) string {
		p := ph(len(args), isTime)
		args = append(args, v)
		return p
	}
	in := func(col string, v string) {
		parts = append(parts, sqlstore.Quote(col)+" = "+next(v, false))
	}
	for _, c := range cols {
		switch c.Identifier {
		case datamap.IdentifierUser:
			if s.UserID != "" {
				in(c.Column, s.UserID)
			}
		case datamap.IdentifierEmail:
			if s.Email != "" {
				in(c.Column, s.Email)
			}
		case datamap.IdentifierVisitor:
			if len(s.Browsing) == 0 || tp.collected == "" {
				continue
			}
			var anon []string
			for _, u := range tp.subjects {
				if u.Identifier == datamap.IdentifierUser {
					anon = append(anon, "("+sqlstore.Quote(u.Column)+" IS NULL OR "+sqlstore.Quote(u.Column)+" = '')")
				}
			}
			var stretches []string
			for _, b := range s.Browsing {
				if b.VisitorID == "" {
					continue
				}
				collected := sqlstore.Quote(tp.collected)
				cond := sqlstore.Quote(c.Column) + " = " + next(b.VisitorID, false)
				if !b.After.IsZero() {
					cond += " AND " + collected + " > " + next(b.After, true)
				}
				cond += " AND " + collected + " <= " + next(b.Until, true)
				stretches = append(stretches, "("+cond+")")
			}
			if len(stretches) == 0 {
				continue
			}
			anon = append(anon, "("+strings.Join(stretches, " OR ")+")")
			parts = append(parts, "("+strings.Join(anon, " AND ")+")")
		}
	}
	if len(parts) == 0 {
		return "", nil, false
	}
	return "(" + strings.Join(parts, " OR ") + ")", args, true
}
