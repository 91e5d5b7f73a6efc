package dispatch_test

import (
	"bufio"
	"cmp"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
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

// TestRefusedUpstreamNamesWhatToCheck: a connection refused by the upstream ORCID
// API, or by its token endpoint, says which setting names the port nothing listens
// on, in the attempt log and hookd org status, not a receiver, which these calls
// have none of.
func TestRefusedUpstreamNamesWhatToCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	for _, tc := range []struct{ name, api, tokens, want string }{
		{"the API", closed, "", "is the upstream ORCID API running, on the port upstream.api_url names?"},
		{"the token endpoint", "", closed, "is the token endpoint running, on the port upstream.token_url names?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			up := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
				if r.URL.Path == "/oauth/token" {
					answerToken(w)
					return nil
				}
				w.WriteHeader(http.StatusCreated)
				return nil
			})
			d, org := upstreamAt(t, e, 1, cmp.Or(tc.api, up.URL), cmp.Or(tc.tokens, up.URL), nil)
			is.Equal(e.tick(d), 1) // the registration tried
			dl := e.only()
			t.Log(dl.LastError)
			is.True(strings.Contains(dl.LastError, "connection refused")) // says what failed
			is.True(strings.Contains(dl.LastError, tc.want))              // and what to check
			is.True(!strings.Contains(dl.LastError, "receiver"))          // no receiver in it
			ms, err := e.st.Members(context.Background(), org)
			is.NoErr(err)                                      // members
			is.True(strings.Contains(ms[0].Upstream, tc.want)) // hookd org status says the same
		})
	}
}

// TestAnswerCutOffMidLine: an answer whose status line or a header line is cut
// off (the call's timeout, or the receiver closing the connection) is logged as
// what happened, not as a malformed answer quoting the part line ("malformed HTTP
// response \"HTTP/\""), which the receiver never sent as a line.
func TestAnswerCutOffMidLine(t *testing.T) {
	serve := func(t *testing.T, send string, closeAfter bool) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		t.Cleanup(func() { close(done); ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
						req.Body.Close()
					}
					c.Write([]byte(send))
					if !closeAfter {
						<-done // the rest never comes
					}
				}()
			}
		}()
		return "http://" + ln.Addr().String() + "/hook"
	}
	cases := []struct {
		name, send string
		closeAfter bool
		want       string
	}{
		{"status line, timeout", "HTTP/", false, "timeout after 300ms"},
		{"header line, timeout", "HTTP/1.1 200 OK\r\nX-Slow: aaa", false, "timeout after 300ms"},
		{"status line, closed", "HTTP/1.1 2", true, "the receiver closed the connection"},
		{"header line, closed", "HTTP/1.1 200 OK\r\nX-Slow: aaa", true, "the receiver closed the connection"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			e.subscribe(testOrcid(i), serve(t, tc.send, tc.closeAfter))
			d := e.dispatcher(func(o *dispatch.Options) { o.Timeout = 300 * time.Millisecond })
			e.intake(0, store.Event{Orcid: testOrcid(i)})
			e.tick(d)
			dl := e.only()
			as := e.attempts(dl.ID)
			is.Equal(len(as), 1) // one failed attempt
			t.Log(as[0].Error)
			is.Equal(as[0].Status, 0)                            // no answer came whole
			is.True(strings.Contains(as[0].Error, tc.want))      // says what happened
			is.True(!strings.Contains(as[0].Error, "malformed")) // not a malformed answer
		})
	}
}
