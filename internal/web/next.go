package web

import (
	"net/url"
	"strings"
)

// ParamNext names the page of this site a form sign-in or sign-out returns
// to, as a query parameter or a form field: the page that asked someone to
// sign in (again).
const ParamNext = "next"

// maxNextLength bounds a return path; a longer one is not followed.
const maxNextLength = 512

// LocalPath returns p when it is a path on this site, such as
// "/privacy/delete?x=1", and "" otherwise: a redirect to it can never
// leave the site ("//evil.example", "https://evil.example", "/\evil",
// control characters and overlong paths are refused).
func LocalPath(p string) string {
	if p == "" || len(p) > maxNextLength || p[0] != '/' || strings.HasPrefix(p, "//") ||
		strings.ContainsAny(p, "\\") || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return p
}
