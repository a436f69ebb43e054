package privacy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/blob"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// newTestModule builds the module over db with an empty data map: a
// package holds its manifest, its index and what the hooks give. Each
// call is one process's module; several share db and a file store as
// instances do.
func newTestModule(t *testing.T, db *bun.DB, cfg Config, deps Deps) *Module {
	t.Helper()
	engine := authtest.Engine(t)
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.SigningKey = []byte("0123456789abcdef0123456789")
	deps.DB, deps.Policy, deps.Guard, deps.Accounts = db, engine, authz.NewGuard(engine), usersTable{db}
	deps.DataMap = func(context.Context) (*datamap.Map, []datamap.Problem, error) { return &datamap.Map{}, nil, nil }
	m, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fileRequest files a request of typ for email as an operator does, on
// the subject's word.
func fileRequest(t *testing.T, m *Module, typ, email string) Request {
	t.Helper()
	req, err := m.FileForOperator(context.Background(), typ, email, "test")
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// tempFiles is a file store in a temporary folder, for the packages of
// one or more processes.
func tempFiles(t *testing.T) *blob.Store {
	t.Helper()
	files, err := blob.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// trail counts a request's trail entries by event.
func trail(t *testing.T, m *Module, id string) map[string]int {
	t.Helper()
	events, err := m.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range events {
		out[e.Event]++
	}
	return out
}

// waitUntil polls cond with a generous bound: the machine is shared.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 3 minutes", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClaims(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		clock := func() time.Time { return now }
		a := newTestModule(t, db, Config{Lease: time.Minute}, Deps{Now: clock})
		b := newTestModule(t, db, Config{Lease: time.Minute}, Deps{Now: clock})
		req := fileRequest(t, a, TypeAccess, "nobody@example.com")
		la, err := a.claim(ctx, req.ID)
		if err != nil || la == nil {
			t.Fatalf("first claim = %v, %v", la, err)
		}
		if lb, err := b.claim(ctx, req.ID); err != nil || lb != nil {
			t.Fatalf("a claim on a live lease = %v, %v; want none", lb, err)
		}
		if lb, err := a.claim(ctx, req.ID); err != nil || lb != nil {
			t.Fatalf("the same process claiming a live lease again = %v, %v; want none", lb, err)
		}
		if err := la.hold(ctx, db); err != nil {
			t.Fatalf("renewal of a live claim: %v", err)
		}

		// The holder stalls past its lease; another process takes over.
		now = now.Add(2 * time.Minute)
		lb, err := b.claim(ctx, req.ID)
		if err != nil || lb == nil {
			t.Fatalf("claim of an expired lease = %v, %v", lb, err)
		}
		if err := la.hold(ctx, db); !errors.Is(err, errLostClaim) {
			t.Fatalf("renewal of a claim taken over = %v, want errLostClaim", err)
		}
		if err := a.setStatusHeld(ctx, la, &req, StatusProcessing, ""); !errors.Is(err, errLostClaim) {
			t.Fatalf("a status change under a lost claim = %v, want errLostClaim", err)
		}
		// Releasing a lost claim leaves the new holder's alone.
		if err := la.release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := lb.hold(ctx, db); err != nil {
			t.Fatalf("the new holder lost its claim to the old one's release: %v", err)
		}
		if err := lb.release(ctx); err != nil {
			t.Fatal(err)
		}
		if lc, err := a.claim(ctx, req.ID); err != nil || lc == nil {
			t.Fatalf("claim after release = %v, %v", lc, err)
		}
	})
}

