package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/logging"
	"github.com/stewardhq/steward/internal/testutil/apptest"
	"github.com/stewardhq/steward/internal/web"
)

// logBuffer collects log output written from handler goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log lines with the given message.
func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if ln == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, ln)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// newApp returns an app logging JSON at debug level into the returned
// buffer.
func newApp(t *testing.T, opts web.Options) (*fiber.App, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = logging.New(logs, slog.LevelDebug, "json")
	}
	return web.New(opts), logs
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) web.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != web.ContentTypeProblem {
		t.Fatalf("Content-Type = %q, want %q (body %s)", ct, web.ContentTypeProblem, r.body)
	}
	var p web.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body is not JSON: %v: %s", err, r.body)
	}
	return p
}

func do(t *testing.T, app *fiber.App, req *http.Request) response {
	t.Helper()
	resp, body := apptest.Do(t, app, req)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func get(t *testing.T, app *fiber.App, target string) response {
	t.Helper()
	return do(t, app, httptest.NewRequest(http.MethodGet, target, nil))
}

// post sends body to url through a real connection, with its length in
// the header or, when chunked, in chunks of unannounced total length.
func post(t *testing.T, url, body string, chunked bool) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if chunked {
		req.ContentLength = -1
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}
