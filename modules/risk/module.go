// Package risk provides Steward's risk module: the abuse-prevention log and
// the reward records (daily check-ins and one-time reward tasks).
//
// The abuse log holds rate-limit hits, failed sign-ins and other abuse
// signals, each with the rule that fired, the account when one is known,
// the client's address truncated to its network and the coarse user agent
// family. Other modules report to it through small interfaces they declare
// themselves (accounts.AbuseRecorder), which *Module implements, so no
// module imports this one. Staff whose role the access policy allows read
// it through GET /v1/risk/abuse-events.
//
// Rewards grant credits through a Rewarder (the billing ledger, wired in
// cmd/steward) and record each grant in reward_records, whose unique
// indexes allow one check-in per user and day and one grant per user and
// task, however many requests race.
package risk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/ipaddr"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
)

// maxDetail bounds the stored detail, in bytes.
const maxDetail = 200

// maxUAFamily bounds the stored user agent family, in bytes.
const maxUAFamily = 64

// DefaultCheckInCredits is the credits a daily check-in grants when
// Config.CheckInCredits is zero.
const DefaultCheckInCredits = 5

// Rewarder credits a user's balance; *billing.Ledger is one. Reward must
// apply a given ref at most once, so that a retried call grants nothing
// twice.
type Rewarder interface {
	Reward(ctx context.Context, userID string, amount int64, reason, ref string) error
}

// Config configures the risk module. The zero value works.
type Config struct {
	// CheckInCredits is what one daily check-in grants; zero means
	// DefaultCheckInCredits.
	CheckInCredits int64
	// Location sets where a check-in day begins and ends; nil means UTC.
	Location *time.Location
}

// Deps are what the module needs from the rest of Steward.
type Deps struct {
	// DB is the SQL store, migrated.
	DB *bun.DB
	// Logger receives the module's messages; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Guard applies the access policy to the module's routes. Without it
	// Mount adds no route.
	Guard *authz.Guard
	// Rewards receives the credits of check-ins and reward tasks. Without
	// it the reward routes are not mounted and CheckIn and GrantTask fail.
	Rewards Rewarder
}

// Module is the risk module.
type Module struct {
	store          store
	log            *slog.Logger
	now            func() time.Time
	guard          *authz.Guard
	rewards        Rewarder
	checkInCredits int64
	loc            *time.Location
}

// New returns the risk module.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.DB == nil {
		return nil, errors.New("risk: a database is required")
	}
	if cfg.CheckInCredits < 0 {
		return nil, fmt.Errorf("risk: check-in credits must not be negative, got %d", cfg.CheckInCredits)
	}
	defaults.Logger(&deps.Logger)
	defaults.Clock(&deps.Now)
	if cfg.CheckInCredits == 0 {
		cfg.CheckInCredits = DefaultCheckInCredits
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	return &Module{
		store: store{db: deps.DB}, log: deps.Logger, now: deps.Now, guard: deps.Guard,
		rewards: deps.Rewards, checkInCredits: cfg.CheckInCredits, loc: cfg.Location,
	}, nil
}

// Name returns "risk".
func (m *Module) Name() string { return "risk" }

// Mount adds the abuse-log route for staff and, when a Rewarder is set,
// the reward routes. A module built without a Guard mounts nothing, since
// every route returns personal data.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	if m.guard == nil {
		m.log.Warn("risk routes not mounted: no access guard")
		return
	}
	m.mount(r, doc)
}

// Models returns the module's bun models for the data map.
func (m *Module) Models() []any { return []any{(*AbuseEvent)(nil), (*RewardRecord)(nil)} }

// RecordAbuse stores one abuse event. kind names the rule that fired;
// userID is the account concerned or ""; ip is the client's address as
// received, which is truncated before it is stored; uaFamily is the coarse
// user agent family; detail holds codes, never personal values.
func (m *Module) RecordAbuse(ctx context.Context, kind, userID, ip, uaFamily, detail string) error {
	if kind == "" {
		return errors.New("record abuse: kind is required")
	}
	ev := AbuseEvent{
		ID:          ids.New("ab"),
		OccurredAt:  m.now().UTC(),
		Kind:        kind,
		IPTruncated: ipaddr.Truncate(ip),
		UAFamily:    clip(uaFamily, maxUAFamily),
		Detail:      clip(detail, maxDetail),
	}
	if userID != "" {
		ev.UserID = &userID
	}
	if err := m.store.insertAbuseEvent(ctx, &ev); err != nil {
		return fmt.Errorf("record abuse: %w", err)
	}
	return nil
}

// clip cuts s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

var _ module.Module = (*Module)(nil)
