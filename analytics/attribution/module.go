package attribution

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

// Defaults of the module's limits.
const (
	DefaultMaxQueryTime   = 10 * time.Second
	DefaultMaxQueryMemory = 512 << 20
	DefaultMaxConcurrent  = 2
	// DefaultMinGroupSize is the number of distinct people a row needs
	// when the policy data names none.
	DefaultMinGroupSize = 10
)

// refundMargin widens the period Refunds is asked about: an order is
// placed at checkout, before the purchase event its payment sends, which
// may arrive up to two days late.
const refundMargin = 7 * 24 * time.Hour

// RawCategories are the categories whose reading makes a caller exempt
// from folding small groups: the account and visitor ids every report is
// built on. A role the access policy lets read both (by default dpo and
// admin) can already see each person's events, so folding would hide
// nothing from it.
var RawCategories = []string{"user.unique_id", "user.unique_id.analytics_id"}

// Config configures the module. The zero value works.
type Config struct {
	// Lookback is how far before a conversion a touch counts when a
	// request names no lookback; zero means DefaultLookback.
	Lookback time.Duration
	// MaxSpan is the longest period one report covers; zero means
	// DefaultMaxSpan. At most MaxSpanLimit.
	MaxSpan time.Duration
	// MaxQueryTime stops a report's query that runs longer; zero means
	// DefaultMaxQueryTime.
	MaxQueryTime time.Duration
	// MaxQueryMemory stops a report's query that needs more bytes; zero
	// means DefaultMaxQueryMemory.
	MaxQueryMemory int64
	// MaxConcurrent is how many reports may run at once; past it a
	// request is refused with 429. Zero means DefaultMaxConcurrent.
	MaxConcurrent int
	// MinGroupSize is how many distinct people a row needs to be shown
	// on its own; smaller rows are folded into "(other)". Zero means the
	// value of the policy data (analytics.min_group_size in
	// policies/data/processing.json), or DefaultMinGroupSize when it has
	// none. 1 folds nothing.
	MinGroupSize int
}

// Deps are what the module needs from the rest of Steward.
type Deps struct {
	// Warehouse holds the events. Required.
	Warehouse warehouse.Warehouse
	// Guard asks the access policy whether a caller may see a report.
	// Required.
	Guard *authz.Guard
	// Refunds, when set, returns the refunds recorded so far on orders
	// placed in [from, to); they are netted out of the revenue of the
	// purchase conversions that name their order.
	Refunds func(ctx context.Context, from, to time.Time) ([]Refund, error)
	// Logger receives the module's log lines; nil discards them.
	Logger *slog.Logger
}

// Module serves GET /v1/analytics/attribution and computes the reports of
// `steward analytics attribution`, so that both give the same numbers
// under the same limits.
type Module struct {
	wh       warehouse.Warehouse
	guard    *authz.Guard
	lookback time.Duration
	maxSpan  time.Duration
	limits   Limits
	minGroup int
	refunds  func(ctx context.Context, from, to time.Time) ([]Refund, error)
	// slots holds one token per report running.
	slots chan struct{}
	log   *slog.Logger
}

