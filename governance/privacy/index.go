package privacy

import (
	"archive/zip"
	"bytes"
	"container/heap"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/locale"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/policies"
)

// The package's index.html is a page for the person the package is
// about: each kind of their data in the policy's plain words, their
// generations with their pictures, their support conversations, their
// consent history and their browsing, then the package's files with
// their checksums. It is opened from the unzipped folder: no script, no
// remote resource, only relative links to the package's own files.
//
// The package is streamed table by table, so the page never holds a
// whole table: while a table streams, its rows pass through the feed of
// the section that shows them, which keeps the newest pageRowLimit of
// them; the page says how many more the table's file holds.

// localeFiles are the page's own messages, one file per language; the
// categories' words come from the policy (policies.Messages).
//
//go:embed locales/active.*.toml
var localeFiles embed.FS

// pageMessages is the page's messages as a source for a locale catalog.
var pageMessages = locale.Source{Files: localeFiles, Pattern: "locales/active.*.toml"}

//go:embed templates/index.html
var indexHTML string

var indexTemplate = template.Must(template.New("index").Parse(indexHTML))

// pageRowLimit is how many rows of one table the page shows at most.
const pageRowLimit = 200

// Sections of the page that show the rows of a table.
const (
	sectionGenerations = "generations"
	sectionOutputs     = "outputs"
	sectionTickets     = "tickets"
	sectionMessages    = "messages"
	sectionConsent     = "consent"
	sectionPageViews   = "page_views"
	sectionVisits      = "visits"
)

// pageSpec says how the page finds and reads the table of one section.
// The table is found through the data map, never by its name: it is the
// first table of the store, in the order the export walks them, that has
// a column of the category which the export includes, has every column
// of show and link, and feeds no earlier section. The column names are
// what the page needs to present a row (a message's author apart from
// its body, which share a category); this list is the one place naming
// them, and TestPageSpecsFindTheirTables checks each finds its table in
// the migrated stores.
type pageSpec struct {
	section  string
	store    string
	category string
	// show are the columns the page shows, each only where the export
	// includes it.
	show []string
	// link are the columns that tie a row to a row of another section
	// (a message to its ticket). They are read for the page and never
	// shown, whether or not the export includes them.
	link []string
}

var pageSpecs = []pageSpec{
	{section: sectionGenerations, store: datamap.StoreSQL, category: "user.content.prompt",
		show: []string{"prompt", "negative_prompt"}, link: []string{"id"}},
	// An output names the asset holding its bytes; the package holds the
	// asset's file under files/ (see outputFiles).
	{section: sectionOutputs, store: datamap.StoreSQL, category: "user.content.generated_media",
		show: []string{"asset_id", "mime_type", "position"}, link: []string{"generation_id"}},
	{section: sectionTickets, store: datamap.StoreSQL, category: "user.support.question",
		show: []string{"subject", "status"}, link: []string{"id"}},
	{section: sectionMessages, store: datamap.StoreSQL, category: "user.support.conversation",
		show: []string{"author_role", "body"}, link: []string{"ticket_id"}},
	{section: sectionConsent, store: datamap.StoreSQL, category: "user.consent.record",
		show: []string{"purpose", "granted", "method", "gpc", "policy_version"}},
	{section: sectionPageViews, store: datamap.StoreWarehouse, category: "user.behavior.browsing_history",
		show: []string{"event_type", "event_name", "path", "referrer_host", "browser", "os"}},
	// The events table has these columns too; it feeds the page views,
	// so the visits are the table of visits.
	{section: sectionVisits, store: datamap.StoreWarehouse, category: "user.behavior.attribution.landing_page",
		show: []string{"landing_page", "source", "medium", "campaign", "channel"}},
}

// matches reports whether the table can feed the spec's section.
func (s *pageSpec) matches(tp *tablePlan) bool {
	if tp.store != s.store {
		return false
	}
	has := map[string]bool{}
	found := false
	for _, c := range tp.columns {
		has[c.Column] = true
		if c.Category == s.category && c.Export.Include {
			found = true
		}
	}
	if !found {
		return false
	}
	for _, c := range append(append([]string(nil), s.show...), s.link...) {
		if !has[c] {
			return false
		}
	}
	return true
}

