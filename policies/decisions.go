package policies

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/stewardhq/steward/internal/ids"
)

// AccessInput asks whether Role may perform Action on data of Categories.
type AccessInput struct {
	Role string
	// Action is read, list, update, delete, export or audit.
	Action string
	// Categories are the category keys of the columns involved.
	Categories []string
	// SubjectOwner is true when the caller is the subject the row is about.
	SubjectOwner bool
}

// AccessDecision answers an AccessInput.
type AccessDecision struct {
	// Allow is true when the action may go ahead. For read, list, export
	// and audit it may go ahead with the Redact categories left out; for
	// update and delete only when nothing is redacted.
	Allow bool `json:"allow"`
	// Redact lists the requested categories the role may not reach.
	Redact []string `json:"redact"`
	// Permitted lists the requested categories the role may reach.
	Permitted []string `json:"permitted"`
	// OwnOnly is true when the role reaches only the caller's own rows, so
	// a list must be filtered to them.
	OwnOnly bool   `json:"own_only"`
	Reason  string `json:"reason"`
	Stamp
}

// RetentionRule says how long data of a category is kept.
type RetentionRule struct {
	Category string `json:"category"`
	Known    bool   `json:"known"`
	// Duration is an ISO 8601 period, account_lifetime or row_lifetime.
	Duration string `json:"duration"`
	// From names the event the period counts from.
	From string `json:"from"`
	// Action is delete or anonymize.
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Flag names why a key has no rule (unknown_category, group_category,
	// invalid_input); empty when it has one.
	Flag string `json:"flag,omitempty"`
	Stamp
}

// Expires returns when data whose period started at start reaches the end
// of its retention. It returns false for data kept for the account's or the
// row's lifetime, which has no date of its own.
func (r RetentionRule) Expires(start time.Time) (time.Time, bool) {
	p, err := ParsePeriod(r.Duration)
	if err != nil {
		return time.Time{}, false
	}
	return p.AddTo(start), true
}

// ExportDecision says whether an access request exports a category.
type ExportDecision struct {
	Category string `json:"category"`
	Include  bool   `json:"include"`
	// Reason says why the data is exported, or why it is withheld.
	Reason string `json:"reason"`
	Flag   string `json:"flag,omitempty"`
	Stamp
}

// ErasureDecision says what an erasure request does to a category.
type ErasureDecision struct {
	Category string `json:"category"`
	// Action is delete, anonymize or keep; review for a key without a
	// rule.
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Until is "<period> from <event>" for kept and anonymized data.
	Until string `json:"until"`
	Flag  string `json:"flag,omitempty"`
	Stamp
}

// Consent purposes the gate knows.
const (
	PurposeNecessary  = "necessary"
	PurposeFunctional = "functional"
	PurposeAnalytics  = "analytics"
	PurposeMarketing  = "marketing"
)

// How the consent gate stores an event.
const (
	StoreDrop      = "drop"
	StoreMinimized = "minimized"
	StoreFull      = "full"
)

// ConsentInput describes one analytics event and the visitor's consent.
type ConsentInput struct {
	// PurposesGranted are the purposes the visitor consented to; necessary
	// is always in effect and unknown names are ignored.
	PurposesGranted []string
	EventType       string
	// GPC is true when the request carried the Global Privacy Control
	// signal (Sec-GPC: 1).
	GPC bool
	// ExplicitMarketing is true when the visitor opted into marketing
	// themself while sending GPC, which overrides the signal.
	ExplicitMarketing bool
}

// ConsentDecision says whether and how an analytics event is stored.
type ConsentDecision struct {
	// Store is drop, minimized or full.
	Store string `json:"store"`
	// Strip lists the field categories to remove before storing.
	Strip []string `json:"strip"`
	// Transform maps field categories to the reduction to apply:
	// path_only, host_only, truncate or family_only.
	Transform map[string]string `json:"transform"`
	// Purposes are the purposes in effect after GPC.
	Purposes []string `json:"purposes"`
	Reason   string   `json:"reason"`
	Stamp
}

// Access decides whether a role may perform an action on the categories.
func (e *Engine) Access(ctx context.Context, in AccessInput) (AccessDecision, error) {
	key := accessKey{role: in.Role, action: in.Action, categories: setKey(in.Categories), owner: in.SubjectOwner}
	var cats []string
	return evaluate(ctx, e, PolicyAccess, func(c *caches) *cache[accessKey, AccessDecision] { return c.access },
		func(*stewardData) accessKey { return key },
		func() any {
			cats = sortedStrings(in.Categories)
			return accessInput{Action: in.Action, Categories: cats, Role: in.Role, SubjectOwner: in.SubjectOwner}
		},
		func(t *tables) (AccessDecision, any, bool) {
			return t.access(in.Role, in.Action, cats, in.SubjectOwner)
		})
}

// Retention returns the retention rule of a category. A key that is not a
// storable category gives an error wrapping ErrUnknownCategory or
// ErrGroupCategory, with the policy's answer.
func (e *Engine) Retention(ctx context.Context, category string) (RetentionRule, error) {
	d, err := evaluate(ctx, e, PolicyRetention, func(c *caches) *cache[string, RetentionRule] { return c.retention }, categoryKey(category), categoryInput(category),
		func(t *tables) (RetentionRule, any, bool) { return t.retention(category) })
	if err == nil {
		err = flagError("retention", category, d.Flag)
	}
	return d, err
}

// Export decides whether an access request exports a category. A key that
// is not a storable category gives an error wrapping ErrUnknownCategory or
// ErrGroupCategory, with the policy's answer (not exported).
func (e *Engine) Export(ctx context.Context, category string) (ExportDecision, error) {
	d, err := evaluate(ctx, e, PolicyExport, func(c *caches) *cache[string, ExportDecision] { return c.export }, categoryKey(category), categoryInput(category),
		func(t *tables) (ExportDecision, any, bool) { return t.export(category) })
	if err == nil {
		err = flagError("export", category, d.Flag)
	}
	return d, err
}

// Erasure decides what an erasure request does to a category in a store
// (StoreSQL or StoreWarehouse). A key that is not a storable category
// gives an error wrapping ErrUnknownCategory or ErrGroupCategory, with the
// policy's answer (review).
func (e *Engine) Erasure(ctx context.Context, category, store string) (ErasureDecision, error) {
	d, err := evaluate(ctx, e, PolicyErasure, func(c *caches) *cache[string, ErasureDecision] { return c.erasure },
		categoryKey(store+"\x00"+category),
		func() any { return erasureInput{Category: category, Store: store} },
		func(t *tables) (ErasureDecision, any, bool) { return t.erasure(category, store) })
	if err == nil {
		err = flagError("erasure", category, d.Flag)
	}
	return d, err
}

// Consent decides whether and how an analytics event is stored.
//
// Purposes and event types come from visitors. Before the cache is
// consulted, purposes the consent map does not know are dropped and an
// unknown event type is replaced by "" — the policy ignores the first and
// drops the second anyway — so junk input shares one cache entry instead of
// costing an evaluation per request and evicting real answers.
func (e *Engine) Consent(ctx context.Context, in ConsentInput) (ConsentDecision, error) {
	var purposes []string
	event := in.EventType
	keyOf := func(d *stewardData) consentKey {
		purposes = knownPurposes(in.PurposesGranted, d.ConsentMap.Purposes)
		if _, ok := d.ConsentMap.EventTypes[event]; !ok {
			event = ""
		}
		return consentKey{purposes: setKey(purposes), event: event, gpc: in.GPC, explicitMarketing: in.ExplicitMarketing}
	}
	return evaluate(ctx, e, PolicyConsent, func(c *caches) *cache[consentKey, ConsentDecision] { return c.consent }, keyOf,
		func() any {
			purposes = sortedStrings(purposes)
			return consentInput{EventType: event, ExplicitMarketing: in.ExplicitMarketing, GPC: in.GPC, PurposesGranted: purposes}
		},
		func(t *tables) (ConsentDecision, any, bool) {
			return t.consent(purposes, event, in.GPC, in.ExplicitMarketing)
		})
}

// knownPurposes returns the purposes that are keys of known, without
// copying when all are.
func knownPurposes[V any](list []string, known map[string]V) []string {
	for i, p := range list {
		if _, ok := known[p]; ok {
			continue
		}
		out := slices.Clone(list[:i])
		for _, q := range list[i+1:] {
			if _, ok := known[q]; ok {
				out = append(out, q)
			}
		}
		return out
	}
	return list
}

// The stores an erasure decision is asked for: the SQL store keeps the
// records, the warehouse analytics copies of them.
const (
	StoreSQL       = "sql"
	StoreWarehouse = "warehouse"
)

func categoryKey(category string) func(*stewardData) string {
	return func(*stewardData) string { return category }
}

func categoryInput(category string) func() any {
	return func() any {
		return struct {
			Category string `json:"category"`
		}{category}
	}
}

func flagError(what, category, flag string) error {
	switch flag {
	case "":
		return nil
	case "group_category":
		return fmt.Errorf("%s: category %q: %w", what, category, ErrGroupCategory)
	default:
		return fmt.Errorf("%s: category %q: %w", what, category, ErrUnknownCategory)
	}
}

// stamped is a decision type that carries a Stamp.
type stamped[V any] interface {
	*V
	setStamp(Stamp)
}

// evaluate answers from the cache of the current revision, or decides with
// the compiled tables of the revision, or evaluates the prepared query of
// policy; it caches the answer and records the decision.
//
// key runs under the engine's read lock, so it may read the current data to
// canonicalize the input; input runs only on a cache miss, before compiled,
// which decides on the same input (it returns false when only OPA may
// answer, see compiled.go).
func evaluate[K comparable, V any, PV stamped[V]](ctx context.Context, e *Engine, policy string,
	pick func(*caches) *cache[K, V], keyOf func(*stewardData) K, input func() any,
	compiled func(*tables) (V, any, bool)) (V, error) {
	e.mu.RLock()
	c := pick(e.caches)
	key := keyOf(e.data)
	if v, ok := c.get(key); ok {
		e.mu.RUnlock()
		return v, nil
	}
	var v V
	var rec Decision
	var err error
	in := input()
	if d, result, ok := compiledDecision(e.tables, compiled); ok {
		v = d
		rec, err = e.record(policy, in, result, PV(&v))
	} else {
		rec, err = e.eval(ctx, policy, in, PV(&v))
	}
	if err == nil {
		c.put(owned(key), v)
	}
	e.mu.RUnlock()
	if err != nil {
		return v, err
	}
	if e.opts.Recorder != nil {
		e.opts.Recorder(ctx, rec)
	}
	return v, nil
}

func compiledDecision[V any](t *tables, compiled func(*tables) (V, any, bool)) (V, any, bool) {
	if t == nil {
		var zero V
		return zero, nil, false
	}
	return compiled(t)
}

// eval runs the prepared query of policy on input, decodes the answer into
// out and stamps it. The caller holds mu for reading.
func (e *Engine) eval(ctx context.Context, policy string, input any, out interface{ setStamp(Stamp) }) (Decision, error) {
	rs, err := e.queries[policy].Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return Decision{}, fmt.Errorf("evaluate %s: %w", policy, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Decision{}, fmt.Errorf("evaluate %s: the policy gave no decision", policy)
	}
	result, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return Decision{}, fmt.Errorf("encode %s decision: %w", policy, err)
	}
	if err := json.Unmarshal(result, out); err != nil {
		return Decision{}, fmt.Errorf("decode %s decision: %w", policy, err)
	}
	return e.stamp(policy, input, result, out)
}

