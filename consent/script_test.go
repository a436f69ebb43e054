package consent_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/testutil/localetest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

func TestConsentScriptServed(t *testing.T) {
	h := newHarness(t, sqltest.SQLite(t), newClock(), func(o *consent.Config) {
		o.Text.AcceptAll = "Alle akzeptieren"
		o.Text.RejectAll = "Alle ablehnen </script><b>"
	})
	req := httptest.NewRequest("GET", "/consent.js", nil)
	resp, err := h.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Fatalf("caching headers: ETag %q, Cache-Control %q", etag, resp.Header.Get("Cache-Control"))
	}
	for _, want := range []string{
		`"policyVersion":"2026-05"`, `"bannerVersion":"b1"`, `"accept_all":"Alle akzeptieren"`,
		// Defaults fill what configuration leaves out.
		`"customize":"Customize"`,
		// The behaviour-critical parts of the script.
		`role: "dialog"`, `"aria-modal": "true"`, `e.key !== "Tab"`, `e.key === "Escape"`,
		`save("banner_accept")`, `save("banner_reject")`, `w.gtag("consent", kind`, `ad_user_data`, `ad_personalization`,
		`script[type="text/plain"][data-consent]`, `navigator.globalPrivacyControl`, `onChange:`, `show:`, `set:`, `get:`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("consent.js lacks %s", want)
		}
	}
	if strings.Contains(body, "</script><b>") || strings.Contains(body, "/*STEWARD_CONSENT_CONFIG*/") {
		t.Error("configured text reached the script unescaped, or the configuration was not filled in")
	}
	// Accept and reject use the same class: the same prominence.
	if !strings.Contains(body, `class: "stw-btn", "data-action": "accept"`) || !strings.Contains(body, `class: "stw-btn", "data-action": "reject"`) {
		t.Error("accept and reject buttons do not share one style")
	}

	req = httptest.NewRequest("GET", "/consent.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = h.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 304 {
		t.Fatalf("revalidation with the ETag: %d, want 304", resp.StatusCode)
	}
}

func TestUnknownPurposeTextRefused(t *testing.T) {
	_, err := consent.New(consent.Config{PolicyVersion: "1",
		Text: consent.BannerText{Purposes: map[string]consent.PurposeText{"advertising": {Label: "Ads"}}}},
		consent.Deps{DB: sqltest.SQLite(t)})
	if err == nil {
		t.Fatal("New accepted banner text for an unknown purpose")
	}
}

// TestConsentScriptSpeaksTheVisitorsLanguage checks the banner's wording
// follows Accept-Language, with English for any other language, that
// caches keep the languages apart, and that an ETag of one language does
// not revalidate another.
func TestConsentScriptSpeaksTheVisitorsLanguage(t *testing.T) {
	h := newHarness(t, sqltest.SQLite(t), newClock(), nil)
	get := func(lang, etag string) (int, string, string, string) {
		t.Helper()
		req := httptest.NewRequest("GET", "/consent.js", nil)
		if lang != "" {
			req.Header.Set("Accept-Language", lang)
		}
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := h.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp.Body), resp.Header.Get("ETag"), resp.Header.Get("Vary")
	}
	tests := []struct {
		lang       string
		want, not  []string
		sameAsLang string
	}{
		{"de-DE,de;q=0.9", []string{`"reject_all":"Alle ablehnen"`, `"policy_link":"Datenschutzerklärung"`, `"label":"Unbedingt erforderlich"`}, []string{`"Reject all"`}, ""},
		{"en-GB", []string{`"reject_all":"Reject all"`, `"policy_link":"Privacy policy"`}, []string{"Alle ablehnen"}, ""},
		{"fr", []string{`"reject_all":"Reject all"`}, []string{"Alle ablehnen"}, "en"},
		{"", []string{`"reject_all":"Reject all"`}, nil, "en"},
	}
	etags := map[string]string{}
	for _, tt := range tests {
		status, body, etag, vary := get(tt.lang, "")
		if status != 200 || !strings.Contains(vary, "Accept-Language") {
			t.Fatalf("%q: %d, Vary %q", tt.lang, status, vary)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%q: the script lacks %s", tt.lang, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(body, n) {
				t.Errorf("%q: the script has %s", tt.lang, n)
			}
		}
		if tt.sameAsLang != "" && etag != etags[tt.sameAsLang] {
			t.Errorf("%q: ETag %s, want English's %s", tt.lang, etag, etags[tt.sameAsLang])
		}
		etags[strings.SplitN(strings.SplitN(tt.lang, ",", 2)[0], "-", 2)[0]] = etag
	}
	if etags["de"] == etags["en"] {
		t.Fatal("German and English share an ETag")
	}
	if status, _, _, _ := get("de", etags["en"]); status != 200 {
		t.Errorf("German revalidated with English's ETag: %d, want 200", status)
	}
	if status, _, _, _ := get("de", etags["de"]); status != 304 {
		t.Errorf("German revalidated with its own ETag: %d, want 304", status)
	}
}

// TestBannerMessageFilesMatch checks every language has exactly the
// English file's messages, one label and text per purpose among them.
func TestBannerMessageFilesMatch(t *testing.T) {
	en := localetest.FilesMatch(t, consent.Messages().Files)
	for _, p := range consent.Purposes() {
		for _, suffix := range []string{"Label", "Text"} {
			if !en[consent.PurposeMessageID(p)+suffix] {
				t.Errorf("English lacks %s%s", consent.PurposeMessageID(p), suffix)
			}
		}
	}
}
