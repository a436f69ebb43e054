package privacy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
)

// Holding is how much Steward holds of one category of personal data
// about a subject right now.
type Holding struct {
	// Category is the data category key; Name names it as the taxonomy
	// does.
	Category string `json:"category"`
	Name     string `json:"name"`
	// Items counts what holds a value of the category: rows of the
	// stores, and the items modules keep outside them (files, records at
	// a provider).
	Items int64 `json:"items"`
	// Sources says where the items are, a table or a module at a time.
	Sources []HoldingSource `json:"sources"`
}

// HoldingSource is one place that holds items of a category.
type HoldingSource struct {
	// Store is sql, warehouse or module; Table is the table, or the
	// module's name.
	Store string `json:"store"`
	Table string `json:"table"`
	Items int64  `json:"items"`
}

// HoldingsView is the body of GET /v1/privacy/holdings.
type HoldingsView struct {
	Holdings []Holding `json:"holdings"`
}

// Holdings counts, for each category of personal data, what Steward holds
// of it about s: in every table with a column of the category, the rows of
// s (by the identity rule an access export follows) where such a column
// holds a value, and the items each module reports for it. Categories of
// which nothing is held are left out. The events acknowledged so far are
// counted: Holdings waits for them to reach the warehouse.
func (m *Module) Holdings(ctx context.Context, s module.SubjectRef) ([]Holding, error) {
	dm, err := m.settledMap(ctx)
	if err != nil {
		return nil, err
	}
	return m.holdingsIn(ctx, dm, s)
}

// settledMap waits for the acknowledged events to reach the warehouse and
// builds the data map counting and previews go by.
func (m *Module) settledMap(ctx context.Context) (*datamap.Map, error) {
	if err := m.settle(ctx); err != nil {
		return nil, err
	}
	dm, _, err := m.deps.DataMap(ctx)
	if err != nil {
		return nil, fmt.Errorf("build data map: %w", err)
	}
	return dm, nil
}

// holdingsIn is Holdings over the data map dm.
func (m *Module) holdingsIn(ctx context.Context, dm *datamap.Map, s module.SubjectRef) ([]Holding, error) {
	info, err := sqlstore.ColumnsByName(ctx, m.deps.DB)
	if err != nil {
		return nil, err
	}
	tally := map[string][]HoldingSource{}
	add := func(category, store, table string, n int64) {
		if n > 0 {
			tally[category] = append(tally[category], HoldingSource{Store: store, Table: table, Items: n})
		}
	}
	for _, tp := range plan(dm) {
		cats, byCat := personalColumns(tp)
		if len(cats) == 0 {
			continue
		}
		var counts []int64
		switch tp.store {
		case datamap.StoreSQL:
			counts, err = m.sqlHoldings(ctx, &tp, s, cats, byCat, info)
		case datamap.StoreWarehouse:
			counts, err = m.warehouseHoldings(ctx, &tp, s, cats, byCat)
		}
		if err != nil {
			return nil, fmt.Errorf("count holdings in %s %s: %w", tp.store, tp.table, err)
		}
		for i, n := range counts {
			add(cats[i], tp.store, tp.table, n)
		}
	}
	for _, h := range m.deps.Hooks {
		cw := &countingWriter{}
		if err := h.Data.ExportSubject(ctx, s, cw); err != nil {
			return nil, fmt.Errorf("count holdings of %s: %w", h.Module, err)
		}
		for category, n := range cw.byCategory {
			add(category, "module", h.Module, int64(n))
		}
	}
	out := make([]Holding, 0, len(tally))
	for category, sources := range tally {
		h := Holding{Category: category, Name: dm.Categories[category].Name, Sources: sources}
		for _, src := range sources {
			h.Items += src.Items
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Holding) int { return strings.Compare(a.Category, b.Category) })
	return out, nil
}

// personalColumns returns the personal categories of a table's columns,
// sorted, with the columns of each.
func personalColumns(tp tablePlan) ([]string, map[string][]column) {
	byCat := map[string][]column{}
	for _, c := range tp.columns {
		if c.Personal {
			byCat[c.Category] = append(byCat[c.Category], c)
		}
	}
	cats := make([]string, 0, len(byCat))
	for c := range byCat {
		cats = append(cats, c)
	}
	slices.Sort(cats)
	return cats, byCat
}

// sqlHoldings counts, for each category, the subject's rows of the table
// where a column of the category is not blank.
func (m *Module) sqlHoldings(ctx context.Context, tp *tablePlan, s module.SubjectRef, cats []string, byCat map[string][]column, info map[string]sqlstore.Column) ([]int64, error) {
	rows, ok := subjectRows(tp, tp.subjects, s)
	if !ok {
		return nil, nil
	}
	out := make([]int64, len(cats))
	for i, category := range cats {
		cols := make([]sqlstore.Column, 0, len(byCat[category]))
		for _, c := range byCat[category] {
			cols = append(cols, info[tp.table+"."+c.Column])
		}
		n, err := rows.AndNotBlank(cols...).Count(ctx, m.deps.DB)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// warehouseHoldings counts the same in ClickHouse, in one query per table:
// a column holds a value when it is neither NULL nor its type's default
// (an empty string, zero, the epoch).
func (m *Module) warehouseHoldings(ctx context.Context, tp *tablePlan, s module.SubjectRef, cats []string, byCat map[string][]column) ([]int64, error) {
	if m.deps.Warehouse == nil {
		return nil, nil
	}
	where, args, ok := warehouseWhere(tp, s)
	if !ok {
		return nil, nil
	}
	counts := make([]string, len(cats))
	for i, category := range cats {
		var held []string
		for _, c := range byCat[category] {
			col := sqlstore.Quote(c.Column)
			held = append(held, "ifNull("+col+" != defaultValueOfArgumentType(assumeNotNull("+col+")), 0)")
		}
		counts[i] = "countIf(" + strings.Join(held, " OR ") + ")"
	}
	var rows []struct {
		N []uint64 `ch:"n"`
	}
	q := "SELECT [" + strings.Join(counts, ", ") + "] AS n FROM " + sqlstore.Quote(tp.table) + " WHERE " + where
	if err := m.deps.Warehouse.Select(ctx, &rows, q, args...); err != nil {
		return nil, err
	}
	out := make([]int64, len(cats))
	if len(rows) == 1 {
		for i, n := range rows[0].N {
			out[i] = int64(n)
		}
	}
	return out, nil
}

// OwnHoldings is Holdings for the signed-in caller: their account, its
// email address and the browsers they signed in on.
func (m *Module) OwnHoldings(ctx context.Context, p authz.Principal) ([]Holding, error) {
	s, err := m.ownSubject(ctx, p)
	if err != nil {
		return nil, err
	}
	return m.Holdings(ctx, s)
}

// ownSubject is the signed-in principal as a subject: their account, their
// email and the browsing the identity rule gives them.
func (m *Module) ownSubject(ctx context.Context, p authz.Principal) (module.SubjectRef, error) {
	b, err := m.browsing(ctx, p.UserID)
	if err != nil {
		return module.SubjectRef{}, err
	}
	return module.SubjectRef{UserID: p.UserID, Email: p.Email, Browsing: b}, nil
}
