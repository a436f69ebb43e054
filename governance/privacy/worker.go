package privacy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/blob"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/module"
)

var errSQLNoRows = sql.ErrNoRows

// maxAttempts is how many failed runs a request gets before it is marked
// failed; each failure is in its audit trail.
const maxAttempts = 5

// OperatorID is the actor recorded for requests filed at the command line.
const OperatorID = "cli"

// Start implements module.Starter: it resumes requests a previous process
// left verified or processing, then processes new ones as they come, up
// to Config.Workers at once, alongside every other process sharing the
// SQL store (each request is claimed first; see claim).
func (m *Module) Start(ctx context.Context) error {
	if err := m.bg.Start(ctx, m.loop); err != nil {
		return fmt.Errorf("privacy: %w", err)
	}
	return nil
}

// Stop implements module.Stopper; a request being processed is left in
// processing, its claim released, and resumed by the next process to
// claim it.
func (m *Module) Stop(ctx context.Context) error {
	if err := m.bg.Stop(ctx); err != nil {
		return fmt.Errorf("privacy: stop: %w", err)
	}
	return nil
}

func (m *Module) notify() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Module) loop(ctx context.Context) {
	t := time.NewTicker(m.cfg.PollInterval)
	defer t.Stop()
	defer m.running.Wait()
	for {
		m.processPending(ctx)
		// Expiry runs on one process: on every one, each would record the
		// removal of the same package.
		if module.Leads(m.deps.Leader) {
			if _, err := m.ExpirePackages(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("expire privacy packages", slog.Any("error", err))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.wake:
		}
	}
}

// processPending starts open requests no live claim holds, oldest first,
// while this process has free workers. A finished request wakes the loop
// for the next.
func (m *Module) processPending(ctx context.Context) {
	free := cap(m.slots) - len(m.slots)
	if free <= 0 {
		return
	}
	var ids []string
	err := m.deps.DB.NewSelect().TableExpr("privacy_requests AS r").ColumnExpr("r.id").
		Join("LEFT JOIN privacy_request_claims AS c ON c.request_id = r.id").
		Where("r.status IN (?)", bun.In([]string{StatusVerified, StatusProcessing})).
		Where("c.request_id IS NULL OR c.claimed_until < ?", m.now().UTC()).
		OrderExpr("r.received_at, r.id").
		// Other processes may win some of them.
		Limit(int64(2*free)).Scan(ctx, &ids)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("list open privacy requests", slog.Any("error", err))
		}
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		select {
		case m.slots <- struct{}{}:
		default:
			return
		}
		l, err := m.claim(ctx, id)
		if err != nil || l == nil {
			<-m.slots
			if err != nil && ctx.Err() == nil {
				m.log.Error("claim privacy request", slog.String("request_id", id), slog.Any("error", err))
			}
			continue
		}
		m.running.Add(1)
		go func() {
			defer m.running.Done()
			defer m.notify()
			defer func() { <-m.slots }()
			if _, err := m.run(ctx, l); err != nil && ctx.Err() == nil && !errors.Is(err, errLostClaim) {
				m.log.Error("process privacy request", slog.String("request_id", id), slog.Any("error", err))
			}
		}()
	}
}

