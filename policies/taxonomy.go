package policies

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ErrUnknownCategory is returned, wrapped with the key, for a category key
// that is not in the taxonomy.
var ErrUnknownCategory = errors.New("unknown data category")

// ErrGroupCategory is returned, wrapped with the key, for a key that only
// groups other categories: it has no purpose, retention or erasure rule, and
// no column may be tagged with it.
var ErrGroupCategory = errors.New("group data category")

// Legal bases, by their GDPR Art. 6(1) letter.
const (
	BasisConsent             = "consent"              // Art. 6(1)(a)
	BasisContract            = "contract"             // Art. 6(1)(b)
	BasisLegalObligation     = "legal_obligation"     // Art. 6(1)(c)
	BasisLegitimateInterests = "legitimate_interests" // Art. 6(1)(f)
	// BasisNotApplicable is allowed only for categories without personal
	// data (system.operations).
	BasisNotApplicable = "not_applicable"
)

// Actions that a retention rule or an erasure decision applies to data.
const (
	ActionDelete    = "delete"
	ActionAnonymize = "anonymize"
	// ActionKeep is used only by erasure: the data stays, for the stated
	// reason, until the stated end.
	ActionKeep = "keep"
	// ActionReview is the erasure answer for a key without a rule.
	ActionReview = "review"
)

// Durations that are not ISO 8601 periods.
const (
	// DurationAccountLifetime keeps data while the account exists; the
	// action applies when the account closes.
	DurationAccountLifetime = "account_lifetime"
	// DurationRowLifetime means the column has no period of its own: it goes
	// when the row it belongs to goes.
	DurationRowLifetime = "row_lifetime"
)

// retentionStarts lists the events a retention period may count from. The
// retention runner must know each of them, so the list is closed.
var retentionStarts = []string{
	"collected_at",      // the row or event was written
	"account_closed",    // the account was closed or erased
	"order_paid",        // the order's payment succeeded
	"last_activity",     // the last use of the session, ticket or device
	"superseded",        // a newer consent record replaced this one
	"request_completed", // the privacy request was answered
}

