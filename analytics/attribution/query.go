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
			"max_bytes_before_external_group_by = "+strconv.FormatInt(lim.MaxMemory/2, 10))
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

// refundCode is the group code of the rows that carry refunds.
const refundCode = 16777215

// reportSQL computes a report in the engine, in one pass over the visits
// and conversions of the period (and the lookback window before it). Its
// text is assembled from this file's constants only: the dimension columns
// come from dimColumns, the credit step from creditSQL by model, and the
// limits are numbers from the configuration. Every value of a request is a
// parameter.
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
// time in milliseconds since period_start (37 bits), a kind (2 bits: 0 the
// start of a conversion's window, 1 a touch, 2 a conversion), a flag set
// when the touch came from somewhere (fromSomewhereSQL), and the code of
// its group (24 bits; 0 for an unknown value, reported as
// Direct). Numbers group and sort far faster than the strings they stand
// for, which are looked up again only for the rows of the result.
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
// conversions. win sorts the touches together with two markers per
// conversion, the start of its lookback window and its time; the running
// count of touches at the markers gives each conversion the touches it
// may credit as a range (lo, hi] of the owner's sorted touches T. A touch
// at the very start of the window or at the very time of the conversion
// counts. Only the touches from the first window's start to the last
// conversion are sorted (about four in ten of all touches, for a year's
// report): the others no conversion can credit. This costs one sort of the owner's events whatever the number
// of conversions, where pairing each conversion with each touch would cost
// their product.
//
// credit applies the model (creditSQL) and emits, per owner, rows of
// (group code, currency, credited conversions, credited revenue); refunds
// come out as rows of refundCode. The outer query sums them per group and
// currency and counts the distinct owners of each, for folding small
// groups.
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
win AS (
    SELECT owner, C,
           toUInt64(tupleElement(C[1], 1) - {lookback_ms:Int64}) * 134217728 AS first_start,
           toUInt64(tupleElement(C[-1], 1)) * 134217728 + 67108864 AS last_end,
           arraySort(arrayConcat(arrayFilter(x -> x > first_start AND x < last_end, unsorted),
               arrayMap(c -> toUInt64(tupleElement(c, 1) - {lookback_ms:Int64}) * 134217728, C),
               arrayMap(c -> toUInt64(tupleElement(c, 1)) * 134217728 + 67108864, C))) AS M,
           arrayCumSum(arrayMap(x -> toUInt32(bitAnd(x, 100663296) = 33554432), M)) AS counted,
           arrayFilter((n, x) -> bitAnd(x, 100663296) = 0, counted, M) AS lo,
           arrayFilter((n, x) -> bitAnd(x, 100663296) = 67108864, counted, M) AS hi,
           arrayFilter(x -> bitAnd(x, 100663296) = 33554432, M) AS T,
           arrayMap(c -> tuple(toUInt32(16777215), tupleElement(c, 4), toFloat64(0), tupleElement(c, 5)),
                    arrayFilter(c -> tupleElement(c, 5) > 0, C)) AS refunds
    FROM owner_events
),
$CREDIT
SELECT if(intDiv(code, width) = 0, '$DIRECT', names1[intDiv(code, width)]) AS g1,
       if(code % width = 0, '$DIRECT', names2[code % width]) AS g2,
       code = 16777215 AS refund,
       cur AS currency,
       round(sum(n), 6) AS conversions,
       toDecimal128(round(sum(rev), 4), 4) AS revenue,
       uniqExactIf(owner, bitAnd(owner, 1) = 0) AS owners
FROM (SELECT owner, arrayJoin(rows) AS r, tupleElement(r, 1) AS code, tupleElement(r, 2) AS cur,
             tupleElement(r, 3) AS n, tupleElement(r, 4) AS rev FROM credit)
GROUP BY code, cur
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

// pointSQL credits one touch per conversion: the one at $PICK, an index
// into the owner's sorted touches T, when $HAS; the conversion goes to
// Direct otherwise. (l, h] is the conversion's window. $PREPARE adds
// columns the pick needs.
const pointSQL = `credit AS (
    SELECT owner, arrayConcat(
        arrayMap((c, l, h) -> tuple(toUInt32(if($HAS, T[$PICK] % 16777216, 0)), tupleElement(c, 4),
                                    toFloat64(1), tupleElement(c, 3)), C, lo, hi),
        refunds) AS rows
    FROM (SELECT *$PREPARE FROM win)
)`

