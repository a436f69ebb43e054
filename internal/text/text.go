// Package text holds Steward's one policy for text a client sends and
// Steward stores: ticket subjects and messages, project names, prompts,
// profile names, reasons, and every other string field of a request.
//
// A string is refused, with the rule it breaks, when it
//
//   - is not valid UTF-8 (rule "encoding"): stores and browsers would
//     otherwise each repair it their own way;
//   - holds a control character (rule "control_characters"): NUL breaks
//     the SQL stores (SQLite ends the statement, PostgreSQL refuses it), and
//     the others corrupt logs, CSV exports and single-line displays. A
//     field marked multiline accepts line feeds, carriage returns and tabs;
//     a one-line field also refuses the Unicode line and paragraph
//     separators (U+2028, U+2029);
//   - holds a bidirectional embedding, override or isolate character
//     (rule "bidi_control", U+202A–U+202E and U+2066–U+2069): they reorder
//     what a reader sees, so that a name, a subject or a file name shown to
//     support staff or in the console can pass for another ("Trojan
//     Source"). Right-to-left text needs none of them, and the plain marks
//     (U+200E, U+200F) stay allowed.
//
// Fields are one line unless marked otherwise. The marker is declarative,
// a struct tag next to the field's json tag:
//
//	Message string `json:"message" text:"multiline"`
//
// Validate applies the policy to every string of a decoded request body,
// and web.DecodeJSON runs it on every body it decodes, so a module gets the
// policy by decoding with it and marks only its multiline fields.
package text

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/errs"
)

// Rules, the stable names a validation error gives (errs.FieldError.Rule).
const (
	RuleEncoding = "encoding"
	RuleControl  = "control_characters"
	RuleBidi     = "bidi_control"
)

// TagKey is the struct tag that marks a field's kind of text.
const TagKey = "text"

// Kind says which characters beyond printable text a field accepts.
type Kind int

const (
	// Line is one line of text: no control characters at all. It is the
	// kind of every field not marked otherwise.
	Line Kind = iota
	// Multiline also accepts line feeds, carriage returns and tabs, for
	// messages and prompts. Its tag value is "multiline".
	Multiline
)

// Problem is the rule a string breaks and a sentence about it. The
// sentence never repeats the string, which may be personal data.
type Problem struct {
	Rule    string
	Message string
}

// Check applies the policy to s as text of kind k and returns the first
// rule it breaks, or nil.
func Check(s string, k Kind) *Problem {
	if !utf8.ValidString(s) {
		return &Problem{RuleEncoding, "Must be valid UTF-8."}
	}
	for _, r := range s {
		switch {
		case IsBidiControl(r):
			return &Problem{RuleBidi, "Must not contain bidirectional override or isolate characters (U+202A to U+202E, U+2066 to U+2069)."}
		case k == Multiline && (r == '\n' || r == '\r' || r == '\t'):
		case isControl(r):
			if k == Multiline {
				return &Problem{RuleControl, "Must not contain control characters other than line breaks and tabs."}
			}
			return &Problem{RuleControl, "Must not contain control characters such as line breaks, tabs or NUL."}
		}
	}
	return nil
}

// IsBidiControl reports whether r is a bidirectional embedding, override
// or isolate character, which the policy refuses everywhere.
func IsBidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// isControl reports the characters of Unicode's Cc category (C0, DEL and
// C1) and the line and paragraph separators.
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == '\u2028' || r == '\u2029'
}

// Validate applies the policy to every string v holds: struct fields (by
// their JSON names and text tags), elements of slices and arrays, keys and
// values of maps, and values behind pointers and interfaces, such as a
// decoded JSON object. It returns an *errs.ValidationError naming each
// field at fault by its JSON path ("references[1].url"), or nil.
func Validate(v any) error {
	var ve errs.ValidationError
	walk(reflect.ValueOf(v), "", Line, &ve)
	return ve.Err()
}

func walk(v reflect.Value, path string, k Kind, ve *errs.ValidationError) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walk(v.Elem(), path, k, ve)
		}
	case reflect.String:
		if p := Check(v.String(), k); p != nil {
			ve.Add(fieldName(path), p.Rule, p.Message)
		}
	case reflect.Struct:
		for _, f := range fieldsOf(v.Type()) {
			walk(v.FieldByIndex(f.index), join(path, f.name), f.kind, ve)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			// Raw bytes (json.RawMessage) are not text.
			return
		}
		for i := range v.Len() {
			walk(v.Index(i), path+"["+strconv.Itoa(i)+"]", k, ve)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			key := iter.Key()
			if key.Kind() == reflect.String {
				if p := Check(key.String(), Line); p != nil {
					// The key itself is at fault: the field is the map,
					// since naming the key would repeat it.
					ve.Add(fieldName(path), p.Rule, "Keys: "+p.Message)
					continue
				}
				walk(iter.Value(), join(path, key.String()), k, ve)
				continue
			}
			walk(iter.Value(), path, k, ve)
		}
	}
}

func join(path, name string) string {
	if name == "" {
		return path
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func fieldName(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

// field is a struct field the walk visits.
type field struct {
	index []int
	name  string
	kind  Kind
}

// layouts caches the fields of each struct type.
var layouts sync.Map // reflect.Type → []field

// fieldsOf lists the fields of a struct type encoding/json decodes, under
// their JSON names, with embedded structs' fields inlined.
func fieldsOf(t reflect.Type) []field {
	if l, ok := layouts.Load(t); ok {
		return l.([]field)
	}
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if sf.Anonymous && name == "" {
			et := sf.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				// Promoted fields of an embedded struct are only reachable
				// through a non-nil embedded value; the walk of the
				// embedded value covers them.
				if sf.Type.Kind() == reflect.Pointer {
					out = append(out, field{index: []int{i}, name: "", kind: Line})
					continue
				}
				for _, f := range fieldsOf(et) {
					out = append(out, field{index: append([]int{i}, f.index...), name: f.name, kind: f.kind})
				}
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, field{index: []int{i}, name: name, kind: kindOf(sf)})
	}
	layouts.Store(t, out)
	return out
}

// kindOf reads a field's text tag. An unknown value is a programming
// error, caught the first time a request of the type is decoded (and so by
// the type's tests).
func kindOf(sf reflect.StructField) Kind {
	switch tag := sf.Tag.Get(TagKey); tag {
	case "":
		return Line
	case "multiline":
		return Multiline
	default:
		panic(fmt.Sprintf("text: field %s has tag %s:%q; the only value is \"multiline\"", sf.Name, TagKey, tag))
	}
}
