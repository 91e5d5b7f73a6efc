package dispatch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"hookd/store"
)

// tokenKeep and tokenSources bound the token cache: a subscription's source is
// dropped after an hour without a delivery (its next delivery fetches a new
// token), and at most tokenSources are kept.
const (
	tokenKeep    = time.Hour
	tokenSources = 10000
)

// tokenCache keeps one OAuth client-credentials token source per subscription with
// auth type client_credential: a token is fetched from the subscription's token URL
// once and reused until it expires.
type tokenCache struct {
	client *http.Client // the SSRF-guarded client, for the token endpoint too
	now    func() time.Time

	mu      sync.Mutex
	sources *recent[int64, *tokenSource] // by subscription, stamped with its last use
}

// Token endpoints' refusals, and tokens refused at once.
const (
	// tokenRefusedFor is how long a token endpoint's refusal (an answer, not a
	// network error) is handed to the calls that need a token without asking it
	// again, when it said nothing of when to come back; tokenRefusedMax bounds its
	// Retry-After. Without it, every delivery waiting for a token (each of an
	// organisation's 100,000 registration orders) asked once a retry.
	tokenRefusedFor = 30 * time.Second
	tokenRefusedMax = time.Hour
	// tokenUnansweredFor is how long a fetch that got no answer (a connection
	// refused or cut, the call's deadline) is handed to the calls that need a
	// token without asking again.
	tokenUnansweredFor = 10 * time.Second
	// tokenFresh: a token the receiver refuses within this long of its fetch is not
	// replaced: the endpoint would issue one the receiver refuses alike, and every
	// delivery would fetch (and leave behind) a token of its own.
	tokenFresh = time.Minute
	// tokenEarly: a token is not sent within this long of its expiry (oauth2's
	// margin), so that it does not expire on the way; a token that lives shorter
	// than twice that is sent for the first half of its life (oauth2's
	// Token.Valid takes one of expires_in 10 s or less for expired at once: every
	// call would fetch one).
	tokenEarly = 10 * time.Second
)

// tokenSource is one token endpoint's client credentials and the token they got,
// reused until it expires. A fetch runs in the context of the call that needs it
// (its deadline, the shutdown's cancel), one at a time: calls that need a token
// meanwhile wait for that fetch, and take its token, or its refusal.
type tokenSource struct {
	key  string // what the source was made from; a changed subscription gets a new one
	cfg  clientcredentials.Config
	turn chan struct{} // held by the call fetching a token; guards what follows
	tok  *oauth2.Token // the last token fetched
	// style is how the client's credentials got a token from the endpoint
	// (fetch), when cfg leaves it to be found: unknown until they have.
	style oauth2.AuthStyle
	// fetched is when tok was fetched; refusal the endpoint's last refusal, handed
	// out until its until.
	fetched time.Time
	refusal *tokenRefusal
	// taken is the last token a call's receiver answered with a 2xx (under
	// takenMu, not turn: a call's outcome does not wait for a fetch): a 401 to
	// it later is its revocation's, not a refusal of what the endpoint issues.
	takenMu sync.Mutex
	taken   string
	// useUntil is when tok is taken for expired (on the wall clock, as its
	// Expiry): tokenEarly before its expiry, or half way through a life shorter
	// than twice that.
	useUntil time.Time
}

// maxToken is the longest access token hookd sends (and keeps), in bytes.
const maxToken = 16 << 10

// tokenRefusal is a token endpoint's answer refusing a token, or a fetch of it
// that got no answer (status 0).
type tokenRefusal struct {
	err        error
	status     int
	retryAfter string    // its Retry-After header
	at         time.Time // when it came
	until      time.Time // when the endpoint is asked again
	again      bool      // handed out again, not fetched by this call
}

func (e *tokenRefusal) Error() string { return e.err.Error() + e.suffix() }

