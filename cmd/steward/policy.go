package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/stewardhq/steward/governance/retention"
	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/policies"
	"github.com/stewardhq/steward/portal"
)

// accessActions are the access actions a policy diff compares.
var accessActions = []string{authz.ActionRead, authz.ActionList, authz.ActionUpdate, authz.ActionDelete, authz.ActionExport, authz.ActionAudit}

// runPolicy works with policy bundles: `policy init DIR` writes the
// embedded bundle to DIR to start one's own; `policy check DIR` checks a
// bundle as the server would load it; `policy diff DIR` shows what a
// bundle would change against the policies in force, before it applies.
func runPolicy(ctx context.Context, env cmdEnv, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: policy init|check|diff DIR", errUsage)
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "init", "check":
		if len(rest) != 1 {
			return fmt.Errorf("%w: policy %s DIR", errUsage, sub)
		}
		if sub == "init" {
			return initBundle(rest[0], env.stdout)
		}
		e, err := policies.LoadBundle(ctx, os.DirFS(rest[0]), policies.Options{CacheSize: -1})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "%s: a valid policy bundle, revision %s\n", rest[0], e.Revision())
		return nil
	case "diff":
		return runPolicyDiff(ctx, env, rest)
	default:
		return fmt.Errorf("%w: policy %q: want init, check or diff", errUsage, sub)
	}
}

// initBundle writes the embedded bundle into dir, which must not exist or
// be empty.
func initBundle(dir string, out io.Writer) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("policy init: %s is not empty; name a new folder", dir)
	}
	src := policies.Embedded()
	err := fs.WalkDir(src, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		raw, err := fs.ReadFile(src, name)
		if err != nil {
			return err
		}
		return os.WriteFile(target, raw, 0o644)
	})
	if err != nil {
		return fmt.Errorf("policy init: %w", err)
	}
	fmt.Fprintf(out, "wrote the policy bundle in force to %s; change it, check it with `steward policy check %s`, see its effect with `steward policy diff %s`\n", dir, dir, dir)
	return nil
}

// PolicyDiff is what `policy diff` reports: the changed decisions, and
// what the next retention run would remove under each bundle.
type PolicyDiff struct {
	policies.Diff
	Retention []RetentionDiff `json:"retention"`
}

// RetentionDiff is one table's rows the next retention run would remove
// (or anonymize) now under the bundle in force and under the candidate.
type RetentionDiff struct {
	Store     string `json:"store"`
	Table     string `json:"table"`
	Action    string `json:"action"`
	Current   int64  `json:"current"`
	Candidate int64  `json:"candidate"`
}

