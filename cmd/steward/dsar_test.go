package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/control"
	"github.com/stewardhq/steward/modules/accounts"
)

// person is a data subject seeded in every table of the data map.
type person struct {
	userID, email string
	visitors      []string
}

// newPerson makes an account with a fresh address starting with prefix,
// signed in once (an API token), and browsing as the given number of
// visitor ids.
func newPerson(t *testing.T, ctx context.Context, srv *server, prefix string, visitors int) person {
	t.Helper()
	p := person{email: prefix + "-" + randHex(3) + "@example.com"}
	for range visitors {
		p.visitors = append(p.visitors, "v-"+randHex(6))
	}
	if _, err := srv.wired.accounts.CreateToken(ctx, p.email, authz.RoleUser); err != nil {
		t.Fatal(err)
	}
	u, err := srv.wired.accounts.UserByEmail(ctx, p.email)
	if err != nil {
		t.Fatal(err)
	}
	p.userID = u.ID
	return p
}

// wantErased fails the test unless the erasure request req completed with
// a certificate whose verification passed, listing the failed checks, and
// returns the certificate.
func wantErased(t *testing.T, req privacy.Request) privacy.Certificate {
	t.Helper()
	var cert privacy.Certificate
	if err := json.Unmarshal([]byte(req.Certificate), &cert); err != nil {
		t.Fatalf("certificate: %v", err)
	}
	if req.Status != privacy.StatusCompleted || !cert.Verification.Passed {
		for _, c := range cert.Verification.Checks {
			if !c.OK {
				t.Errorf("failed check: %+v", c)
			}
		}
		t.Fatalf("erasure status %s, verification %+v", req.Status, cert.Verification)
	}
	return cert
}

