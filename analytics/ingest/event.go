package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/text"
	"github.com/stewardhq/steward/internal/web"
)

// EventInput is one event as the tracker sends it.
type EventInput struct {
	// EventID is a UUID made by the client; a resent event keeps it, so
	// retries are stored once.
	EventID string `json:"event_id"`
	// Type is one of the event types the consent map knows: page_view,
	// feature_interaction, pricing_view, signup, purchase, performance,
	// error.
	Type string `json:"type"`
	// Name names a custom event or conversion; it defaults to Type.
	Name string `json:"name,omitempty"`
	// Time is when the event happened (RFC 3339); it defaults to the time
	// received and must lie between 48 hours before and 5 minutes after.
	Time string `json:"time,omitempty"`
	// URL is the page's full URL. Only its path is stored; its UTM
	// parameters and click ids feed attribution when marketing consent
	// allows.
	URL string `json:"url"`
	// Referrer is the session's external referrer (document.referrer).
	Referrer string `json:"referrer,omitempty"`
	// LandingPage is the full URL of the session's first page; attribution
	// reads its UTM parameters and click ids.
	LandingPage string `json:"landing_page,omitempty"`
	// SessionID is the tracker's per-tab session id.
	SessionID string `json:"session_id,omitempty"`
	// Screen is the screen size, "1920x1080".
	Screen string `json:"screen,omitempty"`
	// Language is the browser language, "de-DE".
	Language string `json:"language,omitempty"`
	// Props is a JSON object of custom properties.
	Props json.RawMessage `json:"props,omitempty"`
	// Value and Currency are a conversion's value (up to 4 decimals) and
	// ISO 4217 currency.
	Value    json.Number `json:"value,omitempty"`
	Currency string      `json:"currency,omitempty"`
}

// Result answers an accepted request: what became of each item of the
// batch (a single event object is a batch of one). Every item is counted
// exactly once: Stored plus the four Dropped counts is the number of
// items sent, and Dropped.Invalid is len(Rejected).
type Result struct {
	// Accepted counts the valid items, whatever became of them after
	// validation: Stored + Dropped.Consent + Dropped.Bot +
	// Dropped.Duplicate. It is not the number of events stored; read
	// Stored for that.
	Accepted int `json:"accepted"`
	// Stored counts the events written to the durable spool, from which
	// they reach the warehouse, possibly reduced as consent requires.
	Stored int `json:"stored"`
	// Dropped counts the items not stored, by reason.
	Dropped Dropped `json:"dropped"`
	// Rejected lists the invalid items of a batch with their errors.
	Rejected []Rejected `json:"rejected"`
}

// Dropped counts the items of a batch that were not stored, by the first
// check that stopped each, in the order they run: validation, duplicates,
// the bot filter, consent. An item is counted under one reason only.
type Dropped struct {
	// Consent counts the events the sender's consent (or the Global
	// Privacy Control signal) does not allow to be stored.
	Consent int `json:"consent"`
	// Bot counts the events of a browser request whose user agent is a
	// crawler, monitor or scripting client, or missing. Requests with a
	// bearer API token are never bot-filtered.
	Bot int `json:"bot"`
	// Duplicate counts the later copies of an event_id repeated within
	// this batch; the first copy goes on. An event resent in a later
	// request is not counted here: it is counted as stored again, and the
	// drainer and the events table keep one copy of an event_id sent with
	// the same time.
	Duplicate int `json:"duplicate"`
	// Invalid counts the items that failed validation, listed in
	// Rejected.
	Invalid int `json:"invalid"`
}

// Rejected is one invalid item of a batch and its failed checks.
type Rejected struct {
	Index  int               `json:"index"`
	Errors []errs.FieldError `json:"errors"`
}

// Field limits.
const (
	maxURL       = 2048
	maxName      = 100
	maxSessionID = 64
	maxScreen    = 11
	maxLanguage  = 35
	maxProps     = 4096
	maxCurrency  = 3
	maxValue     = 1e12
)

