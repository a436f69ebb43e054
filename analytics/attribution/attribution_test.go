package attribution_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/web"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// base is the moment of the crafted conversions, noon ten days ago: the
// events table drops events older than its retention period, so fixed
// dates would age out of it. from and to bound the reported period.
var (
	base = time.Now().UTC().Truncate(24 * time.Hour).Add(-10*24*time.Hour + 12*time.Hour)
	from = base.Add(-9 * 24 * time.Hour).Truncate(24 * time.Hour)
	to   = from.Add(31 * 24 * time.Hour)
)

// ev is an event with the columns attribution reads.
type ev struct {
	id, typ, name, visitor     string
	user                       *string
	at                         time.Time
	source, medium, campaign   string
	channel, landing, currency string
	value                      string
}

var evColumns = []string{
	"event_id", "event_time", "received_at", "event_type", "event_name", "user_id", "visitor_id",
	"landing_page", "source", "medium", "campaign", "channel", "conversion_value", "currency",
}

func insert(t *testing.T, w warehouse.Warehouse, events ...ev) {
	t.Helper()
	rows := make([][]any, len(events))
	for i, e := range events {
		name := e.name
		if name == "" {
			name = e.typ
		}
		v := decimal.Zero
		if e.value != "" {
			v = decimal.RequireFromString(e.value)
		}
		rows[i] = []any{e.id, e.at, e.at, e.typ, name, e.user, e.visitor,
			e.landing, e.source, e.medium, e.campaign, e.channel, v, e.currency}
	}
	if err := w.Insert(context.Background(), "events", evColumns, rows); err != nil {
		t.Fatalf("insert events: %v", err)
	}
}

func pv(id, visitor string, at time.Time, source, medium, campaign, channel, landing string) ev {
	return ev{id: id, typ: "page_view", visitor: visitor, at: at, source: source, medium: medium,
		campaign: campaign, channel: channel, landing: landing}
}

