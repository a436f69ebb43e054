package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/stewardhq/steward/governance/audit"
	"github.com/stewardhq/steward/internal/config"
)

// errFindings fails `steward audit` with exit 1 once the report is out:
// the report itself says what was found.
var errFindings = errors.New("the audit has findings")

// runAudit handles `steward audit [--format json|html] [--out F]`: it
// prints or writes the audit report and exits 0 when clean (warnings
// allowed), 1 when any check has a finding.
func runAudit(ctx context.Context, env cmdEnv, args []string) error {
	var format, out string
	cfg, fs, err := config.Load("audit", args, env.getenv, func(fs *flag.FlagSet, _ *config.Config) {
		fs.StringVar(&format, "format", audit.FormatJSON, "json or html")
		fs.StringVar(&out, "out", "", "write the report to this file instead of stdout")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if format != audit.FormatJSON && format != audit.FormatHTML {
		return fmt.Errorf("%w: --format %q, want one of %s", errUsage, format, strings.Join(audit.Formats(), ", "))
	}
	cfg.AutoMigrate = false
	srv, release, err := env.server(ctx, cfg, newLogger(cfg, env.stderr))
	if err != nil {
		return err
	}
	defer release()
	rep, err := srv.wired.audit.Report(ctx)
	if err != nil {
		return err
	}
	if err := writeReport(env, rep, format, out); err != nil {
		return err
	}
	if !rep.Clean {
		n := 0
		for _, c := range rep.Checks {
			if c.Status == audit.StatusFinding {
				n++
			}
		}
		return fmt.Errorf("%w in %d of %d checks", errFindings, n, len(rep.Checks))
	}
	return nil
}

// writeReport writes the report to out, or to stdout when out is empty.
// The file is written whole through a temporary name, so a failed run
// never leaves half a report where the last good one was.
func writeReport(env cmdEnv, rep audit.Report, format, out string) error {
	if out == "" {
		return audit.Render(env.stdout, rep, format)
	}
	f, err := env.create(out)
	if err != nil {
		return err
	}
	if err := audit.Render(f, rep, format); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}
