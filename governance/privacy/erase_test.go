package privacy

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/governance/seed"
	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/modules/billing"
	"github.com/stewardhq/steward/modules/generation"
	"github.com/stewardhq/steward/modules/support"
)

func TestMain(m *testing.M) { chtest.MainWith(m, sqltest.Main) }

// usersTable finds accounts in the users table, as the accounts module
// does.
type usersTable struct{ db *bun.DB }

func (u usersTable) UserIDByEmail(ctx context.Context, email string) (string, error) {
	var id string
	err := u.db.NewSelect().Table("users").Column("id").Where("email = ?", email).Scan(ctx, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.ErrNotFound, "no such user")
	}
	return id, err
}

func (u usersTable) EmailByUserID(ctx context.Context, id string) (string, error) {
	var email string
	err := u.db.NewSelect().Table("users").Column("email").Where("id = ?", id).Scan(ctx, &email)
	return email, err
}

func (u usersTable) LanguageByUserID(ctx context.Context, id string) (string, error) {
	var lang string
	err := u.db.NewSelect().Table("users").Column("language").Where("id = ?", id).Scan(ctx, &lang)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.ErrNotFound, "no such user")
	}
	return lang, err
}

// linkedVisitors stands in for the browser sign-ins: each account signed
// in on its browsers after everything the seed gave them, so all of each
// browser's anonymous past is the account's.
type linkedVisitors map[string][]string

func (l linkedVisitors) Browsing(_ context.Context, userID string) ([]module.Browsing, error) {
	return browsingOf(l[userID]), nil
}

// VisitorBrowsing gives a browser whose account signed in on it nothing
// since; any other browser all it did.
func (l linkedVisitors) VisitorBrowsing(_ context.Context, visitorID string) ([]module.Browsing, error) {
	b := module.Browsing{VisitorID: visitorID, Until: time.Now().UTC()}
	for _, vids := range l {
		if slices.Contains(vids, visitorID) {
			b.After = time.Now().UTC().Add(time.Hour)
		}
	}
	return []module.Browsing{b}, nil
}

func browsingOf(visitorIDs []string) []module.Browsing {
	var out []module.Browsing
	for _, v := range visitorIDs {
		out = append(out, module.Browsing{VisitorID: v, Until: time.Now().UTC().Add(time.Hour)})
	}
	return out
}

