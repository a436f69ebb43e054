// Package authz is the one place where Steward decides who may see what.
//
// Authentication is pluggable: the accounts module implements Authenticator
// (session cookie or bearer token) and Middleware puts the resulting
// Principal in the request's context. Authorization is data-driven: a route
// that returns personal data hands its response value to a Guard, which
// reads the privacy tags of the value's fields, asks the access policy what
// the caller's role may do with those categories, refuses the request or
// returns the value with every field the role may not see set to null.
// Handlers never test roles themselves.
package authz

import (
	"context"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

// Roles Steward knows; the access policy (policies/data/roles.json) says
// what each reaches.
const (
	RoleUser    = "user"
	RoleSupport = "support"
	RoleAnalyst = "analyst"
	RoleDPO     = "dpo"
	RoleAdmin   = "admin"
)

// Roles lists every role, least privileged first.
func Roles() []string { return []string{RoleUser, RoleSupport, RoleAnalyst, RoleDPO, RoleAdmin} }

// ValidRole reports whether r is one of Roles.
func ValidRole(r string) bool {
	for _, x := range Roles() {
		if r == x {
			return true
		}
	}
	return false
}

// How a principal authenticated.
const (
	// MethodSession is a browser's session cookie.
	MethodSession = "session"
	// MethodToken is a bearer API token: a program, such as the product's
	// own back end.
	MethodToken = "token"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	// UserID is the caller's account id: the subject id of their own rows.
	UserID string
	// Role is one of Roles.
	Role string
	// Method is how the caller authenticated: MethodSession or
	// MethodToken.
	Method string
	// CredentialID identifies the session or token used (never the secret).
	CredentialID string
	// Email is the account's email address as the account holds it when
	// the request authenticated; a module that needs it (billing, for the
	// payment provider's customer record) reads it here instead of asking
	// accounts. It is personal data: never log it.
	Email string
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of the request, if one authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.UserID != ""
}

// Require returns the request's principal or an unauthenticated error.
func Require(c *fiber.Ctx) (Principal, error) {
	p, ok := FromContext(c.UserContext())
	if !ok {
		return Principal{}, errs.E(errs.ErrUnauthenticated, "sign in, or send Authorization: Bearer <token>")
	}
	return p, nil
}

// RequireJSON returns the request's principal, as Require does, and then
// its body decoded by web.DecodeJSON into a T. An anonymous request is
// refused before its body is read.
func RequireJSON[T any](c *fiber.Ctx) (Principal, T, error) {
	var body T
	p, err := Require(c)
	if err != nil {
		return p, body, err
	}
	if err := web.DecodeJSON(c, &body); err != nil {
		return p, body, err
	}
	return p, body, nil
}

// ErrNoCredentials is returned by an Authenticator when the request carries
// no credentials at all; the request goes on anonymous.
var ErrNoCredentials = errors.New("no credentials")

// Authenticator finds the principal behind a request's credentials.
type Authenticator interface {
	// Authenticate returns ErrNoCredentials when the request presents none,
	// and an error that is errs.ErrUnauthenticated when they are invalid,
	// expired or revoked.
	Authenticate(c *fiber.Ctx) (Principal, error)
}

// Middleware authenticates every request that presents credentials and
// puts its principal in the user context. Invalid credentials are refused
// at once (401) rather than treated as anonymous, so a revoked token never
// silently becomes a signed-out visitor.
func Middleware(a Authenticator) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := a.Authenticate(c)
		switch {
		case errors.Is(err, ErrNoCredentials):
			return c.Next()
		case err != nil:
			return fmt.Errorf("authenticate: %w", err)
		}
		c.SetUserContext(WithPrincipal(c.UserContext(), p))
		return c.Next()
	}
}
