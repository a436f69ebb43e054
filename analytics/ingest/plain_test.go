package ingest

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/web"
)

const plainFull = `{"event_id":"0190a7e2-6b1c-7d3e-8f00-000000000001","type":"purchase","name":"checkout",` +
	`"time":"2026-05-04T09:59:30Z","url":"https://app.example.com/pricing?plan=pro#top",` +
	`"referrer":"https://www.google.com/search?q=x","landing_page":"https://app.example.com/?utm_source=n&gclid=C1",` +
	`"session_id":"sess_abc123","screen":"1920x1080","language":"de-DE",` +
	`"props":{"plan": "pro", "seats": 3, "tags": ["a", {"b": null}], "ok": true, "x": -1.5e+3},` +
	`"value":49.99,"currency":"EUR"}`

func TestDecodePlain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		isArray bool
		plain   bool
	}{
		{name: "every field", body: plainFull, plain: true},
		{name: "array with spacing", body: "[\n " + plainFull + " ,\t{\"type\":\"page_view\",\"url\":\"/\"}\r\n]", isArray: true, plain: true},
		{name: "empty object", body: `{}`, plain: true},
		{name: "escaped utf-8", body: `{"url":"/caf\u00e9","name":"Caf\u00C9 \ud83d\ude00"}`, plain: true},
		{name: "escapes as encoding/json writes them", body: `{"url":"/a?b=1\u0026c=\u003cx\u003e","props":{"q":"\"\\\/\b\f\n\r\t"}}`, plain: true},
		{name: "utf-8 text unescaped", body: `{"url":"/café","name":"Café ☕"}`, plain: true},
		{name: "empty props", body: `{"props":{}}`, plain: true},
		{name: "zero value", body: `{"value":0}`, plain: true},
		{name: "empty array", body: `[]`, isArray: true},
		{name: "lone high surrogate", body: `{"url":"/\ud83d"}`},
		{name: "lone low surrogate", body: `{"url":"/\ude00x"}`},
		{name: "high surrogate then another escape", body: `{"url":"/\ud83d\n"}`},
		{name: "lone surrogate in props", body: `{"props":{"m":"\ud83d"}}`},
		{name: "unknown escape", body: `{"url":"/\x"}`},
		{name: "short unicode escape", body: `{"url":"/\u12"}`},
		{name: "escaped key in another case", body: `{"props":{"a":1,"\u0041":2}}`},
		{name: "control character", body: "{\"url\":\"/a\tb\"}"},
		{name: "invalid utf-8", body: "{\"url\":\"/\xff\"}"},
		{name: "key in another case", body: `{"URL":"/"}`},
		{name: "unknown key", body: `{"color":"red"}`},
		{name: "repeated key", body: `{"url":"/","url":"/b"}`},
		{name: "props key repeated in another case", body: `{"props":{"a":1,"A":2}}`},
		{name: "null string", body: `{"url":null}`},
		{name: "number as string field", body: `{"url":1}`},
		{name: "value as a string", body: `{"value":"49.99"}`},
		{name: "props not an object", body: `{"props":[1]}`},
		{name: "props too deep", body: `{"props":` + strings.Repeat(`{"a":`, maxPlainDepth+1) + `1` + strings.Repeat(`}`, maxPlainDepth+1) + `}`},
		{name: "leading zero", body: `{"value":01}`},
		{name: "bare fraction", body: `{"value":1.}`},
		{name: "trailing data", body: `{"url":"/"} {}`},
		{name: "trailing comma", body: `{"url":"/",}`},
		{name: "array item not an object", body: `[{"url":"/"},null]`, isArray: true},
		{name: "cut short", body: `[{"url":"/"}`, isArray: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ins, ok := decodePlain([]byte(tc.body), tc.isArray)
			if ok != tc.plain {
				t.Fatalf("plain = %v, want %v", ok, tc.plain)
			}
			if ok {
				checkSameAsGeneral(t, []byte(tc.body), tc.isArray, ins)
			}
		})
	}
}

// FuzzDecodePlain checks that whatever body decodePlain accepts passes
// web.ScanJSON and decodes with encoding/json to exactly the same events.
func FuzzDecodePlain(f *testing.F) {
	for _, seed := range []string{
		plainFull,
		"[" + plainFull + "," + plainFull + "]",
		`{"event_id":"x","type":"page_view","url":"/","props":{"a":[1,2,{"b":"c"}],"d":false}}`,
		`{"props":{"a":1,"A":2}}`,
		`{"value":-0.5E-7}`,
		`{"url":"/café"}`,
		`[{},{}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 {
			return
		}
		isArray := trimmed[0] == '['
		ins, ok := decodePlain(trimmed, isArray)
		if ok {
			checkSameAsGeneral(t, trimmed, isArray, ins)
		}
	})
}

// checkSameAsGeneral checks ins, decoded by decodePlain, against the
// general path.
func checkSameAsGeneral(t *testing.T, body []byte, isArray bool, ins []EventInput) {
	t.Helper()
	if err := web.ScanJSON(body); err != nil {
		t.Fatalf("the plain form passed a body web.ScanJSON refuses: %v\n%q", err, body)
	}
	want, ok := decodeAll(body, isArray)
	if !ok {
		t.Fatalf("the plain form passed a body encoding/json refuses: %q", body)
	}
	if !reflect.DeepEqual(ins, want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v\nfrom %q", ins, want, body)
	}
}

func TestScaledValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{name: "zero", in: "0", want: 0, ok: true},
		{name: "whole", in: "49", want: 490_000, ok: true},
		{name: "two decimals", in: "19.99", want: 199_900, ok: true},
		{name: "four decimals", in: "0.0001", want: 1, ok: true},
		{name: "the largest", in: "1000000000000", want: 10_000_000_000_000_000, ok: true},
		{name: "the largest with decimals", in: "1000000000000.0000", want: 10_000_000_000_000_000, ok: true},
		{name: "past the largest", in: "1000000000000.0001"},
		{name: "far past the largest", in: "99999999999999"},
		{name: "five decimals", in: "0.00001"},
		{name: "trailing zeros past four decimals", in: "1.230000", want: 12_300, ok: true},
		{name: "exponent", in: "1.5e2", want: 1_500_000, ok: true},
		{name: "negative exponent", in: "15E-1", want: 15_000, ok: true},
		{name: "negative", in: "-1"},
		{name: "negative zero", in: "-0", want: 0, ok: true},
		{name: "not a number", in: "1.2.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := scaledValue(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("scaledValue(%q) = %d, %v, want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
			// The fast form must agree with the general one wherever it
			// answers.
			if fast, ok := scaledDigits(tc.in); ok {
				if slow, slowOK := scaledRat(tc.in); !slowOK || slow != fast {
					t.Fatalf("scaledDigits(%q) = %d, scaledRat = %d, %v", tc.in, fast, slow, slowOK)
				}
			}
		})
	}
}
