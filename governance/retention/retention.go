// Package retention provides the retention runner: it removes data past
// the retention rule of its category, in the SQL store and the warehouse,
// keeps the warehouse's TTLs in step with the rules, and writes a report
// of each run that the audit reads.
//
// Like access and erasure it reads the data map, not a list of tables.
// Each table tags one column with the "collected" option: the time its
// retention counts from. The category of that column gives the row's own
// period; a row older than it is deleted. A column whose category has a
// shorter period is cleared (set to NULL or its type's empty value) once
// the row is older than that period. Categories kept for the account's or
// the row's lifetime have no period and are never touched here.
package retention

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/background"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

// DefaultInterval is how often the scheduler runs when none is set.
const DefaultInterval = 24 * time.Hour

// maxCheck bounds how long the scheduler waits between two looks at
// whether a run is due.
const maxCheck = time.Minute

// runLock names the lock a scheduled run holds, from the look at the last
// run to the record of its own (see sqlstore.WithLock).
const runLock = "retention"

// Config tunes the scheduler.
type Config struct {
	// Interval between runs of the scheduler; DefaultInterval when zero.
	Interval time.Duration
}

// Deps is what the runner needs, handed in by cmd/steward.
type Deps struct {
	DB        *bun.DB
	Warehouse warehouse.Warehouse // nil: SQL only
	// DataMap builds the data map, whose entries hold the policy's
	// retention decisions: the runner applies them and asks nothing else.
	DataMap func(ctx context.Context) (*datamap.Map, []datamap.Problem, error)
	// Leader gates the scheduled runs to one of the processes sharing the
	// SQL store. Nil: this process leads.
	Leader module.Leader
	Logger *slog.Logger
	// Now is the clock; tests set it to move time.
	Now func() time.Time
}

// Run is one row of retention_runs.
type Run struct {
	bun.BaseModel `bun:"table:retention_runs"`

	ID             string    `bun:"id,pk" privacy:"system.operations"`
	StartedAt      time.Time `bun:"started_at,notnull" privacy:"system.operations,collected"`
	FinishedAt     time.Time `bun:"finished_at,notnull" privacy:"system.operations"`
	DryRun         bool      `bun:"dry_run,notnull" privacy:"system.operations"`
	PolicyRevision string    `bun:"policy_revision,notnull" privacy:"system.operations"`
	RowsAffected   int64     `bun:"rows_affected,notnull" privacy:"system.operations"`
	// Report is the Report as JSON: tables, columns, counts; never a
	// personal value.
	Report string `bun:"report,notnull" privacy:"system.operations"`
}

// Report is what one run did, or would do in a dry run.
type Report struct {
	ID             string    `json:"id"`
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
	DryRun         bool      `json:"dry_run"`
	PolicyRevision string    `json:"policy_revision"`
	Items          []Item    `json:"items"`
	TTL            []TTL     `json:"ttl,omitempty"`
	Skipped        []Skip    `json:"skipped,omitempty"`
	RowsAffected   int64     `json:"rows_affected"`
}

// Item is one action on one table.
type Item struct {
	Store string `json:"store"`
	Table string `json:"table"`
	// Action is delete (rows) or anonymize (columns cleared).
	Action     string    `json:"action"`
	Columns    []string  `json:"columns,omitempty"`
	Categories []string  `json:"categories"`
	Period     string    `json:"period"`
	Cutoff     time.Time `json:"cutoff"`
	Rows       int64     `json:"rows"`
}

// TTL is a warehouse TTL set to match the rules.
type TTL struct {
	Table      string `json:"table"`
	Column     string `json:"column,omitempty"`
	Expression string `json:"expression"`
}

// Skip is a table the runner cannot govern, with the reason.
type Skip struct {
	Store  string `json:"store"`
	Table  string `json:"table"`
	Reason string `json:"reason"`
}

// Module is the retention runner and its scheduler.
type Module struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	runMu sync.Mutex
	bg    background.Group
}

