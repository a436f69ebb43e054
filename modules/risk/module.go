// Package risk provides Steward's risk module. For now it keeps the
// abuse-prevention log: rate-limit hits, failed sign-ins and other abuse
// signals, each with the rule that fired, the account when one is known,
// the client's address truncated to its network and the coarse user agent
// family. Other modules report to it through small interfaces they declare
// themselves (accounts.AbuseRecorder), which *Module implements, so no
// module imports this one.
package risk

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
)

// maxDetail bounds the stored detail, in bytes.
const maxDetail = 200

// maxUAFamily bounds the stored user agent family, in bytes.
const maxUAFamily = 64

// AbuseEvent is one row of abuse_events.
type AbuseEvent struct {
	bun.BaseModel `bun:"table:abuse_events"`

	ID         string    `bun:"id,pk" privacy:"system.operations"`
	OccurredAt time.Time `bun:"occurred_at,notnull" privacy:"user.security.abuse_log"`
	// Kind names the rule that fired, such as "rate_limited".
	Kind string `bun:"kind,notnull" privacy:"user.security.abuse_log"`
	// UserID is the account concerned, nil when none is known.
	UserID *string `bun:"user_id" privacy:"user.unique_id,subject"`
	// IPTruncated is the client's network: the address with its last 8
	// (IPv4) or 80 (IPv6) bits zeroed, as a prefix such as
	// "203.0.113.0/24"; "" when the address was unknown.
	IPTruncated string `bun:"ip_truncated,notnull" privacy:"user.security.abuse_log"`
	// UAFamily is the browser and system family, such as "Chrome on
	// Windows", never the full user agent.
	UAFamily string `bun:"ua_family,notnull" privacy:"user.security.abuse_log"`
	// Detail says more about the rule, as codes: never a personal value.
	Detail string `bun:"detail,notnull" privacy:"user.security.abuse_log"`
}

// Options configure New.
type Options struct {
	// DB is the SQL store, migrated.
	DB *bun.DB
	// Log receives the module's messages; nil discards them.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Module is the risk module.
type Module struct {
	db  *bun.DB
	log *slog.Logger
	now func() time.Time
}

// New returns the risk module.
func New(opts Options) (*Module, error) {
	if opts.DB == nil {
		return nil, errors.New("risk: a database is required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Module{db: opts.DB, log: opts.Log, now: opts.Now}, nil
}

// Name returns "risk".
func (m *Module) Name() string { return "risk" }

// Mount adds no routes yet: the abuse log is written by other modules and
// read by the audit.
func (m *Module) Mount(fiber.Router, web.Documenter) {}

// Models returns the module's bun models for the data map.
func (m *Module) Models() []any { return []any{(*AbuseEvent)(nil)} }

// RecordAbuse stores one abuse event. kind names the rule that fired;
// userID is the account concerned or ""; ip is the client's address as
// received, which is truncated before it is stored; uaFamily is the coarse
// user agent family; detail holds codes, never personal values.
func (m *Module) RecordAbuse(ctx context.Context, kind, userID, ip, uaFamily, detail string) error {
	if kind == "" {
		return errors.New("record abuse: kind is required")
	}
	ev := AbuseEvent{
		ID:          newID(),
		OccurredAt:  m.now().UTC(),
		Kind:        kind,
		IPTruncated: TruncateIP(ip),
		UAFamily:    clip(uaFamily, maxUAFamily),
		Detail:      clip(detail, maxDetail),
	}
	if userID != "" {
		ev.UserID = &userID
	}
	if _, err := m.db.NewInsert().Model(&ev).Exec(ctx); err != nil {
		return fmt.Errorf("record abuse: %w", err)
	}
	return nil
}

// TruncateIP returns the network of an address: IPv4 to /24 and IPv6 to
// /48, written as a prefix ("203.0.113.0/24", "2001:db8:1::/48"). An
// IPv4-mapped IPv6 address counts as IPv4. Anything that does not parse
// gives "", so a malformed header is never stored as it came.
func TruncateIP(ip string) string {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
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

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns a random event id, "ab_" and 26 base32 characters.
func newID() string {
	var b [16]byte
	// crypto/rand.Read never fails on supported platforms.
	_, _ = rand.Read(b[:])
	return "ab_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

var _ module.Module = (*Module)(nil)
