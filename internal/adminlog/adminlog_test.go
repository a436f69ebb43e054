package adminlog_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

// appendN appends n entries with distinct actions and returns them.
func appendN(t *testing.T, db bun.IDB, n int) []adminlog.Record {
	t.Helper()
	start := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	var out []adminlog.Record
	for i := range n {
		rec, err := adminlog.Append(context.Background(), db, adminlog.Entry{
			Time:     start.Add(time.Duration(i) * time.Minute),
			ActorID:  "u_admin",
			Action:   "user.role.update",
			TargetID: fmt.Sprintf("u_target%d", i),
			Details:  map[string]any{"from": "user", "to": "support", "n": i},
		})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		out = append(out, rec)
	}
	return out
}

func exec(t *testing.T, db *bun.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestAppendBuildsAChain(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		recs := appendN(t, db, 3)
		if recs[0].Seq != 1 || recs[0].PrevHash != adminlog.GenesisHash {
			t.Fatalf("first entry = seq %d prev %s, want 1 and the genesis hash", recs[0].Seq, recs[0].PrevHash)
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].Seq != recs[i-1].Seq+1 || recs[i].PrevHash != recs[i-1].Hash {
				t.Errorf("entry %d does not follow entry %d", recs[i].Seq, recs[i-1].Seq)
			}
		}
		// What was stored hashes to what Append returned: the stored time
		// and details survive the round trip unchanged.
		var stored []adminlog.Record
		if err := db.NewSelect().Model(&stored).Order("seq").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		for i, r := range stored {
			if got := adminlog.ComputeHash(r); got != recs[i].Hash || r.Hash != recs[i].Hash {
				t.Errorf("entry %d: stored hash %s, recomputed %s, appended %s", r.Seq, r.Hash, got, recs[i].Hash)
			}
		}
		rep, err := adminlog.Verify(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Entries != 3 || rep.Head != (adminlog.Anchor{Seq: 3, Hash: recs[2].Hash}) {
			t.Fatalf("Verify = %+v (finding %+v), want 3 clean entries with head 3", rep, rep.Finding)
		}
	})
}

func TestAppendRefusesIncompleteEntries(t *testing.T) {
	db := sqltest.SQLite(t)
	_, err := adminlog.Append(context.Background(), db, adminlog.Entry{ActorID: "u_a", Action: "x"})
	if err == nil {
		t.Fatal("an entry without a target was appended")
	}
}

func TestParallelAppendsNeverFork(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		const workers, each = 8, 10
		var wg sync.WaitGroup
		errc := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					_, err := adminlog.Append(context.Background(), db, adminlog.Entry{
						ActorID: fmt.Sprintf("u_admin%d", w), Action: "token.create", TargetID: fmt.Sprintf("u_%d_%d", w, i),
					})
					if err != nil {
						errc <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		rep, err := adminlog.Verify(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Entries != workers*each || rep.Head.Seq != workers*each {
			t.Fatalf("after %d parallel appends: %+v, finding %+v", workers*each, rep, rep.Finding)
		}
	})
}

