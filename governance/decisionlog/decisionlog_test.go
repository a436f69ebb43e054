package decisionlog

import (
	"context"
	"os"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/policies"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

// TestEveryEvaluationIsLogged runs real decisions through the engine and
// finds each evaluation, and no cache hit twice, in decision_log.
func TestEveryEvaluationIsLogged(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		w, err := New(Config{Batch: 3}, Deps{DB: db})
		if err != nil {
			t.Fatal(err)
		}
		engine, err := policies.New(ctx, policies.Options{Recorder: w.Record})
		if err != nil {
			t.Fatal(err)
		}
		in := policies.AccessInput{Role: "support", Action: "read", Categories: []string{"user.financial.order"}}
		first, err := engine.Access(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := engine.Access(ctx, in); err != nil { // cached: not logged again
			t.Fatal(err)
		}
		for _, c := range []string{"user.contact.email", "user.content.prompt", "user.financial.invoice_id", "user.security.abuse_log"} {
			if _, err := engine.Erasure(ctx, c, policies.StoreSQL); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}

		var rows []sqlstore.DecisionRecord
		if err := db.NewSelect().Model(&rows).Order("decided_at").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 5 {
			t.Fatalf("logged %d decisions, want 5 (one access evaluation, four erasure)", len(rows))
		}
		access := rows[0]
		if access.ID != first.DecisionID || access.Revision != engine.Revision() || access.Policy != policies.PolicyAccess {
			t.Fatalf("access row %+v does not match decision %+v", access, first.Stamp)
		}
		if access.Allowed == nil || *access.Allowed != first.Allow {
			t.Fatalf("allowed = %v, decision said %v", access.Allowed, first.Allow)
		}
		if len(access.InputDigest) != 64 {
			t.Fatalf("input digest %q is not a sha256", access.InputDigest)
		}
		for _, r := range rows[1:] {
			if r.Policy != policies.PolicyErasure || r.Result["action"] == nil {
				t.Errorf("erasure row %+v lacks its result", r)
			}
		}
	})
}
