// Package config holds Steward's configuration: one struct, parsed once in
// main from flags and STEWARD_* environment variables, validated before
// anything is opened, and passed down explicitly.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Environments Steward knows. Production refuses development-only features
// such as the email sign-in of --dev.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// Config is the whole configuration of one Steward process.
type Config struct {
	// Addr is the host:port the HTTP server listens on.
	Addr string
	// DataDir holds the embedded stores (SQLite file, ClickHouse engine data)
	// and files (uploads, generated media, export packages).
	DataDir string
	// PolicyDir is a policy bundle (Rego and data laid out as the embedded
	// one) that replaces the embedded policies; empty keeps them. It is
	// checked at startup as `steward policy check` does, and a bundle that
	// fails keeps the server from starting.
	PolicyDir string
	// DatabaseURL selects PostgreSQL when set; empty means the embedded
	// SQLite file in DataDir.
	DatabaseURL string
	// ClickHouseURL selects a ClickHouse server (native protocol) when set;
	// empty means the embedded ClickHouse engine under DataDir.
	ClickHouseURL string
	// ClickHouseDatabase is the warehouse database for the embedded engine
	// (a server URL names its own database in its path).
	ClickHouseDatabase string
	// CHDBLib is the path of libchdb.so, loaded only when the embedded
	// engine is used.
	CHDBLib string
	// Env is "development" or "production".
	Env string
	// Dev enables development-only routes (POST /v1/auth/dev).
	Dev bool
	// AutoMigrate runs pending migrations when the server starts.
	AutoMigrate bool
	// LogLevel and LogFormat shape the structured log.
	LogLevel  slog.Level
	LogFormat string
	// BodyLimit caps request bodies, in bytes.
	BodyLimit int
	// ShutdownTimeout bounds the drain of in-flight requests on stop.
	ShutdownTimeout time.Duration
	// MetricsToken, when set, is the bearer token GET /metrics and GET
	// /openapi.json require. Without it both are open in development and
	// answer 404 in production (see OpsClosed).
	MetricsToken string

	// BaseURL is the public URL of this Steward, used in links it hands
	// out (signed downloads, checkout return pages).
	BaseURL string
	// SigningKey signs download links (HMAC). Empty in development means
	// a random key kept in the SQL store; production requires one.
	SigningKey string
	// CookieSecure marks cookies Secure; "auto" means only in production.
	CookieSecure string

	// GoogleClientID is the OAuth client id Google ID tokens must carry;
	// empty turns Google sign-in off.
	GoogleClientID string
	// GoogleJWKSURL serves Google's signing keys.
	GoogleJWKSURL string

	// StripeSecretKey, StripeWebhookSecret and StripeAPIURL configure
	// Stripe; StripeAPIURL points at stripe-mock in tests.
	StripeSecretKey     string
	StripeWebhookSecret string
	StripeAPIURL        string
	// CreemAPIKey, CreemWebhookSecret and CreemAPIURL configure Creem.
	CreemAPIKey        string
	CreemWebhookSecret string
	CreemAPIURL        string

	// Catalog is a JSON or YAML file of the products sold, with their
	// Stripe price and Creem product ids; empty serves the demo catalog.
	Catalog string

	// ProviderURL and ProviderKey select an HTTP model service for
	// generation; empty uses the built-in local renderer.
	ProviderURL string
	ProviderKey string

	// ConsentPolicyVersion names the privacy policy in force; changing it
	// asks every visitor again. ConsentBannerVersion names the banner text.
	ConsentPolicyVersion string
	ConsentBannerVersion string
	// ConsentPreviousPolicyVersion is the policy version in force before
	// ConsentPolicyVersion. Until ConsentPreviousPolicyUntil, choices made
	// under it are still accepted (and asked again), since pages opened
	// before the change still send it; empty accepts the version in force
	// only.
	ConsentPreviousPolicyVersion string
	ConsentPreviousPolicyUntil   time.Time
	// ConsentValidFor is how long a consent choice lasts (ISO 8601 period).
	ConsentValidFor string
	// EventsSpoolMaxBytes bounds the durable event spool; past it, event
	// ingestion answers 503 with Retry-After.
	EventsSpoolMaxBytes int64
	// TrustedProxies lists CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// RetentionInterval is how often serve runs the retention job.
	RetentionInterval time.Duration
	// BlobURL names the file store every instance shares (uploads,
	// generated media, export packages): file:///path or s3://bucket?...;
	// empty for the data dir itself.
	BlobURL string
	// PrivacyWorkers is how many privacy requests one process runs at once.
	PrivacyWorkers int
	// PrivacyLease is how long a process's claim on a privacy request lasts
	// unless renewed.
	PrivacyLease time.Duration
	// LeaderCheckInterval is how often an instance tries to take the lead
	// of the periodic jobs, and the leader checks it still has it.
	LeaderCheckInterval time.Duration
	// AnalyticsMaxQueryTime stops an attribution report's query that runs
	// longer.
	AnalyticsMaxQueryTime time.Duration
	// AnalyticsMaxQueryMemory bounds one attribution report's query, in
	// bytes.
	AnalyticsMaxQueryMemory int64
	// AnalyticsMaxConcurrent is how many attribution reports may run at
	// once.
	AnalyticsMaxConcurrent int
	// AnalyticsMaxSpanDays is the longest period one attribution report
	// covers.
	AnalyticsMaxSpanDays int
	// AllowedOrigins are the web origins (scheme://host[:port]) of the
	// product's pages that may call the API with credentials from the
	// browser: the consent banner, the tracker, the web app.
	AllowedOrigins []string
}

