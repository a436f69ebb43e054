package policies

import (
	"context"
	"encoding/json"
	"io/fs"
	"sync"
	"testing"
	"testing/fstest"
)

// bundleWith returns the embedded bundle with the file at name replaced by
// raw.
func bundleWith(t *testing.T, name string, raw []byte) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(sources, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sources, p)
		out[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out[name] = &fstest.MapFile{Data: raw}
	return out
}

// retentionOf changes one category's retention in the embedded taxonomy.
func retentionOf(t *testing.T, category, duration string) []byte {
	t.Helper()
	raw, err := fs.ReadFile(sources, "data/taxonomy.json")
	if err != nil {
		t.Fatal(err)
	}
	var tax map[string]map[string]any
	if err := json.Unmarshal(raw, &tax); err != nil {
		t.Fatal(err)
	}
	tax[category]["retention"] = map[string]any{"duration": duration, "from": "collected_at", "action": "delete"}
	out, err := json.Marshal(tax)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplaceSwitchesEveryDecisionAtOnce replaces an engine's policies
// while decisions are asked concurrently (run with -race): each answer is
// whole under one revision or the other, and after Replace every answer is
// the new one's, cached ones included.
func TestReplaceSwitchesEveryDecisionAtOnce(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	next, err := LoadBundle(ctx, bundleWith(t, "data/taxonomy.json", retentionOf(t, "user.security.reward_record", "P30D")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	before, after := e.Revision(), next.Revision()
	if before == after {
		t.Fatal("the candidate has the same revision")
	}
	old, err := e.Retention(ctx, "user.security.reward_record")
	if err != nil || old.Duration != "account_lifetime" {
		t.Fatalf("before: %+v %v", old, err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				r, err := e.Retention(ctx, "user.security.reward_record")
				if err != nil {
					t.Error(err)
					return
				}
				if (r.Revision == before) != (r.Duration == "account_lifetime") {
					t.Errorf("an answer mixes revisions: %+v", r)
					return
				}
			}
		}()
	}
	if got := e.Replace(next); got != before {
		t.Errorf("Replace returned %s, want %s", got, before)
	}
	wg.Wait()
	r, err := e.Retention(ctx, "user.security.reward_record")
	if err != nil || r.Duration != "P30D" || r.Revision != after || e.Revision() != after {
		t.Fatalf("after: %+v %v, revision %s", r, err, e.Revision())
	}
}

// TestLoadBundleRefusesAFailingBundle checks the three ways a bundle
// fails: Rego that does not compile, data that does not validate, and a
// Rego test of its own that fails.
func TestLoadBundleRefusesAFailingBundle(t *testing.T) {
	ctx := context.Background()
	for name, b := range map[string]fs.FS{
		"rego":  bundleWith(t, "access.rego", []byte("package steward.access\n\ndecision := unknown_rule\n")),
		"data":  bundleWith(t, "data/taxonomy.json", retentionOf(t, "user.contact.email", "thirteen months")),
		"tests": bundleWith(t, "data/taxonomy.json", retentionOf(t, "user.behavior.browsing_history", "P1D")),
	} {
		if _, err := LoadBundle(ctx, b, Options{}); err == nil {
			t.Errorf("a bundle whose %s fails was loaded", name)
		}
	}
	if _, err := LoadBundle(ctx, sources, Options{}); err != nil {
		t.Fatalf("the embedded bundle: %v", err)
	}
}
