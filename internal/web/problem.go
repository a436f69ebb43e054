package web

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
)

// ProblemTypeBase prefixes every problem type URI Steward defines; the slug
// after it names the problem (see the package comment for the list).
const ProblemTypeBase = "https://steward.dev/problems/"

// ContentTypeProblem is the media type of problem documents (RFC 9457).
const ContentTypeProblem = "application/problem+json"

// DefaultRetryAfter is sent with 429 and 503 answers whose error names no
// delay of its own.
const DefaultRetryAfter = 5 * time.Second

// Problem is the body of every error answer: an RFC 9457 problem document
// with the request id and, for validation failures, the failed checks.
type Problem struct {
	// Type is a URI naming the problem; clients switch on it.
	Type string `json:"type"`
	// Title is a short summary of the problem type, the same for every
	// occurrence.
	Title string `json:"title"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence to the client.
	Detail string `json:"detail,omitempty"`
	// Instance is the path of the request that failed.
	Instance string `json:"instance,omitempty"`
	// RequestID ties the answer to the server's log lines.
	RequestID string `json:"request_id,omitempty"`
	// Errors lists the failed checks of an invalid request.
	Errors []errs.FieldError `json:"errors,omitempty"`
}

// problemKind describes the problem of one status.
type problemKind struct {
	kind   error // nil for problems that come from no errs kind
	status int
	slug   string
	title  string
	detail string // used when the error carries no client-safe detail
}

// problemKinds is the one mapping from error kinds to HTTP answers.
var problemKinds = []problemKind{
	{errs.ErrInvalidArgument, http.StatusBadRequest, "invalid-argument", "Invalid argument", "The request is not valid."},
	{errs.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated", "Authentication required", "The request needs valid credentials."},
	{errs.ErrPaymentRequired, http.StatusPaymentRequired, "payment-required", "Payment required", "This action needs more credits or another plan."},
	{errs.ErrForbidden, http.StatusForbidden, "forbidden", "Forbidden", "You are not allowed to do this."},
	{errs.ErrNotFound, http.StatusNotFound, "not-found", "Not found", "The requested resource does not exist."},
	{nil, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "This path does not accept the request method."},
	{errs.ErrConflict, http.StatusConflict, "conflict", "Conflict", "The request conflicts with the current state of the resource."},
	{errs.ErrTooLarge, http.StatusRequestEntityTooLarge, "too-large", "Payload too large", "The request body is too large."},
	{errs.ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "The request body has a media type this endpoint does not accept."},
	{errs.ErrRateLimited, http.StatusTooManyRequests, "rate-limited", "Too many requests", "Too many requests; try again later."},
	{errs.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "Service unavailable", "The service is temporarily unavailable; try again later."},
	{nil, http.StatusInternalServerError, "internal", "Internal error", "The server failed to process the request."},
}

func kindByStatus(status int) (problemKind, bool) {
	for _, k := range problemKinds {
		if k.status == status {
			return k, true
		}
	}
	return problemKind{}, false
}

// problemFor builds the answer to err. It reports whether err is internal,
// that is whether its text must stay in the log. tooLarge explains a body
// the server refused while reading it; only such a 413 answer needs it.
func problemFor(c *fiber.Ctx, err error, tooLarge func() string) (p Problem, internal bool) {
	p.Instance = c.Path()

	var verr *errs.ValidationError
	if errors.As(err, &verr) {
		k, _ := kindByStatus(http.StatusBadRequest)
		p.fill(k, errs.Detail(err))
		p.Errors = verr.Errors
		return p, false
	}
	for _, k := range problemKinds {
		if k.kind != nil && errors.Is(err, k.kind) {
			p.fill(k, errs.Detail(err))
			return p, false
		}
	}
	var ferr *fiber.Error
	if errors.As(err, &ferr) {
		return fiberProblem(c, p, ferr.Code, tooLarge)
	}
	k, _ := kindByStatus(http.StatusInternalServerError)
	p.fill(k, "")
	return p, true
}

// fiberProblem answers the errors Fiber raises itself. Their messages are
// not used: some echo raw request bytes back.
func fiberProblem(c *fiber.Ctx, p Problem, code int, tooLarge func() string) (Problem, bool) {
	k, ok := kindByStatus(code)
	if !ok {
		p.Type = "about:blank"
		p.Title = http.StatusText(code)
		if p.Title == "" {
			p.Title = "Error"
		}
		p.Status = code
		return p, code >= 500
	}
	detail := ""
	switch code {
	case http.StatusNotFound:
		detail = "No route matches " + c.Method() + " " + c.Path() + "."
	case http.StatusMethodNotAllowed:
		detail = "The path " + c.Path() + " does not accept " + c.Method() + "."
	case http.StatusRequestEntityTooLarge:
		detail = tooLarge()
	}
	p.fill(k, detail)
	return p, code == http.StatusInternalServerError
}

func (p *Problem) fill(k problemKind, detail string) {
	p.Type = ProblemTypeBase + k.slug
	p.Title = k.title
	p.Status = k.status
	p.Detail = detail
	if p.Detail == "" {
		p.Detail = k.detail
	}
}

// handleError is the application's fiber.ErrorHandler. Inside the
// middleware chain the observe middleware calls writeError first, so Fiber
// calls this only for errors raised before the chain runs, such as a body
// over its route's limit or a malformed request; it then also records the
// request, which observe never saw.
func (s *server) handleError(c *fiber.Ctx, err error) error {
	if RequestID(c) != "" {
		s.writeError(c, err)
		return nil
	}
	id := newRequestID()
	c.Locals(localsRequestID, id)
	c.Set(HeaderRequestID, id)
	s.writeError(c, err)
	s.record(c, 0)
	return nil
}

// writeError logs err as its status deserves and writes the problem
// document.
func (s *server) writeError(c *fiber.Ctx, err error) {
	p, internal := problemFor(c, err, func() string { return s.refusedBodyDetail(c) })
	p.RequestID = RequestID(c)

	attrs := []slog.Attr{
		slog.String("method", methodLabel(c.Method())),
		slog.String("route", s.routeLabel(c)),
		slog.Int("status", p.Status),
		slog.String("request_id", p.RequestID),
	}
	var ferr *fiber.Error
	if !errors.As(err, &ferr) || ferr.Code >= 500 {
		// Fiber's own client errors say nothing but the raw path, which
		// the log leaves out on purpose.
		attrs = append(attrs, slog.Any("error", err))
	}
	var perr *panicError
	switch {
	case errors.As(err, &perr):
		attrs = append(attrs, slog.String("stack", string(perr.stack)))
		s.logger.LogAttrs(c.UserContext(), slog.LevelError, "panic serving request", attrs...)
	case internal:
		s.logger.LogAttrs(c.UserContext(), slog.LevelError, "request failed", attrs...)
	case p.Status >= 500:
		s.logger.LogAttrs(c.UserContext(), slog.LevelWarn, "request failed", attrs...)
	default:
		s.logger.LogAttrs(c.UserContext(), slog.LevelDebug, "request refused", attrs...)
	}

	if p.Status == http.StatusTooManyRequests || p.Status == http.StatusServiceUnavailable {
		c.Set(fiber.HeaderRetryAfter, retryAfterSeconds(errs.RetryAfter(err)))
	}
	// A handler may have written part of a body before failing.
	c.Response().ResetBody()
	if jerr := c.Status(p.Status).JSON(p, ContentTypeProblem); jerr != nil {
		// Encoding a Problem cannot fail; keep a status if it ever does.
		c.Status(http.StatusInternalServerError)
	}
}

func retryAfterSeconds(d time.Duration) string {
	if d <= 0 {
		d = DefaultRetryAfter
	}
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}
