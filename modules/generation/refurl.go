package generation

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// maxReferenceURL bounds a reference URL, in bytes.
const maxReferenceURL = 2048

// resolveTimeout bounds the name lookup of one reference URL.
const resolveTimeout = 5 * time.Second

// publicOnly refuses every address that is not public unicast: private,
// loopback, link-local (where cloud metadata services answer, such as
// 169.254.169.254), shared (CGNAT, 100.64.0.0/10), multicast, unspecified,
// documentation and reserved ranges of IPv4, and everything outside
// 2000::/3 of IPv6 (unique local, link-local, loopback, IPv4-mapped and
// NAT64 addresses among them) plus the special ranges inside it. The list
// is the IANA special-purpose registries, kept by code.dny.dev/ssrf.
var publicOnly = ssrf.New(ssrf.WithAnyPort())

// Reference URL rules, the stable names of validation errors.
const (
	ruleURLFormat  = "format"
	ruleURLAddress = "public_address"
	ruleURLResolve = "resolve"
)

// checkReferenceURL applies the rules for a URL a user gives as a
// reference: an absolute https URL on the default port, without
// credentials, whose host is, or resolves only to, public addresses. The
// provider fetches it from its own network, so an address inside a
// network (the cloud metadata service, an internal admin page) must never
// reach it. It returns the rule broken and a sentence for the client, or
// "" when the URL may be used now.
//
// A name can resolve differently later (DNS rebinding), so the check is
// run again just before the URL is handed to a provider, and anything
// Steward itself fetches goes through publicDialer, which checks the
// address it actually connects to.
func checkReferenceURL(ctx context.Context, res Resolver, raw string) (rule, message string) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" || len(raw) > maxReferenceURL ||
		(u.Port() != "" && u.Port() != "443") {
		return ruleURLFormat, "The URL must be an absolute https URL on the default port, without credentials."
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if publicOnly.SafeAddr(a) != nil {
			return ruleURLAddress, "The URL must point at a public address, not a private, loopback, link-local or reserved one."
		}
		return "", ""
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := res.LookupNetIP(ctx, "ip", strings.TrimSuffix(host, "."))
	if err != nil || len(addrs) == 0 {
		return ruleURLResolve, "The URL's host name could not be resolved."
	}
	for _, a := range addrs {
		// A connection to an IPv4-mapped address goes to the IPv4 one.
		if publicOnly.SafeAddr(a.Unmap()) != nil {
			return ruleURLAddress, "The URL's host must resolve to public addresses only, not private, loopback, link-local or reserved ones."
		}
	}
	return "", ""
}

// publicDialer returns a dialer that connects only to public addresses: it
// checks the address of each connection as it is made, after the name
// lookup, so a redirect to an internal host and a name that resolves to a
// public address for a check and to an internal one for the connection
// (DNS rebinding) are both refused.
func publicDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 30 * time.Second,
		Control: func(network, address string, c syscall.RawConn) error {
			return publicOnly.Safe(network, address, c)
		},
	}
}

// isPrivateAddressError reports an error of a connection publicDialer
// refused.
func isPrivateAddressError(err error) bool {
	return errors.Is(err, ssrf.ErrProhibitedIP) || errors.Is(err, ssrf.ErrProhibitedNetwork) || errors.Is(err, ssrf.ErrProhibitedPort)
}
