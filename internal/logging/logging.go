// Package logging provides Steward's structured logger: log/slog with a
// handler that never prints a personal value.
//
// Personal data is kept out of logs by three layers, outermost first:
//
//   - Code that must mention a personal value wraps it with PII, which logs
//     as its data category only, for example "[redacted:user.contact.email]".
//   - The handler returned by New replaces the value of any attribute whose
//     key names personal data (email, ip, user_agent, token, ...; see
//     IsPersonalKey) with "[redacted]", at any depth of groups.
//   - As a last net, the handler masks anything shaped like an email
//     address in the message, in string values and in error texts.
//
// The handler also adds the request id carried by the context (see
// WithRequestID), so every line logged while serving a request can be tied
// to its access-log line.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
)

// New returns a logger writing to w at the given minimum level, as JSON
// lines when format is "json" and as logfmt-style text otherwise, through the
// redacting handler.
func New(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if strings.EqualFold(format, "json") {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(NewRedactingHandler(h))
}

type requestIDKey struct{}

// WithRequestID returns a copy of ctx carrying the id of the request being
// served.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
