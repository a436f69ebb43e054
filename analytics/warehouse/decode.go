package warehouse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The embedded backend reads results as JSONEachRow, with the connection
// settings output_format_json_quote_64bit_integers=0 (64-bit integers as
// numbers) and date_time_output_format=iso (times as RFC 3339 in UTC), and
// decodes each row into the caller's struct. Each row is decoded into a
// "shadow" struct built once per destination type: its fields carry json
// tags equal to the ch tags and point at the fields of the row being filled,
// so encoding/json does the work and unknown columns are caught by
// DisallowUnknownFields, the way clickhouse-go refuses a column it cannot
// place.

// rowPlan maps a destination struct type to its shadow type.
type rowPlan struct {
	shadow reflect.Type
	// fields[i] is the index path, in the destination struct, of shadow
	// field i.
	fields [][]int
	// kinds[i] says how shadow field i points at its destination.
	kinds []shadowKind
}

type shadowKind uint8

const (
	shadowPtr     shadowKind = iota // *T pointing at a T field
	shadowTime                      // timeDest wrapping a *time.Time
	shadowTimePtr                   // timePtrDest wrapping a **time.Time
)

// planCache holds rowPlans by destination type.
type planCache struct {
	m sync.Map // reflect.Type -> *rowPlan
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	timePtrType = reflect.TypeFor[*time.Time]()
)

func (c *planCache) planFor(t reflect.Type) (*rowPlan, error) {
	if p, ok := c.m.Load(t); ok {
		return p.(*rowPlan), nil
	}
	plan := &rowPlan{}
	var fields []reflect.StructField
	seen := map[string]bool{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		if throughPointer(t, f.Index) {
			return nil, fmt.Errorf("%s: field %s is promoted through an embedded pointer, which cannot receive columns", t, f.Name)
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("ch"); ok {
			if tag == "-" {
				continue
			}
			name, _, _ = strings.Cut(tag, ",")
		}
		if seen[strings.ToLower(name)] {
			return nil, fmt.Errorf("%s: two fields for column %q", t, name)
		}
		seen[strings.ToLower(name)] = true
		var ft reflect.Type
		var kind shadowKind
		switch f.Type {
		case timeType:
			ft, kind = reflect.TypeFor[timeDest](), shadowTime
		case timePtrType:
			ft, kind = reflect.TypeFor[timePtrDest](), shadowTimePtr
		default:
			ft, kind = reflect.PointerTo(f.Type), shadowPtr
		}
		fields = append(fields, reflect.StructField{
			Name: "F" + strconv.Itoa(len(fields)),
			Type: ft,
			Tag:  reflect.StructTag(`json:"` + name + `"`),
		})
		plan.fields = append(plan.fields, f.Index)
		plan.kinds = append(plan.kinds, kind)
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("%s has no exported fields to receive columns", t)
	}
	plan.shadow = reflect.StructOf(fields)
	p, _ := c.m.LoadOrStore(t, plan)
	return p.(*rowPlan), nil
}

// throughPointer reports whether the field at index is reached through an
// embedded pointer, which would be nil in a fresh row.
func throughPointer(t reflect.Type, index []int) bool {
	for _, i := range index[:len(index)-1] {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Pointer {
			return true
		}
		t = f.Type
	}
	return false
}

// destSlice checks that dest is a *[]T with T a struct and returns the slice
// value and T.
func destSlice(dest any) (reflect.Value, reflect.Type, error) {
	rv := reflect.ValueOf(dest)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Slice {
		return reflect.Value{}, nil, fmt.Errorf("select destination must be a pointer to a slice of structs, got %T", dest)
	}
	slice := rv.Elem()
	elem := slice.Type().Elem()
	if elem.Kind() != reflect.Struct {
		return reflect.Value{}, nil, fmt.Errorf("select destination must be a pointer to a slice of structs, got %T", dest)
	}
	return slice, elem, nil
}

// decodeRows appends the JSONEachRow rows in data to slice.
func (c *planCache) decodeRows(data []byte, slice reflect.Value, elem reflect.Type) error {
	plan, err := c.planFor(elem)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	rows := slice
	shadow := reflect.New(plan.shadow)
	for {
		row := reflect.New(elem).Elem()
		sv := shadow.Elem()
		for i, idx := range plan.fields {
			target := row.FieldByIndex(idx).Addr()
			switch plan.kinds[i] {
			case shadowTime:
				sv.Field(i).Set(reflect.ValueOf(timeDest{p: target.Interface().(*time.Time)}))
			case shadowTimePtr:
				sv.Field(i).Set(reflect.ValueOf(timePtrDest{p: target.Interface().(**time.Time)}))
			default:
				sv.Field(i).Set(target)
			}
		}
		if err := dec.Decode(shadow.Interface()); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("decode row %d into %s: %w", rows.Len()-slice.Len()+1, elem, err)
		}
		rows = reflect.Append(rows, row)
	}
	slice.Set(rows)
	return nil
}

// timeDest receives a Date, DateTime or DateTime64 value.
type timeDest struct{ p *time.Time }

func (d timeDest) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	t, err := parseTime(b)
	if err != nil {
		return err
	}
	*d.p = t
	return nil
}

// timePtrDest receives a Nullable time; null leaves the pointer nil.
type timePtrDest struct{ p **time.Time }

func (d timePtrDest) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d.p = nil
		return nil
	}
	t, err := parseTime(b)
	if err != nil {
		return err
	}
	*d.p = &t
	return nil
}

func parseTime(b []byte) (time.Time, error) {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return time.Time{}, fmt.Errorf("time value %s: %w", b, err)
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly, "2006-01-02 15:04:05.999999999", time.DateTime} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time value %q: not a ClickHouse date or time", s)
}
