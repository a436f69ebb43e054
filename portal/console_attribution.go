package portal

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/message"
	"golang.org/x/text/number"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

// AttributionChoices are what the attribution workspace's form offers:
// the attribution module's models and dimensions and its defaults.
type AttributionChoices struct {
	// Models are the attribution models, in the order offered.
	Models []string
	// Dimensions are what a report groups by; it takes one or two.
	Dimensions []string
	// DefaultModel, DefaultGroupBy and DefaultConversion are what a
	// report takes when the form names none.
	DefaultModel, DefaultGroupBy, DefaultConversion string
	// LookbackDays is the lookback window of a report that names none.
	LookbackDays float64
	// MaxSpanDays is the longest period one report covers.
	MaxSpanDays float64
}

// AttributionQuery is the workspace's question as text: the query
// parameters of GET /v1/analytics/attribution. GroupBy is one dimension
// or two joined by a comma.
type AttributionQuery struct {
	From, To, Model, GroupBy, Conversion, LookbackDays, HalfLifeDays string
}

// values returns q as a query string's values, leaving out what is empty.
func (q AttributionQuery) values() url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{
		{"from", q.From}, {"to", q.To}, {"model", q.Model}, {"group_by", q.GroupBy},
		{"conversion", q.Conversion}, {"lookback_days", q.LookbackDays}, {"half_life_days", q.HalfLifeDays},
	} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v
}

// AttributionReport is an attribution report as the workspace shows it:
// what the route answers, and the conversions of its period over time.
type AttributionReport struct {
	// From and To bound the period, [From, To).
	From, To time.Time
	Model    string
	// Dimensions are the report's dimensions, in order.
	Dimensions   []string
	Conversion   string
	LookbackDays float64
	// HalfLifeDays is the time decay model's half life, 0 for the others.
	HalfLifeDays float64
	// Rows are the report's rows, in its order.
	Rows []AttributionRow
	// Conversions is the total of credited conversions.
	Conversions float64
	// Revenue and Refunded list an amount per currency.
	Revenue, Refunded []Amount
	// MinGroupSize is the number of people a row needs to be shown on its
	// own; Folded counts the rows folded into "(other)". Raw is true when
	// the caller's role sees groups of any size.
	MinGroupSize, Folded int
	Raw                  bool
	// Step is "day" or "week": what one point of Series counts.
	Step   string
	Series []SeriesPoint
}

// AttributionRow is the credit one group earned in one currency.
type AttributionRow struct {
	// Group joins Groups, the value of each dimension, with " / ".
	Group  string
	Groups []string
	// Currency is the ISO code of Revenue, "" for conversions without a
	// value.
	Currency    string
	Conversions float64
	// Revenue is a decimal number, as the route writes it.
	Revenue string
}

// Amount is a decimal amount in one currency.
type Amount struct {
	Currency, Value string
}

// SeriesPoint is the number of conversions in [From, To).
type SeriesPoint struct {
	From, To    time.Time
	Conversions int64
}

// attributionPeriodDays is the period the workspace reports on when the
// form names none: the last 30 days, as the entry page's link to the
// route.
const attributionPeriodDays = 30

// attributionFields are the workspace form's fields, each labelled by
// the message "AttributionField_<name>". then_by is the form's second
// dimension, joined to group_by as the route takes it.
var attributionFields = []string{"model", "group_by", "then_by", "from", "to", "conversion", "lookback_days", "half_life_days"}

// attributionHints are the fields with a line of help under them, the
// message "AttributionHint_<name>".
var attributionHints = []string{"then_by", "to", "conversion", "lookback_days", "half_life_days"}

// attributionErrors maps the field and rule of the route's validation
// errors to the workspace's messages. One it does not know shows the
// route's own text.
var attributionErrors = map[string]string{
	"from.required":         "AttributionErrorFrom",
	"from.format":           "AttributionErrorFrom",
	"to.required":           "AttributionErrorTo",
	"to.format":             "AttributionErrorTo",
	"to.after":              "AttributionErrorToAfter",
	"to.max_span":           "AttributionErrorSpan",
	"model.oneof":           "AttributionErrorModel",
	"group_by.oneof":        "AttributionErrorGroupBy",
	"conversion.conversion": "AttributionErrorConversion",
	"lookback_days.format":  "AttributionErrorLookback",
	"lookback_days.range":   "AttributionErrorLookback",
	"half_life_days.format": "AttributionErrorHalfLife",
	"half_life_days.range":  "AttributionErrorHalfLife",
}

