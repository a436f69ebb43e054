package web

import (
	"encoding/json"
	"fmt"
	"maps"
	"mime/multipart"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
	"github.com/gofiber/fiber/v2"
)

// OpenAPIVersion is the version of the OpenAPI specification the document
// follows. 3.1 is used because its schemas are JSON Schema 2020-12, so a
// nullable field is the plain `"type": ["string", "null"]` any JSON Schema
// tool reads, and kin-openapi (v0.153) validates 3.1 documents, which the
// tests do.
const OpenAPIVersion = "3.1.0"

// Security scheme names in the document, for routes with RouteDoc.Auth.
const (
	SecurityBearer  = "bearerAuth"
	SecurityCookie  = "sessionCookie"
	defaultCookie   = "steward_session"
	defaultAPITitle = "Steward API"
)

// Documenter receives route docs. *OpenAPI implements it; modules take this
// interface so that they do not depend on how the document is built.
type Documenter interface {
	Add(d RouteDoc)
}

// RouteDoc documents one route. Write it next to the line that mounts the
// route, or mount and document at once with Route.
type RouteDoc struct {
	// Method is the HTTP method, such as fiber.MethodGet.
	Method string
	// Path is the full path in Fiber syntax, such as
	// "/v1/generations/:id"; parameters become OpenAPI's "{id}".
	Path string
	// Summary is a one-line description.
	Summary string
	// Description is optional longer text (CommonMark).
	Description string
	// Tag groups routes in the document, normally the module name.
	Tag string
	// OperationID overrides the generated id ("get_v1_generations_id").
	OperationID string
	// Auth marks a route that needs a session cookie or a bearer token; a
	// 401 problem answer is documented for it.
	Auth bool
	// Request describes the body. A Body value gives its media type; any
	// other value is a JSON body of that value's Go type. Nil means none.
	Request any
	// Query is a struct whose fields with a `query:"name"` tag (the tag
	// Fiber's QueryParser reads) are the query parameters.
	Query any
	// Responses maps a status to the body answered with it, read like
	// Request. A nil body means none, except for statuses of 400 and above,
	// whose body is a Problem. Every route also documents a problem answer
	// as its default response.
	Responses map[int]any
	// BodyLimit raises the request body limit of this route above
	// Options.BodyLimit, up to Options.MaxBodyLimit. Zero keeps the default.
	BodyLimit int
}

// Body describes a request or response body that is not JSON, or JSON with
// a media type of its own.
type Body struct {
	// ContentType is the media type, such as "multipart/form-data",
	// "text/javascript" or "application/zip".
	ContentType string
	// Schema is a value whose Go type describes the body (fields of a
	// multipart form may use `form` tags, and *multipart.FileHeader for
	// files). Nil means an opaque string or file.
	Schema any
}

// OpenAPIInfo is the document's title block.
type OpenAPIInfo struct {
	// Title defaults to "Steward API".
	Title string
	// Version defaults to Options.Version of the app serving the document.
	Version string
	// Description is optional (CommonMark).
	Description string
	// SessionCookie names the session cookie in the cookie security scheme;
	// it defaults to "steward_session".
	SessionCookie string
}

// OpenAPI collects route docs and renders them as an OpenAPI document. It
// is safe for concurrent use.
type OpenAPI struct {
	mu     sync.Mutex
	info   OpenAPIInfo
	routes []RouteDoc
	keys   map[string]bool // see routeKey
	cached []byte
}

// NewOpenAPI returns an empty document.
func NewOpenAPI(info OpenAPIInfo) *OpenAPI {
	if info.Title == "" {
		info.Title = defaultAPITitle
	}
	if info.SessionCookie == "" {
		info.SessionCookie = defaultCookie
	}
	return &OpenAPI{info: info, keys: map[string]bool{}}
}

// Add records the doc of one route. Like Fiber's own route registration it
// panics on a programming error: a missing method or path, or a route
// documented twice.
func (o *OpenAPI) Add(d RouteDoc) {
	d.Method = strings.ToUpper(d.Method)
	if d.Method == "" || d.Path == "" {
		panic(fmt.Sprintf("web: route doc needs a method and a path, got %q %q", d.Method, d.Path))
	}
	key := routeKey(d.Method, d.Path)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.keys[key] {
		panic(fmt.Sprintf("web: route %s documented twice", key))
	}
	o.keys[key] = true
	o.routes = append(o.routes, d)
	o.cached = nil
}

