package privacy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// staff are principals of every role, none of them a subject of the
// requests the tests file.
var staff = map[string]authz.Principal{
	authz.RoleUser:    {UserID: "u_user", Role: authz.RoleUser},
	authz.RoleSupport: {UserID: "u_support", Role: authz.RoleSupport},
	authz.RoleAnalyst: {UserID: "u_analyst", Role: authz.RoleAnalyst},
	authz.RoleDPO:     {UserID: "u_dpo", Role: authz.RoleDPO},
	authz.RoleAdmin:   {UserID: "u_admin", Role: authz.RoleAdmin},
}

// mayActOnRequests are the roles the access policy lets list and audit
// every request.
var mayActOnRequests = map[string]bool{authz.RoleDPO: true, authz.RoleAdmin: true}

// forceStatus moves a request to status in the store directly, as a run
// that ended so would have left it.
func forceStatus(t *testing.T, db *bun.DB, id, status string) {
	t.Helper()
	_, err := db.NewUpdate().Model((*Request)(nil)).Set("status = ?", status).Where("id = ?", id).Exec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
}

// fieldOf returns the field a validation error names, "" for any other
// error.
func fieldOf(err error) string {
	var v *errs.ValidationError
	if errors.As(err, &v) && len(v.Errors) == 1 {
		return v.Errors[0].Field
	}
	return ""
}

// adminLogActions lists the admin log's actions about request id.
func adminLogActions(t *testing.T, db *bun.DB, id string) []string {
	t.Helper()
	var rows []adminlog.Record
	if err := db.NewSelect().Model(&rows).Where("details LIKE ?", "%"+id+"%").Order("seq").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Action)
	}
	return out
}

// TestQueue lists every request, accounts' and visitors', for the roles
// that may list requests about anyone, narrowed by status and type, and
// never drops an old unanswered request, nor a failed one, for newer
// answered ones.
func TestQueue(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		m := newTestModule(t, db, Config{}, Deps{})
		access := fileRequest(t, m, TypeAccess, "ann@example.com")
		erasure := fileRequest(t, m, TypeErasure, "bob@example.com")
		visitor, err := m.CreateForVisitor(ctx, VisitorRequest{Type: TypeAccess, VisitorID: "v_queue", Language: "en", Network: "192.0.2.0"})
		if err != nil {
			t.Fatal(err)
		}
		forceStatus(t, db, erasure.ID, StatusFailed)

		for role, p := range staff {
			got, err := m.Queue(ctx, p, QueueFilter{})
			if !mayActOnRequests[role] {
				if !errors.Is(err, errs.ErrForbidden) {
					t.Errorf("%s listing the queue: %d requests, %v; want forbidden", role, len(got), err)
				}
				continue
			}
			if err != nil || len(got) != 3 {
				t.Fatalf("%s listing the queue: %d requests, %v; want 3", role, len(got), err)
			}
		}
		dpo := staff[authz.RoleDPO]
		tests := []struct {
			name string
			f    QueueFilter
			want []string
		}{
			{"access requests", QueueFilter{Type: TypeAccess}, []string{access.ID, visitor.ID}},
			{"failed requests", QueueFilter{Status: StatusFailed}, []string{erasure.ID}},
			{"verified erasures", QueueFilter{Status: StatusVerified, Type: TypeErasure}, nil},
			{"verified access requests", QueueFilter{Status: StatusVerified, Type: TypeAccess}, []string{access.ID, visitor.ID}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := m.Queue(ctx, dpo, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, r := range got {
					ids = append(ids, r.ID)
				}
				slices.Sort(ids)
				want := slices.Sorted(slices.Values(tt.want))
				if !slices.Equal(ids, want) {
					t.Fatalf("queue %+v = %v, want %v", tt.f, ids, want)
				}
			})
		}
		for _, f := range []QueueFilter{{Status: "lost"}, {Type: "rectification"}} {
			_, err := m.Queue(ctx, dpo, f)
			want := map[bool]string{true: "status", false: "type"}[f.Status != ""]
			if fieldOf(err) != want {
				t.Errorf("queue %+v: %v, want an invalid %s", f, err, want)
			}
		}

		// Many newer answered requests push out neither the oldest open
		// one nor a failed one.
		old := time.Now().UTC().AddDate(-1, 0, 0)
		var done []Request
		for i := range QueueAnswered + 5 {
			at := old.Add(time.Duration(i+1) * time.Hour)
			done = append(done, Request{ID: fmt.Sprintf("pr_done_%03d", i), Type: TypeAccess, Status: StatusCompleted,
				Email: "old@example.com", ReceivedAt: at, DueAt: at, UpdatedAt: at})
		}
		if _, err := db.NewInsert().Model(&done).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{access.ID, erasure.ID} {
			if _, err := db.NewUpdate().Model((*Request)(nil)).Set("received_at = ?", old).Where("id = ?", id).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		got, err := m.Queue(ctx, dpo, QueueFilter{})
		if err != nil {
			t.Fatal(err)
		}
		answered := 0
		for _, r := range got {
			if r.Status == StatusCompleted || r.Status == StatusRejected {
				answered++
			}
		}
		has := func(id string) bool { return slices.ContainsFunc(got, func(r Request) bool { return r.ID == id }) }
		if answered != QueueAnswered || !has(access.ID) || !has(erasure.ID) {
			t.Fatalf("the queue holds %d answered requests, the old open one: %v, the old failed one: %v; want %d and both",
				answered, has(access.ID), has(erasure.ID), QueueAnswered)
		}
	})
}

