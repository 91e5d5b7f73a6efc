package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

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
		{"an address with a port is not one", "127.0.0.1:5000", []string{"203.0.113.9:80"}, ""},
		{"a peer that is not an address", "@", []string{"203.0.113.9"}, ""},
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
