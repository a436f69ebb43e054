package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/logging"
)

// Cookie and header names.
const (
	// CookieSession holds the session secret (HttpOnly).
	CookieSession = "steward_session"
	// CookieCSRF holds the CSRF token of the session, readable by the
	// page's scripts, which echo it in HeaderCSRF.
	CookieCSRF = "steward_csrf"
	// CookieDevice holds the first-party device id (HttpOnly).
	CookieDevice = "steward_device"
	// CookieGoogleCSRF is the double-submit cookie of Google's sign-in.
	CookieGoogleCSRF = "g_csrf_token"
	// HeaderCSRF carries the CSRF token on unsafe cookie-authenticated
	// requests.
	HeaderCSRF = "X-CSRF-Token"
	// FieldCSRF carries the CSRF token in a form post, which cannot set
	// headers: pages render it as a hidden field (see CSRFToken).
	FieldCSRF = "csrf_token"
	// TokenPrefix starts every API token, so a leaked one is easy to
	// recognise (by secret scanners, too).
	TokenPrefix = "stw_"
)

// Id prefixes, for ids.New.
const (
	prefixUser    = "u"
	prefixSession = "s"
	prefixToken   = "t"
	prefixSignIn  = "si"
	prefixDevice  = "d"
)

// deviceCookieAge is how long the device cookie lives.
const deviceCookieAge = 365 * 24 * time.Hour

// touchEvery is the most often a session's last-seen time or a token's
// last-used time is written; requests in between only read.
const touchEvery = time.Minute

var base32Lower = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newSecret returns 32 random bytes as unpadded base64url (43 characters).
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// wellFormedSecret reports whether s could have come from newSecret, so a
// cookie of any other shape is replaced rather than trusted or stored.
func wellFormedSecret(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// newToken returns an API token: TokenPrefix and 32 random bytes in
// lower-case base32 (52 characters).
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return TokenPrefix + base32Lower.EncodeToString(b[:])
}

