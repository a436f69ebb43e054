// Package accounts provides Steward's accounts module: sign-in with Google
// (the Sign-In button's redirect flow and One Tap), server-side sessions,
// API tokens for programs and the CLI, roles, the sign-in history and the
// binding of devices to accounts. On development servers it adds sign-in
// by email (--dev) and the one-time link that signs the first
// administrator in (FirstRunLink). The sign-in and sign-out routes take
// plain form posts too, so a page works without JavaScript.
//
// Authentication is the module's Authenticator (a bearer API token or the
// steward_session cookie), which cmd/steward mounts app-wide with
// authz.Middleware, next to the CSRF middleware. What each role may reach
// is the access policy's business: handlers ask the authz.Guard and never
// compare roles. Staff actions (role changes, tokens made for someone) are
// written to the admin audit log of package adminlog in the same
// transaction as the change.
//
// Secrets are stored only as SHA-256 hashes: session cookies and API
// tokens carry 256 random bits, so the hash cannot be guessed back.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/background"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/emailaddr"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/ratelimit"
	"github.com/stewardhq/steward/internal/web"
)

// Defaults for the zero values of Config.
const (
	DefaultGoogleJWKSURL       = "https://www.googleapis.com/oauth2/v3/certs"
	DefaultClockSkew           = time.Minute
	DefaultJWKSRefetchInterval = time.Minute
	DefaultSessionIdle         = 7 * 24 * time.Hour
	DefaultSessionAbsolute     = 30 * 24 * time.Hour
	DefaultPurgeInterval       = time.Hour
)

// DefaultGoogleIssuers are the issuers Google's ID tokens carry.
func DefaultGoogleIssuers() []string {
	return []string{"accounts.google.com", "https://accounts.google.com"}
}

// Admin log actions written by the module.
const (
	ActionRoleUpdate  = "user.role.update"
	ActionTokenCreate = "user.token.create"
)

// ActorCLI is the admin log actor of commands run by an operator.
const ActorCLI = "cli"

// AbuseRecorder receives abuse signals; the risk module implements it.
// kind names the rule that fired, userID is the account concerned or "",
// ip is the client's address as received (the recorder truncates it),
// uaFamily the coarse user agent family and detail a reason code.
type AbuseRecorder interface {
	RecordAbuse(ctx context.Context, kind, userID, ip, uaFamily, detail string) error
}

// Abuse kinds the module records.
const (
	AbuseSignInFailed = "sign_in_failed"
	AbuseRateLimited  = "rate_limited"
)

// Config is the module's part of the configuration. Zero durations and
// limits take the defaults.
type Config struct {
	// GoogleClientID is the OAuth client id ID tokens must be issued for
	// (their aud). Empty turns Google sign-in off: its route answers 503.
	GoogleClientID string
	// GoogleJWKSURL serves Google's signing keys; DefaultGoogleJWKSURL when
	// empty.
	GoogleJWKSURL string
	// GoogleIssuers are the accepted iss values; DefaultGoogleIssuers when
	// empty.
	GoogleIssuers []string
	// ClockSkew is the leeway for exp and iat; DefaultClockSkew when zero.
	ClockSkew time.Duration
	// JWKSRefetchInterval is the shortest time between two key fetches
	// forced by an unknown key id; DefaultJWKSRefetchInterval when zero.
	JWKSRefetchInterval time.Duration
	// AfterSignInURL is where a browser's form sign-in (the Google
	// redirect flow, the dev email form, a first-run link) is sent after
	// signing in, with 303. Empty answers the form posts with JSON as One
	// Tap is answered, and sends a first-run link to "/".
	AfterSignInURL string
	// SignInURL is the page people sign in on. A form post to a sign-in
	// route that fails for a reason the person can act on is sent back
	// there (303) with ?error=<code> (see SignInErrorCodes), and a form
	// post to the sign-out route is sent there after signing out. Empty
	// answers those form posts as JSON callers are answered.
	SignInURL string
	// CookieSecure marks cookies Secure. Turn it off only for local http.
	CookieSecure bool
	// SessionIdle ends a session unused this long; SessionAbsolute ends
	// any session this long after sign-in.
	SessionIdle, SessionAbsolute time.Duration
	// PurgeInterval is how often the leading process deletes ended
	// sessions; DefaultPurgeInterval when zero.
	PurgeInterval time.Duration
	// SupportedLanguages are the BCP 47 tags a user may choose, the first
	// being the default; ["en"] when empty.
	SupportedLanguages []string
	// Dev mounts POST /v1/auth/dev, sign-in by email alone. New refuses it
	// when Env is "production".
	Dev bool
	// Env names the deployment ("production", "staging", "development").
	Env string
	// CSRFExemptPaths lists paths (exact, such as "/v1/events") whose
	// unsafe requests the CSRF middleware lets through without a token
	// even when they carry the session cookie: endpoints fed by
	// navigator.sendBeacon, which cannot set headers. Such an endpoint must
	// not change anything of the account on the session's authority.
	CSRFExemptPaths []string
	// RateLimit bounds the sign-in endpoints.
	RateLimit RateLimit
}

