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
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/module"
)

var errSQLNoRows = sql.ErrNoRows

// maxAttempts is how many failed runs a request gets before it is marked
// failed; each failure is in its audit trail.
const maxAttempts = 5

// OperatorID is the actor recorded for requests filed at the command line.
const OperatorID = "cli"

// Start implements module.Starter: it resumes requests a previous process
// left verified or processing, then processes new ones as they come.
func (m *Module) Start(ctx context.Context) error {
	if err := m.bg.Start(ctx, m.loop); err != nil {
		return fmt.Errorf("privacy: %w", err)
	}
	return nil
}

// Stop implements module.Stopper; a request being processed is left in
// processing and resumed by the next Start.
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
	for {
		m.processPending(ctx)
		if _, err := m.ExpirePackages(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("expire privacy packages", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.wake:
		}
	}
}

// processPending processes every open request, oldest first.
func (m *Module) processPending(ctx context.Context) {
	var ids []string
	err := m.deps.DB.NewSelect().Model((*Request)(nil)).Column("id").
		Where("status IN (?)", bun.In([]string{StatusVerified, StatusProcessing})).Order("received_at", "id").Scan(ctx, &ids)
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
		if _, err := m.Process(ctx, id); err != nil && ctx.Err() == nil {
			m.log.Error("process privacy request", slog.String("request_id", id), slog.Any("error", err))
		}
	}
}

// Process runs a verified request to its end, or resumes one left in
// processing. An access request gets its package; an erasure runs,
// verifies and stores its certificate. A failed run leaves the request in
// processing, to be retried, until maxAttempts runs failed.
func (m *Module) Process(ctx context.Context, id string) (Request, error) {
	// One request at a time per process: the worker and a command may
	// reach the same request, and an erasure's steps must not interleave.
	m.procMu.Lock()
	defer m.procMu.Unlock()
	req, err := m.load(ctx, id)
	if err != nil {
		return Request{}, err
	}
	switch req.Status {
	case StatusCompleted, StatusFailed, StatusRejected:
		return req, nil
	case StatusVerified:
		if err := m.setStatus(ctx, m.deps.DB, &req, StatusProcessing, OperatorID, ""); err != nil {
			return Request{}, err
		}
	}
	var runErr error
	switch req.Type {
	case TypeAccess:
		runErr = m.runAccess(ctx, &req)
	case TypeErasure:
		runErr = m.runErasure(ctx, &req)
	default:
		runErr = fmt.Errorf("unknown request type %q", req.Type)
	}
	if runErr == nil {
		return req, nil
	}
	if ctx.Err() != nil {
		return req, runErr
	}
	// The trail names the failure without its detail, which may quote data.
	if err := m.addEvent(context.WithoutCancel(ctx), m.deps.DB, &req, "error", OperatorID, processingErrorDetail); err != nil {
		return req, errors.Join(runErr, err)
	}
	var failures int64
	failures, err = m.deps.DB.NewSelect().Model((*Event)(nil)).Where("request_id = ? AND event = 'error'", req.ID).Count(ctx)
	if err == nil && failures >= maxAttempts {
		req.Failure = fmt.Sprintf("processing failed %d times", failures)
		err = m.setStatus(ctx, m.deps.DB, &req, StatusFailed, OperatorID, req.Failure)
	}
	return req, errors.Join(runErr, err)
}

// subjectOf returns the request's subject with the visitor ids linked to
// their account.
func (m *Module) subjectOf(ctx context.Context, req *Request) (module.SubjectRef, error) {
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

func (m *Module) runAccess(ctx context.Context, req *Request) error {
	if err := m.settle(ctx); err != nil {
		return err
	}
	subject, err := m.subjectOf(ctx, req)
	if err != nil {
		return err
	}
	if err := ensureDir(m.exportsDir()); err != nil {
		return err
	}
	name := req.ID + ".zip"
	final := filepath.Join(m.exportsDir(), name)
	tmp, err := os.CreateTemp(m.exportsDir(), req.ID+"-*.tmp")
	if err != nil {
		return fmt.Errorf("create export package: %w", err)
	}
	defer os.Remove(tmp.Name())
	man, err := m.exportPackage(ctx, req.ID, subject, tmp)
	if err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write export package: %w", err)
	}
	st, err := tmp.Stat()
	if err != nil {
		tmp.Close()
		return fmt.Errorf("write export package: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write export package: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("store export package: %w", err)
	}
	now := m.now().UTC()
	req.PackagePath, req.PackageSize, req.CompletedAt, req.PolicyRevision = name, st.Size(), &now, man.PolicyRevision
	return m.setStatus(ctx, m.deps.DB, req, StatusCompleted, OperatorID, fmt.Sprintf("package of %d files", len(man.Sources)))
}

func (m *Module) runErasure(ctx context.Context, req *Request) error {
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
		return m.setStatus(ctx, m.deps.DB, req, StatusFailed, OperatorID, req.Failure)
	}
	return m.setStatus(ctx, m.deps.DB, req, StatusCompleted, OperatorID, "erasure verified; certificate issued")
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
		ID: newID("pr"), Type: typ, Status: StatusReceived, UserID: uid, Email: email, RequestedBy: OperatorID,
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
// than PackageTTL ago, records each removal in the request's trail and
// returns how many it removed. A package holds a copy of everything about
// its subject; it is kept only as long as the subject needs to fetch it.
func (m *Module) ExpirePackages(ctx context.Context) (int, error) {
	var reqs []Request
	err := m.deps.DB.NewSelect().Model(&reqs).
		Where("type = ? AND package_path <> '' AND completed_at < ?", TypeAccess, m.now().UTC().Add(-m.cfg.PackageTTL)).Scan(ctx)
	if err != nil {
		return 0, fmt.Errorf("list expired packages: %w", err)
	}
	for i := range reqs {
		req := &reqs[i]
		p, err := m.packagePath(*req)
		if err != nil {
			return i, err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return i, fmt.Errorf("remove package: %w", err)
		}
		req.PackagePath, req.PackageSize = "", 0
		err = m.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewUpdate().Model(req).Column("package_path", "package_size").WherePK().Exec(ctx); err != nil {
				return err
			}
			return m.addEvent(ctx, tx, req, "package_removed", OperatorID, "download period over")
		})
		if err != nil {
			return i, fmt.Errorf("record package removal: %w", err)
		}
	}
	return len(reqs), nil
}

// OpenPackage opens the export package of a completed access request.
func (m *Module) OpenPackage(req Request) (*os.File, error) {
	p, err := m.packagePath(req)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errs.E(errs.ErrNotFound, "the package is no longer available")
		}
		return nil, fmt.Errorf("open package: %w", err)
	}
	return f, nil
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
