package policies

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// A bundle is a directory of policies and their data laid out as this
// package's own (Embedded): the Rego files and their tests at its root,
// data/taxonomy.json, roles.json, consent_map.json, safety.json,
// checklist.json, fideslang.json and processing.json in data/. Operators
// start one with `steward policy init DIR`, change it, and point
// STEWARD_POLICY_DIR at it.

// LoadBundle checks a bundle as `opa check --strict` and `opa test` would,
// and returns an engine on it when every check passes: its Rego compiles
// strictly, its data is valid (every category complete, every role and
// purpose known), and every Rego test in it passes. A bundle that fails
// is never half loaded: the error says what failed, and the caller keeps
// the engine it has.
func LoadBundle(ctx context.Context, bundle fs.FS, opts Options) (*Engine, error) {
	opts.Bundle = bundle
	e, err := New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("policy bundle: %w", err)
	}
	results, err := runTests(ctx, bundle, nil)
	if err != nil {
		return nil, fmt.Errorf("policy bundle: run its Rego tests: %w", err)
	}
	var failed []string
	for _, r := range results {
		if r.Fail || r.Error != nil {
			failed = append(failed, strings.TrimPrefix(r.Package, "data.")+"."+r.Name)
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("policy bundle: %d of its %d Rego tests fail: %s", len(failed), len(results), strings.Join(failed, ", "))
	}
	if len(results) == 0 {
		return nil, errors.New("policy bundle: it has no Rego tests; a bundle's policies ship with the tests that pin them down")
	}
	return e, nil
}

// runTests runs every Rego test of a bundle, plus the extra modules, against
// the bundle's data, compiled as strictly as `opa check --strict`.
func runTests(ctx context.Context, bundle fs.FS, extra map[string]*ast.Module) ([]*tester.Result, error) {
	modules, _, err := loadModules(bundle, true)
	if err != nil {
		return nil, err
	}
	for name, m := range extra {
		modules[name] = m
	}
	doc, err := loadStoreDocument(bundle)
	if err != nil {
		return nil, err
	}
	ch, err := tester.NewRunner().
		// The runner's default of five seconds a test fails on a busy
		// machine; a hung evaluation is still stopped.
		SetTimeout(2*time.Minute).
		SetCompiler(ast.NewCompiler().WithStrict(true).WithEnablePrintStatements(true)).
		SetStore(inmem.NewFromObject(doc)).
		SetModules(modules).
		RunTests(ctx, nil)
	if err != nil {
		return nil, err
	}
	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
	}
	slices.SortFunc(results, func(a, b *tester.Result) int {
		return strings.Compare(a.Package+"."+a.Name, b.Package+"."+b.Name)
	})
	return results, nil
}
