package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/testutil/visitortest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/internal/web/webtest"
)

// problem is the part of a problem document the tests read.
type problem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field string `json:"field"`
		Rule  string `json:"rule"`
	} `json:"errors"`
}

func fields(t *testing.T, raw []byte) []string {
	t.Helper()
	var p problem
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("decode problem %s: %v", raw, err)
	}
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field+":"+e.Rule)
	}
	slices.Sort(out)
	return out
}

func minimal(typ string) map[string]any {
	return map[string]any{"event_id": uuid.NewString(), "type": typ, "url": "/"}
}

func TestValidation(t *testing.T) {
	s := newStack(t, stackOptions{mutate: func(o *ingest.Config) { o.MaxBatch = 5 }})
	cl := s.accepting()
	now := time.Now().UTC()

	t.Run("valid items of a batch are accepted, invalid ones listed", func(t *testing.T) {
		good := minimal("page_view")
		badID := minimal("page_view")
		badID["event_id"] = "not-a-uuid"
		badMany := minimal("purchase")
		badMany["time"] = now.Add(-72 * time.Hour).Format(time.RFC3339)
		badMany["value"] = 12.345678
		badMany["screen"] = "huge"
		status, res, raw := cl.send([]any{badID, good, badMany})
		if status != 202 || res.Accepted != 1 || len(res.Rejected) != 2 {
			t.Fatalf("%d %s", status, raw)
		}
		if res.Rejected[0].Index != 0 || res.Rejected[0].Errors[0].Field != "event_id" {
			t.Fatalf("first rejection %+v", res.Rejected[0])
		}
		var got []string
		for _, e := range res.Rejected[1].Errors {
			got = append(got, e.Field+":"+e.Rule)
		}
		slices.Sort(got)
		want := []string{"currency:required", "screen:format", "time:range", "value:range"}
		if res.Rejected[1].Index != 2 || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("second rejection %d %v, want index 2 %v", res.Rejected[1].Index, got, want)
		}
		s.flush()
		if rows := s.rowsByID([]string{good["event_id"].(string), badMany["event_id"].(string)}); len(rows) != 1 {
			t.Fatalf("%d of the events stored, want only the valid one", len(rows))
		}
	})

	tests := []struct {
		name   string
		body   any
		ctype  string
		status int
		fields []string
	}{
		{"every item invalid", []any{map[string]any{"type": "page_view", "url": "/"}, map[string]any{"event_id": uuid.NewString(), "type": "nope", "url": "/"}},
			"", 400, []string{"[0].event_id:required", "[1].type:enum"}},
		{"single invalid event", map[string]any{"event_id": uuid.NewString(), "type": "page_view", "url": "javascript:alert(1)"},
			"", 400, []string{"url:format"}},
		{"unknown field", map[string]any{"event_id": uuid.NewString(), "type": "page_view", "url": "/", "email": "a@example.com"},
			"", 400, []string{"email:unknown"}},
		{"too many events", []any{minimal("page_view"), minimal("page_view"), minimal("page_view"), minimal("page_view"), minimal("page_view"), minimal("page_view")},
			"", 400, []string{"body:max_items"}},
		{"empty array", []any{}, "", 400, []string{"body:min_items"}},
		{"not json", []byte("hello"), "", 400, []string{"body:json"}},
		{"future time", map[string]any{"event_id": uuid.NewString(), "type": "page_view", "url": "/", "time": now.Add(time.Hour).Format(time.RFC3339)},
			"", 400, []string{"time:range"}},
		{"props not an object", map[string]any{"event_id": uuid.NewString(), "type": "page_view", "url": "/", "props": []int{1}},
			"", 400, []string{"props:type"}},
		{"long name", map[string]any{"event_id": uuid.NewString(), "type": "feature_interaction", "url": "/", "name": strings.Repeat("x", 101)},
			"", 400, []string{"name:format"}},
		{"form body", []byte("a=b"), "application/x-www-form-urlencoded", 415, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := cl.do("POST", "/v1/events", tc.body, tc.ctype)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, raw)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
			if tc.fields != nil {
				if got := fields(t, raw); strings.Join(got, " ") != strings.Join(tc.fields, " ") {
					t.Fatalf("fields %v, want %v", got, tc.fields)
				}
			}
		})
	}

	t.Run("sendBeacon text/plain body", func(t *testing.T) {
		raw, _ := json.Marshal([]any{minimal("page_view")})
		resp, body := cl.do("POST", "/v1/events", raw, "text/plain;charset=UTF-8")
		if resp.StatusCode != 202 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})

	t.Run("body over the default limit, within the route's", func(t *testing.T) {
		// Leading whitespace pads one valid event past the server's default.
		raw, _ := json.Marshal(minimal("page_view"))
		body := append(bytes.Repeat([]byte(" "), web.DefaultBodyLimit), raw...)
		if resp, out := cl.do("POST", "/v1/events", body, ""); resp.StatusCode != 202 {
			t.Fatalf("status %d, want 202: %s", resp.StatusCode, out)
		}
	})

	// A body declared over the route's limit is refused from its header:
	// none of it is sent, and a server that waited for it would answer 400.
	// app.Test cannot show this answer (see package webtest).
	base := webtest.Serve(t, s.app)
	t.Run("body over the route's limit", func(t *testing.T) {
		h := http.Header{"Content-Type": {"application/json"}}
		resp, raw := webtest.DeclareBody(t, base, "POST", "/v1/events", h, ingest.DefaultBodyLimit+1)
		want := fmt.Sprintf("The request body has %d bytes; this endpoint accepts at most %d.", ingest.DefaultBodyLimit+1, ingest.DefaultBodyLimit)
		var p problem
		if err := json.Unmarshal(raw, &p); err != nil || resp.StatusCode != 413 || p.Detail != want {
			t.Fatalf("status %d %s, want 413 with detail %q", resp.StatusCode, raw, want)
		}
	})
}

