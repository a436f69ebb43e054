// Package privacy provides data subject requests: access (GDPR Art. 15 and
// 20) and erasure (Art. 17). It files requests and keeps their audit
// trail, processes them in the background, builds the access package as a
// streamed ZIP into the file store every instance shares, erases across
// the SQL store, the warehouse, files and external systems, verifies the
// erasure and issues its certificate.
//
// Every process sharing the SQL store (serve instances, commands) takes
// part in the processing: a process runs a request only while it holds
// its claim (claim.go), so each request is processed, and completed, once.
//
// Nothing here lists tables or columns: what a request reaches is read
// from the data map (every tagged column of every store) and decided per
// category by the export and erasure policies, so a newly tagged table is
// exported and erased with no change to this package. Modules that hold
// data outside the SQL store take part through module.SubjectData. The
// one exception is the package's page for the person (index.go), whose
// sections find their tables by category and name the few columns they
// present; what the package holds never depends on them.
package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/background"
	"github.com/stewardhq/steward/internal/blob"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/emailaddr"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/ratelimit"
	"github.com/stewardhq/steward/internal/text"
	"github.com/stewardhq/steward/policies"
)

// Defaults of Config.
const (
	DefaultPollInterval   = 5 * time.Second
	DefaultDownloadTTL    = 24 * time.Hour
	DefaultRecentSignIn   = 15 * time.Minute
	DefaultPackageTTL     = 7 * 24 * time.Hour
	DefaultWorkers        = 2
	DefaultLease          = time.Minute
	exportsFolder         = "exports"
	scratchFolder         = "tmp"
	maxReasonLength       = 2000
	requestCategory       = "user.privacy_request"
	dueMonths             = 1
	maxExtensionMonths    = 2
	processingErrorDetail = "processing failed; the request will be retried"
)

// Accounts finds the account behind an email address.
type Accounts interface {
	// UserIDByEmail returns the account id of the address, or an error
	// wrapping errs.ErrNotFound when no account has it.
	UserIDByEmail(ctx context.Context, email string) (string, error)
	// EmailByUserID returns the account's email address.
	EmailByUserID(ctx context.Context, userID string) (string, error)
	// LanguageByUserID returns the account's language, a BCP 47 tag, in
	// which its access package speaks; an error wrapping errs.ErrNotFound
	// when no account has the id.
	LanguageByUserID(ctx context.Context, userID string) (string, error)
}

// VisitorLinks gives the stretches of browser activity that belong to an
// account, or to whoever holds a browser's visitor id, under the identity
// rule (docs/policies.md).
type VisitorLinks interface {
	Browsing(ctx context.Context, userID string) ([]module.Browsing, error)
	// VisitorBrowsing returns the browser's activity since the last
	// sign-in on it (After; zero when none), up to now.
	VisitorBrowsing(ctx context.Context, visitorID string) ([]module.Browsing, error)
}

// Events is the event pipeline: Settle returns once every event
// acknowledged before the call is in the warehouse.
type Events interface {
	Settle(ctx context.Context) error
}

// Hook is a module holding subject data outside the SQL store.
type Hook struct {
	Module string
	Data   module.SubjectData
}

// Config tunes the module.
type Config struct {
	// DataDir holds what an export buffers on its way into the package
	// (in DataDir/tmp), and is the file store of the packages (in
	// DataDir/exports) when Deps.Files is nil.
	DataDir string
	// SigningKey signs download links (HMAC-SHA256).
	SigningKey []byte
	// PollInterval is how often the worker looks for requests to process.
	PollInterval time.Duration
	// DownloadTTL is how long a download link stays valid.
	DownloadTTL time.Duration
	// RecentSignIn is how recent a sign-in must be for a user to request
	// their own erasure.
	RecentSignIn time.Duration
	// PackageTTL is how long an access package is kept for download after
	// the request completed; the file is then removed.
	PackageTTL time.Duration
	// Workers is how many requests one process runs at once;
	// DefaultWorkers when zero.
	Workers int
	// Lease is how long a process's claim on a request lasts unless
	// renewed. The holder renews it every third of Lease while it works;
	// when the holder dies, another process resumes the request once the
	// lease has run out. DefaultLease when zero.
	Lease time.Duration
}

