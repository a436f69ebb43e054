package policies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func TestNewLoadsEmbeddedPoliciesAndData(t *testing.T) {
	e := newEngine(t, Options{})
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(e.Revision()) {
		t.Errorf("Revision() = %q, want 12 hex digits", e.Revision())
	}
	if e2 := newEngine(t, Options{}); e2.Revision() != e.Revision() {
		t.Errorf("two engines over the same sources: revisions %q and %q differ", e.Revision(), e2.Revision())
	}
	if n := len(e.Checklist()); n < 60 {
		t.Errorf("Checklist() has %d items, want every item the privacy policy names", n)
	}
	for _, role := range []string{"user", "support", "analyst", "dpo", "admin"} {
		if _, ok := e.Roles()[role]; !ok {
			t.Errorf("Roles() lacks %q", role)
		}
	}
}

func TestAccessRoleMatrix(t *testing.T) {
	e := newEngine(t, Options{})
	categories := []string{
		"user.contact.email",
		"user.content.prompt",
		"user.content.generation_failure_reason",
		"user.financial.subscription_status",
		"user.financial.order",
		"user.behavior.attribution.utm",
		"user.device.ip_address",
		"user.authorization.credentials",
		"user.security.admin_audit_log",
		"user.support.conversation",
	}
	// want[role] lists the categories the role may read in a row it does
	// not own (for user: its own row).
	want := map[string][]string{
		"user": {
			"user.contact.email", "user.content.prompt", "user.content.generation_failure_reason",
			"user.financial.subscription_status", "user.financial.order", "user.behavior.attribution.utm",
			"user.device.ip_address", "user.support.conversation",
		},
		"support": {
			"user.contact.email", "user.content.generation_failure_reason",
			"user.financial.subscription_status", "user.support.conversation",
		},
		"analyst": {"user.behavior.attribution.utm"},
		"dpo":     categories,
		"admin":   categories,
	}
	for role, permitted := range want {
		for _, c := range categories {
			t.Run(role+"/"+c, func(t *testing.T) {
				d, err := e.Access(t.Context(), AccessInput{Role: role, Action: "read", Categories: []string{c}, SubjectOwner: role == "user"})
				if err != nil {
					t.Fatal(err)
				}
				if wantAllow := slices.Contains(permitted, c); d.Allow != wantAllow {
					t.Errorf("allow = %v, want %v (%s)", d.Allow, wantAllow, d.Reason)
				}
			})
		}
	}
}