// decodeBatch decodes a body: one event object, or an array of them. Each
// item comes back decoded, or with the errors that kept it from decoding.
func decodeBatch(body []byte, maxBatch int) ([]EventInput, [][]errs.FieldError, bool, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, nil, false, errs.Invalid("body", "required", "The request body is empty.")
	}
	isArray := false
	switch trimmed[0] {
	case '{':
	case '[':
		isArray = true
	default:
		return nil, nil, false, errs.Invalid("body", "json", "The request body must be an event object or an array of events.")
	}
	// The plain form, nearly every body, decodes in one pass; it passes
	// the checks below by construction.
	if ins, ok := decodePlain(trimmed, isArray); ok {
		if isArray {
			if err := batchSize(len(ins), maxBatch); err != nil {
				return nil, nil, true, err
			}
		}
		return ins, make([][]errs.FieldError, len(ins)), isArray, nil
	}
	// The same rules as every other JSON body: valid UTF-8 and no key
	// given twice, checked over the raw bytes before decoding.
	if err := web.ScanJSON(trimmed); err != nil {
		return nil, nil, isArray, err
	}
	if ins, ok := decodeAll(trimmed, isArray); ok {
		if isArray {
			if err := batchSize(len(ins), maxBatch); err != nil {
				return nil, nil, true, err
			}
		}
		return ins, make([][]errs.FieldError, len(ins)), isArray, nil
	}
	// Something is malformed: find out which item.
	items := []json.RawMessage{trimmed}
	if isArray {
		items = nil
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, nil, true, errs.Invalid("body", "json", "The request body is not a valid JSON array.")
		}
		if err := batchSize(len(items), maxBatch); err != nil {
			return nil, nil, true, err
		}
	}
	ins := make([]EventInput, len(items))
	failed := make([][]errs.FieldError, len(items))
	for i, raw := range items {
		ins[i], failed[i] = decodeEvent(raw)
	}
	return ins, failed, isArray, nil
}

func batchSize(n, maxBatch int) error {
	if n == 0 {
		return errs.Invalid("body", "min_items", "The array holds no event.")
	}
	if n > maxBatch {
		return errs.Invalid("body", "max_items", fmt.Sprintf("A request may carry at most %d events.", maxBatch))
	}
	return nil
}

// event is a validated event.
type event struct {
	in    EventInput
	time  time.Time
	value int64 // ten-thousandths
}

// decodeAll decodes a whole body of events in one pass, the common case.
// It fails when any item is malformed; the caller then decodes the items
// one by one to tell which.
func decodeAll(body []byte, isArray bool) ([]EventInput, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var ins []EventInput
	if isArray {
		if err := dec.Decode(&ins); err != nil {
			return nil, false
		}
	} else {
		var in EventInput
		if err := dec.Decode(&in); err != nil {
			return nil, false
		}
		ins = []EventInput{in}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return ins, true
}

// decodeEvent decodes one item on its own.
func decodeEvent(raw json.RawMessage) (EventInput, []errs.FieldError) {
	var in EventInput
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return in, decodeFieldErrors(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return in, []errs.FieldError{{Field: "event", Rule: "json", Message: "Has data after the JSON object."}}
	}
	return in, nil
}

// validateEvent checks one decoded event, collecting every failed check.
func (m *Module) validateEvent(input EventInput, now time.Time, memo *urlMemo) (event, []errs.FieldError) {
	var v errs.ValidationError
	ev := event{in: input}
	in := &ev.in
	if in.EventID == "" {
		v.Add("event_id", "required", "Every event needs an event_id (a UUID).")
	} else if len(in.EventID) != 36 || uuid.Validate(in.EventID) != nil {
		v.Add("event_id", "format", "Must be a UUID in its 36-character form.")
	} else {
		in.EventID = strings.ToLower(in.EventID)
	}
	switch {
	case in.Type == "":
		v.Add("type", "required", "Every event needs a type.")
	case !m.types[in.Type]:
		v.Add("type", "enum", "Unknown event type; use one of "+strings.Join(m.cfg.EventTypes, ", ")+".")
	}
	if in.Name == "" {
		in.Name = in.Type
	} else if !printable(in.Name, maxName) {
		v.Add("name", "format", fmt.Sprintf("Must be 1 to %d printable characters.", maxName))
	}
	ev.time = now
	if in.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, in.Time)
		switch {
		case err != nil:
			v.Add("time", "format", "Must be an RFC 3339 time, such as 2026-01-02T15:04:05.000Z.")
		case t.Before(now.Add(-m.cfg.MaxPast)):
			v.Add("time", "range", fmt.Sprintf("Must be at most %s before now.", m.cfg.MaxPast))
		case t.After(now.Add(m.cfg.MaxFuture)):
			v.Add("time", "range", fmt.Sprintf("Must be at most %s after now.", m.cfg.MaxFuture))
		default:
			ev.time = t.UTC().Truncate(time.Millisecond)
		}
	}
	if in.URL == "" {
		v.Add("url", "required", "Every event needs the page URL.")
	} else if !memo.urlValid.of(in.URL, validURL) {
		v.Add("url", "format", fmt.Sprintf("Must be an http(s) URL or an absolute path of at most %d bytes.", maxURL))
	}
	if in.Referrer != "" && !memo.referrerValid.of(in.Referrer, validURL) {
		v.Add("referrer", "format", fmt.Sprintf("Must be an http(s) URL of at most %d bytes.", maxURL))
	}
	if in.LandingPage != "" && !memo.landingValid.of(in.LandingPage, validURL) {
		v.Add("landing_page", "format", fmt.Sprintf("Must be an http(s) URL or an absolute path of at most %d bytes.", maxURL))
	}
	if in.SessionID != "" && !token(in.SessionID, maxSessionID) {
		v.Add("session_id", "format", fmt.Sprintf("Must be 1 to %d letters, digits, '-' or '_'.", maxSessionID))
	}
	if in.Screen != "" && !screen(in.Screen) {
		v.Add("screen", "format", "Must be WIDTHxHEIGHT, such as 1920x1080.")
	}
	if in.Language != "" && !language(in.Language) {
		v.Add("language", "format", "Must be a language tag such as de-DE.")
	}
	if len(in.Props) > 0 && !bytes.Equal(in.Props, []byte("null")) {
		switch {
		case len(in.Props) > maxProps:
			v.Add("props", "max_length", fmt.Sprintf("Must be at most %d bytes of JSON.", maxProps))
		case in.Props[0] != '{':
			v.Add("props", "type", "Must be a JSON object.")
		case bytes.ContainsAny(in.Props, " \t\r\n"):
			// The decoder has checked the syntax; only spacing goes.
			var compact bytes.Buffer
			if err := json.Compact(&compact, in.Props); err != nil {
				v.Add("props", "json", "Must be valid JSON.")
			} else {
				in.Props = compact.Bytes()
			}
		}
	} else {
		in.Props = nil
	}
	if in.Value != "" {
		val, ok := scaledValue(string(in.Value))
		if !ok {
			v.Add("value", "range", "Must be a number from 0 to 10^12 with at most 4 decimals.")
		}
		ev.value = val
		if in.Currency == "" {
			v.Add("currency", "required", "A value needs its ISO 4217 currency.")
		}
	}
	if in.Currency != "" && !currency(in.Currency) {
		v.Add("currency", "format", "Must be an ISO 4217 code of three capital letters, such as EUR.")
	}
	return ev, v.Errors
}

