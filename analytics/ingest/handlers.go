package ingest

import (
	"errors"
	"fmt"
	"mime"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/analytics/enrich"
	"github.com/stewardhq/steward/analytics/spool"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ipaddr"
)

// HeaderGPC is the Global Privacy Control request header.
const HeaderGPC = "Sec-GPC"

// encodeBufs recycles the buffers rows are encoded into.
var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (m *Module) postEvents(c *fiber.Ctx) error {
	if !acceptedBody(c.Get(fiber.HeaderContentType)) {
		return errs.E(errs.ErrUnsupportedMediaType, "Send events as JSON (application/json, or text/plain from navigator.sendBeacon).")
	}
	ins, decodeErrs, isArray, err := decodeBatch(c.Body(), m.cfg.MaxBatch)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	now := m.deps.Now().UTC().Truncate(time.Millisecond)

	events := make([]event, 0, len(ins))
	var rejected []Rejected
	var memo urlMemo
	for i, in := range ins {
		if len(decodeErrs[i]) > 0 {
			rejected = append(rejected, Rejected{Index: i, Errors: decodeErrs[i]})
			continue
		}
		ev, fieldErrs := m.validateEvent(in, now, &memo)
		if len(fieldErrs) > 0 {
			rejected = append(rejected, Rejected{Index: i, Errors: fieldErrs})
			continue
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return allInvalid(rejected, isArray)
	}
	res := Result{Accepted: len(events), Dropped: Dropped{Invalid: len(rejected)}, Rejected: rejected}
	events, res.Dropped.Duplicate = firstCopies(events)

	s, err := m.subjectOf(c)
	if err != nil {
		return err
	}
	if s.device.Bot {
		res.Dropped.Bot = len(events)
	} else {
		bufp := encodeBufs.Get().(*[]byte)
		defer encodeBufs.Put(bufp)
		buf := (*bufp)[:0]
		recs := make([][]byte, 0, len(events))
		var row Row
		for i := range events {
			stored, err := m.gate(ctx, &s, &events[i], now.UnixMilli(), &row, &memo)
			if err != nil {
				return err
			}
			if !stored {
				res.Dropped.Consent++
				continue
			}
			start := len(buf)
			buf = appendRow(buf, &row)
			recs = append(recs, buf[start:len(buf):len(buf)])
		}
		if cap(buf) <= 1<<20 {
			*bufp = buf[:0]
		}
		if err := m.spool.Append(ctx, recs...); err != nil {
			return m.spoolError(err)
		}
		res.Stored = len(recs)
	}
	if res.Rejected == nil {
		res.Rejected = []Rejected{}
	}
	return c.Status(fiber.StatusAccepted).JSON(res)
}

// pairwiseMax is the largest batch firstCopies checks pair by pair; the
// browser tracker's batches are far smaller, and comparing a few dozen
// ids costs less than building a map.
const pairwiseMax = 64

// firstCopies keeps the first copy of every event id of a batch, in
// order, and returns how many later copies it left out: a client that
// resends an event within one batch has it stored once.
func firstCopies(events []event) ([]event, int) {
	if len(events) < 2 {
		return events, 0
	}
	n := 0
	if len(events) <= pairwiseMax {
	next:
		for i := range events {
			for j := range n {
				if events[j].in.EventID == events[i].in.EventID {
					continue next
				}
			}
			if n != i {
				events[n] = events[i]
			}
			n++
		}
	} else {
		seen := make(map[string]struct{}, len(events))
		for i := range events {
			if _, dup := seen[events[i].in.EventID]; dup {
				continue
			}
			seen[events[i].in.EventID] = struct{}{}
			if n != i {
				events[n] = events[i]
			}
			n++
		}
	}
	return events[:n], len(events) - n
}

// acceptedBody allows JSON and the text/plain bodies navigator.sendBeacon
// sends for a string (a JSON Blob would need a CORS preflight).
func acceptedBody(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == fiber.MIMEApplicationJSON || mt == fiber.MIMETextPlain || strings.HasSuffix(mt, "+json")
}

// allInvalid is the 400 answer when no item is valid. In a batch each
// field is named with its item's index, "[2].event_id".
func allInvalid(rejected []Rejected, isArray bool) error {
	var v errs.ValidationError
	for _, r := range rejected {
		for _, fe := range r.Errors {
			if isArray {
				fe.Field = fmt.Sprintf("[%d].%s", r.Index, fe.Field)
			}
			v.Errors = append(v.Errors, fe)
		}
	}
	return v.Err()
}

func (m *Module) spoolError(err error) error {
	switch {
	case errors.Is(err, spool.ErrFull):
		m.log.Warn("event spool full: refusing events until the warehouse catches up", "spool_bytes", m.spool.Used())
		return errs.Retry(errs.ErrUnavailable, "Event collection is saturated; send the events again later.", defaultRetryAfterFull)
	case errors.Is(err, spool.ErrClosed):
		return errs.Retry(errs.ErrUnavailable, "The server is shutting down; send the events again later.", defaultRetryAfterFull)
	default:
		return fmt.Errorf("spool events: %w", err)
	}
}

// subjectOf identifies the sender and looks up their stored consent.
//
// Only browser traffic is filtered by its user agent. A caller with a
// bearer API token is a back end sending events of its users: its user
// agent (Go-http-client, curl) and its address describe that server, not
// a device of the user, so they neither mark the events as a bot's nor
// are stored with them.
func (m *Module) subjectOf(c *fiber.Ctx) (subject, error) {
	var s subject
	p, signedIn := authz.FromContext(c.UserContext())
	if !signedIn || p.Method != authz.MethodToken {
		s.device = m.ua.Parse(c.Get(fiber.HeaderUserAgent))
		if s.device.Bot {
			return s, nil
		}
		s.ip = ipaddr.Truncate(enrich.ClientIP(c.Context().RemoteAddr().String(), c.Get(fiber.HeaderXForwardedFor), m.cfg.TrustedProxies))
	}
	if vid := c.Cookies(m.cfg.VisitorCookie); validVisitorID(vid) {
		s.visitorID = strings.Clone(vid)
	}
	if signedIn {
		s.userID = p.UserID
	}
	s.gpc = c.Get(HeaderGPC) == "1"
	if s.visitorID == "" && s.userID == "" {
		return s, nil
	}
	purposes, explicit, err := m.deps.Consent.ConsentFor(c.UserContext(), s.visitorID, s.userID)
	if err != nil {
		return s, &errs.Error{Kind: errs.ErrUnavailable, Detail: "Consent could not be checked; send the events again later.",
			RetryAfter: defaultRetryAfterFull, Err: fmt.Errorf("look up consent: %w", err)}
	}
	s.purposes, s.explicit = purposes, explicit
	return s, nil
}

// validVisitorID accepts the ids the consent module issues: 16 to 64
// letters, digits, '-' or '_'.
func validVisitorID(s string) bool {
	return len(s) >= 16 && token(s, 64)
}

func unixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