// liveDataMap is the data map of the test binary's server.
func liveDataMap(t *testing.T) *datamap.Map {
	t.Helper()
	dm, _, err := embedded.dataMap.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dm
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// idKind says which identifier of a person a subject column holds, read
// from its category the way a reader of the taxonomy would.
func idKind(category string) string {
	switch {
	case strings.HasPrefix(category, "user.unique_id.analytics_id"), strings.HasPrefix(category, "user.device.cookie_id"):
		return "visitor"
	case category == "user.contact.email", category == "user.support.contact":
		return "email"
	default:
		return "user"
	}
}

func (p person) value(kind string) string {
	switch kind {
	case "visitor":
		return p.visitors[0]
	case "email":
		return p.email
	}
	return p.userID
}

// checkValues are the values of columns a CHECK constraint limits.
var checkValues = map[string]string{
	"users.role": "user", "users.status": "active",
	"generations.kind": "image", "generations.status": "succeeded",
}

// seedEverywhere inserts one row about p into every SQL table the data map
// gives a subject column, through the modules' own bun models, parents
// before children so foreign keys hold. It returns the tables seeded.
func seedEverywhere(t *testing.T, ctx context.Context, srv *server, dm *datamap.Map, p person) map[string]bool {
	t.Helper()
	db := srv.stores.sql
	subjectTables := map[string]bool{}
	for _, e := range dm.Entries {
		if e.Store == datamap.StoreSQL && e.Subject {
			subjectTables[e.Table] = true
		}
	}
	// Tables filled by the code paths under test, not by the seed.
	skip := map[string]bool{"users": true, "admin_log": true, "privacy_requests": true, "privacy_request_events": true}
	fks := map[string]map[string]string{} // table -> column -> parent table
	rows, err := db.QueryContext(ctx, `SELECT m.name, p."from", p."table" FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p WHERE m.type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tbl, col, parent string
		if err := rows.Scan(&tbl, &col, &parent); err != nil {
			t.Fatal(err)
		}
		if fks[tbl] == nil {
			fks[tbl] = map[string]string{}
		}
		fks[tbl][col] = parent
	}
	rows.Close()
	models := map[string]any{}
	for _, src := range srv.dataMap.Sources() {
		for _, mdl := range src.Models {
			typ := reflect.TypeOf(mdl)
			for typ.Kind() == reflect.Pointer {
				typ = typ.Elem()
			}
			models[db.Table(typ).Name] = mdl
		}
	}
	pks := map[string]string{}
	seeded := map[string]bool{}
	var insert func(table string)
	insert = func(table string) {
		if seeded[table] || skip[table] {
			return
		}
		seeded[table] = true
		for _, parent := range fks[table] {
			insert(parent)
		}
		typ := reflect.TypeOf(models[table])
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		v := reflect.New(typ)
		bt := db.Table(typ)
		for _, f := range bt.Fields {
			tag := f.StructField.Tag.Get("privacy")
			cat, subject, _ := datamap.ParseTag(tag)
			var s string
			switch {
			case subject:
				s = p.value(idKind(cat))
			case fks[table][f.Name] != "":
				s = pks[fks[table][f.Name]]
			case checkValues[table+"."+f.Name] != "":
				s = checkValues[table+"."+f.Name]
			default:
				s = fmt.Sprintf("%s-%s-%s", table, f.Name, randHex(4))
			}
			if f.IsPK && !subject && fks[table][f.Name] == "" {
				pks[table] = s
			}
			setField(v.Elem().FieldByIndex(f.Index), s)
		}
		if _, err := db.NewInsert().Model(v.Interface()).Exec(ctx); err != nil {
			t.Fatalf("seed %s: %v", table, err)
		}
	}
	for table := range subjectTables {
		insert(table)
	}
	return subjectTables
}

// setField gives a field a plausible value of its type.
func setField(f reflect.Value, s string) {
	if f.Kind() == reflect.Pointer {
		f.Set(reflect.New(f.Type().Elem()))
		f = f.Elem()
	}
	switch {
	case f.Type() == reflect.TypeOf(time.Time{}):
		f.Set(reflect.ValueOf(time.Now().UTC().Add(-time.Hour)))
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.Kind() >= reflect.Int && f.Kind() <= reflect.Int64:
		f.SetInt(7)
	case f.Kind() == reflect.Bool:
		f.SetBool(true)
	case f.Kind() == reflect.Map:
		f.Set(reflect.MakeMap(f.Type()))
	}
}

// seedEvents stores n events of p's browsers, a third of them sent
// signed in, and then signs p in on each browser: under the identity rule
// every anonymous event of those browsers is p's.
func seedEvents(t *testing.T, ctx context.Context, srv *server, p person, n int) {
	t.Helper()
	cols := []string{"event_id", "event_time", "received_at", "event_type", "event_name", "user_id", "visitor_id", "path"}
	var rows [][]any
	now := time.Now().UTC()
	for _, v := range p.visitors {
		link := consent.VisitorLink{ID: "vl-" + randHex(6), VisitorID: v, UserID: p.userID, LinkedAt: now.Add(time.Second).Truncate(time.Millisecond)}
		if _, err := srv.stores.sql.NewInsert().Model(&link).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w := srv.stores.warehouse
	for i := range n {
		var uid *string
		if i%3 == 0 && p.userID != "" {
			uid = &p.userID
		}
		rows = append(rows, []any{randHex(8), now.Add(-time.Duration(i) * time.Minute), now, "page_view", "page_view", uid, p.visitors[i%len(p.visitors)], "/p/" + randHex(2)})
	}
	if err := w.Insert(ctx, "events", cols, rows); err != nil {
		t.Fatal(err)
	}
}

// subjectCount counts, independently of the privacy package, the rows of
// a table found under any of the person's identifiers. A table of both
// stores (visitor_links, whose warehouse copy serves attribution) is
// counted in the SQL store.
func subjectCount(t *testing.T, ctx context.Context, srv *server, dm *datamap.Map, table string, p person) int64 {
	t.Helper()
	var conds []string
	var args []any
	store := datamap.StoreWarehouse
	for _, e := range dm.Entries {
		if e.Table == table && e.Store == datamap.StoreSQL {
			store = datamap.StoreSQL
		}
	}
	for _, e := range dm.Entries {
		if e.Table != table || !e.Subject || e.Store != store {
			continue
		}
		ids := []string{p.value(idKind(e.Category))}
		if idKind(e.Category) == "visitor" {
			ids = p.visitors
		}
		for _, id := range ids {
			if store == datamap.StoreWarehouse {
				conds = append(conds, fmt.Sprintf("%s = {a%d:String}", e.Column, len(args)))
				args = append(args, warehouse.Named(fmt.Sprintf("a%d", len(args)), id))
			} else {
				conds = append(conds, e.Column+" = ?")
				args = append(args, id)
			}
		}
	}
	q := "SELECT count(*) AS n FROM " + table + " WHERE " + strings.Join(conds, " OR ")
	if store == datamap.StoreWarehouse {
		var out []struct {
			N uint64 `ch:"n"`
		}
		if err := srv.stores.warehouse.Select(ctx, &out, q, args...); err != nil {
			t.Fatal(err)
		}
		return int64(out[0].N)
	}
	var n int64
	if err := srv.stores.sql.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// keptWhole reports whether the erasure policy keeps every personal
// column of a table, so its rows stay as they are.
func keptWhole(dm *datamap.Map, table string) bool {
	for _, e := range dm.Entries {
		if e.Table == table && e.Personal && e.Erasure.Action != "keep" {
			return false
		}
	}
	return true
}

// TestDSARCompleteness seeds a person in every table of the data map and
// in the warehouse, exports them and finds every row in the package, then
// erases them and checks that only what the policy keeps is left, both by
// the certificate's verification and by its own queries.
func TestDSARCompleteness(t *testing.T) {
	ctx := context.Background()
	srv := embedded
	dm := liveDataMap(t)
	subject := newPerson(t, ctx, srv, "subject", 2)
	other := newPerson(t, ctx, srv, "other", 1)
	tables := seedEverywhere(t, ctx, srv, dm, subject)
	skip := map[string]bool{"privacy_requests": true, "privacy_request_events": true}
	seedEverywhere(t, ctx, srv, dm, other)
	seedEvents(t, ctx, srv, subject, 40)
	seedEvents(t, ctx, srv, other, 5)
	if _, _, err := srv.wired.assets.PutAsset(ctx, subject.userID, "upload", "me.png", "image/png", bytes.NewReader(dsarPNG())); err != nil {
		t.Fatal(err)
	}
	if _, err := adminlog.Append(ctx, srv.stores.sql, adminlog.Entry{ActorID: "staff", Action: "user.role.update", TargetID: subject.userID}); err != nil {
		t.Fatal(err)
	}

	// Export.
	before := map[string]int64{}
	for table := range tables {
		before[table] = subjectCount(t, ctx, srv, dm, table, subject)
		if before[table] == 0 && !skip[table] {
			t.Fatalf("seed left %s empty", table)
		}
	}
	req, err := srv.wired.privacy.FileForOperator(ctx, privacy.TypeAccess, subject.email, "test")
	if err != nil {
		t.Fatal(err)
	}
	req, err = srv.wired.privacy.Process(ctx, req.ID)
	if err != nil || req.Status != privacy.StatusCompleted {
		t.Fatalf("process access: %v, status %s", err, req.Status)
	}
	out := filepath.Join(t.TempDir(), "export.zip")
	if err := copyPackage(cmdEnv{create: control.CreateFile}, srv.wired.privacy, req, out); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	var man privacy.Manifest
	readZipJSON(t, files["manifest.json"], &man)
	if files["index.html"] == nil {
		t.Fatal("no index.html in the package")
	}
	exported := map[string]bool{}
	for _, e := range dm.Entries {
		if e.Export.Include {
			exported[e.Table] = true
		}
	}
	for table := range tables {
		if !exported[table] {
			continue
		}
		var module string
		for _, e := range dm.Entries {
			if e.Table == table && e.Store == datamap.StoreSQL {
				module = e.Module
			}
		}
		var rows []map[string]any
		readZipJSON(t, files["data/"+module+"/"+table+".json"], &rows)
		if skip[table] {
			// The request being answered is in the package too, with the
			// steps taken up to the export.
			if len(rows) == 0 {
				t.Errorf("%s: the package lacks the request itself", table)
			}
			continue
		}
		if int64(len(rows)) != before[table] || man.Rows(datamap.StoreSQL, table, "json") != before[table] {
			t.Errorf("%s: package has %d rows (manifest %d), the store %d", table, len(rows), man.Rows(datamap.StoreSQL, table, "json"), before[table])
		}
		for _, r := range rows {
			for _, e := range dm.Entries {
				if _, ok := r[e.Column]; ok && e.Table == table && !e.Export.Include {
					t.Errorf("%s.%s exported though the policy withholds %s", table, e.Column, e.Category)
				}
			}
		}
	}
	events := subjectCount(t, ctx, srv, dm, "events", subject)
	if events != 40 {
		t.Fatalf("seeded 40 events, found %d", events)
	}
	if n := countLines(t, files["data/analytics/events.jsonl"]); n != events {
		t.Errorf("events.jsonl has %d lines, want %d", n, events)
	}
	if n := countLines(t, files["data/analytics/events.csv"]); n != events+1 {
		t.Errorf("events.csv has %d lines, want %d and a header", n, events+1)
	}
	var uploads int
	for name := range files {
		if strings.HasPrefix(name, "files/assets/") {
			uploads++
		}
	}
	if uploads != 1 {
		t.Errorf("package holds %d uploaded files, want 1", uploads)
	}
	for _, src := range man.Sources {
		f := files[src.File]
		if f == nil {
			t.Errorf("manifest lists %s, not in the package", src.File)
			continue
		}
		if got := zipSHA(t, f); got != src.SHA256 {
			t.Errorf("%s: sha256 %s, manifest says %s", src.File, got, src.SHA256)
		}
	}
	withheld := map[string]string{}
	for _, c := range man.Withheld {
		withheld[c.Category] = c.Reason
	}
	if withheld["user.authorization.credentials"] == "" {
		t.Errorf("credentials not listed as withheld with a reason: %v", withheld)
	}

	// The download link works once signed and refuses a forged one.
	view := httptest.NewRequest("GET", "/v1/privacy/requests/"+req.ID+"/download?exp=9999999999&sig=00", nil)
	if resp, _ := srv.app.Test(view, -1); resp.StatusCode != 403 {
		t.Errorf("forged download link answered %d", resp.StatusCode)
	}
	link, _ := srv.wired.privacy.DownloadURL(req.ID)
	resp, err := srv.app.Test(httptest.NewRequest("GET", link, nil), -1)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("signed download: %v %v", err, resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	if int64(len(body)) != req.PackageSize {
		t.Errorf("downloaded %d bytes, package is %d", len(body), req.PackageSize)
	}

	// Erasure.
	otherBefore := map[string]int64{}
	for table := range tables {
		otherBefore[table] = subjectCount(t, ctx, srv, dm, table, other)
	}
	ereq, err := srv.wired.privacy.FileForOperator(ctx, privacy.TypeErasure, subject.email, "test")
	if err != nil {
		t.Fatal(err)
	}
	ereq, err = srv.wired.privacy.Process(ctx, ereq.ID)
	if err != nil {
		t.Fatal(err)
	}
	cert := wantErased(t, ereq)
	for table := range tables {
		n := subjectCount(t, ctx, srv, dm, table, subject)
		if keptWhole(dm, table) {
			if n == 0 {
				t.Errorf("%s is kept whole by the policy but its rows are gone", table)
			}
			continue
		}
		if n != 0 {
			t.Errorf("%s: %d rows of the subject left after erasure", table, n)
		}
		if got := subjectCount(t, ctx, srv, dm, table, other); got != otherBefore[table] {
			t.Errorf("%s: the other person's rows went from %d to %d", table, otherBefore[table], got)
		}
	}
	if n := subjectCount(t, ctx, srv, dm, "events", subject); n != 0 {
		t.Errorf("%d events of the subject left", n)
	}
	if n := subjectCount(t, ctx, srv, dm, "events", other); n != 5 {
		t.Errorf("the other person's events: %d, want 5", n)
	}
	kept := map[string]bool{}
	for _, k := range cert.Kept {
		kept[k.Category] = true
		if k.Reason == "" || k.Until == "" {
			t.Errorf("kept item without reason or end: %+v", k)
		}
	}
	if !kept["user.financial.order"] || !kept["user.security.admin_audit_log"] {
		t.Errorf("certificate keeps %v, want the orders and the admin log", kept)
	}
	if _, err := srv.wired.accounts.UserByEmail(ctx, subject.email); err == nil {
		t.Error("the account still exists after erasure")
	}
}

// openZipFile opens a file of an export package; f is nil when the
// package lacks the file.
func openZipFile(t *testing.T, f *zip.File) io.ReadCloser {
	t.Helper()
	if f == nil {
		t.Fatal("file missing from the package")
	}
	r, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readZipJSON(t *testing.T, f *zip.File, v any) {
	t.Helper()
	r := openZipFile(t, f)
	defer r.Close()
	if err := json.NewDecoder(r).Decode(v); err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
}

func countLines(t *testing.T, f *zip.File) int64 {
	t.Helper()
	r := openZipFile(t, f)
	defer r.Close()
	var n int64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		n++
	}
	return n
}

func zipSHA(t *testing.T, f *zip.File) string {
	t.Helper()
	r := openZipFile(t, f)
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// dsarPNG is a small valid PNG image.
func dsarPNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// TestErasureResumesAfterCrash stops an erasure right after step k, as a
// crash would (the context ends, so nothing after the recorded step runs),
// then runs it again: the rerun finishes and verifies clean.
func TestErasureResumesAfterCrash(t *testing.T) {
	ctx := context.Background()
	srv := embedded
	dm := liveDataMap(t)
	for _, k := range []int{1, 8, 20} {
		t.Run(fmt.Sprintf("after step %d", k), func(t *testing.T) {
			p := newPerson(t, ctx, srv, "crash", 1)
			tables := seedEverywhere(t, ctx, srv, dm, p)
			seedEvents(t, ctx, srv, p, 12)
			req, err := srv.wired.privacy.FileForOperator(ctx, privacy.TypeErasure, p.email, "test")
			if err != nil {
				t.Fatal(err)
			}
			crashCtx, crash := context.WithCancel(ctx)
			var total int
			crashCtx = privacy.WithProgress(crashCtx, func(_ string, done, n int) {
				total = n
				if done == k {
					crash()
				}
			})
			got, err := srv.wired.privacy.Process(crashCtx, req.ID)
			crash()
			if err == nil || got.Status != privacy.StatusProcessing {
				t.Fatalf("interrupted run: err %v, status %s; want an error and the request still processing", err, got.Status)
			}
			if k >= total {
				t.Fatalf("step %d is past the last step (%d)", k, total)
			}
			got, err = srv.wired.privacy.Process(ctx, req.ID)
			if err != nil {
				t.Fatal(err)
			}
			wantErased(t, got)
			for table := range tables {
				if n := subjectCount(t, ctx, srv, dm, table, p); n != 0 && !keptWhole(dm, table) {
					t.Errorf("%s: %d rows left", table, n)
				}
			}
			if n := subjectCount(t, ctx, srv, dm, "events", p); n != 0 {
				t.Errorf("%d events left", n)
			}
		})
	}
}

func call(t *testing.T, srv *server, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestPrivacyRequestsAPI files requests as the subject and on their
// behalf, and checks who may see, extend and download what.
func TestPrivacyRequestsAPI(t *testing.T) {
	ctx := context.Background()
	srv := embedded
	token := func(role string) (string, string) {
		email := role + "-" + randHex(3) + "@example.com"
		tok, err := srv.wired.accounts.CreateToken(ctx, email, role)
		if err != nil {
			t.Fatal(err)
		}
		return tok, email
	}
	userTok, _ := token(authz.RoleUser)
	_, victimEmail := token(authz.RoleUser)
	dpoTok, _ := token(authz.RoleDPO)
	supportTok, _ := token(authz.RoleSupport)

	status, own := call(t, srv, "POST", "/v1/privacy/requests", userTok, map[string]any{"type": "access"})
	if status != 201 || own["status"] != privacy.StatusVerified || own["on_behalf"] != false {
		t.Fatalf("own access request = %d %v", status, own)
	}
	received, _ := time.Parse(time.RFC3339Nano, own["received_at"].(string))
	due, _ := time.Parse(time.RFC3339Nano, own["due_at"].(string))
	if !due.Equal(received.AddDate(0, 1, 0)) {
		t.Errorf("due %v, want one month after %v", due, received)
	}
	ownID := own["id"].(string)

	tests := []struct {
		name   string
		token  string
		body   map[string]any
		status int
	}{
		{"erasure through a token, no recent sign-in", userTok, map[string]any{"type": "erasure"}, 403},
		{"unknown type", userTok, map[string]any{"type": "rectify"}, 400},
		{"user on behalf of another", userTok, map[string]any{"type": "access", "email": victimEmail, "reason": "x"}, 403},
		{"support on behalf", supportTok, map[string]any{"type": "access", "email": victimEmail, "reason": "ticket 12"}, 403},
		{"dpo without a reason", dpoTok, map[string]any{"type": "erasure", "email": victimEmail}, 400},
		{"dpo with a reason", dpoTok, map[string]any{"type": "access", "email": victimEmail, "reason": "letter of 3 March"}, 201},
		{"no credentials", "", map[string]any{"type": "access"}, 401},
	}
	var onBehalfID string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, srv, "POST", "/v1/privacy/requests", tt.token, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, body)
			}
			if status == 201 {
				onBehalfID = body["id"].(string)
				if body["on_behalf"] != true || body["reason"] == "" {
					t.Errorf("on-behalf request = %v", body)
				}
			}
		})
	}
	if status, _ := call(t, srv, "GET", "/v1/privacy/requests/"+onBehalfID, userTok, nil); status != 404 {
		t.Errorf("user reading another subject's request: %d, want 404", status)
	}
	status, list := call(t, srv, "GET", "/v1/privacy/requests", userTok, nil)
	if status != 200 || len(list["requests"].([]any)) != 1 {
		t.Errorf("user's list = %d %v, want their one request", status, list)
	}
	if status, list := call(t, srv, "GET", "/v1/privacy/requests", supportTok, nil); status != 200 || len(list["requests"].([]any)) != 0 {
		t.Errorf("support listing requests: %d %v, want only their own (none)", status, list)
	}
	status, list = call(t, srv, "GET", "/v1/privacy/requests", dpoTok, nil)
	if status != 200 || len(list["requests"].([]any)) < 2 {
		t.Errorf("dpo's list = %d, %d requests", status, len(list["requests"].([]any)))
	}
	if status, _ := call(t, srv, "POST", "/v1/privacy/requests/"+ownID+"/extend", userTok, map[string]any{"months": 2, "reason": "x"}); status != 403 {
		t.Errorf("user extending: %d, want 403", status)
	}
	status, ext := call(t, srv, "POST", "/v1/privacy/requests/"+ownID+"/extend", dpoTok, map[string]any{"months": 2, "reason": "complex request"})
	if status != 200 {
		t.Fatalf("dpo extending: %d %v", status, ext)
	}
	due, _ = time.Parse(time.RFC3339Nano, ext["due_at"].(string))
	if !due.Equal(received.AddDate(0, 3, 0)) || ext["extension_reason"] != "complex request" {
		t.Errorf("extended request = %v", ext)
	}
	if _, err := srv.wired.privacy.Process(ctx, ownID); err != nil {
		t.Fatal(err)
	}
	status, got := call(t, srv, "GET", "/v1/privacy/requests/"+ownID, userTok, nil)
	if status != 200 || got["status"] != privacy.StatusCompleted || got["download_url"] == nil {
		t.Fatalf("completed request = %d %v", status, got)
	}
	var events []string
	for _, e := range got["events"].([]any) {
		events = append(events, e.(map[string]any)["event"].(string))
	}
	// The server's worker may have started the request before the
	// extension was recorded, so only the order of the statuses is fixed.
	trail := strings.Join(events, " ")
	if strings.Replace(trail, " extended", "", 1) != "received verified processing completed" || !strings.Contains(trail, "extended") {
		t.Errorf("audit trail %v", events)
	}
	resp, err := srv.app.Test(httptest.NewRequest("GET", got["download_url"].(string), nil), -1)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("download = %v %v", err, resp)
	}
	evs, err := srv.wired.privacy.Events(ctx, ownID)
	if err != nil || evs[len(evs)-1].Event != "downloaded" {
		t.Errorf("download not in the audit trail: %v %v", evs, err)
	}
}

// TestSignedInAt checks what counts as a recent sign-in for a self-service
// erasure: the session's start, and nothing for a bearer token.
func TestSignedInAt(t *testing.T) {
	ctx := context.Background()
	srv := embedded
	email := "signin-" + randHex(3) + "@example.com"
	if _, err := srv.wired.accounts.CreateToken(ctx, email, authz.RoleUser); err != nil {
		t.Fatal(err)
	}
	u, err := srv.wired.accounts.UserByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().UTC().Add(-3 * time.Minute).Truncate(time.Microsecond)
	sess := accounts.Session{ID: "sess_" + randHex(4), UserID: u.ID, SecretHash: randHex(16), UAFamily: "Firefox", CreatedAt: started, LastSeenAt: started, ExpiresAt: started.Add(time.Hour)}
	if _, err := srv.stores.sql.NewInsert().Model(&sess).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		p       authz.Principal
		want    time.Time
		wantErr bool
	}{
		{"session", authz.Principal{UserID: u.ID, Method: "session", CredentialID: sess.ID}, started, false},
		{"another user's session", authz.Principal{UserID: "u_other", Method: "session", CredentialID: sess.ID}, time.Time{}, true},
		{"bearer token", authz.Principal{UserID: u.ID, Method: "token", CredentialID: "tok"}, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := srv.wired.accounts.SignedInAt(ctx, tt.p)
			if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
				t.Fatalf("SignedInAt = %v, %v", got, err)
			}
		})
	}
}

func TestDSARUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no verb", []string{"dsar"}},
		{"unknown verb", []string{"dsar", "rectify", "--email", "a@example.com"}},
		{"export without out", []string{"dsar", "export", "--email", "a@example.com"}},
		{"erase without email", []string{"dsar", "erase"}},
		{"retention without run", []string{"retention"}},
		{"seed with a bad profile", []string{"seed", "--profile", "huge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(context.Background(), tt.args, io.Discard, &stderr, func(string) string { return "" }); code != 2 {
				t.Fatalf("exit %d, want 2 (usage); stderr %s", code, stderr.String())
			}
		})
	}
}

// TestHoldingsAPI asks what Steward holds about the caller: every role
// gets its own account's data and no one else's, a stranger is refused,
// and a parameter the route does not take is refused rather than ignored.
func TestHoldingsAPI(t *testing.T) {
	ctx := context.Background()
	srv := embedded
	held := func(t *testing.T, tok string) map[string]float64 {
		t.Helper()
		status, body := call(t, srv, "GET", "/v1/privacy/holdings", tok, nil)
		if status != 200 {
			t.Fatalf("GET /v1/privacy/holdings = %d %v", status, body)
		}
		out := map[string]float64{}
		for _, h := range body["holdings"].([]any) {
			h := h.(map[string]any)
			for _, src := range h["sources"].([]any) {
				src := src.(map[string]any)
				out[h["category"].(string)+" "+src["store"].(string)+" "+src["table"].(string)] = src["items"].(float64)
			}
		}
		return out
	}
	for _, role := range authz.Roles() {
		t.Run(role, func(t *testing.T) {
			tok, err := srv.wired.accounts.CreateToken(ctx, role+"-"+randHex(3)+"@example.com", role)
			if err != nil {
				t.Fatal(err)
			}
			// One account row, holding one address: the caller's own,
			// though every earlier subtest made an account too.
			if got := held(t, tok); got["user.contact.email sql users"] != 1 {
				t.Errorf("email addresses held in users: %v, want 1", got["user.contact.email sql users"])
			}
		})
	}
	if status, body := call(t, srv, "GET", "/v1/privacy/holdings", "", nil); status != 401 {
		t.Errorf("without credentials: %d %v, want 401", status, body)
	}
	tok, err := srv.wired.accounts.CreateToken(ctx, "user-"+randHex(3)+"@example.com", authz.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := call(t, srv, "GET", "/v1/privacy/holdings?email=someone@example.com", tok, nil); status != 400 {
		t.Errorf("with an email parameter: %d %v, want 400", status, body)
	}
}
