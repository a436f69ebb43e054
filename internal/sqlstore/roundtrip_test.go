package sqlstore_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

func now() time.Time { return time.Now() }

func decision(id string, at time.Time) *sqlstore.DecisionRecord {
	return &sqlstore.DecisionRecord{
		ID:          id,
		DecidedAt:   at,
		Policy:      "data.steward.retention",
		Revision:    "r1",
		InputDigest: strings.Repeat("ab", 32),
		Result:      map[string]any{"keep": true},
	}
}

// TestDecisionRecordRoundTrip writes times, JSON and booleans through bun
// and reads them back the same on both dialects.
func TestDecisionRecordRoundTrip(t *testing.T) {
	// A zone other than UTC, and nanoseconds neither store keeps.
	at := time.Date(2025, 3, 30, 1, 30, 15, 123456789, time.FixedZone("UTC+05:30", 5*3600+1800))
	yes, no := true, false
	ref := sqlstore.SubjectRef("user-1")
	want := []sqlstore.DecisionRecord{
		{
			ID: "a-allowed", DecidedAt: at, Policy: "data.steward.authz", Revision: "r1",
			InputDigest: strings.Repeat("0f", 32), Allowed: &yes, SubjectRef: &ref,
			Result: map[string]any{
				"allow":   true,
				"reasons": []any{"role", "consent"},
				"detail":  map[string]any{"score": 1.5, "count": 3.0, "text": `é "quoted" \ <tag>`, "none": nil},
			},
		},
		{
			ID: "b-denied", DecidedAt: at.Add(-time.Hour), Policy: "data.steward.authz", Revision: "r1",
			InputDigest: strings.Repeat("1e", 32), Allowed: &no,
			Result: map[string]any{"allow": false},
		},
		{
			ID: "c-document", DecidedAt: at.Truncate(time.Second), Policy: "data.steward.export", Revision: "r2",
			InputDigest: strings.Repeat("2d", 32),
			Result:      map[string]any{},
		},
	}

	read := map[string][]sqlstore.DecisionRecord{}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		in := slices.Clone(want)
		if _, err := db.NewInsert().Model(&in).Exec(ctx); err != nil {
			t.Fatalf("insert: %v", err)
		}
		var got []sqlstore.DecisionRecord
		if err := db.NewSelect().Model(&got).Order("id").Scan(ctx); err != nil {
			t.Fatalf("select: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("read %d records, want %d", len(got), len(want))
		}
		for i := range want {
			// Both stores keep microseconds.
			if !got[i].DecidedAt.Equal(want[i].DecidedAt.Truncate(time.Microsecond)) {
				t.Errorf("%s: decided_at = %v, want %v", want[i].ID, got[i].DecidedAt, want[i].DecidedAt.Truncate(time.Microsecond))
			}
			got[i].DecidedAt, want[i].DecidedAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("%s:\ngot  %+v\nwant %+v", want[i].ID, got[i], want[i])
			}
			want[i].DecidedAt = in[i].DecidedAt
		}
		read[sqlstore.Dialect(db)] = got
	})

	lite, pg := read[sqlstore.SQLite], read[sqlstore.Postgres]
	if len(lite) != len(pg) {
		t.Fatalf("sqlite read %d records, postgres %d", len(lite), len(pg))
	}
	for i := range lite {
		if !lite[i].DecidedAt.Equal(pg[i].DecidedAt) {
			t.Errorf("%s: decided_at differs: sqlite %v, postgres %v", lite[i].ID, lite[i].DecidedAt, pg[i].DecidedAt)
		}
	}
}

// TestTimesCompareInTimeOrder: SQLite keeps times as text, so ranges and
// ordering work only if every written time compares as its instant does.
func TestTimesCompareInTimeOrder(t *testing.T) {
	base := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	east := time.FixedZone("UTC+09:00", 9*3600)
	times := map[string]time.Time{
		"a": base.Add(-time.Hour).In(east), // later wall clock, earlier instant
		"b": base,
		"c": base.Add(time.Microsecond),
		"d": base.Add(500 * time.Millisecond),
		"e": base.Add(999999 * time.Microsecond),
		"f": base.Add(time.Second),
		"g": base.Add(24 * time.Hour),
	}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		for id, at := range times {
			if _, err := db.NewInsert().Model(decision(id, at)).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name string
			from time.Time
			to   time.Time
			want []string
		}{
			{name: "the first second", from: base, to: base.Add(time.Second), want: []string{"b", "c", "d", "e"}},
			{name: "bounds given in another zone", from: base.In(east), to: base.Add(time.Second).In(east), want: []string{"b", "c", "d", "e"}},
			{name: "everything", from: base.Add(-48 * time.Hour), to: base.Add(48 * time.Hour), want: []string{"a", "b", "c", "d", "e", "f", "g"}},
			{name: "before the base", from: time.Time{}, to: base, want: []string{"a"}},
		}
		for _, tt := range tests {
			var got []string
			err := db.NewSelect().Model((*sqlstore.DecisionRecord)(nil)).Column("id").
				Where("decided_at >= ?", tt.from).Where("decided_at < ?", tt.to).
				Order("decided_at").Scan(ctx, &got)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
			}
		}
	})
}

func TestSubjectRef(t *testing.T) {
	a, b := sqlstore.SubjectRef("user-1"), sqlstore.SubjectRef("user-2")
	if a != sqlstore.SubjectRef("user-1") {
		t.Error("SubjectRef is not stable")
	}
	if a == b {
		t.Error("two subjects share a reference")
	}
	if strings.Contains(a, "user-1") || len(a) != 64 {
		t.Errorf("SubjectRef(user-1) = %q, want a 64-digit hash", a)
	}
}
