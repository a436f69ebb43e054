// Package apptest sends requests through a Fiber app in handler tests and
// builds the JSON requests they send.
package apptest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// JSONRequest builds a request to target whose body is body encoded as
// JSON, with its content type, or a request with no body when body is nil.
// It panics when body cannot be encoded, as httptest.NewRequest does on a
// bad target: both are mistakes in the test itself.
func JSONRequest(method, target string, body any) *http.Request {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			panic("apptest: encoding a request body: " + err.Error())
		}
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, target, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// Do runs req through app and returns the response and its whole body,
// read and closed. It sets no time limit: a slow, busy machine must not
// fail the test.
func Do(t testing.TB, app *fiber.App, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// Decode decodes body, a JSON answer, into a T, failing the test when it
// is not one.
func Decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}
