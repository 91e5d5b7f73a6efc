package dispatch_test

import (
	"context"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// unreachable is an address on 127.0.0.1 that never takes a connection: its
// listener's accept queue is full (a backlog of 0 holds one, which a first
// connection takes), so Linux drops what comes after unanswered, as a firewall
// or a host that is down does.
func unreachable(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	addr := ln.Addr().String()
	for {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
}

// silent is an address on 127.0.0.1 that takes connections and says nothing, as
// a TLS receiver whose handshake never ends.
func silent(t *testing.T) string {
	t.Helper()
	addr, _ := silentCounted(t)
	return addr
}

// silentCounted is silent, and the count of the connections it took.
func silentCounted(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 16)
	t.Cleanup(func() {
		ln.Close()
		close(held)
		for c := range held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			held <- c
		}
	}()
	return ln.Addr().String(), &n
}

// TestConnectTimeoutSaysSo: a host that never takes the connection, or never
// ends its TLS handshake, is given up after 10 s, within delivery.timeout (20 s
// by default), and the attempt log says which: not "timeout after 20s", the
// call's, which reads as a receiver slow to answer and is not how long it took.
func TestConnectTimeoutSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 10 s for the connections to time out")
	}
	cases := []struct{ name, url, want string }{
		{"http", "http://" + unreachable(t) + "/hook", "connect: timeout after 10s (the host did not take the connection)"},
		{"tls handshake", "https://" + silent(t) + "/hook", "TLS handshake: timeout after 10s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			e := newEnv(t)
			e.subscribe(orcidA, tc.url)
			d := e.dispatcher(func(o *dispatch.Options) { o.Timeout = 20 * time.Second })
			e.intake(0, store.Event{Orcid: orcidA})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			n, err := d.Tick(ctx)
			is.NoErr(err)
			is.Equal(n, 1)
			is.NoErr(d.Wait(ctx))
			dl := e.only()
			as := e.attempts(dl.ID)
			is.Equal(len(as), 1) // one failed attempt
			t.Log(as[0].Error, as[0].Duration)
			is.Equal(as[0].Error, tc.want)           // says the connection was not made, and after how long
			is.Equal(dl.LastError, tc.want)          // as the delivery's last error does
			is.True(as[0].Duration < 15*time.Second) // which is how long it took
			is.Equal(dl.StateName(), "failed")       // retried
		})
	}
}

// TestTokenEndpointTimeoutSaysSo: a client_credential webhook's token endpoint
// that never takes the connection, or never ends its TLS handshake, is told as
// a receiver's is, naming the token endpoint: not "timeout after 20s", the
// call's. It is asked once, not again with the client's credentials in the
// form (which only an answer refusing the first way calls for), so the attempt
// takes the 10 s it says.
func TestTokenEndpointTimeoutSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 10 s for the connections to time out")
	}
	tlsAddr, handshakes := silentCounted(t)
	cases := []struct {
		name, url, want string
		conns           *atomic.Int32
	}{
		{"connect", "http://" + unreachable(t) + "/oauth/token", "token endpoint: connect: timeout after 10s (the host did not take the connection)", nil},
		{"tls handshake", "https://" + tlsAddr + "/oauth/token", "token endpoint: TLS handshake: timeout after 10s", handshakes},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			e := newEnv(t)
			a := newAuthAPI(e)
			rv := newReceiver(t, nil)
			a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tc.url + `"}}`)
			d := e.dispatcher(func(o *dispatch.Options) { o.Timeout = 20 * time.Second })
			e.intake(0, store.Event{Orcid: orcidA})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			n, err := d.Tick(ctx)
			is.NoErr(err)
			is.Equal(n, 1)
			is.NoErr(d.Wait(ctx))
			dl := e.only()
			as := e.attempts(dl.ID)
			is.Equal(len(as), 1) // one failed attempt
			t.Log(as[0].Error, as[0].Duration)
			is.Equal(as[0].Error, tc.want)           // names the token endpoint, what did not end, and after how long
			is.Equal(dl.LastError, tc.want)          // as the delivery's last error does
			is.True(as[0].Duration < 15*time.Second) // which is how long it took
			if tc.conns != nil {
				is.Equal(tc.conns.Load(), int32(1)) // one connection, not one for each way of sending the credentials
			}
			is.Equal(rv.count(), 0)            // the receiver is not called without a token
			is.Equal(dl.StateName(), "failed") // retried
		})
	}
}
