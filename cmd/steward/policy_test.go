package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/modules/risk"
	"github.com/stewardhq/steward/policies"
)

// newBundle writes the embedded policy bundle to a new folder with
// `steward policy init`, lets edit change its taxonomy, and returns the
// folder.
func newBundle(t *testing.T, edit func(tax map[string]map[string]any)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "policies")
	var out bytes.Buffer
	if code := run(context.Background(), []string{"policy", "init", dir}, &out, io.Discard, func(string) string { return "" }); code != 0 {
		t.Fatalf("policy init: exit %d", code)
	}
	if edit == nil {
		return dir
	}
	path := filepath.Join(dir, "data", "taxonomy.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tax map[string]map[string]any
	if err := json.Unmarshal(raw, &tax); err != nil {
		t.Fatal(err)
	}
	edit(tax)
	if raw, err = json.MarshalIndent(tax, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPolicyDiff previews two candidate bundles against the policies in
// force on a wired server: one shortens a retention period, one withholds a
// category from access exports. The diff names exactly those rules, and
// the rows the next retention run would remove under the candidate equal a
// count made directly in the SQL store.
func TestPolicyDiff(t *testing.T) {
	ctx := context.Background()
	srv := newPortalServer(t, false, nil)
	tok := "reward.diff@example.com"
	if _, err := srv.wired.accounts.CreateToken(ctx, tok, "user"); err != nil {
		t.Fatal(err)
	}
	u, err := srv.wired.accounts.UserByEmail(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	// Rewards of 40 and of 5 days ago.
	now := time.Now().UTC()
	for i, age := range []int{40, 40, 40, 5, 5} {
		r := risk.RewardRecord{ID: ids.New("rw"), UserID: u.ID, Kind: "check_in", Day: now.AddDate(0, 0, -age).Format(time.DateOnly),
			Credits: int64(i + 1), CreatedAt: now.AddDate(0, 0, -age)}
		if _, err := srv.stores.sql.NewInsert().Model(&r).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a shorter retention period", func(t *testing.T) {
		dir := newBundle(t, func(tax map[string]map[string]any) {
			tax["user.security.reward_record"]["retention"] = map[string]any{"duration": "P30D", "from": "collected_at", "action": "delete"}
		})
		d, err := srv.policyDiff(ctx, os.DirFS(dir))
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Rules) != 1 || d.Rules[0].Category != "user.security.reward_record" || d.Rules[0].Rule != "retention" ||
			d.Rules[0].After != "P30D from collected_at, then delete" {
			t.Fatalf("rules changed: %+v", d.Rules)
		}
		if len(d.Access) != 0 {
			t.Errorf("access changed: %+v", d.Access)
		}
		direct, err := srv.stores.sql.NewSelect().Table("reward_records").Where("created_at < ?", now.AddDate(0, 0, -30)).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got *RetentionDiff
		for i, r := range d.Retention {
			if r.Store == "sql" && r.Table == "reward_records" {
				got = &d.Retention[i]
			}
		}
		if got == nil || got.Candidate != int64(direct) || got.Current != 0 || direct != 3 {
			t.Fatalf("reward_records under the candidate: %+v, a direct count %d", got, direct)
		}
		var out bytes.Buffer
		if err := writePolicyDiff(&out, d); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Rules that change: 1", "user.security.reward_record", "P30D from collected_at, then delete", "reward_records"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the printed diff lacks %q:\n%s", want, out.String())
			}
		}
		t.Logf("steward policy diff:\n%s", out.String())
	})

	t.Run("an export rule removed", func(t *testing.T) {
		dir := newBundle(t, func(tax map[string]map[string]any) {
			tax["user.support.status"]["export"] = map[string]any{"include": false, "withheld_reason": "Ticket states are kept internal."}
		})
		d, err := srv.policyDiff(ctx, os.DirFS(dir))
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Rules) != 1 || d.Rules[0].Rule != "export" || d.Rules[0].Before != "included" ||
			d.Rules[0].After != "withheld: Ticket states are kept internal." {
			t.Fatalf("rules changed: %+v", d.Rules)
		}
		for _, r := range d.Retention {
			if r.Current != r.Candidate {
				t.Errorf("an export change changes retention of %s.%s: %d -> %d", r.Store, r.Table, r.Current, r.Candidate)
			}
		}
	})

	t.Run("the bundle in force changes nothing", func(t *testing.T) {
		d, err := srv.policyDiff(ctx, os.DirFS(newBundle(t, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if d.From != d.To || len(d.Rules) != 0 || len(d.Access) != 0 {
			t.Fatalf("the embedded bundle differs from itself: %+v", d.Diff)
		}
	})
}

// TestPolicyBundles checks bundles as the server loads them from
// STEWARD_POLICY_DIR: a bundle whose Rego does not compile, or whose own
// Rego tests fail, is refused with the reason, and the server does not
// start on it; a good one serves with its revision.
func TestPolicyBundles(t *testing.T) {
	ctx := context.Background()
	check := func(dir string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"policy", "check", dir}, &out, &errOut, func(string) string { return "" })
		return code, out.String() + errOut.String()
	}
	good := newBundle(t, nil)
	if code, out := check(good); code != 0 || !strings.Contains(out, "a valid policy bundle, revision") {
		t.Fatalf("the embedded bundle: exit %d: %s", code, out)
	}
	broken := newBundle(t, nil)
	if err := os.WriteFile(filepath.Join(broken, "export.rego"), []byte("package steward.export\n\ndecision := {"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := check(broken); code != 1 || !strings.Contains(out, "export.rego") {
		t.Errorf("a bundle that does not parse: exit %d: %s", code, out)
	}
	// The email address withheld from access exports: the bundle's own
	// test that pins it fails.
	untested := newBundle(t, func(tax map[string]map[string]any) {
		tax["user.contact.email"]["export"] = map[string]any{"include": false, "withheld_reason": "No."}
	})
	if code, out := check(untested); code != 1 || !strings.Contains(out, "test_email_exported") {
		t.Errorf("a bundle failing its tests: exit %d: %s", code, out)
	}
	// The server refuses to start on it, and starts on the good one.
	for dir, ok := range map[string]bool{untested: false, good: true} {
		srv, err := func() (s *server, err error) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("assembling on %s panicked: %v", dir, r)
				}
			}()
			return tryPortalServer(t, func(c *config.Config) { c.PolicyDir = dir })
		}()
		if ok != (err == nil) {
			t.Fatalf("a server on %s: %v", dir, err)
		}
		if ok {
			want, err := policies.LoadBundle(ctx, os.DirFS(dir), policies.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if srv.engine.Revision() != want.Revision() {
				t.Errorf("the server's revision %s, the bundle's %s", srv.engine.Revision(), want.Revision())
			}
		}
	}
}

