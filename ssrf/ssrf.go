// Package ssrf keeps hookd from being used to reach addresses it should not:
// loopback, private, link-local and unspecified ones, unless allowed.
package ssrf

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// MaxURLLength is the longest callback URL hookd accepts, in bytes.
const MaxURLLength = 2048

// Blocked returns why addr may not be a target, or "" when it may.
func Blocked(addr netip.Addr) string {
	addr = addr.Unmap()
	switch {
	case addr.IsLoopback():
		return "a loopback address"
	case addr.IsPrivate():
		return "a private address"
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return "a link-local address"
	case addr.IsUnspecified():
		return "an unspecified address"
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return "a multicast address"
	case addr.Is4() && addr.As4()[0] == 100 && addr.As4()[1]&0xc0 == 64:
		return "a shared (carrier-grade NAT) address"
	case addr.Is4() && addr.As4()[0] == 0:
		return "a 'this network' address"
	}
	return ""
}

// CheckURL parses raw as a callback URL: absolute http(s), with a host, no longer
// than MaxURLLength. A host that is a literal IP address hookd must not reach is
// refused unless allowPrivate is set ("localhost" counts as such a literal).
func CheckURL(raw string, allowPrivate bool) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("callback URL is empty")
	}
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("callback URL is %d bytes long; the limit is %d", len(raw), MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("callback URL %q does not parse: %v", raw, unwrapURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("callback URL %q must be an absolute http or https URL", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("callback URL %q has no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("callback URL %q must not carry a user name or password (use the auth settings)", raw)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("callback URL %q must not have a #fragment", raw)
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return nil, fmt.Errorf("callback URL %q contains white space", raw)
	}
	if !allowPrivate {
		host := u.Hostname()
		if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
			return nil, fmt.Errorf("callback host %q is a loopback name; set delivery.allow_private_targets to allow it", host)
		}
		if addr, err := netip.ParseAddr(host); err == nil {
			if why := Blocked(addr); why != "" {
				return nil, fmt.Errorf("callback host %s is %s; set delivery.allow_private_targets to allow it", host, why)
			}
		}
	}
	return u, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// ErrBlocked is the error a guarded dialer returns for a refused address.
type ErrBlocked struct {
	Addr netip.Addr
	Why  string
}

func (e *ErrBlocked) Error() string {
	return fmt.Sprintf("refused to connect to %s: it is %s (delivery.allow_private_targets is off)", e.Addr, e.Why)
}

// Control is a net.Dialer Control func that refuses blocked addresses after name
// resolution, so a name that resolves to a private address is caught at dial time.
func Control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: not an IP address", address)
	}
	if why := Blocked(addr); why != "" {
		return &ErrBlocked{Addr: addr, Why: why}
	}
	return nil
}
