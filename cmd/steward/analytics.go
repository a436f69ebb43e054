package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/errs"
)

// attributionFlags are the options of `steward analytics attribution`.
type attributionFlags struct {
	from, to, model, groupBy, conversion, format string
	lookbackDays, halfLifeDays                   string
	raw                                          bool
	reason                                       string
}

func (f *attributionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.from, "from", "", "start of the period, RFC 3339 or YYYY-MM-DD (required)")
	fs.StringVar(&f.to, "to", "", "end of the period, exclusive, RFC 3339 or YYYY-MM-DD (required)")
	fs.StringVar(&f.model, "model", attribution.DefaultModel, strings.Join(attribution.Models(), ", "))
	fs.StringVar(&f.groupBy, "group-by", attribution.DefaultGroupBy,
		strings.Join(attribution.GroupBys(), ", ")+", or two of them joined by a comma")
	fs.StringVar(&f.conversion, "conversion", attribution.DefaultConversion,
		"purchase, signup, or the name of a custom conversion")
	fs.StringVar(&f.lookbackDays, "lookback-days", "", "days before a conversion a touch still counts (default: the server's, 30)")
	fs.StringVar(&f.halfLifeDays, "half-life-days", "", "half life of the time_decay model in days (default 7)")
	fs.StringVar(&f.format, "format", "table", "table, csv or json")
	fs.BoolVar(&f.raw, "raw", false, "show groups of fewer people than the minimum group size on their own (needs --reason; logged)")
	fs.StringVar(&f.reason, "reason", "", "why a --raw report is needed, for the log; name no person")
}

// request checks the flags and returns the report they ask for. The span
// is checked against the largest any configuration allows; the module
// checks it again against its own.
func (f *attributionFlags) request() (attribution.Request, error) {
	if f.format != "table" && f.format != "csv" && f.format != "json" {
		return attribution.Request{}, fmt.Errorf("%w: --format %q, want table, csv or json", errUsage, f.format)
	}
	if f.raw && strings.TrimSpace(f.reason) == "" {
		return attribution.Request{}, fmt.Errorf("%w: --raw needs --reason", errUsage)
	}
	req, err := attribution.Parse(attribution.Params{
		From: f.from, To: f.to, Model: f.model, GroupBy: f.groupBy, Conversion: f.conversion,
		LookbackDays: f.lookbackDays, HalfLifeDays: f.halfLifeDays,
	}, attribution.MaxSpanLimit)
	if err != nil {
		return attribution.Request{}, flagError(err)
	}
	return req, nil
}

// flagError turns a validation error, which names query parameters, into
// a usage error naming the flags.
func flagError(err error) error {
	msg := strings.NewReplacer("group_by", "group-by", "lookback_days", "lookback-days", "half_life_days", "half-life-days").
		Replace(err.Error())
	return fmt.Errorf("%w: %s", errUsage, msg)
}

// access is who the command runs the report for: the operator, who sees
// small groups folded like an analyst unless --raw.
func (f *attributionFlags) access() attribution.Access {
	return attribution.Access{Caller: "cli", Raw: f.raw, Reason: f.reason}
}

// runAnalytics handles `steward analytics attribution --from --to
// [--model] [--group-by] [--conversion] [--lookback-days]
// [--half-life-days] [--format table|csv|json] [--raw --reason R]`: the
// report GET /v1/analytics/attribution serves, computed by the same
// module under the same limits, printed for an operator.
func runAnalytics(ctx context.Context, env cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "attribution" {
		return fmt.Errorf("%w: want: analytics attribution --from D --to D [--model M] [--group-by G[,G]] [--conversion C] "+
			"[--lookback-days N] [--half-life-days N] [--format table|csv|json] [--raw --reason R]", errUsage)
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
	mod, err := attributionModule(srv)
	if err != nil {
		return err
	}
	if f.lookbackDays == "" {
		req.Lookback = mod.Lookback()
	}
	return printAttribution(ctx, env.stdout, mod, req, f.access(), f.format)
}

// attributionModule returns the server's attribution module, so that the
// command shares its limits, its minimum group size and, inside a serving
// process, its count of reports in flight.
func attributionModule(srv *server) (*attribution.Module, error) {
	for _, m := range srv.modules {
		if a, ok := m.(*attribution.Module); ok {
			return a, nil
		}
	}
	return nil, errors.New("analytics attribution: the server has no attribution module")
}

// printAttribution computes the report and writes it as a table, as CSV,
// or as the JSON document the HTTP route answers with.
func printAttribution(ctx context.Context, w io.Writer, mod *attribution.Module, req attribution.Request, a attribution.Access, format string) error {
	rep, err := mod.Report(ctx, req, a)
	if errs.Kind(err) == errs.ErrInvalidArgument {
		return flagError(err)
	}
	if err != nil {
		return fmt.Errorf("analytics attribution: %w", err)
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "csv":
		return attribution.WriteCSV(w, rep)
	}
	return attribution.WriteTable(w, rep)
}
