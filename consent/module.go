// Package consent provides cookie and analytics consent: the choices of
// each visitor and account per purpose (necessary, functional, analytics,
// marketing), the append-only proof log behind them, the Global Privacy
// Control signal, the consent banner script (GET /consent.js) with its
// JavaScript API, and the lookup the analytics gate uses.
//
// The rules it keeps:
//
//   - Withdrawing is as easy as giving: one PUT /v1/consent, one click in
//     the banner or the preferences dialog, where Reject all sits beside
//     Accept all with the same prominence.
//   - A choice carries the privacy policy version it was made under; when
//     the policy changes, GET /v1/consent answers ask: true and the banner
//     shows again. The old choice stays in effect until the visitor
//     answers, because the purposes themselves did not change.
//   - A choice lapses after Config.ValidFor (13 months by default); a
//     lapsed grant is no grant, and the banner asks again.
//   - At sign-in the visitor's choices merge into the account's: for each
//     purpose the stricter choice wins (a denial beats a grant), until the
//     user chooses again.
//   - Global Privacy Control (Sec-GPC: 1, or navigator.globalPrivacyControl
//     reported by the banner script) opts the visitor out of marketing,
//     recorded with method "gpc", unless they switch marketing on
//     themselves while the signal is on. "Accept all" under the signal is
//     not such a choice: it grants every other purpose and leaves marketing
//     off.
//
// Every choice appends proof rows (consent_log) and replaces the subject's
// state rows (consent_state). A choice made by a signed-in user applies to
// the account and to the browser's visitor id, so signing out never brings
// back a choice the user has withdrawn.
package consent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/enrich"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

// Purposes, in the order the banner lists them.
const (
	PurposeNecessary  = policies.PurposeNecessary
	PurposeFunctional = policies.PurposeFunctional
	PurposeAnalytics  = policies.PurposeAnalytics
	PurposeMarketing  = policies.PurposeMarketing
)

// Purposes lists every purpose.
func Purposes() []string {
	return []string{PurposeNecessary, PurposeFunctional, PurposeAnalytics, PurposeMarketing}
}

// optional lists the purposes a subject may grant or deny.
var optionalPurposes = []string{PurposeFunctional, PurposeAnalytics, PurposeMarketing}

// Methods a choice is recorded with.
const (
	MethodBannerAccept = "banner_accept"
	MethodBannerReject = "banner_reject"
	MethodBannerSave   = "banner_save"
	MethodPreferences  = "preferences"
	MethodGPC          = "gpc"
	MethodAPI          = "api"
	// MethodMerge marks state an account took over from a visitor at
	// sign-in; clients cannot send it.
	MethodMerge = "merge"
)

// Methods lists the methods a client may send.
func Methods() []string {
	return []string{MethodBannerAccept, MethodBannerReject, MethodBannerSave, MethodPreferences, MethodGPC, MethodAPI}
}

// Defaults for zero Config fields.
const (
	DefaultCookieName    = "steward_vid"
	DefaultValidFor      = "P13M"
	DefaultBannerVersion = "1"
	DefaultCacheTTL      = 2 * time.Second
	DefaultCSRFCookie    = "steward_csrf"
	DefaultCSRFHeader    = "X-CSRF-Token"
	cacheMaxEntries      = 100_000
)

// Config configures the module.
type Config struct {
	// PolicyVersion is the version of the privacy policy in force, such as
	// "2026-01-15". Required. A choice made under another version is asked
	// again.
	PolicyVersion string
	// BannerVersion is the version of the banner's text; zero means
	// DefaultBannerVersion.
	BannerVersion string
	// PreviousPolicyVersion is the version in force before PolicyVersion.
	// PUT /v1/consent accepts a choice made under it until
	// PreviousPolicyUntil, since a page opened before the change still
	// shows the old banner and sends the old version; the choice is stored
	// with the version the visitor was shown and asked again, like every
	// choice made under an older policy. Zero accepts PolicyVersion only.
	PreviousPolicyVersion string
	PreviousPolicyUntil   time.Time
	// ValidFor is how long a choice holds, an ISO 8601 period; zero means
	// DefaultValidFor (13 months).
	ValidFor string
	// Text is the banner's wording; zero fields take the English defaults.
	Text BannerText
	// CookieName names the visitor id cookie; zero means
	// DefaultCookieName.
	CookieName string
	// CookieSecure sets the cookie's Secure attribute; set it whenever the
	// site is served over HTTPS.
	CookieSecure bool
	// CookieDomain sets the cookie's Domain attribute; empty keeps it to
	// the host.
	CookieDomain string
	// CSRFCookie and CSRFHeader name the session's double-submit CSRF
	// token: the banner script reads the cookie and echoes it in the
	// header on PUT /v1/consent, as a signed-in visitor's unsafe requests
	// need. Zero means DefaultCSRFCookie and DefaultCSRFHeader.
	CSRFCookie, CSRFHeader string
	// GPCLastUpdate is the date /.well-known/gpc.json reports, YYYY-MM-DD;
	// zero means the date the support was introduced.
	GPCLastUpdate string
	// HashKey keys the hash that replaces subject ids in the proof log on
	// erasure. Pseudonymize fails without it.
	HashKey []byte
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// CacheTTL bounds how long ConsentFor reuses an answer; choices made
	// through this process clear it at once. Zero means DefaultCacheTTL; a
	// negative value turns the cache off.
	CacheTTL time.Duration
}

