package consent

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/stewardhq/steward/internal/web"
)

//go:embed consent.js
var consentJS []byte

// configMarker is replaced by the banner's configuration when the script
// is built.
var configMarker = []byte("/*STEWARD_CONSENT_CONFIG*/{}")

// BannerText is the wording of the banner and the preferences dialog. Every
// field has an English default; configuration overrides any of them.
type BannerText struct {
	Title            string                 `json:"title"`
	Body             string                 `json:"body"`
	AcceptAll        string                 `json:"accept_all"`
	RejectAll        string                 `json:"reject_all"`
	Customize        string                 `json:"customize"`
	Save             string                 `json:"save"`
	Close            string                 `json:"close"`
	PreferencesTitle string                 `json:"preferences_title"`
	PolicyURL        string                 `json:"policy_url"`
	PolicyLink       string                 `json:"policy_link"`
	AlwaysOn         string                 `json:"always_on"`
	GPCNotice        string                 `json:"gpc_notice"`
	RegionLabel      string                 `json:"region_label"`
	Purposes         map[string]PurposeText `json:"purposes"`
}

// PurposeText names and explains one purpose in the dialog.
type PurposeText struct {
	Label       string `json:"label"`
	Description string `json:"description"`
}

// DefaultBannerText returns the English wording.
func DefaultBannerText() BannerText {
	return BannerText{
		Title:            "Your privacy choices",
		Body:             "We use cookies and similar storage that are strictly necessary to run this site. With your consent we also remember preferences, measure visits to improve the product, and attribute visits to campaigns. You can change your choice at any time.",
		AcceptAll:        "Accept all",
		RejectAll:        "Reject all",
		Customize:        "Customize",
		Save:             "Save choices",
		Close:            "Close",
		PreferencesTitle: "Privacy preferences",
		PolicyURL:        "/privacy",
		PolicyLink:       "Privacy policy",
		AlwaysOn:         "Always on",
		GPCNotice:        "Your browser sends a Global Privacy Control signal, so marketing stays off unless you switch it on here.",
		RegionLabel:      "Cookie consent",
		Purposes: map[string]PurposeText{
			PurposeNecessary:  {Label: "Strictly necessary", Description: "Sign-in, security and remembering these choices."},
			PurposeFunctional: {Label: "Functional", Description: "Remembering interface preferences beyond what you set yourself."},
			PurposeAnalytics:  {Label: "Analytics", Description: "Counting visits and use of features with a first-party visitor id, to improve the product."},
			PurposeMarketing:  {Label: "Marketing", Description: "Attributing visits and purchases to campaigns and ad clicks, and linking events to your account."},
		},
	}
}

// withDefaults fills every empty field of t from the defaults.
func (t BannerText) withDefaults() BannerText {
	d := DefaultBannerText()
	fill := func(dst *string, def string) {
		if strings.TrimSpace(*dst) == "" {
			*dst = def
		}
	}
	fill(&t.Title, d.Title)
	fill(&t.Body, d.Body)
	fill(&t.AcceptAll, d.AcceptAll)
	fill(&t.RejectAll, d.RejectAll)
	fill(&t.Customize, d.Customize)
	fill(&t.Save, d.Save)
	fill(&t.Close, d.Close)
	fill(&t.PreferencesTitle, d.PreferencesTitle)
	fill(&t.PolicyURL, d.PolicyURL)
	fill(&t.PolicyLink, d.PolicyLink)
	fill(&t.AlwaysOn, d.AlwaysOn)
	fill(&t.GPCNotice, d.GPCNotice)
	fill(&t.RegionLabel, d.RegionLabel)
	purposes := map[string]PurposeText{}
	for _, p := range Purposes() {
		pt := t.Purposes[p]
		fill(&pt.Label, d.Purposes[p].Label)
		fill(&pt.Description, d.Purposes[p].Description)
		purposes[p] = pt
	}
	t.Purposes = purposes
	return t
}

// scriptConfig is what consent.js reads.
type scriptConfig struct {
	PolicyVersion string     `json:"policyVersion"`
	BannerVersion string     `json:"bannerVersion"`
	Purposes      []string   `json:"purposes"`
	Text          BannerText `json:"text"`
	CSRFCookie    string     `json:"csrfCookie"`
	CSRFHeader    string     `json:"csrfHeader"`
}

// buildScript puts the configuration into the embedded script.
func buildScript(cfg Config) (web.Script, error) {
	for p := range cfg.Text.Purposes {
		if !slices.Contains(Purposes(), p) {
			return web.Script{}, fmt.Errorf("consent: banner text for unknown purpose %q", p)
		}
	}
	sc := scriptConfig{
		PolicyVersion: cfg.PolicyVersion,
		BannerVersion: cfg.BannerVersion,
		Purposes:      Purposes(),
		Text:          cfg.Text.withDefaults(),
		CSRFCookie:    cfg.CSRFCookie,
		CSRFHeader:    cfg.CSRFHeader,
	}
	// encoding/json escapes <, > and & in strings, so no configured text
	// can close the script or open markup.
	raw, err := json.Marshal(sc)
	if err != nil {
		return web.Script{}, fmt.Errorf("consent: encode banner config: %w", err)
	}
	if !bytes.Contains(consentJS, configMarker) {
		return web.Script{}, fmt.Errorf("consent: consent.js lacks its configuration marker")
	}
	return web.NewScript(bytes.Replace(consentJS, configMarker, raw, 1)), nil
}