// attributionView is the workspace's content.
type attributionView struct {
	// The form's fields.
	Model, GroupBy, ThenBy, From, To, Conversion, Lookback, HalfLife *formField
	// Errors are the form's bad fields, for the summary above it.
	Errors []fieldMessage
	// Problem says why no report is shown when no field is to blame.
	Problem string
	Report  *attributionShown
}

// formField is one field of a form, as the "field" template draws it.
type formField struct {
	Name, Label, Hint string
	// Type is "select", or the type of an <input>.
	Type    string
	Value   string
	Options []option
	// Error says what is wrong with the value, "" when nothing is.
	Error string
}

// DescribedBy lists the ids of the hint and the error under the field.
func (f *formField) DescribedBy() string {
	var ids []string
	if f.Hint != "" {
		ids = append(ids, "field-"+f.Name+"-hint")
	}
	if f.Error != "" {
		ids = append(ids, "field-"+f.Name+"-error")
	}
	return strings.Join(ids, " ")
}

// fieldMessage is an error of a form's field.
type fieldMessage struct {
	Field, Message string
}

// attributionShown is a report as the page draws it.
type attributionShown struct {
	// Through is the period's last day: To is the day after it.
	From, Through string
	Model, Groups string
	Conversion    string
	Lookback      string
	HalfLife      string
	Conversions   string
	Revenue       []amountShown
	Refunded      []amountShown
	MinGroupSize  int
	Folded        int64
	Raw           bool
	// Charts are the bar charts: the credited conversions by group, then
	// the revenue by group in each currency.
	Charts []barChart
	Series lineChart
	// Headers are the table's dimension columns.
	Headers []string
	Rows    []rowShown
	// CSV links to the table's download.
	CSV string
}

type amountShown struct {
	Currency, Text string
}

// rowShown is a row of the table.
type rowShown struct {
	Groups               []string
	Currency             string
	Conversions, Revenue numberShown
}

// numberShown is a number as the page writes it (Text) with its exact
// value (Value), for the <data> element that carries both.
type numberShown struct {
	Value, Text string
}

func (p *Portal) mountAttribution(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsoleAttribution, Tag: tag,
		Summary: "The attribution workspace: the report of GET /v1/analytics/attribution as bar charts and a table, " +
			"with the conversions of the period per day or week",
		Description: "The query is the route's: `from` and `to` (dates; the last 30 days when left out), `model`, " +
			"`group_by` (one dimension, or two joined by a comma), `conversion`, `lookback_days`, `half_life_days`; " +
			"the form's `then_by` adds a second dimension to `group_by`. The report is the route's for the same " +
			"role, small groups folded alike. A bad value answers 400 with the page naming the field; a grouping " +
			"the role may not see 403; too many reports at once 429 with Retry-After; a report past the time or " +
			"memory limit 503.",
		Responses: map[int]any{200: web.Body{ContentType: fiber.MIMETextHTMLCharsetUTF8}, 303: nil, 400: nil, 403: nil, 429: nil, 503: nil},
	}, p.consoleAttribution)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsoleAttributionCSV, Tag: tag,
		Summary:     "The attribution workspace's table as CSV: what GET /v1/analytics/attribution?format=csv answers",
		Description: "The same query as `/console/attribution`.",
		Responses:   map[int]any{200: web.Body{ContentType: "text/csv"}, 303: nil, 400: nil, 403: nil, 429: nil, 503: nil},
	}, p.consoleAttributionCSV)
}

