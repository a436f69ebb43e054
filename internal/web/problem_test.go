package web_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/internal/web/webtest"
)

func TestProblemForEachKind(t *testing.T) {
	tests := []struct {
		name           string
		err            error
		wantStatus     int
		wantType       string
		wantDetail     string
		wantRetryAfter string
	}{
		{"invalid argument", errs.E(errs.ErrInvalidArgument, "The cursor is malformed."), 400, "invalid-argument", "The cursor is malformed.", ""},
		{"unauthenticated", errs.E(errs.ErrUnauthenticated, "The session has expired."), 401, "unauthenticated", "The session has expired.", ""},
		{"payment required", errs.E(errs.ErrPaymentRequired, "You have 0 credits left."), 402, "payment-required", "You have 0 credits left.", ""},
		{"forbidden", errs.E(errs.ErrForbidden, "Only a DPO may read the audit report."), 403, "forbidden", "Only a DPO may read the audit report.", ""},
		{"not found", errs.Ef(errs.ErrNotFound, "Generation %s does not exist.", "g_1"), 404, "not-found", "Generation g_1 does not exist.", ""},
		{"conflict", errs.E(errs.ErrConflict, "The ticket is closed."), 409, "conflict", "The ticket is closed.", ""},
		{"too large", errs.E(errs.ErrTooLarge, "Uploads are limited to 50 MiB."), 413, "too-large", "Uploads are limited to 50 MiB.", ""},
		{"unsupported media type", errs.E(errs.ErrUnsupportedMediaType, "Upload a PNG or JPEG image."), 415, "unsupported-media-type", "Upload a PNG or JPEG image.", ""},
		{"rate limited with delay", errs.Retry(errs.ErrRateLimited, "Slow down.", 1500*time.Millisecond), 429, "rate-limited", "Slow down.", "2"},
		{"rate limited without delay", errs.E(errs.ErrRateLimited, "Slow down."), 429, "rate-limited", "Slow down.", "5"},
		{"unavailable", errs.Retry(errs.ErrUnavailable, "The warehouse is busy.", time.Minute), 503, "unavailable", "The warehouse is busy.", "60"},
		{"bare sentinel gets a generic detail", fmt.Errorf("load user u_1 by email: %w", errs.ErrNotFound), 404, "not-found", "The requested resource does not exist.", ""},
		{"wrapped kind keeps detail, hides cause", fmt.Errorf("handler: %w", errs.Wrap(errors.New("sql: no rows"), errs.ErrNotFound, "Order not found.")), 404, "not-found", "Order not found.", ""},
		{"fiber error with a kind's status", fiber.ErrForbidden, 403, "forbidden", "You are not allowed to do this.", ""},
		{"fiber error of another status", fiber.ErrTeapot, 418, "about:blank", "", ""},
		{"internal error", fmt.Errorf("query orders: %w", errors.New("pq: password authentication failed for user steward")), 500, "internal", "The server failed to process the request.", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, logs := newApp(t, web.Options{})
			app.Get("/v1/things/:id", func(c *fiber.Ctx) error { return tt.err })

			r := get(t, app, "/v1/things/t_9")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tt.wantStatus, r.body)
			}
			p := r.problem(t)
			wantType := tt.wantType
			if wantType != "about:blank" {
				wantType = web.ProblemTypeBase + tt.wantType
			}
			if p.Type != wantType {
				t.Errorf("type = %q, want %q", p.Type, wantType)
			}
			if p.Status != tt.wantStatus || p.Title == "" {
				t.Errorf("status/title = %d %q", p.Status, p.Title)
			}
			if p.Detail != tt.wantDetail {
				t.Errorf("detail = %q, want %q", p.Detail, tt.wantDetail)
			}
			if p.Instance != "/v1/things/t_9" {
				t.Errorf("instance = %q", p.Instance)
			}
			if p.RequestID == "" || p.RequestID != r.header.Get(web.HeaderRequestID) {
				t.Errorf("request_id = %q, header %q", p.RequestID, r.header.Get(web.HeaderRequestID))
			}
			if got := r.header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			// Nothing of an error's own text beyond its client-safe detail
			// reaches the client.
			for _, secret := range []string{"sql:", "pq:", "password", "load user", "handler:"} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("body leaks %q: %s", secret, r.body)
				}
			}
			if tt.wantStatus == 500 {
				failed := logs.lines(t, "request failed")
				if len(failed) != 1 || !strings.Contains(fmt.Sprint(failed[0]["error"]), "password authentication failed") {
					t.Errorf("internal error not logged: %v", failed)
				}
				if failed[0]["request_id"] != p.RequestID || failed[0]["route"] != "/v1/things/:id" {
					t.Errorf("log line lacks request id or route: %v", failed[0])
				}
			}
		})
	}
}