func TestAccessDecisions(t *testing.T) {
	e := newEngine(t, Options{})
	tests := []struct {
		name       string
		in         AccessInput
		wantAllow  bool
		wantRedact []string
	}{
		{
			name:      "user reads own profile",
			in:        AccessInput{Role: "user", Action: "read", Categories: []string{"user.name", "user.contact.email"}, SubjectOwner: true},
			wantAllow: true,
		},
		{
			name:       "user cannot read another user's row",
			in:         AccessInput{Role: "user", Action: "read", Categories: []string{"user.name"}},
			wantRedact: []string{"user.name"},
		},
		{
			name:       "support reads ticket, prompt redacted",
			in:         AccessInput{Role: "support", Action: "read", Categories: []string{"user.support.question", "user.content.prompt"}},
			wantAllow:  true,
			wantRedact: []string{"user.content.prompt"},
		},
		{
			name:       "support update touching email is refused",
			in:         AccessInput{Role: "support", Action: "update", Categories: []string{"user.support.status", "user.contact.email"}},
			wantRedact: []string{"user.contact.email"},
		},
		{
			name:       "analyst never gets the analytics id",
			in:         AccessInput{Role: "analyst", Action: "list", Categories: []string{"user.unique_id.analytics_id", "user.behavior.browsing_history"}},
			wantAllow:  true,
			wantRedact: []string{"user.unique_id.analytics_id"},
		},
		{
			name:       "dpo cannot delete",
			in:         AccessInput{Role: "dpo", Action: "delete", Categories: []string{"user.name"}},
			wantRedact: []string{"user.name"},
		},
		{
			name:      "admin deletes",
			in:        AccessInput{Role: "admin", Action: "delete", Categories: []string{"user.name", "user.financial.order"}},
			wantAllow: true,
		},
		{
			name:       "unknown category is redacted, not an error",
			in:         AccessInput{Role: "admin", Action: "read", Categories: []string{"user.name", "user.shoe_size"}},
			wantAllow:  true,
			wantRedact: []string{"user.shoe_size"},
		},
		{
			name:       "unknown role is denied",
			in:         AccessInput{Role: "root", Action: "read", Categories: []string{"user.name"}},
			wantRedact: []string{"user.name"},
		},
		{
			name:       "order and duplicates of categories do not matter",
			in:         AccessInput{Role: "support", Action: "read", Categories: []string{"user.content.prompt", "user.name", "user.content.prompt"}},
			wantAllow:  true,
			wantRedact: []string{"user.content.prompt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Access(t.Context(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.wantAllow {
				t.Errorf("allow = %v, want %v (%s)", d.Allow, tt.wantAllow, d.Reason)
			}
			if !slices.Equal(d.Redact, tt.wantRedact) && !(len(d.Redact) == 0 && len(tt.wantRedact) == 0) {
				t.Errorf("redact = %v, want %v", d.Redact, tt.wantRedact)
			}
			if d.Reason == "" || d.Revision != e.Revision() || d.DecisionID == "" {
				t.Errorf("decision lacks reason, revision or id: %+v", d)
			}
		})
	}
}

func TestCategoryDecisions(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := t.Context()
	tests := []struct {
		name      string
		category  string
		retention string // duration from
		export    bool
		erasure   string // action until
	}{
		{"email", "user.contact.email", "account_lifetime account_closed", true, "delete "},
		{"analytics event", "user.behavior.browsing_history", "P13M collected_at", true, "delete "},
		{"order", "user.financial.order", "P10Y order_paid", true, "keep P10Y from order_paid"},
		{"invoice id", "user.financial.invoice_id", "P10Y order_paid", true, "keep P10Y from order_paid"},
		{"hashed credentials", "user.authorization.credentials", "P90D last_activity", false, "delete "},
		{"consent proof", "user.consent.record", "P3Y superseded", true, "anonymize P3Y from superseded"},
		{"abuse log", "user.security.abuse_log", "P90D collected_at", false, "keep P90D from collected_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.Retention(ctx, tt.category)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Duration + " " + r.From; got != tt.retention {
				t.Errorf("retention = %q, want %q", got, tt.retention)
			}
			x, err := e.Export(ctx, tt.category)
			if err != nil {
				t.Fatal(err)
			}
			if x.Include != tt.export || x.Reason == "" {
				t.Errorf("export = %+v, want include %v with a reason", x, tt.export)
			}
			er, err := e.Erasure(ctx, tt.category, StoreSQL)
			if err != nil {
				t.Fatal(err)
			}
			if got := er.Action + " " + er.Until; got != tt.erasure || er.Reason == "" {
				t.Errorf("erasure = %q (%q), want %q with a reason", got, er.Reason, tt.erasure)
			}
		})
	}
}

func TestRetentionExpires(t *testing.T) {
	e := newEngine(t, Options{})
	paid := time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)
	r, err := e.Retention(t.Context(), "user.financial.invoice_id")
	if err != nil {
		t.Fatal(err)
	}
	end, ok := r.Expires(paid)
	if !ok || !end.Equal(time.Date(2034, 3, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("Expires(%v) = %v, %v; want 2034-03-01 (10 calendar years)", paid, end, ok)
	}
	r, err = e.Retention(t.Context(), "user.contact.email")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Expires(paid); ok {
		t.Error("account_lifetime data must have no expiry date of its own")
	}
}

