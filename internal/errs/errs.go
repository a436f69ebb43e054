// Package errs provides the sentinel error kinds of Steward and the small
// structured errors built on them.
//
// Every layer reports a failure the client can act on by wrapping one of the
// kinds below, so that one HTTP error handler can map it to a status with
// errors.Is. A kind says what went wrong; a detail, attached with E, Ef, Wrap
// or Retry, is a sentence meant for the client and is the only text of an
// error that ever leaves the process. Everything else in an error chain
// (causes, wrapping context) goes to the log only.
package errs

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The kinds. Each maps to exactly one HTTP status in the web package; an error
// that wraps none of them is an internal error.
var (
	// ErrNotFound means the addressed resource does not exist, or the caller
	// may not know that it exists.
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument means the request is malformed or fails validation.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnauthenticated means the request carries no valid credentials.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden means the caller is known but not allowed to do this.
	ErrForbidden = errors.New("forbidden")
	// ErrConflict means the request clashes with the current state, such as a
	// duplicate or a stale version.
	ErrConflict = errors.New("conflict")
	// ErrTooLarge means the request body or an uploaded item is too large.
	ErrTooLarge = errors.New("too large")
	// ErrUnsupportedMediaType means the request body has a content type the
	// endpoint does not accept.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrPaymentRequired means the caller lacks the credits or plan needed.
	ErrPaymentRequired = errors.New("payment required")
	// ErrRateLimited means the caller sent too many requests; see Retry.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable means a dependency is down or overloaded; see Retry.
	ErrUnavailable = errors.New("unavailable")
)

// Kinds returns every kind, so that a mapping from kinds to anything else
// (HTTP statuses, exit codes) can be checked for completeness in a test.
func Kinds() []error {
	return []error{
		ErrNotFound, ErrInvalidArgument, ErrUnauthenticated, ErrForbidden,
		ErrConflict, ErrTooLarge, ErrUnsupportedMediaType, ErrPaymentRequired,
		ErrRateLimited, ErrUnavailable,
	}
}

// Kind returns the kind err wraps, or nil when it wraps none (an internal
// error).
func Kind(err error) error {
	for _, k := range Kinds() {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// Error is an error of one kind with a detail safe to show the client, an
// optional cause kept for the log, and an optional retry delay.
type Error struct {
	// Kind is one of the package's sentinel errors.
	Kind error
	// Detail is a full sentence for the client. It must not contain personal
	// data of anyone other than the caller, nor internal names.
	Detail string
	// RetryAfter, when positive, tells the client how long to wait before
	// trying again (rate limits, unavailable dependencies).
	RetryAfter time.Duration
	// Err is the underlying cause. It is logged, never shown to the client.
	Err error
}

// Error returns the detail (or the kind) followed by the cause, for logs.
func (e *Error) Error() string {
	msg := e.Detail
	if msg == "" && e.Kind != nil {
		msg = e.Kind.Error()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes both the kind and the cause, so errors.Is matches either.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// E returns an error of the given kind with a client-safe detail.
func E(kind error, detail string) error {
	return &Error{Kind: kind, Detail: detail}
}

// Ef is E with a formatted detail. The arguments end up in the response, so
// pass only values the caller already knows, such as the id they asked for.
func Ef(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of the given kind with a client-safe detail that keeps
// cause for the log and for errors.Is and errors.As.
func Wrap(cause, kind error, detail string) error {
	return &Error{Kind: kind, Detail: detail, Err: cause}
}

// Retry returns an error of the given kind (normally ErrRateLimited or
// ErrUnavailable) that tells the client to wait the given time before trying
// again; the HTTP layer sends it as a Retry-After header.
func Retry(kind error, detail string, after time.Duration) error {
	return &Error{Kind: kind, Detail: detail, RetryAfter: after}
}

// Detail returns the client-safe detail carried by err: the detail of the
// outermost *Error, or a summary of a *ValidationError. It returns "" when
// err carries none.
func Detail(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Detail != "" {
		return e.Detail
	}
	var v *ValidationError
	if errors.As(err, &v) {
		return v.summary()
	}
	return ""
}

// RetryAfter returns the retry delay carried by err, or zero.
func RetryAfter(err error) time.Duration {
	var e *Error
	for err != nil {
		if !errors.As(err, &e) {
			return 0
		}
		if e.RetryAfter > 0 {
			return e.RetryAfter
		}
		// An outer *Error without a delay may wrap an inner one that has it.
		err = e.Err
	}
	return 0
}

// FieldError is one failed check on one field of a request.
type FieldError struct {
	// Field names the input, in the client's terms: a JSON field path such
	// as "items[2].quantity", a query parameter or a header.
	Field string `json:"field"`
	// Rule is a stable machine-readable name of the check, such as
	// "required", "format", "max_length" or "unknown".
	Rule string `json:"rule"`
	// Message explains the failure to a person. It never repeats the
	// submitted value, which may be personal data.
	Message string `json:"message"`
}

// ValidationError lists every failed check of a request, so that a client
// can fix them all at once. It is an ErrInvalidArgument.
//
// Collect checks with Add and finish with Err, which is nil when nothing
// failed:
//
//	var v errs.ValidationError
//	if req.Email == "" {
//		v.Add("email", "required", "Email is required.")
//	}
//	if err := v.Err(); err != nil {
//		return err
//	}
type ValidationError struct {
	Errors []FieldError
}

// Invalid returns a validation error about a single field.
func Invalid(field, rule, message string) error {
	return &ValidationError{Errors: []FieldError{{Field: field, Rule: rule, Message: message}}}
}

// Add records one failed check.
func (v *ValidationError) Add(field, rule, message string) {
	v.Errors = append(v.Errors, FieldError{Field: field, Rule: rule, Message: message})
}

// Err returns v as an error when it holds at least one failed check, and nil
// otherwise.
func (v *ValidationError) Err() error {
	if len(v.Errors) == 0 {
		return nil
	}
	return v
}

// Error lists the failed checks.
func (v *ValidationError) Error() string {
	parts := make([]string, len(v.Errors))
	for i, fe := range v.Errors {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return "invalid argument: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalidArgument) true for every validation
// error.
func (v *ValidationError) Is(target error) bool {
	return target == ErrInvalidArgument
}

func (v *ValidationError) summary() string {
	if len(v.Errors) == 1 {
		return "The request has 1 invalid field."
	}
	return fmt.Sprintf("The request has %d invalid fields.", len(v.Errors))
}
