package generation

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
)

// countingProvider renders with the local provider and counts the calls
// per task.
type countingProvider struct {
	mu    sync.Mutex
	calls map[string]int
	// fail, when set, decides the outcome of a call instead.
	fail func(job Job, call int) error
}

func (p *countingProvider) Generate(ctx context.Context, job Job) (Result, error) {
	p.mu.Lock()
	if p.calls == nil {
		p.calls = map[string]int{}
	}
	p.calls[job.TaskID]++
	n := p.calls[job.TaskID]
	p.mu.Unlock()
	if p.fail != nil {
		if err := p.fail(job, n); err != nil {
			return Result{}, err
		}
	}
	return LocalProvider{}.Generate(ctx, job)
}

func (p *countingProvider) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[id]
}

func (p *countingProvider) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		n += c
	}
	return n
}

func TestFailingProvider(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		tests := []struct {
			name      string
			fail      func(job Job, call int) error
			status    string
			reason    string
			calls     int
			committed bool
		}{
			{
				name: "permanent failure",
				fail: func(Job, int) error {
					return &Failure{Code: FailureContentPolicy, Message: "The provider refused the prompt."}
				},
				status: StatusFailed, reason: "content_policy: The provider refused the prompt.", calls: 1,
			},
			{
				name:   "temporary failures until attempts run out",
				fail:   func(Job, int) error { return errors.New("connection reset") },
				status: StatusFailed, reason: "provider_error: The provider failed.", calls: 3,
			},
			{
				name: "temporary failure then success",
				fail: func(_ Job, call int) error {
					if call == 1 {
						return &Failure{Code: FailureUnavailable, Message: "busy", Temporary: true}
					}
					return nil
				},
				status: StatusSucceeded, calls: 2, committed: true,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := &countingProvider{fail: tt.fail}
				f := newFixture(t, db, fixtureOpts{providers: map[string]Provider{LocalProviderName: p}})
				v := f.createTask(t, "u1", map[string]any{"prompt": "a boat", "model": "local-image"})
				done := f.waitFor(t, "u1", v.ID)
				if done.Status != tt.status || p.count(v.ID) != tt.calls {
					t.Fatalf("task = %s after %d calls, want %s after %d", done.Status, p.count(v.ID), tt.status, tt.calls)
				}
				if tt.reason != "" && (done.FailureReason == nil || *done.FailureReason != tt.reason) {
					t.Errorf("failure reason = %v, want %q", done.FailureReason, tt.reason)
				}
				want := []string{"released"}
				if tt.committed {
					want = []string{"committed"}
				}
				if got := f.credits.states(v.ID); !slices.Equal(got, want) {
					t.Errorf("reservation states = %v, want %v", got, want)
				}
				if !tt.committed && f.credits.Balance("u1") != 100 {
					t.Errorf("balance = %d after a failure, want 100", f.credits.Balance("u1"))
				}
			})
		}
	})
}

// blockingProvider signals when a task starts and then waits until its
// context ends.
type blockingProvider struct {
	started chan string
}

func (p *blockingProvider) Generate(ctx context.Context, job Job) (Result, error) {
	p.started <- job.TaskID
	<-ctx.Done()
	return Result{}, ctx.Err()
}

