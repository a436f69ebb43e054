package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Compiled decisions.
//
// Evaluating a prepared query costs OPA a few hundred microseconds and about
// a thousand allocations for an access decision: the evaluator builds every
// intermediate set (prefixes of each key, the grant prefixes of the role,
// the denied keys) as AST terms, walks the role's grants once per requested
// category, and the answer then goes through ast.JSON and a JSON round trip
// into the Go type. Most of that work depends on the data only, not on the
// input, and the data changes once per revision.
//
// So when a revision is installed the engine also builds tables from the
// data: for every role, action and category key whether the role reaches
// the key (access.rego's role_permitted before the owner and action checks),
// for every action and key whether a subject reaches their own data
// (own_permitted), the consent map with what a stored event keeps under
// each set of purposes in effect, and the safety data ready to match
// (safety.go). A decision then costs a few map look-ups and the
// explanation; the answer and the decision record are the ones the Rego
// gives.
//
// The Rego stays the source of truth. The tables and the code below mirror
// the embedded policies rule by rule, and TestCompiledMatchesRego and
// TestCompiledSafetyMatchesRego compare them with OPA's evaluation over
// every role, action, category, consent state and generated prompts on
// several data sets. They are used only when the policies in force are the
// embedded ones, byte for byte: a bundle that changes a Rego file is
// evaluated by OPA alone. They are also left out for data the Go types
// cannot tell apart from something else (a JSON null, an export rule
// without include), and for input that is not valid UTF-8 where the answer
// repeats the input, since the JSON round trip of OPA's answer would change
// those strings; OPA answers those.

// embeddedPolicySum is the digest loadModules gives for the embedded
// policies.
var embeddedPolicySum = sync.OnceValue(func() []byte {
	_, sum, err := loadModules(sources, false)
	if err != nil {
		// The embedded policies always load (New would fail first); no
		// digest matches nil, so nothing is compiled if they did not.
		return nil
	}
	return sum
})

// writeActions are access.rego's write_actions: an update or a delete is
// allowed only when nothing is redacted. roleActions is access.rego's
// actions.
var writeActions = []string{"update", "delete"}

// tables are the decisions' view of one revision's data.
type tables struct {
	taxonomy map[string]Category
	roles    map[string]*roleTable
	// own[action][key] is true when a subject reaches their own data of
	// key with action through the user role's grants (own_permitted).
	own  map[string]map[string]bool
	gate *consentTable
	// safety is nil when a safety term or pattern does not compile, which
	// validation refuses first; OPA then checks prompts.
	safety *safetyTable
}

type roleTable struct {
	ownOnly bool
	// reach[action][key] is true when a grant of the role covers key for
	// action and no deny rule removes it (role_permitted, before the owner
	// and action checks).
	reach map[string]map[string]bool
}

type consentTable struct {
	purposes  map[string]string // purpose -> the table's own copy of its name
	always    []string          // the purposes always granted
	gpcBlocks []string
	events    map[string]string // event type -> purpose it requires
	fieldKeys []string          // sorted
	fields    map[string][]consentTier
	// bit numbers the purposes, and stored[mask] holds what a stored
	// event keeps under the purposes whose bits mask sets: the fields
	// depend on the purposes in effect only. Nil when there are more
	// purposes than maxMaskedPurposes; the fields are then worked out
	// per decision.
	bit     map[string]uint
	stored  []*consentFields
	dropped *consentFields
}

// maxMaskedPurposes bounds the table of stored events at 1024 entries.
const maxMaskedPurposes = 10

type consentTier struct{ requires, transform string }

// consentFields is what the gate does to the fields of an event: tier_index
// turned into the fields stripped, the transforms and the number of fields
// kept in a poorer form than their richest. Decisions share its slice and
// map, as cached decisions share theirs.
type consentFields struct {
	strip     []string
	transform map[string]string
	reduced   int
	// transformJSON is transform as encoding/json writes it.
	transformJSON json.RawMessage
}

