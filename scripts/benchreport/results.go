package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// bench names one benchmark: its package's import path and its name as
// go test prints it, without "Benchmark" and without the GOMAXPROCS
// suffix ("IngestHTTP", "Attribution/events=10M/plain_group_by").
type bench struct {
	pkg, name string
}

// results holds every value read, by benchmark and unit, one value per
// run (-count=5 gives five).
type results struct {
	values map[bench]map[string][]float64
	// order is the benchmarks in the order they were first read.
	order []bench
}

func newResults() *results {
	return &results{values: map[bench]map[string][]float64{}}
}

func (r *results) empty() bool { return len(r.order) == 0 }

// read adds the results in the go test -bench output rd, named name in
// messages. A line that begins like a result but is not one is passed to
// warn.
func (r *results) read(rd io.Reader, name string, warn func(string)) error {
	br := benchfmt.NewReader(rd, name)
	for br.Scan() {
		switch rec := br.Result().(type) {
		case *benchfmt.Result:
			b := bench{pkg: rec.GetConfig("pkg"), name: baseName(rec.Name)}
			for _, v := range rec.Values {
				// The reader tidies units (ns/op becomes sec/op); the
				// targets are written in the units the benchmarks print.
				unit, val := v.Unit, v.Value
				if v.OrigUnit != "" {
					unit, val = v.OrigUnit, v.OrigValue
				}
				r.add(b, unit, val)
			}
		case *benchfmt.SyntaxError:
			warn(rec.Error())
		}
	}
	if err := br.Err(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

func (r *results) add(b bench, unit string, v float64) {
	units, ok := r.values[b]
	if !ok {
		units = map[string][]float64{}
		r.values[b] = units
		r.order = append(r.order, b)
	}
	units[unit] = append(units[unit], v)
}

// samples returns the values of one unit of a benchmark, one per run.
func (r *results) samples(b bench, unit string) []float64 {
	return r.values[b][unit]
}

// baseName is a benchmark's name without its GOMAXPROCS suffix ("-2"),
// which says how it ran rather than what it measured.
func baseName(n benchfmt.Name) string {
	base, parts := n.Parts()
	if len(parts) > 0 && strings.HasPrefix(string(parts[len(parts)-1]), "-") {
		parts = parts[:len(parts)-1]
	}
	var sb strings.Builder
	sb.Write(base)
	for _, p := range parts {
		sb.Write(p)
	}
	return sb.String()
}

// median is the middle of xs, or the mean of the two middle values when
// there is an even number of them; xs must not be empty. The median of a
// few runs stands up to one run slowed by other work on the machine,
// which the mean does not.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
