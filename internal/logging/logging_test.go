package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/logging"
)

const email = "ada.lovelace@example.org"

// userRecord is a value that expands to a group when logged, as domain types
// often do.
type userRecord struct{ id, email string }

func (u userRecord) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", u.id), slog.String("email", u.email))
}

func TestNoEmailReachesOutput(t *testing.T) {
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		// want is a fragment the output must contain, proving the line was
		// written and shows what was redacted.
		want string
	}{
		{"PII wrapper", func(l *slog.Logger) { l.Info("link sent", "to", logging.PII("user.contact.email", email)) }, "[redacted:user.contact.email]"},
		{"PII wrapper inside a group", func(l *slog.Logger) {
			l.Info("link sent", slog.Group("user", slog.Any("contact", logging.PII("user.contact.email", email))))
		}, "[redacted:user.contact.email]"},
		{"personal key", func(l *slog.Logger) { l.Info("signed in", "email", email) }, "[redacted]"},
		{"personal key in another case", func(l *slog.Logger) { l.Info("signed in", "E-Mail", email, "Email_Address", email) }, "[redacted]"},
		{"personal key as any value", func(l *slog.Logger) { l.Info("signed in", slog.Any("EMAIL", []string{email})) }, "[redacted]"},
		{"personal key inside nested groups", func(l *slog.Logger) {
			l.Info("checkout", slog.Group("order", slog.Group("billing", slog.String("email", email))))
		}, "[redacted]"},
		{"log valuer expanding to a group", func(l *slog.Logger) { l.Info("loaded", "user", userRecord{id: "u_1", email: email}) }, "u_1"},
		{"WithAttrs", func(l *slog.Logger) { l.With("email", email).Info("request") }, "[redacted]"},
		{"WithGroup with a personal name", func(l *slog.Logger) { l.WithGroup("email").Info("request", "primary", email) }, "[redacted]"},
		{"WithGroup then personal key", func(l *slog.Logger) { l.WithGroup("user").Info("request", "email", email) }, "[redacted]"},
		{"address under a harmless key", func(l *slog.Logger) { l.Info("notify", "recipient", email) }, "[redacted:email]"},
		{"address in the message", func(l *slog.Logger) { l.Info("could not notify " + email) }, "could not notify [redacted:email]"},
		{"address in an error", func(l *slog.Logger) {
			l.Error("insert failed", "error", fmt.Errorf("insert user: %w", errors.New("duplicate key "+email)))
		}, "duplicate key [redacted:email]"},
		{"PII formatted into the message", func(l *slog.Logger) {
			l.Info(fmt.Sprintf("user %v %+v %#v %s", logging.PII("user.contact.email", email),
				logging.PII("user.contact.email", email), logging.PII("user.contact.email", email),
				logging.PII("user.contact.email", email)))
		}, "[redacted:user.contact.email]"},
	}
	for _, format := range []string{"text", "json"} {
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				var buf bytes.Buffer
				tt.log(logging.New(&buf, slog.LevelDebug, format))
				out := buf.String()
				if out == "" {
					t.Fatal("nothing was logged")
				}
				if strings.Contains(out, email) || strings.Contains(out, "ada.lovelace") {
					t.Errorf("output contains the email:\n%s", out)
				}
				if !strings.Contains(out, tt.want) {
					t.Errorf("output lacks %q:\n%s", tt.want, out)
				}
			})
		}
	}
}

func TestPersonalKeys(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want bool
	}{
		{"email", "email", true},
		{"upper case", "EMAIL", true},
		{"ip", "ip", true},
		{"ip address", "ip_address", true},
		{"user agent with dash", "User-Agent", true},
		{"name", "name", true},
		{"prompt", "prompt", true},
		{"account id", "user_id", true},
		{"visitor id", "visitor_id", true},
		{"session id", "session_id", true},
		{"token", "token", true},
		{"authorization", "Authorization", true},
		{"cookie", "cookie", true},
		{"password", "password", true},
		{"phone", "phone", true},
		{"address", "address", true},
		{"route is not personal", "route", false},
		{"status is not personal", "status", false},
		{"request id is not personal", "request_id", false},
		{"category is not personal", "category", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := logging.IsPersonalKey(tt.key); got != tt.want {
				t.Errorf("IsPersonalKey(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

func TestHarmlessAttrsAreKept(t *testing.T) {
	var buf bytes.Buffer
	l := logging.New(&buf, slog.LevelInfo, "json")
	l.Info("request", "method", "GET", "route", "/v1/generations/:id", "status", 200, slog.Group("store", slog.String("kind", "sql")))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, buf.String())
	}
	if line["route"] != "/v1/generations/:id" || line["method"] != "GET" || line["status"] != float64(200) {
		t.Errorf("attrs changed: %v", line)
	}
	if store, _ := line["store"].(map[string]any); store["kind"] != "sql" {
		t.Errorf("group changed: %v", line["store"])
	}
}

func TestRequestIDFromContext(t *testing.T) {
	var buf bytes.Buffer
	l := logging.New(&buf, slog.LevelInfo, "json")
	ctx := logging.WithRequestID(context.Background(), "req-123")
	l.InfoContext(ctx, "working")
	l.InfoContext(ctx, "explicit", "request_id", "req-123")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	for _, ln := range lines {
		if got := strings.Count(ln, `"request_id":"req-123"`); got != 1 {
			t.Errorf("request_id appears %d times in %s", got, ln)
		}
	}
	if logging.RequestID(context.Background()) != "" {
		t.Error("RequestID of a bare context is not empty")
	}
}

func TestLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	l := logging.New(&buf, slog.LevelWarn, "text")
	l.Info("quiet")
	l.Warn("loud")
	if strings.Contains(buf.String(), "quiet") || !strings.Contains(buf.String(), "loud") {
		t.Errorf("level not applied:\n%s", buf.String())
	}
}

func TestPersonalMarshalsRedacted(t *testing.T) {
	b, err := json.Marshal(map[string]any{"to": logging.PII("user.contact.email", email)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), email) || !strings.Contains(string(b), "[redacted:user.contact.email]") {
		t.Errorf("json = %s", b)
	}
}