// Process runs a request to its end here, or waits while another process
// runs it, and returns it as it ended: an access request gets its
// package; an erasure runs, verifies and stores its certificate. A failed
// run leaves the request in processing, to be retried, until maxAttempts
// runs failed. Commands call it on the request they filed while serve
// instances may claim the same request: whoever claims it runs it, once.
func (m *Module) Process(ctx context.Context, id string) (Request, error) {
	wait := min(m.cfg.PollInterval, time.Second)
	for {
		req, err := m.load(ctx, id)
		if err != nil {
			return Request{}, err
		}
		if closed(req.Status) {
			return req, nil
		}
		l, err := m.claim(ctx, id)
		if err != nil {
			return req, err
		}
		if l != nil {
			req, err = m.run(ctx, l)
			if !errors.Is(err, errLostClaim) {
				return req, err
			}
		}
		// Another process holds the request: wait for it to finish, or to
		// let go of it.
		select {
		case <-ctx.Done():
			return req, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// closed reports whether a request in status is over.
func closed(status string) bool {
	return status == StatusCompleted || status == StatusFailed || status == StatusRejected
}

// run runs a claimed request and releases the claim. The claim is renewed
// while it runs; if another process takes it over meanwhile, the work
// stops and run returns errLostClaim.
func (m *Module) run(ctx context.Context, l *lease) (Request, error) {
	ctx, done := l.keep(ctx)
	defer done()
	// Read after the claim: a request seen open before it may have been
	// completed by its previous holder.
	req, err := m.load(ctx, l.requestID)
	if err != nil {
		return Request{}, err
	}
	switch {
	case closed(req.Status):
		return req, nil
	case req.Status == StatusVerified:
		if err := m.setStatusHeld(ctx, l, &req, StatusProcessing, ""); err != nil {
			return req, err
		}
	}
	var runErr error
	switch req.Type {
	case TypeAccess:
		runErr = m.runAccess(ctx, l, &req)
	case TypeErasure:
		runErr = m.runErasure(ctx, l, &req)
	default:
		runErr = fmt.Errorf("unknown request type %q", req.Type)
	}
	if runErr == nil {
		m.log.Info("privacy request processed", slog.String("request_id", req.ID), slog.String("type", req.Type), slog.String("status", req.Status))
		return req, nil
	}
	if errors.Is(runErr, errLostClaim) || errors.Is(context.Cause(ctx), errLostClaim) {
		return req, errLostClaim
	}
	if ctx.Err() != nil {
		return req, runErr
	}
	// The trail names the failure without its detail, which may quote
	// data. The failure is recorded by the claim's holder only.
	err = m.deps.DB.RunInTx(context.WithoutCancel(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		if err := l.hold(ctx, tx); err != nil {
			return err
		}
		if err := m.addEvent(ctx, tx, &req, "error", OperatorID, processingErrorDetail); err != nil {
			return err
		}
		failures, err := failedRuns(ctx, tx, req.ID)
		if err != nil || failures < maxAttempts {
			return err
		}
		req.Failure = fmt.Sprintf("processing failed %d times", failures)
		return m.setStatus(ctx, tx, &req, StatusFailed, OperatorID, req.Failure)
	})
	return req, errors.Join(runErr, err)
}

// failedRuns counts the failed runs of a request since it was last
// retried: a retry gives it maxAttempts runs again.
func failedRuns(ctx context.Context, db bun.IDB, requestID string) (int64, error) {
	var retried []Event
	err := db.NewSelect().Model(&retried).Where("request_id = ? AND event = ?", requestID, EventRetried).
		Order("at DESC").Limit(1).Scan(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the last retry: %w", err)
	}
	q := db.NewSelect().Model((*Event)(nil)).Where("request_id = ? AND event = 'error'", requestID)
	if len(retried) == 1 {
		q = q.Where("at > ?", retried[0].At)
	}
	n, err := q.Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count failed runs: %w", err)
	}
	return n, nil
}

// setStatusHeld moves a claimed request to status, in one transaction
// with the renewal of the claim: a process whose claim was taken over
// changes nothing, so a request completes once.
func (m *Module) setStatusHeld(ctx context.Context, l *lease, req *Request, status, note string) error {
	return m.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := l.hold(ctx, tx); err != nil {
			return err
		}
		return m.setStatus(ctx, tx, req, status, OperatorID, note)
	})
}

// subjectOf returns the request's subject with the visitor ids linked to
// their account, or, for a visitor's request, the browsing it covers.
func (m *Module) subjectOf(ctx context.Context, req *Request) (module.SubjectRef, error) {
	if req.isVisitors() {
		return m.visitorSubject(ctx, req)
	}
	b, err := m.browsing(ctx, req.UserID)
	if err != nil {
		return module.SubjectRef{}, err
	}
	return module.SubjectRef{UserID: req.UserID, Email: req.Email, Browsing: b}, nil
}

// settle waits for the events acknowledged so far to reach the warehouse.
func (m *Module) settle(ctx context.Context) error {
	if m.deps.Events == nil {
		return nil
	}
	if err := m.deps.Events.Settle(ctx); err != nil {
		return fmt.Errorf("deliver pending events: %w", err)
	}
	return nil
}