// Deps is what the module needs, handed in by cmd/steward.
type Deps struct {
	DB        *bun.DB
	Warehouse warehouse.Warehouse // nil: no warehouse data
	Policy    Policy
	Guard     *authz.Guard
	DataMap   func(ctx context.Context) (*datamap.Map, []datamap.Problem, error)
	Accounts  Accounts
	Visitors  VisitorLinks // nil: no browser is linked to any account
	Events    Events       // nil: events reach the warehouse directly
	Hooks     []Hook
	// Files is the file store every instance shares, holding the export
	// packages in its folder exports. Nil: a folder store in
	// Config.DataDir.
	Files *blob.Store
	// Leader gates the periodic expiry of packages to one process. Nil:
	// this process leads.
	Leader module.Leader
	// SignedInAt returns when the principal's credential was issued by a
	// sign-in; erasure by the subject needs a recent one. Nil refuses
	// self-service erasure.
	SignedInAt func(ctx context.Context, p authz.Principal) (time.Time, error)
	Logger     *slog.Logger
	Now        func() time.Time
}

// Module is the privacy requests module.
type Module struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	files *blob.Store

	// slots holds a token per request this process is running: at most
	// cfg.Workers.
	slots chan struct{}
	// running waits for the requests the worker started.
	running sync.WaitGroup

	bg   background.Group
	wake chan struct{}

	// visitorLimit bounds the requests visitors file per network.
	visitorLimit *ratelimit.Limiter
}

// New returns the module.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.DB == nil || deps.Policy == nil || deps.Guard == nil || deps.DataMap == nil || deps.Accounts == nil {
		return nil, errors.New("privacy: DB, Policy, Guard, DataMap and Accounts are required")
	}
	if len(cfg.SigningKey) < 16 {
		return nil, errors.New("privacy: a signing key of at least 16 bytes is required")
	}
	if cfg.DataDir == "" && deps.Files == nil {
		return nil, errors.New("privacy: Files or DataDir is required")
	}
	defaults.Positive(&cfg.PollInterval, DefaultPollInterval)
	defaults.Positive(&cfg.DownloadTTL, DefaultDownloadTTL)
	defaults.Positive(&cfg.RecentSignIn, DefaultRecentSignIn)
	defaults.Positive(&cfg.PackageTTL, DefaultPackageTTL)
	defaults.Positive(&cfg.Workers, DefaultWorkers)
	defaults.Positive(&cfg.Lease, DefaultLease)
	defaults.Logger(&deps.Logger)
	defaults.Clock(&deps.Now)
	files := deps.Files
	if files == nil {
		var err error
		if files, err = blob.OpenDir(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("privacy: %w", err)
		}
	}
	return &Module{cfg: cfg, deps: deps, log: deps.Logger, files: files,
		slots: make(chan struct{}, cfg.Workers), wake: make(chan struct{}, 1), visitorLimit: newVisitorLimiter()}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "privacy" }

// Models implements module.Module.
func (m *Module) Models() []any { return Models() }

// now is the current time at the precision the SQL store keeps, so a
// value answered before a read-back equals the value read back.
func (m *Module) now() time.Time { return m.deps.Now().Truncate(time.Microsecond) }

func (m *Module) dataMap(ctx context.Context) (*datamap.Map, error) {
	dm, _, err := m.deps.DataMap(ctx)
	if err != nil {
		return nil, fmt.Errorf("build data map: %w", err)
	}
	return dm, nil
}

// NewRequest is what a caller files.
type NewRequest struct {
	Type string
	// Email names the subject when a DPO or admin files on their behalf;
	// empty for the caller's own request.
	Email string
	// Reason is required on behalf of a subject.
	Reason string
}