func TestEveryKindHasItsOwnStatus(t *testing.T) {
	app, _ := newApp(t, web.Options{})
	seen := map[int]error{}
	for _, kind := range errs.Kinds() {
		app.Get("/kind/"+strings.ReplaceAll(kind.Error(), " ", "-"), func(c *fiber.Ctx) error { return kind })
	}
	for _, kind := range errs.Kinds() {
		r := get(t, app, "/kind/"+strings.ReplaceAll(kind.Error(), " ", "-"))
		if r.status < 400 || r.status >= 600 || r.status == 500 {
			t.Errorf("kind %q answers %d", kind, r.status)
		}
		if other, dup := seen[r.status]; dup {
			t.Errorf("kinds %q and %q share status %d", kind, other, r.status)
		}
		seen[r.status] = kind
		if p := r.problem(t); !strings.HasPrefix(p.Type, web.ProblemTypeBase) {
			t.Errorf("kind %q has type %q", kind, p.Type)
		}
	}
}

func TestValidationProblem(t *testing.T) {
	app, _ := newApp(t, web.Options{})
	app.Post("/v1/support/tickets", func(c *fiber.Ctx) error {
		var v errs.ValidationError
		v.Add("subject", "required", "Subject is required.")
		v.Add("messages[0].body", "max_length", "A message has at most 10000 characters.")
		return fmt.Errorf("create ticket: %w", v.Err())
	})
	r := do(t, app, httptest.NewRequest(http.MethodPost, "/v1/support/tickets", nil))
	if r.status != 400 {
		t.Fatalf("status = %d", r.status)
	}
	p := r.problem(t)
	want := []errs.FieldError{
		{Field: "subject", Rule: "required", Message: "Subject is required."},
		{Field: "messages[0].body", Rule: "max_length", Message: "A message has at most 10000 characters."},
	}
	if len(p.Errors) != len(want) {
		t.Fatalf("errors = %+v", p.Errors)
	}
	for i := range want {
		if p.Errors[i] != want[i] {
			t.Errorf("errors[%d] = %+v, want %+v", i, p.Errors[i], want[i])
		}
	}
	if p.Type != web.ProblemTypeBase+"invalid-argument" || p.Detail != "The request has 2 invalid fields." {
		t.Errorf("problem = %+v", p)
	}
	if !strings.Contains(string(r.body), `"errors":[{"field":"subject","rule":"required","message":"Subject is required."}`) {
		t.Errorf("wire format of errors changed: %s", r.body)
	}
}