func (m *Module) runAccess(ctx context.Context, l *lease, req *Request) error {
	if err := m.settle(ctx); err != nil {
		return err
	}
	subject, err := m.subjectOf(ctx, req)
	if err != nil {
		return err
	}
	// Packages of earlier runs that did not complete belong to no one: the
	// request is claimed and open, so none is offered for download.
	if _, err := m.files.DeletePrefix(ctx, packagesPrefix(req.ID)); err != nil {
		return fmt.Errorf("remove unfinished packages: %w", err)
	}
	// Each run writes a package of its own, so a run that lost its claim
	// never overwrites the package of the run that completed.
	name := req.ID + "/" + ids.New("pkg") + ".zip"
	key := exportsFolder + "/" + name
	var man Manifest
	size, err := m.files.Write(ctx, key, "application/zip", func(w io.Writer) error {
		var err error
		man, err = m.exportPackage(ctx, req.ID, subject, req.Language, w)
		return err
	})
	if err != nil {
		return fmt.Errorf("store export package: %w", err)
	}
	now := m.now().UTC()
	req.PackagePath, req.PackageSize, req.CompletedAt, req.PolicyRevision = name, size, &now, man.PolicyRevision
	if err := m.setStatusHeld(ctx, l, req, StatusCompleted, fmt.Sprintf("package of %d files", len(man.Sources))); err != nil {
		if derr := m.files.Delete(context.WithoutCancel(ctx), key); derr != nil {
			err = errors.Join(err, derr)
		}
		return err
	}
	return nil
}

func (m *Module) runErasure(ctx context.Context, l *lease, req *Request) error {
	cert, err := m.erase(ctx, req)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(cert)
	if err != nil {
		return fmt.Errorf("encode certificate: %w", err)
	}
	req.Certificate, req.PolicyRevision = string(raw), cert.PolicyRevision
	now := m.now().UTC()
	req.CompletedAt = &now
	if !cert.Verification.Passed {
		req.Failure = "verification found data of the subject left after the erasure"
		return m.setStatusHeld(ctx, l, req, StatusFailed, req.Failure)
	}
	return m.setStatusHeld(ctx, l, req, StatusCompleted, "erasure verified; certificate issued")
}

// FileForOperator files a request at the command line for the subject an
// email address names. The operator has the machine, so no role is asked;
// the action is in the admin log with reason.
func (m *Module) FileForOperator(ctx context.Context, typ, email, reason string) (Request, error) {
	if typ != TypeAccess && typ != TypeErasure {
		return Request{}, errs.Invalid("type", "oneof", `must be "access" or "erasure"`)
	}
	uid, err := m.deps.Accounts.UserIDByEmail(ctx, email)
	if err != nil && !errors.Is(err, errs.ErrNotFound) {
		return Request{}, fmt.Errorf("file privacy request: %w", err)
	}
	now := m.now().UTC()
	req := Request{
		ID: ids.New("pr"), Type: typ, Status: StatusReceived, UserID: uid, Email: email, RequestedBy: OperatorID,
		OnBehalf: true, Reason: reason, ReceivedAt: now, DueAt: now.AddDate(0, dueMonths, 0),
		PolicyRevision: m.deps.Policy.Revision(), UpdatedAt: now,
	}
	err = m.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&req).Exec(ctx); err != nil {
			return err
		}
		if err := m.addEvent(ctx, tx, &req, StatusReceived, OperatorID, ""); err != nil {
			return err
		}
		if _, err := adminlog.Append(ctx, tx, adminlog.Entry{ActorID: OperatorID, Action: "privacy_request." + typ, TargetID: targetOf(req),
			Details: map[string]any{"request_id": req.ID, "reason": reason}}); err != nil {
			return err
		}
		return m.setStatus(ctx, tx, &req, StatusVerified, OperatorID, "filed by the operator")
	})
	if err != nil {
		return Request{}, fmt.Errorf("file privacy request: %w", err)
	}
	return req, nil
}

