package audit

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

// roleHeader stands in for the accounts module's session and token
// authentication, which is tested there; here only the role matters.
type roleHeader struct{}

func (roleHeader) Authenticate(c *fiber.Ctx) (authz.Principal, error) {
	role := c.Get("X-Test-Role")
	if role == "" {
		return authz.Principal{}, authz.ErrNoCredentials
	}
	if !authz.ValidRole(role) {
		return authz.Principal{}, errs.E(errs.ErrUnauthenticated, "unknown role")
	}
	return authz.Principal{UserID: "u_" + role, Role: role}, nil
}

func TestDataMapRoute(t *testing.T) {
	ctx := context.Background()
	engine, err := policies.New(ctx, policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tax := engine.Taxonomy()
	email := tax["user.contact.email"]
	email.Key = "user.contact.email"
	ops := tax["system.operations"]
	ops.Key = "system.operations"
	dm := &datamap.Map{
		Revision:   engine.Revision(),
		Stores:     map[string]string{"sql": "sqlite"},
		Categories: map[string]policies.Category{email.Key: email, ops.Key: ops},
		Entries: []datamap.Entry{
			{Field: datamap.Field{Store: "sql", Table: "users", Column: "email", Category: email.Key}},
			{Field: datamap.Field{Store: "sql", Table: "users", Column: "id", Category: ops.Key}},
		},
	}
	mod, err := New(Deps{
		Guard:   authz.NewGuard(engine),
		DataMap: func(context.Context) (*datamap.Map, []datamap.Problem, error) { return dm, nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := web.New(web.Options{OpenAPI: doc})
	app.Use(authz.Middleware(roleHeader{}))
	mod.Mount(app, doc)

	tests := []struct {
		role   string
		status int
	}{
		{"", 401},
		{authz.RoleUser, 403},
		{authz.RoleSupport, 403},
		{authz.RoleAnalyst, 403},
		{authz.RoleDPO, 200},
		{authz.RoleAdmin, 200},
	}
	for _, tt := range tests {
		t.Run("role "+tt.role, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/audit/datamap", nil)
			if tt.role != "" {
				req.Header.Set("X-Test-Role", tt.role)
			}
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 200 && resp.Header.Get("Content-Type") != web.ContentTypeProblem {
				t.Fatalf("refusal is %s, want problem+json", resp.Header.Get("Content-Type"))
			}
		})
	}
	if missing := web.UndocumentedRoutes(app, doc); len(missing) > 0 {
		t.Fatalf("undocumented: %v", missing)
	}
}
