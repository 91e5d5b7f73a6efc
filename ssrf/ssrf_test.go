package ssrf_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
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
