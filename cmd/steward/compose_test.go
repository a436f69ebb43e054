package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/stewardhq/steward/internal/config"
)

// TestComposeCarriesEveryRequiredSetting loads the production settings of
// compose.yaml as the container would get them, with the variables an
// operator must supply filled in: the configuration must be complete and
// valid, or `docker compose up` would stop at once.
func TestComposeCarriesEveryRequiredSetting(t *testing.T) {
	raw, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	env := compose.Services["steward"].Environment
	if env["STEWARD_ENV"] != config.EnvProduction {
		t.Fatalf("compose runs steward with STEWARD_ENV=%q, want production", env["STEWARD_ENV"])
	}
	// ${NAME:?message} must come from the operator; ${NAME:-default}
	// falls back to its default.
	required := regexp.MustCompile(`^\$\{([A-Z_]+):\?.+\}$`)
	fallback := regexp.MustCompile(`^\$\{([A-Z_]+):-(.*)\}$`)
	vals := map[string]string{}
	for k, v := range env {
		switch {
		case required.MatchString(v):
			vals[k] = strings.Repeat("k", 64)
		case fallback.MatchString(v):
			vals[k] = fallback.FindStringSubmatch(v)[2]
		default:
			vals[k] = v
		}
	}
	if _, _, err := config.Load("serve", nil, func(k string) string { return vals[k] }, nil); err != nil {
		t.Fatalf("compose.yaml's settings do not start a production server: %v", err)
	}
	if !required.MatchString(env["STEWARD_SIGNING_KEY"]) {
		t.Errorf("STEWARD_SIGNING_KEY must be required from the operator, not written in compose.yaml: %q", env["STEWARD_SIGNING_KEY"])
	}
}
