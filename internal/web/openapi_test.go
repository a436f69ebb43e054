package web_test

import (
	"context"
	"encoding/json"
	"mime/multipart"
	"slices"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/web"
)

type generation struct {
	ID        string    `json:"id"`
	Prompt    string    `json:"prompt"`
	Seed      *int64    `json:"seed"`
	CreatedAt time.Time `json:"created_at"`
	Internal  string    `json:"-"`
}

type createGeneration struct {
	Prompt string `json:"prompt"`
	Seed   *int64 `json:"seed,omitempty"`
}

type listQuery struct {
	Cursor string `query:"cursor" doc:"Opaque cursor from the previous page."`
	Limit  int    `query:"limit"`
	Hidden string
}

type uploadForm struct {
	File  *multipart.FileHeader `form:"file"`
	Title string                `form:"title"`
}

// mountExample mounts and documents routes the way a module does.
func mountExample(app *fiber.App, doc web.Documenter) {
	ok := func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusOK) }
	v1 := app.Group("/v1")
	web.Route(v1, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/generations", Summary: "Create a generation", Tag: "generation", Auth: true,
		Request:   createGeneration{},
		Responses: map[int]any{201: generation{}, 402: nil},
	}, ok)
	web.Route(v1, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/generations", Summary: "List generations", Tag: "generation", Auth: true,
		Query:     listQuery{},
		Responses: map[int]any{200: []generation{}},
	}, ok)
	web.Route(v1, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/generations/:id", Summary: "Get a generation", Tag: "generation", Auth: true,
		Responses: map[int]any{200: generation{}, 404: nil},
	}, ok)
	web.Route(v1, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/assets", Summary: "Upload an asset", Tag: "assets", Auth: true,
		Request: web.Body{ContentType: "multipart/form-data", Schema: uploadForm{}}, BodyLimit: 50 << 20,
		Responses: map[int]any{201: nil},
	}, ok)
	web.Route(app, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/consent.js", Summary: "Consent banner script", Tag: "consent",
		Responses: map[int]any{200: web.Body{ContentType: "text/javascript"}},
	}, ok)
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := web.NewOpenAPI(web.OpenAPIInfo{Title: "Steward"})
	app, _ := newApp(t, web.Options{Version: "0.9.0", OpenAPI: doc})
	mountExample(app, doc)

	r := get(t, app, "/openapi.json")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json = %d %s", r.status, r.header.Get("Content-Type"))
	}
	loaded, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("load served document: %v", err)
	}
	if err := loaded.Validate(context.Background()); err != nil {
		t.Fatalf("served document is invalid: %v\n%s", err, r.body)
	}
	if loaded.OpenAPI != "3.1.0" || loaded.Info.Version != "0.9.0" || loaded.Info.Title != "Steward" {
		t.Errorf("header = %s %q %q", loaded.OpenAPI, loaded.Info.Version, loaded.Info.Title)
	}

	tests := []struct {
		name   string
		method string
		path   string
		check  func(t *testing.T, op *openapi3.Operation)
	}{
		{"platform health", "GET", "/healthz", func(t *testing.T, op *openapi3.Operation) {
			if op.Responses.Value("503") == nil || op.Security != nil {
				t.Errorf("healthz doc: %+v", op)
			}
		}},
		{"platform metrics", "GET", "/metrics", nil},
		{"platform document", "GET", "/openapi.json", nil},
		{"path parameter", "GET", "/v1/generations/{id}", func(t *testing.T, op *openapi3.Operation) {
			p := op.Parameters.GetByInAndName("path", "id")
			if p == nil || !p.Required {
				t.Errorf("path parameter id = %+v", p)
			}
			if op.OperationID != "get_v1_generations_id" {
				t.Errorf("operationId = %q", op.OperationID)
			}
			problem := op.Responses.Value("404").Value.Content.Get(web.ContentTypeProblem)
			if problem == nil || problem.Schema.Ref != "#/components/schemas/Problem" {
				t.Errorf("404 is not a problem document: %+v", op.Responses.Value("404").Value)
			}
		}},
		{"auth and request body", "POST", "/v1/generations", func(t *testing.T, op *openapi3.Operation) {
			if op.Security == nil || len(*op.Security) != 2 {
				t.Errorf("security = %v", op.Security)
			}
			for _, code := range []string{"201", "401", "402", "413", "default"} {
				if op.Responses.Value(code) == nil {
					t.Errorf("response %s missing", code)
				}
			}
			body := op.RequestBody.Value.Content.Get("application/json")
			if body == nil || body.Schema.Value.Properties["prompt"] == nil {
				t.Fatalf("request body = %+v", op.RequestBody.Value)
			}
			// A pointer is nullable, the 3.1 way.
			seed := op.Responses.Value("201").Value.Content.Get("application/json").Schema.Value.Properties["seed"].Value
			if !seed.Type.Is("integer") && !(seed.Type.Includes("integer") && seed.Type.Includes("null")) {
				t.Errorf("seed type = %v", seed.Type)
			}
			if !seed.Type.Includes("null") || seed.Nullable {
				t.Errorf("seed is not nullable in 3.1 form: %+v", seed)
			}
			gen := op.Responses.Value("201").Value.Content.Get("application/json").Schema.Value
			if gen.Properties["Internal"] != nil || gen.Properties["created_at"].Value.Format != "date-time" {
				t.Errorf("generation schema does not follow encoding/json: %v", gen.Properties)
			}
		}},
		{"query parameters", "GET", "/v1/generations", func(t *testing.T, op *openapi3.Operation) {
			var names []string
			for _, p := range op.Parameters {
				if p.Value.In == "query" {
					names = append(names, p.Value.Name)
				}
			}
			if !slices.Equal(names, []string{"cursor", "limit"}) {
				t.Errorf("query parameters = %v", names)
			}
		}},
		{"multipart upload", "POST", "/v1/assets", func(t *testing.T, op *openapi3.Operation) {
			form := op.RequestBody.Value.Content.Get("multipart/form-data")
			if form == nil {
				t.Fatalf("no multipart body: %+v", op.RequestBody.Value.Content)
			}
			file := form.Schema.Value.Properties["file"]
			if file == nil || file.Value.Format != "binary" || form.Schema.Value.Properties["title"] == nil {
				t.Errorf("form schema = %+v", form.Schema.Value.Properties)
			}
			if op.Extensions["x-body-limit"] != float64(50<<20) {
				t.Errorf("x-body-limit = %v", op.Extensions["x-body-limit"])
			}
		}},
		{"non-JSON response", "GET", "/consent.js", func(t *testing.T, op *openapi3.Operation) {
			if op.Responses.Value("200").Value.Content.Get("text/javascript") == nil {
				t.Errorf("content = %+v", op.Responses.Value("200").Value.Content)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item := loaded.Paths.Value(tt.path)
			if item == nil {
				t.Fatalf("path %s missing", tt.path)
			}
			op := item.GetOperation(tt.method)
			if op == nil {
				t.Fatalf("operation %s %s missing", tt.method, tt.path)
			}
			if op.Summary == "" {
				t.Errorf("no summary")
			}
			if op.Responses.Default() == nil {
				t.Errorf("no default problem response")
			}
			if tt.check != nil {
				tt.check(t, op)
			}
		})
	}
}

