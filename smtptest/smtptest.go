// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on
// 127.0.0.1 for tests, keeping every message it accepts: what httptest is for HTTP.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From string   // envelope sender
	To   []string // envelope recipients
	Data string   // the raw message
	User string   // who authenticated, if anyone
	TLS  bool     // the session was encrypted when the message came
}

// Server is a running test SMTP server.
type Server struct {
	Addr string // host:port

	// Roots trusts the server's certificate (NewTLSServer; nil for NewServer).
	Roots *x509.CertPool

	user, pass string // when set, AUTH PLAIN with them is required
	tls        *tls.Config

	mu   sync.Mutex
	msgs []Message

	inData, peak atomic.Int64 // messages being taken now (DATA), and the most at once
	dataDelay    atomic.Int64 // how long DATA waits before it takes a message
	refuse       atomic.Bool  // refuse every message (SetRefuse)
	open         atomic.Int64 // connections open now (Sessions)
	live, most   atomic.Int64 // sessions not yet ended, and the most at once (PeakSessions)

	faultMu sync.Mutex
	delays  map[Stage]time.Duration
	replies map[Stage]*smtp.SMTPError
	drop    bool                       // DropInData
	rcpts   map[string]*smtp.SMTPError // RefuseRecipient's, by address
}

// Stage is a point of a session where the server can be made slow (SetDelay) or
// answer otherwise than it would (SetReply).
type Stage int

const (
	Greeting  Stage = iota // the server's first line
	Mail                   // the answer to MAIL FROM
	Rcpt                   // the answer to RCPT TO
	Data                   // the answer to DATA (354, go on)
	Dot                    // the answer to the message's final dot
	Handshake              // the TLS handshake after STARTTLS (a server of NewTLSServer's StartTLS)
)

// SetDelay makes the server wait d before its answer at stage st (at Handshake,
// before its side of the handshake).
func (s *Server) SetDelay(st Stage, d time.Duration) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if s.delays == nil {
		s.delays = map[Stage]time.Duration{}
	}
	s.delays[st] = d
}

// SetReply makes the server answer code, enhanced (RFC 3463; nil for none) and
// text at stage st, until it is set again with code 0: at Greeting it greets so
// and hangs up (421 is a server that will not serve now), at Mail, Rcpt and Dot
// it refuses the sender, the recipient or the message. At Handshake, any code
// breaks the handshake: the server advertises STARTTLS, says 220 to it, and then
// fails its side of the handshake.
func (s *Server) SetReply(st Stage, code int, enhanced []int, text string) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if s.replies == nil {
		s.replies = map[Stage]*smtp.SMTPError{}
	}
	if code == 0 {
		delete(s.replies, st)
		return
	}
	e := &smtp.SMTPError{Code: code, EnhancedCode: smtp.NoEnhancedCode, Message: text}
	if len(enhanced) == 3 {
		e.EnhancedCode = smtp.EnhancedCode{enhanced[0], enhanced[1], enhanced[2]}
	}
	s.replies[st] = e
}

// RefuseRecipient makes the server answer code, enhanced (RFC 3463; nil for none)
// and text to RCPT TO of the address to (as it comes, compared without regard to
// case), and take the others, until it is set again with code 0.
func (s *Server) RefuseRecipient(to string, code int, enhanced []int, text string) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if s.rcpts == nil {
		s.rcpts = map[string]*smtp.SMTPError{}
	}
	if code == 0 {
		delete(s.rcpts, strings.ToLower(to))
		return
	}
	e := &smtp.SMTPError{Code: code, EnhancedCode: smtp.NoEnhancedCode, Message: text}
	if len(enhanced) == 3 {
		e.EnhancedCode = smtp.EnhancedCode{enhanced[0], enhanced[1], enhanced[2]}
	}
	s.rcpts[strings.ToLower(to)] = e
}

// SetDropInData makes the server hang up partway through each message, after its
// first bytes, without an answer.
func (s *Server) SetDropInData(on bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.drop = on
}

// Sessions is how many connections to the server are open now: a client that
// leaves none behind has none open once it is done (and the server done with it).
func (s *Server) Sessions() int { return int(s.open.Load()) }

// PeakSessions is the most sessions the server had at once: each from its
// connection until the server answers its QUIT (the client is done with it once
// it has that answer, before the server closes the connection) or the connection
// closes, whichever comes first.
func (s *Server) PeakSessions() int { return int(s.most.Load()) }

// fault is what the server is set to do at stage st: wait, then answer with the
// reply when there is one.
func (s *Server) fault(st Stage) *smtp.SMTPError {
	s.faultMu.Lock()
	d, reply := s.delays[st], s.replies[st]
	s.faultMu.Unlock()
	time.Sleep(d)
	return reply
}

// SetRefuse makes the server refuse each message (451 at MAIL) while on.
func (s *Server) SetRefuse(on bool) { s.refuse.Store(on) }

// SetDataDelay makes each DATA wait d before taking its message, as a slow relay
// does.
func (s *Server) SetDataDelay(d time.Duration) { s.dataDelay.Store(int64(d)) }

// PeakData is the most messages the server was taking at once (sessions in
// DATA): a client that waits for one message's answer before it begins the next
// never has more of them at once than it has sessions.
func (s *Server) PeakData() int { return int(s.peak.Load()) }

// NewServer starts a server, closed when tb ends. With a user, it requires
// AUTH PLAIN with user and pass (over plain TCP, as a local relay would).
func NewServer(tb testing.TB, user, pass string) *Server {
	tb.Helper()
	return start(tb, &Server{user: user, pass: pass}, "")
}

