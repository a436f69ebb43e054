package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/stewardhq/steward/governance/seed"
	"github.com/stewardhq/steward/internal/config"
)

// newSeeder builds a seeder over the server's stores and modules; uploads
// go through the assets module so they are real files.
func (s *server) newSeeder(ctx context.Context, randSeed uint64) (*seed.Seeder, error) {
	return seed.New(ctx, seed.Deps{
		DB:        s.stores.sql,
		Warehouse: s.stores.warehouse,
		Sources:   s.dataSources(),
		Uploads: func(ctx context.Context, userID, name, mimeType string, r io.Reader) error {
			_, _, err := s.wired.assets.PutAsset(ctx, userID, "upload", name, mimeType, r)
			return err
		},
	}, randSeed)
}

// runSeed handles `steward seed [--users N] [--events N] [--profile
// typical|heavy] [--seed N]`: demo data for N people, printed as a count
// per table.
func runSeed(ctx context.Context, env cmdEnv, args []string) error {
	var users, events int
	var profile string
	var randSeed uint64
	cfg, fs, err := config.Load("seed", args, env.getenv, func(fs *flag.FlagSet, _ *config.Config) {
		fs.IntVar(&users, "users", 100, "number of people to create")
		fs.IntVar(&events, "events", -1, "analytics events per person (default: the profile's)")
		fs.StringVar(&profile, "profile", "typical", "typical or heavy (the benchmarks' heavy subject)")
		fs.Uint64Var(&randSeed, "seed", 1, "random seed, for reproducible data")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	var p seed.Profile
	switch profile {
	case "typical":
		p = seed.Typical()
	case "heavy":
		p = seed.Heavy()
	default:
		return fmt.Errorf("%w: --profile %q, want typical or heavy", errUsage, profile)
	}
	if events >= 0 {
		p.Events = events
	}
	if users < 1 {
		return fmt.Errorf("%w: --users must be at least 1", errUsage)
	}
	srv, err := newServer(ctx, cfg, newLogger(cfg, env.stderr))
	if err != nil {
		return err
	}
	defer srv.close(context.Background())
	sd, err := srv.newSeeder(ctx, randSeed)
	if err != nil {
		return err
	}
	_, sum, err := sd.People(ctx, users, p)
	if err != nil {
		return err
	}
	tables := make([]string, 0, len(sum.Rows))
	for t := range sum.Rows {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		fmt.Fprintf(env.stdout, "%-28s %d\n", t, sum.Rows[t])
	}
	fmt.Fprintf(env.stdout, "%-28s %d\n%-28s %d\n", "events", sum.Events, "files", sum.Files)
	return nil
}