// Category is one entry of the taxonomy: a data category that columns are
// tagged with, or a group that only holds other categories.
type Category struct {
	Key         string `json:"-"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Parent is the key of the group or category this one hangs under;
	// empty for the roots "user" and "system".
	Parent string `json:"parent"`
	// Group marks a node that only groups other categories. A group has
	// name, description, parent and fideslang only.
	Group bool `json:"group,omitempty"`
	// Section is the privacy-policy section that names this category.
	Section Section `json:"policy_section"`
	// Fideslang is the fideslang category this one is or extends.
	Fideslang string `json:"fideslang"`
	// Purposes are fideslang data use keys.
	Purposes   []string   `json:"purposes,omitempty"`
	LegalBasis LegalBasis `json:"legal_basis"`
	Retention  Retention  `json:"retention"`
	Erasure    Erasure    `json:"erasure"`
	Export     Export     `json:"export"`
	// Sensitivity is low, medium or high.
	Sensitivity string `json:"sensitivity,omitempty"`
	// Identifiability says whether a value of this category identifies
	// the subject by itself: direct, pseudonymous or none.
	Identifiability string `json:"identifiability,omitempty"`
	// Personal is false only for technical data without personal content.
	Personal bool `json:"personal,omitempty"`
}

// Section names a section of the privacy policy; number 0 means the policy
// does not name the category.
type Section struct {
	Number int    `json:"number"`
	Title  string `json:"title"`
}

// LegalBasis is the GDPR Art. 6(1) basis of the processing.
type LegalBasis struct {
	Basis   string `json:"basis"`
	Article string `json:"article"`
	Name    string `json:"name"`
	Reason  string `json:"reason"`
}

// Retention says how long data is kept: Duration counted from the event
// From, after which Action applies.
type Retention struct {
	Duration string `json:"duration"`
	From     string `json:"from"`
	Action   string `json:"action"`
}

// Erasure says what an erasure request does to the data.
type Erasure struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Until says how long kept data stays: "<period> from <event>", or
	// row_lifetime. Anonymized data may say how long its pseudonymized
	// form stays.
	Until string `json:"until,omitempty"`
}

// Export says whether an access request exports the data.
type Export struct {
	Include        bool   `json:"include"`
	WithheldReason string `json:"withheld_reason,omitempty"`
}

// Role is what one role may reach.
type Role struct {
	Name        string `json:"-"`
	Description string `json:"description"`
	// OwnOnly limits the role to rows about the caller.
	OwnOnly bool    `json:"own_only"`
	Grants  []Grant `json:"grants"`
	// Deny removes categories (prefix match) that a grant would cover.
	Deny []string `json:"deny,omitempty"`
	// DenyIdentifiability removes categories whose identifiability is
	// listed, whatever the grants say.
	DenyIdentifiability []string `json:"deny_identifiability,omitempty"`
}

// Grant lets a role perform Actions on Categories; a category key covers
// every key below it.
type Grant struct {
	Actions    []string `json:"actions"`
	Categories []string `json:"categories"`
	// ExportedOnly limits the grant to categories an access request
	// exports.
	ExportedOnly bool `json:"exported_only,omitempty"`
}

// ChecklistItem maps one item that the privacy policy names to the
// categories that hold it. An item with no category carries the reason we
// store nothing for it.
type ChecklistItem struct {
	Section    int      `json:"section"`
	Item       string   `json:"item"`
	Categories []string `json:"categories"`
	Reason     string   `json:"reason,omitempty"`
	Note       string   `json:"note,omitempty"`
}

// consentMap is the data the consent gate reads: which purpose each event
// type and each field category needs.
type consentMap struct {
	Purposes map[string]struct {
		AlwaysGranted bool     `json:"always_granted"`
		Description   string   `json:"description"`
		DataUses      []string `json:"data_uses"`
	} `json:"purposes"`
	GPCBlocks  []string `json:"gpc_blocks"`
	EventTypes map[string]struct {
		Requires string `json:"requires"`
	} `json:"event_types"`
	Fields map[string]struct {
		Tiers []struct {
			Requires  string `json:"requires"`
			Transform string `json:"transform"`
		} `json:"tiers"`
	} `json:"fields"`
}

// Field transforms the consent gate may ask for.
const (
	TransformNone       = "none"
	TransformPathOnly   = "path_only"
	TransformHostOnly   = "host_only"
	TransformTruncate   = "truncate"
	TransformFamilyOnly = "family_only"
)

var transforms = []string{TransformNone, TransformPathOnly, TransformHostOnly, TransformTruncate, TransformFamilyOnly}

// fideslangRef is the part of the fideslang taxonomy we validate against.
type fideslangRef struct {
	Source         string            `json:"source"`
	DataUses       map[string]string `json:"data_uses"`
	DataCategories map[string]string `json:"data_categories"`
	// Extensions are data uses we use that the fideslang data files lack,
	// each with where it comes from.
	Extensions map[string]string `json:"extensions"`
}

func (f *fideslangRef) knownUse(key string) bool {
	if _, ok := f.DataUses[key]; ok {
		return true
	}
	_, ok := f.Extensions[key]
	return ok
}

// stewardData is the document under data.steward that the policies read.
type stewardData struct {
	Taxonomy   map[string]Category `json:"taxonomy"`
	Roles      map[string]Role     `json:"roles"`
	ConsentMap consentMap          `json:"consent_map"`

	// safety is data/safety.json, decoded apart (see
	// decodeStewardDataWithSafety).
	safety *safetyData
	// plain is true when the document holds nothing the Go types read
	// differently from the Rego (see plainData).
	plain bool
}

// decodeStrict decodes JSON and refuses unknown fields, so a misspelled key
// in the data fails loudly instead of being ignored.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	return nil
}

func decodeStewardData(raw []byte) (*stewardData, error) {
	var d stewardData
	if err := decodeStrict(raw, &d); err != nil {
		return nil, fmt.Errorf("decode policy data: %w", err)
	}
	for k, c := range d.Taxonomy {
		c.Key = k
		d.Taxonomy[k] = c
	}
	for k, r := range d.Roles {
		r.Name = k
		d.Roles[k] = r
	}
	return &d, nil
}

// problems collects validation failures so one run reports all of them.
type problems []string

func (p *problems) addf(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

func (p problems) err(what string) error {
	if len(p) == 0 {
		return nil
	}
	sort.Strings(p)
	return fmt.Errorf("invalid %s:\n  %s", what, strings.Join(p, "\n  "))
}

// validate checks the data the policies read. Each message names the
// category, role or entry and the field at fault.
func (d *stewardData) validate(ref *fideslangRef) error {
	var p problems
	for _, key := range sortedKeys(d.Taxonomy) {
		validateCategory(&p, d.Taxonomy, d.Taxonomy[key], ref)
	}
	validateRoles(&p, d.Roles, d.Taxonomy)
	validateConsentMap(&p, &d.ConsentMap, d.Taxonomy, ref)
	return p.err("policy data")
}

func validateCategory(p *problems, tax map[string]Category, c Category, ref *fideslangRef) {
	at := fmt.Sprintf("taxonomy: category %q", c.Key)
	if c.Name == "" {
		p.addf("%s: missing name", at)
	}
	if c.Description == "" {
		p.addf("%s: missing description", at)
	}
	if c.Parent == "" {
		if strings.Contains(c.Key, ".") {
			p.addf("%s: missing parent", at)
		}
	} else {
		if _, ok := tax[c.Parent]; !ok {
			p.addf("%s: parent %q is not in the taxonomy", at, c.Parent)
		}
		if !strings.HasPrefix(c.Key, c.Parent+".") {
			p.addf("%s: key does not start with its parent %q", at, c.Parent)
		}
	}
	if c.Fideslang == "" {
		p.addf("%s: missing fideslang", at)
	} else if _, ok := ref.DataCategories[c.Fideslang]; !ok {
		p.addf("%s: fideslang %q is not a fideslang data category", at, c.Fideslang)
	}
	if c.Group {
		return
	}
	if c.Section.Number < 0 || c.Section.Number > 8 {
		p.addf("%s: policy_section.number %d is not 0-8", at, c.Section.Number)
	}
	if c.Section.Title == "" {
		p.addf("%s: missing policy_section.title", at)
	}
	if len(c.Purposes) == 0 {
		p.addf("%s: missing purposes", at)
	}
	for _, u := range c.Purposes {
		if !ref.knownUse(u) {
			p.addf("%s: purpose %q is not a fideslang data use or a documented extension", at, u)
		}
	}
	switch c.LegalBasis.Basis {
	case "":
		p.addf("%s: missing legal_basis", at)
	case BasisConsent, BasisContract, BasisLegalObligation, BasisLegitimateInterests:
		if c.LegalBasis.Article == "" {
			p.addf("%s: missing legal_basis.article", at)
		}
		if !c.Personal {
			p.addf("%s: legal_basis %q on a category that is not personal", at, c.LegalBasis.Basis)
		}
	case BasisNotApplicable:
		if c.Personal {
			p.addf("%s: legal_basis not_applicable on personal data", at)
		}
	default:
		p.addf("%s: legal_basis %q is not one of consent, contract, legal_obligation, legitimate_interests", at, c.LegalBasis.Basis)
	}
	if c.LegalBasis.Basis != "" && c.LegalBasis.Reason == "" {
		p.addf("%s: missing legal_basis.reason", at)
	}
	validateRetention(p, at, c.Retention)
	validateErasure(p, at, c.Erasure)
	if !c.Export.Include && c.Export.WithheldReason == "" {
		p.addf("%s: export.include is false without export.withheld_reason", at)
	}
	if c.Sensitivity != "" && !slices.Contains([]string{"low", "medium", "high"}, c.Sensitivity) {
		p.addf("%s: sensitivity %q is not low, medium or high", at, c.Sensitivity)
	}
	if !slices.Contains([]string{"direct", "pseudonymous", "none"}, c.Identifiability) {
		p.addf("%s: identifiability %q is not direct, pseudonymous or none", at, c.Identifiability)
	}
}

func validateRetention(p *problems, at string, r Retention) {
	switch {
	case r == Retention{}:
		p.addf("%s: missing retention", at)
		return
	case r.Duration == "":
		p.addf("%s: missing retention.duration", at)
	case r.Duration == DurationAccountLifetime || r.Duration == DurationRowLifetime:
	default:
		if _, err := ParsePeriod(r.Duration); err != nil {
			p.addf("%s: retention.duration: %v", at, err)
		}
	}
	if !slices.Contains(retentionStarts, r.From) {
		p.addf("%s: retention.from %q is not one of %s", at, r.From, strings.Join(retentionStarts, ", "))
	}
	if r.Action != ActionDelete && r.Action != ActionAnonymize {
		p.addf("%s: retention.action %q is not delete or anonymize", at, r.Action)
	}
}

func validateErasure(p *problems, at string, e Erasure) {
	switch e.Action {
	case "":
		p.addf("%s: missing erasure", at)
		return
	case ActionDelete, ActionAnonymize:
	case ActionKeep:
		if e.Until == "" {
			p.addf("%s: erasure.action keep without erasure.until", at)
		}
	default:
		p.addf("%s: erasure.action %q is not delete, anonymize or keep", at, e.Action)
	}
	if e.Reason == "" {
		p.addf("%s: missing erasure.reason", at)
	}
	if e.Until != "" && e.Until != DurationRowLifetime {
		period, from, ok := strings.Cut(e.Until, " from ")
		if !ok {
			p.addf("%s: erasure.until %q is not \"<period> from <event>\"", at, e.Until)
			return
		}
		if _, err := ParsePeriod(period); err != nil {
			p.addf("%s: erasure.until: %v", at, err)
		}
		if !slices.Contains(retentionStarts, from) {
			p.addf("%s: erasure.until counts from %q, which is not one of %s", at, from, strings.Join(retentionStarts, ", "))
		}
	}
}

var roleActions = []string{"read", "list", "update", "delete", "export", "audit"}

func validateRoles(p *problems, roles map[string]Role, tax map[string]Category) {
	if len(roles) == 0 {
		p.addf("roles: no role defined")
	}
	for _, name := range sortedKeys(roles) {
		r := roles[name]
		at := fmt.Sprintf("roles: role %q", name)
		if r.Description == "" {
			p.addf("%s: missing description", at)
		}
		if len(r.Grants) == 0 {
			p.addf("%s: missing grants", at)
		}
		for i, g := range r.Grants {
			if len(g.Actions) == 0 {
				p.addf("%s: grant %d: missing actions", at, i)
			}
			for _, a := range g.Actions {
				if !slices.Contains(roleActions, a) {
					p.addf("%s: grant %d: action %q is not one of %s", at, i, a, strings.Join(roleActions, ", "))
				}
			}
			if len(g.Categories) == 0 {
				p.addf("%s: grant %d: missing categories", at, i)
			}
			for _, c := range g.Categories {
				if _, ok := tax[c]; !ok {
					p.addf("%s: grant %d: category %q is not in the taxonomy", at, i, c)
				}
			}
		}
		for _, c := range r.Deny {
			if _, ok := tax[c]; !ok {
				p.addf("%s: deny: category %q is not in the taxonomy", at, c)
			}
		}
		for _, v := range r.DenyIdentifiability {
			if !slices.Contains([]string{"direct", "pseudonymous", "none"}, v) {
				p.addf("%s: deny_identifiability %q is not direct, pseudonymous or none", at, v)
			}
		}
	}
}

func validateConsentMap(p *problems, m *consentMap, tax map[string]Category, ref *fideslangRef) {
	if len(m.Purposes) == 0 {
		p.addf("consent_map: no purposes")
	}
	for _, name := range sortedKeys(m.Purposes) {
		for _, u := range m.Purposes[name].DataUses {
			if !ref.knownUse(u) {
				p.addf("consent_map: purpose %q: data use %q is not a fideslang data use or a documented extension", name, u)
			}
		}
	}
	for _, b := range m.GPCBlocks {
		if _, ok := m.Purposes[b]; !ok {
			p.addf("consent_map: gpc_blocks: %q is not a purpose", b)
		}
	}
	for _, name := range sortedKeys(m.EventTypes) {
		if _, ok := m.Purposes[m.EventTypes[name].Requires]; !ok {
			p.addf("consent_map: event type %q: requires %q, which is not a purpose", name, m.EventTypes[name].Requires)
		}
	}
	for _, key := range sortedKeys(m.Fields) {
		at := fmt.Sprintf("consent_map: field %q", key)
		if c, ok := tax[key]; !ok || c.Group {
			p.addf("%s: not a storable taxonomy category", at)
		}
		if len(m.Fields[key].Tiers) == 0 {
			p.addf("%s: missing tiers", at)
		}
		for i, t := range m.Fields[key].Tiers {
			if _, ok := m.Purposes[t.Requires]; !ok {
				p.addf("%s: tier %d requires %q, which is not a purpose", at, i, t.Requires)
			}
			if !slices.Contains(transforms, t.Transform) {
				p.addf("%s: tier %d: transform %q is not one of %s", at, i, t.Transform, strings.Join(transforms, ", "))
			}
		}
	}
}

// validateChecklist checks that every item the privacy policy names maps to
// storable categories, or says why nothing is stored for it.
func validateChecklist(items []ChecklistItem, tax map[string]Category) error {
	var p problems
	if len(items) == 0 {
		p.addf("checklist: no items")
	}
	for i, it := range items {
		at := fmt.Sprintf("checklist: item %d %q", i, it.Item)
		if it.Item == "" {
			p.addf("%s: missing item", at)
		}
		if it.Section < 1 || it.Section > 8 {
			p.addf("%s: section %d is not 1-8", at, it.Section)
		}
		if len(it.Categories) == 0 && it.Reason == "" {
			p.addf("%s: has neither categories nor reason", at)
		}
		for _, key := range it.Categories {
			c, ok := tax[key]
			switch {
			case !ok:
				p.addf("%s: category %q is not in the taxonomy", at, key)
			case c.Group:
				p.addf("%s: category %q is a group, not a storable category", at, key)
			}
		}
	}
	return p.err("checklist")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
