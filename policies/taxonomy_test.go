package policies

import (
	"bufio"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// agreedKeys are the category keys the rest of Steward tags its columns
// with. Removing or renaming one breaks those tags, so the list is fixed
// here.
var agreedKeys = []string{
	// Section 1: account.
	"user.unique_id", "user.unique_id.provider_subject", "user.name", "user.account.avatar",
	"user.contact.email", "user.account.sign_in_state", "user.account.settings.language",
	"user.account.created_at", "user.account.status", "user.financial.credit_balance", "user.financial.subscription_status",
	"user.authorization.credentials", "user.authorization.role",
	// Section 2: creative inputs.
	"user.content.prompt", "user.content.negative_prompt", "user.content.generation_settings.model",
	"user.content.generation_settings.aspect_ratio", "user.content.generation_settings.resolution",
	"user.content.generation_settings.duration", "user.content.generation_settings.audio",
	"user.content.generation_settings.watermark", "user.content.generation_settings.seed",
	"user.content.project", "user.content.reference_url", "user.content.generated_media",
	"user.content.generation_task_id", "user.content.generation_failure_reason", "user.content.generation_history",
	// Section 3: assets.
	"user.content.upload", "user.content.upload.file_name", "user.content.upload.file_size",
	"user.content.upload.mime_type", "user.content.upload.storage_path", "user.content.upload.access_url",
	"user.content.upload.metadata",
	// Section 4: payments.
	"user.financial.order", "user.financial.checkout_session", "user.financial.product", "user.financial.price",
	"user.financial.currency", "user.financial.payment_status", "user.financial.subscription_period",
	"user.financial.refund_status", "user.financial.invoice_id", "user.financial.portal_id", "user.financial.customer_id",
	// Section 5: usage and attribution.
	"user.behavior.browsing_history", "user.behavior.browsing_history.referrer", "user.behavior.attribution.utm",
	"user.behavior.attribution.landing_page", "user.behavior.attribution.click_id", "user.device.session_id",
	"user.unique_id.analytics_id", "user.device.browser", "user.device.ip_address", "user.behavior.timestamp",
	"user.behavior.pricing_exposure", "user.behavior.feature_interaction", "user.behavior.diagnostics.error_log",
	"user.behavior.diagnostics.performance",
	// Section 6: security.
	"user.security.prompt_safety_result", "user.security.violation_flag", "user.security.abuse_log",
	"user.security.device_binding", "user.security.reward_record", "user.security.admin_audit_log",
	// Section 7: support.
	"user.support.question", "user.support.contact", "user.support.attachment", "user.support.conversation",
	"user.support.status",
	// Section 8: cookies and similar.
	"user.device.cookie", "user.device.cookie_id", "user.device.local_storage",
	// Not named by the policy.
	"user.consent.record", "user.consent.state", "user.privacy_request", "user.unique_id.pseudonymous", "system.operations",
}

func TestTaxonomyHasEveryAgreedKey(t *testing.T) {
	e := newEngine(t, Options{})
	tax := e.Taxonomy()
	for _, key := range agreedKeys {
		c, ok := tax[key]
		if !ok {
			t.Errorf("%s is missing", key)
			continue
		}
		if c.Group {
			t.Errorf("%s is a group; columns are tagged with it, so it needs its own rules", key)
		}
	}
	if _, ok := tax["user.financial.credit_card"]; ok {
		t.Error("user.financial.credit_card is in the taxonomy, but card numbers are never stored")
	}
	for key, c := range tax {
		if !c.Group && !slices.Contains(agreedKeys, key) {
			t.Errorf("%s is not an agreed key: agree on it first, then add it to agreedKeys", key)
		}
	}
}

func TestTaxonomyLegalBasesAndSections(t *testing.T) {
	e := newEngine(t, Options{})
	tests := []struct {
		name    string
		key     string
		basis   string
		section int
	}{
		{"analytics events need consent", "user.behavior.browsing_history", BasisConsent, 5},
		{"attribution needs consent", "user.behavior.attribution.utm", BasisConsent, 5},
		{"account data is contract", "user.contact.email", BasisContract, 1},
		{"invoices are legal obligation", "user.financial.invoice_id", BasisLegalObligation, 4},
		{"security logs are legitimate interests", "user.security.abuse_log", BasisLegitimateInterests, 6},
		{"consent proof is legal obligation", "user.consent.record", BasisLegalObligation, 0},
		{"privacy requests are not in the policy", "user.privacy_request", BasisLegalObligation, 0},
		{"technical columns have no basis", "system.operations", BasisNotApplicable, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.Category(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if c.LegalBasis.Basis != tt.basis || c.Section.Number != tt.section {
				t.Errorf("%s: basis %q section %d, want %q section %d", tt.key, c.LegalBasis.Basis, c.Section.Number, tt.basis, tt.section)
			}
			if tt.section == 0 && c.Section.Title != "not in policy" {
				t.Errorf("%s: section title %q, want %q", tt.key, c.Section.Title, "not in policy")
			}
		})
	}
}

func TestValidationNamesCategoryAndField(t *testing.T) {
	fides, err := loadFideslang(sources)
	if err != nil {
		t.Fatal(err)
	}
	good := func() Category {
		return Category{
			Key: "user.content.style", Name: "Style", Description: "d", Parent: "user.content",
			Section: Section{2, "Creative inputs"}, Fideslang: "user.content",
			Purposes:        []string{"essential.service"},
			LegalBasis:      LegalBasis{Basis: BasisContract, Article: "GDPR Art. 6(1)(b)", Reason: "r"},
			Retention:       Retention{Duration: "P1Y", From: "collected_at", Action: ActionDelete},
			Erasure:         Erasure{Action: ActionDelete, Reason: "r"},
			Export:          Export{Include: true},
			Identifiability: "none", Personal: true,
		}
	}
	tests := []struct {
		name   string
		change func(*Category)
		want   string // empty: valid
	}{
		{"valid", func(*Category) {}, ""},
		{"no name", func(c *Category) { c.Name = "" }, "missing name"},
		{"no purposes", func(c *Category) { c.Purposes = nil }, "missing purposes"},
		{"unknown purpose", func(c *Category) { c.Purposes = []string{"essential.servicing"} }, `purpose "essential.servicing"`},
		{"extension purpose", func(c *Category) { c.Purposes = []string{"functional.storage.privacy_preferences"} }, ""},
		{"no legal basis", func(c *Category) { c.LegalBasis = LegalBasis{} }, "missing legal_basis"},
		{"bad legal basis", func(c *Category) { c.LegalBasis.Basis = "vital_interests" }, `legal_basis "vital_interests"`},
		{"not applicable on personal data", func(c *Category) { c.LegalBasis.Basis = BasisNotApplicable }, "not_applicable on personal data"},
		{"no retention", func(c *Category) { c.Retention = Retention{} }, "missing retention"},
		{"bad retention start", func(c *Category) { c.Retention.From = "birthday" }, `retention.from "birthday"`},
		{"bad retention action", func(c *Category) { c.Retention.Action = "keep" }, `retention.action "keep"`},
		{"no erasure", func(c *Category) { c.Erasure = Erasure{} }, "missing erasure"},
		{"keep without end", func(c *Category) { c.Erasure = Erasure{Action: ActionKeep, Reason: "law"} }, "keep without erasure.until"},
		{"keep with bad end", func(c *Category) { c.Erasure = Erasure{Action: ActionKeep, Reason: "law", Until: "forever"} }, `erasure.until "forever"`},
		{"withheld without reason", func(c *Category) { c.Export = Export{} }, "without export.withheld_reason"},
		{"unknown fideslang", func(c *Category) { c.Fideslang = "user.style" }, `fideslang "user.style"`},
		{"missing parent", func(c *Category) { c.Parent = "user.contents" }, `parent "user.contents"`},
		{"section out of range", func(c *Category) { c.Section.Number = 9 }, "policy_section.number 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			var p problems
			tax := map[string]Category{"user": {Key: "user"}, "user.content": {Key: "user.content", Group: true}, c.Key: c}
			validateCategory(&p, tax, c, fides)
			err := p.err("taxonomy")
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("valid category rejected: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("invalid category accepted, want %q", tt.want)
			case tt.want != "" && (!strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"user.content.style"`)):
				t.Errorf("error %q does not name the category and %q", err, tt.want)
			}
		})
	}
}

func TestChecklistMapsEveryPolicyItem(t *testing.T) {
	e := newEngine(t, Options{})
	tax := e.Taxonomy()
	items := e.Checklist()
	if err := validateChecklist(items, tax); err != nil {
		t.Fatal(err)
	}
	// Items quoted from the privacy policy, one or more per section, that
	// must each appear.
	for _, want := range []string{
		"user ID", "name", "avatar", "email address", "sign-in state", "language preference",
		"prompts", "generation history", "file content", "metadata needed for generation, previews, downloads, and history",
		"orders", "full card numbers", "payment passwords", "UTM parameters", "Google Analytics identifiers",
		"IP addresses", "admin audit logs", "conversation content", "cookies", "local storage",
		"session storage", "pixels", "similar technologies",
	} {
		if !slices.ContainsFunc(items, func(it ChecklistItem) bool { return it.Item == want }) {
			t.Errorf("checklist lacks %q", want)
		}
	}
	// Every category the policy names is named by some item of its
	// section, so a category cannot drift away from the text it rests on.
	for key, c := range tax {
		if c.Group || c.Section.Number == 0 {
			continue
		}
		if !slices.ContainsFunc(items, func(it ChecklistItem) bool {
			return it.Section == c.Section.Number && slices.Contains(it.Categories, key)
		}) {
			t.Errorf("%s claims section %d, but no checklist item of that section maps to it", key, c.Section.Number)
		}
	}
	// Items stored nowhere say why.
	for _, it := range items {
		if len(it.Categories) == 0 && len(it.Reason) < 20 {
			t.Errorf("%q maps to no category and gives no real reason: %q", it.Item, it.Reason)
		}
	}
}

func TestPackageChecklistMatchesEngine(t *testing.T) {
	items, err := Checklist()
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, Options{})
	if got := e.Checklist(); len(got) != len(items) || got[0].Item != items[0].Item {
		t.Errorf("Checklist() has %d items, Engine.Checklist() %d", len(items), len(got))
	}
}

func TestValidateChecklistRejectsBadItems(t *testing.T) {
	tax := map[string]Category{"user.name": {Key: "user.name"}, "user.content": {Key: "user.content", Group: true}}
	tests := []struct {
		name string
		item ChecklistItem
		want string
	}{
		{"valid", ChecklistItem{Section: 1, Item: "name", Categories: []string{"user.name"}}, ""},
		{"valid with reason only", ChecklistItem{Section: 8, Item: "pixels", Reason: "we set none"}, ""},
		{"unknown category", ChecklistItem{Section: 1, Item: "nickname", Categories: []string{"user.nickname"}}, `category "user.nickname" is not in the taxonomy`},
		{"group category", ChecklistItem{Section: 2, Item: "content", Categories: []string{"user.content"}}, "is a group"},
		{"neither categories nor reason", ChecklistItem{Section: 8, Item: "beacons"}, "neither categories nor reason"},
		{"no section", ChecklistItem{Item: "name", Categories: []string{"user.name"}}, "section 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateChecklist([]ChecklistItem{tt.item}, tax)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("valid item rejected: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestFideslangReferenceMatchesSource compares the keys kept in
// data/fideslang.json with the fideslang files in the shared reference
// folder, when that folder is present beside the repository.
func TestFideslangReferenceMatchesSource(t *testing.T) {
	dir := findReference(t)
	fides, err := loadFideslang(sources)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
		keys map[string]string
	}{
		{"data uses", "data_uses.yml", fides.DataUses},
		{"data categories", "data_categories.yml", fides.DataCategories},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := fidesKeys(t, filepath.Join(dir, tt.file))
			got := slices.Sorted(maps.Keys(tt.keys))
			if !slices.Equal(got, want) {
				t.Errorf("data/fideslang.json %s differ from %s:\n got  %v\n want %v", tt.name, tt.file, got, want)
			}
		})
	}
	for ext := range fides.Extensions {
		if _, ok := fides.DataUses[ext]; ok {
			t.Errorf("extension %s is a fideslang data use now; drop it from extensions", ext)
		}
	}
}

func findReference(t *testing.T) string {
	t.Helper()
	for _, rel := range []string{"../../shared", "../shared", "../../../shared"} {
		dir := filepath.Join(rel, "reference", "fideslang")
		if _, err := os.Stat(filepath.Join(dir, "data_uses.yml")); err == nil {
			return dir
		}
	}
	t.Skip("shared/reference/fideslang is not beside the repository")
	return ""
}

// fidesKeys reads the fides_key values of a fideslang YAML export. Each
// entry has exactly one "fides_key:" line, so a line scan is enough.
func fidesKeys(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, ok := strings.CutPrefix(line, "fides_key: "); ok {
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}
