package sqlmigrations

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/golang-migrate/migrate/v4/source/iofs"
)

func file(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }

func TestSourceMergesAndOverrides(t *testing.T) {
	tree := fstest.MapFS{
		"common/0001_init.up.sql":     file("common 1 up"),
		"common/0001_init.down.sql":   file("common 1 down"),
		"common/0002_more.up.sql":     file("common 2 up"),
		"common/0002_more.down.sql":   file("common 2 down"),
		"sqlite/README.md":            file("notes"),
		"sqlite/0002_more.up.sql":     file("sqlite 2 up"),
		"postgres/0001_init.up.sql":   file("postgres 1 up"),
		"postgres/0001_init.down.sql": file("postgres 1 down"),
	}
	tests := []struct {
		name    string
		dialect string
		want    map[string]string // file -> body
	}{
		{
			name:    "sqlite replaces one file and keeps the rest",
			dialect: SQLite,
			want: map[string]string{
				"0001_init.up.sql":   "common 1 up",
				"0001_init.down.sql": "common 1 down",
				"0002_more.up.sql":   "sqlite 2 up",
				"0002_more.down.sql": "common 2 down",
			},
		},
		{
			name:    "postgres replaces both directions of one migration",
			dialect: Postgres,
			want: map[string]string{
				"0001_init.up.sql":   "postgres 1 up",
				"0001_init.down.sql": "postgres 1 down",
				"0002_more.up.sql":   "common 2 up",
				"0002_more.down.sql": "common 2 down",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := source(tree, tt.dialect)
			if err != nil {
				t.Fatalf("source: %v", err)
			}
			entries, err := fs.ReadDir(src, ".")
			if err != nil {
				t.Fatalf("read dir: %v", err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			wantNames := make([]string, 0, len(tt.want))
			for n := range tt.want {
				wantNames = append(wantNames, n)
			}
			slices.Sort(wantNames)
			if !slices.Equal(names, wantNames) {
				t.Errorf("listing = %v, want %v", names, wantNames)
			}
			for name, body := range tt.want {
				got, err := fs.ReadFile(src, name)
				if err != nil {
					t.Errorf("read %s: %v", name, err)
					continue
				}
				if string(got) != body {
					t.Errorf("%s = %q, want %q", name, got, body)
				}
			}
			// The overlay must behave as a proper file system, since
			// golang-migrate reads it through io/fs.
			if err := fstest.TestFS(src, wantNames...); err != nil {
				t.Errorf("fstest: %v", err)
			}
		})
	}
}

func TestSourceRejectsBadTrees(t *testing.T) {
	tests := []struct {
		name    string
		add     []string // files added to a tree holding one good migration
		wantErr string   // part of the error
	}{
		{"two names share a version number", []string{"common/0001_other.up.sql", "common/0001_other.down.sql"}, "version 1 is used by both"},
		{"same number written with other padding", []string{"common/00001_init.up.sql", "common/00001_init.down.sql"}, "version 1 is used by both"},
		{"missing down file", []string{"common/0002_more.up.sql"}, "common/0002_more.down.sql is missing"},
		{"missing up file", []string{"common/0002_more.down.sql"}, "common/0002_more.up.sql is missing"},
		{"dialect file replaces nothing", []string{"postgres/0002_pg_only.up.sql"}, "postgres/0002_pg_only.up.sql replaces nothing"},
		{"dialect file with a misspelt name replaces nothing", []string{"sqlite/0001_inti.up.sql"}, "sqlite/0001_inti.up.sql replaces nothing"},
		{"file golang-migrate would skip", []string{"common/0002_more.up.sq"}, "common/0002_more.up.sq is not named"},
		{"number without padding", []string{"postgres/2_more.up.sql"}, "postgres/2_more.up.sql is not named"},
		{"subfolder", []string{"common/old/0002_more.up.sql"}, "common/old is a folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := fstest.MapFS{
				"common/0001_init.up.sql":   file("x"),
				"common/0001_init.down.sql": file("x"),
			}
			for _, name := range tt.add {
				tree[name] = file("x")
			}
			// A mistake anywhere in the tree fails every dialect.
			for _, dialect := range []string{SQLite, Postgres} {
				_, err := source(tree, dialect)
				if err == nil {
					t.Fatalf("%s: source accepted the tree", dialect)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("%s: error %q does not say %q", dialect, err, tt.wantErr)
				}
			}
		})
	}
}

func TestSourceUnknownDialect(t *testing.T) {
	if _, err := Source("mysql"); err == nil {
		t.Fatal("Source accepted an unknown dialect")
	}
}

// TestEmbeddedMigrations checks the files the binary ships: the rules
// above hold, golang-migrate reads every version in both directions, and
// both dialects have the same versions.
func TestEmbeddedMigrations(t *testing.T) {
	versions := map[string][]uint{}
	for _, dialect := range []string{SQLite, Postgres} {
		src, err := Source(dialect)
		if err != nil {
			t.Fatalf("%s: %v", dialect, err)
		}
		drv, err := iofs.New(src, ".")
		if err != nil {
			t.Fatalf("%s: iofs: %v", dialect, err)
		}
		v, err := drv.First()
		for err == nil {
			if r, _, err := drv.ReadUp(v); err != nil {
				t.Errorf("%s: version %d up: %v", dialect, v, err)
			} else {
				_ = r.Close()
			}
			if r, _, err := drv.ReadDown(v); err != nil {
				t.Errorf("%s: version %d down: %v", dialect, v, err)
			} else {
				_ = r.Close()
			}
			versions[dialect] = append(versions[dialect], v)
			v, err = drv.Next(v)
		}
		if len(versions[dialect]) == 0 {
			t.Errorf("%s: no migrations", dialect)
		}
	}
	if !slices.Equal(versions[SQLite], versions[Postgres]) {
		t.Errorf("versions differ: sqlite %v, postgres %v", versions[SQLite], versions[Postgres])
	}
}
