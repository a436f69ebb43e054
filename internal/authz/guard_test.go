package authz

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/policies"
)

// ticketView is a response shaped like a support ticket that also carries
// order data, so roles see different parts of it.
type ticketView struct {
	ID        string       `json:"id" privacy:"system.operations"`
	UserID    string       `json:"user_id" privacy:"user.unique_id,subject=user"`
	Email     string       `json:"email" privacy:"user.contact.email"`
	Question  string       `json:"question" privacy:"user.support.question"`
	Order     string       `json:"order" privacy:"user.financial.order"`
	CreatedAt time.Time    `json:"created_at" privacy:"user.support.status"`
	Messages  []messageTag `json:"messages"`
}

type messageTag struct {
	Body string `json:"body" privacy:"user.support.conversation"`
}

func (t ticketView) OwnerID() string { return t.UserID }

type untagged struct {
	ID    string `json:"id" privacy:"system.operations"`
	Email string `json:"email"`
}

func newEngine(t *testing.T) *policies.Engine {
	t.Helper()
	e, err := policies.New(context.Background(), policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestGuardView(t *testing.T) {
	g := NewGuard(newEngine(t))
	ticket := ticketView{ID: "t1", UserID: "u1", Email: "ann@example.com", Question: "why?", Order: "o_1",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Messages: []messageTag{{Body: "hello"}}}
	tests := []struct {
		name      string
		principal Principal
		wantErr   error
		// visible and redacted name fields that must be shown or null.
		visible  []string
		redacted []string
	}{
		{name: "owner sees everything exported", principal: Principal{UserID: "u1", Role: RoleUser},
			visible: []string{"id", "email", "question", "order", "messages"}},
		{name: "another user is refused", principal: Principal{UserID: "u2", Role: RoleUser}, wantErr: errs.ErrForbidden},
		{name: "support sees the ticket, not the order", principal: Principal{UserID: "s1", Role: RoleSupport},
			visible: []string{"email", "question", "messages"}, redacted: []string{"order"}},
		{name: "dpo reads everything", principal: Principal{UserID: "d1", Role: RoleDPO},
			visible: []string{"email", "question", "order", "messages"}},
		{name: "analyst never sees identifiers", principal: Principal{UserID: "a1", Role: RoleAnalyst},
			redacted: []string{"email", "user_id", "question", "order"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := g.View(context.Background(), tt.principal, ActionRead, ticket)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("View = %v, %v; want %v", out, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				if errors.Is(err, errs.ErrForbidden) && len(tt.visible) == 0 {
					return // refusing everything also shows nothing
				}
				t.Fatalf("View: %v", err)
			}
			m := out.(map[string]any)
			for _, k := range tt.visible {
				if m[k] == nil {
					t.Errorf("%s is hidden, want it shown: %v", k, m)
				}
			}
			for _, k := range tt.redacted {
				if v, ok := m[k]; !ok || v != nil {
					t.Errorf("%s = %v, want null", k, v)
				}
			}
		})
	}
}

func TestGuardListDropsForeignRows(t *testing.T) {
	g := NewGuard(newEngine(t))
	rows := []ticketView{{ID: "t1", UserID: "u1"}, {ID: "t2", UserID: "u2"}, {ID: "t3", UserID: "u1"}}
	out, err := g.View(context.Background(), Principal{UserID: "u1", Role: RoleUser}, ActionList, rows)
	if err != nil {
		t.Fatal(err)
	}
	items := out.([]any)
	if len(items) != 2 {
		t.Fatalf("user u1 got %d rows, want their own 2: %v", len(items), items)
	}
	for _, it := range items {
		if it.(map[string]any)["user_id"] != "u1" {
			t.Errorf("foreign row leaked: %v", it)
		}
	}
}

func TestGuardRefusesUntaggedFields(t *testing.T) {
	g := NewGuard(newEngine(t))
	_, err := g.View(context.Background(), Principal{UserID: "d", Role: RoleDPO}, ActionRead, untagged{ID: "x", Email: "e@x"})
	if err == nil {
		t.Fatal("an untagged response field was let through")
	}
}

type fakeAuth struct {
	p   Principal
	err error
}

func (f fakeAuth) Authenticate(*fiber.Ctx) (Principal, error) { return f.p, f.err }

func TestMiddleware(t *testing.T) {
	tests := []struct {
		name   string
		auth   Authenticator
		status int
		body   string
	}{
		{"no credentials is anonymous", fakeAuth{err: ErrNoCredentials}, 401, ""},
		{"valid credentials", fakeAuth{p: Principal{UserID: "u1", Role: RoleUser}}, 200, "u1"},
		{"revoked credentials refused", fakeAuth{err: errs.E(errs.ErrUnauthenticated, "token revoked")}, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
				if errors.Is(err, errs.ErrUnauthenticated) {
					return c.SendStatus(401)
				}
				return c.SendStatus(500)
			}})
			app.Use(Middleware(tt.auth))
			app.Get("/me", func(c *fiber.Ctx) error {
				p, err := Require(c)
				if err != nil {
					return err
				}
				return c.SendString(p.UserID)
			})
			resp, err := app.Test(httptest.NewRequest("GET", "/me", nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || (tt.body != "" && string(body) != tt.body) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}

func TestGuardJSONMarshalsTimes(t *testing.T) {
	g := NewGuard(newEngine(t))
	out, err := g.View(context.Background(), Principal{UserID: "u1", Role: RoleUser}, ActionRead,
		&ticketView{UserID: "u1", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	_ = json.Unmarshal(raw, &back)
	if back["created_at"] != "2026-01-02T03:04:05Z" {
		t.Fatalf("created_at = %v", back["created_at"])
	}
}