// TestReject rejects a request that has not started, with its reason in
// the trail and the admin log, and refuses every other case.
func TestReject(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		m := newTestModule(t, db, Config{}, Deps{})
		dpo := staff[authz.RoleDPO]
		req := fileRequest(t, m, TypeErasure, "carl@example.com")

		for _, tt := range []struct {
			name, reason string
		}{
			{"no reason", ""},
			{"blank reason", "  \n "},
			{"a reason too long", strings.Repeat("x", maxReasonLength+1)},
			{"a NUL in the reason", "excessive\x00"},
			{"a bidirectional override in the reason", "excessive \u202e"},
		} {
			if _, err := m.Reject(ctx, dpo, req.ID, tt.reason); fieldOf(err) != "reason" {
				t.Errorf("%s: %v, want an invalid reason", tt.name, err)
			}
		}
		for role, p := range staff {
			if mayActOnRequests[role] {
				continue
			}
			if _, err := m.Reject(ctx, p, req.ID, "excessive"); !errors.Is(err, errs.ErrForbidden) {
				t.Errorf("%s rejecting: %v, want forbidden", role, err)
			}
		}
		if _, err := m.Reject(ctx, dpo, "pr_none", "excessive"); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("rejecting no request: %v, want not found", err)
		}
		// A request some process is working on waits for it.
		l, err := m.claim(ctx, req.ID)
		if err != nil || l == nil {
			t.Fatalf("claim = %v, %v", l, err)
		}
		if _, err := m.Reject(ctx, dpo, req.ID, "excessive"); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("rejecting a claimed request: %v, want a conflict", err)
		}
		if err := l.release(ctx); err != nil {
			t.Fatal(err)
		}

		got, err := m.Reject(ctx, dpo, req.ID, "  the third identical request this week,\r\nsee the two before  ")
		if err != nil || got.Status != StatusRejected {
			t.Fatalf("Reject = %s, %v", got.Status, err)
		}
		stored, err := m.load(ctx, req.ID)
		if err != nil || stored.Status != StatusRejected {
			t.Fatalf("stored status %s, %v", stored.Status, err)
		}
		events, err := m.Events(ctx, req.ID)
		if err != nil {
			t.Fatal(err)
		}
		last := events[len(events)-1]
		if last.Event != StatusRejected || last.ActorID != dpo.UserID || last.Note != "the third identical request this week,\r\nsee the two before" {
			t.Errorf("the trail ends with %+v", last)
		}
		if acts := adminLogActions(t, db, req.ID); !slices.Contains(acts, "privacy_request.reject") {
			t.Errorf("admin log %v lacks the rejection", acts)
		}
		if _, err := m.Reject(ctx, dpo, req.ID, "again"); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("rejecting a rejected request: %v, want a conflict", err)
		}
		// The workers leave it alone.
		if got, err := m.Process(ctx, req.ID); err != nil || got.Status != StatusRejected {
			t.Errorf("Process of a rejected request = %s, %v", got.Status, err)
		}
		if tr := trail(t, m, req.ID); tr[StatusProcessing] != 0 {
			t.Errorf("a rejected request was processed: %v", tr)
		}

		started := fileRequest(t, m, TypeAccess, "dora@example.com")
		forceStatus(t, db, started.ID, StatusProcessing)
		if _, err := m.Reject(ctx, staff[authz.RoleAdmin], started.ID, "excessive"); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("rejecting a request being processed: %v, want a conflict", err)
		}
	})
}

// failingHook is a module whose export fails while fail is set, and that
// keeps one item of every subject until erase is set.
type failingHook struct {
	fail, erase atomic.Bool
	erased      atomic.Int32
}

func (h *failingHook) ExportSubject(ctx context.Context, s module.SubjectRef, w module.ExportWriter) error {
	if h.fail.Load() {
		return errors.New("the module is down")
	}
	if h.erased.Load() > 0 {
		return nil
	}
	return w.Record(ctx, "user.content.prompt", map[string]string{"prompt": "a cat"})
}

func (h *failingHook) EraseSubject(context.Context, module.SubjectRef) (module.ErasureResult, error) {
	if !h.erase.Load() {
		return module.ErasureResult{}, nil
	}
	h.erased.Add(1)
	return module.ErasureResult{Deleted: 1}, nil
}

