package enrich

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// PathOnly returns the path of a URL or path, without scheme, host, query
// string or fragment: the consent policy's path_only reduction. Query
// strings carry tokens, emails and campaign parameters, so no stored path
// keeps one.
func PathOnly(raw string) string {
	if raw == "" {
		return ""
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.Path == "" && u.Host != "" {
		return "/"
	}
	return u.EscapedPath()
}

// HostOnly returns the lower-cased host of a URL: the policy's host_only
// reduction.
func HostOnly(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// ClientIP returns the client address of a request from its peer address,
// trusting X-Forwarded-For only when the peer is a trusted proxy. The
// first untrusted address, counting from the right, is the client.
func ClientIP(peer, forwardedFor string, trusted []netip.Prefix) string {
	host := peer
	if h, _, err := net.SplitHostPort(peer); err == nil {
		host = h
	}
	if forwardedFor == "" || !isTrusted(host, trusted) {
		return host
	}
	parts := strings.Split(forwardedFor, ",")
	for i := len(parts) - 1; i >= 0; i-- {
		candidate := strings.TrimSpace(parts[i])
		if !isTrusted(candidate, trusted) {
			return candidate
		}
	}
	return host
}

func isTrusted(ip string, trusted []netip.Prefix) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
