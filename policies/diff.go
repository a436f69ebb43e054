package policies

import (
	"context"
	"fmt"
)

// RuleChange is a category whose rule differs between two engines: Rule is
// "retention", "export", "erasure (sql)" or "erasure (warehouse)"; Before
// and After say the rule in a line each ("" for a category one side lacks).
type RuleChange struct {
	Category string `json:"category"`
	Rule     string `json:"rule"`
	Before   string `json:"before"`
	After    string `json:"after"`
}

// AccessChange is a role that gains or loses an action on a category.
type AccessChange struct {
	Role     string `json:"role"`
	Action   string `json:"action"`
	Category string `json:"category"`
	// Gains is true when the candidate allows what the current one does
	// not; false when it takes it away.
	Gains bool `json:"gains"`
}

// Diff is what changes when the candidate engine replaces the current one,
// decision by decision: no file is compared, so a rewording that decides
// the same is no change, and a data edit that changes a decision is one.
type Diff struct {
	From   string         `json:"from_revision"`
	To     string         `json:"to_revision"`
	Rules  []RuleChange   `json:"rules"`
	Access []AccessChange `json:"access"`
}

// Compare asks both engines every retention, export and erasure question
// for every category either knows, and every access question of each role
// for each of actions on every category, and returns where they answer
// differently. actions are the access actions to compare (authz's).
func Compare(ctx context.Context, cur, cand *Engine, actions []string) (Diff, error) {
	d := Diff{From: cur.Revision(), To: cand.Revision(), Rules: []RuleChange{}, Access: []AccessChange{}}
	cats := storableUnion(cur.Taxonomy(), cand.Taxonomy())
	for _, c := range cats {
		for _, q := range ruleQuestions {
			before, err := q.ask(ctx, cur, c)
			if err != nil {
				return Diff{}, err
			}
			after, err := q.ask(ctx, cand, c)
			if err != nil {
				return Diff{}, err
			}
			if before != after {
				d.Rules = append(d.Rules, RuleChange{Category: c, Rule: q.name, Before: before, After: after})
			}
		}
	}
	roles := map[string]bool{}
	for r := range cur.Roles() {
		roles[r] = true
	}
	for r := range cand.Roles() {
		roles[r] = true
	}
	for _, role := range sortedKeys(roles) {
		for _, action := range actions {
			before, err := permitted(ctx, cur, role, action, cats)
			if err != nil {
				return Diff{}, err
			}
			after, err := permitted(ctx, cand, role, action, cats)
			if err != nil {
				return Diff{}, err
			}
			for _, c := range cats {
				if before[c] != after[c] {
					d.Access = append(d.Access, AccessChange{Role: role, Action: action, Category: c, Gains: after[c]})
				}
			}
		}
	}
	return d, nil
}

// ruleQuestions are the per-category decisions Compare asks, each said in
// one line.
var ruleQuestions = []struct {
	name string
	ask  func(ctx context.Context, e *Engine, category string) (string, error)
}{
	{"retention", func(ctx context.Context, e *Engine, c string) (string, error) {
		r, err := e.Retention(ctx, c)
		if err != nil || !r.Known {
			return "", err
		}
		return fmt.Sprintf("%s from %s, then %s", r.Duration, r.From, r.Action), nil
	}},
	{"export", func(ctx context.Context, e *Engine, c string) (string, error) {
		x, err := e.Export(ctx, c)
		if err != nil || x.Flag != "" {
			return "", err
		}
		if x.Include {
			return "included", nil
		}
		return "withheld: " + x.Reason, nil
	}},
	{"erasure (sql)", erasureLine("sql")},
	{"erasure (warehouse)", erasureLine("warehouse")},
}

func erasureLine(store string) func(ctx context.Context, e *Engine, c string) (string, error) {
	return func(ctx context.Context, e *Engine, c string) (string, error) {
		x, err := e.Erasure(ctx, c, store)
		if err != nil || x.Flag != "" {
			return "", err
		}
		s := x.Action
		if x.Until != "" {
			s += " until " + x.Until
		}
		return s, nil
	}
}

// permitted returns, for each of cats, whether role may perform action on
// it, by one access question over all of them.
func permitted(ctx context.Context, e *Engine, role, action string, cats []string) (map[string]bool, error) {
	d, err := e.Access(ctx, AccessInput{Role: role, Action: action, Categories: cats})
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(cats))
	if !d.Allow {
		return out, nil
	}
	for _, c := range d.Permitted {
		out[c] = true
	}
	return out, nil
}

// storableUnion returns the storable categories of either taxonomy,
// sorted.
func storableUnion(a, b map[string]Category) []string {
	seen := map[string]bool{}
	for _, tax := range []map[string]Category{a, b} {
		for k, c := range tax {
			if !c.Group {
				seen[k] = true
			}
		}
	}
	return sortedKeys(seen)
}
