package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// fromProxies gives a request that came through one of the trusted reverse proxies
// the address of the client the proxies name in X-Forwarded-For, as its
// RemoteAddr: what slows guessing at sign-in and at the token endpoint, the audit
// log and the inbox then see the client, not the proxy. A request from any other
// address keeps its own, whatever headers it sends.
func fromProxies(trusted []netip.Prefix, h http.Handler) http.Handler {
	if len(trusted) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := forwardedClient(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), trusted); ok {
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
// so what is left of that is the client's to write and proves nothing). ok is false
// when peer is not trusted, or the list has no such address, or an entry that is
// not an address stands in its place.
func forwardedClient(peer string, fields []string, trusted []netip.Prefix) (netip.Addr, bool) {
	if !isTrusted(hostAddr(peer), trusted) {
		return netip.Addr{}, false
	}
	hops := strings.Split(strings.Join(fields, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false
		}
		a = a.Unmap().WithZone("")
		if !isTrusted(a, trusted) {
			return a, true
		}
	}
	return netip.Addr{}, false
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
