package config

import (
	"cmp"
	"flag"
	"reflect"
	"strings"
	"testing"
)

// secretSettings are the settings whose values must never appear in an
// error: the checks on them look at their length only.
var secretSettings = map[string]bool{
	"STEWARD_SIGNING_KEY": true, "STEWARD_METRICS_TOKEN": true, "STEWARD_STRIPE_SECRET_KEY": true,
	"STEWARD_STRIPE_WEBHOOK_SECRET": true, "STEWARD_CREEM_API_KEY": true, "STEWARD_CREEM_WEBHOOK_SECRET": true,
	"STEWARD_PROVIDER_KEY": true,
}

// FuzzLoad sets two settings (each picked by index from Settings) to
// fuzzed values, each as an environment variable or as a flag, over a
// production or development base, and loads the configuration. Load
// never panics; it returns a valid configuration or an error naming a
// setting; a setting reads the same from the environment as from its
// flag; and no error repeats a secret.
func FuzzLoad(f *testing.F) {
	index := map[string]uint8{}
	for i, s := range Settings() {
		index[s.Env] = uint8(i)
	}
	for _, seed := range []struct {
		env1, val1 string
		flag1      bool
		env2, val2 string
		flag2      bool
		prod       bool
	}{
		{"STEWARD_ADDR", "127.0.0.1:9999", true, "STEWARD_DATA_DIR", "/var/lib/steward", false, false},
		{"STEWARD_DATABASE_URL", "postgres://u:p@db:5432/steward", false, "STEWARD_CLICKHOUSE_URL", "clickhouse://ch:9000/steward", false, true},
		{"STEWARD_BODY_LIMIT", "2097152", true, "STEWARD_EVENTS_SPOOL_MAX_BYTES", "1073741824", false, false},
		{"STEWARD_LOG_LEVEL", "debug", false, "STEWARD_LOG_FORMAT", "json", true, false},
		{"STEWARD_SHUTDOWN_TIMEOUT", "1m30s", false, "STEWARD_RETENTION_INTERVAL", "1h", true, false},
		{"STEWARD_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,::1", false, "STEWARD_ALLOWED_ORIGINS", "https://app.example.com,http://localhost:3000/", true, false},
		{"STEWARD_CONSENT_PREVIOUS_POLICY_VERSION", "2026-01", false, "STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL", "2026-12-31T00:00:00Z", true, false},
		{"STEWARD_SIGNING_KEY", "0123456789abcdef0123456789abcdef", false, "STEWARD_COOKIE_SECURE", "true", false, true},
		{"STEWARD_METRICS_TOKEN", "short-token", true, "STEWARD_SIGNING_KEY", "also-too-short", false, false},
		{"STEWARD_ENV", "staging", false, "STEWARD_AUTO_MIGRATE", "maybe", true, false},
		{"STEWARD_ADDR", "[::1]:99999", false, "STEWARD_CLICKHOUSE_DATABASE", "1db", false, false},
		{"STEWARD_BASE_URL", "ftp://example.com", true, "STEWARD_ALLOWED_ORIGINS", "*", false, false},
		{"STEWARD_BODY_LIMIT", "0x400", true, "STEWARD_BODY_LIMIT", "1_024", false, false},
		{"STEWARD_CONSENT_VALID_FOR", "P1Y2M", false, "STEWARD_STRIPE_API_URL", "http://127.0.0.1:12111", true, false},
	} {
		f.Add(index[seed.env1], seed.val1, seed.flag1, index[seed.env2], seed.val2, seed.flag2, seed.prod)
	}
	settings := Settings()
	f.Fuzz(func(t *testing.T, i1 uint8, v1 string, flag1 bool, i2 uint8, v2 string, flag2 bool, prod bool) {
		s1, s2 := settings[int(i1)%len(settings)], settings[int(i2)%len(settings)]
		env := map[string]string{}
		if prod {
			env["STEWARD_ENV"] = EnvProduction
			env["STEWARD_SIGNING_KEY"] = strings.Repeat("k", 32)
		}
		in := setting{s1, v1, flag1}
		other := setting{s2, v2, flag2}
		cfg, err := load(env, in, other)
		if err != nil {
			if !namesSetting(err.Error()) {
				t.Fatalf("error names no setting: %v", err)
			}
			for _, s := range []setting{in, other} {
				if secretSettings[s.Env] && len(s.value) >= 4 {
					// The checks of a secret look at its length only, so a
					// secret of the same length fails the same way; an
					// error that differs has quoted it.
					masked := s
					masked.value = strings.Repeat("x", len(s.value))
					_, err2 := load(env, replace(in, s, masked), replace(other, s, masked))
					if err2 == nil || err2.Error() != err.Error() {
						t.Fatalf("error quotes the secret %s: %v", s.Env, err)
					}
				}
			}
		} else if err := cfg.Validate(); err != nil {
			t.Fatalf("Load returned a configuration that does not validate: %v", err)
		}
		// The same value reads the same as a flag and as a variable. An
		// empty variable is unset, so only a non-empty value compares.
		if v1 != "" && s1.Env != s2.Env {
			flipped := in
			flipped.asFlag = !flipped.asFlag
			cfg2, err2 := load(env, flipped, other)
			if (err == nil) != (err2 == nil) || err == nil && !reflect.DeepEqual(cfg, cfg2) {
				t.Fatalf("%s=%q reads differently from its flag and its variable:\n%+v, %v\n%+v, %v", s1.Env, v1, cfg, err, cfg2, err2)
			}
		}
	})
}

