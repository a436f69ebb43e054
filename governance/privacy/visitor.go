package privacy

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/time/rate"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/ratelimit"
)

// A visitor who never signed in has no account to prove who they are. The
// browser's visitor id (the consent cookie's value) is what ties it to its
// records, so holding the cookie is what lets a visitor see, download and
// erase those records, as a session cookie lets a person into their
// account. What a visitor's request covers follows the identity rule
// (docs/policies.md): the browser's anonymous activity since the last
// sign-in on it. What it did before belongs to the accounts that signed in
// there, and a visitor's request never reaches it.

// VisitorActor names a visitor in the trail of the requests they file.
const VisitorActor = "visitor"

// Visitors may file a few requests an hour from one network: a visitor id
// costs nothing to make up, and each request is work for the workers.
const (
	visitorRequestsPerHour = 10
	visitorRequestsBurst   = 5
	visitorNetworks        = 10000
)

func newVisitorLimiter() *ratelimit.Limiter {
	return ratelimit.New(ratelimit.Config{
		Rate: rate.Limit(float64(visitorRequestsPerHour) / 3600), Burst: visitorRequestsBurst,
		MaxKeys: visitorNetworks, WhenFull: ratelimit.EvictOldest,
	})
}

// VisitorRequest is a request a visitor files from their browser.
type VisitorRequest struct {
	Type string
	// VisitorID is the visitor id of the browser's consent cookie.
	VisitorID string
	// Language is the language of the visitor's pages, a BCP 47 tag; their
	// access package speaks it.
	Language string
	// Network is the caller's truncated address, which bounds how many
	// requests one network files.
	Network string
}

// CreateForVisitor files a request about what the browser with in's
// visitor id holds for whoever holds the id now: its activity since the
// last sign-in on it. The request is verified at once, by the cookie the
// browser sent. While a request of the same type for the browser is open,
// it is returned instead of a second one.
func (m *Module) CreateForVisitor(ctx context.Context, in VisitorRequest) (Request, error) {
	if in.Type != TypeAccess && in.Type != TypeErasure {
		return Request{}, errs.Invalid("type", "oneof", `must be "access" or "erasure"`)
	}
	if in.VisitorID == "" {
		return Request{}, errs.E(errs.ErrForbidden, "This browser holds no visitor cookie, so Steward keeps nothing tied to it.")
	}
	open, err := m.openVisitorRequest(ctx, in.VisitorID, in.Type)
	if err != nil || open != nil {
		if open != nil {
			return *open, nil
		}
		return Request{}, err
	}
	now := m.now().UTC()
	if ok, wait := m.visitorLimit.Allow(in.Network, now); !ok {
		return Request{}, errs.Retry(errs.ErrRateLimited, "Too many privacy requests from this network; try again later.", wait)
	}
	after, err := m.lastSignIn(ctx, in.VisitorID)
	if err != nil {
		return Request{}, err
	}
	req := Request{
		ID: ids.New("pr"), Type: in.Type, Status: StatusReceived, RequestedBy: VisitorActor,
		VisitorID: in.VisitorID, BrowsingAfter: after, Language: in.Language,
		ReceivedAt: now, DueAt: now.AddDate(0, dueMonths, 0), PolicyRevision: m.deps.Policy.Revision(), UpdatedAt: now,
	}
	err = m.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&req).Exec(ctx); err != nil {
			return err
		}
		if err := m.addEvent(ctx, tx, &req, StatusReceived, VisitorActor, ""); err != nil {
			return err
		}
		return m.setStatus(ctx, tx, &req, StatusVerified, VisitorActor, "filed from the browser that holds the visitor cookie")
	})
	if err != nil {
		return Request{}, fmt.Errorf("create privacy request: %w", err)
	}
	m.notify()
	return req, nil
}

