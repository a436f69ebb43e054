package attribution

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/analytics/warehouse"
)

// Limits bound the work of one report query in the warehouse. Zero fields
// leave the engine's own setting.
type Limits struct {
	// MaxTime stops a query that runs longer (max_execution_time).
	MaxTime time.Duration
	// MaxMemory stops a query that needs more bytes (max_memory_usage).
	MaxMemory int64
}

// settings returns the engine settings that hold a query to lim.
func (lim Limits) settings() []string {
	var out []string
	if lim.MaxTime > 0 {
		out = append(out, "max_execution_time = "+strconv.FormatFloat(lim.MaxTime.Seconds(), 'f', 3, 64))
	}
	if lim.MaxMemory > 0 {
		out = append(out, "max_memory_usage = "+strconv.FormatInt(lim.MaxMemory, 10),
			"max_bytes_before_external_group_by = "+strconv.FormatInt(lim.MaxMemory/2, 10),
			"max_result_bytes = "+strconv.FormatInt(lim.MaxMemory/4, 10))
	}
	return out
}

// Refund is money given back on an order, as billing records it.
type Refund struct {
	// OrderID is the order's id, which a purchase event names in its
	// props as "order_id".
	OrderID string
	// Amount is the refunded amount to date, in the currency's major
	// unit (12.50, not 1250).
	Amount decimal.Decimal
	// Currency is the ISO 4217 code of Amount, in any case.
	Currency string
}

// RunOptions are what Run needs besides the request.
type RunOptions struct {
	// Refunds are netted out of the revenue of the purchase conversions
	// whose props name their order_id.
	Refunds []Refund
	// Limits bound the query.
	Limits Limits
}

// dimColumns maps a dimension to its column of the events table. Only
// these names ever reach the query text.
var dimColumns = map[string]string{
	GroupSource:      "source",
	GroupMedium:      "medium",
	GroupCampaign:    "campaign",
	GroupChannel:     "channel",
	GroupLandingPage: "landing_page",
}