// New returns the runner.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.DB == nil || deps.DataMap == nil {
		return nil, errors.New("retention: DB and DataMap are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Module{cfg: cfg, deps: deps, log: deps.Logger}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "retention" }

// Models implements module.Module.
func (m *Module) Models() []any { return []any{(*Run)(nil)} }

// Mount implements module.Module; the reports are read through the audit.
func (m *Module) Mount(fiber.Router, web.Documenter) {}

// Start implements module.Starter: it runs retention every Interval on
// the leading process, the first run one Interval after start when no run
// is on record.
//
// Whether a run is due is read from retention_runs, not from a timer of
// this process: when the lead moves to another process, or a command ran
// retention meanwhile, the next run still comes one Interval after the
// last one recorded. The look and the run hold a lock that excludes the
// other processes (on PostgreSQL), so two processes that both believe
// they lead still run once.
func (m *Module) Start(ctx context.Context) error {
	started := m.deps.Now()
	if err := m.bg.Start(ctx, func(ctx context.Context) { m.schedule(ctx, started) }); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	return nil
}

func (m *Module) schedule(ctx context.Context, started time.Time) {
	background.Every(ctx, min(max(m.cfg.Interval/4, time.Millisecond), maxCheck), func(ctx context.Context) {
		if !module.Leads(m.deps.Leader) {
			return
		}
		err := sqlstore.WithLock(ctx, m.deps.DB, runLock, func(ctx context.Context) error {
			last, err := m.lastRun(ctx)
			if err != nil {
				return err
			}
			if last.IsZero() {
				last = started
			}
			if m.deps.Now().Sub(last) < m.cfg.Interval {
				return nil
			}
			r, err := m.Run(ctx, false)
			if err != nil {
				return err
			}
			m.log.Info("retention run", slog.String("run_id", r.ID), slog.Int64("rows", r.RowsAffected))
			return nil
		})
		if err != nil && ctx.Err() == nil {
			m.log.Error("retention run", slog.Any("error", err))
		}
	})
}

// lastRun is the start of the latest run on record that was not a dry
// run, or the zero time.
func (m *Module) lastRun(ctx context.Context) (time.Time, error) {
	var last Run
	err := m.deps.DB.NewSelect().Model(&last).Column("id", "started_at").
		Where("dry_run = ?", false).Order("started_at DESC").Limit(1).Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("read the last retention run: %w", err)
	}
	return last.StartedAt, nil
}

// Stop implements module.Stopper.
func (m *Module) Stop(ctx context.Context) error {
	if err := m.bg.Stop(ctx); err != nil {
		return fmt.Errorf("retention: stop: %w", err)
	}
	return nil
}

// tableRule is what retention does to one table.
type tableRule struct {
	store, table string
	timeCol      string
	// row is the row's own period, from the time column's category; nil
	// when rows live as long as the account or themselves.
	row     *rule
	columns []colRule
}

type rule struct {
	period policies.Period
	text   string
	cutoff time.Time
}

type colRule struct {
	column, category string
	rule
}

// Run applies every rule once (or, with dryRun, counts what it would do)
// and stores the report in retention_runs, a dry run's too: an operator's
// dry run is evidence of what they saw.
func (m *Module) Run(ctx context.Context, dryRun bool) (Report, error) {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	rep, err := m.apply(ctx, dryRun)
	if err != nil {
		return Report{}, err
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		return Report{}, fmt.Errorf("encode retention report: %w", err)
	}
	row := Run{ID: rep.ID, StartedAt: rep.StartedAt, FinishedAt: rep.FinishedAt, DryRun: dryRun,
		PolicyRevision: rep.PolicyRevision, RowsAffected: rep.RowsAffected, Report: string(raw)}
	if _, err := m.deps.DB.NewInsert().Model(&row).Exec(ctx); err != nil {
		return Report{}, fmt.Errorf("store retention report: %w", err)
	}
	return rep, nil
}

