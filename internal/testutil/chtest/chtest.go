// Package chtest provides real ClickHouse backends for tests: the embedded
// engine, shared by every test of a test binary with a fresh migrated
// database per test, and a throwaway Debian clickhouse-server on local ports.
//
// A test package that uses either must call Main from its TestMain:
//
//	func TestMain(m *testing.M) { chtest.Main(m) }
//
// Main stops the server, removes the temporary directories and stops the
// embedded engine before the process exits. The last is not optional: under
// -race, a test binary that exits with the engine still running crashes in
// the race detector's exit checks, failing a package whose tests passed.
package chtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/warehouse"
)

// harness is the state of one test binary. It is package state because what
// it holds is per process: the embedded engine runs on one data directory per
// process, and one server serves every test of the binary.
type harness struct {
	mu sync.Mutex

	engineDir string
	libPath   string
	dbCount   int

	srv    *serverProc
	srvErr error
}

var h harness

// Main runs the tests, then stops the server and removes the temporary
// directories this package created (see Teardown). It does not return.
func Main(m *testing.M) {
	code := m.Run()
	Teardown()
	os.Exit(code)
}

// MainWith runs the tests through run, the Main of another test helper
// (sqltest.Main, for one) that stops what that helper started and returns
// the exit code, then tears down what this package started as Main does.
// It does not return.
func MainWith(m *testing.M, run func(*testing.M) int) {
	code := run(m)
	Teardown()
	os.Exit(code)
}

// Teardown stops the server and the embedded engine this package started
// and removes their directories. TestMain functions that combine several
// helpers call it after m.Run instead of using Main.
func Teardown() {
	h.mu.Lock()
	if h.srv != nil {
		if err := h.srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "chtest:", err)
		}
		h.srv = nil
	}
	// The race detector's exit checks crash while the engine still runs,
	// so stop it first, whether this package or the test itself started
	// it (stopping none is a no-op). Its error is not reported: the engine
	// returns one whenever a MergeTree table exists, although it has
	// stopped its work.
	_ = warehouse.ShutdownEngine()
	if h.engineDir != "" {
		_ = os.RemoveAll(h.engineDir)
	}
	h.mu.Unlock()
}

// LibPath finds libchdb.so: STEWARD_CHDB_LIB when set, otherwise
// .cache/chdb/libchdb.so in the module root (the folder holding go.mod,
// found by walking up from the working directory). The error says how to
// fetch the library.
func LibPath() (string, error) {
	if p := os.Getenv("STEWARD_CHDB_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("STEWARD_CHDB_LIB=%s: %w; run `make chdb` to fetch the embedded ClickHouse engine", p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; set STEWARD_CHDB_LIB to the path of libchdb.so")
		}
		dir = parent
	}
	p := filepath.Join(dir, ".cache", "chdb", "libchdb.so")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("embedded ClickHouse engine not found at %s: run `make chdb` to fetch it", p)
	}
	return p, nil
}

// EmbeddedConfig returns the configuration of the test binary's shared
// embedded engine, with no database set. It fails the test when the engine
// library is missing.
func EmbeddedConfig(t testing.TB) warehouse.Config {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.libPath == "" {
		p, err := LibPath()
		if err != nil {
			t.Fatal(err)
		}
		h.libPath = p
	}
	if h.engineDir == "" {
		dir, err := os.MkdirTemp("", "steward-chtest-engine-")
		if err != nil {
			t.Fatalf("engine data dir: %v", err)
		}
		h.engineDir = dir
	}
	return warehouse.Config{DataDir: h.engineDir, LibPath: h.libPath}
}

var nameRe = regexp.MustCompile(`[^a-z0-9]+`)

// Embedded returns a Warehouse on the shared embedded engine, in a database
// of its own that holds the migrated schema. The database is dropped and the
// Warehouse closed when the test ends.
func Embedded(t testing.TB) warehouse.Warehouse {
	t.Helper()
	cfg := EmbeddedConfig(t)
	cfg.Database = databaseName(t)
	ctx := context.Background()
	w, err := warehouse.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open embedded warehouse: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dropDatabase(ctx, w, cfg); err != nil {
			t.Errorf("drop test database %s: %v", cfg.Database, err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("close embedded warehouse: %v", err)
		}
	})
	if err := warehouse.Migrate(ctx, w, "up"); err != nil {
		t.Fatalf("migrate test database %s: %v", cfg.Database, err)
	}
	return w
}

// databaseName makes a database name unique in the process from the test's
// name, so that a leftover database can be traced to its test.
func databaseName(t testing.TB) string {
	h.mu.Lock()
	h.dbCount++
	n := h.dbCount
	h.mu.Unlock()
	base := strings.Trim(nameRe.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(base) > 40 {
		base = base[:40]
	}
	return fmt.Sprintf("t_%s_%d", base, n)
}

// dropDatabase drops the test database, through a fresh Warehouse if the
// test closed its own.
func dropDatabase(ctx context.Context, w warehouse.Warehouse, cfg warehouse.Config) error {
	drop := "DROP DATABASE IF EXISTS " + cfg.Database + " SYNC"
	err := w.Exec(ctx, drop)
	if !errors.Is(err, warehouse.ErrClosed) {
		return err
	}
	admin := cfg
	admin.Database = "default"
	aw, err := warehouse.Open(ctx, admin)
	if err != nil {
		return err
	}
	defer aw.Close()
	return aw.Exec(ctx, drop)
}
