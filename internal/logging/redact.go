package logging

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// Personal is a personal value on its way to a log. It logs, prints and
// marshals as its data category only, so the value itself never reaches the
// output.
type Personal struct {
	// Category is the data category key, such as "user.contact.email".
	Category string
	// Value is the personal value. It is kept so that code holding a
	// Personal can still use it, never to be printed.
	Value any
}

// PII wraps a personal value of the given data category for logging:
//
//	logger.Info("sign-in link sent", "to", logging.PII("user.contact.email", email))
func PII(category string, v any) Personal {
	return Personal{Category: category, Value: v}
}

// LogValue implements slog.LogValuer.
func (p Personal) LogValue() slog.Value {
	return slog.StringValue(p.String())
}

// String returns the redacted form, so fmt verbs do not leak the value.
func (p Personal) String() string {
	if p.Category == "" {
		return Redacted
	}
	return "[redacted:" + p.Category + "]"
}

// GoString keeps %#v from printing the value.
func (p Personal) GoString() string { return p.String() }

// Format keeps every fmt verb, including %+v and %#v, from printing the value.
func (p Personal) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// MarshalText keeps encoders (JSON, text) from printing the value.
func (p Personal) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Redacted replaces the value of an attribute whose key names personal data.
const Redacted = "[redacted]"

// redactedEmail replaces an email address found in free text.
const redactedEmail = "[redacted:email]"

// personalKeys are attribute keys whose values are personal data whatever
// the code that logs them meant. Keys are compared after lower-casing and
// turning '-' into '_'.
var personalKeys = keySet(
	"email", "email_address", "e_mail",
	"ip", "ip_address", "remote_addr", "remote_ip", "client_ip",
	"x_forwarded_for", "x_real_ip",
	"user_agent", "useragent",
	"name", "first_name", "last_name", "full_name", "display_name",
	"given_name", "family_name",
	"prompt", "negative_prompt",
	"user_id", "visitor_id", "session_id", "subject_id",
	"token", "access_token", "refresh_token", "id_token",
	"authorization", "cookie", "set_cookie",
	"password", "secret",
	"phone", "phone_number",
	"address", "street_address",
)

func keySet(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// IsPersonalKey reports whether an attribute key names personal data, so
// that the redacting handler replaces its value.
func IsPersonalKey(key string) bool {
	k := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	return personalKeys[k]
}

// emailPattern matches email addresses in free text. It is deliberately
// loose: masking a non-address costs nothing, missing an address is a leak.
var emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+`)

// maskText replaces every email address in s.
func maskText(s string) string {
	if strings.IndexByte(s, '@') < 0 {
		return s
	}
	return emailPattern.ReplaceAllString(s, redactedEmail)
}

// RedactingHandler wraps another slog.Handler and redacts personal values
// before they reach it. Create it with NewRedactingHandler.
type RedactingHandler struct {
	next slog.Handler
	// inPersonalGroup is set when a group opened with WithGroup has a
	// personal name: everything logged inside it is personal.
	inPersonalGroup bool
}

// NewRedactingHandler returns a handler that redacts personal values (see the
// package comment) and adds the context's request id before passing records
// to next.
func NewRedactingHandler(next slog.Handler) *RedactingHandler {
	return &RedactingHandler{next: next}
}

// Enabled implements slog.Handler.
func (h *RedactingHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (h *RedactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, maskText(r.Message), r.PC)
	hasRequestID := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "request_id" {
			hasRequestID = true
		}
		out.AddAttrs(h.redact(a))
		return true
	})
	if id := RequestID(ctx); id != "" && !hasRequestID && !h.inPersonalGroup {
		out.AddAttrs(slog.String("request_id", id))
	}
	return h.next.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *RedactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.redact(a)
	}
	return &RedactingHandler{next: h.next.WithAttrs(red), inPersonalGroup: h.inPersonalGroup}
}

// WithGroup implements slog.Handler.
func (h *RedactingHandler) WithGroup(name string) slog.Handler {
	return &RedactingHandler{
		next:            h.next.WithGroup(name),
		inPersonalGroup: h.inPersonalGroup || IsPersonalKey(name),
	}
}

func (h *RedactingHandler) redact(a slog.Attr) slog.Attr {
	if h.inPersonalGroup {
		return slog.String(a.Key, Redacted)
	}
	return redactAttr(a)
}

func redactAttr(a slog.Attr) slog.Attr {
	// A Personal keeps its category, which is more useful than a bare
	// "[redacted]" and just as safe.
	if p, ok := a.Value.Any().(Personal); ok && a.Value.Kind() == slog.KindLogValuer {
		return slog.String(a.Key, p.String())
	}
	if IsPersonalKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	// Resolving here, not in the wrapped handler, lets a LogValuer that
	// expands to a group have its members checked too.
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, maskText(v.String()))
	case slog.KindGroup:
		members := v.Group()
		red := make([]slog.Attr, len(members))
		for i, m := range members {
			red[i] = redactAttr(m)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			// Both built-in handlers print an error as its Error() text,
			// so logging the masked text loses nothing.
			return slog.String(a.Key, maskText(err.Error()))
		}
		return slog.Attr{Key: a.Key, Value: v}
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}

var _ slog.Handler = (*RedactingHandler)(nil)
var _ slog.LogValuer = Personal{}
