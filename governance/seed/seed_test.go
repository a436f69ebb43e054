package seed

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/modules/billing"
	"github.com/stewardhq/steward/modules/generation"
	"github.com/stewardhq/steward/modules/support"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

// testSources are the modules whose tables the tests seed.
func testSources() []datamap.Source {
	return []datamap.Source{
		{Module: "accounts", Models: (&accounts.Module{}).Models()},
		{Module: "generation", Models: (&generation.Module{}).Models()},
		{Module: "billing", Models: (&billing.Module{}).Models()},
		{Module: "support", Models: (&support.Module{}).Models()},
	}
}

// stored collects the events a seeder stores.
type stored struct {
	mu     sync.Mutex
	events []Event
}

func (s *stored) store(_ context.Context, events []Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, events...)
	return nil
}

// count returns how many stored events keep.
func (s *stored) count(keep func(Event) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.events {
		if keep(e) {
			n++
		}
	}
	return n
}

// TestPeople seeds people on both dialects and checks each got the rows
// the profile asks for, references that hold, and their events: the
// consented ones under their ids, the unconsented ones as the consent gate
// stores them, linked to no one. (cmd/steward's TestSeed reads the events
// back from the warehouse.)
func TestPeople(t *testing.T) {
	ctx := context.Background()
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		var out stored
		sd, err := New(Config{Seed: 1}, Deps{DB: db, Events: out.store, Sources: testSources(), Now: func() time.Time { return time.Now().AddDate(1, 0, 0) }})
		if err != nil {
			t.Fatal(err)
		}
		p := Profile{PerPerson: map[string]int{"generations": 7, "support_tickets": 2, "support_messages": 5}, Events: 30, UnconsentedShare: 0.5}
		people, sum, err := sd.People(ctx, 3, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(people) != 3 || sum.People != 3 || sum.Events != 90 || sum.Rows["generations"] != 21 || sum.Rows["support_messages"] != 15 {
			t.Fatalf("summary %+v", sum)
		}
		linked := 0
		for _, person := range people {
			tests := []struct {
				name  string
				table string
				where string
				want  int
			}{
				{"account", "users", "id = ? AND email = ?", 1},
				{"generations", "generations", "user_id = ? AND ? <> ''", 7},
				{"messages in their own tickets", "support_messages m JOIN support_tickets tk ON tk.id = m.ticket_id", "tk.user_id = ? AND ? <> ''", 5},
			}
			for _, tt := range tests {
				var n int
				if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+tt.table+" WHERE "+tt.where, person.UserID, person.Email).Scan(&n); err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if n != tt.want {
					t.Errorf("%s: %d rows, want %d", tt.name, n, tt.want)
				}
			}
			mine := func(e Event) bool { return e.VisitorID == person.VisitorIDs[0] || e.UserID == person.UserID }
			n := out.count(mine)
			if n == 0 || n == 30 {
				t.Errorf("%d of 30 events carry the person's ids, want the consented share of them", n)
			}
			if bad := out.count(func(e Event) bool { return mine(e) && !slices.Contains(e.ConsentPurposes, "analytics") }); bad != 0 {
				t.Errorf("%d events without analytics consent carry the person's ids", bad)
			}
			linked += n
		}
		anonymous := out.count(func(e Event) bool {
			return e.VisitorID == "" && e.UserID == "" && e.SessionID == "" && e.Channel == "" && e.Referrer == "" && e.EventType == "error"
		})
		if linked+anonymous != 90 {
			t.Errorf("%d events linked to people and %d linked to no one, want 90 in all", linked, anonymous)
		}
	})
}

// TestSeedTwiceAtScale seeds, twice into the same store and with the same
// random seed, more people than values drawn from a small random space
// could tell apart, and checks every table holds exactly the rows asked
// for: no unique or primary key clashed, within a run or across runs.
func TestSeedTwiceAtScale(t *testing.T) {
	ctx := context.Background()
	// A thousand people made provider subject ids and invoice numbers
	// clash; a second run with the same random seed made the same user
	// ids and emails as the first.
	runs := []int{1000, 200}
	// One row of each table per person, and one event, keep the test
	// quick; a table keyed by its subject column gets one row per person
	// even when asked for more.
	p := Profile{PerPerson: map[string]int{"credit_balances": 3}, Events: 1, UnconsentedShare: 0.5}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		var out stored
		want := map[string]int64{}
		keys := map[string]bool{}
		total := 0
		for run, people := range runs {
			sd, err := New(Config{Seed: 1}, Deps{DB: db, Events: out.store, Sources: testSources()})
			if err != nil {
				t.Fatal(err)
			}
			sum, err := sd.Stream(ctx, people, p, func(group []Person) error {
				for _, person := range group {
					for _, k := range []string{person.UserID, person.Email, person.VisitorIDs[0]} {
						if keys[k] {
							t.Errorf("run %d made %s again", run, k)
						}
						keys[k] = true
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("run %d: %v", run, err)
			}
			if sum.People != people || sum.Events != int64(people) || sum.Rows["users"] != int64(people) || sum.Rows["credit_balances"] != int64(people) {
				t.Fatalf("run %d: summary %+v", run, sum)
			}
			for table, n := range sum.Rows {
				want[table] += n
			}
			total += people
		}
		if len(want) < 10 {
			t.Fatalf("only %d tables seeded: %v", len(want), want)
		}
		for table, n := range want {
			var got int64
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != n {
				t.Errorf("%s: %d rows after both runs, want %d", table, got, n)
			}
		}
		if n := len(out.events); n != total {
			t.Errorf("%d events after both runs, want %d", n, total)
		}
	})
}

// TestPersonKeys checks the keys people get: distinct across seeders made
// with the same random seed, and in the order they were made.
func TestPersonKeys(t *testing.T) {
	a := &Seeder{run: runTag(), rng: rand.New(rand.NewPCG(1, 1))}
	b := &Seeder{run: runTag(), rng: rand.New(rand.NewPCG(1, 1))}
	if a.run == b.run || len(a.run) != 12 || strings.ToLower(a.run) != a.run {
		t.Fatalf("run tags %q and %q", a.run, b.run)
	}
	tests := []struct {
		name string
		made uint64
	}{
		{"first", 0},
		{"past one digit", 35},
		{"past two digits", 36*36 - 1},
		{"a hundred thousand", 100000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.made = tt.made
			first, next := a.person(), a.person()
			if len(first.key) != len(next.key) || first.key >= next.key {
				t.Errorf("keys %q then %q: want the same width, in order", first.key, next.key)
			}
			if !strings.HasPrefix(first.UserID, "u_seed_"+a.run+"_") || !strings.Contains(first.Email, first.key+"@") {
				t.Errorf("person %+v does not carry key %q", first, first.key)
			}
		})
	}
}
