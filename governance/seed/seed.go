// Package seed provides realistic demo data at any size: accounts with
// their generations, uploads, orders, support tickets and analytics
// events, consented and not.
//
// Rows are made from the data map rather than from each module's code:
// every table with a subject column gets rows about each seeded person,
// each column filled with one of the values its model lists in its seed
// tag (SeedTag) or else a value of its type, the subject's identifiers
// where the privacy tag says a column holds one, and foreign keys
// pointing at rows seeded for the same person. A new tagged table is
// seeded with no change here.
//
// People are seeded a group at a time: a group's rows go in with
// multi-row inserts inside one transaction, then its files, and the next
// group is made only then, so memory stays that of one group however many
// people are seeded. Events go to the warehouse in large batches shared
// by many people.
//
// Every key, and every text value of a column the schema covers with a
// unique index, is built from the person's key: a tag drawn once per
// seeder followed by a counter of the people it made. Such values are
// therefore unique by construction within a run, and two runs into the
// same store, with the same random seed or not, never make the same ones.
package seed

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/sqlstore"
)

const (
	// batchRows is how many rows one SQL insert carries.
	batchRows = 1000
	// groupPeople is how many people are seeded at a time.
	groupPeople = 500
	// eventBatch is how many events one warehouse insert carries. The
	// engine writes a part per month an insert touches and then merges
	// them: an insert of one person's events would leave it merging
	// thousands of tiny parts, and larger inserts cost it less work per
	// event.
	eventBatch = 100000
	// keyDigits is the width of the counter in a person's key: six
	// base-36 digits count two billion people.
	keyDigits = 6
)

// Event is one analytics event of a seeded person, in the form the
// analytics module stores: its fields are those of the module's stored
// row (ingest.Row), so the caller that wires Deps.Events converts one into
// the other, and a change to either fails to compile there.
type Event struct {
	EventID         string
	EventTime       time.Time
	ReceivedAt      time.Time
	EventType       string
	EventName       string
	UserID          string
	VisitorID       string
	SessionID       string
	Path            string
	LandingPage     string
	Referrer        string
	ReferrerHost    string
	Source          string
	Medium          string
	Campaign        string
	Term            string
	Content         string
	Channel         string
	ClickIDType     string
	ClickID         string
	Browser         string
	OS              string
	DeviceClass     string
	Screen          string
	Language        string
	IPTruncated     string
	ConsentPurposes []string
	// ConversionValue is in ten-thousandths of the currency unit.
	ConversionValue int64
	Currency        string
	Props           string
}

// EventStore stores events as the analytics module stores what it has
// ingested.
type EventStore func(ctx context.Context, events []Event) error

// Uploader stores an uploaded file for a user, as the assets module does.
type Uploader func(ctx context.Context, userID, name, mimeType string, r io.Reader) error

// Config configures a Seeder.
type Config struct {
	// Seed makes the data reproducible. Keys are not: each seeder draws
	// its own, so seeding twice into one store adds people rather than
	// clashing with the first ones.
	Seed uint64
}

