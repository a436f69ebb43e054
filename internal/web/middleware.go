package web

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// routeUnmatched labels requests that matched no route, so that scans of
// random paths cannot grow the metrics' label sets.
const routeUnmatched = "unmatched"

func (s *server) observe(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		// Resolving the error here, rather than letting Fiber call the
		// handler after this middleware returns, gives the access log and
		// the metrics the status the client really gets.
		s.writeError(c, err)
	}
	s.record(c, time.Since(start))
	return nil
}

// record writes the access-log line and the request metrics of a finished
// request.
func (s *server) record(c *fiber.Ctx, elapsed time.Duration) {
	method := methodLabel(c.Method())
	route := s.routeLabel(c)
	status := c.Response().StatusCode()

	s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())

	level := slog.LevelInfo
	if route == "/healthz" || route == "/metrics" {
		// Probes and scrapes arrive every few seconds and say nothing about
		// users' requests.
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("request_id", RequestID(c)),
	}
	if n, ok := responseSize(c); ok {
		attrs = append(attrs, slog.Int("bytes", n))
	}
	s.logger.LogAttrs(c.UserContext(), level, "request", attrs...)
}

// responseSize returns the body size, unknown for a chunked stream.
func responseSize(c *fiber.Ctx) (int, bool) {
	resp := c.Response()
	if resp.IsBodyStream() {
		n := resp.Header.ContentLength()
		return n, n >= 0
	}
	return len(resp.Body()), true
}

// routeLabel returns the pattern of the route that handled the request, such
// as "/v1/generations/:id". A request stopped by a prefix middleware (for
// example an auth check on "/v1") is labelled with that prefix and "*"; a
// request no route matched is labelled routeUnmatched.
func (s *server) routeLabel(c *fiber.Ctx) string {
	r := c.Route()
	if r == nil || len(r.Handlers) == 0 {
		// Fiber's fallback route for errors raised before routing.
		return routeUnmatched
	}
	if s.isRoute(c.App(), r) {
		return r.Path
	}
	// The last route the request reached is middleware registered with Use.
	switch c.Response().StatusCode() {
	case fiber.StatusNotFound, fiber.StatusMethodNotAllowed:
		return routeUnmatched
	}
	if r.Path == "/" {
		return "/*"
	}
	return r.Path + "/*"
}

// routeIndex is the set of an app's routes, not counting middleware, each
// known by the address of its first handler: Fiber's route listing copies
// routes but not their handler slices, so the address identifies the very
// route a request reached, where method and path would confuse "GET /" with
// middleware used on "/".
type routeIndex struct {
	handlers uint32 // app.HandlersCount() when the index was built
	routes   map[*fiber.Handler]bool
}

// isRoute reports whether r is a route rather than middleware, which Fiber
// gives the request's method too. The index is rebuilt whenever a handler
// was added since it was built.
func (s *server) isRoute(app *fiber.App, r *fiber.Route) bool {
	n := app.HandlersCount()
	idx := s.routes.Load()
	if idx == nil || idx.handlers != n {
		idx = &routeIndex{handlers: n, routes: map[*fiber.Handler]bool{}}
		for _, rt := range app.GetRoutes(true) {
			if len(rt.Handlers) > 0 {
				idx.routes[&rt.Handlers[0]] = true
			}
		}
		s.routes.Store(idx)
	}
	return idx.routes[&r.Handlers[0]]
}

// knownMethods maps request methods to constant label values: the method
// string Fiber hands out points into a reused buffer, and an unknown method
// must not create a new label value.
var knownMethods = map[string]string{
	fiber.MethodGet: fiber.MethodGet, fiber.MethodHead: fiber.MethodHead,
	fiber.MethodPost: fiber.MethodPost, fiber.MethodPut: fiber.MethodPut,
	fiber.MethodPatch: fiber.MethodPatch, fiber.MethodDelete: fiber.MethodDelete,
	fiber.MethodConnect: fiber.MethodConnect, fiber.MethodOptions: fiber.MethodOptions,
	fiber.MethodTrace: fiber.MethodTrace,
}

func methodLabel(m string) string {
	if v, ok := knownMethods[m]; ok {
		return v
	}
	return "OTHER"
}

// panicError carries a recovered panic to the error handler, which logs it
// once with its stack.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

func (s *server) recover(c *fiber.Ctx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return c.Next()
}

// requestConfig is the server's HeaderReceived hook: fasthttp calls it once
// a request's header is read, before it reads any of the body, and holds
// the body to the limit it returns. fasthttp reads a whole body into memory
// before any handler runs, so this hook is the only place a route's limit
// can be applied before the body is read:
//
//   - A body whose Content-Length is over its route's limit is refused
//     without reading a byte of it.
//   - A chunked body announces no length; it is read up to its route's
//     limit and refused as soon as it passes it, never up to
//     Options.MaxBodyLimit, which only the routes that raise their limit
//     (uploads) may use.
//
// Most requests declare a length within Options.BodyLimit, which every
// route accepts, and skip the route lookup.
func (s *server) requestConfig(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	limit := s.opts.BodyLimit
	if n := h.ContentLength(); n == -1 || n > limit {
		limit = s.routeBodyLimit(string(h.Method()), requestPath(h))
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: limit}
}

// refusedBodyDetail explains a body the server refused while reading it.
// One with a declared length was refused from its header, against its
// route's limit, which the detail names. A chunked one was cut off at its
// route's limit, but fasthttp clears a request it fails to read, so the
// route, and with it the limit, is no longer known here.
func (s *server) refusedBodyDetail(c *fiber.Ctx) string {
	if n := c.Request().Header.ContentLength(); n > 0 {
		return tooLargeDetail(n, s.routeBodyLimit(c.Method(), c.Path()))
	}
	return chunkedTooLarge
}

// routeBodyLimit returns the body limit of the route matching method and
// path: its RouteDoc.BodyLimit, if larger than Options.BodyLimit, up to
// Options.MaxBodyLimit.
func (s *server) routeBodyLimit(method, path string) int {
	return min(s.doc.bodyLimit(method, path, s.opts.BodyLimit), s.opts.MaxBodyLimit)
}

// requestPath returns the path of the request h heads as c.Path will report
// it: the request URI parsed the way fasthttp parses it, not unescaped. It
// returns "" for a URI fasthttp cannot parse, which matches no route.
func requestPath(h *fasthttp.RequestHeader) string {
	u := fasthttp.AcquireURI()
	defer fasthttp.ReleaseURI(u)
	if err := u.Parse(h.Host(), h.RequestURI()); err != nil {
		return ""
	}
	return string(u.PathOriginal())
}

// chunkedTooLarge is the detail of a 413 problem for a chunked body.
const chunkedTooLarge = "The request body is larger than this endpoint accepts."

// tooLargeDetail is the detail of a 413 problem: the size of the body and
// the limit of its endpoint.
func tooLargeDetail(size, limit int) string {
	return fmt.Sprintf("The request body has %d bytes; this endpoint accepts at most %d.", size, limit)
}
