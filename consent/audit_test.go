package consent_test

import (
	"context"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// TestAuditChecks holds every current choice to its proof and every proof
// to a subject, on rows written straight into the store.
func TestAuditChecks(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	str := func(s string) *string { return &s }
	proof := func(id string, visitor, user, hash *string) consent.Proof {
		return consent.Proof{ID: id, ChangeID: "c_" + id, VisitorID: visitor, UserID: user, SubjectHash: hash, Purpose: "analytics",
			Granted: true, Method: "banner_accept", PolicyVersion: "1", BannerVersion: "1", RecordedAt: now, UserAgent: "Firefox 128", IPTruncated: "203.0.113.0"}
	}
	state := func(id, proofID string) consent.State {
		return consent.State{ID: id, VisitorID: str("v_" + id), Purpose: "analytics", Granted: true, Method: "banner_accept",
			PolicyVersion: "1", BannerVersion: "1", DecidedAt: now, ExpiresAt: now.AddDate(1, 0, 0), ProofID: proofID}
	}
	tests := []struct {
		name   string
		proofs []consent.Proof
		states []consent.State
		where  string // the one finding expected; none when empty
	}{
		{name: "every choice proved",
			proofs: []consent.Proof{proof("p1", str("v1"), nil, nil), proof("p2", nil, str("u1"), nil), proof("p3", nil, nil, str("hash"))},
			states: []consent.State{state("s1", "p1"), state("s2", "p2")}},
		{name: "state whose proof is missing", where: "consent_state/s9",
			proofs: []consent.Proof{proof("p1", str("v1"), nil, nil)},
			states: []consent.State{state("s1", "p1"), state("s9", "nowhere")}},
		{name: "proof tied to no subject", where: "consent_log/p8",
			proofs: []consent.Proof{proof("p1", str("v1"), nil, nil), proof("p8", nil, nil, nil)},
			states: []consent.State{state("s1", "p1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
				h := newHarness(t, db, newClock(), nil)
				if _, err := db.NewInsert().Model(&tt.proofs).Exec(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := db.NewInsert().Model(&tt.states).Exec(ctx); err != nil {
					t.Fatal(err)
				}
				checks, err := h.mod.AuditChecks(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(checks) != 1 || checks[0].Name != consent.CheckProof || len(checks[0].Warnings) != 0 {
					t.Fatalf("checks %+v, want the one proof check", checks)
				}
				found := checks[0].Findings
				switch {
				case tt.where == "" && len(found) != 0:
					t.Fatalf("findings %+v, want none", found)
				case tt.where != "" && (len(found) != 1 || found[0].Where != tt.where):
					t.Fatalf("findings %+v, want one at %q", found, tt.where)
				}
			})
		})
	}
}
