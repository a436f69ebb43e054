package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
	"github.com/stewardhq/steward/internal/testutil/stripetest"
	"github.com/stewardhq/steward/internal/web"
)

// allowedOrigin is the product page origin the test server accepts
// browser calls from.
const allowedOrigin = "https://app.example.test"

// The embedded engine runs on one path per process, so every test of this
// binary shares one data dir and one server built on it.
var (
	dataDir  string
	embedded *server
)

// realMinServerVersion is warehouse.MinServerVersion before TestMain
// lowered it for this process.
var realMinServerVersion [2]uint64

func TestMain(m *testing.M) {
	if args := os.Getenv(envChildArgs); args != "" {
		os.Exit(childMain(args))
	}
	// The only ClickHouse server these machines install is Debian's 18.16,
	// far below the minimum; it is still a real native-protocol peer, so
	// the tests in this process lower the minimum to run the production
	// wiring against it. Commands run as child processes keep the real
	// minimum (TestOldClickHouseServerRefused).
	realMinServerVersion = warehouse.MinServerVersion
	warehouse.MinServerVersion = [2]uint64{18, 16}
	code := func() int {
		dir, err := os.MkdirTemp("", "steward-cmd-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		dataDir = dir
		lib, err := chtest.LibPath()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cfg := config.Defaults()
		cfg.DataDir, cfg.CHDBLib = dir, lib
		cfg.AllowedOrigins = []string{allowedOrigin}
		embedded, err = newServer(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			fmt.Fprintln(os.Stderr, "embedded server:", err)
			return 1
		}
		if err := embedded.start(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "start embedded server:", err)
			_ = embedded.close(context.Background())
			return 1
		}
		// A route that panics, to prove a panic with the engine loaded
		// answers 500 and leaves the process serving.
		embedded.app.Get("/test/panic", func(*fiber.Ctx) error {
			var m map[string]int
			m["boom"]++ // nil map write: a runtime panic
			return nil
		})
		code := m.Run()
		if err := embedded.close(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "close:", err)
			code = 1
		}
		return code
	}()
	if err := pgtest.Teardown(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	chtest.Teardown()
	stripetest.Stop()
	_ = warehouse.ShutdownEngine()
	os.Exit(code)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// ownStores opens the SQL store sqlCfg names and the warehouse database
// chDB in the test binary's engine (it runs on one path per process), and
// migrates both up, for a server a test assembles on stores of its own.
// The server closes them; dropOnCleanup drops chDB.
func ownStores(t *testing.T, sqlCfg sqlstore.Config, chDB string) *stores {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlCfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := warehouse.Open(ctx, warehouse.Config{DataDir: dataDir, LibPath: embedded.cfg.CHDBLib, Database: chDB})
	if err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	st := &stores{sql: db, warehouse: w}
	if err := st.migrateUp(ctx); err != nil {
		_ = st.close()
		t.Fatal(err)
	}
	return st
}

// dropOnCleanup closes the server srv returns when the test ends, then
// drops its warehouse database chDB from the test binary's engine.
func dropOnCleanup(t *testing.T, srv func() *server, chDB string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv().close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := embedded.stores.warehouse.Exec(ctx, "DROP DATABASE IF EXISTS "+chDB); err != nil {
			t.Errorf("drop %s: %v", chDB, err)
		}
	})
}

// mustRunChild is runChild for a command that must succeed; it returns
// the standard output.
func mustRunChild(t *testing.T, dir, args string) string {
	t.Helper()
	code, out, errOut := runChild(t, dir, args)
	if code != 0 {
		t.Fatalf("steward %s: exit %d: %s%s", args, code, errOut, out)
	}
	return out
}

// runChild runs this test binary as `steward args` on the data dir dir,
// as its own process, and returns its exit code, standard output and
// standard error.
func runChild(t *testing.T, dir, args string) (int, string, string) {
	t.Helper()
	return runChildCmd(t, childCmd(t, dir, args), args)
}

// childCmd is the command runChild runs, for a test that sets more on it
// (its working directory, more variables) before runChildCmd.
func childCmd(t *testing.T, dir, args string) *exec.Cmd {
	t.Helper()
	lib, err := chtest.LibPath()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildArgs+"="+args, "STEWARD_DATA_DIR="+dir, "STEWARD_CHDB_LIB="+lib)
	return cmd
}

// runChildCmd runs cmd, made by childCmd, and returns its exit code,
// standard output and standard error.
func runChildCmd(t *testing.T, cmd *exec.Cmd, args string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("steward %s: %v", args, err)
	return 0, "", ""
}

