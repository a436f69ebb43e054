package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/modules/support"
)

// badText is one kind of text the text policy refuses, as a JSON string
// literal and the rule a 400 names.
type badText struct {
	name    string
	literal string
	rule    string
}

var badTexts = []badText{
	{"NUL", `"a\u0000b"`, "control_characters"},
	{"bidi override", `"invoice\u202egnp.exe"`, "bidi_control"},
	{"invalid UTF-8", "\"caf\xe9\"", "encoding"},
}

// signedBodies are routes whose body is checked against a signature
// before it is read: a forged body is refused as unsigned (400 without
// field errors), whatever it holds.
var signedBodies = map[string]bool{
	"POST /v1/billing/webhooks/stripe": true,
	"POST /v1/billing/webhooks/creem":  true,
}

// ownRules are routes that validate every field with rules of their own
// (the event ingest checks formats: a UUID, a URL, a language tag), so a
// bad character is named with the field's own rule, such as "format".
var ownRules = map[string]bool{
	"POST /v1/events": true,
}

// TestTextPolicyOnEveryRoute walks the served OpenAPI document and sends,
// in every string field of every documented JSON request body, a NUL, a
// bidirectional override and invalid UTF-8. Each answer is a 400 naming
// the field and the rule, or a 401, 403 or 404 where the route needs
// something this test cannot give (a role, an existing id); never a 5xx.
// The routes the probe found answering 500 must answer the 400.
func TestTextPolicyOnEveryRoute(t *testing.T) {
	status, raw := get(t, embedded.app, "/openapi.json")
	if status != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d", status)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody *struct {
				Content map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}

	user := newClient(t, "text-policy@example.com", "user")
	admin := newClient(t, "text-policy-admin@example.com", "admin")
	userID := user.me().ID
	var ticket support.TicketView
	if s := user.json("POST", "/v1/support/tickets", map[string]any{"subject": "Export", "message": "It failed."}, &ticket); s != http.StatusCreated {
		t.Fatalf("create ticket = %d", s)
	}
	// Path parameters: ids the callers own where the test has them, an
	// unknown id elsewhere (a 404 is then the expected answer).
	pathFor := func(p string) string {
		switch {
		case strings.HasPrefix(p, "/v1/support/tickets/{id}"):
			return strings.Replace(p, "{id}", ticket.ID, 1)
		case strings.HasPrefix(p, "/v1/admin/users/{id}"):
			return strings.Replace(p, "{id}", userID, 1)
		}
		return strings.NewReplacer("{id}", "unknown-id").Replace(p)
	}

	// What the probe found answering 500: these must answer 400 naming
	// the field.
	mustName := map[string]bool{
		"POST /v1/support/tickets subject":            true,
		"POST /v1/support/tickets message":            true,
		"POST /v1/support/tickets/{id}/messages body": true,
		"POST /v1/projects name":                      true,
		"POST /v1/generations prompt":                 true,
		"POST /v1/generations negative_prompt":        true,
		"POST /v1/privacy/requests reason":            true,
	}
	// Valid bodies to start from, where a route validates all its fields
	// at once: the answer then concerns the field under test alone.
	bases := map[string]any{
		"POST /v1/events": []any{map[string]any{
			"event_id": "0b9f6c1e-3c1a-4c8e-9a51-0d6a1f0e2b77", "type": "page_view", "url": "https://app.example.test/pricing",
		}},
	}
	named := map[string]bool{}
	cases := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			method = strings.ToUpper(method)
			if op.RequestBody == nil {
				continue
			}
			media, ok := op.RequestBody.Content["application/json"]
			if !ok {
				continue
			}
			route := method + " " + path
			for _, field := range stringFields(media.Schema, "") {
				for _, bad := range badTexts {
					cases++
					body := bodyWith(bases[route], field, bad.literal)
					t.Run(route+" "+field+" "+bad.name, func(t *testing.T) {
						status, raw := user.do(method, pathFor(path), "application/json", strings.NewReader(body))
						if status == http.StatusUnauthorized || status == http.StatusForbidden {
							status, raw = admin.do(method, pathFor(path), "application/json", strings.NewReader(body))
						}
						if status >= 500 {
							t.Fatalf("%s with %s in %s = %d %s", route, bad.name, field, status, raw)
						}
						switch status {
						case http.StatusBadRequest:
						case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
							if mustName[route+" "+field] {
								t.Fatalf("%s = %d %s, want 400 naming %s", route, status, raw, field)
							}
							return
						default:
							t.Fatalf("%s with %s in %s = %d %s, want 400", route, bad.name, field, status, raw)
						}
						var p struct {
							Errors []fieldError `json:"errors"`
						}
						if err := json.Unmarshal(raw, &p); err != nil {
							t.Fatalf("problem %s: %v", raw, err)
						}
						if signedBodies[route] && len(p.Errors) == 0 {
							return
						}
						if ownRules[route] && slices.ContainsFunc(p.Errors, func(e fieldError) bool {
							// The field, or its event when the value had
							// the wrong type to decode ("[0].event").
							return e.Field == field || e.Field == "[0].event"
						}) {
							return
						}
						if !slices.Contains(p.Errors, fieldError{Field: field, Rule: bad.rule}) {
							t.Fatalf("%s = 400 %s, want field %s with rule %s", route, raw, field, bad.rule)
						}
						named[route+" "+field] = true
					})
				}
			}
		}
	}
	if cases < 50 {
		t.Fatalf("only %d cases from the OpenAPI document; is it complete?", cases)
	}
	for k := range mustName {
		if !named[k] {
			t.Errorf("%s was never answered with a 400 naming the field", k)
		}
	}
}

