package support_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/datamaptest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/testutil/testclock"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/support"
	"github.com/stewardhq/steward/policies"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

const principalHead = authtest.Header

// uploads stands in for the assets module: asset ids owned by each user.
type uploads map[string]map[string]support.AttachmentRef

func (u uploads) Owned(_ context.Context, userID, assetID string) (support.AttachmentRef, error) {
	if ref, ok := u[userID][assetID]; ok {
		return ref, nil
	}
	return support.AttachmentRef{}, errs.E(errs.ErrNotFound, "no such upload")
}

type env struct {
	t   *testing.T
	db  *bun.DB
	app *fiber.App
}

// clock is the settable time source the tests hand the module.
type clock = testclock.Clock

// newEnv mounts the module on an app; now is its time source, nil for the
// real time.
func newEnv(t *testing.T, db *bun.DB, cfg support.Config, now func() time.Time) *env {
	t.Helper()
	engine, err := policies.New(context.Background(), policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	assets := uploads{
		"u1": {"ast_screenshot": {AssetID: "ast_screenshot", FileName: "error.png", MimeType: "image/png"}},
		"u2": {"ast_other": {AssetID: "ast_other", FileName: "other.png", MimeType: "image/png"}},
	}
	mod, err := support.New(cfg, support.Deps{DB: db, Guard: authz.NewGuard(engine), Attachments: assets, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler)})
	app.Use(authz.Middleware(authtest.HeaderAuth{}))
	mod.Mount(app, web.NewOpenAPI(web.OpenAPIInfo{}))
	return &env{t: t, db: db, app: app}
}

func (e *env) do(method, path, principal string, body any, headers map[string]string) (int, map[string]any, []byte) {
	e.t.Helper()
	req := authtest.JSONRequest(method, path, body)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return e.send(req, principal)
}

// send runs req as principal and decodes the answer when it is a JSON
// object.
func (e *env) send(req *http.Request, principal string) (int, map[string]any, []byte) {
	e.t.Helper()
	resp, raw := authtest.Do(e.t, e.app, req, principal)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, raw
}

func (e *env) must(want int, method, path, principal string, body any) map[string]any {
	e.t.Helper()
	status, m, raw := e.do(method, path, principal, body, nil)
	if status != want {
		e.t.Fatalf("%s %s as %s = %d %s, want %d", method, path, principal, status, raw, want)
	}
	return m
}

