package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/policies"
)

// censusStep is the first step of an erasure: it counts the subject's rows
// before anything changes and fixes the identifiers the later steps use.
const censusStep = "census"

// packagesStep removes the subject's access packages from the file store.
const packagesStep = "files:" + exportsFolder

// Certificate is the record an erasure leaves: what there was, what is
// left, what was kept and why, and the verification that proves it.
type Certificate struct {
	RequestID string `json:"request_id"`
	UserID    string `json:"user_id,omitempty"`
	// VisitorID is the browser whose activity since its last sign-in a
	// visitor's request erased.
	VisitorID      string         `json:"visitor_id,omitempty"`
	PolicyRevision string         `json:"policy_revision"`
	StartedAt      time.Time      `json:"started_at"`
	CompletedAt    time.Time      `json:"completed_at"`
	Tables         []TableResult  `json:"tables"`
	Kept           []KeptItem     `json:"kept"`
	Modules        []ModuleResult `json:"modules"`
	Verification   Verification   `json:"verification"`
	// Pseudonym replaces the subject's identifiers in the rows kept.
	Pseudonym string `json:"pseudonym"`
	// PackagesRemoved counts the subject's access packages removed from
	// the file store.
	PackagesRemoved int64 `json:"packages_removed,omitempty"`
}

// TableResult counts one table's rows of the subject before and after.
type TableResult struct {
	Store string `json:"store"`
	Table string `json:"table"`
	// Mode is delete, partial (row kept, personal columns cleared but the
	// kept ones) or keep (row kept whole).
	Mode   string `json:"mode"`
	Before int64  `json:"before"`
	// After counts the rows still found under the subject's identifiers.
	After int64 `json:"after"`
	// Kept counts the rows that stay, under the pseudonym or whole.
	Kept int64 `json:"kept"`
}

// KeptItem is a category the erasure kept, with its legal reason.
type KeptItem struct {
	Store    string   `json:"store"`
	Table    string   `json:"table"`
	Category string   `json:"category"`
	Columns  []string `json:"columns"`
	Rows     int64    `json:"rows"`
	Reason   string   `json:"reason"`
	// Until is the policy's rule ("P10Y from order_paid"); UntilLatest is
	// the latest date it can give, counting from the erasure.
	Until       string     `json:"until"`
	UntilLatest *time.Time `json:"until_latest,omitempty"`
}

// ModuleResult is what a module's erasure hook reported.
type ModuleResult struct {
	Module     string             `json:"module"`
	Deleted    int                `json:"deleted"`
	Anonymized int                `json:"anonymized"`
	Retained   []module.Retention `json:"retained,omitempty"`
	// Remaining counts items the module still exports for the subject.
	Remaining int `json:"remaining"`
}

// Verification is the pass over every store after an erasure.
type Verification struct {
	Passed bool    `json:"passed"`
	Checks []Check `json:"checks"`
}

// Check is one query of the verification.
type Check struct {
	Store  string `json:"store"`
	Table  string `json:"table"`
	Column string `json:"column,omitempty"`
	// What says what the check looks for.
	What  string `json:"what"`
	Found int64  `json:"found"`
	Want  int64  `json:"want"`
	OK    bool   `json:"ok"`
}

// census is the result of the census step, kept so a rerun uses the same
// identifiers and counts after the first steps removed some of them (the
// browser sign-ins that decide the subject's browsing among them).
type census struct {
	StartedAt time.Time         `json:"started_at"`
	Browsing  []module.Browsing `json:"browsing"`
	Before    map[string]int64  `json:"before"`
	// VisitorIDs is how a census written before browser stretches named
	// the subject's browsers: every record of each of them.
	VisitorIDs []string `json:"visitor_ids,omitempty"`
}

// stepResult is what one step did.
type stepResult struct {
	Rows   int64                 `json:"rows"`
	Module *module.ErasureResult `json:"module,omitempty"`
}