// attributionQuery reads the workspace's query, with the defaults of a
// form that names nothing.
func (p *Portal) attributionQuery(c *fiber.Ctx) AttributionQuery {
	ch := p.console.AttributionChoices
	from, to := lastDays(p.now(), attributionPeriodDays)
	q := AttributionQuery{
		From: c.Query("from", from), To: c.Query("to", to),
		Model: c.Query("model", ch.DefaultModel), GroupBy: c.Query("group_by", ch.DefaultGroupBy),
		Conversion:   c.Query("conversion", ch.DefaultConversion),
		LookbackDays: c.Query("lookback_days", strconv.FormatFloat(ch.LookbackDays, 'f', -1, 64)),
		HalfLifeDays: c.Query("half_life_days"),
	}
	if then := c.Query("then_by"); then != "" {
		q.GroupBy += "," + then
	}
	return q
}

func (p *Portal) consoleAttribution(c *fiber.Ctx) error {
	pg, pr, done, err := p.consolePage(c, pathConsoleAttribution, "ConsoleAttributionTitle")
	if done || err != nil {
		return err
	}
	q := p.attributionQuery(c)
	v := p.attributionForm(pg.L, q)
	pg.Attribution = v
	rep, err := p.console.Attribution(c.UserContext(), pr, q)
	status := fiber.StatusOK
	var verr *errs.ValidationError
	switch kind := errs.Kind(err); {
	case err == nil:
		v.Report = showAttribution(pg.L, rep, q)
	case errors.As(err, &verr):
		status = fiber.StatusBadRequest
		for _, fe := range verr.Errors {
			v.fail(pg.L, fe, p.console.AttributionChoices.MaxSpanDays)
		}
	case kind == errs.ErrForbidden:
		status = fiber.StatusForbidden
		v.GroupBy.Error = pg.L.T("AttributionErrorForbidden")
		v.Errors = append(v.Errors, fieldMessage{Field: v.GroupBy.Name, Message: v.GroupBy.Error})
	case kind == errs.ErrRateLimited:
		status = fiber.StatusTooManyRequests
		secs := int(math.Ceil(max(errs.RetryAfter(err), time.Second).Seconds()))
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		v.Problem = pg.L.T("AttributionBusy", "Seconds", secs)
	case kind == errs.ErrUnavailable:
		status = fiber.StatusServiceUnavailable
		v.Problem = pg.L.T("AttributionTooBig")
	default:
		return fmt.Errorf("attribution report: %w", err)
	}
	c.Status(status)
	return p.render(c, "console-attribution", pg)
}