// TestExportAndEraseOnBothDialects seeds people across the module tables
// and the warehouse, then exports and erases one of them on SQLite and on
// PostgreSQL: the package holds every row of theirs, the erasure verifies
// clean, and the other person is untouched.
func TestExportAndEraseOnBothDialects(t *testing.T) {
	ctx := context.Background()
	engine := authtest.Engine(t)
	w := chtest.Embedded(t)
	sources := []datamap.Source{
		{Module: "platform", Models: append(sqlstore.Models(), adminlog.Models()...)},
		{Module: "accounts", Models: (&accounts.Module{}).Models()},
		{Module: "generation", Models: (&generation.Module{}).Models()},
		{Module: "billing", Models: (&billing.Module{}).Models()},
		{Module: "support", Models: (&support.Module{}).Models()},
		{Module: "privacy", Models: Models()},
	}
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		if err := w.Exec(ctx, "TRUNCATE TABLE events"); err != nil {
			t.Fatal(err)
		}
		dataMap := func(ctx context.Context) (*datamap.Map, []datamap.Problem, error) {
			return datamap.Build(ctx, datamap.Inputs{SQL: db, Warehouse: w, Sources: sources, Policy: engine})
		}
		sd, err := seed.New(seed.Config{Seed: 3}, seed.Deps{DB: db, Events: seedEvents(w), Sources: sources})
		if err != nil {
			t.Fatal(err)
		}
		people, sum, err := sd.People(ctx, 2, seed.Typical())
		if err != nil {
			t.Fatal(err)
		}
		// The browsers of each person are linked to their account, as a
		// sign-in after the seeded browsing would link them.
		links := linkedVisitors{}
		for _, p := range people {
			links[p.UserID] = p.VisitorIDs
		}
		mod, err := New(Config{DataDir: t.TempDir(), SigningKey: []byte("0123456789abcdef0123456789")}, Deps{
			DB: db, Warehouse: w, Policy: engine, Guard: authz.NewGuard(engine), DataMap: dataMap, Accounts: usersTable{db}, Visitors: links,
		})
		if err != nil {
			t.Fatal(err)
		}
		subject, other := people[0], people[1]

		req := fileRequest(t, mod, TypeAccess, subject.Email)
		if req, err = mod.Process(ctx, req.ID); err != nil || req.Status != StatusCompleted {
			t.Fatalf("access: %v %s", err, req.Status)
		}
		f, err := mod.OpenPackage(req)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(f)
		f.Close()
		zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, zf := range zr.File {
			names[zf.Name] = true
		}
		for _, want := range []string{"manifest.json", "index.html", "data/generation/generations.json", "data/support/support_messages.json", "data/analytics/events.jsonl", "data/analytics/events.csv"} {
			if !names[want] {
				t.Errorf("package lacks %s", want)
			}
		}

		checkEventIDs(t, zr, w, subject)

		dm, _, err := dataMap(ctx)
		if err != nil {
			t.Fatal(err)
		}
		plans := plan(dm)
		counts := func(p seed.Person) map[string]int64 {
			s := subjectOfPerson(p)
			out := map[string]int64{}
			for i := range plans {
				n, err := mod.countSubject(ctx, &plans[i], s)
				if err != nil {
					t.Fatal(err)
				}
				out[plans[i].table] = n
			}
			return out
		}
		checkHoldings(t, mod, subject, w, db, counts(subject))
		otherBefore := counts(other)
		if otherBefore["generations"] != int64(sum.Rows["generations"]/2) || otherBefore["events"] == 0 {
			t.Fatalf("seed: %v", otherBefore)
		}

		ereq := fileRequest(t, mod, TypeErasure, subject.Email)
		if ereq, err = mod.Process(ctx, ereq.ID); err != nil || ereq.Status != StatusCompleted {
			t.Fatalf("erasure: %v %s %s", err, ereq.Status, ereq.Certificate)
		}
		// The access package went with the subject's data.
		if f, err := mod.OpenPackage(req); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("the subject's package after the erasure: %v, want not found", err)
			if f != nil {
				f.Close()
			}
		}
		var cert Certificate
		if err := json.Unmarshal([]byte(ereq.Certificate), &cert); err != nil || cert.PackagesRemoved != 1 {
			t.Errorf("certificate: %v, %d packages removed, want 1", err, cert.PackagesRemoved)
		}
		after := counts(subject)
		for _, tp := range plans {
			if tp.mode != modeKeep && after[tp.table] != 0 {
				t.Errorf("%s: %d rows of the subject left", tp.table, after[tp.table])
			}
		}
		// What is held after the erasure is only what it keeps.
		mode := map[string]string{}
		for _, tp := range plans {
			mode[tp.store+" "+tp.table] = tp.mode
		}
		left, err := mod.Holdings(ctx, subjectOfPerson(subject))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range left {
			for _, src := range h.Sources {
				if mode[src.Store+" "+src.Table] == modeDelete {
					t.Errorf("after the erasure %s still holds %d items of %s", src.Table, src.Items, h.Category)
				}
			}
		}
		if got := counts(other); len(got) != len(otherBefore) {
			t.Errorf("other person's tables changed: %v", got)
		} else {
			for k, v := range otherBefore {
				if got[k] != v {
					t.Errorf("%s: the other person's rows went from %d to %d", k, v, got[k])
				}
			}
		}
	})
}

func subjectOfPerson(p seed.Person) module.SubjectRef {
	return module.SubjectRef{UserID: p.UserID, Email: p.Email, Browsing: browsingOf(p.VisitorIDs)}
}