// setting is one fuzzed setting and whether it is given as a flag.
type setting struct {
	Setting
	value  string
	asFlag bool
}

func replace(s, old, new setting) setting {
	if s == old {
		return new
	}
	return s
}

// load runs Load as the serve command does (with its --dev flag) with env
// and the settings applied; a later setting of the same name wins.
func load(env map[string]string, settings ...setting) (Config, error) {
	vars := map[string]string{}
	for k, v := range env {
		vars[k] = v
	}
	var args []string
	for _, s := range settings {
		if s.asFlag {
			args = append(args, "--"+s.Flag+"="+s.value)
		} else {
			vars[s.Env] = s.value
		}
	}
	cfg, _, err := Load("serve", args, func(k string) string { return vars[k] }, func(fs *flag.FlagSet, c *Config) {
		fs.BoolVar(&c.Dev, "dev", false, "")
	})
	return cfg, err
}

// namesSetting reports whether msg names a setting, by its variable or
// its flag, or the unknown flag it refuses.
func namesSetting(msg string) bool {
	if strings.Contains(msg, "--dev") || strings.Contains(msg, "flag provided but not defined") {
		return true
	}
	for _, s := range Settings() {
		if strings.Contains(msg, s.Env) || strings.Contains(msg, "-"+s.Flag) {
			return true
		}
	}
	return false
}

// TestNumbersReadAlikeFromFlagsAndVariables pins what FuzzLoad found: a
// number reads as decimal from its flag as from its variable, so a
// leading zero is no octal prefix and 0x no hex one.
func TestNumbersReadAlikeFromFlagsAndVariables(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		bodyLimit int   // 0: the default
		spoolMax  int64 // 0: the default
		wantErr   string
	}{
		{name: "leading zero from a flag", args: []string{"--body-limit=01100"}, bodyLimit: 1100},
		{name: "leading zero from a variable", env: map[string]string{"STEWARD_BODY_LIMIT": "01100"}, bodyLimit: 1100},
		{name: "hex from a flag", args: []string{"--body-limit=0x400"}, wantErr: "-body-limit"},
		{name: "hex from a variable", env: map[string]string{"STEWARD_BODY_LIMIT": "0x400"}, wantErr: "STEWARD_BODY_LIMIT"},
		{name: "spool size with a leading zero", args: []string{"--events-spool-max-bytes=02000000"}, spoolMax: 2000000},
		{name: "spool size with digit separators", args: []string{"--events-spool-max-bytes=2_000_000"}, wantErr: "-events-spool-max-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load("serve", tt.args, func(k string) string { return tt.env[k] }, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := Defaults()
			want := Config{BodyLimit: cmp.Or(tt.bodyLimit, d.BodyLimit), EventsSpoolMaxBytes: cmp.Or(tt.spoolMax, d.EventsSpoolMaxBytes)}
			if c.BodyLimit != want.BodyLimit || c.EventsSpoolMaxBytes != want.EventsSpoolMaxBytes {
				t.Fatalf("body limit %d, spool max bytes %d; want %d, %d", c.BodyLimit, c.EventsSpoolMaxBytes, want.BodyLimit, want.EventsSpoolMaxBytes)
			}
		})
	}
}
