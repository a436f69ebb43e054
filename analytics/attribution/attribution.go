// Package attribution provides marketing attribution over the consented
// analytics events: which sources, mediums, campaigns, channels or landing
// pages led to conversions, and the revenue those conversions brought,
// under a first-touch, last-touch or linear model. The report is computed
// by the warehouse in one ClickHouse query; no event is loaded into Go.
package attribution

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/errs"
)

// Attribution models.
const (
	ModelFirstTouch = "first_touch"
	ModelLastTouch  = "last_touch"
	ModelLinear     = "linear"
)

// Dimensions a report groups by.
const (
	GroupSource      = "source"
	GroupMedium      = "medium"
	GroupCampaign    = "campaign"
	GroupChannel     = "channel"
	GroupLandingPage = "landing_page"
)

// Defaults of a request that leaves a parameter out.
const (
	DefaultModel      = ModelLastTouch
	DefaultGroupBy    = GroupChannel
	DefaultConversion = "purchase"
	DefaultLookback   = 30 * 24 * time.Hour
	// MaxSpan is the longest period one report covers.
	MaxSpan = 400 * 24 * time.Hour
)

// Direct is the group credited with conversions that had no known touch
// in the lookback window.
const Direct = "(direct)"

// Models lists the accepted models.
func Models() []string { return []string{ModelFirstTouch, ModelLastTouch, ModelLinear} }

// GroupBys lists the accepted dimensions.
func GroupBys() []string {
	return []string{GroupSource, GroupMedium, GroupCampaign, GroupChannel, GroupLandingPage}
}

// Categories returns the data categories a report grouped by groupBy
// reveals, for the access policy: the dimension's own category, the event
// types and names that select conversions, and the revenue with its
// currency. The categories follow the column comments of the events table.
func Categories(groupBy string) []string {
	dim := "user.behavior.attribution.utm"
	switch groupBy {
	case GroupChannel:
		dim = "user.behavior.browsing_history.referrer"
	case GroupLandingPage:
		dim = "user.behavior.attribution.landing_page"
	}
	return []string{
		dim,
		"user.behavior.browsing_history",
		"user.financial.price",
		"user.financial.currency",
	}
}

// Request is one report's parameters. Parse or Validate fills defaults.
type Request struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Model      string    `json:"model"`
	GroupBy    string    `json:"group_by"`
	Conversion string    `json:"conversion"`
	// Lookback is how far before a conversion a touch still counts.
	Lookback time.Duration `json:"-"`
	// LookbackDays echoes Lookback in the report.
	LookbackDays float64 `json:"lookback_days"`
}

// Row is the credit one group earned in one currency.
type Row struct {
	// Group is the value of the dimension, or Direct.
	Group string `json:"group"`
	// Conversions is the credited number of conversions; fractional under
	// the linear model.
	Conversions float64 `json:"conversions"`
	// Revenue is the credited sum of the conversions' values, exact to
	// four decimals, as a JSON string.
	Revenue decimal.Decimal `json:"revenue"`
	// Currency is the ISO code of Revenue; "" for conversions without a
	// value.
	Currency string `json:"currency"`
}

// CurrencyTotal is the revenue of every conversion in one currency.
type CurrencyTotal struct {
	Currency string          `json:"currency"`
	Revenue  decimal.Decimal `json:"revenue"`
}

// Totals sums a report's rows.
type Totals struct {
	Conversions float64         `json:"conversions"`
	Revenue     []CurrencyTotal `json:"revenue"`
}

// Report is an attribution report. Revenue is never summed across
// currencies: each row holds one group in one currency, and the totals
// list one revenue per currency.
type Report struct {
	Request Request `json:"request"`
	Rows    []Row   `json:"rows"`
	Totals  Totals  `json:"totals"`
}