// Preview counts what a run would remove right now, as a dry run does,
// and changes nothing: it stores no report either. The audit reads it, and
// a GET may run the audit.
func (m *Module) Preview(ctx context.Context) (Report, error) {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	return m.apply(ctx, true)
}

// apply applies every rule once, or with dryRun counts what it would do,
// and returns the report. The caller holds runMu.
func (m *Module) apply(ctx context.Context, dryRun bool) (Report, error) {
	now := m.deps.Now().UTC().Truncate(time.Microsecond)
	dm, _, err := m.deps.DataMap(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("build data map: %w", err)
	}
	// The run follows the decisions the map holds, so it is recorded
	// under the revision that made them.
	rep := Report{ID: ids.New("ret"), StartedAt: now, DryRun: dryRun, PolicyRevision: dm.Revision, Items: []Item{}}
	rules, skipped, err := m.rules(ctx, dm, now)
	if err != nil {
		return Report{}, err
	}
	rep.Skipped = skipped
	info, err := sqlstore.ColumnsByName(ctx, m.deps.DB)
	if err != nil {
		return Report{}, err
	}
	for _, tr := range rules {
		var items []Item
		switch tr.store {
		case datamap.StoreSQL:
			items, err = m.applySQL(ctx, tr, info, dryRun)
		case datamap.StoreWarehouse:
			if m.deps.Warehouse == nil {
				continue
			}
			var ttls []TTL
			items, ttls, err = m.applyWarehouse(ctx, tr, dryRun)
			rep.TTL = append(rep.TTL, ttls...)
		}
		if err != nil {
			return Report{}, fmt.Errorf("retention %s %s: %w", tr.store, tr.table, err)
		}
		for _, it := range items {
			rep.RowsAffected += it.Rows
		}
		rep.Items = append(rep.Items, items...)
	}
	rep.FinishedAt = m.deps.Now().UTC().Truncate(time.Microsecond)
	return rep, nil
}

// Reports returns the latest run reports, newest first.
func (m *Module) Reports(ctx context.Context, limit int64) ([]Report, error) {
	var rows []Run
	if err := m.deps.DB.NewSelect().Model(&rows).Order("started_at DESC").Limit(limit).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read retention reports: %w", err)
	}
	out := make([]Report, 0, len(rows))
	for _, r := range rows {
		var rep Report
		if err := json.Unmarshal([]byte(r.Report), &rep); err != nil {
			return nil, fmt.Errorf("read retention report %s: %w", r.ID, err)
		}
		out = append(out, rep)
	}
	return out, nil
}

// rules reads each table's rules from the data map and the policy.
func (m *Module) rules(ctx context.Context, dm *datamap.Map, now time.Time) ([]tableRule, []Skip, error) {
	byTable := map[string]*tableRule{}
	var order []string
	var skipped []Skip
	for _, e := range dm.Entries {
		key := e.Store + "\x00" + e.Table
		tr, ok := byTable[key]
		if !ok {
			tr = &tableRule{store: e.Store, table: e.Table}
			byTable[key] = tr
			order = append(order, key)
		}
		rr := e.Retention
		p, perr := policies.ParsePeriod(rr.Duration)
		var r *rule
		if perr == nil {
			r = &rule{period: p, text: rr.Duration, cutoff: now.AddDate(-p.Years, -p.Months, -p.Days)}
		}
		if e.Collected {
			tr.timeCol = e.Column
			tr.row = r
		}
		if r != nil && e.Personal && !e.Collected && !e.Derived {
			tr.columns = append(tr.columns, colRule{column: e.Column, category: e.Category, rule: *r})
		}
	}
	var out []tableRule
	for _, key := range order {
		tr := byTable[key]
		if tr.timeCol == "" {
			if len(tr.columns) > 0 {
				skipped = append(skipped, Skip{Store: tr.store, Table: tr.table, Reason: "no column is tagged collected, so no period can be counted"})
			}
			continue
		}
		// A column whose period is not shorter than the row's goes with
		// the row.
		var cols []colRule
		for _, c := range tr.columns {
			if tr.row == nil || c.cutoff.After(tr.row.cutoff) {
				cols = append(cols, c)
			}
		}
		tr.columns = cols
		out = append(out, *tr)
	}
	return out, skipped, nil
}

