package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

// TestEveryCommandFailsClearlyOnBrokenStores runs every command that
// opens the stores once with each store missing or unreachable: each
// exits 1 with one message naming the store, the setting to fix and, for
// the engine library, `make chdb`; none panics, and no password from a
// URL is ever printed.
func TestEveryCommandFailsClearlyOnBrokenStores(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as child processes")
	}
	tmp := t.TempDir()
	notALib := filepath.Join(tmp, "libchdb.so")
	if err := os.WriteFile(notALib, []byte("not a shared library"), 0o644); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(tmp, "a-file")
	if err := os.WriteFile(aFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	const password = "s3cretpw"
	stores := []struct {
		name string
		env  []string
		want []string
	}{
		{"engine library missing", []string{"STEWARD_CHDB_LIB=" + filepath.Join(tmp, "nowhere", "libchdb.so")},
			[]string{filepath.Join(tmp, "nowhere", "libchdb.so"), "make chdb", "STEWARD_CHDB_LIB"}},
		{"engine library not a library", []string{"STEWARD_CHDB_LIB=" + notALib},
			[]string{notALib, "make chdb", "STEWARD_CHDB_LIB"}},
		{"PostgreSQL unreachable", []string{"STEWARD_DATABASE_URL=postgres://steward:" + password + "@127.0.0.1:1/steward"},
			[]string{"PostgreSQL at postgres://steward:xxxxx@127.0.0.1:1/steward", "STEWARD_DATABASE_URL", "connection refused"}},
		{"ClickHouse server unreachable", []string{"STEWARD_CLICKHOUSE_URL=clickhouse://default:" + password + "@127.0.0.1:1/steward"},
			[]string{"ClickHouse server at clickhouse://default:xxxxx@127.0.0.1:1/steward", "STEWARD_CLICKHOUSE_URL", "connection refused"}},
		{"data dir is a file", []string{"STEWARD_DATA_DIR=" + aFile},
			[]string{aFile, "STEWARD_DATA_DIR", "not a directory"}},
	}
	commands := []string{
		"serve",
		"migrate up",
		"token create --role dpo --email dpo@example.com",
		"datamap",
		"audit",
		"dsar export --email ann@example.com --out x.zip",
		"dsar erase --email ann@example.com",
		"retention run --dry-run",
		"seed --users 1",
		"analytics attribution --from 2026-01-01 --to 2026-02-01",
	}
	for _, st := range stores {
		for _, args := range commands {
			name := strings.Fields(args)[0]
			t.Run(st.name+"/"+args, func(t *testing.T) {
				t.Parallel()
				cmd := childCmd(t, filepath.Join(t.TempDir(), "data"), args)
				cmd.Dir = t.TempDir()
				cmd.Env = append(cmd.Env, st.env...)
				code, out, errOut := runChildCmd(t, cmd, args)
				if code != 1 {
					t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out, errOut)
				}
				msg := lastLine(errOut)
				if !strings.HasPrefix(msg, "steward "+name+": ") {
					t.Fatalf("the last line of stderr is %q, want the command's error", msg)
				}
				for _, w := range st.want {
					if !strings.Contains(errOut, w) {
						t.Errorf("stderr does not say %q:\n%s", w, errOut)
					}
				}
				for _, bad := range []string{"panic", "goroutine ", password} {
					if strings.Contains(errOut+out, bad) {
						t.Errorf("output holds %q:\n%s%s", bad, out, errOut)
					}
				}
			})
		}
	}
}

// lastLine is the last non-empty line of s, or the whole error when it
// runs over several lines and its first starts with "steward ".
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "steward ") {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}

// TestOldClickHouseServerRefused starts commands against the Debian
// ClickHouse server (18.16): each stops at once naming the server's
// version and the minimum, instead of failing later on a raw syntax error.
func TestOldClickHouseServerRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as child processes")
	}
	chURL := chtest.ServerURL(t, "steward_old_server")
	// This process lowered the minimum; the children keep the real one.
	want := fmt.Sprintf("%d.%d or later", realMinServerVersion[0], realMinServerVersion[1])
	for _, args := range []string{"migrate version", "serve", "audit"} {
		t.Run(args, func(t *testing.T) {
			cmd := childCmd(t, t.TempDir(), args)
			cmd.Env = append(cmd.Env, "STEWARD_CLICKHOUSE_URL="+chURL, "STEWARD_DATABASE_URL="+pgtest.NewDatabase(t))
			code, out, errOut := runChildCmd(t, cmd, args)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out, errOut)
			}
			for _, w := range []string{"ClickHouse server 18.16", "too old", want, "STEWARD_CLICKHOUSE_URL"} {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
		})
	}
}
