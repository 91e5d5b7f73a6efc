package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// maxProxyHops bounds how many addresses of X-Forwarded-For are read, from the
// right: past as many trusted proxies in a row, the request keeps its peer's.
const maxProxyHops = 16

// fromProxies gives a request that came through one of the trusted reverse proxies
// the address of the client the proxies name in X-Forwarded-For, as its
// RemoteAddr (with port 0: the client's port is not known): what slows guessing
// at sign-in and at the token endpoint, the audit log and the inbox then see the
// client, not the proxy. A request from any other address keeps its own, whatever
// headers it sends.
func fromProxies(trusted []netip.Prefix, h http.Handler) http.Handler {
	if len(trusted) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := forwardedClient(r.RemoteAddr, r.Header[hForwardedFor], trusted); ok {
			r2 := *r // a shallow copy: the caller's request is not changed
			r2.RemoteAddr = net.JoinHostPort(a.String(), "0")
			r = &r2
		}
		h.ServeHTTP(w, r)
	})
}

// forwardedClient is the client a request from peer names in its X-Forwarded-For
// fields, when peer is a trusted proxy: the right-most address in the list that is
// not itself a trusted proxy (each proxy appends the address it was called from,
// so what is left of that is the client's to write and proves nothing). An entry
// may carry a port ("192.0.2.1:4711", "[2001:db8::1]:4711"), as some proxies write
// it. ok is false when peer is not trusted, or the list has no such address within
// maxProxyHops, or an entry that is not an address stands in its place.
func forwardedClient(peer string, fields []string, trusted []netip.Prefix) (netip.Addr, bool) {
	if !isTrusted(hostAddr(peer), trusted) {
		return netip.Addr{}, false
	}
	hops := 0
	for i := len(fields) - 1; i >= 0; i-- {
		rest := fields[i]
		for {
			entry := rest
			comma := strings.LastIndexByte(rest, ',')
			if comma >= 0 {
				entry, rest = rest[comma+1:], rest[:comma]
			}
			if hops++; hops > maxProxyHops {
				return netip.Addr{}, false
			}
			a, ok := entryAddr(strings.TrimSpace(entry))
			if !ok {
				return netip.Addr{}, false
			}
			if !isTrusted(a, trusted) {
				return a, true
			}
			if comma < 0 {
				break
			}
		}
	}
	return netip.Addr{}, false
}

// entryAddr reads one entry of X-Forwarded-For: an address, or one with a port.
func entryAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// hostAddr is the address of a RemoteAddr ("host:port"); the zero Addr when it is
// not one.
func hostAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
