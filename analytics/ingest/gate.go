package ingest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/stewardhq/steward/analytics/enrich"
	"github.com/stewardhq/steward/policies"
)

// subject is what the gate knows about the sender of a request.
type subject struct {
	visitorID string
	userID    string
	purposes  []string
	explicit  bool
	gpc       bool
	device    enrich.Device
	ip        string // truncated
}

// plan is a consent decision compiled for the events table: what to do
// with each column.
type plan struct {
	drop     bool
	actions  []columnAction
	purposes []string
	// campaign says whether UTM parameters and click ids may be read.
	campaign bool
}

type columnAction struct {
	col       *column
	strip     bool
	transform string
}

// planCache keeps one plan per policy decision. The engine caches its
// decisions and hands out the same decision id for the same input, so
// the number of plans is bounded by the engine's cache.
type planCache struct {
	mu sync.RWMutex
	m  map[planKey]*plan
}

type planKey struct{ id, revision string }

func (c *planCache) get(d policies.ConsentDecision) *plan {
	key := planKey{d.DecisionID, d.Revision}
	c.mu.RLock()
	p, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return p
	}
	p = compilePlan(d)
	c.mu.Lock()
	if c.m == nil || len(c.m) > 4096 {
		c.m = map[planKey]*plan{}
	}
	c.m[key] = p
	c.mu.Unlock()
	return p
}

func compilePlan(d policies.ConsentDecision) *plan {
	p := &plan{drop: d.Store == policies.StoreDrop, purposes: slices.Clone(d.Purposes)}
	for i := range columns {
		c := &columns[i]
		a := columnAction{col: c}
		if slices.Contains(d.Strip, c.category) {
			a.strip = true
		} else if t, ok := d.Transform[c.category]; ok && t != policies.TransformNone {
			a.transform = t
		}
		if a.strip || a.transform != "" {
			p.actions = append(p.actions, a)
		}
	}
	p.campaign = !slices.Contains(d.Strip, "user.behavior.attribution.utm") ||
		!slices.Contains(d.Strip, "user.behavior.attribution.click_id")
	return p
}

// gate decides and builds the stored row of a valid event. It returns
// false when consent (or the event type) means the event is not stored.
func (m *Module) gate(ctx context.Context, s *subject, ev *event, received int64, row *Row, memo *urlMemo) (bool, error) {
	d, err := m.deps.Policy.Consent(ctx, policies.ConsentInput{
		PurposesGranted:   s.purposes,
		EventType:         ev.in.Type,
		GPC:               s.gpc,
		ExplicitMarketing: s.explicit,
	})
	if err != nil {
		return false, fmt.Errorf("consent decision: %w", err)
	}
	p := m.plans.get(d)
	if p.drop {
		return false, nil
	}
	in := &ev.in
	page := in.LandingPage
	if page == "" {
		page = in.URL
	}
	attr := m.rules.Attribute(enrich.AttributionInput{PageURL: page, Referrer: in.Referrer, UseCampaign: p.campaign})
	*row = Row{
		EventID:   in.EventID,
		EventTime: ev.time,
		EventType: in.Type,
		EventName: in.Name,
		UserID:    s.userID,
		VisitorID: s.visitorID,
		SessionID: in.SessionID,
		// Personal data in URLs never reaches storage: paths lose their
		// query strings and every segment that is an e-mail address, an
		// id or a token, the referrer the same in its path and query
		// values, and campaign fields any e-mail address they carry.
		Path:        memo.path.of(in.URL, scrubbedPath),
		LandingPage: memo.landingPath.of(in.LandingPage, scrubbedPath),
		// The full referrer is kept only when its category's richest
		// tier is in effect; the plan reduces it to the host otherwise.
		Referrer:        memo.referrer.of(in.Referrer, enrich.ScrubURL),
		ReferrerHost:    attr.ReferrerHost,
		Source:          enrich.ScrubText(attr.Source),
		Medium:          enrich.ScrubText(attr.Medium),
		Campaign:        enrich.ScrubText(attr.Campaign),
		Term:            enrich.ScrubText(attr.Term),
		Content:         enrich.ScrubText(attr.Content),
		Channel:         attr.Channel,
		ClickIDType:     attr.ClickIDType,
		ClickID:         attr.ClickID,
		Browser:         s.device.BrowserLabel,
		OS:              s.device.OS,
		DeviceClass:     s.device.Class,
		Screen:          in.Screen,
		Language:        in.Language,
		IPTruncated:     s.ip,
		ConsentPurposes: p.purposes,
		ConversionValue: ev.value,
		Currency:        in.Currency,
		Props:           string(in.Props),
	}
	row.ReceivedAt = row.EventTime
	if received > 0 {
		row.ReceivedAt = unixMilli(received)
	}
	for _, a := range p.actions {
		switch {
		case a.strip:
			if a.col.strip != nil {
				a.col.strip(row)
			}
		case a.col.name == "browser" && a.transform == transformFamilyOnly:
			row.Browser = s.device.Family()
		case a.col.reduce != nil:
			a.col.reduce(row, a.transform)
		}
	}
	return true, nil
}

// pathOnly is enrich.PathOnly, named here for the column table.
func pathOnly(s string) string { return enrich.PathOnly(s) }

// scrubbedPath is the path of a URL as stored: without its query string,
// and scrubbed of personal data.
func scrubbedPath(s string) string { return enrich.ScrubPath(enrich.PathOnly(s)) }

// urlMemo keeps, for one request, the last result of each check and
// reduction of a URL field. The events of a batch share their landing
// page and referrer (the session's) and often their page, and parsing
// URLs was most of the CPU time of validating and enriching an event.
// Every function memoized is a pure function of its input.
type urlMemo struct {
	urlValid, referrerValid, landingValid last[bool]
	path, landingPath, referrer           last[string]
}

// last remembers a function's last input and result.
type last[T any] struct {
	in  string
	out T
	set bool
}

// of returns f(in), from memory when in is the last input.
func (l *last[T]) of(in string, f func(string) T) T {
	if !l.set || l.in != in {
		l.in, l.out, l.set = in, f(in), true
	}
	return l.out
}
