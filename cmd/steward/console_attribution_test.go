package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"html"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
)

// browserAgent is a browser's User-Agent: the ingest keeps no event of a
// request without one (it is a bot's).
const browserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// attributionVisit is one session's first page, with the UTM values of
// its landing page.
type attributionVisit struct {
	source, medium, campaign string
	ago                      time.Duration
}

// sendAttributionVisitors sends, as browsers do, the visits and purchases
// of 25 people who each accept every purpose on the choices page first:
//
//   - 12 come from google cpc (campaign spring) and buy for 20 EUR;
//   - 10 come from the newsletter (spring), later from google cpc
//     (brand), and buy for 30 EUR;
//   - 3 come from a partner's referral (launch) and buy for 15 USD: a
//     group smaller than the policy's minimum of 10 people.
//
// It returns once the warehouse holds every event. The server must have
// been started (the event drain carries them to the warehouse).
func sendAttributionVisitors(t *testing.T, srv *server) {
	t.Helper()
	type person struct {
		visits          []attributionVisit
		value, currency string
	}
	google := func(campaign string, ago time.Duration) attributionVisit {
		return attributionVisit{source: "google", medium: "cpc", campaign: campaign, ago: ago}
	}
	var people []person
	for range 12 {
		people = append(people, person{visits: []attributionVisit{google("spring", 20*time.Hour)}, value: "20", currency: "EUR"})
	}
	for range 10 {
		people = append(people, person{visits: []attributionVisit{
			{source: "newsletter", medium: "email", campaign: "spring", ago: 30 * time.Hour}, google("brand", 20*time.Hour),
		}, value: "30", currency: "EUR"})
	}
	for range 3 {
		people = append(people, person{visits: []attributionVisit{{source: "partner", medium: "referral", campaign: "launch", ago: 26 * time.Hour}},
			value: "15", currency: "USD"})
	}
	now := time.Now().UTC()
	for _, p := range people {
		b := newPageClient(t, srv)
		chooseOnPage(t, b, "accept_all")
		var batch []map[string]any
		for _, v := range p.visits {
			landing := "https://app.example.test/pricing?" + url.Values{
				"utm_source": {v.source}, "utm_medium": {v.medium}, "utm_campaign": {v.campaign},
			}.Encode()
			batch = append(batch, map[string]any{
				"event_id": newEventID(), "type": "page_view", "url": landing, "landing_page": landing,
				"session_id": "s" + newEventID()[:8], "time": now.Add(-v.ago).Format(time.RFC3339),
			})
		}
		batch = append(batch, map[string]any{
			"event_id": newEventID(), "type": "purchase", "url": "https://app.example.test/checkout/done",
			"value": p.value, "currency": p.currency, "time": now.Add(-2 * time.Hour).Format(time.RFC3339),
		})
		raw, err := json.Marshal(batch)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(string(raw)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", browserAgent)
		resp, body := b.send(req)
		if resp.StatusCode != http.StatusAccepted || !strings.Contains(body, `"stored":`+strconv.Itoa(len(batch))) {
			t.Fatalf("POST /v1/events: %d %s", resp.StatusCode, body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.wired.events.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

var (
	conversionChart = regexp.MustCompile(`(?s)<svg [^>]*aria-labelledby="chart-conversions-title[^>]*>.*?</svg>`)
	revenueChart    = regexp.MustCompile(`(?s)<svg [^>]*aria-labelledby="chart-revenue-([a-z]+)-title[^>]*>.*?</svg>`)
	chartBar        = regexp.MustCompile(`<rect class="bar" [^>]*data-group="([^"]*)" data-value="([^"]*)"></rect>\s*<text class="value"[^>]*>([^<]*)</text>`)
	tableBody       = regexp.MustCompile(`(?s)<table class="attribution">.*?<tbody>(.*?)</tbody>`)
	tableCell       = regexp.MustCompile(`(?s)<t[hd][^>]*>(?:<data value="([^"]*)">)?(.*?)(?:</data>)?</t[hd]>`)
	seriesValue     = regexp.MustCompile(`<tr><th scope="row">[^<]*</th><td class="num"><data value="([0-9]+)">`)
	totalShown      = regexp.MustCompile(`<dd id="total-conversions">([^<]*)</dd>`)
	invalidField    = regexp.MustCompile(`<(?:input|select)[^>]* id="field-([a-z_]+)"[^>]* aria-invalid="true"`)
)

// pageRow is a row of the workspace's table: the group values, the
// currency, and the exact numbers the cells carry.
type pageRow struct {
	groups                     []string
	currency                   string
	conversions, revenue, text string
}

// pageRows reads the workspace's table.
func pageRows(t *testing.T, page string, dims int) []pageRow {
	t.Helper()
	m := tableBody.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page has no table:\n%s", page)
	}
	var out []pageRow
	for _, tr := range strings.Split(m[1], "<tr>")[1:] {
		cells := tableCell.FindAllStringSubmatch(tr, -1)
		if len(cells) != dims+3 {
			t.Fatalf("a row of %d cells, want %d: %s", len(cells), dims+3, tr)
		}
		r := pageRow{currency: html.UnescapeString(cells[dims][2]), conversions: cells[dims+1][1], revenue: cells[dims+2][1], text: cells[dims+1][2]}
		for _, c := range cells[:dims] {
			r.groups = append(r.groups, html.UnescapeString(c[2]))
		}
		out = append(out, r)
	}
	return out
}

// chartBars reads a chart's bars as group → exact value, checking that
// each bar's visible number says its value.
func chartBars(t *testing.T, chart string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range chartBar.FindAllStringSubmatch(chart, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		shown, err := strconv.ParseFloat(strings.ReplaceAll(m[3], ",", ""), 64)
		if err != nil || math.Abs(shown-v) > 0.005 {
			t.Errorf("the bar of %s says %q, its value is %v", m[1], m[3], v)
		}
		out[html.UnescapeString(m[1])] = v
	}
	return out
}

func sameValues(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || math.Abs(v-w) > 1e-9 {
			return false
		}
	}
	return true
}

// TestConsoleAttributionOnAWiredServer uses the attribution workspace on a
// wired server whose warehouse holds what 25 browsers sent through the
// consent page and POST /v1/events: every role against the page and its
// download; the charts, the table, the totals and the series against GET
// /v1/analytics/attribution for the same query, under four models, one
// and two dimensions, an analyst's folded report and a DPO's raw one; the
// CSV against the table and the route's CSV; and bad input explained on
// the page, the field marked.
func TestConsoleAttributionOnAWiredServer(t *testing.T) {
	ctx := context.Background()
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev = true })
	if err := srv.start(ctx); err != nil {
		t.Fatal(err)
	}
	sendAttributionVisitors(t, srv)
	clients := map[string]*pageClient{}
	for _, role := range authz.Roles() {
		tok, err := srv.wired.accounts.CreateToken(ctx, role+".attribution@example.com", role)
		if err != nil {
			t.Fatal(err)
		}
		clients[role] = &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
	}

	t.Run("each role reaches what the policy lets it list, and a visitor is sent to sign in", func(t *testing.T) {
		mayList := map[string]bool{"analyst": true, "dpo": true, "admin": true}
		for role, c := range clients {
			for _, path := range []string{"/console", "/console/attribution", "/console/attribution.csv?group_by=source"} {
				resp, body := c.get(path)
				want := http.StatusForbidden
				if mayList[role] {
					want = http.StatusOK
				}
				if resp.StatusCode != want {
					t.Errorf("GET %s as %s: %d, want %d\n%.500s", path, role, resp.StatusCode, want, body)
				}
				if want == http.StatusOK && path == "/console/attribution" && resp.Header.Get("Content-Security-Policy") != strictPageCSP {
					t.Errorf("GET %s: CSP %q", path, resp.Header.Get("Content-Security-Policy"))
				}
			}
			// The route answers alike.
			resp, _ := c.get("/v1/analytics/attribution?from=2026-01-01&to=2026-02-01")
			if want := map[bool]int{true: 200, false: 403}[mayList[role]]; resp.StatusCode != want {
				t.Errorf("the route as %s: %d, want %d", role, resp.StatusCode, want)
			}
		}
		resp, _ := newPageClient(t, srv).get("/console/attribution?model=linear")
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/?next="+url.QueryEscape("/console/attribution?model=linear") {
			t.Errorf("a visitor: %d to %q", resp.StatusCode, loc)
		}
	})

	today := time.Now().UTC().Truncate(24 * time.Hour)
	period := "from=" + today.AddDate(0, 0, -7).Format(time.DateOnly) + "&to=" + today.AddDate(0, 0, 1).Format(time.DateOnly)
	tests := []struct {
		name, role, model string
		dims              []string
		folded, raw       bool
	}{
		{name: "last touch by source", role: "analyst", model: "last_touch", dims: []string{"source"}, folded: true},
		{name: "linear by source", role: "analyst", model: "linear", dims: []string{"source"}, folded: true},
		{name: "first touch by channel and campaign", role: "analyst", model: "first_touch", dims: []string{"channel", "campaign"}, folded: true},
		{name: "position based by source and campaign, raw", role: "dpo", model: "position_based", dims: []string{"source", "campaign"}, raw: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clients[tt.role]
			query := period + "&model=" + tt.model
			resp, body := c.get("/v1/analytics/attribution?" + query + "&group_by=" + strings.Join(tt.dims, ","))
			var api attribution.Report
			if err := json.Unmarshal([]byte(body), &api); resp.StatusCode != 200 || err != nil {
				t.Fatalf("the route: %d %v %s", resp.StatusCode, err, body)
			}
			if api.Totals.Conversions != 25 || (api.Folded > 0) != tt.folded || api.Raw != tt.raw || len(api.Rows) < 2 {
				t.Fatalf("the route's report is not the one sent: %s", body)
			}
			pageQuery := query + "&group_by=" + tt.dims[0]
			if len(tt.dims) == 2 {
				pageQuery += "&then_by=" + tt.dims[1]
			}
			resp, page := c.get("/console/attribution?" + pageQuery)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("the page: %d\n%s", resp.StatusCode, page)
			}

			// The table is the route's rows, in its order.
			rows := pageRows(t, page, len(tt.dims))
			if len(rows) != len(api.Rows) {
				t.Fatalf("the table has %d rows, the route %d", len(rows), len(api.Rows))
			}
			for i, r := range api.Rows {
				got := rows[i]
				if !slices.Equal(got.groups, r.Groups) || got.currency != r.Currency ||
					got.conversions != strconv.FormatFloat(r.Conversions, 'f', -1, 64) || !decimal.RequireFromString(got.revenue).Equal(r.Revenue) {
					t.Errorf("row %d: page %+v, route %+v", i, got, r)
				}
			}

			// The conversions chart has one bar per group, its conversions
			// in every currency; a revenue chart per currency.
			wantBars, wantRevenue := map[string]float64{}, map[string]map[string]float64{}
			for _, r := range api.Rows {
				wantBars[r.Group] += r.Conversions
				if r.Currency != "" {
					if wantRevenue[strings.ToLower(r.Currency)] == nil {
						wantRevenue[strings.ToLower(r.Currency)] = map[string]float64{}
					}
					wantRevenue[strings.ToLower(r.Currency)][r.Group], _ = r.Revenue.Float64()
				}
			}
			if got := chartBars(t, conversionChart.FindString(page)); !sameValues(got, wantBars) {
				t.Errorf("conversion bars %v, the route's rows %v", got, wantBars)
			}
			charts := revenueChart.FindAllStringSubmatch(page, -1)
			if len(charts) != len(wantRevenue) {
				t.Errorf("%d revenue charts, the route has %d currencies", len(charts), len(wantRevenue))
			}
			for _, ch := range charts {
				if got := chartBars(t, ch[0]); !sameValues(got, wantRevenue[ch[1]]) {
					t.Errorf("revenue bars in %s %v, the route's %v", ch[1], got, wantRevenue[ch[1]])
				}
			}

			// The totals, the folded rows and the series.
			if m := totalShown.FindStringSubmatch(page); m == nil || m[1] != "25" {
				t.Errorf("the total shown: %q", m)
			}
			switch {
			case tt.raw && !strings.Contains(page, "Groups of any size are shown"):
				t.Error("a raw report does not say so")
			case tt.folded && !strings.Contains(page, strconv.Itoa(api.Folded)+" row"):
				t.Errorf("the page does not say %d rows were folded", api.Folded)
			}
			var series int64
			for _, m := range seriesValue.FindAllStringSubmatch(page, -1) {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				series += n
			}
			if float64(series) != api.Totals.Conversions || !strings.Contains(page, "Conversions per day") {
				t.Errorf("the series counts %d conversions, the route's total is %v", series, api.Totals.Conversions)
			}

			// The CSV is the table, and the route's CSV.
			link := regexp.MustCompile(`<a href="(/console/attribution\.csv\?[^"]+)" download>`).FindStringSubmatch(page)
			if link == nil {
				t.Fatal("no CSV link")
			}
			resp, raw := c.get(html.UnescapeString(link[1]))
			recs, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
			if resp.StatusCode != 200 || err != nil || len(recs) != len(rows)+1 {
				t.Fatalf("the CSV: %d %v, %d lines for %d rows", resp.StatusCode, err, len(recs), len(rows))
			}
			if want := append(slices.Clone(tt.dims), "currency", "conversions", "revenue"); !slices.Equal(recs[0], want) {
				t.Errorf("CSV header %q, want %q", recs[0], want)
			}
			for i, r := range rows {
				rec := recs[i+1]
				n := len(tt.dims)
				if !slices.Equal(rec[:n], r.groups) || rec[n] != r.currency || rec[n+1] != r.conversions ||
					!decimal.RequireFromString(rec[n+2]).Equal(decimal.RequireFromString(r.revenue)) {
					t.Errorf("CSV line %d %q, table row %+v", i+1, rec, r)
				}
			}
			_, routeCSV := c.get("/v1/analytics/attribution?" + query + "&group_by=" + strings.Join(tt.dims, ",") + "&format=csv")
			if routeCSV != raw {
				t.Errorf("the download and the route's CSV differ:\n%s\n%s", raw, routeCSV)
			}
		})
	}

	t.Run("the analyst's report folds the partner's three buyers", func(t *testing.T) {
		_, page := clients["analyst"].get("/console/attribution?" + period + "&model=last_touch&group_by=source")
		rows := pageRows(t, page, 1)
		var got []string
		for _, r := range rows {
			got = append(got, r.groups[0]+" "+r.currency+" "+r.conversions+" "+r.revenue)
		}
		if want := []string{"google EUR 22 540", "(other) USD 3 45"}; !slices.Equal(got, want) {
			t.Errorf("rows %q, want %q", got, want)
		}
		if !strings.Contains(page, "1 row was folded into (other).") {
			t.Error("the page does not say a row was folded")
		}
	})

	bad := []struct {
		name, query, lang string
		status            int
		want              string
		fields            []string
	}{
		{name: "from after to", query: "from=2026-03-10&to=2026-03-01", want: "The period must end after it starts", fields: []string{"to"}},
		{name: "from after to, in German", query: "from=2026-03-10&to=2026-03-01", lang: "de", want: "Der Zeitraum muss nach seinem Beginn enden", fields: []string{"to"}},
		{name: "unknown model", query: "model=u_shape", want: "Choose one of the models listed.", fields: []string{"model"}},
		{name: "longer than the maximum", query: "from=2024-01-01&to=2026-01-01", want: "A report covers at most 400 days. Narrow the period.", fields: []string{"to"}},
		{name: "one dimension twice", query: "group_by=source&then_by=source", want: "Choose one of the dimensions listed", fields: []string{"group_by"}},
		{name: "no date", query: "from=yesterday", want: "Enter the first day of the period as a date", fields: []string{"from"}},
		{name: "a lookback of nothing", query: "lookback_days=0", want: "Enter a number of days between one hour", fields: []string{"lookback_days"}},
		{name: "page views are no conversion", query: "conversion=page_view", want: "Page views and other events are not conversions", fields: []string{"conversion"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/console/attribution?"+tt.query, nil)
			if tt.lang != "" {
				// The language the switcher picks (the account's is
				// English).
				req.AddCookie(&http.Cookie{Name: "steward_lang", Value: tt.lang})
			}
			resp, page := clients["analyst"].send(req)
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(page, `role="alert"`) || !strings.Contains(page, tt.want) {
				t.Fatalf("%d %s, want a page saying %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.want, page)
			}
			var invalid []string
			for _, m := range invalidField.FindAllStringSubmatch(page, -1) {
				invalid = append(invalid, m[1])
			}
			if !slices.Equal(invalid, tt.fields) {
				t.Errorf("fields marked invalid %q, want %q", invalid, tt.fields)
			}
			if strings.Contains(page, `id="report-heading"`) {
				t.Error("a bad query shows a report")
			}
		})
	}
}
