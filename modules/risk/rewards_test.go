package risk_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/risk"
)

func TestCheckInGrantsOncePerDayUnderConcurrency(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, risk.Config{})
		const racers = 20
		answers := make([]checkInAnswer, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				answers[i] = e.checkIn("u1")
			}()
		}
		close(start)
		wg.Wait()

		granted := 0
		for _, a := range answers {
			if a.Day != "2026-04-01" || !a.NextAt.Equal(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("answer = %+v, want day 2026-04-01 and next_at the next midnight", a)
			}
			if a.Granted {
				granted++
				if a.Credits != risk.DefaultCheckInCredits {
					t.Errorf("granted %d credits, want %d", a.Credits, risk.DefaultCheckInCredits)
				}
			} else if a.Credits != 0 {
				t.Errorf("a refused check-in reports %d credits", a.Credits)
			}
		}
		if granted != 1 {
			t.Errorf("%d of %d concurrent check-ins granted, want 1", granted, racers)
		}
		if b := e.balance("u1"); b != risk.DefaultCheckInCredits {
			t.Errorf("balance = %d, want %d", b, risk.DefaultCheckInCredits)
		}
		if n := e.rewardEntries("u1"); n != 1 {
			t.Errorf("%d reward entries in the ledger, want 1", n)
		}

		// Later the same day: still nothing.
		e.clock.Set(time.Date(2026, 4, 1, 23, 59, 59, 0, time.UTC))
		if a := e.checkIn("u1"); a.Granted {
			t.Error("a second check-in the same day was granted")
		}
		// Another user is not affected by u1's check-in.
		if a := e.checkIn("u2"); !a.Granted || e.balance("u2") != risk.DefaultCheckInCredits {
			t.Errorf("u2's first check-in = %+v, balance %d", a, e.balance("u2"))
		}
		// The next day grants again, once.
		e.clock.Set(time.Date(2026, 4, 2, 0, 0, 1, 0, time.UTC))
		if a := e.checkIn("u1"); !a.Granted || a.Day != "2026-04-02" {
			t.Errorf("next day's check-in = %+v, want granted on 2026-04-02", a)
		}
		if a := e.checkIn("u1"); a.Granted {
			t.Error("the next day's second check-in was granted")
		}
		if b := e.balance("u1"); b != 2*risk.DefaultCheckInCredits {
			t.Errorf("balance after two days = %d, want %d", b, 2*risk.DefaultCheckInCredits)
		}
		var rows int
		if err := db.NewRaw("SELECT count(*) FROM reward_records WHERE user_id = ?", "u1").Scan(context.Background(), &rows); err != nil {
			t.Fatal(err)
		}
		if rows != 2 {
			t.Errorf("%d reward records for u1, want 2", rows)
		}
	})
}

func TestCheckInDayFollowsTheConfiguredZone(t *testing.T) {
	db := sqltest.SQLite(t)
	tokyo := time.FixedZone("UTC+9", 9*60*60)
	e := newEnv(t, db, risk.Config{Location: tokyo, CheckInCredits: 3})
	// 14:30 UTC is 23:30 in UTC+9: the last half hour of April 1 there.
	e.clock.Set(time.Date(2026, 4, 1, 14, 30, 0, 0, time.UTC))
	a := e.checkIn("u1")
	if !a.Granted || a.Credits != 3 || a.Day != "2026-04-01" || !a.NextAt.Equal(time.Date(2026, 4, 1, 15, 0, 0, 0, time.UTC)) {
		t.Fatalf("check-in = %+v, want 3 credits on 2026-04-01, next at 15:00 UTC", a)
	}
	// 15:30 UTC is already April 2 in UTC+9, though still April 1 in UTC.
	e.clock.Set(time.Date(2026, 4, 1, 15, 30, 0, 0, time.UTC))
	if a := e.checkIn("u1"); !a.Granted || a.Day != "2026-04-02" {
		t.Errorf("check-in after local midnight = %+v, want granted on 2026-04-02", a)
	}
	if b := e.balance("u1"); b != 6 {
		t.Errorf("balance = %d, want 6", b)
	}
}

