package policies

import (
	"bytes"
	"context"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/tester"
)

// runRegoTests runs every Rego test embedded in the package, plus the extra
// modules given by name and source, against the embedded data, compiled as
// strictly as `opa check --strict`.
func runRegoTests(ctx context.Context, extra map[string]string) ([]*tester.Result, error) {
	mods := map[string]*ast.Module{}
	for name, src := range extra {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		mods[name] = m
	}
	return runTests(ctx, sources, mods)
}

func TestRegoPolicies(t *testing.T) {
	results, err := runRegoTests(t.Context(), nil)
	if err != nil {
		t.Fatalf("run Rego tests: %v", err)
	}
	if len(results) == 0 {
		t.Fatal("no Rego tests ran")
	}
	perPackage := map[string]int{}
	for _, r := range results {
		perPackage[r.Package]++
		t.Run(strings.TrimPrefix(r.Package, "data.steward.")+"/"+r.Name, func(t *testing.T) {
			switch {
			case r.Error != nil:
				t.Errorf("%s: error: %v", r.Location, r.Error)
			case r.Skip:
				t.Skip("skipped in Rego (todo_ prefix)")
			case r.Fail:
				t.Errorf("%s: %s failed", r.Location, r.Name)
			}
		})
	}
	// Every policy has its own tests beside it.
	for _, pkg := range []string{"access", "retention", "export", "erasure", "consent", "safety", "lib"} {
		if perPackage["data.steward."+pkg+"_test"] == 0 {
			t.Errorf("package steward.%s has no Rego tests; found %v", pkg, slices.Sorted(maps.Keys(perPackage)))
		}
	}
}

// TestRegoHarnessReportsFailures shows that a failing Rego test fails the Go
// test: without it, a harness that silently passes would hide every
// regression in the policies.
func TestRegoHarnessReportsFailures(t *testing.T) {
	results, err := runRegoTests(t.Context(), map[string]string{
		"harness_test.rego": `package steward.harness_test

import data.steward.access

test_admin_may_not_read if access.decision.allow == false with input as {"role": "admin", "action": "read", "category": "user.name"}

test_runtime_error if to_number("not a number") == 1
`,
	})
	if err != nil {
		t.Fatalf("run Rego tests: %v", err)
	}
	got := map[string]*tester.Result{}
	for _, r := range results {
		if r.Package == "data.steward.harness_test" {
			got[r.Name] = r
		}
	}
	if r := got["test_admin_may_not_read"]; r == nil || !r.Fail {
		t.Errorf("test_admin_may_not_read: want a reported failure, got %+v", r)
	}
	if r := got["test_runtime_error"]; r == nil || (!r.Fail && r.Error == nil) {
		t.Errorf("test_runtime_error: want a reported failure or error, got %+v", r)
	}
}

// TestRegoIsFormatted fails when a Rego file differs from what `opa fmt`
// would write, so formatting is checked without the opa command.
func TestRegoIsFormatted(t *testing.T) {
	names, err := fs.Glob(sources, "*.rego")
	if err != nil || len(names) == 0 {
		t.Fatalf("list Rego files: %v (%d found)", err, len(names))
	}
	for _, name := range names {
		src, err := sources.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		formatted, err := format.SourceWithOpts(name, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(formatted, src) {
			t.Errorf("%s is not formatted: run opa fmt -w policies/", name)
		}
	}
}