// maxTime closes a browser stretch that has no end.
var maxTime = time.Date(2299, 12, 31, 0, 0, 0, 0, time.UTC)

// erase runs, or resumes, the erasure of a request's subject and returns
// its certificate. Each step is recorded when done; a rerun skips done
// steps, so a crash at any point and a rerun finish the job.
func (m *Module) erase(ctx context.Context, req *Request) (Certificate, error) {
	// Events still on their way would land after the erasure.
	if err := m.settle(ctx); err != nil {
		return Certificate{}, err
	}
	dm, err := m.dataMap(ctx)
	if err != nil {
		return Certificate{}, err
	}
	plans := plan(dm)
	done, err := m.doneSteps(ctx, req.ID)
	if err != nil {
		return Certificate{}, err
	}
	// The subject's access packages go before the census: each is a copy
	// of their data, and its removal is written in the trail the census
	// counts.
	if _, ok := done[packagesStep]; !ok {
		n, err := m.erasePackages(ctx, req)
		if err != nil {
			return Certificate{}, err
		}
		if err := m.recordStep(ctx, m.deps.DB, req.ID, packagesStep, stepResult{Rows: n}); err != nil {
			return Certificate{}, err
		}
	}
	subject := module.SubjectRef{UserID: req.UserID, Email: req.Email}
	var cen census
	if raw, ok := done[censusStep]; ok {
		if err := json.Unmarshal([]byte(raw), &cen); err != nil {
			return Certificate{}, fmt.Errorf("read erasure census: %w", err)
		}
	} else {
		if subject, err = m.subjectOf(ctx, req); err != nil {
			return Certificate{}, err
		}
		cen = census{StartedAt: m.now().UTC(), Browsing: subject.Browsing, Before: map[string]int64{}}
		for i := range plans {
			n, err := m.countSubject(ctx, &plans[i], subject)
			if err != nil {
				return Certificate{}, err
			}
			cen.Before[plans[i].store+"."+plans[i].table] = n
		}
		if err := m.recordStep(ctx, m.deps.DB, req.ID, censusStep, cen); err != nil {
			return Certificate{}, err
		}
	}
	subject.Browsing = cen.Browsing
	for _, v := range cen.VisitorIDs {
		subject.Browsing = append(subject.Browsing, module.Browsing{VisitorID: v, Until: maxTime})
	}
	pseudonym := "erased:" + req.ID

	info, err := sqlstore.ColumnsByName(ctx, m.deps.DB)
	if err != nil {
		return Certificate{}, err
	}
	order, err := m.sqlOrder(ctx, plans)
	if err != nil {
		return Certificate{}, err
	}
	// The warehouse goes first: its rows are found through identifiers the
	// SQL tables (consent records) may hold.
	var steps []func() error
	results := map[string]stepResult{}
	for i := range plans {
		tp := &plans[i]
		if tp.store != datamap.StoreWarehouse {
			continue
		}
		name := "warehouse:" + tp.table
		steps = append(steps, func() error {
			if _, ok := done[name]; ok {
				return nil
			}
			n, err := m.eraseWarehouseTable(ctx, tp, subject)
			if err != nil {
				return err
			}
			results[name] = stepResult{Rows: n}
			return m.recordStep(ctx, m.deps.DB, req.ID, name, results[name])
		})
	}
	for _, tp := range order {
		name := "sql:" + tp.table
		steps = append(steps, func() error {
			if _, ok := done[name]; ok {
				return nil
			}
			return m.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				n, err := eraseSQLTable(ctx, tx, tp, subject, pseudonym, info)
				if err != nil {
					return err
				}
				results[name] = stepResult{Rows: n}
				return m.recordStep(ctx, tx, req.ID, name, results[name])
			})
		})
	}
	for _, h := range m.deps.Hooks {
		name := "module:" + h.Module
		steps = append(steps, func() error {
			if _, ok := done[name]; ok {
				return nil
			}
			res, err := h.Data.EraseSubject(ctx, subject)
			if err != nil {
				return fmt.Errorf("erase %s: %w", h.Module, err)
			}
			results[name] = stepResult{Module: &res}
			return m.recordStep(ctx, m.deps.DB, req.ID, name, results[name])
		})
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return Certificate{}, err
		}
		progress(ctx, "erase", i+1, len(steps)+1)
	}
	// Results of steps done by an earlier run are read back.
	if done, err = m.doneSteps(ctx, req.ID); err != nil {
		return Certificate{}, err
	}
	cert := Certificate{
		RequestID:      req.ID,
		UserID:         req.UserID,
		VisitorID:      req.VisitorID,
		PolicyRevision: dm.Revision,
		StartedAt:      cen.StartedAt,
		Pseudonym:      pseudonym,
	}
	var pr stepResult
	_ = json.Unmarshal([]byte(done[packagesStep]), &pr)
	cert.PackagesRemoved = pr.Rows
	for _, h := range m.deps.Hooks {
		var r stepResult
		_ = json.Unmarshal([]byte(done["module:"+h.Module]), &r)
		mr := ModuleResult{Module: h.Module}
		if r.Module != nil {
			mr.Deleted, mr.Anonymized, mr.Retained = r.Module.Deleted, r.Module.Anonymized, r.Module.Retained
		}
		cert.Modules = append(cert.Modules, mr)
	}
	if err := m.verify(ctx, &cert, plans, subject, cen, info); err != nil {
		return Certificate{}, err
	}
	left, err := m.storedPackages(ctx, req)
	if err != nil {
		return Certificate{}, err
	}
	check := Check{Store: "files", Table: exportsFolder, What: "access packages of the subject in the file store", Found: left, Want: 0, OK: left == 0}
	cert.Verification.Checks = append(cert.Verification.Checks, check)
	cert.Verification.Passed = cert.Verification.Passed && check.OK
	cert.CompletedAt = m.now().UTC()
	progress(ctx, "verify", len(steps)+1, len(steps)+1)
	return cert, nil
}

