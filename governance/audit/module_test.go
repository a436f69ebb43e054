package audit

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/governance/retention"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
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
	engine := authtest.Engine(t)
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
	mod, err := New(Config{}, Deps{
		Guard:   authz.NewGuard(engine),
		DataMap: func(context.Context) (*datamap.Map, []datamap.Problem, error) { return dm, nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	checkDPOOnly(t, mod, "GET /v1/audit/datamap", 200, nil)
}

// checkDPOOnly mounts mod and sends route ("GET /v1/audit/report") as
// every role: only the DPO and admins may use it, and it answers them
// success; every refusal is problem+json, and each route is documented.
// ok, when set, checks an answer the route gave.
func checkDPOOnly(t *testing.T, mod *Module, route string, success int, ok func(t *testing.T, body io.Reader)) {
	t.Helper()
	method, path, _ := strings.Cut(route, " ")
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := web.New(web.Options{OpenAPI: doc})
	app.Use(authz.Middleware(roleHeader{}))
	mod.Mount(app, doc)
	for _, tt := range authtest.DPOOnly() {
		t.Run("role "+tt.Role, func(t *testing.T) {
			req := httptest.NewRequest(method, path, nil)
			if tt.Role != "" {
				req.Header.Set("X-Test-Role", tt.Role)
			}
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			want := tt.Status
			if want == 200 {
				want = success
			}
			if resp.StatusCode != want {
				t.Fatalf("status %d, want %d", resp.StatusCode, want)
			}
			if want != success {
				if resp.Header.Get("Content-Type") != web.ContentTypeProblem {
					t.Fatalf("refusal is %s, want problem+json", resp.Header.Get("Content-Type"))
				}
				return
			}
			if ok != nil {
				ok(t, resp.Body)
			}
		})
	}
	if missing := web.UndocumentedRoutes(app, doc); len(missing) > 0 {
		t.Fatalf("undocumented: %v", missing)
	}
}

// reportModule is the audit module over a real, migrated SQLite store and
// a real retention runner.
func reportModule(t *testing.T) (*Module, *bun.DB) {
	t.Helper()
	db := sqltest.SQLite(t)
	return reportModuleOn(t, db), db
}

// reportModuleOn is reportModule over db.
func reportModuleOn(t *testing.T, db *bun.DB) *Module {
	t.Helper()
	engine := authtest.Engine(t)
	dataMap := sqlDataMap(db, engine)
	ret, err := retention.New(retention.Config{}, retention.Deps{DB: db, DataMap: dataMap})
	if err != nil {
		t.Fatal(err)
	}
	mod, err := New(Config{}, Deps{
		Guard: authz.NewGuard(engine), DataMap: dataMap, DB: db, Policy: engine, Retention: ret,
		Auditors: []module.Auditor{moduleChecks{}},
		Processing: func() (datamap.Processing, error) {
			raw, err := policies.ProcessingFacts()
			if err != nil {
				return datamap.Processing{}, err
			}
			return datamap.ParseProcessing(raw)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

// moduleChecks stands for a module with audit checks of its own: a rule
// it keeps, and one row to look at.
type moduleChecks struct{}

func (moduleChecks) AuditChecks(context.Context) ([]module.AuditCheck, error) {
	return []module.AuditCheck{
		{Name: "module_rule", Summary: "every row keeps the rule"},
		{Name: "module_doubt", Summary: "one row to look at",
			Warnings: []module.AuditFinding{{What: "doubtful", Where: "table/2", Detail: "the row may break the rule"}}},
	}, nil
}

func TestModuleCheckLevels(t *testing.T) {
	c := moduleCheck(module.AuditCheck{Name: "rule", Summary: "s",
		Findings: []module.AuditFinding{{What: "broken", Where: "table/1"}},
		Warnings: []module.AuditFinding{{What: "doubtful", Where: "table/2"}}})
	wantStatus(t, c, StatusFinding)
	if len(c.Findings) != 2 || c.Findings[0].Level != StatusFinding || c.Findings[1].Level != StatusWarning {
		t.Fatalf("findings %+v, want a finding then a warning", c.Findings)
	}
	wantStatus(t, moduleCheck(module.AuditCheck{Name: "rule", Summary: "s"}), StatusOK)
}

func TestReport(t *testing.T) {
	ctx := context.Background()
	mod, db := reportModule(t)
	rep, err := mod.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
	}
	want := []string{CheckDataMap, CheckRetention, CheckDeadlines, CheckAdminLog, CheckDecisionLog, "module_rule", "module_doubt", CheckRecord}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("checks %v, want %v", names, want)
	}
	if rep.PolicyRevision == "" || rep.GeneratedAt.IsZero() {
		t.Fatalf("report lacks revision or time: %+v", rep)
	}
	byName := func(r Report, name string) Check {
		for _, c := range r.Checks {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no check %s", name)
		return Check{}
	}
	// The store holds no privacy request and an intact admin log.
	wantStatus(t, byName(rep, CheckDeadlines), StatusOK)
	wantStatus(t, byName(rep, CheckAdminLog), StatusOK)
	// A module's checks come with their own levels.
	wantStatus(t, byName(rep, "module_rule"), StatusOK)
	wantStatus(t, byName(rep, "module_doubt"), StatusWarning)

	now := time.Now().UTC()
	late := privacy.Request{ID: "pr_late", Type: privacy.TypeErasure, Status: privacy.StatusReceived, UserID: "u1",
		ReceivedAt: now.AddDate(0, -2, 0), DueAt: now.AddDate(0, -1, 0), UpdatedAt: now, PolicyRevision: "r"}
	if _, err := db.NewInsert().Model(&late).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err = mod.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, byName(rep, CheckDeadlines), StatusFinding)
	if rep.Clean {
		t.Fatal("a report with an overdue request is clean")
	}
}

func TestReportNeedsItsStores(t *testing.T) {
	mod, err := New(Config{}, Deps{Guard: authz.NewGuard(authtest.Engine(t)), DataMap: func(context.Context) (*datamap.Map, []datamap.Problem, error) {
		return &datamap.Map{}, nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.Report(context.Background()); err == nil {
		t.Fatal("a report without a store was made")
	}
}

func TestReportRoute(t *testing.T) {
	mod, db := reportModule(t)
	checkDPOOnly(t, mod, "GET /v1/audit/report", 200, func(t *testing.T, body io.Reader) {
		var rep Report
		if err := json.NewDecoder(body).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		// Six of the audit's own and the two of the module.
		if len(rep.Checks) != 8 {
			t.Fatalf("%d checks, want 8", len(rep.Checks))
		}
	})
	// A GET writes nothing: the retention check's preview is not kept.
	if n, err := db.NewSelect().Model((*retention.Run)(nil)).Count(t.Context()); err != nil || n != 0 {
		t.Fatalf("retention runs after the audit's GETs: %d, %v", n, err)
	}
}

// TestRuns stores runs on SQLite and PostgreSQL and reads them back, the
// report whole.
func TestRuns(t *testing.T) {
	sqltest.Dialects(t, testRuns)
}

func testRuns(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	mod := reportModuleOn(t, db)
	first, err := mod.Run(ctx, "u_dpo")
	if err != nil {
		t.Fatal(err)
	}
	var stored Run
	if err := db.NewSelect().Model(&stored).Where("id = ?", first.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if stored.ActorID != "u_dpo" || !stored.RanAt.Equal(first.RanAt) || stored.PolicyRevision == "" ||
		len(stored.Report.Checks) != 8 || stored.Status != first.Report.Status() {
		t.Fatalf("stored run %+v, want the run answered", stored)
	}
	// The counts are the report's findings by level; the module's doubt
	// is one warning.
	var findings, warnings int64
	for _, c := range stored.Report.Checks {
		for _, f := range c.Findings {
			if f.Level == StatusFinding {
				findings++
			} else {
				warnings++
			}
		}
	}
	if stored.Findings != findings || stored.Warnings != warnings || warnings == 0 {
		t.Fatalf("counts %d findings, %d warnings; the report has %d and %d", stored.Findings, stored.Warnings, findings, warnings)
	}

	now := time.Now().UTC()
	late := privacy.Request{ID: "pr_late", Type: privacy.TypeAccess, Status: privacy.StatusReceived, UserID: "u1",
		ReceivedAt: now.AddDate(0, -2, 0), DueAt: now.AddDate(0, -1, 0), UpdatedAt: now, PolicyRevision: "r"}
	if _, err := db.NewInsert().Model(&late).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := mod.Run(ctx, "u_admin")
	if err != nil {
		t.Fatal(err)
	}
	if second.Status != StatusFinding || second.Findings != first.Findings+1 {
		t.Fatalf("after an overdue request: status %s, %d findings; before %d", second.Status, second.Findings, first.Findings)
	}
	runs, err := mod.Runs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ID != second.ID || runs[1].ID != first.ID {
		t.Fatalf("runs %v, want the second then the first", runIDs(runs))
	}
	if runs, err := mod.Runs(ctx, 1); err != nil || len(runs) != 1 || runs[0].ID != second.ID {
		t.Fatalf("one run: %v, %v", runIDs(runs), err)
	}
}

func runIDs(runs []Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

func TestRunRoutes(t *testing.T) {
	mod, db := reportModule(t)
	checkDPOOnly(t, mod, "POST /v1/audit/runs", 201, func(t *testing.T, body io.Reader) {
		var run Run
		if err := json.NewDecoder(body).Decode(&run); err != nil {
			t.Fatal(err)
		}
		if (run.ActorID != "u_dpo" && run.ActorID != "u_admin") || len(run.Report.Checks) != 8 || run.ID == "" {
			t.Fatalf("run %+v", run)
		}
	})
	// The DPO's and the administrator's runs, and no refused one.
	if n, err := db.NewSelect().Model((*Run)(nil)).Count(t.Context()); err != nil || n != 2 {
		t.Fatalf("audit_runs holds %d rows (%v), want 2", n, err)
	}
	checkDPOOnly(t, mod, "GET /v1/audit/runs", 200, func(t *testing.T, body io.Reader) {
		var got RunsResponse
		if err := json.NewDecoder(body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if len(got.Runs) != 2 || !got.Runs[0].RanAt.After(got.Runs[1].RanAt) {
			t.Fatalf("runs %+v, want both, newest first", got.Runs)
		}
	})
	app := web.New(web.Options{})
	app.Use(authz.Middleware(roleHeader{}))
	mod.Mount(app, web.NewOpenAPI(web.OpenAPIInfo{}))
	for _, tt := range []struct {
		query  string
		status int
		runs   int
	}{
		{"?limit=1", 200, 1},
		{"?limit=0", 200, 2},
		{"?limit=101", 400, 0},
		{"?limit=-1", 400, 0},
		{"?limit=many", 400, 0},
	} {
		req := httptest.NewRequest("GET", "/v1/audit/runs"+tt.query, nil)
		req.Header.Set("X-Test-Role", authz.RoleDPO)
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		var got RunsResponse
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != tt.status || len(got.Runs) != tt.runs {
			t.Errorf("GET /v1/audit/runs%s: %d with %d runs, want %d with %d", tt.query, resp.StatusCode, len(got.Runs), tt.status, tt.runs)
		}
	}
}
