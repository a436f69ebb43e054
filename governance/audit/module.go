// Package audit provides the DPO's view of Steward: the data map and the
// audit report, which checks data map coverage, retention compliance,
// privacy request deadlines, consent proof, the integrity of the admin and
// decision logs, and the record of processing; and the runs of the audit
// someone kept (audit_runs), its history. Every route asks the access
// policy for the audit action on the categories it reveals, so only roles
// the policy grants (dpo, admin) reach it.
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

// Models implements module.Module: the runs of the audit that were
// stored.
func (m *Module) Models() []any { return Models() }

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
			"warnings are allowed. Building it writes nothing: the retention check counts what is past its rule in a " +
			"preview that removes and stores nothing. `POST /v1/audit/runs` runs it and keeps it.",
		Tag:       "audit",
		Auth:      true,
		Responses: map[int]any{200: Report{}, 403: nil},
	}, m.report)
	web.Route(r, doc, web.RouteDoc{
		Method:  fiber.MethodPost,
		Path:    "/v1/audit/runs",
		Summary: "Run the audit and keep it: the report of GET /v1/audit/report, stored with who ran it and its counts",
		Description: "For the dpo and admin roles (the access policy's audit action). Answers `201` with the stored run: " +
			"its id, the account that ran it, when, the policy revision, the worst status of its checks (`ok`, " +
			"`warning` or `finding`), how many findings and warnings it had, and the report. The console's " +
			"*Run the audit now* does the same.",
		Tag:       "audit",
		Auth:      true,
		Responses: map[int]any{201: Run{}, 403: nil},
	}, m.createRun)
	web.Route(r, doc, web.RouteDoc{
		Method:      fiber.MethodGet,
		Path:        "/v1/audit/runs",
		Summary:     "The stored runs of the audit, newest first, each with its report",
		Description: "For the dpo and admin roles (the access policy's audit action). `limit` is 1 to 100; zero means 20.",
		Tag:         "audit",
		Auth:        true,
		Query:       RunsQuery{},
		Responses:   map[int]any{200: RunsResponse{}, 400: nil, 403: nil},
	}, m.listRuns)
}

// RunsQuery is the query of GET /v1/audit/runs.
type RunsQuery struct {
	// Limit is how many runs to answer, 1 to MaxRuns; zero means
	// DefaultRuns.
	Limit int `query:"limit"`
}

// DefaultRuns is how many runs GET /v1/audit/runs answers by default.
const DefaultRuns = 20

// RunsResponse is the body of GET /v1/audit/runs.
type RunsResponse struct {
	Runs []Run `json:"runs"`
}

func (m *Module) dataMap(c *fiber.Ctx) error {
	_, dm, problems, err := m.authorize(c)
	if err != nil {
		return err
	}
	if problems == nil {
		problems = []datamap.Problem{}
	}
	return c.JSON(DataMapResponse{Map: dm, Problems: problems})
}

func (m *Module) report(c *fiber.Ctx) error {
	if _, _, _, err := m.authorize(c); err != nil {
		return err
	}
	rep, err := m.Report(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(rep)
}

func (m *Module) createRun(c *fiber.Ctx) error {
	p, _, _, err := m.authorize(c)
	if err != nil {
		return err
	}
	run, err := m.Run(c.UserContext(), p.UserID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(run)
}

func (m *Module) listRuns(c *fiber.Ctx) error {
	if _, _, _, err := m.authorize(c); err != nil {
		return err
	}
	var q RunsQuery
	if err := c.QueryParser(&q); err != nil || q.Limit < 0 || q.Limit > MaxRuns {
		return errs.E(errs.ErrInvalidArgument, fmt.Sprintf("limit must be a number from 1 to %d", MaxRuns))
	}
	if q.Limit == 0 {
		q.Limit = DefaultRuns
	}
	runs, err := m.Runs(c.UserContext(), q.Limit)
	if err != nil {
		return err
	}
	return c.JSON(RunsResponse{Runs: runs})
}

// authorize asks the access policy whether the caller may audit every
// category of the data map, and returns the caller and the map it checked
// against.
func (m *Module) authorize(c *fiber.Ctx) (authz.Principal, *datamap.Map, []datamap.Problem, error) {
	p, err := authz.Require(c)
	if err != nil {
		return p, nil, nil, err
	}
	ctx := c.UserContext()
	dm, problems, err := m.deps.DataMap(ctx)
	if err != nil {
		return p, nil, nil, fmt.Errorf("build data map: %w", err)
	}
	cats := make([]string, 0, len(dm.Categories))
	for k := range dm.Categories {
		cats = append(cats, k)
	}
	d, err := m.deps.Guard.Check(ctx, p, authz.ActionAudit, "", cats)
	if err != nil {
		return p, nil, nil, err
	}
	// The map and the report speak of every column, so a role that may
	// audit only part of it may see neither.
	if len(d.Redact) > 0 {
		return p, nil, nil, errs.E(errs.ErrForbidden, "your role may not audit every data category")
	}
	return p, dm, problems, nil
}

var _ module.Module = (*Module)(nil)
