package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

func TestDecodeJSON(t *testing.T) {
	type item struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	}
	type checkout struct {
		Items []item `json:"items"`
		Note  string `json:"note"`
	}
	app, _ := newApp(t, web.Options{})
	app.Post("/v1/billing/checkout", func(c *fiber.Ctx) error {
		var req checkout
		if err := web.DecodeJSON(c, &req); err != nil {
			return err
		}
		return c.SendString(req.Items[0].SKU)
	})

	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantField   errs.FieldError
	}{
		{"valid", "application/json", `{"items":[{"sku":"credits-100","quantity":1}]}`, 200, errs.FieldError{}},
		{"valid with charset", "application/json; charset=utf-8", `{"items":[{"sku":"credits-100","quantity":1}]}`, 200, errs.FieldError{}},
		{"not JSON", "text/plain", `hello`, 415, errs.FieldError{}},
		{"no content type", "", `{}`, 415, errs.FieldError{}},
		{"empty", "application/json", ` `, 400, errs.FieldError{Field: "body", Rule: "required"}},
		{"malformed", "application/json", `{"items":[}`, 400, errs.FieldError{Field: "body", Rule: "json"}},
		{"truncated", "application/json", `{"items":[`, 400, errs.FieldError{Field: "body", Rule: "json"}},
		{"wrong type", "application/json", `{"items":[{"sku":"x","quantity":"two"}]}`, 400, errs.FieldError{Field: "items.quantity", Rule: "type"}},
		{"unknown field", "application/json", `{"items":[],"coupon":"FREE"}`, 400, errs.FieldError{Field: "coupon", Rule: "unknown"}},
		{"trailing data", "application/json", `{"items":[]} {"items":[]}`, 400, errs.FieldError{Field: "body", Rule: "json"}},
		{"duplicate key", "application/json", `{"items":[{"sku":"credits-100","quantity":1}],"note":"a","note":"b"}`, 400, errs.FieldError{Field: "note", Rule: "duplicate"}},
		{"duplicate key differing in case", "application/json", `{"items":[{"sku":"a","SKU":"credits-100"}]}`, 400, errs.FieldError{Field: "items[0].SKU", Rule: "duplicate"}},
		{"NUL", "application/json", `{"items":[{"sku":"credits-100","quantity":1}],"note":"a\u0000b"}`, 400, errs.FieldError{Field: "note", Rule: "control_characters"}},
		{"line break in a one-line field", "application/json", `{"items":[{"sku":"a\nb"}]}`, 400, errs.FieldError{Field: "items[0].sku", Rule: "control_characters"}},
		{"bidi override", "application/json", `{"items":[{"sku":"credits-100","quantity":1}],"note":"\u202egnp.exe"}`, 400, errs.FieldError{Field: "note", Rule: "bidi_control"}},
		{"bidi override unescaped", "application/json", "{\"items\":[],\"note\":\"a\u2067b\"}", 400, errs.FieldError{Field: "note", Rule: "bidi_control"}},
		{"invalid UTF-8", "application/json", "{\"items\":[{\"sku\":\"credits-100\"}],\"note\":\"caf\xe9\"}", 400, errs.FieldError{Field: "note", Rule: "encoding"}},
		{"invalid UTF-8 in an array", "application/json", "{\"items\":[{\"sku\":\"ok\"},{\"sku\":\"\xff\"}]}", 400, errs.FieldError{Field: "items[1].sku", Rule: "encoding"}},
		{"lone surrogate escape", "application/json", `{"items":[],"note":"a\ud800b"}`, 400, errs.FieldError{Field: "note", Rule: "encoding"}},
		{"surrogate pair escape", "application/json", `{"items":[{"sku":"credits-100","quantity":1}],"note":"\ud83c\udfac"}`, 200, errs.FieldError{}},
		{"escaped quote and backslash", "application/json", `{"items":[{"sku":"credits-100","quantity":1}],"note":"a\"b\\"}`, 200, errs.FieldError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/billing/checkout", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			r := do(t, app, req)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantStatus == 200 {
				if string(r.body) != "credits-100" {
					t.Errorf("body = %s", r.body)
				}
				return
			}
			p := r.problem(t)
			if tt.wantField == (errs.FieldError{}) {
				return
			}
			if len(p.Errors) != 1 || p.Errors[0].Field != tt.wantField.Field || p.Errors[0].Rule != tt.wantField.Rule || p.Errors[0].Message == "" {
				t.Errorf("errors = %+v, want field %q rule %q", p.Errors, tt.wantField.Field, tt.wantField.Rule)
			}
		})
	}
}

