package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/analytics/warehouse"
)

// Row is one event as stored in the warehouse's events table, after the
// consent gate and enrichment.
type Row struct {
	EventID         string
	EventTime       time.Time
	ReceivedAt      time.Time
	EventType       string
	EventName       string
	UserID          string // empty is stored as NULL
	VisitorID       string
	SessionID       string
	Path            string
	LandingPage     string
	Referrer        string
	ReferrerHost    string
	Source          string
	Medium          string
	Campaign        string
	Term            string
	Content         string
	Channel         string
	ClickIDType     string
	ClickID         string
	Browser         string
	OS              string
	DeviceClass     string
	Screen          string
	Language        string
	IPTruncated     string
	ConsentPurposes []string
	// ConversionValue is the value in ten-thousandths of the currency
	// unit, the scale of the Decimal(18, 4) column.
	ConversionValue int64
	Currency        string
	Props           string
}

// column is one column of the events table: its name, the data category
// its COMMENT carries, and how the consent gate clears or reduces it.
type column struct {
	name     string
	category string
	// strip clears the field.
	strip func(r *Row)
	// reduce applies one of the policy's transforms; nil when the column
	// has no reduced form.
	reduce func(r *Row, transform string)
}

// columns lists the events table in insert order. Every category matches
// the column's COMMENT in the migrated schema; Start checks that, so the
// gate cannot drift from the data map.
var columns = []column{
	{name: "event_id", category: "system.operations"},
	{name: "event_time", category: "user.behavior.timestamp"},
	{name: "received_at", category: "user.behavior.timestamp"},
	{name: "event_type", category: "user.behavior.browsing_history", strip: func(r *Row) { r.EventType = "" }},
	{name: "event_name", category: "user.behavior.browsing_history", strip: func(r *Row) { r.EventName = "" }},
	{name: "user_id", category: "user.unique_id", strip: func(r *Row) { r.UserID = "" }},
	{name: "visitor_id", category: "user.unique_id.analytics_id", strip: func(r *Row) { r.VisitorID = "" }},
	{name: "session_id", category: "user.device.session_id", strip: func(r *Row) { r.SessionID = "" }},
	{name: "path", category: "user.behavior.browsing_history", strip: func(r *Row) { r.Path = "" }, reduce: reducePath(func(r *Row) *string { return &r.Path })},
	{name: "landing_page", category: "user.behavior.attribution.landing_page", strip: func(r *Row) { r.LandingPage = "" }, reduce: reducePath(func(r *Row) *string { return &r.LandingPage })},
	{name: "referrer", category: "user.behavior.browsing_history.referrer", strip: func(r *Row) { r.Referrer = "" }, reduce: func(r *Row, t string) {
		if t == transformHostOnly {
			// The host stays in referrer_host; the URL itself goes.
			r.Referrer = ""
		}
	}},
	{name: "referrer_host", category: "user.behavior.browsing_history.referrer", strip: func(r *Row) { r.ReferrerHost = "" }},
	{name: "source", category: "user.behavior.attribution.utm", strip: func(r *Row) { r.Source = "" }},
	{name: "medium", category: "user.behavior.attribution.utm", strip: func(r *Row) { r.Medium = "" }},
	{name: "campaign", category: "user.behavior.attribution.utm", strip: func(r *Row) { r.Campaign = "" }},
	{name: "term", category: "user.behavior.attribution.utm", strip: func(r *Row) { r.Term = "" }},
	{name: "content", category: "user.behavior.attribution.utm", strip: func(r *Row) { r.Content = "" }},
	{name: "channel", category: "user.behavior.browsing_history.referrer", strip: func(r *Row) { r.Channel = "" }},
	{name: "click_id_type", category: "user.behavior.attribution.click_id", strip: func(r *Row) { r.ClickIDType = "" }},
	{name: "click_id", category: "user.behavior.attribution.click_id", strip: func(r *Row) { r.ClickID = "" }},
	{name: "browser", category: "user.device.browser", strip: func(r *Row) { r.Browser = "" }},
	{name: "os", category: "user.device.browser", strip: func(r *Row) { r.OS = "" }, reduce: familyOnly(func(r *Row) { r.OS = "" })},
	{name: "device_class", category: "user.device.browser", strip: func(r *Row) { r.DeviceClass = "" }, reduce: familyOnly(func(r *Row) { r.DeviceClass = "" })},
	{name: "screen", category: "user.device.browser", strip: func(r *Row) { r.Screen = "" }, reduce: familyOnly(func(r *Row) { r.Screen = "" })},
	{name: "language", category: "user.device.browser", strip: func(r *Row) { r.Language = "" }, reduce: familyOnly(func(r *Row) { r.Language = "" })},
	{name: "ip_truncated", category: "user.device.ip_address", strip: func(r *Row) { r.IPTruncated = "" }},
	{name: "consent_purposes", category: "user.consent.record"},
	{name: "conversion_value", category: "user.financial.price"},
	{name: "currency", category: "user.financial.currency"},
	{name: "props", category: "user.behavior.feature_interaction", strip: func(r *Row) { r.Props = "" }},
}

