package privacy

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/locale"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/localetest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/modules/assets"
	"github.com/stewardhq/steward/modules/billing"
	"github.com/stewardhq/steward/modules/generation"
	"github.com/stewardhq/steward/modules/risk"
	"github.com/stewardhq/steward/modules/support"
	"github.com/stewardhq/steward/policies"
)

// indexSources are the tagged models of every module with tables, so
// that each section of the page must tell its table from all the others.
func indexSources() []datamap.Source {
	return []datamap.Source{
		{Module: "platform", Models: append(sqlstore.Models(), adminlog.Models()...)},
		{Module: "accounts", Models: (&accounts.Module{}).Models()},
		{Module: "assets", Models: (&assets.Module{}).Models()},
		{Module: "billing", Models: (&billing.Module{}).Models()},
		{Module: "consent", Models: (&consent.Module{}).Models()},
		{Module: "generation", Models: (&generation.Module{}).Models()},
		{Module: "risk", Models: (&risk.Module{}).Models()},
		{Module: "support", Models: (&support.Module{}).Models()},
		{Module: "privacy", Models: Models()},
	}
}

// indexFixture is the privacy module on SQLite and the embedded
// warehouse, with the data map of indexSources and a file hook standing
// in for the assets module.
type indexFixture struct {
	db    *bun.DB
	w     warehouse.Warehouse
	mod   *Module
	files pictureFiles
	now   time.Time
}