// addPlatform documents a route of the platform itself, once even when the
// document is shared by several apps.
func (o *OpenAPI) addPlatform(d RouteDoc) {
	if o.Documented(d.Method, d.Path) {
		return
	}
	o.Add(d)
}

func (o *OpenAPI) setDefaultVersion(v string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.info.Version == "" {
		o.info.Version = v
		o.cached = nil
	}
}

// Documented reports whether a route, given in Fiber syntax, has a doc.
func (o *OpenAPI) Documented(method, path string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.keys[routeKey(method, path)]
}

// bodyLimit returns the body limit of the documented route matching a
// request, or def when none raises it.
func (o *OpenAPI) bodyLimit(method, path string, def int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	limit := def
	for _, d := range o.routes {
		if d.BodyLimit > limit && d.Method == method &&
			fiber.RoutePatternMatch(path, d.Path, fiber.Config{CaseSensitive: true}) {
			limit = d.BodyLimit
		}
	}
	return limit
}

// JSON returns the rendered document. It is rendered once and again only
// after a route is added.
func (o *OpenAPI) JSON() ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cached != nil {
		return o.cached, nil
	}
	doc, err := o.build()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode openapi document: %w", err)
	}
	o.cached = b
	return b, nil
}

// Document returns the document as kin-openapi's model.
func (o *OpenAPI) Document() (*openapi3.T, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.build()
}

func (s *server) openAPI(c *fiber.Ctx) error {
	b, err := s.doc.JSON()
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(b)
}

// Route mounts handlers on r and documents the route in doc, so that the two
// cannot drift apart. d.Path is relative to r: when r is a group, its prefix
// is prepended in the doc, as Fiber does for the route.
func Route(r fiber.Router, doc Documenter, d RouteDoc, handlers ...fiber.Handler) {
	full := d
	if g, ok := r.(*fiber.Group); ok {
		full.Path = joinPath(g.Prefix, d.Path)
	}
	doc.Add(full)
	r.Add(strings.ToUpper(d.Method), d.Path, handlers...)
}

func joinPath(prefix, path string) string {
	if path == "" {
		return prefix
	}
	if path[0] != '/' {
		path = "/" + path
	}
	return strings.TrimRight(prefix, "/") + path
}

// UndocumentedRoutes returns "METHOD /path" for every route of app that doc
// lacks, sorted. Middleware registered with Use is not a route, and a HEAD
// route is skipped when its path also has a GET route, since Fiber adds one
// for every GET.
func UndocumentedRoutes(app *fiber.App, doc *OpenAPI) []string {
	routes := app.GetRoutes(true)
	hasGet := map[string]bool{}
	for _, r := range routes {
		if r.Method == fiber.MethodGet {
			hasGet[r.Path] = true
		}
	}
	var missing []string
	for _, r := range routes {
		if r.Method == fiber.MethodHead && hasGet[r.Path] {
			continue
		}
		if !doc.Documented(r.Method, r.Path) {
			missing = append(missing, r.Method+" "+r.Path)
		}
	}
	sort.Strings(missing)
	return slices.Compact(missing)
}

// routeKey identifies a route by method and path shape: parameter names do
// not count, since "/orders/:id" and "/orders/:orderID" match the same
// requests (and OpenAPI forbids both in one document).
func routeKey(method, path string) string {
	p, _ := OpenAPIPath(path)
	return strings.ToUpper(method) + " " + templateParam.ReplaceAllString(p, "{}")
}

var templateParam = regexp.MustCompile(`\{[^}]*\}`)

