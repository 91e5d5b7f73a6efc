package ssrf

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// InboxPrefix starts the path of every URL of hookd's inbox.
const InboxPrefix = "/inbox/"

// Inbox is the one exception to the guard: hookd's own inbox. hookd may call the
// address it listens on, for paths under /inbox/, even where private targets are
// refused; nothing else on that address, and no other port of the machine, becomes
// reachable. A nil *Inbox is no exception at all.
type Inbox struct {
	addrs []netip.AddrPort
}

// NewInbox returns the exception for the address hookd listens on, as its
// listener reports it ("127.0.0.1:8080", "[::]:8080"). A listener on every
// interface is reached through loopback: 127.0.0.1 for 0.0.0.0, and ::1 or
// 127.0.0.1 for [::], ::1 only where the machine has it (Go listens on [::] for
// ":8080" and "0.0.0.0:8080" where IPv6 is switched off too, and there ::1
// connects to nothing).
func NewInbox(listenAddr string) (*Inbox, error) {
	ap, err := netip.ParseAddrPort(listenAddr)
	if err != nil {
		return nil, fmt.Errorf("inbox: %q is not an IP address and port: %w", listenAddr, err)
	}
	if ap.Port() == 0 {
		return nil, fmt.Errorf("inbox: %q has no port", listenAddr)
	}
	a, port := ap.Addr().WithZone(""), ap.Port()
	loop4 := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
	switch {
	case a.IsUnspecified() && a.Is4():
		return &Inbox{addrs: []netip.AddrPort{loop4}}, nil
	case a.IsUnspecified() && !HasLoopback6():
		return &Inbox{addrs: []netip.AddrPort{loop4}}, nil
	case a.IsUnspecified():
		// 127.0.0.1 first: Base names it, the address every client reaches.
		return &Inbox{addrs: []netip.AddrPort{loop4, netip.AddrPortFrom(netip.IPv6Loopback(), port)}}, nil
	}
	return &Inbox{addrs: []netip.AddrPort{netip.AddrPortFrom(a, port)}}, nil
}

// HasLoopback6 reports whether the machine has ::1, IPv6's loopback address,
// through which a listener on [::] is reached besides 127.0.0.1: not when IPv6 is
// off (net.ipv6.conf.lo.disable_ipv6, or no IPv6 at all). It asks by connecting a
// UDP socket to ::1, which sends nothing and is closed at once, and seeing that
// the socket's own address is ::1: the system picks it only where ::1 is there
// (without it, a route elsewhere would give another, or none). Not by listing
// the interfaces, which takes a netlink socket that hookd.service refuses
// (RestrictAddressFamilies=), so that the daemon found no ::1 where the command
// line, outside the unit, found one; nor by binding a socket to ::1, which a
// machine that lets sockets bind to addresses it does not have
// (net.ipv6.ip_nonlocal_bind) allows without one.
func HasLoopback6() bool {
	c, err := net.DialUDP("udp6", nil, &net.UDPAddr{IP: net.IPv6loopback, Port: 9})
	if err != nil {
		return false
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.Equal(net.IPv6loopback)
}

// Base is the base URL of hookd's own address, e.g. "http://127.0.0.1:8080".
func (in *Inbox) Base() string {
	if in == nil {
		return ""
	}
	return "http://" + in.addrs[0].String()
}

// Addrs are the addresses of hookd the exception lets hookd call.
func (in *Inbox) Addrs() []netip.AddrPort {
	if in == nil {
		return nil
	}
	return append([]netip.AddrPort(nil), in.addrs...)
}

// Match reports whether u is a URL of hookd's own inbox: http, a literal address
// and port that hookd listens on, and a path under /inbox/{name} without "." or
// ".." segments (so it cannot step out of the inbox, even percent-encoded). Names
// are not accepted, since what they resolve to may change.
func (in *Inbox) Match(u *url.URL) bool {
	if in == nil || u == nil || u.Scheme != "http" || u.Opaque != "" || u.User != nil {
		return false
	}
	addr, err := netip.ParseAddr(u.Hostname())
	if err != nil || addr.Zone() != "" {
		return false
	}
	port := 80
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return false
		}
	}
	if !in.has(netip.AddrPortFrom(addr, uint16(port))) {
		return false
	}
	return InboxPath(u.Path)
}

// InboxPath reports whether a decoded path is under /inbox/{name}: a name that is
// not empty, and no "." or ".." segment anywhere.
func InboxPath(p string) bool {
	rest, ok := strings.CutPrefix(p, InboxPrefix)
	if !ok {
		return false
	}
	name, _, _ := strings.Cut(rest, "/")
	if name == "" {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func (in *Inbox) has(ap netip.AddrPort) bool {
	for _, a := range in.addrs {
		if a == ap {
			return true
		}
	}
	return false
}

// Control is the net.Dialer Control func of the client that calls the inbox: it
// connects to hookd's own addresses and refuses every other one.
func (in *Inbox) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: not an IP address and port", address)
	}
	if in == nil || !in.has(netip.AddrPortFrom(ap.Addr().WithZone(""), ap.Port())) {
		return fmt.Errorf("refused to connect to %s: the inbox client connects only to hookd's own address", address)
	}
	return nil
}