// RateLimit bounds requests to the sign-in endpoints, per client address
// and per account, with token buckets. Zero fields take the defaults.
type RateLimit struct {
	// IPPerMinute and IPBurst bound sign-in requests from one address;
	// defaults 20 and 20.
	IPPerMinute float64
	IPBurst     int
	// AccountPerMinute and AccountBurst bound sign-ins and token
	// creations of one account; defaults 5 and 10.
	AccountPerMinute float64
	AccountBurst     int
	// FailedAuthPerMinute and FailedAuthBurst bound failed
	// authentications (unknown bearer tokens, dead session cookies) per
	// client address (an IPv6 /64); past them the address's credentials
	// are not checked until it has waited. Defaults 10 and 20.
	FailedAuthPerMinute float64
	FailedAuthBurst     int
	// MaxKeys bounds the addresses and accounts tracked at once (memory);
	// default 10000 each.
	MaxKeys int
}

func (c Config) withDefaults() Config {
	defaults.String(&c.GoogleJWKSURL, DefaultGoogleJWKSURL)
	if len(c.GoogleIssuers) == 0 {
		c.GoogleIssuers = DefaultGoogleIssuers()
	}
	defaults.Positive(&c.ClockSkew, DefaultClockSkew)
	defaults.Positive(&c.JWKSRefetchInterval, DefaultJWKSRefetchInterval)
	defaults.Positive(&c.SessionIdle, DefaultSessionIdle)
	defaults.Positive(&c.SessionAbsolute, DefaultSessionAbsolute)
	defaults.Positive(&c.PurgeInterval, DefaultPurgeInterval)
	if len(c.SupportedLanguages) == 0 {
		c.SupportedLanguages = []string{"en"}
	}
	r := &c.RateLimit
	defaults.Positive(&r.FailedAuthPerMinute, 10)
	defaults.Positive(&r.FailedAuthBurst, 20)
	defaults.Positive(&r.IPPerMinute, 20)
	defaults.Positive(&r.IPBurst, 20)
	defaults.Positive(&r.AccountPerMinute, 5)
	defaults.Positive(&r.AccountBurst, 10)
	defaults.Positive(&r.MaxKeys, 10000)
	return c
}

// Deps are the module's collaborators.
type Deps struct {
	// DB is the SQL store, migrated. Required.
	DB *bun.DB
	// Logger receives the module's messages; nil discards them.
	Logger *slog.Logger
	// Guard applies the access policy. Required.
	Guard *authz.Guard
	// Abuse receives failed sign-ins and rate-limit hits; nil drops them.
	Abuse AbuseRecorder
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// HTTPClient fetches Google's keys; nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// Balance reports an account's credits and subscription for
	// GET /v1/me; nil leaves them out.
	Balance func(ctx context.Context, userID string) (Balance, error)
	// OnSignIn, when set, runs after a browser sign-in opened a session,
	// with the request (its cookies) and the account: the consent module
	// merges the visitor's choices into the account there.
	OnSignIn func(c *fiber.Ctx, userID string) error
	// Leader gates the purge of ended sessions to one of the processes
	// sharing the SQL store; nil: this process purges.
	Leader module.Leader
}

// Module is the accounts module.
type Module struct {
	cfg      Config
	store    store
	log      *slog.Logger
	guard    *authz.Guard
	abuse    AbuseRecorder
	now      func() time.Time
	balance  func(ctx context.Context, userID string) (Balance, error)
	onSignIn func(c *fiber.Ctx, userID string) error
	leader   module.Leader
	langs    languages
	google   *googleVerifier
	// firstRun holds the one-time first-admin link; nil outside
	// development, where the link is never made and its route not mounted.
	firstRun *firstRunLink

	ipLimit      *ratelimit.Limiter
	accountLimit *ratelimit.Limiter
	// failLimit counts failed authentications per client address.
	failLimit *ratelimit.Limiter
	// abuseLimit keeps a flood of refused requests from becoming a flood
	// of abuse log rows: one row per kind and key per minute.
	abuseLimit *ratelimit.Limiter

	// bg runs the purge of ended sessions.
	bg background.Group
}

