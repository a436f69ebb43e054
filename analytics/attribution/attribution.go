// Package attribution provides marketing attribution over the consented
// analytics events: which sources, mediums, campaigns, channels or landing
// pages (or pairs of them) led to conversions, and the revenue those
// conversions brought, under six models: first touch, last touch, last
// non-direct touch, linear, position based and time decay.
//
// A touch is a visit: the first page view of a session, whose landing
// page, referrer and UTM values the session's other page views repeat.
// One ClickHouse query gathers, per owner (the identity rule of
// docs/policies.md), the visits that some conversion's lookback window
// can hold and the conversions, each owner's visits gathered once and
// sorted once; Go then credits each owner's row under the model with
// running sums over the sorted visits, never pairing touches with
// conversions. The work grows with the number of visits and conversions,
// not with their product. docs/scaling.md ("Attribution") has the
// measurements behind this shape.
package attribution

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/internal/errs"
)

// Attribution models.
const (
	ModelFirstTouch = "first_touch"
	ModelLastTouch  = "last_touch"
	// ModelLastNonDirect credits the last touch that came from somewhere:
	// a direct visit (no source and no medium) is skipped.
	ModelLastNonDirect = "last_non_direct"
	ModelLinear        = "linear"
	// ModelPositionBased gives 40% to the first touch, 40% to the last
	// and splits 20% between the touches in between; one touch gets
	// everything, two touches half each.
	ModelPositionBased = "position_based"
	// ModelTimeDecay weighs each touch by 2^(-age/half life), age being
	// the time from the touch to the conversion.
	ModelTimeDecay = "time_decay"
)

// Dimensions a report groups by.
const (
	GroupSource      = "source"
	GroupMedium      = "medium"
	GroupCampaign    = "campaign"
	GroupChannel     = "channel"
	GroupLandingPage = "landing_page"
)

// Conversion event types: the tracker's window.steward.conversion(name,
// value, currency) stores a conversion as a signup event when name is
// "signup" and as a purchase event otherwise, with event_name set to name.
const (
	ConversionSignup   = "signup"
	ConversionPurchase = "purchase"
)

// otherEventTypes are the event types of policies/data/consent_map.json
// that are not conversions. A conversion parameter naming one of them is
// refused: it would silently report nothing, since conversions are only
// looked for among signup and purchase events.
var otherEventTypes = []string{"page_view", "feature_interaction", "pricing_view", "performance", "error"}

// Defaults of a request that leaves a parameter out.
const (
	DefaultModel      = ModelLastTouch
	DefaultGroupBy    = GroupChannel
	DefaultConversion = ConversionPurchase
	DefaultLookback   = 30 * 24 * time.Hour
	DefaultHalfLife   = 7 * 24 * time.Hour
	// DefaultMaxSpan is the longest period one report covers unless the
	// module is configured otherwise.
	DefaultMaxSpan = 400 * 24 * time.Hour
	// MaxSpanLimit bounds the configurable span: the query packs an
	// event's time, in milliseconds since the lookback window before the
	// period, into 37 bits (about 1590 days), and the lookback adds up to
	// 365 days.
	MaxSpanLimit = 1000 * 24 * time.Hour
)

// Lookback and half-life bounds.
const (
	minLookback = time.Hour
	maxLookback = 365 * 24 * time.Hour
	minHalfLife = time.Hour
	maxHalfLife = 365 * 24 * time.Hour
	// maxDecayExponent bounds (period + lookback) / half life: the time
	// decay weights are powers of two of that ratio, and float64 holds
	// up to 2^1023.
	maxDecayExponent = 900
	// maxConversionName is the longest conversion name the ingest
	// accepts as an event name.
	maxConversionName = 100
)

// Group labels that are not values of a dimension.
const (
	// Direct is the group credited with conversions that had no touch in
	// the lookback window, and the value of a touch whose dimension is
	// unknown ("", "(not set)", "(none)", "(direct)", "direct").
	Direct = "(direct)"
	// Other is the group small groups are folded into (see MinGroupSize).
	Other = "(other)"
)

// Models lists the accepted models.
func Models() []string {
	return []string{ModelFirstTouch, ModelLastTouch, ModelLastNonDirect, ModelLinear, ModelPositionBased, ModelTimeDecay}
}

// GroupBys lists the accepted dimensions. A report groups by one of them
// or by two, joined by a comma.
func GroupBys() []string {
	return []string{GroupSource, GroupMedium, GroupCampaign, GroupChannel, GroupLandingPage}
}