// pageData is what the page collects while the package streams: a feed
// per section whose table the stores hold.
type pageData struct {
	feeds   map[string]*pageFeed
	byTable map[string]*pageFeed
}

func newPageData(plans []tablePlan) *pageData {
	d := &pageData{feeds: map[string]*pageFeed{}, byTable: map[string]*pageFeed{}}
	for i := range pageSpecs {
		spec := &pageSpecs[i]
		for j := range plans {
			tp := &plans[j]
			key := tp.store + "\x00" + tp.table
			if d.byTable[key] != nil || !spec.matches(tp) {
				continue
			}
			f := newPageFeed(spec, tp)
			d.feeds[spec.section], d.byTable[key] = f, f
			break
		}
	}
	return d
}

// feed returns the feed of a table, nil when the page shows none of it.
func (d *pageData) feed(tp *tablePlan) *pageFeed {
	if d == nil {
		return nil
	}
	return d.byTable[tp.store+"\x00"+tp.table]
}

// pageFeed keeps the newest rows of one table for one section.
type pageFeed struct {
	spec *pageSpec
	// file is the table's file in the package.
	file string
	// collected orders the rows; whenShown says the export includes it,
	// so the page may show it.
	collected string
	whenShown bool
	// shown holds the columns of spec.show the export includes.
	shown map[string]bool
	// read are the columns the feed takes from a row, sorted.
	read []string
	// index places the read columns in a SQL row (see columns).
	index map[string]int
	total int64
	rows  pageRows
}

func newPageFeed(spec *pageSpec, tp *tablePlan) *pageFeed {
	f := &pageFeed{spec: spec, file: dataFile(tp), collected: tp.collected, shown: map[string]bool{}}
	exported := map[string]bool{}
	for _, c := range tp.exportColumns() {
		exported[c.Column] = true
	}
	read := map[string]bool{}
	for _, c := range spec.show {
		if exported[c] {
			f.shown[c], read[c] = true, true
		}
	}
	for _, c := range spec.link {
		read[c] = true
	}
	if f.collected != "" {
		read[f.collected] = true
		f.whenShown = exported[f.collected]
	}
	for c := range read {
		f.read = append(f.read, c)
	}
	sort.Strings(f.read)
	return f
}

// columns returns the columns a SQL export of the table reads: the
// exported names, then those only the page needs; and places each.
func (f *pageFeed) columns(names []string) []string {
	out := append([]string(nil), names...)
	f.index = map[string]int{}
	for i, n := range names {
		f.index[n] = i
	}
	for _, c := range f.read {
		if _, ok := f.index[c]; !ok {
			f.index[c] = len(out)
			out = append(out, c)
		}
	}
	return out
}

// offerSQL passes one row of the SQL store, its values in the order of
// columns.
func (f *pageFeed) offerSQL(vals []any) {
	f.offer(func(c string) any {
		if i, ok := f.index[c]; ok {
			return vals[i]
		}
		return nil
	})
}

// offerJSON passes one row of the warehouse, as a JSON object. A heavy
// subject has hundreds of thousands of events and the page keeps a few
// hundred, so a row is kept as the text it came in, ordered by the time
// read from that text (and the text itself), and only the rows kept to
// the end are decoded (materialize). raw may lie in a buffer that is
// reused once the call returns: a row kept is copied first.
func (f *pageFeed) offerJSON(raw string) error {
	if f.collected == "" {
		return f.decodeJSON(raw, func(value func(string) any) { f.offer(value) })
	}
	at, ok := jsonTime(raw, f.collected)
	if !ok {
		return f.decodeJSON(raw, func(value func(string) any) { f.offer(value) })
	}
	f.total++
	if len(f.rows) >= pageRowLimit && !worse(f.rows[0], pageRow{at: at, key: raw}) {
		return nil
	}
	own := strings.Clone(raw)
	f.rows.keep(pageRow{at: at, key: own, raw: own}, pageRowLimit)
	return nil
}

// decodeJSON decodes one warehouse row and hands its values to use.
func (f *pageFeed) decodeJSON(raw string, use func(value func(string) any)) error {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var row map[string]any
	if err := dec.Decode(&row); err != nil {
		return fmt.Errorf("read a row of %s for the index: %w", f.file, err)
	}
	use(func(c string) any { return row[c] })
	return nil
}