// flaky is the real ledger behind a switch that makes Reward fail, as a
// database outage would.
type flaky struct {
	mu   sync.Mutex
	fail bool
	next interface {
		Reward(ctx context.Context, userID string, amount int64, reason, ref string) error
	}
}

func (f *flaky) Reward(ctx context.Context, userID string, amount int64, reason, ref string) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("ledger unavailable")
	}
	return f.next.Reward(ctx, userID, amount, reason, ref)
}

func TestCheckInAfterALedgerFailureCanBeRetried(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		f := &flaky{fail: true}
		e := newEnv(t, db, risk.Config{}, func(d *risk.Deps) { d.Rewards = f })
		f.next = e.ledger
		status, out := e.do(fiber.MethodPost, "/v1/rewards/checkin", "u1:user")
		if status != http.StatusInternalServerError {
			t.Fatalf("check-in with the ledger down = %d %s, want 500", status, out)
		}
		f.mu.Lock()
		f.fail = false
		f.mu.Unlock()
		if a := e.checkIn("u1"); !a.Granted {
			t.Errorf("retry after the failure = %+v, want granted", a)
		}
		if b := e.balance("u1"); b != risk.DefaultCheckInCredits {
			t.Errorf("balance = %d, want %d", b, risk.DefaultCheckInCredits)
		}
	})
}

func TestGrantTask(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, risk.Config{})
		ctx := context.Background()
		const racers = 10
		var wg sync.WaitGroup
		var mu sync.Mutex
		granted := 0
		for range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := e.mod.GrantTask(ctx, "u1", "first_generation", 20)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if granted != 1 {
			t.Errorf("%d of %d concurrent grants of one task happened, want 1", granted, racers)
		}
		// A task is once per user for good, not once per day.
		e.clock.Set(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
		if ok, err := e.mod.GrantTask(ctx, "u1", "first_generation", 20); ok || err != nil {
			t.Errorf("the task a month later = %v, %v; want not granted", ok, err)
		}
		// Other tasks, other users, and check-ins are separate.
		if ok, err := e.mod.GrantTask(ctx, "u1", "first_upload", 7); !ok || err != nil {
			t.Errorf("another task = %v, %v; want granted", ok, err)
		}
		if ok, err := e.mod.GrantTask(ctx, "u2", "first_generation", 20); !ok || err != nil {
			t.Errorf("the task for another user = %v, %v; want granted", ok, err)
		}
		if a := e.checkIn("u1"); !a.Granted {
			t.Error("a check-in after tasks was not granted")
		}
		if b := e.balance("u1"); b != 20+7+risk.DefaultCheckInCredits {
			t.Errorf("balance = %d, want %d", b, 20+7+risk.DefaultCheckInCredits)
		}
	})
}

func TestGrantTaskRefusesBadInput(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), risk.Config{})
	tests := []struct {
		name    string
		user    string
		task    string
		credits int64
	}{
		{name: "no user", user: "", task: "first_generation", credits: 5},
		{name: "no task", user: "u1", task: "", credits: 5},
		{name: "free text task", user: "u1", task: "First Generation!", credits: 5},
		{name: "overlong task", user: "u1", task: "a234567890123456789012345678901234567890123456789012345678901234x", credits: 5},
		{name: "zero credits", user: "u1", task: "first_generation", credits: 0},
		{name: "negative credits", user: "u1", task: "first_generation", credits: -5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := e.mod.GrantTask(context.Background(), tt.user, tt.task, tt.credits)
			if ok || err == nil {
				t.Errorf("GrantTask = %v, %v; want an error", ok, err)
			}
			if tt.user != "" && errs.Kind(err) != errs.ErrInvalidArgument {
				t.Errorf("error %v is not an invalid argument", err)
			}
		})
	}
	if b := e.balance("u1"); b != 0 {
		t.Errorf("refused grants left a balance of %d", b)
	}
}