// Deps is what seeding needs.
type Deps struct {
	// DB is the SQL store, migrated. Required.
	DB *bun.DB
	// Events stores the analytics events people send; nil seeds none.
	Events EventStore
	// Sources are the tagged models of every module, as for the data map.
	Sources []datamap.Source
	// Uploads stores real files; nil seeds no files.
	Uploads Uploader
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Size says how many rows of each table a seeded person has, as the
// models declare with their seed tag (see SeedTag).
type Size int

const (
	// SizeOne gives every person one row of each table.
	SizeOne Size = iota
	// SizeTypical gives each table the rows of an ordinary user.
	SizeTypical
	// SizeHeavy gives each table the rows of the heavy subject of the
	// benchmarks.
	SizeHeavy
)

// Profile says how much each seeded person has.
type Profile struct {
	// Size picks the rows per person the models declare; tables that
	// declare none for it get one row each. A table keyed by its subject
	// column alone holds one row per person whatever is asked.
	Size Size
	// PerPerson overrides the rows per person of a table.
	PerPerson map[string]int
	// Events is the number of analytics events per person.
	Events int
	// Uploads is the number of real uploaded files per person.
	Uploads int
	// UnconsentedShare is the share of events sent without analytics
	// consent. They are stored as the consent gate stores them: error
	// events only, minimized, with no identifier that links them to
	// anyone.
	UnconsentedShare float64
}

// Typical is an ordinary user's profile: a few dozen generations, some
// uploads and orders, a short support conversation.
func Typical() Profile {
	return Profile{Size: SizeTypical, Events: 200, Uploads: 1, UnconsentedShare: 0.3}
}

// Heavy is the heavy subject of the benchmarks: 100k events of their own
// (and about 25k more sent without consent, which are no one's), 5k
// generations, 50 assets and 500 support messages.
func Heavy() Profile {
	return Profile{Size: SizeHeavy, Events: 125000, Uploads: 50, UnconsentedShare: 0.2}
}

// Person is one seeded data subject.
type Person struct {
	UserID string
	Email  string
	// VisitorIDs are the analytics ids of the person's browsers: their
	// consent records and consented events carry them.
	VisitorIDs []string
	// key is unique to the person across runs; every key of their rows
	// is built from it.
	key string
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
	deps Deps
	rng  *rand.Rand
	// run is drawn once per seeder and starts every person's key.
	run string
	// made counts the people made so far, the rest of their keys.
	made   uint64
	models map[string]reflect.Type
	fields map[string]map[string]datamap.Tag
	// subjects are the tables with a subject column.
	subjects map[string]bool
	// loaded says the schema below has been read (see load).
	loaded bool
	fks    map[string]map[string]string // table -> column -> parent table
	unique map[string]map[string]string // table -> column -> a unique index on it
	order  []string                     // tables, parents first
	cols   map[string]sqlstore.Column
	// subjectKeyed are the tables whose primary key is their subject
	// column alone.
	subjectKeyed map[string]bool
	per          map[string]int // rows per person of each table in this seed
	// values are the plausible values a model declares for a column,
	// rows the rows per person it declares for each size, and skip the
	// tables it leaves to the product's own code paths (SeedTag).
	values map[string]map[string][]string
	rows   map[string]map[Size]int
	skip   map[string]bool
	pngs   [][]byte // images made so far, by colour
}

// New prepares a seeder from the tagged models. The store's schema is
// read when the first people are seeded.
func New(cfg Config, deps Deps) (*Seeder, error) {
	if deps.DB == nil {
		return nil, errors.New("seed: DB is required")
	}
	defaults.Clock(&deps.Now)
	s := &Seeder{deps: deps, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), run: runTag(), models: map[string]reflect.Type{},
		fields: map[string]map[string]datamap.Tag{}, subjects: map[string]bool{}, subjectKeyed: map[string]bool{},
		values: map[string]map[string][]string{}, rows: map[string]map[Size]int{}, skip: map[string]bool{}}
	for _, src := range deps.Sources {
		for _, m := range src.Models {
			typ := reflect.TypeOf(m)
			for typ.Kind() == reflect.Pointer {
				typ = typ.Elem()
			}
			t := deps.DB.Table(typ)
			s.models[t.Name] = typ
			s.fields[t.Name] = map[string]datamap.Tag{}
			s.values[t.Name] = map[string][]string{}
			if err := s.readTableTag(t.Name, typ); err != nil {
				return nil, err
			}
			for _, f := range t.Fields {
				if v, ok := f.StructField.Tag.Lookup(SeedTag); ok {
					s.values[t.Name][f.Name] = strings.Split(v, "|")
				}
				tag, err := datamap.ParseTagOptions(f.StructField.Tag.Get(datamap.TagKey))
				if err != nil {
					return nil, fmt.Errorf("seed: %s.%s: %w", t.Name, f.Name, err)
				}
				s.fields[t.Name][f.Name] = tag
				if tag.Subject {
					s.subjects[t.Name] = true
				}
			}
			if len(t.PKs) == 1 && s.fields[t.Name][t.PKs[0].Name].Subject {
				s.subjectKeyed[t.Name] = true
			}
		}
	}
	return s, nil
}