func TestBotsNotStored(t *testing.T) {
	s := newStack(t, stackOptions{})
	cl := s.accepting()
	tests := []struct {
		name string
		ua   string
	}{
		{"crawler", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{"script", "python-requests/2.31.0"},
		{"headless browser", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"},
		{"no user agent", ""},
	}
	var ids []string
	for _, tc := range tests {
		cl.UserAgent = tc.ua
		ev := minimal("page_view")
		ids = append(ids, ev["event_id"].(string))
		if status, res, raw := cl.send(ev); status != 202 || res.Accepted != 1 || res.Dropped.Bot != 1 || res.Stored != 0 {
			t.Fatalf("%s: %d %s", tc.name, status, raw)
		}
	}
	cl.UserAgent = visitortest.Firefox
	human := minimal("page_view")
	if status, _, raw := cl.send(human); status != 202 {
		t.Fatalf("%d %s", status, raw)
	}
	s.flush()
	rows := s.rowsByID(append(ids, human["event_id"].(string)))
	if len(rows) != 1 || rows[human["event_id"].(string)] == nil {
		t.Fatalf("stored %d events, want only the human's", len(rows))
	}
}

// TestWarehouseOutage stops the warehouse (inserts fail, the engine is the
// real one underneath), sends events, restarts it: every event arrives,
// once.
func TestWarehouseOutage(t *testing.T) {
	flaky := &flakyWarehouse{Warehouse: chtest.Embedded(t)}
	s := newStack(t, stackOptions{warehouse: flaky})
	cl := s.accepting()

	flaky.down.Store(true)
	var ids []string
	for range 30 {
		batch := make([]any, 10)
		for i := range batch {
			ev := fullEvent("page_view")
			ids = append(ids, ev["event_id"].(string))
			batch[i] = ev
		}
		if status, _, raw := cl.send(batch); status != 202 {
			t.Fatalf("while the warehouse is down: %d %s", status, raw)
		}
	}
	deadline := time.Now().Add(waitTimeout)
	for flaky.failed.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if flaky.failed.Load() < 3 {
		t.Fatalf("the drainer tried the failing warehouse %d times, want retries", flaky.failed.Load())
	}
	if n := countRows(t, flaky.Warehouse); n != 0 {
		t.Fatalf("%d rows stored while the warehouse was down", n)
	}

	flaky.down.Store(false)
	s.flush()
	if n := countRows(t, flaky.Warehouse); n != uint64(len(ids)) {
		t.Fatalf("%d rows after the warehouse came back, want %d", n, len(ids))
	}
	rows := s.rowsByID(ids)
	for _, id := range ids {
		if len(rows[id]) != 1 {
			t.Fatalf("event %s stored %d times", id, len(rows[id]))
		}
	}
}

// TestLostInsertAnswerNoDuplicate makes inserts succeed but report failure
// (a server whose answer was lost): the retry must not store the batch
// twice.
func TestLostInsertAnswerNoDuplicate(t *testing.T) {
	flaky := &flakyWarehouse{Warehouse: chtest.Embedded(t)}
	flaky.lostAnswers.Store(1)
	s := newStack(t, stackOptions{warehouse: flaky})
	cl := s.accepting()
	var batch []any
	for range 50 {
		batch = append(batch, fullEvent("page_view"))
	}
	if status, _, raw := cl.send(batch); status != 202 {
		t.Fatalf("%d %s", status, raw)
	}
	s.flush()
	if n := countRows(t, flaky.Warehouse); n != 50 {
		t.Fatalf("%d rows, want 50 exactly once each", n)
	}
	if flaky.lostAnswers.Load() != 0 {
		t.Fatal("the lost answers were never exercised")
	}
}

func TestFullSpoolAnswers503(t *testing.T) {
	flaky := &flakyWarehouse{Warehouse: chtest.Embedded(t)}
	flaky.down.Store(true)
	s := newStack(t, stackOptions{warehouse: flaky, mutate: func(o *ingest.Config) { o.SpoolMaxBytes = 16 << 10 }})
	cl := s.accepting()
	accepted := 0
	for i := 0; ; i++ {
		resp, raw := cl.do("POST", "/v1/events", []any{fullEvent("page_view"), fullEvent("page_view")}, "")
		if resp.StatusCode == 202 {
			accepted += 2
			if i > 1000 {
				t.Fatal("the spool never filled")
			}
			continue
		}
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("full spool: %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
		}
		var p problem
		if err := json.Unmarshal(raw, &p); err != nil || p.Type != "https://steward.dev/problems/unavailable" {
			t.Fatalf("problem %s", raw)
		}
		break
	}
	flaky.down.Store(false)
	s.flush()
	if n := countRows(t, flaky.Warehouse); n != uint64(accepted) {
		t.Fatalf("%d rows, want the %d accepted", n, accepted)
	}
	if status, _, raw := cl.send(fullEvent("page_view")); status != 202 {
		t.Fatalf("after the drain: %d %s", status, raw)
	}
}

// TestStopDrains checks that Stop delivers what is spooled before it
// returns.
func TestStopDrains(t *testing.T) {
	wh := chtest.Embedded(t)
	s := newStack(t, stackOptions{warehouse: wh, mutate: func(o *ingest.Config) { o.FlushInterval = time.Hour }})
	cl := s.accepting()
	for range 5 {
		if status, _, raw := cl.send([]any{fullEvent("page_view"), fullEvent("error")}); status != 202 {
			t.Fatalf("%d %s", status, raw)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.events.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, wh); n != 10 {
		t.Fatalf("%d rows after Stop, want 10", n)
	}
}

func TestStartRefusesMismatchedSchema(t *testing.T) {
	wh := chtest.Embedded(t)
	if err := wh.Exec(context.Background(), "ALTER TABLE events COMMENT COLUMN channel 'user.behavior.attribution.utm'"); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, stackOptions{warehouse: wh, noStart: true})
	err := s.events.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "channel") {
		t.Fatalf("Start = %v, want an error naming the channel column", err)
	}
}

func TestTrackerScriptServed(t *testing.T) {
	s := newStack(t, stackOptions{})
	resp, err := s.app.Test(httptest.NewRequest("GET", "/t.js", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	js := string(body)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("%d ETag %q type %q", resp.StatusCode, etag, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"navigator.sendBeacon", "keepalive:", "history.pushState", "popstate", "randomUUID",
		"steward.track", "steward.conversion", `granted("analytics")`, `granted("marketing")`} {
		if !strings.Contains(js, want) {
			t.Errorf("t.js lacks %s", want)
		}
	}
	req := httptest.NewRequest("GET", "/t.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = s.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 304 {
		t.Fatalf("revalidation: %d, want 304", resp.StatusCode)
	}
}