func TestRestartMidTask(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		files := t.TempDir()
		credits := newCredits(map[string]int64{"u1": 10})
		block := &blockingProvider{started: make(chan string, 1)}
		first := newFixture(t, db, fixtureOpts{files: files, credits: credits, providers: map[string]Provider{LocalProviderName: block}})
		v := first.createTask(t, "u1", map[string]any{"prompt": "a slow render", "model": "local-image"})
		select {
		case id := <-block.started:
			if id != v.ID {
				t.Fatalf("started %s, want %s", id, v.ID)
			}
		case <-time.After(waitTimeout):
			t.Fatal("the task never started")
		}
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		defer cancel()
		if err := first.gen.Stop(ctx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		g, err := first.gen.store.findTask(t.Context(), v.ID)
		if err != nil || g.Status != StatusQueued || g.Attempts != 0 {
			t.Fatalf("after stop: %+v, %v; want queued with the attempt not counted", g, err)
		}

		// A new module on the same database picks the task up.
		p := &countingProvider{}
		second := newFixture(t, db, fixtureOpts{files: files, credits: credits, providers: map[string]Provider{LocalProviderName: p}})
		done := second.waitFor(t, "u1", v.ID)
		if done.Status != StatusSucceeded || len(done.Outputs) != 1 || p.count(v.ID) != 1 {
			t.Fatalf("after restart: %+v, %d calls", done, p.count(v.ID))
		}
		if got := credits.states(v.ID); !slices.Equal(got, []string{"committed"}) || credits.Balance("u1") != 9 {
			t.Errorf("credits = %v, balance %d; want one committed reservation, 9 left", got, credits.Balance("u1"))
		}
		if n, _ := db.NewSelect().Model((*Output)(nil)).Where("generation_id = ?", v.ID).Count(t.Context()); n != 1 {
			t.Errorf("%d outputs, want 1", n)
		}
	})
}

func TestAbandonedTasks(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		p := &countingProvider{}
		// A lease of an hour: however slow the machine, the live heartbeat
		// set below stays fresh until the test ends.
		f := newFixture(t, db, fixtureOpts{noStart: true, cfg: Config{MaxAttempts: 2, Lease: time.Hour},
			providers: map[string]Provider{LocalProviderName: p}})
		retried := f.createTask(t, "u1", map[string]any{"prompt": "one", "model": "local-image"})
		spent := f.createTask(t, "u1", map[string]any{"prompt": "two", "model": "local-image"})
		fresh := f.createTask(t, "u1", map[string]any{"prompt": "three", "model": "local-image"})
		// A process died while running them: heartbeats stopped long ago,
		// except for the third, whose worker elsewhere is still alive.
		old := time.Now().Add(-24 * time.Hour).UTC()
		for id, attempts := range map[string]int{retried.ID: 1, spent.ID: 2} {
			if _, err := db.NewUpdate().Model((*Generation)(nil)).Set("status = ?", StatusRunning).Set("attempts = ?", attempts).
				Set("heartbeat_at = ?", old).Where("id = ?", id).Exec(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.NewUpdate().Model((*Generation)(nil)).Set("status = ?", StatusRunning).Set("attempts = 1").
			Set("heartbeat_at = ?", time.Now().UTC()).Where("id = ?", fresh.ID).Exec(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := f.gen.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.gen.Stop(context.Background()) })

		if done := f.waitFor(t, "u1", retried.ID); done.Status != StatusSucceeded {
			t.Errorf("abandoned task with attempts left = %s, want succeeded", done.Status)
		}
		done := f.waitFor(t, "u1", spent.ID)
		if done.Status != StatusFailed || done.FailureReason == nil || !strings.HasPrefix(*done.FailureReason, FailureInterrupted) || p.count(spent.ID) != 0 {
			t.Errorf("abandoned task without attempts = %s %v after %d calls, want failed: interrupted", done.Status, done.FailureReason, p.count(spent.ID))
		}
		if got := f.credits.states(spent.ID); !slices.Equal(got, []string{"released"}) {
			t.Errorf("credits of the failed task = %v, want released", got)
		}
		g, _ := f.gen.store.findTask(t.Context(), fresh.ID)
		if g.Status != StatusRunning || p.count(fresh.ID) != 0 {
			t.Errorf("task with a live heartbeat = %s, %d calls; want left running", g.Status, p.count(fresh.ID))
		}
	})
}