// Deps are what the module needs from the rest of Steward.
type Deps struct {
	// DB is the SQL store. Required.
	DB *bun.DB
	// Logger receives the module's log; nil discards it.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Warehouse, when set, receives a copy of every browser sign-in
	// OnSignIn records (table visitor_links): attribution joins a
	// browser's anonymous events to the account there. Nil keeps the
	// sign-ins in the SQL store only.
	Warehouse Warehouse
}

// Warehouse is the analytics warehouse as the module writes to it;
// analytics/warehouse.Warehouse is one.
type Warehouse interface {
	Insert(ctx context.Context, table string, columns []string, rows [][]any) error
}

// Module is the consent module.
type Module struct {
	cfg      Config
	now      func() time.Time
	log      *slog.Logger
	store    *store
	validFor policies.Period
	ua       *enrich.UAParser
	script   scripts

	// warehouse receives the copies of sign-ins; nil when none is kept.
	warehouse Warehouse

	// cache holds ConsentFor answers; gen is bumped by every write so
	// older answers are never served after a change.
	cacheMu sync.RWMutex
	cache   map[subjectKey]cachedConsent
	gen     atomic.Uint64
}

type cachedConsent struct {
	purposes []string
	explicit bool
	gen      uint64
	at       time.Time
}

// New builds the module.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.DB == nil {
		return nil, errors.New("consent: DB is required")
	}
	if cfg.PolicyVersion == "" {
		return nil, errors.New("consent: PolicyVersion is required")
	}
	if !versionOK(cfg.PolicyVersion) {
		return nil, fmt.Errorf("consent: PolicyVersion %q: use 1 to 64 letters, digits, '.', '-' or '_'", cfg.PolicyVersion)
	}
	defaults.String(&cfg.BannerVersion, DefaultBannerVersion)
	if !versionOK(cfg.BannerVersion) {
		return nil, fmt.Errorf("consent: BannerVersion %q: use 1 to 64 letters, digits, '.', '-' or '_'", cfg.BannerVersion)
	}
	if cfg.PreviousPolicyVersion != "" && !versionOK(cfg.PreviousPolicyVersion) {
		return nil, fmt.Errorf("consent: PreviousPolicyVersion %q: use 1 to 64 letters, digits, '.', '-' or '_'", cfg.PreviousPolicyVersion)
	}
	defaults.String(&cfg.ValidFor, DefaultValidFor)
	period, err := policies.ParsePeriod(cfg.ValidFor)
	if err != nil {
		return nil, fmt.Errorf("consent: ValidFor: %w", err)
	}
	defaults.String(&cfg.CookieName, DefaultCookieName)
	defaults.String(&cfg.CSRFCookie, DefaultCSRFCookie)
	defaults.String(&cfg.CSRFHeader, DefaultCSRFHeader)
	defaults.String(&cfg.GPCLastUpdate, "2026-11-01")
	if _, err := time.Parse(time.DateOnly, cfg.GPCLastUpdate); err != nil {
		return nil, fmt.Errorf("consent: GPCLastUpdate %q is not YYYY-MM-DD", cfg.GPCLastUpdate)
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	defaults.Clock(&deps.Now)
	defaults.Logger(&deps.Logger)
	rules, err := enrich.LoadRules()
	if err != nil {
		return nil, fmt.Errorf("consent: %w", err)
	}
	m := &Module{
		cfg:      cfg,
		now:      deps.Now,
		log:      deps.Logger.With(slog.String("module", "consent")),
		store:    &store{db: deps.DB},
		validFor: period,
		ua:       enrich.NewUAParser(rules, 2000),
		cache:    map[subjectKey]cachedConsent{},

		warehouse: deps.Warehouse,
	}
	script, err := buildScripts(cfg)
	if err != nil {
		return nil, err
	}
	m.script = script
	return m, nil
}