// buildTables builds the tables of d, or returns nil when the compiled
// decisions must not be used for it: the policies in force (digest
// policySum) are not the embedded ones, or the data holds a value the Go
// types read differently from the Rego (see plainData).
func buildTables(d *stewardData, policySum []byte) *tables {
	if !d.plain || policySum == nil || !bytes.Equal(policySum, embeddedPolicySum()) {
		return nil
	}
	keys := sortedKeys(d.Taxonomy)
	prefixes := make(map[string][]string, len(keys))
	for _, k := range keys {
		prefixes[k] = keyPrefixes(k)
	}
	t := &tables{taxonomy: d.Taxonomy, roles: make(map[string]*roleTable, len(d.Roles)), own: map[string]map[string]bool{}}
	for name, r := range d.Roles {
		rt := &roleTable{ownOnly: r.OwnOnly, reach: make(map[string]map[string]bool, len(roleActions))}
		deny := toSet(r.Deny)
		denyID := toSet(r.DenyIdentifiability)
		for _, a := range roleActions {
			grant, exported := map[string]bool{}, map[string]bool{}
			for _, g := range r.Grants {
				if !slices.Contains(g.Actions, a) {
					continue
				}
				for _, p := range g.Categories {
					if g.ExportedOnly {
						exported[p] = true
					} else {
						grant[p] = true
					}
				}
			}
			reach := map[string]bool{}
			for _, k := range keys {
				c, ps := d.Taxonomy[k], prefixes[k]
				granted := anyIn(ps, grant) || (anyIn(ps, exported) && c.Export.Include)
				if granted && !anyIn(ps, deny) && !denyID[c.Identifiability] {
					reach[k] = true
				}
			}
			rt.reach[a] = reach
		}
		t.roles[name] = rt
	}
	if user, ok := d.Roles["user"]; ok {
		for _, g := range user.Grants {
			cover := toSet(g.Categories)
			for _, a := range g.Actions {
				if t.own[a] == nil {
					t.own[a] = map[string]bool{}
				}
				for _, k := range keys {
					if anyIn(prefixes[k], cover) && (!g.ExportedOnly || d.Taxonomy[k].Export.Include) {
						t.own[a][k] = true
					}
				}
			}
		}
	}
	t.gate = buildConsentTable(&d.ConsentMap)
	if d.safety != nil {
		t.safety = buildSafetyTable(d.safety)
	}
	return t
}

func buildConsentTable(m *consentMap) *consentTable {
	ct := &consentTable{
		purposes:  make(map[string]string, len(m.Purposes)),
		gpcBlocks: m.GPCBlocks,
		events:    make(map[string]string, len(m.EventTypes)),
		fieldKeys: sortedKeys(m.Fields),
		fields:    make(map[string][]consentTier, len(m.Fields)),
	}
	for p, spec := range m.Purposes {
		ct.purposes[p] = p
		if spec.AlwaysGranted {
			ct.always = append(ct.always, p)
		}
	}
	for e, spec := range m.EventTypes {
		ct.events[e] = spec.Requires
	}
	for f, spec := range m.Fields {
		for _, tier := range spec.Tiers {
			ct.fields[f] = append(ct.fields[f], consentTier{tier.Requires, tier.Transform})
		}
	}
	ct.dropped = newConsentFields(slices.Clone(ct.fieldKeys), map[string]string{}, 0)
	if len(m.Purposes) <= maxMaskedPurposes {
		names := sortedKeys(m.Purposes)
		ct.bit = make(map[string]uint, len(names))
		for i, p := range names {
			ct.bit[p] = uint(i)
		}
		ct.stored = make([]*consentFields, 1<<len(names))
		for mask := range ct.stored {
			var effective []string
			for i, p := range names {
				if mask&(1<<i) != 0 {
					effective = append(effective, p)
				}
			}
			ct.stored[mask] = ct.storedFields(effective)
		}
	}
	return ct
}

// storedFields works out what a stored event keeps when the purposes in
// effect are effective.
func (ct *consentTable) storedFields(effective []string) *consentFields {
	strip, transform, reduced := []string{}, map[string]string{}, 0
	for _, f := range ct.fieldKeys {
		i := slices.IndexFunc(ct.fields[f], func(tier consentTier) bool { return slices.Contains(effective, tier.requires) })
		switch {
		case i < 0:
			strip = append(strip, f)
			continue
		case i > 0:
			reduced++
		}
		if tr := ct.fields[f][i].transform; tr != TransformNone {
			transform[f] = tr
		}
	}
	return newConsentFields(strip, transform, reduced)
}

