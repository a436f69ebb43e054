package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// header is what go test prints before a package's results.
func header(pkg string) string {
	return "goos: linux\ngoarch: amd64\npkg: github.com/stewardhq/steward/" + pkg + "\ncpu: AMD EPYC\n"
}

func parse(t *testing.T, out string) (*results, []string) {
	t.Helper()
	res := newResults()
	var warnings []string
	if err := res.read(strings.NewReader(out), "bench.txt", func(m string) { warnings = append(warnings, m) }); err != nil {
		t.Fatal(err)
	}
	return res, warnings
}

func TestReport(t *testing.T) {
	export := figure{label: "export", pkg: "cmd/steward", name: "ExportHeavySubject", unit: "ns/op", target: &target{op: under, limit: 1e9}}
	heap := figure{label: "export heap", pkg: "cmd/steward", name: "ExportHeavySubject", unit: "peak-heap-MiB", target: &target{op: under, limit: 64}}
	ingest := figure{label: "ingest", pkg: "analytics/ingest", name: "IngestHTTP", unit: "events/s",
		target:  &target{unit: "ratio", op: atLeast, limit: 0.8},
		ceiling: &ceiling{unit: "direct-rows/s", label: "direct insert"}}
	models := figure{label: "p50", pkg: "analytics/attribution", name: "Attribution/events=10M/model=*/*", unit: "p50-ms",
		target:  &target{op: under, limit: 500},
		ceiling: &ceiling{name: "Attribution/events=10M/plain_group_by", unit: "p50-ms", label: "plain group-by"}}
	cached := figure{label: "cached", pkg: "policies", name: "AccessCached", unit: "ns/op", target: &target{op: under, limit: 1e3}}
	scrub := figure{label: "scrub", pkg: "analytics/enrich", name: "ScrubPath/*", unit: "ns/op"}

	tests := []struct {
		name     string
		figs     []figure
		out      string
		want     []row // label, runs, median, ceiling, status and detail are compared
		warnings int
		failed   bool
	}{
		{
			name: "the median of five runs, not the mean, meets the target",
			figs: []figure{export, heap},
			out: header("cmd/steward") +
				"BenchmarkExportHeavySubject-2   \t       1\t 500000000 ns/op\t 40 peak-heap-MiB\n" +
				"BenchmarkExportHeavySubject-2   \t       1\t 600000000 ns/op\t 41 peak-heap-MiB\n" +
				"BenchmarkExportHeavySubject-2   \t       1\t4000000000 ns/op\t 90 peak-heap-MiB\n" +
				"BenchmarkExportHeavySubject-2   \t       1\t 700000000 ns/op\t 42 peak-heap-MiB\n" +
				"BenchmarkExportHeavySubject-2   \t       1\t3000000000 ns/op\t 39 peak-heap-MiB\n",
			want: []row{
				{label: "export", runs: 5, median: 7e8, status: met},
				{label: "export heap", runs: 5, median: 41, status: met},
			},
		},
		{
			name: "a missed target",
			figs: []figure{export},
			out: header("cmd/steward") +
				"BenchmarkExportHeavySubject-2   \t       1\t6438840552 ns/op\n" +
				"BenchmarkExportHeavySubject-2   \t       1\t6921319032 ns/op\n" +
				"BenchmarkExportHeavySubject-2   \t       1\t11428234555 ns/op\n",
			want:   []row{{label: "export", runs: 3, median: 6921319032, status: notMet}},
			failed: true,
		},
		{
			name: "an even number of runs takes the mean of the middle two",
			figs: []figure{cached},
			out: header("policies") +
				"BenchmarkAccessCached-2   \t 8000000\t 140.0 ns/op\t 24 B/op\t 1 allocs/op\n" +
				"BenchmarkAccessCached-2   \t 8000000\t 150.0 ns/op\t 24 B/op\t 1 allocs/op\n" +
				"BenchmarkAccessCached-2   \t 8000000\t 130.0 ns/op\t 24 B/op\t 1 allocs/op\n" +
				"BenchmarkAccessCached-2   \t 8000000\t 990.0 ns/op\t 24 B/op\t 1 allocs/op\n",
			want: []row{{label: "cached", runs: 4, median: 145, status: met}},
		},
		{
			name: "a missing figure fails, and the benchmark nobody names is still listed",
			figs: []figure{cached},
			out: header("policies") +
				"BenchmarkAccessPrepared-2   \t   5000\t 25000 ns/op\n",
			want: []row{
				{label: "cached", status: missing, detail: "no such benchmark in the output"},
				{label: "other: AccessPrepared", runs: 1, median: 25000, status: reference},
			},
			failed: true,
		},
		{
			name: "a benchmark that failed on its second run is missing that run",
			figs: []figure{export},
			out: header("cmd/steward") +
				"BenchmarkExportHeavySubject-2   \t       1\t 900000000 ns/op\n" +
				"BenchmarkExportHeavySubject-2   \t--- FAIL: BenchmarkExportHeavySubject-2\n" +
				"    dsar_bench_test.go:66: seed abuse_events: UNIQUE constraint failed: abuse_events.id\n" +
				"FAIL\n",
			want:     []row{{label: "export", runs: 1, median: 9e8, status: met}},
			warnings: 1,
		},
		{
			name: "a unit the benchmark did not report is missing",
			figs: []figure{heap},
			out: header("cmd/steward") +
				"BenchmarkExportHeavySubject-2   \t       1\t 900000000 ns/op\n",
			want:   []row{{label: "export heap", status: missing, detail: "no peak-heap-MiB reported"}},
			failed: true,
		},
		{
			name: "ingest is held to its ratio to the direct insert of the same run",
			figs: []figure{ingest},
			out: header("analytics/ingest") +
				"BenchmarkIngestHTTP-2   \t    1000\t 1600000 ns/op\t 62000 events/s\t 107000 direct-rows/s\t 0.58 ratio\n" +
				"BenchmarkIngestHTTP-2   \t    1000\t 1600000 ns/op\t 61000 events/s\t 103000 direct-rows/s\t 0.59 ratio\n" +
				"BenchmarkIngestHTTP-2   \t    1000\t 1600000 ns/op\t 64000 events/s\t 110000 direct-rows/s\t 0.58 ratio\n",
			want: []row{{label: "ingest", runs: 3, median: 62000, ceiling: "107k rows/s direct insert",
				status: notMet, detail: "ratio 0.58"}},
			failed: true,
		},
		{
			name: "with -v a benchmark that prints as it runs keeps its result on one line",
			figs: []figure{ingest},
			out: header("analytics/ingest") +
				"BenchmarkIngestHTTP\n" +
				"ingest over HTTP: 100 events in 85ms = 1182 events/s; direct insert 1447 rows/s; ratio 0.82\n" +
				"ingest over HTTP: 100000 events in 1.2s = 85000 events/s; direct insert 100000 rows/s; ratio 0.85\n" +
				"BenchmarkIngestHTTP-2   \t    1000\t 1200000 ns/op\t 100000 direct-rows/s\t 85000 events/s\t 0.85 ratio\n",
			want: []row{{label: "ingest", runs: 1, median: 85000, ceiling: "100k rows/s direct insert", status: met, detail: "ratio 0.85"}},
		},
		{
			name: "without -v its printing splits the name from the figures, which are then missing",
			figs: []figure{ingest},
			out: header("analytics/ingest") +
				"BenchmarkIngestHTTP-2   \tingest over HTTP: 100000 events in 1.2s = 85000 events/s; direct insert 100000 rows/s; ratio 0.85\n" +
				"    1000\t 1200000 ns/op\t 100000 direct-rows/s\t 85000 events/s\t 0.85 ratio\n",
			want:     []row{{label: "ingest", status: missing, detail: "no such benchmark in the output"}},
			warnings: 1,
			failed:   true,
		},
		{
			name: "a pattern gives a line per model, each beside the plain group-by",
			figs: []figure{models},
			out: header("analytics/attribution") +
				"BenchmarkAttribution/events=10M/plain_group_by-2         \t       1\t  60000000 ns/op\t 60.0 p50-ms\t 70.0 p99-ms\n" +
				"BenchmarkAttribution/events=10M/plain_group_by-2         \t       1\t  64000000 ns/op\t 64.0 p50-ms\t 71.0 p99-ms\n" +
				"BenchmarkAttribution/events=10M/model=linear/group_by=channel-2   \t 1\t 420000000 ns/op\t 420 p50-ms\t 530 p99-ms\n" +
				"BenchmarkAttribution/events=10M/model=linear/group_by=channel-2   \t 1\t 520000000 ns/op\t 520 p50-ms\t 600 p99-ms\n" +
				"BenchmarkAttribution/events=10M/model=time_decay/group_by=channel,campaign-2 \t 1\t 520000000 ns/op\t 520 p50-ms\t 580 p99-ms\n" +
				"BenchmarkAttribution/visitor=50k/model=linear-2   \t 1\t 100000000 ns/op\t 100 p50-ms\t 200 p99-ms\n",
			want: []row{
				{label: "p50, model=linear/group_by=channel", runs: 2, median: 470, ceiling: "62 ms plain group-by", status: met},
				{label: "p50, model=time_decay/group_by=channel,campaign", runs: 1, median: 520, ceiling: "62 ms plain group-by", status: notMet},
				{label: "other: Attribution/events=10M/plain_group_by", runs: 2, median: 62e6, status: reference},
				{label: "other: Attribution/visitor=50k/model=linear", runs: 1, median: 1e8, status: reference},
			},
			failed: true,
		},
		{
			name: "a reference figure has no target and fails nothing when missing",
			figs: []figure{scrub},
			out: header("analytics/enrich") +
				"BenchmarkScrubPath/short-2   \t 9000000\t 130.5 ns/op\n" +
				"BenchmarkScrubPath/email_and_token-2   \t 900000\t 1320 ns/op\n" +
				header("analytics/warehouse") +
				"BenchmarkEmbeddedInsert-2   \t 10\t 120000000 ns/op\t 83000 rows/s\n",
			want: []row{
				{label: "scrub, short", runs: 1, median: 130.5, status: reference},
				{label: "scrub, email_and_token", runs: 1, median: 1320, status: reference},
				{label: "other: EmbeddedInsert", runs: 1, median: 1.2e8, status: reference},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, warnings := parse(t, tt.out)
			if len(warnings) != tt.warnings {
				t.Errorf("warnings %q, want %d", warnings, tt.warnings)
			}
			rows := report(tt.figs, res)
			if len(rows) != len(tt.want) {
				t.Fatalf("%d rows, want %d: %+v", len(rows), len(tt.want), rows)
			}
			for i, w := range tt.want {
				g := rows[i]
				if g.label != w.label || g.runs != w.runs || g.median != w.median || g.ceiling != w.ceiling ||
					g.status != w.status || g.detail != w.detail {
					t.Errorf("row %d = %+v\nwant label %q runs %d median %v ceiling %q status %v detail %q",
						i, g, w.label, w.runs, w.median, w.ceiling, w.status, w.detail)
				}
			}
			if got := failed(rows); got != tt.failed {
				t.Errorf("failed = %v, want %v", got, tt.failed)
			}
		})
	}
}

