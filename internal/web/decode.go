package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/text"
)

// DecodeJSON decodes the request body into v and turns every way it can
// fail into an error the client can act on: a body that is not JSON is a
// 415; malformed JSON, a wrong type, an unknown field, a key given twice,
// trailing data or text that breaks the text policy (package text) is a
// validation error naming the field. Unknown fields are refused so that a
// misspelt field fails loudly instead of being ignored; repeated keys
// because parsers disagree on which one wins.
//
// Every string of the decoded value is held to the text policy: no
// invalid UTF-8, no control characters (line breaks and tabs only in
// fields tagged `text:"multiline"`), no bidirectional override or isolate
// characters. Invalid UTF-8 is found in the raw body, since decoding
// replaces it with U+FFFD.
func DecodeJSON(c *fiber.Ctx, v any) error {
	if !isJSON(c.Get(fiber.HeaderContentType)) {
		return errs.E(errs.ErrUnsupportedMediaType, "The request body must be JSON (Content-Type: application/json).")
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return errs.Invalid("body", "required", "The request body is empty.")
	}
	if err := ScanJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errs.Invalid("body", "json", "The request body has data after the JSON value.")
	}
	return text.Validate(v)
}

// ScanJSON walks the tokens of body and reports every key given twice in
// one object and every string whose raw bytes are not valid UTF-8 or
// escape half of a surrogate pair, each by its path ("items[2].sku",
// "[0].name" in an array). Keys count as the same when they differ in case
// only, since encoding/json matches struct fields so. Syntax errors are
// left to the decoder, which reports them with their offset. DecodeJSON
// runs it; a module that decodes a body its own way runs it first, since
// decoding replaces invalid UTF-8 with U+FFFD.
func ScanJSON(body []byte) error {
	type frame struct {
		object  bool
		path    string
		index   int             // next element of an array
		key     string          // current key of an object
		wantKey bool            // an object expects a key next
		seen    map[string]bool // keys of an object, folded
	}
	var ve errs.ValidationError
	var stack []*frame
	// valuePath names the value that starts at the current token.
	valuePath := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.object {
			return jsonPath(f.path, f.key)
		}
		return f.path + "[" + strconv.Itoa(f.index) + "]"
	}
	// done records that a value of the innermost container has ended.
	done := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.wantKey = true
		} else {
			f.index++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			break
		}
		raw := body[start:dec.InputOffset()]
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, &frame{object: t == '{', path: valuePath(), wantKey: true, seen: map[string]bool{}})
			case '}', ']':
				stack = stack[:len(stack)-1]
				done()
			}
		case string:
			if top := len(stack) - 1; top >= 0 && stack[top].object && stack[top].wantKey {
				f := stack[top]
				f.wantKey = false
				f.key = t
				if !rawStringValid(raw) {
					ve.Add(fieldOr(f.path), text.RuleEncoding, "Keys must be valid UTF-8.")
					continue
				}
				folded := strings.ToLower(t)
				if f.seen[folded] {
					ve.Add(jsonPath(f.path, t), "duplicate", "This key appears more than once in its object (keys are matched without regard to case).")
				}
				f.seen[folded] = true
				continue
			}
			if !rawStringValid(raw) {
				ve.Add(fieldOr(valuePath()), text.RuleEncoding, "Must be valid UTF-8.")
			}
			done()
		default:
			done()
		}
	}
	return ve.Err()
}

// rawStringValid reports whether the raw bytes of a string token (with
// whatever whitespace and separators precede it) are valid UTF-8 and
// escape no lone surrogate, which encoding/json would silently replace.
func rawStringValid(raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	high := false // the previous escape was a high surrogate
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			if high {
				return false
			}
			continue
		}
		i++
		if i >= len(raw) {
			return false
		}
		if raw[i] != 'u' || i+4 >= len(raw) {
			if high {
				return false
			}
			continue
		}
		n, err := strconv.ParseUint(string(raw[i+1:i+5]), 16, 16)
		if err != nil {
			return false
		}
		i += 4
		switch {
		case n >= 0xd800 && n < 0xdc00:
			if high {
				return false
			}
			high = true
		case n >= 0xdc00 && n < 0xe000:
			if !high {
				return false
			}
			high = false
		default:
			if high {
				return false
			}
		}
	}
	return !high
}

func jsonPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldOr(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == fiber.MIMEApplicationJSON || strings.HasSuffix(mt, "+json")
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return errs.Invalid("body", "json", fmt.Sprintf("The request body is not valid JSON (at byte %d).", syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.Invalid("body", "json", "The request body ends in the middle of a JSON value.")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return errs.Invalid(field, "type", fmt.Sprintf("Must be a JSON %s.", jsonKind(typ.Type.Kind().String())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for unknown fields.
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return errs.Invalid(name, "unknown", "This field is not accepted here.")
	default:
		return errs.Wrap(err, errs.ErrInvalidArgument, "The request body could not be decoded.")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	default:
		if strings.HasPrefix(goKind, "int") || strings.HasPrefix(goKind, "uint") || strings.HasPrefix(goKind, "float") {
			return "number"
		}
		return "value"
	}
}
