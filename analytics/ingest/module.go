// Package ingest provides analytics event ingestion: the tracker script
// (GET /t.js), the collection endpoint (POST /v1/events) and the pipeline
// behind it.
//
// Every event passes, in order: validation (sizes, formats, a time window,
// a batch limit; invalid items are reported one by one while the valid
// ones go on), removal of event ids repeated within the batch, bot
// filtering of browser requests (a back end sending with a bearer API
// token is not filtered), the consent gate, enrichment and a durable
// spool. The answer counts, per batch, what was stored and what was
// dropped for which reason (see Result). The consent gate looks up the consent the visitor or user has
// stored (through ConsentSource, implemented by the consent module), adds
// the Global Privacy Control signal of the request and asks the policy
// engine what may be kept: the event is dropped, stored minimized, or
// stored in full, and every column whose data category the decision strips
// is cleared before the event is written anywhere, the spool included.
// Nothing reaches the warehouse that consent does not allow.
//
// 202 means the event is safe: the handler answers only once the spool has
// synced it to disk. A drainer moves spooled events to the warehouse in
// large batches, retrying with backoff while the warehouse is down. Event
// ids make delivery exactly-once: the drainer marks a batch in flight
// before inserting it and commits it after, and a batch that may have
// reached the warehouse already (after a crash or a failed insert) is
// checked against the ids stored before it is sent again. The events table
// is a ReplacingMergeTree keyed on event_id as a last net.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/analytics/enrich"
	"github.com/stewardhq/steward/analytics/spool"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/background"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

// ConsentSource looks up the consent a subject has stored. The consent
// module implements it; ingest declares it so that neither package
// imports the other.
type ConsentSource interface {
	// ConsentFor returns the purposes in effect for the visitor (the
	// steward_vid cookie) and the signed-in user, either of which may be
	// empty, and whether the marketing purpose was granted explicitly
	// while the Global Privacy Control signal was on. A subject without a
	// stored choice, or whose choice has expired, has no purposes; the
	// necessary purpose is implied and need not be listed.
	ConsentFor(ctx context.Context, visitorID, userID string) (purposes []string, explicitMarketing bool, err error)
}

// ConsentPolicy decides how an event is stored; *policies.Engine
// implements it.
type ConsentPolicy interface {
	Consent(ctx context.Context, in policies.ConsentInput) (policies.ConsentDecision, error)
}

// Defaults for zero Config fields.
const (
	DefaultTable          = "events"
	DefaultVisitorCookie  = "steward_vid"
	DefaultBatchRows      = 10_000
	DefaultFlushInterval  = time.Second
	DefaultMaxBatch       = 500
	DefaultBodyLimit      = 2 << 20
	DefaultSpoolMaxBytes  = 256 << 20
	DefaultRetryMin       = 100 * time.Millisecond
	DefaultRetryMax       = 10 * time.Second
	DefaultMaxPast        = 48 * time.Hour
	DefaultMaxFuture      = 5 * time.Minute
	defaultRetryAfterFull = 5 * time.Second
)

// DefaultEventTypes are the event types of policies/data/consent_map.json;
// the gate drops any other, so validation refuses them up front.
var DefaultEventTypes = []string{"page_view", "feature_interaction", "pricing_view", "signup", "purchase", "performance", "error"}

// Config configures the module.
type Config struct {
	// SpoolDir holds the spool's segment files, for example
	// <data dir>/spool/events. Required.
	SpoolDir string
	// SpoolMaxBytes bounds the undrained spool; a full spool answers 503
	// with Retry-After. Zero means DefaultSpoolMaxBytes.
	SpoolMaxBytes int64
	// Table is the events table; zero means DefaultTable.
	Table string
	// BatchRows is the largest insert; zero means DefaultBatchRows.
	BatchRows int
	// FlushInterval is how long the drainer waits to fill a batch; zero
	// means DefaultFlushInterval.
	FlushInterval time.Duration
	// RetryMin and RetryMax bound the backoff between failed inserts.
	RetryMin, RetryMax time.Duration
	// MaxBatch is the most events one request may carry; zero means
	// DefaultMaxBatch.
	MaxBatch int
	// BodyLimit is the body limit of POST /v1/events; zero means
	// DefaultBodyLimit. The server's web.Options.MaxBodyLimit must be at
	// least this.
	BodyLimit int
	// MaxPast and MaxFuture bound event times around the time received.
	MaxPast, MaxFuture time.Duration
	// EventTypes are the accepted event types; nil means
	// DefaultEventTypes.
	EventTypes []string
	// VisitorCookie names the first-party visitor id cookie; zero means
	// DefaultVisitorCookie.
	VisitorCookie string
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
}