// Create files a request for the principal, or on behalf of the subject
// NewRequest.Email names when the access policy lets the principal act
// for others. The request is verified at once (the caller is signed in,
// or a DPO vouches for the subject's identity with a reason) and queued.
func (m *Module) Create(ctx context.Context, p authz.Principal, in NewRequest) (Request, error) {
	if in.Type != TypeAccess && in.Type != TypeErasure {
		return Request{}, errs.Invalid("type", "oneof", `must be "access" or "erasure"`)
	}
	if len(in.Reason) > maxReasonLength {
		return Request{}, errs.Invalid("reason", "max", fmt.Sprintf("at most %d characters", maxReasonLength))
	}
	now := m.now().UTC()
	req := Request{
		ID: ids.New("pr"), Type: in.Type, Status: StatusReceived, RequestedBy: p.UserID,
		ReceivedAt: now, DueAt: now.AddDate(0, dueMonths, 0), PolicyRevision: m.deps.Policy.Revision(), UpdatedAt: now,
	}
	email := strings.TrimSpace(in.Email)
	if email == "" {
		req.UserID = p.UserID
		if _, err := m.check(ctx, p, authz.ActionExport, req.UserID, requestCategory); err != nil {
			return Request{}, err
		}
		addr, err := m.deps.Accounts.EmailByUserID(ctx, p.UserID)
		if err != nil {
			return Request{}, fmt.Errorf("create privacy request: %w", err)
		}
		req.Email = addr
		if in.Type == TypeErasure {
			if err := m.checkRecentSignIn(ctx, p); err != nil {
				return Request{}, err
			}
		}
	} else {
		if !emailaddr.Valid(email) {
			return Request{}, errs.Invalid("email", "email", "must be an email address")
		}
		if strings.TrimSpace(in.Reason) == "" {
			return Request{}, errs.Invalid("reason", "required", "say why you file the request for the subject")
		}
		uid, err := m.deps.Accounts.UserIDByEmail(ctx, email)
		if err != nil && !errors.Is(err, errs.ErrNotFound) {
			return Request{}, fmt.Errorf("create privacy request: %w", err)
		}
		// Acting for another subject is what the policy must allow: the
		// owner is the subject (or no one), never the caller.
		owner := uid
		if owner == "" || owner == p.UserID {
			owner = "subject:" + email
		}
		if _, err := m.check(ctx, p, authz.ActionExport, owner, requestCategory); err != nil {
			return Request{}, err
		}
		req.UserID, req.Email, req.OnBehalf, req.Reason = uid, email, true, strings.TrimSpace(in.Reason)
	}
	err := m.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&req).Exec(ctx); err != nil {
			return err
		}
		if err := m.addEvent(ctx, tx, &req, StatusReceived, p.UserID, ""); err != nil {
			return err
		}
		note := "the subject is signed in"
		if req.OnBehalf {
			note = "identity vouched for by the staff member who filed the request"
			if _, err := adminlog.Append(ctx, tx, adminlog.Entry{
				ActorID: p.UserID, Action: "privacy_request." + req.Type, TargetID: targetOf(req),
				Details: map[string]any{"request_id": req.ID, "reason": req.Reason},
			}); err != nil {
				return err
			}
		}
		return m.setStatus(ctx, tx, &req, StatusVerified, p.UserID, note)
	})
	if err != nil {
		return Request{}, fmt.Errorf("create privacy request: %w", err)
	}
	m.notify()
	return req, nil
}

// checkRecentSignIn refuses a self-service erasure unless the caller
// signed in within RecentSignIn: deleting an account is not something a
// stolen, long-lived credential should be able to do.
func (m *Module) checkRecentSignIn(ctx context.Context, p authz.Principal) error {
	if m.deps.SignedInAt == nil {
		return errs.E(errs.ErrForbidden, "sign in again to request the erasure of your account")
	}
	at, err := m.deps.SignedInAt(ctx, p)
	if err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return errs.E(errs.ErrForbidden, "sign in again to request the erasure of your account")
		}
		return fmt.Errorf("check sign-in time: %w", err)
	}
	if m.now().Sub(at) > m.cfg.RecentSignIn {
		return errs.E(errs.ErrForbidden, fmt.Sprintf("sign in again (within %s) to request the erasure of your account", m.cfg.RecentSignIn))
	}
	return nil
}

