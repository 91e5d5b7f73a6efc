package dispatch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	mail "github.com/wneessen/go-mail"

	"hookd/smtptest"
	"hookd/store"
)

// scriptedSMTP is an SMTP server on 127.0.0.1. It greets, answers EHLO and
// accepts the message each after delay (each in a phase of go-mail's own, with a
// deadline of its own), and after the message's "250" goes on when after is set
// (or closes the connection); greet, when set, is all it does.
type scriptedSMTP struct {
	ln       net.Listener
	messages atomic.Int64
	rcpt     string // the answer to RCPT TO ("250 ok" when empty)
}

func newScriptedSMTP(t *testing.T, greet func(c net.Conn), delay time.Duration, after string, rcpt ...string) *scriptedSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedSMTP{ln: ln}
	if len(rcpt) > 0 {
		s.rcpt = rcpt[0]
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if greet != nil {
					greet(c)
					return
				}
				say := func(line string) { c.Write([]byte(line + "\r\n")) }
				slow := func(line string) {
					time.Sleep(delay)
					say(line)
				}
				slow("220 scripted ESMTP")
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
					case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
						slow("250 scripted")
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
						slow("250 queued")
						s.messages.Add(1)
						if after == "" {
							return // accepted, then gone: RSET and QUIT fail
						}
					case strings.HasPrefix(cmd, "RCPT") && s.rcpt != "":
						if s.rcpt == "drop" {
							return
						}
						say(s.rcpt)
					case cmd == "QUIT":
						say("221 bye")
						return
					default:
						say("250 ok")
					}
				}
			}()
		}
	}()
	return s
}

func (s *scriptedSMTP) options() EmailOptions {
	return EmailOptions{Addr: s.ln.Addr().String(), From: "hookd@uni.example"}
}

func testMessage(t *testing.T) *mail.Msg {
	m := mail.NewMsg()
	if err := m.From("hookd@uni.example"); err != nil {
		t.Fatal(err)
	}
	if err := m.To("orcid@uni.example"); err != nil {
		t.Fatal(err)
	}
	m.Subject("ORCID Profile Update (0000-0002-1825-0097)")
	m.SetBodyString(mail.TypeTextPlain, "updated")
	return m
}

// TestSendMailAcceptedThenGone: a message the server accepted (250 after DATA) is
// sent, though the connection fails after it: sending it again would deliver it twice.
func TestSendMailAcceptedThenGone(t *testing.T) {
	is := is.New(t)
	srv := newScriptedSMTP(t, nil, 0, "")
	is.NoErr(sendMail(context.Background(), srv.options(), 5*time.Second, testMessage(t))) // sent
	is.Equal(srv.messages.Load(), int64(1))                                                // once
}

