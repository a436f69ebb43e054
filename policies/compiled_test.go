package policies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// decisionPair is two engines over the same policies and data: fast
// decides with the compiled tables, rego asks OPA for every decision. Both
// have their caches off and keep the record of their last decision.
type decisionPair struct {
	fast, rego       *Engine
	fastRec, regoRec *Decision
}

func newDecisionPair(t *testing.T) *decisionPair {
	t.Helper()
	p := &decisionPair{fastRec: &Decision{}, regoRec: &Decision{}}
	keep := func(to *Decision) func(context.Context, Decision) {
		var mu sync.Mutex
		return func(_ context.Context, d Decision) {
			mu.Lock()
			defer mu.Unlock()
			*to = d
		}
	}
	p.fast = newEngine(t, Options{CacheSize: -1, Recorder: keep(p.fastRec)})
	p.rego = newEngine(t, Options{CacheSize: -1, Recorder: keep(p.regoRec), regoOnly: true})
	if p.fast.tables == nil {
		t.Fatal("the engine on the embedded policies has no compiled tables")
	}
	if p.rego.tables != nil {
		t.Fatal("the OPA-only engine has compiled tables")
	}
	return p
}

// setData makes the same change to both engines.
func (p *decisionPair) setData(t *testing.T, path string, value any) {
	t.Helper()
	for _, e := range []*Engine{p.fast, p.rego} {
		if err := e.SetData(t.Context(), path, value); err != nil {
			t.Fatalf("SetData %s: %v", path, err)
		}
	}
	if p.fast.tables == nil {
		t.Fatalf("no compiled tables after SetData %s", path)
	}
}

// same fails unless the two answers, their errors and their decision
// records are equal, apart from the decision ID and time.
func same[V any, PV stamped[V]](t *testing.T, p *decisionPair, in any, fast V, fastErr error, rego V, regoErr error) {
	t.Helper()
	if fmt.Sprint(fastErr) != fmt.Sprint(regoErr) {
		t.Fatalf("%#v: compiled error %v, OPA error %v", in, fastErr, regoErr)
	}
	if reflect.ValueOf(fast).FieldByName("Revision").String() != p.rego.Revision() {
		t.Fatalf("%#v: the compiled answer is not stamped with the revision %s: %+v", in, p.rego.Revision(), fast)
	}
	PV(&fast).setStamp(Stamp{})
	PV(&rego).setStamp(Stamp{})
	if !reflect.DeepEqual(fast, rego) {
		t.Fatalf("%#v:\ncompiled %#v\nOPA      %#v", in, fast, rego)
	}
	f, r := *p.fastRec, *p.regoRec
	if f.Policy != r.Policy || f.Revision != r.Revision || f.InputDigest != r.InputDigest || !bytes.Equal(f.Result, r.Result) {
		t.Fatalf("%#v: records differ:\ncompiled %s %s %s %s\nOPA      %s %s %s %s", in,
			f.Policy, f.Revision, f.InputDigest, f.Result, r.Policy, r.Revision, r.InputDigest, r.Result)
	}
}

// unknownKeys are keys no taxonomy holds, among them a prefix of a real
// key, a key below a real one, one differing in case only and the empty
// key.
var unknownKeys = []string{"user.shoe_size", "user.contact", "user.contact.email.work", "User.Name", "user.", "", "système.opérations"}