// suffix says, of a refusal handed out again, that the endpoint was not asked
// for this call, when the refusal came, and when the endpoint is asked again: it
// is most often another delivery's, and the first attempt of this one.
func (e *tokenRefusal) suffix() string {
	if !e.again {
		return ""
	}
	what := "its answer at " + e.at.UTC().Format(time.TimeOnly) + " UTC to an earlier request"
	if e.status == 0 {
		what = "the failure at " + e.at.UTC().Format(time.TimeOnly) + " UTC of an earlier request to it"
	}
	return " (the endpoint was not asked for this attempt: this is " + what + " with the same credentials, " +
		"which hookd takes as the answer until " + e.until.UTC().Format(time.TimeOnly) + " UTC, then asks again)"
}

func (e *tokenRefusal) Unwrap() error { return e.err }

func newTokenSource(key string, cfg clientcredentials.Config) *tokenSource {
	return &tokenSource{key: key, cfg: cfg, turn: make(chan struct{}, 1)}
}

// token returns the cached token while it is valid and is not rejected (an access
// token the receiver refused: a new one is fetched, unless another call has
// already fetched one since), else fetches one through client within ctx. While a
// refusal of the endpoint holds (tokenRefusedFor, or its Retry-After), it is the
// answer, without asking again.
func (s *tokenSource) token(ctx context.Context, client *http.Client, rejected string, now time.Time) (string, error) {
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.turn }()
	if s.tok != nil && s.tok.AccessToken == rejected {
		s.tok = nil
	}
	if s.usable() {
		return s.tok.AccessToken, nil
	}
	if r := s.refusal; r != nil && now.Before(r.until) {
		again := *r
		again.again = true
		return "", &again
	}
	seen := &answerSeen{next: client.Transport}
	if seen.next == nil {
		seen.next = http.DefaultTransport
	}
	tc := *client
	tc.Transport = seen
	asked := time.Now()
	tok, err := s.fetch(context.WithValue(ctx, oauth2.HTTPClient, &tc), seen)
	if err != nil {
		// After both ways of sending the credentials, the last (the form's) is
		// the refusal: its answer's status and Retry-After; the header's answer
		// is told before it.
		var both *refusedBothWays
		if errors.As(err, &both) {
			err = both.form
		}
		var answer *http.Response
		answer, err = s.answered(err, seen)
		switch {
		case answer != nil:
		case errors.Is(err, context.Canceled):
			return "", err // the shutdown's cancel, not the endpoint's fault: the next start asks
		default:
			// No answer (the network, the call's deadline): the calls of the
			// next moments take this failure instead of each asking again,
			// every registration of an organisation's thousands at each retry.
			s.refusal = &tokenRefusal{err: both.with(s.unanswered(err)), at: now, until: now.Add(tokenUnansweredFor)}
			return "", s.refusal
		}
		r := &tokenRefusal{err: both.with(s.words(err)), status: answer.StatusCode, retryAfter: s.retryAfterKept(answer.Header.Get("Retry-After")), at: now, until: now.Add(tokenRefusedFor)}
		if d, ok := retryAfter(r.retryAfter, now); ok {
			r.until = now.Add(min(d, tokenRefusedMax))
		}
		s.refusal = r
		return "", r
	}
	if tt := tok.TokenType; tt != "" && !strings.EqualFold(tt, "bearer") {
		// RFC 6749 §7.1: a token of a type hookd does not understand (mac,
		// DPoP, N_A) is not used; as "Authorization: Bearer" it would be
		// refused, or taken where it should not be. The answer is a refusal,
		// handed on as one.
		status := http.StatusOK
		if seen.resp != nil {
			status = seen.resp.StatusCode
		}
		r := &tokenRefusal{err: notBearer(status, tt, tok.AccessToken, s.cfg.ClientID, s.cfg.ClientSecret), status: status, at: now, until: now.Add(tokenRefusedFor)}
		s.refusal = r
		return "", r
	}
	if n := len(tok.AccessToken); n > maxToken {
		// Not sent: as "Authorization: Bearer" it is a header most servers
		// refuse (nginx's and Apache's lines stop at 8 KiB); nor kept, each of the
		// cache's thousands of sources holding up to the 1 MiB oauth2 reads.
		status := http.StatusOK
		if seen.resp != nil {
			status = seen.resp.StatusCode
		}
		r := &tokenRefusal{err: fmt.Errorf("HTTP %d issued a token of %d bytes, which hookd does not send: it sends tokens of at most %d KiB, as most servers refuse a longer header", status, n, maxToken>>10),
			status: status, at: now, until: now.Add(tokenRefusedFor)}
		s.refusal = r
		return "", r
	}
	// The token alone: oauth2's keeps the whole answer besides (every field of
	// it parsed, its up to 1 MiB many times over), which the source would hold
	// for as long as it is kept, each of the cache's thousands; and copied, as a
	// form-encoded answer's token is a part of the whole answer's text.
	tok = &oauth2.Token{AccessToken: strings.Clone(tok.AccessToken), TokenType: strings.Clone(tok.TokenType), Expiry: tok.Expiry}
	s.tok, s.fetched, s.refusal = tok, now, nil
	s.useUntil = time.Time{}
	if !tok.Expiry.IsZero() {
		s.useUntil = tok.Expiry.Add(-min(tokenEarly, tok.Expiry.Sub(asked)/2))
	}
	return tok.AccessToken, nil
}