// TestSendMailBounded: a server that answers slowly, command after command, cannot
// stretch a call past its timeout; one that sends without end cannot fill memory.
func TestSendMailBounded(t *testing.T) {
	t.Run("slow answers", func(t *testing.T) {
		is := is.New(t)
		srv := newScriptedSMTP(t, nil, 300*time.Millisecond, "ok") // each answer within go-mail's own timeout, 1.2 s in all
		err := sendMail(context.Background(), srv.options(), 400*time.Millisecond, testMessage(t))
		is.True(err != nil)                     // not sent in time
		is.Equal(srv.messages.Load(), int64(0)) // ended by the call's timeout: each command's own would have let it through
	})
	t.Run("a greeting without end", func(t *testing.T) {
		is := is.New(t)
		srv := newScriptedSMTP(t, func(c net.Conn) {
			line := []byte("220-" + strings.Repeat("x", 1000) + "\r\n")
			for {
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}, 0, "")
		err := sendMail(context.Background(), srv.options(), 5*time.Second, testMessage(t))
		is.True(errors.Is(err, errSMTPTooMuch)) // cut off at smtpAnswers
	})
	t.Run("a line without end", func(t *testing.T) {
		is := is.New(t)
		srv := newScriptedSMTP(t, func(c net.Conn) {
			chunk := []byte(strings.Repeat("y", 64<<10))
			c.Write([]byte("220 "))
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}, 0, "")
		err := sendMail(context.Background(), srv.options(), 5*time.Second, testMessage(t))
		is.True(errors.Is(err, errSMTPTooMuch))
	})
}

// TestNoticeErrorRedacted: a notice's error is logged without the SMTP credentials a
// server's answer may echo, in clear or as AUTH PLAIN's base64.
func TestNoticeErrorRedacted(t *testing.T) {
	is := is.New(t)
	o := EmailOptions{Username: "hookduser", Password: "S3cr3t-Pa55w0rd!"}
	plain := "AGhvb2tkdXNlcgBTM2NyM3QtUGE1NXcwcmQh" // base64 of "\x00hookduser\x00S3cr3t-Pa55w0rd!"
	err := errors.New(`535 5.7.8 Authentication credentials invalid (got ` + plain + `, password S3cr3t-Pa55w0rd!)` + strings.Repeat(" and on", 1000))
	got := noticeError(o, err)
	is.True(!strings.Contains(got, plain))              // not the AUTH PLAIN form
	is.True(!strings.Contains(got, "S3cr3t-Pa55w0rd!")) // nor the password
	is.True(strings.Contains(got, "535 5.7.8"))         // the rest of the answer stays
	is.True(len(got) <= 1024)                           // bounded
}

// TestSendMailRecipientRefused: a recipient refused for good (a 5xx to RCPT TO) is
// told from one refused for now (4xx), which is what keeps a relay's fault from
// switching an organisation's e-mail off (policy.outcome).
func TestSendMailRecipientRefused(t *testing.T) {
	for answer, forGood := range map[string]bool{
		"550 5.1.1 user unknown": true, "553 5.1.3 bad address syntax": true, "550 5.2.1 mailbox disabled": true,
		"550 mailbox unavailable": true, // no enhanced code: taken at its word
		"451 4.3.0 try later":     false, "drop": false,
		// The relay refusing hookd, the same for every recipient: not the address's fault.
		"550 5.7.1 Relaying denied": false, "554 5.7.1 Relay access denied": false, "530 5.7.0 Authentication required": false,
		"550 relay not permitted": false, "552 5.2.2 mailbox full": false,
		// hookd's own sender address refused (Postfix refuses a sender at RCPT TO).
		"550 5.1.0 <hookd@uni.example>: Sender address rejected: User unknown in virtual mailbox table": false,
		"553 5.1.8 <hookd@uni.example>: Sender address rejected: Domain not found":                      false,
		"550 5.1.7 <hookd@uni.example>: Sender address rejected: undeliverable address":                 false,
		"554 5.7.1 Client host rejected: Access denied":                                                 false,
		// The recipient refused by policy.
		"554 5.7.1 <orcid@uni.example>: Recipient address rejected: Access denied":                                     true,
		"550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [AM0PR01MB1234.eurprd01.prod.outlook.com]": true,
		"550 5.7.1 recipient rejected by policy":                                                                       true,
		"550 5.1.1 <orcid@relay.uni.example>: Recipient address rejected: User unknown":                                true, // "relay" in the address only
		"550 No such user here [10.4.5.6]":                                                                             true, // no enhanced code, an address literal
		// Postfix on a gateway: its known recipients are the "relay recipient table".
		"550 5.1.1 <orcid@uni.example>: Recipient address rejected: User unknown in relay recipient table":                                                true,
		"550 5.1.1 <orcid@uni.example>: Recipient address rejected: undeliverable address: host relay.uni.example[10.0.0.1] said: 550 5.1.1 User unknown": true,
		"550 relaying to <orcid@uni.example> not allowed":                                                                                                 false,
		"550 mailbox unavailable at relay.uni.example":                                                                                                    true,  // a bare 550 at its word; "relay" is a host here
		"550 5.7.1 Requested action not taken: mailbox unavailable (client host blocked)":                                                                 false, // RFC 5321's words for any 550
		"550 Requested action not taken: mailbox unavailable (relay not allowed)":                                                                         false,
		"550 Mailbox unavailable - relay denied":                                                                                                          false,
		"550 Sorry, we do not allow relaying.":                                                                                                            false,
		"550 This host is not allowed to relay.":                                                                                                          false,
		"553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)":                                                                           false, // qmail: the relay will not relay
		"550 relay not allowed here":                                                                                                                      false,
	} {
		t.Run(answer, func(t *testing.T) {
			is := is.New(t)
			srv := newScriptedSMTP(t, nil, 0, "ok", answer) // "drop": the connection dropped at RCPT TO
			err := sendMail(context.Background(), srv.options(), 5*time.Second, testMessage(t))
			is.True(err != nil)
			is.Equal(refusedForGood(err), forGood)
			is.Equal(smtpAnswered(err), answer != "drop") // a refusal is an answer; a dropped connection none
		})
	}
}

// TestRefusedForGoodReadsTheAnswerOnly: the addresses go-mail adds to its error
// (the recipient's, the message id with the From domain) say nothing of who
// refused whom: "550 No such user here" to orcid-authors@mailrelay… counts.
func TestRefusedForGoodReadsTheAnswerOnly(t *testing.T) {
	is := is.New(t)
	srv := newScriptedSMTP(t, nil, 0, "ok", "550 No such user here")
	m := mail.NewMsg()
	is.NoErr(m.From("hookd@mailrelay.uni.example"))
	is.NoErr(m.To("orcid-authors@uni.example"))
	m.Subject("ORCID Profile Update (0000-0002-1825-0097)")
	m.SetBodyString(mail.TypeTextPlain, "updated")
	err := sendMail(context.Background(), srv.options(), 5*time.Second, m)
	is.True(err != nil)
	is.True(refusedForGood(err))
}

// TestEmailNamesOnOneLine: a name an older hookd stored with a line break (names
// are one line since) does not add lines to an e-mail: "Record:" is hookd's alone.
func TestEmailNamesOnOneLine(t *testing.T) {
	is := is.New(t)
	const id = "0000-0002-7253-3645"
	forged := "\r\nRecord: https://evil.example/\nE-mail: help@evil.example\u2028"
	c := store.Claimed{Subject: id, EventType: store.EventCreated, LastEventAt: time.Unix(1709294400, 0)}
	info := store.HubDelivery{OrgName: "University" + forged, Member: &store.Member{Name: "Ann" + forged, EPPN: "ann" + forged, Email: "ann@uni.example\u2028Record: x"}}
	body := emailBody(c, info, "https://orcid.org/")
	var records, mails int
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "Record: ") {
			records++
		}
		if strings.HasPrefix(l, "E-mail: ") {
			mails++
		}
		is.True(!strings.ContainsAny(l, "\r\u2028\u2029")) // no other line break either
	}
	is.Equal(records, 1)                                                          // hookd's own Record line
	is.Equal(mails, 1)                                                            // and E-mail line
	is.True(strings.Contains(body, "Ann Record: https://evil.example/ E-mail: ")) // the name is kept, on one line
	is.Equal(info.Member.Name, "Ann"+forged)                                      // the caller's copy untouched
}