// Get returns a request the principal may see.
func (m *Module) Get(ctx context.Context, p authz.Principal, id string) (Request, error) {
	req, err := m.load(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if _, err := m.check(ctx, p, authz.ActionRead, ownerOf(req), requestCategory); err != nil {
		// A request the caller may not see does not exist for them.
		if errors.Is(err, errs.ErrForbidden) {
			return Request{}, errs.E(errs.ErrNotFound, "no such privacy request")
		}
		return Request{}, err
	}
	return req, nil
}

// targetOf is what the admin log names as acted on: the subject's
// account, or the request itself for a subject without one (the log never
// holds an email address).
func targetOf(r Request) string {
	if r.UserID != "" {
		return r.UserID
	}
	return "privacy_request:" + r.ID
}

// check asks the access policy whether p may perform action on requests
// about owner. The policy may allow a read with categories redacted; a
// request is one category, so a redaction refuses it whole.
func (m *Module) check(ctx context.Context, p authz.Principal, action, owner, category string) (policies.AccessDecision, error) {
	d, err := m.deps.Guard.Check(ctx, p, action, owner, []string{category})
	if err != nil {
		return d, err
	}
	if len(d.Redact) > 0 {
		return d, errs.E(errs.ErrForbidden, "your role may not "+action+" privacy requests")
	}
	return d, nil
}

// ownerOf is the subject id a request is about, for the access policy.
func ownerOf(r Request) string {
	if r.UserID != "" {
		return r.UserID
	}
	if r.VisitorID != "" {
		return "visitor:" + r.VisitorID
	}
	return "subject:" + r.Email
}

// List returns the requests the principal may see, newest first: every
// request for a role the policy lets list requests about anyone (dpo,
// admin), otherwise the caller's own.
func (m *Module) List(ctx context.Context, p authz.Principal) ([]Request, error) {
	q := m.deps.DB.NewSelect().Model((*Request)(nil)).Order("received_at DESC", "id").Limit(500)
	d, err := m.check(ctx, p, authz.ActionList, "", requestCategory)
	switch {
	case err == nil && !d.OwnOnly:
	case err == nil || errors.Is(err, errs.ErrForbidden):
		// A subject lists the requests about themself.
		if _, err := m.check(ctx, p, authz.ActionList, p.UserID, requestCategory); err != nil {
			return nil, err
		}
		q = q.Where("user_id = ?", p.UserID)
	default:
		return nil, err
	}
	var out []Request
	if err := q.Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("list privacy requests: %w", err)
	}
	return out, nil
}

// QueueFilter narrows the queue to requests of one status and one type;
// an empty field keeps every one.
type QueueFilter struct {
	Status, Type string
}

// QueueAnswered bounds the answered requests Queue returns. Those not
// answered yet are all returned, however old: someone must act on them.
const QueueAnswered = 200

