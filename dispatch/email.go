package dispatch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"

	"hookd/ssrf"
	"hookd/store"
)

// EmailOptions is the SMTP server hookd sends organisation e-mail through ([email]).
type EmailOptions struct {
	Addr     string // host:port; empty disables e-mail
	Username string // with Password: SMTP AUTH (the best mechanism the server offers)
	Password string
	From     string
	StartTLS bool // require STARTTLS; off only for a local relay
	// ImplicitTLS: TLS from the first byte (RFC 8314, port 465), where no STARTTLS
	// is asked for; StartTLS does not apply.
	ImplicitTLS bool

	roots *x509.CertPool // the relay's certificate is checked against these (nil: the system's)
}

// emailStatus is the status recorded for an e-mail the SMTP server accepted: a
// delivery succeeds on a 2xx, and "accepted" is what 202 says.
const emailStatus = 202

// sendEmail delivers an organisation's e-mail notification for a record update:
// "ORCID Profile Update (<orcid>)" to the notification address, or else to the
// technical contact.
func (d *Dispatcher) sendEmail(ctx context.Context, c store.Claimed) result {
	r := result{started: d.store.Now()}
	t0 := time.Now()
	fail := func(msg string) result {
		r.err, r.duration = msg, time.Since(t0)
		if d.callCtx.Err() != nil {
			r.cancelled = true
		}
		return r
	}
	h := d.hub()
	o := h.opts.Email
	r.sent.addSMTP(o)
	if o.Addr == "" {
		return fail("e-mail is not configured: set [email] smtp_addr and from")
	}
	info, err := d.store.HubDeliveryInfo(ctx, c.Target.SubscriptionID, c.Subject)
	if err != nil {
		return fail(err.Error())
	}
	// The same Message-ID on every try of a delivery, so a mail system that got a
	// try hookd could not see through drops the next as the same message.
	m, err := d.newMessage(o, info.To, store.MessageID(c.ID, c.Rev)+"."+c.Target.UID)
	var local *localPartError
	if errors.As(err, &local) {
		r.refused, r.forGood = true, true // the address's, as a relay's 5xx to it
	}
	if err != nil {
		return fail(err.Error())
	}
	m.Subject("ORCID Profile Update (" + c.Subject + ")")
	m.SetGenHeader("X-Hookd-Delivery", store.MessageID(c.ID, c.Rev))
	m.SetBodyString(mail.TypeTextPlain, emailBody(c, info, h.opts.RecordURL))

	r.sending = true
	if err := sendMail(ctx, o, d.opts.Timeout, m); err != nil {
		why := smtpRefusal(err)
		r.refused, r.forGood = why == refusedRecipient, why != notForGood
		r.answered = smtpAnswered(err)
		return fail(err.Error())
	}
	r.answered = true
	r.duration = time.Since(t0)
	r.status = emailStatus
	r.body = fmt.Sprintf("accepted by %s for %s", o.Addr, info.To)
	return r
}

// newMessage is a message of hookd's from email.from to one address: the e-mail of
// an organisation and a notice to a webhook's owner alike. It is sent by a
// program, not a person (RFC 3834): vacation and out-of-office replies are not
// sent back for it; it names hookd, not the mail library, as its User-Agent and
// X-Mailer; and its Message-ID is id at the domain of email.from, not at the name
// of hookd's machine.
//
// A domain in another script is sent in its IDNA form ("universität.example" is
// "xn--universitt-y5a.example"), in the envelope and in the headers alike: that
// is the one form of it every relay takes, where UTF-8 in an address needs a
// relay that offers SMTPUTF8 (RFC 6531), and one that does not may refuse it as
// a bad address.
func (d *Dispatcher) newMessage(o EmailOptions, to, id string) (*mail.Msg, error) {
	m := mail.NewMsg()
	from, err := asciiDomain(o.From)
	if err != nil {
		return nil, fmt.Errorf("email.from: %w", err)
	}
	m.FromMailAddress(from)
	rcpt, err := asciiDomain(to)
	if err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	if err := store.MailLocalASCII(rcpt.Address); err != nil {
		// Kept by an older hookd, which took such an address: not sent raw to a
		// relay that may not take UTF-8 in an address.
		return nil, &localPartError{fmt.Errorf("recipient: %w", err)}
	}
	if err := store.MailDomainName(rcpt.Address); err != nil {
		// Kept by an older hookd, which took an address literal: its relay would
		// connect to that address.
		return nil, &localPartError{fmt.Errorf("recipient: %w", err)}
	}
	m.ToMailAddress(rcpt)
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetUserAgent(d.opts.UserAgent)
	m.SetMessageIDWithValue(id + "@" + mailDomain(from.Address))
	m.SetDate()
	return m, nil
}

