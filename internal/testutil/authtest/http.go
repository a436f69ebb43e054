package authtest

import (
	"net/http"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/testutil/apptest"
)

// JSONRequest builds a request whose body is body encoded as JSON; see
// apptest.JSONRequest.
func JSONRequest(method, target string, body any) *http.Request {
	return apptest.JSONRequest(method, target, body)
}

// Do runs req through app as principal (see Header; "" sends none) and
// returns the response and its whole body; see apptest.Do.
func Do(t testing.TB, app *fiber.App, req *http.Request, principal string) (*http.Response, []byte) {
	t.Helper()
	if principal != "" {
		req.Header.Set(Header, principal)
	}
	return apptest.Do(t, app, req)
}
