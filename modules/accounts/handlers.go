package accounts

import (
	"errors"
	"log/slog"
	"mime"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/emailaddr"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/logging"
	"github.com/stewardhq/steward/internal/web"
)

// Categories the handlers ask the access policy about for writes.
const (
	catName        = "user.name"
	catLanguage    = "user.account.settings.language"
	catRole        = "user.authorization.role"
	catCredentials = "user.authorization.credentials"
)

// googleForm is the body of Google's redirect flow.
type googleForm struct {
	Credential string `form:"credential" json:"credential"`
	GCSRFToken string `form:"g_csrf_token" json:"g_csrf_token"`
}

// googleJSON is the body a One Tap callback posts: the fields of Google's
// CredentialResponse it may pass on as they are, and the double-submit
// token.
type googleJSON struct {
	Credential string `json:"credential"`
	GCSRFToken string `json:"g_csrf_token"`
	// SelectBy and ClientID are sent by Google's library and ignored.
	SelectBy string `json:"select_by,omitempty"`
	ClientID string `json:"clientId,omitempty"`
}

// devRequest is the body of POST /v1/auth/dev, as JSON or as a form.
type devRequest struct {
	Email string `json:"email" form:"email"`
}

type patchMeRequest struct {
	Name     *string `json:"name,omitempty"`
	Language *string `json:"language,omitempty"`
}

type newTokenRequest struct {
	Name string `json:"name"`
}

type roleRequest struct {
	Role string `json:"role"`
}

// readGoogleRequest reads the credential and the posted CSRF token, and
// reports whether they came as a form (the redirect flow).
func readGoogleRequest(c *fiber.Ctx) (googleJSON, bool, error) {
	mt, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	var in googleJSON
	switch {
	case mt == fiber.MIMEApplicationForm:
		in.Credential = c.FormValue("credential")
		in.GCSRFToken = c.FormValue("g_csrf_token")
		return in, true, nil
	case mt == fiber.MIMEApplicationJSON:
		err := web.DecodeJSON(c, &in)
		return in, false, err
	default:
		return in, false, errs.E(errs.ErrUnsupportedMediaType,
			"Send the credential as a form (application/x-www-form-urlencoded) or as JSON (application/json).")
	}
}

// checkGoogleCSRF is the double-submit check of Google's sign-in: the
// g_csrf_token cookie must be present and equal the posted g_csrf_token.
// Google's library sets the cookie for the redirect flow; a One Tap
// callback posting JSON sends the same cookie's value (or a random value
// it also set as that cookie) in the body. A cross-site page can make a
// browser post the form but cannot read or set the cookie, so it cannot
// make the two match.
func checkGoogleCSRF(cookie, posted string) error {
	if cookie == "" || posted == "" {
		return refuse(ReasonCSRFMissing)
	}
	if !equalTokens(cookie, posted) {
		return refuse(ReasonCSRFMismatch)
	}
	return nil
}

func (m *Module) handleGoogle(c *fiber.Ctx) error {
	if m.google == nil {
		return errs.E(errs.ErrUnavailable, "Google sign-in is not configured on this server.")
	}
	ctx := c.UserContext()
	in, isForm, err := readGoogleRequest(c)
	if err != nil {
		return err
	}
	if err := checkGoogleCSRF(c.Cookies(CookieGoogleCSRF), in.GCSRFToken); err != nil {
		return m.refused(c, err)
	}
	if in.Credential == "" {
		return errs.Invalid("credential", "required", "The Google ID token (credential) is required.")
	}
	claims, err := m.google.verify(ctx, in.Credential)
	if err != nil {
		return m.refused(c, err)
	}
	if err := m.limitAccount(c, "google:"+claims.Subject, ""); err != nil {
		return err
	}
	lang := m.langs.fromAcceptLanguage(c.Get(fiber.HeaderAcceptLanguage))
	u, err := m.store.signInGoogle(ctx, claims, lang, m.now().UTC())
	if err != nil {
		return err
	}
	p, err := m.openSession(c, u, MethodGoogle)
	if err != nil {
		return err
	}
	if isForm {
		if next := returnPath(c); next != "" {
			return c.Redirect(next, fiber.StatusSeeOther)
		}
		if m.cfg.AfterSignInURL != "" {
			return c.Redirect(m.cfg.AfterSignInURL, fiber.StatusSeeOther)
		}
	}
	return m.writeMe(c, p, u)
}