// TestSendMailTimeoutNamesRelayEndOnly: a relay that takes the message and never
// answers its final dot ends the call at its timeout; the error names the relay's
// end of the connection only, not hookd's own address and port, in the answer
// that timed out as in the failed close after it (go-mail keeps the first inside
// an error that does not unwrap to it).
func TestSendMailTimeoutNamesRelayEndOnly(t *testing.T) {
	is := is.New(t)
	client := make(chan string, 1)
	srv := newScriptedSMTP(t, func(c net.Conn) {
		client <- c.RemoteAddr().String()
		c.Write([]byte("220 scripted ESMTP\r\n"))
		br := bufio.NewReader(c)
		for data := false; ; {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case data && line == ".\r\n":
				br.ReadString('\n') // hangs at the final dot, until the call gives up
				return
			case data:
			case strings.HasPrefix(strings.ToUpper(line), "DATA"):
				data = true
				c.Write([]byte("354 go on\r\n"))
			default:
				c.Write([]byte("250 ok\r\n"))
			}
		}
	}, 0, "")
	err := sendMail(context.Background(), srv.options(), 500*time.Millisecond, testMessage(t))
	is.True(err != nil) // no answer to the message
	_, port, _ := net.SplitHostPort(<-client)
	text := err.Error()
	is.True(strings.Contains(text, "i/o timeout"))
	if strings.Contains(text, ":"+port) || strings.Contains(text, "->") {
		t.Errorf("error names hookd's end of the connection (port %s): %q", port, text)
	}
	is.True(strings.Contains(text, "read tcp "+srv.ln.Addr().String()+": i/o timeout")) // the relay's end
}