// sample is bench output with every figure of the real table, as the
// benchmarks print it, each meeting its target: the table's names and
// units must be those the benchmarks use.
const sample = `goos: linux
goarch: amd64
pkg: github.com/stewardhq/steward/analytics/attribution
cpu: AMD EPYC
BenchmarkAttribution/visitor=20k+20k_without_ids/plain_group_by-2         	      93	  16000000 ns/op	        16.00 p50-ms	        30.00 p99-ms	 10.00 cpu-ms/op	 400 peak-RSS-MiB	 1.0 RSS-growth-MiB
BenchmarkAttribution/visitor=20k+20k_without_ids/model=linear-2           	       1	 100000000 ns/op	       100.0 p50-ms	       200.0 p99-ms	 110 cpu-ms/op	 450 peak-RSS-MiB	 1.0 RSS-growth-MiB
BenchmarkAttribution/events=10M/plain_group_by-2                          	       1	  60000000 ns/op	        60.00 p50-ms	        70.00 p99-ms	 120 cpu-ms/op	 348 peak-RSS-MiB	 1.0 RSS-growth-MiB
BenchmarkAttribution/events=10M/model=first_touch/group_by=channel-2      	       1	 340000000 ns/op	       340.0 p50-ms	       600.0 p99-ms	 610 cpu-ms/op	 492 peak-RSS-MiB	 1.0 RSS-growth-MiB
BenchmarkAttribution/events=10M/model=linear/group_by=channel,campaign-2  	       1	 480000000 ns/op	       480.0 p50-ms	       530.0 p99-ms	 830 cpu-ms/op	 489 peak-RSS-MiB	 1.0 RSS-growth-MiB
PASS
ok  	github.com/stewardhq/steward/analytics/attribution	612.0s
goos: linux
goarch: amd64
pkg: github.com/stewardhq/steward/analytics/enrich
cpu: AMD EPYC
BenchmarkScrubPath/short-2         	 9000000	       130.5 ns/op	       0 B/op	       0 allocs/op
PASS
pkg: github.com/stewardhq/steward/analytics/warehouse
BenchmarkEmbeddedInsert-2   	      10	 120000000 ns/op	     83000 rows/s	 9000000 B/op	   40000 allocs/op
BenchmarkEmbeddedGroupBy/rows=200k-2   	      80	  15000000 ns/op	  13300000 rows/s
pkg: github.com/stewardhq/steward/cmd/steward
BenchmarkExportHeavySubject-2   	       1	 900000000 ns/op	         6.321 package-MiB	        44.38 peak-heap-MiB
BenchmarkEraseHeavySubject-2    	       1	 800000000 ns/op	         3.070 peak-heap-MiB
pkg: github.com/stewardhq/steward/policies
BenchmarkAccessUncached-2         	   50000	     25000 ns/op	   50000 B/op	    1000 allocs/op
BenchmarkAccessCached-2           	 8000000	       140.0 ns/op	      24 B/op	       1 allocs/op
BenchmarkConsentUncached-2        	   50000	     24000 ns/op	   50000 B/op	    1000 allocs/op
BenchmarkConsentCached-2          	 8000000	       150.0 ns/op	      24 B/op	       1 allocs/op
BenchmarkConsentCachedParallel-2  	16000000	        75.0 ns/op	      24 B/op	       1 allocs/op
BenchmarkRetentionUncached-2      	  300000	      3800 ns/op	     600 B/op	      11 allocs/op
BenchmarkExportUncached-2         	  300000	      4300 ns/op	     600 B/op	      10 allocs/op
BenchmarkErasureUncached-2        	  300000	      2800 ns/op	     600 B/op	      11 allocs/op
BenchmarkPromptSafety-2           	  100000	     13900 ns/op	    1200 B/op	      17 allocs/op
pkg: github.com/stewardhq/steward/analytics/ingest
ingest over HTTP: 100000 events in 1.2s = 85000 events/s; direct insert 100000 rows/s; ratio 0.85; heap in use 8.0 -> 11.0 MiB (peak 92.0)
BenchmarkIngestHTTP-2   	    1000	   1200000 ns/op	 85000 events/s	 100000 direct-rows/s	 0.85 ratio	 8.0 heap-before-MiB	 11.0 heap-after-MiB	 92.0 heap-peak-MiB	 0 retried-requests
`

