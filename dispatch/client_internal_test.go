package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	mail "github.com/wneessen/go-mail"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenEndpointError is the error oauth2 gives for a token endpoint answering
// status with body.
func tokenEndpointError(t *testing.T, status int, body string) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	cfg := clientcredentials.Config{ClientID: "id", ClientSecret: "client-SECRET-1", TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInHeader}
	_, err := cfg.Token(context.WithValue(context.Background(), oauth2.HTTPClient, DeliveryClient(4, 2)))
	if err == nil {
		t.Fatal("no error")
	}
	return err
}

// TestDescribeKeepsTokenEndpointError: a token endpoint's error keeps its status,
// and an answer's credential keeps the keyword the redaction reads it by.
func TestDescribeKeepsTokenEndpointError(t *testing.T) {
	err := tokenEndpointError(t, http.StatusUnauthorized, `{"message": "Unauthorized", "detail": "unknown client"}`)
	got := describe(err, time.Second, checkReceiver)
	if !strings.Contains(got, "401") {
		t.Errorf("the description lost the token endpoint's status: %q", got)
	}
}

// TestDescribeThenRedact: a credential-shaped value in a token endpoint's
// answer ("password": …) is redacted in the attempt's error, as README promises
// for values hookd did not send.
func TestDescribeThenRedact(t *testing.T) {
	err := tokenEndpointError(t, http.StatusBadRequest, `{"message": "bad request", "password": "pw-OTHER-123"}`)
	r := result{err: "token endpoint: " + describe(err, time.Second, checkTokenEndpoint)} // as call does
	r.sent.addClient("id", "client-SECRET-1")
	r.redactResult()
	if strings.Contains(r.err, "pw-OTHER-123") {
		t.Errorf("a password the token endpoint answered is stored: %q", r.err)
	}
}

// TestDescribeLookupWithoutResolver: a callback's host that does not resolve is
// named in the attempt log, but not the address of hookd's resolver, which is of
// hookd's network (Go's resolver puts it in the error: "lookup x on 10.0.0.2:53").
func TestDescribeLookupWithoutResolver(t *testing.T) {
	err := &url.Error{Op: "Post", URL: "https://hooks.example/x", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "hooks.example", Server: "10.255.255.53:53", IsNotFound: true}}}
	got := describe(err, time.Second, checkReceiver)
	if strings.Contains(got, "10.255.255.53") || !strings.Contains(got, "hooks.example") || !strings.Contains(got, "no such host") {
		t.Errorf("describe: %q; want the name and what failed, without the resolver's address", got)
	}
}

// TestSendMailServicePort: email.smtp_addr may name its port by service, as the
// configuration check allows ("127.0.0.1:smtp"): the relay is dialled at that
// port, not refused as port 0.
func TestSendMailServicePort(t *testing.T) {
	m := mail.NewMsg()
	if err := m.From("hookd@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := m.To("it@a.example"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := sendMail(ctx, EmailOptions{Addr: "127.0.0.1:smtp", From: "hookd@example.org"}, time.Second, m)
	if err != nil && !strings.Contains(err.Error(), "127.0.0.1:25") {
		t.Fatalf("sendMail to 127.0.0.1:smtp: %v; want it dialled at port 25", err)
	}
}

// TestMailErrorLookupWithoutResolver: a relay whose name does not resolve is named
// in the attempt log of an organisation's e-mail, but not the address of hookd's
// resolver; other errors keep their chain (refusedForGood reads it).
func TestMailErrorLookupWithoutResolver(t *testing.T) {
	dns := fmt.Errorf("dial failed: %w", &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "smtp.example", Server: "10.255.255.53:53", IsNotFound: true}})
	got := mailError("smtp.example:587", dns).Error()
	if strings.Contains(got, "10.255.255.53") || !strings.Contains(got, "smtp.example") || !strings.Contains(got, "no such host") {
		t.Errorf("mailError: %q; want the relay and what failed, without the resolver's address", got)
	}
	refused := &mail.SendError{Reason: mail.ErrSMTPRcptTo}
	if err := mailError("smtp.example:587", refused); !errors.Is(err, refused) {
		t.Errorf("mailError(%v) = %v; want the send error kept in its chain", refused, err)
	}
	// A connection broken mid-send names the relay's end, not hookd's.
	reset := &net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 40112},
		Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 25), Port: 587}, Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}
	err := mailError("smtp.example:587", fmt.Errorf("failed to send mail: %w", reset))
	if got := err.Error(); strings.Contains(got, "10.0.0.5") || strings.Contains(got, "40112") ||
		!strings.Contains(got, "smtp smtp.example:587: failed to send mail: read tcp 10.0.0.25:587: read: connection reset by peer") {
		t.Errorf("mailError: %q; want the relay's end of the connection and what failed, not hookd's own address", got)
	}
	if !errors.Is(err, reset) {
		t.Errorf("mailError(%v) = %v; want the network error kept in its chain", reset, err)
	}
	// Over IPv6 too, and in an error's text that does not unwrap to it.
	reset6 := &net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.ParseIP("2001:db8::5"), Port: 40112},
		Addr: &net.TCPAddr{IP: net.ParseIP("2001:db8::25"), Port: 587}, Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}
	if got := mailError("[2001:db8::25]:587", errors.New("send failed: "+reset6.Error())).Error(); strings.Contains(got, "2001:db8::5") ||
		strings.Contains(got, "40112") || !strings.Contains(got, "read tcp [2001:db8::25]:587: read: connection reset by peer") {
		t.Errorf("mailError: %q; want the relay's end of the connection only", got)
	}
}
