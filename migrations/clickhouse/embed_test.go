package chmigrations_test

import (
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"

	chmigrations "github.com/stewardhq/steward/migrations/clickhouse"
)

var fileRe = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$`)

// TestMigrationFiles checks what golang-migrate and the embedded driver rely
// on: numbered up/down pairs without gaps or clashes, and no ";" inside
// comments (the driver splits statements on it).
func TestMigrationFiles(t *testing.T) {
	entries, err := fs.ReadDir(chmigrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	dirs := map[int]map[string]bool{}
	for _, e := range entries {
		m := fileRe.FindStringSubmatch(e.Name())
		if m == nil {
			t.Errorf("%s: name does not match NNNN_name.up|down.sql", e.Name())
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if prev, ok := names[n]; ok && prev != m[2] {
			t.Errorf("version %d used by %s and %s", n, prev, m[2])
		}
		names[n] = m[2]
		if dirs[n] == nil {
			dirs[n] = map[string]bool{}
		}
		dirs[n][m[3]] = true

		body, err := fs.ReadFile(chmigrations.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(body), "\n") {
			if _, comment, ok := strings.Cut(line, "--"); ok && strings.Contains(comment, ";") {
				t.Errorf("%s:%d: ';' in a comment would split the statement", e.Name(), i+1)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("no migrations embedded")
	}
	for v := 1; v <= len(names); v++ {
		if !dirs[v]["up"] || !dirs[v]["down"] {
			t.Errorf("version %d lacks an up or a down file (versions must run 1..n without gaps)", v)
		}
	}
}
