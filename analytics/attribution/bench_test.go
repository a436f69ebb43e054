package attribution_test

import (
	"bufio"
	"bytes"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// benchSamples is how many times each report runs, whatever b.N: a report
// takes seconds, so the framework's one run would give no percentiles.
// With nine runs the p99 reported is the slowest run.
const benchSamples = 9

// manyEvents fills w with about ten million events of a hundred thousand
// people over the last year, generated in the engine (INSERT ... SELECT
// from numbers()), which is far faster than sending them:
//
//   - 2.2 million visits of one to eight page views (4.5 on average), a
//     minute or two apart; the page views of a visit share its session
//     id, source, medium, campaign and landing page, as the tracker sends
//     them;
//   - people have from one to a few thousand visits (a skewed draw), from
//     fifteen sources of eleven channels (direct for a fifth of the
//     visits), forty campaigns and two hundred landing pages;
//   - one event in fifty is a purchase of 5 to 55, in EUR (88%), USD (10%)
//     or GBP (2%), sent in the middle of a visit;
//   - four people in ten browse signed in; three in ten browse
//     anonymously until they sign in on a day of the year (a
//     visitor_links row), signed in after; three in ten never sign in.
func manyEvents(b *testing.B, w warehouse.Warehouse, now time.Time) {
	b.Helper()
	ctx := b.Context()
	const insertEvents = `
INSERT INTO events (event_id, event_time, received_at, event_type, event_name, user_id, visitor_id, session_id,
                    path, landing_page, source, medium, campaign, channel, conversion_value, currency)
SELECT concat('b', toString(visit), '-', toString(i)), t, t,
       if(conv, 'purchase', 'page_view'), if(conv, 'purchase', 'page_view'),
       if(owner % 10 < 4 OR (owner % 10 < 7 AND t >= linked), concat('u', toString(owner)), NULL),
       concat('v', toString(owner)), concat('s', toString(visit)),
       '/', concat('/p/', toString(cityHash64(visit, 3) % 200)),
       tupleElement(src, 1), tupleElement(src, 2),
       if(tupleElement(src, 3) IN ('Direct', 'Organic Search', 'Referral'), '(not set)', concat('c', toString(cityHash64(visit, 4) % 40))),
       tupleElement(src, 3),
       if(conv, toDecimal64((500 + cityHash64(visit, i, 5) % 5000) / 100, 4), toDecimal64(0, 4)),
       if(conv, multiIf(cityHash64(visit, i, 6) % 50 = 0, 'GBP', cityHash64(visit, i, 6) % 10 = 0, 'USD', 'EUR'), '')
FROM (
    SELECT *, i, start + toIntervalSecond(i * (20 + cityHash64(visit, 10) % 100)) AS t,
           cityHash64(visit, i, 2) % 50 = 0 AS conv
    FROM (
        SELECT number AS visit,
               toUInt32(100000 * pow((cityHash64(number, 0) % 1000000) / 1000000, 1.5)) AS owner,
               {now:DateTime64(3)} - toIntervalMillisecond(cityHash64(number, 1) % (365 * 86400000)) AS start,
               {now:DateTime64(3)} - toIntervalDay(cityHash64(owner, 9) % 365) AS linked,
               [('google', 'cpc', 'Paid Search'), ('google', 'organic', 'Organic Search'), ('(direct)', '(none)', 'Direct'),
                ('(direct)', '(none)', 'Direct'), ('(direct)', '(none)', 'Direct'), ('facebook', 'paid_social', 'Paid Social'),
                ('facebook', 'social', 'Organic Social'), ('newsletter', 'email', 'Email'), ('bing', 'cpc', 'Paid Search'),
                ('news.example.org', 'referral', 'Referral'), ('t.co', 'social', 'Organic Social'), ('partner', 'affiliate', 'Affiliates'),
                ('youtube', 'video', 'Organic Video'), ('criteo', 'display', 'Display'), ('duckduckgo', 'organic', 'Organic Search')
               ][1 + cityHash64(number, 7) % 15] AS src,
               1 + cityHash64(number, 8) % 8 AS pages
        FROM numbers({first:UInt64}, {count:UInt64})
    )
    ARRAY JOIN range(pages) AS i
)`
	// Ten inserts of 220,000 visits (about a million events) keep the
	// engine's memory low while it sorts each part.
	for i := range 10 {
		if err := w.Exec(ctx, insertEvents, warehouse.Named("now", now),
			warehouse.Named("first", uint64(i)*220_000), warehouse.Named("count", uint64(220_000))); err != nil {
			b.Fatal(err)
		}
	}
	// A table in use has had its parts merged in the background; merging
	// them now makes the runs comparable.
	for _, table := range []string{"events", "touches", "conversions"} {
		if err := w.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Exec(ctx, `
INSERT INTO visitor_links (link_id, visitor_id, user_id, linked_at)
SELECT concat('l', toString(number)), concat('v', toString(number)), concat('u', toString(number)),
       {now:DateTime64(3)} - toIntervalDay(cityHash64(number, 9) % 365)
FROM numbers(100000) WHERE number % 10 IN (4, 5, 6)`, warehouse.Named("now", now)); err != nil {
		b.Fatal(err)
	}
	settle(b, w)
}

// settle waits until the engine has no merge or mutation running in the
// database, so that the runs measure the reports and not the background
// work a bulk load leaves behind.
func settle(b *testing.B, w warehouse.Warehouse) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var busy []struct {
			N uint64 `ch:"n"`
		}
		if err := w.Select(b.Context(), &busy, `
			SELECT (SELECT count() FROM system.merges WHERE database = currentDatabase())
			     + (SELECT count() FROM system.mutations WHERE database = currentDatabase() AND NOT is_done) AS n`); err != nil {
			b.Fatal(err)
		}
		if busy[0].N == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Logf("the engine is still merging after five minutes; measuring anyway")
			return
		}
		time.Sleep(time.Second)
	}
}