// Deps are what the module needs from the rest of Steward.
type Deps struct {
	// Warehouse receives the events. Required.
	Warehouse warehouse.Warehouse
	// Policy decides per event what consent allows. Required.
	Policy ConsentPolicy
	// Consent looks up stored consent. Required.
	Consent ConsentSource
	// Logger receives the module's log; nil discards it.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Module is the event ingestion module.
type Module struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	rules *enrich.Rules
	ua    *enrich.UAParser
	spool *spool.Spool
	types map[string]bool
	plans planCache

	// bg runs the drainer. Its context ends only when Stop gives up
	// waiting for the drain: a stop is asked for by closing stopping, so
	// that inserts in flight finish and the spool empties first.
	bg        background.Group
	startOnce sync.Once
	stopOnce  sync.Once
	stopping  chan struct{}
	flushReq  chan struct{}
	done      chan struct{} // closed when the drainer has returned
	started   atomic.Bool   // the drainer was started
}

// New builds the module and opens its spool.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.Warehouse == nil || deps.Policy == nil || deps.Consent == nil {
		return nil, errors.New("ingest: Warehouse, Policy and Consent are required")
	}
	if cfg.SpoolDir == "" {
		return nil, errors.New("ingest: SpoolDir is required")
	}
	defaults.String(&cfg.Table, DefaultTable)
	defaults.Positive(&cfg.BatchRows, DefaultBatchRows)
	defaults.Positive(&cfg.FlushInterval, DefaultFlushInterval)
	defaults.Positive(&cfg.RetryMin, DefaultRetryMin)
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	defaults.Positive(&cfg.MaxBatch, DefaultMaxBatch)
	defaults.Positive(&cfg.BodyLimit, DefaultBodyLimit)
	defaults.Positive(&cfg.SpoolMaxBytes, DefaultSpoolMaxBytes)
	defaults.Positive(&cfg.MaxPast, DefaultMaxPast)
	defaults.Positive(&cfg.MaxFuture, DefaultMaxFuture)
	if cfg.EventTypes == nil {
		cfg.EventTypes = DefaultEventTypes
	}
	defaults.String(&cfg.VisitorCookie, DefaultVisitorCookie)
	defaults.Clock(&deps.Now)
	defaults.Logger(&deps.Logger)
	log := deps.Logger.With(slog.String("module", "events"))
	rules, err := enrich.LoadRules()
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	sp, err := spool.Open(cfg.SpoolDir, spool.Options{MaxBytes: cfg.SpoolMaxBytes, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	m := &Module{
		cfg:      cfg,
		deps:     deps,
		log:      log,
		rules:    rules,
		ua:       enrich.NewUAParser(rules, 0),
		spool:    sp,
		types:    map[string]bool{},
		stopping: make(chan struct{}),
		flushReq: make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	for _, t := range cfg.EventTypes {
		m.types[t] = true
	}
	return m, nil
}

// BodyLimit is the body limit of POST /v1/events; the server's
// web.Options.MaxBodyLimit must be at least this.
func (m *Module) BodyLimit() int { return m.cfg.BodyLimit }

// Name is the module's name.
func (m *Module) Name() string { return "events" }

// Models returns nothing: the module stores no SQL rows. Its warehouse
// columns carry their categories in the schema's comments.
func (m *Module) Models() []any { return nil }

// Mount adds POST /v1/events and GET /t.js.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method:  fiber.MethodPost,
		Path:    "/v1/events",
		Summary: "Collect analytics events (one event or an array)",
		Description: "Accepts one event object or an array of up to the batch limit. The answer (202) comes once " +
			"the events to keep are safely spooled, and says what happened to every item: `stored` counts the " +
			"events written to the spool, from which they reach the warehouse; `dropped` counts the others by " +
			"reason: `invalid` (listed in `rejected` with their errors), `duplicate` (a later copy of an " +
			"`event_id` repeated within the same request; the first copy goes on), `bot` (a browser request " +
			"whose User-Agent is a crawler, monitor or scripting client, or missing) and `consent` (not allowed " +
			"by the sender's stored consent and the Sec-GPC header). Each item is counted once, under the " +
			"first of these checks that stops it (invalid, duplicate, bot, consent), so `stored` plus the " +
			"`dropped` counts is the number of items sent. `accepted` counts the valid items, whatever became " +
			"of them (`stored` + `consent` + `bot` + `duplicate`); it is not the number stored. Only browser " +
			"traffic is bot-filtered: a request with a bearer API token is a back end sending its users' " +
			"events, and its User-Agent and address are neither filtered on nor stored. An event sent again " +
			"in a later request with the same `event_id` and `time` is counted as stored again and kept once " +
			"in the warehouse. When every item is invalid the answer is a 400 problem.",
		Tag:       "events",
		Request:   []EventInput{},
		Responses: map[int]any{fiber.StatusAccepted: Result{}, fiber.StatusBadRequest: nil, fiber.StatusServiceUnavailable: nil},
		BodyLimit: m.cfg.BodyLimit,
	}, m.postEvents)
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/t.js",
		Summary:   "The analytics tracker script",
		Tag:       "events",
		Responses: map[int]any{fiber.StatusOK: web.Body{ContentType: "text/javascript"}, fiber.StatusNotModified: nil},
	}, trackerHandler)
}