func TestConversationWithAttachment(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, support.Config{}, nil)
		// Attaching someone else's upload is refused.
		e.must(http.StatusBadRequest, http.MethodPost, "/v1/support/tickets", "u1:user",
			map[string]any{"subject": "Render failed", "message": "See the file", "attachments": []string{"ast_other"}})

		ticket := e.must(http.StatusCreated, http.MethodPost, "/v1/support/tickets", "u1:user", map[string]any{
			"subject": "Render failed", "message": "My video stopped at 80%.", "contact_email": "ann@example.com",
			"attachments": []string{"ast_screenshot"},
		})
		id := ticket["id"].(string)
		if ticket["status"] != "open" || ticket["user_id"] != "u1" {
			t.Fatalf("new ticket = %v", ticket)
		}
		path := "/v1/support/tickets/" + id

		// The agent finds it in the queue and reads the conversation with
		// its attachment.
		status, _, raw := e.do(http.MethodGet, "/v1/support/tickets?status=open", "s1:support", nil, nil)
		if status != http.StatusOK || !strings.Contains(string(raw), id) {
			t.Fatalf("agent queue = %d %s", status, raw)
		}
		seen := e.must(http.StatusOK, http.MethodGet, path, "s1:support", nil)
		msgs := seen["messages"].([]any)
		atts := msgs[0].(map[string]any)["attachments"].([]any)
		if len(atts) != 1 || atts[0].(map[string]any)["file_name"] != "error.png" {
			t.Fatalf("agent sees attachments %v", atts)
		}

		reply := e.must(http.StatusCreated, http.MethodPost, path+"/messages", "s1:support", map[string]any{"body": "We are looking into it."})
		if reply["author_role"] != "agent" {
			t.Fatalf("agent reply = %v", reply)
		}
		if got := e.must(http.StatusOK, http.MethodGet, path, "u1:user", nil); got["status"] != "pending" {
			t.Fatalf("after the agent's answer status = %v, want pending", got["status"])
		}
		back := e.must(http.StatusCreated, http.MethodPost, path+"/messages", "u1:user", map[string]any{"body": "Thanks!"})
		if back["author_role"] != "user" {
			t.Fatalf("user reply = %v", back)
		}
		got := e.must(http.StatusOK, http.MethodGet, path, "u1:user", nil)
		if got["status"] != "open" || len(got["messages"].([]any)) != 3 {
			t.Fatalf("conversation = %v", got)
		}

		// Another user reaches none of it, and cannot even tell the
		// ticket exists: its id answers as an unknown one does.
		const unknown = "/v1/support/tickets/tkt_000000000000000000000000"
		tests := []struct {
			name   string
			method string
			path   string
			body   any
			want   int
		}{
			{name: "read the ticket", method: http.MethodGet, path: path, want: http.StatusNotFound},
			{name: "read an unknown ticket", method: http.MethodGet, path: unknown, want: http.StatusNotFound},
			{name: "post in it", method: http.MethodPost, path: path + "/messages", body: map[string]any{"body": "hi"}, want: http.StatusNotFound},
			{name: "post in an unknown ticket", method: http.MethodPost, path: unknown + "/messages", body: map[string]any{"body": "hi"}, want: http.StatusNotFound},
			{name: "change its status", method: http.MethodPatch, path: path, body: map[string]any{"status": "resolved"}, want: http.StatusNotFound},
			{name: "change an unknown ticket's status", method: http.MethodPatch, path: unknown, body: map[string]any{"status": "resolved"}, want: http.StatusNotFound},
			// Listing by another user's id says nothing about any ticket.
			{name: "list its owner's tickets", method: http.MethodGet, path: "/v1/support/tickets?user_id=u1", want: http.StatusForbidden},
		}
		for _, tt := range tests {
			t.Run("another user cannot "+tt.name, func(t *testing.T) {
				status, m, raw := e.do(tt.method, tt.path, "u2:user", tt.body, nil)
				if status != tt.want {
					t.Fatalf("status = %d %s, want %d", status, raw, tt.want)
				}
				if tt.want == http.StatusNotFound && m["type"] != "https://steward.dev/problems/not-found" {
					t.Fatalf("problem = %s", raw)
				}
			})
		}
		status, _, raw = e.do(http.MethodGet, "/v1/support/tickets", "u2:user", nil, nil)
		if status != http.StatusOK || strings.Contains(string(raw), id) {
			t.Fatalf("u2's own list = %d %s; must not hold u1's ticket", status, raw)
		}
		status, _, raw = e.do(http.MethodGet, "/v1/support/tickets", "u1:user", nil, nil)
		if status != http.StatusOK || !strings.Contains(string(raw), id) {
			t.Fatalf("u1's own list = %d %s", status, raw)
		}
	})
}

func TestStatusLifecycle(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, support.Config{}, nil)
		ticket := e.must(http.StatusCreated, http.MethodPost, "/v1/support/tickets", "u1:user",
			map[string]any{"subject": "Billing question", "message": "Where is my invoice?"})
		path := "/v1/support/tickets/" + ticket["id"].(string)
		tests := []struct {
			name      string
			principal string
			status    string
			want      int
		}{
			{name: "the user may not set the status", principal: "u1:user", status: "resolved", want: http.StatusForbidden},
			{name: "unknown status", principal: "s1:support", status: "done", want: http.StatusBadRequest},
			{name: "open cannot jump to closed", principal: "s1:support", status: "closed", want: http.StatusConflict},
			{name: "open to pending", principal: "s1:support", status: "pending", want: http.StatusOK},
			{name: "pending to resolved", principal: "s1:support", status: "resolved", want: http.StatusOK},
			{name: "resolved to pending is not a step", principal: "s1:support", status: "pending", want: http.StatusConflict},
			{name: "resolved to closed", principal: "s1:support", status: "closed", want: http.StatusOK},
			{name: "closed is final", principal: "s1:support", status: "open", want: http.StatusConflict},
		}
		for _, tt := range tests {
			status, m, raw := e.do(http.MethodPatch, path, tt.principal, map[string]any{"status": tt.status}, nil)
			if status != tt.want {
				t.Fatalf("%s: status = %d %s, want %d", tt.name, status, raw, tt.want)
			}
			if tt.want == http.StatusConflict && !strings.Contains(string(raw), "problems/conflict") {
				t.Fatalf("%s: conflict is not a problem document: %s", tt.name, raw)
			}
			if tt.want == http.StatusOK && m["status"] != tt.status {
				t.Fatalf("%s: ticket = %v", tt.name, m)
			}
		}
		if status, _, raw := e.do(http.MethodPost, path+"/messages", "u1:user", map[string]any{"body": "one more thing"}, nil); status != http.StatusConflict {
			t.Fatalf("message on a closed ticket = %d %s, want 409", status, raw)
		}
	})
}