// hashSecret returns the hex SHA-256 stored for a secret. The secrets
// carry 256 random bits, so a plain hash cannot be reversed by guessing.
func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// csrfToken derives the CSRF token of a session from its secret. The
// token is a one-way function of the secret, so reading it (scripts can)
// reveals nothing of the secret, and it is bound to the session: a cookie
// planted by a sibling domain cannot carry a token that matches.
func csrfToken(sessionSecret string) string {
	sum := sha256.Sum256([]byte("steward csrf\x00" + sessionSecret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func equalTokens(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (m *Module) cookie(name, value string, httpOnly bool, expires time.Time) *fiber.Cookie {
	return &fiber.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		Secure:   m.cfg.CookieSecure,
		HTTPOnly: httpOnly,
		SameSite: fiber.CookieSameSiteLaxMode,
	}
}

func (m *Module) setSessionCookies(c *fiber.Ctx, secret string, expires time.Time) {
	c.Cookie(m.cookie(CookieSession, secret, true, expires))
	c.Cookie(m.cookie(CookieCSRF, csrfToken(secret), false, expires))
}

func (m *Module) clearSessionCookies(c *fiber.Ctx) {
	for _, name := range []string{CookieSession, CookieCSRF} {
		ck := m.cookie(name, "", name == CookieSession, time.Unix(0, 0))
		ck.MaxAge = -1
		c.Cookie(ck)
	}
}

// authenticator implements authz.Authenticator over the module's
// sessions and API tokens.
type authenticator struct{ m *Module }

// Authenticate finds the principal of a bearer token or a session cookie,
// in that order.
//
// A bad bearer token is refused (401): a program should hear at once that
// its token was revoked. A session cookie that names no live session is
// cleared and the request goes on anonymous instead: a browser cannot drop
// a stale cookie by itself, and refusing it would lock the visitor out of
// public pages and of signing in again. Routes that need an account still
// answer 401 through authz.Require, so a revoked session stops working at
// its next request either way.
//
// Failed authentications are counted per client address: past
// RateLimit.FailedAuthBurst, an address's credentials are answered 429
// without being looked up until it has waited, so tokens cannot be
// guessed at the speed of the network.
func (a authenticator) Authenticate(c *fiber.Ctx) (authz.Principal, error) {
	h := c.Get(fiber.HeaderAuthorization)
	secret := c.Cookies(CookieSession)
	if h == "" && secret == "" {
		return authz.Principal{}, authz.ErrNoCredentials
	}
	src := sourceKey(c.IP())
	if blocked, wait := a.m.failLimit.Blocked(src, a.m.now()); blocked {
		a.m.recordThrottled(c, AbuseRateLimited, "", "auth_failures", src)
		return authz.Principal{}, errs.Retry(errs.ErrRateLimited, "Too many failed sign-ins from your network; try again later.", wait)
	}
	if h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			a.m.failLimit.Allow(src, a.m.now())
			return authz.Principal{}, errs.E(errs.ErrUnauthenticated, "The Authorization header must be \"Bearer <token>\".")
		}
		p, err := a.m.authenticateToken(c.UserContext(), strings.TrimSpace(tok))
		if errors.Is(err, errs.ErrUnauthenticated) {
			a.m.failLimit.Allow(src, a.m.now())
		}
		return p, err
	}
	p, err := a.m.authenticateSession(c.UserContext(), secret)
	if errors.Is(err, errs.ErrUnauthenticated) {
		a.m.failLimit.Allow(src, a.m.now())
		a.m.clearSessionCookies(c)
		return authz.Principal{}, authz.ErrNoCredentials
	}
	return p, err
}

var errBadToken = errs.E(errs.ErrUnauthenticated, "The bearer token is not valid: it is unknown, was revoked, or its account is disabled.")

func (m *Module) authenticateToken(ctx context.Context, tok string) (authz.Principal, error) {
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+52 {
		return authz.Principal{}, errs.E(errs.ErrUnauthenticated, "The bearer token is not a Steward API token (they start with \""+TokenPrefix+"\").")
	}
	t, u, err := m.store.tokenByHash(ctx, hashSecret(tok))
	if errors.Is(err, errs.ErrNotFound) || (err == nil && u.Status != StatusActive) {
		return authz.Principal{}, errBadToken
	}
	if err != nil {
		return authz.Principal{}, err
	}
	now := m.now().UTC()
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= touchEvery {
		if err := m.store.touchToken(ctx, t.ID, now, now.Add(-touchEvery)); err != nil {
			// Bookkeeping only: the request goes on.
			m.log.WarnContext(ctx, "record token use", slog.Any("token_id", logging.PII("user.account.sign_in_state", t.ID)), slog.Any("error", err))
		}
	}
	return authz.Principal{UserID: u.ID, Role: u.Role, Method: authz.MethodToken, CredentialID: t.ID, Email: u.Email}, nil
}

var errBadSession = errs.E(errs.ErrUnauthenticated, "The session has ended; sign in again.")

func (m *Module) authenticateSession(ctx context.Context, secret string) (authz.Principal, error) {
	if !wellFormedSecret(secret) {
		return authz.Principal{}, errBadSession
	}
	s, u, err := m.store.sessionByHash(ctx, hashSecret(secret))
	if errors.Is(err, errs.ErrNotFound) {
		return authz.Principal{}, errBadSession
	}
	if err != nil {
		return authz.Principal{}, err
	}
	now := m.now().UTC()
	if !now.Before(s.ExpiresAt) || !now.Before(s.LastSeenAt.Add(m.cfg.SessionIdle)) || u.Status != StatusActive {
		return authz.Principal{}, errBadSession
	}
	every := min(touchEvery, m.cfg.SessionIdle/10)
	if now.Sub(s.LastSeenAt) >= every {
		if err := m.store.touchSession(ctx, s.ID, now, now.Add(-every)); err != nil {
			m.log.WarnContext(ctx, "record session activity", slog.Any("session_id", logging.PII("user.account.sign_in_state", s.ID)), slog.Any("error", err))
		}
	}
	return authz.Principal{UserID: u.ID, Role: u.Role, Method: authz.MethodSession, CredentialID: s.ID, Email: u.Email}, nil
}

// CSRF returns the middleware that protects cookie-authenticated unsafe
// requests from cross-site forgery. Mount it app-wide with app.Use before
// the modules' routes (Fiber runs middleware only for routes added after
// it), before or after authz.Middleware.
//
// A POST, PUT, PATCH or DELETE that carries the session cookie must send
// the session's CSRF token in the X-CSRF-Token header; scripts read it
// from the steward_csrf cookie (double submit). A form post (urlencoded or
// multipart), which cannot set headers, may send it in the csrf_token
// field instead; pages render that field from CSRFToken. The token is
// derived from the session secret, so it is checked against the session
// itself, not only against a cookie an attacker on a sibling domain could
// plant. Requests with an Authorization header are exempt (a browser never
// adds one cross-site), as is POST /v1/auth/google, which checks Google's
// own g_csrf_token instead, and the paths in Config.CSRFExemptPaths. Safe
// requests of a session whose steward_csrf cookie is missing or stale get
// it set again.
func (m *Module) CSRF() fiber.Handler {
	return func(c *fiber.Ctx) error {
		secret := c.Cookies(CookieSession)
		if secret == "" || !wellFormedSecret(secret) {
			return c.Next()
		}
		want := csrfToken(secret)
		switch c.Method() {
		case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions, fiber.MethodTrace:
			if !equalTokens(c.Cookies(CookieCSRF), want) {
				c.Cookie(m.cookie(CookieCSRF, want, false, time.Time{}))
			}
			return c.Next()
		}
		if c.Get(fiber.HeaderAuthorization) != "" || c.Path() == pathGoogle || slices.Contains(m.cfg.CSRFExemptPaths, c.Path()) {
			return c.Next()
		}
		got := c.Get(HeaderCSRF)
		if got == "" && isFormPost(c) {
			got = c.FormValue(FieldCSRF)
		}
		if got == "" {
			return errs.E(errs.ErrForbidden, "This request needs the X-CSRF-Token header (or, in a form, the csrf_token field) set to the value of the steward_csrf cookie.")
		}
		if !equalTokens(got, want) {
			return errs.E(errs.ErrForbidden, "The CSRF token does not match this session; read the steward_csrf cookie again, or reload the page.")
		}
		return c.Next()
	}
}

// CSRFToken returns the CSRF token of the request's session, for a page
// to put in its forms' csrf_token field, or "" when the request is not
// signed in with a session (a bearer token needs none).
func (m *Module) CSRFToken(c *fiber.Ctx) string {
	p, ok := authz.FromContext(c.UserContext())
	if !ok || p.Method != authz.MethodSession {
		return ""
	}
	secret := c.Cookies(CookieSession)
	if !wellFormedSecret(secret) {
		return ""
	}
	return csrfToken(secret)
}

// isFormPost reports whether the request's body is an HTML form: what a
// browser sends from a <form method="post">, with or without JavaScript.
func isFormPost(c *fiber.Ctx) bool {
	mt, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	return mt == fiber.MIMEApplicationForm || mt == fiber.MIMEMultipartForm
}

// Authenticator returns the module's authz.Authenticator: a bearer API
// token or the session cookie.
func (m *Module) Authenticator() authz.Authenticator { return authenticator{m: m} }