// browsing returns the subject's stretches of anonymous browsing under the
// identity rule, from the browser sign-ins the links record. Events sent
// while signed in are the account's by their user id and link no browser:
// a browser shared with someone else stays theirs outside the subject's
// stretches.
func (m *Module) browsing(ctx context.Context, userID string) ([]module.Browsing, error) {
	if userID == "" || m.deps.Visitors == nil {
		return nil, nil
	}
	b, err := m.deps.Visitors.Browsing(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("linked browsing: %w", err)
	}
	return b, nil
}

// countSubject counts the rows of a table found under the subject's
// identifiers.
func (m *Module) countSubject(ctx context.Context, tp *tablePlan, s module.SubjectRef) (int64, error) {
	return m.countSubjectBy(ctx, tp, tp.subjects, s)
}

// countSubjectBy counts the rows of a table found under the subject's
// identifiers in some of its subject columns.
func (m *Module) countSubjectBy(ctx context.Context, tp *tablePlan, cols []column, s module.SubjectRef) (int64, error) {
	switch tp.store {
	case datamap.StoreSQL:
		rows, ok := subjectRows(tp, cols, s)
		if !ok {
			return 0, nil
		}
		return rows.Count(ctx, m.deps.DB)
	case datamap.StoreWarehouse:
		if m.deps.Warehouse == nil {
			return 0, nil
		}
		where, args, ok := warehouseWhereOf(tp, cols, s)
		if !ok {
			return 0, nil
		}
		var rows []struct {
			N uint64 `ch:"n"`
		}
		if err := m.deps.Warehouse.Select(ctx, &rows, "SELECT count() AS n FROM "+sqlstore.Quote(tp.table)+" WHERE "+where, args...); err != nil {
			return 0, fmt.Errorf("count %s: %w", tp.table, err)
		}
		return int64(rows[0].N), nil
	}
	return 0, nil
}

