// Package support provides the support module: tickets of signed-in users
// with their conversation, status lifecycle and attachments, and a feedback
// form for signed-out visitors.
//
// Routes:
//
//	GET   /v1/support/feedback/token      a form token for the feedback form
//	POST  /v1/support/feedback            feedback from a signed-out visitor
//	POST  /v1/support/tickets             open a ticket
//	GET   /v1/support/tickets             list tickets (the caller's, or all for staff)
//	GET   /v1/support/tickets/:id         a ticket with its conversation
//	POST  /v1/support/tickets/:id/messages  answer in the conversation
//	PATCH /v1/support/tickets/:id         change the status
//
// Who reaches what is the access policy's decision (authz.Guard): users
// reach their own tickets, support agents every ticket, and nobody in this
// module reaches payment data. Handlers never test roles: a message's
// author is "user" when written by the ticket's owner and "agent"
// otherwise.
//
// A ticket moves open → pending → resolved → closed. An agent's answer to
// an open ticket makes it pending (waiting for the user); the user's answer
// to a pending or resolved ticket opens it again. Status changes go through
// PATCH, which the policy grants to roles that may update
// user.support.status; a closed ticket is final.
package support

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"
	"golang.org/x/time/rate"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/ratelimit"
	"github.com/stewardhq/steward/internal/web"
)

// AttachmentRef describes an uploaded asset a user may attach.
type AttachmentRef struct {
	AssetID  string
	FileName string
	MimeType string
}

// Attachments checks uploaded assets for the module; the assets module
// provides it.
type Attachments interface {
	// Owned returns the asset when userID owns it, and an error wrapping
	// errs.ErrNotFound otherwise (also when it exists but is someone
	// else's, so its existence does not leak).
	Owned(ctx context.Context, userID, assetID string) (AttachmentRef, error)
}

// Config configures the support module. The zero value works.
type Config struct {
	// FeedbackLimit is how many feedback messages one IP address may send
	// per FeedbackWindow: at once, and then again as its allowance refills
	// at that rate. Zero means 5.
	FeedbackLimit int
	// FeedbackWindow is the rate-limit window. Zero means one hour.
	FeedbackWindow time.Duration
	// FeedbackMaxClients bounds the addresses the rate limiter remembers,
	// and so its memory; while it holds that many addresses that are all
	// still counting, a new address is refused. Zero means 10000.
	FeedbackMaxClients int
	// FormMinFill is the least time between fetching a form token and
	// sending the form; bots send at once. Zero means 3 s.
	FormMinFill time.Duration
	// FormMaxAge is how long a form token stays valid. Zero means 2 h.
	FormMaxAge time.Duration
	// FormKey signs form tokens. Empty means a random key per process
	// (tokens then do not survive a restart or span instances).
	FormKey []byte
}

// Deps are what the module needs from the rest of Steward.
type Deps struct {
	DB          *bun.DB
	Guard       *authz.Guard
	Attachments Attachments
	Logger      *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Module is the support module.
type Module struct {
	cfg     Config
	store   store
	guard   *authz.Guard
	assets  Attachments
	logger  *slog.Logger
	limiter *ratelimit.Limiter
	now     func() time.Time
}

// New returns the support module.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.DB == nil || deps.Guard == nil || deps.Attachments == nil {
		return nil, errors.New("support: DB, Guard and Attachments are required")
	}
	defaults.Logger(&deps.Logger)
	defaults.Clock(&deps.Now)
	defaults.Positive(&cfg.FeedbackLimit, 5)
	defaults.Positive(&cfg.FeedbackWindow, time.Hour)
	defaults.Positive(&cfg.FeedbackMaxClients, 10000)
	defaults.Positive(&cfg.FormMinFill, 3*time.Second)
	defaults.Positive(&cfg.FormMaxAge, 2*time.Hour)
	if len(cfg.FormKey) == 0 {
		cfg.FormKey = make([]byte, 32)
		// crypto/rand.Read never fails on supported platforms.
		_, _ = rand.Read(cfg.FormKey)
	}
	m := &Module{
		cfg: cfg, store: store{db: deps.DB}, guard: deps.Guard, assets: deps.Attachments,
		logger: deps.Logger.With("module", "support"),
		now:    func() time.Time { return deps.Now().UTC() },
	}
	m.limiter = ratelimit.New(ratelimit.Config{
		Rate:  rate.Every(cfg.FeedbackWindow / time.Duration(cfg.FeedbackLimit)),
		Burst: cfg.FeedbackLimit, MaxKeys: cfg.FeedbackMaxClients,
		// A flood of new addresses cannot push out one that is still
		// counting and so reset its allowance.
		WhenFull: ratelimit.RefuseNew,
	})
	return m, nil
}

// Name returns "support".
func (m *Module) Name() string { return "support" }

// Models returns the module's bun models for the data map.
func (m *Module) Models() []any { return models() }

// Mount adds the support routes.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) { m.mount(r, doc) }

var _ module.Module = (*Module)(nil)