// Queue returns every request not answered yet (received, verified,
// processing, and failed, which waits for someone to look into it) and
// the newest QueueAnswered answered ones (completed, rejected), accounts'
// and visitors' alike, of the status and type f keeps, for the roles the
// access policy lets list requests about anyone (dpo, admin). Unlike
// List, it never drops an old unanswered request for newer ones.
func (m *Module) Queue(ctx context.Context, p authz.Principal, f QueueFilter) ([]Request, error) {
	var v errs.ValidationError
	if f.Status != "" && !slices.Contains(Statuses(), f.Status) {
		v.Add("status", "oneof", "must be one of "+strings.Join(Statuses(), ", "))
	}
	if f.Type != "" && f.Type != TypeAccess && f.Type != TypeErasure {
		v.Add("type", "oneof", `must be "access" or "erasure"`)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	d, err := m.check(ctx, p, authz.ActionList, "", requestCategory)
	if err != nil {
		return nil, err
	}
	if d.OwnOnly {
		return nil, errs.E(errs.ErrForbidden, "your role may list only your own privacy requests")
	}
	var waiting, answered []Request
	list := func(out *[]Request, statuses []string, limit int64) error {
		if f.Status != "" {
			if !slices.Contains(statuses, f.Status) {
				return nil
			}
			statuses = []string{f.Status}
		}
		q := m.deps.DB.NewSelect().Model(out).Where("status IN (?)", bun.In(statuses))
		if f.Type != "" {
			q = q.Where("type = ?", f.Type)
		}
		if limit > 0 {
			q = q.Order("received_at DESC", "id").Limit(limit)
		}
		return q.Scan(ctx)
	}
	if err := list(&waiting, append(slices.Clone(openStatuses), StatusFailed), 0); err != nil {
		return nil, fmt.Errorf("list unanswered privacy requests: %w", err)
	}
	if err := list(&answered, []string{StatusCompleted, StatusRejected}, QueueAnswered); err != nil {
		return nil, fmt.Errorf("list answered privacy requests: %w", err)
	}
	return append(waiting, answered...), nil
}

// Events returns a request's audit trail, oldest first.
func (m *Module) Events(ctx context.Context, requestID string) ([]Event, error) {
	var out []Event
	if err := m.deps.DB.NewSelect().Model(&out).Where("request_id = ?", requestID).Order("at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("read request events: %w", err)
	}
	return out, nil
}

// Extend records an extension of the deadline by up to two further months
// (Art. 12(3)) with its reason. Only roles the policy lets audit requests
// (dpo, admin) may extend.
func (m *Module) Extend(ctx context.Context, p authz.Principal, id string, months int, reason string) (Request, error) {
	if months < 1 || months > maxExtensionMonths {
		return Request{}, errs.Invalid("months", "range", fmt.Sprintf("between 1 and %d", maxExtensionMonths))
	}
	reason, err := staffReason(reason, "say why the request needs more time")
	if err != nil {
		return Request{}, err
	}
	req, err := m.load(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if _, err := m.check(ctx, p, authz.ActionAudit, ownerOf(req), requestCategory); err != nil {
		return Request{}, err
	}
	if req.ExtensionReason != "" {
		return Request{}, errs.E(errs.ErrConflict, "the deadline was extended already")
	}
	if req.Status == StatusCompleted || req.Status == StatusRejected {
		return Request{}, errs.E(errs.ErrConflict, "the request is closed")
	}
	req.DueAt = req.ReceivedAt.AddDate(0, dueMonths+months, 0)
	req.ExtensionReason = reason
	req.UpdatedAt = m.now().UTC()
	err = m.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model(&req).Column("due_at", "extension_reason", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		if _, err := adminlog.Append(ctx, tx, adminlog.Entry{ActorID: p.UserID, Action: "privacy_request.extend", TargetID: targetOf(req),
			Details: map[string]any{"request_id": req.ID, "months": months, "reason": req.ExtensionReason}}); err != nil {
			return err
		}
		return m.addEvent(ctx, tx, &req, "extended", p.UserID, req.ExtensionReason)
	})
	if err != nil {
		return Request{}, fmt.Errorf("extend privacy request: %w", err)
	}
	return req, nil
}

// staffReason returns the reason staff give for acting on a request,
// trimmed, or a validation error naming the field reason: a reason is
// required (missing says what it must say), at most maxReasonLength
// characters, and a paragraph of text under the text policy, line breaks
// allowed, since the console's form takes it from a text area.
func staffReason(reason, missing string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", errs.Invalid("reason", "required", missing)
	}
	if utf8.RuneCountInString(reason) > maxReasonLength {
		return "", errs.Invalid("reason", "max", fmt.Sprintf("at most %d characters", maxReasonLength))
	}
	if p := text.Check(reason, text.Multiline); p != nil {
		return "", errs.Invalid("reason", p.Rule, p.Message)
	}
	return reason, nil
}

