package authz

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/policies"
)

// Decider answers access questions; *policies.Engine is one.
type Decider interface {
	Access(ctx context.Context, in policies.AccessInput) (policies.AccessDecision, error)
}

// Owned is implemented by response values that belong to one data subject;
// OwnerID returns the subject's user id. Roles limited to their own rows
// reach a value only when it is theirs.
type Owned interface {
	OwnerID() string
}

// Actions a Guard checks.
const (
	ActionRead   = "read"
	ActionList   = "list"
	ActionUpdate = "update"
	ActionDelete = "delete"
	ActionExport = "export"
	ActionAudit  = "audit"
)

// Guard applies the access policy to response values. It is safe for
// concurrent use; field layouts are read once per type.
type Guard struct {
	decider Decider
	layouts sync.Map // reflect.Type -> *layout
}

// NewGuard returns a Guard asking d.
func NewGuard(d Decider) *Guard { return &Guard{decider: d} }

// field is one JSON field of a response struct and its category.
type field struct {
	index    int
	name     string
	category string
	// nested is set for struct-valued fields (and slices of structs),
	// whose own fields carry the categories.
	nested    *layout
	omitEmpty bool
}

// layout is the JSON shape of a response struct.
type layout struct {
	fields     []field
	categories []string // every category below this struct, sorted
}

// Check asks whether p may perform action on data of categories about the
// subject ownerID ("" when the data is about no one in particular). It
// returns the decision, or a forbidden error when the action is refused.
func (g *Guard) Check(ctx context.Context, p Principal, action, ownerID string, categories []string) (policies.AccessDecision, error) {
	d, err := g.decider.Access(ctx, policies.AccessInput{
		Role:         p.Role,
		Action:       action,
		Categories:   categories,
		SubjectOwner: ownerID != "" && ownerID == p.UserID,
	})
	if err != nil {
		return d, fmt.Errorf("access decision: %w", err)
	}
	if !d.Allow {
		return d, errs.E(errs.ErrForbidden, "your role may not "+action+" this data")
	}
	return d, nil
}

// View returns v as the principal may see it: a JSON-ready value (maps and
// slices) with every field of a category the role may not read set to
// null. v is a struct, a pointer to one, or a slice of either. A value the
// role may not reach at all is refused with ErrForbidden; in a slice, such
// elements are left out, because lists are filtered by owner in the query
// and a stray row is withheld rather than failing the page.
func (g *Guard) View(ctx context.Context, p Principal, action string, v any) (any, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, nil
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Struct:
		return g.viewOne(ctx, p, action, rv)
	case reflect.Slice, reflect.Array:
		out := make([]any, 0, rv.Len())
		for i := 0; i < rv.Len(); i++ {
			el := rv.Index(i)
			for el.Kind() == reflect.Pointer {
				el = el.Elem()
			}
			item, err := g.viewOne(ctx, p, action, el)
			if errs.Kind(err) == errs.ErrForbidden {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, item)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("authz: cannot guard a %s; respond with tagged structs", rv.Kind())
	}
}

// JSON writes v as View shows it to the request's principal.
func (g *Guard) JSON(c *fiber.Ctx, action string, v any) error {
	p, err := Require(c)
	if err != nil {
		return err
	}
	out, err := g.View(c.UserContext(), p, action, v)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (g *Guard) viewOne(ctx context.Context, p Principal, action string, rv reflect.Value) (any, error) {
	l, err := g.layout(rv.Type())
	if err != nil {
		return nil, err
	}
	owner := ""
	if o, ok := addressable(rv).Interface().(Owned); ok {
		owner = o.OwnerID()
	}
	d, err := g.Check(ctx, p, action, owner, l.categories)
	if err != nil {
		return nil, err
	}
	return render(rv, l, d.Redact), nil
}

// addressable returns a pointer to rv when it can, so OwnerID methods on
// pointer receivers are found.
func addressable(rv reflect.Value) reflect.Value {
	if rv.CanAddr() {
		return rv.Addr()
	}
	p := reflect.New(rv.Type())
	p.Elem().Set(rv)
	return p
}

func render(rv reflect.Value, l *layout, redact []string) map[string]any {
	out := make(map[string]any, len(l.fields))
	for _, f := range l.fields {
		fv := rv.Field(f.index)
		switch {
		case f.nested != nil:
			out[f.name] = renderNested(fv, f.nested, redact)
		case slices.Contains(redact, f.category):
			out[f.name] = nil
		default:
			if f.omitEmpty && fv.IsZero() {
				continue
			}
			out[f.name] = fv.Interface()
		}
	}
	return out
}

func renderNested(fv reflect.Value, l *layout, redact []string) any {
	for fv.Kind() == reflect.Pointer {
		if fv.IsNil() {
			return nil
		}
		fv = fv.Elem()
	}
	if fv.Kind() == reflect.Slice || fv.Kind() == reflect.Array {
		items := make([]any, 0, fv.Len())
		for i := 0; i < fv.Len(); i++ {
			el := fv.Index(i)
			for el.Kind() == reflect.Pointer {
				el = el.Elem()
			}
			items = append(items, render(el, l, redact))
		}
		return items
	}
	return render(fv, l, redact)
}

// layout reads (once per type) the JSON names and privacy categories of a
// response struct. A field without a privacy tag is an error: an untagged
// field could carry personal data past the policy.
func (g *Guard) layout(t reflect.Type) (*layout, error) {
	if l, ok := g.layouts.Load(t); ok {
		return l.(*layout), nil
	}
	l, err := buildLayout(t, map[reflect.Type]bool{})
	if err != nil {
		return nil, err
	}
	g.layouts.Store(t, l)
	return l, nil
}

func buildLayout(t reflect.Type, seen map[reflect.Type]bool) (*layout, error) {
	if seen[t] {
		return nil, fmt.Errorf("authz: %s refers to itself", t)
	}
	seen[t] = true
	defer delete(seen, t)
	l := &layout{}
	cats := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f := field{index: i, name: name, omitEmpty: strings.Contains(opts, "omitempty")}
		if elem := structElem(sf.Type); elem != nil && sf.Tag.Get("privacy") == "" {
			nested, err := buildLayout(elem, seen)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", t.Name(), sf.Name, err)
			}
			f.nested = nested
			for _, c := range nested.categories {
				cats[c] = true
			}
			l.fields = append(l.fields, f)
			continue
		}
		tag := sf.Tag.Get("privacy")
		cat, _, _ := strings.Cut(tag, ",")
		if cat == "" {
			return nil, fmt.Errorf("authz: field %s.%s has no privacy tag; every response field needs its data category", t.Name(), sf.Name)
		}
		f.category = cat
		cats[cat] = true
		l.fields = append(l.fields, f)
	}
	for c := range cats {
		l.categories = append(l.categories, c)
	}
	sort.Strings(l.categories)
	return l, nil
}

// structElem returns the struct type a field holds (directly, through a
// pointer or as slice elements), except time.Time and other types that
// marshal themselves as one value.
func structElem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) ||
		t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return nil
	}
	return t
}