// SecureCookies resolves CookieSecure.
func (c Config) SecureCookies() bool {
	switch c.CookieSecure {
	case "true":
		return true
	case "false":
		return false
	default:
		return c.Env == EnvProduction
	}
}

// OpsClosed reports whether /metrics and /openapi.json answer 404 to
// everyone when MetricsToken is empty: in production, so that neither is
// public unless a token guards it.
func (c Config) OpsClosed() bool { return c.Env == EnvProduction }

// Defaults are the embedded-default settings `make run` uses.
func Defaults() Config {
	return Config{
		Addr:               "127.0.0.1:8080",
		DataDir:            "./var",
		ClickHouseDatabase: "steward",
		CHDBLib:            filepath.Join(".cache", "chdb", "libchdb.so"),
		Env:                EnvDevelopment,
		AutoMigrate:        true,
		LogLevel:           slog.LevelInfo,
		LogFormat:          "text",
		BodyLimit:          1 << 20,
		ShutdownTimeout:    15 * time.Second,
		BaseURL:            "http://127.0.0.1:8080",
		CookieSecure:       "auto",
		GoogleJWKSURL:      "https://www.googleapis.com/oauth2/v3/certs",
		StripeAPIURL:       "https://api.stripe.com",
		CreemAPIURL:        "https://api.creem.io",

		ConsentPolicyVersion: "1",
		ConsentBannerVersion: "1",
		ConsentValidFor:      "P13M",
		EventsSpoolMaxBytes:  256 << 20,
		RetentionInterval:    24 * time.Hour,
		PrivacyWorkers:       2,
		PrivacyLease:         time.Minute,
		LeaderCheckInterval:  5 * time.Second,

		AnalyticsMaxQueryTime:   10 * time.Second,
		AnalyticsMaxQueryMemory: 512 << 20,
		AnalyticsMaxConcurrent:  2,
		AnalyticsMaxSpanDays:    400,
	}
}

// Setting describes one configuration setting for the README table and
// for error messages.
type Setting struct {
	Flag    string
	Env     string
	Default string
	Help    string
}