// Reject refuses a request that has not started with the reason, which
// the trail and the admin log keep: a manifestly unfounded or excessive
// request (Art. 12(5)), or one whose subject cannot be identified
// (Art. 11(2), 12(2)). Only roles the policy lets audit requests (dpo, admin)
// may. A request being processed is not rejected: an erasure half done
// would stay half done.
func (m *Module) Reject(ctx context.Context, p authz.Principal, id, reason string) (Request, error) {
	reason, err := staffReason(reason, "say why the request is rejected")
	if err != nil {
		return Request{}, err
	}
	req, err := m.load(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if _, err := m.check(ctx, p, authz.ActionAudit, ownerOf(req), requestCategory); err != nil {
		return Request{}, err
	}
	// The claim keeps the workers off the request while it is rejected;
	// a worker that claims it afterwards finds it closed.
	l, err := m.claim(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if l == nil {
		return Request{}, errs.E(errs.ErrConflict, "the request is being processed")
	}
	defer func() {
		if err := l.release(context.WithoutCancel(ctx)); err != nil {
			m.log.Warn("release privacy request claim", slog.String("request_id", id), slog.Any("error", err))
		}
	}()
	if req, err = m.load(ctx, id); err != nil {
		return Request{}, err
	}
	switch req.Status {
	case StatusReceived, StatusVerified:
	case StatusProcessing:
		return Request{}, errs.E(errs.ErrConflict, "the request is being processed")
	default:
		return Request{}, errs.E(errs.ErrConflict, "the request is closed")
	}
	err = m.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := l.hold(ctx, tx); err != nil {
			return err
		}
		if _, err := adminlog.Append(ctx, tx, adminlog.Entry{ActorID: p.UserID, Action: "privacy_request.reject", TargetID: targetOf(req),
			Details: map[string]any{"request_id": req.ID, "reason": reason}}); err != nil {
			return err
		}
		return m.setStatus(ctx, tx, &req, StatusRejected, p.UserID, reason)
	})
	if err != nil {
		return Request{}, fmt.Errorf("reject privacy request: %w", err)
	}
	return req, nil
}

// EventRetried is the trail's entry for a failed request sent back to the
// workers.
const EventRetried = "retried"

// Retry sends a failed request back to the workers: it is verified again,
// with its failure cleared, and runs anew with a fresh count of attempts.
// An erasure whose verification failed runs its steps again over the
// identifiers its census fixed, so what was left behind is erased, and
// gets a new certificate. Only roles the policy lets audit requests (dpo,
// admin) may.
func (m *Module) Retry(ctx context.Context, p authz.Principal, id string) (Request, error) {
	req, err := m.load(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if _, err := m.check(ctx, p, authz.ActionAudit, ownerOf(req), requestCategory); err != nil {
		return Request{}, err
	}
	if req.Status != StatusFailed {
		return Request{}, errs.E(errs.ErrConflict, "only a failed request is retried")
	}
	failure := req.Failure
	req.Status, req.Failure, req.Certificate, req.CompletedAt = StatusVerified, "", "", nil
	req.UpdatedAt = m.now().UTC()
	err = m.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// Of two retries at once, one changes the request.
		res, err := tx.NewUpdate().Model(&req).Column("status", "failure", "certificate", "completed_at", "updated_at").
			WherePK().Where("status = ?", StatusFailed).Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if err == nil {
				err = errs.E(errs.ErrConflict, "only a failed request is retried")
			}
			return err
		}
		// The census stays: it holds what there was before the first run
		// and the browsers it covered, which later runs cannot count again.
		if req.Type == TypeErasure {
			if _, err := tx.NewDelete().Model((*Step)(nil)).Where("request_id = ? AND step <> ?", req.ID, censusStep).Exec(ctx); err != nil {
				return err
			}
		}
		if _, err := adminlog.Append(ctx, tx, adminlog.Entry{ActorID: p.UserID, Action: "privacy_request.retry", TargetID: targetOf(req),
			Details: map[string]any{"request_id": req.ID}}); err != nil {
			return err
		}
		return m.addEvent(ctx, tx, &req, EventRetried, p.UserID, "failed before: "+failure)
	})
	if err != nil {
		return Request{}, fmt.Errorf("retry privacy request: %w", err)
	}
	m.notify()
	return req, nil
}

