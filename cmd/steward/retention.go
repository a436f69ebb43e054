package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/stewardhq/steward/internal/config"
)

// runRetention handles `steward retention run [--dry-run]`: one run of the
// retention rules over every store, its report printed as JSON and stored
// for the audit. A dry run counts what a run would remove and changes
// nothing.
func runRetention(ctx context.Context, env cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "run" {
		return fmt.Errorf("%w: want: retention run [--dry-run]", errUsage)
	}
	var dryRun bool
	cfg, fs, err := config.Load("retention run", args[1:], env.getenv, func(fs *flag.FlagSet, _ *config.Config) {
		fs.BoolVar(&dryRun, "dry-run", false, "count what would be removed, remove nothing")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	srv, release, err := env.server(ctx, cfg, newLogger(cfg, env.stderr))
	if err != nil {
		return err
	}
	defer release()
	// A store behind its migrations may lack a table the rules cover; a
	// run over it would report success for data it never saw.
	behind, err := srv.stores.schemaProblems(ctx)
	if err != nil {
		return err
	}
	if len(behind) > 0 {
		return errors.New(behind[0].Message)
	}
	rep, err := srv.wired.retention.Run(ctx, dryRun)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