// Name is the module's name.
func (m *Module) Name() string { return "consent" }

// Models returns the module's bun models.
func (m *Module) Models() []any { return []any{(*State)(nil), (*Proof)(nil), (*VisitorLink)(nil)} }

// Mount adds the consent routes.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method:  fiber.MethodGet,
		Path:    "/v1/consent",
		Summary: "The caller's consent, and whether to ask again",
		Description: "The choice of the signed-in user, or of the browser's visitor id, per purpose, with " +
			"`ask: true` when there is no choice, the privacy policy changed since, or the choice expired. " +
			"A request with `Sec-GPC: 1` records the opt-out of marketing it signals.",
		Tag:       "consent",
		Query:     ViewQuery{},
		Responses: map[int]any{fiber.StatusOK: View{}},
	}, m.getConsent)
	web.Route(r, doc, web.RouteDoc{
		Method:  fiber.MethodPut,
		Path:    "/v1/consent",
		Summary: "Record a consent choice",
		Description: "Grants or denies purposes. Purposes left out keep their current choice (denied when " +
			"there is none); banner_accept and banner_reject may leave out every purpose.",
		Tag:       "consent",
		Request:   Choice{},
		Responses: map[int]any{fiber.StatusOK: View{}, fiber.StatusBadRequest: nil},
	}, m.putConsent)
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/.well-known/gpc.json",
		Summary:   "Global Privacy Control support statement",
		Tag:       "consent",
		Responses: map[int]any{fiber.StatusOK: GPCSupport{}},
	}, m.gpcJSON)
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/consent.js",
		Summary:   "The consent banner and its JavaScript API (window.steward.consent), in the language of Accept-Language",
		Tag:       "consent",
		Responses: map[int]any{fiber.StatusOK: web.Body{ContentType: "text/javascript"}, fiber.StatusNotModified: nil},
	}, m.script.serve)
}

// effective is a subject's consent as it applies now.
type effective struct {
	states map[string]State
	// granted holds the purposes in effect (necessary included): granted
	// and not lapsed.
	granted map[string]bool
	// explicitMarketing is a marketing grant made while GPC was on.
	explicitMarketing bool
	// chosen is the newest choice made by the subject (not by GPC alone).
	chosen *State
}

// evaluate applies lapse and the purpose list to a subject's state rows.
func (m *Module) evaluate(states map[string]State, now time.Time) effective {
	e := effective{states: states, granted: map[string]bool{PurposeNecessary: true}}
	for _, p := range optionalPurposes {
		st, ok := states[p]
		if !ok {
			continue
		}
		if st.Granted && now.Before(st.ExpiresAt) {
			e.granted[p] = true
		}
		if st.Method != MethodGPC && (e.chosen == nil || st.DecidedAt.After(e.chosen.DecidedAt)) {
			s := st
			e.chosen = &s
		}
	}
	if mk, ok := states[PurposeMarketing]; ok {
		e.explicitMarketing = e.granted[PurposeMarketing] && mk.GPC && mk.Method != MethodGPC
	}
	return e
}

// lookup reads the state that applies to a caller: the user's when signed
// in and the account has one, otherwise the visitor's.
func (m *Module) lookup(ctx context.Context, visitorID, userID string) (map[string]State, error) {
	if userID != "" {
		st, err := m.store.states(ctx, "", userID)
		if err != nil {
			return nil, err
		}
		if len(st) > 0 || visitorID == "" {
			return st, nil
		}
	}
	return m.store.states(ctx, visitorID, "")
}

