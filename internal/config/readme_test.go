package config

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeDocumentsEverySetting keeps the README's configuration table
// true: every setting appears in one row with its flag and default.
func TestReadmeDocumentsEverySetting(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			continue
		}
		env := strings.Trim(strings.TrimSpace(cells[2]), "`")
		if strings.HasPrefix(env, "STEWARD_") {
			rows[env] = line
		}
	}
	for _, s := range Settings() {
		t.Run(s.Env, func(t *testing.T) {
			row, ok := rows[s.Env]
			if !ok {
				t.Fatalf("README has no configuration row for %s", s.Env)
			}
			if !strings.Contains(row, "`--"+s.Flag+"`") {
				t.Errorf("README row for %s does not name the flag --%s: %s", s.Env, s.Flag, row)
			}
			if s.Default != "" && !strings.Contains(row, "`"+s.Default+"`") {
				t.Errorf("README row for %s does not show the default %q: %s", s.Env, s.Default, row)
			}
		})
	}
}
