package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// Environment of a child process: the test binary re-executed as the
// steward command, optionally killing itself (SIGKILL, no cleanup) right
// after an erasure records step k.
const (
	envChildArgs = "STEWARD_TEST_CHILD_ARGS"
	envKillAfter = "STEWARD_TEST_KILL_AFTER_STEP"
)

// childMain runs the steward command given in envChildArgs; TestMain calls
// it instead of the tests when the variable is set.
func childMain(args string) int {
	// Like main, a stop signal ends the command's context: serve shuts
	// down gracefully on SIGTERM.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if k, err := strconv.Atoi(os.Getenv(envKillAfter)); err == nil && k > 0 {
		ctx = privacy.WithProgress(ctx, func(_ string, done, _ int) {
			if done == k {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		})
	}
	code := run(ctx, strings.Fields(args), os.Stdout, os.Stderr, os.Getenv)
	_ = warehouse.ShutdownEngine()
	return code
}

// TestErasureSurvivesKill9 kills the process running an erasure at two
// points of its plan, then runs the erasure command again: it completes,
// its verification passes, and the SQL store, read apart, holds nothing of
// the subject outside the tables the policy keeps.
func TestErasureSurvivesKill9(t *testing.T) {
	lib, err := chtest.LibPath()
	if err != nil {
		t.Fatal(err)
	}
	for _, killAt := range []int{2, 9} {
		t.Run("killed after step "+strconv.Itoa(killAt), func(t *testing.T) {
			dir := t.TempDir()
			child := func(kill int, args string) (string, error) {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(),
					envChildArgs+"="+args,
					envKillAfter+"="+strconv.Itoa(kill),
					"STEWARD_DATA_DIR="+dir,
					"STEWARD_CHDB_LIB="+lib,
				)
				out, err := cmd.Output()
				return string(out), err
			}
			if _, err := child(0, "migrate up"); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			if out, err := child(0, "seed --users 2 --events 400"); err != nil {
				t.Fatalf("seed: %v %s", err, out)
			}
			email, userID := firstUser(t, dir)

			_, err := child(killAt, "dsar erase --email "+email)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the erasure was not killed at step %d: %v", killAt, err)
			}

			out, err := child(0, "dsar erase --email "+email)
			if err != nil {
				t.Fatalf("rerun after kill -9: %v %s", err, out)
			}
			var cert privacy.Certificate
			if err := json.Unmarshal([]byte(out), &cert); err != nil {
				t.Fatalf("certificate %q: %v", out, err)
			}
			if !cert.Verification.Passed {
				t.Fatalf("verification after the rerun: %+v", cert.Verification)
			}
			kept := map[string]bool{}
			for _, tr := range cert.Tables {
				if tr.Mode == "keep" {
					kept[tr.Table] = true
				}
			}
			if n := rowsAbout(t, dir, userID, kept); n != 0 {
				t.Fatalf("%d rows still carry the subject's id in tables the policy does not keep whole", n)
			}
		})
	}
}

// firstUser reads a seeded account from the SQLite file of dir.
func firstUser(t *testing.T, dir string) (email, id string) {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(context.Background(), "SELECT email, id FROM users ORDER BY id LIMIT 1").Scan(&email, &id); err != nil {
		t.Fatal(err)
	}
	return email, id
}

// rowsAbout counts rows naming userID, read straight from the SQLite file,
// in every table with a user_id column except those the policy keeps whole
// (privacy requests, the admin log). Rows kept in part carry a pseudonym,
// not the id.
func rowsAbout(t *testing.T, dir, userID string, kept map[string]bool) int {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cols, err := sqlstore.Columns(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range cols {
		if kept[c.Table] || (c.Name != "user_id" && !(c.Table == "users" && c.Name == "id")) {
			continue
		}
		var n int
		q := "SELECT count(*) FROM " + c.Table + " WHERE " + c.Name + " = ?"
		if err := db.QueryRowContext(ctx, q, userID).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n > 0 {
			t.Logf("%s.%s: %d rows", c.Table, c.Name, n)
		}
		total += n
	}
	return total
}