// localPartError is a recipient's address with a non-ASCII local part
// (store.MailLocalASCII), or an address for its domain (store.MailDomainName),
// which hookd does not send to: for good, as a relay's refusal of it would be.
type localPartError struct{ err error }

func (e *localPartError) Error() string { return e.err.Error() }
func (e *localPartError) Unwrap() error { return e.err }

// asciiDomain reads one address (with a name or without), its domain in its IDNA
// form when it is in another script.
func asciiDomain(addr string) (*netmail.Address, error) {
	a, err := netmail.ParseAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("%q is not an e-mail address: %w", addr, err)
	}
	at := strings.LastIndexByte(a.Address, '@')
	domain, err := ssrf.ASCIIHost(a.Address[at+1:])
	if err != nil {
		return nil, fmt.Errorf("%q: its domain has no IDNA form: %w", addr, err)
	}
	a.Address = a.Address[:at+1] + domain
	return a, nil
}

// refusal is what a send's refusal by the SMTP server is about, as it decides what
// becomes of the delivery.
type refusal int

const (
	// notForGood: no refusal for good. A 4xx, no answer, a lost connection; or a
	// 5xx that refuses hookd itself, the same for every message (its sender
	// address, relaying for it, its authentication, its host), or a full mailbox:
	// the relay's set-up or the mailbox's state, mended without the message
	// changing. Retried until give_up_after; counting it against each
	// organisation's address would switch off every organisation's e-mail at once.
	notForGood refusal = iota
	// refusedRecipient: a 5xx about the recipient's address. The delivery ends,
	// and the refusal counts toward switching the organisation's e-mail off.
	refusedRecipient
	// refusedMessage: a 5xx about this message (its size, its content: at the
	// final dot, 552 "exceeded storage allocation" or 554 "transaction failed").
	// Sending it again as it is gets the same answer: the delivery ends.
	refusedMessage
)