func loadTestConfig(t *testing.T, getenv func(string) string) config.Config {
	t.Helper()
	cfg, _, err := config.Load("test", nil, getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func get(t *testing.T, app *fiber.App, path string) (int, []byte) {
	t.Helper()
	resp, err := app.Test(httptest.NewRequest("GET", path, nil), -1)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

type healthReport struct {
	Status         string `json:"status"`
	PolicyRevision string `json:"policy_revision"`
	Checks         map[string]struct {
		Status string `json:"status"`
	} `json:"checks"`
}

func TestEmbeddedHealthz(t *testing.T) {
	status, body := get(t, embedded.app, "/healthz")
	var h healthReport
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("healthz body %s: %v", body, err)
	}
	if status != 200 || h.Status != "ok" || h.Checks["sql"].Status != "ok" || h.Checks["warehouse"].Status != "ok" {
		t.Fatalf("healthz = %d %s", status, body)
	}
	if h.PolicyRevision == "" || h.PolicyRevision != embedded.engine.Revision() {
		t.Fatalf("policy revision %q, engine has %q", h.PolicyRevision, embedded.engine.Revision())
	}
	if b := embedded.stores.warehouse.Backend(); b != warehouse.BackendEmbedded {
		t.Fatalf("warehouse backend = %s", b)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "steward.db")); err != nil {
		t.Fatalf("no SQLite file in the data dir: %v", err)
	}
}

func TestPanicWithEngineLoaded(t *testing.T) {
	for i := range 3 {
		status, body := get(t, embedded.app, "/test/panic")
		if status != 500 || !bytes.Contains(body, []byte(`"status":500`)) {
			t.Fatalf("panic %d answered %d %s, want a 500 problem", i, status, body)
		}
		// The engine still answers after the panic.
		if status, body := get(t, embedded.app, "/healthz"); status != 200 {
			t.Fatalf("after panic %d healthz = %d %s", i, status, body)
		}
	}
}

func TestEveryRouteIsDocumented(t *testing.T) {
	missing := web.UndocumentedRoutes(embedded.app, embedded.doc)
	var real []string
	for _, r := range missing {
		if !strings.Contains(r, "/test/") {
			real = append(real, r)
		}
	}
	if len(real) > 0 {
		t.Fatalf("routes without OpenAPI documentation: %v", real)
	}
	status, body := get(t, embedded.app, "/openapi.json")
	if status != 200 || !bytes.Contains(body, []byte(`"/healthz"`)) {
		t.Fatalf("openapi.json = %d %s", status, body)
	}
}

func TestSecondProcessGetsAClearMessage(t *testing.T) {
	var stderr bytes.Buffer
	env := map[string]string{"STEWARD_DATA_DIR": dataDir, "STEWARD_CHDB_LIB": embedded.cfg.CHDBLib}
	code := run(context.Background(), []string{"migrate", "version"}, io.Discard, &stderr, func(k string) string { return env[k] })
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, stderr.String())
	}
	for _, want := range []string{"in use", fmt.Sprintf("pid %d", os.Getpid()), "steward serve", "STEWARD_DATA_DIR"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("message %q does not mention %q", stderr.String(), want)
		}
	}
}

// TestProductionStores runs the same wiring on PostgreSQL and the Debian
// ClickHouse server. That server (18.16) cannot take our ClickHouse schema
// or migrate's version row, so warehouse migrations are off here; the
// schema is proven on the embedded engine.
func TestProductionStores(t *testing.T) {
	pgURL := pgtest.NewDatabase(t)
	chURL := chtest.ServerURL(t, "steward_cmd_test")
	env := map[string]string{
		"STEWARD_DATABASE_URL":   pgURL,
		"STEWARD_CLICKHOUSE_URL": chURL,
		"STEWARD_DATA_DIR":       t.TempDir(),
		"STEWARD_AUTO_MIGRATE":   "false",
		"STEWARD_CHDB_LIB":       "/nonexistent/libchdb.so",
	}
	cfg, _, err := config.Load("serve", nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	migrateSQLOnly(t, func(k string) string { return env[k] })
	srv, err := newServer(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("newServer on postgres + clickhouse server: %v", err)
	}
	defer srv.close(ctx)
	status, body := get(t, srv.app, "/healthz")
	var h healthReport
	_ = json.Unmarshal(body, &h)
	if status != 200 || h.Checks["sql"].Status != "ok" || h.Checks["warehouse"].Status != "ok" {
		t.Fatalf("healthz = %d %s", status, body)
	}
	if d := srv.stores.sql.Dialect().Name().String(); d != "pg" {
		t.Fatalf("sql dialect = %s, want pg", d)
	}
	if b := srv.stores.warehouse.Backend(); b != warehouse.BackendServer {
		t.Fatalf("warehouse backend = %s, want server", b)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, 2, "usage: steward"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"migrate without action", []string{"migrate"}, 2, "want one of up, down, version"},
		{"migrate down needs confirmation", []string{"migrate", "down"}, 2, "--yes"},
		{"bad setting named", []string{"serve", "--addr", "nope"}, 1, "STEWARD_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tt.args, io.Discard, &stderr, func(string) string { return "" })
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.want)
			}
		})
	}
}

// TestBrowserCallsOnlyFromAllowedOrigins checks the CORS answer the
// consent banner and the tracker rely on: credentials allowed for the
// configured product origin, nothing for any other.
func TestBrowserCallsOnlyFromAllowedOrigins(t *testing.T) {
	tests := []struct {
		name, origin string
		allowed      bool
	}{
		{"product origin", allowedOrigin, true},
		{"other origin", "https://evil.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("OPTIONS", "/v1/consent", nil)
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "PUT")
			req.Header.Set("Access-Control-Request-Headers", "Content-Type, X-CSRF-Token")
			resp, err := embedded.app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			got := resp.Header.Get("Access-Control-Allow-Origin")
			creds := resp.Header.Get("Access-Control-Allow-Credentials")
			if tt.allowed && (got != tt.origin || creds != "true") {
				t.Fatalf("allowed origin got Allow-Origin %q, credentials %q", got, creds)
			}
			if !tt.allowed && got != "" {
				t.Fatalf("other origin got Allow-Origin %q", got)
			}
		})
	}
}