// heavyVisitor fills w with the events of one browser that is never
// signed in to: n events over sixty days, one in fifty a purchase, and,
// when withoutIDs, as many page views that carry neither a visitor id nor
// an account, which must cost nothing. The page views carry no session id,
// so each is a visit of its own: the most touches n events can make.
func heavyVisitor(b *testing.B, w warehouse.Warehouse, now time.Time, n int, withoutIDs bool) {
	b.Helper()
	const insert = `
INSERT INTO events (event_id, event_time, received_at, event_type, event_name, visitor_id, landing_page,
                    source, medium, campaign, channel, conversion_value, currency)
SELECT concat({prefix:String}, toString(number)), t, t,
       if(conv, 'purchase', 'page_view'), if(conv, 'purchase', 'page_view'), {visitor:String},
       concat('/p/', toString(number % 20)),
       tupleElement(src, 1), tupleElement(src, 2), concat('c', toString(number % 7)), tupleElement(src, 3),
       if(conv, toDecimal64(25, 4), toDecimal64(0, 4)), if(conv, 'EUR', '')
FROM (
    SELECT number, {now:DateTime64(3)} - toIntervalMillisecond(cityHash64(number, 1) % (60 * 86400000)) AS t,
           {visitor:String} != '' AND number % 50 = 0 AS conv,
           [('google', 'cpc', 'Paid Search'), ('(direct)', '(none)', 'Direct'), ('newsletter', 'email', 'Email')][1 + number % 3] AS src
    FROM numbers({count:UInt64})
)`
	if err := w.Exec(b.Context(), insert, warehouse.Named("now", now), warehouse.Named("prefix", "h"),
		warehouse.Named("visitor", "v-heavy"), warehouse.Named("count", uint64(n))); err != nil {
		b.Fatal(err)
	}
	if withoutIDs {
		if err := w.Exec(b.Context(), insert, warehouse.Named("now", now), warehouse.Named("prefix", "x"),
			warehouse.Named("visitor", ""), warehouse.Named("count", uint64(n))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttribution runs every model over ten million events (grouped
// by channel, and two of them by channel and campaign), and over a single
// visitor with 20,000 and 50,000 events, beside a plain group-by over the
// same rows. Each case reports its p50 and p99 in milliseconds over
// benchSamples runs (ns/op is the p50), the CPU time per report, and the
// process's peak resident memory while it ran (the engine runs in the
// process). Each data set is measured once the engine has merged what
// its load wrote, as a table in use has. docs/scaling.md ("Attribution")
// records a run.
//
// The data sets are built once per process whatever -count says: go test
// runs a benchmark that has sub-benchmarks once, and repeats each
// sub-benchmark -count times, so -count=5 measures every case five times
// over the same ten million events, generated once. Build no data set in
// a sub-benchmark, or it is built again for each run.
func BenchmarkAttribution(b *testing.B) {
	now := time.Now().UTC()
	// The heavy visitors run first, on an engine that holds nothing else
	// yet, so that their peak memory is theirs rather than the caches the
	// ten million events leave behind.
	for _, n := range []int{20_000, 50_000} {
		hw := chtest.Embedded(b)
		heavyVisitor(b, hw, now, n, n == 20_000)
		settle(b, hw)
		name := "visitor=" + strconv.Itoa(n/1000) + "k"
		if n == 20_000 {
			name += "+20k_without_ids"
		}
		period := attribution.Request{From: now.Add(-30 * 24 * time.Hour), To: now.Add(time.Minute)}
		b.Run(name+"/plain_group_by", func(b *testing.B) { benchPlain(b, hw, period) })
		for _, model := range attribution.Models() {
			b.Run(name+"/model="+model, func(b *testing.B) { benchReport(b, hw, withModel(period, model, "channel")) })
		}
	}

	w := chtest.Embedded(b)
	start := time.Now()
	manyEvents(b, w, now)
	b.Logf("ten million events generated in %s", time.Since(start).Round(time.Second))
	period := attribution.Request{From: now.Add(-335 * 24 * time.Hour), To: now.Add(time.Minute)}

	b.Run("events=10M/plain_group_by", func(b *testing.B) { benchPlain(b, w, period) })
	for _, model := range attribution.Models() {
		b.Run("events=10M/model="+model+"/group_by=channel", func(b *testing.B) {
			benchReport(b, w, withModel(period, model, "channel"))
		})
	}
	for _, model := range []string{attribution.ModelLastTouch, attribution.ModelLinear} {
		b.Run("events=10M/model="+model+"/group_by=channel,campaign", func(b *testing.B) {
			benchReport(b, w, withModel(period, model, "channel,campaign"))
		})
	}
}

func withModel(r attribution.Request, model, groupBy string) attribution.Request {
	r.Model, r.GroupBy = model, groupBy
	return r
}

// benchReport runs the report r asks for benchSamples times (or b.N, if
// more) and reports its percentiles. The query runs under the default
// memory limit, as the module runs it, but without a time limit, so that
// a slow run on a busy machine is measured rather than stopped.
func benchReport(b *testing.B, w warehouse.Warehouse, r attribution.Request) {
	opts := attribution.RunOptions{Limits: attribution.Limits{MaxMemory: attribution.DefaultMaxQueryMemory}}
	measure(b, func() error {
		_, err := attribution.Run(b.Context(), w, r, opts)
		return err
	})
}

// benchPlain counts the events and sums the revenue of the period per
// channel: the cheapest report there is, for comparison.
func benchPlain(b *testing.B, w warehouse.Warehouse, r attribution.Request) {
	type row struct {
		Channel string  `ch:"channel"`
		Events  uint64  `ch:"events"`
		Revenue float64 `ch:"revenue"`
	}
	measure(b, func() error {
		var rows []row
		return w.Select(b.Context(), &rows, `
			SELECT toString(channel) AS channel, count() AS events, toFloat64(sum(conversion_value)) AS revenue
			FROM events WHERE event_time >= {from:DateTime64(3)} - INTERVAL 30 DAY AND event_time < {to:DateTime64(3)}
			GROUP BY channel`, warehouse.Named("from", r.From), warehouse.Named("to", r.To))
	})
}

func measure(b *testing.B, run func() error) {
	b.Helper()
	resetPeakRSS(b)
	before := procStatusKiB("VmRSS:")
	n := max(b.N, benchSamples)
	walls := make([]time.Duration, 0, n)
	var cpu time.Duration
	b.ResetTimer()
	for range n {
		c0 := cpuTime()
		t0 := time.Now()
		if err := run(); err != nil {
			b.Fatal(err)
		}
		walls = append(walls, time.Since(t0))
		cpu += cpuTime() - c0
	}
	b.StopTimer()
	slices.Sort(walls)
	p50 := walls[len(walls)/2]
	p99 := walls[min(len(walls)-1, (len(walls)*99+99)/100-1)]
	b.ReportMetric(float64(p50.Nanoseconds()), "ns/op")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64((cpu/time.Duration(n)).Microseconds())/1000, "cpu-ms/op")
	if kb := procStatusKiB("VmHWM:"); kb > 0 {
		b.ReportMetric(float64(kb)/1024, "peak-RSS-MiB")
		b.ReportMetric(float64(kb-before)/1024, "RSS-growth-MiB")
	}
}

// cpuTime is the CPU time the process has used, the engine's threads
// included: on a shared machine it says more about a query's cost than
// the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS sets the process's peak resident size back to its current
// size (Linux's clear_refs "5"), so that VmHWM then gives the peak of one
// case.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS not reset, so it covers the whole run: %v", err)
	}
}

// procStatusKiB reads a size in KiB from /proc/self/status (VmHWM: the
// peak resident size, VmRSS: the current one); 0 when unknown.
func procStatusKiB(field string) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte(field)); ok {
			f := bytes.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return kb
			}
		}
	}
	return 0
}