// materialize decodes the rows kept as text, once the table has streamed.
func (f *pageFeed) materialize() error {
	for i := range f.rows {
		r := &f.rows[i]
		if r.raw == "" || r.vals != nil {
			continue
		}
		err := f.decodeJSON(r.raw, func(value func(string) any) {
			r.vals = make(map[string]string, len(f.read))
			for _, c := range f.read {
				r.vals[c] = cellText(value(c))
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *pageFeed) offer(value func(string) any) {
	f.total++
	var at time.Time
	if f.collected != "" {
		at = parseTime(value(f.collected))
	}
	// A row older than every kept one is turned away before it is copied.
	if len(f.rows) >= pageRowLimit && at.Before(f.rows[0].at) {
		return
	}
	r := pageRow{at: at, vals: make(map[string]string, len(f.read))}
	var key strings.Builder
	for _, c := range f.read {
		s := cellText(value(c))
		r.vals[c] = s
		key.WriteString(s)
		key.WriteByte(0)
	}
	r.key = key.String()
	f.rows.keep(r, pageRowLimit)
}

// pageRow is a row kept for the page: its time, its values as text and a
// key that orders rows of the same time, so that the rows kept and their
// order are the same however the store returns them.
type pageRow struct {
	at   time.Time
	key  string
	vals map[string]string
	// raw is a warehouse row's text until materialize decodes it.
	raw string
}

// worse reports whether a ranks below b: older, or as old with a greater
// key.
func worse(a, b pageRow) bool {
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.key > b.key
}

// pageRows is a heap of rows with the worst at the root.
type pageRows []pageRow

func (h pageRows) Len() int           { return len(h) }
func (h pageRows) Less(i, j int) bool { return worse(h[i], h[j]) }
func (h pageRows) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pageRows) Push(x any)        { *h = append(*h, x.(pageRow)) }
func (h *pageRows) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}

// keep adds r, then drops the worst row while there are more than limit.
func (h *pageRows) keep(r pageRow, limit int) {
	if len(*h) < limit {
		heap.Push(h, r)
		return
	}
	if worse((*h)[0], r) {
		(*h)[0] = r
		heap.Fix(h, 0)
	}
}

// newest returns the rows, newest first.
func (h pageRows) newest() []pageRow {
	out := append([]pageRow(nil), h...)
	sort.Slice(out, func(i, j int) bool { return worse(out[j], out[i]) })
	return out
}

// cellText is a stored value as the page shows it.
func cellText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = cellText(e)
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

// timeLayouts are the ways the stores write a time as text: SQLite's and
// PostgreSQL's drivers, and ClickHouse's JSON (UTC, no zone).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

// jsonTime reads the string value of key from a flat JSON object as a
// time without decoding the object; ok is false when the value is not a
// plain string time, and the caller decodes the row instead.
func jsonTime(raw, key string) (time.Time, bool) {
	i := strings.Index(raw, `"`+key+`":"`)
	if i < 0 {
		return time.Time{}, false
	}
	rest := raw[i+len(key)+4:]
	j := strings.IndexByte(rest, '"')
	if j < 0 || strings.IndexByte(rest[:j], '\\') >= 0 {
		return time.Time{}, false
	}
	// The warehouse's export writes its times as ISO 8601 in UTC; the
	// other layouts are tried only when that one does not fit, since
	// each miss costs an error.
	if t, err := time.Parse(time.RFC3339Nano, rest[:j]); err == nil {
		return t.UTC(), true
	}
	t := parseTime(rest[:j])
	return t, !t.IsZero()
}

// parseTime reads a stored time; zero when v is none.
func parseTime(v any) time.Time {
	switch x := v.(type) {
	case time.Time:
		return x.UTC()
	case []byte:
		return parseTime(string(x))
	case string:
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, x); err == nil {
				return t.UTC()
			}
		}
	}
	return time.Time{}
}

// whenLayout is how the page writes a time: the same in every language,
// and in UTC, as the package's files hold it.
const whenLayout = "2006-01-02 15:04 UTC"

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(whenLayout)
}

