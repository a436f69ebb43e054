package web_test

import (
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