// reportSQL gathers, in one pass over the visits and conversions of the
// period (and the lookback window before it), each owner's touches and
// conversions; credit.go applies the model to each owner's row. Its text is
// assembled from this file's constants only: the dimension columns come
// from dimColumns, and the limits are numbers from the configuration.
// Every value of a request is a parameter.
//
// A touch is a visit: a row of touches, the first page view of a session
// (migrations/clickhouse/0005_touches.up.sql). The page views of a session
// share its source, campaign and landing page, so a visit credits its
// channel once however many pages it shows, and a report reads one row per
// visit rather than one per page view.
//
// names1 and names2 list the known values of the dimensions among the
// touches read (the distinct values of a LowCardinality column cost
// little to read), so that each touch packs into one UInt64 (packSQL): its
// time in milliseconds since period_start (37 bits), a kind bit (2^25, set
// on every touch), a flag (2^24) set when the touch came from somewhere
// (fromSomewhereSQL), and the code of its group (24 bits; 0 for an unknown
// value, reported as Direct). Numbers group and sort far faster than the
// strings they stand for, which are looked up again only for the rows of
// the result. The names come back once, in the row of owner 0, which no
// owner hash is.
//
// touch gives every touch its owner under the identity rule
// (docs/policies.md): the account it was sent under; for an anonymous
// touch, the account that next signed in on the browser (an ASOF JOIN
// finds the first sign-in at or after it in visitor_links), or else the
// browser itself. Owners are numbers, the owner hashes the engine keeps
// beside the ids (migrations/clickhouse/0008_owner_hashes.up.sql): the two
// lowest bits of a hash say whether it is an account's (0), a browser's
// (2), or a conversion's sent without any id (1), so a visitor id can
// never pose as an account. Numbers group and join several times faster
// than the ids, and no report hashes a string. The touches are read once:
// only a browser's hash is a join key, and a signed-in touch joins with 0,
// which no link has. Page views with neither id have no touch.
// conversion reads the conversions of the period, gives each its owner
// the same way, and nets the refund of its order. A conversion without
// any id has an owner of its own: it pairs with nothing, goes to Direct,
// and is no one in the counts that fold small groups. The odds that two
// of a million owners share a hash are about 1 in 10^7.
//
// touches is read FINAL, which merges only the months with unmerged parts
// (buildSQL's settings), so a session whose page views arrived apart
// counts once. Events are not read FINAL: a resent conversion is an exact
// copy, dropped by arrayCompact, and FINAL would merge every part of every
// month read, several times the cost of the rest.
//
// owner_events gathers, per owner with a conversion, its touches and its
// sorted conversions. Only the touches from the first window's start to
// the last conversion are kept and sorted (about four in ten of all
// touches, for a year's report): no conversion can credit the others.
// Each owner's row carries its packed touches in ascending order (t) and
// its conversions as parallel arrays: time, value net of refunds,
// currency and refund.
const reportSQL = `
WITH
    toUnixTimestamp64Milli({from:DateTime64(3)}) - {lookback_ms:Int64} AS start_ms,
    fromUnixTimestamp64Milli(start_ms, 'UTC') AS period_start,
    (SELECT groupArray(toString(g)) FROM (
        SELECT DISTINCT $DIM1 AS g FROM touches
        WHERE touch_time >= period_start AND touch_time < {to:DateTime64(3)}
          AND lower(g) NOT IN ('', '(not set)', '(none)', '(direct)', 'direct'))) AS names1,
    $NAMES2 AS names2,
    length(names2) + 1 + 0 * throwIf((length(names1) + 1) * (length(names2) + 1) > 16777214,
        'the dimensions have too many distinct values for one report') AS width,
    arrayEnumerate(names1) AS codes1,
    arrayEnumerate(names2) AS codes2,
links AS (
    SELECT visitor_hash AS browser, user_hash AS account, linked_at
    FROM visitor_links FINAL WHERE visitor_id != '' AND user_id != ''
),
touch AS (
    SELECT if(l.account != 0, l.account, p.owner) AS owner, p.x AS x
    FROM (
        SELECT owner_hash AS owner, if(bitAnd(owner_hash, 3) = 2, owner_hash, 0) AS browser, touch_time, $PACK AS x
        FROM touches FINAL
        WHERE touch_time >= period_start AND touch_time < {to:DateTime64(3)}
    ) AS p
    ASOF LEFT JOIN links AS l ON p.browser = l.browser AND p.touch_time <= l.linked_at
    SETTINGS join_use_nulls = 0
),
conversion AS (
    SELECT if(l.account != 0, l.account, e.owner) AS owner,
           tuple(toUnixTimestamp64Milli(e.event_time) - start_ms, cityHash64(e.event_id),
                 greatest(toDecimal128(e.value, 8) - e.refund, toDecimal128(0, 8)), e.currency,
                 least(e.refund, toDecimal128(e.value, 8))) AS c
    FROM (
        SELECT event_id, event_time, owner_hash AS owner, if(bitAnd(owner_hash, 3) = 2, owner_hash, 0) AS browser,
               conversion_value AS value, toString(currency) AS currency,
               transform(order_id, {refund_orders:Array(String)}, arrayEnumerate({refund_orders:Array(String)}), 0) AS r,
               if(r > 0 AND {refund_currencies:Array(String)}[r] = currency,
                  toDecimal128({refund_amounts:Array(String)}[r], 8), toDecimal128(0, 8)) AS refund
        FROM conversions
        WHERE event_name = {conversion:String}
          AND event_time >= {from:DateTime64(3)} AND event_time < {to:DateTime64(3)}
    ) AS e
    ASOF LEFT JOIN links AS l ON e.browser = l.browser AND e.event_time <= l.linked_at
    SETTINGS join_use_nulls = 0
),
owner_events AS (
    SELECT c.owner AS owner, t.unsorted AS unsorted, c.C AS C
    FROM (SELECT owner, groupArray(x) AS unsorted FROM touch GROUP BY owner) AS t
    RIGHT JOIN (SELECT owner, arrayCompact(arraySort(groupArray(c))) AS C FROM conversion GROUP BY owner) AS c
        ON t.owner = c.owner
    SETTINGS join_use_nulls = 0
),
owner_rows AS (
    SELECT owner,
           toUInt64(tupleElement(C[1], 1) - {lookback_ms:Int64}) * 134217728 AS first_start,
           toUInt64(tupleElement(C[-1], 1)) * 134217728 + 67108864 AS last_end,
           arraySort(arrayFilter(x -> x >= first_start AND x < last_end, unsorted)) AS t,
           arrayMap(c -> toInt64(tupleElement(c, 1)), C) AS at,
           arrayMap(c -> toDecimal128(tupleElement(c, 3), 8), C) AS value,
           arrayMap(c -> tupleElement(c, 4), C) AS cur,
           arrayMap(c -> toDecimal128(tupleElement(c, 5), 8), C) AS refund
    FROM owner_events
)
SELECT * FROM (
    SELECT owner, t, at, value, cur, refund,
           CAST([], 'Array(String)') AS n1, CAST([], 'Array(String)') AS n2
    FROM owner_rows
    UNION ALL
    SELECT toUInt64(0), CAST([], 'Array(UInt64)'), CAST([], 'Array(Int64)'), CAST([], 'Array(Decimal(38, 8))'),
           CAST([], 'Array(String)'), CAST([], 'Array(Decimal(38, 8))'), names1, names2
)
$SETTINGS`