// dataFile is the file of a table in the package: JSON for the SQL store,
// JSON Lines for the warehouse (its CSV is beside it).
func dataFile(tp *tablePlan) string {
	ext := ".json"
	if tp.store == datamap.StoreWarehouse {
		ext = ".jsonl"
	}
	return path.Join("data", tp.module, tp.table+ext)
}

// fileHref is the relative link to a file of the package, each part of
// its path escaped, so that a file name with a space, "#" or "?" still
// names the file.
func fileHref(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// imageExtensions are the file types the page shows as pictures when the
// row gives no media type.
var imageExtensions = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true, ".avif": true}

// The index's view of the package.
type (
	indexView struct {
		L           *locale.Localizer
		Email       string
		Generated   string
		Revision    string
		Categories  []categorySection
		Withheld    []withheldView
		Technical   bool
		Generations generationsView
		Tickets     ticketsView
		Consent     tableView
		PageViews   tableView
		Visits      tableView
		Files       []fileView
	}
	categorySection struct {
		Number     int
		Title      string
		Categories []categoryView
	}
	categoryView struct {
		policies.Words
		Files []fileView
		// Attachments counts the files of the category (uploads,
		// generated pictures) the package holds.
		Attachments int
	}
	withheldView struct{ Name, Reason string }
	fileView     struct {
		ManifestFile
		Href string
		// Records says how many records the file holds, in words.
		Records string
	}
	// moreView says how many rows a section left out, and where they are.
	moreView struct {
		Count int64
		// Text says it, up to the file's name.
		Text, File, Href string
	}
	generationsView struct {
		Items []generationView
		More  moreView
	}
	generationView struct {
		When, Prompt, Negative string
		// Alt describes the generation's pictures: its prompt.
		Alt     string
		Outputs []outputView
	}
	outputView struct {
		File, Href string
		// Name is the file's own name, without its folder.
		Name  string
		Image bool
	}
	ticketsView struct {
		Items        []ticketView
		More         moreView
		MoreMessages moreView
	}
	ticketView struct {
		Subject, Status, When string
		Messages              []messageView
	}
	messageView struct {
		Who, When, Body string
		Yours           bool
	}
	tableView struct {
		Caption, Empty string
		Head           []string
		Rows           [][]string
		More           moreView
	}
)

// more says what a section left out of a feed's rows: shown of them are
// on the page.
func (f *pageFeed) more(l *locale.Localizer, shown int) moreView {
	if f == nil || f.total <= int64(shown) {
		return moreView{}
	}
	n := f.total - int64(shown)
	return moreView{Count: n, Text: l.N("IndexMore", int(n)), File: f.file, Href: fileHref(f.file)}
}

// newestRows returns a feed's rows, newest first; none for a section
// whose table the stores lack.
func (f *pageFeed) newestRows() []pageRow {
	if f == nil {
		return nil
	}
	return f.rows.newest()
}

// shows reports whether the page may show a column of the feed's rows.
func (f *pageFeed) shows(column string) bool { return f != nil && f.shown[column] }

// cell is a row's value of column when the page may show it.
func (f *pageFeed) cell(r pageRow, column string) string {
	if !f.shows(column) {
		return ""
	}
	return r.vals[column]
}

// whenOf is a row's time when the page may show it.
func (f *pageFeed) whenOf(r pageRow) string {
	if f == nil || !f.whenShown {
		return ""
	}
	return when(r.at)
}

// packageLocalizer returns the messages of the package's language, the
// language of the subject's account, whoever filed the request; for a
// subject without an account lang, the language of the pages they filed
// it from; English when there is none, or none the page speaks. The
// categories' words are those of cats, the categories of the data map the
// package is built from.
func (m *Module) packageLocalizer(ctx context.Context, subject module.SubjectRef, lang string, cats map[string]policies.Category) (*locale.Localizer, error) {
	cat, err := locale.New(pageMessages, policies.Messages(cats))
	if err != nil {
		return nil, fmt.Errorf("load the package's messages: %w", err)
	}
	if subject.UserID != "" {
		lang, err = m.deps.Accounts.LanguageByUserID(ctx, subject.UserID)
		if err != nil && !errors.Is(err, errs.ErrNotFound) {
			return nil, fmt.Errorf("read the account's language: %w", err)
		}
	}
	return cat.For(lang), nil
}