func TestUnknownAndGroupCategories(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := t.Context()
	tests := []struct {
		name     string
		category string
		want     error
	}{
		{"unknown", "user.financial.credit_card", ErrUnknownCategory},
		{"empty", "", ErrUnknownCategory},
		{"group", "user.financial", ErrGroupCategory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.Retention(ctx, tt.category); !errors.Is(err, tt.want) {
				t.Errorf("Retention: err = %v, want %v", err, tt.want)
			}
			x, err := e.Export(ctx, tt.category)
			if !errors.Is(err, tt.want) || x.Include {
				t.Errorf("Export: %+v, %v; want not included and %v", x, err, tt.want)
			}
			er, err := e.Erasure(ctx, tt.category, StoreSQL)
			if !errors.Is(err, tt.want) || er.Action != ActionReview {
				t.Errorf("Erasure: %+v, %v; want review and %v", er, err, tt.want)
			}
			// The cached answer gives the same error.
			if _, err := e.Retention(ctx, tt.category); !errors.Is(err, tt.want) {
				t.Errorf("Retention (cached): err = %v, want %v", err, tt.want)
			}
		})
	}
	_, err := e.Category("user.shoe_size")
	if !errors.Is(err, ErrUnknownCategory) {
		t.Errorf("Category: err = %v, want ErrUnknownCategory", err)
	}
	if err == nil || !regexp.MustCompile(`user\.shoe_size`).MatchString(err.Error()) {
		t.Errorf("Category error %v does not name the key", err)
	}
	c, err := e.Category("user.contact.email")
	if err != nil || c.Key != "user.contact.email" || c.LegalBasis.Basis != BasisContract || c.Section.Number != 1 {
		t.Errorf("Category(email) = %+v, %v", c, err)
	}
}

