package enrich

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Attribution is where a visit came from, as GA4 reports it.
type Attribution struct {
	// Source is utm_source, the source a click id implies, the known name
	// of the referrer site, the referrer host, or "(direct)".
	Source string
	// Medium is utm_medium, the medium a click id implies, "organic" for a
	// search engine referrer, "referral" for any other referrer, or
	// "(none)".
	Medium   string
	Campaign string
	Term     string
	Content  string
	// Channel is GA4's default channel group of source, medium and
	// campaign.
	Channel string
	// ClickIDType names the ad click id parameter found (gclid, fbclid,
	// ...), ClickID holds its value.
	ClickIDType string
	ClickID     string
	// ReferrerHost is the referrer's host, empty for none or an internal
	// referrer.
	ReferrerHost string
}

// AttributionInput is what attribution reads. UseCampaign says whether the
// UTM parameters and click ids of the page URL may be read at all: without
// the marketing purpose they may not, and attribution then rests on the
// referrer host alone.
type AttributionInput struct {
	// PageURL is the full URL of the page, query string included.
	PageURL string
	// Referrer is the document referrer, a full URL or empty.
	Referrer string
	// UseCampaign allows reading UTM parameters and click ids.
	UseCampaign bool
}

// Attribute derives the attribution of a page view. Answers are cached:
// the events of one session share their landing page and referrer.
func (r *Rules) Attribute(in AttributionInput) Attribution {
	if len(in.PageURL)+len(in.Referrer) > 4096 {
		return r.attribute(in)
	}
	r.attrMu.RLock()
	a, ok := r.attrs[in]
	r.attrMu.RUnlock()
	if ok {
		return a
	}
	a = r.attribute(in)
	r.attrMu.Lock()
	if len(r.attrs) >= maxCached {
		clear(r.attrs)
	}
	// The key's strings may point into a request buffer that is reused.
	in.PageURL, in.Referrer = strings.Clone(in.PageURL), strings.Clone(in.Referrer)
	r.attrs[in] = a
	r.attrMu.Unlock()
	return a
}

func (r *Rules) attribute(in AttributionInput) Attribution {
	var a Attribution
	pageHost := ""
	var query url.Values
	if u, err := url.Parse(in.PageURL); err == nil {
		pageHost = strings.ToLower(u.Hostname())
		if in.UseCampaign {
			query = u.Query()
		}
	}
	if ref, err := url.Parse(in.Referrer); err == nil && in.Referrer != "" {
		host := strings.ToLower(ref.Hostname())
		// A referrer on the site itself is navigation, not a source.
		if host != "" && host != pageHost {
			a.ReferrerHost = host
		}
	}

	if query != nil {
		a.Source = clean(query.Get("utm_source"))
		a.Medium = clean(query.Get("utm_medium"))
		a.Campaign = clean(query.Get("utm_campaign"))
		a.Term = clean(query.Get("utm_term"))
		a.Content = clean(query.Get("utm_content"))
		for _, c := range r.clickIDs {
			if v := query.Get(c.Param); v != "" {
				a.ClickIDType, a.ClickID = c.Param, limit(v, 512)
				if a.Source == "" {
					a.Source = c.Source
				}
				if a.Medium == "" {
					a.Medium = c.Medium
				}
				break
			}
		}
	}
	if a.Source == "" && a.ReferrerHost != "" {
		if name, category, ok := r.lookupHost(a.ReferrerHost); ok {
			a.Source = name
			if a.Medium == "" {
				a.Medium = "referral"
				if category == "search" {
					a.Medium = "organic"
				}
			}
		} else {
			a.Source = a.ReferrerHost
		}
	}
	if a.Source == "" {
		a.Source = "(direct)"
	}
	if a.Medium == "" {
		switch {
		case a.Source == "(direct)":
			a.Medium = "(none)"
		case a.ReferrerHost != "":
			a.Medium = "referral"
		default:
			a.Medium = "(not set)"
		}
	}
	a.Channel = r.Channel(a.Source, a.Medium, a.Campaign)
	return a
}

// Channel applies the default channel grouping to a source, medium and
// campaign, compared case-insensitively as GA4 does.
func (r *Rules) Channel(source, medium, campaign string) string {
	v := values{
		source:   strings.ToLower(source),
		medium:   strings.ToLower(medium),
		campaign: strings.ToLower(campaign),
	}
	for _, c := range r.channels {
		if c.cond.eval(r, v) {
			return c.name
		}
	}
	return r.fallback
}

func clean(s string) string { return limit(strings.TrimSpace(s), 256) }

// limit cuts s to at most n bytes without splitting a UTF-8 sequence.
func limit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

type values struct{ source, medium, campaign string }

func (v values) get(field string) string {
	switch field {
	case "source":
		return v.source
	case "medium":
		return v.medium
	default:
		return v.campaign
	}
}

type channelRule struct {
	name string
	cond cond
}

// cond is a compiled condition: a test of one field, or all/any of a list.
type cond struct {
	field    string
	in       []string
	contains string
	re       *regexp.Regexp
	category string
	paid     bool
	all, any []cond
}

func compileCond(f condFile, top bool) (cond, error) {
	c := cond{field: f.Field, contains: strings.ToLower(f.Contains), category: f.Category, paid: f.Paid}
	for _, s := range f.In {
		c.in = append(c.in, strings.ToLower(s))
	}
	if f.Regex != "" {
		re, err := regexp.Compile(f.Regex)
		if err != nil {
			return cond{}, err
		}
		c.re = re
	}
	for _, sub := range f.All {
		sc, err := compileCond(sub, false)
		if err != nil {
			return cond{}, err
		}
		c.all = append(c.all, sc)
	}
	for _, sub := range f.Any {
		sc, err := compileCond(sub, false)
		if err != nil {
			return cond{}, err
		}
		c.any = append(c.any, sc)
	}
	tests := 0
	for _, set := range []bool{len(c.in) > 0, c.contains != "", c.re != nil, c.category != "", c.paid} {
		if set {
			tests++
		}
	}
	groups := len(c.all) + len(c.any)
	switch {
	case !top && f.Channel != "":
		return cond{}, errors.New("a nested condition names a channel")
	case tests > 1:
		return cond{}, fmt.Errorf("condition on %q has %d tests; write one per condition", f.Field, tests)
	case tests == 1 && groups > 0, tests == 0 && groups == 0:
		return cond{}, errors.New("a condition needs exactly one test or a list of conditions")
	case tests == 1 && f.Field != "source" && f.Field != "medium" && f.Field != "campaign":
		return cond{}, fmt.Errorf("unknown field %q (want source, medium or campaign)", f.Field)
	}
	return c, nil
}

func (c cond) eval(r *Rules, v values) bool {
	switch {
	case len(c.all) > 0 || len(c.any) > 0:
		for _, sub := range c.all {
			if !sub.eval(r, v) {
				return false
			}
		}
		if len(c.any) == 0 {
			return true
		}
		for _, sub := range c.any {
			if sub.eval(r, v) {
				return true
			}
		}
		return false
	case len(c.in) > 0:
		return slices.Contains(c.in, v.get(c.field))
	case c.contains != "":
		return strings.Contains(v.get(c.field), c.contains)
	case c.re != nil:
		return c.re.MatchString(v.get(c.field))
	case c.category != "":
		return r.category(v.get(c.field)) == c.category
	case c.paid:
		return r.paid.MatchString(v.get(c.field))
	}
	return false
}
