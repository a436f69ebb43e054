package pgtest

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := connect(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	srv, err := get()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := srv.admin.QueryRowContext(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func currentDatabase(t *testing.T, db *sql.DB) string {
	t.Helper()
	var name string
	if err := db.QueryRowContext(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestNewDatabaseIsFreshAndDroppedAfterTheTest(t *testing.T) {
	var names []string
	t.Run("first", func(t *testing.T) {
		db := open(t, NewDatabase(t))
		names = append(names, currentDatabase(t, db))
		if _, err := db.ExecContext(t.Context(), "CREATE TABLE only_in_first (id int)"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("second", func(t *testing.T) {
		db := open(t, NewDatabase(t))
		names = append(names, currentDatabase(t, db))
		var n int
		if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM information_schema.tables WHERE table_name = 'only_in_first'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Error("second database sees the first one's table")
		}
		// Left open on purpose: the drop must not wait for it.
		if _, err := db.Conn(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("databases = %v, want two different ones", names)
	}
	for _, name := range names {
		if databaseExists(t, name) {
			t.Errorf("database %s still exists after its test", name)
		}
	}
}

func TestServerRunsUnprivileged(t *testing.T) {
	srv, err := get()
	if err != nil {
		t.Fatal(err)
	}
	if srv.proc == nil {
		t.Skipf("using the server of %s", EnvURL)
	}
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(srv.proc.cmd.Process.Pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("no Uid line in\n%s", status)
	}
	want := strconv.Itoa(os.Geteuid())
	if want == "0" {
		want = strconv.Itoa(nobody)
	}
	if string(m[1]) != want {
		t.Errorf("postgres runs as uid %s, want %s", m[1], want)
	}
}

// TestExternalServer points a second server value at the running one, as
// STEWARD_TEST_POSTGRES_URL would.
func TestExternalServer(t *testing.T) {
	srv, err := get()
	if err != nil {
		t.Fatal(err)
	}
	ext, err := external(srv.databaseURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer ext.close()
	var name string
	t.Run("db", func(t *testing.T) {
		db := open(t, ext.newDatabase(t))
		name = currentDatabase(t, db)
	})
	if name == "" || databaseExists(t, name) {
		t.Errorf("database %q was not created and dropped on the external server", name)
	}
}

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	tests := []struct {
		name     string
		testName string
		prefix   string
	}{
		{name: "plain", testName: "TestUsers", prefix: "t_testusers_"},
		{name: "subtest", testName: "TestUsers/sqlite/Créer-1", prefix: "t_testusers_sqlite_cr_er_1_"},
		{name: "long", testName: strings.Repeat("TestVeryLongName", 10), prefix: "t_testverylongname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := databaseName(tt.testName), databaseName(tt.testName)
			for _, n := range []string{a, b} {
				if !valid.MatchString(n) {
					t.Errorf("%q is not a plain PostgreSQL identifier of at most 63 bytes", n)
				}
				if !strings.HasPrefix(n, tt.prefix) {
					t.Errorf("%q does not start with %q", n, tt.prefix)
				}
			}
			if a == b {
				t.Errorf("two calls gave the same name %q", a)
			}
		})
	}
}

func TestBinaries(t *testing.T) {
	exe := func(t *testing.T, dir string, names ...string) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	tests := []struct {
		name       string
		setup      func(t *testing.T, tmp string) (pathEnv, root string)
		wantDir    string // relative to tmp; "" wants an error
		wantErrHas string
	}{
		{
			name: "on PATH",
			setup: func(t *testing.T, tmp string) (string, string) {
				exe(t, filepath.Join(tmp, "root", "15", "bin"), "initdb", "postgres")
				return filepath.Join(tmp, "empty") + ":" + exe(t, filepath.Join(tmp, "bin"), "initdb", "postgres"), filepath.Join(tmp, "root")
			},
			wantDir: "bin",
		},
		{
			name: "Debian folder, newest version with both",
			setup: func(t *testing.T, tmp string) (string, string) {
				exe(t, filepath.Join(tmp, "root", "9.6", "bin"), "initdb", "postgres")
				exe(t, filepath.Join(tmp, "root", "15", "bin"), "initdb", "postgres")
				exe(t, filepath.Join(tmp, "root", "16", "bin"), "initdb") // incomplete
				return exe(t, filepath.Join(tmp, "bin"), "initdb"), filepath.Join(tmp, "root")
			},
			wantDir: "root/15/bin",
		},
		{
			name: "not executable",
			setup: func(t *testing.T, tmp string) (string, string) {
				dir := exe(t, filepath.Join(tmp, "bin"), "initdb", "postgres")
				if err := os.Chmod(filepath.Join(dir, "postgres"), 0o644); err != nil {
					t.Fatal(err)
				}
				return dir, filepath.Join(tmp, "root")
			},
			wantErrHas: "apt-get install postgresql",
		},
		{
			name: "nowhere",
			setup: func(t *testing.T, tmp string) (string, string) {
				return "", filepath.Join(tmp, "root")
			},
			wantErrHas: "apt-get install postgresql",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			pathEnv, root := tt.setup(t, tmp)
			initdb, postgres, err := binaries(pathEnv, root)
			if tt.wantDir == "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrHas) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErrHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(tmp, tt.wantDir)
			if initdb != filepath.Join(dir, "initdb") || postgres != filepath.Join(dir, "postgres") {
				t.Errorf("got %s and %s, want both in %s", initdb, postgres, dir)
			}
		})
	}
}

func TestRemoveStale(t *testing.T) {
	tmp := t.TempDir()
	// The pid of a process that has ended.
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(done.Process.Pid)
	self := strconv.Itoa(os.Getpid())

	dirs := []struct {
		name  string
		owner string // "" writes no owner file
		pm    string // postmaster.pid content; "" writes none
		kept  bool
	}{
		{name: "owner gone", owner: dead, kept: false},
		{name: "owner running", owner: self, kept: true},
		{name: "owner gone, postgres running", owner: dead, pm: self + "\n/data\n", kept: true},
		{name: "being created", kept: true},
	}
	for i, d := range dirs {
		dir := filepath.Join(tmp, dirPrefix+strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if d.owner != "" {
			if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(d.owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if d.pm != "" {
			if err := os.WriteFile(filepath.Join(dir, "data", "postmaster.pid"), []byte(d.pm), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	other := filepath.Join(tmp, "unrelated")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}

	removeStale(tmp)

	for i, d := range dirs {
		_, err := os.Stat(filepath.Join(tmp, dirPrefix+strconv.Itoa(i)))
		if kept := err == nil; kept != d.kept {
			t.Errorf("%s: kept = %v, want %v", d.name, kept, d.kept)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("an unrelated folder was touched: %v", err)
	}
}