// fiberParam matches a named Fiber parameter with its optional constraint
// and optional-marker: ":id", ":id<int>", ":id?".
var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)(<[^>]*>)?\??`)

// OpenAPIPath converts a Fiber path to OpenAPI syntax and returns its
// parameter names: "/v1/generations/:id" gives "/v1/generations/{id}" and
// ["id"]. Wildcards ("*", "+") become "{wildcard}", "{wildcard2}", ...
func OpenAPIPath(fiberPath string) (string, []string) {
	var params []string
	p := fiberParam.ReplaceAllStringFunc(fiberPath, func(m string) string {
		name := fiberParam.FindStringSubmatch(m)[1]
		params = append(params, name)
		return "{" + name + "}"
	})
	if strings.ContainsAny(p, "*+") {
		var b strings.Builder
		n := 0
		for _, r := range p {
			if r == '*' || r == '+' {
				n++
				name := "wildcard"
				if n > 1 {
					name += strconv.Itoa(n)
				}
				params = append(params, name)
				b.WriteString("{" + name + "}")
				continue
			}
			b.WriteRune(r)
		}
		p = b.String()
	}
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
	}
	return p, params
}

// build renders the document; o.mu must be held.
func (o *OpenAPI) build() (*openapi3.T, error) {
	doc := &openapi3.T{
		OpenAPI: OpenAPIVersion,
		Info: &openapi3.Info{
			Title:       o.info.Title,
			Version:     o.info.Version,
			Description: o.info.Description,
		},
		Paths: openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: openapi3.Schemas{},
			SecuritySchemes: openapi3.SecuritySchemes{
				SecurityBearer: {Value: openapi3.NewSecurityScheme().
					WithType("http").WithScheme("bearer").
					WithDescription("A token from `steward token create` or the sign-in endpoints.")},
				SecurityCookie: {Value: openapi3.NewSecurityScheme().
					WithType("apiKey").WithIn("cookie").WithName(o.info.SessionCookie).
					WithDescription("The session cookie set at sign-in.")},
			},
		},
	}
	if doc.Info.Version == "" {
		doc.Info.Version = "dev"
	}
	problem, err := schemaFor(Problem{}, doc.Components.Schemas)
	if err != nil {
		return nil, fmt.Errorf("openapi schema of Problem: %w", err)
	}
	problem.Value.Required = []string{"type", "title", "status"}
	doc.Components.Schemas["Problem"] = problem

	tags := map[string]bool{}
	for _, d := range o.routes {
		op, err := operation(d, doc.Components.Schemas)
		if err != nil {
			return nil, fmt.Errorf("openapi operation %s %s: %w", d.Method, d.Path, err)
		}
		path, _ := OpenAPIPath(d.Path)
		item := doc.Paths.Value(path)
		if item == nil {
			item = &openapi3.PathItem{}
			doc.Paths.Set(path, item)
		}
		item.SetOperation(d.Method, op)
		if d.Tag != "" {
			tags[d.Tag] = true
		}
	}
	for _, t := range slices.Sorted(maps.Keys(tags)) {
		doc.Tags = append(doc.Tags, &openapi3.Tag{Name: t})
	}
	return doc, nil
}

func operation(d RouteDoc, schemas openapi3.Schemas) (*openapi3.Operation, error) {
	path, params := OpenAPIPath(d.Path)
	op := openapi3.NewOperation()
	op.Summary = d.Summary
	op.Description = d.Description
	op.OperationID = d.OperationID
	if op.OperationID == "" {
		op.OperationID = operationID(d.Method, path)
	}
	if d.Tag != "" {
		op.Tags = []string{d.Tag}
	}
	for _, name := range params {
		p := openapi3.NewPathParameter(name).WithSchema(openapi3.NewStringSchema())
		op.AddParameter(p)
	}
	if d.Query != nil {
		qs, err := queryParameters(d.Query, schemas)
		if err != nil {
			return nil, err
		}
		for _, p := range qs {
			op.AddParameter(p)
		}
	}
	if d.Request != nil {
		content, err := contentFor(d.Request, schemas)
		if err != nil {
			return nil, fmt.Errorf("request body: %w", err)
		}
		op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithContent(content)}
	}
	if d.BodyLimit > 0 {
		op.Extensions = map[string]any{"x-body-limit": d.BodyLimit}
	}

	responses := maps.Clone(d.Responses)
	if responses == nil {
		responses = map[int]any{}
	}
	if d.Auth {
		if _, ok := responses[http.StatusUnauthorized]; !ok {
			responses[http.StatusUnauthorized] = nil
		}
		op.Security = &openapi3.SecurityRequirements{
			{SecurityBearer: []string{}},
			{SecurityCookie: []string{}},
		}
	}
	if d.Request != nil {
		if _, ok := responses[http.StatusRequestEntityTooLarge]; !ok {
			responses[http.StatusRequestEntityTooLarge] = nil
		}
	}
	op.Responses = openapi3.NewResponses()
	for _, code := range slices.Sorted(maps.Keys(responses)) {
		resp, err := response(code, responses[code], schemas)
		if err != nil {
			return nil, fmt.Errorf("response %d: %w", code, err)
		}
		op.Responses.Set(strconv.Itoa(code), &openapi3.ResponseRef{Value: resp})
	}
	op.Responses.Set("default", &openapi3.ResponseRef{Value: problemResponse("An error, as a problem document.")})
	return op, nil
}

func response(code int, body any, schemas openapi3.Schemas) (*openapi3.Response, error) {
	desc := http.StatusText(code)
	if desc == "" {
		desc = "Status " + strconv.Itoa(code)
	}
	if body == nil {
		if code >= 400 {
			return problemResponse(desc), nil
		}
		return openapi3.NewResponse().WithDescription(desc), nil
	}
	content, err := contentFor(body, schemas)
	if err != nil {
		return nil, err
	}
	return openapi3.NewResponse().WithDescription(desc).WithContent(content), nil
}

func problemResponse(desc string) *openapi3.Response {
	ref := openapi3.NewSchemaRef("#/components/schemas/Problem", nil)
	return openapi3.NewResponse().WithDescription(desc).
		WithContent(openapi3.NewContentWithSchemaRef(ref, []string{ContentTypeProblem}))
}

func contentFor(v any, schemas openapi3.Schemas) (openapi3.Content, error) {
	contentType := fiber.MIMEApplicationJSON
	if b, ok := v.(Body); ok {
		contentType = b.ContentType
		v = b.Schema
	}
	if v == nil {
		return openapi3.NewContentWithSchema(openapi3.NewStringSchema(), []string{contentType}), nil
	}
	ref, err := schemaFor(v, schemas)
	if err != nil {
		return nil, err
	}
	return openapi3.NewContentWithSchemaRef(ref, []string{contentType}), nil
}

var fileHeaderType = reflect.TypeOf(multipart.FileHeader{})

// schemaFor describes the Go type of v as a JSON Schema, reading fields as
// encoding/json does (json tags, then exported names), with form tags for
// multipart bodies.
func schemaFor(v any, schemas openapi3.Schemas) (*openapi3.SchemaRef, error) {
	return openapi3gen.NewSchemaRefForValue(v, schemas,
		openapi3gen.UseAllExportedFields(),
		openapi3gen.CreateFieldNameGenerator(func(f reflect.StructField, name string) string {
			if _, ok := f.Tag.Lookup("json"); !ok {
				if form, _, _ := strings.Cut(f.Tag.Get("form"), ","); form != "" && form != "-" {
					return form
				}
			}
			return name
		}),
		openapi3gen.SchemaCustomizer(func(_ string, t reflect.Type, _ reflect.StructTag, s *openapi3.Schema) error {
			if t == fileHeaderType {
				*s = openapi3.Schema{Type: &openapi3.Types{openapi3.TypeString}, Format: "binary"}
				return nil
			}
			// OpenAPI 3.1 has no "nullable"; JSON Schema spells it as a
			// type that includes "null".
			if s.Nullable {
				s.Nullable = false
				if s.Type != nil && !s.Type.Includes(openapi3.TypeNull) {
					types := append(openapi3.Types{}, (*s.Type)...)
					types = append(types, openapi3.TypeNull)
					s.Type = &types
				}
			}
			return nil
		}),
	)
}

// queryParameters describes the fields of a query struct with `query` tags.
func queryParameters(q any, schemas openapi3.Schemas) ([]*openapi3.Parameter, error) {
	t := reflect.TypeOf(q)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("query doc must be a struct, got %s", t)
	}
	var out []*openapi3.Parameter
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("query"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		ref, err := schemaFor(reflect.Zero(f.Type).Interface(), schemas)
		if err != nil {
			return nil, fmt.Errorf("query parameter %s: %w", name, err)
		}
		p := openapi3.NewQueryParameter(name)
		p.Schema = ref
		p.Description = f.Tag.Get("doc")
		out = append(out, p)
	}
	return out, nil
}

// operationID derives an id from the method and the OpenAPI path:
// "GET /v1/generations/{id}" gives "get_v1_generations_id".
func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	word := false
	for _, r := range path {
		isWord := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if isWord {
			if !word {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		}
		word = isWord
	}
	return b.String()
}

var _ Documenter = (*OpenAPI)(nil)
