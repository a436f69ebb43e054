// Package emailaddr holds Steward's one check of an e-mail address that a
// person or an operator typed: the dev sign-in, `steward token create`,
// the feedback form, a ticket's contact address and a privacy request
// filed for someone else all accept the same addresses.
package emailaddr

import (
	"net/mail"
	"strings"
)

// MaxLength is the longest address accepted, in bytes: the limit of a
// forward or reverse path in SMTP (RFC 5321) less its angle brackets.
const MaxLength = 254

// Valid reports whether s is a bare address such as ann@example.com: what
// net/mail parses as an address with no display name, no angle brackets
// and no surrounding space, of at most MaxLength bytes, whose domain has a
// dot that does not end it. The dotted domain refuses what mail servers
// on the internet cannot reach ("ann@localhost") and the typo of a
// missing top-level domain.
func Valid(s string) bool {
	if len(s) > MaxLength {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	domain := s[strings.LastIndexByte(s, '@')+1:]
	return strings.Contains(domain, ".") && !strings.HasSuffix(domain, ".")
}