// Start checks the events table against the gate's column list and starts
// the drainer.
func (m *Module) Start(ctx context.Context) error {
	if err := m.checkSchema(ctx); err != nil {
		return err
	}
	var err error
	m.startOnce.Do(func() {
		// The drainer outlives the request that started it.
		m.started.Store(true)
		err = m.bg.Start(ctx, func(ctx context.Context) {
			defer close(m.done)
			m.drain(ctx)
		})
	})
	return err
}

// Stop drains every spooled event it can into the warehouse and closes the
// spool. When ctx ends first the rest stays in the spool for the next
// start.
func (m *Module) Stop(ctx context.Context) error {
	var err error
	m.stopOnce.Do(func() {
		close(m.stopping)
		if !m.started.Load() {
			// Never started: nothing drains.
			err = m.spool.Close()
			return
		}
		select {
		case <-m.done:
			// The drain has ended on its own; this only releases the
			// group, whose goroutine has returned or is returning.
			_ = m.bg.Stop(context.WithoutCancel(ctx))
		case <-ctx.Done():
			// Cancelling the drainer's context cuts the drain short; what
			// is left stays spooled. Stop does not wait for it to return.
			_ = m.bg.Stop(ctx)
			err = fmt.Errorf("stop events: drain cut short, the rest stays spooled: %w", ctx.Err())
		}
	})
	return err
}

// Settle returns once every event acknowledged before the call is in the
// warehouse. It starts the drainer when the module was not started (a
// one-shot command), so that what a spool kept from an earlier run is
// delivered too. Access exports and erasures settle first: an event the
// subject sent a moment ago is exported, and erased rather than stored
// after the erasure.
func (m *Module) Settle(ctx context.Context) error {
	if !m.started.Load() {
		if err := m.Start(ctx); err != nil {
			return fmt.Errorf("settle events: %w", err)
		}
	}
	return m.Flush(ctx)
}

// Flush waits until every event accepted before the call is in the
// warehouse, or ctx ends. The drainer must be running (see Start).
func (m *Module) Flush(ctx context.Context) error {
	target := m.spool.Durable()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for m.spool.Committed().Less(target) {
		// Ask the drainer not to wait for a full batch.
		select {
		case m.flushReq <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush events: %w", ctx.Err())
		case <-m.done:
			return errors.New("flush events: the drainer has stopped")
		case <-tick.C:
		}
	}
	return nil
}

// checkSchema verifies that the events table has every column the gate
// writes, each with the category the gate clears it by.
func (m *Module) checkSchema(ctx context.Context) error {
	type col struct {
		Name    string `ch:"name"`
		Comment string `ch:"comment"`
	}
	var cols []col
	err := m.deps.Warehouse.Select(ctx, &cols,
		"SELECT name, comment FROM system.columns WHERE database = currentDatabase() AND table = {table:String}",
		warehouse.Named("table", m.cfg.Table))
	if err != nil {
		return fmt.Errorf("events: read %s schema: %w", m.cfg.Table, err)
	}
	have := map[string]string{}
	for _, c := range cols {
		cat, _, _ := cutComma(c.Comment)
		have[c.Name] = cat
	}
	var problems []string
	for _, c := range columns {
		got, ok := have[c.name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("column %s is missing", c.name))
		case got != c.category:
			problems = append(problems, fmt.Sprintf("column %s is tagged %q, the consent gate treats it as %q", c.name, got, c.category))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("events: table %s does not match the consent gate (migrate the warehouse): %v", m.cfg.Table, problems)
	}
	return nil
}

func cutComma(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

var (
	_ module.Module  = (*Module)(nil)
	_ module.Starter = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)