// writeIndex renders the page into the package, in l's language. It is
// rendered into a buffer first, so that a template error leaves no half
// page in the package.
func (pk *packer) writeIndex(man Manifest, l *locale.Localizer, cats map[string]policies.Category) error {
	var buf bytes.Buffer
	if err := renderIndex(&buf, man, pk.page, l, cats); err != nil {
		return fmt.Errorf("write index.html: %w", err)
	}
	zf, err := pk.zw.CreateHeader(&zip.FileHeader{Name: "index.html", Method: zip.Deflate, Modified: man.GeneratedAt})
	if err != nil {
		return fmt.Errorf("add index.html: %w", err)
	}
	if _, err := zf.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write index.html: %w", err)
	}
	return nil
}

// renderIndex writes the page of a package whose rows passed through
// page.
func renderIndex(w io.Writer, man Manifest, page *pageData, l *locale.Localizer, cats map[string]policies.Category) error {
	if page == nil {
		page = &pageData{}
	}
	v := indexView{
		L: l, Email: man.Subject.Email, Generated: when(man.GeneratedAt), Revision: man.PolicyRevision,
		Generations: generations(page, man, l),
		Tickets:     tickets(page, l),
		Consent:     consentTable(page.feeds[sectionConsent], l),
		PageViews:   pageViewTable(page.feeds[sectionPageViews], l),
		Visits:      visitTable(page.feeds[sectionVisits], l),
	}
	v.Categories, v.Withheld, v.Technical = categoryViews(man, l, cats)
	for _, f := range man.Sources {
		v.Files = append(v.Files, fileView{ManifestFile: f, Href: fileHref(f.File)})
	}
	return indexTemplate.Execute(w, v)
}

// categoryViews says in words the personal categories the package
// includes, by section of the privacy policy as the privacy center does,
// each with the files holding it; and those it withholds, with the
// reason. Technical says it withholds technical columns too.
func categoryViews(man Manifest, l *locale.Localizer, cats map[string]policies.Category) (sections []categorySection, withheld []withheldView, technical bool) {
	filesOf := map[string][]fileView{}
	attachments := map[string]int{}
	for _, f := range man.Sources {
		switch {
		case strings.HasPrefix(f.Format, "file:"):
			attachments[strings.TrimPrefix(f.Format, "file:")]++
		case f.Table != "" && (f.Format == "json" || f.Format == "jsonl") && f.Rows > 0:
			filesOf[f.Table] = append(filesOf[f.Table], fileView{ManifestFile: f, Href: fileHref(f.File), Records: l.N("IndexRecords", int(f.Rows))})
		}
	}
	var included []policies.Category
	cols := map[string][]string{}
	for _, mc := range man.Included {
		c, ok := cats[mc.Category]
		if !ok || !c.Personal || c.Group {
			continue
		}
		included = append(included, c)
		cols[c.Key] = mc.Columns
	}
	sort.Slice(included, func(i, j int) bool {
		a, b := included[i].Section.Number, included[j].Section.Number
		if a != b {
			// Categories the policy does not name come last.
			return b == 0 || a != 0 && a < b
		}
		return included[i].Key < included[j].Key
	})
	for _, c := range included {
		n := c.Section.Number
		if len(sections) == 0 || sections[len(sections)-1].Number != n {
			sections = append(sections, categorySection{Number: n, Title: l.T("Section." + strconv.Itoa(n))})
		}
		cv := categoryView{Words: policies.PlainWords(l, c), Attachments: attachments[c.Key]}
		seen := map[string]bool{}
		for _, col := range cols[c.Key] {
			table, _, _ := strings.Cut(col, ".")
			if seen[table] {
				continue
			}
			seen[table] = true
			cv.Files = append(cv.Files, filesOf[table]...)
		}
		sec := &sections[len(sections)-1]
		sec.Categories = append(sec.Categories, cv)
	}
	for _, mc := range man.Withheld {
		c, ok := cats[mc.Category]
		if !ok || !c.Personal || c.Group {
			technical = true
			continue
		}
		w := policies.PlainWords(l, c)
		withheld = append(withheld, withheldView{Name: w.Name, Reason: w.Withheld})
	}
	return sections, withheld, technical
}