// Settings lists every setting in the order the README documents them.
func Settings() []Setting {
	d := Defaults()
	return []Setting{
		{"addr", "STEWARD_ADDR", d.Addr, "HTTP listen address (host:port)"},
		{"data-dir", "STEWARD_DATA_DIR", d.DataDir, "folder for the embedded stores and files"},
		{"policy-dir", "STEWARD_POLICY_DIR", "", "policy bundle that replaces the embedded policies (start one with steward policy init DIR); empty = embedded"},
		{"database-url", "STEWARD_DATABASE_URL", "", "PostgreSQL URL (postgres://...); empty = SQLite in the data dir"},
		{"clickhouse-url", "STEWARD_CLICKHOUSE_URL", "", "ClickHouse server URL (clickhouse://host:9000/db); empty = embedded engine in the data dir"},
		{"clickhouse-database", "STEWARD_CLICKHOUSE_DATABASE", d.ClickHouseDatabase, "database of the embedded engine"},
		{"chdb-lib", "STEWARD_CHDB_LIB", d.CHDBLib, "path of libchdb.so (embedded engine only)"},
		{"env", "STEWARD_ENV", d.Env, "development or production"},
		{"auto-migrate", "STEWARD_AUTO_MIGRATE", strconv.FormatBool(d.AutoMigrate), "run pending migrations when serve starts"},
		{"log-level", "STEWARD_LOG_LEVEL", "info", "debug, info, warn or error"},
		{"log-format", "STEWARD_LOG_FORMAT", d.LogFormat, "text or json"},
		{"body-limit", "STEWARD_BODY_LIMIT", strconv.Itoa(d.BodyLimit), "largest accepted request body in bytes"},
		{"shutdown-timeout", "STEWARD_SHUTDOWN_TIMEOUT", d.ShutdownTimeout.String(), "how long a stop waits for in-flight requests"},
		{"metrics-token", "STEWARD_METRICS_TOKEN", "", "bearer token (16+ characters) that /metrics and /openapi.json require; without it both are open in development and answer 404 in production"},
		{"base-url", "STEWARD_BASE_URL", d.BaseURL, "public URL of this server, used in the links it hands out"},
		{"signing-key", "STEWARD_SIGNING_KEY", "", "secret (32+ characters) that signs download links; required in production"},
		{"cookie-secure", "STEWARD_COOKIE_SECURE", d.CookieSecure, "mark cookies Secure: true, false, or auto (only in production)"},
		{"google-client-id", "STEWARD_GOOGLE_CLIENT_ID", "", "OAuth client id for Google Sign-In and One Tap; empty turns Google sign-in off"},
		{"google-jwks-url", "STEWARD_GOOGLE_JWKS_URL", d.GoogleJWKSURL, "where Google's signing keys are fetched"},
		{"stripe-secret-key", "STEWARD_STRIPE_SECRET_KEY", "", "Stripe secret API key; empty turns Stripe checkout off"},
		{"stripe-webhook-secret", "STEWARD_STRIPE_WEBHOOK_SECRET", "", "Stripe webhook signing secret (whsec_...)"},
		{"stripe-api-url", "STEWARD_STRIPE_API_URL", d.StripeAPIURL, "Stripe API base URL (stripe-mock in tests)"},
		{"creem-api-key", "STEWARD_CREEM_API_KEY", "", "Creem API key; empty turns Creem checkout off"},
		{"creem-webhook-secret", "STEWARD_CREEM_WEBHOOK_SECRET", "", "Creem webhook secret (creem-signature HMAC)"},
		{"creem-api-url", "STEWARD_CREEM_API_URL", d.CreemAPIURL, "Creem API base URL"},
		{"catalog", "STEWARD_CATALOG", "", "JSON or YAML file of the products sold, with their Stripe price and Creem product ids; empty = the demo catalog"},
		{"provider-url", "STEWARD_PROVIDER_URL", "", "HTTP model service for generation; empty = built-in local renderer"},
		{"provider-key", "STEWARD_PROVIDER_KEY", "", "API key of the model service"},
		{"consent-policy-version", "STEWARD_CONSENT_POLICY_VERSION", d.ConsentPolicyVersion, "version of the privacy policy in force; changing it asks every visitor again"},
		{"consent-banner-version", "STEWARD_CONSENT_BANNER_VERSION", d.ConsentBannerVersion, "version of the consent banner text, kept in each proof"},
		{"consent-previous-policy-version", "STEWARD_CONSENT_PREVIOUS_POLICY_VERSION", "", "policy version in force before the current one, still accepted in choices until STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL"},
		{"consent-previous-policy-until", "STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL", "", "end of the grace period of the previous policy version (RFC 3339 time)"},
		{"consent-valid-for", "STEWARD_CONSENT_VALID_FOR", d.ConsentValidFor, "how long a consent choice lasts (ISO 8601 period)"},
		{"events-spool-max-bytes", "STEWARD_EVENTS_SPOOL_MAX_BYTES", strconv.FormatInt(d.EventsSpoolMaxBytes, 10), "largest durable event spool; past it /v1/events answers 503"},
		{"trusted-proxies", "STEWARD_TRUSTED_PROXIES", "", "comma-separated CIDRs whose X-Forwarded-For is believed"},
		{"retention-interval", "STEWARD_RETENTION_INTERVAL", d.RetentionInterval.String(), "how often serve runs the retention job"},
		{"blob-url", "STEWARD_BLOB_URL", "", "file store of uploads, generated media and export packages, shared by every instance: file:///path or s3://bucket?region=R[&endpoint=URL&use_path_style=true]; empty: the data dir itself"},
		{"privacy-workers", "STEWARD_PRIVACY_WORKERS", strconv.Itoa(d.PrivacyWorkers), "how many privacy requests one process runs at once"},
		{"privacy-lease", "STEWARD_PRIVACY_LEASE", d.PrivacyLease.String(), "how long a claim on a privacy request lasts unless renewed; a dead instance's request resumes elsewhere after it"},
		{"leader-check-interval", "STEWARD_LEADER_CHECK_INTERVAL", d.LeaderCheckInterval.String(), "how often an instance tries to take over the periodic jobs (retention, package expiry) when their leader is gone"},
		{"analytics-max-query-time", "STEWARD_ANALYTICS_MAX_QUERY_TIME", d.AnalyticsMaxQueryTime.String(), "longest one attribution report's query may run; past it 503"},
		{"analytics-max-query-memory", "STEWARD_ANALYTICS_MAX_QUERY_MEMORY", strconv.FormatInt(d.AnalyticsMaxQueryMemory, 10), "most bytes one attribution report's query may use (spills to disk past half); past it 503"},
		{"analytics-max-concurrent", "STEWARD_ANALYTICS_MAX_CONCURRENT", strconv.Itoa(d.AnalyticsMaxConcurrent), "attribution reports that may run at once; one more answers 429 with Retry-After"},
		{"analytics-max-span-days", "STEWARD_ANALYTICS_MAX_SPAN_DAYS", strconv.Itoa(d.AnalyticsMaxSpanDays), "longest period in days one attribution report covers (1 to 1000)"},
		{"allowed-origins", "STEWARD_ALLOWED_ORIGINS", "", "comma-separated origins of the product's pages allowed to call the API from the browser (CORS with credentials)"},
	}
}