func TestDecodeJSONMultiline(t *testing.T) {
	type message struct {
		Subject string `json:"subject"`
		Body    string `json:"body" text:"multiline"`
	}
	app, _ := newApp(t, web.Options{})
	app.Post("/v1/messages", func(c *fiber.Ctx) error {
		var m message
		if err := web.DecodeJSON(c, &m); err != nil {
			return err
		}
		return c.SendString("ok")
	})
	tests := []struct {
		name      string
		body      string
		wantField string // "" when accepted
		wantRule  string
	}{
		{"line breaks in the multiline field", `{"subject":"Hi","body":"Hello,\r\n\tthanks"}`, "", ""},
		{"line break in the one-line field", `{"subject":"Hi\nthere","body":"x"}`, "subject", "control_characters"},
		{"NUL in the multiline field", `{"subject":"Hi","body":"a\u0000"}`, "body", "control_characters"},
		{"bidi override in the multiline field", `{"subject":"Hi","body":"a\u202eb"}`, "body", "bidi_control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			r := do(t, app, req)
			if tt.wantField == "" {
				if r.status != 200 {
					t.Fatalf("status = %d: %s", r.status, r.body)
				}
				return
			}
			if r.status != 400 {
				t.Fatalf("status = %d, want 400: %s", r.status, r.body)
			}
			p := r.problem(t)
			if len(p.Errors) != 1 || p.Errors[0].Field != tt.wantField || p.Errors[0].Rule != tt.wantRule {
				t.Errorf("errors = %+v, want field %q rule %q", p.Errors, tt.wantField, tt.wantRule)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	type listQuery struct {
		Status string `query:"status"`
		Limit  int    `query:"limit"`
		Cursor string `query:"cursor"`
		Mine   bool   `query:"mine"`
	}
	app, _ := newApp(t, web.Options{})
	app.Get("/v1/things", func(c *fiber.Ctx) error {
		var q listQuery
		if err := web.ParseQuery(c, &q); err != nil {
			return err
		}
		limit, err := web.PageLimit(q.Limit, 20, 100)
		if err != nil {
			return err
		}
		if q.Cursor != "" && q.Cursor != "c1" {
			return web.InvalidCursor()
		}
		return c.SendString(fmt.Sprintf("%s %d %s %t", q.Status, limit, q.Cursor, q.Mine))
	})
	tests := []struct {
		name      string
		query     string
		want      string // the answer when accepted
		wantField string
		wantRule  string
	}{
		{name: "none", query: "", want: " 20  false"},
		{name: "all", query: "?status=open&limit=5&cursor=c1&mine=true", want: "open 5 c1 true"},
		{name: "negative limit", query: "?limit=-5", wantField: "limit", wantRule: "range"},
		{name: "limit too large", query: "?limit=101", wantField: "limit", wantRule: "range"},
		{name: "limit not a number", query: "?limit=ten", wantField: "limit", wantRule: "type"},
		{name: "junk cursor", query: "?cursor=%27%20OR%201%3D1", wantField: "cursor", wantRule: "format"},
		{name: "unknown parameter", query: "?page=2", wantField: "page", wantRule: "unknown"},
		{name: "repeated parameter", query: "?status=open&status=closed", wantField: "status", wantRule: "duplicate"},
		{name: "NUL", query: "?status=a%00b", wantField: "status", wantRule: "control_characters"},
		{name: "invalid UTF-8", query: "?status=%ff", wantField: "status", wantRule: "encoding"},
		{name: "not a boolean", query: "?mine=yes", wantField: "mine", wantRule: "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, app, "/v1/things"+tt.query)
			if tt.wantField == "" {
				if r.status != 200 || string(r.body) != tt.want {
					t.Fatalf("answer = %d %q, want 200 %q", r.status, r.body, tt.want)
				}
				return
			}
			if r.status != 400 {
				t.Fatalf("status = %d, want 400: %s", r.status, r.body)
			}
			p := r.problem(t)
			if len(p.Errors) != 1 || p.Errors[0].Field != tt.wantField || p.Errors[0].Rule != tt.wantRule || p.Errors[0].Message == "" {
				t.Errorf("errors = %+v, want field %q rule %q", p.Errors, tt.wantField, tt.wantRule)
			}
		})
	}
}