// rangeSQL credits every touch of a window under the linear and position
// based models. For each currency of the owner's conversions it sweeps
// the sorted touches once: a conversion adds its share per touch (a count,
// and its revenue in Decimal so that an even split stays exact) where its
// range starts and takes it off where the range ends, and the running sums
// at each touch are what the touch earned. $POINTS adds the shares of
// single touches (the first and the last under position based).
const rangeSQL = `per_currency AS (
    SELECT owner, T, cur, C, lo, hi, refunds,
           arrayFlatten(arrayMap((c, l, h) -> if(tupleElement(c, 4) = cur AND $RANGE_HAS,
               [tuple(($RANGE_FROM) * 2, $RANGE_SHARE, $RANGE_REVENUE),
                tuple(($RANGE_TO) * 2, -($RANGE_SHARE), -($RANGE_REVENUE))], []), C, lo, hi)) AS deltas,
           arraySort(e -> tupleElement(e, 1), arrayConcat(deltas,
               arrayMap(j -> tuple(j * 2 + 1, toFloat64(0), toDecimal128(0, 8)), arrayEnumerate(T)))) AS sweep,
           arrayFilter((v, e) -> tupleElement(e, 1) % 2 = 1, arrayCumSum(arrayMap(e -> tupleElement(e, 2), sweep)), sweep) AS shares,
           arrayFilter((v, e) -> tupleElement(e, 1) % 2 = 1, arrayCumSum(arrayMap(e -> tupleElement(e, 3), sweep)), sweep) AS revenues
    FROM win
    ARRAY JOIN arrayDistinct(arrayMap(c -> tupleElement(c, 4), C)) AS cur
),
credit AS (
    SELECT owner, arrayConcat(
        arrayMap(c -> tuple(toUInt32(0), cur, toFloat64(1), tupleElement(c, 3)),
                 arrayFilter((c, l, h) -> tupleElement(c, 4) = cur AND h = l, C, lo, hi)),
        arrayFlatten(arrayMap((c, l, h) -> if(tupleElement(c, 4) = cur, $POINTS, []), C, lo, hi)),
        arrayFilter(r -> tupleElement(r, 3) > 1e-9 OR tupleElement(r, 4) != 0,
                    arrayMap((x, a, b) -> tuple(toUInt32(x % 16777216), cur, a, b), T, shares, revenues)),
        arrayFilter(r -> tupleElement(r, 2) = cur, refunds)) AS rows
    FROM per_currency
)`

// decaySQL credits every touch of a window by 2^(-age/half life),
// normalised per conversion. With u_j = 2^((t_j - t_1)/half life), touch j
// earns u_j / S_c of conversion c, S_c being the sum of u over c's window
// (a difference of running sums). A touch's total is u_j times the sum of
// 1/S_c over the conversions whose windows hold it; that sum is swept from
// the last touch backwards (a conversion joins at its last touch and
// leaves before its first), so that what is taken off is always smaller
// than what stays and no precision is lost to cancellation. The revenue
// is a float here and rounded to four decimals at the end.
const decaySQL = `per_currency AS (
    SELECT owner, T, cur, C, lo, hi, refunds,
           arrayMap(x -> exp2((intDiv(x, 134217728) - intDiv(T[1], 134217728)) / {half_life_ms:Float64}), T) AS u,
           arrayPushFront(arrayCumSum(u), 0) AS U,
           length(T) + 1 AS top,
           arrayFlatten(arrayMap((c, l, h) -> if(tupleElement(c, 4) = cur AND h > l,
               [tuple((top - h) * 2, 1 / (U[h + 1] - U[l + 1]), toFloat64(tupleElement(c, 3)) / (U[h + 1] - U[l + 1])),
                tuple((top - l) * 2, -1 / (U[h + 1] - U[l + 1]), -toFloat64(tupleElement(c, 3)) / (U[h + 1] - U[l + 1]))], []),
               C, lo, hi)) AS deltas,
           arraySort(e -> tupleElement(e, 1), arrayConcat(deltas,
               arrayMap(j -> tuple((top - j) * 2 + 1, toFloat64(0), toFloat64(0)), arrayEnumerate(T)))) AS sweep,
           arrayReverse(arrayFilter((v, e) -> tupleElement(e, 1) % 2 = 1, arrayCumSum(arrayMap(e -> tupleElement(e, 2), sweep)), sweep)) AS shares,
           arrayReverse(arrayFilter((v, e) -> tupleElement(e, 1) % 2 = 1, arrayCumSum(arrayMap(e -> tupleElement(e, 3), sweep)), sweep)) AS revenues
    FROM win
    ARRAY JOIN arrayDistinct(arrayMap(c -> tupleElement(c, 4), C)) AS cur
),
credit AS (
    SELECT owner, arrayConcat(
        arrayMap(c -> tuple(toUInt32(0), cur, toFloat64(1), toFloat64(tupleElement(c, 3))),
                 arrayFilter((c, l, h) -> tupleElement(c, 4) = cur AND h = l, C, lo, hi)),
        arrayFilter(r -> tupleElement(r, 3) > 1e-12,
                    arrayMap((x, w, a, b) -> tuple(toUInt32(x % 16777216), cur, w * a, w * b), T, u, shares, revenues)),
        arrayMap(r -> tuple(tupleElement(r, 1), tupleElement(r, 2), tupleElement(r, 3), toFloat64(tupleElement(r, 4))),
                 arrayFilter(r -> tupleElement(r, 2) = cur, refunds))) AS rows
    FROM per_currency
)`