// TLS says how a server made by NewTLSServer speaks TLS.
type TLS int

const (
	StartTLS    TLS = iota // offers STARTTLS (a submission port, 587), and takes AUTH only after it
	ImplicitTLS            // TLS from the first byte (port 465)
)

// NewTLSServer is NewServer with TLS, as mode says, on a certificate for
// 127.0.0.1 and localhost that only Roots trusts.
func NewTLSServer(tb testing.TB, user, pass string, mode TLS) *Server {
	tb.Helper()
	s := &Server{user: user, pass: pass}
	cert, roots, err := certificate()
	if err != nil {
		tb.Fatalf("smtptest: certificate: %v", err)
	}
	s.Roots = roots
	s.tls = &tls.Config{Certificates: []tls.Certificate{cert}}
	if mode == ImplicitTLS {
		return start(tb, s, "implicit")
	}
	return start(tb, s, "starttls")
}

func start(tb testing.TB, s *Server, mode string) *Server {
	tb.Helper()
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = mode == ""
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0) // a client that hangs up, or refuses the certificate, is what tests do
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	ln = &listener{Listener: ln, srv: s} // under TLS: it counts connections, and sees what goes out before TLS
	switch mode {
	case "starttls":
		srv.TLSConfig = s.tls.Clone()
		srv.TLSConfig.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if err := s.fault(Handshake); err != nil {
				return nil, err
			}
			return &s.tls.Certificates[0], nil
		}
		srv.TLSConfig.Certificates = nil
	case "implicit":
		ln = tls.NewListener(ln, s.tls)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return s
}

// listener counts the server's open connections, and makes the greeting and the
// answer to DATA late or, for the greeting, another (SetDelay, SetReply): go-smtp
// writes both itself. It sees the connection under TLS, so the answer to DATA is
// made late on a server without TLS only.
type listener struct {
	net.Listener
	srv *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.srv.open.Add(1)
		for n, most := l.srv.live.Add(1), l.srv.most.Load(); n > most && !l.srv.most.CompareAndSwap(most, n); most = l.srv.most.Load() {
		}
		wc := &conn{Conn: c, srv: l.srv}
		l.srv.faultMu.Lock()
		reply := l.srv.replies[Greeting]
		l.srv.faultMu.Unlock()
		if reply == nil {
			return wc, nil
		}
		go func() { // a greeting that turns the client away, and no session
			defer wc.Close()
			wc.SetDeadline(time.Now().Add(10 * time.Second))
			line := fmt.Sprintf("%d %s", reply.Code, reply.Message)
			if e := reply.EnhancedCode; e != smtp.NoEnhancedCode {
				line = fmt.Sprintf("%d %d.%d.%d %s", reply.Code, e[0], e[1], e[2], reply.Message)
			}
			io.WriteString(wc, line+"\r\n")
		}()
	}
}

// conn is a connection of the server's, counted until it is closed.
type conn struct {
	net.Conn
	srv    *Server
	writes atomic.Int64
	closed sync.Once
	ended  sync.Once // the session no longer counts as live
}

func (c *conn) Write(p []byte) (int, error) {
	switch {
	case c.writes.Add(1) == 1: // the greeting
		c.srv.fault(Greeting)
	case len(p) >= 4 && string(p[:4]) == "354 ":
		c.srv.fault(Data)
	case len(p) >= 4 && string(p[:4]) == "221 ": // the answer to QUIT: the session ends
		c.end()
	}
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() { c.srv.open.Add(-1) })
	c.end()
	return err
}

// end counts the session as ended, once.
func (c *conn) end() { c.ended.Do(func() { c.srv.live.Add(-1) }) }

// certificate makes a self-signed certificate for 127.0.0.1 and localhost, and the
// pool that trusts it.
func certificate() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots, nil
}

// Messages returns what the server accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{srv: s, conn: c}, nil
}

type session struct {
	srv  *Server
	conn *smtp.Conn
	msg  Message
	auth bool
}

func (s *session) AuthMechanisms() []string {
	if s.srv.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.srv.user || pass != s.srv.pass {
			return errors.New("bad credentials")
		}
		s.auth, s.msg.User = true, user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := s.srv.fault(Mail); err != nil {
		return err
	}
	if s.srv.refuse.Load() {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	if s.srv.user != "" && !s.auth {
		return smtp.ErrAuthRequired
	}
	s.msg.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.srv.fault(Rcpt); err != nil {
		return err
	}
	s.srv.faultMu.Lock()
	refused := s.srv.rcpts[strings.ToLower(to)]
	s.srv.faultMu.Unlock()
	if refused != nil {
		return refused
	}
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	n := s.srv.inData.Add(1)
	defer s.srv.inData.Add(-1)
	for p := s.srv.peak.Load(); n > p && !s.srv.peak.CompareAndSwap(p, n); p = s.srv.peak.Load() {
	}
	time.Sleep(time.Duration(s.srv.dataDelay.Load()))
	s.srv.faultMu.Lock()
	drop := s.srv.drop
	s.srv.faultMu.Unlock()
	if drop {
		io.ReadFull(r, make([]byte, 16))
		s.conn.Close() // gone partway through the message, without an answer
		return errors.New("hung up")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.srv.fault(Dot); err != nil {
		return err // taken whole, then refused
	}
	s.msg.Data = string(b)
	_, s.msg.TLS = s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, s.msg)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.msg = Message{User: s.msg.User} }
func (s *session) Logout() error { return nil }