// checkEveryDecision compares the engines on every decision kind: access
// for every role and action (and unknown ones) on every key and on
// generated sets of keys, the consent gate on every consent state and
// event type, retention, export and erasure on every key.
func checkEveryDecision(t *testing.T, p *decisionPair) {
	ctx := t.Context()
	keys := append(sortedKeys(p.fast.Taxonomy()), unknownKeys...)

	roles := append(sortedKeys(p.fast.Roles()), "", "auditor")
	actions := append(slices.Clone(roleActions), "", "approve", "READ")
	rng := rand.New(rand.NewPCG(1, 2))
	access := func(in AccessInput) {
		a, aErr := p.fast.Access(ctx, in)
		b, bErr := p.rego.Access(ctx, in)
		same(t, p, in, a, aErr, b, bErr)
	}
	known := sortedKeys(p.fast.Roles())
	for _, role := range roles {
		for _, action := range actions {
			for _, owner := range []bool{false, true} {
				in := AccessInput{Role: role, Action: action, SubjectOwner: owner}
				access(in)
				// Roles and actions nobody knows answer alike for any
				// key, so a few sets do for them.
				if !slices.Contains(roleActions, action) || !slices.Contains(known, role) {
					for range 3 {
						in.Categories = randomSet(rng, keys)
						access(in)
					}
					continue
				}
				// Every key, in shuffled groups of one to six, shows each
				// role's reach key by key, and random sets of two to six
				// keys in any order and with repetitions show how the
				// answers combine.
				shuffled := slices.Clone(keys)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				for len(shuffled) > 0 {
					n := min(1+rng.IntN(6), len(shuffled))
					in.Categories, shuffled = shuffled[:n], shuffled[n:]
					access(in)
				}
				for range 8 {
					in.Categories = randomSet(rng, keys)
					access(in)
				}
			}
		}
	}

	purposes := sortedKeys(p.fast.data.ConsentMap.Purposes)
	events := append(sortedKeys(p.fast.data.ConsentMap.EventTypes), "", "checkout_started")
	// Every set of purposes, or with more purposes than the table of
	// stored events holds, random sets.
	masks := make([]int, 1<<min(len(purposes), 6))
	for i := range masks {
		masks[i] = i
		if len(purposes) > 6 {
			masks[i] = rng.IntN(1 << len(purposes))
		}
	}
	for _, mask := range masks {
		var granted []string
		for i, purpose := range purposes {
			if mask&(1<<i) != 0 {
				granted = append(granted, purpose)
			}
		}
		for _, event := range events {
			for _, gpc := range []bool{false, true} {
				for _, explicit := range []bool{false, true} {
					in := ConsentInput{PurposesGranted: granted, EventType: event, GPC: gpc, ExplicitMarketing: explicit}
					a, aErr := p.fast.Consent(ctx, in)
					b, bErr := p.rego.Consent(ctx, in)
					same(t, p, in, a, aErr, b, bErr)
				}
			}
		}
	}

	for _, k := range keys {
		r1, err1 := p.fast.Retention(ctx, k)
		r2, err2 := p.rego.Retention(ctx, k)
		same(t, p, k, r1, err1, r2, err2)
		x1, err1 := p.fast.Export(ctx, k)
		x2, err2 := p.rego.Export(ctx, k)
		same(t, p, k, x1, err1, x2, err2)
		for _, store := range []string{StoreSQL, StoreWarehouse, "", "tape"} {
			e1, err1 := p.fast.Erasure(ctx, k, store)
			e2, err2 := p.rego.Erasure(ctx, k, store)
			same(t, p, k+" in "+store, e1, err1, e2, err2)
		}
	}
}

// randomSet returns two to six keys, in any order and with repetitions.
func randomSet(rng *rand.Rand, keys []string) []string {
	var set []string
	for range 2 + rng.IntN(5) {
		set = append(set, keys[rng.IntN(len(keys))])
	}
	return set
}

