package web

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/text"
)

// ParseQuery reads the query string into q, a pointer to a struct whose
// fields carry `query:"name"` tags (the tags RouteDoc.Query documents) and
// are strings, integers or booleans. Like DecodeJSON for bodies, it refuses
// what the route does not take with a validation error naming each
// parameter: one the route does not know, one given twice, a value of the
// wrong type, or text that breaks the text policy (package text).
//
// List routes read their paging parameters with it and check them with
// PageLimit and, for a cursor they cannot decode, InvalidCursor, so that
// every list answers a junk limit or cursor the same way.
func ParseQuery(c *fiber.Ctx, q any) error {
	rv := reflect.ValueOf(q)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("web: ParseQuery needs a pointer to a struct, got %T", q))
	}
	rv = rv.Elem()
	fields := map[string]reflect.Value{}
	for i := range rv.NumField() {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("query"), ",")
		if name != "" && name != "-" {
			fields[name] = rv.Field(i)
		}
	}
	var ve errs.ValidationError
	seen := map[string]bool{}
	c.Request().URI().QueryArgs().VisitAll(func(k, v []byte) {
		name := string(k)
		if p := text.Check(name, text.Line); p != nil {
			ve.Add("query", p.Rule, "Parameter names: "+p.Message)
			return
		}
		f, ok := fields[name]
		if !ok {
			ve.Add(name, "unknown", "This parameter is not accepted here.")
			return
		}
		if seen[name] {
			ve.Add(name, "duplicate", "This parameter is given more than once.")
			return
		}
		seen[name] = true
		if err := setQueryField(f, string(v)); err != nil {
			ve.Add(name, err.Rule, err.Message)
		}
	})
	return ve.Err()
}

// setQueryField converts one parameter's value into its field.
func setQueryField(f reflect.Value, v string) *text.Problem {
	switch f.Kind() {
	case reflect.String:
		if p := text.Check(v, text.Line); p != nil {
			return p
		}
		f.SetString(v)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(v, 10, f.Type().Bits())
		if err != nil {
			return &text.Problem{Rule: "type", Message: "Must be a whole number."}
		}
		f.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return &text.Problem{Rule: "type", Message: "Must be true or false."}
		}
		f.SetBool(b)
	default:
		panic(fmt.Sprintf("web: ParseQuery cannot set a %s field", f.Type()))
	}
	return nil
}

// PageLimit checks a list's limit parameter: zero, which is what an absent
// parameter leaves, means def; anything else must be from 1 to max.
func PageLimit(limit, def, max int) (int, error) {
	switch {
	case limit == 0:
		return def, nil
	case limit < 1 || limit > max:
		return 0, errs.Invalid("limit", "range", fmt.Sprintf("The limit must be from 1 to %d.", max))
	}
	return limit, nil
}

// InvalidCursor is the error of a cursor parameter a list cannot decode:
// a cursor is opaque, so the only valid ones are those the list returned.
func InvalidCursor() error {
	return errs.Invalid("cursor", "format", "The cursor is not one this API returned.")
}