// load reads the store's foreign keys, unique indexes and columns, and
// orders the tables parents first. It runs once, before the first people
// are seeded; a failed read is tried again by the next call.
func (s *Seeder) load(ctx context.Context) error {
	if s.loaded {
		return nil
	}
	keys, err := sqlstore.ForeignKeys(ctx, s.deps.DB)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	unique, err := sqlstore.UniqueIndexes(ctx, s.deps.DB)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	cols, err := sqlstore.Columns(ctx, s.deps.DB)
	if err != nil {
		return fmt.Errorf("seed: read schema: %w", err)
	}
	s.fks, s.unique, s.cols = map[string]map[string]string{}, map[string]map[string]string{}, map[string]sqlstore.Column{}
	for _, k := range keys {
		setColumn(s.fks, k.Table, k.Column, k.References)
	}
	for _, u := range unique {
		setColumn(s.unique, u.Table, u.Column, u.Index)
	}
	for _, c := range cols {
		s.cols[c.Table+"."+c.Name] = c
	}
	subjects := s.subjects
	seen := map[string]bool{}
	var visit func(string)
	visit = func(t string) {
		if seen[t] {
			return
		}
		seen[t] = true
		parents := make([]string, 0, len(s.fks[t]))
		for _, p := range s.fks[t] {
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
	s.loaded = true
	return nil
}

// runTag returns twelve random base-32 digits in lower case. Sixty bits
// drawn from the system's random source make it unique to one seeder in
// practice, whatever the random seed of the data and whatever the clock.
func runTag() string {
	return strings.ToLower(crand.Text()[:12])
}

// SeedTag is the struct tag through which a model shapes its demo data.
// On a column's field it lists the values to pick from, separated by "|"
// (the values a CHECK constraint accepts, or realistic text):
// `seed:"open|closed"`. On the model's bun.BaseModel field it gives the
// rows per person of a profile size, `seed:"typical=20,heavy=5000"`, or
// `seed:"skip"` for a table only the product's own code paths fill (a
// hash-chained log, a request trail).
const SeedTag = "seed"

// readTableTag reads the seed tag of a model's bun.BaseModel field.
func (s *Seeder) readTableTag(table string, typ reflect.Type) error {
	f, ok := typ.FieldByName("BaseModel")
	if !ok {
		return nil
	}
	raw, ok := f.Tag.Lookup(SeedTag)
	if !ok {
		return nil
	}
	sizes := map[string]Size{"typical": SizeTypical, "heavy": SizeHeavy}
	s.rows[table] = map[Size]int{}
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "skip" {
			s.skip[table] = true
			continue
		}
		name, n, _ := strings.Cut(part, "=")
		size, known := sizes[name]
		v, err := strconv.Atoi(n)
		if !known || err != nil || v < 0 {
			return fmt.Errorf("seed: table %s: %s tag %q: want skip or typical=N,heavy=N", table, SeedTag, raw)
		}
		s.rows[table][size] = v
	}
	return nil
}

// People seeds n people with the profile and returns them. It holds every
// person in memory; Stream seeds any number without.
func (s *Seeder) People(ctx context.Context, n int, p Profile) ([]Person, Summary, error) {
	people := make([]Person, 0, n)
	sum, err := s.Stream(ctx, n, p, func(group []Person) error {
		people = append(people, group...)
		return nil
	})
	if err != nil {
		return nil, sum, err
	}
	return people, sum, nil
}

// Stream seeds n people with the profile a group at a time. Each group's
// rows go in within one transaction, so a failed seed leaves no person
// half made; then come its files, and fn, when not nil, sees the group
// before the next one is made. fn must not keep the slice. Events are
// batched across groups and are all in the warehouse when Stream returns.
func (s *Seeder) Stream(ctx context.Context, n int, p Profile, fn func([]Person) error) (Summary, error) {
	sum := Summary{Rows: map[string]int64{}}
	if err := s.load(ctx); err != nil {
		return sum, err
	}
	s.per = map[string]int{}
	for _, table := range s.order {
		s.per[table] = 1
		if v, ok := s.rows[table][p.Size]; ok && !s.subjectKeyed[table] {
			s.per[table] = v
		}
		if v, ok := p.PerPerson[table]; ok && !s.subjectKeyed[table] {
			s.per[table] = max(0, v)
		}
	}
	plans := map[string]*tablePlan{}
	for _, table := range s.order {
		if tp := s.plan(table); tp != nil && !s.skip[table] {
			plans[table] = tp
		}
	}
	var ev *eventWriter
	if s.deps.Events != nil && p.Events > 0 {
		ev = &eventWriter{store: s.deps.Events, rows: make([]Event, 0, eventBatch)}
		// On an early return, no insert outlives the call.
		defer func() { _ = ev.wait() }()
	}
	group := make([]Person, 0, max(0, min(n, groupPeople)))
	for done := 0; done < n; done += len(group) {
		group = group[:0]
		for len(group) < cap(group) && done+len(group) < n {
			group = append(group, s.person())
		}
		now := s.deps.Now().UTC()
		err := s.deps.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, table := range s.order {
				if tp := plans[table]; tp != nil {
					if err := s.insertTable(ctx, tx, tp, group, s.per[table], now); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return sum, err
		}
		for _, table := range s.order {
			if plans[table] != nil {
				sum.Rows[table] += int64(s.per[table] * len(group))
			}
		}
		if s.deps.Uploads != nil {
			for _, person := range group {
				for j := 0; j < p.Uploads; j++ {
					if err := s.deps.Uploads(ctx, person.UserID, fmt.Sprintf("photo-%d.png", j), "image/png", bytes.NewReader(s.png())); err != nil {
						return sum, fmt.Errorf("seed upload: %w", err)
					}
					sum.Files++
				}
			}
		}
		if ev != nil {
			for _, person := range group {
				if err := s.events(ctx, ev, person, p.Events, p.UnconsentedShare, now); err != nil {
					return sum, err
				}
			}
		}
		if fn != nil {
			if err := fn(group); err != nil {
				return sum, err
			}
		}
		sum.People += len(group)
	}
	if ev != nil {
		if err := ev.flush(ctx); err != nil {
			return sum, err
		}
		sum.Events = ev.total
	}
	return sum, nil
}

// person makes the next person: their key is the seeder's run tag and a
// counter, so it differs from every other person's in this store. The
// counter has a fixed width so keys sort in the order they are made, and
// each insert lands at the end of the indexes on them rather than
// anywhere in the middle.
func (s *Seeder) person() Person {
	n := strconv.FormatUint(s.made, 36)
	key := s.run + "_" + strings.Repeat("0", max(0, keyDigits-len(n))) + n
	s.made++
	return Person{UserID: "u_seed_" + key, Email: pick(s.rng, firstNames) + "." + key + "@example.com",
		VisitorIDs: []string{"v_" + key}, key: key}
}

// valueKind says where a column's values come from.
type valueKind int

const (
	kindVisitor     valueKind = iota // the person's visitor id
	kindEmail                        // the person's email address
	kindUser                         // the person's user id
	kindParent                       // the key of a parent row of the person
	kindKey                          // the row's own key
	kindConstrained                  // one of the values the model lists
	kindUnique                       // text unique to the person and row
	kindCategory                     // a value of the column's type
)

// fieldPlan is how one field of a table is filled, decided once per
// table rather than once per row.
type fieldPlan struct {
	index   []int
	name    string
	kind    valueKind
	family  string
	parent  string
	choices []string
}

// tablePlan is how the rows of one table are made.
type tablePlan struct {
	table  string
	typ    reflect.Type
	fields []fieldPlan
}

// plan decides how each field of table is filled, or returns nil when no
// model is known for it.
func (s *Seeder) plan(table string) *tablePlan {
	typ, ok := s.models[table]
	if !ok {
		return nil
	}
	tp := &tablePlan{table: table, typ: typ}
	for _, f := range s.deps.DB.Table(typ).Fields {
		tag := s.fields[table][f.Name]
		fp := fieldPlan{index: f.Index, name: f.Name, family: s.cols[table+"."+f.Name].Family}
		switch {
		case tag.Identifier == datamap.IdentifierVisitor:
			fp.kind = kindVisitor
		case tag.Identifier == datamap.IdentifierEmail:
			// A subject column, or the person's own address elsewhere
			// (the account's email), so requests by email find them.
			fp.kind = kindEmail
		case tag.Identifier == datamap.IdentifierUser:
			fp.kind = kindUser
		case s.fks[table][f.Name] != "":
			fp.kind, fp.parent = kindParent, s.fks[table][f.Name]
		case f.StructField.Tag.Get(RefTag) != "":
			// A reference the schema does not enforce, declared by the
			// model that holds it.
			fp.kind, fp.parent = kindParent, f.StructField.Tag.Get(RefTag)
		case f.IsPK:
			fp.kind = kindKey
		case len(s.values[table][f.Name]) > 0:
			fp.kind, fp.choices = kindConstrained, s.values[table][f.Name]
		case s.unique[table][f.Name] != "" && f.IndirectType.Kind() == reflect.String:
			fp.kind = kindUnique
		default:
			fp.kind = kindCategory
		}
		tp.fields = append(tp.fields, fp)
	}
	return tp
}

// insertTable inserts per rows of the table about each of people,
// batchRows to a statement.
func (s *Seeder) insertTable(ctx context.Context, db bun.IDB, tp *tablePlan, people []Person, per int, now time.Time) error {
	batch := reflect.MakeSlice(reflect.SliceOf(tp.typ), 0, batchRows)
	flush := func() error {
		if batch.Len() == 0 {
			return nil
		}
		ptr := reflect.New(batch.Type())
		ptr.Elem().Set(batch)
		if _, err := db.NewInsert().Model(ptr.Interface()).Exec(ctx); err != nil {
			return fmt.Errorf("seed %s: %w", tp.table, err)
		}
		// A fresh slice rather than the old one cut to zero, so no row
		// starts with values of a row of the batch before.
		batch = reflect.MakeSlice(batch.Type(), 0, batchRows)
		return nil
	}
	for _, person := range people {
		for i := 0; i < per; i++ {
			batch = batch.Slice(0, batch.Len()+1)
			v := batch.Index(batch.Len() - 1)
			for j := range tp.fields {
				setValue(v.FieldByIndex(tp.fields[j].index), s.value(tp, &tp.fields[j], person, i, now))
			}
			if batch.Len() == batchRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// value returns the value of one field of a person's i-th row.
func (s *Seeder) value(tp *tablePlan, f *fieldPlan, p Person, i int, now time.Time) any {
	switch f.kind {
	case kindVisitor:
		return p.VisitorIDs[0]
	case kindEmail:
		return p.Email
	case kindUser:
		return p.UserID
	case kindParent:
		return pkOf(f.parent, p.key, i%max(1, s.per[f.parent]))
	case kindKey:
		return pkOf(tp.table, p.key, i)
	case kindConstrained:
		return f.choices[s.rng.IntN(len(f.choices))]
	case kindUnique:
		// The column, the person's key and the row: unique however many
		// people are seeded and however often (a provider's subject id,
		// a token hash, an invoice number, an idempotency key).
		return f.name + "-" + p.key + "-" + strconv.Itoa(i)
	}
	return s.valueFor(f.name, f.family, i, now)
}

// RefTag is the struct tag with which a model names the table a column
// points into when no foreign key says so (`ref:"consent_log"`), so that
// seeded rows point at rows that exist.
const RefTag = "ref"

// pkOf is the deterministic primary key of a person's i-th row of a
// table, which a child row computes to reference it. Parents seeded fewer
// times than their children are referenced round-robin.
func pkOf(table, key string, i int) string {
	return table + "_" + key + "_" + strconv.Itoa(i)
}

// valueFor returns a value for a column the model gives no values for,
// shaped by the column's type.
func (s *Seeder) valueFor(column, family string, i int, now time.Time) any {
	switch family {
	case sqlstore.FamilyTime:
		return now.Add(-time.Duration(s.rng.IntN(400*24)) * time.Hour)
	case sqlstore.FamilyInteger:
		return int64(s.rng.IntN(5000))
	case sqlstore.FamilyBoolean:
		return s.rng.IntN(2) == 0
	}
	if strings.HasSuffix(column, "_at") {
		return now.Format(time.RFC3339)
	}
	return column + "-" + strconv.Itoa(i)
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

// The purposes in effect for an event, shared by every row that has them:
// the warehouse only reads them.
var (
	necessaryOnly = []string{"necessary"}
	allPurposes   = []string{"necessary", "analytics", "marketing"}
)

// eventWriter gathers the events of many people into few batches. Each
// batch is stored in a goroutine of its own while the next one fills, so
// the warehouse's work overlaps the SQL store's; at most one is stored at
// a time, so memory holds two batches at most.
type eventWriter struct {
	store EventStore
	rows  []Event
	// busy delivers the result of the insert in flight, of sending rows;
	// nil when none is.
	busy    chan error
	sending int64
	total   int64
}

func (e *eventWriter) add(ctx context.Context, row Event) error {
	e.rows = append(e.rows, row)
	if len(e.rows) < eventBatch {
		return nil
	}
	return e.send(ctx)
}

// send waits for the insert in flight and starts one of the rows
// gathered since.
func (e *eventWriter) send(ctx context.Context) error {
	if err := e.wait(); err != nil {
		return err
	}
	if len(e.rows) == 0 {
		return nil
	}
	rows, done := e.rows, make(chan error, 1)
	e.rows, e.busy, e.sending = make([]Event, 0, eventBatch), done, int64(len(rows))
	go func() { done <- e.store(ctx, rows) }()
	return nil
}

// wait waits for the insert in flight, if any.
func (e *eventWriter) wait() error {
	if e.busy == nil {
		return nil
	}
	err := <-e.busy
	e.busy = nil
	if err != nil {
		return fmt.Errorf("seed events: %w", err)
	}
	e.total += e.sending
	return nil
}

// flush inserts every event gathered and waits until they are in.
func (e *eventWriter) flush(ctx context.Context) error {
	if err := e.send(ctx); err != nil {
		return err
	}
	return e.wait()
}

// events adds n events of a person, in visits as a browser makes them:
// one to eight page views (and now and then a purchase) a minute or two
// apart, which share their session id, landing page, referrer and source,
// as the tracker sends them. Consented events carry their user id, their
// visitor id and full attribution. Unconsented ones are what the consent
// gate stores without analytics consent: error events only (a necessary
// purpose), with the path and the browser family, and without user id,
// visitor id, session, referrer, attribution or channel, so they belong to
// no one.
func (s *Seeder) events(ctx context.Context, ev *eventWriter, p Person, n int, unconsented float64, now time.Time) error {
	uid := p.UserID
	var (
		session, landing string
		src              source
		at               time.Time
		left             int
	)
	for i := 0; i < n; i++ {
		var path string
		if left == 0 {
			left = 1 + s.rng.IntN(8)
			session = "s_" + p.key + "_" + strconv.FormatInt(int64(i), 36)
			at = now.Add(-time.Duration(s.rng.IntN(300*24*60)) * time.Minute)
			landing = pick(s.rng, paths)
			src = pick(s.rng, sources)
			path = landing
		} else {
			at = at.Add(time.Duration(20+s.rng.IntN(100)) * time.Second)
			path = pick(s.rng, paths)
		}
		left--
		// One event in fifty is a purchase, the conversion the tracker
		// sends, with a price; the rest are page views.
		// A price in cents is a hundred ten-thousandths a cent.
		etype, value, currency := "page_view", int64(0), ""
		if s.rng.IntN(50) == 0 {
			etype, value, currency = "purchase", int64(500+s.rng.IntN(5000))*100, "EUR"
		}
		e := Event{EventID: "e_" + p.key + "_" + strconv.FormatInt(int64(i), 36), EventTime: at, ReceivedAt: at, Path: path}
		if s.rng.Float64() < unconsented {
			e.EventType, e.EventName, e.Browser, e.ConsentPurposes = "error", "error", "Firefox", necessaryOnly
		} else {
			e.EventType, e.EventName, e.UserID, e.VisitorID, e.SessionID = etype, etype, uid, p.VisitorIDs[0], session
			e.LandingPage, e.Referrer, e.ReferrerHost = landing, src.referrer, src.host
			e.Source, e.Medium, e.Campaign, e.Channel = src.source, src.medium, "spring", src.channel
			e.Browser, e.OS, e.DeviceClass, e.Language, e.IPTruncated = "Chrome", "Windows", "desktop", "en-US", "203.0.113.0"
			e.ConsentPurposes, e.ConversionValue, e.Currency = allPurposes, value, currency
		}
		if err := ev.add(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// png returns a small image of one colour. A few dozen are encoded once
// and handed out again: encoding is most of the cost of an upload, and a
// hundred thousand people need no hundred thousand colours.
func (s *Seeder) png() []byte {
	const colours = 32
	k := s.rng.IntN(colours)
	if s.pngs == nil {
		s.pngs = make([][]byte, colours)
	}
	if s.pngs[k] == nil {
		img := image.NewRGBA(image.Rect(0, 0, 32, 32))
		c := color.RGBA{uint8(s.rng.IntN(256)), uint8(s.rng.IntN(256)), uint8(s.rng.IntN(256)), 255}
		for x := 0; x < 32; x++ {
			for y := 0; y < 32; y++ {
				img.Set(x, y, c)
			}
		}
		var buf bytes.Buffer
		_ = png.Encode(&buf, img)
		s.pngs[k] = buf.Bytes()
	}
	return s.pngs[k]
}

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

var (
	firstNames = []string{"ada", "bruno", "chen", "dara", "emil", "farah", "goran", "hana", "ines", "jonas"}
	paths      = []string{"/", "/pricing", "/create", "/gallery", "/blog/prompting-tips", "/account"}
	sources    = []source{{"https://www.google.com/", "www.google.com", "google", "cpc", "paid_search"},
		{"https://news.example.org/", "news.example.org", "", "", "referral"}, {"", "", "", "", "direct"},
		{"https://t.co/", "t.co", "twitter", "social", "social"}}
)

// source is where a visit came from: the referrer and its host, the UTM
// source and medium, and the channel they add up to.
type source struct{ referrer, host, source, medium, channel string }

// setColumn sets m[table][column] to value.
func setColumn(m map[string]map[string]string, table, column, value string) {
	if m[table] == nil {
		m[table] = map[string]string{}
	}
	m[table][column] = value
}