// record encodes a compiled decision the way eval encodes the policy's
// answer and stamps it. The caller holds mu for reading.
func (e *Engine) record(policy string, input, result any, out interface{ setStamp(Stamp) }) (Decision, error) {
	// result is a struct whose fields are in the order of their JSON
	// names, so it encodes as the map OPA's answer becomes: encoding/json
	// writes map keys sorted.
	raw, err := json.Marshal(result)
	if err != nil {
		return Decision{}, fmt.Errorf("encode %s decision: %w", policy, err)
	}
	return e.stamp(policy, input, raw, out)
}

// stamp makes the decision record of an answer and stamps out with it.
func (e *Engine) stamp(policy string, input any, result []byte, out interface{ setStamp(Stamp) }) (Decision, error) {
	// The input types list their fields in the order of their JSON names,
	// so equal inputs give equal digests, the same as the maps of sorted
	// keys they replace gave.
	canonical, err := json.Marshal(input)
	if err != nil {
		return Decision{}, fmt.Errorf("encode %s input: %w", policy, err)
	}
	sum := sha256.Sum256(canonical)
	rec := Decision{
		ID:          ids.Ordered(),
		Policy:      policy,
		Revision:    e.revision,
		InputDigest: hex.EncodeToString(sum[:]),
		Result:      result,
		At:          e.opts.Now().UTC(),
	}
	out.setStamp(Stamp{Revision: rec.Revision, DecisionID: rec.ID})
	return rec, nil
}