func TestNoDoubleRun(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		files := t.TempDir()
		credits := newCredits(map[string]int64{"u1": 1000})
		p := &countingProvider{}
		providers := map[string]Provider{LocalProviderName: p}
		// Two instances with three workers each share the queue.
		a := newFixture(t, db, fixtureOpts{files: files, credits: credits, providers: providers, noStart: true, cfg: Config{Workers: 3}})
		b := newFixture(t, db, fixtureOpts{files: files, credits: credits, providers: providers, noStart: true, cfg: Config{Workers: 3}})
		var ids []string
		for range 12 {
			ids = append(ids, a.createTask(t, "u1", map[string]any{"prompt": "many", "model": "local-image", "resolution": "512"}).ID)
		}
		for _, f := range []*fixture{a, b} {
			if err := f.gen.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.gen.Stop(context.Background()) })
		}
		for _, id := range ids {
			if v := a.waitFor(t, "u1", id); v.Status != StatusSucceeded {
				t.Errorf("task %s = %s", id, v.Status)
			}
		}
		for _, id := range ids {
			if n := p.count(id); n != 1 {
				t.Errorf("task %s ran %d times, want once", id, n)
			}
		}
		if n, _ := db.NewSelect().Model((*Output)(nil)).Count(t.Context()); n != int64(len(ids)) {
			t.Errorf("%d outputs for %d tasks", n, len(ids))
		}
	})
}

func TestStartStop(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, fixtureOpts{noStart: true})
	if err := f.gen.Stop(t.Context()); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
	if err := f.gen.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f.gen.Start(t.Context()); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := f.gen.Stop(t.Context()); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if resp, _ := f.do(t, jsonRequest("u1", http.MethodGet, "/v1/generation-models", nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("models = %d", resp.StatusCode)
	}
	if _, err := f.doc.JSON(); err != nil {
		t.Errorf("OpenAPI document: %v", err)
	}
	if missing := web.UndocumentedRoutes(f.app, f.doc); len(missing) > 0 {
		t.Errorf("undocumented routes: %v", missing)
	}
}

// TestRemoteTaskResumedAfterRestart runs tasks on a remote model service:
// the provider's task id is stored as soon as the task is submitted, so a
// restart polls the same remote task instead of submitting it again.
func TestRemoteTaskResumedAfterRestart(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		s := newModelService(t)
		s.pollsToEnd = 1 << 30 // runs until told otherwise
		remote := ModelSpec{ID: "remote-image", Kind: KindImage, AspectRatios: []string{"1:1"}, Resolutions: []string{"512"}, CostCredits: 2, Provider: "remote"}
		cfg := Config{Models: []ModelSpec{remote}}
		files, credits := t.TempDir(), newCredits(map[string]int64{"u1": 10})
		first := newFixture(t, db, fixtureOpts{cfg: cfg, files: files, credits: credits, providers: map[string]Provider{"remote": s.provider(t)}})
		v := first.createTask(t, "u1", map[string]any{"prompt": "a red fox", "model": "remote-image"})

		deadline := time.Now().Add(waitTimeout)
		for {
			g, err := first.gen.store.findTask(t.Context(), v.ID)
			if err != nil {
				t.Fatal(err)
			}
			if g.ProviderTaskID != nil {
				if *g.ProviderTaskID != "rt_1" {
					t.Fatalf("provider task id = %s", *g.ProviderTaskID)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the provider task id was never stored")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := first.gen.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		s.pollsToEnd = 0
		s.mu.Unlock()

		second := newFixture(t, db, fixtureOpts{cfg: cfg, files: files, credits: credits, providers: map[string]Provider{"remote": s.provider(t)}})
		done := second.waitFor(t, "u1", v.ID)
		if done.Status != StatusSucceeded || len(done.Outputs) != 1 {
			t.Fatalf("after restart: %+v", done)
		}
		s.mu.Lock()
		submits := s.submits
		s.mu.Unlock()
		if submits != 1 {
			t.Errorf("the remote task was submitted %d times, want once", submits)
		}
		if credits.Balance("u1") != 8 {
			t.Errorf("balance = %d, want 8", credits.Balance("u1"))
		}
	})
}