// TestRetry sends failed requests back to the workers: an access request
// that failed every attempt gets its attempts anew, and an erasure whose
// verification failed runs its steps again and completes.
func TestRetry(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		hook := &failingHook{}
		m := newTestModule(t, db, Config{}, Deps{Files: tempFiles(t), Hooks: []Hook{{Module: "flaky", Data: hook}}})
		dpo := staff[authz.RoleDPO]

		hook.fail.Store(true)
		req := fileRequest(t, m, TypeAccess, "eve@example.com")
		for range maxAttempts {
			if _, err := m.Process(ctx, req.ID); err == nil {
				t.Fatal("a run with the module down succeeded")
			}
		}
		if got, _ := m.load(ctx, req.ID); got.Status != StatusFailed || got.Failure == "" {
			t.Fatalf("after %d failed runs: %s %q", maxAttempts, got.Status, got.Failure)
		}
		for role, p := range staff {
			if !mayActOnRequests[role] {
				if _, err := m.Retry(ctx, p, req.ID); !errors.Is(err, errs.ErrForbidden) {
					t.Errorf("%s retrying: %v, want forbidden", role, err)
				}
			}
		}
		got, err := m.Retry(ctx, dpo, req.ID)
		if err != nil || got.Status != StatusVerified || got.Failure != "" {
			t.Fatalf("Retry = %s %q, %v", got.Status, got.Failure, err)
		}
		if _, err := m.Retry(ctx, dpo, req.ID); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("retrying a request that has not failed: %v, want a conflict", err)
		}
		if acts := adminLogActions(t, db, req.ID); !slices.Contains(acts, "privacy_request.retry") {
			t.Errorf("admin log %v lacks the retry", acts)
		}
		// One more failure does not fail it again: the retry's attempts
		// are its own.
		if _, err := m.Process(ctx, req.ID); err == nil {
			t.Fatal("a run with the module down succeeded")
		}
		if got, _ := m.load(ctx, req.ID); got.Status != StatusProcessing {
			t.Fatalf("after one failed run of the retry: %s, want processing", got.Status)
		}
		hook.fail.Store(false)
		if got, err := m.Process(ctx, req.ID); err != nil || got.Status != StatusCompleted {
			t.Fatalf("the retried request = %s, %v", got.Status, err)
		}
		if tr := trail(t, m, req.ID); tr[EventRetried] != 1 || tr[StatusFailed] != 1 || tr[StatusCompleted] != 1 {
			t.Errorf("trail %v", tr)
		}

		// The module keeps the subject's item: the erasure's check fails.
		erasure := fileRequest(t, m, TypeErasure, "fay@example.com")
		if got, err := m.Process(ctx, erasure.ID); err != nil || got.Status != StatusFailed || got.Certificate == "" {
			t.Fatalf("an erasure that leaves data = %s, %v", got.Status, err)
		}
		hook.erase.Store(true)
		if _, err := m.Retry(ctx, staff[authz.RoleAdmin], erasure.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := m.load(ctx, erasure.ID); got.Certificate != "" || got.CompletedAt != nil {
			t.Errorf("a retried erasure keeps its failed certificate")
		}
		got, err = m.Process(ctx, erasure.ID)
		if err != nil || got.Status != StatusCompleted || !strings.Contains(got.Certificate, `"passed":true`) {
			t.Fatalf("the retried erasure = %s, %v: %s", got.Status, err, got.Certificate)
		}
		if hook.erased.Load() != 1 {
			t.Errorf("the module's erasure ran %d times after the retry, want once", hook.erased.Load())
		}
	})
}

// TestManifest reads the manifest of a completed access request's
// package: its files and counts, while the package is kept.
func TestManifest(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		m := newTestModule(t, db, Config{}, Deps{Files: tempFiles(t), Hooks: []Hook{{Module: "flaky", Data: &failingHook{}}}})
		dpo := staff[authz.RoleDPO]
		req := fileRequest(t, m, TypeAccess, "gus@example.com")
		if _, err := m.Manifest(ctx, dpo, req.ID); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("the manifest of an open request: %v, want not found", err)
		}
		done, err := m.Process(ctx, req.ID)
		if err != nil {
			t.Fatal(err)
		}
		man, err := m.Manifest(ctx, dpo, req.ID)
		if err != nil {
			t.Fatal(err)
		}
		if man.RequestID != req.ID || len(man.Sources) != 1 || man.Sources[0].Module != "flaky" || man.Sources[0].Rows != 1 {
			t.Errorf("manifest = %+v", man)
		}
		if _, err := m.Manifest(ctx, staff[authz.RoleSupport], req.ID); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("support reading the manifest: %v, want not found", err)
		}
		if _, err := m.removePackage(ctx, &done, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Manifest(ctx, dpo, req.ID); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("the manifest of a removed package: %v, want not found", err)
		}
	})
}
