// Package enrich provides the enrichment steps of analytics ingestion: user
// agent parsing into browser, OS and device class (cached), bot detection,
// attribution (UTM parameters, ad click ids, referrer source and GA4's
// default channel grouping) and the reductions the consent policy asks for
// (path only, host only; IP addresses are truncated by package ipaddr).
//
// The attribution and bot rules are data, in the embedded rules.json, so
// that a new referrer site, click id or crawler needs no code change.
package enrich

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

//go:embed rules.json
var rulesJSON []byte

// Rules holds the compiled attribution and bot rules. It is read-only after
// LoadRules and safe for concurrent use.
type Rules struct {
	hostMu sync.RWMutex
	hosts  map[string]hostMatch
	attrMu sync.RWMutex
	attrs  map[AttributionInput]Attribution

	sources  []sourceRule
	byName   map[string]string // source name -> category
	clickIDs []ClickIDRule
	paid     *regexp.Regexp
	channels []channelRule
	fallback string
	bots     []string
}

// ClickIDRule maps an ad click id parameter to the source and medium an
// ad platform's auto-tagging implies.
type ClickIDRule struct {
	Param  string `json:"param"`
	Source string `json:"source"`
	Medium string `json:"medium"`
}

type rulesFile struct {
	Comment string `json:"comment"`
	Sources []struct {
		Source   string   `json:"source"`
		Category string   `json:"category"`
		Domains  []string `json:"domains"`
	} `json:"sources"`
	ClickIDs        []ClickIDRule `json:"click_ids"`
	PaidMedium      string        `json:"paid_medium"`
	Channels        []condFile    `json:"channels"`
	FallbackChannel string        `json:"fallback_channel"`
	Bots            []string      `json:"bots"`
}

// condFile is one condition of a channel rule as written in rules.json: a
// test of one field, or a group of conditions (all of them, or any).
type condFile struct {
	Channel  string     `json:"channel,omitempty"`
	Field    string     `json:"field,omitempty"`
	In       []string   `json:"in,omitempty"`
	Contains string     `json:"contains,omitempty"`
	Regex    string     `json:"regex,omitempty"`
	Category string     `json:"category,omitempty"`
	Paid     bool       `json:"paid,omitempty"`
	All      []condFile `json:"all,omitempty"`
	Any      []condFile `json:"any,omitempty"`
}

// LoadRules compiles the embedded rules.
func LoadRules() (*Rules, error) {
	return parseRules(rulesJSON)
}

func parseRules(raw []byte) (*Rules, error) {
	var f rulesFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("enrichment rules: %w", err)
	}
	r := &Rules{
		byName: map[string]string{}, clickIDs: f.ClickIDs, fallback: f.FallbackChannel,
		hosts: map[string]hostMatch{}, attrs: map[AttributionInput]Attribution{},
	}
	for _, s := range f.Sources {
		if s.Source == "" || s.Category == "" || len(s.Domains) == 0 {
			return nil, fmt.Errorf("enrichment rules: source %q needs a name, a category and domains", s.Source)
		}
		r.byName[s.Source] = s.Category
		for _, d := range s.Domains {
			r.sources = append(r.sources, newSourceRule(s.Source, s.Category, d))
		}
	}
	paid, err := regexp.Compile(f.PaidMedium)
	if err != nil {
		return nil, fmt.Errorf("enrichment rules: paid_medium: %w", err)
	}
	r.paid = paid
	for i, c := range f.Channels {
		if c.Channel == "" {
			return nil, fmt.Errorf("enrichment rules: channel rule %d has no channel name", i)
		}
		cond, err := compileCond(c, true)
		if err != nil {
			return nil, fmt.Errorf("enrichment rules: channel %s: %w", c.Channel, err)
		}
		r.channels = append(r.channels, channelRule{name: c.Channel, cond: cond})
	}
	if r.fallback == "" {
		return nil, fmt.Errorf("enrichment rules: fallback_channel is empty")
	}
	for _, b := range f.Bots {
		r.bots = append(r.bots, strings.ToLower(b))
	}
	return r, nil
}

// sourceRule matches a referrer host. A domain ending in ".*" matches the
// name under any public suffix ("google.*" matches google.de and
// google.co.uk); any other domain matches itself and its subdomains.
type sourceRule struct {
	source, category string
	domain           string
	anySuffix        bool
}

func newSourceRule(source, category, domain string) sourceRule {
	if name, ok := strings.CutSuffix(domain, ".*"); ok {
		return sourceRule{source: source, category: category, domain: name, anySuffix: true}
	}
	return sourceRule{source: source, category: category, domain: domain}
}

func (s sourceRule) match(host string) bool {
	if !s.anySuffix {
		return isDomainOrSub(host, s.domain)
	}
	// Find the name as a whole label followed only by suffix-like labels
	// (two or three letters, as in co.uk, com.au, de).
	for rest := host; ; {
		i := strings.Index(rest, s.domain)
		if i < 0 {
			return false
		}
		start := len(host) - len(rest) + i
		end := start + len(s.domain)
		if (start == 0 || host[start-1] == '.') && end < len(host) && host[end] == '.' && suffixLike(host[end+1:]) {
			return true
		}
		rest = rest[i+1:]
	}
}

// isDomainOrSub reports whether host is domain or one of its subdomains.
func isDomainOrSub(host, domain string) bool {
	if !strings.HasSuffix(host, domain) {
		return false
	}
	return len(host) == len(domain) || host[len(host)-len(domain)-1] == '.'
}

// suffixLike reports whether every label of s has two or three
// characters.
func suffixLike(s string) bool {
	for s != "" {
		label, rest, _ := strings.Cut(s, ".")
		if len(label) < 2 || len(label) > 3 {
			return false
		}
		s = rest
	}
	return true
}

// hostMatch is the cached answer of lookupHost.
type hostMatch struct {
	source, category string
	ok               bool
}

// lookupHost returns the known source and category of a referrer host.
// Answers are cached: a site's referrers come from few hosts, and the
// rules are scanned in order.
func (r *Rules) lookupHost(host string) (source, category string, ok bool) {
	r.hostMu.RLock()
	m, hit := r.hosts[host]
	r.hostMu.RUnlock()
	if hit {
		return m.source, m.category, m.ok
	}
	for _, s := range r.sources {
		if s.match(host) {
			m = hostMatch{source: s.source, category: s.category, ok: true}
			break
		}
	}
	r.hostMu.Lock()
	if len(r.hosts) >= maxCached {
		clear(r.hosts)
	}
	r.hosts[strings.Clone(host)] = m
	r.hostMu.Unlock()
	return m.source, m.category, m.ok
}

// maxCached bounds each of the rules' caches; a full cache is emptied, so
// hostile input costs recomputation, never unbounded memory.
const maxCached = 10_000

// category returns the source category of a source value, which may be a
// known source name ("google") or a host ("www.google.de").
func (r *Rules) category(source string) string {
	if c, ok := r.byName[source]; ok {
		return c
	}
	if _, c, ok := r.lookupHost(source); ok {
		return c
	}
	return ""
}

// IsBot reports whether a user agent belongs to a crawler, monitor or
// scripted client. An empty user agent counts as a bot: every browser
// sends one.
func (r *Rules) IsBot(ua string) bool {
	if strings.TrimSpace(ua) == "" {
		return true
	}
	lower := strings.ToLower(ua)
	for _, b := range r.bots {
		if strings.Contains(lower, b) {
			return true
		}
	}
	return false
}