// smtpRefusal reads a failed send's error as the server's refusal. (go-mail calls
// any error not starting with '4' permanent, a dropped connection or a timeout
// too.) Only the server's own answer is read (not the addresses and message id
// go-mail adds, with anything between < and > taken out). A 5xx (RFC 5321: a
// permanent answer), by where it came and what it says:
//   - about hookd's own sender address (RFC 3463 X.1.0, X.1.7, X.1.8, or an answer
//     that speaks of the sender: Postfix refuses a sender at RCPT TO, Microsoft
//     365 refuses to send as it at the final dot), its sending domain (DMARC,
//     SPF), a refusal to relay ("Relay access denied"), of authentication or of
//     hookd's host (its IP address): notForGood, wherever it came;
//   - a full mailbox (X.2.2, "over quota", an inbox out of storage) or a limit
//     that passes (X.4.5 congestion, a quota, a rate, a limit or threshold
//     exceeded: a daily sending limit, one of outgoing messages, a recipient
//     receiving too fast), but for a message's size: notForGood, wherever it
//     came, whatever else it says (of the recipient too);
//   - at MAIL FROM, which names hookd's sender: notForGood, unless its enhanced
//     code is a message's (X.3.4 too big, X.6.x its content or form);
//   - at RCPT TO: an enhanced status code of class 5.1 (bad mailbox, bad domain,
//     moved) or 5.2.1 (mailbox disabled), or an answer that speaks of the
//     recipient ("Recipient address rejected", under 5.7.1 or Exchange's 5.4.1,
//     "no such user"; not RFC 5321's "mailbox unavailable", its words for any
//     550, a policy's too), or no enhanced code and a bare 550, 551 or 553:
//     refusedRecipient; a message's code: refusedMessage; anything else (5.3,
//     5.4, 5.5, 5.7 policy, or no code and a mention of relaying): notForGood;
//   - to DATA or at the final dot, where the server has the message: the
//     recipient's as at RCPT TO when it speaks of the recipient or has its code,
//     notForGood for a mention of relaying without a code, and else
//     refusedMessage (552, 554, 550 content rejected, 5.7.1 spam).
func smtpRefusal(err error) refusal {
	var se *mail.SendError
	if !errors.As(err, &se) || se.ErrorCode() < 500 || se.ErrorCode() > 599 {
		return notForGood
	}
	reply, _, _ := strings.Cut(se.Error(), ", affected recipient(s): ")
	reply, _, _ = strings.Cut(reply, ", affected message ID: ")
	reply = strings.ToLower(bracketed.ReplaceAllString(reply, "<>"))
	code := se.EnhancedStatusCode()
	if m := replyCode.FindStringSubmatch(reply); code == "" && m != nil {
		code = m[1]
	}
	ofMessage := code == "5.3.4" || strings.HasPrefix(code, "5.6.")
	ofRecipient := strings.HasPrefix(code, "5.1.") || code == "5.2.1" || aboutRecipient.MatchString(reply)
	if code == "5.1.0" || code == "5.1.7" || code == "5.1.8" || aboutHookd.MatchString(reply) {
		return notForGood
	}
	if code == "5.2.2" || code == "5.4.5" || !ofMessage && !aboutSize.MatchString(reply) && aboutLimit.MatchString(reply) {
		// A full mailbox or a limit, whatever else the answer says (Postfix's
		// "Recipient address rejected: User over quota", Gmail's "Please direct
		// the recipient to …"): it passes.
		return notForGood
	}
	switch se.Reason {
	case mail.ErrSMTPMailFrom:
		if ofMessage {
			return refusedMessage
		}
	case mail.ErrSMTPRcptTo:
		switch {
		case ofRecipient:
			return refusedRecipient
		case ofMessage:
			return refusedMessage
		case code != "" || aboutRelay.MatchString(reply):
			return notForGood
		}
		switch se.ErrorCode() {
		case 550, 551, 553:
			return refusedRecipient
		}
	case mail.ErrSMTPData, mail.ErrSMTPDataClose:
		switch {
		case ofRecipient:
			return refusedRecipient
		case code == "" && aboutRelay.MatchString(reply):
			return notForGood
		}
		return refusedMessage
	}
	return notForGood
}

// refusedForGood reports whether a send failed because the server refused the
// recipient for good (smtpRefusal): the address, not the relay, is at fault.
func refusedForGood(err error) bool { return smtpRefusal(err) == refusedRecipient }

// smtpAnswered reports whether a send that failed got an answer from the SMTP
// server: a reply with a code, at any step (a refusal of the recipient, of the
// sender, of hookd's authentication), not a connection that failed or went silent.
func smtpAnswered(err error) bool {
	var se *mail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		return true
	}
	var te *textproto.Error
	return errors.As(err, &te)
}