// TestRequestsCompleteOnceAcrossProcesses runs two processes' workers over
// one store and one file store, with a burst of requests: each request
// completes once, with one trail entry for each step and one package.
func TestRequestsCompleteOnceAcrossProcesses(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		files := tempFiles(t)
		cfg := Config{PollInterval: 20 * time.Millisecond, Workers: 3}
		a := newTestModule(t, db, cfg, Deps{Files: files})
		b := newTestModule(t, db, cfg, Deps{Files: files})
		const n = 16
		var ids []string
		for i := range n {
			req := fileRequest(t, a, TypeAccess, fmt.Sprintf("s%d@example.com", i))
			ids = append(ids, req.ID)
		}
		for _, m := range []*Module{a, b} {
			if err := m.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Stop(context.Background()) })
		}
		// A command processing one of them meanwhile waits for whoever
		// holds it, or runs it itself.
		got, err := b.Process(ctx, ids[n-1])
		if err != nil || got.Status != StatusCompleted {
			t.Fatalf("Process while the workers run = %s, %v", got.Status, err)
		}
		waitUntil(t, "every request completes", func() bool {
			c, err := db.NewSelect().Model((*Request)(nil)).Where("status = ?", StatusCompleted).Count(ctx)
			return err == nil && c == n
		})
		for _, id := range ids {
			tr := trail(t, a, id)
			if tr[StatusCompleted] != 1 || tr[StatusProcessing] != 1 || tr["error"] != 0 {
				t.Errorf("%s: trail %v, want one processing and one completed entry", id, tr)
			}
			keys, err := files.List(ctx, packagesPrefix(id))
			if err != nil || len(keys) != 1 {
				t.Errorf("%s: packages %v (%v), want one", id, keys, err)
			}
		}
		var claims int
		if err := db.NewSelect().Model((*Claim)(nil)).ColumnExpr("count(*)").Scan(ctx, &claims); err != nil || claims != 0 {
			t.Fatalf("%d claims left after the work (%v), want none", claims, err)
		}
	})
}

// blockingHook holds each export until released and records how many run
// at once.
type blockingHook struct {
	release chan struct{}
	now     atomic.Int32
	peak    atomic.Int32
}

func (h *blockingHook) ExportSubject(ctx context.Context, _ module.SubjectRef, _ module.ExportWriter) error {
	n := h.now.Add(1)
	defer h.now.Add(-1)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *blockingHook) EraseSubject(context.Context, module.SubjectRef) (module.ErasureResult, error) {
	return module.ErasureResult{}, nil
}

// TestWorkersLimit runs requests at once up to Config.Workers and no more.
func TestWorkersLimit(t *testing.T) {
	ctx := context.Background()
	db := sqltest.SQLite(t)
	hook := &blockingHook{release: make(chan struct{})}
	m := newTestModule(t, db, Config{PollInterval: 20 * time.Millisecond, Workers: 3}, Deps{Hooks: []Hook{{Module: "blocking", Data: hook}}})
	for i := range 5 {
		fileRequest(t, m, TypeAccess, fmt.Sprintf("w%d@example.com", i))
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	waitUntil(t, "three requests run at once", func() bool { return hook.now.Load() == 3 })
	// Several polls pass with every worker busy; none starts a fourth.
	time.Sleep(200 * time.Millisecond)
	close(hook.release)
	waitUntil(t, "every request completes", func() bool {
		c, err := db.NewSelect().Model((*Request)(nil)).Where("status = ?", StatusCompleted).Count(ctx)
		return err == nil && c == 5
	})
	if p := hook.peak.Load(); p != 3 {
		t.Fatalf("%d requests ran at once, want 3", p)
	}
}

// TestCommandWaitsForTheHolder races a command against a serving
// process's worker for one request, the worker winning: the command
// neither runs the request again nor returns before the worker is done,
// and then returns the request as the worker completed it.
func TestCommandWaitsForTheHolder(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		files := tempFiles(t)
		held := &blockingHook{release: make(chan struct{})}
		server := newTestModule(t, db, Config{PollInterval: 20 * time.Millisecond, Workers: 1},
			Deps{Files: files, Hooks: []Hook{{Module: "blocking", Data: held}}})
		// The command's own exports would pass at once, and be counted.
		free := &blockingHook{release: make(chan struct{})}
		close(free.release)
		command := newTestModule(t, db, Config{PollInterval: 20 * time.Millisecond},
			Deps{Files: files, Hooks: []Hook{{Module: "blocking", Data: free}}})

		req := fileRequest(t, command, TypeAccess, "race@example.com")
		if err := server.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = server.Stop(context.Background()) })
		waitUntil(t, "the server's worker runs the request", func() bool { return held.now.Load() == 1 })

		type result struct {
			req Request
			err error
		}
		done := make(chan result, 1)
		go func() {
			got, err := command.Process(ctx, req.ID)
			done <- result{got, err}
		}()
		select {
		case r := <-done:
			t.Fatalf("the command returned (%s, %v) while the server held the request", r.req.Status, r.err)
		case <-time.After(300 * time.Millisecond):
		}
		close(held.release)
		var r result
		select {
		case r = <-done:
		case <-time.After(3 * time.Minute):
			t.Fatal("the command did not return within 3 minutes of the server finishing")
		}
		if r.err != nil || r.req.Status != StatusCompleted || r.req.PackagePath == "" {
			t.Fatalf("the command's Process = %s (package %q), %v; want the completed request", r.req.Status, r.req.PackagePath, r.err)
		}
		if free.peak.Load() != 0 {
			t.Fatal("the command ran the request the server held")
		}
		if tr := trail(t, command, req.ID); tr[StatusCompleted] != 1 || tr[StatusProcessing] != 1 {
			t.Fatalf("trail %v, want one processing and one completed entry", tr)
		}
		if keys, err := files.List(ctx, packagesPrefix(req.ID)); err != nil || len(keys) != 1 {
			t.Fatalf("packages %v (%v), want one", keys, err)
		}
	})
}

