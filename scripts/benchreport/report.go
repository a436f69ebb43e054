package main

import (
	"fmt"
	"io"
	"math"
	"path"
	"strconv"
	"strings"
)

// op says which side of its limit a figure must be on.
type op int

const (
	under   op = iota // below the limit: a time, a size
	atLeast           // at or above the limit: a rate, a ratio
)

// target is what a figure must reach.
type target struct {
	// unit is the unit checked, when it is not the figure's own: the
	// ingest benchmark is held to its ratio to the ceiling, not to a rate.
	unit  string
	op    op
	limit float64
}

// ceiling names a figure measured in the same run that the figure is
// read against: the direct insert for ingest over HTTP, the plain
// group-by for an attribution report.
type ceiling struct {
	// name is the benchmark that measures it, when it is not the
	// figure's own.
	name  string
	unit  string
	label string
}

// figure is one line of the report, or one per benchmark its name
// matches.
type figure struct {
	label string
	// pkg is the benchmark's package, relative to the module.
	pkg string
	// name is the benchmark's name without "Benchmark" and without the
	// GOMAXPROCS suffix, as a path.Match pattern: "*" stands for any
	// text within one part of the name, so one figure can cover every
	// model of a report.
	name    string
	unit    string
	target  *target // nil for a reference figure
	ceiling *ceiling
}

// status is how a line of the report came out.
type status int

const (
	reference status = iota // a figure without a target
	met
	notMet
	missing // a figure with a target that the output does not have
	missingReference
)

func (s status) String() string {
	switch s {
	case met:
		return "met"
	case notMet:
		return "not met"
	case missing:
		return "missing"
	case missingReference:
		return "missing (reference)"
	}
	return "reference"
}

// row is one line of the report.
type row struct {
	label   string
	bench   string // the benchmark read, or the pattern that found none
	runs    int
	median  float64
	unit    string
	target  string
	ceiling string
	status  status
	detail  string
}

// report matches each figure to the benchmarks in res and takes the
// median of their runs. A benchmark that no figure names follows as a
// reference line of its time per operation, so none is left out unseen.
func report(figs []figure, res *results) []row {
	var rows []row
	claimed := map[bench]bool{}
	for _, f := range figs {
		var found []bench
		for _, b := range res.order {
			if inPkg(b.pkg, f.pkg) {
				if ok, _ := path.Match(f.name, b.name); ok {
					found = append(found, b)
				}
			}
		}
		if len(found) == 0 {
			st := missing
			if f.target == nil {
				st = missingReference
			}
			rows = append(rows, row{label: f.label, bench: f.pkg + " " + f.name, unit: f.unit,
				target: targetText(f), status: st, detail: "no such benchmark in the output"})
			continue
		}
		for _, b := range found {
			claimed[b] = true
			rows = append(rows, measure(f, b, res))
		}
	}
	for _, b := range res.order {
		if claimed[b] || len(res.samples(b, "ns/op")) == 0 {
			continue
		}
		f := figure{label: "other: " + b.name, unit: "ns/op"}
		rows = append(rows, measure(f, b, res))
	}
	return rows
}

// measure makes the line of figure f for benchmark b.
func measure(f figure, b bench, res *results) row {
	r := row{label: f.label + wildParts(f.name, b.name), bench: b.name, unit: f.unit, target: targetText(f), status: reference}
	if f.target != nil {
		r.status = met
	}
	xs := res.samples(b, f.unit)
	if len(xs) == 0 {
		r.status, r.detail = missing, "no "+f.unit+" reported"
		if f.target == nil {
			r.status = missingReference
		}
		return r
	}
	r.runs, r.median = len(xs), median(xs)
	if c := f.ceiling; c != nil {
		cb := b
		if c.name != "" {
			cb.name = c.name
		}
		if cs := res.samples(cb, c.unit); len(cs) > 0 {
			r.ceiling = format(median(cs), c.unit) + " " + c.label
		} else {
			r.ceiling = "missing: " + c.label
		}
	}
	t := f.target
	if t == nil {
		return r
	}
	v := r.median
	if t.unit != "" {
		ts := res.samples(b, t.unit)
		if len(ts) == 0 {
			r.status, r.detail = missing, "no "+t.unit+" reported"
			return r
		}
		v = median(ts)
		r.detail = t.unit + " " + format(v, t.unit)
	}
	if ok := (t.op == under && v < t.limit) || (t.op == atLeast && v >= t.limit); !ok {
		r.status = notMet
	}
	return r
}

