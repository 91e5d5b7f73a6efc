package ssrf_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/ssrf"
)

func TestBlocked(t *testing.T) {
	for addr, blocked := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true,
		"169.254.169.254": true, "fe80::1": true, "0.0.0.0": true, "::": true, "fd00::1": true,
		"::ffff:127.0.0.1": true, "100.64.0.1": true,
		"93.184.216.34": false, "2606:4700::1111": false, "8.8.8.8": false,
	} {
		t.Run(addr, func(t *testing.T) {
			is := is.New(t)
			is.Equal(ssrf.Blocked(netip.MustParseAddr(addr)) != "", blocked)
		})
	}
}

func TestCheckURL(t *testing.T) {
	long := "https://example.org/" + strings.Repeat("a", 2048)
	tests := []struct {
		url     string
		private bool
		wantErr string
	}{
		{"http://nowhere2.com/0000-0002-7253-3645/updated", false, ""},
		{"https://example.org/a?b=c&d=%25", false, ""},
		{"http://127.0.0.1:9000/x", true, ""},
		{"http://127.0.0.1:9000/x", false, "loopback"},
		{"http://[::1]/x", false, "loopback"},
		{"http://10.0.0.5/x", false, "private"},
		{"http://localhost/x", false, "loopback name"},
		{"ftp://example.org/x", false, "absolute http or https"},
		{"/relative/path", false, "absolute http or https"},
		{"http:///nohost", false, "no host"},
		{"http://user:pw@example.org/", false, "user name"},
		{"http://example.org/%zz", false, "does not parse"},
		{long, false, "limit is 2048"},
		{"", false, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.url[:min(len(tt.url), 40)], func(t *testing.T) {
			is := is.New(t)
			_, err := ssrf.CheckURL(tt.url, tt.private)
			if tt.wantErr == "" {
				is.NoErr(err)
				return
			}
			is.True(err != nil)
			is.True(strings.Contains(err.Error(), tt.wantErr)) // error names the problem
		})
	}
}

func TestControlRefusesLoopbackAtDial(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	defer ln.Close()
	d := net.Dialer{Control: ssrf.Control}
	_, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
	var blocked *ssrf.ErrBlocked
	is.True(errors.As(err, &blocked)) // dial to 127.0.0.1 is refused
}
