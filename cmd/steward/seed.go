package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/governance/seed"
	"github.com/stewardhq/steward/internal/config"
)

// defaultEventBudget bounds the analytics events of a seed run without
// --events: up to ten thousand typical people get the profile's two
// hundred each, more people get fewer each, so a hundred thousand get
// twenty each (two million in all) rather than twenty million events.
const defaultEventBudget = 2_000_000

// defaultEvents returns the events per person of a seed of users people
// when --events is not given: the profile's number, lowered so the total
// stays within defaultEventBudget, and at least one when the profile has
// any.
func defaultEvents(profile, users int) int {
	return max(min(profile, defaultEventBudget/max(users, 1)), min(profile, 1))
}

// newSeeder builds a seeder over the server's stores and modules; uploads
// go through the assets module so they are real files, and events through
// the analytics module's store.
func (s *server) newSeeder(randSeed uint64) (*seed.Seeder, error) {
	return seed.New(seed.Config{Seed: randSeed}, seed.Deps{
		DB:      s.stores.sql,
		Events:  storeSeedEvents(s.wired.events.Store),
		Sources: s.dataMap.Sources(),
		Uploads: func(ctx context.Context, userID, name, mimeType string, r io.Reader) error {
			_, _, err := s.wired.assets.PutAsset(ctx, userID, "upload", name, mimeType, r)
			return err
		},
	})
}

// storeSeedEvents adapts a store of the analytics module's rows to the
// seeder's events, which have the same fields.
func storeSeedEvents(store func(context.Context, []ingest.Row) error) seed.EventStore {
	return func(ctx context.Context, events []seed.Event) error {
		rows := make([]ingest.Row, len(events))
		for i := range events {
			rows[i] = ingest.Row(events[i])
		}
		return store(ctx, rows)
	}
}

// runSeed handles `steward seed [--users N] [--events N] [--profile
// typical|heavy] [--seed N]`: demo data for N people, printed as a count
// per table. People are seeded a group at a time, so any number fits in
// the same memory; progress goes to the log.
func runSeed(ctx context.Context, env cmdEnv, args []string) error {
	var users, events int
	var profile string
	var randSeed uint64
	cfg, fs, err := config.Load("seed", args, env.getenv, func(fs *flag.FlagSet, _ *config.Config) {
		fs.IntVar(&users, "users", 100, "number of people to create")
		fs.IntVar(&events, "events", -1, fmt.Sprintf("analytics events per person (default: the profile's, fewer when the total would pass %d)", defaultEventBudget))
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
	if users < 1 {
		return fmt.Errorf("%w: --users must be at least 1", errUsage)
	}
	if events >= 0 {
		p.Events = events
	} else {
		p.Events = defaultEvents(p.Events, users)
	}
	log := newLogger(cfg, env.stderr)
	srv, release, err := env.server(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer release()
	sd, err := srv.newSeeder(randSeed)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "seeding", slog.Int("people", users), slog.Int("events_per_person", p.Events))
	step, done := max(users/10, 1), 0
	sum, err := sd.Stream(ctx, users, p, func(group []seed.Person) error {
		before := done
		done += len(group)
		if done/step != before/step || done == users {
			log.InfoContext(ctx, "seeded", slog.Int("people", done), slog.Int("of", users))
		}
		return nil
	})
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
