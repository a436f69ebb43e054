package consent_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stewardhq/steward/consent"
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
