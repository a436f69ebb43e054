package enrich

import (
	"net/url"
	"regexp"
	"strings"
)

// Placeholders that stand in for personal data found in a URL.
const (
	ScrubEmail = ":email"
	ScrubID    = ":id"
	ScrubToken = ":token"
)

var (
	emailRe = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+`)
	uuidRe  = regexp.MustCompile(`^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$`)
	// numberRe is a number long enough to name someone or something (an
	// account, an order): five digits or more. Shorter numbers are pages,
	// years and versions.
	numberRe = regexp.MustCompile(`^\+?[0-9]{5,}$`)
	// phoneRe is a phone number written with separators; dateRe keeps
	// dates, which it would otherwise take for one.
	phoneRe = regexp.MustCompile(`^\+?[0-9][0-9 ().\-]{6,}[0-9]$`)
	dateRe  = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// ScrubPath returns a URL path with every segment that names a person or
// a secret replaced by a placeholder: e-mail addresses (ScrubEmail),
// UUIDs and long numbers (ScrubID), hex strings and long mixed tokens
// (ScrubToken). Matrix parameters (";jsessionid=...") are cut off.
// "/users/carol@example.com/reset/9f86d081884c7d65" becomes
// "/users/:email/reset/:token"; "/blog/2026/hello-world" stays.
func ScrubPath(p string) string {
	// Most paths hold nothing to scrub; they are returned without an
	// allocation.
	var b *strings.Builder
	start := 0
	for start <= len(p) {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		seg := p[start:end]
		out := seg
		if seg != "" {
			out = scrubSegment(seg)
		}
		if out != seg && b == nil {
			b = &strings.Builder{}
			b.Grow(len(p))
			b.WriteString(p[:start])
		}
		if b != nil {
			b.WriteString(out)
			if end < len(p) {
				b.WriteByte('/')
			}
		}
		start = end + 1
	}
	if b == nil {
		return p
	}
	return b.String()
}

func scrubSegment(seg string) string {
	if j := strings.IndexByte(seg, ';'); j >= 0 {
		seg = seg[:j]
	}
	plain, err := url.PathUnescape(seg)
	if err != nil {
		plain = seg
	}
	if r := scrubValue(plain); r != "" {
		return r
	}
	return seg
}

// scrubValue returns the placeholder for a value that is, or holds,
// personal data or a secret, and "" for one that is neither.
func scrubValue(v string) string {
	// The checks below need an '@', five digits or twelve characters;
	// short words skip the patterns.
	if len(v) < 12 && strings.IndexByte(v, '@') < 0 && digits(v) < 5 {
		return ""
	}
	d := digits(v)
	switch {
	case strings.IndexByte(v, '@') >= 0 && emailRe.MatchString(v):
		return ScrubEmail
	case (len(v) == 32 || len(v) == 36) && uuidRe.MatchString(v),
		d >= 5 && numberRe.MatchString(v),
		d >= 7 && phoneRe.MatchString(v) && !dateRe.MatchString(v):
		return ScrubID
	case len(v) >= 16 && all(v, isHex):
		return ScrubToken
	case len(v) >= 12 && all(v, isTokenChar) && looksRandom(v, d):
		return ScrubToken
	}
	return ""
}

// ScrubURL returns a URL without what names a person or a secret: no user
// info and no fragment, its path as ScrubPath leaves it, and each query
// value that is or holds one replaced by its placeholder. A value that
// cannot be parsed is dropped whole.
func ScrubURL(raw string) string {
	if raw == "" {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	u.Path = ScrubPath(u.Path)
	u.RawPath = ""
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = ""
		} else {
			for k, vs := range q {
				for i, v := range vs {
					if r := scrubValue(v); r != "" {
						vs[i] = r
					}
				}
				q[k] = vs
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// ScrubText replaces every e-mail address inside free text, such as a
// campaign name, with ScrubEmail, and a value that is wholly an id or a
// token with its placeholder.
func ScrubText(s string) string {
	if s == "" {
		return s
	}
	if strings.IndexByte(s, '@') >= 0 {
		s = emailRe.ReplaceAllString(s, ScrubEmail)
	}
	if r := scrubValue(s); r != "" && r != ScrubEmail {
		return r
	}
	return s
}

// all reports whether every byte of s passes ok.
func all(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isTokenChar accepts the URL-safe characters reset links, session ids,
// API keys and prefixed ids ("usr_3f9a...") are made of.
func isTokenChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("_-.~=", c) >= 0
}

func digits(s string) int {
	n := 0
	for _, c := range s {
		if c >= '0' && c <= '9' {
			n++
		}
	}
	return n
}

// looksRandom tells a token from a long readable slug
// ("how-to-write-a-good-prompt", "spring-launch-2026"): some run between
// separators is long and mixes letters with digits or upper with lower
// case, or is too long to be a word, or digits make up much of the value.
func looksRandom(s string, digitCount int) bool {
	var lower, upper, digit, n int
	for i := 0; i <= len(s); i++ {
		if i < len(s) && !strings.ContainsRune("-_.~=", rune(s[i])) {
			switch c := s[i]; {
			case c >= 'a' && c <= 'z':
				lower++
			case c >= 'A' && c <= 'Z':
				upper++
			case c >= '0' && c <= '9':
				digit++
			}
			n++
			continue
		}
		// The end of a run between separators.
		switch {
		case n >= 24:
			return true
		case n >= 12 && digit > 0 && lower+upper > 0:
			return true
		case n >= 16 && lower >= 3 && upper >= 3:
			return true
		}
		lower, upper, digit, n = 0, 0, 0, 0
	}
	return digitCount*3 >= len(s) && digitCount < len(s)
}