// ExpirePackages removes the access packages of requests completed more
// than PackageTTL ago from the file store, records each removal in the
// request's trail and returns how many it removed. A package holds a copy
// of everything about its subject; it is kept only as long as the subject
// needs to fetch it.
func (m *Module) ExpirePackages(ctx context.Context) (int, error) {
	var reqs []Request
	err := m.deps.DB.NewSelect().Model(&reqs).
		Where("type = ? AND package_path <> '' AND completed_at < ?", TypeAccess, m.now().UTC().Add(-m.cfg.PackageTTL)).Scan(ctx)
	if err != nil {
		return 0, fmt.Errorf("list expired packages: %w", err)
	}
	n := 0
	for i := range reqs {
		removed, err := m.removePackage(ctx, &reqs[i], "download period over")
		if err != nil {
			return n, err
		}
		if removed {
			n++
		}
	}
	return n, nil
}

// removePackage deletes a request's package from the file store, with
// any left by its unfinished runs, then clears the request's record of it
// and notes why in its trail. It reports false when another process
// cleared the record first: the removal is recorded once.
func (m *Module) removePackage(ctx context.Context, req *Request, why string) (bool, error) {
	if key, err := packageKey(*req); err == nil {
		if err := m.files.Delete(ctx, key); err != nil {
			return false, fmt.Errorf("remove package: %w", err)
		}
	}
	if _, err := m.files.DeletePrefix(ctx, packagesPrefix(req.ID)); err != nil {
		return false, fmt.Errorf("remove package: %w", err)
	}
	old := req.PackagePath
	removed := false
	err := m.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*Request)(nil)).Set("package_path = ''").Set("package_size = 0").
			Where("id = ? AND package_path = ?", req.ID, old).Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		removed = true
		return m.addEvent(ctx, tx, req, "package_removed", OperatorID, why)
	})
	if err != nil {
		return false, fmt.Errorf("record package removal: %w", err)
	}
	if removed {
		req.PackagePath, req.PackageSize = "", 0
	}
	return removed, nil
}

// OpenPackage opens the export package of a completed access request in
// the file store. The reader outlives the call: a download is sent after
// its handler returned, so it reads under no request's context. Close it.
func (m *Module) OpenPackage(req Request) (*blob.Reader, error) {
	key, err := packageKey(req)
	if err != nil {
		return nil, err
	}
	r, err := m.files.Open(context.Background(), key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errs.E(errs.ErrNotFound, "the package is no longer available")
		}
		return nil, fmt.Errorf("open package: %w", err)
	}
	return r, nil
}

// signature is the hex HMAC-SHA256 over the request id and the expiry,
// each closed by a NUL byte so neither can run into the other.
func (m *Module) signature(id string, exp int64) string {
	mac := hmac.New(sha256.New, m.cfg.SigningKey)
	mac.Write([]byte("privacy-download\x00"))
	mac.Write([]byte(id))
	mac.Write([]byte{0})
	mac.Write([]byte(strconv.FormatInt(exp, 10)))
	mac.Write([]byte{0})
	return hex.EncodeToString(mac.Sum(nil))
}

// DownloadURL returns a signed path downloading the request's package
// until it expires, and the expiry.
func (m *Module) DownloadURL(id string) (string, time.Time) {
	exp := m.now().Add(m.cfg.DownloadTTL).Truncate(time.Second)
	q := url.Values{}
	q.Set("exp", strconv.FormatInt(exp.Unix(), 10))
	q.Set("sig", m.signature(id, exp.Unix()))
	return "/v1/privacy/requests/" + url.PathEscape(id) + "/download?" + q.Encode(), exp.UTC()
}

// verifyDownload reports whether the signature is valid and unexpired.
func (m *Module) verifyDownload(id string, exp int64, sig string) bool {
	if m.now().Unix() > exp {
		return false
	}
	return hmac.Equal([]byte(m.signature(id, exp)), []byte(sig))
}

// Progress receives the progress of a request being processed: done of
// total steps, and the name of the step just finished (a table or module,
// never a personal value).
type Progress func(step string, done, total int)

type progressKey struct{}

// WithProgress returns ctx carrying fn, which Process calls as it goes.
func WithProgress(ctx context.Context, fn Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

func progress(ctx context.Context, step string, done, total int) {
	if fn, ok := ctx.Value(progressKey{}).(Progress); ok && fn != nil {
		fn(step, done, total)
	}
}