// TestCompiledMatchesRego compares the compiled decisions with OPA's
// evaluation of the embedded policies, on the embedded data and on data
// changed to use what the embedded data does not: an exported-only grant
// and an identifiability rule on a staff role, a staff role limited to its
// own rows, a withheld category, a purpose granted by default, two
// purposes blocked by GPC and a field with three tiers.
func TestCompiledMatchesRego(t *testing.T) {
	p := newDecisionPair(t)
	t.Run("embedded data", func(t *testing.T) { checkEveryDecision(t, p) })

	support := p.fast.Roles()["support"]
	support.Grants = append(slices.Clone(support.Grants), Grant{Actions: []string{"read", "export"}, Categories: []string{"user.content"}, ExportedOnly: true})
	support.DenyIdentifiability = []string{"direct"}
	p.setData(t, "roles/support", support)
	analyst := p.fast.Roles()["analyst"]
	analyst.OwnOnly = true
	p.setData(t, "roles/analyst", analyst)
	p.setData(t, "taxonomy/user.content.prompt/export", Export{Include: false, WithheldReason: "Held back while the export format is reviewed."})
	p.setData(t, "taxonomy/user.financial.order/erasure", Erasure{Action: ActionAnonymize, Reason: "Kept without the name for the books.", Until: "P10Y from order_paid"})
	p.setData(t, "consent_map/purposes/functional/always_granted", true)
	p.setData(t, "consent_map/gpc_blocks", []string{"marketing", "analytics"})
	p.setData(t, "consent_map/fields/user.behavior.browsing_history.referrer/tiers", []map[string]string{
		{"requires": "marketing", "transform": "none"},
		{"requires": "functional", "transform": "host_only"},
		{"requires": "analytics", "transform": "path_only"},
	})
	if p.fast.Revision() != p.rego.Revision() {
		t.Fatalf("revisions differ after the same changes: %s, %s", p.fast.Revision(), p.rego.Revision())
	}
	t.Run("changed data", func(t *testing.T) { checkEveryDecision(t, p) })

	// With more purposes than the table of stored events holds, the
	// fields are worked out per decision.
	for i := range maxMaskedPurposes {
		p.setData(t, fmt.Sprintf("consent_map/purposes/extra_%d", i), map[string]any{
			"always_granted": i%4 == 0, "description": "An extra purpose.", "data_uses": []string{"essential.service"},
		})
	}
	p.setData(t, "consent_map/fields/user.behavior.timestamp/tiers", []map[string]string{
		{"requires": "extra_3", "transform": "none"},
		{"requires": "extra_5", "transform": "truncate"},
	})
	if p.fast.tables.gate.stored != nil {
		t.Fatal("the table of stored events was built for more purposes than it holds")
	}
	t.Run("many purposes", func(t *testing.T) { checkEveryDecision(t, p) })
}

// TestCompiledDecisionsNeedTheEmbeddedPolicies shows that OPA alone
// decides when the policies in force differ from the embedded ones, so a
// bundle's own Rego is what answers, and when the data holds a value the
// tables cannot mirror.
func TestCompiledDecisionsNeedTheEmbeddedPolicies(t *testing.T) {
	ctx := t.Context()
	src, err := sources.ReadFile("retention.rego")
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(src), `"%s: %s from %s, then %s"`, `"%s is kept %s from %s, then %s"`, 1)
	if changed == string(src) {
		t.Fatal("the retention reason to change was not found")
	}
	e, err := New(ctx, Options{Bundle: bundleWith(t, "retention.rego", []byte(changed))})
	if err != nil {
		t.Fatal(err)
	}
	if e.tables != nil {
		t.Error("an engine on changed policies has compiled tables")
	}
	r, err := e.Retention(ctx, "user.contact.email")
	if err != nil || !strings.HasPrefix(r.Reason, "user.contact.email is kept ") {
		t.Errorf("the changed policy's answer: %+v, %v", r, err)
	}

	// A JSON null where the policies read a boolean: Go reads false, Rego
	// reads a value that is neither true nor false.
	e = newEngine(t, Options{})
	if err := e.SetData(ctx, "roles/user/grants/0/exported_only", nil); err != nil {
		t.Fatalf("SetData: %v", err)
	}
	if e.tables != nil {
		t.Error("data with a null has compiled tables")
	}
	d, err := e.Access(ctx, AccessInput{Role: "user", Action: "read", Categories: []string{"system.operations"}, SubjectOwner: true})
	if err != nil || d.Allow {
		t.Errorf("a grant whose exported_only is null reaches nothing in Rego: %+v, %v", d, err)
	}
}