var (
	// bracketed is an address (or any <…>) in a server's answer.
	bracketed = regexp.MustCompile(`<[^>]*>`)
	// replyCode is the enhanced status code (RFC 3463) that follows a reply's code.
	replyCode = regexp.MustCompile(`\b[45]\d\d[ -]"?([45]\.\d{1,3}\.\d{1,3})\b`)
	// aboutHookd is an answer about hookd's side: its sender address (Microsoft
	// 365's SendAsDenied at the final dot: its account may not send as
	// email.from), its sending domain (DMARC, SPF), its host (Postfix's "Client
	// host rejected", an IP address blocked or on a block list), a relay's refusal
	// to relay for it (in the phrases servers use: "relay" alone is often a host's
	// name, or Postfix's "relay recipient table" of known recipients), or its
	// authentication.
	aboutHookd = regexp.MustCompile(`\bsender\b|\bsendas|\bsend as\b|\bsending domain\b|\bdmarc\b|\bspf\b|\bclient (host|blocked)\b|\bip\b|\bblock ?list|\bblacklist|\bblocked using\b|relay access denied|\brelaying (is )?(denied|not (allowed|permitted))|\brelay not permitted|\bunable to relay|\bnot permitted to relay|we do not relay|allowed rcpthosts|authenticat|\bauth(entication)? required\b`)
	// aboutRelay is a mention of relaying in an answer without an enhanced code
	// that says nothing of the recipient: taken as the relay's matter.
	aboutRelay = regexp.MustCompile(`\brelay(ing)?(\.?([^.\w-]|$))`) // the word (a sentence's end too), not a host named relay.…
	// aboutLimit is an answer about a limit that passes: a full mailbox, a quota
	// (a mailbox's, a daily sending one), a rate, a limit or threshold exceeded.
	// Read after aboutSize: a message's size limit is the message's.
	aboutLimit = regexp.MustCompile(`quota|limit|threshold|\brate\b|\b(mailbox|inbox)( \w+)? (is )?full\b|\bfull mailbox\b|\bout of storage\b`)
	// aboutSize is an answer about a message's size ("Message size exceeds fixed
	// limit", "exceeded Google's message size limits", "Message too big"), not a
	// mailbox's ("Mailbox size limit exceeded").
	aboutSize = regexp.MustCompile(`\bmessage( \w+)? size\b|\bsize of (the|this|your) message\b|\b(message|mail)( is)? too (big|large)\b`)
	// aboutRecipient is an answer about the recipient's address.
	aboutRecipient = regexp.MustCompile(`\brecipient\b|\bno such (user|mailbox|recipient)\b|\buser unknown\b|\bunknown (user|recipient)\b|\b(mailbox|user|address) does not exist\b`)
)

// addSMTP notes the SMTP credentials of o: AUTH sends the password in clear or in
// base64, PLAIN as "\x00user\x00password".
func (s *sent) addSMTP(o EmailOptions) {
	if o.Password != "" {
		s.add(o.Password, base64.StdEncoding.EncodeToString([]byte("\x00"+o.Username+"\x00"+o.Password)))
	}
}

// mailDomain is the domain of an address ("hookd" when it has none).
func mailDomain(addr string) string {
	if a, err := netmail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	if _, domain, ok := strings.Cut(addr, "@"); ok && domain != "" {
		return domain
	}
	return "hookd"
}

// smtpAnswers bounds what an SMTP server may send in one session: its greeting and
// answers are lines of a few hundred bytes, and one that sends without end must not
// fill hookd's memory.
const smtpAnswers = 64 << 10

var errSMTPTooMuch = fmt.Errorf("the SMTP server sent more than %d KiB in one session", smtpAnswers>>10)

// smtpConn is a connection to the SMTP server bounded as a whole: go-mail sets a
// deadline of its own for each command, which a slow server could stretch a call
// with, so each is clamped to the call's end; and what the server sends is capped
// (smtpAnswers). Under STARTTLS the TLS connection reads and sets its deadlines
// through it.
type smtpConn struct {
	net.Conn
	end  time.Time
	left int64
	// head is the first smtpHead bytes the server sent: its greeting and what it
	// offers (EHLO), in the clear unless under implicit TLS (offersStartTLS).
	head []byte
}

// smtpHead bounds what smtpConn keeps of a session's beginning.
const smtpHead = 4 << 10

func (c *smtpConn) clamp(t time.Time) time.Time {
	if t.IsZero() || t.After(c.end) {
		return c.end
	}
	return t
}

