package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/portal"
)

// strictPageCSP is the policy of every privacy center page.
const strictPageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

var (
	categoryBlock = regexp.MustCompile(`<details class="category">`)
	csrfField     = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	versionField  = regexp.MustCompile(`name="(policy|banner)_version" value="([^"]*)"`)
	rawMessageID  = regexp.MustCompile(`\b(Banner|Consent|Privacy|Data|Delete|Request|Keep)[A-Z]\w+\b`)
	previewCount  = regexp.MustCompile(`</strong> \(([0-9]+) items?\)`)
)

// devSignIn signs a browser in through the --dev email form.
func devSignIn(t *testing.T, b *pageClient, email string) {
	t.Helper()
	resp, body := b.postForm("/v1/auth/dev", url.Values{"email": {email}})
	if resp.StatusCode != http.StatusSeeOther || b.cookies[accounts.CookieSession] == "" {
		t.Fatalf("sign in %s: %d %s", email, resp.StatusCode, body)
	}
}

// consentForm reads the versions and CSRF token the preferences page put
// in its form.
func consentForm(t *testing.T, b *pageClient) url.Values {
	t.Helper()
	resp, body := b.get("/privacy/consent")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /privacy/consent: %d %s", resp.StatusCode, body)
	}
	form := url.Values{}
	for _, m := range versionField.FindAllStringSubmatch(body, -1) {
		form.Set(m[1]+"_version", m[2])
	}
	if m := csrfField.FindStringSubmatch(body); m != nil {
		form.Set("csrf_token", m[1])
	}
	return form
}

// consentRows reads a subject's current consent straight from the store:
// purpose -> granted, and the method of each.
func consentRows(t *testing.T, srv *server, column, id string) (map[string]bool, map[string]string) {
	t.Helper()
	var rows []struct {
		Purpose string `bun:"purpose"`
		Granted bool   `bun:"granted"`
		Method  string `bun:"method"`
	}
	if err := srv.stores.sql.NewSelect().Table("consent_state").Column("purpose", "granted", "method").
		Where("? = ?", bun.Ident(column), id).Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	granted, method := map[string]bool{}, map[string]string{}
	for _, r := range rows {
		granted[r.Purpose], method[r.Purpose] = r.Granted, r.Method
	}
	return granted, method
}

// heldItems is the number of items GET /v1/privacy/holdings says are
// held about the browser's account.
func heldItems(t *testing.T, b *pageClient) int64 {
	t.Helper()
	_, raw := b.get("/v1/privacy/holdings")
	var hv struct {
		Holdings []struct {
			Items int64 `json:"items"`
		} `json:"holdings"`
	}
	if err := json.Unmarshal([]byte(raw), &hv); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, h := range hv.Holdings {
		n += h.Items
	}
	return n
}

// chooseOnPage makes a choice (an action of the choices form) on the
// privacy center's page and returns the browser's visitor id.
func chooseOnPage(t *testing.T, b *pageClient, action string) string {
	t.Helper()
	form := consentForm(t, b)
	form.Set("action", action)
	if resp, body := b.postForm("/privacy/consent", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s: %d %s", action, resp.StatusCode, body)
	}
	return b.cookies[consent.DefaultCookieName]
}