// TestSendMailRelayFaults: a relay that is slow at any stage of a session (past
// the call's timeout), turns hookd away at its greeting (421), hangs up partway
// through the message, or offers STARTTLS and then fails or stalls its handshake
// ends the call within its timeout, with an error that says what happened (an
// answer for a reply, none for silence), no message taken, and nothing left
// behind: no connection open at the relay (go-mail leaves one open when a session
// fails after the greeting, or its QUIT does), no goroutine in hookd.
func TestSendMailRelayFaults(t *testing.T) {
	const timeout = 250 * time.Millisecond
	const slow = time.Second // each slow answer, well past the timeout
	before := runtime.NumGoroutine()
	for _, tc := range []struct {
		name     string
		tls      bool
		set      func(s *smtptest.Server)
		want     string // in the error
		answered bool   // the relay's reply, not a silence or a broken connection
	}{
		{"slow greeting", false, func(s *smtptest.Server) { s.SetDelay(smtptest.Greeting, slow) }, "i/o timeout", false},
		{"slow MAIL", false, func(s *smtptest.Server) { s.SetDelay(smtptest.Mail, slow) }, "MAIL FROM command: read tcp ", false},
		{"slow RCPT", false, func(s *smtptest.Server) { s.SetDelay(smtptest.Rcpt, slow) }, "RCPT TO command: read tcp ", false},
		{"slow DATA", false, func(s *smtptest.Server) { s.SetDelay(smtptest.Data, slow) }, "DATA command: read tcp ", false},
		{"slow final dot", false, func(s *smtptest.Server) { s.SetDelay(smtptest.Dot, slow) }, "closing SMTP DATA writer: read tcp ", false},
		{"421 at greeting", false, func(s *smtptest.Server) {
			s.SetReply(smtptest.Greeting, 421, []int{4, 3, 2}, "Service not available, closing transmission channel")
		}, `421 "4.3.2 Service not available`, true},
		{"gone mid-DATA", false, func(s *smtptest.Server) { s.SetDropInData(true) }, "closing SMTP DATA writer: EOF", false},
		{"STARTTLS broken", true, func(s *smtptest.Server) { s.SetReply(smtptest.Handshake, 454, nil, "no certificate") }, "tls: internal error", false},
		{"STARTTLS stalled", true, func(s *smtptest.Server) { s.SetDelay(smtptest.Handshake, slow) }, "i/o timeout", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			var srv *smtptest.Server
			o := EmailOptions{From: "hookd@uni.example"}
			if tc.tls {
				srv = smtptest.NewTLSServer(t, "", "", smtptest.StartTLS)
				o.StartTLS, o.roots = true, srv.Roots
			} else {
				srv = smtptest.NewServer(t, "", "")
			}
			o.Addr = srv.Addr
			tc.set(srv)
			t0 := time.Now()
			err := sendMail(context.Background(), o, timeout, testMessage(t))
			took := time.Since(t0)
			is.True(err != nil)
			if took > timeout+200*time.Millisecond {
				t.Errorf("took %v, past its timeout of %v", took, timeout)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q; want it to say %q", err, tc.want)
			}
			is.Equal(smtpAnswered(err), tc.answered)
			is.True(!refusedForGood(err))
			if tc.name != "slow final dot" {
				is.Equal(len(srv.Messages()), 0) // nothing taken
			} // (a relay that answers its final dot too late may have taken it: the next try carries the same Message-ID)
			// The relay's session ends once its slow answer finds hookd gone, or at
			// once: not at the relay's own read timeout (10 s).
			for end := time.Now().Add(slow + 2*time.Second); srv.Sessions() > 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(end) {
					t.Fatalf("%d sessions still open at the relay, %v after the call ended", srv.Sessions(), time.Since(t0)-took)
				}
			}
		})
	}
	// Every server is closed: hookd has nothing left running either.
	for end := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
	}
}

