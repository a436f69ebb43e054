// Package seed provides realistic demo data at any size: accounts with
// their generations, uploads, orders, support tickets and analytics
// events, consented and not.
//
// Rows are made from the data map rather than from each module's code:
// every table with a subject column gets rows about each seeded person,
// each column filled with a plausible value of its data category, and
// foreign keys pointing at rows seeded for the same person. A new tagged
// table is seeded with no change here. Rows go in with multi-row inserts;
// events go to the warehouse in batches.
package seed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/sqlstore"
)

// batchRows is how many rows one insert carries.
const batchRows = 1000

// Uploader stores an uploaded file for a user, as the assets module does.
type Uploader func(ctx context.Context, userID, name, mimeType string, r io.Reader) error

// Deps is what seeding needs.
type Deps struct {
	DB        *bun.DB
	Warehouse warehouse.Warehouse // nil: no events
	// Sources are the tagged models of every module, as for the data map.
	Sources []datamap.Source
	// Uploads stores real files; nil seeds no files.
	Uploads Uploader
	Now     func() time.Time
}

// Profile says how much each seeded person has.
type Profile struct {
	// PerPerson overrides the rows per person of a table; tables not
	// listed get one row each.
	PerPerson map[string]int
	// Events is the number of analytics events per person.
	Events int
	// Uploads is the number of real uploaded files per person.
	Uploads int
	// UnconsentedShare is the share of events sent without analytics
	// consent, stored minimized and under a visitor id only.
	UnconsentedShare float64
}

// Typical is an ordinary user's profile.
func Typical() Profile {
	return Profile{
		PerPerson: map[string]int{"generations": 20, "generation_outputs": 20, "billing_orders": 2, "support_messages": 4,
			"assets": 5, "credit_ledger": 4, "sign_in_events": 5, "prompt_safety_results": 20},
		Events: 200, Uploads: 1, UnconsentedShare: 0.3,
	}
}

// Heavy is the heavy subject of the benchmarks: 100k events, 5k
// generations, 50 assets and 500 support messages.
func Heavy() Profile {
	return Profile{
		PerPerson: map[string]int{"generations": 5000, "generation_outputs": 5000, "prompt_safety_results": 5000, "assets": 50,
			"support_tickets": 50, "support_messages": 500, "billing_orders": 20, "credit_ledger": 100},
		Events: 100000, Uploads: 50, UnconsentedShare: 0.2,
	}
}

// Person is one seeded data subject.
type Person struct {
	UserID     string
	Email      string
	VisitorIDs []string
}

// Summary counts what a seed inserted.
type Summary struct {
	People int
	Rows   map[string]int64
	Events int64
	Files  int
}

// Seeder inserts demo data.
type Seeder struct {
	deps   Deps
	rng    *rand.Rand
	models map[string]reflect.Type
	fields map[string]map[string]datamap.Tag
	fks    map[string]map[string]string // table -> column -> parent table
	order  []string                     // tables, parents first
	cols   map[string]sqlstore.Column
	per    map[string]int // rows per person of each table in this seed
}