// TestConsolePolicyPage previews and applies a policy change from the
// console on a wired server reading its policies from a bundle folder: the
// page shows the change, an apply of a revision the folder no longer holds
// changes nothing, an apply of the shown one puts it in force and leaves
// the old and new revisions in the admin log, and a folder that fails its
// checks is shown with the reason while the policies in force stay.
func TestConsolePolicyPage(t *testing.T) {
	ctx := context.Background()
	dir := newBundle(t, nil)
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev, c.PolicyDir = true, dir })
	tok, err := srv.wired.accounts.CreateToken(ctx, "dpo.policy@example.com", "dpo")
	if err != nil {
		t.Fatal(err)
	}
	dpo := &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
	start := srv.engine.Revision()
	if _, page := dpo.get("/console/policy"); !strings.Contains(page, "The bundle folder holds the policies in force.") {
		t.Fatalf("the unchanged folder:\n%s", page)
	}

	// Shorten a retention period in the folder.
	edited := newBundle(t, func(tax map[string]map[string]any) {
		tax["user.security.reward_record"]["retention"] = map[string]any{"duration": "P30D", "from": "collected_at", "action": "delete"}
	})
	raw, err := os.ReadFile(filepath.Join(edited, "data", "taxonomy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "taxonomy.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	_, page := dpo.get("/console/policy")
	m := regexp.MustCompile(`name="revision" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "user.security.reward_record") || !strings.Contains(page, "P30D from collected_at, then delete") {
		t.Fatalf("the changed folder's page:\n%s", page)
	}
	if resp, _ := dpo.postForm("/console/policy/apply", url.Values{"revision": {"0123456789ab"}}); resp.Header.Get("Location") != "/console/policy?error=changed" {
		t.Errorf("an apply of another revision: %q", resp.Header.Get("Location"))
	}
	if srv.engine.Revision() != start {
		t.Fatal("a refused apply changed the policies")
	}
	resp, _ := dpo.postForm("/console/policy/apply", url.Values{"revision": {m[1]}})
	if resp.Header.Get("Location") != "/console/policy?applied="+m[1] || srv.engine.Revision() != m[1] {
		t.Fatalf("apply: %q, revision %s, want %s", resp.Header.Get("Location"), srv.engine.Revision(), m[1])
	}
	r, err := srv.engine.Retention(ctx, "user.security.reward_record")
	if err != nil || r.Duration != "P30D" {
		t.Fatalf("the applied rule: %+v %v", r, err)
	}
	var entries []struct {
		Action   string `bun:"action"`
		TargetID string `bun:"target_id"`
		Details  string `bun:"details"`
	}
	if err := srv.stores.sql.NewSelect().Table("admin_log").Column("action", "target_id", "details").Where("action = 'policy.apply'").Scan(ctx, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].TargetID != "policy:"+m[1] || !strings.Contains(entries[0].Details, start) {
		t.Fatalf("the admin log: %+v", entries)
	}
	if _, page := dpo.get("/console/policy"); !strings.Contains(page, "The bundle folder holds the policies in force.") {
		t.Error("after applying, the folder and the policies in force differ")
	}

	// A folder that fails: shown with the reason, nothing applied.
	if err := os.WriteFile(filepath.Join(dir, "export.rego"), []byte("package steward.export\n\ndecision := {"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, page := dpo.get("/console/policy"); !strings.Contains(page, "fails its checks") || !strings.Contains(page, "export.rego") {
		t.Errorf("a failing folder:\n%s", page)
	}
	if resp, _ := dpo.postForm("/console/policy/apply", url.Values{"revision": {m[1]}}); resp.Header.Get("Location") != "/console/policy?error=failed" {
		t.Errorf("an apply of a failing folder: %q", resp.Header.Get("Location"))
	}
	if srv.engine.Revision() != m[1] {
		t.Error("a failing folder replaced the policies in force")
	}
}