// TestSMTPRefusalByStage: what a 5xx refuses depends on where it comes and what it
// says: at MAIL FROM hookd's sender (but for a message's own code), at RCPT TO the
// recipient, at the final dot the message (but for what speaks of the recipient
// or of hookd); a full mailbox or a limit, nothing for good, at any stage; a 4xx
// refuses nothing for good.
func TestSMTPRefusalByStage(t *testing.T) {
	for _, tc := range []struct {
		stage smtptest.Stage
		code  int
		esc   []int
		text  string
		want  refusal
	}{
		{smtptest.Dot, 552, []int{5, 3, 4}, "Message size exceeds fixed maximum message size", refusedMessage},
		{smtptest.Dot, 552, nil, "Requested mail action aborted: exceeded storage allocation", refusedMessage},
		{smtptest.Dot, 554, nil, "Transaction failed", refusedMessage},
		{smtptest.Dot, 554, []int{5, 7, 1}, "Message rejected as spam", refusedMessage},
		{smtptest.Dot, 550, []int{5, 6, 0}, "Content rejected", refusedMessage},
		{smtptest.Dot, 550, []int{5, 1, 1}, "User unknown", refusedRecipient},
		{smtptest.Dot, 554, []int{5, 7, 1}, "<orcid@uni.example>: Recipient address rejected: Access denied", refusedRecipient},
		{smtptest.Dot, 552, []int{5, 2, 2}, "Mailbox full", notForGood},
		{smtptest.Dot, 554, []int{5, 7, 1}, "Relay access denied", notForGood},
		{smtptest.Dot, 554, []int{5, 7, 1}, "Client host rejected: Access denied", notForGood},
		{smtptest.Dot, 550, []int{5, 7, 1}, "Sender address rejected: not owned by user", notForGood},
		{smtptest.Dot, 530, []int{5, 7, 0}, "Authentication required", notForGood},
		{smtptest.Dot, 451, []int{4, 3, 0}, "Try again later", notForGood},
		{smtptest.Dot, 452, []int{4, 3, 1}, "Insufficient system storage", notForGood},
		{smtptest.Mail, 552, []int{5, 3, 4}, "Message size exceeds fixed limit", refusedMessage},
		{smtptest.Mail, 550, []int{5, 7, 1}, "Access denied", notForGood},
		{smtptest.Mail, 553, []int{5, 1, 8}, "Sender address rejected: Domain not found", notForGood},
		{smtptest.Mail, 554, nil, "Transaction failed", notForGood},
		{smtptest.Rcpt, 550, []int{5, 1, 1}, "User unknown", refusedRecipient},
		{smtptest.Rcpt, 553, []int{5, 6, 7}, "Non-ASCII address not permitted", refusedMessage},
		{smtptest.Rcpt, 552, []int{5, 2, 2}, "Mailbox full", notForGood},
		{smtptest.Rcpt, 554, []int{5, 7, 1}, "Relay access denied", notForGood},
		{smtptest.Rcpt, 450, []int{4, 2, 0}, "Mailbox busy", notForGood},
		// A full mailbox or a limit passes, whatever else the answer says: in the
		// words of Postfix (a quota policy's answer at RCPT TO), Gmail, Exim,
		// Plesk and Microsoft 365 (a relay's sending limits).
		{smtptest.Rcpt, 552, []int{5, 2, 2}, "<orcid@uni.example>: Recipient address rejected: User over quota", notForGood},
		{smtptest.Rcpt, 552, []int{5, 2, 2}, "<orcid@uni.example>: Recipient address rejected: Mailbox is full", notForGood},
		{smtptest.Rcpt, 552, []int{5, 2, 2}, "The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm", notForGood},
		{smtptest.Rcpt, 550, []int{5, 2, 1}, "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", notForGood},
		{smtptest.Rcpt, 550, nil, "<orcid@uni.example>... Mailbox full", notForGood},
		{smtptest.Dot, 552, nil, "Mailbox size limit exceeded", notForGood},
		{smtptest.Dot, 550, []int{5, 4, 5}, "Daily user sending limit exceeded.", notForGood},
		{smtptest.Dot, 554, []int{5, 7, 0}, "Your message could not be sent. The limit on the number of allowed outgoing messages was exceeded. Try again later.", notForGood},
		{smtptest.Dot, 554, []int{5, 2, 0}, "STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception with message Cannot submit message.", notForGood},
		{smtptest.Dot, 552, []int{5, 2, 3}, "Your message exceeded Google's message size limits.", refusedMessage}, // a message's size limit is the message's
		{smtptest.Dot, 552, nil, "Message size exceeds maximum permitted", refusedMessage},
		// hookd's sender, sending domain or host, refused at the final dot (in
		// Microsoft 365's words) or at RCPT TO without a code: every message's.
		{smtptest.Dot, 554, []int{5, 2, 0}, "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message.", notForGood},
		{smtptest.Dot, 550, []int{5, 7, 509}, "Access denied, sending domain hub.example does not pass DMARC verification and has a DMARC policy of reject.", notForGood},
		{smtptest.Dot, 550, []int{5, 7, 708}, "Service unavailable. Access denied, traffic not accepted from this IP.", notForGood},
		{smtptest.Dot, 550, []int{5, 7, 750}, "Service unavailable. Client blocked from sending from unregistered domains.", notForGood},
		{smtptest.Rcpt, 550, nil, "IP 203.0.113.5 is blocked by EarthLink. Go to earthlink.net/block for details.", notForGood},
		{smtptest.Rcpt, 550, nil, "Unfortunately, messages from [203.0.113.5] weren't sent. Please contact your Internet service provider since part of their network is on our block list.", notForGood},
	} {
		t.Run(fmt.Sprintf("%d %v %s at %d", tc.code, tc.esc, tc.text, tc.stage), func(t *testing.T) {
			is := is.New(t)
			srv := smtptest.NewServer(t, "", "")
			srv.SetReply(tc.stage, tc.code, tc.esc, tc.text)
			err := sendMail(context.Background(), EmailOptions{Addr: srv.Addr, From: "hookd@uni.example"}, 5*time.Second, testMessage(t))
			is.True(err != nil)
			is.True(strings.Contains(err.Error(), tc.text)) // the relay's answer, quoted
			is.Equal(smtpRefusal(err), tc.want)
			is.True(smtpAnswered(err))
		})
	}
}

