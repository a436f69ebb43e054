package attribution

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stewardhq/steward/analytics/warehouse"
)

// SeriesWeeklyAfter is the longest period a series counts per day; a
// longer period is counted per week, so that a chart of a year has about
// fifty points rather than three hundred and sixty-five.
const SeriesWeeklyAfter = 92 * 24 * time.Hour

// Steps of a series.
const (
	StepDay  = "day"
	StepWeek = "week"
)

// Point is the number of conversions in [From, To).
type Point struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Conversions int64     `json:"conversions"`
}

// Series is the number of conversions of a report's period over time, one
// point per day or per week (Step) with no gaps: a day without a
// conversion is a point of zero.
type Series struct {
	Step   string  `json:"step"`
	Points []Point `json:"points"`
}

// seriesSQL counts the conversions of a period per UTC day. It reads the
// conversions table by its key (event name, then time), so it touches
// only the granules of the period's conversions of one name: far less
// than a report, which also reads every visit of the period and the
// lookback window before it. A resent conversion is an exact copy with
// the same event id and time, counted once, as a report counts it.
const seriesSQL = `
SELECT toString(toDate(event_time, 'UTC')) AS day, uniqExact(event_id, event_time) AS conversions
FROM conversions
WHERE event_name = {conversion:String}
  AND event_time >= {from:DateTime64(3)} AND event_time < {to:DateTime64(3)}
GROUP BY day
$SETTINGS`

// RunSeries counts the conversions of r's period per day, or per week
// when the period is longer than SeriesWeeklyAfter, after checking r with
// Validate. Weeks run seven days at a time from the period's first day;
// the first and last points are cut to the period.
//
// Every model hands out exactly one conversion's worth of credit per
// conversion (to its touches, split or not, or to Direct), so on any day
// the credited conversions of every group add up to the number of
// conversions that day, whatever the model, the grouping or the lookback
// window: the series is what every report of the period agrees on, and it
// adds up to a report's Totals.Conversions. It shows no group, so it needs
// no folding: it is what reports of one day each would total.
func RunSeries(ctx context.Context, w warehouse.Warehouse, r Request, lim Limits) (Series, error) {
	if err := r.Validate(MaxSpanLimit); err != nil {
		return Series{}, err
	}
	query := strings.Replace(seriesSQL, "$SETTINGS", "", 1)
	if s := lim.settings(); len(s) > 0 {
		query = strings.Replace(seriesSQL, "$SETTINGS", "SETTINGS "+strings.Join(s, ", "), 1)
	}
	var rows []struct {
		Day         string `ch:"day"`
		Conversions uint64 `ch:"conversions"`
	}
	err := w.Select(ctx, &rows, query,
		warehouse.Named("conversion", r.Conversion), warehouse.Named("from", r.From), warehouse.Named("to", r.To))
	if err != nil {
		if limitError(err) {
			return Series{}, fmt.Errorf("attribution series query: %w: %w", ErrLimit, err)
		}
		return Series{}, fmt.Errorf("attribution series query: %w", err)
	}
	s := Series{Step: StepDay}
	step := 24 * time.Hour
	if r.To.Sub(r.From) > SeriesWeeklyAfter {
		s.Step, step = StepWeek, 7*24*time.Hour
	}
	first := r.From.UTC().Truncate(24 * time.Hour)
	for at := first; at.Before(r.To); at = at.Add(step) {
		s.Points = append(s.Points, Point{From: maxTime(at, r.From), To: minTime(at.Add(step), r.To)})
	}
	for _, row := range rows {
		day, err := time.Parse(time.DateOnly, row.Day)
		if err != nil {
			return Series{}, fmt.Errorf("attribution series: day %q: %w", row.Day, err)
		}
		i := int(day.Sub(first) / step)
		if i < 0 || i >= len(s.Points) {
			return Series{}, fmt.Errorf("attribution series: day %s outside the period", row.Day)
		}
		s.Points[i].Conversions += int64(row.Conversions)
	}
	return s, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
