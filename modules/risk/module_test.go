package risk_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/risk"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

func TestRecordAbuse(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		at := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
		m, err := risk.New(risk.Config{}, risk.Deps{DB: db, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.RecordAbuse(ctx, "rate_limited", "", "203.0.113.77", "Chrome on Windows", "auth_ip"); err != nil {
			t.Fatal(err)
		}
		if err := m.RecordAbuse(ctx, "sign_in_failed", "u_1", "2001:db8::1", "Firefox on Linux", strings.Repeat("é", 300)); err != nil {
			t.Fatal(err)
		}
		if err := m.RecordAbuse(ctx, "", "", "", "", ""); err == nil {
			t.Error("an event without a kind was recorded")
		}
		var got []risk.AbuseEvent
		if err := db.NewSelect().Model(&got).Order("kind").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("stored %d events, want 2", len(got))
		}
		rl, sf := got[0], got[1]
		if rl.Kind != "rate_limited" || rl.UserID != nil || rl.IPTruncated != "203.0.113.0" || rl.Detail != "auth_ip" || !rl.OccurredAt.Equal(at) {
			t.Errorf("rate-limit event = %+v", rl)
		}
		if sf.UserID == nil || *sf.UserID != "u_1" || sf.IPTruncated != "2001:db8::" {
			t.Errorf("sign-in event = %+v", sf)
		}
		if len(sf.Detail) > 200 || !strings.HasPrefix(sf.Detail, "éé") {
			t.Errorf("detail not clipped to 200 bytes of whole characters: %d bytes", len(sf.Detail))
		}
		// Nothing stores the full address.
		var n int
		if err := db.NewRaw("SELECT count(*) FROM abuse_events WHERE ip_truncated LIKE '%77%' OR ip_truncated LIKE '%::1%'").Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d events hold a full address", n)
		}
	})
}