// New builds the module. It refuses dev sign-in in production.
func New(cfg Config, deps Deps) (*Module, error) {
	cfg = cfg.withDefaults()
	if cfg.Dev && strings.EqualFold(cfg.Env, "production") {
		return nil, errors.New("accounts: dev sign-in (--dev) is refused when STEWARD_ENV=production")
	}
	if deps.DB == nil || deps.Guard == nil {
		return nil, errors.New("accounts: a database and a guard are required")
	}
	for _, c := range []struct{ name, url string }{{"after-sign-in", cfg.AfterSignInURL}, {"sign-in", cfg.SignInURL}} {
		if c.url == "" {
			continue
		}
		if u, err := url.Parse(c.url); err != nil || (u.Scheme == "" && u.Path == "") {
			return nil, fmt.Errorf("accounts: %s URL %q is not a URL", c.name, c.url)
		}
	}
	defaults.Logger(&deps.Logger)
	defaults.Clock(&deps.Now)
	langs, err := newLanguages(cfg.SupportedLanguages)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	m := &Module{
		cfg:          cfg,
		store:        store{db: deps.DB},
		log:          deps.Logger,
		guard:        deps.Guard,
		abuse:        deps.Abuse,
		now:          deps.Now,
		balance:      deps.Balance,
		onSignIn:     deps.OnSignIn,
		leader:       deps.Leader,
		langs:        langs,
		ipLimit:      perMinute(cfg.RateLimit.IPPerMinute, cfg.RateLimit.IPBurst, cfg.RateLimit.MaxKeys),
		accountLimit: perMinute(cfg.RateLimit.AccountPerMinute, cfg.RateLimit.AccountBurst, cfg.RateLimit.MaxKeys),
		failLimit:    perMinute(cfg.RateLimit.FailedAuthPerMinute, cfg.RateLimit.FailedAuthBurst, cfg.RateLimit.MaxKeys),
		abuseLimit:   perMinute(1, 1, cfg.RateLimit.MaxKeys),
	}
	if strings.EqualFold(cfg.Env, "development") {
		m.firstRun = &firstRunLink{}
	}
	if cfg.GoogleClientID != "" {
		m.google, err = newGoogleVerifier(cfg, deps.HTTPClient, deps.Now, deps.Logger)
		if err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
	}
	return m, nil
}

// Name returns "accounts".
func (m *Module) Name() string { return "accounts" }

// Models returns the module's bun models for the data map. The admin_log
// table, created by the same migration, is listed by adminlog.Models.
func (m *Module) Models() []any { return models() }

// Route paths.
const (
	pathGoogle   = "/v1/auth/google"
	pathDev      = "/v1/auth/dev"
	pathLogout   = "/v1/auth/logout"
	pathFirstRun = "/v1/auth/first-run"
	pathMe       = "/v1/me"
	pathSessions = "/v1/me/sessions"
	pathSession  = "/v1/me/sessions/:id"
	pathTokens   = "/v1/me/tokens"
	pathToken    = "/v1/me/tokens/:id"
	pathRole     = "/v1/admin/users/:id/role"
)

const tag = "accounts"