// TestExpirePackages removes a package from the file store once its
// download period is over, and not before, and records the removal once
// when two processes expire the same package.
func TestExpirePackages(t *testing.T) {
	ctx := context.Background()
	db := sqltest.SQLite(t)
	now := time.Now().UTC()
	files := tempFiles(t)
	mods := make([]*Module, 2)
	for i := range mods {
		mods[i] = newTestModule(t, db, Config{PackageTTL: 48 * time.Hour}, Deps{Files: files, Now: func() time.Time { return now }})
	}
	mod := mods[0]
	tests := []struct {
		name      string
		completed time.Duration
		path      string
		gone      bool
	}{
		{"completed three days ago", -72 * time.Hour, "pr_0/pkg_a.zip", true},
		{"completed yesterday", -24 * time.Hour, "pr_1/pkg_b.zip", false},
		{"written before packages were named per run", -96 * time.Hour, "pr_2.zip", true},
	}
	for i, tt := range tests {
		done := now.Add(tt.completed)
		req := Request{ID: fmt.Sprintf("pr_%d", i), Type: TypeAccess, Status: StatusCompleted, UserID: "u1", Email: "a@example.com",
			ReceivedAt: done, DueAt: done, CompletedAt: &done, UpdatedAt: done, PackagePath: tt.path, PackageSize: 3}
		if _, err := db.NewInsert().Model(&req).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := files.Put(ctx, "exports/"+tt.path, "application/zip", strings.NewReader("zip")); err != nil {
			t.Fatal(err)
		}
	}
	// A package an unfinished run left next to the expired one goes too.
	if _, err := files.Put(ctx, "exports/pr_0/pkg_orphan.zip", "application/zip", strings.NewReader("zip")); err != nil {
		t.Fatal(err)
	}
	counts := make(chan int, len(mods))
	var wg sync.WaitGroup
	for _, m := range mods {
		wg.Go(func() {
			n, err := m.ExpirePackages(ctx)
			if err != nil {
				t.Error(err)
			}
			counts <- n
		})
	}
	wg.Wait()
	close(counts)
	total := 0
	for n := range counts {
		total += n
	}
	if total != 2 {
		t.Fatalf("the two processes removed %d packages together, want 2", total)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := files.Exists(ctx, "exports/"+tt.path)
			if err != nil || ok == tt.gone {
				t.Fatalf("package stored = %v (%v), want %v", ok, err, !tt.gone)
			}
			req, err := mod.load(ctx, fmt.Sprintf("pr_%d", i))
			if err != nil {
				t.Fatal(err)
			}
			f, err := mod.OpenPackage(req)
			if tt.gone && !errors.Is(err, errs.ErrNotFound) {
				t.Fatalf("OpenPackage after removal: %v, want not found", err)
			}
			if f != nil {
				f.Close()
			}
			if v := mod.view(req, nil); tt.gone && v.DownloadURL != "" {
				t.Fatalf("removed package still offered for download")
			}
			events, err := mod.Events(ctx, req.ID)
			if err != nil {
				t.Fatal(err)
			}
			removals := 0
			for _, e := range events {
				if e.Event == "package_removed" {
					removals++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tt.gone]; removals != want {
				t.Fatalf("%d removals in the trail, want %d", removals, want)
			}
		})
	}
	if keys, _ := files.List(ctx, "exports/pr_0/"); len(keys) != 0 {
		t.Fatalf("the expired request's folder still holds %v", keys)
	}
}

// checkEventIDs: every event in the package carries its event_id, in the
// JSON Lines and in the CSV, so that a person can tell an event sent twice
// from two events; the ids are exactly the subject's events, and the
// manifest says why a technical column is included.
func checkEventIDs(t *testing.T, zr *zip.Reader, w warehouse.Warehouse, subject seed.Person) {
	t.Helper()
	read := func(name string) []byte {
		f, err := zr.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(read("data/analytics/events.jsonl"))), "\n") {
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("events.jsonl line %q: %v", line, err)
		}
		id, _ := row["event_id"].(string)
		if id == "" {
			t.Fatalf("event without its event_id: %s", line)
		}
		got = append(got, id)
	}
	var rows []struct {
		ID string `ch:"event_id"`
	}
	if err := w.Select(context.Background(), &rows, "SELECT event_id FROM events WHERE has({v:Array(String)}, visitor_id)",
		warehouse.Named("v", subject.VisitorIDs)); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range rows {
		want = append(want, r.ID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("exported event ids %v, the subject's events %v", got, want)
	}
	header, _, _ := strings.Cut(string(read("data/analytics/events.csv")), "\n")
	if !slices.Contains(strings.Split(header, ", "), "event_id") {
		t.Fatalf("events.csv header %q lacks event_id", header)
	}
	var man Manifest
	if err := json.Unmarshal(read("manifest.json"), &man); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range man.Included {
		if slices.Contains(c.Columns, "events.event_id") {
			found = c.Reason == rowKeyReason
		}
	}
	if !found {
		t.Fatalf("manifest does not list events.event_id as included with its reason: %+v", man.Included)
	}
}