func TestAppendJoinsTheCallersTransaction(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		appendN(t, db, 1)
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := adminlog.Append(ctx, tx, adminlog.Entry{ActorID: "u_a", Action: "user.role.update", TargetID: "u_b"}); err != nil {
				return err
			}
			return fmt.Errorf("the recorded action failed")
		})
		if err == nil {
			t.Fatal("transaction did not fail")
		}
		rep, err := adminlog.Verify(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Entries != 1 || !rep.OK() {
			t.Fatalf("entry of a rolled-back action survived: %+v", rep)
		}
		// The chain continues normally after the rollback.
		appendN(t, db, 1)
		if rep, _ := adminlog.Verify(ctx, db); !rep.OK() || rep.Entries != 2 {
			t.Fatalf("after rollback and append: %+v %+v", rep, rep.Finding)
		}
	})
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name string
		// sql edits the table of five entries directly, statement by
		// statement; tamper does what takes more than statements.
		sql     []string
		tamper  func(t *testing.T, db *bun.DB, recs []adminlog.Record)
		anchor  bool // verify against the head taken before tampering
		kind    string
		seq     int64
		cleanTo int64 // the head of the report: last entry that verified
	}{
		{
			name: "edited action",
			sql:  []string{"UPDATE admin_log SET action = 'user.role.read' WHERE seq = 3"},
			kind: adminlog.Edited, seq: 3, cleanTo: 2,
		},
		{
			name: "edited details",
			sql:  []string{`UPDATE admin_log SET details = '{"from":"user","n":1,"to":"admin"}' WHERE seq = 2`},
			kind: adminlog.Edited, seq: 2, cleanTo: 1,
		},
		{
			name: "edited time",
			tamper: func(t *testing.T, db *bun.DB, recs []adminlog.Record) {
				exec(t, db, "UPDATE admin_log SET occurred_at = ? WHERE seq = 4", recs[3].OccurredAt.Add(-time.Hour))
			},
			kind: adminlog.Edited, seq: 4, cleanTo: 3,
		},
		{
			name: "edited and rehashed: the next entry no longer follows",
			tamper: func(t *testing.T, db *bun.DB, recs []adminlog.Record) {
				r := recs[2]
				r.TargetID = "u_someone_else"
				exec(t, db, "UPDATE admin_log SET target_id = ?, hash = ? WHERE seq = 3", r.TargetID, adminlog.ComputeHash(r))
			},
			kind: adminlog.Inserted, seq: 4, cleanTo: 3,
		},
		{
			name: "deleted from the middle",
			sql:  []string{"DELETE FROM admin_log WHERE seq = 3"},
			kind: adminlog.Deleted, seq: 3, cleanTo: 2,
		},
		{
			name: "deleted from the start",
			sql:  []string{"DELETE FROM admin_log WHERE seq = 1"},
			kind: adminlog.Deleted, seq: 1, cleanTo: 0,
		},
		{
			name:   "deleted from the end, caught by the anchor",
			sql:    []string{"DELETE FROM admin_log WHERE seq = 5"},
			anchor: true, kind: adminlog.Deleted, seq: 5, cleanTo: 4,
		},
		{
			name: "two entries swapped",
			sql: []string{
				"UPDATE admin_log SET seq = -4 WHERE seq = 4",
				"UPDATE admin_log SET seq = 4 WHERE seq = 3",
				"UPDATE admin_log SET seq = 3 WHERE seq = -4",
			},
			kind: adminlog.Reordered, seq: 3, cleanTo: 2,
		},
		{
			name: "a well-formed entry inserted in the middle",
			tamper: func(t *testing.T, db *bun.DB, recs []adminlog.Record) {
				// A forger with rights over the schema drops the index that
				// keeps two entries from following the same one, makes room
				// at 3 (two steps: PostgreSQL checks the primary key row by
				// row) and inserts an entry chained to 2.
				exec(t, db, "DROP INDEX admin_log_prev_hash_key")
				exec(t, db, "UPDATE admin_log SET seq = -seq WHERE seq >= 3")
				exec(t, db, "UPDATE admin_log SET seq = 1 - seq WHERE seq < 0")
				fake := adminlog.Record{Seq: 3, OccurredAt: recs[1].OccurredAt.Add(time.Second),
					ActorID: "u_intruder", Action: "user.role.update", TargetID: "u_x", Details: "{}", PrevHash: recs[1].Hash}
				fake.Hash = adminlog.ComputeHash(fake)
				if _, err := db.NewInsert().Model(&fake).Exec(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
			kind: adminlog.Inserted, seq: 3, cleanTo: 3,
		},
		{
			name: "a forged entry appended at the end",
			tamper: func(t *testing.T, db *bun.DB, recs []adminlog.Record) {
				fake := adminlog.Record{Seq: 6, OccurredAt: recs[4].OccurredAt.Add(time.Second),
					ActorID: "u_intruder", Action: "user.role.update", TargetID: "u_x", Details: "{}",
					PrevHash: adminlog.GenesisHash[:63] + "1", Hash: adminlog.GenesisHash[:63] + "2"}
				if _, err := db.NewInsert().Model(&fake).Exec(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
			kind: adminlog.Inserted, seq: 6, cleanTo: 5,
		},
		{
			name: "whole chain rebuilt, caught by the anchor",
			tamper: func(t *testing.T, db *bun.DB, recs []adminlog.Record) {
				prev := adminlog.GenesisHash
				exec(t, db, "UPDATE admin_log SET prev_hash = hash || 'x'")
				for _, r := range recs {
					r.PrevHash = prev
					r.Action = "user.role.read"
					r.Hash = adminlog.ComputeHash(r)
					exec(t, db, "UPDATE admin_log SET action = ?, prev_hash = ?, hash = ? WHERE seq = ?", r.Action, r.PrevHash, r.Hash, r.Seq)
					prev = r.Hash
				}
			},
			anchor: true, kind: adminlog.Rewritten, seq: 5, cleanTo: 5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
				ctx := context.Background()
				recs := appendN(t, db, 5)
				before, err := adminlog.Verify(ctx, db)
				if err != nil || !before.OK() {
					t.Fatalf("untouched log: %+v, %v", before, err)
				}
				for _, q := range tt.sql {
					exec(t, db, q)
				}
				if tt.tamper != nil {
					tt.tamper(t, db, recs)
				}
				var anchors []adminlog.Anchor
				if tt.anchor {
					anchors = append(anchors, before.Head)
					// Without the anchor these changes pass the chain check.
					if rep, _ := adminlog.Verify(ctx, db); !rep.OK() {
						t.Fatalf("expected the chain alone to miss this, got %+v", rep.Finding)
					}
				}
				rep, err := adminlog.Verify(ctx, db, anchors...)
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK() {
					t.Fatal("tampering went unnoticed")
				}
				if rep.Finding.Kind != tt.kind || rep.Finding.Seq != tt.seq {
					t.Errorf("finding = %+v, want %s at %d", rep.Finding, tt.kind, tt.seq)
				}
				if rep.Head.Seq != tt.cleanTo {
					t.Errorf("head = %d, want the last good entry %d", rep.Head.Seq, tt.cleanTo)
				}
			})
		})
	}
}

func TestVerifyEmptyLog(t *testing.T) {
	db := sqltest.SQLite(t)
	rep, err := adminlog.Verify(context.Background(), db, adminlog.Anchor{})
	if err != nil || !rep.OK() || rep.Entries != 0 {
		t.Fatalf("empty log: %+v, %v", rep, err)
	}
}
