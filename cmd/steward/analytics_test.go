package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/analytics/attribution"
)

// TestAnalyticsAttributionCommand prints the attribution report of events
// stored in the shared server's warehouse as a table, CSV and JSON, and
// checks that the command and GET /v1/analytics/attribution give the same
// numbers. The conversion is a custom one (a purchase event with a name of
// its own), so events other tests store do not change the report.
func TestAnalyticsAttributionCommand(t *testing.T) {
	ctx := context.Background()
	const conversion = "cmd_attribution_order"
	at := time.Now().UTC().Truncate(time.Hour).Add(-72 * time.Hour)
	columns := []string{"event_id", "event_time", "received_at", "event_type", "event_name", "visitor_id", "source", "medium", "channel", "conversion_value", "currency"}
	row := func(id, typ, name, visitor string, t time.Time, source, medium, channel, value, currency string) []any {
		return []any{id, t, t, typ, name, visitor, source, medium, channel, decimal.RequireFromString(value), currency}
	}
	rows := [][]any{
		row("cmd-attr-1", "page_view", "page_view", "cmd-attr-va", at.Add(-48*time.Hour), "google", "cpc", "Paid Search", "0", ""),
		row("cmd-attr-2", "page_view", "page_view", "cmd-attr-va", at.Add(-24*time.Hour), "newsletter", "email", "Email", "0", ""),
		row("cmd-attr-3", "purchase", conversion, "cmd-attr-va", at, "", "", "", "100", "EUR"),
		row("cmd-attr-4", "purchase", conversion, "cmd-attr-vb", at, "", "", "", "30", "EUR"),
	}
	if err := embedded.stores.warehouse.Insert(ctx, "events", columns, rows); err != nil {
		t.Fatal(err)
	}
	mod, err := attributionModule(embedded)
	if err != nil {
		t.Fatal(err)
	}
	from, to := at.Add(-24*time.Hour).Format(time.DateOnly), at.Add(48*time.Hour).Format(time.DateOnly)
	report := func(t *testing.T, args ...string) string {
		t.Helper()
		var f attributionFlags
		fs := newFlagSet(&f)
		if err := fs.Parse(append([]string{"--from", from, "--to", to, "--conversion", conversion}, args...)); err != nil {
			t.Fatal(err)
		}
		req, err := f.request()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := printAttribution(ctx, &out, mod, req, f.access(), f.format); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}

	tests := []struct {
		name  string
		args  []string
		lines []string
	}{
		{
			name: "linear table by source",
			args: []string{"--model", "linear", "--group-by", "source", "--raw", "--reason", "test of the command"},
			lines: []string{
				"attribution linear by source of \"" + conversion + "\"",
				"(direct)    EUR       1.0000       30.0000",
				"google      EUR       0.5000       50.0000",
				"newsletter  EUR       0.5000       50.0000",
				"total                 2.0000",
				"revenue     EUR                    130.0000",
				"raw: groups of any size are shown",
			},
		},
		{
			name:  "first touch table",
			args:  []string{"--model", "first_touch", "--group-by", "source", "--raw", "--reason", "test"},
			lines: []string{"google    EUR       1.0000       100.0000", "(direct)  EUR       1.0000       30.0000"},
		},
		{
			name:  "last touch by channel, the default",
			args:  []string{"--raw", "--reason", "test"},
			lines: []string{"Email     EUR       1.0000       100.0000"},
		},
		{
			name:  "pairs",
			args:  []string{"--group-by", "channel,source", "--raw", "--reason", "test"},
			lines: []string{"CHANNEL   SOURCE      CURRENCY  CONVERSIONS  REVENUE", "Email     newsletter  EUR       1.0000       100.0000"},
		},
		{
			name:  "csv",
			args:  []string{"--model", "linear", "--group-by", "medium", "--format", "csv", "--raw", "--reason", "test"},
			lines: []string{"medium,currency,conversions,revenue\n(direct),EUR,1,30.0000\ncpc,EUR,0.5,50.0000\nemail,EUR,0.5,50.0000\n"},
		},
		{
			// Without --raw the operator sees what an analyst sees: one
			// person per group is fewer than the policy's minimum.
			name:  "small groups fold",
			args:  []string{"--model", "linear", "--group-by", "source"},
			lines: []string{"(other)  EUR       2.0000       130.0000", "3 rows of fewer than 10 people folded into (other)"},
		},
		{
			name:  "time decay",
			args:  []string{"--model", "time_decay", "--half-life-days", "1", "--group-by", "source", "--raw", "--reason", "test"},
			lines: []string{"half life 1 days", "newsletter  EUR       0.6667       66.6667", "google      EUR       0.3333       33.3333"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := report(t, tt.args...)
			for _, l := range tt.lines {
				if !strings.Contains(out, l) {
					t.Errorf("output lacks %q:\n%s", l, out)
				}
			}
		})
	}

	t.Run("the command and the route agree", func(t *testing.T) {
		var cli attribution.Report
		if err := json.Unmarshal([]byte(report(t, "--model", "position_based", "--group-by", "source", "--format", "json")), &cli); err != nil {
			t.Fatal(err)
		}
		token, err := embedded.wired.accounts.CreateToken(ctx, "cmd-attribution-analyst@example.com", "analyst")
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/v1/analytics/attribution?from="+from+"&to="+to+"&conversion="+conversion+"&model=position_based&group_by=source", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := embedded.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		var api attribution.Report
		if err := json.NewDecoder(resp.Body).Decode(&api); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		c, _ := json.Marshal(cli)
		a, _ := json.Marshal(api)
		if !bytes.Equal(c, a) || cli.Folded != 3 || cli.Totals.Conversions != 2 {
			t.Errorf("the command and the route differ:\ncli %s\napi %s", c, a)
		}
	})
}

