// Package webtest helps tests reach an application built by web.New over a
// real connection. Fiber's app.Test reports a request the server refused
// while reading it, such as a body over its route's limit, as an error of
// its own instead of the answer; through these helpers a test sees the
// answer a client gets.
package webtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/web"
)

// shutdownTimeout bounds the graceful shutdown when a test ends. No request
// is in flight by then, so it normally takes no time; it is generous so
// that a slow, busy machine never fails a test here.
const shutdownTimeout = time.Minute

// Serve runs app on a loopback port until the test ends and returns its
// base URL, such as "http://127.0.0.1:41234".
func Serve(t testing.TB, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := web.Shutdown(ctx, app); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		// Shutdown closes the listener of a server that is serving; one
		// that has not started yet finds it closed and returns at once.
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("listener: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// DeclareBody sends a request to the server at base with a header declaring
// a body of size bytes, sends none of the body, closes its side of the
// connection for writing, and returns the answer and its body. A server
// that waited for the body would find it ended early and answer 400
// instead, so a 413 shows the request was refused from its header alone,
// whatever the speed of the machine. target is the request target as sent,
// normally a path; header adds fields such as Content-Type, nil none.
func DeclareBody(t testing.TB, base, method, target string, header http.Header, size int64) (*http.Response, []byte) {
	t.Helper()
	return send(t, base, method, target, header, fmt.Sprintf("Content-Length: %d\r\n", size), "")
}

// DeclareChunk is DeclareBody for a chunked body: the header announces no
// length, and the body starts with one chunk of size bytes of which none is
// sent. A server that read chunks up to a ceiling above size would wait for
// the chunk's data, find the body ended early and answer 400, so a 413
// shows the chunk was refused from its size line alone.
func DeclareChunk(t testing.TB, base, method, target string, header http.Header, size int64) (*http.Response, []byte) {
	t.Helper()
	return send(t, base, method, target, header, "Transfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n", size))
}

// send writes a request's head, framing header and the start of its body,
// closes the sending side and reads the answer.
func send(t testing.TB, base, method, target string, header http.Header, framing, body string) (*http.Response, []byte) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("base URL: %v", err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Host, err)
	}
	defer conn.Close()

	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n%s", method, target, u.Host, framing)
	if err := header.Write(&b); err != nil {
		t.Fatalf("write header: %v", err)
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("send %s %s: %v", method, target, err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("close the sending side: %v", err)
	}

	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, target, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer body: %v", method, target, err)
	}
	return resp, out
}
