package web

import (
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestScriptRevalidates(t *testing.T) {
	s := NewScript([]byte("console.log(1)"))
	app := fiber.New()
	app.Get("/s.js", s.Serve)
	// No time limit (-1): a slow, busy machine must not fail the test.
	first, err := app.Test(httptest.NewRequest("GET", "/s.js", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	etag := first.Header.Get("ETag")
	if first.StatusCode != 200 || etag == "" || first.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("first answer %d, etag %q, type %q", first.StatusCode, etag, first.Header.Get("Content-Type"))
	}
	tests := []struct {
		name, ifNoneMatch string
		status            int
	}{
		{"same version", etag, 304},
		{"weak form in a list", `"x", W/` + etag, 304},
		{"other version", `"stale"`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/s.js", nil)
			req.Header.Set("If-None-Match", tt.ifNoneMatch)
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}
