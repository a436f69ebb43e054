package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/governance/audit"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/modules/assets"
	"github.com/stewardhq/steward/modules/generation"
	"github.com/stewardhq/steward/modules/support"
	"github.com/stewardhq/steward/policies"
)

// client calls the fully wired embedded server with a bearer token.
type client struct {
	t     *testing.T
	token string
}

func newClient(t *testing.T, email, role string) *client {
	t.Helper()
	tok, err := embedded.wired.accounts.CreateToken(context.Background(), email, role)
	if err != nil {
		t.Fatalf("token for %s: %v", email, err)
	}
	return &client{t: t, token: tok}
}

func (c *client) do(method, path, contentType string, body io.Reader) (int, []byte) {
	c.t.Helper()
	req := httptest.NewRequest(method, path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := embedded.app.Test(req, -1)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, out
}

func (c *client) json(method, path string, in any, out any) int {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	status, raw := c.do(method, path, "application/json", body)
	if out != nil && status < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	if status >= 300 && out != nil {
		c.t.Logf("%s %s answered %d: %s", method, path, status, raw)
	}
	return status
}

func (c *client) me() accounts.MeView {
	c.t.Helper()
	var me accounts.MeView
	if status := c.json("GET", "/v1/me", nil, &me); status != 200 {
		c.t.Fatalf("GET /v1/me = %d", status)
	}
	return me
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := range 64 {
		for y := range 48 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 120, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (c *client) upload(name string, data []byte) assets.AssetView {
	c.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, err := w.CreateFormFile("file", name)
	if err != nil {
		c.t.Fatal(err)
	}
	_, _ = part.Write(data)
	_ = w.WriteField("purpose", "reference")
	_ = w.Close()
	status, raw := c.do("POST", "/v1/assets", w.FormDataContentType(), &body)
	if status != 201 && status != 200 {
		c.t.Fatalf("upload = %d %s", status, raw)
	}
	var a assets.AssetView
	if err := json.Unmarshal(raw, &a); err != nil {
		c.t.Fatal(err)
	}
	return a
}

// TestGenerationFlowOnTheWiredServer runs the product flow on the real
// wiring: the credits come from billing's ledger, outputs are stored by the
// assets module, downloads go through signed links.
func TestGenerationFlowOnTheWiredServer(t *testing.T) {
	ctx := context.Background()
	ann := newClient(t, "ann.flow@example.com", authz.RoleUser)
	me := ann.me()
	ledger := embedded.wired.billing.Ledger()
	if err := ledger.Grant(ctx, me.ID, 10, "welcome", "test-grant-"+me.ID); err != nil {
		t.Fatal(err)
	}

	ref := ann.upload("reference.png", pngBytes(t))
	var g generation.GenerationView
	status := ann.json("POST", "/v1/generations", generation.CreateRequest{
		Prompt: "a lighthouse at dusk", Model: "local-image",
		References: []generation.Reference{{Kind: "image", AssetID: ref.ID}},
	}, &g)
	if status != 201 && status != 202 {
		t.Fatalf("create generation = %d", status)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for g.Status != "succeeded" {
		if g.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("generation ended %s (reason %v)", g.Status, g.FailureReason)
		}
		time.Sleep(50 * time.Millisecond)
		if status := ann.json("GET", "/v1/generations/"+g.ID, nil, &g); status != 200 {
			t.Fatalf("poll = %d", status)
		}
	}
	if len(g.Outputs) == 0 || g.Outputs[0].DownloadURL == "" {
		t.Fatalf("no output download link: %+v", g.Outputs)
	}
	// The signed link needs no session.
	anon := &client{t: t}
	u := g.Outputs[0].DownloadURL
	if i := strings.Index(u, "/v1/assets/"); i >= 0 {
		u = u[i:]
	}
	status, body := anon.do("GET", u, "", nil)
	if status != 200 || !bytes.HasPrefix(body, []byte("\x89PNG")) {
		t.Fatalf("signed download = %d (%d bytes)", status, len(body))
	}
	status, _ = anon.do("GET", u+"x", "", nil)
	if status == 200 {
		t.Fatal("a tampered signature downloaded the file")
	}

	balance, err := ledger.Balance(ctx, me.ID)
	if err != nil {
		t.Fatal(err)
	}
	if balance != 10-g.CostCredits {
		t.Fatalf("balance %d after a generation costing %d, want %d", balance, g.CostCredits, 10-g.CostCredits)
	}
	if got := ann.me(); got.CreditBalance == nil || *got.CreditBalance != balance {
		t.Fatalf("/v1/me credits = %v, ledger %d", got.CreditBalance, balance)
	}
	var history generation.ListResponse
	if status := ann.json("GET", "/v1/generations", nil, &history); status != 200 {
		t.Fatalf("history = %d", status)
	}
	found := false
	for _, item := range history.Items {
		found = found || item.ID == g.ID
	}
	if !found {
		t.Fatalf("generation %s missing from history", g.ID)
	}
}

// fieldCategories maps the JSON names of a response type's tagged
// top-level fields to their data categories, and lists every category of
// the response, nested structs included: the set the access policy is
// asked about.
func fieldCategories(v any) (fields map[string]string, all []string) {
	fields = map[string]string{}
	seen := map[string]bool{}
	var walk func(t reflect.Type, top bool)
	walk = func(t reflect.Type, top bool) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			tag, ok := f.Tag.Lookup("privacy")
			if !ok {
				walk(f.Type, false)
				continue
			}
			cat, _, _ := strings.Cut(tag, ",")
			if top {
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				fields[name] = cat
			}
			if !seen[cat] {
				seen[cat] = true
				all = append(all, cat)
			}
		}
	}
	walk(reflect.TypeOf(v), true)
	return fields, all
}

// TestRouteRoleMatrix asks every route that returns one subject's personal
// data as every role, and checks the answer is exactly what the access
// policy allows: refused when it refuses, and otherwise every field the
// policy redacts is null while every other field shows the owner's value.
func TestRouteRoleMatrix(t *testing.T) {
	ctx := context.Background()
	owner := newClient(t, "owner.matrix@example.com", authz.RoleUser)
	ownerID := owner.me().ID
	if err := embedded.wired.billing.Ledger().Grant(ctx, ownerID, 5, "welcome", "matrix-"+ownerID); err != nil {
		t.Fatal(err)
	}
	asset := owner.upload("matrix.png", pngBytes(t))
	var gen generation.GenerationView
	if s := owner.json("POST", "/v1/generations", generation.CreateRequest{Prompt: "a quiet harbour", Model: "local-image"}, &gen); s >= 300 {
		t.Fatalf("create generation = %d", s)
	}
	var ticket support.TicketView
	if s := owner.json("POST", "/v1/support/tickets", support.CreateTicketRequest{Subject: "Refund?", Message: "My render failed"}, &ticket); s >= 300 {
		t.Fatalf("create ticket = %d", s)
	}

	callers := map[string]*client{
		"owner":   owner,
		"other":   newClient(t, "other.matrix@example.com", authz.RoleUser),
		"support": newClient(t, "support.matrix@example.com", authz.RoleSupport),
		"analyst": newClient(t, "analyst.matrix@example.com", authz.RoleAnalyst),
		"dpo":     newClient(t, "dpo.matrix@example.com", authz.RoleDPO),
		"admin":   newClient(t, "admin.matrix@example.com", authz.RoleAdmin),
	}
	roles := map[string]string{"owner": "user", "other": "user", "support": "support", "analyst": "analyst", "dpo": "dpo", "admin": "admin"}

	routes := []struct {
		path string
		view any
	}{
		{"/v1/generations/" + gen.ID, generation.GenerationView{}},
		{"/v1/assets/" + asset.ID, assets.AssetView{}},
		{"/v1/support/tickets/" + ticket.ID, support.TicketView{}},
	}
	for _, rt := range routes {
		cats, catList := fieldCategories(rt.view)
		var want map[string]any
		if s, raw := owner.do("GET", rt.path, "", nil); s != 200 {
			t.Fatalf("owner GET %s = %d %s", rt.path, s, raw)
		} else if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		for name, c := range callers {
			t.Run(fmt.Sprintf("%s as %s", rt.path, name), func(t *testing.T) {
				d, err := embedded.engine.Access(ctx, policies.AccessInput{
					Role: roles[name], Action: authz.ActionRead, Categories: catList, SubjectOwner: name == "owner",
				})
				if err != nil {
					t.Fatal(err)
				}
				status, raw := c.do("GET", rt.path, "", nil)
				if !d.Allow {
					if status != http.StatusForbidden && status != http.StatusNotFound {
						t.Fatalf("policy refuses (%s) but the route answered %d %s", d.Reason, status, raw)
					}
					return
				}
				if status != 200 {
					t.Fatalf("policy allows but the route answered %d %s", status, raw)
				}
				var got map[string]any
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatal(err)
				}
				redacted := map[string]bool{}
				for _, r := range d.Redact {
					redacted[r] = true
				}
				for field, cat := range cats {
					switch {
					case redacted[cat] && got[field] != nil:
						t.Errorf("%s (%s) shown, the policy redacts it", field, cat)
					case !redacted[cat] && want[field] != nil && got[field] == nil:
						t.Errorf("%s (%s) hidden, the policy allows it", field, cat)
					}
				}
			})
		}
	}

	t.Run("everyone reads their own profile", func(t *testing.T) {
		for name, c := range callers {
			me := c.me()
			if me.ID == "" || me.Email == "" || me.Role != roles[name] || me.Status == "" || me.Language == "" {
				t.Errorf("%s sees an incomplete own profile: %+v", name, me)
			}
		}
	})

	t.Run("audit data map", func(t *testing.T) {
		for name, c := range callers {
			var dm audit.DataMapResponse
			status := c.json("GET", "/v1/audit/datamap", nil, &dm)
			wantOK := roles[name] == "dpo" || roles[name] == "admin"
			if wantOK != (status == 200) {
				t.Errorf("%s: /v1/audit/datamap = %d", name, status)
			}
		}
	})
}
