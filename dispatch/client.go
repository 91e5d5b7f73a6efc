package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"hookd/ssrf"
)

// newHTTPClient is the client of every delivery but those to hookd's own inbox:
// keep-alive, a per-host connection cap, no redirects, no proxies from the
// environment, and the SSRF guard on every resolved address at dial time.
func newHTTPClient(opts Options) *http.Client {
	// With allow_private_targets, private addresses pass and only those where hookd
	// never delivers (unspecified, link-local, multicast, broadcast, ...) are refused.
	return newGuardedClient(opts, ssrf.ControlFor(opts.AllowPrivateTargets))
}

// newInboxClient is the client of the deliveries to hookd's own inbox: the same,
// but its dialer connects to hookd's own address and nowhere else.
func newInboxClient(opts Options) *http.Client {
	return newGuardedClient(opts, opts.Inbox.Control)
}

func newGuardedClient(opts Options, control func(network, address string, c syscall.RawConn) error) *http.Client {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second, Control: control}
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, address)
		if err != nil && isTimeout(err) && ctx.Err() == nil {
			if d, ok := ctx.Deadline(); !ok || time.Now().Before(d) {
				// The dialer's own limit, before the call's: the host never took
				// the connection (it is down, or a firewall drops what hookd sends).
				return nil, connectTimeout{err}
			}
		}
		return c, err
	}
	next := &http.Transport{
		Proxy:                  nil,
		DialContext:            dial,
		MaxIdleConns:           opts.Workers,
		MaxIdleConnsPerHost:    opts.PerHost,
		MaxConnsPerHost:        opts.PerHost,
		IdleConnTimeout:        idleConnTimeout,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: maxResponseHeader, // as on plain http (Go's default is 10 MiB)
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{
		// The transport bounds each call by opts.Timeout (see transport).
		Transport: newTransport(dial, next, opts.PerHost, opts.Workers, opts.Timeout, idleConnTimeout),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// tokenClientOf is c for token requests: hookd's User-Agent ua, and an Accept of
// JSON (as ORCID's documentation asks for its tokens: its endpoint answers as
// the Accept header says), on every request it sends, over c's transport (its
// connections, limits and SSRF guard).
func tokenClientOf(c *http.Client, ua string) *http.Client {
	return &http.Client{Transport: tokenHeaders{ua: ua, next: c.Transport}, CheckRedirect: c.CheckRedirect}
}

// tokenHeaders sets the User-Agent and Accept of the token requests it carries.
type tokenHeaders struct {
	ua   string
	next http.RoundTripper
}

func (t tokenHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper leaves its request as it was
	r.Header.Set("User-Agent", t.ua)
	r.Header.Set("Accept", "application/json")
	return t.next.RoundTrip(r)
}

// dialTimeout bounds the making of a connection, tlsHandshakeTimeout its TLS
// handshake, each within the call's own timeout.
const (
	dialTimeout         = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
)

// connectTimeout is the error of a connection that the host did not take within
// dialTimeout, the call's timeout not yet reached.
type connectTimeout struct{ error }

func (e connectTimeout) Unwrap() error { return e.error }

// errTLSHandshakeTimeout is the standard transport's words for a TLS handshake
// that did not end within its TLSHandshakeTimeout (its error has no type of its own).
const errTLSHandshakeTimeout = "net/http: TLS handshake timeout"

// redirectLine is what an attempt says of resp, a 3xx that is not followed (the
// call's credentials would go along): where it points, resolved against the URL
// called (a Location is often a path alone), as URLs are logged. It is "" for
// another status, or a 3xx without a Location (a 304, a 300), whose status says
// it all; err is Location's error then, ErrNoLocation for none.
func redirectLine(resp *http.Response) (string, error) {
	if resp.StatusCode < 300 || resp.StatusCode >= 400 {
		return "", nil
	}
	loc, err := resp.Location()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("HTTP %d redirect to %q not followed", resp.StatusCode, redact(loc.String())), nil
}

// idleConnTimeout is how long a keep-alive connection is kept without a call.
const idleConnTimeout = 90 * time.Second

// drainLimit bounds how much of a response body is read and thrown away so its
// connection can be reused; a longer body costs its connection instead.
const drainLimit = 64 << 10

// drain reads what is left of a response body (bounded) so the connection can be
// reused, and closes it.
func drain(resp *http.Response) error {
	_, err := io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	resp.Body.Close()
	return err
}

// describe turns a client error into a short line for the attempt log, which a
// webhook's owner reads: a refused address is named by its range only, a name
// that does not resolve without the address of hookd's resolver, and a failed
// connection (refused, reset) without its addresses: hookd's own, and the one the
// callback's host resolved to. A connection refused is followed by what to check,
// the question check asks of what was called ("" for none).
func describe(err error, timeout time.Duration, check string) string {
	var blocked *ssrf.ErrBlocked
	var lookup *net.DNSError
	var held *tokenRefusal
	var both *refusedBothWays
	switch {
	case errors.As(err, &held) && held.again:
		// A token endpoint's failure handed out again: told as it was, and
		// that it was.
		return describe(held.err, timeout, check) + held.suffix()
	case errors.As(err, &both):
		// A token endpoint's refusal of the credentials both ways: the
		// header's answer, then the form's try as any failure is told.
		return both.words(describe(both.form, timeout, check))
	case errors.As(err, &blocked):
		return blocked.Unnamed()
	case errors.As(err, new(connectTimeout)):
		// Not the call's timeout, which a line of its own would name: the host
		// never took the connection, nothing was sent.
		return fmt.Sprintf("connect: timeout after %s (the host did not take the connection)", dialTimeout)
	case isTLSHandshakeTimeout(err):
		return fmt.Sprintf("TLS handshake: timeout after %s", tlsHandshakeTimeout)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("timeout after %s", timeout)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "the receiver closed the connection without answering"
	case errors.As(err, &lookup):
		return lookupLine(lookup)
	}
	// *url.Error repeats the method and URL; keep the cause. Nothing else is cut:
	// a token endpoint's error carries its status and its answer, oauth2's OAuth
	// error or the line of it a tokenAnswerError made (with the client's
	// credentials redacted before it was cut), which the redaction then reads
	// whole.
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && (op.Source != nil || op.Addr != nil) {
		msg = strings.Replace(msg, op.Error(), opLine(op), 1)
	}
	if check != "" && errors.Is(err, syscall.ECONNREFUSED) {
		msg += " (nothing listens on that port: " + check + ")"
	}
	return msg
}

// What a refused connection asks to check, by what was called. A receiver is
// most often not started yet, or listening on another port than its URL names
// (a developer's first callback).
const (
	checkReceiver         = "is the receiver running, on the port its URL names?"
	checkTokenEndpoint    = "is the token endpoint running, on the port its URL names?"
	checkUpstreamAPI      = "is the upstream ORCID API running, on the port upstream.api_url names?"
	checkUpstreamTokenURL = "is the token endpoint running, on the port upstream.token_url names?"
)

// opLine is a failed connection's error without the addresses Go's error names
// ("dial tcp 10.0.0.7:443: connect: connection refused", "read tcp
// 10.0.0.5:40112->203.0.113.9:443: read: connection reset by peer"): what failed,
// "connect: connection refused", "read: connection reset by peer".
func opLine(e *net.OpError) string {
	if e.Err == nil {
		return e.Op
	}
	var sys *os.SyscallError
	if errors.As(e.Err, &sys) {
		return e.Err.Error() // names its call already
	}
	return e.Op + ": " + e.Err.Error()
}

// lookupLine is a failed name lookup as an attempt log gives it: the name and
// what failed, without the resolver Go's error names ("lookup x on 10.0.0.2:53"),
// an address of hookd's network.
func lookupLine(e *net.DNSError) string { return "lookup " + e.Name + ": " + e.Err }

// isTLSHandshakeTimeout reports whether err is the standard transport's TLS
// handshake timeout, as the transport gives it or wrapped in the *url.Error of a
// client's call (a token endpoint's, through oauth2).
func isTLSHandshakeTimeout(err error) bool {
	if !isTimeout(err) {
		return false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error() == errTLSHandshakeTimeout
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
