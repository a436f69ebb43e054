package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"pgregory.net/rapid"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/governance/privacy"
)

// A visitor who is not signed in downloads and erases what their browser's
// cookie ties to it, from the privacy center's forms. What that is comes
// from the history: the anonymous events of the browser's visitor id that
// no sign-in on it has claimed (the identity rule gives the events before
// a sign-in to the account that signed in).

// visitorBrowser draws a browser no one is signed in on that holds a
// visitor cookie; nil when there is none.
func (h *history) visitorBrowser(rt *rapid.T) *browser {
	var out []*browser
	for _, b := range h.browsers {
		if b.user == nil && b.jar[consent.DefaultCookieName] != "" {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return rapid.SampledFrom(out).Draw(rt, "visitor's browser")
}

// unclaimed returns the stored events of visitor id vid that belong to no
// account under the identity rule, read from the warehouse directly.
func (h *history) unclaimed(vid string) []string {
	ctx, cancel := context.WithTimeout(h.ctx, 2*time.Minute)
	defer cancel()
	if err := h.env.srv.wired.events.Flush(ctx); err != nil {
		h.rt.Fatal(err)
	}
	var rows []struct {
		ID string `ch:"event_id"`
	}
	if err := h.env.srv.stores.warehouse.Select(ctx, &rows, `SELECT DISTINCT event_id FROM events
		WHERE visitor_id = {v:String} AND (user_id IS NULL OR user_id = '')`, warehouse.Named("v", vid)); err != nil {
		h.rt.Fatal(err)
	}
	out := []string{}
	for _, r := range rows {
		if _, sent := h.events[r.ID]; sent && h.owner(r.ID, "", vid) == nil {
			out = append(out, r.ID)
		}
	}
	sort.Strings(out)
	return out
}

// visitorFile posts one of the privacy center's forms from b and returns
// the request it filed and the address of its page.
func (h *history) visitorFile(b *browser, path string, form url.Values) (privacy.Request, string) {
	status, header, raw := h.send(b, "", http.MethodPost, path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	loc := header.Get("Location")
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/privacy/requests/") {
		h.rt.Fatalf("POST %s = %d to %q: %s", path, status, loc, raw)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(loc, "/privacy/requests/"), "?")
	var req privacy.Request
	if err := h.env.srv.stores.sql.NewSelect().Model(&req).Where("id = ?", id).Scan(h.ctx); err != nil {
		h.rt.Fatalf("read request %s: %v", id, err)
	}
	return req, loc
}

func (h *history) visitorExport(rt *rapid.T) {
	if b := h.visitorBrowser(rt); b != nil {
		h.visitorExportOn(b)
	}
}

// visitorExportOn downloads what browser b holds, as a visitor, and
// compares the package with the stores.
func (h *history) visitorExportOn(b *browser) {
	rt := h.rt
	vid := b.jar[consent.DefaultCookieName]
	h.logf("a visitor on %s downloads the browser's data", b.name)
	req, loc := h.visitorFile(b, "/privacy/data/export", url.Values{})
	if req.UserID != "" || req.VisitorID != vid {
		rt.Fatalf("a visitor's request names account %q and browser %q, want none and %s", req.UserID, req.VisitorID, vid)
	}
	want := h.unclaimed(vid)
	req = h.process(req.ID)
	pkg := h.packageOf(req)
	if got := pkg.warehouseValues(rt, "events", "event_id"); !slices.Equal(got, want) {
		rt.Fatalf("the visitor's package holds events %v\nthe identity rule gives the browser %v", got, want)
	}
	visits := []string{}
	for _, id := range want {
		if s := h.events[id].session; s != "" {
			visits = append(visits, s)
		}
	}
	sort.Strings(visits)
	if got := pkg.warehouseValues(rt, "touches", "session_id"); !slices.Equal(got, visits) {
		rt.Fatalf("the visitor's package holds visits %v, want %v", got, visits)
	}
	for _, f := range pkg.manifest.Sources {
		if f.Store != "sql" || f.Format != "json" {
			continue
		}
		var rows []map[string]any
		if err := json.Unmarshal(pkg.files[f.File], &rows); err != nil {
			rt.Fatalf("%s: %v", f.File, err)
		}
		for _, r := range rows {
			if uid, ok := r["user_id"].(string); ok && uid != "" {
				rt.Fatalf("the visitor's package holds a row of %s naming account %s", f.Table, uid)
			}
			if v, ok := r["visitor_id"].(string); ok && v != "" && v != vid {
				rt.Fatalf("the visitor's package holds a row of %s of another browser", f.Table)
			}
		}
	}
	// The page of the request offers the download to the browser.
	if status, raw := h.request(b, "", http.MethodGet, loc, "", nil); status != http.StatusOK || !strings.Contains(string(raw), "/download?") {
		rt.Fatalf("GET %s = %d, without the download link", loc, status)
	}
}

func (h *history) visitorErase(rt *rapid.T) {
	if b := h.visitorBrowser(rt); b != nil {
		h.visitorEraseOn(b)
	}
}

// visitorEraseOn erases what browser b holds, as a visitor, and checks the
// stores: the browser's unclaimed events are gone, everything else stays.
func (h *history) visitorEraseOn(b *browser) {
	rt := h.rt
	vid := b.jar[consent.DefaultCookieName]
	h.logf("a visitor on %s erases the browser's data", b.name)
	stored := h.storedEvents()
	gone := h.unclaimed(vid)
	others := map[*actor]map[string]string{}
	for _, o := range h.live() {
		if o.userID != "" {
			others[o] = h.exportOf(o).digest()
		}
	}
	req, loc := h.visitorFile(b, "/privacy/delete", url.Values{"confirm": {"on"}})
	if b.jar[consent.DefaultCookieName] != "" {
		rt.Fatalf("the browser kept its visitor cookie after asking for its erasure")
	}
	req = h.process(req.ID)
	var cert privacy.Certificate
	if err := json.Unmarshal(req.CertificateJSON(), &cert); err != nil {
		rt.Fatal(err)
	}
	if !cert.Verification.Passed || cert.VisitorID != vid {
		rt.Fatalf("the visitor's erasure certificate: passed %v, browser %q: %+v", cert.Verification.Passed, cert.VisitorID, cert.Verification.Checks)
	}
	after := h.storedEvents()
	for _, id := range gone {
		if _, ok := after[id]; ok {
			rt.Fatalf("event %s of the visitor survived the erasure", id)
		}
	}
	for id := range stored {
		if _, ok := after[id]; !ok && !slices.Contains(gone, id) {
			rt.Fatalf("event %s of %v went with the visitor's erasure", id, stored[id])
		}
	}
	for o, before := range others {
		if got := h.exportOf(o).digest(); !reflect.DeepEqual(got, before) {
			rt.Fatalf("%s's export changed with a visitor's erasure:\n%s", o.name, diffKeys(before, got))
		}
	}
	// The certificate's page opens with the token the browser was sent
	// to, without a cookie.
	if status, _ := h.request(b, "", http.MethodGet, loc, "", nil); status != http.StatusOK {
		rt.Fatalf("GET %s = %d", loc, status)
	}
}