func TestListRewards(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, risk.Config{})
		ctx := context.Background()
		// Three check-ins on three days and one task, all for u1; one
		// check-in for u2.
		for d := 1; d <= 3; d++ {
			e.clock.Set(time.Date(2026, 4, d, 9, 0, 0, 0, time.UTC))
			e.checkIn("u1")
		}
		if _, err := e.mod.GrantTask(ctx, "u1", "first_generation", 20); err != nil {
			t.Fatal(err)
		}
		e.checkIn("u2")

		tests := []listCase{
			{name: "a user lists their own", principal: "u1:user", want: http.StatusOK, wantItems: 4},
			{name: "only check-ins", principal: "u1:user", query: url.Values{"kind": {"checkin"}}, want: http.StatusOK, wantItems: 3},
			{name: "only tasks", principal: "u1:user", query: url.Values{"kind": {"task"}}, want: http.StatusOK, wantItems: 1},
			{name: "a user cannot list another user's", principal: "u2:user", query: url.Values{"user_id": {"u1"}}, want: http.StatusForbidden},
			{name: "a support agent may not read reward records", principal: "s1:support", query: url.Values{"user_id": {"u1"}}, want: http.StatusForbidden},
			{name: "the dpo reads a user's", principal: "d1:dpo", query: url.Values{"user_id": {"u1"}}, want: http.StatusOK, wantItems: 4},
			{name: "unknown kind", principal: "u1:user", query: url.Values{"kind": {"bonus"}}, want: http.StatusBadRequest},
			{name: "limit too large", principal: "u1:user", query: url.Values{"limit": {"201"}}, want: http.StatusBadRequest},
			{name: "forged cursor", principal: "u1:user", query: url.Values{"cursor": {"not-a-cursor"}}, want: http.StatusBadRequest},
			{name: "signed out", principal: "", want: http.StatusUnauthorized},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p, out, ok := e.list(t, "/v1/rewards", tt)
				if !ok {
					return
				}
				if len(p.Items) != tt.wantItems {
					t.Fatalf("got %d items, want %d: %s", len(p.Items), tt.wantItems, out)
				}
				for _, it := range p.Items {
					if it["user_id"] != "u1" || it["credits"] == nil || it["day"] == nil {
						t.Errorf("item %v is not a full record of u1", it)
					}
				}
			})
		}

		// Pages of one follow each other, newest first, and end.
		var days []string
		cur := ""
		for range 10 {
			q := url.Values{"limit": {"1"}, "kind": {"checkin"}}
			if cur != "" {
				q.Set("cursor", cur)
			}
			status, out := e.do(fiber.MethodGet, "/v1/rewards?"+q.Encode(), "u1:user")
			var p page
			if status != http.StatusOK || json.Unmarshal(out, &p) != nil || len(p.Items) != 1 {
				t.Fatalf("page = %d %s", status, out)
			}
			days = append(days, p.Items[0]["day"].(string))
			if cur = p.NextCursor; cur == "" {
				break
			}
		}
		want := []string{"2026-04-03", "2026-04-02", "2026-04-01"}
		if len(days) != len(want) || days[0] != want[0] || days[1] != want[1] || days[2] != want[2] {
			t.Errorf("paged days = %v, want %v", days, want)
		}
	})
}

func TestRoutesAreDocumented(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), risk.Config{})
	if missing := web.UndocumentedRoutes(e.app, e.doc); len(missing) > 0 {
		t.Errorf("undocumented routes: %v", missing)
	}
	for _, path := range []string{"/v1/rewards/checkin", "/v1/rewards", "/v1/risk/abuse-events"} {
		method := fiber.MethodGet
		if path == "/v1/rewards/checkin" {
			method = fiber.MethodPost
		}
		if !e.doc.Documented(method, path) {
			t.Errorf("%s %s is not mounted and documented", method, path)
		}
	}
}

func TestRewardsNeedARewarder(t *testing.T) {
	db := sqltest.SQLite(t)
	m, err := risk.New(risk.Config{}, risk.Deps{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CheckIn(context.Background(), "u1"); err == nil {
		t.Error("a check-in without a rewarder succeeded")
	}
	if _, err := m.GrantTask(context.Background(), "u1", "first_generation", 5); err == nil {
		t.Error("a task grant without a rewarder succeeded")
	}
	var n int
	if err := db.NewRaw("SELECT count(*) FROM reward_records").Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d reward records stored without credits", n)
	}
}