// seedEvents stores a seeder's events in w's events table, as the
// analytics module stores them.
func seedEvents(w warehouse.Warehouse) seed.EventStore {
	return func(ctx context.Context, events []seed.Event) error {
		rows := make([]ingest.Row, len(events))
		for i := range events {
			rows[i] = ingest.Row(events[i])
		}
		return ingest.Insert(ctx, w, ingest.DefaultTable, rows)
	}
}

// checkHoldings compares what Holdings counts for the subject with the
// stores read directly: the prompts of their generations, the page paths
// of their events, and no table holding more items of a category than the
// subject has rows in it. It first gives the subject a generation without
// a prompt, which holds no prompt, and someone else one with a prompt,
// which is not theirs.
func checkHoldings(t *testing.T, mod *Module, p seed.Person, w warehouse.Warehouse, db *bun.DB, rows map[string]int64) {
	t.Helper()
	ctx := context.Background()
	extra := []generation.Generation{
		{ID: "g_without_prompt", UserID: p.UserID, Kind: "image", Refs: "[]", Status: "failed"},
		{ID: "g_of_someone_else", UserID: "u_someone_else", Prompt: "a red kite", Kind: "image", Refs: "[]", Status: "failed"},
	}
	if _, err := db.NewInsert().Model(&extra).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	rows["generations"]++
	eventPaths := func() int64 {
		var n []struct {
			N uint64 `ch:"n"`
		}
		if err := w.Select(ctx, &n, `SELECT countIf(path != '') AS n FROM events
			WHERE user_id = {u:String} OR (ifNull(user_id, '') = '' AND has({v:Array(String)}, visitor_id))`,
			warehouse.Named("u", p.UserID), warehouse.Named("v", p.VisitorIDs)); err != nil {
			t.Fatal(err)
		}
		return int64(n[0].N)
	}
	// The events table drops rows past their TTL as it merges, so the
	// direct count is taken on both sides of Holdings.
	pathsBefore := eventPaths()
	got, err := mod.Holdings(ctx, subjectOfPerson(p))
	if err != nil {
		t.Fatal(err)
	}
	pathsAfter := eventPaths()
	held := map[string]int64{}
	for _, h := range got {
		var sum int64
		for _, src := range h.Sources {
			held[h.Category+" "+src.Store+" "+src.Table] = src.Items
			sum += src.Items
			if src.Items > rows[src.Table] {
				t.Errorf("%s: %d items of %s, but the subject has %d rows there", src.Table, src.Items, h.Category, rows[src.Table])
			}
		}
		if h.Items != sum || h.Name == "" {
			t.Errorf("%s: %d items from sources adding up to %d, name %q", h.Category, h.Items, sum, h.Name)
		}
	}
	prompts, err := db.NewSelect().Table("generations").Where("user_id = ? AND prompt <> ''", p.UserID).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if prompts == 0 || held["user.content.prompt sql generations"] != int64(prompts) {
		t.Errorf("prompts held: %d, the store has %d", held["user.content.prompt sql generations"], prompts)
	}
	if n := held["user.behavior.browsing_history warehouse events"]; n == 0 || n > pathsBefore || n < pathsAfter {
		t.Errorf("page paths held: %d, the warehouse has %d to %d", n, pathsAfter, pathsBefore)
	}
}
