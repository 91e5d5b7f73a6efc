package dispatch_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// rawReceiver answers every request on plain http with what answer writes, byte
// for byte, so it can send what net/http's server never would.
func rawReceiver(tb testing.TB, answer func(w *bufio.Writer)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				req.Body.Close()
				w := bufio.NewWriter(c)
				answer(w)
				w.Flush()
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// informationalReceiver answers every request on plain http with the
// informational answers hints gives (nil: without end, until hookd hangs up),
// then 204.
func informationalReceiver(tb testing.TB, hints func(n int) bool) string {
	return rawReceiver(tb, func(w *bufio.Writer) {
		for i := 0; hints == nil || hints(i); i++ {
			w.WriteString("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n")
			if w.Flush() != nil {
				return // hookd hung up
			}
		}
		w.WriteString("HTTP/1.1 204 No Content\r\n\r\n")
	})
}

// TestInformationalAnswers: informational (1xx) answers before the final one
// are skipped, however many fit in the 64 KiB the answer's headers may take, as
// the standard transport does for https; a receiver that sends them without end
// is cut off at that bound, not at the call's timeout.
func TestInformationalAnswers(t *testing.T) {
	t.Run("ten Early Hints, then 204", func(t *testing.T) {
		is := is.New(t)
		e := newEnv(t)
		e.subscribe(orcidA, informationalReceiver(t, func(n int) bool { return n < 10 })+"/hook")
		d := e.dispatcher(nil)
		e.intake(0, store.Event{Orcid: orcidA})
		e.tick(d)
		dl := e.only()
		is.Equal(dl.StateName(), "delivered") // the receiver answered 204
		as := e.attempts(dl.ID)
		is.Equal(len(as), 1)
		is.Equal(as[0].Status, http.StatusNoContent)
	})
	t.Run("Early Hints without end", func(t *testing.T) {
		is := is.New(t)
		e := newEnv(t)
		e.subscribe(orcidA, informationalReceiver(t, nil)+"/hook")
		d := e.dispatcher(func(o *dispatch.Options) { o.Timeout = time.Minute }) // far beyond the test: the bound ends the call
		e.intake(0, store.Event{Orcid: orcidA})
		e.tick(d)
		dl := e.only()
		is.Equal(dl.StateName(), "failed")
		t.Log(dl.LastError)
		is.True(strings.Contains(dl.LastError, "longer than 64 KiB")) // cut off at the headers' bound
	})
}

// statusReceiver answers every request on plain http with the status line given.
func statusReceiver(tb testing.TB, statusLine string) string {
	return rawReceiver(tb, func(w *bufio.Writer) { w.WriteString(statusLine + "\r\nContent-Length: 0\r\n\r\n") })
}

// TestStatusBelow100: a status line whose code parses as a number below 100
// ("000", "+20") is a malformed answer in the attempt log, not a status 0 that
// reads as no answer at all, nor an "HTTP 20"; the delivery is retried.
func TestStatusBelow100(t *testing.T) {
	for _, line := range []string{"HTTP/1.1 000 OK", "HTTP/1.1 +20 OK", "HTTP/1.1 099 Odd"} {
		t.Run(line, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			e.subscribe(orcidA, statusReceiver(t, line)+"/hook")
			d := e.dispatcher(nil)
			e.intake(0, store.Event{Orcid: orcidA})
			e.tick(d)
			dl := e.only()
			is.Equal(dl.StateName(), "failed") // retried
			as := e.attempts(dl.ID)
			is.Equal(len(as), 1)
			code := strings.Fields(line)[1]
			is.Equal(as[0].Error, `malformed HTTP response: status "`+code+`" is not from 100 to 599`)
		})
	}
}
