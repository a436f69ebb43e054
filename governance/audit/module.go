// Package audit provides the DPO's view of Steward: the data map and the
// audit report, which checks data map coverage, retention compliance,
// privacy request deadlines, consent proof, the integrity of the admin and
// decision logs, and the record of processing. Every route asks
// the access policy for the audit action on the categories it reveals, so
// only roles the policy grants (dpo, admin) reach it.
package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/governance/retention"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
)

// Config configures the audit module. The zero value works.
type Config struct {
	// RetentionInterval is the configured time between retention runs;
	// retention.DefaultInterval when zero.
	RetentionInterval time.Duration
}

// Deps are what the module needs, handed in by cmd/steward.
type Deps struct {
	Guard *authz.Guard
	// DataMap builds the current data map from the live stores.
	DataMap func(ctx context.Context) (*datamap.Map, []datamap.Problem, error)

	// The report reads the rest; the data map route needs none of it.

	// DB is the SQL store: privacy requests, the admin and decision logs,
	// retention runs.
	DB *bun.DB
	// Policy gives the policy revision and the privacy-policy checklist.
	Policy Policy
	// Retention runs the retention rules dry, to see what is overdue.
	Retention Retention
	// Processing returns the controller's facts for the record of
	// processing activities.
	Processing func() (datamap.Processing, error)
	// Auditors are the modules with checks of their own (consent's proof
	// of every choice), listed in the report in this order.
	Auditors []module.Auditor
	// Now is the clock; tests set it. time.Now when nil.
	Now func() time.Time
}

// Module is the audit module.
type Module struct {
	cfg  Config
	deps Deps
}

// New returns the audit module.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.Guard == nil || deps.DataMap == nil {
		return nil, fmt.Errorf("audit: Guard and DataMap are required")
	}
	defaults.Positive(&cfg.RetentionInterval, retention.DefaultInterval)
	defaults.Clock(&deps.Now)
	return &Module{cfg: cfg, deps: deps}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "audit" }

// Models implements module.Module; the audit stores nothing of its own.
func (m *Module) Models() []any { return nil }

// DataMapResponse is the body of GET /v1/audit/datamap.
type DataMapResponse struct {
	*datamap.Map
	// Problems lists columns the map cannot govern; empty when covered.
	Problems []datamap.Problem `json:"problems"`
}

// Mount implements module.Module.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method:      fiber.MethodGet,
		Path:        "/v1/audit/datamap",
		Summary:     "The data map: every stored column with its category, purposes, legal basis, retention and erasure rule",
		Description: "For the dpo and admin roles (the access policy's audit action).",
		Tag:         "audit",
		Auth:        true,
		Responses:   map[int]any{200: DataMapResponse{}, 403: nil},
	}, m.dataMap)
	web.Route(r, doc, web.RouteDoc{
		Method:  fiber.MethodGet,
		Path:    "/v1/audit/report",
		Summary: "The audit report: data map coverage, retention compliance, request deadlines, consent proof, log integrity, record of processing",
		Description: "For the dpo and admin roles (the access policy's audit action). `clean` is true when no check has a finding; " +
			"warnings are allowed. Building it runs the retention rules dry, which removes nothing.",
		Tag:       "audit",
		Auth:      true,
		Responses: map[int]any{200: Report{}, 403: nil},
	}, m.report)
}

func (m *Module) dataMap(c *fiber.Ctx) error {
	dm, problems, err := m.authorize(c)
	if err != nil {
		return err
	}
	if problems == nil {
		problems = []datamap.Problem{}
	}
	return c.JSON(DataMapResponse{Map: dm, Problems: problems})
}

func (m *Module) report(c *fiber.Ctx) error {
	if _, _, err := m.authorize(c); err != nil {
		return err
	}
	rep, err := m.Report(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(rep)
}

// authorize asks the access policy whether the caller may audit every
// category of the data map, and returns the map it checked against.
func (m *Module) authorize(c *fiber.Ctx) (*datamap.Map, []datamap.Problem, error) {
	p, err := authz.Require(c)
	if err != nil {
		return nil, nil, err
	}
	ctx := c.UserContext()
	dm, problems, err := m.deps.DataMap(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("build data map: %w", err)
	}
	cats := make([]string, 0, len(dm.Categories))
	for k := range dm.Categories {
		cats = append(cats, k)
	}
	d, err := m.deps.Guard.Check(ctx, p, authz.ActionAudit, "", cats)
	if err != nil {
		return nil, nil, err
	}
	// The map and the report speak of every column, so a role that may
	// audit only part of it may see neither.
	if len(d.Redact) > 0 {
		return nil, nil, errs.E(errs.ErrForbidden, "your role may not audit every data category")
	}
	return dm, problems, nil
}

var _ module.Module = (*Module)(nil)
