// Package web provides Steward's HTTP platform: the Fiber application with
// its middleware, the single error handler that writes RFC 9457 problem
// documents, the health, metrics and OpenAPI endpoints, and the helpers
// modules use to mount and document their routes.
//
// # Middleware
//
// Every request passes, in this order:
//
//  1. request id: a sane incoming X-Request-ID (1 to 128 characters of
//     letters, digits, '.', '_', ':' and '-') is kept, any other is replaced
//     by a random one; it is echoed in the response, stored for RequestID
//     and put in the request's user context, where the logging package's
//     handler adds it to every line.
//  2. observe: the access log and the Prometheus metrics. It is outside
//     recover so that it sees the final status of every request, including
//     a recovered panic; it turns a returned error into its problem
//     document by calling the error handler itself.
//  3. recover: a panic in a handler becomes a 500 problem; the panic value
//     and stack go to the log with the request id, and the process lives on.
//
// # Body limits
//
// A body larger than Options.BodyLimit is refused with a 413 problem,
// unless its route's RouteDoc.BodyLimit allows it. The limit is applied
// before the body is read, as soon as the server has the request's header
// (fasthttp reads a whole body into memory before any handler runs): a
// body whose Content-Length is over its route's limit is refused without
// reading a byte of it, with a detail naming the limit; a chunked body,
// which announces no length, is read up to its route's limit and refused
// the moment it passes it. Options.MaxBodyLimit only caps the routes that
// raise their limit; no other route reads more than Options.BodyLimit. A
// refusal while reading reaches the error handler directly, which logs and
// counts it like any other request; the server then closes the connection,
// since the rest of the body may still be on its way.
//
// Fiber's app.Test reports a request the server refused while reading as an
// error of its own instead of the answer, so tests of these refusals send
// the request to a real listener.
//
// The access log holds the method, the route pattern (never the raw path,
// which can hold identifiers), the status, the duration, the response size
// and the request id. It never holds the client address, the query string,
// the user agent or any header, so no personal data reaches it.
//
// # Request input
//
// Handlers read bodies with DecodeJSON and query strings with ParseQuery.
// Both refuse what a route does not take, naming the field or parameter in
// a validation error: unknown names, a name given twice, wrong types, and
// text that breaks the one text policy of package text (invalid UTF-8,
// control characters, bidirectional controls). Lists check their paging
// parameters with PageLimit and InvalidCursor.
//
// # Operators' routes
//
// /metrics and /openapi.json answer only requests bearing Options.OpsToken
// when it is set, and nobody (404) when Options.OpsClosed is set without a
// token; /healthz is always open, for load balancers.
//
// # Problem documents
//
// Handlers return errors; the error handler maps them to statuses with
// errors.Is and errors.As on the kinds of package errs and on *fiber.Error,
// and answers with application/problem+json:
//
//	{"type": "https://steward.dev/problems/not-found", "title": "Not found",
//	 "status": 404, "detail": "...", "instance": "/v1/generations/g_1",
//	 "request_id": "..."}
//
// The type URI is ProblemTypeBase followed by a stable slug, one per kind:
//
//	invalid-argument        400  errs.ErrInvalidArgument (validation errors add "errors")
//	unauthenticated         401  errs.ErrUnauthenticated
//	payment-required        402  errs.ErrPaymentRequired
//	forbidden               403  errs.ErrForbidden
//	not-found               404  errs.ErrNotFound, unknown routes
//	method-not-allowed      405  a known path asked with another method
//	conflict                409  errs.ErrConflict
//	too-large               413  errs.ErrTooLarge, bodies over the limit
//	unsupported-media-type  415  errs.ErrUnsupportedMediaType
//	rate-limited            429  errs.ErrRateLimited, with Retry-After
//	unavailable             503  errs.ErrUnavailable, with Retry-After
//	internal                500  any other error
//
// Other statuses raised by Fiber itself use the RFC's "about:blank" type.
// Slugs never change once published; clients may switch on them. The detail
// is the client-safe detail of the error (see errs.E) or a generic sentence
// for the kind; the text of an internal error is only logged.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stewardhq/steward/internal/logging"
)

// DefaultBodyLimit is the request body limit when Options.BodyLimit is zero.
const DefaultBodyLimit = 1 << 20

// DefaultHealthTimeout bounds a health check whose Timeout is zero.
const DefaultHealthTimeout = 2 * time.Second

// HeaderRequestID is the header that carries the request id both ways.
const HeaderRequestID = "X-Request-ID"

// HealthCheck is one dependency reported by GET /healthz and by the
// steward_store_up gauge.
type HealthCheck struct {
	// Name labels the check in /healthz and in the gauge: "sql",
	// "warehouse", "policy".
	Name string
	// Check returns nil when the dependency works. It must honour ctx.
	Check func(ctx context.Context) error
	// Timeout bounds one run; zero means DefaultHealthTimeout.
	Timeout time.Duration
}

