package ingest

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// decodePlain decodes a body in the plain form the tracker sends, in one
// pass over its bytes, and reports false for anything else, which the
// general path (web.ScanJSON, then encoding/json) then decodes and
// checks. The general path walks the body twice through encoding/json and
// was a third of the CPU time of an ingested event.
//
// Plain means: one event object or a non-empty array of them; every key
// is the name of an EventInput field, given once; every field is a
// string except value (a number) and props (an object); no string holds
// a control character, invalid UTF-8 or half of an escaped surrogate
// pair; props nests
// at most maxPlainDepth deep and repeats no key in any of its objects
// (keys compared as web.ScanJSON compares them, in lower case). Such a
// body passes web.ScanJSON and decodes with encoding/json
// (DisallowUnknownFields, UseNumber) to exactly what decodePlain returns;
// FuzzDecodePlain checks that. Every string without escapes shares one
// copy of the body.
func decodePlain(body []byte, isArray bool) ([]EventInput, bool) {
	p := plainScanner{s: string(body)}
	p.ws()
	if !isArray {
		var in EventInput
		if !p.event(&in) {
			return nil, false
		}
		p.ws()
		return []EventInput{in}, p.pos == len(p.s)
	}
	if !p.next('[') {
		return nil, false
	}
	// The tracker and the back ends send up to a few hundred events; one
	// object of the body is at least 50 bytes in practice.
	ins := make([]EventInput, 0, min(len(p.s)/50+1, 512))
	for {
		p.ws()
		ins = append(ins, EventInput{})
		if !p.event(&ins[len(ins)-1]) {
			return nil, false
		}
		p.ws()
		if p.next(',') {
			continue
		}
		if !p.next(']') {
			return nil, false
		}
		p.ws()
		return ins, p.pos == len(p.s)
	}
}

// maxPlainDepth bounds the nesting of props in the plain form; deeper
// props take the general path.
const maxPlainDepth = 16

// maxPlainKeys bounds the keys of one props object in the plain form, so
// that the duplicate check stays a short scan; larger objects take the
// general path.
const maxPlainKeys = 64

// plainScanner reads the plain form of a body; pos is the next byte.
type plainScanner struct {
	s   string
	pos int
}

// Bits of the fields an event object has given, to refuse a repeated key.
const (
	hasEventID = 1 << iota
	hasType
	hasName
	hasTime
	hasURL
	hasReferrer
	hasLandingPage
	hasSessionID
	hasScreen
	hasLanguage
	hasProps
	hasValue
	hasCurrency
)

// event reads one event object into in.
func (p *plainScanner) event(in *EventInput) bool {
	if !p.next('{') {
		return false
	}
	p.ws()
	if p.next('}') {
		return true
	}
	var given uint16
	for {
		key, ok := p.str()
		if !ok {
			return false
		}
		p.ws()
		if !p.next(':') {
			return false
		}
		p.ws()
		var bit uint16
		var dst *string
		switch key {
		case "event_id":
			bit, dst = hasEventID, &in.EventID
		case "type":
			bit, dst = hasType, &in.Type
		case "name":
			bit, dst = hasName, &in.Name
		case "time":
			bit, dst = hasTime, &in.Time
		case "url":
			bit, dst = hasURL, &in.URL
		case "referrer":
			bit, dst = hasReferrer, &in.Referrer
		case "landing_page":
			bit, dst = hasLandingPage, &in.LandingPage
		case "session_id":
			bit, dst = hasSessionID, &in.SessionID
		case "screen":
			bit, dst = hasScreen, &in.Screen
		case "language":
			bit, dst = hasLanguage, &in.Language
		case "currency":
			bit, dst = hasCurrency, &in.Currency
		case "props":
			bit = hasProps
		case "value":
			bit = hasValue
		default:
			return false
		}
		if given&bit != 0 {
			return false
		}
		given |= bit
		switch {
		case dst != nil:
			if *dst, ok = p.str(); !ok {
				return false
			}
		case bit == hasProps:
			start := p.pos
			if p.peek() != '{' || !p.value(1) {
				return false
			}
			in.Props = json.RawMessage(p.s[start:p.pos])
		default:
			start := p.pos
			if !p.number() {
				return false
			}
			in.Value = json.Number(p.s[start:p.pos])
		}
		p.ws()
		if p.next(',') {
			p.ws()
			continue
		}
		return p.next('}')
	}
}