// fieldError is a field error of a problem document.
type fieldError struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

// stringFields lists the paths of the string fields a JSON schema
// describes ("references[0].url"), with the prefix given.
func stringFields(schema map[string]any, prefix string) []string {
	var out []string
	switch types := schema["type"].(type) {
	case string:
		out = append(out, fieldsOfType(types, schema, prefix)...)
	case []any:
		for _, t := range types {
			if s, ok := t.(string); ok && s != "null" {
				out = append(out, fieldsOfType(s, schema, prefix)...)
			}
		}
	}
	slices.Sort(out)
	return out
}

func fieldsOfType(typ string, schema map[string]any, prefix string) []string {
	var out []string
	switch typ {
	case "string":
		if prefix != "" {
			out = append(out, prefix)
		}
	case "object":
		props, _ := schema["properties"].(map[string]any)
		for name, sub := range props {
			if m, ok := sub.(map[string]any); ok {
				out = append(out, stringFields(m, joinField(prefix, name))...)
			}
		}
	case "array":
		if items, ok := schema["items"].(map[string]any); ok {
			out = append(out, stringFields(items, prefix+"[0]")...)
		}
	}
	return out
}

func joinField(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// bodyWith returns base (nil for none) as JSON with literal at the path
// field, creating the objects and arrays on the way: for
// "references[0].url" and no base, {"references":[{"url":...}]}.
func bodyWith(base any, field, literal string) string {
	const mark = "\u0001mark\u0001"
	b, err := json.Marshal(setPath(clone(base), splitPath(field), mark))
	if err != nil {
		panic(err)
	}
	return strings.Replace(string(b), `"\u0001mark\u0001"`, literal, 1)
}

// splitPath splits "references[0].url" into "references", "[0", "url".
func splitPath(field string) []string {
	var out []string
	for _, part := range strings.Split(field, ".") {
		name, idx, found := strings.Cut(part, "[")
		if name != "" {
			out = append(out, name)
		}
		for found {
			out = append(out, "[")
			_, idx, found = strings.Cut(idx, "[")
		}
	}
	return out
}

func setPath(v any, path []string, val any) any {
	if len(path) == 0 {
		return val
	}
	if path[0] == "[" {
		a, _ := v.([]any)
		if len(a) == 0 {
			a = []any{nil}
		}
		a[0] = setPath(a[0], path[1:], val)
		return a
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	m[path[0]] = setPath(m[path[0]], path[1:], val)
	return m
}

// clone deep-copies a value made of maps, slices and scalars.
func clone(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = clone(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = clone(x)
		}
		return out
	}
	return v
}

// TestListParametersOnEveryList: a junk cursor or a negative limit is a
// 400 naming the parameter on every list, whether it pages or not; none is
// ignored.
func TestListParametersOnEveryList(t *testing.T) {
	user := newClient(t, "list-params@example.com", "user")
	lists := []string{"/v1/generations", "/v1/projects", "/v1/support/tickets", "/v1/billing/orders",
		"/v1/privacy/requests", "/v1/rewards"}
	for _, list := range lists {
		for _, q := range []struct{ query, field string }{
			{"?limit=-5", "limit"},
			{"?cursor=junk%27--", "cursor"},
		} {
			t.Run(list+q.query, func(t *testing.T) {
				status, raw := user.do("GET", list+q.query, "", nil)
				if status != http.StatusBadRequest {
					t.Fatalf("GET %s%s = %d %s, want 400", list, q.query, status, raw)
				}
				var p struct {
					Errors []fieldError `json:"errors"`
				}
				if err := json.Unmarshal(raw, &p); err != nil {
					t.Fatal(err)
				}
				if len(p.Errors) != 1 || p.Errors[0].Field != q.field {
					t.Fatalf("GET %s%s = 400 %s, want the parameter %s named", list, q.query, raw, q.field)
				}
			})
		}
	}
}