// TestAnalyticsUsage runs the command with bad arguments: exit status 2
// and a message naming the flag, before any store is opened.
func TestAnalyticsUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no subcommand", args: nil, want: "analytics attribution"},
		{name: "unknown subcommand", args: []string{"funnel"}, want: "analytics attribution"},
		{name: "no period", args: []string{"attribution"}, want: "from"},
		{name: "bad model", args: []string{"attribution", "--from", "2026-01-01", "--to", "2026-02-01", "--model", "u_shape"}, want: "model"},
		{name: "bad group", args: []string{"attribution", "--from", "2026-01-01", "--to", "2026-02-01", "--group-by", "email"}, want: "group-by"},
		{name: "to before from", args: []string{"attribution", "--from", "2026-02-01", "--to", "2026-01-01"}, want: "to must be after from"},
		{name: "bad format", args: []string{"attribution", "--from", "2026-01-01", "--to", "2026-02-01", "--format", "xml"}, want: "--format"},
		{name: "bad lookback", args: []string{"attribution", "--from", "2026-01-01", "--to", "2026-02-01", "--lookback-days", "-1"}, want: "lookback-days"},
		{name: "page views are no conversion", args: []string{"attribution", "--from", "2026-01-01", "--to", "2026-02-01", "--conversion", "page_view"}, want: "conversion"},
		{name: "raw without a reason", args: []string{"attribution", "--from", "2026-01-01", "--to", "2026-02-01", "--raw"}, want: "--reason"},
		{name: "three dimensions", args: []string{"attribution", "--from", "2026-01-01", "--to", "2026-02-01", "--group-by", "source,medium,channel"}, want: "group-by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := cmdEnv{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
			err := runAnalytics(context.Background(), env, tt.args)
			if !errors.Is(err, errUsage) {
				t.Fatalf("error %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// newFlagSet returns the command's flags, bound to f.
func newFlagSet(f *attributionFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("analytics attribution", flag.ContinueOnError)
	f.register(fs)
	return fs
}

// TestAnalyticsCommandEndToEnd runs `steward analytics attribution` as its
// own process on seeded demo data, as an analyst would.
func TestAnalyticsCommandEndToEnd(t *testing.T) {
	dir := t.TempDir()
	for _, args := range []string{"migrate up", "seed --users 5 --events 3000"} {
		mustRunChild(t, dir, args)
	}
	from := time.Now().UTC().AddDate(0, 0, -90).Format("2006-01-02")
	to := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	out := mustRunChild(t, dir, "analytics attribution --from "+from+" --to "+to+" --model linear --group-by channel --format json")
	var rep struct {
		Rows []struct {
			Group       string  `json:"group"`
			Conversions float64 `json:"conversions"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	if len(rep.Rows) == 0 {
		t.Fatalf("no attribution rows over seeded data: %s", out)
	}
}