// Transforms the consent policy names.
const (
	transformPathOnly   = "path_only"
	transformHostOnly   = "host_only"
	transformTruncate   = "truncate"
	transformFamilyOnly = "family_only"
)

func reducePath(field func(r *Row) *string) func(r *Row, t string) {
	return func(r *Row, t string) {
		if t == transformPathOnly {
			p := field(r)
			*p = pathOnly(*p)
		}
	}
}

func familyOnly(clear func(r *Row)) func(r *Row, t string) {
	return func(r *Row, t string) {
		if t == transformFamilyOnly {
			clear(r)
		}
	}
}

// Columns returns the names of the events table's columns in the order
// Values returns them.
func Columns() []string {
	out := make([]string, len(columns))
	for i, c := range columns {
		out[i] = c.name
	}
	return out
}

// ColumnCategories maps every column of the events table to the data
// category the gate treats it as.
func ColumnCategories() map[string]string {
	out := make(map[string]string, len(columns))
	for _, c := range columns {
		out[c.name] = c.category
	}
	return out
}

// Values returns the row's values in the order of Columns, typed as the
// warehouse expects them.
func (r *Row) Values() []any {
	var userID any
	if r.UserID != "" {
		userID = r.UserID
	}
	purposes := r.ConsentPurposes
	if purposes == nil {
		purposes = []string{}
	}
	return []any{
		r.EventID, r.EventTime, r.ReceivedAt, r.EventType, r.EventName, userID, r.VisitorID,
		r.SessionID, r.Path, r.LandingPage, r.Referrer, r.ReferrerHost, r.Source, r.Medium, r.Campaign,
		r.Term, r.Content, r.Channel, r.ClickIDType, r.ClickID, r.Browser, r.OS, r.DeviceClass,
		r.Screen, r.Language, r.IPTruncated, purposes, decimal.New(r.ConversionValue, -4), r.Currency, r.Props,
	}
}

// appendRowsTSV appends rows as TabSeparated text for
// warehouse.TextInserter, one line per row with the values of Values in
// the order of Columns.
func appendRowsTSV(b []byte, rows []Row) []byte {
	for i := range rows {
		b = rows[i].appendTSV(b)
	}
	return b
}

// textSizeHint guesses the bytes of the text of a batch from its spooled
// records, which hold the same strings with shorter numbers and no tabs.
func textSizeHint(records [][]byte) int {
	n := 0
	for _, r := range records {
		n += len(r) + 96
	}
	return n
}

func (r *Row) appendTSV(b []byte) []byte {
	b = warehouse.AppendTSVString(b, r.EventID)
	b = append(b, '\t')
	b = warehouse.AppendTSVTime(b, r.EventTime)
	b = append(b, '\t')
	b = warehouse.AppendTSVTime(b, r.ReceivedAt)
	for _, s := range [...]string{r.EventType, r.EventName} {
		b = append(b, '\t')
		b = warehouse.AppendTSVString(b, s)
	}
	b = append(b, '\t')
	if r.UserID == "" {
		b = append(b, warehouse.TSVNull...)
	} else {
		b = warehouse.AppendTSVString(b, r.UserID)
	}
	for _, s := range [...]string{
		r.VisitorID, r.SessionID, r.Path, r.LandingPage, r.Referrer, r.ReferrerHost, r.Source, r.Medium,
		r.Campaign, r.Term, r.Content, r.Channel, r.ClickIDType, r.ClickID, r.Browser, r.OS, r.DeviceClass,
		r.Screen, r.Language, r.IPTruncated,
	} {
		b = append(b, '\t')
		b = warehouse.AppendTSVString(b, s)
	}
	b = append(b, '\t')
	b = warehouse.AppendTSVStrings(b, r.ConsentPurposes)
	b = append(b, '\t')
	b = warehouse.AppendTSVDecimal(b, r.ConversionValue, 4)
	for _, s := range [...]string{r.Currency, r.Props} {
		b = append(b, '\t')
		b = warehouse.AppendTSVString(b, s)
	}
	return append(b, '\n')
}

