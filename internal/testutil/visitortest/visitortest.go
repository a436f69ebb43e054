// Package visitortest sends the requests a visitor's browser sends to the
// consent and event routes: from a client address behind a trusted proxy,
// with a user agent, the visitor cookie, a signed-in user or an API token,
// and the Global Privacy Control signal. Session and token authentication
// are the accounts module's and are tested there; Auth stands in for them.
package visitortest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
)

const (
	// Firefox is a desktop Firefox user agent, one the bot filter lets
	// through.
	Firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	// Addr is the visitor's address, sent in X-Forwarded-For: app.Test
	// connects from 0.0.0.0, which the tests trust as the proxy.
	Addr = "198.51.100.77"
	// CookieName is the visitor cookie's default name.
	CookieName = "steward_vid"
	// UserHeader names the signed-in user Auth reads.
	UserHeader = "X-Test-User"
)

// Auth signs a request in as the user named by UserHeader, the way the
// accounts module's session check would, or by "Authorization: Bearer
// <user id>", the way its API token check would. Every user has the user
// role.
type Auth struct{}

// Authenticate implements authz.Authenticator.
func (Auth) Authenticate(c *fiber.Ctx) (authz.Principal, error) {
	// Copies: Fiber's strings point into a request buffer that the next
	// request reuses, and a principal outlives its request.
	if id, ok := strings.CutPrefix(strings.Clone(c.Get(fiber.HeaderAuthorization)), "Bearer "); ok && id != "" {
		return authz.Principal{UserID: id, Role: authz.RoleUser, Method: authz.MethodToken}, nil
	}
	id := strings.Clone(c.Get(UserHeader))
	if id == "" {
		return authz.Principal{}, authz.ErrNoCredentials
	}
	return authz.Principal{UserID: id, Role: authz.RoleUser, Method: authz.MethodSession}, nil
}

// Visitor is one browser: the visitor cookie it keeps, the user it is
// signed in as, its GPC setting and user agent; or, with Token set, a back
// end calling with a bearer API token of that user.
type Visitor struct {
	VID       string       // the visitor cookie's value; empty before the first one is set
	User      string       // the signed-in user, if any
	Token     string       // the user of the bearer token, if any
	GPC       bool         // sends Sec-GPC: 1
	UserAgent string       // sent as it is: empty sends an empty User-Agent
	Cookie    *http.Cookie // the last visitor cookie the routes set
}

// Request builds a request to path with what the visitor sends. When body
// is not nil it goes with contentType, application/json when that is
// empty.
func (v *Visitor) Request(method, path string, body io.Reader, contentType string) *http.Request {
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("X-Forwarded-For", Addr)
	req.Header.Set("User-Agent", v.UserAgent)
	if body != nil {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	if v.VID != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: v.VID})
	}
	if v.User != "" {
		req.Header.Set(UserHeader, v.User)
	}
	if v.Token != "" {
		req.Header.Set(fiber.HeaderAuthorization, "Bearer "+v.Token)
	}
	if v.GPC {
		req.Header.Set("Sec-GPC", "1")
	}
	return req
}

// Do sends the visitor's request through app, keeps the visitor cookie the
// answer sets, and returns the answer and its body.
func (v *Visitor) Do(t testing.TB, app *fiber.App, method, path string, body io.Reader, contentType string) (*http.Response, []byte) {
	t.Helper()
	resp, raw := Send(t, app, v.Request(method, path, body, contentType), -1)
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			v.VID = c.Value
			v.Cookie = c
		}
	}
	return resp, raw
}

// Send runs req through app, waiting at most timeoutMS milliseconds (-1:
// no limit), and returns the answer and its body.
func Send(t testing.TB, app *fiber.App, req *http.Request, timeoutMS int) (*http.Response, []byte) {
	t.Helper()
	resp, err := app.Test(req, timeoutMS)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", req.Method, req.URL.Path, err)
	}
	return resp, raw
}