// creditSQL returns the credit step of model.
func creditSQL(model string) string {
	point := func(has, pick, prepare string) string {
		return strings.NewReplacer("$HAS", has, "$PICK", pick, "$PREPARE", prepare).Replace(pointSQL)
	}
	switch model {
	case ModelFirstTouch:
		return point("h > l", "l + 1", "")
	case ModelLastTouch:
		return point("h > l", "h", "")
	case ModelLastNonDirect:
		// last_from[j] is the index of the last touch at or before j
		// that came from somewhere, 0 when there is none.
		return point("last_from[h] > l", "last_from[h]",
			", arrayFill(v -> v > 0, arrayMap((x, j) -> if(bitAnd(x, 16777216) != 0, j, 0), T, arrayEnumerate(T))) AS last_from")
	case ModelLinear:
		return strings.NewReplacer(
			"$RANGE_HAS", "h > l",
			"$RANGE_FROM", "l + 1",
			"$RANGE_TO", "h + 1",
			"$RANGE_SHARE", "1 / greatest(h - l, 1)",
			"$RANGE_REVENUE", "tupleElement(c, 3) / greatest(h - l, 1)",
			"$POINTS", "CAST([], 'Array(Tuple(UInt32, String, Float64, Decimal(38, 8)))')",
		).Replace(rangeSQL)
	case ModelPositionBased:
		// The touches between the first and the last share 20%; the
		// first and the last get 40% each, half each when they are the
		// only two, everything when one touch is alone.
		return strings.NewReplacer(
			"$RANGE_HAS", "h - l >= 3",
			"$RANGE_FROM", "l + 2",
			"$RANGE_TO", "h",
			"$RANGE_SHARE", "0.2 / (greatest(h - l, 3) - 2)",
			"$RANGE_REVENUE", "tupleElement(c, 3) / (5 * (greatest(h - l, 3) - 2))",
			"$POINTS", `multiIf(h - l = 1, [tuple(toUInt32(T[h] % 16777216), cur, toFloat64(1), tupleElement(c, 3))],
				h - l = 2, [tuple(toUInt32(T[l + 1] % 16777216), cur, toFloat64(0.5), tupleElement(c, 3) / 2),
				            tuple(toUInt32(T[h] % 16777216), cur, toFloat64(0.5), tupleElement(c, 3) / 2)],
				h - l >= 3, [tuple(toUInt32(T[l + 1] % 16777216), cur, toFloat64(0.4), tupleElement(c, 3) * 2 / 5),
				             tuple(toUInt32(T[h] % 16777216), cur, toFloat64(0.4), tupleElement(c, 3) * 2 / 5)],
				CAST([], 'Array(Tuple(UInt32, String, Float64, Decimal(38, 8)))'))`,
		).Replace(rangeSQL)
	case ModelTimeDecay:
		return decaySQL
	}
	return ""
}

// buildSQL assembles the query for r from the constants above.
func buildSQL(r Request, lim Limits) (string, error) {
	credit := creditSQL(r.Model)
	if credit == "" {
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
		"$CREDIT", credit,
		"$NAMES2", names2,
		"$CODE2", code2,
		"$DIM1", col1,
		"$DIRECT", Direct,
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

// resultRow is one row of reportSQL.
type resultRow struct {
	G1          string          `ch:"g1"`
	G2          string          `ch:"g2"`
	Refund      uint8           `ch:"refund"`
	Currency    string          `ch:"currency"`
	Conversions float64         `ch:"conversions"`
	Revenue     decimal.Decimal `ch:"revenue"`
	Owners      uint64          `ch:"owners"`
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
	var rows []resultRow
	if err := w.Select(ctx, &rows, query, queryArgs(r, opts.Refunds)...); err != nil {
		if limitError(err) {
			return Report{}, fmt.Errorf("attribution query: %w: %w", ErrLimit, err)
		}
		return Report{}, fmt.Errorf("attribution query: %w", err)
	}
	rep := Report{Request: r, Rows: make([]Row, 0, len(rows))}
	revenue, refunded := map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	for _, x := range rows {
		if x.Refund != 0 {
			refunded[x.Currency] = refunded[x.Currency].Add(x.Revenue)
			continue
		}
		groups := []string{x.G1}
		if len(r.Dimensions) == 2 {
			groups = append(groups, x.G2)
		}
		rep.Rows = append(rep.Rows, Row{
			Group: strings.Join(groups, " / "), Groups: groups,
			Conversions: x.Conversions, Revenue: x.Revenue, Currency: x.Currency, owners: int(x.Owners),
		})
		rep.Totals.Conversions += x.Conversions
		revenue[x.Currency] = revenue[x.Currency].Add(x.Revenue)
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
// (241), and the throwIf (395) the query raises itself.
var limitCodes = []int{158, 159, 241, 395}

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