// value reads any JSON value of props at nesting depth.
func (p *plainScanner) value(depth int) bool {
	if depth > maxPlainDepth {
		return false
	}
	switch p.peek() {
	case '{':
		return p.object(depth)
	case '[':
		return p.array(depth)
	case '"':
		_, ok := p.str()
		return ok
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	default:
		return p.number()
	}
}

// object reads an object of props, refusing a key that repeats another
// in lower case, as web.ScanJSON does.
func (p *plainScanner) object(depth int) bool {
	p.pos++
	p.ws()
	if p.next('}') {
		return true
	}
	var seen [maxPlainKeys]string
	n := 0
	for {
		key, ok := p.str()
		if !ok || n == maxPlainKeys {
			return false
		}
		folded := strings.ToLower(key)
		if slices.Contains(seen[:n], folded) {
			return false
		}
		seen[n] = folded
		n++
		p.ws()
		if !p.next(':') {
			return false
		}
		p.ws()
		if !p.value(depth + 1) {
			return false
		}
		p.ws()
		if p.next(',') {
			p.ws()
			continue
		}
		return p.next('}')
	}
}

func (p *plainScanner) array(depth int) bool {
	p.pos++
	p.ws()
	if p.next(']') {
		return true
	}
	for {
		if !p.value(depth + 1) {
			return false
		}
		p.ws()
		if p.next(',') {
			p.ws()
			continue
		}
		return p.next(']')
	}
}

// str reads a string without escapes or control characters, in valid
// UTF-8, and returns its contents.
func (p *plainScanner) str() (string, bool) {
	if p.peek() != '"' {
		return "", false
	}
	start := p.pos + 1
	ascii := true
	for i := start; i < len(p.s); i++ {
		switch c := p.s[i]; {
		case c == '"':
			v := p.s[start:i]
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			p.pos = i + 1
			return v, true
		case c == '\\':
			return p.unescape(start, i)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// unescape reads the rest of a string whose contents begin at start and
// whose first escape sequence is at i, and returns the contents with the
// escapes replaced as encoding/json replaces them. Half of a surrogate
// pair fails, as web.ScanJSON refuses it.
func (p *plainScanner) unescape(start, i int) (string, bool) {
	// The contents are never longer than the quoted text: a Builder
	// grown to that holds them in one allocation, which String keeps.
	end := strings.IndexByte(p.s[i:], '"')
	if end < 0 {
		return "", false
	}
	var buf strings.Builder
	buf.Grow(i - start + end)
	buf.WriteString(p.s[start:i])
	for i < len(p.s) {
		c := p.s[i]
		switch {
		case c == '"':
			if !utf8.ValidString(p.s[start:i]) {
				return "", false
			}
			p.pos = i + 1
			return buf.String(), true
		case c < 0x20:
			return "", false
		case c != '\\':
			buf.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(p.s) {
			return "", false
		}
		switch e := p.s[i+1]; e {
		case '"', '\\', '/':
			buf.WriteByte(e)
		case 'b':
			buf.WriteByte('\b')
		case 'f':
			buf.WriteByte('\f')
		case 'n':
			buf.WriteByte('\n')
		case 'r':
			buf.WriteByte('\r')
		case 't':
			buf.WriteByte('\t')
		case 'u':
			r, ok := hex4(p.s[i+2:])
			if !ok {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// Only a high half followed by an escaped low half.
				if r >= 0xdc00 || !strings.HasPrefix(p.s[i:], `\u`) {
					return "", false
				}
				low, ok := hex4(p.s[i+2:])
				if !ok || low < 0xdc00 || low >= 0xe000 {
					return "", false
				}
				i += 6
				r = utf16.DecodeRune(r, low)
			}
			buf.WriteRune(r)
			continue
		default:
			return "", false
		}
		i += 2
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape.
func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a number in JSON's grammar: an optional minus, an integer
// without leading zeros, an optional fraction and an optional exponent.
func (p *plainScanner) number() bool {
	p.next('-')
	switch c := p.peek(); {
	case c == '0':
		p.pos++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return false
	}
	if p.next('.') && !p.digits() {
		return false
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		if !p.next('+') {
			p.next('-')
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more decimal digits.
func (p *plainScanner) digits() bool {
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

func (p *plainScanner) literal(lit string) bool {
	if !strings.HasPrefix(p.s[p.pos:], lit) {
		return false
	}
	p.pos += len(lit)
	return true
}

// peek returns the next byte, or 0 at the end.
func (p *plainScanner) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

// next consumes c when it comes next.
func (p *plainScanner) next(c byte) bool {
	if p.peek() == c {
		p.pos++
		return true
	}
	return false
}

// ws skips JSON whitespace.
func (p *plainScanner) ws() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}
