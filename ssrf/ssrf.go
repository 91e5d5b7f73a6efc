// Package ssrf keeps hookd from being used to reach addresses it should not:
// loopback, private, link-local and unspecified ones, unless allowed. store.CheckURL
// applies Blocked to a URL's literal address when it is registered; Control applies
// it to every address hookd connects to.
package ssrf

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

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