// eraseWarehouseTable deletes every row of the subject. The policy
// deletes every category in the warehouse, which holds analytics copies
// only (what the law makes us keep is kept in the SQL store); the warehouse
// can neither keep part of a row nor blank it in place, so a plan that
// asks for that is refused rather than carried out another way.
//
// The DELETE runs as a lightweight update where the engine has them: it
// writes a patch part that masks the rows, which every read applies from
// the moment the statement returns, and merges later apply it to the
// data. Run as a mutation it would wait for the merges of the parts the
// subject's latest events landed in, which took 6 to 15 s straight after
// a bulk of events (docs/scaling.md, "Access export and erasure"). A table
// without the block columns patch parts need (migration 0009) gets the
// mutation, as does an engine older than 25.7, which knows no such mode.
func (m *Module) eraseWarehouseTable(ctx context.Context, tp *tablePlan, s module.SubjectRef) (int64, error) {
	if m.deps.Warehouse == nil {
		return 0, nil
	}
	if tp.mode != modeDelete {
		return 0, fmt.Errorf("erase %s: the policy keeps or anonymizes columns of a warehouse table, which only deletes rows", tp.table)
	}
	n, err := m.countSubject(ctx, tp, s)
	if err != nil || n == 0 {
		return n, err
	}
	where, args, _ := warehouseWhere(tp, s)
	q := "DELETE FROM " + sqlstore.Quote(tp.table) + " WHERE " + where
	patches, err := m.patchDeletes(ctx)
	if err != nil {
		return 0, err
	}
	if patches {
		q += " SETTINGS lightweight_delete_mode = 'lightweight_update'"
	}
	if err := m.deps.Warehouse.Exec(ctx, q, args...); err != nil {
		return 0, fmt.Errorf("erase %s: %w", tp.table, err)
	}
	return n, nil
}

// patchDeletes reports whether the warehouse engine can run a lightweight
// DELETE as a lightweight update, which ClickHouse does from 25.7 on.
func (m *Module) patchDeletes(ctx context.Context) (bool, error) {
	var rows []struct {
		N uint64 `ch:"n"`
	}
	if err := m.deps.Warehouse.Select(ctx, &rows, "SELECT count() AS n FROM system.settings WHERE name = 'lightweight_delete_mode'"); err != nil {
		return false, fmt.Errorf("read warehouse settings: %w", err)
	}
	return len(rows) == 1 && rows[0].N > 0, nil
}

// eraseSQLTable applies a table's row mode to the subject's rows and
// returns how many rows it changed.
func eraseSQLTable(ctx context.Context, tx bun.Tx, tp *tablePlan, s module.SubjectRef, pseudonym string, info map[string]sqlstore.Column) (int64, error) {
	rows, ok := subjectRows(tp, tp.subjects, s)
	if !ok || tp.mode == modeKeep {
		return 0, nil
	}
	var n int64
	var err error
	switch tp.mode {
	case modeDelete:
		n, err = rows.Delete(ctx, tx)
	case modePartial:
		n, err = rows.Update(ctx, tx, partialSets(tp, pseudonym, info))
	}
	if err != nil {
		return 0, fmt.Errorf("erase: %w", err)
	}
	return n, nil
}

// partialSets returns the assignments that clear a kept row: deleted and
// anonymized columns blanked, identifiers replaced by the pseudonym, kept
// columns left alone.
func partialSets(tp *tablePlan, pseudonym string, info map[string]sqlstore.Column) []sqlstore.Assignment {
	var sets []sqlstore.Assignment
	for _, c := range tp.columns {
		// The collected time stays: the kept columns' periods count from
		// it, and retention ends them on time only if it is there.
		if !c.Personal || c.Erasure.Action == actionKeep || c.Collected {
			continue
		}
		col := info[tp.table+"."+c.Column]
		if c.Subject {
			// A NULL identifier stays NULL: a row names its subject by one
			// of several columns, and schemas may require exactly one.
			sets = append(sets, sqlstore.Assignment{Column: c.Column, Value: pseudonym, KeepNull: col.Nullable})
			continue
		}
		sets = append(sets, col.Clear())
	}
	return sets
}