// New returns the module.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.Warehouse == nil {
		return nil, errors.New("attribution: a warehouse is required")
	}
	if deps.Guard == nil {
		return nil, errors.New("attribution: a guard is required")
	}
	if cfg.Lookback == 0 {
		cfg.Lookback = DefaultLookback
	}
	if cfg.MaxSpan == 0 {
		cfg.MaxSpan = DefaultMaxSpan
	}
	if cfg.MaxQueryTime == 0 {
		cfg.MaxQueryTime = DefaultMaxQueryTime
	}
	if cfg.MaxQueryMemory == 0 {
		cfg.MaxQueryMemory = DefaultMaxQueryMemory
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	defaults.Logger(&deps.Logger)
	switch {
	case cfg.Lookback < minLookback || cfg.Lookback > maxLookback:
		return nil, errors.New("attribution: the lookback window is between one hour and 365 days")
	case cfg.MaxSpan < 24*time.Hour || cfg.MaxSpan > MaxSpanLimit:
		return nil, fmt.Errorf("attribution: the longest report span is between one day and %s days", days(MaxSpanLimit))
	case cfg.MaxQueryTime < 0 || cfg.MaxQueryMemory < 0 || cfg.MaxConcurrent < 0 || cfg.MinGroupSize < 0:
		return nil, errors.New("attribution: limits cannot be negative")
	}
	if cfg.MinGroupSize == 0 {
		k, err := PolicyMinGroupSize()
		if err != nil {
			return nil, fmt.Errorf("attribution: %w", err)
		}
		cfg.MinGroupSize = k
	}
	return &Module{
		wh: deps.Warehouse, guard: deps.Guard, lookback: cfg.Lookback, maxSpan: cfg.MaxSpan,
		limits:   Limits{MaxTime: cfg.MaxQueryTime, MaxMemory: cfg.MaxQueryMemory},
		minGroup: cfg.MinGroupSize, refunds: deps.Refunds,
		slots: make(chan struct{}, cfg.MaxConcurrent), log: deps.Logger,
	}, nil
}

// PolicyMinGroupSize returns the minimum group size of the policy data,
// analytics.min_group_size in policies/data/processing.json (a technical
// measure of the record of processing), or DefaultMinGroupSize when the
// file names none.
func PolicyMinGroupSize() (int, error) {
	raw, err := policies.ProcessingFacts()
	if err != nil {
		return 0, err
	}
	var facts struct {
		Analytics struct {
			MinGroupSize *int `json:"min_group_size"`
		} `json:"analytics"`
	}
	if err := json.Unmarshal(raw, &facts); err != nil {
		return 0, fmt.Errorf("read analytics.min_group_size of the processing facts: %w", err)
	}
	k := facts.Analytics.MinGroupSize
	switch {
	case k == nil:
		return DefaultMinGroupSize, nil
	case *k < 1:
		return 0, errors.New("analytics.min_group_size of the processing facts must be at least 1")
	}
	return *k, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "attribution" }

// Models implements module.Module: the module stores nothing of its own.
func (m *Module) Models() []any { return nil }

// MaxSpan returns the longest period one report may cover.
func (m *Module) MaxSpan() time.Duration { return m.maxSpan }

// Lookback returns the lookback window of a request that names none.
func (m *Module) Lookback() time.Duration { return m.lookback }

// Access says who asks for a report and whether small groups are shown.
type Access struct {
	// Caller names the caller in the log: a role, or "cli".
	Caller string
	// Raw shows groups of any size. The HTTP route sets it for roles the
	// access policy lets read RawCategories; the command line for
	// --raw.
	Raw bool
	// Reason is why a raw report is needed, for the log.
	Reason string
}

// Report computes the report req asks for under the module's limits,
// folding rows of fewer than the minimum group size of distinct people
// into "(other)" unless a.Raw. req is checked with Validate against the
// module's MaxSpan; a zero Lookback takes the module's.
//
// At most MaxConcurrent reports run at once; one more is refused at once
// with errs.ErrRateLimited rather than queued, because the engine cannot
// stop a query whose client went away, and a queue would only pile up
// work nobody waits for. A query stopped by its time or memory limit is
// errs.ErrUnavailable with a detail that says how to narrow it.
func (m *Module) Report(ctx context.Context, req Request, a Access) (Report, error) {
	if req.Lookback == 0 {
		req.Lookback = m.lookback
	}
	if err := req.Validate(m.maxSpan); err != nil {
		return Report{}, err
	}
	release, err := m.acquire()
	if err != nil {
		return Report{}, err
	}
	defer release()
	var refunds []Refund
	if m.refunds != nil {
		refunds, err = m.refunds(ctx, req.From.Add(-refundMargin), req.To.Add(24*time.Hour))
		if err != nil {
			return Report{}, fmt.Errorf("attribution refunds: %w", err)
		}
	}
	var rep Report
	err = m.limited(ctx, func(ctx context.Context) (err error) {
		rep, err = Run(ctx, m.wh, req, RunOptions{Refunds: refunds, Limits: m.limits})
		return err
	})
	if err != nil {
		return Report{}, err
	}
	small := 0
	for _, r := range rep.Rows {
		if r.owners < m.minGroup {
			small++
		}
	}
	if a.Raw {
		rep.Raw = true
		// The line names the caller's role and the report, never a
		// person, a group value or the reason's subject.
		m.log.InfoContext(ctx, "attribution report shows small groups",
			slog.String("caller", a.Caller), slog.String("reason", a.Reason),
			slog.String("model", req.Model), slog.String("group_by", req.GroupBy),
			slog.Time("from", req.From), slog.Time("to", req.To),
			slog.Int("min_group_size", m.minGroup), slog.Int("small_rows", small))
		return rep, nil
	}
	rep.fold(m.minGroup)
	return rep, nil
}