func newConsentFields(strip []string, transform map[string]string, reduced int) *consentFields {
	raw, err := json.Marshal(transform)
	if err != nil {
		// A map of strings always encodes.
		panic(err)
	}
	return &consentFields{strip: strip, transform: transform, reduced: reduced, transformJSON: raw}
}

// keyPrefixes returns the keys that cover key in a grant or a deny rule:
// the part before each dot, and key itself (access.rego's prefixes).
func keyPrefixes(key string) []string {
	var out []string
	for i := 0; i < len(key); i++ {
		if key[i] == '.' {
			out = append(out, key[:i])
		}
	}
	return append(out, key)
}

func toSet(list []string) map[string]bool {
	s := make(map[string]bool, len(list))
	for _, v := range list {
		s[v] = true
	}
	return s
}

func anyIn(list []string, set map[string]bool) bool {
	for _, v := range list {
		if set[v] {
			return true
		}
	}
	return false
}

// plainData reports whether the data document holds nothing the Go types
// read differently from the Rego: a JSON null (which Go reads as the zero
// value and Rego as a value that is neither true nor false), or an export
// rule without include (false in Go, undefined in Rego).
func plainData(canonical []byte) bool {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(canonical))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return false
	}
	if tax, ok := doc["taxonomy"].(map[string]any); ok {
		for _, c := range tax {
			c, ok := c.(map[string]any)
			if !ok {
				return false
			}
			if exp, ok := c["export"].(map[string]any); ok {
				if _, ok := exp["include"]; !ok {
					return false
				}
			}
		}
	}
	for _, name := range []string{"taxonomy", "roles", "consent_map"} {
		if hasNull(doc[name]) {
			return false
		}
	}
	return true
}

func hasNull(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		for _, x := range v {
			if hasNull(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasNull(x) {
				return true
			}
		}
	}
	return false
}

