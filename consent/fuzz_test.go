package consent_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/testutil/visitortest"
	"github.com/stewardhq/steward/internal/web"
)

// Fuzzed request shapes, as bits of FuzzPutConsent's mode argument.
const (
	fuzzGPC      = 1 << iota // the Sec-GPC header
	fuzzSignedIn             // a signed-in session
)

// FuzzPutConsent sends fuzzed bodies to PUT /v1/consent on a real
// database. A request is never a server error, a refused one is a problem
// document, and an accepted choice is answered with the purposes it sets.
func FuzzPutConsent(f *testing.F) {
	for _, seed := range []struct {
		body string
		mode uint8
	}{
		{`{"method":"banner_accept","policy_version":"2026-05","banner_version":"b1"}`, 0},
		{`{"method":"banner_accept","policy_version":"2026-05","banner_version":"b1"}`, fuzzGPC},
		{`{"method":"banner_reject","policy_version":"2026-05","banner_version":"b1"}`, fuzzSignedIn},
		{`{"method":"banner_save","purposes":{"analytics":true,"marketing":false},"policy_version":"2026-05","banner_version":"b1"}`, 0},
		{`{"method":"preferences","purposes":{"necessary":true,"functional":true,"marketing":true},"policy_version":"2026-05","banner_version":"b1","gpc":true}`, 0},
		{`{"method":"gpc"}`, 0},
		{`{"method":"api","purposes":{"marketing":true},"policy_version":"2026-05","banner_version":"b1"}`, fuzzSignedIn | fuzzGPC},
		{`{"method":"banner_save","purposes":{"necessary":false,"ads":true},"policy_version":"2019","banner_version":"b0"}`, 0},
		{`{"method":"banner_accept","Method":"banner_reject","policy_version":"2026-05","banner_version":"b1"}`, 0},
		{`{"method":"banner_accept","policy_version":"2026-05","banner_version":"b1","extra":1}`, 0},
		{`{"method":"banner_accept","policy_version":"2026-05","banner_version":"b1"} {}`, 0},
		{"{\"method\":\"banner_accept\",\"policy_version\":\"2026-05\xff\",\"banner_version\":\"b1\"}", 0},
		{`{"purposes":{"analytics":"yes"}}`, 0},
		{`[]`, 0},
		{``, 0},
	} {
		f.Add([]byte(seed.body), "application/json", seed.mode)
	}
	f.Add([]byte(`{"method":"banner_accept"}`), "text/plain", uint8(0))

	db := sqltest.SQLite(f)
	// Each request comes a second after the last, so that the newest
	// choice of the signed-in user is the last one made.
	clk := newClock()
	mod, err := consent.New(consent.Config{
		PolicyVersion:  "2026-05",
		BannerVersion:  "b1",
		HashKey:        []byte("test erasure key"),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")},
	}, consent.Deps{DB: db, Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler)})
	app.Use(authz.Middleware(visitortest.Auth{}))
	mod.Mount(app, web.NewOpenAPI(web.OpenAPIInfo{}))

	f.Fuzz(func(t *testing.T, body []byte, contentType string, mode uint8) {
		if !httpguts.ValidHeaderFieldValue(contentType) {
			t.Skip("no HTTP client sends this header value")
		}
		clk.Advance(time.Second)
		v := visitortest.Visitor{UserAgent: visitortest.Firefox, GPC: mode&fuzzGPC != 0}
		if mode&fuzzSignedIn != 0 {
			v.User = "fuzz-user"
		}
		req := v.Request(http.MethodPut, "/v1/consent", bytes.NewReader(body), contentType)
		// The content type goes as it came, an empty one too.
		req.Header.Set("Content-Type", contentType)
		resp, raw := visitortest.Send(t, app, req, 30_000) // milliseconds: a longer request has hung
		switch resp.StatusCode {
		case http.StatusOK:
			checkChoice(t, resp, body, raw, mode)
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			var p problem
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), web.ContentTypeProblem) ||
				json.Unmarshal(raw, &p) != nil || p.Status != resp.StatusCode {
				t.Fatalf("%d is not a problem document: %s", resp.StatusCode, raw)
			}
			if cookieSet(resp) {
				t.Fatalf("a refused choice set the visitor cookie: %s", raw)
			}
		default:
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, raw)
		}
	})
}

// checkChoice checks the answer to an accepted choice against the choice
// sent. Without a session every request is a new visitor's first choice,
// so a purpose the choice leaves out is denied.
func checkChoice(t *testing.T, resp *http.Response, body, raw []byte, mode uint8) {
	t.Helper()
	var in consent.Choice
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatalf("200 for a body that is not a choice: %q", body)
	}
	var v consent.View
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("200 answer %s: %v", raw, err)
	}
	if !cookieSet(resp) {
		t.Fatalf("no visitor cookie after a choice: %s", raw)
	}
	if v.PolicyVersion != "2026-05" || v.BannerVersion != "b1" || !v.Purposes[consent.PurposeNecessary] {
		t.Fatalf("answer to a recorded choice %s", raw)
	}
	// The signal's opt-out answers no banner: only another method's
	// choice stops the asking.
	if in.Method != consent.MethodGPC && (v.Ask || v.Choice == nil) {
		t.Fatalf("still asking after choice %s: %s", body, raw)
	}
	if len(v.Purposes) != len(consent.Purposes()) {
		t.Fatalf("answer lists purposes %v, want %v", v.Purposes, consent.Purposes())
	}
	gpc := mode&fuzzGPC != 0 || in.GPC || in.Method == consent.MethodGPC
	first := mode&fuzzSignedIn == 0
	for _, p := range consent.Purposes() {
		if p == consent.PurposeNecessary {
			continue
		}
		granted, named := in.Purposes[p]
		var want, known bool
		switch in.Method {
		case consent.MethodBannerAccept:
			// "Accept all" is no opt-in to marketing under the signal.
			want, known = !(p == consent.PurposeMarketing && gpc), true
		case consent.MethodBannerReject:
			want, known = false, true
		case consent.MethodGPC:
			want, known = false, p == consent.PurposeMarketing || first
		default:
			want, known = granted, named || first
		}
		if known && v.Purposes[p] != want {
			t.Fatalf("%s is %v after choice %s (gpc %v), want %v: %s", p, v.Purposes[p], body, gpc, want, raw)
		}
	}
}

func cookieSet(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == consent.DefaultCookieName && c.Value != "" {
			return true
		}
	}
	return false
}