// Series counts the conversions of req's period per day, or per week
// when the period is longer than SeriesWeeklyAfter, under the module's
// limits and its count of reports in flight, like Report. req is checked
// as Report checks it. The counts are those of every model and every
// grouping (see RunSeries), so a caller that may see req's report may see
// them.
func (m *Module) Series(ctx context.Context, req Request) (Series, error) {
	if req.Lookback == 0 {
		req.Lookback = m.lookback
	}
	if err := req.Validate(m.maxSpan); err != nil {
		return Series{}, err
	}
	release, err := m.acquire()
	if err != nil {
		return Series{}, err
	}
	defer release()
	var s Series
	err = m.limited(ctx, func(ctx context.Context) (err error) {
		s, err = RunSeries(ctx, m.wh, req, m.limits)
		return err
	})
	return s, err
}

// acquire takes a slot for one query, or refuses at once with
// errs.ErrRateLimited when MaxConcurrent are running (see Report).
func (m *Module) acquire() (release func(), err error) {
	select {
	case m.slots <- struct{}{}:
		return func() { <-m.slots }, nil
	default:
		return nil, errs.Retry(errs.ErrRateLimited,
			fmt.Sprintf("%d attribution reports are running, the most this server runs at once; try again shortly.", cap(m.slots)),
			m.retryAfter())
	}
}

// limited runs query under the module's time limit, and turns a query
// stopped by one of the limits into errs.ErrUnavailable with a detail that
// says how to narrow it.
func (m *Module) limited(ctx context.Context, query func(ctx context.Context) error) error {
	// A server backend stops the query when the context ends; the
	// embedded engine cannot, and its own max_execution_time ends it.
	qctx, cancel := context.WithTimeout(ctx, m.limits.MaxTime+5*time.Second)
	defer cancel()
	err := query(qctx)
	if errors.Is(err, ErrLimit) || (err != nil && errors.Is(qctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil) {
		return &errs.Error{
			Kind: errs.ErrUnavailable,
			Detail: fmt.Sprintf("This report needs more than the %s or %d MiB one report may use. "+
				"Narrow the period (from, to), group by one dimension, or shorten the lookback window.",
				m.limits.MaxTime, m.limits.MaxMemory>>20),
			Err: err,
		}
	}
	return err
}

// retryAfter is how long a refused report should wait: a running report
// ends within its time limit.
func (m *Module) retryAfter() time.Duration {
	return time.Duration(math.Ceil(m.limits.MaxTime.Seconds())) * time.Second
}

// Query is the query string of GET /v1/analytics/attribution.
type Query struct {
	From         string `query:"from"`
	To           string `query:"to"`
	Model        string `query:"model"`
	GroupBy      string `query:"group_by"`
	Conversion   string `query:"conversion"`
	LookbackDays string `query:"lookback_days"`
	HalfLifeDays string `query:"half_life_days"`
	Format       string `query:"format"`
}

// Mount implements module.Module.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method:  fiber.MethodGet,
		Path:    "/v1/analytics/attribution",
		Summary: "Attribute conversions and revenue to sources, mediums, campaigns, channels or landing pages",
		Description: "Credits each conversion in [from, to) to the visits of the same person (the identity rule " +
			"of docs/policies.md) that began in the lookback window before it (`lookback_days`, 30 by default); a " +
			"visit is a session, however many pages it showed, and counts from its first page view. `conversion` is " +
			"`purchase` (default), `signup`, or the name of a custom conversion sent with " +
			"window.steward.conversion(name, value, currency). Models: `first_touch`, `last_touch` (default), " +
			"`last_non_direct` (the last touch with a source or medium), `linear`, `position_based` (40/20/40), " +
			"`time_decay` (half life `half_life_days`, 7 by default). `group_by` is one of source, medium, campaign, " +
			"channel, landing_page, or two of them joined by a comma; each row's `groups` holds the values and " +
			"`group` joins them with \" / \". Conversions without a touch, and touches without a value for the " +
			"dimension, go to `(direct)`. Rows hold one group in one currency; revenue is a decimal string, net of " +
			"refunds for purchases that name their order, and is never summed across currencies. A row credited " +
			"by fewer than `min_group_size` distinct people is folded into an `(other)` row of its currency " +
			"(`folded` counts them), except for roles that may read account and visitor ids. `format=csv` " +
			"answers the rows as CSV. Only consented events are ever stored, so the report covers consented " +
			"data only. 429 when too many reports run; 503 when a report needs more time or memory than allowed.",
		Tag:       "analytics",
		Auth:      true,
		Query:     Query{},
		Responses: map[int]any{200: Report{}, 400: nil, 403: nil, 429: nil, 503: nil},
	}, m.report)
}