// TestCompiledTablesFollowReplace replaces an engine's policies and data
// and checks that the compiled decisions answer from the new data.
func TestCompiledTablesFollowReplace(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t, Options{})
	next, err := LoadBundle(ctx, bundleWith(t, "data/taxonomy.json", retentionOf(t, "user.security.reward_record", "P30D")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Replace(next)
	if e.tables == nil {
		t.Fatal("no compiled tables after Replace")
	}
	r, err := e.Retention(ctx, "user.security.reward_record")
	if err != nil || r.Duration != "P30D" || r.Revision != next.Revision() {
		t.Errorf("after Replace: %+v, %v", r, err)
	}

	changed, err := New(ctx, Options{Bundle: bundleWith(t, "lib.rego", append(mustRead(t, "lib.rego"), "\n# A comment changes the policies' digest.\n"...))})
	if err != nil {
		t.Fatal(err)
	}
	e.Replace(changed)
	if e.tables != nil {
		t.Error("compiled tables after Replace with changed policies")
	}
	if r, err := e.Retention(ctx, "user.security.reward_record"); err != nil || r.Duration != DurationAccountLifetime {
		t.Errorf("after Replace with changed policies: %+v, %v", r, err)
	}
}

// TestCompiledInvalidUTF8 asks with a key that is not valid UTF-8: OPA
// answers it, and the answer is the same as an OPA-only engine's.
func TestCompiledInvalidUTF8(t *testing.T) {
	p := newDecisionPair(t)
	ctx := t.Context()
	for _, in := range []AccessInput{
		{Role: "dpo", Action: "read", Categories: []string{"user.name", "user.\xff"}},
		{Role: "dpo\xfe", Action: "read", Categories: []string{"user.name"}},
	} {
		a, aErr := p.fast.Access(ctx, in)
		b, bErr := p.rego.Access(ctx, in)
		same(t, p, in, a, aErr, b, bErr)
	}
	a, aErr := p.fast.Retention(ctx, "user.\xff")
	b, bErr := p.rego.Retention(ctx, "user.\xff")
	same(t, p, "user.\xff", a, aErr, b, bErr)
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := sources.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInputDigestsKeepTheirForm pins the canonical input the digest is
// taken over to the JSON object of sorted keys the decision log has
// always held, so digests stay comparable across releases.
func TestInputDigestsKeepTheirForm(t *testing.T) {
	var got []string
	e := newEngine(t, Options{CacheSize: -1, Recorder: func(_ context.Context, d Decision) { got = append(got, d.InputDigest) }})
	ctx := t.Context()
	if _, err := e.Access(ctx, AccessInput{Role: "support", Action: "read", Categories: []string{"user.name", "user.contact.email", "user.name"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Access(ctx, AccessInput{Role: "support", Action: "read"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Consent(ctx, ConsentInput{PurposesGranted: []string{"marketing", "analytics"}, EventType: "page_view", GPC: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Erasure(ctx, "user.name", StoreWarehouse); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Retention(ctx, "user.name"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"action":"read","categories":["user.contact.email","user.name"],"role":"support","subject_owner":false}`,
		`{"action":"read","categories":[],"role":"support","subject_owner":false}`,
		`{"event_type":"page_view","explicit_marketing":false,"gpc":true,"purposes_granted":["analytics","marketing"]}`,
		`{"category":"user.name","store":"warehouse"}`,
		`{"category":"user.name"}`,
	}
	if len(got) != len(want) {
		t.Fatalf("recorded %d decisions, want %d", len(got), len(want))
	}
	for i, w := range want {
		sum := sha256.Sum256([]byte(w))
		if got[i] != hex.EncodeToString(sum[:]) {
			t.Errorf("decision %d: digest %s is not the digest of %s", i, got[i], w)
		}
	}
}

// TestCompiledSafetyMatchesRego compares the compiled prompt check with
// OPA's evaluation of safety.rego on generated prompts: every term and
// allow-listed phrase, pieces of words around them, other cases, text
// that is not ASCII, addresses and phone numbers, joined in many ways; on
// the embedded data and on data with terms full of regular-expression
// characters or in upper case, overlapping and upper-case allow-listed
// phrases and a case-insensitive pattern.
func TestCompiledSafetyMatchesRego(t *testing.T) {
	p := newDecisionPair(t)
	check := func(t *testing.T) {
		if p.fast.tables.safety == nil {
			t.Fatal("no compiled safety check")
		}
		s := p.fast.data.safety
		words := []string{"a", "cat", "red", "the", "photo", "of", "bloody", "killer", "gunfight", "self", "harm", "kid", "nude",
			"über", "gün", "🙂", "4gun", "gun9", "é", "\xff", "C++", "c++", "jane.doe@example.com", "+49 30 1234 5678", "(555) 123-4567", "dragon", "DRAGON", "x"}
		for _, c := range s.Categories {
			words = append(words, c.Terms...)
			for _, term := range c.Terms {
				words = append(words, strings.ToUpper(term), term+"s", "un"+term)
			}
		}
		words = append(words, s.Allow...)
		seps := []string{" ", ", ", "-", ".", "", "_", "\n", " and "}
		rng := rand.New(rand.NewPCG(3, 4))
		text := func(n int) string {
			var b strings.Builder
			for i := range n {
				if i > 0 {
					b.WriteString(seps[rng.IntN(len(seps))])
				}
				b.WriteString(words[rng.IntN(len(words))])
			}
			return b.String()
		}
		fixed := []string{"a photo gore scene", "photo of gore", "KILL SWITCH", "a Swastika", "c++ code gun", "gun metal gun",
			"bloodorange", "blood orange", "Blood Orange blood", "kill-switch", "a.b", "axb", "(x)", "killing kill switch"}
		for i := range 300 + len(fixed) {
			in := PromptSafetyInput{Prompt: text(1 + rng.IntN(8))}
			if i%2 == 0 {
				in.NegativePrompt = text(1 + rng.IntN(4))
			}
			if i < len(fixed) {
				in.Prompt = fixed[i]
			}
			a, aErr := p.fast.PromptSafety(t.Context(), in)
			b, bErr := p.rego.PromptSafety(t.Context(), in)
			same(t, p, in, a, aErr, b, bErr)
		}
	}
	t.Run("embedded data", check)
	p.setData(t, "safety/categories/violence/terms", []string{"blood", "kill", "gun", "c++", "a.b", "(x)"})
	p.setData(t, "safety/categories/hate/terms", []string{"Swastika", "WHITE POWER"})
	p.setData(t, "safety/categories/personal_data/patterns", []string{`(?i)dragon`, `[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}`})
	// The replacer prefers the first of the sorted phrases that match at a
	// place ("photo" before "photo gore"), as strings.replace_n does.
	p.setData(t, "safety/allow", []string{"gun metal", "gun", "Blood Orange", "kill switch", "photo gore", "photo", "c++ code"})
	t.Run("changed data", check)
}

// TestCompiledDecisionsOwnTheirStrings asks with strings whose bytes the
// caller overwrites afterwards, as Fiber does once a request is answered,
// and checks that the cached decisions still read what was asked: a
// compiled decision must not keep the caller's strings.
func TestCompiledDecisionsOwnTheirStrings(t *testing.T) {
	e := newEngine(t, Options{})
	if e.tables == nil {
		t.Fatal("no compiled tables")
	}
	ctx := t.Context()
	reused := func(s string) (string, []byte) {
		buf := []byte(s)
		return unsafe.String(&buf[0], len(buf)), buf
	}
	known, knownBuf := reused("user.name")
	unknown, unknownBuf := reused("user.shoe_size")
	purpose, purposeBuf := reused("analytics")
	key, keyBuf := reused("user.contact.email")
	if _, err := e.Access(ctx, AccessInput{Role: "dpo", Action: "read", Categories: []string{known, unknown}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Consent(ctx, ConsentInput{PurposesGranted: []string{purpose}, EventType: "page_view"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Retention(ctx, key); err != nil {
		t.Fatal(err)
	}
	for _, buf := range [][]byte{knownBuf, unknownBuf, purposeBuf, keyBuf} {
		for i := range buf {
			buf[i] = 'x'
		}
	}
	a, err := e.Access(ctx, AccessInput{Role: "dpo", Action: "read", Categories: []string{"user.name", "user.shoe_size"}})
	if err != nil || !slices.Equal(a.Permitted, []string{"user.name"}) || !slices.Equal(a.Redact, []string{"user.shoe_size"}) {
		t.Errorf("cached access decision after the caller reused its buffers: %+v, %v", a, err)
	}
	c, err := e.Consent(ctx, ConsentInput{PurposesGranted: []string{"analytics"}, EventType: "page_view"})
	if err != nil || !slices.Contains(c.Purposes, "analytics") {
		t.Errorf("cached consent decision after the caller reused its buffer: %+v, %v", c, err)
	}
	r, err := e.Retention(ctx, "user.contact.email")
	if err != nil || r.Category != "user.contact.email" {
		t.Errorf("cached retention rule after the caller reused its buffer: %+v, %v", r, err)
	}
}