func (c *smtpConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *smtpConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *smtpConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

func (c *smtpConn) Read(p []byte) (int, error) {
	n, err := readCapped(c.Conn, p, &c.left, errSMTPTooMuch)
	if keep := min(n, smtpHead-len(c.head)); keep > 0 {
		c.head = append(c.head, p[:keep]...)
	}
	return n, err
}

// offersStartTLS reports whether the server's answer to EHLO, as head has it,
// offers STARTTLS.
func (c *smtpConn) offersStartTLS() bool { return startTLSOffered.Match(c.head) }

var startTLSOffered = regexp.MustCompile(`(?im)^250[ -]STARTTLS\s*$`)

// authHint says why the server offered no AUTH to sign in with, as
// email.username asks: one that offers it only after STARTTLS (Postfix's
// submission port, smtpd_tls_auth_only) when email.starttls is off, or one that
// offers none. go-mail says "server does not support SMTP AUTH" for both, which
// leaves the operator to guess at the first.
func authHint(err error, o EmailOptions, startTLS bool) error {
	text := err.Error()
	i := strings.Index(text, noAuth)
	if o.Username == "" || i < 0 || strings.HasPrefix(text[i+len(noAuth):], " type") {
		return err
	}
	if !o.StartTLS && !o.ImplicitTLS && startTLS {
		return fmt.Errorf("%w (the relay offers STARTTLS and no AUTH before it, and email.starttls is false: set email.starttls = true for hookd to sign in as email.username)", err)
	}
	return fmt.Errorf("%w (the relay offers no AUTH: email.username and email.password_file are for a relay that asks hookd to sign in)", err)
}

// noAuth is go-mail's error for a server that offers no AUTH when hookd has
// credentials to sign in with.
const noAuth = "server does not support SMTP AUTH"

// sendMail sends m through the configured SMTP server within timeout. A message the
// server accepted is sent, whatever goes wrong after (a reset or a QUIT that fails):
// trying it again would deliver it twice.
func sendMail(ctx context.Context, o EmailOptions, timeout time.Duration, m *mail.Msg) error {
	host, portText, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("email.smtp_addr: %w", err)
	}
	port, err := net.LookupPort("tcp", portText) // a number, or a service name ("smtp") as the configuration allows
	if err != nil {
		return fmt.Errorf("email.smtp_addr: %w", err)
	}
	implicit := o.ImplicitTLS
	tlsConfig := &tls.Config{ServerName: host, RootCAs: o.roots, MinVersion: tls.VersionTLS12}
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(timeout), mail.WithTLSConfig(tlsConfig), mail.WithTLSPolicy(mail.NoTLS)}
	switch {
	case implicit:
		// The dialer below makes the TLS connection. (Not WithSSL: with a dialer of
		// its own, go-mail would then take the connection for unencrypted and
		// offer no password over it.) A relay on TLS offers no STARTTLS, so
		// "opportunistic" asks for none, and reads the connection's TLS state.
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case o.StartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if o.Username != "" {
		// Over TLS, the best mechanism the server offers; without (a local relay,
		// by the operator's choice), PLAIN in clear.
		auth := mail.SMTPAuthAutoDiscover
		if !o.StartTLS && !implicit {
			auth = mail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(o.Username), mail.WithPassword(o.Password))
	}
	end := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	// The relay's address as a dialer reads it: go-mail's own ("%s:%d") has no
	// brackets around an IPv6 address ("::1:25").
	relay := net.JoinHostPort(host, strconv.Itoa(port))
	// The connection is closed when the send ends, however it ends: go-mail leaves
	// it open when the session fails after the greeting (EHLO, STARTTLS) or
	// its QUIT does (a relay that went silent), for the relay to hold until its
	// own timeout and hookd until the garbage collector finds it.
	// It is also closed when ctx ends mid-session (hookd stopping): go-mail reads
	// ctx only while it dials, and a relay that stops answering would otherwise
	// hold the send, and hookd's stop, until timeout.
	var dialled struct {
		sync.Mutex
		conns []net.Conn
		first *smtpConn // the first connection's, what the server offered on it
		cut   bool      // ctx ended: the connections are closed
	}
	closeAll := func(cut bool) {
		dialled.Lock()
		defer dialled.Unlock()
		dialled.cut = dialled.cut || cut
		for _, c := range dialled.conns {
			c.Close()
		}
	}
	defer closeAll(false)
	defer context.AfterFunc(ctx, func() {
		// (Its deadline ends the session as timeout does: end is that.)
		if errors.Is(ctx.Err(), context.Canceled) {
			closeAll(true)
		}
	})()
	opts = append(opts, mail.WithDialContextFunc(func(ctx context.Context, network, _ string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, relay)
		if err != nil {
			return nil, err
		}
		dialled.Lock()
		dialled.conns = append(dialled.conns, nc)
		cut := dialled.cut
		dialled.Unlock()
		if cut {
			nc.Close()
			return nil, context.Cause(ctx)
		}
		c := &smtpConn{Conn: nc, end: end, left: smtpAnswers}
		c.SetDeadline(end)
		dialled.Lock()
		if dialled.first == nil {
			dialled.first = c
		}
		dialled.Unlock()
		if !implicit {
			return c, nil
		}
		tc := tls.Client(c, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		return tc, nil
	}))
	client, err := mail.NewClient(host, opts...)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	cctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	if err := client.DialAndSendWithContext(cctx, m); err != nil && !m.IsDelivered() {
		dialled.Lock()
		startTLS := dialled.first != nil && !implicit && dialled.first.offersStartTLS()
		cut := dialled.cut
		dialled.Unlock()
		if cut {
			// What go-mail says then is of a connection closed under it.
			return mailError(o.Addr, fmt.Errorf("the session was cut short before the relay took the message: %w", context.Cause(ctx)))
		}
		return mailError(o.Addr, authHint(err, o, startTLS))
	}
	return nil
}

