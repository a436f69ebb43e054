package accounts

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/logging"
)

// FirstAdminEmail is the address of the account a first-run link signs in
// as. The .localhost top-level domain is reserved (RFC 6761), so the
// address can never belong to a real mailbox, and it passes the module's
// email check, so the account is an ordinary one afterwards: `steward
// token create --role admin --email admin@steward.localhost` makes a token
// for it, and a dev server signs in to it by email.
const FirstAdminEmail = "admin@steward.localhost"

// FirstRunLinkTTL is how long a first-run link works after it is made.
const FirstRunLinkTTL = 15 * time.Minute

// Admin log entries of a first-run sign-in.
const (
	// ActorFirstRun is the admin log actor of a first-run link: the
	// operator who started the server and read its output.
	ActorFirstRun = "first-run"
	// ActionFirstRunAdmin records that a first-run link made (or
	// promoted) the first administrator.
	ActionFirstRunAdmin = "user.first_run_admin"
)

// firstRunQuery documents the query of GET /v1/auth/first-run.
type firstRunQuery struct {
	Token string `query:"token"`
}

// firstRunLink is the one live first-admin link of this process.
//
// Only the SHA-256 of its token is kept, and only in the memory of the
// serving process, not in the SQL store. The link exists for the person
// who started this very process and reads its output; a link that cannot
// outlive the process needs no table, no migration and no purge, cannot be
// replayed from a copy or backup of the database, and a restart simply
// prints a new one. Other processes on the same store (CLI commands) never
// need it. Making a new link replaces the previous one, so at most one
// works at a time.
type firstRunLink struct {
	mu      sync.Mutex
	hash    string
	expires time.Time
	used    bool
}

func (f *firstRunLink) issue(hash string, expires time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hash, f.expires, f.used = hash, expires, false
}

var (
	errFirstRunUnknown = errs.E(errs.ErrNotFound,
		"This first-run sign-in link is not valid. Use the last link `steward serve` printed, or restart the server for a new one.")
	errFirstRunUsed = errs.E(errs.ErrForbidden,
		"This first-run sign-in link was already used; it works once. Sign in with the account it made, or restart the server while no administrator exists for a new link.")
	errFirstRunExpired = errs.E(errs.ErrForbidden,
		"This first-run sign-in link has expired; it works for "+FirstRunLinkTTL.String()+". Restart the server for a new one.")
	errFirstRunAdminExists = errs.E(errs.ErrForbidden,
		"An administrator exists already, so first-run links no longer work. Sign in as that administrator, or ask them for a role.")
)

// claim marks the link of hash used, or says why it cannot be: unknown,
// used or expired. Checking and marking under one lock lets exactly one
// of two requests racing with the same link through.
func (f *firstRunLink) claim(hash string, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.hash == "" || !equalTokens(hash, f.hash):
		return errFirstRunUnknown
	case f.used:
		return errFirstRunUsed
	case !now.Before(f.expires):
		return errFirstRunExpired
	}
	f.used = true
	return nil
}

// release makes a claimed link usable again after a sign-in failed on the
// server's side (a database error), so a passing fault does not burn the
// only link.
func (f *firstRunLink) release(hash string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hash == hash {
		f.used = false
	}
}

// FirstRunLink makes a one-time link that signs a browser in as the first
// administrator, for `steward serve` to print once it listens. It returns
// ok false, and makes nothing, outside development (Config.Env) or when an
// active administrator exists. The link is baseURL followed by
// /v1/auth/first-run?token=...; it works once, for FirstRunLinkTTL by the
// module's clock, and a new call replaces the previous link.
func (m *Module) FirstRunLink(ctx context.Context, baseURL string) (link string, ok bool, err error) {
	if m.firstRun == nil {
		return "", false, nil
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false, fmt.Errorf("first-run link: base URL %q is not an absolute URL", baseURL)
	}
	exists, err := m.store.adminExists(ctx, m.store.db)
	if err != nil {
		return "", false, fmt.Errorf("first-run link: %w", err)
	}
	if exists {
		return "", false, nil
	}
	tok := newSecret()
	m.firstRun.issue(hashSecret(tok), m.now().Add(FirstRunLinkTTL))
	u.Path = strings.TrimRight(u.Path, "/") + pathFirstRun
	u.RawQuery = url.Values{"token": {tok}}.Encode()
	u.Fragment = ""
	return u.String(), true, nil
}

// handleFirstRun signs the browser in as the first administrator.
//
// It is a GET that writes, which the house rules otherwise avoid: the link
// is printed to a terminal for a person to open, and a terminal can hand a
// browser nothing but a URL. Its token is a one-time capability of 256
// random bits, so a cross-site page cannot forge the request, and a second
// visit (a reload, a prefetch) changes nothing.
func (m *Module) handleFirstRun(c *fiber.Ctx) error {
	// The token is in the URL: keep the answer out of caches and the URL
	// out of any Referer header.
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	tok := c.Query("token")
	if !wellFormedSecret(tok) {
		return errFirstRunUnknown
	}
	hash := hashSecret(tok)
	now := m.now().UTC()
	if err := m.firstRun.claim(hash, now); err != nil {
		return err
	}
	ctx := c.UserContext()
	lang := m.langs.fromAcceptLanguage(c.Get(fiber.HeaderAcceptLanguage))
	u, err := m.firstAdmin(ctx, lang, now)
	if err != nil {
		if errs.Kind(err) == nil {
			m.firstRun.release(hash)
		}
		return err
	}
	if _, err := m.openSession(c, u, MethodFirstRun); err != nil {
		if errs.Kind(err) == nil {
			m.firstRun.release(hash)
		}
		return err
	}
	m.log.WarnContext(ctx, "FIRST-RUN SIGN-IN: a browser was signed in as the first administrator with the one-time link",
		slog.Any("user_id", logging.PII("user.unique_id", u.ID)))
	after := m.cfg.AfterSignInURL
	if after == "" {
		after = "/"
	}
	return c.Redirect(after, fiber.StatusSeeOther)
}

// firstAdmin returns the account FirstAdminEmail names, made an active
// administrator: created when missing, promoted when it has another role.
// It refuses when an active administrator exists already, which can
// happen after the link was printed (`steward token create --role
// admin`). The change is written to the admin log in the same
// transaction.
func (m *Module) firstAdmin(ctx context.Context, lang string, now time.Time) (User, error) {
	var out User
	err := m.store.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		exists, err := m.store.adminExists(ctx, tx)
		if err != nil {
			return err
		}
		if exists {
			return errFirstRunAdminExists
		}
		u, created, err := m.store.userForEmail(ctx, tx, FirstAdminEmail, authz.RoleAdmin, lang, now)
		if err != nil {
			return err
		}
		details := map[string]any{"account_created": created}
		if !created && u.Role != authz.RoleAdmin {
			details["from"] = u.Role
			u.Role = authz.RoleAdmin
			if _, err := tx.NewUpdate().Model(&u).Column("role").WherePK().Exec(ctx); err != nil {
				return fmt.Errorf("update role: %w", err)
			}
		}
		if _, err := adminlog.Append(ctx, tx, adminlog.Entry{
			Time: now, ActorID: ActorFirstRun, Action: ActionFirstRunAdmin, TargetID: u.ID, Details: details,
		}); err != nil {
			return err
		}
		out = u
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("first administrator: %w", err)
	}
	return out, nil
}
