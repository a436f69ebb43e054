// Package authtest gives handler tests an authenticated caller without the
// accounts module: a header that names the principal, and the real policy
// engine behind a guard. Session and token authentication are the accounts
// module's and are tested there.
package authtest

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/policies"
)

// Header carries "<user id>" or "<user id>:<role>"; the role defaults to
// user.
const Header = "X-Test-User"

// HeaderAuth is an authz.Authenticator reading Header.
type HeaderAuth struct{}

// Authenticate implements authz.Authenticator.
func (HeaderAuth) Authenticate(c *fiber.Ctx) (authz.Principal, error) {
	// A copy: Fiber's strings point into a request buffer that the next
	// request reuses, and a principal outlives its request (in caches
	// keyed by role, in logs written later).
	v := strings.Clone(c.Get(Header))
	if v == "" {
		return authz.Principal{}, authz.ErrNoCredentials
	}
	id, role, ok := strings.Cut(v, ":")
	if !ok {
		role = authz.RoleUser
	}
	return authz.Principal{UserID: id, Role: role, Method: authz.MethodToken}, nil
}

var shared struct {
	once   sync.Once
	engine *policies.Engine
	err    error
}

// Engine returns the real policy engine, built once per test binary.
func Engine(t testing.TB) *policies.Engine {
	t.Helper()
	shared.once.Do(func() { shared.engine, shared.err = policies.New(context.Background(), policies.Options{}) })
	if shared.err != nil {
		t.Fatalf("policies.New: %v", shared.err)
	}
	return shared.engine
}

// Guard returns a guard over Engine.
func Guard(t testing.TB) *authz.Guard {
	t.Helper()
	return authz.NewGuard(Engine(t))
}

// RoleStatus is the status a route answers a caller in Role with; an empty
// Role stands for a caller without credentials.
type RoleStatus struct {
	Role   string
	Status int
}

// DPOOnly is what a route that only the DPO and admins may use answers
// every role, and a caller without credentials.
func DPOOnly() []RoleStatus {
	return []RoleStatus{
		{"", 401},
		{authz.RoleUser, 403},
		{authz.RoleSupport, 403},
		{authz.RoleAnalyst, 403},
		{authz.RoleDPO, 200},
		{authz.RoleAdmin, 200},
	}
}
