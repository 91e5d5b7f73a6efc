package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestForwardedClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tt := range []struct {
		name   string
		peer   string
		fields []string
		want   string // "" when the peer's own address stands
	}{
		{"a proxy names its client", "127.0.0.1:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"anyone else's header is ignored", "198.51.100.1:5000", []string{"203.0.113.9"}, ""},
		{"what the client wrote left of it proves nothing", "127.0.0.1:5000", []string{"192.0.2.66, 203.0.113.9"}, "203.0.113.9"},
		{"a chain of trusted proxies is skipped", "127.0.0.1:5000", []string{"203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"several fields are one list", "127.0.0.1:5000", []string{"192.0.2.66", "203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"IPv6, mapped and over IPv6", "[::1]:5000", []string{"2001:db8::7", "::ffff:203.0.113.9"}, "203.0.113.9"},
		{"an IPv6 client", "[::1]:5000", []string{" 2001:db8::7 "}, "2001:db8::7"},
		{"no header", "127.0.0.1:5000", nil, ""},
		{"only proxies", "127.0.0.1:5000", []string{"10.0.0.1, 127.0.0.1"}, ""},
		{"garbage where the client should be", "127.0.0.1:5000", []string{"203.0.113.9, unknown"}, ""},
		{"a peer that is not an address", "@", []string{"203.0.113.9"}, ""},
		{"a mapped peer", "[::ffff:127.0.0.1]:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"an entry with a port", "127.0.0.1:5000", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"an IPv6 entry with a port", "127.0.0.1:5000", []string{"[2001:db8::7]:4711"}, "2001:db8::7"},
		{"a zone is dropped", "127.0.0.1:5000", []string{"fe80::1%eth0"}, "fe80::1"},
		{"an empty entry left of the client", "127.0.0.1:5000", []string{"192.0.2.66,,203.0.113.9"}, "203.0.113.9"},
		{"a trailing comma", "127.0.0.1:5000", []string{"203.0.113.9,"}, ""},
		{"a client inside a trusted prefix counts as a proxy", "127.0.0.1:5000", []string{"203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"an empty field", "127.0.0.1:5000", []string{""}, ""},
		{"within the hops", "127.0.0.1:5000", []string{"203.0.113.9" + strings.Repeat(", 10.0.0.1", maxProxyHops-1)}, "203.0.113.9"},
		{"past the hops", "127.0.0.1:5000", []string{"203.0.113.9" + strings.Repeat(", 10.0.0.1", maxProxyHops)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			got, ok := forwardedClient(tt.peer, tt.fields, trusted)
			is.Equal(ok, tt.want != "") // whether a client is named
			if ok {
				is.Equal(got.String(), tt.want)
			}
		})
	}
}

// TestFromProxies: the handler sees the client's address from a trusted proxy, and
// its own peer's otherwise; with no proxies trusted nothing changes.
func TestFromProxies(t *testing.T) {
	is := is.New(t)
	var seen string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr })
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:5000"
	req.Header.Set("X-Forwarded-For", "203.0.113.9")

	fromProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, h).ServeHTTP(httptest.NewRecorder(), req)
	is.Equal(seen, "203.0.113.9:0")            // the client's
	is.Equal(req.RemoteAddr, "127.0.0.1:5000") // the caller's request unchanged

	fromProxies(nil, h).ServeHTTP(httptest.NewRecorder(), req)
	is.Equal(seen, "127.0.0.1:5000") // no proxy trusted: the peer's

	fromProxies([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, h).ServeHTTP(httptest.NewRecorder(), req)
	is.Equal(seen, "127.0.0.1:5000") // a peer that is not a trusted proxy: its own
}

// TestGuardBehindProxy: behind a trusted proxy, failed client authentications
// slow the address the proxy names, not the proxy's: a client elsewhere is not
// slowed by an attacker's failures, and an attacker cannot shed its own by
// writing another address into the header.
func TestGuardBehindProxy(t *testing.T) {
	is := is.New(t)
	g, _, waits := recordingGuard()
	ctx := context.Background()
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	// try is one token request through the proxy, naming client id, that fails.
	try := func(forwarded, id string) {
		h := fromProxies(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			is.NoErr(g.wait(ctx, r, id))
			g.failed(r, id)
		}))
		req := httptest.NewRequest("POST", "/oauth/token", nil)
		req.RemoteAddr = "127.0.0.1:5000" // the proxy
		req.Header.Set("X-Forwarded-For", forwarded)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	for i := range 5 {
		try("203.0.113.9", fmt.Sprintf("APP-GUESS-%d", i)) // the attacker, a new id each time
	}
	is.Equal(*waits, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}) // its 4th and 5th waited

	*waits = nil
	try("198.51.100.20", "APP-REAL")
	is.Equal(len(*waits), 0) // another client through the same proxy: not slowed

	try("198.51.100.77, 203.0.113.9", "APP-GUESS-9")
	is.Equal(*waits, []time.Duration{time.Second}) // the attacker, writing another address first: still itself
}

// FuzzForwardedClient: whatever the header says, the address a trusted proxy's
// request is given is one the header holds, and not a trusted proxy's; a request
// from any other peer is given none.
func FuzzForwardedClient(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "192.0.2.66, 203.0.113.9, 10.1.2.3", "[2001:db8::7]:80,", ",,", "::ffff:10.0.0.1", "fe80::1%eth0, 127.0.0.1"} {
		f.Add("127.0.0.1:5000", s)
		f.Add("198.51.100.1:5000", s)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peer, header string) {
		a, ok := forwardedClient(peer, []string{header}, trusted)
		if !ok {
			return
		}
		if !isTrusted(hostAddr(peer), trusted) {
			t.Fatalf("peer %q is not trusted, yet %v was taken from %q", peer, a, header)
		}
		if isTrusted(a, trusted) {
			t.Fatalf("%v from %q is a trusted proxy's address", a, header)
		}
		found := false
		for _, e := range strings.Split(header, ",") {
			if b, ok := entryAddr(strings.TrimSpace(e)); ok && b == a {
				found = true
			}
		}
		if !found {
			t.Fatalf("%v is not in %q", a, header)
		}
	})
}