// packSQL packs a touch into a UInt64 (see reportSQL).
const packSQL = `toUInt64(toUnixTimestamp64Milli(touch_time) - start_ms) * 134217728 + 33554432
                 + $FROM_SOMEWHERE
                 + toUInt64(transform($DIM1, names1, codes1, 0)) * width
                 + toUInt64($CODE2)`

// fromSomewhereSQL flags a touch that came from somewhere: a source or
// a medium is known. Only the last non-direct model reads the flag, so
// the others do not read the two columns.
const fromSomewhereSQL = `if(lower(source) IN ('', '(direct)', 'direct', '(none)', '(not set)')
                      AND lower(medium) IN ('', '(none)', '(not set)', 'direct'), 0, 16777216)`

// names2SQL lists the values of the second dimension, as names1 does the
// first.
const names2SQL = `(SELECT groupArray(toString(g)) FROM (
        SELECT DISTINCT $DIM2 AS g FROM touches
        WHERE touch_time >= period_start AND touch_time < {to:DateTime64(3)}
          AND lower(g) NOT IN ('', '(not set)', '(none)', '(direct)', 'direct')))`

// buildSQL assembles the query for r from the constants above.
func buildSQL(r Request, lim Limits) (string, error) {
	if !slices.Contains(Models(), r.Model) {
		return "", fmt.Errorf("attribution: unknown model %q", r.Model)
	}
	if len(r.Dimensions) == 0 || len(r.Dimensions) > 2 {
		return "", fmt.Errorf("attribution: %d dimensions, want one or two", len(r.Dimensions))
	}
	col1, ok := dimColumns[r.Dimensions[0]]
	if !ok {
		return "", fmt.Errorf("attribution: unknown dimension %q", r.Dimensions[0])
	}
	names2, code2 := "CAST([], 'Array(String)')", "0"
	if len(r.Dimensions) == 2 {
		col2, ok := dimColumns[r.Dimensions[1]]
		if !ok {
			return "", fmt.Errorf("attribution: unknown dimension %q", r.Dimensions[1])
		}
		names2 = strings.ReplaceAll(names2SQL, "$DIM2", col2)
		code2 = "transform(" + col2 + ", names2, codes2, 0)"
	}
	// FINAL on touches merges only the months whose parts have not all
	// merged yet (do_not_merge_across_partitions_select_final): a
	// session's rows never span two months. Past half the memory limit,
	// grouping spills to disk rather than stopping the query.
	settings := append([]string{"do_not_merge_across_partitions_select_final = 1"}, lim.settings()...)
	settingsSQL := "SETTINGS " + strings.Join(settings, ", ")
	fromSomewhere := "0"
	if r.Model == ModelLastNonDirect {
		fromSomewhere = fromSomewhereSQL
	}
	return strings.NewReplacer(
		"$FROM_SOMEWHERE", fromSomewhere,
		"$NAMES2", names2,
		"$CODE2", code2,
		"$DIM1", col1,
		"$SETTINGS", settingsSQL,
	).Replace(strings.ReplaceAll(reportSQL, "$PACK", packSQL)), nil
}

// queryArgs returns the parameters of reportSQL for r.
func queryArgs(r Request, refunds []Refund) []any {
	// The arrays always hold one entry, which matches no order: an empty
	// array parameter has no element type to infer in every backend.
	orders, amounts, currencies := []string{""}, []string{"0"}, []string{""}
	for _, f := range refunds {
		if f.OrderID == "" || !f.Amount.IsPositive() {
			continue
		}
		orders = append(orders, f.OrderID)
		amounts = append(amounts, f.Amount.StringFixed(8))
		currencies = append(currencies, strings.ToUpper(f.Currency))
	}
	return []any{
		warehouse.Named("from", r.From),
		warehouse.Named("to", r.To),
		warehouse.Named("lookback_ms", r.Lookback.Milliseconds()),
		warehouse.Named("conversion", r.Conversion),
		warehouse.Named("refund_orders", orders),
		warehouse.Named("refund_amounts", amounts),
		warehouse.Named("refund_currencies", currencies),
		warehouse.Named("half_life_ms", float64(max(r.HalfLife, time.Millisecond).Milliseconds())),
	}
}

