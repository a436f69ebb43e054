package consent

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/analytics/enrich"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ipaddr"
	"github.com/stewardhq/steward/internal/web"
)

// HeaderGPC is the Global Privacy Control request header.
const HeaderGPC = "Sec-GPC"

// Reasons GET /v1/consent gives for asking again.
const (
	AskNoChoice      = "no_choice"
	AskPolicyChanged = "policy_changed"
	AskExpired       = "expired"
)

// View is a caller's consent as GET and PUT /v1/consent answer it.
type View struct {
	// Subject is "user" when the choice shown is the signed-in account's,
	// "visitor" for a browser's, "none" before any choice.
	Subject string `json:"subject"`
	// Purposes says, per purpose, whether it is in effect now: granted,
	// not lapsed, and for marketing not overridden by the GPC signal.
	Purposes map[string]bool `json:"purposes"`
	// Ask is true when the banner should ask: no choice yet, a new privacy
	// policy version, or a lapsed choice.
	Ask bool `json:"ask"`
	// AskReason is no_choice, policy_changed or expired when Ask is true.
	AskReason string `json:"ask_reason,omitempty"`
	// PolicyVersion and BannerVersion are the versions in force, which a
	// new choice should be made under.
	PolicyVersion string `json:"policy_version"`
	BannerVersion string `json:"banner_version"`
	// GPC is true when the request carried the Global Privacy Control
	// signal and marketing is off because of it.
	GPC bool `json:"gpc"`
	// Choice describes the stored choice, absent before any.
	Choice *ChoiceInfo `json:"choice,omitempty"`
}