// ConsentFor returns the purposes in effect for a visitor and a user
// (either may be empty), for the analytics gate: necessary always, plus
// every purpose granted and not lapsed. explicitMarketing reports a
// marketing grant made while Global Privacy Control was on. Answers are
// cached for Config.CacheTTL; a choice recorded through this process
// clears the cache at once.
func (m *Module) ConsentFor(ctx context.Context, visitorID, userID string) ([]string, bool, error) {
	key := subjectKey{visitorID: visitorID, userID: userID}
	now := m.now()
	gen := m.gen.Load()
	if m.cfg.CacheTTL > 0 {
		m.cacheMu.RLock()
		c, ok := m.cache[key]
		m.cacheMu.RUnlock()
		if ok && c.gen == gen && now.Sub(c.at) < m.cfg.CacheTTL {
			return c.purposes, c.explicit, nil
		}
	}
	states, err := m.lookup(ctx, visitorID, userID)
	if err != nil {
		return nil, false, fmt.Errorf("consent for subject: %w", err)
	}
	e := m.evaluate(states, now)
	purposes := make([]string, 0, 4)
	for _, p := range Purposes() {
		if e.granted[p] {
			purposes = append(purposes, p)
		}
	}
	if m.cfg.CacheTTL > 0 {
		m.cacheMu.Lock()
		if len(m.cache) >= cacheMaxEntries {
			clear(m.cache)
		}
		m.cache[key] = cachedConsent{purposes: purposes, explicit: e.explicitMarketing, gen: gen, at: now}
		m.cacheMu.Unlock()
	}
	return purposes, e.explicitMarketing, nil
}

// invalidate drops every cached answer.
func (m *Module) invalidate() { m.gen.Add(1) }

// MergeVisitor merges a visitor's choices into the account at sign-in. For
// each purpose the stricter choice wins: a purpose stays granted only when
// both the account and the visitor granted it (a lapsed grant counts as
// none). A purpose only one of them decided takes that decision. The
// visitor's own rows are left as they are. Call it from the sign-in hook
// with the steward_vid cookie's value; an empty or unknown visitor id is
// not an error.
func (m *Module) MergeVisitor(ctx context.Context, visitorID, userID string) error {
	if userID == "" {
		return errors.New("merge consent: no user id")
	}
	if visitorID == "" {
		return nil
	}
	visitor, err := m.store.states(ctx, visitorID, "")
	if err != nil {
		return fmt.Errorf("merge consent: %w", err)
	}
	if len(visitor) == 0 {
		return nil
	}
	account, err := m.store.states(ctx, "", userID)
	if err != nil {
		return fmt.Errorf("merge consent: %w", err)
	}
	now := m.now().UTC()
	var merged []State
	changed := false
	for _, p := range Purposes() {
		v, hasV := visitor[p]
		a, hasA := account[p]
		var pick State
		switch {
		case hasV && hasA:
			pick = stricter(a, v, now)
		case hasV:
			pick = v
		case hasA:
			pick = a
		default:
			continue
		}
		if !hasA || pick.ProofID != a.ProofID {
			changed = true
		}
		merged = append(merged, pick)
	}
	if !changed {
		return nil
	}
	for i := range merged {
		// Rows taken over from the visitor record how the account got
		// them; the decision time stays that of the original choice, so
		// expiry is not extended by signing in.
		if merged[i].VisitorID != nil {
			merged[i].Method = MethodMerge
		}
	}
	if err := m.store.mergeInto(ctx, visitorID, userID, merged, now, "", ""); err != nil {
		return fmt.Errorf("merge consent: %w", err)
	}
	m.invalidate()
	return nil
}

// stricter returns the stricter of two choices for one purpose: a denial
// (or a lapsed grant) over a grant; between equals, the newer.
func stricter(a, b State, now time.Time) State {
	ga := a.Granted && now.Before(a.ExpiresAt)
	gb := b.Granted && now.Before(b.ExpiresAt)
	switch {
	case ga && !gb:
		return b
	case gb && !ga:
		return a
	case b.DecidedAt.After(a.DecidedAt):
		return b
	default:
		return a
	}
}

// Pseudonymize erases the link between consent records and a subject: the
// proof rows of the user and the visitor ids keep their content with a
// keyed hash (SubjectHash) in place of the ids, and the current state rows
// are deleted. It returns the number of proof rows changed and is
// idempotent.
func (m *Module) Pseudonymize(ctx context.Context, subject module.SubjectRef) (int, error) {
	if len(m.cfg.HashKey) == 0 {
		return 0, errors.New("pseudonymize consent: no hash key configured")
	}
	n, err := m.store.pseudonymize(ctx, m.cfg.HashKey, subject.UserID, subject.VisitorIDs())
	if err != nil {
		return 0, err
	}
	m.invalidate()
	return n, nil
}

// Proofs returns the proof log of a visitor and a user (either may be
// empty), oldest first, for access exports and audits.
func (m *Module) Proofs(ctx context.Context, visitorID, userID string) ([]Proof, error) {
	return m.store.proofs(ctx, visitorID, userID)
}

func versionOK(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

var _ module.Module = (*Module)(nil)