// New prepares a seeder; seed makes the data reproducible.
func New(ctx context.Context, deps Deps, seed uint64) (*Seeder, error) {
	if deps.DB == nil {
		return nil, errors.New("seed: DB is required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Seeder{deps: deps, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), models: map[string]reflect.Type{},
		fields: map[string]map[string]datamap.Tag{}, cols: map[string]sqlstore.Column{}}
	subjects := map[string]bool{}
	for _, src := range deps.Sources {
		for _, m := range src.Models {
			typ := reflect.TypeOf(m)
			for typ.Kind() == reflect.Pointer {
				typ = typ.Elem()
			}
			t := deps.DB.Table(typ)
			s.models[t.Name] = typ
			s.fields[t.Name] = map[string]datamap.Tag{}
			for _, f := range t.Fields {
				tag, err := datamap.ParseTagOptions(f.StructField.Tag.Get(datamap.TagKey))
				if err != nil {
					return nil, fmt.Errorf("seed: %s.%s: %w", t.Name, f.Name, err)
				}
				s.fields[t.Name][f.Name] = tag
				if tag.Subject {
					subjects[t.Name] = true
				}
			}
		}
	}
	fks, err := foreignKeys(ctx, deps.DB)
	if err != nil {
		return nil, err
	}
	s.fks = fks
	cols, err := sqlstore.Columns(ctx, deps.DB)
	if err != nil {
		return nil, fmt.Errorf("seed: read schema: %w", err)
	}
	for _, c := range cols {
		s.cols[c.Table+"."+c.Name] = c
	}
	seen := map[string]bool{}
	var visit func(string)
	visit = func(t string) {
		if seen[t] {
			return
		}
		seen[t] = true
		parents := make([]string, 0, len(fks[t]))
		for _, p := range fks[t] {
			parents = append(parents, p)
		}
		sort.Strings(parents)
		for _, p := range parents {
			visit(p)
		}
		if subjects[t] {
			s.order = append(s.order, t)
		}
	}
	names := make([]string, 0, len(subjects))
	for t := range subjects {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		visit(t)
	}
	return s, nil
}

// skipTables are filled by the code paths they record, never by seeding:
// the hash-chained admin log and the privacy request trail.
var skipTables = map[string]bool{"admin_log": true, "privacy_requests": true, "privacy_request_events": true}

// People seeds n people with the profile and returns them.
func (s *Seeder) People(ctx context.Context, n int, p Profile) ([]Person, Summary, error) {
	sum := Summary{Rows: map[string]int64{}}
	s.per = map[string]int{}
	for _, table := range s.order {
		s.per[table] = 1
		if v, ok := p.PerPerson[table]; ok {
			s.per[table] = v
		}
	}
	people := make([]Person, n)
	for i := range people {
		people[i] = Person{UserID: "u_seed_" + s.hex(10), Email: fmt.Sprintf("%s.%s@example.com", pick(s.rng, firstNames), s.hex(4)),
			VisitorIDs: []string{"v_" + s.hex(12), "v_" + s.hex(12)}}
	}
	for _, table := range s.order {
		if skipTables[table] {
			continue
		}
		per := s.per[table]
		if err := s.insertTable(ctx, table, people, per); err != nil {
			return nil, sum, err
		}
		sum.Rows[table] += int64(per * n)
	}
	if s.deps.Uploads != nil {
		for _, person := range people {
			for j := 0; j < p.Uploads; j++ {
				if err := s.deps.Uploads(ctx, person.UserID, fmt.Sprintf("photo-%d.png", j), "image/png", bytes.NewReader(s.png())); err != nil {
					return nil, sum, fmt.Errorf("seed upload: %w", err)
				}
				sum.Files++
			}
		}
	}
	if s.deps.Warehouse != nil && p.Events > 0 {
		for _, person := range people {
			n, err := s.events(ctx, person, p.Events, p.UnconsentedShare)
			if err != nil {
				return nil, sum, err
			}
			sum.Events += n
		}
	}
	sum.People = n
	return people, sum, nil
}

func (s *Seeder) insertTable(ctx context.Context, table string, people []Person, per int) error {
	typ, ok := s.models[table]
	if !ok {
		return nil
	}
	bt := s.deps.DB.Table(typ)
	batch := reflect.MakeSlice(reflect.SliceOf(typ), 0, batchRows)
	flush := func() error {
		if batch.Len() == 0 {
			return nil
		}
		ptr := reflect.New(batch.Type())
		ptr.Elem().Set(batch)
		if _, err := s.deps.DB.NewInsert().Model(ptr.Interface()).Exec(ctx); err != nil {
			return fmt.Errorf("seed %s: %w", table, err)
		}
		batch = batch.Slice(0, 0)
		return nil
	}
	now := s.deps.Now().UTC()
	for _, person := range people {
		for i := 0; i < per; i++ {
			v := reflect.New(typ).Elem()
			for _, f := range bt.Fields {
				s.fill(v.FieldByIndex(f.Index), table, f, person, i, now)
			}
			batch = reflect.Append(batch, v)
			if batch.Len() == batchRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// fill sets one field to a plausible value of its category.
func (s *Seeder) fill(fv reflect.Value, table string, f *schema.Field, p Person, i int, now time.Time) {
	tag := s.fields[table][f.Name]
	col := s.cols[table+"."+f.Name]
	var val any
	switch {
	case tag.Subject:
		switch {
		case strings.HasPrefix(tag.Category, "user.unique_id.analytics_id"), strings.HasPrefix(tag.Category, "user.device.cookie_id"):
			val = p.VisitorIDs[0]
		case tag.Category == "user.contact.email" || tag.Category == "user.support.contact":
			val = p.Email
		default:
			val = p.UserID
		}
	case tag.Category == "user.contact.email":
		// The account's address is the person's own, so requests by email
		// find them.
		val = p.Email
	case s.fks[table][f.Name] != "":
		parent := s.fks[table][f.Name]
		val = pkOf(parent, p.UserID, i%max(1, s.per[parent]))
	case f.IsPK:
		val = pkOf(table, p.UserID, i)
	default:
		val = s.valueFor(table, f.Name, tag.Category, col.Family, i, now)
	}
	setValue(fv, val)
}

// pkOf is the deterministic primary key of a person's i-th row of a
// table, which a child row computes to reference it. Parents seeded fewer
// times than their children are referenced round-robin.
func pkOf(table, userID string, i int) string {
	return fmt.Sprintf("%s_%s_%d", table, userID, i)
}

// valueFor returns a value of the category, shaped by the column's type.
func (s *Seeder) valueFor(table, column, category, family string, i int, now time.Time) any {
	if v, ok := constrained[table+"."+column]; ok {
		return v[s.rng.IntN(len(v))]
	}
	switch family {
	case sqlstore.FamilyTime:
		return now.Add(-time.Duration(s.rng.IntN(400*24)) * time.Hour)
	case sqlstore.FamilyInteger:
		return int64(s.rng.IntN(5000))
	case sqlstore.FamilyBoolean:
		return s.rng.IntN(2) == 0
	}
	switch {
	case strings.HasPrefix(category, "user.content.prompt"), strings.HasPrefix(category, "user.content.negative_prompt"):
		return pick(s.rng, prompts)
	case strings.HasPrefix(category, "user.contact.email"), strings.HasPrefix(category, "user.support.contact"):
		return pick(s.rng, firstNames) + "@example.com"
	case category == "user.name":
		return pick(s.rng, firstNames) + " " + pick(s.rng, lastNames)
	case strings.HasPrefix(category, "user.support"):
		return pick(s.rng, supportLines)
	case category == "user.financial.currency":
		return "eur"
	case strings.HasPrefix(category, "user.content.generation_settings.aspect_ratio"):
		return pick(s.rng, []string{"1:1", "16:9", "9:16"})
	}
	if strings.HasSuffix(column, "_at") {
		return now.Format(time.RFC3339)
	}
	return fmt.Sprintf("%s-%d-%s", column, i, s.hex(4))
}

// constrained lists the values columns with a CHECK constraint accept.
var constrained = map[string][]string{
	"users.role":                       {"user"},
	"users.status":                     {"active"},
	"generations.kind":                 {"image", "video"},
	"generations.status":               {"succeeded", "failed"},
	"billing_orders.status":            {"paid", "pending"},
	"billing_orders.refund_status":     {"none"},
	"billing_subscriptions.status":     {"active", "canceled"},
	"support_tickets.status":           {"open", "closed"},
	"support_messages.author_role":     {"user", "support"},
	"billing_orders.kind":              {"credits", "subscription"},
	"billing_invoices.status":          {"paid"},
	"credit_reservations.status":       {"settled"},
	"generations.aspect_ratio":         {"1:1", "16:9", "9:16"},
	"generations.model":                {"local-image-1"},
	"prompt_safety_results.allowed":    {"true"},
	"device_bindings.ua_family":        {"Firefox on Linux", "Chrome on Windows", "Safari on iOS"},
	"sessions.ua_family":               {"Firefox on Linux", "Chrome on Windows"},
	"support_attachments.mime_type":    {"image/png"},
	"assets.mime_type":                 {"image/png"},
	"assets.purpose":                   {"upload"},
	"generation_outputs.mime_type":     {"image/png"},
	"billing_customers.provider":       {"stripe"},
	"billing_orders.provider":          {"stripe"},
	"billing_invoices.provider":        {"stripe"},
	"billing_subscriptions.provider":   {"stripe"},
	"credit_ledger.kind":               {"grant", "spend"},
	"sign_in_events.event":             {"sign_in", "sign_out"},
	"sign_in_events.method":            {"google"},
	"abuse_events.kind":                {"rate_limited"},
	"users.language":                   {"en", "de", "fr"},
	"consent_state.purpose":            {"analytics"},
	"consent_log.purpose":              {"analytics"},
	"prompt_safety_results.category":   {"none"},
	"support_feedback.name":            {"Sam"},
	"generations.provider":             {"local"},
	"reward_records.kind":              {"bonus"},
	"generation_outputs.position":      {"0"},
	"credit_balances.balance":          {"100"},
	"billing_orders.currency":          {"eur"},
	"billing_invoices.currency":        {"eur"},
	"support_tickets.subject":          {"Refund question", "Video stuck in queue", "Login problem"},
	"support_messages.body":            {"The video has been queued for an hour.", "Thanks, it works now."},
	"users.avatar_url":                 {"https://example.com/a.png"},
	"billing_subscriptions.product_id": {"pro-monthly"},
}

// setValue converts val to the field's type.
func setValue(fv reflect.Value, val any) {
	if fv.Kind() == reflect.Pointer {
		fv.Set(reflect.New(fv.Type().Elem()))
		fv = fv.Elem()
	}
	switch x := val.(type) {
	case time.Time:
		if fv.Type() == reflect.TypeOf(time.Time{}) {
			fv.Set(reflect.ValueOf(x))
		} else if fv.Kind() == reflect.String {
			fv.SetString(x.Format(time.RFC3339))
		}
	case int64:
		switch {
		case fv.CanInt():
			fv.SetInt(x)
		case fv.Kind() == reflect.String:
			fv.SetString(fmt.Sprint(x))
		}
	case bool:
		if fv.Kind() == reflect.Bool {
			fv.SetBool(x)
		}
	case string:
		switch {
		case fv.Kind() == reflect.String:
			fv.SetString(x)
		case fv.Kind() == reflect.Bool:
			fv.SetBool(x == "true")
		case fv.CanInt():
			var n int64
			_, _ = fmt.Sscan(x, &n)
			fv.SetInt(n)
		case fv.Type() == reflect.TypeOf(time.Time{}):
			t, _ := time.Parse(time.RFC3339, x)
			fv.Set(reflect.ValueOf(t))
		case fv.Kind() == reflect.Map:
			fv.Set(reflect.MakeMap(fv.Type()))
		}
	}
}

var eventColumns = []string{"event_id", "event_time", "received_at", "event_type", "event_name", "user_id", "visitor_id", "session_id",
	"path", "landing_page", "referrer", "referrer_host", "source", "medium", "campaign", "channel", "browser", "os", "device_class",
	"language", "ip_truncated", "consent_purposes", "conversion_value", "currency"}

// events inserts n events of a person: consented ones under their user id
// and first visitor id with full attribution, unconsented ones minimized
// under their second visitor id only.
func (s *Seeder) events(ctx context.Context, p Person, n int, unconsented float64) (int64, error) {
	now := s.deps.Now().UTC()
	rows := make([][]any, 0, 10000)
	var total int64
	for i := 0; i < n; i++ {
		at := now.Add(-time.Duration(s.rng.IntN(300*24*60)) * time.Minute)
		path := pick(s.rng, paths)
		src := pick(s.rng, sources)
		// One event in fifty is a purchase, the conversion the tracker
		// sends, with a price; the rest are page views.
		etype, value, currency := "page_view", decimal.Zero, ""
		if s.rng.IntN(50) == 0 {
			etype, value, currency = "purchase", decimal.New(int64(500+s.rng.IntN(5000)), -2), "EUR"
		}
		if s.rng.Float64() < unconsented {
			// Without analytics consent the gate keeps only error events
			// (necessary), minimized: no user id, session, referrer or
			// attribution.
			rows = append(rows, []any{"e_" + s.hex(10), at, at, "error", "error", nil, p.VisitorIDs[1], "", path, "", "", "", "", "", "", src[3],
				"Firefox", "", "", "", "", []string{"necessary"}, decimal.Zero, ""})
		} else {
			uid := p.UserID
			rows = append(rows, []any{"e_" + s.hex(10), at, at, etype, etype, &uid, p.VisitorIDs[0], "s_" + s.hex(6), path, "/", src[0], src[0],
				src[1], src[2], "spring", src[3], "Chrome", "Windows", "desktop", "en-US", "203.0.113.0", []string{"necessary", "analytics", "marketing"}, value, currency})
		}
		if len(rows) == cap(rows) {
			if err := s.deps.Warehouse.Insert(ctx, "events", eventColumns, rows); err != nil {
				return total, fmt.Errorf("seed events: %w", err)
			}
			total += int64(len(rows))
			rows = rows[:0]
		}
	}
	if len(rows) > 0 {
		if err := s.deps.Warehouse.Insert(ctx, "events", eventColumns, rows); err != nil {
			return total, fmt.Errorf("seed events: %w", err)
		}
		total += int64(len(rows))
	}
	return total, nil
}

func (s *Seeder) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[s.rng.IntN(16)]
	}
	return string(b)
}

func (s *Seeder) png() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	c := color.RGBA{uint8(s.rng.IntN(256)), uint8(s.rng.IntN(256)), uint8(s.rng.IntN(256)), 255}
	for x := 0; x < 32; x++ {
		for y := 0; y < 32; y++ {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

var (
	firstNames   = []string{"ada", "bruno", "chen", "dara", "emil", "farah", "goran", "hana", "ines", "jonas"}
	lastNames    = []string{"Keller", "Moreau", "Okafor", "Rossi", "Sato", "Varga"}
	prompts      = []string{"a lighthouse at dawn, oil painting", "neon city street in the rain, cinematic", "a corgi astronaut on the moon", "watercolor of alpine lake", "product shot of a ceramic mug on linen"}
	supportLines = []string{"My video has been queued for an hour.", "Can I get a refund for unused credits?", "The download link expired.", "Thanks, that fixed it."}
	paths        = []string{"/", "/pricing", "/create", "/gallery", "/blog/prompting-tips", "/account"}
	// sources are referrer, utm source, utm medium and channel.
	sources = [][4]string{{"https://www.google.com/", "google", "cpc", "paid_search"}, {"https://news.example.org/", "", "", "referral"},
		{"", "", "", "direct"}, {"https://t.co/", "twitter", "social", "social"}}
)

// foreignKeys maps each table's foreign key columns to the tables they
// reference.
func foreignKeys(ctx context.Context, db *bun.DB) (map[string]map[string]string, error) {
	var q string
	switch sqlstore.Dialect(db) {
	case sqlstore.Postgres:
		q = `SELECT kcu.table_name, kcu.column_name, ccu.table_name FROM information_schema.table_constraints tc
JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema
JOIN information_schema.constraint_column_usage ccu ON tc.constraint_name = ccu.constraint_name AND tc.table_schema = ccu.table_schema
WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()`
	default:
		q = `SELECT m.name, p."from", p."table" FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p WHERE m.type = 'table'`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("seed: read foreign keys: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]string{}
	for rows.Next() {
		var t, c, p string
		if err := rows.Scan(&t, &c, &p); err != nil {
			return nil, fmt.Errorf("seed: read foreign keys: %w", err)
		}
		if out[t] == nil {
			out[t] = map[string]string{}
		}
		out[t][c] = p
	}
	return out, rows.Err()
}
