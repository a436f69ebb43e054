package attribution

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteCSV writes the rows of rep as CSV: a header naming the dimensions,
// then one line per row with the group values, the currency, the credited
// conversions and the revenue. Totals are not repeated; they are the sums
// of the columns per currency.
func WriteCSV(w io.Writer, rep Report) error {
	cw := csv.NewWriter(w)
	header := append(append([]string{}, rep.Request.Dimensions...), "currency", "conversions", "revenue")
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, r := range rep.Rows {
		line := append(append([]string{}, r.Groups...), r.Currency,
			strconv.FormatFloat(r.Conversions, 'f', -1, 64), r.Revenue.StringFixed(4))
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes rep as an aligned text table for a person: what was
// asked, one line per row, the totals, and what was folded.
func WriteTable(w io.Writer, rep Report) error {
	r := rep.Request
	fmt.Fprintf(w, "attribution %s by %s of %q, %s to %s, lookback %g days", r.Model, r.GroupBy, r.Conversion,
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.LookbackDays)
	if r.HalfLifeDays > 0 {
		fmt.Fprintf(w, ", half life %g days", r.HalfLifeDays)
	}
	fmt.Fprint(w, "\n\n")
	// Every cell ends in a tab so that all lines share one column layout;
	// the padding this leaves at the end of a line is trimmed below.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	heads := make([]string, 0, len(r.Dimensions)+3)
	for _, d := range r.Dimensions {
		heads = append(heads, strings.ToUpper(d))
	}
	heads = append(heads, "CURRENCY", "CONVERSIONS", "REVENUE")
	fmt.Fprintln(tw, strings.Join(heads, "\t")+"\t")
	pad := strings.Repeat("\t", max(len(r.Dimensions)-1, 0))
	for _, row := range rep.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%.4f\t%s\t\n", strings.Join(row.Groups, "\t"), orDash(row.Currency), row.Conversions, row.Revenue.StringFixed(4))
	}
	fmt.Fprintf(tw, "total%s\t\t%.4f\t\t\n", pad, rep.Totals.Conversions)
	for _, c := range rep.Totals.Revenue {
		fmt.Fprintf(tw, "revenue%s\t%s\t\t%s\t\n", pad, orDash(c.Currency), c.Revenue.StringFixed(4))
	}
	for _, c := range rep.Totals.Refunded {
		fmt.Fprintf(tw, "refunded%s\t%s\t\t%s\t\n", pad, orDash(c.Currency), c.Revenue.StringFixed(4))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	switch {
	case rep.Raw:
		_, err := fmt.Fprintln(w, "\nraw: groups of any size are shown")
		return err
	case rep.Folded > 0:
		_, err := fmt.Fprintf(w, "\n%d rows of fewer than %d people folded into %s\n", rep.Folded, rep.MinGroupSize, Other)
		return err
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
