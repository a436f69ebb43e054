package enrich

import (
	"strings"
	"sync"

	"github.com/mileusna/useragent"
)

// Device classes reported by ParseUA.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
	DeviceOther   = "other"
)

// Device is the parsed, coarse form of a user agent: what the events table
// and the consent proof keep instead of the raw string, which is detailed
// enough to help fingerprint a browser.
type Device struct {
	// Browser is the browser family ("Chrome", "Firefox").
	Browser string
	// BrowserVersion is the major version ("126").
	BrowserVersion string
	// BrowserLabel is the family and major version, "Chrome 126", the
	// form the events table stores.
	BrowserLabel string
	// OS is the operating system family ("Windows", "iOS").
	OS string
	// Class is desktop, mobile, tablet, bot or other.
	Class string
	// Bot is true for crawlers, monitors and scripted clients.
	Bot bool
}

// Family returns the browser family alone, the reduced form the consent
// policy's family_only transform keeps.
func (d Device) Family() string { return d.Browser }

// String returns "Browser Version (OS, class)", the form stored in consent
// proof records.
func (d Device) String() string {
	b := d.Browser
	if b == "" {
		b = "unknown"
	}
	if d.BrowserVersion != "" {
		b += " " + d.BrowserVersion
	}
	os := d.OS
	if os == "" {
		os = "unknown"
	}
	return b + " (" + os + ", " + d.Class + ")"
}

// UAParser parses user agents with a bounded cache: a site's traffic comes
// from a few thousand distinct user agents, and parsing one costs far more
// than a map lookup.
type UAParser struct {
	rules *Rules
	mu    sync.RWMutex
	cache map[string]Device
	max   int
}

// DefaultUACacheSize bounds the user agent cache when NewUAParser gets 0.
const DefaultUACacheSize = 10_000

// maxUALength is the longest user agent parsed; longer ones are cut
// before parsing and caching so a client cannot grow the cache's memory
// with huge keys.
const maxUALength = 512

// NewUAParser returns a parser caching up to size user agents; bots are
// detected with the patterns of rules as well as the parser's own.
func NewUAParser(rules *Rules, size int) *UAParser {
	if size <= 0 {
		size = DefaultUACacheSize
	}
	return &UAParser{rules: rules, cache: make(map[string]Device, 256), max: size}
}

// Parse returns the device of a user agent.
func (p *UAParser) Parse(ua string) Device {
	ua = limit(ua, maxUALength)
	p.mu.RLock()
	d, ok := p.cache[ua]
	p.mu.RUnlock()
	if ok {
		return d
	}
	d = p.parse(ua)
	p.mu.Lock()
	if len(p.cache) >= p.max {
		// Dropping an arbitrary entry keeps the bound; a real browser's
		// user agent comes back soon enough to be cached again.
		for k := range p.cache {
			delete(p.cache, k)
			break
		}
	}
	// The key may point into a request buffer that is reused.
	p.cache[strings.Clone(ua)] = d
	p.mu.Unlock()
	return d
}

func (p *UAParser) parse(ua string) Device {
	u := useragent.Parse(ua)
	d := Device{
		Browser: strings.Clone(u.Name),
		OS:      strings.Clone(u.OS),
		Bot:     u.Bot || p.rules.IsBot(ua),
	}
	if maj, _, _ := strings.Cut(u.Version, "."); maj != "" {
		d.BrowserVersion = strings.Clone(maj)
	}
	d.BrowserLabel = d.Browser
	if d.Browser != "" && d.BrowserVersion != "" {
		d.BrowserLabel = d.Browser + " " + d.BrowserVersion
	}
	switch {
	case d.Bot:
		d.Class = DeviceBot
	case u.Tablet:
		d.Class = DeviceTablet
	case u.Mobile:
		d.Class = DeviceMobile
	case u.Desktop:
		d.Class = DeviceDesktop
	default:
		d.Class = DeviceOther
	}
	return d
}
