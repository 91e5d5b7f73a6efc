package dispatch_test

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// TestFailedConnectionNamesNoAddress: a connection refused or reset is logged
// without its addresses, hookd's own and the one the callback's host resolved
// to (Go's error names both: "read tcp 127.0.0.1:40112->127.0.0.1:8080: read:
// connection reset by peer"), as a refused range and a failed lookup are: what
// hookd's network looks like is not for the webhook's owner to learn.
func TestFailedConnectionNamesNoAddress(t *testing.T) {
	// A receiver that reads the request and resets the connection (listening
	// first, so the closed port below is not its own).
	rst, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rst.Close()
	go func() {
		for {
			c, err := rst.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				req.Body.Close()
			}
			c.(*net.TCPConn).SetLinger(0) // a reset, not an end of stream
			c.Close()
		}
	}()
	// A port where nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cases := []struct{ url, want string }{
		{"http://localhost:" + strconv.Itoa(closedPort) + "/hook", "connection refused"},
		{"https://localhost:" + strconv.Itoa(closedPort) + "/hook", "connection refused"},
		{"http://localhost:" + strconv.Itoa(rst.Addr().(*net.TCPAddr).Port) + "/hook", "connection reset"},
	}
	for i, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			e.subscribe(testOrcid(i), tc.url)
			d := e.dispatcher(nil)
			e.intake(0, store.Event{Orcid: testOrcid(i)})
			e.tick(d)
			dl := e.only()
			as := e.attempts(dl.ID)
			is.Equal(len(as), 1) // one failed attempt
			for _, text := range []string{as[0].Error, dl.LastError} {
				t.Log(text)
				is.True(strings.Contains(text, tc.want))                                        // says what failed
				is.True(!strings.Contains(text, "127.0.0.1") && !strings.Contains(text, "::1")) // names no address
				if tc.want == "connection refused" {
					is.True(strings.Contains(text, "is the receiver running, on the port its URL names?")) // and what to check
				}
			}
		})
	}
}