// Load parses args (flags of one subcommand) over the environment over the
// defaults, then validates. Flags win over environment variables. extra lets
// a subcommand bind its own flags (to Config fields or its own variables)
// before parsing; the flag set is returned so a subcommand can read its
// remaining arguments.
func Load(name string, args []string, getenv func(string) string, extra func(*flag.FlagSet, *Config)) (Config, *flag.FlagSet, error) {
	cfg := Defaults()
	var problems []string
	env := func(key string, apply func(string) error) {
		v := getenv(key)
		if v == "" {
			return
		}
		if err := apply(v); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", key, v, err))
		}
	}
	str := func(dst *string) func(string) error {
		return func(v string) error { *dst = v; return nil }
	}
	level := func(v string) error { return cfg.LogLevel.UnmarshalText([]byte(v)) }
	// Numbers are decimal whether they come from a variable or a flag:
	// flag.IntVar would read "010" as octal and "0x400" as hex.
	bodyLimit := func(v string) error {
		n, err := strconv.Atoi(v)
		cfg.BodyLimit = n
		return err
	}
	spoolMaxBytes := func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		cfg.EventsSpoolMaxBytes = n
		return err
	}
	queryMemory := func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		cfg.AnalyticsMaxQueryMemory = n
		return err
	}
	durationTo := func(dst *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			*dst = d
			return err
		}
	}
	intTo := func(dst *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			*dst = n
			return err
		}
	}
	queryTime := func(v string) error {
		d, err := time.ParseDuration(v)
		cfg.AnalyticsMaxQueryTime = d
		return err
	}
	env("STEWARD_ADDR", str(&cfg.Addr))
	env("STEWARD_DATA_DIR", str(&cfg.DataDir))
	env("STEWARD_POLICY_DIR", str(&cfg.PolicyDir))
	env("STEWARD_DATABASE_URL", str(&cfg.DatabaseURL))
	env("STEWARD_CLICKHOUSE_URL", str(&cfg.ClickHouseURL))
	env("STEWARD_CLICKHOUSE_DATABASE", str(&cfg.ClickHouseDatabase))
	env("STEWARD_CHDB_LIB", str(&cfg.CHDBLib))
	env("STEWARD_ENV", str(&cfg.Env))
	env("STEWARD_AUTO_MIGRATE", func(v string) error {
		b, err := strconv.ParseBool(v)
		cfg.AutoMigrate = b
		return err
	})
	env("STEWARD_LOG_LEVEL", level)
	env("STEWARD_LOG_FORMAT", str(&cfg.LogFormat))
	env("STEWARD_BODY_LIMIT", bodyLimit)
	env("STEWARD_SHUTDOWN_TIMEOUT", func(v string) error {
		d, err := time.ParseDuration(v)
		cfg.ShutdownTimeout = d
		return err
	})
	for _, b := range []struct {
		env string
		dst *string
	}{
		{"STEWARD_BASE_URL", &cfg.BaseURL}, {"STEWARD_SIGNING_KEY", &cfg.SigningKey},
		{"STEWARD_COOKIE_SECURE", &cfg.CookieSecure}, {"STEWARD_GOOGLE_CLIENT_ID", &cfg.GoogleClientID},
		{"STEWARD_GOOGLE_JWKS_URL", &cfg.GoogleJWKSURL}, {"STEWARD_STRIPE_SECRET_KEY", &cfg.StripeSecretKey},
		{"STEWARD_STRIPE_WEBHOOK_SECRET", &cfg.StripeWebhookSecret}, {"STEWARD_STRIPE_API_URL", &cfg.StripeAPIURL},
		{"STEWARD_CREEM_API_KEY", &cfg.CreemAPIKey}, {"STEWARD_CREEM_WEBHOOK_SECRET", &cfg.CreemWebhookSecret},
		{"STEWARD_CREEM_API_URL", &cfg.CreemAPIURL}, {"STEWARD_PROVIDER_URL", &cfg.ProviderURL},
		{"STEWARD_PROVIDER_KEY", &cfg.ProviderKey}, {"STEWARD_CATALOG", &cfg.Catalog},
		{"STEWARD_CONSENT_POLICY_VERSION", &cfg.ConsentPolicyVersion},
		{"STEWARD_CONSENT_BANNER_VERSION", &cfg.ConsentBannerVersion},
		{"STEWARD_CONSENT_VALID_FOR", &cfg.ConsentValidFor},
		{"STEWARD_CONSENT_PREVIOUS_POLICY_VERSION", &cfg.ConsentPreviousPolicyVersion},
		{"STEWARD_METRICS_TOKEN", &cfg.MetricsToken},
	} {
		env(b.env, str(b.dst))
	}
	env("STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL", func(v string) error {
		t, err := parseUntil(v)
		cfg.ConsentPreviousPolicyUntil = t
		return err
	})
	env("STEWARD_EVENTS_SPOOL_MAX_BYTES", spoolMaxBytes)
	env("STEWARD_ALLOWED_ORIGINS", func(v string) error {
		cfg.AllowedOrigins = splitList(v)
		return nil
	})
	env("STEWARD_ANALYTICS_MAX_QUERY_TIME", queryTime)
	env("STEWARD_ANALYTICS_MAX_QUERY_MEMORY", queryMemory)
	env("STEWARD_ANALYTICS_MAX_CONCURRENT", intTo(&cfg.AnalyticsMaxConcurrent))
	env("STEWARD_ANALYTICS_MAX_SPAN_DAYS", intTo(&cfg.AnalyticsMaxSpanDays))
	env("STEWARD_BLOB_URL", str(&cfg.BlobURL))
	env("STEWARD_PRIVACY_WORKERS", intTo(&cfg.PrivacyWorkers))
	env("STEWARD_PRIVACY_LEASE", durationTo(&cfg.PrivacyLease))
	env("STEWARD_LEADER_CHECK_INTERVAL", durationTo(&cfg.LeaderCheckInterval))
	env("STEWARD_RETENTION_INTERVAL", func(v string) error {
		d, err := time.ParseDuration(v)
		cfg.RetentionInterval = d
		return err
	})
	env("STEWARD_TRUSTED_PROXIES", func(v string) error {
		p, err := parsePrefixes(v)
		cfg.TrustedProxies = p
		return err
	})
	if len(problems) > 0 {
		return cfg, nil, fmt.Errorf("configuration: %s", strings.Join(problems, "; "))
	}

	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "")
	fs.StringVar(&cfg.PolicyDir, "policy-dir", cfg.PolicyDir, "")
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "")
	fs.StringVar(&cfg.ClickHouseURL, "clickhouse-url", cfg.ClickHouseURL, "")
	fs.StringVar(&cfg.ClickHouseDatabase, "clickhouse-database", cfg.ClickHouseDatabase, "")
	fs.StringVar(&cfg.CHDBLib, "chdb-lib", cfg.CHDBLib, "")
	fs.StringVar(&cfg.Env, "env", cfg.Env, "")
	fs.BoolVar(&cfg.AutoMigrate, "auto-migrate", cfg.AutoMigrate, "")
	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "")
	fs.Func("body-limit", "", bodyLimit)
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "")
	for _, b := range []struct {
		flag string
		dst  *string
	}{
		{"base-url", &cfg.BaseURL}, {"signing-key", &cfg.SigningKey}, {"cookie-secure", &cfg.CookieSecure},
		{"google-client-id", &cfg.GoogleClientID}, {"google-jwks-url", &cfg.GoogleJWKSURL},
		{"stripe-secret-key", &cfg.StripeSecretKey}, {"stripe-webhook-secret", &cfg.StripeWebhookSecret},
		{"stripe-api-url", &cfg.StripeAPIURL}, {"creem-api-key", &cfg.CreemAPIKey},
		{"creem-webhook-secret", &cfg.CreemWebhookSecret}, {"creem-api-url", &cfg.CreemAPIURL},
		{"provider-url", &cfg.ProviderURL}, {"provider-key", &cfg.ProviderKey}, {"catalog", &cfg.Catalog},
		{"consent-policy-version", &cfg.ConsentPolicyVersion}, {"consent-banner-version", &cfg.ConsentBannerVersion},
		{"consent-valid-for", &cfg.ConsentValidFor},
		{"consent-previous-policy-version", &cfg.ConsentPreviousPolicyVersion},
		{"metrics-token", &cfg.MetricsToken},
	} {
		fs.StringVar(b.dst, b.flag, *b.dst, "")
	}
	fs.Func("consent-previous-policy-until", "", func(v string) error {
		t, err := parseUntil(v)
		cfg.ConsentPreviousPolicyUntil = t
		return err
	})
	fs.Func("events-spool-max-bytes", "", spoolMaxBytes)
	fs.DurationVar(&cfg.RetentionInterval, "retention-interval", cfg.RetentionInterval, "")
	fs.StringVar(&cfg.BlobURL, "blob-url", cfg.BlobURL, "")
	fs.Func("privacy-workers", "", intTo(&cfg.PrivacyWorkers))
	fs.DurationVar(&cfg.PrivacyLease, "privacy-lease", cfg.PrivacyLease, "")
	fs.DurationVar(&cfg.LeaderCheckInterval, "leader-check-interval", cfg.LeaderCheckInterval, "")
	fs.Func("analytics-max-query-time", "", queryTime)
	fs.Func("analytics-max-query-memory", "", queryMemory)
	fs.Func("analytics-max-concurrent", "", intTo(&cfg.AnalyticsMaxConcurrent))
	fs.Func("analytics-max-span-days", "", intTo(&cfg.AnalyticsMaxSpanDays))
	fs.Func("allowed-origins", "", func(v string) error {
		cfg.AllowedOrigins = splitList(v)
		return nil
	})
	fs.Func("trusted-proxies", "", func(v string) error {
		p, err := parsePrefixes(v)
		cfg.TrustedProxies = p
		return err
	})
	if extra != nil {
		extra(fs, &cfg)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, fs, fmt.Errorf("%s: %w", name, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fs, err
	}
	return cfg, fs, nil
}