// sqlOrder orders the SQL tables so that a table comes before the tables
// its foreign keys reference: children are cleared before their parents.
func (m *Module) sqlOrder(ctx context.Context, plans []tablePlan) ([]*tablePlan, error) {
	fks, err := sqlstore.ForeignKeys(ctx, m.deps.DB)
	if err != nil {
		return nil, err
	}
	var list []*tablePlan
	byName := map[string]*tablePlan{}
	for i := range plans {
		if plans[i].store == datamap.StoreSQL {
			list = append(list, &plans[i])
			byName[plans[i].table] = &plans[i]
		}
	}
	var out []*tablePlan
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(t string)
	// A table is placed after every table that references it is placed.
	referencedBy := map[string][]string{}
	for _, fk := range fks {
		if fk.References != fk.Table {
			referencedBy[fk.References] = append(referencedBy[fk.References], fk.Table)
		}
	}
	visit = func(t string) {
		if state[t] != 0 {
			return
		}
		state[t] = 1
		children := referencedBy[t]
		sort.Strings(children)
		for _, c := range children {
			visit(c)
		}
		state[t] = 2
		if tp, ok := byName[t]; ok {
			out = append(out, tp)
		}
	}
	for _, tp := range list {
		visit(tp.table)
	}
	return out, nil
}

// verify queries every subject column of every store for the subject's
// identifiers, checks the pseudonymized rows hold nothing but kept data,
// and asks each module what it still holds. The certificate gets the
// counts, the kept items and the verdict.
func (m *Module) verify(ctx context.Context, cert *Certificate, plans []tablePlan, s module.SubjectRef, cen census, info map[string]sqlstore.Column) error {
	passed := true
	add := func(c Check) {
		c.OK = c.Found == c.Want
		passed = passed && c.OK
		cert.Verification.Checks = append(cert.Verification.Checks, c)
	}
	for i := range plans {
		tp := &plans[i]
		before := cen.Before[tp.store+"."+tp.table]
		after, err := m.countSubject(ctx, tp, s)
		if err != nil {
			return err
		}
		tr := TableResult{Store: tp.store, Table: tp.table, Mode: tp.mode, Before: before, After: after}
		want := int64(0)
		if tp.store == datamap.StoreSQL && tp.mode == modeKeep {
			want = before
			tr.Kept = after
		}
		for _, c := range tp.subjects {
			var n int64
			if n, err = m.countSubjectBy(ctx, tp, []column{c}, s); err != nil {
				return err
			}
			w := int64(0)
			if tr.Mode == modeKeep {
				w = n // the whole row stays; counted against the census below
			}
			add(Check{Store: tp.store, Table: tp.table, Column: c.Column, What: "rows under the subject's " + c.Identifier + " id", Found: n, Want: w})
		}
		if tr.Mode == modeKeep {
			add(Check{Store: tp.store, Table: tp.table, What: "rows kept whole, as counted before the erasure", Found: after, Want: want})
		}
		if tp.store == datamap.StoreSQL && tp.mode == modePartial {
			kept, dirty, err := m.checkPseudonymized(ctx, tp, cert.Pseudonym, info)
			if err != nil {
				return err
			}
			tr.Kept = kept
			add(Check{Store: tp.store, Table: tp.table, What: "kept rows still holding a cleared column", Found: dirty, Want: 0})
			if kept > 0 {
				cert.Kept = append(cert.Kept, keptItems(tp, kept, m.now())...)
			}
		}
		if tp.store == datamap.StoreSQL && tp.mode == modeKeep && after > 0 {
			cert.Kept = append(cert.Kept, keptItems(tp, after, m.now())...)
		}
		cert.Tables = append(cert.Tables, tr)
	}
	// Contact columns that are not the subject's identifier may still hold
	// the address (a ticket's contact email).
	if s.Email != "" {
		for i := range plans {
			tp := &plans[i]
			if tp.store != datamap.StoreSQL || tp.mode == modeKeep {
				continue
			}
			for _, c := range tp.columns {
				if c.Subject || c.Identifier != datamap.IdentifierEmail || c.Erasure.Action == actionKeep {
					continue
				}
				n, err := sqlstore.Rows{Table: tp.table}.And("? = ?", bun.Ident(c.Column), s.Email).Count(ctx, m.deps.DB)
				if err != nil {
					return err
				}
				add(Check{Store: tp.store, Table: tp.table, Column: c.Column, What: "rows holding the subject's email address", Found: n, Want: 0})
			}
		}
	}
	for i, h := range m.deps.Hooks {
		cw := &countingWriter{}
		if err := h.Data.ExportSubject(ctx, s, cw); err != nil {
			return fmt.Errorf("verify %s: %w", h.Module, err)
		}
		cert.Modules[i].Remaining = cw.n
		add(Check{Store: "module", Table: h.Module, What: "items the module still holds", Found: int64(cw.n), Want: 0})
	}
	cert.Verification.Passed = passed
	return nil
}