// TestDeadProcessRequestResumes leaves a request claimed by a process that
// died (its lease never renewed) and processes it from another: it waits
// for the lease to run out, then completes the request once.
func TestDeadProcessRequestResumes(t *testing.T) {
	ctx := context.Background()
	db := sqltest.Postgres(t)
	files := tempFiles(t)
	dead := newTestModule(t, db, Config{Lease: 300 * time.Millisecond}, Deps{Files: files})
	req := fileRequest(t, dead, TypeAccess, "resume@example.com")
	if l, err := dead.claim(ctx, req.ID); err != nil || l == nil {
		t.Fatalf("claim = %v, %v", l, err)
	}
	alive := newTestModule(t, db, Config{PollInterval: 50 * time.Millisecond, Lease: time.Minute}, Deps{Files: files})
	got, err := alive.Process(ctx, req.ID)
	if err != nil || got.Status != StatusCompleted {
		t.Fatalf("Process of a dead process's request = %s, %v", got.Status, err)
	}
	if tr := trail(t, alive, req.ID); tr[StatusCompleted] != 1 {
		t.Fatalf("trail %v, want one completed entry", tr)
	}
}

// TestPackageBytesUnchanged checks that the package in the file store,
// and what a download reads from it, are the bytes the exporter wrote.
func TestPackageBytesUnchanged(t *testing.T) {
	ctx := context.Background()
	db := sqltest.SQLite(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := newTestModule(t, db, Config{}, Deps{Now: func() time.Time { return now }})
	req, err := m.Process(ctx, fileRequest(t, m, TypeAccess, "bytes@example.com").ID)
	if err != nil || req.Status != StatusCompleted {
		t.Fatalf("Process = %s, %v", req.Status, err)
	}
	var want bytes.Buffer
	if _, err := m.exportPackage(ctx, req.ID, module.SubjectRef{Email: req.Email}, "", &want); err != nil {
		t.Fatal(err)
	}
	f, err := m.OpenPackage(req)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want.Bytes()) || int64(len(got)) != req.PackageSize {
		t.Fatalf("stored package: %d bytes, recorded %d; exporter wrote %d bytes, and they differ", len(got), req.PackageSize, want.Len())
	}
}