func TestUndocumentedRoutes(t *testing.T) {
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app, _ := newApp(t, web.Options{OpenAPI: doc})
	mountExample(app, doc)
	app.Use("/v1/billing", func(c *fiber.Ctx) error { return c.Next() })
	if missing := web.UndocumentedRoutes(app, doc); len(missing) != 0 {
		t.Fatalf("documented app reports %v", missing)
	}

	ok := func(c *fiber.Ctx) error { return nil }
	app.Get("/v1/billing/orders", ok)
	app.Post("/v1/support/tickets/:id/messages", ok)
	app.Head("/v1/ping", ok)
	doc.Add(web.RouteDoc{Method: "GET", Path: "/v1/documented/:ref", Summary: "Documented apart from mounting"})
	app.Get("/v1/documented/:ref", ok)

	want := []string{"GET /v1/billing/orders", "HEAD /v1/ping", "POST /v1/support/tickets/:id/messages"}
	if got := web.UndocumentedRoutes(app, doc); !slices.Equal(got, want) {
		t.Errorf("UndocumentedRoutes = %v, want %v", got, want)
	}
}

func TestOpenAPIPath(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantPath   string
		wantParams []string
	}{
		{"static", "/v1/me", "/v1/me", nil},
		{"one parameter", "/v1/generations/:id", "/v1/generations/{id}", []string{"id"}},
		{"two parameters", "/v1/support/tickets/:ticketID/messages/:n", "/v1/support/tickets/{ticketID}/messages/{n}", []string{"ticketID", "n"}},
		{"constraint and optional", "/v1/orders/:id<int>/:part?", "/v1/orders/{id}/{part}", []string{"id", "part"}},
		{"wildcard", "/files/*", "/files/{wildcard}", []string{"wildcard"}},
		{"trailing slash", "/v1/me/", "/v1/me", nil},
		{"root", "/", "/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, params := web.OpenAPIPath(tt.in)
			if p != tt.wantPath || !slices.Equal(params, tt.wantParams) {
				t.Errorf("OpenAPIPath(%q) = %q %v, want %q %v", tt.in, p, params, tt.wantPath, tt.wantParams)
			}
		})
	}
}

func TestOpenAPIAddRefusesDuplicates(t *testing.T) {
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	doc.Add(web.RouteDoc{Method: "get", Path: "/v1/orders/:id"})
	defer func() {
		if recover() == nil {
			t.Error("second doc of the same route did not panic")
		}
	}()
	// The same route under another parameter name is still the same route.
	doc.Add(web.RouteDoc{Method: "GET", Path: "/v1/orders/:orderID"})
}

func TestOpenAPIRefreshesAfterAdd(t *testing.T) {
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app, _ := newApp(t, web.Options{OpenAPI: doc})
	first := get(t, app, "/openapi.json")
	doc.Add(web.RouteDoc{Method: "GET", Path: "/v1/late", Summary: "Added after the first render"})
	second := get(t, app, "/openapi.json")
	var a, b struct {
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(first.body, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(second.body, &b); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Paths["/v1/late"]; ok {
		t.Error("route present before it was added")
	}
	if _, ok := b.Paths["/v1/late"]; !ok {
		t.Error("route missing after it was added")
	}
}