func TestRoutingProblems(t *testing.T) {
	app, _ := newApp(t, web.Options{})
	app.Get("/v1/me", func(c *fiber.Ctx) error { return c.SendString("me") })
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantType   string
	}{
		{"unknown route", http.MethodGet, "/v1/nowhere?x=1", 404, "not-found"},
		{"known path, other method", http.MethodDelete, "/v1/me", 405, "method-not-allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, app, httptest.NewRequest(tt.method, tt.target, nil))
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", r.status, tt.wantStatus)
			}
			p := r.problem(t)
			if p.Type != web.ProblemTypeBase+tt.wantType || p.Detail == "" || p.RequestID == "" {
				t.Errorf("problem = %+v", p)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app, logs := newApp(t, web.Options{BodyLimit: 1024, MaxBodyLimit: 8192, OpenAPI: doc})
	ok := func(c *fiber.Ctx) error { return c.SendString(fmt.Sprint(len(c.Body()))) }
	web.Route(app, doc, web.RouteDoc{Method: "POST", Path: "/v1/events", Summary: "Send events", Request: []byte{}}, ok)
	web.Route(app, doc, web.RouteDoc{
		Method: "POST", Path: "/v1/assets/:id/parts", Summary: "Upload a part",
		Request: web.Body{ContentType: "application/octet-stream"}, BodyLimit: 4096,
	}, ok)
	web.Route(app, doc, web.RouteDoc{
		Method: "POST", Path: "/v1/archives", Summary: "Upload an archive",
		Request: web.Body{ContentType: "application/octet-stream"}, BodyLimit: 1 << 20,
	}, ok)

	tests := []struct {
		name       string
		path       string
		size       int
		chunked    bool
		wantStatus int
		wantLimit  int // named in the 413 problem's detail
	}{
		{name: "under the default limit", path: "/v1/events", size: 1024, wantStatus: 200},
		{name: "over the default limit", path: "/v1/events", size: 1025, wantStatus: 413, wantLimit: 1024},
		{name: "raised limit on its route", path: "/v1/assets/a_1/parts", size: 4096, wantStatus: 200},
		{name: "over the raised limit", path: "/v1/assets/a_1/parts", size: 4097, wantStatus: 413, wantLimit: 4096},
		{name: "a raised limit serves its route only", path: "/v1/events", size: 4096, wantStatus: 413, wantLimit: 1024},
		{name: "chunked under the raised limit", path: "/v1/assets/a_1/parts", size: 4096, chunked: true, wantStatus: 200},
		{name: "chunked over the raised limit", path: "/v1/assets/a_1/parts", size: 4097, chunked: true, wantStatus: 413, wantLimit: 4096},
		{name: "chunked over the default limit", path: "/v1/events", size: 1025, chunked: true, wantStatus: 413, wantLimit: 1024},
		{name: "route limit above what the server reads at all", path: "/v1/archives", size: 8193, wantStatus: 413, wantLimit: 8192},
		{name: "chunked over what the server reads at all", path: "/v1/archives", size: 8193, chunked: true, wantStatus: 413, wantLimit: 8192},
	}
	// A real listener, since app.Test reports a body refused by the server
	// as an error of its own instead of the answer.
	base := webtest.Serve(t, app)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, base+tt.path, strings.Repeat("x", tt.size), tt.chunked)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tt.wantStatus, r.body)
			}
			if tt.wantStatus != 413 {
				if string(r.body) != fmt.Sprint(tt.size) {
					t.Errorf("handler read %s bytes, want %d", r.body, tt.size)
				}
				return
			}
			want := fmt.Sprintf("The request body has %d bytes; this endpoint accepts at most %d.", tt.size, tt.wantLimit)
			if tt.chunked {
				// The server stopped reading at the route's limit; the
				// request it failed to read is cleared, route and all.
				want = "The request body is larger than this endpoint accepts."
			}
			p := r.problem(t)
			if p.Type != web.ProblemTypeBase+"too-large" || p.Detail != want ||
				p.RequestID == "" || p.RequestID != r.header.Get(web.HeaderRequestID) {
				t.Errorf("problem = %+v, want too-large with detail %q", p, want)
			}
		})
	}

	// Only the header is sent: a server waiting for the body would see it
	// end early and answer 400, so a 413 shows the length alone decided.
	t.Run("declared length over the route limit, no body sent", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			target string // the request target as sent
			path   string // the route's path, as the problem names it
			size   int64
			limit  int
		}{
			{name: "default limit", target: "/v1/events", path: "/v1/events", size: 1025, limit: 1024},
			{name: "raised limit", target: "/v1/assets/a_1/parts", path: "/v1/assets/a_1/parts", size: 4097, limit: 4096},
			{name: "raised limit, target with a query", target: "/v1/assets/a_1/parts?part=2", path: "/v1/assets/a_1/parts", size: 4097, limit: 4096},
			{name: "raised limit, absolute target", target: "http://steward.test/v1/assets/a_1/parts", path: "/v1/assets/a_1/parts", size: 4097, limit: 4096},
			{name: "over what the server reads at all", target: "/v1/assets/a_1/parts", path: "/v1/assets/a_1/parts", size: 1 << 40, limit: 4096},
		} {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := webtest.DeclareBody(t, base, "POST", tt.target, nil, tt.size)
				r := response{status: resp.StatusCode, header: resp.Header, body: body}
				if r.status != 413 {
					t.Fatalf("status = %d, want 413 (body %s)", r.status, r.body)
				}
				want := fmt.Sprintf("The request body has %d bytes; this endpoint accepts at most %d.", tt.size, tt.limit)
				if p := r.problem(t); p.Detail != want || p.Instance != tt.path {
					t.Errorf("problem = %+v, want detail %q about %s", p, want, tt.path)
				}
			})
		}
	})

	// Only the size line of one chunk is sent: a server reading chunked
	// bodies up to a ceiling above the route's limit would wait for the
	// chunk and answer 400 when the body ends, so a 413 shows the route's
	// limit stopped it before a byte of data was read.
	t.Run("chunk over the route limit, no data sent", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			target string
			size   int64
		}{
			{name: "default limit", target: "/v1/events", size: 1025},
			{name: "default limit, chunk within what the server reads at all", target: "/v1/events", size: 8000},
			{name: "raised limit", target: "/v1/assets/a_1/parts", size: 4097},
		} {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := webtest.DeclareChunk(t, base, "POST", tt.target, nil, tt.size)
				r := response{status: resp.StatusCode, header: resp.Header, body: body}
				if r.status != 413 {
					t.Fatalf("status = %d, want 413 (body %s)", r.status, r.body)
				}
				if p := r.problem(t); p.Type != web.ProblemTypeBase+"too-large" {
					t.Errorf("problem = %+v", p)
				}
			})
		}
	})

	// Even a body refused before routing is logged and counted.
	found := false
	for _, l := range logs.lines(t, "request") {
		if l["status"] == float64(413) && l["route"] == "unmatched" {
			found = true
		}
	}
	if !found {
		t.Errorf("no access-log line for the body refused by the server:\n%s", logs.String())
	}
}

