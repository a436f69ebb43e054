package text_test

import (
	"errors"
	"testing"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/text"
)

func TestCheck(t *testing.T) {
	// Cases grouped by the kind of field and the rule that must refuse
	// them; the inputs of a group are named.
	tests := []struct {
		kind  text.Kind
		rule  string            // "" when accepted
		cases map[string]string // name -> input
	}{
		{text.Line, "", map[string]string{
			"plain":              "Invoice for March",
			"accents and emoji":  "Grüße 🎬 日本語",
			"right-to-left text": "שלום עולם",
			"right-to-left mark": "abc\u200fdef",
		}},
		{text.Multiline, "", map[string]string{"line breaks and tabs in a message": "Hello,\r\n\tthanks"}},
		{text.Line, text.RuleControl, map[string]string{
			"NUL":                        "a\x00b",
			"DEL":                        "a\x7f",
			"line feed in one line":      "a\nb",
			"tab in one line":            "a\tb",
			"line separator in one line": "a\u2028b",
		}},
		{text.Multiline, text.RuleControl, map[string]string{
			"NUL in a multiline field": "a\x00b",
			"escape":                   "a\x1b[31mred",
			"C1 control":               "a\u0085b",
		}},
		{text.Line, text.RuleBidi, map[string]string{
			"right-to-left override": "invoice\u202efdp.exe",
			"first strong isolate":   "a\u2068b",
		}},
		{text.Multiline, text.RuleBidi, map[string]string{
			"left-to-right embedding": "a\u202ab",
			"pop directional isolate": "a\u2069",
		}},
		{text.Line, text.RuleEncoding, map[string]string{
			"truncated sequence": "caf\xc3",
			"encoded surrogate":  "a\xed\xa0\x80",
		}},
		{text.Multiline, text.RuleEncoding, map[string]string{"invalid UTF-8": "a\xffb"}},
	}
	for _, group := range tests {
		for name, in := range group.cases {
			t.Run(name, func(t *testing.T) {
				p := text.Check(in, group.kind)
				switch {
				case group.rule == "" && p != nil:
					t.Errorf("refused (%s): %s", p.Rule, p.Message)
				case group.rule != "" && p == nil:
					t.Errorf("accepted, want rule %s", group.rule)
				case p != nil && (p.Rule != group.rule || p.Message == ""):
					t.Errorf("problem = %+v, want rule %s", p, group.rule)
				}
			})
		}
	}
}

func TestValidate(t *testing.T) {
	type reference struct {
		Kind string `json:"kind"`
		URL  string `json:"url,omitempty"`
	}
	type Meta struct {
		Source string `json:"source"`
	}
	type request struct {
		Meta
		Subject    string            `json:"subject"`
		Message    string            `json:"message" text:"multiline"`
		Contact    *string           `json:"contact,omitempty"`
		Tags       []string          `json:"tags"`
		References []reference       `json:"references"`
		Purposes   map[string]bool   `json:"purposes"`
		Labels     map[string]string `json:"labels"`
		Extra      any               `json:"extra"`
		Raw        []byte            `json:"raw"`
		Ignored    string            `json:"-"`
		private    string
	}
	str := func(s string) *string { return &s }
	tests := []struct {
		name string
		in   request
		want []errs.FieldError // fields and rules
	}{
		{name: "clean", in: request{Subject: "Hi", Message: "Line one\nLine two", Contact: str("a@example.com"),
			Tags: []string{"x"}, References: []reference{{Kind: "image", URL: "https://example.com/a.png"}},
			Purposes: map[string]bool{"analytics": true}, Extra: map[string]any{"k": []any{"v"}}}},
		{name: "NUL in a one-line field", in: request{Subject: "a\x00"},
			want: []errs.FieldError{{Field: "subject", Rule: text.RuleControl}}},
		{name: "line break allowed where marked", in: request{Subject: "ok", Message: "a\r\nb\tc"}},
		{name: "pointer", in: request{Contact: str("\u202e")},
			want: []errs.FieldError{{Field: "contact", Rule: text.RuleBidi}}},
		{name: "embedded struct", in: request{Meta: Meta{Source: "a\nb"}},
			want: []errs.FieldError{{Field: "source", Rule: text.RuleControl}}},
		{name: "slice element and nested field", in: request{Tags: []string{"ok", "b\xff"}, References: []reference{{}, {URL: "https://x\x00"}}},
			want: []errs.FieldError{{Field: "tags[1]", Rule: text.RuleEncoding}, {Field: "references[1].url", Rule: text.RuleControl}}},
		{name: "map key", in: request{Purposes: map[string]bool{"ana\x00lytics": true}},
			want: []errs.FieldError{{Field: "purposes", Rule: text.RuleControl}}},
		{name: "map value", in: request{Labels: map[string]string{"team": "a\u2066"}},
			want: []errs.FieldError{{Field: "labels.team", Rule: text.RuleBidi}}},
		{name: "decoded JSON in an interface", in: request{Extra: map[string]any{"list": []any{"ok", "\x07"}}},
			want: []errs.FieldError{{Field: "extra.list[1]", Rule: text.RuleControl}}},
		{name: "raw bytes and unexported fields are not text", in: request{Raw: []byte{0, 1}, Ignored: "\x00", private: "\x00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := text.Validate(&tt.in)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			var ve *errs.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, errs.ErrInvalidArgument) {
				t.Fatalf("Validate = %v, want a validation error", err)
			}
			if len(ve.Errors) != len(tt.want) {
				t.Fatalf("errors = %+v, want %+v", ve.Errors, tt.want)
			}
			for i, w := range tt.want {
				got := ve.Errors[i]
				if got.Field != w.Field || got.Rule != w.Rule || got.Message == "" {
					t.Errorf("error %d = %+v, want field %s rule %s", i, got, w.Field, w.Rule)
				}
			}
		})
	}
}

func TestUnknownTagPanics(t *testing.T) {
	type bad struct {
		Body string `json:"body" text:"multi-line"`
	}
	defer func() {
		if recover() == nil {
			t.Error("a misspelt text tag was accepted")
		}
	}()
	_ = text.Validate(&bad{})
}