// generations shows the newest generations, each with its outputs: the
// pictures shown, any other file linked.
func generations(page *pageData, man Manifest, l *locale.Localizer) generationsView {
	gens, outs := page.feeds[sectionGenerations], page.feeds[sectionOutputs]
	files := outputFiles(man, outs)
	byGeneration := map[string][]pageRow{}
	for _, o := range outs.newestRows() {
		id := o.vals["generation_id"]
		byGeneration[id] = append(byGeneration[id], o)
	}
	var v generationsView
	for _, g := range gens.newestRows() {
		gv := generationView{When: gens.whenOf(g), Prompt: gens.cell(g, "prompt"), Negative: gens.cell(g, "negative_prompt")}
		gv.Alt = gv.Prompt
		if gv.Alt == "" {
			gv.Alt = l.T("IndexGeneratedPicture")
		}
		list := byGeneration[g.vals["id"]]
		sort.SliceStable(list, func(i, j int) bool {
			a, _ := strconv.ParseInt(list[i].vals["position"], 10, 64)
			b, _ := strconv.ParseInt(list[j].vals["position"], 10, 64)
			return a < b
		})
		for _, o := range list {
			file, ok := files[outs.cell(o, "asset_id")]
			if !ok {
				// The bytes are gone (an erasure under way); the row is
				// still in the table's file.
				continue
			}
			mime := outs.cell(o, "mime_type")
			gv.Outputs = append(gv.Outputs, outputView{File: file, Href: fileHref(file), Name: path.Base(file),
				Image: strings.HasPrefix(mime, "image/") || mime == "" && imageExtensions[strings.ToLower(path.Ext(file))]})
		}
		v.Items = append(v.Items, gv)
	}
	v.More = gens.more(l, len(v.Items))
	return v
}

// outputFiles finds the files of the outputs' category in the package by
// the asset each is: the assets module names a file "<asset id>-<file
// name>" (modules/assets, ExportSubject), and an output row holds the
// asset's id.
func outputFiles(man Manifest, outs *pageFeed) map[string]string {
	out := map[string]string{}
	if outs == nil {
		return out
	}
	format := "file:" + outs.spec.category
	for _, f := range man.Sources {
		if f.Format != format {
			continue
		}
		if id, _, ok := strings.Cut(path.Base(f.File), "-"); ok {
			out[id] = f.File
		}
	}
	return out
}

// tickets shows the newest support tickets as conversations: the
// subject, then the messages oldest first, who wrote each and when.
func tickets(page *pageData, l *locale.Localizer) ticketsView {
	ts, ms := page.feeds[sectionTickets], page.feeds[sectionMessages]
	byTicket := map[string][]pageRow{}
	for _, m := range ms.newestRows() {
		id := m.vals["ticket_id"]
		byTicket[id] = append(byTicket[id], m)
	}
	var v ticketsView
	messages := 0
	for _, t := range ts.newestRows() {
		tv := ticketView{Subject: ts.cell(t, "subject"), When: ts.whenOf(t)}
		if tv.Subject == "" {
			tv.Subject = l.T("IndexTicketNoSubject")
		}
		if s := ts.cell(t, "status"); s != "" {
			tv.Status = known(l, "IndexTicketStatus_", s, ticketStatuses)
		}
		list := byTicket[t.vals["id"]]
		for i := len(list) - 1; i >= 0; i-- {
			m := list[i]
			mv := messageView{When: ms.whenOf(m), Body: ms.cell(m, "body")}
			switch role := ms.cell(m, "author_role"); role {
			case "":
			case authorSubject:
				mv.Who, mv.Yours = l.T("IndexAuthorYou"), true
			default:
				mv.Who = l.T("IndexAuthorSupport")
			}
			tv.Messages = append(tv.Messages, mv)
		}
		messages += len(tv.Messages)
		v.Items = append(v.Items, tv)
	}
	v.More = ts.more(l, len(v.Items))
	v.MoreMessages = ms.more(l, messages)
	return v
}

// authorSubject is the author role of the ticket's owner; any other
// author is the support team.
const authorSubject = "user"