func newIndexFixture(t *testing.T) *indexFixture {
	t.Helper()
	engine := authtest.Engine(t)
	f := &indexFixture{db: sqltest.SQLite(t), w: chtest.Embedded(t), files: pictureFiles{},
		now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	dataMap := func(ctx context.Context) (*datamap.Map, []datamap.Problem, error) {
		return datamap.Build(ctx, datamap.Inputs{SQL: f.db, Warehouse: f.w, Sources: indexSources(), Policy: engine})
	}
	mod, err := New(Config{DataDir: t.TempDir(), SigningKey: []byte("0123456789abcdef0123456789")}, Deps{
		DB: f.db, Warehouse: f.w, Policy: engine, Guard: authz.NewGuard(engine), DataMap: dataMap,
		Accounts: usersTable{f.db}, Hooks: []Hook{{Module: "assets", Data: f.files}},
		Now: func() time.Time { return f.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.mod = mod
	return f
}

// pictureFiles stands in for the assets module: the files of each
// account, by name, written as the assets module names them.
type pictureFiles map[string][]pictureFile

type pictureFile struct {
	name, category string
	data           []byte
}

func (p pictureFiles) ExportSubject(ctx context.Context, s module.SubjectRef, w module.ExportWriter) error {
	for _, f := range p[s.UserID] {
		if err := w.File(ctx, f.name, f.category, bytes.NewReader(f.data)); err != nil {
			return err
		}
	}
	return nil
}

func (p pictureFiles) EraseSubject(context.Context, module.SubjectRef) (module.ErasureResult, error) {
	return module.ErasureResult{}, nil
}

// testPicture is a small PNG: a gradient of the given hue.
func testPicture(t *testing.T, r, g, b uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 96, 96))
	for y := range 96 {
		for x := range 96 {
			k := 128 + (x+y)*127/190
			img.Set(x, y, color.RGBA{R: uint8(int(r) * k / 255), G: uint8(int(g) * k / 255), B: uint8(int(b) * k / 255), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// person is what the fixture gives one account.
type person struct {
	id, email, lang, visitor string
	// mark is in every text of theirs, so that a page showing another
	// person's data is caught.
	mark string
}

func ptr[T any](v T) *T { return &v }

// addPerson stores an account with a generation with a picture and one
// with a video, a support ticket with two messages, three consent
// choices and browsing in the warehouse.
func (f *indexFixture) addPerson(t *testing.T, p person) {
	t.Helper()
	ctx := context.Background()
	at := func(day, hour int) time.Time { return time.Date(2026, 2, day, hour, 0, 0, 0, time.UTC) }
	insert := func(v any) {
		t.Helper()
		if _, err := f.db.NewInsert().Model(v).Exec(ctx); err != nil {
			t.Fatalf("insert %T: %v", v, err)
		}
	}
	insert(&accounts.User{ID: p.id, Email: p.email, Name: "Ann Example", Language: p.lang, Role: "user", Status: "active", CreatedAt: at(1, 9)})
	insert(&[]generation.Generation{
		{ID: p.id + "_g1", UserID: p.id, Prompt: p.mark + "a lighthouse at dawn, oil painting", NegativePrompt: "blurry",
			Model: "local-image-1", Kind: "image", Refs: "[]", Status: "succeeded", Provider: "local", CreatedAt: at(10, 9)},
		{ID: p.id + "_g2", UserID: p.id, Prompt: p.mark + "a corgi astronaut on the moon",
			Model: "local-video-1", Kind: "video", Refs: "[]", Status: "succeeded", Provider: "local", CreatedAt: at(12, 9)},
	})
	insert(&[]generation.Output{
		{GenerationID: p.id + "_g1", Position: 0, UserID: p.id, AssetID: "as_" + p.id + "1", MIMEType: "image/png", CreatedAt: at(10, 10)},
		{GenerationID: p.id + "_g2", Position: 0, UserID: p.id, AssetID: "as_" + p.id + "2", MIMEType: "video/mp4", CreatedAt: at(12, 10)},
	})
	f.files[p.id] = []pictureFile{
		{name: "generated/as_" + p.id + "1-lighthouse.png", category: "user.content.generated_media", data: testPicture(t, 240, 170, 60)},
		{name: "generated/as_" + p.id + "2-corgi.mp4", category: "user.content.generated_media", data: []byte("not really a video")},
	}
	insert(&support.Ticket{ID: p.id + "_t1", UserID: p.id, Subject: p.mark + "Video stuck in queue", ContactEmail: p.email,
		Status: "pending", CreatedAt: at(14, 10), UpdatedAt: at(14, 11)})
	insert(&[]support.Message{
		{ID: p.id + "_m2", TicketID: p.id + "_t1", UserID: p.id, AuthorID: "u_agent", AuthorRole: "agent",
			Body: p.mark + "Thanks for waiting: your video is ready now.", CreatedAt: at(14, 11)},
		{ID: p.id + "_m1", TicketID: p.id + "_t1", UserID: p.id, AuthorID: p.id, AuthorRole: "user",
			Body: p.mark + "My video has been queued for an hour.", CreatedAt: at(14, 10)},
	})
	proof := func(id, purpose string, granted bool, method string, gpc bool, when time.Time) consent.Proof {
		return consent.Proof{ID: p.id + id, ChangeID: p.id + id, UserID: ptr(p.id), Purpose: purpose, Granted: granted,
			Method: method, GPC: gpc, PolicyVersion: p.mark + "2026-01", BannerVersion: "b1", RecordedAt: when,
			UserAgent: "Firefox 128 (Linux, desktop)", IPTruncated: "203.0.113.0"}
	}
	insert(&[]consent.Proof{
		proof("_c1", "analytics", true, "banner_accept", false, at(2, 9)),
		proof("_c2", "marketing", false, "banner_save", false, at(2, 10)),
		proof("_c3", "analytics", false, "preferences", true, at(20, 9)),
	})
	event := func(id, typ, name, page string, when time.Time) ingest.Row {
		return ingest.Row{EventID: p.id + id, EventTime: when, ReceivedAt: when, EventType: typ, EventName: name,
			UserID: p.id, VisitorID: p.visitor, SessionID: p.id + "_s1", Path: page, LandingPage: "/" + p.mark + "welcome",
			ReferrerHost: "news.example", Source: "newsletter", Medium: "email", Campaign: "spring", Channel: "email",
			Browser: "Firefox", OS: "Linux", DeviceClass: "desktop", ConsentPurposes: []string{"analytics"}}
	}
	if err := ingest.Insert(ctx, f.w, ingest.DefaultTable, []ingest.Row{
		event("_e1", "page_view", "", "/"+p.mark+"welcome", at(18, 9)),
		event("_e2", "page_view", "", "/pricing", at(18, 10)),
		event("_e3", "feature_interaction", "generate", "/studio", at(18, 11)),
	}); err != nil {
		t.Fatal(err)
	}
}

// index files an access request for p, processes it and returns the
// package's files by name.
func (f *indexFixture) index(t *testing.T, p person) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	req, err := f.mod.Process(ctx, fileRequest(t, f.mod, TypeAccess, p.email).ID)
	if err != nil || req.Status != StatusCompleted {
		t.Fatalf("access request: %s, %v", req.Status, err)
	}
	r, err := f.mod.OpenPackage(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return unzipped(t, raw)
}

func unzipped(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[zf.Name] = b
	}
	return out
}

var (
	ann = person{id: "u_ann", email: "ann@example.com", lang: "en", visitor: "v_ann", mark: ""}
	bob = person{id: "u_bob", email: "bob@example.com", lang: "en", visitor: "v_bob", mark: "OTHER-"}
)

// rawMessageID matches a message id printed instead of its text.
var rawMessageID = regexp.MustCompile(`\bIndex[A-Z][A-Za-z_]*|\bCategory\.[a-z]|\b(Section|Purpose|Basis|Retention|Period|Erasure)\.[A-Za-z0-9]`)

// TestExportIndex checks the page an access package opens with, in
// English and in German: the kinds of data in the policy's words, the
// generations with their pictures, the support conversation in order,
// the consent choices and the browsing, the files with their checksums;
// nothing of another person's; and the same page for the same data.
func TestExportIndex(t *testing.T) {
	f := newIndexFixture(t)
	f.addPerson(t, ann)
	f.addPerson(t, bob)
	ctx := context.Background()
	tax := authtest.Engine(t).Taxonomy()

	tests := []struct {
		name, lang string
		want       []string
	}{
		{"English", "en", []string{
			`<html lang="en">`, "<h1>Your data</h1>", "This is the personal data we keep about you (ann@example.com), as it was on 2026-03-01 12:00 UTC.",
			// The kinds of data, in the words of the privacy center.
			"<h2 id=\"kinds\">What we keep about you</h2>", "<h3>Your prompts and what you generate</h3>", "<summary>Prompt</summary>",
			"The text you write to describe the image or video to generate.", "As long as you have an account", "Needed for our contract with you (GDPR Art. 6(1)(b))",
			`<a href="data/generation/generations.json">data/generation/generations.json</a> (2 records)`,
			"<strong>Storage path</strong>: " + tax["user.content.upload.storage_path"].Export.WithheldReason,
			// The generations: the picture shown with its prompt, the video linked.
			`<img src="files/assets/generated/as_u_ann1-lighthouse.png" alt="a lighthouse at dawn, oil painting" loading="lazy">`,
			`<p class="prompt">a lighthouse at dawn, oil painting</p>`, "<p>Not wanted: blurry</p>", "2026-02-10 09:00 UTC",
			`<p>File: <a href="files/assets/generated/as_u_ann2-corgi.mp4">as_u_ann2-corgi.mp4</a></p>`, `<p class="prompt">a corgi astronaut on the moon</p>`,
			// The conversation.
			"<h3>Video stuck in queue</h3>", "Status: waiting for your reply · last updated 2026-02-14 11:00 UTC",
			"<strong>You</strong> <span class=\"when\">2026-02-14 10:00 UTC</span>", "<strong>Our support team</strong>",
			// The consent choices.
			`<th scope="col">Your choice</th>`, "<td>2026-02-20 09:00 UTC</td><td>Analytics</td><td>Refused</td><td>Saved in the preferences (Global Privacy Control was on)</td><td>2026-01</td>",
			"<td>Marketing</td><td>Refused</td><td>Saved in the banner</td>", "<td>Analytics</td><td>Allowed</td><td>Accept all, in the banner</td>",
			// The browsing: page views and the visit.
			"<td>2026-02-18 10:00 UTC</td><td>Page view</td><td>/pricing</td><td>news.example</td><td>Firefox, Linux</td>",
			"<td>Used a feature: generate</td><td>/studio</td>",
			"<td>2026-02-18 09:00 UTC</td><td>/welcome</td><td>newsletter</td><td>email</td><td>spring</td><td>email</td>",
			// The files, lower on the page.
			`<a href="manifest.json">manifest.json</a>`, `<th scope="col">SHA-256</th>`,
		}},
		{"German", "de", []string{
			`<html lang="de">`, "<h1>Ihre Daten</h1>", "<h2 id=\"generations\">Ihre Generierungen</h2>",
			"Solange Sie ein Konto haben", "<strong>Speicherpfad</strong>: ", "Ein interner Ort in unserem Dateispeicher; der Export enthält die Datei selbst",
			`alt="a lighthouse at dawn, oil painting"`, "<strong>Sie</strong>", "<strong>Unser Support-Team</strong>",
			"Status: wartet auf Ihre Antwort", "<td>Analyse</td><td>Abgelehnt</td><td>In den Einstellungen gespeichert (Global Privacy Control war eingeschaltet)</td>",
			"<td>Seitenaufruf</td><td>/pricing</td>", `<th scope="col">Einträge</th>`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.db.NewUpdate().Table("users").Set("language = ?", tt.lang).Where("id = ?", ann.id).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			files := f.index(t, ann)
			page := string(files["index.html"])
			for _, want := range tt.want {
				if !strings.Contains(page, want) {
					t.Errorf("the page lacks %q", want)
				}
			}
			if strings.Count(page, "<h1") != 1 {
				t.Errorf("the page has %d h1, want 1", strings.Count(page, "<h1"))
			}
			if i, j := strings.Index(page, "My video has been queued"), strings.Index(page, "your video is ready now"); i < 0 || j < i {
				t.Errorf("the conversation is not in order: the question at %d, the answer at %d", i, j)
			}
			if i, j := strings.Index(page, `id="browsing"`), strings.Index(page, `id="files"`); j < i {
				t.Errorf("the files come before the browsing")
			}
			if strings.Contains(page, "OTHER-") {
				t.Errorf("the page shows another person's data")
			}
			if m := rawMessageID.FindString(page); m != "" {
				t.Errorf("the page shows the message id %q instead of its text", m)
			}
			if strings.Contains(page, "<script") || regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(page) {
				t.Errorf("the page has a script or a remote resource")
			}
			// Every file the page links to is in the package.
			for _, m := range regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(page, -1) {
				if files[m[1]] == nil {
					t.Errorf("the page links to %s, which the package lacks", m[1])
				}
			}
		})
	}

	t.Run("the same page for the same data", func(t *testing.T) {
		s := module.SubjectRef{UserID: ann.id, Email: ann.email}
		var a, b bytes.Buffer
		if _, err := f.mod.exportPackage(ctx, "pr_same", s, "", &a); err != nil {
			t.Fatal(err)
		}
		if _, err := f.mod.exportPackage(ctx, "pr_same", s, "", &b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(unzipped(t, a.Bytes())["index.html"], unzipped(t, b.Bytes())["index.html"]) || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatal("two packages of the same data differ")
		}
	})
}

// TestExportIndexWithoutAccount checks the page of a subject with no
// account, known by an email address only: English, with sections that
// say there is nothing of theirs.
func TestExportIndexWithoutAccount(t *testing.T) {
	f := newIndexFixture(t)
	f.addPerson(t, bob)
	page := string(f.index(t, person{email: "nobody@example.com"})["index.html"])
	for _, want := range []string{`<html lang="en">`, "You have no generations.", "You have no support conversations.",
		"You have made no consent choices.", "We have recorded no pages or actions of yours."} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "OTHER-") {
		t.Errorf("the page shows another person's data")
	}
}

// TestExportIndexCutOff checks that a section shows at most pageRowLimit
// rows, the newest, and says how many more the table's file holds.
func TestExportIndexCutOff(t *testing.T) {
	f := newIndexFixture(t)
	ctx := context.Background()
	if _, err := f.db.NewInsert().Model(&accounts.User{ID: "u_cara", Email: "cara@example.com", Language: "en", Role: "user",
		Status: "active", CreatedAt: f.now}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	n := pageRowLimit + 5
	proofs := make([]consent.Proof, n)
	for i := range proofs {
		proofs[i] = consent.Proof{ID: fmt.Sprintf("c%03d", i), ChangeID: fmt.Sprintf("c%03d", i), UserID: ptr("u_cara"),
			Purpose: "analytics", Granted: i%2 == 0, Method: "preferences", PolicyVersion: fmt.Sprintf("v-%03d", i), BannerVersion: "b1",
			RecordedAt: f.now.Add(-time.Duration(n-i) * time.Hour), UserAgent: "Firefox", IPTruncated: "203.0.113.0"}
	}
	if _, err := f.db.NewInsert().Model(&proofs).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	page := string(f.index(t, person{id: "u_cara", email: "cara@example.com"})["index.html"])
	if want := `<p class="more">… and 5 more, in <a href="data/consent/consent_log.json">data/consent/consent_log.json</a></p>`; !strings.Contains(page, want) {
		t.Errorf("the page lacks %q", want)
	}
	for i := range n {
		shown := strings.Contains(page, fmt.Sprintf("<td>v-%03d</td>", i))
		if want := i >= 5; shown != want {
			t.Errorf("choice %d shown = %v, want %v (the newest %d)", i, shown, want, pageRowLimit)
		}
	}
}

// TestPageRowsKeepTheNewest checks that a feed keeps the newest rows and
// orders them the same whatever order they come in.
func TestPageRowsKeepTheNewest(t *testing.T) {
	spec := &pageSpec{section: "test", show: []string{"v"}}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rows []map[string]any
	for i := range 500 {
		// Two rows at each time, told apart by their value.
		rows = append(rows, map[string]any{"at": base.Add(time.Duration(i/2) * time.Minute), "v": fmt.Sprintf("r%03d", i)})
	}
	var want []string
	for _, order := range []string{"as stored", "shuffled", "reversed", "as warehouse rows, shuffled"} {
		list := slices.Clone(rows)
		switch order {
		case "shuffled", "as warehouse rows, shuffled":
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
		case "reversed":
			slices.Reverse(list)
		}
		f := &pageFeed{spec: spec, collected: "at", read: []string{"at", "v"}, shown: map[string]bool{"v": true}}
		for _, r := range list {
			if order != "as warehouse rows, shuffled" {
				f.offer(func(c string) any { return r[c] })
				continue
			}
			// As the warehouse gives them: JSON text, times as strings.
			raw, err := json.Marshal(map[string]any{"at": r["at"].(time.Time).Format("2006-01-02T15:04:05.000Z"), "v": r["v"]})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.offerJSON(string(raw)); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.materialize(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range f.newestRows() {
			got = append(got, r.vals["v"])
		}
		if f.total != 500 || len(got) != pageRowLimit || got[0] != "r498" || got[1] != "r499" || got[len(got)-1] != "r300" && got[len(got)-1] != "r301" {
			t.Fatalf("%s: %d offered, kept %d: %v … %v", order, f.total, len(got), got[:2], got[len(got)-1])
		}
		if want == nil {
			want = got
		} else if !slices.Equal(got, want) {
			t.Fatalf("%s: kept %v, want %v", order, got, want)
		}
	}
}

// TestJSONTime checks the time a warehouse row's text holds is read
// without decoding the row, and that anything else leaves the row to be
// decoded.
func TestJSONTime(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	tests := []struct {
		name, raw string
		ok        bool
	}{
		{"first key", `{"event_time":"2026-03-01T12:00:00.500Z","path":"/"}`, true},
		{"later key", `{"path":"/a","event_time":"2026-03-01T12:00:00.500Z"}`, true},
		{"another layout", `{"event_time":"2026-03-01 12:00:00.500"}`, true},
		{"the key's name inside a value", `{"path":"/\"event_time\":\"2020-01-01 00:00:00\"","event_time":"2026-03-01 12:00:00.500"}`, true},
		{"a longer key ending the same", `{"x_event_time":"2020-01-01 00:00:00"}`, false},
		{"missing", `{"path":"/"}`, false},
		{"not a string", `{"event_time":1772366400}`, false},
		{"not a time", `{"event_time":"soon"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := jsonTime(tt.raw, "event_time")
			if ok != tt.ok || ok && !got.Equal(at) {
				t.Errorf("jsonTime = %v, %v; want %v, %v", got, ok, at, tt.ok)
			}
		})
	}
}

// TestPageSpecsFindTheirTables checks that each section of the page
// finds its table in the migrated stores, with every column it shows
// exported.
func TestPageSpecsFindTheirTables(t *testing.T) {
	f := newIndexFixture(t)
	dm, _, err := f.mod.deps.DataMap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		sectionGenerations: "generations", sectionOutputs: "generation_outputs", sectionTickets: "support_tickets",
		sectionMessages: "support_messages", sectionConsent: "consent_log", sectionPageViews: "events", sectionVisits: "touches",
	}
	page := newPageData(plan(dm))
	for _, spec := range pageSpecs {
		feed := page.feeds[spec.section]
		if feed == nil {
			t.Errorf("section %s finds no table", spec.section)
			continue
		}
		if !strings.HasSuffix(feed.file, "/"+want[spec.section]+".json") && !strings.HasSuffix(feed.file, "/"+want[spec.section]+".jsonl") {
			t.Errorf("section %s reads %s, want the table %s", spec.section, feed.file, want[spec.section])
		}
		for _, c := range spec.show {
			if !feed.shown[c] {
				t.Errorf("section %s: the export leaves out %s", spec.section, c)
			}
		}
		if !feed.whenShown {
			t.Errorf("section %s: the export leaves out the time of its rows", spec.section)
		}
	}
}

// TestIndexMessageFilesMatch checks that every language file of the page
// has exactly the messages of the English one.
func TestIndexMessageFilesMatch(t *testing.T) {
	localetest.FilesMatch(t, localeFiles)
}

// usedIndexMessages matches a message the template or the code asks for
// by its id.
var usedIndexMessages = regexp.MustCompile(`(?:L\.T|L\.N|l\.T\(|l\.N\() ?"(Index[A-Za-z0-9_]+)"`)

// TestIndexEveryUsedMessageExists checks the page asks for no message the
// files lack, and the files hold none it never asks for: the ids the
// template and index.go name, and those made from stored values.
func TestIndexEveryUsedMessageExists(t *testing.T) {
	used := map[string]bool{}
	src, err := os.ReadFile("index.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{indexHTML, string(src)} {
		for _, m := range usedIndexMessages.FindAllStringSubmatch(text, -1) {
			used[m[1]] = true
		}
	}
	for prefix, values := range map[string][]string{
		"IndexTicketStatus_": ticketStatuses, "IndexConsentPurpose_": consentPurposes,
		"IndexConsentMethod_": consentMethods, "IndexEvent_": eventTypes,
	} {
		for _, v := range values {
			used[prefix+v] = true
		}
	}
	en := localetest.IDs(t, localeFiles, localetest.English)
	for id := range used {
		if !en[id] {
			t.Errorf("message %s is used but missing from the message files", id)
		}
	}
	for id := range en {
		if !used[id] {
			t.Errorf("message %s is in the files but the page never uses it", id)
		}
	}
	// The page's words for values the stores hold cover what the modules
	// store: every event type the tracker accepts.
	for _, typ := range ingest.DefaultEventTypes {
		if !slices.Contains(eventTypes, typ) {
			t.Errorf("event type %s has no words on the page", typ)
		}
	}
	// And every way the consent module records a choice.
	for _, m := range append(consent.Methods(), consent.MethodMerge) {
		if !slices.Contains(consentMethods, m) {
			t.Errorf("consent method %s has no words on the page", m)
		}
	}
	// The page and the policy's words speak English and German.
	cat, err := locale.New(pageMessages, policies.Messages(nil))
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, tag := range cat.Languages() {
		tags = append(tags, tag.String())
	}
	if !slices.Equal(tags, []string{"en", "de"}) {
		t.Errorf("languages %v, want en and de", tags)
	}
}