// returnPath is the page of this site a form sign-in or sign-out asks to
// return to (web.ParamNext, in the form or the query), "" when none or
// one elsewhere.
func returnPath(c *fiber.Ctx) string {
	next := c.FormValue(web.ParamNext)
	if next == "" {
		next = c.Query(web.ParamNext)
	}
	return web.LocalPath(next)
}

// signInPage is Config.SignInURL, asked to return to next after the
// sign-in when next is a page of this site.
func (m *Module) signInPage(next string) string {
	if next == "" {
		return m.cfg.SignInURL
	}
	return withQuery(m.cfg.SignInURL, web.ParamNext, next)
}

// handleDev signs in by email alone. A JSON body ({"email": ...}) is
// answered with the account; a form post (the sign-in page's email form,
// which works without JavaScript) is redirected to Config.AfterSignInURL.
func (m *Module) handleDev(c *fiber.Ctx) error {
	var in devRequest
	isForm := isFormPost(c)
	if isForm {
		in.Email = c.FormValue("email")
	} else if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	email := normalizeEmail(in.Email)
	if !emailaddr.Valid(email) {
		return errs.Invalid("email", "format", "Must be an email address such as ann@example.com.")
	}
	if err := m.limitAccount(c, "email:"+email, ""); err != nil {
		return err
	}
	ctx := c.UserContext()
	lang := m.langs.fromAcceptLanguage(c.Get(fiber.HeaderAcceptLanguage))
	u, _, err := m.store.userForEmail(ctx, m.store.db, email, authz.RoleUser, lang, m.now().UTC())
	if err != nil {
		return err
	}
	p, err := m.openSession(c, u, MethodDev)
	if err != nil {
		return err
	}
	// Every development sign-in is logged loudly: an account reached by
	// email alone must stand out in any log that is read.
	m.log.WarnContext(ctx, "DEV SIGN-IN: an account was signed in by email alone", slog.Any("user_id", logging.PII("user.unique_id", u.ID)), slog.String("role", u.Role))
	if isForm {
		if next := returnPath(c); next != "" {
			return c.Redirect(next, fiber.StatusSeeOther)
		}
		if m.cfg.AfterSignInURL != "" {
			return c.Redirect(m.cfg.AfterSignInURL, fiber.StatusSeeOther)
		}
	}
	return m.writeMe(c, p, u)
}

// Codes of failed form sign-ins. A form post that fails is sent back to
// Config.SignInURL with ?error=<code>; the page explains the code in the
// reader's language. The codes are part of the contract with that page.
const (
	// SignInErrorEmail: the address is not a bare email address.
	SignInErrorEmail = "email_invalid"
	// SignInErrorRateLimited: too many attempts; try again later.
	SignInErrorRateLimited = "rate_limited"
	// SignInErrorDisabled: the account is disabled.
	SignInErrorDisabled = "account_disabled"
	// SignInErrorRefused: the identity provider's answer was refused
	// (bad or expired credential, CSRF mismatch).
	SignInErrorRefused = "sign_in_refused"
	// SignInErrorConflict: the email belongs to an account linked to
	// another Google account.
	SignInErrorConflict = "account_conflict"
	// SignInErrorUnavailable: the sign-in method is not available now.
	SignInErrorUnavailable = "unavailable"
)

// SignInErrorCodes lists every code a failed form sign-in is sent back
// with, so the page's tests can check each is explained.
func SignInErrorCodes() []string {
	return []string{SignInErrorEmail, SignInErrorRateLimited, SignInErrorDisabled, SignInErrorRefused, SignInErrorConflict, SignInErrorUnavailable}
}

// signInErrorCode maps the error of a failed sign-in to the code the
// sign-in page explains, or "" for an error the page cannot help with
// (an internal failure), which keeps its problem document.
func signInErrorCode(err error) string {
	var verr *errs.ValidationError
	if errors.As(err, &verr) && len(verr.Errors) > 0 && verr.Errors[0].Field == "email" {
		return SignInErrorEmail
	}
	switch errs.Kind(err) {
	case errs.ErrInvalidArgument:
		return SignInErrorRefused
	case errs.ErrRateLimited:
		return SignInErrorRateLimited
	case errs.ErrForbidden:
		return SignInErrorDisabled
	case errs.ErrUnauthenticated:
		return SignInErrorRefused
	case errs.ErrConflict:
		return SignInErrorConflict
	case errs.ErrUnavailable:
		return SignInErrorUnavailable
	}
	return ""
}

