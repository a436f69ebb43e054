package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/stewardhq/steward/governance/audit"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/governance/retention"
	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/policies"
)

// dataMap builds the data map of the live stores from a fixed list of
// sources: the tagged models of the platform and of every module. It is a
// value made once those modules exist; retention, the audit and privacy
// requests are handed its Build and call it whenever they need the
// current map.
type dataMap struct {
	stores  *stores
	engine  *policies.Engine
	sources []datamap.Source
}

// dataSources lists every tagged model Steward stores: the platform's own
// tables, each of mods', and those of the governance modules that keep
// records of their own. Those are built from the data map, so their models
// are named by package here; TestDataSourcesCoverEveryModule holds the
// list to what each built module declares.
func dataSources(mods []module.Module) []datamap.Source {
	platform := append(sqlstore.Models(), adminlog.Models()...)
	sources := []datamap.Source{{Module: "platform", Models: platform}}
	for _, m := range mods {
		if models := m.Models(); len(models) > 0 {
			sources = append(sources, datamap.Source{Module: m.Name(), Models: models})
		}
	}
	return append(sources,
		datamap.Source{Module: "privacy", Models: privacy.Models()},
		datamap.Source{Module: "retention", Models: []any{(*retention.Run)(nil)}},
		datamap.Source{Module: "audit", Models: audit.Models()},
	)
}

// Sources returns the tagged models the map is built from, by module.
func (d dataMap) Sources() []datamap.Source { return d.sources }

// Build builds the data map of the live stores. A store whose schema is
// behind its migrations is a problem of the map: a table the code keeps
// data in may be missing from it, and the map would be silently short.
func (d dataMap) Build(ctx context.Context) (*datamap.Map, []datamap.Problem, error) {
	m, problems, err := datamap.Build(ctx, datamap.Inputs{
		SQL:       d.stores.sql,
		Warehouse: d.stores.warehouse,
		Sources:   d.sources,
		Policy:    d.engine,
	})
	if err != nil {
		return nil, nil, err
	}
	behind, err := d.stores.schemaProblems(ctx)
	if err != nil {
		return nil, nil, err
	}
	return m, append(behind, problems...), nil
}

// runDatamap prints the data map of the configured stores. Problems (a
// column the map cannot govern) are printed to stderr and fail the
// command, so it can gate a deployment.
func runDatamap(ctx context.Context, env cmdEnv, args []string) error {
	var format string
	cfg, fs, err := config.Load("datamap", args, env.getenv, func(fs *flag.FlagSet, _ *config.Config) {
		fs.StringVar(&format, "format", datamap.FormatJSON, strings.Join(datamap.Formats(), ", "))
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if !validFormat(format) {
		return fmt.Errorf("%w: --format %q, want one of %s", errUsage, format, strings.Join(datamap.Formats(), ", "))
	}
	cfg.AutoMigrate = false
	srv, release, err := env.server(ctx, cfg, newLogger(cfg, env.stderr))
	if err != nil {
		return err
	}
	defer release()
	m, problems, err := srv.dataMap.Build(ctx)
	if err != nil {
		return err
	}
	proc, err := processingFacts()
	if err != nil {
		return err
	}
	if err := datamap.Render(env.stdout, m, format, proc); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(env.stderr, "data map problem:", p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("the data map has %d problems: it does not govern every stored column", len(problems))
	}
	return nil
}

func validFormat(f string) bool {
	for _, x := range datamap.Formats() {
		if f == x {
			return true
		}
	}
	return false
}

func processingFacts() (datamap.Processing, error) {
	raw, err := policies.ProcessingFacts()
	if err != nil {
		return datamap.Processing{}, err
	}
	return datamap.ParseProcessing(raw)
}