// ErrLimit is wrapped by Run's error when the query stopped at one of its
// Limits, or at the number of distinct groups one report can hold.
var ErrLimit = errors.New("attribution query limit reached")

// Run computes the report r asks for, after checking it with Validate
// (with the largest span any configuration allows). Every group is a row
// of its own: Run folds nothing (Module.Report does). A query stopped by
// opts.Limits returns an error wrapping ErrLimit.
func Run(ctx context.Context, w warehouse.Warehouse, r Request, opts RunOptions) (Report, error) {
	if err := r.Validate(MaxSpanLimit); err != nil {
		return Report{}, err
	}
	query, err := buildSQL(r, opts.Limits)
	if err != nil {
		return Report{}, err
	}
	k := newCrediter(r)
	names1, names2, err := readOwners(ctx, w, k, query, queryArgs(r, opts.Refunds))
	if err != nil {
		if limitError(err) {
			return Report{}, fmt.Errorf("attribution query: %w: %w", ErrLimit, err)
		}
		return Report{}, fmt.Errorf("attribution query: %w", err)
	}
	rep := Report{Request: r, Rows: make([]Row, 0, len(k.sums))}
	width := uint64(len(names2) + 1)
	name := func(names []string, code uint64) string {
		if code == 0 || code > uint64(len(names)) {
			return Direct
		}
		return names[code-1]
	}
	revenue := map[string]decimal.Decimal{}
	for key, s := range k.sums {
		code, cur := key>>8, k.currencies[key&0xff]
		groups := []string{name(names1, code/width)}
		if len(r.Dimensions) == 2 {
			groups = append(groups, name(names2, code%width))
		}
		rev := s.revenue.decimal()
		if r.Model == ModelTimeDecay {
			rev = decimal.NewFromFloat(s.revenueF)
		}
		rev = rev.Round(4)
		conversions := roundTo(s.conversions, 6)
		if conversions == 0 && rev.IsZero() {
			// Time decay gives a touch far older than its window's last
			// one a share too small to show (2^-30 of a conversion after
			// thirty half lives): a group it alone credited would be a
			// row of zeros.
			continue
		}
		rep.Rows = append(rep.Rows, Row{
			Group: strings.Join(groups, " / "), Groups: groups,
			Conversions: conversions, Revenue: rev, Currency: cur, owners: int(s.owners),
		})
		rep.Totals.Conversions += conversions
		revenue[cur] = revenue[cur].Add(rev)
	}
	refunded := map[string]decimal.Decimal{}
	for cur, a := range k.refunded {
		refunded[k.currencies[cur]] = a.decimal().Round(4)
	}
	sortRows(rep.Rows)
	rep.Totals.Conversions = roundTo(rep.Totals.Conversions, 6)
	rep.Totals.Revenue = currencyTotals(revenue)
	rep.Totals.Refunded = currencyTotals(refunded)
	return rep, nil
}

func currencyTotals(m map[string]decimal.Decimal) []CurrencyTotal {
	out := make([]CurrencyTotal, 0, len(m))
	for c, v := range m {
		out = append(out, CurrencyTotal{Currency: c, Revenue: v})
	}
	slices.SortFunc(out, func(a, b CurrencyTotal) int { return strings.Compare(a.Currency, b.Currency) })
	return out
}

func roundTo(f float64, places int32) float64 {
	v, _ := decimal.NewFromFloat(f).Round(places).Float64()
	return v
}

// limitCodes are the ClickHouse error codes of a query stopped by a
// limit: TOO_MANY_ROWS (158), TIMEOUT_EXCEEDED (159), MEMORY_LIMIT_EXCEEDED
// (241), the throwIf (395) the query raises itself, and
// TOO_MANY_ROWS_OR_BYTES (396), the bound on the owners' rows a report
// reads into Go.
var limitCodes = []int{158, 159, 241, 395, 396}

// limitError reports whether err is ClickHouse stopping a query at a
// limit. The embedded engine's errors carry ClickHouse's own text, "Code:
// 241. DB::Exception: ..."; a server's are clickhouse-go exceptions with
// the code as a field.
func limitError(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return slices.Contains(limitCodes, int(ex.Code))
	}
	var ee *warehouse.EngineError
	if errors.As(err, &ee) {
		for _, c := range limitCodes {
			if strings.HasPrefix(ee.Message, "Code: "+strconv.Itoa(c)+".") {
				return true
			}
		}
	}
	return false
}