// answered is err, a fetch's, in words when an answer came (seen): an OAuth
// error as oauth2 words it, another answer's status and what its body says on
// one line (answerError), or, for an answer read whole that holds no token, its
// status saying so; and that answer. Without one, err is as it came, and the
// answer nil.
func (s *tokenSource) answered(err error, seen *answerSeen) (*http.Response, error) {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.Response != nil:
		if re.ErrorCode == "" {
			return re.Response, s.answerError(re)
		}
		return re.Response, err
	case seen.whole():
		// An answer read whole that holds no token (JSON cut short, a page in
		// HTML, no access_token): as much a refusal as an error's, which every
		// call would otherwise ask again for.
		return seen.resp, fmt.Errorf("HTTP %d (%s) holding no token: %w", seen.resp.StatusCode, contentType(seen.resp), err)
	}
	return nil, err
}

// words is err, the error of an answer that refused a token, as its words: the
// client's credentials redacted, then bounded (twice what an attempt's error
// keeps, so that the attempt's own redaction and cut see what they saw before).
// It holds no more of the answer: oauth2's error keeps its whole body, and its
// response, which a refusal handed out for as long as it holds would keep too.
func (s *tokenSource) words(err error) error {
	return refusalWords(strings.Clone(truncate(s.redacted(err.Error()), 2*maxErrorText))) // not a part of the whole text
}

// redacted is text, a token endpoint's answer or its words, without the client's
// credentials in any form they may come back in.
func (s *tokenSource) redacted(text string) string {
	var secrets sent
	secrets.addClient(s.cfg.ClientID, s.cfg.ClientSecret)
	return secrets.redact(text)
}

// unanswered is err, the error of a fetch that got no answer, as its refusal
// keeps it: as it came, for describe to tell (a timeout, a connection refused, a
// name that does not resolve), unless it holds more of the endpoint than its
// words: a TLS certificate the handshake refused (the whole chain the endpoint
// sent, up to the 256 KiB Go reads, parsed beside its bytes), or words longer
// than its words are kept (a status line that does not read, quoted whole, up to
// the 64 KiB an answer's headers may take). Those are kept as their words
// (words), in the *url.Error they came in, which describe leaves out.
func (s *tokenSource) unanswered(err error) error {
	var cert *tls.CertificateVerificationError
	if !errors.As(err, &cert) && len(err.Error()) <= 2*maxErrorText {
		return err
	}
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: ue.URL, Err: s.words(ue.Err)}
	}
	return s.words(err)
}