func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		args   []string
		status int
		// want are lines the output must hold; tail is how it must end.
		want []string
		tail string
	}{
		{
			name:   "every figure met",
			args:   []string{write("met.txt", sample)},
			status: 0,
			want: []string{
				"ingest over HTTP ", "85k events/s", "ratio at least 0.8", "100k rows/s direct insert", "met: ratio 0.85",
				"access export, heavy subject ", "900 ms", "under 1 s",
				"attribution p50, 10M events, model=linear/group_by=channel,campaign", "480 ms", "60 ms plain group-by",
				"attribution peak RSS, 10M events, model=first_touch/group_by=channel", "492 MiB", "under 1024 MiB",
				"policy decision: access, evaluated", "25 µs", "under 30 µs",
				"warehouse group-by, rows=200k", "13.3M rows/s",
				"scrub a path, short", "130 ns",
			},
			tail: "every figure with a target met it\n",
		},
		{
			name: "a missed target and a renamed benchmark are repeated at the end",
			args: []string{write("missed.txt", strings.NewReplacer(
				"BenchmarkAccessCached-2  ", "BenchmarkAccessHit-2     ",
				"900000000 ns/op", "1500000000 ns/op",
			).Replace(sample))},
			status: 1,
			want:   []string{"other: AccessHit", "2 of the figures with a target missed it or are missing:"},
			tail:   "(policies AccessCached)\n",
		},
		{
			name:   "no results",
			args:   []string{write("empty.txt", "FAIL\tgithub.com/stewardhq/steward/policies [build failed]\n")},
			status: 2,
		},
		{
			name:   "no file",
			args:   []string{filepath.Join(dir, "absent.txt")},
			status: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tt.args, &stdout, &stderr); got != tt.status {
				t.Errorf("status %d, want %d; stderr %q", got, tt.status, stderr.String())
			}
			out := stdout.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if !strings.HasSuffix(out, tt.tail) {
				t.Errorf("output ends %q, want %q:\n%s", out[max(0, len(out)-80):], tt.tail, out)
			}
			if tt.status == 1 {
				// The lines repeated at the end are those of the table.
				body, end, _ := strings.Cut(out, "\n\n")
				for _, l := range strings.Split(strings.TrimSpace(end), "\n")[2:] {
					if !strings.Contains(body, l) {
						t.Errorf("repeated line %q is not in the table", l)
					}
				}
			}
		})
	}
}
