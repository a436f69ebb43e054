package ingest_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/consent"
)

const (
	goClient  = "Go-http-client/1.1"
	curl      = "curl/8.5.0"
	googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

func idOf(ev map[string]any) string { return ev["event_id"].(string) }

// copyOf is a second copy of an event, as a client resending it within the
// same batch would put in.
func copyOf(ev map[string]any) map[string]any {
	out := make(map[string]any, len(ev))
	for k, v := range ev {
		out[k] = v
	}
	return out
}

// invalidEvent is an event with a valid id that fails validation.
func invalidEvent() map[string]any {
	ev := minimal("page_view")
	ev["url"] = "javascript:alert(1)"
	return ev
}

// TestEventOutcome sends batches from browsers, bots and a back end with
// a bearer token, checks that each answer accounts for every item once,
// and reads the events table to check that exactly the events counted as
// stored are there, once each.
func TestEventOutcome(t *testing.T) {
	s := newStack(t, stackOptions{})

	// Ann accepted everything in her browser; her back end sends events
	// of her with an API token and no visitor cookie.
	annBrowser := s.client()
	annBrowser.User = "user-ann"
	annBrowser.choose(consent.MethodBannerAccept, nil)
	// Bob never answered the banner: he has no analytics consent.
	const bob = "user-bob"
	// An anonymous visitor who accepted everything, one who rejected
	// everything.
	accepting := s.accepting()
	rejecting := s.client()
	rejecting.choose(consent.MethodBannerReject, nil)

	backend := func(user, ua string) *client {
		c := s.client()
		c.Token, c.UserAgent = user, ua
		return c
	}
	as := func(c *client, ua string) *client {
		cc := *c
		cc.UserAgent = ua
		return &cc
	}

	type counts struct{ stored, consent, bot, duplicate, invalid int }
	type tc struct {
		name   string
		sender *client
		batch  []any
		stored []string // the ids the warehouse must hold, once each
		want   counts
		server bool   // stored rows carry no device and no address
		userID string // of a server's stored rows: set only under marketing consent
	}
	var tests []tc
	{
		pv, fi, er := minimal("page_view"), minimal("feature_interaction"), minimal("error")
		tests = append(tests, tc{
			name:   "back end with a bearer token and a Go client's user agent",
			sender: backend(annBrowser.User, goClient), batch: []any{pv, fi, er},
			stored: []string{idOf(pv), idOf(fi), idOf(er)}, want: counts{stored: 3}, server: true, userID: annBrowser.User,
		})
	}
	{
		pv := minimal("page_view")
		tests = append(tests, tc{
			name:   "back end with a bearer token and no user agent",
			sender: backend(annBrowser.User, ""), batch: []any{pv},
			stored: []string{idOf(pv)}, want: counts{stored: 1}, server: true, userID: annBrowser.User,
		})
	}
	{
		// The gate treats the back end's events as the user's own: without
		// analytics consent only the error event may be kept.
		pv, pr, er := minimal("page_view"), minimal("pricing_view"), minimal("error")
		tests = append(tests, tc{
			name:   "back end with curl for a user without analytics consent",
			sender: backend(bob, curl), batch: []any{pv, pr, er},
			stored: []string{idOf(er)}, want: counts{stored: 1, consent: 2}, server: true,
		})
	}
	{
		a, b, c := minimal("page_view"), minimal("page_view"), minimal("error")
		tests = append(tests, tc{
			name:   "crawler in a browser that accepted everything",
			sender: as(accepting, googlebot), batch: []any{a, b, c},
			want: counts{bot: 3},
		})
	}
	{
		a, b := minimal("page_view"), minimal("error")
		tests = append(tests, tc{
			name:   "signed-in session with a script's user agent",
			sender: as(annBrowser, goClient), batch: []any{a, b},
			want: counts{bot: 2},
		})
	}
	{
		a := minimal("page_view")
		tests = append(tests, tc{
			name:   "repeated event id from a bot counts as a duplicate first",
			sender: as(accepting, curl), batch: []any{a, copyOf(a)},
			want: counts{duplicate: 1, bot: 1},
		})
	}
	{
		a, b, c := fullEvent("page_view"), fullEvent("pricing_view"), fullEvent("error")
		tests = append(tests, tc{
			name:   "visitor who rejected everything",
			sender: rejecting, batch: []any{a, b, c},
			stored: []string{idOf(c)}, want: counts{stored: 1, consent: 2},
		})
	}
	{
		a, b := fullEvent("page_view"), fullEvent("feature_interaction")
		tests = append(tests, tc{
			name:   "event id repeated within the batch",
			sender: accepting, batch: []any{a, b, copyOf(a)},
			stored: []string{idOf(a), idOf(b)}, want: counts{stored: 2, duplicate: 1},
		})
	}
	{
		good := minimal("page_view")
		badID := minimal("page_view")
		badID["event_id"] = "not-a-uuid"
		tests = append(tests, tc{
			name:   "invalid items among valid ones",
			sender: accepting, batch: []any{badID, good, invalidEvent()},
			stored: []string{idOf(good)}, want: counts{stored: 1, invalid: 2},
		})
	}
	{
		pv, er := minimal("page_view"), minimal("error")
		tests = append(tests, tc{
			name:   "every reason but bot in one batch",
			sender: rejecting, batch: []any{pv, copyOf(pv), invalidEvent(), er, copyOf(er)},
			stored: []string{idOf(er)}, want: counts{stored: 1, consent: 1, duplicate: 2, invalid: 1},
		})
	}
	{
		// More items than are compared pair by pair.
		var batch []any
		var ids []string
		for range 70 {
			ev := minimal("page_view")
			batch = append(batch, ev)
			ids = append(ids, idOf(ev))
		}
		batch = append(batch, copyOf(batch[3].(map[string]any)), copyOf(batch[69].(map[string]any)))
		tests = append(tests, tc{
			name:   "large batch with repeated event ids",
			sender: accepting, batch: batch,
			stored: ids, want: counts{stored: 70, duplicate: 2},
		})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, raw := tt.sender.do("POST", "/v1/events", tt.batch, "")
			if resp.StatusCode != 202 {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			checkShape(t, raw)
			var res ingest.Result
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			d := res.Dropped
			got := counts{stored: res.Stored, consent: d.Consent, bot: d.Bot, duplicate: d.Duplicate, invalid: d.Invalid}
			if got != tt.want {
				t.Errorf("counts %+v, want %+v: %s", got, tt.want, raw)
			}
			if sum := res.Stored + d.Consent + d.Bot + d.Duplicate + d.Invalid; sum != len(tt.batch) {
				t.Errorf("stored + dropped = %d, want the %d items sent", sum, len(tt.batch))
			}
			if d.Invalid != len(res.Rejected) {
				t.Errorf("dropped.invalid = %d, but %d items rejected", d.Invalid, len(res.Rejected))
			}
			if res.Accepted != len(tt.batch)-d.Invalid {
				t.Errorf("accepted = %d, want the %d valid items", res.Accepted, len(tt.batch)-d.Invalid)
			}
		})
	}

	s.flush()
	t.Run("warehouse", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { checkStored(t, s, tt.batch, tt.stored, tt.server, tt.userID) })
		}
	})
}

