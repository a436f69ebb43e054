package accounts

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mileusna/useragent"
	"golang.org/x/text/language"

	"github.com/stewardhq/steward/internal/text"
)

// maxNameRunes bounds a display name.
const maxNameRunes = 100

// maxAvatarURL bounds a stored avatar URL, in bytes; longer ones are
// dropped rather than cut, since a cut URL is broken.
const maxAvatarURL = 2048

// normalizeEmail trims and lower-cases an address, so one mailbox maps to
// one account. (The local part is case-sensitive in theory; no provider
// Steward's users sign in with treats it so.)
func normalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// checkName applies the rules for a display name set by its owner and
// returns the name to store (trimmed), or the rule it breaks and why.
func checkName(s string) (name, rule, message string) {
	name = strings.TrimSpace(s)
	if name == "" {
		return "", "required", "Must not be empty."
	}
	if p := text.Check(name, text.Line); p != nil {
		return "", p.Rule, p.Message
	}
	if n := utf8.RuneCountInString(name); n > maxNameRunes {
		return "", "max_length", fmt.Sprintf("Must be at most %d characters (got %d).", maxNameRunes, n)
	}
	return name, "", ""
}

// cleanName makes a display name received from Google fit the same rules:
// control characters become spaces and the name is cut to the limit.
func cleanName(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || text.IsBidiControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > maxNameRunes {
		s = strings.TrimSpace(string([]rune(s)[:maxNameRunes]))
	}
	return s
}

// cleanAvatar keeps an https avatar URL of sane length and drops anything
// else.
func cleanAvatar(s string) string {
	if len(s) > maxAvatarURL || !strings.HasPrefix(s, "https://") {
		return ""
	}
	return s
}

// languages is the configured list of supported interface languages.
type languages struct {
	names   []string // as configured, canonical BCP 47
	tags    []language.Tag
	matcher language.Matcher
}

func newLanguages(names []string) (languages, error) {
	var l languages
	for _, n := range names {
		t, err := language.Parse(n)
		if err != nil {
			return languages{}, fmt.Errorf("supported language %q is not a BCP 47 tag: %w", n, err)
		}
		l.names = append(l.names, t.String())
		l.tags = append(l.tags, t)
	}
	if len(l.tags) == 0 {
		return languages{}, fmt.Errorf("at least one supported language is required")
	}
	l.matcher = language.NewMatcher(l.tags)
	return l, nil
}

// fromAcceptLanguage picks the supported language that best matches an
// Accept-Language header, or the first supported one.
func (l languages) fromAcceptLanguage(header string) string {
	prefs, _, err := language.ParseAcceptLanguage(header)
	if err != nil || len(prefs) == 0 {
		return l.names[0]
	}
	_, i, conf := l.matcher.Match(prefs...)
	if conf == language.No {
		return l.names[0]
	}
	return l.names[i]
}

// check returns the canonical form of a language a subject chose, or the
// rule it breaks and why.
func (l languages) check(s string) (tag, rule, message string) {
	t, err := language.Parse(s)
	if err != nil {
		return "", "format", "Must be a BCP 47 language tag such as \"en\" or \"pt-BR\"."
	}
	if i := slices.Index(l.names, t.String()); i >= 0 {
		return l.names[i], "", ""
	}
	return "", "supported", "Must be one of the supported languages: " + strings.Join(l.names, ", ") + "."
}

// Browsers and systems a UA family may name. Anything else is "other": a
// user agent string is free text, and only known names are sure to carry
// nothing personal.
var (
	knownBrowsers = []string{
		useragent.Chrome, useragent.Firefox, useragent.Safari, useragent.MobileSafari, useragent.Edge,
		useragent.Opera, useragent.OperaMini, useragent.OperaTouch, useragent.Vivaldi,
		useragent.SamsungBrowser, useragent.InternetExplorer, useragent.HeadlessChrome,
		useragent.FacebookApp, useragent.InstagramApp, useragent.TiktokApp,
	}
	knownSystems = []string{
		useragent.Windows, useragent.MacOS, useragent.IOS, useragent.Android, useragent.Linux,
		useragent.ChromeOS, useragent.FreeBSD, useragent.WindowsPhone, useragent.BlackBerry, useragent.Harmony,
	}
)

// uaFamily reduces a User-Agent header to its browser and system family,
// such as "Chrome on macOS", with no versions.
func uaFamily(ua string) string {
	if strings.TrimSpace(ua) == "" {
		return "unknown"
	}
	p := useragent.Parse(ua)
	if p.Bot {
		return "bot"
	}
	browser := "other"
	if slices.Contains(knownBrowsers, p.Name) {
		browser = p.Name
	}
	if slices.Contains(knownSystems, p.OS) {
		return browser + " on " + p.OS
	}
	return browser
}