// applySQL deletes the table's expired rows and clears its expired
// columns.
func (m *Module) applySQL(ctx context.Context, tr tableRule, info map[string]sqlstore.Column, dryRun bool) ([]Item, error) {
	var items []Item
	db := m.deps.DB
	table := sqlstore.Rows{Table: tr.table}
	timeCol := bun.Ident(tr.timeCol)
	if tr.row != nil {
		expired := table.And("? < ?", timeCol, tr.row.cutoff)
		n, err := expired.Count(ctx, db)
		if err != nil {
			return nil, err
		}
		if n > 0 && !dryRun {
			if _, err := expired.Delete(ctx, db); err != nil {
				return nil, fmt.Errorf("delete expired rows: %w", err)
			}
		}
		items = append(items, Item{Store: tr.store, Table: tr.table, Action: "delete", Categories: []string{"(row)"}, Period: tr.row.text, Cutoff: tr.row.cutoff, Rows: n})
	}
	for _, g := range groupByCutoff(tr.columns) {
		cols := make([]sqlstore.Column, len(g))
		sets := make([]sqlstore.Assignment, len(g))
		var cats []string
		for i, c := range g {
			cols[i] = info[tr.table+"."+c.column]
			sets[i] = cols[i].Clear()
			cats = append(cats, c.category)
		}
		expired := table.And("? < ?", timeCol, g[0].cutoff).AndNotBlank(cols...)
		if tr.row != nil {
			// Rows the row rule deletes are not counted twice (a dry run
			// deletes nothing first).
			expired = expired.And("? >= ?", timeCol, tr.row.cutoff)
		}
		n, err := expired.Count(ctx, db)
		if err != nil {
			return nil, err
		}
		if n > 0 && !dryRun {
			if _, err := expired.Update(ctx, db, sets); err != nil {
				return nil, fmt.Errorf("clear expired columns: %w", err)
			}
		}
		items = append(items, Item{Store: tr.store, Table: tr.table, Action: "anonymize", Columns: columnsOf(g), Categories: uniq(cats), Period: g[0].text, Cutoff: g[0].cutoff, Rows: n})
	}
	return items, nil
}