func purchase(id, visitor string, user *string, at time.Time, value, currency string) ev {
	return ev{id: id, typ: "purchase", visitor: visitor, user: user, at: at, value: value, currency: currency}
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// crafted holds visitors whose conversions the three models credit
// differently:
//
//   - A: google/cpc, then newsletter/email, then a purchase of 100 EUR. The
//     purchase is sent twice with the same event id, as a retried delivery
//     is; it counts once.
//   - B: a facebook visit 40 days before a 30 EUR purchase (outside the 30
//     day lookback) and a direct visit the day before: "(direct)".
//   - C: a signed-in account visits from google on one device and buys for
//     20 USD on another: credited through the account.
//   - D: a signup after a spring campaign visit, and a purchase before the
//     period that must not count.
func crafted(t *testing.T) warehouse.Warehouse {
	t.Helper()
	w := chtest.Embedded(t)
	u := "user-c"
	insert(t, w,
		pv("a1", "va", base.Add(-days(5)), "google", "cpc", "brand", "Paid Search", "/pricing"),
		pv("a2", "va", base.Add(-days(2)), "newsletter", "email", "march", "Email", "/blog/launch"),
		purchase("a3", "va", nil, base, "100", "EUR"),
		pv("b1", "vb", base.Add(-days(40)), "facebook", "paid_social", "winter", "Paid Social", "/"),
		pv("b2", "vb", base.Add(-days(1)), "(direct)", "(none)", "(not set)", "Direct", "/"),
		purchase("b3", "vb", nil, base, "30", "EUR"),
		ev{id: "c1", typ: "page_view", visitor: "vc1", user: &u, at: base.Add(-days(3)), source: "google",
			medium: "cpc", campaign: "brand", channel: "Paid Search", landing: "/pricing"},
		purchase("c2", "vc2", &u, base, "20", "USD"),
		pv("d1", "vd", base.Add(-days(1)), "partner", "referral", "spring", "Referral", "/spring"),
		ev{id: "d2", typ: "signup", visitor: "vd", at: base},
		pv("d3", "vd", from.Add(-days(8)), "google", "cpc", "brand", "Paid Search", "/"),
		purchase("d4", "vd", nil, from.Add(-days(5)), "999", "EUR"),
	)
	// The retried delivery of A's purchase arrives in a later insert.
	insert(t, w, purchase("a3", "va", nil, base, "100", "EUR"))
	return w
}

// TestRunFollowsTheIdentityRule holds attribution to the rule that
// decides exports and erasures: a browser's anonymous page views belong to
// whoever next signs in on it, and only their conversions are credited to
// them.
//
//   - E browses anonymously from a podcast, signs in, and buys later from
//     another device: the podcast gets the purchase.
//   - X and Y share a browser. X browses from a video site and signs in;
//     after X leaves, Y browses from a billboard's link and signs in, then
//     buys: the billboard gets it, X's video visit does not.
//   - Z's browser is never signed in to: its anonymous purchase is credited
//     to the same browser's earlier visit.
//   - An event without any id pairs with nothing.
func TestRunFollowsTheIdentityRule(t *testing.T) {
	w := chtest.Embedded(t)
	ue, uy := "user-e", "user-y"
	insert(t, w,
		pv("e1", "ve", base.Add(-days(3)), "podcast", "audio", "spring", "Audio", "/"),
		purchase("e2", "ve-phone", &ue, base, "40", "EUR"),
		pv("x1", "vf", base.Add(-days(4)), "video", "social", "spring", "Social", "/"),
		pv("y1", "vf", base.Add(-days(2)), "billboard", "offline", "city", "Offline", "/"),
		purchase("y2", "vf", &uy, base, "50", "EUR"),
		pv("z1", "vz", base.Add(-days(1)), "forum", "referral", "talk", "Referral", "/"),
		purchase("z2", "vz", nil, base, "10", "EUR"),
		pv("n1", "", base.Add(-days(1)), "spam", "referral", "x", "Referral", "/"),
		purchase("n2", "", nil, base, "5", "EUR"),
	)
	links := [][]any{
		{"l1", "ve", "user-e", base.Add(-days(3) + time.Hour)},
		{"l2", "vf", "user-x", base.Add(-days(3))},
		{"l3", "vf", "user-y", base.Add(-days(1))},
	}
	if err := w.Insert(t.Context(), "visitor_links", []string{"link_id", "visitor_id", "user_id", "linked_at"}, links); err != nil {
		t.Fatal(err)
	}
	rep, err := attribution.Run(t.Context(), w, attribution.Request{From: from, To: to, Model: "first_touch", GroupBy: "source"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"(direct) EUR 1.0000 5.00", "billboard EUR 1.0000 50.00", "forum EUR 1.0000 10.00", "podcast EUR 1.0000 40.00"}
	if got := flat(rep.Rows); !slices.Equal(got, want) {
		t.Errorf("rows:\n got %q\nwant %q", got, want)
	}
}

// flat renders rows as "group currency conversions revenue" lines, in
// report order, so a test states the whole expected report.
func flat(rows []attribution.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprintf("%s %s %.4f %s", r.Group, r.Currency, r.Conversions, r.Revenue.StringFixed(2))
	}
	return out
}

func TestRun(t *testing.T) {
	w := crafted(t)
	tests := []struct {
		name       string
		model      string
		groupBy    string
		conversion string
		lookback   time.Duration
		want       []string
	}{
		{
			name: "first touch credits the earliest touch", model: "first_touch", groupBy: "source",
			want: []string{"(direct) EUR 1.0000 30.00", "google EUR 1.0000 100.00", "google USD 1.0000 20.00"},
		},
		{
			name: "last touch credits the latest touch", model: "last_touch", groupBy: "source",
			want: []string{"(direct) EUR 1.0000 30.00", "google USD 1.0000 20.00", "newsletter EUR 1.0000 100.00"},
		},
		{
			name: "linear splits a conversion between its touches", model: "linear", groupBy: "source",
			want: []string{"(direct) EUR 1.0000 30.00", "google USD 1.0000 20.00", "google EUR 0.5000 50.00", "newsletter EUR 0.5000 50.00"},
		},
		{
			name: "defaults are last touch by channel", model: "", groupBy: "",
			want: []string{"(direct) EUR 1.0000 30.00", "Email EUR 1.0000 100.00", "Paid Search USD 1.0000 20.00"},
		},
		{
			// B's direct visit has no source but a known landing page,
			// so by landing page it is a touch.
			name: "landing page", model: "first_touch", groupBy: "landing_page",
			want: []string{"/ EUR 1.0000 30.00", "/pricing EUR 1.0000 100.00", "/pricing USD 1.0000 20.00"},
		},
		{
			name: "medium, linear", model: "linear", groupBy: "medium",
			want: []string{"(direct) EUR 1.0000 30.00", "cpc USD 1.0000 20.00", "cpc EUR 0.5000 50.00", "email EUR 0.5000 50.00"},
		},
		{
			name: "a longer lookback reaches the old touch", model: "first_touch", groupBy: "source", lookback: days(60),
			want: []string{"facebook EUR 1.0000 30.00", "google EUR 1.0000 100.00", "google USD 1.0000 20.00"},
		},
		{
			name: "another conversion by event type", model: "last_touch", groupBy: "campaign", conversion: "signup",
			want: []string{"spring  1.0000 0.00"},
		},
		{
			name: "a conversion nobody made", model: "linear", groupBy: "source", conversion: "refund",
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := attribution.Request{From: from, To: to, Model: tt.model, GroupBy: tt.groupBy, Conversion: tt.conversion, Lookback: tt.lookback}
			rep, err := attribution.Run(t.Context(), w, req)
			if err != nil {
				t.Fatal(err)
			}
			if got := flat(rep.Rows); !slices.Equal(got, tt.want) {
				t.Errorf("rows:\n got %q\nwant %q", got, tt.want)
			}
			var total float64
			for _, r := range rep.Rows {
				total += r.Conversions
			}
			if rep.Totals.Conversions != total {
				t.Errorf("total conversions %v, rows sum to %v", rep.Totals.Conversions, total)
			}
		})
	}
	t.Run("totals keep currencies apart", func(t *testing.T) {
		rep, err := attribution.Run(t.Context(), w, attribution.Request{From: from, To: to, Model: "linear", GroupBy: "source"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range rep.Totals.Revenue {
			got = append(got, c.Currency+" "+c.Revenue.StringFixed(2))
		}
		if want := []string{"EUR 130.00", "USD 20.00"}; !slices.Equal(got, want) || rep.Totals.Conversions != 3 {
			t.Errorf("totals %v %q, want 3 %q", rep.Totals.Conversions, got, want)
		}
		if rep.Request.Model != "linear" || rep.Request.GroupBy != "source" || rep.Request.Conversion != "purchase" || rep.Request.LookbackDays != 30 {
			t.Errorf("request echo %+v", rep.Request)
		}
	})
}

func TestParse(t *testing.T) {
	tests := []struct {
		name                                 string
		from, to, model, groupBy, conversion string
		fields                               []string
	}{
		{name: "dates", from: "2026-03-01", to: "2026-04-01"},
		{name: "RFC 3339", from: "2026-03-01T10:00:00Z", to: "2026-03-01T11:00:00+02:00", fields: []string{"to"}},
		{name: "missing from", to: "2026-04-01", fields: []string{"from"}},
		{name: "bad to", from: "2026-03-01", to: "April", fields: []string{"to"}},
		{name: "to before from", from: "2026-04-01", to: "2026-03-01", fields: []string{"to"}},
		{name: "span too long", from: "2025-01-01", to: "2026-03-01", fields: []string{"to"}},
		{name: "unknown model", from: "2026-03-01", to: "2026-04-01", model: "time_decay", fields: []string{"model"}},
		{name: "unknown group", from: "2026-03-01", to: "2026-04-01", groupBy: "country", fields: []string{"group_by"}},
		{name: "long conversion", from: "2026-03-01", to: "2026-04-01", conversion: strings.Repeat("x", 101), fields: []string{"conversion"}},
		{name: "two bad fields", from: "2026-03-01", to: "2026-04-01", model: "x", groupBy: "y", fields: []string{"model", "group_by"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := attribution.Parse(tt.from, tt.to, tt.model, tt.groupBy, tt.conversion)
			var got []string
			if err != nil {
				var verr *errs.ValidationError
				if !errors.As(err, &verr) {
					t.Fatalf("not a validation error: %v", err)
				}
				for _, f := range verr.Errors {
					got = append(got, f.Field)
				}
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("invalid fields %q, want %q (err %v)", got, tt.fields, err)
			}
		})
	}
}

// TestRoute calls GET /v1/analytics/attribution as each role: the roles
// the access policy lets read attribution get the report, the others are
// refused, and bad parameters are named in the problem document.
func TestRoute(t *testing.T) {
	w := crafted(t)
	mod, err := attribution.New(attribution.Options{Warehouse: w, Guard: authtest.Guard(t), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), OpenAPI: doc})
	app.Use(authz.Middleware(authtest.HeaderAuth{}))
	mod.Mount(app, doc)
	if missing := web.UndocumentedRoutes(app, doc); len(missing) > 0 {
		t.Errorf("undocumented routes %v", missing)
	}

	period := "from=" + from.Format(time.DateOnly) + "&to=" + to.Format(time.DateOnly)
	good := "/v1/analytics/attribution?" + period + "&model=linear&group_by=source"
	tests := []struct {
		name   string
		who    string
		url    string
		status int
		fields []string
	}{
		{name: "analyst", who: "a1:analyst", url: good, status: 200},
		{name: "dpo", who: "d1:dpo", url: good, status: 200},
		{name: "admin", who: "x1:admin", url: good, status: 200},
		{name: "analyst by landing page", who: "a1:analyst", url: "/v1/analytics/attribution?" + period + "&group_by=landing_page", status: 200},
		{name: "analyst by channel", who: "a1:analyst", url: "/v1/analytics/attribution?" + period, status: 200},
		{name: "user", who: "u1:user", url: good, status: 403},
		{name: "support", who: "s1:support", url: good, status: 403},
		{name: "anonymous", url: good, status: 401},
		{name: "bad model", who: "a1:analyst", url: "/v1/analytics/attribution?" + period + "&model=u_shape", status: 400, fields: []string{"model"}},
		{name: "bad group", who: "a1:analyst", url: "/v1/analytics/attribution?" + period + "&group_by=email", status: 400, fields: []string{"group_by"}},
		{name: "no from", who: "a1:analyst", url: "/v1/analytics/attribution?to=2026-04-01", status: 400, fields: []string{"from"}},
		{name: "to before from", who: "a1:analyst", url: "/v1/analytics/attribution?from=2026-04-01&to=2026-03-01", status: 400, fields: []string{"to"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.url, nil)
			if tt.who != "" {
				req.Header.Set(authtest.Header, tt.who)
			}
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			switch {
			case tt.status == 200:
				var rep attribution.Report
				if err := json.Unmarshal(body, &rep); err != nil {
					t.Fatal(err)
				}
				if len(rep.Rows) == 0 || rep.Totals.Conversions != 3 {
					t.Errorf("report %s", body)
				}
			case tt.status >= 400:
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
					t.Errorf("content type %q", ct)
				}
				var prob struct {
					Errors []errs.FieldError `json:"errors"`
				}
				if err := json.Unmarshal(body, &prob); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, f := range prob.Errors {
					got = append(got, f.Field)
				}
				if !slices.Equal(got, tt.fields) {
					t.Errorf("fields %q, want %q: %s", got, tt.fields, body)
				}
			}
		})
	}
	t.Run("the linear report over HTTP", func(t *testing.T) {
		req := httptest.NewRequest("GET", good, nil)
		req.Header.Set(authtest.Header, "a1:analyst")
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		var rep attribution.Report
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		want := []string{"(direct) EUR 1.0000 30.00", "google USD 1.0000 20.00", "google EUR 0.5000 50.00", "newsletter EUR 0.5000 50.00"}
		if got := flat(rep.Rows); !slices.Equal(got, want) {
			t.Errorf("rows %q, want %q", got, want)
		}
		if !rep.Request.From.Equal(from) || rep.Request.Model != "linear" {
			t.Errorf("request echo %+v", rep.Request)
		}
	})
}
