package portal_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/portal"
)

// fakeAttribution is the console's attribution functions answering
// report, or err, and recording the query they were asked.
type fakeAttribution struct {
	report portal.AttributionReport
	err    error
	asked  []portal.AttributionQuery
}

func (f *fakeAttribution) console() *portal.Console {
	return &portal.Console{
		// The other parts answer nothing here.
		DataMap:     func(context.Context) ([]portal.DataMapColumn, error) { return nil, nil },
		Record:      func(context.Context, io.Writer, string, portal.DataMapFilter) error { return nil },
		Policy:      func(context.Context) (portal.PolicyView, error) { return portal.PolicyView{}, nil },
		ApplyPolicy: func(context.Context, authz.Principal, string) (string, error) { return "", nil },
		Consent: func(context.Context, time.Time, time.Time) (portal.ConsentReport, error) {
			return portal.ConsentReport{}, nil
		},
		AuditRuns: func(context.Context, int) ([]portal.AuditRun, error) { return nil, nil },
		RunAudit:  func(context.Context, authz.Principal) (portal.AuditRun, error) { return portal.AuditRun{}, nil },
		Requests: func(context.Context, authz.Principal, portal.RequestFilter) ([]portal.QueuedRequest, error) {
			return nil, nil
		},
		Request: func(context.Context, authz.Principal, string) (portal.QueuedRequest, error) {
			return portal.QueuedRequest{}, nil
		},
		Extend: func(context.Context, authz.Principal, string, int, string) error { return nil },
		Reject: func(context.Context, authz.Principal, string, string) error { return nil },
		Retry:  func(context.Context, authz.Principal, string) error { return nil },
		AttributionChoices: portal.AttributionChoices{
			Models:       []string{"first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay"},
			Dimensions:   []string{"source", "medium", "campaign", "channel", "landing_page"},
			DefaultModel: "last_touch", DefaultGroupBy: "channel", DefaultConversion: "purchase",
			LookbackDays: 30, MaxSpanDays: 400,
		},
		Attribution: func(_ context.Context, _ authz.Principal, q portal.AttributionQuery) (portal.AttributionReport, error) {
			f.asked = append(f.asked, q)
			return f.report, f.err
		},
		AttributionCSV: func(_ context.Context, w io.Writer, _ authz.Principal, q portal.AttributionQuery) error {
			f.asked = append(f.asked, q)
			if f.err != nil {
				return f.err
			}
			_, err := io.WriteString(w, "source,currency,conversions,revenue\n")
			return err
		},
	}
}

var (
	barRect   = regexp.MustCompile(`<rect class="bar" x="220" y="[0-9.]+" width="([0-9.]+)" height="20" data-group="([^"]*)" data-value="([^"]*)">`)
	fieldTag  = regexp.MustCompile(`<(?:input|select)[^>]* id="field-([a-z_]+)"[^>]*>`)
	svgTag    = regexp.MustCompile(`<svg [^>]*role="img" aria-labelledby="([a-z-]+)-title ([a-z-]+)-desc"`)
	svgStyled = regexp.MustCompile(`<svg[^>]*style=|<(?:rect|text|path|polyline|circle|line)[^>]*style=`)
)

