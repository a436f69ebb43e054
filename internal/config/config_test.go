package config

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr []string // substrings the error must contain; nil = no error
		check   func(t *testing.T, c Config)
	}{
		{
			name: "embedded defaults",
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:8080" || c.DataDir != "./var" || !c.EmbeddedSQL() || !c.EmbeddedWarehouse() {
					t.Fatalf("defaults = %+v", c)
				}
			},
		},
		{
			name: "environment selects production stores",
			env: map[string]string{
				"STEWARD_DATABASE_URL":   "postgres://u:p@db:5432/steward",
				"STEWARD_CLICKHOUSE_URL": "clickhouse://ch:9000/steward",
				"STEWARD_CHDB_LIB":       "",
			},
			check: func(t *testing.T, c Config) {
				if c.EmbeddedSQL() || c.EmbeddedWarehouse() {
					t.Fatalf("stores still embedded: %+v", c)
				}
			},
		},
		{
			name: "flags win over environment",
			args: []string{"--addr", "127.0.0.1:9999", "--shutdown-timeout", "3s"},
			env:  map[string]string{"STEWARD_ADDR": "127.0.0.1:7777"},
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:9999" || c.ShutdownTimeout != 3*time.Second {
					t.Fatalf("got %+v", c)
				}
			},
		},
		{
			name:    "bad address names the setting and the fix",
			env:     map[string]string{"STEWARD_ADDR": "8080"},
			wantErr: []string{"STEWARD_ADDR", "host:port"},
		},
		{
			name:    "mysql url refused",
			env:     map[string]string{"STEWARD_DATABASE_URL": "mysql://x/y"},
			wantErr: []string{"STEWARD_DATABASE_URL", "postgres://"},
		},
		{
			name:    "http clickhouse url refused",
			env:     map[string]string{"STEWARD_CLICKHOUSE_URL": "http://ch:8123"},
			wantErr: []string{"STEWARD_CLICKHOUSE_URL", "clickhouse://"},
		},
		{
			name:    "dev refused in production",
			args:    []string{"--dev"},
			env:     map[string]string{"STEWARD_ENV": "production"},
			wantErr: []string{"--dev", "production"},
		},
		{
			name:    "production needs a signing key",
			env:     map[string]string{"STEWARD_ENV": "production"},
			wantErr: []string{"STEWARD_SIGNING_KEY", "openssl rand"},
		},
		{
			name:    "short signing key",
			env:     map[string]string{"STEWARD_SIGNING_KEY": "short"},
			wantErr: []string{"STEWARD_SIGNING_KEY", "32 characters"},
		},
		{
			name: "secure cookies follow the environment unless set",
			env:  map[string]string{"STEWARD_ENV": "production", "STEWARD_SIGNING_KEY": strings.Repeat("k", 32)},
			check: func(t *testing.T, c Config) {
				if !c.SecureCookies() {
					t.Fatal("production cookies not Secure")
				}
				c.CookieSecure = "false"
				if c.SecureCookies() {
					t.Fatal("explicit false ignored")
				}
				c.Env, c.CookieSecure = EnvDevelopment, "auto"
				if c.SecureCookies() {
					t.Fatal("development cookies Secure on plain http")
				}
			},
		},
		{
			name:    "stripe url must be http",
			env:     map[string]string{"STEWARD_STRIPE_API_URL": "ftp://x"},
			wantErr: []string{"STEWARD_STRIPE_API_URL"},
		},
		{
			name: "allowed origins are read as a list",
			env:  map[string]string{"STEWARD_ALLOWED_ORIGINS": "https://app.example.com, http://localhost:3000/"},
			check: func(t *testing.T, c Config) {
				if strings.Join(c.AllowedOrigins, " ") != "https://app.example.com http://localhost:3000" {
					t.Fatalf("origins = %q", c.AllowedOrigins)
				}
			},
		},
		{
			name:    "a wildcard origin is refused",
			env:     map[string]string{"STEWARD_ALLOWED_ORIGINS": "*"},
			wantErr: []string{"STEWARD_ALLOWED_ORIGINS"},
		},
		{
			name:    "unknown environment",
			env:     map[string]string{"STEWARD_ENV": "staging"},
			wantErr: []string{"STEWARD_ENV", "staging"},
		},
		{
			name:    "unparsable duration names the variable",
			env:     map[string]string{"STEWARD_SHUTDOWN_TIMEOUT": "soon"},
			wantErr: []string{"STEWARD_SHUTDOWN_TIMEOUT"},
		},
		{
			name:    "several problems reported together",
			env:     map[string]string{"STEWARD_LOG_FORMAT": "xml", "STEWARD_CLICKHOUSE_DATABASE": "1bad"},
			wantErr: []string{"STEWARD_LOG_FORMAT", "STEWARD_CLICKHOUSE_DATABASE"},
		},
		{
			name: "metrics stay open in development and close in production",
			env:  map[string]string{"STEWARD_ENV": "production", "STEWARD_SIGNING_KEY": strings.Repeat("k", 32)},
			check: func(t *testing.T, c Config) {
				if !c.OpsClosed() || c.MetricsToken != "" {
					t.Fatalf("production: closed %t, token %q", c.OpsClosed(), c.MetricsToken)
				}
				c.Env = EnvDevelopment
				if c.OpsClosed() {
					t.Fatal("development closes /metrics")
				}
			},
		},
		{
			name: "metrics token",
			args: []string{"--metrics-token", "0123456789abcdef0123"},
			check: func(t *testing.T, c Config) {
				if c.MetricsToken != "0123456789abcdef0123" {
					t.Fatalf("token = %q", c.MetricsToken)
				}
			},
		},
		{
			name:    "short metrics token",
			env:     map[string]string{"STEWARD_METRICS_TOKEN": "short"},
			wantErr: []string{"STEWARD_METRICS_TOKEN", "16 characters"},
		},
		{
			name: "previous policy version with its grace period",
			env: map[string]string{"STEWARD_CONSENT_POLICY_VERSION": "2026-12", "STEWARD_CONSENT_PREVIOUS_POLICY_VERSION": "2026-01",
				"STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL": "2026-12-20T12:00:00+01:00"},
			check: func(t *testing.T, c Config) {
				if c.ConsentPreviousPolicyVersion != "2026-01" || !c.ConsentPreviousPolicyUntil.Equal(time.Date(2026, 12, 20, 11, 0, 0, 0, time.UTC)) {
					t.Fatalf("previous %q until %s", c.ConsentPreviousPolicyVersion, c.ConsentPreviousPolicyUntil)
				}
			},
		},
		{
			name:    "previous policy version without an end",
			env:     map[string]string{"STEWARD_CONSENT_PREVIOUS_POLICY_VERSION": "0"},
			wantErr: []string{"STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL"},
		},
		{
			name:    "grace period without a version",
			args:    []string{"--consent-previous-policy-until", "2026-12-20T00:00:00Z"},
			wantErr: []string{"STEWARD_CONSENT_PREVIOUS_POLICY_VERSION"},
		},
		{
			name:    "previous policy version is the current one",
			env:     map[string]string{"STEWARD_CONSENT_PREVIOUS_POLICY_VERSION": "1", "STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL": "2026-12-20T00:00:00Z"},
			wantErr: []string{"STEWARD_CONSENT_PREVIOUS_POLICY_VERSION", "in force"},
		},
		{
			name:    "grace period end not a time",
			env:     map[string]string{"STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL": "tomorrow"},
			wantErr: []string{"STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL", "RFC 3339"},
		},
		{
			name:    "unknown flag",
			args:    []string{"--nope"},
			wantErr: []string{"nope"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := Load("serve", tt.args, func(k string) string { return tt.env[k] }, func(fs *flag.FlagSet, c *Config) {
				fs.BoolVar(&c.Dev, "dev", false, "")
			})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				tt.check(t, cfg)
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want error containing %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}
