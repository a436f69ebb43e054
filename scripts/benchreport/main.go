// Command benchreport reads the output of go test -bench (the bench.txt
// that make bench writes), takes the median of each figure's runs, and
// prints one table: each figure beside its target and, where the same run
// measures one, its ceiling. It exits with status 1 when a target is
// missed or a figure that has a target is missing from the output, and
// repeats those lines at the end; with status 2 when the output cannot be
// read.
//
// Usage:
//
//	go run ./scripts/benchreport [bench.txt ...]
//
// The figures and their targets are the table in figures.go.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run reports on the files named in args (bench.txt when none is) and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"bench.txt"}
	}
	res := newResults()
	for _, name := range args {
		if err := readFile(res, name, stderr); err != nil {
			fmt.Fprintf(stderr, "benchreport: %v\n", err)
			return 2
		}
	}
	if res.empty() {
		fmt.Fprintf(stderr, "benchreport: no benchmark results in %v\n", args)
		return 2
	}
	rows := report(figures, res)
	if err := write(stdout, rows); err != nil {
		fmt.Fprintf(stderr, "benchreport: %v\n", err)
		return 2
	}
	if failed(rows) {
		return 1
	}
	return 0
}

// readFile adds the results of one file to res. Lines that look like a
// result but cannot be read (a benchmark that failed prints its name and
// then its failure) are reported on stderr and skipped: the figure they
// would have given is then reported missing.
func readFile(res *results, name string, stderr io.Writer) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("open bench output: %w", err)
	}
	defer f.Close()
	return res.read(f, name, func(msg string) { fmt.Fprintf(stderr, "benchreport: skipped %s\n", msg) })
}
