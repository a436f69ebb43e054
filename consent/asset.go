package consent

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/locale"
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

// localeFiles hold the banner's wording, one file per language:
// locales/active.<tag>.toml. The privacy center's choices page shows the
// same messages.
//
//go:embed locales/active.*.toml
var localeFiles embed.FS

// Messages returns the banner's wording as a source of messages, for the
// pages that show the same choices.
func Messages() locale.Source {
	return locale.Source{Files: localeFiles, Pattern: "locales/active.*.toml"}
}

// PurposeMessageID is the start of a purpose's two messages:
// BannerPurpose<Name>Label and BannerPurpose<Name>Text.
func PurposeMessageID(purpose string) string {
	return "BannerPurpose" + strings.ToUpper(purpose[:1]) + purpose[1:]
}

// bannerText is the wording in one language.
func bannerText(l *locale.Localizer) BannerText {
	t := BannerText{
		Title:            l.T("BannerTitle"),
		Body:             l.T("BannerBody"),
		AcceptAll:        l.T("BannerAcceptAll"),
		RejectAll:        l.T("BannerRejectAll"),
		Customize:        l.T("BannerCustomize"),
		Save:             l.T("BannerSave"),
		Close:            l.T("BannerClose"),
		PreferencesTitle: l.T("BannerPreferencesTitle"),
		PolicyURL:        "/privacy",
		PolicyLink:       l.T("BannerPolicyLink"),
		AlwaysOn:         l.T("BannerAlwaysOn"),
		GPCNotice:        l.T("BannerGPCNotice"),
		RegionLabel:      l.T("BannerRegionLabel"),
		Purposes:         map[string]PurposeText{},
	}
	for _, p := range Purposes() {
		t.Purposes[p] = PurposeText{Label: l.T(PurposeMessageID(p) + "Label"), Description: l.T(PurposeMessageID(p) + "Text")}
	}
	return t
}

// bannerCatalog is the banner's wording in every language.
var bannerCatalog = sync.OnceValues(func() (*locale.Catalog, error) { return locale.New(Messages()) })

// DefaultBannerText returns the English wording.
func DefaultBannerText() BannerText {
	c, err := bannerCatalog()
	if err != nil {
		// The files are embedded and checked by the tests.
		panic(fmt.Sprintf("consent: banner messages: %v", err))
	}
	return bannerText(c.For("en"))
}

// withDefaults fills every empty field of t from d, the wording of one
// language.
func (t BannerText) withDefaults(d BannerText) BannerText {
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

// scripts is the banner script in every language of its messages.
type scripts struct {
	catalog *locale.Catalog
	byLang  map[string]web.Script
}

// buildScripts builds the script once per language: the configured
// wording where Config.Text sets it (in every language), the messages of
// the language elsewhere.
func buildScripts(cfg Config) (scripts, error) {
	c, err := bannerCatalog()
	if err != nil {
		return scripts{}, fmt.Errorf("consent: banner messages: %w", err)
	}
	out := scripts{catalog: c, byLang: map[string]web.Script{}}
	for _, tag := range c.Languages() {
		l := c.For(tag.String())
		s, err := buildScript(cfg, cfg.Text.withDefaults(bannerText(l)))
		if err != nil {
			return scripts{}, err
		}
		out.byLang[l.Lang()] = s
	}
	return out, nil
}

// serve answers GET /consent.js in the best language of the request's
// Accept-Language.
func (s scripts) serve(c *fiber.Ctx) error {
	c.Vary(fiber.HeaderAcceptLanguage)
	return s.byLang[s.catalog.Match(c.Get(fiber.HeaderAcceptLanguage)).Lang()].Serve(c)
}

// buildScript puts the configuration, with its wording, into the
// embedded script.
func buildScript(cfg Config, text BannerText) (web.Script, error) {
	for p := range cfg.Text.Purposes {
		if !slices.Contains(Purposes(), p) {
			return web.Script{}, fmt.Errorf("consent: banner text for unknown purpose %q", p)
		}
	}
	sc := scriptConfig{
		PolicyVersion: cfg.PolicyVersion,
		BannerVersion: cfg.BannerVersion,
		Purposes:      Purposes(),
		Text:          text,
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
