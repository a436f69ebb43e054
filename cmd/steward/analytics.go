package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/config"
)

// attributionFlags are the options of `steward analytics attribution`.
type attributionFlags struct {
	from, to, model, groupBy, conversion, format string
	lookbackDays                                 int
}

func (f *attributionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.from, "from", "", "start of the period, RFC 3339 or YYYY-MM-DD (required)")
	fs.StringVar(&f.to, "to", "", "end of the period, exclusive, RFC 3339 or YYYY-MM-DD (required)")
	fs.StringVar(&f.model, "model", attribution.DefaultModel, strings.Join(attribution.Models(), ", "))
	fs.StringVar(&f.groupBy, "group-by", attribution.DefaultGroupBy, strings.Join(attribution.GroupBys(), ", "))
	fs.StringVar(&f.conversion, "conversion", attribution.DefaultConversion, "event type or name of the conversion")
	fs.IntVar(&f.lookbackDays, "lookback-days", int(attribution.DefaultLookback/(24*time.Hour)), "days before a conversion a touch still counts")
	fs.StringVar(&f.format, "format", "table", "table or json")
}

// request checks the flags and returns the report they ask for.
func (f *attributionFlags) request() (attribution.Request, error) {
	if f.format != "table" && f.format != "json" {
		return attribution.Request{}, fmt.Errorf("%w: --format %q, want table or json", errUsage, f.format)
	}
	req, err := attribution.Parse(f.from, f.to, f.model, f.groupBy, f.conversion)
	if err == nil {
		req.Lookback = time.Duration(f.lookbackDays) * 24 * time.Hour
		err = req.Validate()
	}
	if err != nil {
		// The validation error names query parameters; the command line
		// spells group_by as --group-by.
		return attribution.Request{}, fmt.Errorf("%w: %s", errUsage, strings.ReplaceAll(err.Error(), "group_by", "group-by"))
	}
	return req, nil
}

// runAnalytics handles `steward analytics attribution --from --to
// [--model] [--group-by] [--conversion] [--lookback-days] [--format
// table|json]`: the report GET /v1/analytics/attribution serves, printed
// for an operator with access to the warehouse.
func runAnalytics(ctx context.Context, env cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "attribution" {
		return fmt.Errorf("%w: want: analytics attribution --from D --to D [--model M] [--group-by G] [--conversion C] [--format table|json]", errUsage)
	}
	var f attributionFlags
	cfg, fs, err := config.Load("analytics attribution", args[1:], env.getenv, func(fs *flag.FlagSet, _ *config.Config) {
		f.register(fs)
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	req, err := f.request()
	if err != nil {
		return err
	}
	srv, release, err := env.server(ctx, cfg, newLogger(cfg, env.stderr))
	if err != nil {
		return err
	}
	defer release()
	return printAttribution(ctx, env.stdout, srv.stores.warehouse, req, f.format)
}

// printAttribution computes the report and writes it as a table or as the
// JSON document the HTTP route answers with.
func printAttribution(ctx context.Context, w io.Writer, wh warehouse.Warehouse, req attribution.Request, format string) error {
	rep, err := attribution.Run(ctx, wh, req)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	r := rep.Request
	fmt.Fprintf(w, "attribution %s by %s of %q, %s to %s, lookback %g days\n\n",
		r.Model, r.GroupBy, r.Conversion, r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.LookbackDays)
	// Every cell ends in a tab so that all lines share one column layout;
	// the padding this leaves at the end of a line is trimmed below.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tCURRENCY\tCONVERSIONS\tREVENUE\t")
	for _, row := range rep.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%.4f\t%s\t\n", row.Group, orDash(row.Currency), row.Conversions, row.Revenue.StringFixed(4))
	}
	fmt.Fprintf(tw, "total\t\t%.4f\t\t\n", rep.Totals.Conversions)
	for _, c := range rep.Totals.Revenue {
		fmt.Fprintf(tw, "revenue\t%s\t\t%s\t\n", orDash(c.Currency), c.Revenue.StringFixed(4))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
