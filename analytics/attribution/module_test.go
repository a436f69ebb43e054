package attribution_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/web"
)

// serve mounts a module built with cfg and deps on a test app that
// authenticates by authtest.Header.
func serve(t *testing.T, cfg attribution.Config, deps attribution.Deps) *fiberApp {
	t.Helper()
	if deps.Guard == nil {
		deps.Guard = authtest.Guard(t)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	mod, err := attribution.New(cfg, deps)
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
	return &fiberApp{t: t, test: app.Test}
}

type fiberApp struct {
	t    *testing.T
	test func(*http.Request, ...int) (*http.Response, error)
}

// get calls url as who ("" for nobody) and returns the status, the
// headers and the body.
func (a *fiberApp) get(who, url string) (int, http.Header, []byte) {
	a.t.Helper()
	req := httptest.NewRequest("GET", url, nil)
	if who != "" {
		req.Header.Set(authtest.Header, who)
	}
	resp, err := a.test(req, -1)
	if err != nil {
		a.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

func route(from, to time.Time, rest string) string {
	return "/v1/analytics/attribution?from=" + from.Format(time.DateOnly) + "&to=" + to.Format(time.DateOnly) + rest
}

// TestRoute calls GET /v1/analytics/attribution as each role: the roles
// the access policy lets read attribution get the report, the others are
// refused, and bad parameters are named in the problem document.
func TestRoute(t *testing.T) {
	app := serve(t, attribution.Config{MinGroupSize: 1, MaxSpan: days(45)}, attribution.Deps{Warehouse: crafted(t)})
	good := route(from, to, "&model=linear&group_by=source")
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
		{name: "analyst by landing page", who: "a1:analyst", url: route(from, to, "&group_by=landing_page"), status: 200},
		{name: "analyst by channel and campaign", who: "a1:analyst", url: route(from, to, "&group_by=channel,campaign"), status: 200},
		{name: "every model", who: "a1:analyst", url: route(from, to, "&model=time_decay&half_life_days=3&lookback_days=20"), status: 200},
		{name: "user", who: "u1:user", url: good, status: 403},
		{name: "support", who: "s1:support", url: good, status: 403},
		{name: "anonymous", url: good, status: 401},
		{name: "bad model", who: "a1:analyst", url: route(from, to, "&model=u_shape"), status: 400, fields: []string{"model"}},
		{name: "bad group", who: "a1:analyst", url: route(from, to, "&group_by=email"), status: 400, fields: []string{"group_by"}},
		{name: "page views are no conversion", who: "a1:analyst", url: route(from, to, "&conversion=page_view"), status: 400, fields: []string{"conversion"}},
		{name: "bad lookback", who: "a1:analyst", url: route(from, to, "&lookback_days=0"), status: 400, fields: []string{"lookback_days"}},
		{name: "no from", who: "a1:analyst", url: "/v1/analytics/attribution?to=2026-04-01", status: 400, fields: []string{"from"}},
		{name: "to before from", who: "a1:analyst", url: "/v1/analytics/attribution?from=2026-04-01&to=2026-03-01", status: 400, fields: []string{"to"}},
		{name: "longer than the configured span", who: "a1:analyst", url: route(from, from.Add(days(46)), ""), status: 400, fields: []string{"to"}},
		{name: "bad format", who: "a1:analyst", url: good + "&format=xml", status: 400, fields: []string{"format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := app.get(tt.who, tt.url)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			switch {
			case status == 200:
				var rep attribution.Report
				if err := json.Unmarshal(body, &rep); err != nil {
					t.Fatal(err)
				}
				if len(rep.Rows) == 0 || rep.Totals.Conversions != 3 {
					t.Errorf("report %s", body)
				}
			default:
				if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
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
		_, _, body := app.get("a1:analyst", good)
		var rep attribution.Report
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		want := []string{"(direct) EUR 1.0000 30.00", "google USD 1.0000 20.00", "google EUR 0.5000 50.00", "newsletter EUR 0.5000 50.00"}
		if got := flat(rep.Rows); !slices.Equal(got, want) {
			t.Errorf("rows %q, want %q", got, want)
		}
		if !rep.Request.From.Equal(from) || rep.Request.Model != "linear" || rep.MinGroupSize != 1 || rep.Folded != 0 {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("pairs carry both values", func(t *testing.T) {
		_, _, body := app.get("a1:analyst", route(from, to, "&model=last_touch&group_by=channel,campaign"))
		var rep attribution.Report
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rep.Rows {
			got = append(got, strings.Join(r.Groups, "|")+"="+r.Group)
		}
		want := []string{"(direct)|(direct)=(direct) / (direct)", "Email|march=Email / march", "Paid Search|brand=Paid Search / brand"}
		if !slices.Equal(got, want) || !slices.Equal(rep.Request.Dimensions, []string{"channel", "campaign"}) {
			t.Errorf("rows %q, dimensions %q", got, rep.Request.Dimensions)
		}
	})
	t.Run("csv", func(t *testing.T) {
		status, header, body := app.get("a1:analyst", good+"&format=csv")
		want := "source,currency,conversions,revenue\n(direct),EUR,1,30.0000\ngoogle,USD,1,20.0000\ngoogle,EUR,0.5,50.0000\nnewsletter,EUR,0.5,50.0000\n"
		if status != 200 || !strings.HasPrefix(header.Get("Content-Type"), "text/csv") || string(body) != want {
			t.Errorf("status %d, %s:\n%s", status, header.Get("Content-Type"), body)
		}
	})
}

// groups inserts, for each campaign, that many people who each come from
// it the day before buying for 10 in currency.
func groups(t *testing.T, w warehouse.Warehouse, currency string, sizes map[string]int) {
	t.Helper()
	var events []ev
	for campaign, n := range sizes {
		for i := range n {
			v := fmt.Sprintf("v-%s-%s-%d", campaign, currency, i)
			events = append(events,
				pv(v+"-pv", v, base.Add(-days(1)), "ads", "cpc", campaign, "Paid Search", "/"),
				purchase(v+"-buy", v, nil, base, "10", currency))
		}
	}
	insert(t, w, events...)
}

// TestSmallGroupsFold folds a group of fewer distinct people than the
// minimum group size into "(other)", per currency, and keeps a group that
// has as many; the totals still count everyone. Purchases sent without a
// visitor id or an account are no one's: however many, they make no
// group big enough to show. Roles that may read the
// ids the report is built on see every group, and that is logged without
// naming anyone.
func TestSmallGroupsFold(t *testing.T) {
	w := chtest.Embedded(t)
	groups(t, w, "EUR", map[string]int{"nine": 9, "ten": 10})
	groups(t, w, "USD", map[string]int{"solo": 1})
	for i := range 10 {
		insert(t, w, purchase(fmt.Sprintf("anon-%d", i), "", nil, base, "10", "GBP"))
	}
	var logs bytes.Buffer
	app := serve(t, attribution.Config{MinGroupSize: 10}, attribution.Deps{Warehouse: w, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	url := route(from, to, "&model=last_touch&group_by=campaign")

	tests := []struct {
		who    string
		want   []string
		folded int
		raw    bool
	}{
		{who: "a1:analyst", want: []string{"ten EUR 10.0000 100.00", "(other) EUR 9.0000 90.00", "(other) GBP 10.0000 100.00", "(other) USD 1.0000 10.00"}, folded: 3},
		{who: "d1:dpo", want: []string{"(direct) GBP 10.0000 100.00", "ten EUR 10.0000 100.00", "nine EUR 9.0000 90.00", "solo USD 1.0000 10.00"}, raw: true},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			status, _, body := app.get(tt.who, url)
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			var rep attribution.Report
			if err := json.Unmarshal(body, &rep); err != nil {
				t.Fatal(err)
			}
			if got := flat(rep.Rows); !slices.Equal(got, tt.want) {
				t.Errorf("rows:\n got %q\nwant %q", got, tt.want)
			}
			if rep.Folded != tt.folded || rep.Raw != tt.raw || rep.Totals.Conversions != 30 {
				t.Errorf("folded %d raw %v total %v, want %d %v 30", rep.Folded, rep.Raw, rep.Totals.Conversions, tt.folded, tt.raw)
			}
		})
	}
	line := logs.String()
	if !strings.Contains(line, `"msg":"attribution report shows small groups"`) || !strings.Contains(line, `"caller":"dpo"`) ||
		!strings.Contains(line, `"small_rows":3`) {
		t.Errorf("no exemption logged: %s", line)
	}
	for _, personal := range []string{"v-nine", "d1", "solo", "nine\""} {
		if strings.Contains(line, personal) {
			t.Errorf("the log names %q: %s", personal, line)
		}
	}
	if strings.Count(line, "attribution report shows small groups") != 1 {
		t.Errorf("the analyst's report was logged as raw: %s", line)
	}
}

// blocking is a warehouse whose Select waits, once armed, until released,
// so that a test can hold a report in flight.
type blocking struct {
	warehouse.Warehouse
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) Select(ctx context.Context, dest any, query string, args ...any) error {
	b.mu.Lock()
	armed := b.armed
	b.armed = false
	b.mu.Unlock()
	if armed {
		close(b.entered)
		<-b.release
	}
	return b.Warehouse.Select(ctx, dest, query, args...)
}

// TestConcurrentReports refuses a report past the limit of reports in
// flight with 429 and a Retry-After, and serves the next one once a slot
// is free.
func TestConcurrentReports(t *testing.T) {
	w := &blocking{Warehouse: crafted(t), armed: true, entered: make(chan struct{}), release: make(chan struct{})}
	app := serve(t, attribution.Config{MinGroupSize: 1, MaxConcurrent: 1, MaxQueryTime: 3 * time.Second}, attribution.Deps{Warehouse: w})
	url := route(from, to, "")
	first := make(chan int, 1)
	go func() {
		status, _, _ := app.get("a1:analyst", url)
		first <- status
	}()
	<-w.entered
	status, header, body := app.get("a2:analyst", url)
	if status != http.StatusTooManyRequests || header.Get("Retry-After") != "3" {
		t.Errorf("second report: status %d, Retry-After %q: %s", status, header.Get("Retry-After"), body)
	}
	close(w.release)
	if status := <-first; status != 200 {
		t.Errorf("first report: status %d", status)
	}
	if status, _, body := app.get("a2:analyst", url); status != 200 {
		t.Errorf("after the first: status %d: %s", status, body)
	}
}

// TestQueryLimits stops a report at its memory or time limit with a 503
// that says how to narrow it, and the next report runs.
func TestQueryLimits(t *testing.T) {
	w := chtest.Embedded(t)
	// A hundred thousand page views of a thousand people, each of whom
	// buys once.
	if err := w.Exec(t.Context(), `INSERT INTO events (event_id, event_time, received_at, event_type, event_name, visitor_id, source, medium, campaign, channel, conversion_value, currency)
		SELECT concat('q', toString(number)), {at:DateTime64(3)} - toIntervalMinute(number % 10000),
		       {at:DateTime64(3)}, if(number % 100 = 0, 'purchase', 'page_view'), if(number % 100 = 0, 'purchase', 'page_view'),
		       concat('vq', toString(intDiv(number, 100))), 'google', 'cpc', concat('c', toString(number % 7)), 'Paid Search',
		       if(number % 100 = 0, 10, 0), if(number % 100 = 0, 'EUR', '')
		FROM numbers(100000)`, warehouse.Named("at", base)); err != nil {
		t.Fatal(err)
	}
	url := route(from, to, "&model=linear&group_by=channel,campaign")
	tests := []struct {
		name string
		cfg  attribution.Config
	}{
		{name: "memory", cfg: attribution.Config{MaxQueryMemory: 1 << 10}},
		{name: "time", cfg: attribution.Config{MaxQueryTime: time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.MinGroupSize, tt.cfg.MaxConcurrent = 1, 1
			app := serve(t, tt.cfg, attribution.Deps{Warehouse: w})
			status, header, body := app.get("a1:analyst", url)
			var prob web.Problem
			_ = json.Unmarshal(body, &prob)
			if status != http.StatusServiceUnavailable || !strings.HasPrefix(header.Get("Content-Type"), "application/problem+json") ||
				!strings.Contains(prob.Detail, "Narrow the period") {
				t.Fatalf("status %d: %s", status, body)
			}
			if strings.Contains(string(body), "DB::Exception") || strings.Contains(string(body), "Code:") {
				t.Errorf("the engine's message reached the client: %s", body)
			}
		})
	}
	t.Run("the next report runs", func(t *testing.T) {
		app := serve(t, attribution.Config{MinGroupSize: 1}, attribution.Deps{Warehouse: w})
		status, _, body := app.get("a1:analyst", url)
		var rep attribution.Report
		if err := json.Unmarshal(body, &rep); status != 200 || err != nil || math.Abs(rep.Totals.Conversions-1000) > 1e-6 {
			t.Errorf("status %d, %v: %.300s", status, err, body)
		}
	})
}

func TestNewChecksConfig(t *testing.T) {
	w := chtest.Embedded(t)
	guard := authtest.Guard(t)
	tests := []struct {
		name string
		cfg  attribution.Config
		deps attribution.Deps
	}{
		{name: "short lookback", cfg: attribution.Config{Lookback: time.Minute}, deps: attribution.Deps{Warehouse: w, Guard: guard}},
		{name: "long span", cfg: attribution.Config{MaxSpan: 2000 * 24 * time.Hour}, deps: attribution.Deps{Warehouse: w, Guard: guard}},
		{name: "negative concurrency", cfg: attribution.Config{MaxConcurrent: -1}, deps: attribution.Deps{Warehouse: w, Guard: guard}},
		{name: "negative group size", cfg: attribution.Config{MinGroupSize: -1}, deps: attribution.Deps{Warehouse: w, Guard: guard}},
		{name: "no warehouse", deps: attribution.Deps{Guard: guard}},
	}
	for _, tt := range tests {
		if _, err := attribution.New(tt.cfg, tt.deps); err == nil {
			t.Errorf("%s: New accepted %+v", tt.name, tt.cfg)
		}
	}
	if k, err := attribution.PolicyMinGroupSize(); err != nil || k != 10 {
		t.Errorf("policy minimum group size %d, %v; want 10 from policies/data/processing.json", k, err)
	}
}

// TestSeries counts the conversions of a period per day, with a point
// for every day, and per week past SeriesWeeklyAfter; the counts add up
// to the report's total under every model, a resent purchase counting
// once. Past the limits it answers as Report does.
func TestSeries(t *testing.T) {
	w := crafted(t)
	mod, err := attribution.New(attribution.Config{MinGroupSize: 1}, attribution.Deps{Warehouse: w, Guard: authtest.Guard(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tests := []struct {
		name     string
		from, to time.Time
		step     string
		points   int
		total    int64
	}{
		{name: "a month by day", from: from, to: to, step: attribution.StepDay, points: 31, total: 3},
		{name: "part days at both ends", from: from.Add(6 * time.Hour), to: to.Add(-6 * time.Hour), step: attribution.StepDay, points: 31, total: 3},
		{name: "a hundred days by week", from: to.Add(-days(100)), to: to, step: attribution.StepWeek, points: 15, total: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := attribution.Request{From: tt.from, To: tt.to}
			s, err := mod.Series(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if s.Step != tt.step || len(s.Points) != tt.points {
				t.Fatalf("step %s with %d points, want %s with %d", s.Step, len(s.Points), tt.step, tt.points)
			}
			if !s.Points[0].From.Equal(tt.from) || !s.Points[len(s.Points)-1].To.Equal(tt.to) {
				t.Errorf("points from %s to %s, want the period %s to %s", s.Points[0].From, s.Points[len(s.Points)-1].To, tt.from, tt.to)
			}
			var sum int64
			for i, p := range s.Points {
				sum += p.Conversions
				if i > 0 && !p.From.Equal(s.Points[i-1].To) {
					t.Errorf("point %d starts at %s, the one before ends at %s", i, p.From, s.Points[i-1].To)
				}
				if p.Conversions > 0 && (base.Before(p.From) || !base.Before(p.To)) && tt.total == 3 {
					t.Errorf("%d conversions from %s to %s, all were at %s", p.Conversions, p.From, p.To, base)
				}
			}
			if sum != tt.total {
				t.Errorf("the points add up to %d, want %d", sum, tt.total)
			}
			for _, model := range attribution.Models() {
				rep, err := mod.Report(ctx, attribution.Request{From: tt.from, To: tt.to, Model: model, GroupBy: "channel,campaign"}, attribution.Access{Raw: true})
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(rep.Totals.Conversions-float64(sum)) > 1e-6 {
					t.Errorf("%s: the report totals %v conversions, the series %d", model, rep.Totals.Conversions, sum)
				}
			}
		})
	}
	t.Run("signups are their own series", func(t *testing.T) {
		s, err := mod.Series(ctx, attribution.Request{From: from, To: to, Conversion: "signup"})
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, p := range s.Points {
			sum += p.Conversions
		}
		if sum != 1 {
			t.Errorf("%d signups, want 1", sum)
		}
	})
	t.Run("checked like a report", func(t *testing.T) {
		_, err := mod.Series(ctx, attribution.Request{From: to, To: from})
		if got := invalidFields(t, err); !slices.Equal(got, []string{"to"}) {
			t.Errorf("to before from: invalid fields %q", got)
		}
	})
	t.Run("limits", func(t *testing.T) {
		small, err := attribution.New(attribution.Config{MinGroupSize: 1, MaxQueryMemory: 1 << 10}, attribution.Deps{Warehouse: w, Guard: authtest.Guard(t)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = small.Series(ctx, attribution.Request{From: from, To: to})
		if errs.Kind(err) != errs.ErrUnavailable || !strings.Contains(errs.Detail(err), "Narrow the period") {
			t.Errorf("a series past the memory limit: %v", err)
		}
		// The next one runs. (The embedded engine also needs a query
		// after one stopped by its memory limit before the test's
		// database can be dropped: a DROP right after it waits forever.)
		if _, err := mod.Series(ctx, attribution.Request{From: from, To: to}); err != nil {
			t.Errorf("the series after: %v", err)
		}
	})
}

// TestAccessFor gives each role the access the route gives it: the
// roles that may read the ids a report is built on see small groups, an
// analyst sees them folded, and the others are refused.
func TestAccessFor(t *testing.T) {
	mod, err := attribution.New(attribution.Config{}, attribution.Deps{Warehouse: chtest.Embedded(t), Guard: authtest.Guard(t)})
	if err != nil {
		t.Fatal(err)
	}
	req, err := mod.Parse(attribution.Params{From: "2026-03-01", To: "2026-04-01", GroupBy: "landing_page,campaign"})
	if err != nil {
		t.Fatal(err)
	}
	if req.LookbackDays != mod.Lookback().Hours()/24 {
		t.Errorf("Parse gave a lookback of %v days, the module's is %v", req.LookbackDays, mod.Lookback())
	}
	for _, tt := range []struct {
		role string
		raw  bool
		err  error
	}{
		{role: "analyst"}, {role: "dpo", raw: true}, {role: "admin", raw: true},
		{role: "support", err: errs.ErrForbidden}, {role: "user", err: errs.ErrForbidden},
	} {
		a, err := mod.AccessFor(t.Context(), authz.Principal{UserID: "x", Role: tt.role}, req)
		if errs.Kind(err) != tt.err || a.Raw != tt.raw || (err == nil && a.Caller != tt.role) {
			t.Errorf("%s: access %+v, error %v", tt.role, a, err)
		}
	}
}
