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
	"io"
	"log"
	"math/big"
	"net"
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
	switch mode {
	case "starttls":
		srv.TLSConfig = s.tls
	case "implicit":
		ln = tls.NewListener(ln, s.tls)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return s
}

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
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	n := s.srv.inData.Add(1)
	defer s.srv.inData.Add(-1)
	for p := s.srv.peak.Load(); n > p && !s.srv.peak.CompareAndSwap(p, n); p = s.srv.peak.Load() {
	}
	time.Sleep(time.Duration(s.srv.dataDelay.Load()))
	b, err := io.ReadAll(r)
	if err != nil {
		return err
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
