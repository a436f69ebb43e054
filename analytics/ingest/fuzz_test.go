package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/visitortest"
)

// fuzzNow is the clock of the fuzzed stack, so that the event times of the
// seed corpus stay inside the accepted window.
var fuzzNow = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// Fuzzed request shapes, as bits of FuzzPostEvents' mode argument.
const (
	fuzzConsented = 1 << iota // the visitor cookie of a visitor who accepted the banner
	fuzzSignedIn              // a signed-in session
	fuzzToken                 // a bearer API token instead of a session
	fuzzBot                   // a crawler's user agent
	fuzzGPC                   // the Sec-GPC header
)

// fuzzTimeoutMS bounds one fuzzed request, in milliseconds: a request
// that takes longer has hung, and fails the run with its input.
const fuzzTimeoutMS = 30_000

// discardInserts is the real warehouse, for the schema check at start,
// with inserts that store nothing: the fuzzed events must leave the spool
// so that it never fills, and what reaches the warehouse is the other
// tests' concern.
type discardInserts struct{ warehouse.Warehouse }

func (discardInserts) Insert(context.Context, string, []string, [][]any) error { return nil }

// FuzzPostEvents sends fuzzed bodies to POST /v1/events on the real stack
// and checks that the answer is never a server error and that a 202 counts
// every item of the batch exactly once.
func FuzzPostEvents(f *testing.F) {
	at := fuzzNow.Add(-30 * time.Second).Format(time.RFC3339Nano)
	full := `{"event_id":"0190a7e2-6b1c-7d3e-8f00-000000000001","type":"purchase","name":"checkout","time":"` + at + `",` +
		`"url":"https://app.example.com/pricing?plan=pro#top","referrer":"https://www.google.com/search?q=x",` +
		`"landing_page":"https://app.example.com/?utm_source=newsletter&gclid=CLICK123","session_id":"sess_abc123",` +
		`"screen":"1920x1080","language":"de-DE","props":{"plan": "pro", "seats": 3},"value":"49.99","currency":"EUR"}`
	page := `{"event_id":"0190a7e2-6b1c-7d3e-8f00-000000000002","type":"page_view","url":"/"}`
	for _, seed := range []struct {
		body        string
		contentType string
		mode        uint8
	}{
		{page, "application/json", fuzzConsented},
		{"[" + full + "," + page + "]", "application/json", fuzzConsented | fuzzSignedIn},
		{"[" + page + "," + page + "]", "text/plain;charset=UTF-8", fuzzConsented | fuzzGPC},
		{`[{"event_id":"nope","type":"page_view","url":"/"},` + page + `,{"type":"signup","url":"ftp://x"}]`, "application/json", fuzzConsented},
		{`[` + page + `,{"event_id":"0190a7e2-6b1c-7d3e-8f00-000000000003","type":"page_view","url":"/","color":"red"}]`, "application/json", 0},
		{page, "application/json", fuzzBot},
		{page, "application/json", fuzzSignedIn | fuzzToken},
		{`{"event_id":"0190A7E2-6B1C-7D3E-8F00-000000000004","type":"error","url":"/a","props":{"message":"x\ny"},"value":0.1,"currency":"USD"}`, "application/json", fuzzConsented},
		{`{"event_id":"0190a7e2-6b1c-7d3e-8f00-000000000005","type":"page_view","url":"/","url":"/b"}`, "application/json", fuzzConsented},
		{"[]", "application/json", 0},
		{"[1,null,{}]", "application/json", 0},
		{"{\"type\":\"page_view\",\"url\":\"/\xff\"}", "application/json", 0},
		{"", "application/json", 0},
		{page, "application/xml", 0},
	} {
		f.Add([]byte(seed.body), seed.contentType, seed.mode)
	}

	wh := discardInserts{chtest.Embedded(f)}
	s := newStack(f, stackOptions{warehouse: wh, mutate: func(o *ingest.Config) { o.MaxBatch = 16 },
		now: func() time.Time { return fuzzNow }})
	visitor := s.accepting()

	f.Fuzz(func(t *testing.T, body []byte, contentType string, mode uint8) {
		if !httpguts.ValidHeaderFieldValue(contentType) {
			t.Skip("no HTTP client sends this header value")
		}
		v := visitortest.Visitor{UserAgent: visitortest.Firefox}
		if mode&fuzzBot != 0 {
			v.UserAgent = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
		}
		if mode&fuzzConsented != 0 {
			v.VID = visitor.VID
		}
		if mode&fuzzSignedIn != 0 {
			if mode&fuzzToken != 0 {
				v.Token = "fuzz-user"
			} else {
				v.User = "fuzz-user"
			}
		}
		v.GPC = mode&fuzzGPC != 0
		req := v.Request(http.MethodPost, "/v1/events", bytes.NewReader(body), contentType)
		// The content type goes as it came, an empty one too.
		req.Header.Set("Content-Type", contentType)
		resp, raw := visitortest.Send(t, s.app, req, fuzzTimeoutMS)
		switch resp.StatusCode {
		case http.StatusAccepted:
			checkCounts(t, body, raw, mode)
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("%d answered as %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
			}
		default:
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, raw)
		}
	})
}

// checkCounts checks a 202 answer against the body sent: every item is
// counted once, as stored or under one reason for dropping it.
func checkCounts(t *testing.T, body, raw []byte, mode uint8) {
	t.Helper()
	var res ingest.Result
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("202 answer %s: %v", raw, err)
	}
	items := 1
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(trimmed, &list); err != nil {
			t.Fatalf("202 for a body that is not a JSON array: %q", body)
		}
		items = len(list)
	}
	d := res.Dropped
	if got := res.Stored + d.Consent + d.Bot + d.Duplicate + d.Invalid; got != items {
		t.Fatalf("stored %d + dropped %+v = %d, want the %d items sent: %s", res.Stored, d, got, items, raw)
	}
	if res.Accepted != res.Stored+d.Consent+d.Bot+d.Duplicate {
		t.Fatalf("accepted %d is not stored + consent + bot + duplicate: %s", res.Accepted, raw)
	}
	if res.Accepted == 0 || d.Invalid != len(res.Rejected) {
		t.Fatalf("a 202 with nothing accepted, or invalid %d != %d rejected: %s", d.Invalid, len(res.Rejected), raw)
	}
	last := -1
	for _, r := range res.Rejected {
		if r.Index <= last || r.Index >= items || len(r.Errors) == 0 {
			t.Fatalf("rejected item %d out of order, out of range or without errors: %s", r.Index, raw)
		}
		last = r.Index
	}
	backEnd := mode&fuzzSignedIn != 0 && mode&fuzzToken != 0
	if mode&fuzzBot != 0 && !backEnd && res.Stored != 0 {
		t.Fatalf("a crawler's events were stored: %s", raw)
	}
}