// formErrors runs the rest of a sign-in route's chain and, when a form
// post fails for a reason the person can act on, redirects (303) back to
// Config.SignInURL with ?error=<code> instead of answering a problem
// document a browser without JavaScript would show as raw JSON. JSON
// callers, and every request when no sign-in page is configured, get the
// problem document as before.
func (m *Module) formErrors(c *fiber.Ctx) error {
	err := c.Next()
	if err == nil || m.cfg.SignInURL == "" || !isFormPost(c) {
		return err
	}
	code := signInErrorCode(err)
	if code == "" {
		return err
	}
	return c.Redirect(withQuery(m.signInPage(returnPath(c)), "error", code), fiber.StatusSeeOther)
}

// withQuery returns u with the query parameter key set to value.
func withQuery(u, key, value string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		// New checked the configured URLs; keep u as it is.
		return u
	}
	q := parsed.Query()
	q.Set(key, value)
	parsed.RawQuery = q.Encode()
	return parsed.String()
}

// openSession signs u in on this browser: it ends the session the browser
// had (so a planted or stolen earlier cookie does not outlive a sign-in),
// stores a new one with its sign-in event and device binding, and sets the
// session, CSRF and device cookies.
func (m *Module) openSession(c *fiber.Ctx, u User, method string) (authz.Principal, error) {
	if u.Status != StatusActive {
		return authz.Principal{}, errs.E(errs.ErrForbidden, "This account is disabled.")
	}
	ctx := c.UserContext()
	now := m.now().UTC()
	if old := c.Cookies(CookieSession); wellFormedSecret(old) {
		if err := m.store.dropSessionByHash(ctx, hashSecret(old)); err != nil {
			return authz.Principal{}, err
		}
	}
	device := c.Cookies(CookieDevice)
	if !wellFormedSecret(device) {
		device = newSecret()
	}
	secret := newSecret()
	sess := Session{
		ID: ids.New(prefixSession), UserID: u.ID, SecretHash: hashSecret(secret),
		UAFamily: uaFamily(c.Get(fiber.HeaderUserAgent)), CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(m.cfg.SessionAbsolute),
	}
	if err := m.store.openSession(ctx, sess, method, hashSecret(device)); err != nil {
		return authz.Principal{}, err
	}
	m.setSessionCookies(c, secret, sess.ExpiresAt)
	c.Cookie(m.cookie(CookieDevice, device, true, now.Add(deviceCookieAge)))
	if m.onSignIn != nil {
		// The hook runs after the session exists: a failure there (such
		// as merging the visitor's consent choices) is the hook's to
		// report, and must not undo a sign-in Google already approved.
		if err := m.onSignIn(c, u.ID); err != nil {
			m.log.WarnContext(ctx, "sign-in hook failed", slog.Any("user_id", logging.PII("user.unique_id", u.ID)), slog.Any("error", err))
		}
	}
	return authz.Principal{UserID: u.ID, Role: u.Role, Method: authz.MethodSession, CredentialID: sess.ID, Email: u.Email}, nil
}

