package smtptest

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
)

// Hanging is an SMTP server on 127.0.0.1 that stops answering mid-session, as a
// relay that hangs does: it greets, takes EHLO, MAIL, RCPT and DATA, reads the
// message to its final dot, and then says nothing more until the client closes
// the connection. Its connections are closed when tb ends.
type Hanging struct {
	Addr string // host:port

	held chan struct{} // a value for each message held (Held)

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// NewHanging starts a Hanging server, closed when tb ends.
func NewHanging(tb testing.TB) *Hanging {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	h := &Hanging{Addr: ln.Addr().String(), held: make(chan struct{}, 16), conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		ln.Close()
		h.mu.Lock()
		for c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns[c] = true
			h.mu.Unlock()
			wg.Go(func() {
				defer func() {
					c.Close()
					h.mu.Lock()
					delete(h.conns, c)
					h.mu.Unlock()
				}()
				h.session(c)
			})
		}
	})
	return h
}

// session speaks SMTP on c until the message's dot, then waits for the client to
// leave.
func (h *Hanging) session(c net.Conn) {
	say := func(line string) { c.Write([]byte(line + "\r\n")) }
	say("220 hanging ESMTP")
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case strings.HasPrefix(cmd, "EHLO"):
			say("250-hanging")
			say("250 8BITMIME")
		case cmd == "DATA":
			say("354 go on")
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			select {
			case h.held <- struct{}{}:
			default: // (more held than a test waits for)
			}
			// No answer: what the client sends now is read, and dropped, until
			// it closes the connection.
			for {
				if _, err := br.ReadString('\n'); err != nil {
					return
				}
			}
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

// Held is sent a value each time the server holds a message: it has read it
// whole, and answers nothing more.
func (h *Hanging) Held() <-chan struct{} { return h.held }

// Sessions is how many connections to the server are open now.
func (h *Hanging) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}
