package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/stewardhq/steward/internal/web"
)

// TestRoutesDocumented renders the OpenAPI document with the consent and
// events routes and validates it.
func TestRoutesDocumented(t *testing.T) {
	s := newStack(t, stackOptions{noStart: true})
	doc := web.NewOpenAPI(web.OpenAPIInfo{Title: "Steward"})
	app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), OpenAPI: doc, MaxBodyLimit: 4 << 20})
	s.consent.Mount(app, doc)
	s.events.Mount(app, doc)
	if missing := web.UndocumentedRoutes(app, doc); len(missing) > 0 {
		t.Fatalf("undocumented routes: %v", missing)
	}
	resp, err := app.Test(httptest.NewRequest("GET", "/openapi.json", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	loaded, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := loaded.Validate(context.Background()); err != nil {
		t.Fatalf("invalid document: %v", err)
	}
	for _, p := range []string{"/v1/events", "/t.js", "/v1/consent", "/consent.js", "/.well-known/gpc.json"} {
		if loaded.Paths.Find(p) == nil {
			t.Errorf("%s is not in the document", p)
		}
	}
}
