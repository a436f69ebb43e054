package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/logging"
	"github.com/stewardhq/steward/internal/web"
)

func TestRequestID(t *testing.T) {
	app, logs := newApp(t, web.Options{})
	app.Get("/v1/me", func(c *fiber.Ctx) error {
		// What the handler sees must match what the client and the log see.
		return c.SendString(web.RequestID(c) + " " + logging.RequestID(c.UserContext()))
	})
	tests := []struct {
		name     string
		incoming string
		wantKept bool
	}{
		{"none sent", "", false},
		{"uuid kept", "5f0c6a52-3a8e-4e0f-9d5b-0c5e2a1f7e44", true},
		{"trace-style id kept", "web-01:000042.a_b", true},
		{"email refused", "ada@example.org", false},
		{"spaces refused", "id with spaces", false},
		{"log syntax refused", `x" level=ERROR msg="forged`, false},
		{"too long refused", strings.Repeat("a", 129), false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/v1/me", nil)
			if tt.incoming != "" {
				req.Header.Set(web.HeaderRequestID, tt.incoming)
			}
			r := do(t, app, req)
			id := r.header.Get(web.HeaderRequestID)
			if tt.wantKept && id != tt.incoming {
				t.Errorf("id = %q, want the incoming %q", id, tt.incoming)
			}
			if !tt.wantKept {
				if id == tt.incoming || len(id) != 32 {
					t.Errorf("id = %q, want a fresh 32-hex-digit id", id)
				}
				if seen[id] {
					t.Errorf("id %q generated twice", id)
				}
				seen[id] = true
			}
			if string(r.body) != id+" "+id {
				t.Errorf("handler saw %q, header %q", r.body, id)
			}
			if !strings.Contains(logs.String(), `"request_id":"`+id+`"`) {
				t.Errorf("access log lacks request id %q", id)
			}
		})
	}
}

func TestAccessLogHoldsNoPersonalData(t *testing.T) {
	app, logs := newApp(t, web.Options{})
	app.Get("/v1/generations/:id", func(c *fiber.Ctx) error { return c.SendString("generation") })

	req := httptest.NewRequest(http.MethodGet, "/v1/generations/gen_s3cr3t?email=ada%40example.org&utm_source=newsletter", nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (UniqueAgent/7.7)")
	req.Header.Set("X-Forwarded-For", "203.0.113.77")
	req.Header.Set("Cookie", "steward_session=sess_abcdef")
	req.Header.Set("Authorization", "Bearer tok_abcdef")
	req.Header.Set("Referer", "https://example.org/ref-page")
	r := do(t, app, req)
	if r.status != 200 {
		t.Fatalf("status = %d", r.status)
	}

	lines := logs.lines(t, "request")
	if len(lines) != 1 {
		t.Fatalf("got %d access-log lines:\n%s", len(lines), logs.String())
	}
	l := lines[0]
	if l["method"] != "GET" || l["route"] != "/v1/generations/:id" || l["status"] != float64(200) ||
		l["bytes"] != float64(len("generation")) || l["request_id"] != r.header.Get(web.HeaderRequestID) {
		t.Errorf("access-log line = %v", l)
	}
	if _, ok := l["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms missing: %v", l)
	}
	out := logs.String()
	for _, leak := range []string{
		"gen_s3cr3t", "ada", "example.org", "utm_source", "newsletter", "UniqueAgent",
		"203.0.113.77", "0.0.0.0", "127.0.0.1", "sess_abcdef", "tok_abcdef", "ref-page",
	} {
		if strings.Contains(out, leak) {
			t.Errorf("log contains %q:\n%s", leak, out)
		}
	}
}

func TestRouteLabels(t *testing.T) {
	app, logs := newApp(t, web.Options{})
	v1 := app.Group("/v1", func(c *fiber.Ctx) error {
		if c.Get("Authorization") == "" {
			return fiber.ErrUnauthorized
		}
		return c.Next()
	})
	v1.Get("/orders/:id", func(c *fiber.Ctx) error { return c.SendString("order") })
	// A route on "/" must not be confused with the middleware used on "/".
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString("home") })

	tests := []struct {
		name      string
		target    string
		auth      bool
		wantRoute string
	}{
		{"matched route", "/v1/orders/o_1", true, "/v1/orders/:id"},
		{"stopped by a group middleware", "/v1/orders/o_1", false, "/v1/*"},
		{"root route", "/", false, "/"},
		{"no route", "/wp-admin/setup.php", false, "unmatched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			if tt.auth {
				req.Header.Set("Authorization", "Bearer x")
			}
			r := do(t, app, req)
			id := r.header.Get(web.HeaderRequestID)
			for _, l := range logs.lines(t, "request") {
				if l["request_id"] == id {
					if l["route"] != tt.wantRoute {
						t.Errorf("route = %v, want %q", l["route"], tt.wantRoute)
					}
					return
				}
			}
			t.Errorf("no access-log line for %s", id)
		})
	}
}

func TestMetrics(t *testing.T) {
	app, _ := newApp(t, web.Options{})
	app.Get("/v1/generations/:id", func(c *fiber.Ctx) error { return c.SendString("g") })
	for i := 0; i < 3; i++ {
		get(t, app, fmt.Sprintf("/v1/generations/g_%d", i))
	}
	get(t, app, "/no/such/path/1")
	get(t, app, "/no/such/path/2")

	r := get(t, app, "/metrics")
	if r.status != 200 {
		t.Fatalf("status = %d", r.status)
	}
	body := string(r.body)
	for _, want := range []string{
		`steward_http_requests_total{method="GET",route="/v1/generations/:id",status="200"} 3`,
		`steward_http_requests_total{method="GET",route="unmatched",status="404"} 2`,
		`steward_http_request_duration_seconds_count{method="GET",route="/v1/generations/:id"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s\n%s", want, body)
		}
	}
	if strings.Contains(body, "g_1") || strings.Contains(body, "/no/such") {
		t.Errorf("raw paths reached metric labels:\n%s", body)
	}
}

func TestOpsRoutesGuard(t *testing.T) {
	const token = "ops-token-0123456789abcdef"
	tests := []struct {
		name   string
		opts   web.Options
		auth   string
		status int
	}{
		{name: "open without a token (development)", opts: web.Options{}, status: 200},
		{name: "closed without a token (production)", opts: web.Options{OpsClosed: true}, status: 404},
		{name: "closed, a token sent anyway", opts: web.Options{OpsClosed: true}, auth: "Bearer " + token, status: 404},
		{name: "token required, none sent", opts: web.Options{OpsToken: token}, status: 404},
		{name: "token required, wrong one", opts: web.Options{OpsToken: token}, auth: "Bearer " + token + "x", status: 404},
		{name: "token required, not a bearer", opts: web.Options{OpsToken: token}, auth: token, status: 404},
		{name: "token required and sent", opts: web.Options{OpsToken: token, OpsClosed: true}, auth: "Bearer " + token, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, _ := newApp(t, tt.opts)
			for _, path := range []string{"/metrics", "/openapi.json"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if tt.auth != "" {
					req.Header.Set("Authorization", tt.auth)
				}
				if r := do(t, app, req); r.status != tt.status {
					t.Errorf("GET %s = %d, want %d", path, r.status, tt.status)
				}
			}
			// Health probes never need the token.
			if r := get(t, app, "/healthz"); r.status != 200 {
				t.Errorf("GET /healthz = %d", r.status)
			}
		})
	}
}