// setKey returns a key that is equal for lists holding the same set of
// strings, whatever their order and repetitions, and differs otherwise.
// Each element is written with its length in front, so no element can
// forge a separator: purposes come from visitors, and ["a,b"] must never
// share a cache entry with ["a", "b"]. It runs on every cached decision, so
// it sorts small lists in a stack buffer and allocates only the key.
func setKey(list []string) string {
	if len(list) == 0 {
		return ""
	}
	s := list
	if !isSortedSet(list) {
		var buf [8]string
		s = buf[:0]
		if len(list) > len(buf) {
			s = make([]string, 0, len(list))
		}
		s = append(s, list...)
		slices.Sort(s)
		s = slices.Compact(s)
	}
	n := 0
	for _, v := range s {
		n += len(v) + 4
	}
	var b strings.Builder
	b.Grow(n)
	var num [20]byte
	for _, v := range s {
		b.Write(strconv.AppendInt(num[:0], int64(len(v)), 10))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String()
}

func isSortedSet(list []string) bool {
	for i := 1; i < len(list); i++ {
		if list[i-1] >= list[i] {
			return false
		}
	}
	return true
}

// sortedStrings returns the list sorted without repetitions, as policy
// input. Feeding the policy the same form the cache key uses makes a cached
// answer equal to a fresh one.
func sortedStrings(list []string) []string {
	if len(list) == 0 {
		// An empty array, not null: the policies test is_array.
		return []string{}
	}
	if isSortedSet(list) {
		return list
	}
	s := slices.Clone(list)
	slices.Sort(s)
	return slices.Compact(s)
}

// owned returns a copy of key whose strings share no memory with the
// caller's. A cached key lives on, and a caller's string may not: Fiber
// hands out strings that point into a request buffer the next request
// overwrites, and a key changing inside the map would answer one role
// with another's decision.
func owned[K comparable](key K) K {
	switch k := any(key).(type) {
	case string:
		return any(strings.Clone(k)).(K)
	case accessKey:
		k.role, k.action, k.categories = strings.Clone(k.role), strings.Clone(k.action), strings.Clone(k.categories)
		return any(k).(K)
	case consentKey:
		k.purposes, k.event = strings.Clone(k.purposes), strings.Clone(k.event)
		return any(k).(K)
	}
	return key
}

// The inputs of the policies. Each lists its fields in the order of their
// JSON names, so its encoding is canonical (see stamp).
type (
	accessInput struct {
		Action       string   `json:"action"`
		Categories   []string `json:"categories"`
		Role         string   `json:"role"`
		SubjectOwner bool     `json:"subject_owner"`
	}
	consentInput struct {
		EventType         string   `json:"event_type"`
		ExplicitMarketing bool     `json:"explicit_marketing"`
		GPC               bool     `json:"gpc"`
		PurposesGranted   []string `json:"purposes_granted"`
	}
	erasureInput struct {
		Category string `json:"category"`
		Store    string `json:"store"`
	}
)

type accessKey struct {
	role, action, categories string
	owner                    bool
}

type consentKey struct {
	purposes, event        string
	gpc, explicitMarketing bool
}

// caches hold the answers of one revision; a data change replaces them.
type caches struct {
	access    *cache[accessKey, AccessDecision]
	consent   *cache[consentKey, ConsentDecision]
	retention *cache[string, RetentionRule]
	export    *cache[string, ExportDecision]
	erasure   *cache[string, ErasureDecision]
}

func newCaches(size int) *caches {
	return &caches{
		access:    newCache[accessKey, AccessDecision](size),
		consent:   newCache[consentKey, ConsentDecision](size),
		retention: newCache[string, RetentionRule](size),
		export:    newCache[string, ExportDecision](size),
		erasure:   newCache[string, ErasureDecision](size),
	}
}

// cache is a bounded map. When full it drops an arbitrary entry: the key
// space (roles × actions × category sets, consent states × event types) is
// small, so the cache rarely fills, and a simple bound is enough to keep a
// caller that sends unbounded distinct inputs from growing it without
// limit. A nil cache holds nothing.
type cache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]V
	max int
}

func newCache[K comparable, V any](size int) *cache[K, V] {
	if size < 0 {
		return nil
	}
	return &cache[K, V]{m: make(map[K]V), max: size}
}

func (c *cache[K, V]) get(k K) (V, bool) {
	if c == nil {
		var zero V
		return zero, false
	}
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

func (c *cache[K, V]) put(k K, v V) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}

func (c *cache[K, V]) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