// Parse reads a request from its text parameters, as the HTTP query and
// the command line give them: from and to in RFC 3339 or YYYY-MM-DD (a
// date is midnight UTC), and the names of the model, the dimension and the
// conversion. Empty values take the defaults. A bad value is an
// errs.ValidationError naming its field.
func Parse(from, to, model, groupBy, conversion string) (Request, error) {
	var r Request
	v := &errs.ValidationError{}
	var err error
	if r.From, err = parseTime(from); err != nil {
		v.Add("from", "format", err.Error())
	}
	if r.To, err = parseTime(to); err != nil {
		v.Add("to", "format", err.Error())
	}
	r.Model, r.GroupBy, r.Conversion = model, groupBy, conversion
	if err := v.Err(); err != nil {
		return Request{}, err
	}
	return r, r.Validate()
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("required: an RFC 3339 time or a YYYY-MM-DD date")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want an RFC 3339 time or a YYYY-MM-DD date")
}

// Validate fills the defaults of r and checks it, returning an
// errs.ValidationError that names every bad field.
func (r *Request) Validate() error {
	if r.Model == "" {
		r.Model = DefaultModel
	}
	if r.GroupBy == "" {
		r.GroupBy = DefaultGroupBy
	}
	if r.Conversion == "" {
		r.Conversion = DefaultConversion
	}
	if r.Lookback == 0 {
		r.Lookback = DefaultLookback
	}
	r.LookbackDays = r.Lookback.Hours() / 24
	v := &errs.ValidationError{}
	switch {
	case r.From.IsZero():
		v.Add("from", "required", "from is required")
	case r.To.IsZero():
		v.Add("to", "required", "to is required")
	case !r.To.After(r.From):
		v.Add("to", "after", "to must be after from")
	case r.To.Sub(r.From) > MaxSpan:
		v.Add("to", "max_span", "a report covers at most 400 days")
	}
	if !slices.Contains(Models(), r.Model) {
		v.Add("model", "oneof", "model must be one of "+strings.Join(Models(), ", "))
	}
	if !slices.Contains(GroupBys(), r.GroupBy) {
		v.Add("group_by", "oneof", "group_by must be one of "+strings.Join(GroupBys(), ", "))
	}
	if len(r.Conversion) > 100 {
		v.Add("conversion", "max_length", "conversion is at most 100 characters")
	}
	if r.Lookback < time.Hour || r.Lookback > 365*24*time.Hour {
		v.Add("lookback", "range", "the lookback window is between one hour and 365 days")
	}
	return v.Err()
}