// Mount adds the module's routes.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: pathGoogle, Tag: tag,
		Summary: "Sign in with a Google ID token (Sign-In button redirect or One Tap)",
		Description: "Takes the `credential` Google posts, as a form (redirect flow: `credential` and `g_csrf_token`) " +
			"or as JSON (`{\"credential\": \"...\", \"g_csrf_token\": \"...\"}` from a One Tap callback). Either way the " +
			"`g_csrf_token` value must equal the `g_csrf_token` cookie. Sets the session cookie and answers the account, " +
			"or redirects (303) the form flow when the server is configured to.",
		Request:   web.Body{ContentType: fiber.MIMEApplicationForm, Schema: googleForm{}},
		Responses: map[int]any{200: MeView{}, 303: nil, 401: nil, 409: nil, 429: nil, 503: nil},
	}, m.formErrors, m.limitIP, m.handleGoogle)
	if m.cfg.Dev {
		web.Route(r, doc, web.RouteDoc{
			Method: fiber.MethodPost, Path: pathDev, Tag: tag,
			Summary: "Sign in by email alone (development servers only)",
			Description: "Creates the account when it does not exist. Mounted only by `steward serve --dev`. " +
				"Takes JSON (`{\"email\": \"...\"}`, answered with the account) or a form post with the field `email` " +
				"(the sign-in page's form, which works without JavaScript), which is redirected (303) to the page after " +
				"sign-in, or back to the sign-in page with `?error=<code>` when it fails.",
			Request:   devRequest{},
			Responses: map[int]any{200: MeView{}, 303: nil, 429: nil},
		}, m.formErrors, m.limitIP, m.handleDev)
	}
	if m.firstRun != nil {
		web.Route(r, doc, web.RouteDoc{
			Method: fiber.MethodGet, Path: pathFirstRun, Tag: tag,
			Summary: "Sign in as the first administrator with the one-time link `steward serve` printed (development only)",
			Description: "Works once, for " + FirstRunLinkTTL.String() + " after it was printed, and only while no active " +
				"administrator exists. Signs the browser in as `" + FirstAdminEmail + "` (created with the admin role) and " +
				"redirects (303) to the page after sign-in. Mounted only when STEWARD_ENV is development.",
			Query:     firstRunQuery{},
			Responses: map[int]any{303: nil, 403: nil, 404: nil, 429: nil},
		}, m.limitIP, m.handleFirstRun)
	}
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: pathLogout, Tag: tag,
		Summary: "Sign out: end the current session and clear its cookies",
		Description: "A form post (a page's sign-out button, with the session's CSRF token in the `csrf_token` field) " +
			"is redirected (303) to the sign-in page when the server has one.",
		Responses: map[int]any{204: nil, 303: nil},
	}, m.handleLogout)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathMe, Tag: tag, Auth: true,
		Summary:   "The caller's account",
		Responses: map[int]any{200: MeView{}},
	}, m.handleMe)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPatch, Path: pathMe, Tag: tag, Auth: true,
		Summary:   "Change the caller's name or language",
		Request:   patchMeRequest{},
		Responses: map[int]any{200: MeView{}},
	}, m.handlePatchMe)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathSessions, Tag: tag, Auth: true,
		Summary:   "The caller's live sessions",
		Responses: map[int]any{200: []SessionView{}},
	}, m.handleListSessions)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodDelete, Path: pathSession, Tag: tag, Auth: true,
		Summary:   "End one of the caller's sessions, at once",
		Responses: map[int]any{204: nil},
	}, m.handleDeleteSession)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathTokens, Tag: tag, Auth: true,
		Summary:   "The caller's API tokens (never the tokens themselves)",
		Responses: map[int]any{200: []TokenView{}},
	}, m.handleListTokens)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: pathTokens, Tag: tag, Auth: true,
		Summary:   "Create an API token for the caller; the answer shows it once",
		Request:   newTokenRequest{},
		Responses: map[int]any{201: NewTokenView{}, 429: nil},
	}, m.handleCreateToken)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodDelete, Path: pathToken, Tag: tag, Auth: true,
		Summary:   "Revoke one of the caller's API tokens, at once",
		Responses: map[int]any{204: nil},
	}, m.handleDeleteToken)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPut, Path: pathRole, Tag: tag, Auth: true,
		Summary:     "Change an account's role (administrators)",
		Description: "Allowed when the access policy lets the caller update `user.authorization.role`. Written to the admin audit log.",
		Request:     roleRequest{},
		Responses:   map[int]any{200: UserView{}},
	}, m.handleSetRole)
}

// Start logs the state of sign-in and starts the purge of ended
// sessions, every PurgeInterval on the leading process.
func (m *Module) Start(ctx context.Context) error {
	if m.cfg.Dev {
		m.log.WarnContext(ctx, "DEV SIGN-IN IS ON: POST "+pathDev+" signs anyone in by email alone; never run a public server with --dev",
			slog.String("env", m.cfg.Env))
	}
	if m.google == nil {
		m.log.InfoContext(ctx, "google sign-in is off: no Google client id is configured")
	}
	if err := m.bg.Start(ctx, m.purgeLoop); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// Stop ends the purge loop and the Google key cache.
func (m *Module) Stop(ctx context.Context) error {
	if err := m.bg.Stop(ctx); err != nil {
		return fmt.Errorf("stop accounts: %w", err)
	}
	if m.google != nil {
		return m.google.close(ctx)
	}
	return nil
}

func (m *Module) purgeLoop(ctx context.Context) {
	background.Every(ctx, m.cfg.PurgeInterval, func(ctx context.Context) {
		// Every process would delete the same rows; one is enough.
		if !module.Leads(m.leader) {
			return
		}
		if _, err := m.PurgeSessions(ctx); err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "purge ended sessions", slog.Any("error", err))
		}
	})
}