// retryAfterKept is h, the Retry-After of an answer that refused a token, as
// its refusal keeps it, bounded as its words are: one that reads as seconds or
// an HTTP date reads the same (a count of seconds written longer than an HTTP
// date, as the count it reads as; a date written long, its seconds with a
// fraction, as the time it reads as), one that does not, as the attempt quotes it
// (retryAfterQuoted), the client's credentials redacted, then cut to twice
// that. Kept whole, it was up to the 64 KiB an answer's headers may take.
func (s *tokenSource) retryAfterKept(h string) string {
	const quoted = 64 // retryAfterQuoted's
	if len(h) <= quoted {
		return h
	}
	if secs, err := strconv.ParseUint(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		return strconv.FormatUint(secs, 10)
	}
	if at, ok := httpDate(h); ok {
		// Its seconds with a fraction written long: the time it reads as, which
		// a cut would leave unread (" GMT" gone).
		return at.Format("Mon, 02 Jan 2006 15:04:05.999999999 GMT")
	}
	return strings.Clone(truncate(s.redacted(h), 2*quoted))
}

// refusalWords is a token endpoint's refusal in words (tokenSource.words).
type refusalWords string

func (e refusalWords) Error() string { return string(e) }

// refusedBothWays is a token endpoint's refusal of the client's credentials
// sent both ways fetch tries: its answer to them in an Authorization header
// (HTTP Basic), in words, and then the form's try, which is the refusal (its
// status, its Retry-After, whether it was answered at all) and what it
// unwraps to. Told by the form's alone, a 401 invalid_client to a wrong secret
// in the header read as the form's 400 of an endpoint that takes no
// credentials there.
type refusedBothWays struct {
	header string // redacted and bounded: fetch
	form   error
}

func (e *refusedBothWays) Error() string { return e.words(e.form.Error()) }

// words is the refusal with form as the words of the form's try (describe's).
func (e *refusedBothWays) words(form string) string {
	return "credentials as HTTP Basic: " + e.header + "; in the form: " + form
}

func (e *refusedBothWays) Unwrap() error { return e.form }

// with is form, the form's try in words, after the header's answer when both
// ways were tried (e not nil).
func (e *refusedBothWays) with(form error) error {
	if e == nil {
		return form
	}
	e.form = form
	return e
}

// fetch asks the endpoint for a token within ctx, which carries the client
// whose transport is seen. When cfg does not say how the client's credentials
// are sent (a callback's), they go in an Authorization header (HTTP Basic),
// and after an answer that may refuse them there (a 4xx but a 429, a 2xx
// without a token), in the form, as oauth2 finds it out; the way that got a
// token is kept, and when neither did, the error says what both got
// (refusedBothWays). After no answer (a connection not taken, a TLS handshake
// that never ends, the call's deadline), a redirect, a 429 or a 5xx, the other
// way is not tried: it would wait as long again, or ask at once an endpoint
// that said to wait, and tell nothing of how the credentials are taken.
func (s *tokenSource) fetch(ctx context.Context, seen *answerSeen) (*oauth2.Token, error) {
	style, probe := s.cfg.AuthStyle, false
	if style == oauth2.AuthStyleAutoDetect {
		style, probe = s.style, s.style == oauth2.AuthStyleAutoDetect
		if probe {
			style = oauth2.AuthStyleInHeader
		}
	}
	tok, err := s.fetchAs(ctx, style)
	if err != nil && probe && seen.resp != nil && mayRefuseStyle(seen.resp.StatusCode) {
		// The header's answer in words, with the client's credentials redacted
		// before it is bounded (one cut short would slip past the outcome's
		// redaction), so that the form's has room after it.
		_, header := s.answered(err, seen)
		first := strings.Clone(strings.ToValidUTF8(truncate(strings.Join(strings.Fields(s.redacted(header.Error())), " "), 2*lineMax), "?"))
		seen.resp, seen.eof = nil, false
		style = oauth2.AuthStyleInParams
		if tok, err = s.fetchAs(ctx, style); err != nil {
			err = &refusedBothWays{header: first, form: err}
		}
	}
	if err == nil && probe {
		s.style = style
	}
	return tok, err
}