func (m *Module) handleLogout(c *fiber.Ctx) error {
	ctx := c.UserContext()
	if p, ok := authz.FromContext(ctx); ok && p.Method == authz.MethodSession {
		err := m.store.closeSession(ctx, p.UserID, p.CredentialID, EventSignOut, uaFamily(c.Get(fiber.HeaderUserAgent)), m.now().UTC())
		if err != nil && !errors.Is(err, errs.ErrNotFound) {
			return err
		}
	}
	m.clearSessionCookies(c)
	if isFormPost(c) && m.cfg.SignInURL != "" {
		// The sign-out button of a page is a form: send the browser back
		// to the sign-in page rather than to an empty answer, and from
		// there to the page that asked for a new sign-in, if any.
		return c.Redirect(m.signInPage(returnPath(c)), fiber.StatusSeeOther)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// me returns the account's view with what billing reports about it.
func (m *Module) me(c *fiber.Ctx, u User) MeView {
	v := meView(u)
	if m.balance != nil {
		b, err := m.balance(c.UserContext(), u.ID)
		if err != nil {
			// The account is still worth answering without its balance.
			m.log.WarnContext(c.UserContext(), "read balance", slog.Any("user_id", logging.PII("user.unique_id", u.ID)), slog.Any("error", err))
		} else {
			v.CreditBalance = &b.Credits
			v.SubscriptionStatus = b.SubscriptionStatus
		}
	}
	return v
}

// writeMe answers with the account as principal p may see it; p is the
// session just opened, which the request's context does not carry yet.
func (m *Module) writeMe(c *fiber.Ctx, p authz.Principal, u User) error {
	out, err := m.guard.View(c.UserContext(), p, authz.ActionRead, m.me(c, u))
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (m *Module) handleMe(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	u, err := m.store.userByID(c.UserContext(), m.store.db, p.UserID)
	if err != nil {
		return err
	}
	return m.guard.JSON(c, authz.ActionRead, m.me(c, u))
}

func (m *Module) handlePatchMe(c *fiber.Ctx) error {
	p, in, err := authz.RequireJSON[patchMeRequest](c)
	if err != nil {
		return err
	}
	var v errs.ValidationError
	var cats []string
	if in.Name != nil {
		cats = append(cats, catName)
		if name, rule, msg := checkName(*in.Name); rule != "" {
			v.Add("name", rule, msg)
		} else {
			in.Name = &name
		}
	}
	if in.Language != nil {
		cats = append(cats, catLanguage)
		if tag, rule, msg := m.langs.check(*in.Language); rule != "" {
			v.Add("language", rule, msg)
		} else {
			in.Language = &tag
		}
	}
	if len(cats) == 0 {
		v.Add("body", "empty", "Send at least one of name and language.")
	}
	if err := v.Err(); err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := m.guard.Check(ctx, p, authz.ActionUpdate, p.UserID, cats); err != nil {
		return err
	}
	u, err := m.store.updateProfile(ctx, p.UserID, in.Name, in.Language)
	if err != nil {
		return err
	}
	return m.guard.JSON(c, authz.ActionRead, m.me(c, u))
}

func (m *Module) handleListSessions(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	now := m.now().UTC()
	list, err := m.store.listSessions(c.UserContext(), p.UserID, now, now.Add(-m.cfg.SessionIdle))
	if err != nil {
		return err
	}
	views := make([]SessionView, 0, len(list))
	for _, s := range list {
		views = append(views, SessionView{
			ID: s.ID, CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt, UAFamily: s.UAFamily,
			Current: p.Method == authz.MethodSession && p.CredentialID == s.ID, userID: s.UserID,
		})
	}
	return m.guard.JSON(c, authz.ActionList, views)
}

func (m *Module) handleDeleteSession(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	id := strings.Clone(c.Params("id"))
	s, err := m.store.sessionOf(ctx, p.UserID, id)
	if err != nil {
		return err
	}
	if _, err := m.guard.Check(ctx, p, authz.ActionDelete, s.UserID, []string{catCredentials}); err != nil {
		return err
	}
	if err := m.store.closeSession(ctx, p.UserID, id, EventSessionRevoked, uaFamily(c.Get(fiber.HeaderUserAgent)), m.now().UTC()); err != nil {
		return err
	}
	if p.Method == authz.MethodSession && p.CredentialID == id {
		m.clearSessionCookies(c)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (m *Module) handleListTokens(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	list, err := m.store.listTokens(c.UserContext(), p.UserID)
	if err != nil {
		return err
	}
	views := make([]TokenView, 0, len(list))
	for _, t := range list {
		views = append(views, TokenView{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, userID: t.UserID})
	}
	return m.guard.JSON(c, authz.ActionList, views)
}

// handleCreateToken makes a token for the caller. Like signing in, it
// creates a credential for oneself, which every role may do; it is
// rate-limited per account.
func (m *Module) handleCreateToken(c *fiber.Ctx) error {
	p, in, err := authz.RequireJSON[newTokenRequest](c)
	if err != nil {
		return err
	}
	name, rule, msg := checkName(in.Name)
	if rule != "" {
		return errs.Invalid("name", rule, msg)
	}
	if err := m.limitAccount(c, "user:"+p.UserID, p.UserID); err != nil {
		return err
	}
	ctx := c.UserContext()
	tok := newToken()
	t := APIToken{ID: ids.New(prefixToken), UserID: p.UserID, SecretHash: hashSecret(tok), Name: name, CreatedAt: m.now().UTC()}
	if err := m.store.insertToken(ctx, m.store.db, t); err != nil {
		return err
	}
	out, err := m.guard.View(ctx, p, authz.ActionRead, NewTokenView{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, Token: tok, userID: t.UserID})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (m *Module) handleDeleteToken(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	id := strings.Clone(c.Params("id"))
	t, err := m.store.tokenOf(ctx, p.UserID, id)
	if err != nil {
		return err
	}
	if _, err := m.guard.Check(ctx, p, authz.ActionDelete, t.UserID, []string{catCredentials}); err != nil {
		return err
	}
	if err := m.store.deleteToken(ctx, p.UserID, id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// handleSetRole changes an account's role when the access policy lets the
// caller update roles. The policy is asked before the account is looked
// up, so a caller who may not change roles cannot probe which ids exist.
func (m *Module) handleSetRole(c *fiber.Ctx) error {
	p, in, err := authz.RequireJSON[roleRequest](c)
	if err != nil {
		return err
	}
	if !authz.ValidRole(in.Role) {
		return errs.Invalid("role", "enum", "Must be one of: "+strings.Join(authz.Roles(), ", ")+".")
	}
	ctx := c.UserContext()
	target := strings.Clone(c.Params("id"))
	if _, err := m.guard.Check(ctx, p, authz.ActionUpdate, target, []string{catRole}); err != nil {
		return err
	}
	u, err := m.store.setRole(ctx, p.UserID, target, in.Role, m.now().UTC())
	if err != nil {
		return err
	}
	return m.guard.JSON(c, authz.ActionRead, UserView{
		ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Status: u.Status, CreatedAt: u.CreatedAt,
	})
}

// limitIP bounds sign-in requests per client address.
func (m *Module) limitIP(c *fiber.Ctx) error {
	ip := c.IP()
	ok, wait := m.ipLimit.Allow(ip, m.now())
	if ok {
		return c.Next()
	}
	m.recordThrottled(c, AbuseRateLimited, "", "auth_ip", ip)
	return errs.Retry(errs.ErrRateLimited, "Too many sign-in attempts from your network; try again later.", wait)
}

// limitAccount bounds sign-ins and token creations per account. key names
// the account (by provider subject or email before the account is known);
// userID is the account's id when it is.
func (m *Module) limitAccount(c *fiber.Ctx, key, userID string) error {
	ok, wait := m.accountLimit.Allow(key, m.now())
	if ok {
		return nil
	}
	m.recordThrottled(c, AbuseRateLimited, userID, "auth_account", key)
	return errs.Retry(errs.ErrRateLimited, "Too many attempts for this account; try again later.", wait)
}

// refused records a refused sign-in in the abuse log and returns err.
func (m *Module) refused(c *fiber.Ctx, err error) error {
	var se *signInError
	if errors.As(err, &se) {
		m.recordAbuse(c, AbuseSignInFailed, "", se.reason)
	}
	return err
}

// recordThrottled records an abuse event at most once a minute per kind,
// detail and key, so a flood of refused requests costs one row a minute.
func (m *Module) recordThrottled(c *fiber.Ctx, kind, userID, detail, key string) {
	if ok, _ := m.abuseLimit.Allow(kind+"\x00"+detail+"\x00"+key, m.now()); ok {
		m.recordAbuse(c, kind, userID, detail)
	}
}

func (m *Module) recordAbuse(c *fiber.Ctx, kind, userID, detail string) {
	if m.abuse == nil {
		return
	}
	ctx := c.UserContext()
	err := m.abuse.RecordAbuse(ctx, kind, userID, c.IP(), uaFamily(c.Get(fiber.HeaderUserAgent)), detail)
	if err != nil {
		// The answer to the client does not depend on the log.
		m.log.WarnContext(ctx, "record abuse event", slog.String("kind", kind), slog.Any("error", err))
	}
}