// checkStored reads the events table directly: the events of batch that
// must be there are there once each, the others are not; events a back end
// sent carry no device and no address, and the user id only as consent
// allows.
func checkStored(t *testing.T, s *stack, batch []any, stored []string, server bool, userID string) {
	t.Helper()
	var ids []string
	for _, it := range batch {
		ids = append(ids, idOf(it.(map[string]any)))
	}
	rows := s.rowsByID(ids)
	for id, copies := range rows {
		if !slices.Contains(stored, id) {
			t.Errorf("event %s stored, but the answer did not count it as stored", id)
		} else if len(copies) != 1 {
			t.Errorf("event %s stored %d times, want once", id, len(copies))
		}
	}
	for _, id := range stored {
		if rows[id] == nil {
			t.Errorf("event %s counted as stored is not in the warehouse", id)
		}
	}
	if !server {
		return
	}
	for _, copies := range rows {
		r := copies[0]
		if r.Browser != "" || r.OS != "" || r.DeviceClass != "" || r.IPTruncated != "" || r.VisitorID != "" {
			t.Errorf("server-sent event stored with the server's device or address: browser %q os %q class %q ip %q visitor %q",
				r.Browser, r.OS, r.DeviceClass, r.IPTruncated, r.VisitorID)
		}
		got := ""
		if r.UserID != nil {
			got = *r.UserID
		}
		if got != userID {
			t.Errorf("user_id = %q, want %q", got, userID)
		}
	}
}

// checkShape checks the answer's JSON keys: clients read them by name.
func checkShape(t *testing.T, raw []byte) {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(slices.Sorted(maps.Keys(doc)), ","); got != "accepted,dropped,rejected,stored" {
		t.Errorf("answer keys %s, want accepted,dropped,rejected,stored", got)
	}
	var dropped map[string]int
	if err := json.Unmarshal(doc["dropped"], &dropped); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(slices.Sorted(maps.Keys(dropped)), ","); got != "bot,consent,duplicate,invalid" {
		t.Errorf("dropped keys %s, want bot,consent,duplicate,invalid", got)
	}
	if string(doc["rejected"]) == "null" {
		t.Error("rejected is null, want an array")
	}
}

// TestResentBatch sends the same batch twice, as a client does whose first
// request timed out, with a flush between so that the copies reach the
// warehouse in separate inserts: both answers count the events as stored,
// and the events table keeps each event once by its id and time.
func TestResentBatch(t *testing.T) {
	s := newStack(t, stackOptions{})
	cl := s.accepting()
	a, b := fullEvent("page_view"), fullEvent("error")
	batch := []any{a, b}
	for i := range 2 {
		status, res, raw := cl.send(batch)
		if status != 202 || res.Stored != 2 || res.Dropped != (ingest.Dropped{}) {
			t.Fatalf("send %d: %d %s, want both events stored", i+1, status, raw)
		}
		s.flush()
	}
	var rows []countRow
	err := s.wh.Select(t.Context(), &rows, "SELECT count() AS n FROM events FINAL WHERE event_id IN {ids:Array(String)}",
		warehouse.Named("ids", []string{idOf(a), idOf(b)}))
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].N != 2 {
		t.Fatalf("%d events in the warehouse, want each of the 2 once", rows[0].N)
	}
}