// fetchAs asks the endpoint for a token with the client's credentials sent as
// style says.
func (s *tokenSource) fetchAs(ctx context.Context, style oauth2.AuthStyle) (*oauth2.Token, error) {
	cfg := &clientcredentials.Config{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, TokenURL: s.cfg.TokenURL,
		Scopes: s.cfg.Scopes, EndpointParams: s.cfg.EndpointParams, AuthStyle: style}
	return cfg.Token(ctx)
}

// mayRefuseStyle reports whether a token endpoint's answer of status, which
// gave no token, may refuse the way the client's credentials were sent: a 4xx
// (RFC 6749's invalid_client is a 401 or a 400) but a 429, or a 2xx (some
// endpoints answer an OAuth error with a 200).
func mayRefuseStyle(status int) bool {
	return status >= 200 && status < 300 || status >= 400 && status < 500 && status != http.StatusTooManyRequests
}

// notBearer is the error of a token endpoint's answer of status that issued
// token of tokenType, which is not bearer: the type named, quoted and bounded,
// with the token and the client's credentials (id, secret) redacted (an
// endpoint may echo them anywhere).
func notBearer(status int, tokenType, token, id, secret string) error {
	var secrets sent
	secrets.add(token)
	secrets.addClient(id, secret)
	tt := strings.ToValidUTF8(truncate(secrets.redact(tokenType), 64), "?")
	return fmt.Errorf("HTTP %d issued a token of token_type %q, which hookd does not send: it sends bearer tokens only", status, tt)
}

// tokenAnswerError is a token endpoint's answer that refused a token without an
// OAuth error (RFC 6749's "error", which oauth2 words on one line): a proxy's 502
// page, a load balancer's text, another JSON. oauth2's own words for it are its
// status and its whole body (a proxy's page, 77 lines), which would be an
// attempt's error and a registration's state; these are one line, as an
// answer of the API's is (answerSummary).
type tokenAnswerError struct {
	text string
	err  *oauth2.RetrieveError
}

func (e *tokenAnswerError) Error() string { return e.text }
func (e *tokenAnswerError) Unwrap() error { return e.err }

// answerError is re, an answer without an OAuth error, in one line: its status
// and what its body says, the source's client credentials redacted first (an
// error page may echo the request), so that none is cut short where the line
// ends and slips past the redaction of the call's outcome. A redirect, which is
// not followed (the client secret would go along), says where it points, as a
// call's does: a token URL written with http:// where its server moved to https://
// answers every fetch with one.
func (s *tokenSource) answerError(re *oauth2.RetrieveError) error {
	if line, _ := redirectLine(re.Response); line != "" {
		return &tokenAnswerError{text: line, err: re}
	}
	return &tokenAnswerError{text: answerSummary(re.Response.StatusCode, s.redacted(string(re.Body))), err: re}
}

// usable reports whether the source's token can be sent now: it has no expiry,
// or it is short of useUntil.
func (s *tokenSource) usable() bool {
	return s.tok != nil && s.tok.AccessToken != "" && (s.tok.Expiry.IsZero() || time.Now().Before(s.useUntil))
}

// answerSeen is a token request's transport, which keeps the endpoint's answer
// and whether its body was read whole: oauth2 tells an answer it cannot read as
// a token apart from no answer only in its error's words.
type answerSeen struct {
	next http.RoundTripper
	resp *http.Response
	eof  bool // set by the body the caller reads, in the caller's goroutine
}

func (a *answerSeen) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.next.RoundTrip(r)
	if err == nil {
		a.resp, a.eof = resp, false
		resp.Body = &eofBody{ReadCloser: resp.Body, eof: &a.eof}
	}
	return resp, err
}

// whole reports whether an answer came and its body was read to its end.
func (a *answerSeen) whole() bool { return a.resp != nil && a.eof }

// eofBody is a response body that notes when it was read to its end.
type eofBody struct {
	io.ReadCloser
	eof *bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		*b.eof = true
	}
	return n, err
}