// Categories returns the data categories a report grouped by dims
// reveals, for the access policy: each dimension's own category, the
// event types and names that select conversions, and the revenue with its
// currency. The categories follow the column comments of the events table.
func Categories(dims []string) []string {
	out := []string{"user.behavior.browsing_history", "user.financial.price", "user.financial.currency"}
	for _, d := range dims {
		c := "user.behavior.attribution.utm"
		switch d {
		case GroupChannel:
			c = "user.behavior.browsing_history.referrer"
		case GroupLandingPage:
			c = "user.behavior.attribution.landing_page"
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// Params are a report's parameters as text, as the HTTP query string and
// the command line give them. Empty values take the defaults.
type Params struct {
	// From and To bound the period of the conversions, [From, To), in
	// RFC 3339 or YYYY-MM-DD (a date is midnight UTC).
	From, To string
	Model    string
	// GroupBy is one dimension or two joined by a comma.
	GroupBy    string
	Conversion string
	// LookbackDays is how many days before a conversion a touch still
	// counts; it may have a fraction.
	LookbackDays string
	// HalfLifeDays is the time decay model's half life in days.
	HalfLifeDays string
}

// Request is one report's parameters, checked. Parse or Validate fills
// defaults.
type Request struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Model string    `json:"model"`
	// GroupBy is the dimensions joined by a comma, as asked.
	GroupBy string `json:"group_by"`
	// Dimensions lists the dimensions of GroupBy in order.
	Dimensions []string `json:"dimensions"`
	Conversion string   `json:"conversion"`
	// Lookback is how far before a conversion a touch still counts.
	Lookback time.Duration `json:"-"`
	// LookbackDays echoes Lookback in the report.
	LookbackDays float64 `json:"lookback_days"`
	// HalfLife is the half life of the time decay model.
	HalfLife time.Duration `json:"-"`
	// HalfLifeDays echoes HalfLife for the time decay model.
	HalfLifeDays float64 `json:"half_life_days,omitempty"`
}

// Parse reads a request from its text parameters and checks it with
// Validate; a report may span at most maxSpan (DefaultMaxSpan when zero).
// A bad value is an errs.ValidationError naming its field.
func Parse(p Params, maxSpan time.Duration) (Request, error) {
	var r Request
	v := &errs.ValidationError{}
	var err error
	if r.From, err = parseTime(p.From); err != nil {
		v.Add("from", "format", err.Error())
	}
	if r.To, err = parseTime(p.To); err != nil {
		v.Add("to", "format", err.Error())
	}
	if p.LookbackDays != "" {
		if r.Lookback, err = parseDays(p.LookbackDays); err != nil {
			v.Add("lookback_days", "format", "lookback_days must be a number of days")
		}
	}
	if p.HalfLifeDays != "" {
		if r.HalfLife, err = parseDays(p.HalfLifeDays); err != nil {
			v.Add("half_life_days", "format", "half_life_days must be a number of days")
		}
	}
	r.Model, r.GroupBy, r.Conversion = p.Model, p.GroupBy, p.Conversion
	if err := v.Err(); err != nil {
		return Request{}, err
	}
	return r, r.Validate(maxSpan)
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

// parseDays reads a positive number of days, with a fraction if need be.
func parseDays(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 10000 {
		return 0, fmt.Errorf("want a positive number of days")
	}
	return time.Duration(f * float64(24*time.Hour)).Round(time.Millisecond), nil
}

// Validate fills the defaults of r and checks it, returning an
// errs.ValidationError that names every bad field. A report may span at
// most maxSpan (DefaultMaxSpan when zero).
func (r *Request) Validate(maxSpan time.Duration) error {
	if maxSpan <= 0 {
		maxSpan = DefaultMaxSpan
	}
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
	r.HalfLifeDays = 0
	v := &errs.ValidationError{}
	switch {
	case r.From.IsZero():
		v.Add("from", "required", "from is required")
	case r.To.IsZero():
		v.Add("to", "required", "to is required")
	case !r.To.After(r.From):
		v.Add("to", "after", "to must be after from")
	case r.To.Sub(r.From) > maxSpan:
		v.Add("to", "max_span", fmt.Sprintf("a report covers at most %s days; narrow the period", days(maxSpan)))
	}
	if !slices.Contains(Models(), r.Model) {
		v.Add("model", "oneof", "model must be one of "+strings.Join(Models(), ", "))
	}
	dims, msg := parseDims(r.GroupBy)
	if msg != "" {
		v.Add("group_by", "oneof", msg)
	} else {
		r.Dimensions, r.GroupBy = dims, strings.Join(dims, ",")
	}
	if msg := checkConversion(r.Conversion); msg != "" {
		v.Add("conversion", "conversion", msg)
	}
	if r.Lookback < minLookback || r.Lookback > maxLookback {
		v.Add("lookback_days", "range", "the lookback window is between one hour and 365 days")
	}
	if r.Model == ModelTimeDecay {
		if r.HalfLife == 0 {
			r.HalfLife = DefaultHalfLife
		}
		r.HalfLifeDays = r.HalfLife.Hours() / 24
		switch {
		case r.HalfLife < minHalfLife || r.HalfLife > maxHalfLife:
			v.Add("half_life_days", "range", "the half life is between one hour and 365 days")
		case !r.From.IsZero() && !r.To.IsZero() &&
			float64(r.To.Sub(r.From)+r.Lookback)/float64(r.HalfLife) > maxDecayExponent:
			v.Add("half_life_days", "range", fmt.Sprintf("the half life must be at least 1/%d of the period plus the lookback window", maxDecayExponent))
		}
	}
	return v.Err()
}

// parseDims splits a group_by value into one or two distinct dimensions,
// or returns why it cannot.
func parseDims(s string) ([]string, string) {
	parts := strings.Split(s, ",")
	want := "group_by must be one of " + strings.Join(GroupBys(), ", ") + ", or two of them joined by a comma"
	if len(parts) > 2 {
		return nil, want
	}
	dims := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if !slices.Contains(GroupBys(), p) || slices.Contains(dims, p) {
			return nil, want
		}
		dims = append(dims, p)
	}
	return dims, ""
}

// checkConversion returns why name cannot be a conversion, or "".
func checkConversion(name string) string {
	const rule = "conversion must be signup, purchase, or the name of a custom conversion " +
		"(sent with window.steward.conversion, stored as a purchase or signup event)"
	switch {
	case slices.Contains(otherEventTypes, name):
		return rule + "; " + name + " events are not conversions"
	case utf8.RuneCountInString(name) > maxConversionName || !utf8.ValidString(name):
		return rule + "; a name is at most 100 characters"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return rule + "; a name has no control characters"
		}
	}
	return ""
}

// days formats a duration as a number of days.
func days(d time.Duration) string {
	return strconv.FormatFloat(d.Hours()/24, 'f', -1, 64)
}

// Row is the credit one group earned in one currency.
type Row struct {
	// Group is the value of the dimension, Direct, or Other. A report by
	// two dimensions joins their values with " / "; Groups has them
	// apart.
	Group string `json:"group"`
	// Groups holds the value of each dimension of the report, in the
	// order of Request.Dimensions.
	Groups []string `json:"groups"`
	// Conversions is the credited number of conversions; fractional
	// under the linear, position based and time decay models.
	Conversions float64 `json:"conversions"`
	// Revenue is the credited sum of the conversions' values, net of
	// refunds where known, exact to four decimals, as a JSON string.
	Revenue decimal.Decimal `json:"revenue"`
	// Currency is the ISO code of Revenue; "" for conversions without a
	// value.
	Currency string `json:"currency"`

	// owners is the number of distinct owners whose conversions credit
	// the row; it decides folding and is never shown.
	owners int
}

// CurrencyTotal is an amount in one currency.
type CurrencyTotal struct {
	Currency string          `json:"currency"`
	Revenue  decimal.Decimal `json:"revenue"`
}

// Totals sums a report's rows.
type Totals struct {
	Conversions float64 `json:"conversions"`
	// Revenue lists the revenue of every conversion, net of refunds, one
	// entry per currency.
	Revenue []CurrencyTotal `json:"revenue"`
	// Refunded lists the refunds netted out of Revenue, per currency.
	Refunded []CurrencyTotal `json:"refunded"`
}

// Report is an attribution report. Revenue is never summed across
// currencies: each row holds one group in one currency, and the totals
// list one amount per currency.
type Report struct {
	Request Request `json:"request"`
	Rows    []Row   `json:"rows"`
	Totals  Totals  `json:"totals"`
	// MinGroupSize is the number of distinct people a row needs to be
	// shown on its own; smaller rows are folded into an Other row of
	// their currency. 0 when nothing is folded (a raw report).
	MinGroupSize int `json:"min_group_size"`
	// Folded counts the rows (one group in one currency) folded into the
	// Other rows.
	Folded int `json:"folded"`
	// Raw is true when small groups were shown on their own, for a caller
	// the access policy lets read the identifiers the report is built on.
	Raw bool `json:"raw"`
}

// fold moves every row with fewer than k distinct owners into an Other
// row of its currency, after the rows that stay, and records k and the
// number of rows folded. Totals are not changed: they already include
// every row.
func (rep *Report) fold(k int) {
	rep.MinGroupSize = k
	kept := rep.Rows[:0:0]
	other := map[string]*Row{}
	var currencies []string
	for _, r := range rep.Rows {
		if r.owners >= k {
			kept = append(kept, r)
			continue
		}
		rep.Folded++
		o, ok := other[r.Currency]
		if !ok {
			groups := make([]string, len(rep.Request.Dimensions))
			for i := range groups {
				groups[i] = Other
			}
			o = &Row{Group: Other, Groups: groups, Revenue: decimal.Zero, Currency: r.Currency}
			other[r.Currency] = o
			currencies = append(currencies, r.Currency)
		}
		o.Conversions += r.Conversions
		o.Revenue = o.Revenue.Add(r.Revenue)
		// The owners of the folded rows may overlap; their sum is an
		// upper bound kept only for order.
		o.owners += r.owners
	}
	slices.Sort(currencies)
	for _, c := range currencies {
		kept = append(kept, *other[c])
	}
	rep.Rows = kept
}

// sortRows orders rows by credited conversions, most first, then by group
// and currency.
func sortRows(rows []Row) {
	slices.SortStableFunc(rows, func(a, b Row) int {
		switch {
		case a.Conversions > b.Conversions:
			return -1
		case a.Conversions < b.Conversions:
			return 1
		}
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(a.Currency, b.Currency)
	})
}