// rowFormat is the version byte of encoded rows; a spool written by a
// later format is refused rather than misread.
const rowFormat = 1

// appendRow encodes r for the spool: a version byte, two times as Unix
// milliseconds, the value, then every string with a length in front.
func appendRow(b []byte, r *Row) []byte {
	b = append(b, rowFormat)
	b = binary.AppendVarint(b, r.EventTime.UnixMilli())
	b = binary.AppendVarint(b, r.ReceivedAt.UnixMilli())
	b = binary.AppendVarint(b, r.ConversionValue)
	for _, s := range r.strings() {
		b = binary.AppendUvarint(b, uint64(len(*s)))
		b = append(b, *s...)
	}
	b = binary.AppendUvarint(b, uint64(len(r.ConsentPurposes)))
	for _, p := range r.ConsentPurposes {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// strings lists the string fields in their encoded order.
func (r *Row) strings() [26]*string {
	return [26]*string{
		&r.EventID, &r.EventType, &r.EventName, &r.UserID, &r.VisitorID, &r.SessionID, &r.Path,
		&r.LandingPage, &r.Referrer, &r.ReferrerHost, &r.Source, &r.Medium, &r.Campaign, &r.Term,
		&r.Content, &r.Channel, &r.ClickIDType, &r.ClickID, &r.Browser, &r.OS, &r.DeviceClass,
		&r.Screen, &r.Language, &r.IPTruncated, &r.Currency, &r.Props,
	}
}

var errBadRow = errors.New("malformed spooled row")

// decodeRow decodes a row written by appendRow. The strings share one
// copy of b's bytes.
func decodeRow(b []byte, r *Row) error {
	// One string conversion for the whole record: every field is then a
	// slice of it, without an allocation each.
	return decodeRowFrom(b, string(b), r)
}

// decodeRowFrom is decodeRow with data, a copy of b as a string, given:
// the strings of the row are slices of it. When the purposes decoded
// equal those r holds on entry, r keeps that slice.
func decodeRowFrom(b []byte, data string, r *Row) error {
	if len(b) == 0 || b[0] != rowFormat {
		return fmt.Errorf("%w: unknown format", errBadRow)
	}
	pos := 1
	varint := func() (int64, bool) {
		v, n := binary.Varint(b[pos:])
		if n <= 0 {
			return 0, false
		}
		pos += n
		return v, true
	}
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(b[pos:])
		if n <= 0 {
			return 0, false
		}
		pos += n
		return v, true
	}
	str := func() (string, bool) {
		v, ok := uvarint()
		if !ok || v > uint64(len(b)-pos) {
			return "", false
		}
		s := data[pos : pos+int(v)]
		pos += int(v)
		return s, true
	}
	et, ok1 := varint()
	rt, ok2 := varint()
	val, ok3 := varint()
	if !ok1 || !ok2 || !ok3 {
		return errBadRow
	}
	r.EventTime = time.UnixMilli(et).UTC()
	r.ReceivedAt = time.UnixMilli(rt).UTC()
	r.ConversionValue = val
	for _, p := range r.strings() {
		s, ok := str()
		if !ok {
			return errBadRow
		}
		*p = s
	}
	v, ok := uvarint()
	if !ok || v > 16 {
		return errBadRow
	}
	// The rows of a batch mostly carry the same purposes: a slice equal
	// to the one r holds already is kept rather than made again.
	prev := r.ConsentPurposes
	same := len(prev) == int(v)
	r.ConsentPurposes = r.ConsentPurposes[:0:0]
	for i := range int(v) {
		s, ok := str()
		if !ok {
			return errBadRow
		}
		if same && prev[i] == s {
			continue
		}
		if same {
			same = false
			r.ConsentPurposes = append(make([]string, 0, v), prev[:i]...)
		}
		r.ConsentPurposes = append(r.ConsentPurposes, s)
	}
	switch {
	case same && prev != nil:
		r.ConsentPurposes = prev
	case r.ConsentPurposes == nil:
		r.ConsentPurposes = []string{}
	}
	if pos != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", errBadRow, len(b)-pos)
	}
	return nil
}