// contentType is an answer's media type, or "no Content-Type".
func contentType(resp *http.Response) string {
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil {
		return mt
	}
	return "no Content-Type"
}

// fresh reports whether token is the source's own, fetched less than tokenFresh
// before now.
func (s *tokenSource) fresh(ctx context.Context, token string, now time.Time) bool {
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-s.turn }()
	return s.tok != nil && s.tok.AccessToken == token && now.Sub(s.fetched) < tokenFresh &&
		(s.tok.Expiry.IsZero() || time.Now().Before(s.tok.Expiry)) && // an expired one's 401 is its expiry's
		!s.wasTaken(token) // as is a revoked one's
}

// took notes that a receiver answered a call with token with a 2xx.
func (s *tokenSource) took(token string) {
	s.takenMu.Lock()
	defer s.takenMu.Unlock()
	s.taken = token
}

func (s *tokenSource) wasTaken(token string) bool {
	s.takenMu.Lock()
	defer s.takenMu.Unlock()
	return s.taken == token
}

// tokenWait gives r the time a token endpoint's 429 or 503 refusing a token (err)
// said to come back at, so the delivery waits for it as for a receiver's: the
// refusal's own time, as an HTTP date (rounded up to its second), not its
// Retry-After again from this call's moment (a refusal is handed on for as long).
// A Retry-After that is neither seconds nor an HTTP date is given as it came,
// which the outcome backs off from, saying so, as from a receiver's.
func (r *result) tokenWait(err error) {
	var tr *tokenRefusal
	if errors.As(err, &tr) && (tr.status == http.StatusTooManyRequests || tr.status == http.StatusServiceUnavailable) && tr.retryAfter != "" {
		r.retryAfter, r.tokenAsked = tr.retryAfter, true
		if _, ok := retryAfterAsked(tr.retryAfter, tr.until); ok {
			at := tr.until.UTC().Add(time.Second - time.Nanosecond).Truncate(time.Second)
			r.retryAfter = at.Format(http.TimeFormat)
		}
	}
}

func newTokenCache(client *http.Client, now func() time.Time) *tokenCache {
	return &tokenCache{client: client, now: now, sources: newRecent[int64, *tokenSource](tokenKeep, tokenSources)}
}

// token returns an access token for t, fetched within ctx (the call's: its
// deadline bounds the fetch); rejected, when not "", is a token the receiver
// refused, which is not handed out again (calls refused at once share one new
// token).
func (c *tokenCache) token(ctx context.Context, t *store.Target, rejected string) (string, error) {
	now := c.now()
	// A fetch that failed without an answer (or a call that gave up waiting for
	// one) leaves the source as it was, with no token or its last: the next call
	// fetches in its turn.
	return c.source(t, now).token(ctx, c.client, rejected, now)
}

// fresh reports whether token is t's, fetched moments ago (tokenFresh): a 401 to
// it is the receiver's answer to any token the endpoint issues, not a reason to
// fetch another.
func (c *tokenCache) fresh(ctx context.Context, t *store.Target, token string) bool {
	now := c.now()
	return c.source(t, now).fresh(ctx, token, now)
}

// took notes that t's receiver answered a call with token with a 2xx (fresh).
func (c *tokenCache) took(t *store.Target, token string) {
	now := c.now()
	c.source(t, now).took(token)
}

// source is t's token source, made anew when t's credentials changed.
func (c *tokenCache) source(t *store.Target, now time.Time) *tokenSource {
	key := t.Auth.ClientID + "\x00" + t.Auth.TokenURL + "\x00" + t.Auth.Secret
	c.mu.Lock()
	defer c.mu.Unlock()
	src, _, _ := c.sources.get(t.SubscriptionID, now)
	if src == nil || src.key != key {
		src = newTokenSource(key, clientcredentials.Config{ClientID: t.Auth.ClientID, ClientSecret: t.Auth.Secret, TokenURL: t.Auth.TokenURL})
	}
	c.sources.set(t.SubscriptionID, src, now)
	return src
}
