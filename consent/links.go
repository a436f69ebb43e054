package consent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/module"
)

// VisitorLink is one row of visitor_links: an account signed in on the
// browser whose consent cookie holds VisitorID, at LinkedAt. The rows
// decide whose anonymous records of a browser are whose (see Browsing).
type VisitorLink struct {
	bun.BaseModel `bun:"table:visitor_links"`

	ID        string `bun:"id,pk" privacy:"system.operations"`
	VisitorID string `bun:"visitor_id,notnull" privacy:"user.device.cookie_id,subject=visitor"`
	UserID    string `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	// LinkedAt is the sign-in's time, to the millisecond: the precision of
	// the warehouse's event times it is compared with.
	LinkedAt time.Time `bun:"linked_at,notnull" privacy:"user.device.cookie_id,collected"`
}

// SignedIn records that userID signed in on the browser with visitor id
// visitorID, then merges the browser's consent choices into the account
// (MergeVisitor). Call it from the sign-in hook with the consent cookie's
// value. It returns the link it recorded, or nil for a browser without a
// consent cookie, which links nothing.
func (m *Module) SignedIn(ctx context.Context, visitorID, userID string) (*VisitorLink, error) {
	if userID == "" {
		return nil, errors.New("record sign-in: no user id")
	}
	if !validVisitorID(visitorID) {
		return nil, nil
	}
	link := VisitorLink{ID: ids.Ordered(), VisitorID: visitorID, UserID: userID, LinkedAt: m.now().UTC().Truncate(time.Millisecond)}
	if _, err := m.store.db.NewInsert().Model(&link).Exec(ctx); err != nil {
		return nil, fmt.Errorf("record sign-in on a browser: %w", err)
	}
	return &link, m.MergeVisitor(ctx, visitorID, userID)
}

// OnSignIn is the accounts module's sign-in hook: it records that userID
// signed in on the request's browser and merges the browser's consent
// choices into the account (SignedIn), then copies the sign-in to the
// warehouse when the module has one. The SQL record decides exports and
// erasures, the warehouse copy attribution.
func (m *Module) OnSignIn(c *fiber.Ctx, userID string) error {
	ctx := c.UserContext()
	link, err := m.SignedIn(ctx, c.Cookies(m.cfg.CookieName), userID)
	if err != nil || link == nil || m.warehouse == nil {
		return err
	}
	err = m.warehouse.Insert(ctx, "visitor_links", []string{"link_id", "visitor_id", "user_id", "linked_at"},
		[][]any{{link.ID, link.VisitorID, link.UserID, link.LinkedAt}})
	if err != nil {
		return fmt.Errorf("copy the sign-in to the warehouse: %w", err)
	}
	return nil
}

// Browsing returns the stretches of anonymous browser activity that belong
// to the account userID under the identity rule: a browser's anonymous
// records belong to the account that next signs in on it. For every
// browser the account signed in on, each of its sign-ins claims what the
// browser did anonymously since the sign-in before it (by anyone); what a
// browser does after its last sign-in belongs to nobody until someone signs
// in there again. Consecutive stretches of the same browser are joined.
func (m *Module) Browsing(ctx context.Context, userID string) ([]module.Browsing, error) {
	if userID == "" {
		return nil, nil
	}
	var links []VisitorLink
	err := m.store.db.NewSelect().Model(&links).
		Where("visitor_id IN (?)", m.store.db.NewSelect().Model((*VisitorLink)(nil)).Column("visitor_id").Where("user_id = ?", userID)).
		OrderExpr("visitor_id ASC, linked_at ASC, id ASC").
		Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read browser sign-ins: %w", err)
	}
	return browsingOf(links, userID), nil
}

// VisitorBrowsing returns what of a browser's anonymous activity belongs
// to whoever holds its visitor id now, under the identity rule: what it
// did since the last sign-in on it (the sign-ins before claim the rest
// for their accounts), up to now. An empty visitor id has none.
func (m *Module) VisitorBrowsing(ctx context.Context, visitorID string) ([]module.Browsing, error) {
	if visitorID == "" {
		return nil, nil
	}
	var last []VisitorLink
	err := m.store.db.NewSelect().Model(&last).Where("visitor_id = ?", visitorID).
		OrderExpr("linked_at DESC, id DESC").Limit(1).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the browser's last sign-in: %w", err)
	}
	b := module.Browsing{VisitorID: visitorID, Until: m.now().UTC()}
	if len(last) > 0 {
		b.After = last[0].LinkedAt.UTC()
	}
	return []module.Browsing{b}, nil
}

// VisitorID returns the request's visitor id, from the consent cookie,
// or "" when it has none (or one Steward did not issue the shape of).
func (m *Module) VisitorID(c *fiber.Ctx) string {
	if vid := c.Cookies(m.cfg.CookieName); validVisitorID(vid) {
		return strings.Clone(vid)
	}
	return ""
}

// browsingOf applies the identity rule to the sign-ins of some browsers,
// ordered by visitor id and time.
func browsingOf(links []VisitorLink, userID string) []module.Browsing {
	var out []module.Browsing
	var prev time.Time
	for i, l := range links {
		if i == 0 || links[i-1].VisitorID != l.VisitorID {
			prev = time.Time{}
		}
		at := l.LinkedAt.UTC()
		if l.UserID == userID {
			if n := len(out); n > 0 && out[n-1].VisitorID == l.VisitorID && out[n-1].Until.Equal(prev) {
				out[n-1].Until = at
			} else {
				out = append(out, module.Browsing{VisitorID: l.VisitorID, After: prev, Until: at})
			}
		}
		prev = at
	}
	return out
}