func TestConsentDecisions(t *testing.T) {
	e := newEngine(t, Options{})
	tests := []struct {
		name      string
		in        ConsentInput
		wantStore string
		stripped  []string
		kept      []string
	}{
		{
			name:      "no consent drops page views",
			in:        ConsentInput{EventType: "page_view"},
			wantStore: StoreDrop,
		},
		{
			name:      "analytics only is minimized",
			in:        ConsentInput{PurposesGranted: []string{PurposeAnalytics}, EventType: "page_view"},
			wantStore: StoreMinimized,
			stripped:  []string{"user.behavior.attribution.utm", "user.behavior.attribution.click_id", "user.unique_id"},
			kept:      []string{"user.unique_id.analytics_id", "user.behavior.browsing_history"},
		},
		{
			name:      "analytics and marketing is full",
			in:        ConsentInput{PurposesGranted: []string{PurposeMarketing, PurposeAnalytics}, EventType: "page_view"},
			wantStore: StoreFull,
			kept:      []string{"user.behavior.attribution.utm", "user.behavior.attribution.click_id", "user.unique_id"},
		},
		{
			name:      "GPC removes marketing fields",
			in:        ConsentInput{PurposesGranted: []string{PurposeAnalytics, PurposeMarketing}, EventType: "page_view", GPC: true},
			wantStore: StoreMinimized,
			stripped:  []string{"user.behavior.attribution.utm", "user.behavior.attribution.click_id"},
		},
		{
			name:      "explicit marketing opt-in overrides GPC",
			in:        ConsentInput{PurposesGranted: []string{PurposeAnalytics, PurposeMarketing}, EventType: "page_view", GPC: true, ExplicitMarketing: true},
			wantStore: StoreFull,
		},
		{
			name:      "error events are kept minimized without consent",
			in:        ConsentInput{EventType: "error"},
			wantStore: StoreMinimized,
			stripped:  []string{"user.unique_id.analytics_id", "user.device.ip_address"},
			kept:      []string{"user.behavior.diagnostics.error_log"},
		},
		{
			name:      "unknown event type is dropped",
			in:        ConsentInput{PurposesGranted: []string{PurposeAnalytics, PurposeMarketing}, EventType: "keystroke"},
			wantStore: StoreDrop,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Consent(t.Context(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Store != tt.wantStore {
				t.Errorf("store = %q, want %q (%s)", d.Store, tt.wantStore, d.Reason)
			}
			for _, f := range tt.stripped {
				if !slices.Contains(d.Strip, f) {
					t.Errorf("%s not stripped; strip = %v", f, d.Strip)
				}
			}
			for _, f := range tt.kept {
				if slices.Contains(d.Strip, f) {
					t.Errorf("%s stripped; strip = %v", f, d.Strip)
				}
			}
			if d.Store != StoreDrop && d.Transform["user.device.ip_address"] == "" && !slices.Contains(d.Strip, "user.device.ip_address") {
				t.Errorf("a stored event must truncate or strip the IP address; transform = %v", d.Transform)
			}
		})
	}
}

func TestCachedAndUncachedAgree(t *testing.T) {
	cached := newEngine(t, Options{})
	uncached := newEngine(t, Options{CacheSize: -1})
	ctx := t.Context()
	// read covers the redaction path and exported_only grants, update the
	// all-or-nothing write path.
	for role := range cached.Roles() {
		for _, action := range []string{"read", "update"} {
			for key := range cached.Taxonomy() {
				in := AccessInput{Role: role, Action: action, Categories: []string{key, "user.name"}, SubjectOwner: true}
				for range 2 { // the second round is served from the cache
					a, err := cached.Access(ctx, in)
					if err != nil {
						t.Fatal(err)
					}
					b, err := uncached.Access(ctx, in)
					if err != nil {
						t.Fatal(err)
					}
					if a.Allow != b.Allow || !slices.Equal(a.Redact, b.Redact) || a.Reason != b.Reason {
						t.Fatalf("%+v: cached %+v, uncached %+v", in, a, b)
					}
				}
			}
		}
	}
	if cached.caches.access.len() == 0 {
		t.Error("the cached engine cached nothing")
	}
	for _, purposes := range [][]string{nil, {"analytics"}, {"marketing", "analytics"}, {"analytics", "marketing"}} {
		for _, gpc := range []bool{false, true} {
			in := ConsentInput{PurposesGranted: purposes, EventType: "page_view", GPC: gpc}
			for range 2 {
				a, err := cached.Consent(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				b, err := uncached.Consent(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				if a.Store != b.Store || !slices.Equal(a.Strip, b.Strip) || a.Reason != b.Reason {
					t.Fatalf("%+v: cached %+v, uncached %+v", in, a, b)
				}
			}
		}
	}
}

func TestRecorderSeesEachEvaluationOnce(t *testing.T) {
	var mu sync.Mutex
	var got []Decision
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	e := newEngine(t, Options{
		Recorder: func(_ context.Context, d Decision) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, d)
		},
		Now: func() time.Time { return at },
	})
	ctx := t.Context()
	in := AccessInput{Role: "support", Action: "read", Categories: []string{"user.name", "user.content.prompt"}}
	first, err := e.Access(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	// The same set in another order is the same question.
	in.Categories = []string{"user.content.prompt", "user.name"}
	second, err := e.Access(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("recorded %d decisions, want 1 (the cache hit is not recorded again)", len(got))
	}
	rec := got[0]
	if rec.ID != first.DecisionID || second.DecisionID != first.DecisionID {
		t.Errorf("decision ids: record %q, first %q, cached %q; want all equal", rec.ID, first.DecisionID, second.DecisionID)
	}
	if rec.Policy != PolicyAccess || rec.Revision != e.Revision() || !rec.At.Equal(at) {
		t.Errorf("record = %+v", rec)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(rec.InputDigest) {
		t.Errorf("input digest %q is not a hex SHA-256", rec.InputDigest)
	}
	var result AccessDecision
	if err := json.Unmarshal(rec.Result, &result); err != nil || !slices.Equal(result.Redact, first.Redact) {
		t.Errorf("recorded result %s does not match the decision %+v (%v)", rec.Result, first, err)
	}

	// An uncached engine records the same digest for the same input.
	var digests []string
	u := newEngine(t, Options{CacheSize: -1, Recorder: func(_ context.Context, d Decision) { digests = append(digests, d.InputDigest) }})
	for range 2 {
		if _, err := u.Access(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if len(digests) != 2 || digests[0] != digests[1] || digests[0] != rec.InputDigest {
		t.Errorf("digests %v, want two equal to %s", digests, rec.InputDigest)
	}
}

func TestSetDataChangesRevisionAndAnswers(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := t.Context()
	before := e.Revision()
	r, err := e.Retention(ctx, "user.support.question")
	if err != nil {
		t.Fatal(err)
	}
	if r.Duration != "P3Y" {
		t.Fatalf("support question retention = %s, want P3Y", r.Duration)
	}
	support, err := e.Access(ctx, AccessInput{Role: "support", Action: "read", Categories: []string{"user.content.prompt"}})
	if err != nil || support.Allow {
		t.Fatalf("support reads prompt: %+v, %v", support, err)
	}

	if err := e.SetData(ctx, "taxonomy/user.support.question/retention", Retention{Duration: "P2Y", From: "last_activity", Action: ActionDelete}); err != nil {
		t.Fatalf("SetData: %v", err)
	}
	if e.Revision() == before {
		t.Fatal("revision did not change")
	}
	r, err = e.Retention(ctx, "user.support.question")
	if err != nil {
		t.Fatal(err)
	}
	if r.Duration != "P2Y" || r.Revision != e.Revision() {
		t.Errorf("after SetData: %+v, want P2Y stamped %s", r, e.Revision())
	}
	if c, _ := e.Category("user.support.question"); c.Retention.Duration != "P2Y" {
		t.Errorf("Taxonomy view not updated: %+v", c.Retention)
	}

	roles := e.Roles()
	sup := roles["support"]
	sup.Grants = append(slices.Clone(sup.Grants), Grant{Actions: []string{"read"}, Categories: []string{"user.content.prompt"}})
	if err := e.SetData(ctx, "roles/support", sup); err != nil {
		t.Fatalf("SetData role: %v", err)
	}
	support, err = e.Access(ctx, AccessInput{Role: "support", Action: "read", Categories: []string{"user.content.prompt"}})
	if err != nil || !support.Allow {
		t.Errorf("after granting prompts, support reads prompt: %+v, %v", support, err)
	}

	// Setting the data back gives the original revision: the revision is a
	// digest of content, not a counter.
	if err := e.SetData(ctx, "taxonomy/user.support.question/retention/duration", "P3Y"); err != nil {
		t.Fatal(err)
	}
	if err := e.SetData(ctx, "roles/support", roles["support"]); err != nil {
		t.Fatal(err)
	}
	if e.Revision() != before {
		t.Errorf("revision after restoring data = %s, want %s", e.Revision(), before)
	}
}

func TestSetDataRejectsInvalidData(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := t.Context()
	before := e.Revision()
	tests := []struct {
		name  string
		path  string
		value any
		want  string
	}{
		{"retention without duration", "taxonomy/user.name/retention", map[string]any{"from": "collected_at", "action": "delete"}, `"user.name": missing retention.duration`},
		{"bad period", "taxonomy/user.name/retention/duration", "ten years", `"user.name": retention.duration`},
		{"purpose not in fideslang", "taxonomy/user.name/purposes", []string{"selling.data"}, `purpose "selling.data"`},
		{"unknown field", "taxonomy/user.name/retention_days", 30, "retention_days"},
		{"new category without legal basis", "taxonomy/user.content.style", map[string]any{
			"name": "Style", "description": "d", "parent": "user.content", "fideslang": "user.content",
			"policy_section": map[string]any{"number": 2, "title": "x"}, "purposes": []string{"essential.service"},
			"retention": Retention{Duration: "P1Y", From: "collected_at", Action: "delete"},
			"erasure":   Erasure{Action: "delete", Reason: "r"}, "export": Export{Include: true}, "identifiability": "none", "personal": true,
		}, `"user.content.style": missing legal_basis`},
		{"grant on unknown category", "roles/support/grants", []Grant{{Actions: []string{"read"}, Categories: []string{"user.shoe_size"}}}, `"user.shoe_size" is not in the taxonomy`},
		{"missing parent", "taxonomy/user.nope", map[string]any{"name": "x"}, "user.nope"},
		{"empty path", "", 1, "empty path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.SetData(ctx, tt.path, tt.value)
			if err == nil {
				t.Fatal("SetData accepted invalid data")
			}
			if !regexp.MustCompile(regexp.QuoteMeta(tt.want)).MatchString(err.Error()) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if e.Revision() != before {
				t.Error("revision changed after a rejected write")
			}
		})
	}
	r, err := e.Retention(ctx, "user.name")
	if err != nil || r.Duration != DurationAccountLifetime {
		t.Errorf("after rejected writes, user.name retention = %+v, %v", r, err)
	}
}

func TestSetDataAddsCategoryWithoutRecompiling(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := t.Context()
	if _, err := e.Retention(ctx, "user.content.style_preset"); !errors.Is(err, ErrUnknownCategory) {
		t.Fatalf("before: err = %v, want ErrUnknownCategory", err)
	}
	c, err := e.Category("user.content.generation_settings.seed")
	if err != nil {
		t.Fatal(err)
	}
	c.Name, c.Description = "Style preset", "The named style preset chosen for a generation."
	c.Retention = Retention{Duration: "P2Y", From: "collected_at", Action: ActionDelete}
	if err := e.SetData(ctx, "taxonomy/user.content.generation_settings.style_preset", c); err != nil {
		t.Fatalf("SetData: %v", err)
	}
	r, err := e.Retention(ctx, "user.content.generation_settings.style_preset")
	if err != nil || r.Duration != "P2Y" {
		t.Errorf("new category retention = %+v, %v", r, err)
	}
	d, err := e.Access(ctx, AccessInput{Role: "support", Action: "read", Categories: []string{"user.content.generation_settings.style_preset"}})
	if err != nil || !d.Allow {
		t.Errorf("support reads the new setting through its generation_settings grant: %+v, %v", d, err)
	}
}

func TestConcurrentEvaluation(t *testing.T) {
	e := newEngine(t, Options{CacheSize: 64})
	ctx := t.Context()
	const changed = "user.support.question"
	// Learn the revision of each state the writer below toggles between, so
	// readers can check that every answer matches the revision it carries.
	revP3Y := e.Revision()
	if err := e.SetData(ctx, "taxonomy/"+changed+"/retention/duration", "P2Y"); err != nil {
		t.Fatal(err)
	}
	revP2Y := e.Revision()

	var keys []string
	for k, c := range e.Taxonomy() {
		if !c.Group {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	supportReads := map[string]bool{"user.name": true, "user.contact.email": true, "user.content.prompt": false}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				key := keys[(g*7+i)%len(keys)]
				d, err := e.Access(ctx, AccessInput{Role: "support", Action: "read", Categories: []string{key}})
				if err != nil {
					errs <- err
					return
				}
				if want, ok := supportReads[key]; ok && d.Allow != want {
					errs <- fmt.Errorf("support read %s: allow %v, want %v", key, d.Allow, want)
					return
				}
				c, err := e.Consent(ctx, ConsentInput{PurposesGranted: []string{"analytics"}, EventType: "page_view", GPC: i%2 == 0})
				if err != nil || c.Store != StoreMinimized {
					errs <- fmt.Errorf("consent: %+v, %v", c, err)
					return
				}
				r, err := e.Retention(ctx, changed)
				if err != nil {
					errs <- err
					return
				}
				if want := map[string]string{"P2Y": revP2Y, "P3Y": revP3Y}[r.Duration]; r.Revision != want {
					errs <- fmt.Errorf("retention %s stamped with revision %s, want %s", r.Duration, r.Revision, want)
					return
				}
			}
		})
	}
	// Data changes while the readers run.
	wg.Go(func() {
		for i := range 20 {
			d := "P3Y"
			if i%2 == 1 {
				d = "P2Y"
			}
			if err := e.SetData(ctx, "taxonomy/"+changed+"/retention/duration", d); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.caches.access.len(); n > 64 {
		t.Errorf("access cache holds %d entries, bound is 64", n)
	}
}

func TestSetKey(t *testing.T) {
	tests := []struct {
		name string
		a, b []string
		same bool
	}{
		{"order does not matter", []string{"analytics", "marketing"}, []string{"marketing", "analytics"}, true},
		{"repetition does not matter", []string{"analytics", "analytics"}, []string{"analytics"}, true},
		{"empty and nil", nil, []string{}, true},
		{"different sets", []string{"analytics"}, []string{"marketing"}, false},
		{"subset", []string{"analytics"}, []string{"analytics", "marketing"}, false},
		{"no forged separator", []string{"analytics\x1fmarketing"}, []string{"analytics", "marketing"}, false},
		{"no forged length", []string{"1:a1:b"}, []string{"a", "b"}, false},
		{"empty string is an element", []string{""}, nil, false},
		{"long unsorted list", []string{"j", "i", "h", "g", "f", "e", "d", "c", "b", "a"}, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := setKey(tt.a) == setKey(tt.b); got != tt.same {
				t.Errorf("setKey(%q) == setKey(%q) is %v, want %v", tt.a, tt.b, got, tt.same)
			}
		})
	}
}

// TestConsentCacheCannotBeForged sends a purpose crafted to collide with a
// cached answer for two real purposes; it must not receive that answer.
func TestConsentCacheCannotBeForged(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := t.Context()
	full, err := e.Consent(ctx, ConsentInput{PurposesGranted: []string{"analytics", "marketing"}, EventType: "page_view"})
	if err != nil || full.Store != StoreFull {
		t.Fatalf("real consent: %+v, %v", full, err)
	}
	forged, err := e.Consent(ctx, ConsentInput{PurposesGranted: []string{"analytics\x1fmarketing"}, EventType: "page_view"})
	if err != nil {
		t.Fatal(err)
	}
	if forged.Store != StoreDrop {
		t.Errorf("forged purpose got store %q, want drop", forged.Store)
	}
}

// TestConsentJunkInputSharesOneEvaluation sends many distinct unknown
// purposes and event types, as a hostile tracker client could: they must
// cost one evaluation, not one each.
func TestConsentJunkInputSharesOneEvaluation(t *testing.T) {
	var evaluations int
	var mu sync.Mutex
	e := newEngine(t, Options{Recorder: func(context.Context, Decision) {
		mu.Lock()
		evaluations++
		mu.Unlock()
	}})
	ctx := t.Context()
	for i := range 50 {
		d, err := e.Consent(ctx, ConsentInput{
			PurposesGranted: []string{fmt.Sprintf("junk-%d", i)},
			EventType:       fmt.Sprintf("event-%d", i),
		})
		if err != nil {
			t.Fatal(err)
		}
		if d.Store != StoreDrop {
			t.Fatalf("junk event stored: %+v", d)
		}
	}
	if evaluations != 1 {
		t.Errorf("%d evaluations for junk input, want 1", evaluations)
	}
	d, err := e.Consent(ctx, ConsentInput{PurposesGranted: []string{"junk", "analytics"}, EventType: "page_view"})
	if err != nil || d.Store != StoreMinimized {
		t.Errorf("known purpose next to a junk one: %+v, %v; want minimized", d, err)
	}
}
