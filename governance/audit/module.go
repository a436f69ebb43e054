// Package audit serves the DPO's view of Steward over HTTP: the data map
// now, and the audit report as the governance checks grow. Every route asks
// the access policy for the audit action on the categories it reveals, so
// only roles the policy grants (dpo, admin) reach it.
package audit

import (
	"context"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
)

// Deps is what the module needs, handed in by cmd/steward.
type Deps struct {
	Guard *authz.Guard
	// DataMap builds the current data map from the live stores.
	DataMap func(ctx context.Context) (*datamap.Map, []datamap.Problem, error)
}

// Module is the audit module.
type Module struct {
	deps Deps
}

// New returns the audit module.
func New(deps Deps) (*Module, error) {
	if deps.Guard == nil || deps.DataMap == nil {
		return nil, fmt.Errorf("audit: Guard and DataMap are required")
	}
	return &Module{deps: deps}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "audit" }

// Models implements module.Module; the audit stores nothing of its own yet.
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
}

func (m *Module) dataMap(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	dm, problems, err := m.deps.DataMap(ctx)
	if err != nil {
		return fmt.Errorf("build data map: %w", err)
	}
	cats := make([]string, 0, len(dm.Categories))
	for k := range dm.Categories {
		cats = append(cats, k)
	}
	d, err := m.deps.Guard.Check(ctx, p, authz.ActionAudit, "", cats)
	if err != nil {
		return err
	}
	// The map shows every column, so a role that may audit only part of
	// it may not see it at all.
	if len(d.Redact) > 0 {
		return errs.E(errs.ErrForbidden, "your role may not audit every data category")
	}
	if problems == nil {
		problems = []datamap.Problem{}
	}
	return c.JSON(DataMapResponse{Map: dm, Problems: problems})
}

var _ module.Module = (*Module)(nil)