func (p *Portal) consoleAttributionCSV(c *fiber.Ctx) error {
	_, pr, done, err := p.consolePage(c, pathConsoleAttribution, "ConsoleAttributionTitle")
	if done || err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := p.console.AttributionCSV(c.UserContext(), &buf, pr, p.attributionQuery(c)); err != nil {
		return fmt.Errorf("write the attribution table: %w", err)
	}
	setSecurityHeaders(c, false)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="attribution.csv"`)
	return c.Send(buf.Bytes())
}

// attributionForm returns the form for q, holding what was asked.
func (p *Portal) attributionForm(l *localizer, q AttributionQuery) *attributionView {
	ch := p.console.AttributionChoices
	field := func(name, typ, value string) *formField {
		f := &formField{Name: name, Label: l.T("AttributionField_" + name), Type: typ, Value: value}
		if slices.Contains(attributionHints, name) {
			f.Hint = l.T("AttributionHint_" + name)
		}
		return f
	}
	dims := strings.SplitN(q.GroupBy, ",", 2)
	first, second := dims[0], ""
	if len(dims) == 2 {
		second = dims[1]
	}
	v := &attributionView{
		Model: field("model", "select", q.Model), GroupBy: field("group_by", "select", first),
		ThenBy: field("then_by", "select", second),
		From:   field("from", "date", q.From), To: field("to", "date", q.To),
		Conversion: field("conversion", "text", q.Conversion),
		Lookback:   field("lookback_days", "number", q.LookbackDays), HalfLife: field("half_life_days", "number", q.HalfLifeDays),
	}
	for _, m := range ch.Models {
		v.Model.Options = append(v.Model.Options, option{Value: m, Label: l.T("AttributionModel_" + m), Selected: m == q.Model})
	}
	v.ThenBy.Options = []option{{Value: "", Label: l.T("AttributionNoSecond"), Selected: second == ""}}
	for _, d := range ch.Dimensions {
		label := l.T("AttributionGroup_" + d)
		v.GroupBy.Options = append(v.GroupBy.Options, option{Value: d, Label: label, Selected: d == first})
		v.ThenBy.Options = append(v.ThenBy.Options, option{Value: d, Label: label, Selected: d == second})
	}
	return v
}

// fail marks the field a validation error of the route names, with the
// workspace's message for it.
func (v *attributionView) fail(l *localizer, fe errs.FieldError, maxSpanDays float64) {
	f := map[string]*formField{
		"from": v.From, "to": v.To, "model": v.Model, "group_by": v.GroupBy, "conversion": v.Conversion,
		"lookback_days": v.Lookback, "half_life_days": v.HalfLife,
	}[fe.Field]
	if f == nil {
		v.Problem = fe.Message
		return
	}
	msg := fe.Message
	if id, ok := attributionErrors[fe.Field+"."+fe.Rule]; ok {
		msg = l.T(id, "Days", strconv.FormatFloat(maxSpanDays, 'f', -1, 64))
	}
	if f.Error != "" {
		f.Error += " "
	}
	f.Error += msg
	v.Errors = append(v.Errors, fieldMessage{Field: f.Name, Message: msg})
}

// showAttribution lays a report out for the page: its totals, its bar
// charts, its table and its series.
func showAttribution(l *localizer, rep AttributionReport, q AttributionQuery) *attributionShown {
	pr := message.NewPrinter(l.Tag())
	count := func(f float64) string { return pr.Sprint(number.Decimal(f, number.MaxFractionDigits(2))) }
	money := func(s string) string {
		f, _ := strconv.ParseFloat(s, 64)
		return pr.Sprint(number.Decimal(f, number.MinFractionDigits(2), number.MaxFractionDigits(2)))
	}
	var dims []string
	for _, d := range rep.Dimensions {
		dims = append(dims, l.T("AttributionGroup_"+d))
	}
	groups := strings.Join(dims, " / ")
	s := &attributionShown{
		From: rep.From.UTC().Format(time.DateOnly), Through: rep.To.Add(-time.Nanosecond).UTC().Format(time.DateOnly),
		Model: l.T("AttributionModel_" + rep.Model), Groups: groups, Conversion: rep.Conversion,
		Lookback: count(rep.LookbackDays), Conversions: count(rep.Conversions),
		MinGroupSize: rep.MinGroupSize, Folded: int64(rep.Folded), Raw: rep.Raw, Headers: dims,
		CSV: pathConsoleAttributionCSV + "?" + q.values().Encode(),
	}
	if rep.HalfLifeDays > 0 {
		s.HalfLife = count(rep.HalfLifeDays)
	}
	for _, a := range rep.Revenue {
		s.Revenue = append(s.Revenue, amountShown{Currency: a.Currency, Text: money(a.Value)})
	}
	for _, a := range rep.Refunded {
		s.Refunded = append(s.Refunded, amountShown{Currency: a.Currency, Text: money(a.Value)})
	}

	// One bar per group for the conversions, whatever their currency; one
	// chart per currency for the revenue.
	var names []string
	byGroup := map[string]float64{}
	byCurrency := map[string][]AttributionRow{}
	var currencies []string
	for _, r := range rep.Rows {
		if _, ok := byGroup[r.Group]; !ok {
			names = append(names, r.Group)
		}
		byGroup[r.Group] += r.Conversions
		s.Rows = append(s.Rows, rowShown{
			Groups: r.Groups, Currency: r.Currency,
			Conversions: numberShown{Value: strconv.FormatFloat(r.Conversions, 'f', -1, 64), Text: count(r.Conversions)},
			Revenue:     numberShown{Value: r.Revenue, Text: money(r.Revenue)},
		})
		if r.Currency == "" {
			continue
		}
		if _, ok := byCurrency[r.Currency]; !ok {
			currencies = append(currencies, r.Currency)
		}
		byCurrency[r.Currency] = append(byCurrency[r.Currency], r)
	}
	if len(names) > 0 {
		bars := make([]chartValue, len(names))
		for i, n := range names {
			bars[i] = chartValue{Label: n, Value: byGroup[n], Text: count(byGroup[n])}
		}
		s.Charts = append(s.Charts, newBarChart(l, "chart-conversions", l.T("AttributionBarsConversions", "Groups", groups), bars))
	}
	slices.Sort(currencies)
	for _, cur := range currencies {
		var bars []chartValue
		earned := false
		for _, r := range byCurrency[cur] {
			f, _ := strconv.ParseFloat(r.Revenue, 64)
			earned = earned || f != 0
			bars = append(bars, chartValue{Label: r.Group, Value: f, Text: money(r.Revenue)})
		}
		if !earned {
			continue
		}
		s.Charts = append(s.Charts, newBarChart(l, "chart-revenue-"+strings.ToLower(cur),
			l.T("AttributionBarsRevenue", "Currency", cur, "Groups", groups), bars))
	}
	s.Series = newLineChart(l, rep, count)
	return s
}

// The bar charts' geometry, in the units of their viewBox: a column of
// labels, then the bars, then room for each bar's number.
const (
	barChartWidth = 760
	barLabelEnd   = 212
	barStart      = 220
	barMaxWidth   = 440
	barRow        = 30
	barHeight     = 20
	// barChartMax is the most bars one chart draws; the table lists
	// every row.
	barChartMax = 20
	// barLabelMax is the most characters of a group a label shows; the
	// chart's description and the table name it whole.
	barLabelMax = 30
)

// barChart is a horizontal bar chart, drawn as inline SVG.
type barChart struct {
	ID, Title, Desc string
	Width, Height   int
	Bars            []chartBar
	// Total counts the groups, More those the chart leaves out.
	Total, More int
}

// chartValue is one value of a chart.
type chartValue struct {
	Label string
	Value float64
	Text  string
}

// chartBar is a bar as drawn.
type chartBar struct {
	chartValue
	// Short is the label as the chart writes it.
	Short string
	// Exact is the value for the bar's data-value.
	Exact string
	// The bar's box, its label's end and its number's start.
	X, Y, W, H, LabelX, TextY, TextX string
}

// newBarChart draws values as bars, largest first, the longest as wide
// as the chart allows.
func newBarChart(l *localizer, id, title string, values []chartValue) barChart {
	slices.SortStableFunc(values, func(a, b chartValue) int {
		switch {
		case a.Value > b.Value:
			return -1
		case a.Value < b.Value:
			return 1
		}
		return 0
	})
	shown := values[:min(len(values), barChartMax)]
	top := 0.0
	for _, v := range shown {
		top = max(top, v.Value)
	}
	ch := barChart{ID: id, Title: title, Width: barChartWidth, Height: len(shown)*barRow + 8,
		Total: len(values), More: len(values) - len(shown)}
	var desc []string
	for i, v := range shown {
		w := 0.0
		if top > 0 && v.Value > 0 {
			w = max(v.Value/top*barMaxWidth, 1)
		}
		y := float64(4 + i*barRow)
		ch.Bars = append(ch.Bars, chartBar{
			chartValue: v, Short: shorten(v.Label, barLabelMax), Exact: strconv.FormatFloat(v.Value, 'f', -1, 64),
			X: coord(barStart), Y: coord(y), W: coord(w), H: coord(barHeight),
			LabelX: coord(barLabelEnd), TextY: coord(y + barHeight*0.72), TextX: coord(barStart + w + 6),
		})
		desc = append(desc, v.Label+": "+v.Text)
	}
	ch.Desc = l.T("AttributionBarsDesc", "Shown", len(shown), "Total", len(values)) + " " + strings.Join(desc, "; ") + "."
	return ch
}

// The time series chart's geometry.
const (
	lineChartWidth  = 760
	lineChartHeight = 250
	lineLeft        = 56
	lineRight       = 744
	lineTop         = 16
	lineBottom      = 216
	// lineDotsMax is the most points the chart marks with a dot.
	lineDotsMax = 45
)

// lineChart is the conversions over time, drawn as inline SVG: an area
// under a line, with the points marked when there are few.
type lineChart struct {
	ID, Title, Desc string
	Width, Height   int
	// Left and Right bound the plot, where the grid lines run.
	Left, Right    int
	Line, Area     string
	Dots           []chartDot
	YTicks, XTicks []chartTick
	Rows           []seriesRow
}

type chartDot struct{ X, Y string }

type chartTick struct {
	X, Y, Label string
	// Anchor is the label's text-anchor.
	Anchor string
}

// seriesRow is a point of the series in the table under the chart.
type seriesRow struct {
	Period string
	Value  int64
	Text   string
}

func newLineChart(l *localizer, rep AttributionReport, count func(float64) string) lineChart {
	ch := lineChart{
		ID: "chart-series", Title: l.T("AttributionSeriesTitle_" + rep.Step),
		Width: lineChartWidth, Height: lineChartHeight, Left: lineLeft, Right: lineRight,
	}
	n := len(rep.Series)
	if n == 0 {
		ch.Desc = l.T("AttributionSeriesNone")
		return ch
	}
	var peak, total int64
	peakAt := 0
	for i, pt := range rep.Series {
		total += pt.Conversions
		if pt.Conversions > peak {
			peak, peakAt = pt.Conversions, i
		}
	}
	top := niceCeil(float64(peak))
	x := func(i int) float64 {
		if n == 1 {
			return (lineLeft + lineRight) / 2
		}
		return lineLeft + float64(i)*(lineRight-lineLeft)/float64(n-1)
	}
	y := func(v int64) float64 { return lineBottom - float64(v)/top*(lineBottom-lineTop) }
	var line, area strings.Builder
	area.WriteString("M" + coord(x(0)) + "," + coord(lineBottom))
	for i, pt := range rep.Series {
		if i > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(coord(x(i)) + "," + coord(y(pt.Conversions)))
		area.WriteString(" L" + coord(x(i)) + "," + coord(y(pt.Conversions)))
		if n <= lineDotsMax {
			ch.Dots = append(ch.Dots, chartDot{X: coord(x(i)), Y: coord(y(pt.Conversions))})
		}
		ch.Rows = append(ch.Rows, seriesRow{Period: periodLabel(rep.Step, pt), Value: pt.Conversions, Text: count(float64(pt.Conversions))})
	}
	area.WriteString(" L" + coord(x(n-1)) + "," + coord(lineBottom) + " Z")
	ch.Line, ch.Area = line.String(), area.String()
	for _, f := range []float64{0, 0.5, 1} {
		ch.YTicks = append(ch.YTicks, chartTick{X: coord(lineLeft - 8), Y: coord(lineBottom - f*(lineBottom-lineTop)), Label: count(f * top), Anchor: "end"})
	}
	// The first, the middle and the last point are named under the axis.
	ticks := slices.Compact([]int{0, n / 2, n - 1})
	anchors := map[int][]string{1: {"middle"}, 2: {"start", "end"}, 3: {"start", "middle", "end"}}[len(ticks)]
	for i, at := range ticks {
		anchor := anchors[i]
		ch.XTicks = append(ch.XTicks, chartTick{X: coord(x(at)), Y: coord(lineBottom + 22), Label: rep.Series[at].From.UTC().Format(time.DateOnly), Anchor: anchor})
	}
	if total == 0 {
		ch.Desc = l.T("AttributionSeriesNone")
		return ch
	}
	ch.Desc = l.T("AttributionSeriesDesc", "Total", count(float64(total)), "Peak", count(float64(peak)),
		"PeakAt", periodLabel(rep.Step, rep.Series[peakAt]))
	return ch
}

// periodLabel names a point of a series: its day, or its first and last
// day.
func periodLabel(step string, pt SeriesPoint) string {
	first, last := pt.From.UTC().Format(time.DateOnly), pt.To.Add(-time.Nanosecond).UTC().Format(time.DateOnly)
	if step == "day" || first == last {
		return first
	}
	return first + " – " + last
}

// niceCeil returns the smallest of 1, 2 and 5 times a power of ten that
// is at least v, for the top of an axis; 1 for nothing.
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// coord writes a chart coordinate with one decimal.
func coord(f float64) string {
	return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64)
}

// shorten cuts s to n characters, ending it with an ellipsis when cut.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