// Values the page says in words; any other is shown as stored.
var (
	ticketStatuses = []string{"open", "pending", "resolved", "closed"}
	// consentPurposes are the purposes a choice is made for.
	consentPurposes = []string{policies.PurposeNecessary, policies.PurposeFunctional, policies.PurposeAnalytics, policies.PurposeMarketing}
	// consentMethods are how a choice is made, as the consent module
	// records it (consent_log.method).
	consentMethods = []string{"banner_accept", "banner_reject", "banner_save", "preferences", "gpc", "api", "merge"}
	// eventTypes are the analytics event types of the consent map
	// (policies/data/consent_map.json).
	eventTypes = []string{"page_view", "feature_interaction", "pricing_view", "signup", "purchase", "performance", "error"}
)

// known says a stored value in words when it is one of values, by the
// message prefix+value; as stored otherwise.
func known(l *locale.Localizer, prefix, value string, values []string) string {
	for _, v := range values {
		if v == value {
			return l.T(prefix + value)
		}
	}
	return value
}

// truthy reads a stored boolean: SQLite keeps 1 and 0.
func truthy(s string) bool {
	b, err := strconv.ParseBool(s)
	return err == nil && b
}

func consentTable(f *pageFeed, l *locale.Localizer) tableView {
	v := tableView{Caption: l.T("IndexConsentCaption"), Empty: l.T("IndexConsentNone"), Head: []string{l.T("IndexWhen"), l.T("IndexConsentPurpose"), l.T("IndexConsentChoice"), l.T("IndexConsentHow"), l.T("IndexConsentPolicy")}}
	for _, r := range f.newestRows() {
		var choice string
		if f.shows("granted") {
			choice = l.T("IndexConsentRefused")
			if truthy(r.vals["granted"]) {
				choice = l.T("IndexConsentGranted")
			}
		}
		how := f.cell(r, "method")
		if how != "" {
			how = known(l, "IndexConsentMethod_", how, consentMethods)
		}
		if truthy(f.cell(r, "gpc")) && f.cell(r, "method") != "gpc" {
			how += " (" + l.T("IndexConsentGPC") + ")"
		}
		purpose := f.cell(r, "purpose")
		if purpose != "" {
			purpose = known(l, "IndexConsentPurpose_", purpose, consentPurposes)
		}
		v.Rows = append(v.Rows, []string{f.whenOf(r), purpose, choice, how, f.cell(r, "policy_version")})
	}
	v.More = f.more(l, len(v.Rows))
	return v
}

func pageViewTable(f *pageFeed, l *locale.Localizer) tableView {
	v := tableView{Caption: l.T("IndexPageViewsCaption"), Empty: l.T("IndexPageViewsNone"), Head: []string{l.T("IndexWhen"), l.T("IndexEventWhat"), l.T("IndexEventPage"), l.T("IndexEventFrom"), l.T("IndexEventBrowser")}}
	for _, r := range f.newestRows() {
		what := f.cell(r, "event_type")
		if what != "" {
			what = known(l, "IndexEvent_", what, eventTypes)
		}
		if name := f.cell(r, "event_name"); name != "" && name != f.cell(r, "event_type") {
			what = joinNonEmpty(": ", what, name)
		}
		v.Rows = append(v.Rows, []string{f.whenOf(r), what, f.cell(r, "path"), f.cell(r, "referrer_host"),
			joinNonEmpty(", ", f.cell(r, "browser"), f.cell(r, "os"))})
	}
	v.More = f.more(l, len(v.Rows))
	return v
}

func visitTable(f *pageFeed, l *locale.Localizer) tableView {
	v := tableView{Caption: l.T("IndexVisitsCaption"), Empty: l.T("IndexVisitsNone"), Head: []string{l.T("IndexWhen"), l.T("IndexVisitLanding"), l.T("IndexVisitSource"), l.T("IndexVisitMedium"), l.T("IndexVisitCampaign"), l.T("IndexVisitChannel")}}
	for _, r := range f.newestRows() {
		v.Rows = append(v.Rows, []string{f.whenOf(r), f.cell(r, "landing_page"), f.cell(r, "source"), f.cell(r, "medium"),
			f.cell(r, "campaign"), f.cell(r, "channel")})
	}
	v.More = f.more(l, len(v.Rows))
	return v
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