// formRequest is a form post as a browser sends it.
func formRequest(path string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func countRows(t *testing.T, srv *server, table, where string, args ...any) int {
	t.Helper()
	n, err := srv.stores.sql.NewSelect().Table(table).Where(where, args...).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// TestPrivacyCenterOnAWiredServer uses the privacy center the way people
// do, on a wired development server: a visitor reads what is kept and
// changes their mind about cookies, a person signs in, sees their counts,
// chooses again and downloads their data; another person's request stays
// theirs; forged and stale forms are refused and record nothing. Results
// are read from the stores.
func TestPrivacyCenterOnAWiredServer(t *testing.T) {
	ctx := context.Background()
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev = true })

	t.Run("every role and a visitor reach every page", func(t *testing.T) {
		m, _, err := srv.dataMap.Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tax := srv.engine.Taxonomy()
		personal := map[string]bool{}
		for _, e := range m.Entries {
			if c := tax[e.Category]; c.Personal {
				personal[e.Category] = true
			}
		}
		clients := map[string]*pageClient{"visitor": newPageClient(t, srv)}
		for _, role := range authz.Roles() {
			tok, err := srv.wired.accounts.CreateToken(ctx, role+".center@example.com", role)
			if err != nil {
				t.Fatal(err)
			}
			clients[role] = &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
		}
		for who, c := range clients {
			// A request that is no one's is refused like another's:
			// signed out without a cookie by 401, signed in by 404.
			want := http.StatusNotFound
			if who == "visitor" {
				want = http.StatusUnauthorized
			}
			if resp, _ := c.get("/privacy/requests/pr_nobodys"); resp.StatusCode != want {
				t.Errorf("GET someone else's request as %s: %d, want %d", who, resp.StatusCode, want)
			}
			for _, path := range []string{"/privacy", "/privacy/consent", "/privacy/data", "/privacy/delete"} {
				resp, body := c.get(path)
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != strictPageCSP ||
					resp.Header.Get("Cache-Control") != "no-store" {
					t.Fatalf("GET %s as %s: %d CSP %q\n%s", path, who, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
				}
				if strings.Contains(body, "<script") || strings.Contains(body, "style=") {
					t.Errorf("GET %s as %s: the page has inline script or style", path, who)
				}
				if path == "/privacy" {
					if n := len(categoryBlock.FindAllString(body, -1)); n != len(personal) {
						t.Errorf("GET /privacy as %s shows %d categories, the data map has %d personal ones", who, n, len(personal))
					}
					signedIn := who != "visitor"
					if strings.Contains(body, "About you, right now") != signedIn || strings.Contains(body, "cookie and events hold") == signedIn {
						t.Errorf("GET /privacy as %s: the wrong introduction", who)
					}
				}
			}
		}
	})

	t.Run("the choices page says what the banner says, in German", func(t *testing.T) {
		b := newPageClient(t, srv)
		req := httptest.NewRequest(http.MethodGet, "/privacy/consent", nil)
		req.Header.Set("Accept-Language", "de-AT")
		_, page := b.send(req)
		for _, want := range []string{"Alle ablehnen", "Alle akzeptieren", "Auswahl speichern", "Unbedingt erforderlich", "Analyse"} {
			if !strings.Contains(page, want) {
				t.Errorf("the German choices page lacks %q", want)
			}
		}
		if id := rawMessageID.FindString(page); id != "" {
			t.Errorf("the German choices page shows the message id %s", id)
		}
		req = httptest.NewRequest(http.MethodGet, "/consent.js", nil)
		req.Header.Set("Accept-Language", "de-AT")
		if _, script := b.send(req); !strings.Contains(script, `"reject_all":"Alle ablehnen"`) {
			t.Error("the German banner does not say what the page says")
		}
	})

	t.Run("a visitor changes their mind", func(t *testing.T) {
		b := newPageClient(t, srv)
		form := consentForm(t, b)
		form.Set("action", "save")
		form.Set("purpose_analytics", "on")
		resp, body := b.postForm("/privacy/consent", form)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/privacy/consent?saved=1" {
			t.Fatalf("save: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		vid := b.cookies[consent.DefaultCookieName]
		if vid == "" {
			t.Fatal("no visitor cookie after a choice")
		}
		granted, method := consentRows(t, srv, "visitor_id", vid)
		if !granted["analytics"] || granted["marketing"] || granted["functional"] || method["analytics"] != consent.MethodPreferences {
			t.Fatalf("after save: granted %v method %v", granted, method)
		}
		// Withdraw everything.
		form = consentForm(t, b)
		form.Set("action", "reject_all")
		if resp, body := b.postForm("/privacy/consent", form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("reject all: %d %s", resp.StatusCode, body)
		}
		granted, _ = consentRows(t, srv, "visitor_id", vid)
		if granted["analytics"] || granted["marketing"] || granted["functional"] || !granted["necessary"] {
			t.Fatalf("after reject all: %v", granted)
		}
		// The history shows every proof row of this browser, and no one else's.
		_, page := b.get("/privacy/consent")
		proofs := countRows(t, srv, "consent_log", "visitor_id = ?", vid)
		if shown := strings.Count(page, "<td>20"); shown != proofs || proofs == 0 {
			t.Errorf("the history shows %d rows, the proof log holds %d", shown, proofs)
		}
		// A forged post from another site and a stale form record nothing.
		before := countRows(t, srv, "consent_log", "visitor_id = ?", vid)
		form = consentForm(t, b)
		form.Set("action", "accept_all")
		req := formRequest("/privacy/consent", form)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if resp, _ := b.send(req); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site post: %d, want 403", resp.StatusCode)
		}
		req = formRequest("/privacy/consent", form)
		req.Header.Set("Origin", "https://evil.example")
		if resp, _ := b.send(req); resp.StatusCode != http.StatusForbidden {
			t.Errorf("post from another origin: %d, want 403", resp.StatusCode)
		}
		form.Set("policy_version", "0-old")
		resp, _ = b.postForm("/privacy/consent", form)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/privacy/consent?error=version" {
			t.Errorf("stale form: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if _, page := b.get("/privacy/consent?error=version"); !strings.Contains(page, `role="alert"`) {
			t.Error("the stale form's error is not shown")
		}
		if after := countRows(t, srv, "consent_log", "visitor_id = ?", vid); after != before {
			t.Errorf("refused posts recorded %d proof rows", after-before)
		}
		form.Set("action", "everything")
		resp, body = b.postForm("/privacy/consent", form)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"action"`) {
			t.Errorf("unknown action: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("a person signs in, chooses and downloads their data", func(t *testing.T) {
		b := newPageClient(t, srv)
		devSignIn(t, b, "ann.center@example.com")
		u, err := srv.wired.accounts.UserByEmail(ctx, "ann.center@example.com")
		if err != nil {
			t.Fatal(err)
		}
		// The counts are what the holdings route answers.
		resp, page := b.get("/privacy")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /privacy: %d", resp.StatusCode)
		}
		total := heldItems(t, b)
		if total == 0 || !strings.Contains(page, "Steward holds "+strconv.FormatInt(total, 10)+" items about you") {
			t.Errorf("the summary does not say %d items:\n%s", total, page)
		}

		// A choice needs the session's CSRF token.
		form := consentForm(t, b)
		form.Set("action", "accept_all")
		token := form.Get("csrf_token")
		form.Del("csrf_token")
		if resp, _ := b.postForm("/privacy/consent", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a signed-in choice without the CSRF token: %d, want 403", resp.StatusCode)
		}
		form.Set("csrf_token", token)
		if resp, body := b.postForm("/privacy/consent", form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("accept all: %d %s", resp.StatusCode, body)
		}
		granted, method := consentRows(t, srv, "user_id", u.ID)
		if !granted["analytics"] || !granted["marketing"] || method["marketing"] != consent.MethodBannerAccept {
			t.Errorf("the account's consent after accept all: %v %v", granted, method)
		}

		// Download: file the request, follow it to its page.
		if resp, _ := b.postForm("/privacy/data/export", url.Values{}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("export without the CSRF token: %d, want 403", resp.StatusCode)
		}
		resp, body := b.postForm("/privacy/data/export", url.Values{"csrf_token": {token}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/privacy/requests/") {
			t.Fatalf("export: %d %q %s", resp.StatusCode, loc, body)
		}
		id := strings.TrimPrefix(loc, "/privacy/requests/")
		if n := countRows(t, srv, "privacy_requests", "id = ? AND user_id = ? AND type = 'access'", id, u.ID); n != 1 {
			t.Fatalf("privacy_requests holds %d rows for the filed request", n)
		}
		// A second click while it is prepared leads to the same request.
		resp, _ = b.postForm("/privacy/data/export", url.Values{"csrf_token": {token}})
		if again := resp.Header.Get("Location"); again != loc {
			t.Errorf("a second click led to %q, want the open request %q", again, loc)
		}
		if n := countRows(t, srv, "privacy_requests", "user_id = ? AND type = 'access'", u.ID); n != 1 {
			t.Errorf("two clicks filed %d access requests", n)
		}
		resp, page = b.get(loc)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Request received") {
			t.Fatalf("the request's page: %d\n%s", resp.StatusCode, page)
		}
		if _, err := srv.wired.privacy.Process(ctx, id); err != nil {
			t.Fatal(err)
		}
		_, page = b.get(loc)
		if strings.Contains(page, `http-equiv="refresh"`) || !strings.Contains(page, "/download?exp=") {
			t.Errorf("a completed request's page has no download link, or still refreshes:\n%s", page)
		}
		_, list := b.get("/privacy/data")
		if !strings.Contains(list, `href="/privacy/requests/`+id+`"`) {
			t.Errorf("the data page does not list the request")
		}
		// Once it is done, a new download can be asked for.
		resp, _ = b.postForm("/privacy/data/export", url.Values{"csrf_token": {token}})
		if next := resp.Header.Get("Location"); next == loc || !strings.HasPrefix(next, "/privacy/requests/") {
			t.Errorf("a download after a finished one led to %q", next)
		}

		// Another person sees neither the request nor a trace of it.
		other := newPageClient(t, srv)
		devSignIn(t, other, "bob.center@example.com")
		if resp, _ := other.get(loc); resp.StatusCode != http.StatusNotFound {
			t.Errorf("another account's request: %d, want 404", resp.StatusCode)
		}
		if _, list := other.get("/privacy/data"); strings.Contains(list, id) {
			t.Error("another account's data page lists the request")
		}
		// Signed out: the request page asks for a sign-in, the data page
		// offers one and no form.
		visitor := newPageClient(t, srv)
		if resp, _ := visitor.get(loc); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a request's page signed out: %d, want 401", resp.StatusCode)
		}
		if resp, _ := visitor.postForm("/privacy/data/export", url.Values{}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("export signed out: %d, want 401", resp.StatusCode)
		}
		if _, page := visitor.get("/privacy/data"); strings.Contains(page, `action="/privacy/data/export"`) {
			t.Error("the signed-out data page offers the export form")
		}
	})

	t.Run("a person previews and deletes their account", func(t *testing.T) {
		b := newPageClient(t, srv)
		devSignIn(t, b, "eve.center@example.com")
		token := b.cookies[accounts.CookieCSRF]
		resp, page := b.get("/privacy/delete")
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/privacy/delete"`) || strings.Contains(page, "sign in again first") {
			t.Fatalf("GET /privacy/delete: %d\n%s", resp.StatusCode, page)
		}
		// The preview accounts for everything held, item for item.
		var previewed int64
		for _, m := range previewCount.FindAllStringSubmatch(page, -1) {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			previewed += n
		}
		held := heldItems(t, b)
		if previewed != held || held == 0 {
			t.Errorf("the preview accounts for %d items, %d are held", previewed, held)
		}
		if !strings.Contains(page, "Email address") {
			t.Error("the preview does not name the email address")
		}

		// Without the box ticked nothing is filed.
		resp, _ = b.postForm("/privacy/delete", url.Values{"csrf_token": {token}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/privacy/delete?error=confirm" {
			t.Errorf("unconfirmed: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		u, err := srv.wired.accounts.UserByEmail(ctx, "eve.center@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, srv, "privacy_requests", "user_id = ? AND type = 'erasure'", u.ID); n != 0 {
			t.Fatalf("an unconfirmed deletion filed %d requests", n)
		}
		resp, body := b.postForm("/privacy/delete", url.Values{"csrf_token": {token}, "confirm": {"on"}})
		loc := resp.Header.Get("Location")
		id, status, ok := strings.Cut(strings.TrimPrefix(loc, "/privacy/requests/"), "?token=")
		if resp.StatusCode != http.StatusSeeOther || !ok || status == "" {
			t.Fatalf("confirmed: %d %q %s", resp.StatusCode, loc, body)
		}
		if _, err := srv.wired.privacy.Process(ctx, id); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, srv, "users", "email = ?", "eve.center@example.com"); n != 0 {
			t.Fatalf("the account is still in users after the erasure (%d rows)", n)
		}
		// The status link shows the certificate to a browser with no
		// session left; a wrong token shows nothing.
		stranger := newPageClient(t, srv)
		resp, page = stranger.get(loc)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Certificate of deletion") || !strings.Contains(page, "nothing of yours left") {
			t.Fatalf("the request's page by its token: %d\n%s", resp.StatusCode, page)
		}
		resp, raw := stranger.get("/privacy/requests/" + id + "/certificate.json?token=" + url.QueryEscape(status))
		var cert struct {
			RequestID    string `json:"request_id"`
			Verification struct {
				Passed bool `json:"passed"`
			} `json:"verification"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(raw), &cert) != nil || cert.RequestID != id || !cert.Verification.Passed {
			t.Errorf("the certificate download: %d %s", resp.StatusCode, raw)
		}
		for _, bad := range []string{"1." + strings.Repeat("0", 64), status[:len(status)-1] + "x", "nope"} {
			if resp, _ := stranger.get("/privacy/requests/" + id + "?token=" + url.QueryEscape(bad)); resp.StatusCode != http.StatusNotFound {
				t.Errorf("a wrong token %q: %d, want 404", bad, resp.StatusCode)
			}
		}
	})

	t.Run("a deletion needs a recent sign-in", func(t *testing.T) {
		// An API token is no sign-in at all.
		tok, err := srv.wired.accounts.CreateToken(ctx, "fay.center@example.com", "user")
		if err != nil {
			t.Fatal(err)
		}
		c := &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
		_, page := c.get("/privacy/delete")
		if !strings.Contains(page, "sign in again first") || strings.Contains(page, `action="/privacy/delete"`) {
			t.Errorf("the page without a recent sign-in offers the deletion:\n%s", page)
		}
		resp, _ := c.postForm("/privacy/delete", url.Values{"confirm": {"on"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/privacy/delete?error=reauth" {
			t.Errorf("a deletion without a recent sign-in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		u, err := srv.wired.accounts.UserByEmail(ctx, "fay.center@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, srv, "privacy_requests", "user_id = ?", u.ID); n != 0 {
			t.Errorf("a refused deletion filed %d requests", n)
		}
		if resp, _ := newPageClient(t, srv).postForm("/privacy/delete", url.Values{"confirm": {"on"}}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a deletion signed out: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("a visitor downloads and erases their browser's data, and reaches no one else's", func(t *testing.T) {
		// Without a cookie nothing is tied to the browser.
		none := newPageClient(t, srv)
		if _, page := none.get("/privacy/data"); !strings.Contains(page, "holds no cookie of ours") || strings.Contains(page, `action="/privacy/data/export"`) {
			t.Errorf("/privacy/data without a cookie offers a download:\n%s", page)
		}
		if resp, _ := none.postForm("/privacy/data/export", url.Values{}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a download without a cookie: %d, want 401", resp.StatusCode)
		}

		b := newPageClient(t, srv)
		vid := chooseOnPage(t, b, "accept_all")
		if _, page := b.get("/privacy/data"); !strings.Contains(page, "Download this browser&#39;s data") || !strings.Contains(page, `action="/privacy/data/export"`) {
			t.Fatalf("/privacy/data for a visitor:\n%s", page)
		}
		resp, body := b.postForm("/privacy/data/export", url.Values{})
		loc := resp.Header.Get("Location")
		id := strings.TrimPrefix(loc, "/privacy/requests/")
		if resp.StatusCode != http.StatusSeeOther || id == loc || id == "" {
			t.Fatalf("a visitor's download: %d %q %s", resp.StatusCode, loc, body)
		}
		if n := countRows(t, srv, "privacy_requests", "id = ? AND visitor_id = ? AND user_id = '' AND email = '' AND status = 'verified'", id, vid); n != 1 {
			t.Fatalf("the visitor's request is not stored as theirs (%d rows)", n)
		}
		// A second click while it is prepared leads to the same request.
		if resp, _ := b.postForm("/privacy/data/export", url.Values{}); resp.Header.Get("Location") != loc {
			t.Errorf("a second click: %q, want %q", resp.Header.Get("Location"), loc)
		}
		// Another browser and a signed-in person do not see it.
		other := newPageClient(t, srv)
		chooseOnPage(t, other, "reject_all")
		if resp, _ := other.get(loc); resp.StatusCode != http.StatusNotFound {
			t.Errorf("another browser opens the visitor's request: %d, want 404", resp.StatusCode)
		}
		ann := newPageClient(t, srv)
		devSignIn(t, ann, "ann.visitor@example.com")
		if resp, _ := ann.get(loc); resp.StatusCode != http.StatusNotFound {
			t.Errorf("a signed-in person opens the visitor's request: %d, want 404", resp.StatusCode)
		}
		if _, page := other.get("/privacy/data"); strings.Contains(page, id) {
			t.Error("another browser's list shows the visitor's request")
		}
		if _, err := srv.wired.privacy.Process(ctx, id); err != nil {
			t.Fatal(err)
		}
		_, page := b.get(loc)
		m := regexp.MustCompile(`href="(/v1/privacy/requests/[^"]+/download\?[^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("the completed request's page has no download link:\n%s", page)
		}
		if resp, zip := b.get(strings.ReplaceAll(m[1], "&amp;", "&")); resp.StatusCode != http.StatusOK || !strings.HasPrefix(zip, "PK") {
			t.Fatalf("the download: %d", resp.StatusCode)
		}
		if _, page := b.get("/privacy/data"); !strings.Contains(page, "/privacy/requests/"+id) {
			t.Error("the browser's list does not show its request")
		}

		// Erasing: first the preview, then the confirmation.
		resp, page = b.get("/privacy/delete")
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "what it did since the last sign-in on it") || !strings.Contains(page, `action="/privacy/delete"`) {
			t.Fatalf("/privacy/delete for a visitor: %d\n%s", resp.StatusCode, page)
		}
		if resp, _ := b.postForm("/privacy/delete", url.Values{}); resp.Header.Get("Location") != "/privacy/delete?error=confirm" {
			t.Errorf("an unconfirmed erasure: %q", resp.Header.Get("Location"))
		}
		if n := countRows(t, srv, "consent_state", "visitor_id = ?", vid); n == 0 {
			t.Fatal("the browser's choice is not stored")
		}
		resp, body = b.postForm("/privacy/delete", url.Values{"confirm": {"on"}})
		loc = resp.Header.Get("Location")
		eid, token, ok := strings.Cut(strings.TrimPrefix(loc, "/privacy/requests/"), "?token=")
		if resp.StatusCode != http.StatusSeeOther || !ok || token == "" {
			t.Fatalf("a visitor's erasure: %d %q %s", resp.StatusCode, loc, body)
		}
		if b.cookies[consent.DefaultCookieName] != "" {
			t.Error("the browser keeps its visitor cookie after asking for the erasure")
		}
		if _, err := srv.wired.privacy.Process(ctx, eid); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, srv, "privacy_requests", "id = ? AND status = 'completed'", eid); n != 1 {
			t.Fatal("the visitor's erasure did not complete")
		}
		if n := countRows(t, srv, "consent_state", "visitor_id = ?", vid); n != 0 {
			t.Errorf("%d consent choices of the erased browser are left", n)
		}
		if resp, page := b.get(loc); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Certificate of deletion") {
			t.Errorf("the erasure's page by its token: %d\n%s", resp.StatusCode, page)
		}
		// Made-up visitor ids cannot flood the workers: a network files a
		// few requests an hour.
		refused := false
		for range 8 {
			c := newPageClient(t, srv)
			chooseOnPage(t, c, "reject_all")
			resp, _ := c.postForm("/privacy/data/export", url.Values{})
			refused = refused || resp.Header.Get("Location") == "/privacy/data?error=refused"
		}
		if !refused {
			t.Error("eight visitors of one network filed eight requests at once")
		}
	})

	t.Run("signing in again returns to the deletion", func(t *testing.T) {
		b := newPageClient(t, srv)
		devSignIn(t, b, "gus.center@example.com")
		csrf := b.cookies[accounts.CookieCSRF]
		// The page's sign-out button (shown when the sign-in is too old)
		// says where to come back to.
		resp, _ := b.postForm("/v1/auth/logout", url.Values{"csrf_token": {csrf}, "next": {"/privacy/delete"}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || loc != "/?next=%2Fprivacy%2Fdelete" {
			t.Fatalf("sign-out: %d %q", resp.StatusCode, loc)
		}
		_, page := b.get(loc)
		if !strings.Contains(page, `<input type="hidden" name="next" value="/privacy/delete">`) {
			t.Fatalf("the sign-in page forgets where to return:\n%s", page)
		}
		resp, body := b.postForm("/v1/auth/dev", url.Values{"email": {"gus.center@example.com"}, "next": {"/privacy/delete"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/privacy/delete" {
			t.Fatalf("sign-in: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		if _, page := b.get("/privacy/delete"); !strings.Contains(page, `action="/privacy/delete"`) {
			t.Error("after signing in again the deletion is not offered")
		}
		// A return address elsewhere is never followed.
		for _, bad := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
			resp, _ := newPageClient(t, srv).postForm("/v1/auth/dev", url.Values{"email": {"gus.center@example.com"}, "next": {bad}})
			if loc := resp.Header.Get("Location"); loc != "/" {
				t.Errorf("sign-in with next %q goes to %q (%d), want /", bad, loc, resp.StatusCode)
			}
			if _, page := newPageClient(t, srv).get("/?next=" + url.QueryEscape(bad)); strings.Contains(page, `name="next"`) {
				t.Errorf("the sign-in page carries next %q", bad)
			}
		}
	})

	t.Run("the entry page links to the privacy center", func(t *testing.T) {
		b := newPageClient(t, srv)
		devSignIn(t, b, "cy.center@example.com")
		_, page := b.get("/")
		if !strings.Contains(page, `href="/privacy"`) {
			t.Error("the signed-in entry page has no link to /privacy")
		}
	})
}

// TestConsentMethodsHaveWords checks the history can name every way the
// consent module records a choice.
func TestConsentMethodsHaveWords(t *testing.T) {
	known := map[string]bool{}
	for _, m := range portal.ConsentMethods() {
		known[m] = true
	}
	for _, m := range append(consent.Methods(), consent.MethodMerge) {
		if !known[m] {
			t.Errorf("consent method %s has no words in the privacy center", m)
		}
	}
}

var pagesVisited = regexp.MustCompile(`<strong>Pages visited</strong> \(([0-9]+) items?\)`)

// TestPrivacyCenterCountsWhatABrowserHolds has a visitor browse, sign in,
// sign out and browse on: what /privacy counts for the browser is what it
// did since the last sign-in on it, as the identity rule gives it, read
// against the warehouse.
func TestPrivacyCenterCountsWhatABrowserHolds(t *testing.T) {
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev = true })
	ctx := context.Background()
	// The event drain carries what the browser sends to the warehouse.
	if err := srv.start(ctx); err != nil {
		t.Fatal(err)
	}
	b := newPageClient(t, srv)
	vid := chooseOnPage(t, b, "accept_all")
	browse := func(n int) {
		t.Helper()
		var batch []map[string]any
		for range n {
			id := newEventID()
			batch = append(batch, map[string]any{"event_id": id, "type": "page_view", "url": "https://app.example.test/gallery/" + id, "session_id": "s" + id[:8]})
		}
		raw, err := json.Marshal(batch)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(string(raw)))
		req.Header.Set("Content-Type", "application/json")
		// A request without a browser's User-Agent is a bot's, whose
		// events are not kept.
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
		if resp, body := b.send(req); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /v1/events: %d %s", resp.StatusCode, body)
		}
	}
	counted := func(when string) int {
		t.Helper()
		_, page := b.get("/privacy")
		m := pagesVisited.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("%s: /privacy counts no page views for the browser:\n%s", when, page)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	stored := func() int {
		t.Helper()
		var rows []struct {
			N uint64 `ch:"n"`
		}
		if err := srv.stores.warehouse.Select(ctx, &rows, "SELECT count() AS n FROM events WHERE visitor_id = {v:String} AND event_type = 'page_view'",
			warehouse.Named("v", vid)); err != nil {
			t.Fatal(err)
		}
		return int(rows[0].N)
	}

	if _, page := newPageClient(t, srv).get("/privacy"); !strings.Contains(page, "no Steward cookie yet") {
		t.Error("a browser without a cookie is not told so")
	}
	browse(3)
	if got := counted("after browsing"); got != 3 || stored() != 3 {
		t.Errorf("after browsing 3 pages: the page counts %d, the warehouse holds %d", got, stored())
	}
	// Signing in gives what the browser did so far to the account.
	devSignIn(t, b, "gus.browser@example.com")
	// Signed in, the history of choices is the account's own proof log,
	// never the browser's anonymous rows, which on a shared computer may
	// be someone else's.
	gus, err := srv.wired.accounts.UserByEmail(ctx, "gus.browser@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, history := b.get("/privacy/consent")
	own := countRows(t, srv, "consent_log", "user_id = ?", gus.ID)
	anonymous := countRows(t, srv, "consent_log", "visitor_id = ? AND user_id IS NULL", vid)
	if shown := strings.Count(history, "<td>20"); shown != own || own == 0 || anonymous == 0 {
		t.Errorf("the signed-in history shows %d rows; the account has %d proof rows, the browser %d anonymous ones", shown, own, anonymous)
	}
	resp, _ := b.postForm("/v1/auth/logout", url.Values{accounts.FieldCSRF: {b.cookies[accounts.CookieCSRF]}})
	if resp.StatusCode != http.StatusSeeOther || b.cookies[consent.DefaultCookieName] != vid {
		t.Fatalf("sign-out: %d, visitor cookie kept: %v", resp.StatusCode, b.cookies[consent.DefaultCookieName] == vid)
	}
	if got := counted("after a sign-in and out"); got != 0 {
		t.Errorf("after a sign-in the browser still counts %d page views as its own", got)
	}
	browse(2)
	if got := counted("after browsing on"); got != 2 || stored() != 5 {
		t.Errorf("after 2 more pages signed out: the page counts %d (want 2), the warehouse holds %d (want 5)", got, stored())
	}
}