// mailError is a failed send's error as the attempt log keeps it, which an
// organisation's staff read: the relay's address, and what failed; a relay's name
// that did not resolve as lookupLine gives it, and a broken connection without
// hookd's own end of it ("read tcp 10.0.0.5:40112->10.0.0.25:587: …" names the
// relay's end only). It is one line, as every error of the attempt log: go-mail
// puts a failed close of the connection on a line of its own ("…: EOF\nfailed to
// close connection: …"), which here follows a "; ".
func mailError(addr string, err error) error {
	var lookup *net.DNSError
	if errors.As(err, &lookup) {
		return fmt.Errorf("smtp %s: %s", addr, lookupLine(lookup))
	}
	// Every connection error in the text, not only the one errors.As finds: go-mail's
	// SendError keeps the errors of a send (an answer that timed out) as text of its
	// own, out of the chain, beside the failed close that is in it.
	text := hookdEnd.ReplaceAllString(err.Error(), "$1 ")
	text = strings.Join(strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
	return &sendError{text: "smtp " + addr + ": " + text, err: err}
}

// hookdEnd is hookd's own end of a connection as a net.OpError writes it before
// the relay's ("read tcp 10.0.0.5:40112->10.0.0.25:587: …", "[2001:db8::5]:40112->").
var hookdEnd = regexp.MustCompile(`\b(tcp[46]?) (?:\[[0-9A-Za-z:.%_-]+\]|[0-9.]+):\d+->`)

// sendError is a failed send's error in the words the attempt log keeps, with the
// error it was made from in its chain (smtpRefusal reads it).
type sendError struct {
	text string
	err  error
}

func (e *sendError) Error() string { return e.text }
func (e *sendError) Unwrap() error { return e.err }

// emailBody is the text of a notification, after the Hub's.
func emailBody(c store.Claimed, info store.HubDelivery, recordURL string) string {
	// Names stored before they had to be one line must not add lines of their own.
	info.OrgName = oneLine(info.OrgName)
	if m := info.Member; m != nil {
		mc := *m
		mc.Name, mc.EPPN, mc.Email = oneLine(mc.Name), oneLine(mc.EPPN), oneLine(mc.Email)
		info.Member = &mc
	}
	who := c.Subject
	if info.Member != nil && info.Member.Name != "" {
		who = info.Member.Name + " (" + c.Subject + ")"
	}
	what := "was updated"
	if c.EventType == store.EventCreated {
		what = "was linked to " + info.OrgName
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The ORCID record of %s %s at %s.\n\n", who, what, c.LastEventAt.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Record: %s%s\n", recordURL, c.Subject)
	if m := info.Member; m != nil {
		if m.Email != "" {
			fmt.Fprintf(&b, "E-mail: %s\n", m.Email)
		}
		if m.EPPN != "" {
			fmt.Fprintf(&b, "eduPersonPrincipalName: %s\n", m.EPPN)
		}
	}
	if c.EventCount > 1 {
		fmt.Fprintf(&b, "\n%d changes since %s are summed up in this message.\n", c.EventCount, c.FirstEventAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	fmt.Fprintf(&b, "\nYou receive this because %s has e-mail notifications for its members' ORCID records enabled in hookd.\n", info.OrgName)
	return b.String()
}

// oneLine turns the line breaks of s into spaces.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ", "\u0085", " ", "\u2028", " ", "\u2029", " ").Replace(s)
}