// reportSQL computes a report in the engine. Every choice is a parameter,
// so the text never changes and no request value becomes SQL.
//
// ev reads the period plus the lookback window before it, with FINAL
// because a resent event stays duplicated until a merge, and gives each
// event its owner under the identity rule (docs/policies.md): the account
// it was sent under; for an anonymous event of a browser, the account that
// next signed in on that browser (an ASOF JOIN finds the first sign-in at
// or after the event in visitor_links); for an anonymous event after the
// browser's last sign-in, the browser's stretch ("v:" and its id); and for
// an event without either id, nobody. conv holds the conversions of the
// period: events whose type or name is the asked conversion. touch holds
// the page views whose chosen dimension is known; "(not set)", "(none)"
// and direct visits are not touches, so a conversion reached only through
// them is credited to "(direct)". pairs links each conversion to the
// touches of the same owner in the lookback window; events of nobody pair
// with nothing. credit picks, per conversion, the groups and their shares
// under the model, and the outer query sums the shares per group and
// currency. Revenue is divided as Decimal(38, 8) so that a linear split
// stays exact to the four decimals the column holds.
const reportSQL = `
WITH
ev AS (
    SELECT e.event_id AS event_id, e.event_time AS event_time, e.event_type AS event_type,
           e.event_name AS event_name, e.conversion_value AS conversion_value,
           e.currency AS currency, e.g AS g,
           multiIf(e.uid != '', concat('u:', e.uid),
                   e.visitor_id = '', '',
                   l.user_id != '', concat('u:', l.user_id),
                   concat('v:', e.visitor_id)) AS owner
    FROM (
        SELECT event_id, event_time, event_type, event_name, visitor_id, ifNull(user_id, '') AS uid,
               conversion_value, currency,
               toString(multiIf(
                   {group_by:String} = 'source', source,
                   {group_by:String} = 'medium', medium,
                   {group_by:String} = 'campaign', campaign,
                   {group_by:String} = 'landing_page', landing_page,
                   channel)) AS g
        FROM events FINAL
        WHERE event_time >= {from:DateTime64(3)} - toIntervalSecond({lookback:UInt32})
          AND event_time < {to:DateTime64(3)}
    ) AS e
    ASOF LEFT JOIN (
        SELECT visitor_id, user_id, linked_at FROM visitor_links FINAL
    ) AS l ON e.visitor_id = l.visitor_id AND e.event_time <= l.linked_at
    SETTINGS join_use_nulls = 0
),
conv AS (
    SELECT event_id, event_time, owner, conversion_value, currency
    FROM ev
    WHERE (event_type = {conversion:String} OR event_name = {conversion:String})
      AND event_time >= {from:DateTime64(3)}
),
touch AS (
    SELECT event_id, event_time, owner, g
    FROM ev
    WHERE event_type = 'page_view' AND owner != ''
      AND lower(g) NOT IN ('', '(not set)', '(none)', '(direct)', 'direct')
),
pairs AS (
    SELECT DISTINCT c.event_id AS cid, t.event_id AS tid, t.event_time AS tt, t.g AS g
    FROM (SELECT * FROM conv WHERE owner != '') AS c
    INNER JOIN touch AS t ON t.owner = c.owner
    WHERE t.event_time <= c.event_time
      AND t.event_time >= c.event_time - toIntervalSecond({lookback:UInt32})
),
per_conv AS (
    SELECT cid,
           argMin(g, (tt, tid)) AS first_g,
           argMax(g, (tt, tid)) AS last_g,
           groupArray(g) AS gs
    FROM pairs
    GROUP BY cid
),
credit AS (
    SELECT c.currency AS currency, c.conversion_value AS value,
           arrayJoin(multiIf(
               empty(p.gs), [tuple('(direct)', toUInt64(1))],
               {model:String} = 'first_touch', [tuple(p.first_g, toUInt64(1))],
               {model:String} = 'last_touch', [tuple(p.last_g, toUInt64(1))],
               arrayMap(x -> tuple(x, toUInt64(length(p.gs))), p.gs))) AS share
    FROM conv AS c LEFT JOIN per_conv AS p ON p.cid = c.event_id
    SETTINGS join_use_nulls = 0
)
SELECT tupleElement(share, 1) AS grp,
       currency,
       sum(1 / tupleElement(share, 2)) AS conversions,
       toDecimal128(round(sum(toDecimal128(value, 8) / tupleElement(share, 2)), 4), 4) AS revenue
FROM credit
GROUP BY grp, currency
ORDER BY conversions DESC, grp ASC, currency ASC
`

type row struct {
	Group       string          `ch:"grp"`
	Conversions float64         `ch:"conversions"`
	Revenue     decimal.Decimal `ch:"revenue"`
	Currency    string          `ch:"currency"`
}

// Run computes the report r asks for, after filling its defaults and
// checking it with Validate.
func Run(ctx context.Context, w warehouse.Warehouse, r Request) (Report, error) {
	if err := r.Validate(); err != nil {
		return Report{}, err
	}
	var rows []row
	err := w.Select(ctx, &rows, reportSQL,
		warehouse.Named("from", r.From),
		warehouse.Named("to", r.To),
		warehouse.Named("lookback", uint32(r.Lookback/time.Second)),
		warehouse.Named("group_by", r.GroupBy),
		warehouse.Named("model", r.Model),
		warehouse.Named("conversion", r.Conversion),
	)
	if err != nil {
		return Report{}, fmt.Errorf("attribution query: %w", err)
	}
	rep := Report{Request: r, Rows: make([]Row, 0, len(rows))}
	byCurrency := map[string]decimal.Decimal{}
	for _, x := range rows {
		rep.Rows = append(rep.Rows, Row(x))
		rep.Totals.Conversions += x.Conversions
		byCurrency[x.Currency] = byCurrency[x.Currency].Add(x.Revenue)
	}
	rep.Totals.Revenue = make([]CurrencyTotal, 0, len(byCurrency))
	for c, v := range byCurrency {
		rep.Totals.Revenue = append(rep.Totals.Revenue, CurrencyTotal{Currency: c, Revenue: v})
	}
	slices.SortFunc(rep.Totals.Revenue, func(a, b CurrencyTotal) int { return strings.Compare(a.Currency, b.Currency) })
	return rep, nil
}