// EmbeddedWarehouse reports whether the in-process ClickHouse engine is used.
func (c Config) EmbeddedWarehouse() bool { return c.ClickHouseURL == "" }

// EmbeddedSQL reports whether the SQLite file in the data dir is used.
func (c Config) EmbeddedSQL() bool { return c.DatabaseURL == "" }

// Validate checks every setting and names each wrong one with what would be
// right, so a misconfigured process stops before it opens anything.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", env, fmt.Sprintf(format, args...)))
	}
	if host, port, err := net.SplitHostPort(c.Addr); err != nil {
		bad("STEWARD_ADDR", "%q is not host:port (for example 127.0.0.1:8080)", c.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("STEWARD_ADDR", "port %q of %q must be a number from 0 to 65535", port, c.Addr)
	} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		bad("STEWARD_ADDR", "host %q of %q must be an IP address, localhost or empty", host, c.Addr)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("STEWARD_DATA_DIR", "must name a folder (for example ./var)")
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			bad("STEWARD_DATABASE_URL", "must be a PostgreSQL URL like postgres://user:pass@host:5432/steward (or empty for SQLite in the data dir)")
		}
	}
	if c.ClickHouseURL != "" {
		u, err := url.Parse(c.ClickHouseURL)
		if err != nil || u.Scheme != "clickhouse" || u.Host == "" {
			bad("STEWARD_CLICKHOUSE_URL", "must be a native-protocol URL like clickhouse://host:9000/steward (or empty for the embedded engine)")
		}
	} else if strings.TrimSpace(c.CHDBLib) == "" {
		bad("STEWARD_CHDB_LIB", "must name libchdb.so when the embedded engine is used (make chdb fetches it)")
	}
	if c.BlobURL != "" && !strings.HasPrefix(c.BlobURL, "file://") && !strings.HasPrefix(c.BlobURL, "s3://") {
		bad("STEWARD_BLOB_URL", "must be file:///path or s3://bucket?region=... (or empty for the data dir)")
	}
	if c.PrivacyWorkers < 1 {
		bad("STEWARD_PRIVACY_WORKERS", "%d must be at least 1", c.PrivacyWorkers)
	}
	if c.PrivacyLease < 3*time.Second {
		bad("STEWARD_PRIVACY_LEASE", "%s must be at least 3s: it is renewed every third of it", c.PrivacyLease)
	}
	if c.LeaderCheckInterval <= 0 {
		bad("STEWARD_LEADER_CHECK_INTERVAL", "%s must be positive", c.LeaderCheckInterval)
	}
	if !validIdent(c.ClickHouseDatabase) {
		bad("STEWARD_CLICKHOUSE_DATABASE", "%q must be letters, digits and underscores, starting with a letter", c.ClickHouseDatabase)
	}
	switch c.Env {
	case EnvDevelopment, EnvProduction:
	default:
		bad("STEWARD_ENV", "%q must be %q or %q", c.Env, EnvDevelopment, EnvProduction)
	}
	if c.Dev && c.Env == EnvProduction {
		bad("--dev", "development sign-in is refused when STEWARD_ENV=production")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("STEWARD_LOG_FORMAT", "%q must be text or json", c.LogFormat)
	}
	if c.BodyLimit < 1024 {
		bad("STEWARD_BODY_LIMIT", "%d must be at least 1024 bytes", c.BodyLimit)
	}
	if c.ShutdownTimeout <= 0 {
		bad("STEWARD_SHUTDOWN_TIMEOUT", "%s must be a positive duration like 15s", c.ShutdownTimeout)
	}
	for _, u := range []struct{ env, val string }{
		{"STEWARD_BASE_URL", c.BaseURL}, {"STEWARD_GOOGLE_JWKS_URL", c.GoogleJWKSURL},
		{"STEWARD_STRIPE_API_URL", c.StripeAPIURL}, {"STEWARD_CREEM_API_URL", c.CreemAPIURL},
		{"STEWARD_PROVIDER_URL", c.ProviderURL},
	} {
		if u.val == "" && u.env == "STEWARD_PROVIDER_URL" {
			continue
		}
		if p, err := url.Parse(u.val); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(u.env, "%q must be an http(s) URL", u.val)
		}
	}
	switch c.CookieSecure {
	case "auto", "true", "false":
	default:
		bad("STEWARD_COOKIE_SECURE", "%q must be true, false or auto", c.CookieSecure)
	}
	if c.SigningKey != "" && len(c.SigningKey) < 32 {
		bad("STEWARD_SIGNING_KEY", "must be at least 32 characters (for example: openssl rand -hex 32)")
	}
	if c.SigningKey == "" && c.Env == EnvProduction {
		bad("STEWARD_SIGNING_KEY", "is required when STEWARD_ENV=production (for example: openssl rand -hex 32)")
	}
	if strings.TrimSpace(c.ConsentPolicyVersion) == "" || strings.TrimSpace(c.ConsentBannerVersion) == "" {
		bad("STEWARD_CONSENT_POLICY_VERSION", "the policy and banner versions must not be empty")
	}
	switch {
	case c.ConsentPreviousPolicyVersion != "" && c.ConsentPreviousPolicyUntil.IsZero():
		bad("STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL", "must be set with STEWARD_CONSENT_PREVIOUS_POLICY_VERSION: the previous version is accepted only until then")
	case c.ConsentPreviousPolicyVersion == "" && !c.ConsentPreviousPolicyUntil.IsZero():
		bad("STEWARD_CONSENT_PREVIOUS_POLICY_VERSION", "must be set with STEWARD_CONSENT_PREVIOUS_POLICY_UNTIL")
	case c.ConsentPreviousPolicyVersion != "" && c.ConsentPreviousPolicyVersion == c.ConsentPolicyVersion:
		bad("STEWARD_CONSENT_PREVIOUS_POLICY_VERSION", "%q is the version in force; name the one before it", c.ConsentPreviousPolicyVersion)
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		bad("STEWARD_METRICS_TOKEN", "must be at least 16 characters (for example: openssl rand -hex 32)")
	}
	if !strings.HasPrefix(c.ConsentValidFor, "P") || len(c.ConsentValidFor) < 3 {
		bad("STEWARD_CONSENT_VALID_FOR", "%q must be an ISO 8601 period such as P13M", c.ConsentValidFor)
	}
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || o == "*" {
			bad("STEWARD_ALLOWED_ORIGINS", "%q must be an origin like https://app.example.com (no path, no wildcard)", o)
		}
	}
	if c.AnalyticsMaxQueryTime < 100*time.Millisecond {
		bad("STEWARD_ANALYTICS_MAX_QUERY_TIME", "%s must be at least 100ms", c.AnalyticsMaxQueryTime)
	}
	if c.AnalyticsMaxQueryMemory < 16<<20 {
		bad("STEWARD_ANALYTICS_MAX_QUERY_MEMORY", "%d must be at least 16777216 (16 MiB)", c.AnalyticsMaxQueryMemory)
	}
	if c.AnalyticsMaxConcurrent < 1 {
		bad("STEWARD_ANALYTICS_MAX_CONCURRENT", "%d must be at least 1", c.AnalyticsMaxConcurrent)
	}
	if c.AnalyticsMaxSpanDays < 1 || c.AnalyticsMaxSpanDays > 1000 {
		bad("STEWARD_ANALYTICS_MAX_SPAN_DAYS", "%d must be between 1 and 1000", c.AnalyticsMaxSpanDays)
	}
	if c.RetentionInterval < time.Minute {
		bad("STEWARD_RETENTION_INTERVAL", "%s must be at least 1m", c.RetentionInterval)
	}
	if c.EventsSpoolMaxBytes < 1<<20 {
		bad("STEWARD_EVENTS_SPOOL_MAX_BYTES", "%d must be at least 1048576 (1 MiB)", c.EventsSpoolMaxBytes)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

// parseUntil reads an RFC 3339 time, such as 2026-12-31T00:00:00Z.
func parseUntil(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 time such as 2026-12-31T00:00:00Z")
	}
	return t.UTC(), nil
}

// splitList reads a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimRight(strings.TrimSpace(part), "/"); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parsePrefixes reads comma-separated CIDRs (a bare address is a /32 or
// /128).
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR or an address", part)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func validIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r == '_' || (r >= '0' && r <= '9'):
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}