// checkPseudonymized counts the rows kept under the pseudonym and those of
// them where a column that should be cleared is not.
func (m *Module) checkPseudonymized(ctx context.Context, tp *tablePlan, pseudonym string, info map[string]sqlstore.Column) (kept, dirty int64, err error) {
	var subj []string
	var args []any
	for _, c := range tp.subjects {
		if c.Erasure.Action != actionKeep {
			subj = append(subj, "? = ?")
			args = append(args, bun.Ident(c.Column), pseudonym)
		}
	}
	if len(subj) == 0 {
		return 0, 0, nil
	}
	rows := sqlstore.Rows{Table: tp.table, Where: strings.Join(subj, " OR "), Args: args}
	if kept, err = rows.Count(ctx, m.deps.DB); err != nil {
		return 0, 0, err
	}
	var cleared []sqlstore.Column
	for _, c := range tp.columns {
		if !c.Personal || c.Subject || c.Erasure.Action == actionKeep || c.Collected {
			continue
		}
		cleared = append(cleared, info[tp.table+"."+c.Column])
	}
	if len(cleared) == 0 {
		return kept, 0, nil
	}
	dirty, err = rows.AndNotBlank(cleared...).Count(ctx, m.deps.DB)
	return kept, dirty, err
}

// keptItems lists the kept categories of a table with their reasons.
func keptItems(tp *tablePlan, rows int64, now time.Time) []KeptItem {
	byCat := map[string]*KeptItem{}
	var order []string
	for _, c := range tp.columns {
		if !c.Personal || c.Erasure.Action != actionKeep {
			continue
		}
		k, ok := byCat[c.Category]
		if !ok {
			k = &KeptItem{Store: tp.store, Table: tp.table, Category: c.Category, Rows: rows, Reason: c.Erasure.Reason, Until: c.Erasure.Until}
			if p, err := policies.ParsePeriod(strings.Fields(c.Erasure.Until + " ")[0]); err == nil {
				t := p.AddTo(now).UTC()
				k.UntilLatest = &t
			}
			byCat[c.Category] = k
			order = append(order, c.Category)
		}
		k.Columns = append(k.Columns, c.Column)
	}
	out := make([]KeptItem, 0, len(order)+1)
	for _, cat := range order {
		out = append(out, *byCat[cat])
	}
	// A kept row keeps its collected time too, whatever its category
	// says: the kept columns' periods count from it.
	for _, c := range tp.columns {
		if c.Collected && c.Personal && c.Erasure.Action != actionKeep && len(out) > 0 {
			k := KeptItem{Store: tp.store, Table: tp.table, Category: c.Category, Columns: []string{c.Column}, Rows: rows,
				Reason: "the time the kept data's retention period counts from", Until: out[0].Until, UntilLatest: out[0].UntilLatest}
			out = append(out, k)
		}
	}
	return out
}