// PurgeSessions deletes sessions past their idle or absolute end and
// returns how many. They no longer sign anyone in; this only frees space.
func (m *Module) PurgeSessions(ctx context.Context) (int64, error) {
	now := m.now().UTC()
	return m.store.purgeSessions(ctx, now, now.Add(-m.cfg.SessionIdle))
}

// CreateToken returns a new API token for the account with email, creating
// the account with role when it does not exist and setting its role to
// role when it does. It is what `steward token create` runs; the creation
// (and any role change) is written to the admin log with the actor "cli".
// The token is shown once and stored only as its hash.
func (m *Module) CreateToken(ctx context.Context, email, role string) (string, error) {
	if !emailaddr.Valid(normalizeEmail(email)) {
		return "", errs.Invalid("email", "format", "Must be an email address such as ann@example.com.")
	}
	if !authz.ValidRole(role) {
		return "", errs.Invalid("role", "enum", "Must be one of: user, support, analyst, dpo, admin.")
	}
	now := m.now().UTC()
	tok := newToken()
	err := m.store.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		u, created, err := m.store.userForEmail(ctx, tx, email, role, m.langs.names[0], now)
		if err != nil {
			return err
		}
		if !created && u.Role != role {
			from := u.Role
			u.Role = role
			if _, err := tx.NewUpdate().Model(&u).Column("role").WherePK().Exec(ctx); err != nil {
				return fmt.Errorf("update role: %w", err)
			}
			if _, err := adminlog.Append(ctx, tx, adminlog.Entry{
				Time: now, ActorID: ActorCLI, Action: ActionRoleUpdate, TargetID: u.ID,
				Details: map[string]any{"from": from, "to": role},
			}); err != nil {
				return err
			}
		}
		t := APIToken{ID: ids.New(prefixToken), UserID: u.ID, SecretHash: hashSecret(tok), Name: "cli", CreatedAt: now}
		if err := m.store.insertToken(ctx, tx, t); err != nil {
			return err
		}
		_, err = adminlog.Append(ctx, tx, adminlog.Entry{
			Time: now, ActorID: ActorCLI, Action: ActionTokenCreate, TargetID: u.ID,
			Details: map[string]any{"token_id": t.ID, "role": role, "account_created": created},
		})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	return tok, nil
}

// UserByEmail returns the account with email (compared case-insensitively),
// or an error wrapping errs.ErrNotFound.
func (m *Module) UserByEmail(ctx context.Context, email string) (User, error) {
	u, err := m.store.userByEmail(ctx, m.store.db, email)
	if err != nil {
		return User{}, fmt.Errorf("user by email: %w", err)
	}
	return u, nil
}

// UserByID returns the account with id, or an error wrapping
// errs.ErrNotFound.
func (m *Module) UserByID(ctx context.Context, id string) (User, error) {
	u, err := m.store.userByID(ctx, m.store.db, id)
	if err != nil {
		return User{}, fmt.Errorf("user by id: %w", err)
	}
	return u, nil
}

// SignedInAt returns when the principal's session began: its sign-in.
// A bearer token is no sign-in, so it has none (an error wrapping
// errs.ErrNotFound), and neither has a session that ended or is another
// account's. The privacy module asks it before a self-service erasure.
func (m *Module) SignedInAt(ctx context.Context, p authz.Principal) (time.Time, error) {
	if p.Method != authz.MethodSession || p.CredentialID == "" {
		return time.Time{}, errs.E(errs.ErrNotFound, "No sign-in behind this credential.")
	}
	sess, err := m.store.sessionOf(ctx, p.UserID, p.CredentialID)
	if err != nil {
		return time.Time{}, fmt.Errorf("signed in at: %w", err)
	}
	return sess.CreatedAt, nil
}

// SupportedLanguages returns the canonical tags of the supported
// languages, the default first.
func (m *Module) SupportedLanguages() []string { return slices.Clone(m.langs.names) }

var (
	_ module.Module  = (*Module)(nil)
	_ module.Starter = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)
