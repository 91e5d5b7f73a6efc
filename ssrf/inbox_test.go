package ssrf_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/ssrf"
)

func TestNewInbox(t *testing.T) {
	// [::1] for a listener on [::] only where the machine has ::1 (IPv6 on).
	every := []string{"127.0.0.1:8080"}
	if ssrf.HasLoopback6() {
		every = []string{"127.0.0.1:8080", "[::1]:8080"}
	}
	for _, tt := range []struct {
		listen string
		want   []string
		err    bool
	}{
		{listen: "127.0.0.1:8080", want: []string{"127.0.0.1:8080"}},
		{listen: "10.0.0.5:8080", want: []string{"10.0.0.5:8080"}},
		{listen: "[::1]:8080", want: []string{"[::1]:8080"}},
		{listen: "0.0.0.0:8080", want: []string{"127.0.0.1:8080"}},
		{listen: "[::]:8080", want: every},
		{listen: "localhost:8080", err: true},
		{listen: "127.0.0.1:0", err: true},
		{listen: "127.0.0.1", err: true},
	} {
		t.Run(tt.listen, func(t *testing.T) {
			is := is.New(t)
			in, err := ssrf.NewInbox(tt.listen)
			if tt.err {
				is.True(err != nil) // refused
				return
			}
			is.NoErr(err) // parsed
			var got []string
			for _, a := range in.Addrs() {
				got = append(got, a.String())
			}
			is.Equal(got, tt.want)                // the addresses hookd may call
			is.Equal(in.Base(), "http://"+got[0]) // the base URL
		})
	}
}

func TestInboxMatch(t *testing.T) {
	in, err := ssrf.NewInbox("127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8080/inbox/demo", true},
		{"http://127.0.0.1:8080/inbox/demo/", true},
		{"http://127.0.0.1:8080/inbox/demo/0000-0002-7253-3645/updated?x=1", true},
		{"http://127.0.0.1:8080/inbox/", false},    // no name
		{"http://127.0.0.1:8080/inbox", false},     // not under /inbox/
		{"http://127.0.0.1:8080/healthz", false},   // another route of hookd
		{"http://127.0.0.1:8080/inboxes/x", false}, // a look-alike prefix
		{"http://127.0.0.1:8080/inbox/../admin", false},
		{"http://127.0.0.1:8080/inbox/a/../../admin", false},
		{"http://127.0.0.1:8080/inbox/%2e%2e/admin", false}, // percent-encoded dots
		{"http://127.0.0.1:8080/inbox/./x", false},
		{"http://127.0.0.1:8081/inbox/demo", false},       // another port
		{"http://127.0.0.2:8080/inbox/demo", false},       // another loopback address
		{"http://localhost:8080/inbox/demo", false},       // a name, not the address
		{"https://127.0.0.1:8080/inbox/demo", false},      // hookd serves plain HTTP
		{"http://127.0.0.1/inbox/demo", false},            // port 80
		{"http://[::ffff:127.0.0.1]:8080/inbox/x", false}, // another form of the address
		{"http://u:p@127.0.0.1:8080/inbox/demo", false},   // credentials
	} {
		t.Run(tt.url, func(t *testing.T) {
			is := is.New(t)
			u, err := url.Parse(tt.url)
			is.NoErr(err)                         // parse
			is.Equal(in.Match(u), tt.want)        // the verdict
			is.True(!(*ssrf.Inbox)(nil).Match(u)) // no inbox: no exception
		})
	}
}

// TestInboxControl dials through the inbox's Control: hookd's own address
// connects, another port of the same address is refused before any connection.
func TestInboxControl(t *testing.T) {
	is := is.New(t)
	own := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer own.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the other port was reached: %s", r.URL)
	}))
	defer other.Close()
	in, err := ssrf.NewInbox(own.Listener.Addr().String())
	is.NoErr(err) // own address

	d := &net.Dialer{Timeout: 5 * time.Second, Control: in.Control}
	ctx := context.Background()
	c, err := d.DialContext(ctx, "tcp", own.Listener.Addr().String())
	is.NoErr(err) // hookd's own address connects
	c.Close()

	_, err = d.DialContext(ctx, "tcp", other.Listener.Addr().String())
	is.True(err != nil)                                           // another port is refused
	is.True(strings.Contains(err.Error(), "hookd's own address")) // saying why

	ap := netip.MustParseAddrPort(own.Listener.Addr().String())
	err = in.Control("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), ap.Port()).String(), nil)
	is.True(err != nil) // another loopback address on the same port is refused
}