// TestLargeBodyToAnOrdinaryRoute is the case of a server whose uploads
// accept about 100 MiB: a 99 MB body sent to a route with the default
// limit, declared or chunked, is refused before the server reads it.
func TestLargeBodyToAnOrdinaryRoute(t *testing.T) {
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app, _ := newApp(t, web.Options{MaxBodyLimit: 100 << 20, OpenAPI: doc})
	ok := func(c *fiber.Ctx) error { return c.SendString(fmt.Sprint(len(c.Body()))) }
	web.Route(app, doc, web.RouteDoc{Method: "POST", Path: "/v1/billing/webhooks/stripe", Summary: "Webhook", Request: []byte{}}, ok)
	web.Route(app, doc, web.RouteDoc{
		Method: "POST", Path: "/v1/assets", Summary: "Upload",
		Request: web.Body{ContentType: "application/octet-stream"}, BodyLimit: 100 << 20,
	}, ok)
	base := webtest.Serve(t, app)
	const size = 99_000_000
	for _, send := range []struct {
		name string
		fn   func(testing.TB, string, string, string, http.Header, int64) (*http.Response, []byte)
	}{
		{"declared length", webtest.DeclareBody},
		{"chunked", webtest.DeclareChunk},
	} {
		t.Run(send.name, func(t *testing.T) {
			resp, body := send.fn(t, base, "POST", "/v1/billing/webhooks/stripe", http.Header{"Content-Type": {"application/json"}}, size)
			if resp.StatusCode != 413 {
				t.Fatalf("status = %d, want 413 (body %s)", resp.StatusCode, body)
			}
			// The upload route still takes a chunk of that size: its
			// server waits for the data, finds the body cut short and
			// answers 400.
			resp, body = send.fn(t, base, "POST", "/v1/assets", nil, size)
			if resp.StatusCode != 400 {
				t.Fatalf("upload route: status = %d, want 400 for a body cut short (body %s)", resp.StatusCode, body)
			}
		})
	}
}

func TestPanicAnswers500AndAppLivesOn(t *testing.T) {
	app, logs := newApp(t, web.Options{})
	app.Get("/v1/boom", func(c *fiber.Ctx) error {
		var m map[string]int
		m["x"]++ // assignment to a nil map panics
		return nil
	})
	app.Get("/v1/fine", func(c *fiber.Ctx) error { return c.SendString("fine") })

	r := get(t, app, "/v1/boom")
	if r.status != 500 {
		t.Fatalf("status = %d", r.status)
	}
	p := r.problem(t)
	if p.Type != web.ProblemTypeBase+"internal" || strings.Contains(string(r.body), "nil map") {
		t.Errorf("problem = %s", r.body)
	}
	panics := logs.lines(t, "panic serving request")
	if len(panics) != 1 {
		t.Fatalf("panic logged %d times:\n%s", len(panics), logs.String())
	}
	if panics[0]["request_id"] != p.RequestID || !strings.Contains(fmt.Sprint(panics[0]["stack"]), "problem_test.go") ||
		!strings.Contains(fmt.Sprint(panics[0]["error"]), "nil map") {
		t.Errorf("panic log line = %v", panics[0])
	}
	var accessStatus []any
	for _, l := range logs.lines(t, "request") {
		accessStatus = append(accessStatus, l["status"])
	}
	if len(accessStatus) != 1 || accessStatus[0] != float64(500) {
		t.Errorf("access log statuses = %v, want [500]", accessStatus)
	}

	if r := get(t, app, "/v1/fine"); r.status != 200 || string(r.body) != "fine" {
		t.Errorf("next request = %d %s", r.status, r.body)
	}
}