func runPolicyDiff(ctx context.Context, env cmdEnv, args []string) error {
	var format string
	cfg, fs, err := config.Load("policy diff", args, env.getenv, func(fs *flag.FlagSet, _ *config.Config) {
		fs.StringVar(&format, "format", "text", "text or json")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 || (format != "text" && format != "json") {
		return fmt.Errorf("%w: policy diff [--format text|json] DIR", errUsage)
	}
	cfg.AutoMigrate = false
	srv, release, err := env.server(ctx, cfg, newLogger(cfg, env.stderr))
	if err != nil {
		return err
	}
	defer release()
	d, err := srv.policyDiff(ctx, os.DirFS(fs.Arg(0)))
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	return writePolicyDiff(env.stdout, d)
}

// policyDiff compares a candidate bundle with the policies in force: the
// decisions, and the rows the next retention run would remove now under
// each (counted by the runner's preview, which changes nothing).
func (s *server) policyDiff(ctx context.Context, bundle fs.FS) (PolicyDiff, error) {
	cand, err := policies.LoadBundle(ctx, bundle, policies.Options{CacheSize: -1})
	if err != nil {
		return PolicyDiff{}, err
	}
	d, err := policies.Compare(ctx, s.engine, cand, accessActions)
	if err != nil {
		return PolicyDiff{}, fmt.Errorf("compare the policies: %w", err)
	}
	out := PolicyDiff{Diff: d, Retention: []RetentionDiff{}}
	counts := map[[3]string]*RetentionDiff{}
	var order [][3]string
	for i, e := range []*policies.Engine{s.engine, cand} {
		dm := dataMap{stores: s.stores, engine: e, sources: s.dataMap.sources}
		r, err := retention.New(retention.Config{}, retention.Deps{
			DB: s.stores.sql, Warehouse: s.stores.warehouse, DataMap: dm.Build, Logger: s.log, Now: s.now,
		})
		if err != nil {
			return PolicyDiff{}, err
		}
		rep, err := r.Preview(ctx)
		if err != nil {
			return PolicyDiff{}, fmt.Errorf("preview retention: %w", err)
		}
		for _, it := range rep.Items {
			k := [3]string{it.Store, it.Table, it.Action}
			rd, ok := counts[k]
			if !ok {
				rd = &RetentionDiff{Store: it.Store, Table: it.Table, Action: it.Action}
				counts[k] = rd
				order = append(order, k)
			}
			if i == 0 {
				rd.Current += it.Rows
			} else {
				rd.Candidate += it.Rows
			}
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		return a[0]+a[1]+a[2] < b[0]+b[1]+b[2]
	})
	for _, k := range order {
		if rd := counts[k]; rd.Current != 0 || rd.Candidate != 0 {
			out.Retention = append(out.Retention, *rd)
		}
	}
	return out, nil
}

// writePolicyDiff prints a diff for a person.
func writePolicyDiff(w io.Writer, d PolicyDiff) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("policy revision %s (in force) -> %s (candidate)\n\n", d.From, d.To)
	p("Rules that change: %d\n", len(d.Rules))
	if len(d.Rules) > 0 {
		p("category\trule\tin force\tcandidate\n")
		for _, r := range d.Rules {
			p("%s\t%s\t%s\t%s\n", r.Category, r.Rule, orNone(r.Before), orNone(r.After))
		}
	}
	p("\nAccess that changes: %d\n", len(d.Access))
	if len(d.Access) > 0 {
		p("role\tgains or loses\taction\tcategory\n")
		for _, a := range d.Access {
			verb := "loses"
			if a.Gains {
				verb = "gains"
			}
			p("%s\t%s\t%s\t%s\n", a.Role, verb, a.Action, a.Category)
		}
	}
	p("\nWhat the next retention run would remove now\n")
	if len(d.Retention) == 0 {
		p("nothing, under either\n")
	} else {
		p("store\ttable\taction\tin force\tcandidate\n")
		for _, r := range d.Retention {
			p("%s\t%s\t%s\t%d\t%d\n", r.Store, r.Table, r.Action, r.Current, r.Candidate)
		}
	}
	if err := tw.Flush(); err != nil {
		return errors.Join(errors.New("write the policy diff"), err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// consolePolicy is the console's view of the policies: the revision in
// force and, with STEWARD_POLICY_DIR, what the folder holds now and what
// applying it would change.
func (s *server) consolePolicy(ctx context.Context) (portal.PolicyView, error) {
	v := portal.PolicyView{Revision: s.engine.Revision(), Dir: s.cfg.PolicyDir}
	if s.cfg.PolicyDir == "" {
		return v, nil
	}
	d, err := s.policyDiff(ctx, os.DirFS(s.cfg.PolicyDir))
	if err != nil {
		// The folder fails its checks: say why; the policies in force
		// stay.
		v.Candidate = &portal.PolicyCandidate{Error: err.Error()}
		return v, nil
	}
	c := &portal.PolicyCandidate{Revision: d.To}
	for _, r := range d.Rules {
		c.Rules = append(c.Rules, portal.PolicyRuleChange{Category: r.Category, Rule: r.Rule, Before: r.Before, After: r.After})
	}
	for _, a := range d.Access {
		c.Access = append(c.Access, portal.PolicyAccessChange{Role: a.Role, Action: a.Action, Category: a.Category, Gains: a.Gains})
	}
	for _, r := range d.Retention {
		c.Retention = append(c.Retention, portal.PolicyRetentionChange{Store: r.Store, Table: r.Table, Action: r.Action, Current: r.Current, Candidate: r.Candidate})
	}
	v.Candidate = c
	return v, nil
}

// applyPolicy puts the policy folder's bundle in force when the folder
// still holds revision, and records the change, with the old and the new
// revision, in the hash-chained admin log.
func (s *server) applyPolicy(ctx context.Context, p authz.Principal, revision string) (string, error) {
	if s.cfg.PolicyDir == "" {
		return "", errs.E(errs.ErrConflict, "No policy folder is configured (STEWARD_POLICY_DIR).")
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	cand, err := policies.LoadBundle(ctx, os.DirFS(s.cfg.PolicyDir), policies.Options{})
	if err != nil {
		return "", errs.Invalid("revision", "bundle", err.Error())
	}
	if cand.Revision() != revision {
		return "", fmt.Errorf("%w: it holds revision %s, not %s", portal.ErrPolicyChanged, cand.Revision(), revision)
	}
	from := s.engine.Revision()
	if from == revision {
		return revision, nil
	}
	// The log entry goes first: a change the log cannot record is not
	// made.
	if _, err := adminlog.Append(ctx, s.stores.sql, adminlog.Entry{
		ActorID: p.UserID, Action: "policy.apply", TargetID: "policy:" + revision,
		Details: map[string]any{"from_revision": from, "to_revision": revision, "policy_dir": s.cfg.PolicyDir},
	}); err != nil {
		return "", fmt.Errorf("log the policy change: %w", err)
	}
	s.engine.Replace(cand)
	s.log.InfoContext(ctx, "policies applied from the bundle folder", slog.String("from_revision", from), slog.String("revision", revision))
	return revision, nil
}