// TestAttributionWorkspace draws a report the console's function gives
// as bar charts, a table and a time series, asks it with the form's
// defaults and choices, and explains each kind of refusal on the page
// with the status the route would answer.
func TestAttributionWorkspace(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 4, d, 0, 0, 0, 0, time.UTC) }
	fake := &fakeAttribution{report: portal.AttributionReport{
		From: day(1), To: day(4), Model: "linear", Dimensions: []string{"source"}, Conversion: "purchase", LookbackDays: 30,
		Rows: []portal.AttributionRow{
			{Group: "google", Groups: []string{"google"}, Currency: "EUR", Conversions: 12.5, Revenue: "250.5"},
			{Group: "newsletter", Groups: []string{"newsletter"}, Currency: "EUR", Conversions: 5, Revenue: "100"},
			{Group: "google", Groups: []string{"google"}, Currency: "USD", Conversions: 2.5, Revenue: "40"},
			{Group: "(other)", Groups: []string{"(other)"}, Currency: "USD", Conversions: 3, Revenue: "45.3333"},
		},
		Conversions: 23, Revenue: []portal.Amount{{Currency: "EUR", Value: "350.5"}, {Currency: "USD", Value: "85.3333"}},
		MinGroupSize: 10, Folded: 2, Step: "day",
		Series: []portal.SeriesPoint{{From: day(1), To: day(2), Conversions: 20}, {From: day(2), To: day(3), Conversions: 0}, {From: day(3), To: day(4), Conversions: 3}},
	}}
	app, _, logs := newApp(t, func(_ *portal.Config, d *portal.Deps) { d.Console = fake.console() })
	const analyst = "u_ana:analyst"

	t.Run("the defaults ask for the last 30 days", func(t *testing.T) {
		a := get(t, app, "/console/attribution", authtest.Header, analyst)
		if a.status != http.StatusOK || a.header.Get("Content-Security-Policy") != strictCSP {
			t.Fatalf("status %d, CSP %q", a.status, a.header.Get("Content-Security-Policy"))
		}
		want := portal.AttributionQuery{From: "2026-04-04", To: "2026-05-05", Model: "last_touch", GroupBy: "channel", Conversion: "purchase", LookbackDays: "30"}
		if got := fake.asked[len(fake.asked)-1]; got != want {
			t.Errorf("asked %+v, want %+v", got, want)
		}
		checkNoInline(t, a.body)
		checkLandmarks(t, a.body)
		if svgStyled.MatchString(a.body) {
			t.Error("a chart has a style attribute")
		}
	})

	t.Run("charts, table and series", func(t *testing.T) {
		a := get(t, app, "/console/attribution?model=linear&group_by=source&then_by=&from=2026-04-01&to=2026-04-04", authtest.Header, analyst)
		// One bar per group for the conversions, whatever the currency;
		// one chart of revenue per currency.
		var bars []string
		for _, m := range barRect.FindAllStringSubmatch(a.body, -1) {
			bars = append(bars, m[2]+"="+m[3]+"@"+m[1])
		}
		want := []string{"google=15@440", "newsletter=5@146.7", "(other)=3@88", "google=250.5@440", "newsletter=100@175.6", "(other)=45.3333@440", "google=40@388.2"}
		if strings.Join(bars, " ") != strings.Join(want, " ") {
			t.Errorf("bars %q,\nwant %q", bars, want)
		}
		var charts []string
		for _, m := range svgTag.FindAllStringSubmatch(a.body, -1) {
			charts = append(charts, m[1])
		}
		if strings.Join(charts, " ") != "chart-conversions chart-revenue-eur chart-revenue-usd chart-series" {
			t.Errorf("charts %q", charts)
		}
		for _, s := range []string{
			`<desc id="chart-conversions-desc">3 of 3 groups, largest first: google: 15; newsletter: 5; (other): 3.</desc>`,
			`<title id="chart-revenue-eur-title">Revenue in EUR by Source</title>`,
			`<td class="num"><data value="12.5">12.5</data></td>`, `<td class="num"><data value="45.3333">45.33</data></td>`,
			`<dd id="total-conversions">23</dd>`, `2 rows were folded into (other).`, `Each had fewer than 10 people`,
			`<title id="chart-series-title">Conversions per day</title>`,
			`<desc id="chart-series-desc">23 conversions in all; the highest point is 20 (2026-04-01).</desc>`,
			`<polyline class="line" points="56,16 400,216 744,186"></polyline>`,
			`from 2026-04-01 through 2026-04-03`,
			`href="/console/attribution.csv?conversion=purchase&amp;from=2026-04-01&amp;group_by=source&amp;lookback_days=30&amp;model=linear&amp;to=2026-04-04"`,
		} {
			if !strings.Contains(a.body, s) {
				t.Errorf("page lacks %s", s)
			}
		}
		g := get(t, app, "/console/attribution?model=linear&group_by=source", authtest.Header, analyst, "Accept-Language", "de")
		for _, s := range []string{`<data value="12.5">12,5</data>`, `<data value="250.5">250,50</data>`, "Umsatz in EUR nach Quelle", "Conversions pro Tag"} {
			if !strings.Contains(g.body, s) {
				t.Errorf("German page lacks %s", s)
			}
		}
	})

	t.Run("a second dimension joins the first", func(t *testing.T) {
		get(t, app, "/console/attribution?group_by=channel&then_by=campaign", authtest.Header, analyst)
		if got := fake.asked[len(fake.asked)-1].GroupBy; got != "channel,campaign" {
			t.Errorf("group_by %q", got)
		}
	})

	tests := []struct {
		name    string
		err     error
		status  int
		want    string
		invalid []string
		retry   string
	}{
		{
			name: "bad fields", status: http.StatusBadRequest,
			err: &errs.ValidationError{Errors: []errs.FieldError{
				{Field: "to", Rule: "max_span", Message: "a report covers at most 400 days"},
				{Field: "model", Rule: "oneof", Message: "model must be one of ..."},
			}},
			want: "A report covers at most 400 days. Narrow the period.", invalid: []string{"model", "to"},
		},
		{
			name: "a grouping the role may not see", status: http.StatusForbidden, err: errs.E(errs.ErrForbidden, "no"),
			want: "Your role may not see reports grouped by this.", invalid: []string{"group_by"},
		},
		{
			name: "too many reports", status: http.StatusTooManyRequests, retry: "7",
			err:  errs.Retry(errs.ErrRateLimited, "busy", 7*time.Second),
			want: "Too many reports are running right now. Try again in 7 seconds.",
		},
		{
			name: "past the limits", status: http.StatusServiceUnavailable, err: errs.E(errs.ErrUnavailable, "too big"),
			want: "This report needs more time or memory than one report may use.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.err = tt.err
			defer func() { fake.err = nil }()
			a := get(t, app, "/console/attribution?model=u_shape", authtest.Header, analyst)
			if a.status != tt.status || !strings.Contains(a.body, `role="alert"`) || !strings.Contains(a.body, tt.want) {
				t.Fatalf("status %d, want %d with %q:\n%s", a.status, tt.status, tt.want, a.body)
			}
			if got := a.header.Get("Retry-After"); got != tt.retry {
				t.Errorf("Retry-After %q, want %q", got, tt.retry)
			}
			var invalid []string
			for _, m := range fieldTag.FindAllStringSubmatch(a.body, -1) {
				if strings.Contains(m[0], `aria-invalid="true"`) {
					invalid = append(invalid, m[1])
					if !strings.Contains(m[0], "field-"+m[1]+"-error") {
						t.Errorf("field %s is not described by its error: %s", m[1], m[0])
					}
				}
			}
			if strings.Join(invalid, ",") != strings.Join(tt.invalid, ",") {
				t.Errorf("invalid fields %q, want %q", invalid, tt.invalid)
			}
			if strings.Contains(a.body, `id="report-heading"`) {
				t.Error("a refused report shows a report")
			}
			checkNoInline(t, a.body)
		})
	}

	t.Run("the download", func(t *testing.T) {
		a := get(t, app, "/console/attribution.csv?group_by=source", authtest.Header, analyst)
		if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/csv") ||
			!strings.Contains(a.header.Get("Content-Disposition"), `filename="attribution.csv"`) {
			t.Errorf("CSV: %d %v", a.status, a.header)
		}
		fake.err = &errs.ValidationError{Errors: []errs.FieldError{{Field: "to", Rule: "after", Message: "to must be after from"}}}
		defer func() { fake.err = nil }()
		if a := get(t, app, "/console/attribution.csv?group_by=source", authtest.Header, analyst); a.status != http.StatusBadRequest ||
			!strings.HasPrefix(a.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("a bad query's CSV: %d %s", a.status, a.body)
		}
	})

	t.Run("who may use it", func(t *testing.T) {
		for who, want := range map[string]int{"u_ann:user": 403, "u_sam:support": 403, "u_dora:dpo": 200, "u_adam:admin": 200, analyst: 200} {
			if a := get(t, app, "/console/attribution", authtest.Header, who); a.status != want {
				t.Errorf("%s: %d, want %d", who, a.status, want)
			}
		}
		if a := get(t, app, "/console/attribution?model=linear"); a.status != http.StatusSeeOther ||
			a.header.Get("Location") != "/?next=%2Fconsole%2Fattribution%3Fmodel%3Dlinear" {
			t.Errorf("signed out: %d to %q", a.status, a.header.Get("Location"))
		}
		// An analyst's console has this part only.
		a := get(t, app, "/console", authtest.Header, analyst)
		if a.status != http.StatusOK || !strings.Contains(a.body, `href="/console/attribution"`) || strings.Contains(a.body, `href="/console/datamap"`) {
			t.Errorf("the analyst's console: %d\n%s", a.status, a.body)
		}
	})
	if strings.Contains(logs.String(), "messages") {
		t.Errorf("missing messages: %s", logs.String())
	}
}