// validUTF8 reports whether every string is valid UTF-8. The Rego answer
// reaches Go through JSON, which replaces invalid bytes, so only OPA gives
// the same answer for such input.
func validUTF8(list ...string) bool {
	for _, s := range list {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// access mirrors access.rego. cats is the sorted set of requested keys, the
// form the policy receives.
func (t *tables) access(role, action string, cats []string, owner bool) (AccessDecision, any, bool) {
	if !validUTF8(role, action) || !validUTF8(cats...) {
		return AccessDecision{}, nil, false
	}
	d := AccessDecision{Redact: []string{}, Permitted: []string{}}
	rt, roleOK := t.roles[role]
	actionOK := slices.Contains(roleActions, action)
	write := slices.Contains(writeActions, action)
	ownerOK := false
	if roleOK {
		d.OwnOnly = rt.ownOnly
		ownerOK = !rt.ownOnly || owner
	}
	var reach, own map[string]bool
	if ownerOK && actionOK {
		reach = rt.reach[action]
	}
	if roleOK && owner {
		own = t.own[action]
	}
	var personalRequested, personalPermitted int
	var unknown []string
	for _, c := range cats {
		cat, known := t.taxonomy[c]
		c = t.ownKey(c)
		permitted := known && (reach[c] || own[c])
		if permitted {
			d.Permitted = append(d.Permitted, c)
		} else {
			d.Redact = append(d.Redact, c)
		}
		switch {
		case !known:
			unknown = append(unknown, c)
		case cat.Personal:
			personalRequested++
			if permitted {
				personalPermitted++
			}
		}
	}
	readLike := actionOK && !write
	d.Allow = readLike && personalPermitted > 0 ||
		readLike && len(d.Permitted) > 0 && personalRequested == 0 ||
		write && len(d.Permitted) > 0 && len(d.Redact) == 0
	note := ""
	if len(unknown) > 0 {
		note = " (not in the taxonomy: " + strings.Join(unknown, ", ") + ")"
	}
	switch {
	case !roleOK:
		d.Reason = fmt.Sprintf("unknown role %q", role)
	case !actionOK:
		d.Reason = fmt.Sprintf("unknown action %q", action)
	case len(cats) == 0:
		d.Reason = "no category requested"
	case !ownerOK:
		d.Reason = "role " + role + " may only reach its own rows"
	case d.Allow && len(d.Redact) == 0:
		d.Reason = "role " + role + " may " + action + " every requested category"
	case d.Allow:
		d.Reason = fmt.Sprintf("role %s may %s %d of %d requested categories; the rest are redacted%s", role, action, len(d.Permitted), len(cats), note)
	case write && len(d.Permitted) > 0:
		d.Reason = "role " + role + " may not " + action + " every requested category, so the write is refused" + note
	default:
		d.Reason = "role " + role + " may not " + action + " any requested category" + note
	}
	return d, accessResult{d.Allow, d.OwnOnly, d.Permitted, d.Reason, d.Redact}, true
}

// consent mirrors consent.rego. purposes is the sorted set of granted
// purposes, the form the policy receives.
func (t *tables) consent(purposes []string, event string, gpc, explicitMarketing bool) (ConsentDecision, any, bool) {
	if !validUTF8(event) || !validUTF8(purposes...) {
		return ConsentDecision{}, nil, false
	}
	ct := t.gate
	var granted []string
	for _, p := range purposes {
		// The table's copy of the name, not the caller's: the decision
		// is cached, and the caller's string may point into a buffer
		// reused after the call.
		if name, ok := ct.purposes[p]; ok && !slices.Contains(granted, name) {
			granted = append(granted, name)
		}
	}
	for _, p := range ct.always {
		if !slices.Contains(granted, p) {
			granted = append(granted, p)
		}
	}
	var removed []string
	if gpc && !explicitMarketing {
		for _, p := range ct.gpcBlocks {
			if slices.Contains(granted, p) && !slices.Contains(removed, p) {
				removed = append(removed, p)
			}
		}
	}
	effective := make([]string, 0, len(granted))
	var mask uint
	for _, p := range granted {
		if !slices.Contains(removed, p) {
			effective = append(effective, p)
			mask |= 1 << ct.bit[p]
		}
	}
	slices.Sort(effective)
	slices.Sort(removed)

	requires, known := ct.events[event]
	stored := known && slices.Contains(effective, requires)
	fields := ct.dropped
	switch {
	case stored && ct.stored != nil:
		fields = ct.stored[mask]
	case stored:
		fields = ct.storedFields(effective)
	}
	d := ConsentDecision{Strip: fields.strip, Transform: fields.transform, Purposes: effective}
	switch {
	case !stored:
		d.Store = StoreDrop
	case len(d.Strip)+fields.reduced > 0:
		d.Store = StoreMinimized
	default:
		d.Store = StoreFull
	}
	note := ""
	if len(removed) > 0 {
		terms := make([]*ast.Term, len(removed))
		for i, p := range removed {
			terms[i] = ast.StringTerm(p)
		}
		// sprintf's %v writes an array as the Rego term it is.
		note = "; Global Privacy Control signal without an explicit opt-in: " + ast.NewArray(terms...).String() + " not in effect"
	}
	switch {
	case event == "":
		d.Reason = "missing or unknown event type: dropped"
	case !known:
		d.Reason = fmt.Sprintf("unknown event type %q: dropped", event)
	case !stored:
		d.Reason = "event type " + event + " needs " + requires + " consent, which is not in effect: dropped"
	case d.Store == StoreMinimized:
		d.Reason = fmt.Sprintf("stored minimized: %d field categories stripped, %d reduced%s", len(d.Strip), fields.reduced, note)
	default:
		d.Reason = "every field allowed by the purposes in effect: stored full" + note
	}
	return d, consentResult{d.Purposes, d.Reason, d.Store, d.Strip, fields.transformJSON}, true
}

// ownKey returns key as a string a decision may keep: the taxonomy's own
// for a known key, a copy otherwise. Decisions are cached, and a caller's
// string may point into a buffer reused after the call (Fiber hands out
// such strings), as owned explains for cache keys.
func (t *tables) ownKey(key string) string {
	if c, ok := t.taxonomy[key]; ok {
		return c.Key
	}
	return strings.Clone(key)
}

// storable returns the category of key when a column may be tagged with
// it, or the flag lib.rego gives a key that may not.
func (t *tables) storable(key string) (Category, string) {
	c, ok := t.taxonomy[key]
	switch {
	case !ok:
		return c, "unknown_category"
	case c.Group:
		return c, "group_category"
	}
	return c, ""
}

// retention mirrors retention.rego.
func (t *tables) retention(key string) (RetentionRule, any, bool) {
	if !validUTF8(key) {
		return RetentionRule{}, nil, false
	}
	key = t.ownKey(key)
	c, flag := t.storable(key)
	if flag != "" {
		r := RetentionRule{Category: key, Flag: flag, Reason: key + " has no retention rule (" + flag + "): fix the column's tag"}
		return r, retentionResult{Category: key, Flag: flag, Reason: r.Reason}, true
	}
	r := RetentionRule{
		Category: key,
		Known:    true,
		Duration: c.Retention.Duration,
		From:     c.Retention.From,
		Action:   c.Retention.Action,
		Reason:   key + ": " + c.Retention.Duration + " from " + c.Retention.From + ", then " + c.Retention.Action,
	}
	return r, retentionResult{r.Action, key, r.Duration, "", r.From, true, r.Reason}, true
}

// export mirrors export.rego.
func (t *tables) export(key string) (ExportDecision, any, bool) {
	if !validUTF8(key) {
		return ExportDecision{}, nil, false
	}
	key = t.ownKey(key)
	c, flag := t.storable(key)
	if flag != "" {
		d := ExportDecision{Category: key, Flag: flag, Reason: key + " is not exported (" + flag + "): fix the column's tag"}
		return d, exportResult{Category: key, Flag: flag, Reason: d.Reason}, true
	}
	d := ExportDecision{Category: key, Include: c.Export.Include, Reason: c.Export.WithheldReason}
	if d.Include {
		d.Reason = "personal data of the subject (GDPR Art. 15, 20)"
	}
	return d, exportResult{Category: key, Include: d.Include, Reason: d.Reason}, true
}

// erasure mirrors erasure.rego.
func (t *tables) erasure(key, store string) (ErasureDecision, any, bool) {
	if !validUTF8(key, store) {
		return ErasureDecision{}, nil, false
	}
	key = t.ownKey(key)
	c, flag := t.storable(key)
	var d ErasureDecision
	switch {
	case flag != "":
		d = ErasureDecision{Category: key, Action: ActionReview, Flag: flag, Reason: key + " has no erasure rule (" + flag + "): fix the column's tag"}
		return d, erasureResult{d.Action, key, flag, d.Reason, ""}, true
	case store == StoreWarehouse && c.Personal && c.Erasure.Action != ActionDelete:
		d = ErasureDecision{Category: key, Action: ActionDelete, Reason: "The warehouse holds analytics copies only; what the law makes us keep is kept in the SQL store."}
	default:
		d = ErasureDecision{Category: key, Action: c.Erasure.Action, Reason: c.Erasure.Reason, Until: c.Erasure.Until}
	}
	return d, erasureResult{d.Action, key, "", d.Reason, d.Until}, true
}

// The answers as the policies give them, for the decision record. Each
// lists its fields in the order of their JSON names and leaves out what the
// policy leaves out, so it encodes to the same bytes as OPA's answer (see
// Engine.record). Fields the policies always give are not omitempty: an
// empty string or list is written, as OPA writes it.
type (
	accessResult struct {
		Allow     bool     `json:"allow"`
		OwnOnly   bool     `json:"own_only"`
		Permitted []string `json:"permitted"`
		Reason    string   `json:"reason"`
		Redact    []string `json:"redact"`
	}
	consentResult struct {
		Purposes  []string        `json:"purposes"`
		Reason    string          `json:"reason"`
		Store     string          `json:"store"`
		Strip     []string        `json:"strip"`
		Transform json.RawMessage `json:"transform"`
	}
	// retentionResult has either a rule (action, duration, from, never
	// empty in valid data) or a flag.
	retentionResult struct {
		Action   string `json:"action,omitempty"`
		Category string `json:"category"`
		Duration string `json:"duration,omitempty"`
		Flag     string `json:"flag,omitempty"`
		From     string `json:"from,omitempty"`
		Known    bool   `json:"known"`
		Reason   string `json:"reason"`
	}
	exportResult struct {
		Category string `json:"category"`
		Flag     string `json:"flag,omitempty"`
		Include  bool   `json:"include"`
		Reason   string `json:"reason"`
	}
	erasureResult struct {
		Action   string `json:"action"`
		Category string `json:"category"`
		Flag     string `json:"flag,omitempty"`
		Reason   string `json:"reason"`
		Until    string `json:"until"`
	}
)