// ChoiceInfo describes the newest stored choice.
type ChoiceInfo struct {
	Method        string    `json:"method"`
	PolicyVersion string    `json:"policy_version"`
	BannerVersion string    `json:"banner_version"`
	DecidedAt     time.Time `json:"decided_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// Choice is the body of PUT /v1/consent.
type Choice struct {
	// Purposes grants (true) or denies (false) purposes by name.
	Purposes map[string]bool `json:"purposes"`
	// Method is banner_accept, banner_reject, banner_save, preferences,
	// gpc or api.
	Method string `json:"method"`
	// PolicyVersion and BannerVersion are the versions the visitor was
	// shown.
	PolicyVersion string `json:"policy_version"`
	BannerVersion string `json:"banner_version"`
	// GPC reports navigator.globalPrivacyControl, for browsers whose
	// signal the server cannot see in a header.
	GPC bool `json:"gpc,omitempty"`
}

// ViewQuery is the query of GET /v1/consent.
type ViewQuery struct {
	// GPC is "1" when the page's navigator.globalPrivacyControl is true,
	// for browsers that do not send the Sec-GPC header.
	GPC string `query:"gpc"`
}

// GPCSupport is /.well-known/gpc.json.
type GPCSupport struct {
	GPC        bool   `json:"gpc"`
	LastUpdate string `json:"lastUpdate"`
}

func (m *Module) gpcJSON(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=86400")
	return c.JSON(GPCSupport{GPC: true, LastUpdate: m.cfg.GPCLastUpdate})
}

// caller is who a consent request is about.
type caller struct {
	visitorID string
	userID    string
	newCookie bool
	gpc       bool
	userAgent string
	ip        string
}

func (m *Module) callerOf(c *fiber.Ctx) caller {
	var k caller
	if vid := c.Cookies(m.cfg.CookieName); validVisitorID(vid) {
		k.visitorID = strings.Clone(vid)
	}
	if p, ok := authz.FromContext(c.UserContext()); ok {
		k.userID = p.UserID
	}
	k.gpc = c.Get(HeaderGPC) == "1"
	k.userAgent = m.ua.Parse(c.Get(fiber.HeaderUserAgent)).String()
	k.ip = ipaddr.Truncate(enrich.ClientIP(c.Context().RemoteAddr().String(), c.Get(fiber.HeaderXForwardedFor), m.cfg.TrustedProxies))
	return k
}

// ensureVisitor gives the caller a visitor id, issuing a new cookie value
// when the browser has none. The id is random and says nothing about the
// browser; remembering the choice is strictly necessary, so the cookie
// needs no consent of its own.
func (m *Module) ensureVisitor(k *caller) {
	if k.visitorID != "" {
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	k.visitorID = base64.RawURLEncoding.EncodeToString(b[:])
	k.newCookie = true
}

// ForgetBrowser removes the browser's consent cookie from c's response,
// so that what the browser does next carries a new visitor id: after a
// visitor asked to erase what their browser holds, nothing ties its next
// visits to the erased ones. The banner asks for a choice again.
func (m *Module) ForgetBrowser(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name:     m.cfg.CookieName,
		Path:     "/",
		Domain:   m.cfg.CookieDomain,
		Expires:  time.Unix(0, 0),
		Secure:   m.cfg.CookieSecure,
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// setCookie (re)sets the visitor cookie, renewing its lifetime with every
// choice.
func (m *Module) setCookie(c *fiber.Ctx, k caller, now time.Time) {
	expires := m.validFor.AddTo(now)
	c.Cookie(&fiber.Cookie{
		Name:     m.cfg.CookieName,
		Value:    k.visitorID,
		Path:     "/",
		Domain:   m.cfg.CookieDomain,
		Expires:  expires,
		MaxAge:   int(expires.Sub(now).Seconds()),
		Secure:   m.cfg.CookieSecure,
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

func (m *Module) getConsent(c *fiber.Ctx) error {
	v, err := m.Current(c)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(v)
}

// Current is what GET /v1/consent answers: the consent in effect for the
// request's browser and signed-in account. The GPC signal, from the
// Sec-GPC header or the query's gpc=1, is recorded as a marketing opt-out
// the first time it is seen, which may set the visitor cookie.
func (m *Module) Current(c *fiber.Ctx) (View, error) {
	ctx := c.UserContext()
	k := m.callerOf(c)
	// The banner script reports navigator.globalPrivacyControl this way
	// for browsers that do not send the header.
	k.gpc = k.gpc || c.Query("gpc") == "1"
	now := m.now().UTC()
	if k.gpc {
		if err := m.applyGPC(ctx, c, &k, now); err != nil {
			return View{}, err
		}
	}
	return m.view(ctx, k, now)
}

// applyGPC records the opt-out the GPC signal carries, once: when marketing
// is granted without an explicit opt-in made under the signal, or not
// decided at all.
func (m *Module) applyGPC(ctx context.Context, c *fiber.Ctx, k *caller, now time.Time) error {
	states, err := m.lookup(ctx, k.visitorID, k.userID)
	if err != nil {
		return err
	}
	e := m.evaluate(states, now)
	mk, decided := states[PurposeMarketing]
	if decided && (!mk.Granted || e.explicitMarketing) {
		return nil
	}
	m.ensureVisitor(k)
	row := choiceRow{purpose: PurposeMarketing, granted: false, method: MethodGPC, gpc: true}
	policyVersion, bannerVersion := m.cfg.PolicyVersion, m.cfg.BannerVersion
	if decided {
		policyVersion, bannerVersion = mk.PolicyVersion, mk.BannerVersion
	}
	if err := m.store.record(ctx, subjectKey{visitorID: k.visitorID, userID: k.userID}, choice{
		rows: []choiceRow{row}, policyVersion: policyVersion, bannerVersion: bannerVersion,
		at: now, expires: m.validFor.AddTo(now), userAgent: k.userAgent, ip: k.ip,
	}); err != nil {
		return err
	}
	m.invalidate()
	m.setCookie(c, *k, now)
	return nil
}

func (m *Module) putConsent(c *fiber.Ctx) error {
	var in Choice
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	v, err := m.Choose(c, in)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(v)
}

// Choose records a choice for the request's browser and signed-in account,
// as PUT /v1/consent does: it validates the choice (a problem naming the
// field and the rule when it is not valid), appends its proof, replaces
// the current state, (re)sets the visitor cookie, and returns the consent
// now in effect.
func (m *Module) Choose(c *fiber.Ctx, in Choice) (View, error) {
	if err := m.validate(&in); err != nil {
		return View{}, err
	}
	ctx := c.UserContext()
	k := m.callerOf(c)
	k.gpc = k.gpc || in.GPC || in.Method == MethodGPC
	now := m.now().UTC()
	m.ensureVisitor(&k)

	current, err := m.lookup(ctx, k.visitorID, k.userID)
	if err != nil {
		return View{}, err
	}
	rows := m.rowsOf(in, k.gpc, current, now)
	if err := m.store.record(ctx, subjectKey{visitorID: k.visitorID, userID: k.userID}, choice{
		rows: rows, policyVersion: in.PolicyVersion, bannerVersion: in.BannerVersion,
		at: now, expires: m.validFor.AddTo(now), userAgent: k.userAgent, ip: k.ip,
	}); err != nil {
		return View{}, err
	}
	m.invalidate()
	m.setCookie(c, k, now)
	return m.view(ctx, k, now)
}

// History returns the proof log of the request's caller, oldest first:
// the signed-in account's choices, or, signed out, the browser's.
func (m *Module) History(c *fiber.Ctx) ([]Proof, error) {
	k := m.callerOf(c)
	if k.userID != "" {
		return m.Proofs(c.UserContext(), "", k.userID)
	}
	if k.visitorID == "" {
		return nil, nil
	}
	return m.Proofs(c.UserContext(), k.visitorID, "")
}

// validate checks a choice and fills in what its method implies.
func (m *Module) validate(in *Choice) error {
	var v errs.ValidationError
	if !slices.Contains(Methods(), in.Method) {
		if in.Method == "" {
			v.Add("method", "required", "Say how the choice was made: "+strings.Join(Methods(), ", ")+".")
		} else {
			v.Add("method", "enum", "Must be one of "+strings.Join(Methods(), ", ")+".")
		}
	}
	for name, granted := range in.Purposes {
		switch {
		case !slices.Contains(Purposes(), name):
			v.Add("purposes."+name, "unknown", "Unknown purpose; the purposes are "+strings.Join(Purposes(), ", ")+".")
		case name == PurposeNecessary && !granted:
			v.Add("purposes.necessary", "const", "Strictly necessary storage cannot be refused; leave it out or send true.")
		case in.Method == MethodBannerAccept && !granted:
			v.Add("purposes."+name, "const", "banner_accept grants every purpose; use banner_save for a mixed choice.")
		case in.Method == MethodBannerReject && granted && name != PurposeNecessary:
			v.Add("purposes."+name, "const", "banner_reject denies every optional purpose; use banner_save for a mixed choice.")
		case in.Method == MethodGPC && name != PurposeMarketing && name != PurposeNecessary:
			v.Add("purposes."+name, "const", "A gpc choice only opts out of marketing.")
		case in.Method == MethodGPC && name == PurposeMarketing && granted:
			v.Add("purposes.marketing", "const", "A gpc choice opts out of marketing; it cannot grant it.")
		}
	}
	switch in.Method {
	case MethodBannerSave, MethodPreferences, MethodAPI:
		if len(in.Purposes) == 0 {
			v.Add("purposes", "required", "Name at least one purpose and whether it is granted.")
		}
	}
	if in.Method == MethodGPC {
		if in.PolicyVersion == "" {
			in.PolicyVersion = m.cfg.PolicyVersion
		}
		if in.BannerVersion == "" {
			in.BannerVersion = m.cfg.BannerVersion
		}
	}
	switch {
	case in.PolicyVersion == "":
		v.Add("policy_version", "required", "Send the privacy policy version the visitor was shown.")
	case !m.policyAccepted(in.PolicyVersion):
		// A choice is proof of what the visitor agreed to: a version that
		// is not the policy in force (or, for a while after a change, the
		// one before it) proves nothing.
		v.Add("policy_version", "version", fmt.Sprintf("Must be the privacy policy version in force, %q, as GET /v1/consent reports it.", m.cfg.PolicyVersion))
	}
	switch {
	case in.BannerVersion == "":
		v.Add("banner_version", "required", "Send the banner version the visitor was shown.")
	case in.BannerVersion != m.cfg.BannerVersion:
		v.Add("banner_version", "version", fmt.Sprintf("Must be the banner version in force, %q, as GET /v1/consent reports it.", m.cfg.BannerVersion))
	}
	return v.Err()
}

// policyAccepted reports whether a choice may be recorded under policy
// version pv: the version in force, or the previous one during its grace
// period.
func (m *Module) policyAccepted(pv string) bool {
	if pv == m.cfg.PolicyVersion {
		return true
	}
	return m.cfg.PreviousPolicyVersion != "" && pv == m.cfg.PreviousPolicyVersion &&
		m.now().Before(m.cfg.PreviousPolicyUntil)
}

// rowsOf turns a valid choice into one row per purpose it decides, with
// what the GPC signal changes.
func (m *Module) rowsOf(in Choice, gpc bool, current map[string]State, now time.Time) []choiceRow {
	decide := map[string]bool{}
	switch in.Method {
	case MethodBannerAccept:
		for _, p := range optionalPurposes {
			decide[p] = true
		}
	case MethodBannerReject:
		for _, p := range optionalPurposes {
			decide[p] = false
		}
	case MethodGPC:
		decide[PurposeMarketing] = false
	default:
		for p, g := range in.Purposes {
			if p != PurposeNecessary {
				decide[p] = g
			}
		}
		// A first choice that leaves a purpose out denies it: nothing is
		// granted without being named.
		for _, p := range optionalPurposes {
			if _, ok := decide[p]; !ok {
				if _, had := current[p]; !had {
					decide[p] = false
				}
			}
		}
	}
	rows := []choiceRow{{purpose: PurposeNecessary, granted: true, method: in.Method, gpc: gpc}}
	for _, p := range optionalPurposes {
		g, ok := decide[p]
		if !ok {
			continue
		}
		row := choiceRow{purpose: p, granted: g, method: in.Method, gpc: gpc}
		if p == PurposeMarketing && gpc && g && in.Method == MethodBannerAccept {
			// "Accept all" is no specific opt-in to marketing: under the
			// GPC signal marketing stays off, recorded as the signal's.
			row.granted, row.method = false, MethodGPC
		}
		rows = append(rows, row)
	}
	if _, named := decide[PurposeMarketing]; !named && gpc {
		// The signal on a choice that does not mention marketing opts out
		// of it unless marketing was explicitly granted under the signal.
		mk, had := current[PurposeMarketing]
		if !had || (mk.Granted && !(mk.GPC && mk.Method != MethodGPC)) {
			rows = append(rows, choiceRow{purpose: PurposeMarketing, granted: false, method: MethodGPC, gpc: true})
		}
	}
	return rows
}

// view builds the answer of GET and PUT /v1/consent.
func (m *Module) view(ctx context.Context, k caller, now time.Time) (View, error) {
	v := View{
		Subject:       "none",
		Purposes:      map[string]bool{},
		PolicyVersion: m.cfg.PolicyVersion,
		BannerVersion: m.cfg.BannerVersion,
	}
	states, err := m.lookup(ctx, k.visitorID, k.userID)
	if err != nil {
		return v, err
	}
	e := m.evaluate(states, now)
	for _, p := range Purposes() {
		v.Purposes[p] = e.granted[p]
	}
	if k.gpc && v.Purposes[PurposeMarketing] && !e.explicitMarketing {
		v.Purposes[PurposeMarketing] = false
	}
	v.GPC = k.gpc && !v.Purposes[PurposeMarketing]
	if len(states) > 0 {
		v.Subject = "visitor"
		for _, st := range states {
			if st.UserID != nil {
				v.Subject = "user"
			}
			break
		}
	}
	switch {
	case e.chosen == nil:
		v.Ask, v.AskReason = true, AskNoChoice
	case !now.Before(e.chosen.ExpiresAt):
		v.Ask, v.AskReason = true, AskExpired
	case e.chosen.PolicyVersion != m.cfg.PolicyVersion:
		v.Ask, v.AskReason = true, AskPolicyChanged
	}
	if e.chosen != nil {
		v.Choice = &ChoiceInfo{
			Method: e.chosen.Method, PolicyVersion: e.chosen.PolicyVersion, BannerVersion: e.chosen.BannerVersion,
			DecidedAt: e.chosen.DecidedAt.UTC(), ExpiresAt: e.chosen.ExpiresAt.UTC(),
		}
	}
	return v, nil
}

// validVisitorID accepts the ids ensureVisitor issues (22 characters of
// base64url) and others of the same alphabet from 16 to 64 characters.
func validVisitorID(s string) bool {
	if len(s) < 16 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
