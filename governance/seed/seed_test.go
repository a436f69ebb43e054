package seed

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/modules/billing"
	"github.com/stewardhq/steward/modules/generation"
	"github.com/stewardhq/steward/modules/support"
)

func TestMain(m *testing.M) {
	code := sqltest.Main(m)
	chtest.Teardown()
	_ = warehouse.ShutdownEngine()
	os.Exit(code)
}

// TestPeople seeds people on both dialects and checks each got the rows
// the profile asks for, references that hold, and their events.
func TestPeople(t *testing.T) {
	ctx := context.Background()
	w := chtest.Embedded(t)
	sources := []datamap.Source{
		{Module: "accounts", Models: (&accounts.Module{}).Models()},
		{Module: "generation", Models: (&generation.Module{}).Models()},
		{Module: "billing", Models: (&billing.Module{}).Models()},
		{Module: "support", Models: (&support.Module{}).Models()},
	}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		if err := w.Exec(ctx, "TRUNCATE TABLE events"); err != nil {
			t.Fatal(err)
		}
		sd, err := New(ctx, Deps{DB: db, Warehouse: w, Sources: sources, Now: func() time.Time { return time.Now().AddDate(1, 0, 0) }}, 1)
		if err != nil {
			t.Fatal(err)
		}
		p := Profile{PerPerson: map[string]int{"generations": 7, "support_tickets": 2, "support_messages": 5}, Events: 30, UnconsentedShare: 0.5}
		people, sum, err := sd.People(ctx, 3, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(people) != 3 || sum.Events != 90 || sum.Rows["generations"] != 21 || sum.Rows["support_messages"] != 15 {
			t.Fatalf("summary %+v", sum)
		}
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
			var ev []struct {
				N uint64 `ch:"n"`
			}
			if err := w.Select(ctx, &ev, "SELECT count() AS n FROM events WHERE visitor_id IN ({a:String}, {b:String})",
				warehouse.Named("a", person.VisitorIDs[0]), warehouse.Named("b", person.VisitorIDs[1])); err != nil {
				t.Fatal(err)
			}
			if ev[0].N != 30 {
				t.Errorf("events %d, want 30", ev[0].N)
			}
		}
	})
}