// countingWriter counts what a module exports of a subject, in all and
// by category.
type countingWriter struct {
	n          int
	byCategory map[string]int
}

func (c *countingWriter) Record(_ context.Context, category string, _ any) error {
	c.count(category)
	return nil
}

func (c *countingWriter) File(_ context.Context, _, category string, _ io.Reader) error {
	c.count(category)
	return nil
}

func (c *countingWriter) count(category string) {
	c.n++
	if c.byCategory == nil {
		c.byCategory = map[string]int{}
	}
	c.byCategory[category]++
}

func (m *Module) doneSteps(ctx context.Context, requestID string) (map[string]string, error) {
	var steps []Step
	if err := m.deps.DB.NewSelect().Model(&steps).Where("request_id = ?", requestID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read erasure steps: %w", err)
	}
	out := make(map[string]string, len(steps))
	for _, s := range steps {
		out[s.Step] = s.Result
	}
	return out, nil
}

func (m *Module) recordStep(ctx context.Context, db bun.IDB, requestID, name string, result any) error {
	raw, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("record step %s: %w", name, err)
	}
	row := Step{RequestID: requestID, Step: name, DoneAt: m.now().UTC(), Result: string(raw)}
	if _, err := db.NewInsert().Model(&row).Exec(ctx); err != nil {
		return fmt.Errorf("record step %s: %w", name, err)
	}
	return nil
}

// subjectAccessRequests returns the access requests about the subject of
// req: by account, or by email address for a subject without one, or by
// browser for a visitor's.
func (m *Module) subjectAccessRequests(ctx context.Context, req *Request) ([]Request, error) {
	q := m.deps.DB.NewSelect().Model((*Request)(nil)).Where("type = ?", TypeAccess)
	switch {
	case req.UserID != "":
		q = q.Where("user_id = ?", req.UserID)
	case req.Email != "":
		q = q.Where("user_id = '' AND email = ?", req.Email)
	case req.VisitorID != "":
		q = q.Where("user_id = '' AND visitor_id = ?", req.VisitorID)
	default:
		return nil, nil
	}
	var out []Request
	if err := q.Order("received_at", "id").Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("read the subject's access requests: %w", err)
	}
	return out, nil
}

// erasePackages removes the access packages of the subject from the file
// store and returns how many it removed.
func (m *Module) erasePackages(ctx context.Context, req *Request) (int64, error) {
	list, err := m.subjectAccessRequests(ctx, req)
	if err != nil {
		return 0, err
	}
	var n int64
	for i := range list {
		if list[i].PackagePath == "" {
			// Files no record offers (left by runs that did not
			// complete) go too.
			if _, err := m.files.DeletePrefix(ctx, packagesPrefix(list[i].ID)); err != nil {
				return n, fmt.Errorf("remove package: %w", err)
			}
			if err := m.files.Delete(ctx, legacyPackageKey(list[i].ID)); err != nil {
				return n, fmt.Errorf("remove package: %w", err)
			}
			continue
		}
		removed, err := m.removePackage(ctx, &list[i], "removed with the subject's data by erasure "+req.ID)
		if err != nil {
			return n, err
		}
		if removed {
			n++
		}
	}
	return n, nil
}

// storedPackages counts the files the file store still holds for the
// subject's access requests, whatever their records say.
func (m *Module) storedPackages(ctx context.Context, req *Request) (int64, error) {
	list, err := m.subjectAccessRequests(ctx, req)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, r := range list {
		keys, err := m.files.List(ctx, packagesPrefix(r.ID))
		if err != nil {
			return 0, fmt.Errorf("verify packages: %w", err)
		}
		n += int64(len(keys))
		// A package written before packages were named per run.
		ok, err := m.files.Exists(ctx, legacyPackageKey(r.ID))
		if err != nil {
			return 0, fmt.Errorf("verify packages: %w", err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}