// Options configure New. The zero value works: it logs to stderr, keeps its
// own metrics registry and its own OpenAPI document.
type Options struct {
	// Logger receives the access log, errors and panics. Use a logger from
	// logging.New so that personal values are redacted.
	Logger *slog.Logger
	// BodyLimit is the largest request body, in bytes, a route accepts
	// unless its RouteDoc.BodyLimit raises it. Zero means DefaultBodyLimit.
	BodyLimit int
	// MaxBodyLimit is the largest body the server reads at all, and so the
	// ceiling for any RouteDoc.BodyLimit. Zero means BodyLimit.
	MaxBodyLimit int
	// ReadTimeout bounds reading one request, body included. Zero means one
	// minute.
	ReadTimeout time.Duration
	// IdleTimeout bounds an idle keep-alive connection. Zero means two
	// minutes.
	IdleTimeout time.Duration
	// Version is reported by /healthz and in the OpenAPI document.
	Version string
	// Registry receives the HTTP and health metrics and is served at
	// /metrics. Nil means a fresh registry.
	Registry *prometheus.Registry
	// Health lists the checks run by /healthz.
	Health []HealthCheck
	// PolicyRevision reports the revision of the loaded policies in
	// /healthz. Nil reports "".
	PolicyRevision func() string
	// OpenAPI collects route docs and is served at /openapi.json. Nil means
	// a document of the platform routes only.
	OpenAPI *OpenAPI
	// OpsToken, when set, is the bearer token GET /metrics and GET
	// /openapi.json require. A request without it is answered 404, as if
	// the routes did not exist, so that a scan learns nothing.
	OpsToken string
	// OpsClosed, when OpsToken is empty, answers 404 on /metrics and
	// /openapi.json to everyone. Production sets it, so that neither the
	// metrics (request rates, store health, the process's memory) nor the
	// map of every route is public unless a token guards them.
	OpsClosed bool
}

// server holds what the middleware and the platform handlers share.
type server struct {
	opts    Options
	logger  *slog.Logger
	doc     *OpenAPI
	metrics *metrics
	routes  atomic.Pointer[routeIndex]
}

// New returns the Fiber application with the platform middleware and the
// /healthz, /metrics and /openapi.json routes. Modules mount their routes on
// it afterwards (see package module).
func New(opts Options) *fiber.App {
	if opts.Logger == nil {
		opts.Logger = logging.New(os.Stderr, slog.LevelInfo, "text")
	}
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = DefaultBodyLimit
	}
	if opts.MaxBodyLimit < opts.BodyLimit {
		opts.MaxBodyLimit = opts.BodyLimit
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = time.Minute
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 2 * time.Minute
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.OpenAPI == nil {
		opts.OpenAPI = NewOpenAPI(OpenAPIInfo{})
	}
	opts.OpenAPI.setDefaultVersion(opts.Version)

	s := &server{
		opts:    opts,
		logger:  opts.Logger,
		doc:     opts.OpenAPI,
		metrics: newMetrics(opts.Registry),
	}
	app := fiber.New(fiber.Config{
		ErrorHandler:          s.handleError,
		BodyLimit:             opts.MaxBodyLimit,
		ReadTimeout:           opts.ReadTimeout,
		IdleTimeout:           opts.IdleTimeout,
		CaseSensitive:         true,
		DisableStartupMessage: true,
	})
	// fiber.Config has no field for this hook; the fasthttp server fiber.New
	// built is the one both Listener and Test serve with.
	app.Server().HeaderReceived = s.requestConfig
	app.Use(s.requestID, s.observe, s.recover)

	app.Get("/healthz", s.healthz)
	app.Get("/metrics", s.opsOnly, adaptor.HTTPHandler(promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{})))
	app.Get("/openapi.json", s.opsOnly, s.openAPI)
	s.doc.addPlatform(RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/healthz",
		Summary:   "Report the state of each store and the policy revision",
		Tag:       "platform",
		Responses: map[int]any{200: HealthReport{}, 503: HealthReport{}},
	})
	s.doc.addPlatform(RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/metrics",
		Summary:   "Prometheus metrics",
		Tag:       "platform",
		Responses: map[int]any{200: Body{ContentType: "text/plain"}},
	})
	s.doc.addPlatform(RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/openapi.json",
		Summary:   "This OpenAPI document",
		Tag:       "platform",
		Responses: map[int]any{200: Body{ContentType: "application/json", Schema: map[string]any{}}},
	})
	return app
}

// opsOnly guards the operators' routes, /metrics and /openapi.json: with
// Options.OpsToken set it lets through only requests bearing it; without a
// token it lets everyone through unless Options.OpsClosed. A refused
// request is answered like an unknown path.
func (s *server) opsOnly(c *fiber.Ctx) error {
	if s.opts.OpsToken == "" {
		if s.opts.OpsClosed {
			return fiber.ErrNotFound
		}
		return c.Next()
	}
	got, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.OpsToken)) != 1 {
		return fiber.ErrNotFound
	}
	return c.Next()
}

// Shutdown stops app gracefully: it stops accepting connections, lets
// in-flight requests finish and closes idle connections. When ctx ends first
// it returns ctx's error and leaves the remaining requests to the process
// exit.
func Shutdown(ctx context.Context, app *fiber.App) error {
	if err := app.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("shutdown http server: %w", err)
	}
	return nil
}

// localsRequestID is the Fiber locals key of the request id.
type localsKey int

const localsRequestID localsKey = 0

// RequestID returns the id of the request c serves, as echoed in the
// X-Request-ID response header and in problem documents.
func RequestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localsRequestID).(string)
	return id
}

func (s *server) requestID(c *fiber.Ctx) error {
	id := c.Get(HeaderRequestID)
	if validRequestID(id) {
		// Fiber's strings point into buffers reused after the request; the
		// id outlives it in logs and contexts.
		id = strings.Clone(id)
	} else {
		id = newRequestID()
	}
	c.Locals(localsRequestID, id)
	c.Set(HeaderRequestID, id)
	c.SetUserContext(logging.WithRequestID(c.UserContext(), id))
	return c.Next()
}

// validRequestID accepts ids made by common proxies and tracers (UUIDs, hex
// trace ids, "host:seq") and refuses anything that could smuggle log syntax
// or personal data such as an email address.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case b == '-' || b == '_' || b == '.' || b == ':':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	// crypto/rand.Read never fails on supported platforms.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
