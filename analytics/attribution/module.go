package attribution

import (
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
)

// Options are what the module needs.
type Options struct {
	// Warehouse holds the events.
	Warehouse warehouse.Warehouse
	// Guard asks the access policy whether a caller may see a report.
	Guard *authz.Guard
	// Lookback is how far before a conversion a touch still counts; zero
	// means DefaultLookback.
	Lookback time.Duration
	// Logger receives the module's log lines.
	Logger *slog.Logger
}

// Module serves GET /v1/analytics/attribution.
type Module struct {
	wh       warehouse.Warehouse
	guard    *authz.Guard
	lookback time.Duration
	log      *slog.Logger
}

// New returns the module.
func New(opts Options) (*Module, error) {
	if opts.Warehouse == nil {
		return nil, errors.New("attribution: a warehouse is required")
	}
	if opts.Guard == nil {
		return nil, errors.New("attribution: a guard is required")
	}
	if opts.Lookback == 0 {
		opts.Lookback = DefaultLookback
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Lookback < time.Hour || opts.Lookback > 365*24*time.Hour {
		return nil, errors.New("attribution: the lookback window is between one hour and 365 days")
	}
	return &Module{wh: opts.Warehouse, guard: opts.Guard, lookback: opts.Lookback, log: opts.Logger}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "attribution" }

// Models implements module.Module: the module stores nothing of its own.
func (m *Module) Models() []any { return nil }

// Query is the query string of GET /v1/analytics/attribution.
type Query struct {
	From       string `query:"from"`
	To         string `query:"to"`
	Model      string `query:"model"`
	GroupBy    string `query:"group_by"`
	Conversion string `query:"conversion"`
}

// Mount implements module.Module.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method:  fiber.MethodGet,
		Path:    "/v1/analytics/attribution",
		Summary: "Attribute conversions and revenue to sources, mediums, campaigns, channels or landing pages",
		Description: "Credits each conversion (an event whose type or name is `conversion`, default `purchase`) " +
			"in [from, to) to the page views of the same visitor, and of the same account when known, in the " +
			"lookback window before it (30 days by default) whose `group_by` value is known. `first_touch` " +
			"credits the earliest, `last_touch` (default) the latest, `linear` splits one conversion equally. " +
			"Conversions without such a touch go to `(direct)`. Rows hold one group in one currency; revenue is " +
			"a decimal string and is never summed across currencies. Only consented events are ever stored, so " +
			"the report covers consented data only.",
		Tag:       "analytics",
		Auth:      true,
		Query:     Query{},
		Responses: map[int]any{200: Report{}, 400: nil, 403: nil},
	}, m.report)
}

// report handles GET /v1/analytics/attribution.
func (m *Module) report(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	q := Query{
		From: c.Query("from"), To: c.Query("to"), Model: c.Query("model"),
		GroupBy: c.Query("group_by"), Conversion: c.Query("conversion"),
	}
	req, err := Parse(q.From, q.To, q.Model, q.GroupBy, q.Conversion)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := m.guard.Check(ctx, p, authz.ActionList, "", Categories(req.GroupBy)); err != nil {
		return err
	}
	req.Lookback = m.lookback
	rep, err := Run(ctx, m.wh, req)
	if err != nil {
		return err
	}
	return c.JSON(rep)
}

var _ module.Module = (*Module)(nil)