// TestSendMailAuthNotOffered: a relay that offers AUTH only after STARTTLS (as
// Postfix's submission port does), with email.starttls off, is not signed in to,
// and the error says what to change; one that offers no AUTH at all is told from
// it. Neither is refused for good, and neither error holds the password.
func TestSendMailAuthNotOffered(t *testing.T) {
	const pass = "S3cr3t-relay-pass"
	for _, tc := range []struct {
		name string
		srv  func(t *testing.T) *smtptest.Server
		want string
		not  string
	}{
		{"AUTH only after STARTTLS", func(t *testing.T) *smtptest.Server {
			return smtptest.NewTLSServer(t, "hookd", pass, smtptest.StartTLS)
		}, "the relay offers STARTTLS and no AUTH before it, and email.starttls is false: set email.starttls = true", ""},
		{"no AUTH at all", func(t *testing.T) *smtptest.Server {
			return smtptest.NewServer(t, "", "")
		}, "the relay offers no AUTH", "starttls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			srv := tc.srv(t)
			o := EmailOptions{Addr: srv.Addr, From: "hookd@uni.example", Username: "hookd", Password: pass}
			err := sendMail(context.Background(), o, 5*time.Second, testMessage(t))
			is.True(err != nil)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q; want it to say %q", err, tc.want)
			}
			if tc.not != "" && strings.Contains(err.Error(), tc.not) {
				t.Errorf("error %q; want it not to say %q", err, tc.not)
			}
			is.True(!strings.Contains(err.Error(), pass))
			is.Equal(smtpRefusal(err), notForGood) // retried: the configuration's fault
			is.Equal(len(srv.Messages()), 0)
		})
	}
}