func TestFeedbackForm(t *testing.T) {
	db := sqltest.SQLite(t)
	clk := testclock.New(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	e := newEnv(t, db, support.Config{FormMinFill: 3 * time.Second, FeedbackLimit: 6}, clk.Now)
	token := func() string {
		m := e.must(http.StatusOK, http.MethodGet, "/v1/support/feedback/token", "", nil)
		return m["token"].(string)
	}
	early := token()
	status, m, raw := e.do(http.MethodPost, "/v1/support/feedback", "", map[string]any{"email": "ann@example.com", "message": "Hello", "token": early}, nil)
	if status != http.StatusBadRequest || !strings.Contains(string(raw), "too_fast") {
		t.Fatalf("instant submission = %d %v", status, m)
	}
	// The form has now been open long enough.
	clk.Advance(3 * time.Second)
	tests := []struct {
		name string
		body map[string]any
		want int
		rule string
	}{
		{name: "email required", body: map[string]any{"message": "Hello", "token": early}, want: http.StatusBadRequest, rule: "required"},
		{name: "email invalid", body: map[string]any{"email": "ann at example", "message": "Hello", "token": early}, want: http.StatusBadRequest, rule: "format"},
		{name: "forged token", body: map[string]any{"email": "ann@example.com", "message": "Hello", "token": "AAAA"}, want: http.StatusBadRequest, rule: "invalid"},
		{name: "honeypot filled", body: map[string]any{"email": "bot@example.com", "message": "Buy", "token": early, "website": "http://spam"}, want: http.StatusAccepted},
		{name: "valid", body: map[string]any{"email": "ann@example.com", "name": "Ann", "message": "Lovely app", "token": early}, want: http.StatusAccepted},
	}
	for _, tt := range tests {
		status, _, raw := e.do(http.MethodPost, "/v1/support/feedback", "", tt.body, nil)
		if status != tt.want || !strings.Contains(string(raw), tt.rule) {
			t.Fatalf("%s: %d %s, want %d with rule %q", tt.name, status, raw, tt.want, tt.rule)
		}
	}
	var stored []support.Feedback
	if err := db.NewSelect().Model(&stored).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Email != "ann@example.com" {
		t.Fatalf("stored feedback = %+v; want only the valid one (the honeypot one dropped)", stored)
	}
	// The limit of 6 per window per address is spent (the early submission
	// counted too); the next is refused with Retry-After.
	status, _, raw = e.do(http.MethodPost, "/v1/support/feedback", "", tests[4].body, nil)
	if status != http.StatusTooManyRequests {
		t.Fatalf("7th submission = %d %s, want 429", status, raw)
	}
}

// TestEveryColumnTagged checks the migrated schema of both dialects
// against the models: every column of the module's tables has a model
// field whose privacy tag is a category of the taxonomy.
func TestEveryColumnTagged(t *testing.T) {
	datamaptest.ModelsTagged(t, (&support.Module{}).Models(), "support", "support_")
}

func TestRoutesDocumented(t *testing.T) {
	engine, err := policies.New(context.Background(), policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mod, err := support.New(support.Config{}, support.Deps{DB: sqltest.SQLite(t), Guard: authz.NewGuard(engine), Attachments: uploads{}})
	if err != nil {
		t.Fatal(err)
	}
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := fiber.New()
	mod.Mount(app, doc)
	if _, err := doc.JSON(); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	if missing := web.UndocumentedRoutes(app, doc); len(missing) > 0 {
		t.Fatalf("undocumented routes: %v", missing)
	}
}

// TestTextPolicy sends what a probe sent: a NUL, a bidirectional override
// and invalid UTF-8 in each text field of the support routes. Each is a
// 400 naming the field and the rule, and nothing reaches the store; the
// line breaks a message may hold are kept exactly, on both dialects.
func TestTextPolicy(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		clk := testclock.New(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
		e := newEnv(t, db, support.Config{FormMinFill: time.Second}, clk.Now)
		form := e.must(http.StatusOK, http.MethodGet, "/v1/support/feedback/token", "", nil)["token"].(string)
		clk.Advance(2 * time.Second)
		ticket := e.must(http.StatusCreated, http.MethodPost, "/v1/support/tickets", "u1:user",
			map[string]any{"subject": "Export failed", "message": "Line one,\r\n\tline two."})
		path := "/v1/support/tickets/" + ticket["id"].(string)
		got := e.must(http.StatusOK, http.MethodGet, path, "u1:user", nil)
		if body := got["messages"].([]any)[0].(map[string]any)["body"]; body != "Line one,\r\n\tline two." {
			t.Fatalf("stored message = %q", body)
		}

		bad := []struct {
			name, value, rule string
		}{
			{"NUL", `a\u0000b`, "control_characters"},
			{"bidi override", `invoice\u202egnp.exe`, "bidi_control"},
			{"invalid UTF-8", "caf\xe9", "encoding"},
		}
		routes := []struct {
			method, path, principal string
			body                    string // %s marks the field under test
			field                   string
		}{
			{http.MethodPost, "/v1/support/tickets", "u1:user", `{"subject":"%s","message":"Hello"}`, "subject"},
			{http.MethodPost, "/v1/support/tickets", "u1:user", `{"subject":"Hello","message":"%s"}`, "message"},
			{http.MethodPost, "/v1/support/tickets", "u1:user", `{"subject":"Hello","message":"Hi","contact_email":"%s"}`, "contact_email"},
			{http.MethodPost, path + "/messages", "u1:user", `{"body":"%s"}`, "body"},
			{http.MethodPost, path + "/messages", "u1:user", `{"body":"Hi","attachments":["%s"]}`, "attachments[0]"},
			{http.MethodPatch, path, "s1:support", `{"status":"%s"}`, "status"},
			{http.MethodPost, "/v1/support/feedback", "", `{"email":"ann@example.com","name":"%s","message":"Hi","token":"` + form + `"}`, "name"},
			{http.MethodPost, "/v1/support/feedback", "", `{"email":"ann@example.com","message":"%s","token":"` + form + `"}`, "message"},
		}
		for _, r := range routes {
			for _, b := range bad {
				t.Run(r.method+" "+r.field+" "+b.name, func(t *testing.T) {
					status, m, raw := e.doRaw(r.method, r.path, r.principal, strings.Replace(r.body, "%s", b.value, 1))
					if status != http.StatusBadRequest {
						t.Fatalf("status = %d %s, want 400", status, raw)
					}
					errsOf, _ := m["errors"].([]any)
					if len(errsOf) != 1 {
						t.Fatalf("errors = %s", raw)
					}
					fe := errsOf[0].(map[string]any)
					if fe["field"] != r.field || fe["rule"] != b.rule {
						t.Fatalf("error = %v, want field %s rule %s", fe, r.field, b.rule)
					}
				})
			}
		}
		t.Run("duplicate key", func(t *testing.T) {
			status, _, raw := e.doRaw(http.MethodPost, "/v1/support/tickets", "u1:user", `{"subject":"Hello","message":"Hi","subject":"Other"}`)
			if status != http.StatusBadRequest || !strings.Contains(string(raw), `"rule":"duplicate"`) || !strings.Contains(string(raw), `"field":"subject"`) {
				t.Fatalf("duplicate key = %d %s", status, raw)
			}
		})

		var tickets, messages, feedback int64
		for _, c := range []struct {
			model any
			n     *int64
		}{{(*support.Ticket)(nil), &tickets}, {(*support.Message)(nil), &messages}, {(*support.Feedback)(nil), &feedback}} {
			n, err := db.NewSelect().Model(c.model).Count(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			*c.n = n
		}
		if tickets != 1 || messages != 1 || feedback != 0 {
			t.Fatalf("stored %d tickets, %d messages, %d feedback; want only the first ticket and its message", tickets, messages, feedback)
		}
	})
}

// TestListQuery: the ticket list refuses paging parameters it does not
// take and junk values, naming the parameter, rather than ignoring them.
func TestListQuery(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), support.Config{}, nil)
	tests := []struct {
		query, field, rule string
	}{
		{"?limit=-5", "limit", "unknown"},
		{"?cursor=junk", "cursor", "unknown"},
		{"?status=done", "status", "enum"},
		{"?status=open&status=closed", "status", "duplicate"},
		{"?user_id=u1%00", "user_id", "control_characters"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, m, raw := e.do(http.MethodGet, "/v1/support/tickets"+tt.query, "u1:user", nil, nil)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d %s, want 400", status, raw)
			}
			fe := m["errors"].([]any)[0].(map[string]any)
			if fe["field"] != tt.field || fe["rule"] != tt.rule {
				t.Fatalf("error = %v, want field %s rule %s", fe, tt.field, tt.rule)
			}
		})
	}
}

// doRaw sends body as it is, so that a test can send bytes no encoder
// would produce, such as invalid UTF-8.
func (e *env) doRaw(method, path, principal, body string) (int, map[string]any, []byte) {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return e.send(req, principal)
}