// report handles GET /v1/analytics/attribution.
func (m *Module) report(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	format := c.Query("format", "json")
	if format != "json" && format != "csv" {
		return errs.Invalid("format", "oneof", "format must be json or csv")
	}
	req, err := m.Parse(Params{
		From: c.Query("from"), To: c.Query("to"), Model: c.Query("model"), GroupBy: c.Query("group_by"),
		Conversion: c.Query("conversion"), LookbackDays: c.Query("lookback_days"),
		HalfLifeDays: c.Query("half_life_days"),
	})
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	a, err := m.AccessFor(ctx, p, req)
	if err != nil {
		return err
	}
	rep, err := m.Report(ctx, req, a)
	if err != nil {
		return err
	}
	if format == "csv" {
		var buf bytes.Buffer
		if err := WriteCSV(&buf, rep); err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		return c.Send(buf.Bytes())
	}
	return c.JSON(rep)
}

// Parse reads a request from its text parameters as the route does: a
// report spans at most the module's MaxSpan, and a request that names no
// lookback takes the module's.
func (m *Module) Parse(p Params) (Request, error) {
	if p.LookbackDays == "" {
		p.LookbackDays = days(m.lookback)
	}
	return Parse(p, m.maxSpan)
}

// AccessFor asks the access policy whether p may see the report req asks
// for, and returns the Access the route runs it with: small groups are
// shown on their own only to a role the policy lets read RawCategories.
// A role that may not list the categories of req's dimensions gets
// errs.ErrForbidden. Every caller acting for a signed-in person (the
// route, the console) asks here, so each shows the same report.
func (m *Module) AccessFor(ctx context.Context, p authz.Principal, req Request) (Access, error) {
	if _, err := m.guard.Check(ctx, p, authz.ActionList, "", Categories(req.Dimensions)); err != nil {
		return Access{}, err
	}
	raw, err := m.mayReadRaw(ctx, p)
	if err != nil {
		return Access{}, err
	}
	return Access{Caller: p.Role, Raw: raw, Reason: "role may read account and visitor ids"}, nil
}

// mayReadRaw asks the access policy whether p may read RawCategories
// without redaction.
func (m *Module) mayReadRaw(ctx context.Context, p authz.Principal) (bool, error) {
	d, err := m.guard.Check(ctx, p, authz.ActionRead, "", RawCategories)
	switch {
	case errs.Kind(err) == errs.ErrForbidden:
		return false, nil
	case err != nil:
		return false, err
	}
	return d.Allow && len(d.Redact) == 0, nil
}

var _ module.Module = (*Module)(nil)
