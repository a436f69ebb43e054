package attribution_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/testutil/chtest"
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
	value, props               string
	session                    string
}

var evColumns = []string{
	"event_id", "event_time", "received_at", "event_type", "event_name", "user_id", "visitor_id",
	"landing_page", "source", "medium", "campaign", "channel", "conversion_value", "currency", "props", "session_id",
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
			e.landing, e.source, e.medium, e.campaign, e.channel, v, e.currency, e.props, e.session}
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
//
// A's first page view and its purchase are both delivered twice, as
// retried deliveries are; each counts once.
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
	// The retried deliveries arrive in a later insert.
	insert(t, w, purchase("a3", "va", nil, base, "100", "EUR"),
		pv("a1", "va", base.Add(-days(5)), "google", "cpc", "brand", "Paid Search", "/pricing"))
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
	rep, err := attribution.Run(t.Context(), w, attribution.Request{From: from, To: to, Model: "first_touch", GroupBy: "source"}, attribution.RunOptions{})
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

// TestVisitsAreTouches checks that a touch is a visit: the page views of
// one session credit their source once, however many there are and
// however they were delivered (one at a time, each in a part of its own,
// one of them twice), and the visit counts from its first page view, so a
// purchase in the middle of a visit is credited to it.
func TestVisitsAreTouches(t *testing.T) {
	w := chtest.Embedded(t)
	visit := func(id, session string, at time.Time, source, medium, channel string) ev {
		e := pv(id, "vs", at, source, medium, "(not set)", channel, "/")
		e.session = session
		return e
	}
	google := base.Add(-days(3))
	for i, e := range []ev{
		visit("s1", "tab-1", google.Add(2*time.Minute), "google", "cpc", "Paid Search"),
		visit("s2", "tab-1", google, "google", "cpc", "Paid Search"),
		visit("s3", "tab-1", google.Add(time.Minute), "google", "cpc", "Paid Search"),
		visit("s3", "tab-1", google.Add(time.Minute), "google", "cpc", "Paid Search"),
		visit("s4", "tab-2", base.Add(-days(1)), "newsletter", "email", "Email"),
		visit("s5", "tab-2", base.Add(-days(1)+10*time.Minute), "newsletter", "email", "Email"),
		purchase("s6", "vs", nil, base.Add(-days(1)+5*time.Minute), "90", "EUR"),
	} {
		insert(t, w, e)
		if i == 0 {
			// Merges must not be what makes the visit count once.
			if err := w.Exec(t.Context(), "SYSTEM STOP MERGES touches"); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		model string
		want  []string
	}{
		{"linear", []string{"google EUR 0.5000 45.00", "newsletter EUR 0.5000 45.00"}},
		{"first_touch", []string{"google EUR 1.0000 90.00"}},
		{"last_touch", []string{"newsletter EUR 1.0000 90.00"}},
		{"position_based", []string{"google EUR 0.5000 45.00", "newsletter EUR 0.5000 45.00"}},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			rep, err := attribution.Run(t.Context(), w, attribution.Request{From: from, To: to, Model: tt.model, GroupBy: "source"}, attribution.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := flat(rep.Rows); !slices.Equal(got, tt.want) {
				t.Errorf("rows:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	var parts []struct {
		N uint64 `ch:"n"`
	}
	if err := w.Select(t.Context(), &parts, "SELECT count() AS n FROM system.parts WHERE database = currentDatabase() AND table = 'touches' AND active"); err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].N < 2 {
		t.Errorf("touches has %v active parts; the test needs unmerged ones", parts)
	}
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
		{
			name: "pairs of dimensions", model: "last_touch", groupBy: "source,campaign",
			want: []string{"(direct) / (direct) EUR 1.0000 30.00", "google / brand USD 1.0000 20.00", "newsletter / march EUR 1.0000 100.00"},
		},
		{
			// B's last visit is direct; the facebook visit 40 days
			// before is the last one that came from somewhere.
			name: "last touch takes a direct visit", model: "last_touch", groupBy: "source", lookback: days(60),
			want: []string{"(direct) EUR 1.0000 30.00", "google USD 1.0000 20.00", "newsletter EUR 1.0000 100.00"},
		},
		{
			name: "last non-direct skips it", model: "last_non_direct", groupBy: "source", lookback: days(60),
			want: []string{"facebook EUR 1.0000 30.00", "google USD 1.0000 20.00", "newsletter EUR 1.0000 100.00"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := attribution.Request{From: from, To: to, Model: tt.model, GroupBy: tt.groupBy, Conversion: tt.conversion, Lookback: tt.lookback}
			rep, err := attribution.Run(t.Context(), w, req, attribution.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := flat(rep.Rows); !slices.Equal(got, tt.want) {
				t.Errorf("rows:\n got %q\nwant %q", got, tt.want)
			}
			// A server hands the rows over through Select, not as
			// RowBinary: the same report must come out.
			viaSelect, err := attribution.Run(t.Context(), selectOnly{w}, req, attribution.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := flat(viaSelect.Rows); !slices.Equal(got, tt.want) {
				t.Errorf("rows read through Select:\n got %q\nwant %q", got, tt.want)
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
		rep, err := attribution.Run(t.Context(), w, attribution.Request{From: from, To: to, Model: "linear", GroupBy: "source"}, attribution.RunOptions{})
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

// history holds hand-made histories whose credit the tests below work out
// by hand. Each scenario has a conversion of its own name (a custom
// conversion, stored as a purchase event named so), so a report of one
// scenario sees nothing of the others.
//
//   - four: google 5 days before a 100 EUR conversion, newsletter 3 days
//     before, facebook 2 days before, a direct visit 1 day before.
//   - two: google 2 days and newsletter 1 day before 10 EUR.
//   - one: google 1 day before 8 EUR.
//   - shared: google 10 days and newsletter 4 days before 60 EUR, and a
//     30 EUR conversion 5 days before it, which only the google visit
//     precedes: touches are credited by every conversion whose window
//     holds them.
//   - edge: a visit exactly 30 days before a 7 EUR conversion, one at its
//     very millisecond, and one a millisecond after it, which cannot be
//     credited.
func history(t *testing.T) warehouse.Warehouse {
	t.Helper()
	w := chtest.Embedded(t)
	conv := func(id, visitor, name string, at time.Time, value string) ev {
		return ev{id: id, typ: "purchase", name: name, visitor: visitor, at: at, value: value, currency: "EUR"}
	}
	insert(t, w,
		pv("f1", "v4", base.Add(-days(5)), "google", "cpc", "brand", "Paid Search", "/"),
		pv("f2", "v4", base.Add(-days(3)), "newsletter", "email", "march", "Email", "/"),
		pv("f3", "v4", base.Add(-days(2)), "facebook", "paid_social", "winter", "Paid Social", "/"),
		pv("f4", "v4", base.Add(-days(1)), "(direct)", "(none)", "(not set)", "Direct", "/"),
		conv("f5", "v4", "four", base, "100"),
		pv("t1", "v2", base.Add(-days(2)), "google", "cpc", "brand", "Paid Search", "/"),
		pv("t2", "v2", base.Add(-days(1)), "newsletter", "email", "march", "Email", "/"),
		conv("t3", "v2", "two", base, "10"),
		pv("o1", "v1", base.Add(-days(1)), "google", "cpc", "brand", "Paid Search", "/"),
		conv("o2", "v1", "one", base, "8"),
		pv("s1", "vs", base.Add(-days(10)), "google", "cpc", "brand", "Paid Search", "/"),
		conv("s2", "vs", "shared", base.Add(-days(5)), "30"),
		pv("s3", "vs", base.Add(-days(4)), "newsletter", "email", "march", "Email", "/"),
		conv("s4", "vs", "shared", base, "60"),
		pv("e1", "ve", base.Add(-days(30)), "google", "cpc", "brand", "Paid Search", "/"),
		pv("e2", "ve", base, "newsletter", "email", "march", "Email", "/"),
		pv("e3", "ve", base.Add(time.Millisecond), "facebook", "paid_social", "winter", "Paid Social", "/"),
		conv("e4", "ve", "edge", base, "7"),
	)
	return w
}

// selectOnly hides the backend's RowBinary reader, so that a report is
// read through Select, as from a server.
type selectOnly struct{ warehouse.Warehouse }

// TestModels checks every model's credit on hand-computed histories. Time
// decay uses a half life of one day, so that a touch 1, 2, 3 or 5 days
// old weighs 1/2, 1/4, 1/8 or 1/32.
func TestModels(t *testing.T) {
	w := history(t)
	tests := []struct {
		name, model, conversion string
		lookback                time.Duration
		want                    []string
	}{
		{name: "first touch", model: "first_touch", conversion: "four", want: []string{"google EUR 1.0000 100.00"}},
		{name: "last touch", model: "last_touch", conversion: "four", want: []string{"(direct) EUR 1.0000 100.00"}},
		{name: "last non-direct", model: "last_non_direct", conversion: "four", want: []string{"facebook EUR 1.0000 100.00"}},
		{name: "linear", model: "linear", conversion: "four", want: []string{
			"(direct) EUR 0.2500 25.00", "facebook EUR 0.2500 25.00", "google EUR 0.2500 25.00", "newsletter EUR 0.2500 25.00"}},
		{name: "position based, four touches", model: "position_based", conversion: "four", want: []string{
			"(direct) EUR 0.4000 40.00", "google EUR 0.4000 40.00", "facebook EUR 0.1000 10.00", "newsletter EUR 0.1000 10.00"}},
		{name: "position based, two touches", model: "position_based", conversion: "two", want: []string{
			"google EUR 0.5000 5.00", "newsletter EUR 0.5000 5.00"}},
		{name: "position based, one touch", model: "position_based", conversion: "one", want: []string{"google EUR 1.0000 8.00"}},
		// Weights 1/32, 1/8, 1/4, 1/2 sum to 29/32: shares 1/29, 4/29,
		// 8/29 and 16/29 of one conversion and of 100 EUR.
		{name: "time decay", model: "time_decay", conversion: "four", want: []string{
			"(direct) EUR 0.5517 55.17", "facebook EUR 0.2759 27.59", "newsletter EUR 0.1379 13.79", "google EUR 0.0345 3.45"}},
		{name: "time decay, two touches", model: "time_decay", conversion: "two", want: []string{
			"newsletter EUR 0.6667 6.67", "google EUR 0.3333 3.33"}},
		{name: "linear, shared touches", model: "linear", conversion: "shared", want: []string{
			"google EUR 1.5000 60.00", "newsletter EUR 0.5000 30.00"}},
		// The 60 EUR conversion weighs google (10 days) 1/1024 against
		// newsletter's 1/16: 1/65 and 64/65; the 30 EUR one is google's.
		{name: "time decay, shared touches", model: "time_decay", conversion: "shared", want: []string{
			"google EUR 1.0154 30.92", "newsletter EUR 0.9846 59.08"}},
		{name: "a shorter lookback drops the older touch", model: "linear", conversion: "shared", lookback: days(7), want: []string{
			"google EUR 1.0000 30.00", "newsletter EUR 1.0000 60.00"}},
		// Each window holds one touch, the second starting past the
		// first touch: what a window leaves out earns nothing, under
		// every model that sweeps the touches.
		{name: "time decay, a shorter lookback drops the older touch", model: "time_decay", conversion: "shared", lookback: days(7), want: []string{
			"google EUR 1.0000 30.00", "newsletter EUR 1.0000 60.00"}},
		{name: "position based, a shorter lookback drops the older touch", model: "position_based", conversion: "shared", lookback: days(7), want: []string{
			"google EUR 1.0000 30.00", "newsletter EUR 1.0000 60.00"}},
		{name: "the window's edges count, what follows does not", model: "linear", conversion: "edge", want: []string{
			"google EUR 0.5000 3.50", "newsletter EUR 0.5000 3.50"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := attribution.Request{From: from, To: to, Model: tt.model, GroupBy: "source",
				Conversion: tt.conversion, Lookback: tt.lookback, HalfLife: days(1)}
			rep, err := attribution.Run(t.Context(), w, req, attribution.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := flat(rep.Rows); !slices.Equal(got, tt.want) {
				t.Errorf("rows:\n got %q\nwant %q", got, tt.want)
			}
			// A server hands the rows over through Select, not as
			// RowBinary: the same report must come out.
			viaSelect, err := attribution.Run(t.Context(), selectOnly{w}, req, attribution.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := flat(viaSelect.Rows); !slices.Equal(got, tt.want) {
				t.Errorf("rows read through Select:\n got %q\nwant %q", got, tt.want)
			}
			var sum float64
			for _, r := range rep.Rows {
				sum += r.Conversions
			}
			if math.Abs(sum-rep.Totals.Conversions) > 1e-6 {
				t.Errorf("rows credit %v conversions, totals say %v", sum, rep.Totals.Conversions)
			}
		})
	}
}

// TestIdentityProbes are the cases an audit of attribution checks first:
// a purchase by someone without touches is direct, never someone else's;
// a shared browser does not hand one person's visits to the other; and
// thousands of events without any id pair with nothing.
func TestIdentityProbes(t *testing.T) {
	w := chtest.Embedded(t)
	alice, bob, carol := "user-alice", "user-bob", "user-carol"
	insert(t, w,
		// Carol buys signed in and never visited: direct.
		purchase("c1", "v-carol", &carol, base, "40", "EUR"),
		// Alice comes from her campaign on the family browser and signs
		// in; Bob signs in on it later and buys. The campaign visit is
		// Alice's.
		pv("a1", "v-family", base.Add(-days(3)), "alice-ads", "cpc", "alice-campaign", "Paid Search", "/"),
		purchase("b1", "v-family", &bob, base, "70", "EUR"),
		// Alice buys on her phone: the campaign is hers.
		purchase("a2", "v-phone", &alice, base.Add(time.Hour), "15", "EUR"),
	)
	links := [][]any{
		{"l1", "v-family", alice, base.Add(-days(2))},
		{"l2", "v-family", bob, base.Add(-days(1))},
	}
	if err := w.Insert(t.Context(), "visitor_links", []string{"link_id", "visitor_id", "user_id", "linked_at"}, links); err != nil {
		t.Fatal(err)
	}
	// Twenty thousand page views and two purchases without a visitor id
	// or an account: spam from a paid source, which must not reach
	// anyone's purchase, nor each other's.
	if err := w.Exec(t.Context(), `INSERT INTO events (event_id, event_time, received_at, event_type, event_name, visitor_id, source, medium, campaign, channel)
		SELECT concat('n', toString(number)), {at:DateTime64(3)} - toIntervalSecond(number), {at:DateTime64(3)}, 'page_view', 'page_view', '',
		       'spam', 'cpc', 'spam', 'Paid Search'
		FROM numbers(20000)`, warehouse.Named("at", base)); err != nil {
		t.Fatal(err)
	}
	insert(t, w, purchase("n1", "", nil, base, "5", "EUR"), purchase("n2", "", nil, base.Add(time.Minute), "6", "EUR"))

	for _, model := range attribution.Models() {
		t.Run(model, func(t *testing.T) {
			rep, err := attribution.Run(t.Context(), w, attribution.Request{From: from, To: to, Model: model, GroupBy: "campaign"}, attribution.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"(direct) EUR 4.0000 121.00", "alice-campaign EUR 1.0000 15.00"}
			if got := flat(rep.Rows); !slices.Equal(got, want) {
				t.Errorf("rows:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestRefunds nets billing's refunds out of the purchases that name their
// order, in the order's currency only, never below zero.
func TestRefunds(t *testing.T) {
	w := chtest.Embedded(t)
	withOrder := func(id, visitor, order, value string) ev {
		e := purchase(id, visitor, nil, base, value, "EUR")
		e.props = `{"order_id":"` + order + `"}`
		return e
	}
	insert(t, w,
		pv("p1", "vr1", base.Add(-days(1)), "google", "cpc", "brand", "Paid Search", "/"),
		withOrder("r1", "vr1", "ord-1", "100"),
		pv("p2", "vr2", base.Add(-days(1)), "newsletter", "email", "march", "Email", "/"),
		withOrder("r2", "vr2", "ord-2", "50"),
		withOrder("r3", "vr3", "ord-3", "20"),
		purchase("r4", "vr4", nil, base, "9", "EUR"),
	)
	refunds := []attribution.Refund{
		{OrderID: "ord-1", Amount: decimal.RequireFromString("30"), Currency: "eur"},
		// More than was paid: the purchase is worth nothing, not less.
		{OrderID: "ord-2", Amount: decimal.RequireFromString("80"), Currency: "EUR"},
		// Another currency than the purchase's: not netted.
		{OrderID: "ord-3", Amount: decimal.RequireFromString("5"), Currency: "USD"},
		{OrderID: "unknown", Amount: decimal.RequireFromString("1000"), Currency: "EUR"},
	}
	for _, via := range []struct {
		name string
		w    warehouse.Warehouse
	}{{"RowBinary", w}, {"Select", selectOnly{w}}} {
		rep, err := attribution.Run(t.Context(), via.w, attribution.Request{From: from, To: to, Model: "last_touch", GroupBy: "source"},
			attribution.RunOptions{Refunds: refunds})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"(direct) EUR 2.0000 29.00", "google EUR 1.0000 70.00", "newsletter EUR 1.0000 0.00"}
		if got := flat(rep.Rows); !slices.Equal(got, want) {
			t.Errorf("%s: rows:\n got %q\nwant %q", via.name, got, want)
		}
		if got := totals(rep.Totals.Refunded); !slices.Equal(got, []string{"EUR 80.00"}) {
			t.Errorf("%s: refunded %q, want EUR 80.00 (30 and the 50 paid)", via.name, got)
		}
		if got := totals(rep.Totals.Revenue); !slices.Equal(got, []string{"EUR 99.00"}) {
			t.Errorf("%s: revenue %q", via.name, got)
		}
	}
}

func totals(list []attribution.CurrencyTotal) []string {
	out := []string{}
	for _, c := range list {
		out = append(out, c.Currency+" "+c.Revenue.StringFixed(2))
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		p       attribution.Params
		maxSpan time.Duration
		fields  []string
	}{
		{name: "dates", p: attribution.Params{From: "2026-03-01", To: "2026-04-01"}},
		{name: "RFC 3339", p: attribution.Params{From: "2026-03-01T10:00:00Z", To: "2026-03-01T11:00:00+02:00"}, fields: []string{"to"}},
		{name: "missing from", p: attribution.Params{To: "2026-04-01"}, fields: []string{"from"}},
		{name: "bad to", p: attribution.Params{From: "2026-03-01", To: "April"}, fields: []string{"to"}},
		{name: "to before from", p: attribution.Params{From: "2026-04-01", To: "2026-03-01"}, fields: []string{"to"}},
		{name: "span too long", p: attribution.Params{From: "2025-01-01", To: "2026-03-01"}, fields: []string{"to"}},
		{name: "span over a configured maximum", p: attribution.Params{From: "2026-01-01", To: "2026-03-01"}, maxSpan: days(31), fields: []string{"to"}},
		{name: "every model", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", Model: "position_based"}},
		{name: "unknown model", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", Model: "u_shape"}, fields: []string{"model"}},
		{name: "unknown group", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", GroupBy: "country"}, fields: []string{"group_by"}},
		{name: "a pair of dimensions", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", GroupBy: "channel, campaign"}},
		{name: "the same dimension twice", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", GroupBy: "channel,channel"}, fields: []string{"group_by"}},
		{name: "three dimensions", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", GroupBy: "source,medium,campaign"}, fields: []string{"group_by"}},
		{name: "page views are no conversion", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", Conversion: "page_view"}, fields: []string{"conversion"}},
		{name: "a custom conversion", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", Conversion: "trial_started"}},
		{name: "long conversion", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", Conversion: strings.Repeat("x", 101)}, fields: []string{"conversion"}},
		{name: "lookback in days", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", LookbackDays: "7.5"}},
		{name: "bad lookback", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", LookbackDays: "a week"}, fields: []string{"lookback_days"}},
		{name: "lookback too long", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", LookbackDays: "400"}, fields: []string{"lookback_days"}},
		{name: "half life", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", Model: "time_decay", HalfLifeDays: "3"}},
		{name: "half life too short for the period", p: attribution.Params{From: "2025-03-01", To: "2026-04-01", Model: "time_decay", HalfLifeDays: "0.05"}, fields: []string{"half_life_days"}},
		{name: "two bad fields", p: attribution.Params{From: "2026-03-01", To: "2026-04-01", Model: "x", GroupBy: "y"}, fields: []string{"model", "group_by"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := attribution.Parse(tt.p, tt.maxSpan)
			if got := invalidFields(t, err); !slices.Equal(got, tt.fields) {
				t.Errorf("invalid fields %q, want %q (err %v)", got, tt.fields, err)
			}
		})
	}
}

func invalidFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var verr *errs.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("not a validation error: %v", err)
	}
	var got []string
	for _, f := range verr.Errors {
		got = append(got, f.Field)
	}
	return got
}

// TestConversionsAreConversionEvents refuses, as a conversion, every event
// type of the consent map that is not a conversion, and accepts the two
// that are.
func TestConversionsAreConversionEvents(t *testing.T) {
	raw, err := os.ReadFile("../../policies/data/consent_map.json")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		EventTypes map[string]json.RawMessage `json:"event_types"`
	}
	if err := json.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	for typ := range cm.EventTypes {
		_, err := attribution.Parse(attribution.Params{From: "2026-03-01", To: "2026-04-01", Conversion: typ}, 0)
		conversion := typ == attribution.ConversionSignup || typ == attribution.ConversionPurchase
		if got := invalidFields(t, err); conversion != (len(got) == 0) || (!conversion && !slices.Equal(got, []string{"conversion"})) {
			t.Errorf("conversion=%s: invalid fields %q", typ, got)
		}
	}
}

func TestFormats(t *testing.T) {
	rep := attribution.Report{
		Request: attribution.Request{Model: "linear", GroupBy: "channel,campaign", Dimensions: []string{"channel", "campaign"}, Conversion: "purchase"},
		Rows: []attribution.Row{
			{Group: "Email / march", Groups: []string{"Email", "march"}, Conversions: 1.5, Revenue: decimal.RequireFromString("12.5"), Currency: "EUR"},
			{Group: "(other) / (other)", Groups: []string{"(other)", "(other)"}, Conversions: 2, Revenue: decimal.RequireFromString("3"), Currency: "EUR"},
		},
		Totals:       attribution.Totals{Conversions: 3.5, Revenue: []attribution.CurrencyTotal{{Currency: "EUR", Revenue: decimal.RequireFromString("15.5")}}},
		MinGroupSize: 10, Folded: 4,
	}
	var csvOut, table strings.Builder
	if err := attribution.WriteCSV(&csvOut, rep); err != nil {
		t.Fatal(err)
	}
	want := "channel,campaign,currency,conversions,revenue\nEmail,march,EUR,1.5,12.5000\n(other),(other),EUR,2,3.0000\n"
	if csvOut.String() != want {
		t.Errorf("csv:\n%s\nwant:\n%s", csvOut.String(), want)
	}
	if err := attribution.WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"CHANNEL  CAMPAIGN  CURRENCY  CONVERSIONS  REVENUE", "Email    march     EUR       1.5000       12.5000",
		"revenue            EUR                    15.5000", "4 rows of fewer than 10 people folded into (other)"} {
		if !strings.Contains(table.String(), line) {
			t.Errorf("table lacks %q:\n%s", line, table.String())
		}
	}
}