// inPkg reports whether the import path pkg is the module's package rel.
func inPkg(pkg, rel string) bool {
	return pkg == rel || strings.HasSuffix(pkg, "/"+rel)
}

// wildParts returns, for a figure whose pattern has wildcards, the parts
// of the name they matched (", model=linear/group_by=channel"), so each
// line of the figure says which benchmark it is.
func wildParts(pattern, name string) string {
	ps, ns := strings.Split(pattern, "/"), strings.Split(name, "/")
	var out []string
	for i, p := range ps {
		if i < len(ns) && strings.ContainsAny(p, "*?[") {
			out = append(out, ns[i])
		}
	}
	if len(out) == 0 {
		return ""
	}
	return ", " + strings.Join(out, "/")
}

func targetText(f figure) string {
	t := f.target
	if t == nil {
		return ""
	}
	unit := f.unit
	prefix := ""
	if t.unit != "" {
		unit, prefix = t.unit, t.unit+" "
	}
	if t.op == atLeast {
		return prefix + "at least " + format(t.limit, unit)
	}
	return prefix + "under " + format(t.limit, unit)
}

// format writes v, in the unit a benchmark reported it in, in the unit a
// reader expects: times as ns, µs, ms or s, rates with k or M.
func format(v float64, unit string) string {
	switch {
	case unit == "ns/op":
		switch {
		case v < 1e3:
			return sig(v) + " ns"
		case v < 1e6:
			return sig(v/1e3) + " µs"
		case v < 1e9:
			return sig(v/1e6) + " ms"
		}
		return sig(v/1e9) + " s"
	case strings.HasSuffix(unit, "-ms"):
		if v >= 1000 {
			return sig(v/1000) + " s"
		}
		return sig(v) + " ms"
	case strings.HasSuffix(unit, "-MiB"):
		return sig(v) + " MiB"
	case strings.HasSuffix(unit, "/s"):
		name := strings.TrimPrefix(unit, "direct-")
		switch {
		case v >= 1e6:
			return sig(v/1e6) + "M " + name
		case v >= 1e3:
			return sig(v/1e3) + "k " + name
		}
		return sig(v) + " " + name
	case unit == "ratio":
		return sig(v)
	}
	return sig(v) + " " + unit
}

// sig writes x with three significant digits, or as a whole number when
// it has more digits before the point, without trailing zeros.
func sig(x float64) string {
	if x == 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	d := max(0, 2-int(math.Floor(math.Log10(math.Abs(x)))))
	s := strconv.FormatFloat(x, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// failed reports whether a target was missed or a figure with one is
// missing.
func failed(rows []row) bool {
	for _, r := range rows {
		if r.status == notMet || r.status == missing {
			return true
		}
	}
	return false
}

// write prints the report as a table, then the lines that missed their
// target or are missing again, so they are seen at the end of a long run.
func write(w io.Writer, rows []row) error {
	header := []string{"figure", "runs", "median", "target", "ceiling (same run)", "result"}
	cells := [][]string{header}
	for _, r := range rows {
		runs, med := "", "-"
		if r.runs > 0 {
			runs, med = strconv.Itoa(r.runs), format(r.median, r.unit)
		}
		result := r.status.String()
		if r.detail != "" {
			result += ": " + r.detail
		}
		if r.status == missing || r.status == missingReference {
			result += " (" + r.bench + ")"
		}
		cells = append(cells, []string{r.label, runs, med, r.target, r.ceiling, result})
	}
	widths := make([]int, len(header))
	for _, c := range cells {
		for i, s := range c {
			widths[i] = max(widths[i], len([]rune(s)))
		}
	}
	lines := make([]string, len(cells))
	for i, c := range cells {
		var sb strings.Builder
		for j, s := range c {
			if j == len(c)-1 {
				sb.WriteString(s)
				break
			}
			sb.WriteString(s + strings.Repeat(" ", widths[j]-len([]rune(s))+2))
		}
		lines[i] = strings.TrimRight(sb.String(), " ")
	}
	var out strings.Builder
	for _, l := range lines {
		out.WriteString(l + "\n")
	}
	var bad []string
	for i, r := range rows {
		if r.status == notMet || r.status == missing {
			bad = append(bad, lines[i+1])
		}
	}
	if len(bad) > 0 {
		fmt.Fprintf(&out, "\n%d of the figures with a target missed it or are missing:\n%s\n", len(bad), lines[0])
		for _, l := range bad {
			out.WriteString(l + "\n")
		}
	} else {
		out.WriteString("\nevery figure with a target met it\n")
	}
	_, err := io.WriteString(w, out.String())
	return err
}