func (m *Module) load(ctx context.Context, id string) (Request, error) {
	var req Request
	err := m.deps.DB.NewSelect().Model(&req).Where("id = ?", id).Scan(ctx)
	if err != nil {
		if errors.Is(err, errSQLNoRows) {
			return Request{}, errs.E(errs.ErrNotFound, "no such privacy request")
		}
		return Request{}, fmt.Errorf("read privacy request: %w", err)
	}
	return req, nil
}

func (m *Module) addEvent(ctx context.Context, db bun.IDB, req *Request, event, actor, note string) error {
	ev := Event{ID: ids.New("pre"), RequestID: req.ID, UserID: req.UserID, At: m.now().UTC(), Event: event, ActorID: actor, Note: note}
	if _, err := db.NewInsert().Model(&ev).Exec(ctx); err != nil {
		return fmt.Errorf("record request event: %w", err)
	}
	return nil
}

// setStatus moves a request to status and records the step.
func (m *Module) setStatus(ctx context.Context, db bun.IDB, req *Request, status, actor, note string) error {
	req.Status = status
	req.UpdatedAt = m.now().UTC()
	if _, err := db.NewUpdate().Model(req).Column("status", "updated_at", "completed_at", "failure", "package_path", "package_size", "certificate", "policy_revision").WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("update request status: %w", err)
	}
	return m.addEvent(ctx, db, req, status, actor, note)
}

// CertificateJSON returns the erasure certificate of a completed erasure,
// or nil for any other request.
func (r Request) CertificateJSON() json.RawMessage {
	if r.Certificate == "" {
		return nil
	}
	return json.RawMessage(r.Certificate)
}

// scratchFile creates a file of this process's own, deleted by the
// caller, for what an export buffers on its way into the package: in the
// data dir when there is one (it holds personal data, like the stores),
// else in the system's temporary folder. It is never shared.
func (m *Module) scratchFile(pattern string) (*os.File, error) {
	dir := os.TempDir()
	if m.cfg.DataDir != "" {
		dir = filepath.Join(m.cfg.DataDir, scratchFolder)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, fmt.Errorf("create export buffer: %w", err)
	}
	return f, nil
}

// packageName matches Request.PackagePath: "<request id>/<package id>.zip",
// or "<request id>.zip" for a package written before packages were
// named per run.
var packageName = regexp.MustCompile(`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)?\.zip$`)

// packageKey is the key of a request's package in the file store.
func packageKey(req Request) (string, error) {
	if !packageName.MatchString(req.PackagePath) {
		return "", errs.E(errs.ErrNotFound, "the request has no package")
	}
	return exportsFolder + "/" + req.PackagePath, nil
}

// legacyPackageKey is where a package written before packages were named
// per run is: one per request, next to the other requests'.
func legacyPackageKey(requestID string) string { return exportsFolder + "/" + requestID + ".zip" }

// packagesPrefix is the folder of the file store holding the packages of
// the runs of one request.
func packagesPrefix(requestID string) string { return exportsFolder + "/" + requestID + "/" }

var (
	_ module.Module  = (*Module)(nil)
	_ module.Starter = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)

// StatusCount is how many requests of one type are in one status.
type StatusCount struct {
	Type   string `bun:"type"`
	Status string `bun:"status"`
	Count  int64  `bun:"n"`
}

// Counts returns how many requests there are of each type and status, for
// the operator's metrics: a failed request must be seen without reading
// logs.
func (m *Module) Counts(ctx context.Context) ([]StatusCount, error) {
	var out []StatusCount
	err := m.deps.DB.NewSelect().Model((*Request)(nil)).
		Column("type", "status").ColumnExpr("count(*) AS n").
		Group("type", "status").Order("type", "status").
		Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("count privacy requests: %w", err)
	}
	return out, nil
}