// applyWarehouse deletes expired rows, clears expired columns and sets the
// table's TTLs to the same rules, so merges enforce them between runs.
func (m *Module) applyWarehouse(ctx context.Context, tr tableRule, dryRun bool) ([]Item, []TTL, error) {
	w := m.deps.Warehouse
	var items []Item
	var ttls []TTL
	count := func(where string, cutoff time.Time) (int64, error) {
		var rows []struct {
			N uint64 `ch:"n"`
		}
		if err := w.Select(ctx, &rows, "SELECT count() AS n FROM "+sqlstore.Quote(tr.table)+" WHERE "+where, warehouse.Named("cutoff", cutoff)); err != nil {
			return 0, fmt.Errorf("count expired rows: %w", err)
		}
		return int64(rows[0].N), nil
	}
	timeExpr := "toDateTime(" + tr.timeCol + ")"
	if tr.row != nil {
		where := sqlstore.Quote(tr.timeCol) + " < {cutoff:DateTime64(6)}"
		n, err := count(where, tr.row.cutoff)
		if err != nil {
			return nil, nil, err
		}
		if n > 0 && !dryRun {
			if err := w.Exec(ctx, "DELETE FROM "+sqlstore.Quote(tr.table)+" WHERE "+where, warehouse.Named("cutoff", tr.row.cutoff)); err != nil {
				return nil, nil, fmt.Errorf("delete expired rows: %w", err)
			}
		}
		items = append(items, Item{Store: tr.store, Table: tr.table, Action: "delete", Categories: []string{"(row)"}, Period: tr.row.text, Cutoff: tr.row.cutoff, Rows: n})
		ttls = append(ttls, TTL{Table: tr.table, Expression: timeExpr + interval(tr.row.period)})
	}
	for _, g := range groupByCutoff(tr.columns) {
		var sets, notBlank []string
		for _, c := range g {
			col := sqlstore.Quote(c.column)
			sets = append(sets, col+" = defaultValueOfArgumentType("+col+")")
			notBlank = append(notBlank, col+" != defaultValueOfArgumentType("+col+")")
			ttls = append(ttls, TTL{Table: tr.table, Column: c.column, Expression: timeExpr + interval(c.period)})
		}
		where := sqlstore.Quote(tr.timeCol) + " < {cutoff:DateTime64(6)} AND (" + strings.Join(notBlank, " OR ") + ")"
		if tr.row != nil {
			where += fmt.Sprintf(" AND %s >= fromUnixTimestamp64Micro(%d)", sqlstore.Quote(tr.timeCol), tr.row.cutoff.UnixMicro())
		}
		n, err := count(where, g[0].cutoff)
		if err != nil {
			return nil, nil, err
		}
		if n > 0 && !dryRun {
			q := "ALTER TABLE " + sqlstore.Quote(tr.table) + " UPDATE " + strings.Join(sets, ", ") + " WHERE " + where + " SETTINGS mutations_sync = 1"
			if err := w.Exec(ctx, q, warehouse.Named("cutoff", g[0].cutoff)); err != nil {
				return nil, nil, fmt.Errorf("clear expired columns: %w", err)
			}
		}
		var cats []string
		for _, c := range g {
			cats = append(cats, c.category)
		}
		items = append(items, Item{Store: tr.store, Table: tr.table, Action: "anonymize", Columns: columnsOf(g), Categories: uniq(cats), Period: g[0].text, Cutoff: g[0].cutoff, Rows: n})
	}
	if !dryRun {
		for _, t := range ttls {
			q := "ALTER TABLE " + sqlstore.Quote(t.Table) + " MODIFY TTL " + t.Expression
			if t.Column != "" {
				q = "ALTER TABLE " + sqlstore.Quote(t.Table) + " MODIFY COLUMN " + sqlstore.Quote(t.Column) + " TTL " + t.Expression
			}
			if err := w.Exec(ctx, q); err != nil {
				return nil, nil, fmt.Errorf("set ttl: %w", err)
			}
		}
	}
	return items, ttls, nil
}

// interval renders a period as ClickHouse interval additions.
func interval(p policies.Period) string {
	var b strings.Builder
	if p.Years != 0 {
		fmt.Fprintf(&b, " + INTERVAL %d YEAR", p.Years)
	}
	if p.Months != 0 {
		fmt.Fprintf(&b, " + INTERVAL %d MONTH", p.Months)
	}
	if p.Days != 0 {
		fmt.Fprintf(&b, " + INTERVAL %d DAY", p.Days)
	}
	return b.String()
}

func groupByCutoff(cols []colRule) [][]colRule {
	by := map[time.Time][]colRule{}
	var keys []time.Time
	for _, c := range cols {
		if _, ok := by[c.cutoff]; !ok {
			keys = append(keys, c.cutoff)
		}
		by[c.cutoff] = append(by[c.cutoff], c)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Before(keys[j]) })
	out := make([][]colRule, 0, len(keys))
	for _, k := range keys {
		out = append(out, by[k])
	}
	return out
}

func columnsOf(g []colRule) []string {
	out := make([]string, len(g))
	for i, c := range g {
		out[i] = c.column
	}
	return out
}

func uniq(list []string) []string {
	sort.Strings(list)
	out := list[:0]
	for i, s := range list {
		if i == 0 || s != list[i-1] {
			out = append(out, s)
		}
	}
	return out
}

var (
	_ module.Module  = (*Module)(nil)
	_ module.Starter = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)