func decodeFieldErrors(err error) []errs.FieldError {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "event"
		}
		return []errs.FieldError{{Field: field, Rule: "type", Message: "Has the wrong JSON type."}}
	case errors.As(err, &syn):
		return []errs.FieldError{{Field: "event", Rule: "json", Message: "Is not valid JSON."}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return []errs.FieldError{{Field: name, Rule: "unknown", Message: "This field is not accepted here."}}
	default:
		return []errs.FieldError{{Field: "event", Rule: "json", Message: "Must be a JSON object."}}
	}
}

// validURL accepts an absolute path or an absolute http(s) URL.
func validURL(s string) bool {
	if len(s) > maxURL || !utf8.ValidString(s) {
		return false
	}
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
		return !strings.ContainsAny(s, "\x00\r\n\t")
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func printable(s string, n int) bool {
	if s == "" || len(s) > n*4 || utf8.RuneCountInString(s) > n {
		return false
	}
	return text.Check(s, text.Line) == nil
}

func token(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func screen(s string) bool {
	w, h, ok := strings.Cut(s, "x")
	return ok && len(s) <= maxScreen && digits(w, 5) && digits(h, 5)
}

func digits(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func language(s string) bool {
	if s == "" || len(s) > maxLanguage {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func currency(s string) bool {
	if len(s) != maxCurrency {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// scaledValue parses a non-negative decimal with at most 4 decimals into
// ten-thousandths, exactly (no float rounding).
func scaledValue(s string) (int64, bool) {
	if v, ok := scaledDigits(s); ok {
		return v, true
	}
	return scaledRat(s)
}

// scaledDigits reads the common form of a value, digits with up to four
// decimals, without allocating; it reports false for any other form,
// and for a value out of range, both of which scaledRat then reads.
func scaledDigits(s string) (int64, bool) {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 13 || len(frac) > 4 || (dot && frac == "") {
		return 0, false
	}
	var v int64
	for i := range len(whole) {
		if whole[i] < '0' || whole[i] > '9' {
			return 0, false
		}
		v = v*10 + int64(whole[i]-'0')
	}
	for i := range 4 {
		v *= 10
		if i < len(frac) {
			if frac[i] < '0' || frac[i] > '9' {
				return 0, false
			}
			v += int64(frac[i] - '0')
		}
	}
	if v > maxValue*10000 {
		return 0, false
	}
	return v, true
}

// scaledRat is scaledValue for any form of a JSON number: exponents,
// more decimals than four when the ones past the fourth are zeros.
func scaledRat(s string) (int64, bool) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 || r.Cmp(big.NewRat(maxValue, 1)) > 0 {
		return 0, false
	}
	r.Mul(r, big.NewRat(10000, 1))
	if !r.IsInt() {
		return 0, false
	}
	n, err := strconv.ParseInt(r.Num().String(), 10, 64)
	return n, err == nil
}