// openVisitorRequest returns the browser's unfinished request of type
// typ, nil when there is none.
func (m *Module) openVisitorRequest(ctx context.Context, visitorID, typ string) (*Request, error) {
	var open []Request
	err := m.deps.DB.NewSelect().Model(&open).
		Where("visitor_id = ? AND user_id = '' AND type = ?", visitorID, typ).
		Where("status IN (?)", bun.In(openStatuses)).
		Order("received_at DESC").Limit(1).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the browser's open requests: %w", err)
	}
	if len(open) == 0 {
		return nil, nil
	}
	return &open[0], nil
}

// VisitorOverview returns the requests filed from the browser with the
// visitor id, newest first, as Overview does a person's.
func (m *Module) VisitorOverview(ctx context.Context, visitorID string) ([]RequestView, error) {
	if visitorID == "" {
		return nil, nil
	}
	var list []Request
	err := m.deps.DB.NewSelect().Model(&list).Where("visitor_id = ? AND user_id = ''", visitorID).
		Order("received_at DESC", "id").Limit(100).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the browser's privacy requests: %w", err)
	}
	out := make([]RequestView, len(list))
	for i, req := range list {
		out[i] = m.view(req, nil)
	}
	return out, nil
}

// ShowForVisitor returns a request filed from the browser with the visitor
// id, with its trail and, when its package is ready, a download link; a
// NotFound error for any other request.
func (m *Module) ShowForVisitor(ctx context.Context, visitorID, id string) (RequestView, error) {
	req, err := m.load(ctx, id)
	if err != nil {
		return RequestView{}, err
	}
	if visitorID == "" || req.VisitorID != visitorID || req.UserID != "" {
		return RequestView{}, errs.E(errs.ErrNotFound, "No such request of this browser.")
	}
	events, err := m.Events(ctx, req.ID)
	if err != nil {
		return RequestView{}, err
	}
	return m.view(req, events), nil
}

// VisitorErasurePreview is ErasurePreview for what the browser with the
// visitor id holds for whoever holds the id now.
func (m *Module) VisitorErasurePreview(ctx context.Context, visitorID string) ([]PreviewItem, error) {
	if visitorID == "" {
		return nil, nil
	}
	after, err := m.lastSignIn(ctx, visitorID)
	if err != nil {
		return nil, err
	}
	b := module.Browsing{VisitorID: visitorID, Until: m.now().UTC()}
	if after != nil {
		b.After = *after
	}
	return m.previewOf(ctx, module.SubjectRef{Browsing: []module.Browsing{b}})
}

// lastSignIn returns the time of the last sign-in on the browser with the
// visitor id, nil when no one signed in there.
func (m *Module) lastSignIn(ctx context.Context, visitorID string) (*time.Time, error) {
	if m.deps.Visitors == nil {
		return nil, nil
	}
	b, err := m.deps.Visitors.VisitorBrowsing(ctx, visitorID)
	if err != nil {
		return nil, fmt.Errorf("read the browser's sign-ins: %w", err)
	}
	if len(b) == 0 || b[0].After.IsZero() {
		return nil, nil
	}
	at := b[0].After.UTC()
	return &at, nil
}

// visitorSubject is the subject of a visitor's request: the browser's
// activity from the last sign-in before the request up to now. If someone
// signed in on the browser since the request was filed, that sign-in
// claims the browser's activity before it for its account, and the
// request covers only what the browser did up to its filing.
func (m *Module) visitorSubject(ctx context.Context, req *Request) (module.SubjectRef, error) {
	b := module.Browsing{VisitorID: req.VisitorID, Until: m.now().UTC()}
	if req.BrowsingAfter != nil {
		b.After = req.BrowsingAfter.UTC()
	}
	last, err := m.lastSignIn(ctx, req.VisitorID)
	if err != nil {
		return module.SubjectRef{}, err
	}
	if last != nil && last.After(b.After) {
		b.Until = req.ReceivedAt.UTC()
	}
	return module.SubjectRef{Browsing: []module.Browsing{b}}, nil
}

// isVisitors reports whether req was filed by a visitor about their
// browser.
func (r Request) isVisitors() bool { return r.UserID == "" && r.VisitorID != "" }
