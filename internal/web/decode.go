package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
)

// DecodeJSON decodes the request body into v and turns every way it can
// fail into an error the client can act on: a body that is not JSON is a
// 415, malformed JSON, a wrong type, an unknown field or trailing data is a
// validation error naming the field. Unknown fields are refused so that a
// misspelt field fails loudly instead of being ignored.
func DecodeJSON(c *fiber.Ctx, v any) error {
	if !isJSON(c.Get(fiber.HeaderContentType)) {
		return errs.E(errs.ErrUnsupportedMediaType, "The request body must be JSON (Content-Type: application/json).")
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return errs.Invalid("body", "required", "The request body is empty.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errs.Invalid("body", "json", "The request body has data after the JSON value.")
	}
	return nil
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
