package main

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
)

// queueRow reads a row of the requests queue: its urgency and the
// request's id.
var queueRow = regexp.MustCompile(`<tr class="([a-z]+)">\s*<th scope="row"><a href="/console/requests/([^"]+)">`)

// queueIDs returns the ids of the queue's rows in order, with their
// urgencies.
func queueIDs(page string) (ids, urgencies []string) {
	for _, m := range queueRow.FindAllStringSubmatch(page, -1) {
		urgencies, ids = append(urgencies, m[1]), append(ids, m[2])
	}
	return ids, urgencies
}

// storedRequest reads a request straight from the SQL store.
func storedRequest(t *testing.T, srv *server, id string) privacy.Request {
	t.Helper()
	var r privacy.Request
	if err := srv.stores.sql.NewSelect().Model(&r).Where("id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// storedTrail reads a request's trail straight from the SQL store.
func storedTrail(t *testing.T, srv *server, id string) []privacy.Event {
	t.Helper()
	var evs []privacy.Event
	if err := srv.stores.sql.NewSelect().Model(&evs).Where("request_id = ?", id).Order("at", "id").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return evs
}

// setRequest changes columns of a request in the SQL store directly, as
// time passing or a run that ended would have.
func setRequest(t *testing.T, srv *server, id, set string, args ...any) {
	t.Helper()
	if _, err := srv.stores.sql.NewUpdate().Table("privacy_requests").Set(set, args...).Where("id = ?", id).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleRequestsOnAWiredServer works through the requests queue as
// a DPO does, on a wired server: the queue's order and filters, a
// request's page with its trail, package counts and certificate, and
// extending, rejecting and retrying, each read back from the SQL store.
// Every role is held to what the access policy lets it do.
func TestConsoleRequestsOnAWiredServer(t *testing.T) {
	ctx := context.Background()
	srv := newPortalServer(t, false, func(c *config.Config) { c.Dev = true })
	pm := srv.wired.privacy
	clients := map[string]*pageClient{}
	for _, role := range authz.Roles() {
		tok, err := srv.wired.accounts.CreateToken(ctx, role+".queue@example.com", role)
		if err != nil {
			t.Fatal(err)
		}
		clients[role] = &pageClient{t: t, srv: srv, cookies: map[string]string{}, token: tok}
	}
	mayAct := map[string]bool{authz.RoleDPO: true, authz.RoleAdmin: true}
	file := func(typ, email string) privacy.Request {
		t.Helper()
		r, err := pm.FileForOperator(ctx, typ, email, "asked by letter")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	now := time.Now().UTC()
	later := file(privacy.TypeAccess, "lena.later@example.com")
	soon := file(privacy.TypeErasure, "sam.soon@example.com")
	setRequest(t, srv, soon.ID, "due_at = ?", now.Add(3*24*time.Hour))
	overdue := file(privacy.TypeAccess, "otto.overdue@example.com")
	setRequest(t, srv, overdue.ID, "due_at = ?", now.Add(-2*24*time.Hour))
	visitor, err := pm.CreateForVisitor(ctx, privacy.VisitorRequest{Type: privacy.TypeAccess, VisitorID: "v_queue_test", Language: "en", Network: "192.0.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	done := file(privacy.TypeAccess, "dora.done@example.com")
	if got, err := pm.Process(ctx, done.ID); err != nil || got.Status != privacy.StatusCompleted {
		t.Fatalf("process %s: %s, %v", done.ID, got.Status, err)
	}
	erased := file(privacy.TypeErasure, "eric.erased@example.com")
	if got, err := pm.Process(ctx, erased.ID); err != nil || got.Status != privacy.StatusCompleted {
		t.Fatalf("process %s: %s, %v", erased.ID, got.Status, err)
	}
	failed := file(privacy.TypeAccess, "fay.failed@example.com")
	setRequest(t, srv, failed.ID, "status = ?, failure = ?", privacy.StatusFailed, "processing failed 5 times")
	toReject := file(privacy.TypeErasure, "rex.rejected@example.com")
	waiting := []string{overdue.ID, soon.ID, later.ID, visitor.ID, toReject.ID, failed.ID}

	t.Run("each role reaches what the policy lets it, and a visitor is sent to sign in", func(t *testing.T) {
		for role, c := range clients {
			for _, path := range []string{"/console/requests", "/console/requests/" + later.ID, "/console/requests/" + erased.ID + "/certificate.json"} {
				resp, body := c.get(path)
				want := http.StatusForbidden
				if mayAct[role] {
					want = http.StatusOK
				}
				if resp.StatusCode != want {
					t.Errorf("GET %s as %s: %d, want %d\n%.300s", path, role, resp.StatusCode, want, body)
				}
				if want == http.StatusOK && !strings.HasSuffix(path, ".json") && resp.Header.Get("Content-Security-Policy") != strictPageCSP {
					t.Errorf("GET %s: CSP %q", path, resp.Header.Get("Content-Security-Policy"))
				}
			}
			// A role that may not act is refused before anything changes.
			if !mayAct[role] {
				for _, action := range []string{"extend", "reject", "retry"} {
					form := url.Values{"months": {"1"}, "reason": {"because"}}
					if resp, _ := c.postForm("/console/requests/"+failed.ID+"/"+action, form); resp.StatusCode != http.StatusForbidden {
						t.Errorf("POST %s as %s: %d, want 403", action, role, resp.StatusCode)
					}
				}
			}
			if _, body := c.get("/console"); mayAct[role] && !strings.Contains(body, `<a href="/console/requests">`) {
				t.Errorf("the console's overview for %s does not link to the queue", role)
			}
		}
		if r := storedRequest(t, srv, failed.ID); r.Status != privacy.StatusFailed || r.ExtensionReason != "" {
			t.Errorf("refused posts changed the request: %s %q", r.Status, r.ExtensionReason)
		}
		visitor := newPageClient(t, srv)
		resp, _ := visitor.get("/console/requests?status=failed")
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/?next="+url.QueryEscape("/console/requests?status=failed") {
			t.Errorf("a visitor: %d to %q", resp.StatusCode, loc)
		}
		resp, _ = visitor.postForm("/console/requests/"+failed.ID+"/retry", url.Values{})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/?next="+url.QueryEscape("/console/requests/"+failed.ID) {
			t.Errorf("a visitor's post: %d to %q", resp.StatusCode, loc)
		}
	})

	dpo := clients[authz.RoleDPO]
	t.Run("the queue puts overdue first, then due soon, then the rest, then the answered", func(t *testing.T) {
		_, page := dpo.get("/console/requests")
		ids, urgencies := queueIDs(page)
		want := []string{overdue.ID, soon.ID}
		if len(ids) < 8 || !slices.Equal(ids[:2], want) {
			t.Fatalf("the queue starts %v, want %v first\n%v", ids, want, urgencies)
		}
		wantUrgency := map[string]string{overdue.ID: "overdue", soon.ID: "soon", later.ID: "later", visitor.ID: "later",
			done.ID: "answered", erased.ID: "answered", failed.ID: "later", toReject.ID: "later"}
		for i, id := range ids {
			if w, ok := wantUrgency[id]; ok && urgencies[i] != w {
				t.Errorf("%s is %s, want %s", id, urgencies[i], w)
			}
			if i > 0 && slices.Index([]string{"overdue", "soon", "later", "answered"}, urgencies[i]) <
				slices.Index([]string{"overdue", "soon", "later", "answered"}, urgencies[i-1]) {
				t.Errorf("%s (%s) comes after %s (%s)", id, urgencies[i], ids[i-1], urgencies[i-1])
			}
		}
		for _, id := range waiting {
			if slices.Index(ids, id) > slices.Index(ids, done.ID) {
				t.Errorf("the unanswered request %s comes after an answered one", id)
			}
		}
		for _, text := range []string{"Overdue by 2 days", "3 days left", "otto.overdue@example.com", "A browser without an account"} {
			if !strings.Contains(page, text) {
				t.Errorf("the queue does not say %q", text)
			}
		}
	})

	t.Run("the filters keep what they say", func(t *testing.T) {
		tests := []struct {
			name, query string
			want        []string
		}{
			{"failed", "status=failed", []string{failed.ID}},
			{"erasures", "type=erasure", []string{soon.ID, toReject.ID, erased.ID}},
			{"completed access requests", "status=completed&type=access", []string{done.ID}},
			{"rejected", "status=rejected", nil},
		}
		for _, tt := range tests {
			resp, page := dpo.get("/console/requests?" + tt.query)
			ids, _ := queueIDs(page)
			slices.Sort(ids)
			if resp.StatusCode != http.StatusOK || !slices.Equal(ids, slices.Sorted(slices.Values(tt.want))) {
				t.Errorf("%s: %d, %v; want %v", tt.name, resp.StatusCode, ids, tt.want)
			}
			if len(tt.want) == 0 && !strings.Contains(page, "No request matches these filters.") {
				t.Errorf("%s: an empty result says nothing", tt.name)
			}
		}
		if resp, _ := dpo.get("/console/requests?status=lost"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("an unknown status: %d, want 400", resp.StatusCode)
		}
	})

	t.Run("a request's page shows its trail, its package's counts and its certificate", func(t *testing.T) {
		_, page := dpo.get("/console/requests/" + done.ID)
		for _, text := range []string{"dora.done@example.com", "The access package", `<th scope="col">Records</th>`,
			"Steward (its workers or the command line)", "asked by letter", "Processing started"} {
			if !strings.Contains(page, text) {
				t.Errorf("the completed access request's page does not say %q", text)
			}
		}
		man, err := pm.Manifest(ctx, authz.Principal{UserID: "u_dpo", Role: authz.RoleDPO}, done.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range man.Sources {
			place := "<code>" + f.Store + "." + f.Table + "</code>"
			if f.Table == "" {
				place = "<code>" + f.Store + ": " + f.Module + "</code>"
			}
			if !strings.Contains(page, place) {
				t.Errorf("the package's counts lack %s", place)
			}
		}
		// Counts only: nothing the package holds is on the page.
		if strings.Contains(page, man.Sources[0].SHA256) || strings.Contains(page, "/download?") {
			t.Error("the page shows more of the package than its counts")
		}
		if strings.Contains(page, `action="/console/requests/`+done.ID) {
			t.Error("a completed request offers actions")
		}

		_, page = dpo.get("/console/requests/" + erased.ID)
		if !strings.Contains(page, "Certificate of deletion") || !strings.Contains(page, "The check of every store afterwards found nothing") {
			t.Errorf("the erasure's page lacks its certificate:\n%s", page)
		}
		resp, cert := dpo.get("/console/requests/" + erased.ID + "/certificate.json")
		if resp.StatusCode != http.StatusOK || !strings.Contains(cert, `"request_id":"`+erased.ID+`"`) {
			t.Errorf("the certificate download: %d %.200s", resp.StatusCode, cert)
		}
		if resp, _ := dpo.get("/console/requests/" + later.ID + "/certificate.json"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("the certificate of an open request: %d, want 404", resp.StatusCode)
		}
		if resp, _ := dpo.get("/console/requests/pr_none"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("no such request: %d, want 404", resp.StatusCode)
		}
		_, page = dpo.get("/console/requests/" + overdue.ID)
		for _, form := range []string{"extend", "reject"} {
			if !strings.Contains(page, `action="/console/requests/`+overdue.ID+`/`+form+`"`) {
				t.Errorf("an open request's page lacks the %s form", form)
			}
		}
	})

	t.Run("a DPO extends an overdue request with a reason", func(t *testing.T) {
		back := "/console/requests/" + overdue.ID
		for _, tt := range []struct {
			name string
			form url.Values
			code string
		}{
			{"no reason", url.Values{"months": {"2"}}, "extend-reason"},
			{"a blank reason", url.Values{"months": {"2"}, "reason": {"   "}}, "extend-reason"},
			{"three months", url.Values{"months": {"3"}, "reason": {"complex"}}, "extend-months"},
		} {
			resp, _ := dpo.postForm(back+"/extend", tt.form)
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != back+"?error="+tt.code {
				t.Errorf("%s: %d to %q", tt.name, resp.StatusCode, loc)
			}
		}
		_, page := dpo.get(back + "?error=extend-reason")
		if !strings.Contains(page, `role="alert"`) || !strings.Contains(page, `aria-invalid="true"`) || !strings.Contains(page, "Say why the request needs more time") {
			t.Errorf("the refused extension is not explained at its field:\n%s", page)
		}
		if r := storedRequest(t, srv, overdue.ID); r.ExtensionReason != "" {
			t.Fatalf("a refused extension was stored: %q", r.ExtensionReason)
		}
		resp, _ := dpo.postForm(back+"/extend", url.Values{"months": {"2"}, "reason": {"The subject's data spans three stores."}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != back+"?done=extended" {
			t.Fatalf("extend: %d to %q", resp.StatusCode, loc)
		}
		r := storedRequest(t, srv, overdue.ID)
		if r.ExtensionReason != "The subject's data spans three stores." || !r.DueAt.Equal(r.ReceivedAt.AddDate(0, 3, 0)) {
			t.Errorf("the stored request: due %s (received %s), reason %q", r.DueAt, r.ReceivedAt, r.ExtensionReason)
		}
		if evs := storedTrail(t, srv, overdue.ID); evs[len(evs)-1].Event != "extended" {
			t.Errorf("the trail ends with %q, want extended", evs[len(evs)-1].Event)
		}
		_, page = dpo.get(back + "?done=extended")
		if !strings.Contains(page, "The deadline is extended.") || strings.Contains(page, `action="`+back+`/extend"`) {
			t.Error("the page does not confirm the extension, or offers another")
		}
		resp, _ = dpo.postForm(back+"/extend", url.Values{"months": {"1"}, "reason": {"more"}})
		if loc := resp.Header.Get("Location"); loc != back+"?error=conflict" {
			t.Errorf("a second extension: %d to %q", resp.StatusCode, loc)
		}
		// The queue no longer counts it overdue.
		_, page = dpo.get("/console/requests")
		if ids, urgencies := queueIDs(page); urgencies[slices.Index(ids, overdue.ID)] != "later" {
			t.Errorf("the extended request is %s", urgencies[slices.Index(ids, overdue.ID)])
		}
	})

	t.Run("an administrator rejects a request with a reason", func(t *testing.T) {
		admin := clients[authz.RoleAdmin]
		back := "/console/requests/" + toReject.ID
		for _, reason := range []string{"", "excessive\x00", "excessive \u202e"} {
			resp, _ := admin.postForm(back+"/reject", url.Values{"reason": {reason}})
			if loc := resp.Header.Get("Location"); loc != back+"?error=reject-reason" {
				t.Errorf("a rejection with the reason %q: %d to %q", reason, resp.StatusCode, loc)
			}
		}
		resp, _ := admin.postForm(back+"/reject", url.Values{"reason": {"Manifestly excessive: the fourth identical request this month."}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != back+"?done=rejected" {
			t.Fatalf("reject: %d to %q", resp.StatusCode, loc)
		}
		if r := storedRequest(t, srv, toReject.ID); r.Status != privacy.StatusRejected {
			t.Errorf("the stored request is %s", r.Status)
		}
		evs := storedTrail(t, srv, toReject.ID)
		if last := evs[len(evs)-1]; last.Event != privacy.StatusRejected || last.Note != "Manifestly excessive: the fourth identical request this month." {
			t.Errorf("the trail ends with %+v", last)
		}
		if n := countRows(t, srv, "admin_log", "action = ? AND details LIKE ?", "privacy_request.reject", "%"+toReject.ID+"%"); n != 1 {
			t.Errorf("%d admin log entries for the rejection, want 1", n)
		}
		if resp, _ := admin.postForm("/console/requests/"+done.ID+"/reject", url.Values{"reason": {"late"}}); resp.Header.Get("Location") != "/console/requests/"+done.ID+"?error=conflict" {
			t.Errorf("rejecting a completed request: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("a DPO retries a failed request, and the workers complete it", func(t *testing.T) {
		back := "/console/requests/" + failed.ID
		_, page := dpo.get(back)
		if !strings.Contains(page, `action="`+back+`/retry"`) || !strings.Contains(page, "processing failed 5 times") {
			t.Errorf("the failed request's page offers no retry:\n%s", page)
		}
		resp, _ := dpo.postForm(back+"/retry", url.Values{})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != back+"?done=retried" {
			t.Fatalf("retry: %d to %q", resp.StatusCode, loc)
		}
		if r := storedRequest(t, srv, failed.ID); r.Status != privacy.StatusVerified || r.Failure != "" {
			t.Errorf("the stored request: %s %q", r.Status, r.Failure)
		}
		if evs := storedTrail(t, srv, failed.ID); evs[len(evs)-1].Event != privacy.EventRetried {
			t.Errorf("the trail ends with %q", evs[len(evs)-1].Event)
		}
		if resp, _ := dpo.postForm(back+"/retry", url.Values{}); resp.Header.Get("Location") != back+"?error=conflict" {
			t.Errorf("a second retry: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if got, err := pm.Process(ctx, failed.ID); err != nil || got.Status != privacy.StatusCompleted {
			t.Errorf("the retried request = %s, %v", got.Status, err)
		}
	})

	t.Run("a form from another site, or without the session's token, changes nothing", func(t *testing.T) {
		req := file(privacy.TypeAccess, "xavier.cross@example.com")
		cross := url.Values{"reason": {"from elsewhere"}}
		r, _ := http.NewRequest(http.MethodPost, "/console/requests/"+req.ID+"/reject", strings.NewReader(cross.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		if resp, _ := dpo.send(r); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a cross-site post: %d, want 403", resp.StatusCode)
		}
		b := newPageClient(t, srv)
		devSignIn(t, b, authz.RoleDPO+".queue@example.com")
		if resp, _ := b.postForm("/console/requests/"+req.ID+"/reject", cross); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a session's post without its CSRF token: %d, want 403", resp.StatusCode)
		}
		if r := storedRequest(t, srv, req.ID); r.Status != privacy.StatusVerified {
			t.Fatalf("a refused post changed the request: %s", r.Status)
		}
		_, page := b.get("/console/requests/" + req.ID)
		m := csrfField.FindStringSubmatch(page)
		if m == nil {
			t.Fatal("the page's forms carry no CSRF token")
		}
		cross.Set("csrf_token", m[1])
		if resp, _ := b.postForm("/console/requests/"+req.ID+"/reject", cross); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("a session's post with its token: %d, want 303", resp.StatusCode)
		}
	})

	t.Run("the JSON API rejects and retries, naming a missing field", func(t *testing.T) {
		req := file(privacy.TypeErasure, "yann.api@example.com")
		status, body := call(t, srv, "POST", "/v1/privacy/requests/"+req.ID+"/reject", clients[authz.RoleDPO].token, map[string]any{})
		errsList, _ := body["errors"].([]any)
		if status != http.StatusBadRequest || len(errsList) != 1 || errsList[0].(map[string]any)["field"] != "reason" {
			t.Errorf("a rejection without a reason: %d %v", status, body)
		}
		if status, _ := call(t, srv, "POST", "/v1/privacy/requests/"+req.ID+"/reject", clients[authz.RoleSupport].token, map[string]any{"reason": "no"}); status != http.StatusForbidden {
			t.Errorf("support rejecting: %d, want 403", status)
		}
		if status, _ := call(t, srv, "POST", "/v1/privacy/requests/"+req.ID+"/retry", clients[authz.RoleDPO].token, nil); status != http.StatusConflict {
			t.Errorf("retrying an open request: %d, want 409", status)
		}
		status, body = call(t, srv, "POST", "/v1/privacy/requests/"+req.ID+"/reject", clients[authz.RoleDPO].token, map[string]any{"reason": "Identity not established."})
		if status != http.StatusOK || body["status"] != privacy.StatusRejected {
			t.Errorf("reject: %d %v", status, body)
		}
		setRequest(t, srv, req.ID, "status = ?", privacy.StatusFailed)
		status, body = call(t, srv, "POST", "/v1/privacy/requests/"+req.ID+"/retry", clients[authz.RoleAdmin].token, nil)
		if status != http.StatusOK || body["status"] != privacy.StatusVerified {
			t.Errorf("retry: %d %v", status, body)
		}
	})
}
