package billing_test

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
)

func signedAt(payload []byte, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: stripeSecret, Timestamp: at}).Header
}

var (
	digitRun = regexp.MustCompile(`\d[\d -]{11,22}\d`)
	// Payment-method, card, token and source ids are payment credentials
	// or stand for one; none is kept (the module keeps customer, session,
	// payment intent, invoice, subscription and charge ids only).
	credentialID = regexp.MustCompile(`\b(pm|card|tok|src|seti)_[A-Za-z0-9]+`)
)

// luhn reports whether digits pass the Luhn check, as card numbers do.
func luhn(digits string) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// assertNoCardData fails when cardData finds anything.
func assertNoCardData(t *testing.T, db *bun.DB) {
	t.Helper()
	for _, f := range cardData(t, db) {
		t.Error(f)
	}
}

// cardData reads every text column of every table and reports each
// card-like number (13 to 19 digits passing the Luhn check) and payment
// credential id it holds.
func cardData(t *testing.T, db *bun.DB) []string {
	t.Helper()
	var found []string
	ctx := context.Background()
	cols, err := sqlstore.Columns(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if c.Family != "text" {
			continue
		}
		var values []string
		q := fmt.Sprintf("SELECT CAST(%s AS TEXT) FROM %s WHERE %s IS NOT NULL", c.Name, c.Table, c.Name)
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			values = append(values, v)
		}
		rows.Close()
		for _, v := range values {
			for _, run := range digitRun.FindAllString(v, -1) {
				d := strings.NewReplacer(" ", "", "-", "").Replace(run)
				if len(d) >= 13 && len(d) <= 19 && luhn(d) {
					found = append(found, fmt.Sprintf("%s.%s holds a card-like number", c.Table, c.Name))
				}
			}
			if credentialID.MatchString(v) {
				found = append(found, fmt.Sprintf("%s.%s holds a payment credential id %q", c.Table, c.Name, credentialID.FindString(v)))
			}
		}
	}
	return found
}

// exportSink collects what a module exports.
type exportSink struct{ records map[string][]any }

func (s *exportSink) Record(_ context.Context, category string, v any) error {
	if s.records == nil {
		s.records = map[string][]any{}
	}
	s.records[category] = append(s.records[category], v)
	return nil
}

func (s *exportSink) File(context.Context, string, string, io.Reader) error { return nil }

// testSubjectData exports the user's Stripe customer and erases it,
// twice, since erasure is retried after partial failures.
func testSubjectData(t *testing.T, e *env, user string) {
	t.Helper()
	ctx := context.Background()
	var sink exportSink
	if err := e.mod.ExportSubject(ctx, module.SubjectRef{UserID: user}, &sink); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.records["user.financial.customer_id"]); n != 1 {
		t.Fatalf("exported %d customer records, want 1", n)
	}
	for range 2 {
		res, err := e.mod.EraseSubject(ctx, module.SubjectRef{UserID: user})
		if err != nil || res.Deleted != 1 {
			t.Fatalf("EraseSubject = %+v, %v; want 1 deleted", res, err)
		}
	}
}
