package dispatch_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/smtptest"
	"hookd/store"
)

// deniedBackend is a real SMTP server (go-smtp) that refuses every recipient the way
// a relay hookd may not use does: "550 5.7.1 Relaying denied" to RCPT TO.
type deniedBackend struct{ rcpts atomic.Int64 }

func (b *deniedBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return deniedSession{b}, nil }

type deniedSession struct{ b *deniedBackend }

func (deniedSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s deniedSession) Rcpt(string, *smtp.RcptOptions) error {
	s.b.rcpts.Add(1)
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied"}
}
func (deniedSession) Data(io.Reader) error { return nil }
func (deniedSession) Reset()               {}
func (deniedSession) Logout() error        { return nil }

func newDeniedRelay(t *testing.T) (string, *deniedBackend) {
	t.Helper()
	b := &deniedBackend{}
	s := smtp.NewServer(b)
	s.Domain = "relay.example"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String(), b
}

// TestRelayRefusalKeepsOrganisationsEmail: hookd's relay refuses to relay (550
// 5.7.1, the same for every recipient: hookd's own set-up is wrong). That is no
// fault of the organisations' addresses: past disable_after their e-mail is still
// on, as it stays on when the relay is down or its certificate is wrong.
func TestRelayRefusalKeepsOrganisationsEmail(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	addr, relay := newDeniedRelay(t)

	var orgs []store.Organisation
	for i, name := range []string{"Alpha University", "Beta Institute", "Gamma College"} {
		org, err := e.st.CreateOrganisation(ctx, name, fmt.Sprintf("tech%d@org%d.example", i, i))
		is.NoErr(err)
		_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true, NotificationEmail: fmt.Sprintf("orcid@org%d.example", i)})
		is.NoErr(err)
		_, err = e.st.PutMember(ctx, org.ID, testOrcid(i), store.MemberInfo{}, 0)
		is.NoErr(err)
		orgs = append(orgs, org)
	}
	d := e.dispatcher(func(o *dispatch.Options) {
		o.DisableAfter = time.Hour
		o.GiveUpAfter = 72 * time.Hour
	})
	d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: addr, From: "hookd@hub.example"}})

	is.Equal(e.tick(d), 3) // every organisation's e-mail, refused by the relay
	e.clock.Advance(2 * time.Hour)
	is.Equal(e.tick(d), 3)           // tried again, past disable_after
	is.True(relay.rcpts.Load() >= 6) // the relay said "550 5.7.1 Relaying denied" every time
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		is.Equal(dl.StateName(), "failed") // to be tried again, not dead
	}
	for _, org := range orgs {
		h, err := e.st.HubSettings(ctx, org.ID)
		is.NoErr(err)
		if !h.EmailEnabled {
			t.Errorf("%s: e-mail switched off for the relay's refusal: %q", org.Name, h.EmailReason)
		}
	}
}

// TestUpstream401SharesOneNewToken: when the upstream's token is no longer good,
// every worker with a registration in flight gets a 401 at once. They share one
// new token, instead of each fetching (and leaving behind) a token of its own.
func TestUpstream401SharesOneNewToken(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	const n = 4
	var (
		mu      sync.Mutex
		issued  int      // tokens the token endpoint issued
		used    []string // tokens the PUTs carried
		stale   int      // PUTs held with the first token
		release = make(chan struct{})
	)
	upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			mu.Lock()
			issued++
			tok := fmt.Sprintf("tok-%d", issued)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":3600,"scope":"/webhook"}`, tok)
			return nil
		}
		auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		used = append(used, auth)
		if auth == "tok-1" {
			// The first token was revoked upstream: every call with it is held until
			// all n are in flight, then refused at once.
			stale++
			if stale == 1 {
				e.clock.Advance(2 * time.Minute) // it was fetched a while ago, not moments before its 401
			}
			if stale == n {
				close(release)
			}
			mu.Unlock()
			block(r, release, 5*time.Second)
			w.WriteHeader(http.StatusUnauthorized)
			return nil
		}
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	_, err := e.st.ConfigureUpstream(ctx, upstream.URL+"/v3.0")
	is.NoErr(err)
	org, err := e.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)
	for i := range n {
		_, err = e.st.PutMember(ctx, org.ID, testOrcid(i), store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	d := e.dispatcher(func(o *dispatch.Options) { o.PerHost = n })
	d.ConfigureHub(dispatch.HubOptions{Upstream: dispatch.UpstreamOptions{APIURL: upstream.URL + "/v3.0", TokenURL: upstream.URL + "/oauth/token",
		ClientID: "APP-1", ClientSecret: "up-secret", PublicURL: "https://hub.example.org"}})
	e.tick(d) // n registrations (and n e-mails, failing: no SMTP configured)

	mu.Lock()
	defer mu.Unlock()
	t.Logf("tokens issued: %d; PUTs carried: %v", issued, used)
	is.Equal(stale, n)  // all n were refused together
	is.Equal(issued, 2) // the first token, then one new one for all n workers
}

// upstreamWith sets up upstream registration of n members of an organisation with
// e-mail on, against handler as ORCID's API and token endpoint, and returns a
// dispatcher with retries rb apart.
func upstreamWith(t *testing.T, e *testEnv, n int, rb time.Duration, handler receiverFunc) *dispatch.Dispatcher {
	t.Helper()
	upstream := newReceiver(t, handler)
	d, _ := upstreamAt(t, e, n, upstream.URL, upstream.URL, func(o *dispatch.Options) { o.RetryBase = rb })
	return d
}

// upstreamAt sets up upstream registration of n members (testOrcid(0) on) of an
// organisation with e-mail on, against ORCID's API at api (under /v3.0) and its
// token endpoint at tokens (/oauth/token), and returns a dispatcher with opts and
// the organisation's id.
func upstreamAt(t testing.TB, e *testEnv, n int, api, tokens string, opts func(*dispatch.Options)) (*dispatch.Dispatcher, int64) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	_, err := e.st.ConfigureUpstream(ctx, api+"/v3.0")
	is.NoErr(err)
	org, err := e.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	rows := make([]store.MemberRow, n)
	for i := range rows {
		rows[i].Orcid = testOrcid(i)
	}
	_, err = e.st.ImportMembers(ctx, org.ID, rows, 0)
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)
	d := e.dispatcher(opts)
	d.ConfigureHub(dispatch.HubOptions{Upstream: dispatch.UpstreamOptions{APIURL: api + "/v3.0", TokenURL: tokens + "/oauth/token",
		ClientID: "APP-1", ClientSecret: "up-secret", PublicURL: "https://hub.example.org"}})
	return d, org.ID
}

// TestTokenEndpointRefusalAskedOnce: a token endpoint that refuses hookd's
// credentials is asked once, not once for each registration waiting for a token:
// its refusal is the answer for half a minute.
func TestTokenEndpointRefusalAskedOnce(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var tokenCalls, apiCalls atomic.Int64
	d := upstreamWith(t, e, 40, 5*time.Second, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			tokenCalls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client","error_description":"Client not found: APP-1"}`)
			return nil
		}
		apiCalls.Add(1)
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	for range 3 { // 40 orders, then their retries twice, within half a minute
		e.tick(d)
		e.clock.Advance(10 * time.Second)
	}
	is.Equal(tokenCalls.Load(), int64(1)) // asked once
	is.Equal(apiCalls.Load(), int64(0))
	var why string
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		if dl.EventType == store.UpstreamRegister {
			why = dl.LastError
		}
	}
	is.True(strings.Contains(why, "invalid_client")) // the endpoint's answer
	is.True(strings.Contains(why, ", then asks again)"))

	e.clock.Advance(20 * time.Second) // past the half minute
	e.tick(d)
	is.Equal(tokenCalls.Load(), int64(2)) // asked again, once
}

// TestTokenEndpointAnswerWithoutTokenAskedOnce: a token endpoint that answers 200
// with what holds no token (JSON cut short, a maintenance page in HTML, JSON
// without access_token) is asked once, not once for each registration waiting for
// a token: like a refusal, its answer is the answer for half a minute, and says
// what came.
func TestTokenEndpointAnswerWithoutTokenAskedOnce(t *testing.T) {
	for _, tc := range []struct{ name, ctype, body, says string }{
		{"cut short", "application/json", `{"access_token":"abc`, "cannot parse json"},
		{"html", "text/html", `<html><body>Down for maintenance</body></html>`, "text/html"},
		{"no access_token", "application/json", `{"token_type":"bearer","expires_in":3600}`, "missing access_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			var tokenCalls, apiCalls atomic.Int64
			d := upstreamWith(t, e, 40, 5*time.Second, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
				if r.URL.Path == "/oauth/token" {
					tokenCalls.Add(1)
					w.Header().Set("Content-Type", tc.ctype)
					io.WriteString(w, tc.body)
					return nil
				}
				apiCalls.Add(1)
				w.WriteHeader(http.StatusCreated)
				return nil
			})
			for range 3 { // 40 orders, then their retries twice, within half a minute
				e.tick(d)
				e.clock.Advance(10 * time.Second)
			}
			is.Equal(tokenCalls.Load(), int64(1)) // asked once
			is.Equal(apiCalls.Load(), int64(0))
			var why string
			for _, dl := range e.deliveries(store.DeliveryFilter{}) {
				if dl.EventType == store.UpstreamRegister {
					why = dl.LastError
				}
			}
			t.Log(why)
			is.True(strings.Contains(why, "HTTP 200")) // what the endpoint answered
			is.True(strings.Contains(why, tc.says))
			is.True(strings.Contains(why, ", then asks again)"))

			e.clock.Advance(20 * time.Second) // past the half minute
			e.tick(d)
			is.Equal(tokenCalls.Load(), int64(2)) // asked again, once
		})
	}
}

// TestTokenEndpointUnansweredAskedOnce: a token endpoint that gives no answer
// (it cuts the connection: overloaded, or down behind its balancer) is asked once
// by the registrations waiting for a token, not once by each of them, and not
// again for ten seconds; those that were out say why, the others wait unsent, as
// for the API down, and all are made once it answers.
func TestTokenEndpointUnansweredAskedOnce(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var tokenCalls, apiCalls atomic.Int64
	var down atomic.Bool
	down.Store(true)
	d := upstreamWith(t, e, 40, 5*time.Second, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			tokenCalls.Add(1)
			if down.Load() {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return nil
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"tok-1","token_type":"bearer","expires_in":3600}`)
			return nil
		}
		apiCalls.Add(1)
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	e.tick(d)
	is.Equal(tokenCalls.Load(), int64(1)) // asked once
	is.Equal(apiCalls.Load(), int64(0))
	var why []string
	waiting := 0
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		switch {
		case dl.EventType != store.UpstreamRegister:
		case dl.Attempts == 0:
			waiting++
			is.Equal(dl.LastError, "") // held, not failed
		default:
			why = append(why, dl.LastError)
		}
	}
	// The calls out at once (per_host), and those begun as the first came back,
	// before as many records in a row as per_host had failed: at most twice per_host.
	is.True(len(why) >= 1 && len(why) <= 2*8)
	t.Logf("%d calls failed, %d waited", len(why), waiting)
	is.Equal(len(why)+waiting, 40)
	for _, w := range why {
		is.True(strings.HasPrefix(w, "upstream token endpoint: the receiver closed the connection without answering")) // the same cause, for each
	}
	t.Log(why[0])

	e.clock.Advance(5 * time.Second) // the retries, within the ten seconds
	e.tick(d)
	is.Equal(tokenCalls.Load(), int64(1)) // not asked again

	down.Store(false)
	e.clock.Advance(10 * time.Second)
	for range 3 {
		e.tick(d)
		e.clock.Advance(30 * time.Second)
	}
	is.Equal(tokenCalls.Load(), int64(2)) // asked again, once, and answered
	is.Equal(apiCalls.Load(), int64(40))  // every record registered
}

// TestTokenEndpointRetryAfterWaited: a token endpoint's 503 with a Retry-After
// holds the registrations waiting for a token until then.
func TestTokenEndpointRetryAfterWaited(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var tokenCalls atomic.Int64
	d := upstreamWith(t, e, 20, time.Minute, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			tokenCalls.Add(1)
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
			return nil
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	e.tick(d)
	is.Equal(tokenCalls.Load(), int64(1))
	held := 0
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		if dl.EventType == store.UpstreamRegister {
			held++
			is.Equal(dl.DueAt, e.clock.Now().Add(time.Hour)) // when the endpoint said
		}
	}
	is.Equal(held, 20) // every registration
	e.clock.Advance(5 * time.Minute)
	e.tick(d)
	is.Equal(tokenCalls.Load(), int64(1)) // not asked again before then
}

// TestShortLivedTokenReused: a token the endpoint issues for a few seconds
// (expires_in 8, shorter than the 10 s before its expiry at which oauth2 takes a
// token for expired) is used by the registrations that follow its fetch, for the
// first half of its life, not fetched anew for each of them.
func TestShortLivedTokenReused(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var tokenCalls, puts atomic.Int64
	d := upstreamWith(t, e, 20, time.Minute, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			tokenCalls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer","expires_in":8}`, tokenCalls.Load())
			return nil
		}
		puts.Add(1)
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	e.tick(d)
	is.Equal(puts.Load(), int64(20))      // each registration made
	is.Equal(tokenCalls.Load(), int64(1)) // with the one token
}

// TestTokenExpiredOnTheWay: a 401 to a token that expired while its call was on
// the way is its expiry's, not the upstream refusing what its endpoint issues
// (TestUpstreamRefusingFreshTokens): a new token is fetched and the call made again.
func TestTokenExpiredOnTheWay(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var tokenCalls atomic.Int64
	var expiry atomic.Int64 // of tok-1, in Unix nanoseconds
	d := upstreamWith(t, e, 1, time.Minute, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			n := tokenCalls.Add(1)
			if n == 1 {
				expiry.Store(time.Now().Add(time.Second).UnixNano())
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer","expires_in":1}`, n)
			return nil
		}
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			for deadline := time.Now().Add(5 * time.Second); time.Now().UnixNano() <= expiry.Load()+int64(50*time.Millisecond) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond) // a slow upstream: tok-1 expires meanwhile
			}
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_token","error_description":"Access token expired"}`)
			return nil
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	e.tick(d)
	is.Equal(tokenCalls.Load(), int64(2)) // a new token after the 401
	registered := 0
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		if dl.EventType == store.UpstreamRegister {
			registered++
			is.Equal(dl.State, store.StateDelivered) // registered with it
		}
	}
	is.Equal(registered, 1) // the one registration
}

// TestTokenRevokedMomentsAfterItsFetch: a token the upstream took, then refuses
// (revoked there, seconds after hookd fetched it), is replaced at once, not
// taken for the upstream refusing every token its endpoint issues
// (TestUpstreamRefusingFreshTokens) and sent again until a minute has passed.
func TestTokenRevokedMomentsAfterItsFetch(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var tokenCalls, first atomic.Int64
	upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			tokenCalls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer","expires_in":631138518}`, tokenCalls.Load())
			return nil
		}
		if r.Header.Get("Authorization") == "Bearer tok-1" && first.Add(1) > 1 {
			w.WriteHeader(http.StatusUnauthorized) // revoked after its first call
			io.WriteString(w, `{"error":"invalid_token","error_description":"Invalid access token: tok-1"}`)
			return nil
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	// One call at a time: the first takes tok-1, the second finds it revoked.
	d, _ := upstreamAt(t, e, 20, upstream.URL, upstream.URL, func(o *dispatch.Options) { o.RetryBase, o.Workers, o.PerHost = time.Minute, 1, 1 })
	for i := 0; i < 10 && e.tick(d) > 0; i++ { // a turn claims a few calls' worth
	}
	is.Equal(tokenCalls.Load(), int64(2)) // a new token, once
	registered := 0
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		if dl.EventType == store.UpstreamRegister {
			registered++
			is.Equal(dl.State, store.StateDelivered) // every record registered
		}
	}
	is.Equal(registered, 20) // of the 20
}

// TestUpstreamRefusingFreshTokens: an upstream that answers 401 to the token its
// endpoint just issued (the client lacks the permission) is not sent a new token
// for every registration, nor called by every registration: its refusal is the
// answer of the others for half a minute, as a token endpoint's is, each saying
// so, where each of the 20 (of an organisation's 100,000) called the API at each
// of its retries, to be refused alike.
func TestUpstreamRefusingFreshTokens(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	const perHost = 4
	var tokenCalls, puts atomic.Int64
	upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			tokenCalls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer","expires_in":3600}`, tokenCalls.Load())
			return nil
		}
		puts.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_token"}`)
		return nil
	})
	d, org := upstreamAt(t, e, 20, upstream.URL, upstream.URL, func(o *dispatch.Options) { o.RetryBase, o.PerHost = 5*time.Second, perHost })
	for range 5 { // the 20, then their retries, within half a minute
		e.tick(d)
		e.clock.Advance(5 * time.Second)
	}
	t.Logf("%d calls of the API, %d of the token endpoint", puts.Load(), tokenCalls.Load())
	is.True(puts.Load() >= 1)             // the upstream was asked
	is.True(puts.Load() <= perHost)       // by the calls out at once when it refused, not by every order
	is.Equal(tokenCalls.Load(), int64(1)) // with the one token
	ms, err := e.st.Members(ctx, org)
	is.NoErr(err)
	is.Equal(len(ms), 20)
	for _, m := range ms { // every registration failed, saying why
		is.True(strings.HasPrefix(m.Upstream, "failed: HTTP 401 to a token fetched moments before: the upstream refuses the tokens its token endpoint issues"))
	}
	handedOn := 0
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		if dl.EventType == store.UpstreamRegister && strings.Contains(dl.LastError, "(the upstream was not called for this attempt: this is its answer at 12:00:00 UTC to an earlier call, which hookd takes as the answer until 12:00:30 UTC, then calls again)") {
			handedOn++
		}
	}
	is.True(handedOn >= 20-perHost) // the others took its answer, saying when it is asked again

	e.clock.Set(e.start.Add(30 * time.Second)) // the half minute over
	before := puts.Load()
	for range 2 {
		e.clock.Advance(time.Minute)
		e.tick(d)
	}
	t.Logf("then %d calls of the API, %d of the token endpoint", puts.Load()-before, tokenCalls.Load())
	is.True(puts.Load() > before) // asked again
	// At each turn, by the calls out at once (each sent again with one new token:
	// the first is a minute old), not by the 20 orders.
	is.True(puts.Load() <= before+2*2*perHost)
}

// cuttingBackend is a real SMTP server (go-smtp) that answers RCPT TO with rcpt
// (when set), and otherwise cuts the connection in the middle of the message.
type cuttingBackend struct{ rcpt *smtp.SMTPError }

func (b *cuttingBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &cuttingSession{b: b, c: c}, nil
}

type cuttingSession struct {
	b *cuttingBackend
	c *smtp.Conn
}

func (*cuttingSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *cuttingSession) Rcpt(string, *smtp.RcptOptions) error {
	if s.b.rcpt != nil {
		return s.b.rcpt
	}
	return nil
}
func (s *cuttingSession) Data(r io.Reader) error {
	io.ReadFull(r, make([]byte, 10))
	s.c.Conn().Close() // gone mid-DATA
	return nil
}
func (*cuttingSession) Reset()        {}
func (*cuttingSession) Logout() error { return nil }

// TestEmailErrorOnOneLine: what a failed e-mail leaves in the attempt log is one
// line, as every other error there: a relay's answer of several lines (Gmail's
// "550-5.1.1 …" on three), or a relay gone mid-message (go-mail then adds the
// connection's failed close on a line of its own), is kept whole, on one line, so
// that `hookd deliveries show`, the log and the console show each attempt on its own.
func TestEmailErrorOnOneLine(t *testing.T) {
	gmail := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "The email account that you tried to reach does not exist. Please try\n" +
		"5.1.1 double-checking the recipient's email address for typos or\n5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser"}
	for name, tt := range map[string]struct {
		rcpt  *smtp.SMTPError
		says  []string
		state string
	}{
		"an answer of several lines": {gmail, []string{"550", "does not exist. Please try", "typos or", "unnecessary spaces"}, "dead"}, // refused for good
		"gone mid-message":           {nil, []string{"smtp 127.0.0.1:", "failed to close connection"}, "failed"},                       // to be tried again
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			s := smtp.NewServer(&cuttingBackend{rcpt: tt.rcpt})
			s.Domain = "relay.example"
			s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			is.NoErr(err)
			go s.Serve(ln)
			t.Cleanup(func() { s.Close() })

			e.emailOrg()
			d := e.dispatcher(nil)
			d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: ln.Addr().String(), From: "hookd@uni.example"}})
			is.Equal(e.tick(d), 1)

			dl := e.only()
			is.Equal(dl.StateName(), tt.state)
			as := e.attempts(dl.ID)
			is.Equal(len(as), 1)
			for _, got := range []string{as[0].Error, dl.LastError} {
				if strings.ContainsAny(got, "\r\n") {
					t.Errorf("error of several lines: %q", got)
				}
				for _, w := range tt.says {
					is.True(strings.Contains(got, w)) // the whole of it
				}
			}
		})
	}
}

// TestUpstreamRateLimitHoldsEveryOrder: the upstream answers a registration 429
// with a Retry-After while 100 orders wait. The limit is the upstream's, not that
// order's: the other orders wait until it passes, unsent (no request each, no
// attempt, no failure), due when it ends as the refused ones are (none is counted
// late meanwhile), and then go out, every one of them; unregistrations alike.
func TestUpstreamRateLimitHoldsEveryOrder(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	const n, perHost = 100, 8
	var limited atomic.Bool
	var calls, refused atomic.Int64
	upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			answerToken(w)
			return nil
		}
		calls.Add(1)
		if limited.Load() {
			refused.Add(1)
			w.Header().Set("Retry-After", "60")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":"rate limit exceeded"}`)
			return nil
		}
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
		} else {
			w.WriteHeader(http.StatusNoContent)
		}
		return nil
	})
	d, org := upstreamAt(t, e, n, upstream.URL, upstream.URL, func(o *dispatch.Options) { o.RetryBase, o.PerHost = 5*time.Second, perHost })
	orders := func(kind string) []store.Delivery {
		var out []store.Delivery
		for _, dl := range e.deliveries(store.DeliveryFilter{Limit: 1000}) {
			if dl.EventType == kind {
				out = append(out, dl)
			}
		}
		return out
	}

	for _, kind := range []string{store.UpstreamRegister, store.UpstreamUnregister} {
		if kind == store.UpstreamUnregister {
			_, _, err := e.st.SetHubSettings(ctx, org, store.HubSettings{}) // e-mail off: nothing covers the members
			is.NoErr(err)
		}
		limited.Store(true)
		calls.Store(0)
		refused.Store(0)
		limitedAt := e.clock.Now()
		for range 10 { // 50 s, within the minute the upstream asked for
			e.tick(d)
			e.clock.Advance(5 * time.Second)
		}
		t.Logf("%s: %d requests during the rate limit", kind, calls.Load())
		is.True(calls.Load() >= 1)       // the upstream was asked, and said to wait
		is.True(calls.Load() <= perHost) // by the calls out at once when it said so, not by every order
		waiting := orders(kind)
		is.Equal(len(waiting), n) // no order lost
		tried := 0
		for _, dl := range waiting {
			is.Equal(dl.State, store.StatePending)
			is.Equal(dl.DueAt, limitedAt.Add(time.Minute)) // every order due when the limit ends, together
			if dl.Attempts > 0 {
				tried++
				is.Equal(dl.LastStatus, http.StatusTooManyRequests)
			}
		}
		is.Equal(int64(tried), refused.Load()) // the wait is no attempt of the orders held
		g, err := e.st.Gauges(ctx)
		is.NoErr(err)
		is.Equal(g.OldestDueAge, time.Duration(0)) // and, as a retry's, not due yet: no order is late while the upstream's wait lasts
		if kind == store.UpstreamRegister {
			ms, err := e.st.Members(ctx, org)
			is.NoErr(err)
			failed := 0
			for _, m := range ms {
				if strings.HasPrefix(m.Upstream, "failed") {
					failed++
				}
			}
			is.Equal(int64(failed), refused.Load()) // nor a failure of theirs
		}

		limited.Store(false)
		e.clock.Set(limitedAt.Add(time.Minute))
		for i := 0; i < 20 && e.tick(d) > 0; i++ {
		}
		for _, dl := range orders(kind) {
			is.Equal(dl.State, store.StateDelivered) // every order carried out once the limit passed
		}
		is.Equal(calls.Load(), refused.Load()+n) // each once more
	}
}

// TestUpstreamRateLimitBounds: a 429 that says to wait a day holds the upstream
// calls for an hour, as a token endpoint's Retry-After holds the calls needing a
// token; a 429 without a Retry-After, for the order's backoff; a 503 without one
// (the API down, saying nothing of when it is back) for the backoff too, the
// orders held due a turn before those that failed, so that another asks next.
func TestUpstreamRateLimitBounds(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		wait       time.Duration // when every order is due again
		down       bool          // the orders not tried are due a turn (a second) before
	}{
		{"a day, held an hour", http.StatusTooManyRequests, "86400", time.Hour, false},
		{"no Retry-After, the backoff", http.StatusTooManyRequests, "", 5 * time.Second, false},
		{"503 with Retry-After", http.StatusServiceUnavailable, "30", 30 * time.Second, false},
		{"503 without, the backoff", http.StatusServiceUnavailable, "", 5 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			var calls atomic.Int64
			d := upstreamWith(t, e, 20, 5*time.Second, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
				if r.URL.Path == "/oauth/token" {
					answerToken(w)
					return nil
				}
				calls.Add(1)
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				return nil
			})
			start := e.clock.Now()
			e.tick(d)
			out := int64(8) // only the calls out at once (per_host)
			if tc.down {
				// and those begun as the first came back, before as many records
				// in a row as per_host had failed: at most twice per_host
				out *= 2
			}
			is.True(calls.Load() <= out)
			held := 0
			for _, dl := range e.deliveries(store.DeliveryFilter{}) {
				if dl.EventType == store.UpstreamRegister {
					held++
					if tc.down && dl.Attempts == 0 {
						is.Equal(dl.DueAt, start.Add(tc.wait-time.Second))
						continue
					}
					is.Equal(dl.DueAt, start.Add(tc.wait)) // every order, the one answered too
				}
			}
			is.Equal(held, 20) // of the 20
		})
	}
}

// TestUpstreamOfTwoEnvironments: upstream.api_url was moved to ORCID's production
// and upstream.token_url left at the sandbox. The sandbox issues a token that
// production refuses (401), and a production client is unknown at the sandbox's
// endpoint: the registration's error says that the two are of two environments,
// naming both keys and what to set, rather than pointing at the client's
// credentials.
func TestUpstreamOfTwoEnvironments(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token func(w http.ResponseWriter) // the sandbox endpoint's answer
		says  string
	}{
		{"the API refuses the token", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"5eb23750-1b2c-4f7e-a3d3-8c1f0e9a6b21","token_type":"bearer","expires_in":631138518,"scope":"/webhook"}`)
		}, "HTTP 401 to a token fetched moments before"},
		{"the endpoint refuses the client", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client","error_description":"Client not found: APP-1"}`)
		}, "upstream token endpoint: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			e := newEnv(t)
			var puts atomic.Int64
			production := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				puts.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"error":"invalid_token","error_description":"Invalid access token: tok"}`)
				return nil
			})
			sandbox := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				tc.token(w)
				return nil
			})
			apiPort := production.URL[strings.LastIndex(production.URL, ":")+1:]
			tokenPort := sandbox.URL[strings.LastIndex(sandbox.URL, ":")+1:]
			d, org := upstreamAt(t, e, 1, "http://api.orcid.org:"+apiPort, "http://sandbox.orcid.org:"+tokenPort, nil)
			dispatch.Resolve(d, map[string]string{
				"api.orcid.org:" + apiPort:       strings.TrimPrefix(production.URL, "http://"),
				"sandbox.orcid.org:" + tokenPort: strings.TrimPrefix(sandbox.URL, "http://"),
			})
			is.Equal(e.tick(d), 1)
			dl := e.only()
			is.Equal(dl.StateName(), "failed")
			t.Log(dl.LastError)
			is.True(strings.HasPrefix(dl.LastError, tc.says))
			for _, w := range []string{"upstream.token_url's sandbox.orcid.org", "is ORCID's sandbox", "upstream.api_url's api.orcid.org its production",
				"set upstream.token_url to https://orcid.org/oauth/token"} {
				is.True(strings.Contains(dl.LastError, w)) // says what is wrong, and what to set
			}
			is.True(!strings.Contains(dl.LastError, "client_id")) // not the credentials
			ms, err := e.st.Members(ctx, org)
			is.NoErr(err)
			is.True(strings.Contains(ms[0].Upstream, "is ORCID's sandbox")) // hookd org status says so too
		})
	}
}

// TestUpstreamRedirectSaysWhere: an upstream that answers a registration with a
// redirect is not followed (the token would go along), and the attempt log and
// hookd org status say where it pointed, without its query, as for a delivery,
// rather than a bare "HTTP 301".
func TestUpstreamRedirectSaysWhere(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	var moved atomic.Int64
	upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			answerToken(w)
			return nil
		}
		if strings.HasPrefix(r.URL.Path, "/moved/") {
			moved.Add(1)
			w.WriteHeader(http.StatusCreated)
			return nil
		}
		w.Header().Set("Location", "/moved/"+testOrcid(0)+"?session=s3cr3t-value")
		w.WriteHeader(http.StatusMovedPermanently)
		return nil
	})
	d, org := upstreamAt(t, e, 1, upstream.URL, upstream.URL, nil)
	is.Equal(e.tick(d), 1)
	is.Equal(moved.Load(), int64(0)) // not followed
	dl := e.only()
	is.Equal(dl.StateName(), "failed")
	t.Log(dl.LastError)
	is.Equal(dl.LastError, `HTTP 301 redirect to "`+upstream.URL+"/moved/"+testOrcid(0)+`" not followed`) // where, without its query
	ms, err := e.st.Members(ctx, org)
	is.NoErr(err)
	is.Equal(ms[0].Upstream, "failed: "+dl.LastError) // hookd org status says the same
}

// TestUpstreamHTMLAnswerNamed: an upstream behind a proxy that answers 5xx with an
// HTML page leaves a registration's state (hookd org status) saying what the page
// says, its title, not its first line ("<html>"); ORCID's JSON error stays as is.
func TestUpstreamHTMLAnswerNamed(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"nginx", "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
			"failed: HTTP 502 (an HTML page: 502 Bad Gateway)"},
		{"one line", "<!DOCTYPE html><html><head><style>" + strings.Repeat("p{}", 100) + "</style><TITLE>\n  ORCID &amp; maintenance\n</TITLE></head><body>back soon</body></html>",
			"failed: HTTP 502 (an HTML page: ORCID & maintenance)"},
		{"untitled", "<html><body>down</body></html>", "failed: HTTP 502 (an HTML page: down)"},
		{"no text", "<html><head><style>p{}</style></head><body><img src=x></body></html>", "failed: HTTP 502 (an HTML page)"},
		{"ORCID's JSON", `{"response-code":502,"developer-message":"upstream down","error-code":9008}`,
			`failed: HTTP 502 {"response-code":502,"developer-message":"upstream down","error-code":9008}`},
		{"empty", "", "failed: HTTP 502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			is.Equal(upstreamStateAfter(t, e, http.StatusBadGateway, "text/html", tc.body), tc.want)
			as := e.attempts(e.only().ID)
			is.Equal(as[len(as)-1].Response, tc.body) // the attempt log keeps the page
		})
	}
}

// orcidError is an error of ORCID's API as it answers one: JSON over lines,
// "key" : value.
func orcidError(code, errorCode int, developer string) string {
	return fmt.Sprintf("{\n  \"response-code\" : %d,\n  \"developer-message\" : %q,\n  \"user-message\" : \"There was an error with the request.\",\n  \"error-code\" : %d,\n  \"more-info\" : \"https://members.orcid.org/api/resources/troubleshooting\"\n}", code, developer, errorCode)
}

// TestUpstreamJSONAnswerOnOneLine: ORCID's error, JSON over lines, leaves a
// registration's state (hookd org status) saying it on one line, not its first
// line ("{"), also one longer than the attempt log keeps (its first 512 bytes),
// which is JSON cut short; a text that only starts as JSON might says its first
// line.
func TestUpstreamJSONAnswerOnOneLine(t *testing.T) {
	long := "400 Bad Request: There was an error with the request. Full validation error: " + strings.Repeat("the callback URL is not valid; ", 16)
	for _, tc := range []struct{ name, body, want string }{
		{"whole", orcidError(400, 9006, "400 Bad Request: bad callback"),
			`failed: HTTP 400 {"response-code":400,"developer-message":"400 Bad Request: bad callback","user-message":"There was an error with the request.","error-code":9006,"more-info":"https://members.orcid.org/api/resources...`},
		{"longer than the attempt log keeps", orcidError(400, 9006, long),
			`failed: HTTP 400 {"response-code":400,"developer-message":"400 Bad Request: There was an error with the request. Full validation error: the callback URL is not valid; the callback URL is not valid; the callback URL...`},
		{"text that is not JSON", "[error] upstream timed out\n(110: Connection timed out)\n", "failed: HTTP 400 [error] upstream timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			got := upstreamStateAfter(t, e, http.StatusBadRequest, "application/json;charset=UTF-8", tc.body)
			is.Equal(got, tc.want) // one line: the status and the JSON
		})
	}
}

// orcidXMLError is an error of ORCID's API in XML, as it answers one: its
// declaration, then elements in ORCID's error namespace, over lines.
func orcidXMLError(code, errorCode int, developer string) string {
	return fmt.Sprintf("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<error:error xmlns:error=\"http://www.orcid.org/ns/error\">\n    <error:response-code>%d</error:response-code>\n    <error:developer-message>%s</error:developer-message>\n    <error:user-message>There was an error with the request.</error:user-message>\n    <error:error-code>%d</error:error-code>\n    <error:more-info>https://members.orcid.org/api/resources/troubleshooting</error:more-info>\n</error:error>\n", code, developer, errorCode)
}

// TestUpstreamXMLAnswerOnOneLine: ORCID's error in XML leaves a registration's
// state (hookd org status) saying what its elements say on one line, not its
// first line (its XML declaration, which says nothing), also one longer than the
// attempt log keeps; an XHTML page is named by its title.
func TestUpstreamXMLAnswerOnOneLine(t *testing.T) {
	long := "404 Not Found: The resource was not found. Full validation error: " + strings.Repeat("no such record; ", 40)
	for _, tc := range []struct{ name, body, want string }{
		{"whole", orcidXMLError(500, 9008, "Something went wrong in ORCID."),
			"failed: HTTP 500 response-code: 500; developer-message: Something went wrong in ORCID.; user-message: There was an error with the request.; error-code: 9008; more-info: https://members.orcid.org/api/resources/troub..."},
		{"longer than the attempt log keeps", orcidXMLError(500, 9008, long),
			"failed: HTTP 500 response-code: 500; developer-message: 404 Not Found: The resource was not found. Full validation error: no such record; no such record; no such record; no such record; no such record; no such reco..."},
		{"on one line", strings.ReplaceAll(orcidXMLError(500, 9008, "down"), "\n", ""),
			"failed: HTTP 500 response-code: 500; developer-message: down; user-message: There was an error with the request.; error-code: 9008; more-info: https://members.orcid.org/api/resources/troubleshooting"},
		{"XHTML", `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml"><head><title>502 Bad Gateway</title></head><body></body></html>`,
			"failed: HTTP 500 (an HTML page: 502 Bad Gateway)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			got := upstreamStateAfter(t, e, http.StatusInternalServerError, "application/xml;charset=UTF-8", tc.body)
			is.Equal(got, tc.want) // one line: the status and what the elements say
		})
	}
}

// upstreamStateAfter registers one member upstream at an API that answers status
// with body, and returns the member's upstream state after the turn that called.
func upstreamStateAfter(t *testing.T, e *testEnv, status int, contentType, body string) string {
	t.Helper()
	is := is.New(t)
	upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			answerToken(w)
			return nil
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
		return nil
	})
	d, org := upstreamAt(t, e, 1, upstream.URL, upstream.URL, nil)
	is.Equal(e.tick(d), 1)
	ms, err := e.st.Members(context.Background(), org)
	is.NoErr(err)
	return ms[0].Upstream
}

// TestUpstreamPageIn2xxNotRegistered: a proxy or a captive portal between hookd and
// the upstream that answers a registration 200 with its sign-in page has not
// registered anything: the order fails and is retried, and hookd org status says
// what answered, where taking any 2xx left the member "registered" for good. An
// answer as ORCID gives it (201, no body) registers.
func TestUpstreamPageIn2xxNotRegistered(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var proxied atomic.Bool
	proxied.Store(true)
	upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			answerToken(w)
			return nil
		}
		if proxied.Load() {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!DOCTYPE html><html><head><title>Sign in to the\n campus network</title></head><body><form></form></body></html>")
			return nil
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	d, org := upstreamAt(t, e, 1, upstream.URL, upstream.URL, nil)
	is.Equal(e.tick(d), 1)
	dl := e.only()
	is.Equal(dl.StateName(), "failed")
	want := `HTTP 200 with an HTML page ("Sign in to the campus network") where the ORCID API answers with none: something between hookd and [upstream] api_url answered in its place (a proxy, a sign-in page), and the call did not reach ORCID`
	is.Equal(dl.LastError, want)
	ms, err := e.st.Members(context.Background(), org)
	is.NoErr(err)
	is.Equal(ms[0].Upstream, "failed: "+want)

	proxied.Store(false)
	e.clock.Advance(time.Hour)
	is.Equal(e.tick(d), 1)
	is.Equal(e.only().StateName(), "delivered") // ORCID's 201, with no body and a type it may name (text/html here)
	ms, err = e.st.Members(context.Background(), org)
	is.NoErr(err)
	is.Equal(ms[0].Upstream, "registered")
}

// TestEmailRefusedForGood: a relay's answer decides what becomes of an
// organisation's e-mail, as SMTP means it. A 5xx to the message (552 "exceeded
// storage allocation" or 554 "transaction failed" at the final dot) or to its
// recipient is permanent: the same message would get the same answer, so the
// delivery is dead at once, its attempt quoting the answer (without the relay's
// password, which the answer may echo), and a replay sends it once that is
// mended. A 4xx, or no answer, is retried; so is a 5xx that refuses hookd itself
// (its sender, relaying for it), which is every organisation's until the
// operator mends it. None of them switches the organisation's e-mail off.
func TestEmailRefusedForGood(t *testing.T) {
	const pass = "S3cr3t-relay-pass"
	for _, tc := range []struct {
		name    string
		set     func(m *smtptest.Server)
		state   string // after the first try
		quoted  string // in its attempt
		refused bool   // refused for good, said so
	}{
		{"552 at the final dot", func(m *smtptest.Server) {
			m.SetReply(smtptest.Dot, 552, []int{5, 3, 4}, "Message size exceeds fixed maximum message size, "+pass)
		}, "dead", `552 "5.3.4 Message size exceeds fixed maximum message size`, true},
		{"554 at the final dot", func(m *smtptest.Server) {
			m.SetReply(smtptest.Dot, 554, nil, "Transaction failed")
		}, "dead", `554 "Transaction failed"`, true},
		{"550 spam at the final dot", func(m *smtptest.Server) {
			m.SetReply(smtptest.Dot, 550, []int{5, 7, 1}, "Message rejected as spam")
		}, "dead", `550 "5.7.1 Message rejected as spam"`, true},
		{"552 too big at MAIL", func(m *smtptest.Server) {
			m.SetReply(smtptest.Mail, 552, []int{5, 3, 4}, "Message size exceeds fixed limit")
		}, "dead", `552 "5.3.4 Message size exceeds fixed limit"`, true},
		{"550 user unknown at RCPT", func(m *smtptest.Server) {
			m.SetReply(smtptest.Rcpt, 550, []int{5, 1, 1}, "User unknown")
		}, "dead", `550 "5.1.1 User unknown"`, true},
		{"451 at the final dot", func(m *smtptest.Server) {
			m.SetReply(smtptest.Dot, 451, []int{4, 3, 0}, "Try again later")
		}, "failed", `451 "4.3.0 Try again later"`, false},
		{"552 mailbox full at the final dot", func(m *smtptest.Server) {
			m.SetReply(smtptest.Dot, 552, []int{5, 2, 2}, "Mailbox full")
		}, "failed", `552 "5.2.2 Mailbox full"`, false},
		{"552 over quota at RCPT, in the recipient's words", func(m *smtptest.Server) {
			m.SetReply(smtptest.Rcpt, 552, []int{5, 2, 2}, "<orcid@uni.example>: Recipient address rejected: User over quota")
		}, "failed", `552 "5.2.2 <orcid@uni.example>: Recipient address rejected: User over quota"`, false},
		{"550 daily sending limit at the final dot", func(m *smtptest.Server) {
			m.SetReply(smtptest.Dot, 550, []int{5, 4, 5}, "Daily user sending limit exceeded.")
		}, "failed", `550 "5.4.5 Daily user sending limit exceeded."`, false},
		{"send-as refused at the final dot", func(m *smtptest.Server) {
			m.SetReply(smtptest.Dot, 554, []int{5, 2, 0}, "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message.")
		}, "failed", `554 "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException`, false},
		{"sender refused at MAIL", func(m *smtptest.Server) {
			m.SetReply(smtptest.Mail, 553, []int{5, 1, 8}, "Sender address rejected: Domain not found")
		}, "failed", `553 "5.1.8 Sender address rejected`, false},
		{"relaying denied at the final dot", func(m *smtptest.Server) {
			m.SetReply(smtptest.Dot, 554, []int{5, 7, 1}, "Relay access denied")
		}, "failed", `554 "5.7.1 Relay access denied"`, false},
		{"421 at the greeting", func(m *smtptest.Server) {
			m.SetReply(smtptest.Greeting, 421, []int{4, 3, 2}, "Service not available")
		}, "failed", `421 "4.3.2 Service not available"`, false},
		{"gone mid-DATA", func(m *smtptest.Server) { m.SetDropInData(true) }, "failed", "closing SMTP DATA writer: EOF", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			e := newEnv(t)
			e.emailOrg()
			relay := smtptest.NewServer(t, "hookd", pass)
			tc.set(relay)
			d := e.dispatcher(func(o *dispatch.Options) { o.DisableAfter = time.Hour })
			d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay.Addr, From: "hookd@hub.example", Username: "hookd", Password: pass}})
			is.Equal(e.tick(d), 1)
			dl := e.only()
			is.Equal(dl.StateName(), tc.state) // dead at once, or to be tried again
			as := e.attempts(dl.ID)
			is.Equal(len(as), 1)
			if !strings.Contains(as[0].Error, tc.quoted) {
				t.Errorf("attempt %q; want it to quote %q", as[0].Error, tc.quoted)
			}
			is.Equal(strings.HasPrefix(as[0].Error, "refused for good, not retried: smtp "+relay.Addr+": "), tc.refused)
			is.True(!strings.Contains(as[0].Error, pass)) // the password the answer echoed is not kept
			is.Equal(len(relay.Messages()), 0)
			h, err := e.st.HubSettings(ctx, 1)
			is.NoErr(err)
			is.True(h.EmailEnabled) // one refusal switches nothing off

			// Mended: a dead one is sent by a replay, a failed one by its retry.
			relay.SetReply(smtptest.Greeting, 0, nil, "")
			relay.SetReply(smtptest.Mail, 0, nil, "")
			relay.SetReply(smtptest.Rcpt, 0, nil, "")
			relay.SetReply(smtptest.Dot, 0, nil, "")
			relay.SetDropInData(false)
			e.clock.Advance(time.Minute)
			if tc.state == "dead" {
				is.Equal(e.tick(d), 0) // not retried
				_, err := e.st.Replay(ctx, store.DeliveryFilter{ID: dl.ID})
				is.NoErr(err)
			} else {
				e.clock.Advance(time.Hour)
			}
			is.Equal(e.tick(d), 1)
			is.Equal(e.only().StateName(), "delivered")
			is.Equal(len(relay.Messages()), 1)
		})
	}
}

// TestEmailRecipientRefusedSwitchedOff: each e-mail to an address the relay
// refuses for good is dead at once; refused on and on for disable_after, the
// organisation's e-mail is switched off, as a webhook failing as long is.
func TestEmailRecipientRefusedSwitchedOff(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	e.emailOrg()
	relay := smtptest.NewServer(t, "", "")
	relay.SetReply(smtptest.Rcpt, 550, []int{5, 1, 1}, "<orcid@uni.example>: Recipient address rejected: User unknown")
	d := e.dispatcher(func(o *dispatch.Options) {
		o.DisableAfter = time.Hour
		o.RetryMaxDelay = time.Hour
	})
	d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay.Addr, From: "hookd@hub.example"}})
	for i := 0; i < 3; i++ {
		if i > 0 {
			e.clock.Advance(35 * time.Minute)
			e.intake(0, store.Event{Orcid: orcidA}) // the record changed again
		}
		is.Equal(e.tick(d), 1)
		h, err := e.st.HubSettings(ctx, 1)
		is.NoErr(err)
		is.Equal(h.EmailEnabled, i < 2) // switched off once refused for longer than disable_after
	}
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		is.Equal(dl.StateName(), "dead") // each at once, never retried
		is.Equal(dl.Attempts, 1)
	}
	h, err := e.st.HubSettings(ctx, 1)
	is.NoErr(err)
	is.True(strings.Contains(h.EmailReason, "Recipient address rejected")) // saying why
}

// TestEmailRefusedAfterRelayOutage: the relay is down for longer than
// disable_after, every e-mail to the organisation failing for the relay's fault;
// back, it refuses the organisation's address for good. That one refusal does not
// switch the organisation's e-mail off: the run of refusals counts from the first
// refusal, not from the relay's outage. A relay fault between refusals does not
// end that run either: refused on and on for disable_after, the e-mail is
// switched off, its reason naming the first refusal.
func TestEmailRefusedAfterRelayOutage(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	e.emailOrg()
	relay := smtptest.NewServer(t, "", "")
	relay.SetReply(smtptest.Greeting, 421, []int{4, 3, 2}, "Service not available") // the relay down
	d := e.dispatcher(func(o *dispatch.Options) {
		o.DisableAfter = time.Hour
		o.RetryMaxDelay = 10 * time.Minute
	})
	d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay.Addr, From: "hookd@hub.example"}})
	on := func() bool {
		t.Helper()
		h, err := e.st.HubSettings(ctx, 1)
		is.NoErr(err)
		return h.EmailEnabled
	}
	is.Equal(e.tick(d), 1)
	for e.clock.Now().Sub(e.start) < 2*time.Hour { // twice disable_after, retried on and on
		e.clock.Advance(10 * time.Minute)
		is.Equal(e.tick(d), 1)
		is.Equal(e.only().StateName(), "failed")
		is.True(on()) // the relay's fault switches nothing off
	}

	// Back, the relay refuses the address, once: the e-mail stays on.
	relay.SetReply(smtptest.Greeting, 0, nil, "")
	relay.RefuseRecipient("orcid@uni.example", 550, []int{5, 1, 1}, "<orcid@uni.example>: Recipient address rejected: User unknown")
	e.clock.Advance(10 * time.Minute)
	firstRefusal := e.clock.Now()
	is.Equal(e.tick(d), 1)
	is.Equal(e.only().StateName(), "dead") // refused for good, dead at once
	is.True(on())                          // refused once, moments ago: still on

	// The relay down again: a new e-mail fails for its fault, which neither
	// switches the e-mail off nor ends the run of refusals.
	relay.SetReply(smtptest.Greeting, 421, []int{4, 3, 2}, "Service not available")
	e.clock.Advance(20 * time.Minute)
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1)
	is.True(on())
	e.clock.Advance(10 * time.Minute)
	is.Equal(e.tick(d), 1)
	is.True(on())

	// Back, refusing the address still, 40 minutes after the first refusal:
	// still within disable_after of it.
	relay.SetReply(smtptest.Greeting, 0, nil, "")
	e.clock.Advance(10 * time.Minute)
	is.Equal(e.tick(d), 1)
	is.True(on())

	// Refused an hour after the first refusal: switched off, saying since when.
	e.clock.Advance(20 * time.Minute)
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1)
	h, err := e.st.HubSettings(ctx, 1)
	is.NoErr(err)
	is.True(!h.EmailEnabled)
	is.True(strings.Contains(h.EmailReason, "failed continuously since "+firstRefusal.Format(time.RFC3339))) // the first refusal
	is.True(strings.Contains(h.EmailReason, "Recipient address rejected"))                                   // saying why
}

// TestEmailRefusalsEndWithADelivery: an e-mail the relay takes ends the run of
// refusals of the organisation's address. A refusal after it, even past
// disable_after from the first and after a relay fault since, begins a new run:
// the e-mail stays on.
func TestEmailRefusalsEndWithADelivery(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	e.emailOrg()
	relay := smtptest.NewServer(t, "", "")
	const rejected = "<orcid@uni.example>: Recipient address rejected: User unknown"
	relay.RefuseRecipient("orcid@uni.example", 550, []int{5, 1, 1}, rejected)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.DisableAfter = time.Hour
		o.RetryMaxDelay = 10 * time.Minute
	})
	d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay.Addr, From: "hookd@hub.example"}})
	on := func() bool {
		t.Helper()
		h, err := e.st.HubSettings(ctx, 1)
		is.NoErr(err)
		return h.EmailEnabled
	}
	is.Equal(e.tick(d), 1) // refused: the run of refusals begins
	is.True(on())

	relay.RefuseRecipient("orcid@uni.example", 0, nil, "") // the address mended
	e.clock.Advance(10 * time.Minute)
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1)
	is.Equal(len(relay.Messages()), 1) // taken: the run ends

	relay.SetReply(smtptest.Greeting, 421, []int{4, 3, 2}, "Service not available") // the relay down
	e.clock.Advance(10 * time.Minute)
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // a new run, of the relay's faults
	for e.clock.Now().Sub(e.start) < 90*time.Minute {
		e.clock.Advance(10 * time.Minute)
		is.Equal(e.tick(d), 1)
		is.True(on())
	}

	// Back, refusing the address again, past disable_after from the first
	// refusal: the first of a new run of refusals.
	relay.SetReply(smtptest.Greeting, 0, nil, "")
	relay.RefuseRecipient("orcid@uni.example", 550, []int{5, 1, 1}, rejected)
	e.clock.Advance(10 * time.Minute)
	is.Equal(e.tick(d), 1)
	is.True(on())
	var dead int
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		if dl.StateName() == "dead" {
			dead++
		}
	}
	is.Equal(dead, 2) // the first refused and this one
}

// TestEmailRefusedDailySwitchedOffAndTold: an organisation whose address the relay
// refuses for good, and whose members' records change once a day, has each e-mail
// dead at once; refused so for disable_after (the defaults: 120 h, with
// retry_max_delay 2 h and give_up_after 72 h), its e-mail is switched off and its
// technical contact told, as when each e-mail was retried until give_up_after.
func TestEmailRefusedDailySwitchedOffAndTold(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	e.emailOrg() // to orcid@uni.example, its technical contact tech@uni.example
	relay := smtptest.NewServer(t, "", "")
	relay.RefuseRecipient("orcid@uni.example", 550, []int{5, 1, 1}, "<orcid@uni.example>: Recipient address rejected: User unknown in virtual mailbox table")
	d := e.dispatcher(nil) // the default retry_max_delay, give_up_after and disable_after
	d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay.Addr, From: "hookd@hub.example"}})
	for day := 0; day <= 5; day++ {
		if day > 0 {
			e.clock.Advance(24 * time.Hour)
			_, err := d.Purge(ctx) // the retention pass, which ends the runs that lapsed
			is.NoErr(err)
			e.intake(0, store.Event{Orcid: orcidA}) // the record changed again
		}
		is.Equal(e.tick(d), 1)
		h, err := e.st.HubSettings(ctx, 1)
		is.NoErr(err)
		is.Equal(h.EmailEnabled, day < 5) // switched off once refused for disable_after
		if !h.EmailEnabled {
			is.True(strings.Contains(h.EmailReason, "failed continuously since "+e.start.Format(time.RFC3339))) // since the first refusal
		}
	}
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		is.Equal(dl.StateName(), "dead") // each at once
		is.Equal(dl.Attempts, 1)
	}
	msgs := relay.Messages()
	is.Equal(len(msgs), 1) // the notice, to the technical contact
	is.Equal(msgs[0].To, []string{"tech@uni.example"})
	is.True(strings.Contains(msgs[0].Data, "organisation e-mail deactivated"))
	is.True(strings.Contains(msgs[0].Data, "Recipient address rejected"))
}

// proxyErrorPage is a proxy's 502 page as a token endpoint behind it may answer:
// 77 lines, about 1 KB, its style first.
func proxyErrorPage() string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>502 Bad Gateway</title>\n<style>\n")
	for i := range 60 {
		fmt.Fprintf(&b, "  .c%d { margin: %dpx; }\n", i, i)
	}
	b.WriteString("</style>\n</head>\n<body>\n<h1>Bad Gateway</h1>\n<p>The proxy server received an invalid\nresponse from an upstream server.</p>\n<hr>\n<address>Apache Server at orcid.example Port 443</address>\n</body>\n</html>\n")
	return b.String()
}

// TestUpstreamTokenEndpointHTMLPageNamed: an upstream token endpoint behind a
// proxy that answers 502 with its HTML page leaves a member's registration state
// (hookd org status, the console, the API) and the attempt's error on one line,
// saying the status and the page's title, as an API answer of the kind does,
// not the page's 77 lines.
func TestUpstreamTokenEndpointHTMLPageNamed(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"titled", proxyErrorPage(), "upstream token endpoint: HTTP 502 (an HTML page: 502 Bad Gateway)"},
		{"untitled", "<html>\n<body>\n<h1>Bad Gateway</h1>\n<p>The upstream\nis down</p>\n</body>\n</html>\n",
			"upstream token endpoint: HTTP 502 (an HTML page: Bad Gateway The upstream is down)"},
		{"text", "\n\nupstream connect error or disconnect/reset before headers.\nreset reason: connection failure\n",
			"upstream token endpoint: HTTP 502 upstream connect error or disconnect/reset before headers."},
		{"not OAuth's JSON", "{\n  \"response-code\": 502,\n  \"developer-message\": \"down\"\n}\n", `upstream token endpoint: HTTP 502 {"response-code":502,"developer-message":"down"}`},
		// The page echoes the client secret where its title is cut: the secret
		// is redacted before the cut, so no part of it is left.
		{"long title", "<html><head><title>" + strings.Repeat("x", 192) + " up-secret</title></head></html>",
			"upstream token endpoint: HTTP 502 (an HTML page: " + strings.Repeat("x", 192) + " [red...)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			e := newEnv(t)
			var apiCalls atomic.Int64
			upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
				if r.URL.Path == "/oauth/token" {
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(http.StatusBadGateway)
					io.WriteString(w, tc.body)
					return nil
				}
				apiCalls.Add(1)
				w.WriteHeader(http.StatusCreated)
				return nil
			})
			d, org := upstreamAt(t, e, 1, upstream.URL, upstream.URL, nil)
			is.Equal(e.tick(d), 1)
			is.Equal(apiCalls.Load(), int64(0)) // no token, no registration
			ms, err := e.st.Members(ctx, org)
			is.NoErr(err)
			is.Equal(ms[0].Upstream, "failed: "+tc.want)       // one line: the status and what the page says
			is.True(!strings.Contains(ms[0].Upstream, "up-s")) // no part of the client secret
			dl := e.only()
			is.Equal(dl.LastError, tc.want) // the attempt's error alike
		})
	}
}

// TestEmailRefusalsEndWithANewTechContact: an organisation's e-mail that goes to
// its technical contact (no notification address set) starts its run of
// refusals afresh when the technical contact's address changes, as when the
// notification address does: the new address, refused once, leaves the e-mail
// on. It was switched off at once, "failed continuously since" the first refusal
// of the address that was replaced.
func TestEmailRefusalsEndWithANewTechContact(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	org, err := e.st.CreateOrganisation(ctx, "University of Testing", "tech@uni.example")
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true}) // to the technical contact
	is.NoErr(err)
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
	is.NoErr(err)
	relay := smtptest.NewServer(t, "", "")
	relay.RefuseRecipient("tech@uni.example", 550, []int{5, 1, 1}, "<tech@uni.example>: Recipient address rejected: User unknown")
	relay.RefuseRecipient("tech2@uni.example", 550, []int{5, 1, 1}, "<tech2@uni.example>: Recipient address rejected: User unknown")
	d := e.dispatcher(func(o *dispatch.Options) {
		o.DisableAfter = time.Hour
		o.RetryMaxDelay = time.Hour
	})
	d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay.Addr, From: "hookd@hub.example"}})
	on := func() bool {
		t.Helper()
		h, err := e.st.HubSettings(ctx, org.ID)
		is.NoErr(err)
		return h.EmailEnabled
	}
	is.Equal(e.tick(d), 1) // the old address refused
	is.True(on())
	e.clock.Advance(35 * time.Minute)
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // and again
	is.True(on())

	newContact := "tech2@uni.example"
	_, err = e.st.UpdateOrganisation(ctx, org.ID, store.OrganisationPatch{TechContactEmail: &newContact})
	is.NoErr(err)
	e.clock.Advance(35 * time.Minute) // past disable_after from the old address's first refusal
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // the new address refused, once
	is.True(on())
	is.Equal(len(relay.Messages()), 0)
}

// TestUpstreamOutageOneOrderAsks: ORCID's API is down without saying when to come
// back (a 500 without a Retry-After; or nothing takes the connection) while 60
// registration orders wait. Only the calls out when it went down meet it; then
// one order at a time asks, at the backoff of the failures in a row, while the
// others wait unsent (no call, no attempt, no failure: their members stay
// pending, with no error made up for them), also across a restart of hookd,
// which sends at most the calls out at once before it holds again. Once the
// API answers, every order is carried out, each once.
func TestUpstreamOutageOneOrderAsks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse bool // nothing listens: connections are refused
	}{
		{"500 without Retry-After", false},
		{"connections refused", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			e := newEnv(t)
			const n, perHost = 60, 8
			const base, maxDelay = 5 * time.Second, 40 * time.Second
			var down atomic.Bool
			down.Store(true)
			var calls atomic.Int64 // requests that reached the API
			api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if down.Load() {
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(http.StatusInternalServerError)
					io.WriteString(w, "<html><head><title>500 Internal Server Error</title></head></html>")
					return
				}
				if r.Method == http.MethodPut {
					w.WriteHeader(http.StatusCreated)
				} else {
					w.WriteHeader(http.StatusNoContent)
				}
			})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			is.NoErr(err)
			addr := ln.Addr().String()
			srv := &http.Server{Handler: api}
			t.Cleanup(func() { srv.Close() })
			if tc.refuse {
				ln.Close()
			} else {
				go srv.Serve(ln)
			}
			tokens := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				answerToken(w)
				return nil
			})
			opts := func(o *dispatch.Options) { o.RetryBase, o.RetryMaxDelay, o.PerHost = base, maxDelay, perHost }
			d, org := upstreamAt(t, e, n, "http://"+addr, tokens.URL, opts)

			// tries is how many calls the orders made (each attempt is one), and
			// how many orders made none.
			tries := func() (made, none int) {
				for _, dl := range e.deliveries(store.DeliveryFilter{Limit: 1000}) {
					if dl.EventType != store.UpstreamRegister {
						continue
					}
					made += dl.Attempts
					if dl.Attempts == 0 {
						none++
						is.Equal(dl.LastError, "") // a wait, no failure
						is.Equal(dl.State, store.StatePending)
					}
				}
				return made, none
			}
			restartAt := e.clock.Now().Add(5 * time.Minute)
			end := e.clock.Now().Add(10 * time.Minute)
			restarted := false
			last, bursts := 0, 0
			var lastCall time.Time
			for e.clock.Now().Before(end) {
				if !restarted && !e.clock.Now().Before(restartAt) {
					// A restart during the wait: what the process held in memory is lost.
					d.Close()
					d = e.dispatcher(opts)
					d.ConfigureHub(dispatch.HubOptions{Upstream: dispatch.UpstreamOptions{APIURL: "http://" + addr + "/v3.0", TokenURL: tokens.URL + "/oauth/token",
						ClientID: "APP-1", ClientSecret: "up-secret", PublicURL: "https://hub.example.org"}})
					restarted = true
				}
				e.tick(d)
				made, _ := tries()
				if wave := made - last; wave > 1 {
					// The calls out at once when the API went down: at the start,
					// and once after the restart.
					bursts++
					is.True(wave < 2*perHost) // and those begun as the others came back, before per_host failed
				}
				if made > last {
					lastCall = e.clock.Now()
				}
				last = made
				e.clock.Advance(time.Second)
			}
			made, none := tries()
			t.Logf("%d calls in 10 minutes of the outage; %d of %d orders made none", made, none, n)
			is.True(bursts <= 2)                                                         // the start and the restart
			is.True(made >= 10)                                                          // asked again all along, at the backoff
			is.True(made <= 4*perHost+20)                                                // not once per order and retry: 60 orders, 17 waves
			is.True(end.Sub(lastCall) <= maxDelay+dispatch.DefaultTimeout+2*time.Second) // still asked, at retry_max_delay
			if !tc.refuse {
				is.Equal(calls.Load(), int64(made)) // each attempt one call, and no other
			}
			ms, err := e.st.Members(ctx, org)
			is.NoErr(err)
			pending := 0
			for _, m := range ms {
				switch {
				case m.Upstream == "pending":
					pending++
				case strings.HasPrefix(m.Upstream, "failed: "):
					if tc.refuse {
						is.True(strings.Contains(m.Upstream, "refused")) // what the call met
					} else {
						is.True(strings.Contains(m.Upstream, "HTTP 500 (an HTML page: 500 Internal Server Error)"))
					}
				default:
					t.Fatalf("member %s: %q", m.Orcid, m.Upstream)
				}
			}
			is.Equal(pending, none) // the orders that waited are pending, not failed

			// The API is back.
			if tc.refuse {
				ln, err := net.Listen("tcp", addr)
				is.NoErr(err)
				go srv.Serve(ln)
			}
			down.Store(false)
			before := calls.Load()
			for i := 0; i < 120; i++ {
				e.tick(d)
				e.clock.Advance(time.Second)
			}
			for _, dl := range e.deliveries(store.DeliveryFilter{Limit: 1000}) {
				if dl.EventType == store.UpstreamRegister {
					is.Equal(dl.State, store.StateDelivered) // every order carried out
				}
			}
			is.Equal(calls.Load()-before, int64(n)) // each once
			ms, err = e.st.Members(ctx, org)
			is.NoErr(err)
			for _, m := range ms {
				is.Equal(m.Upstream, "registered")
			}
		})
	}
}

// TestUpstreamRecordRefusalHoldsNothing: ORCID refuses one record (a 4xx, or a
// 500 to that record alone) while the others are registered: that is the
// record's, not the API's, and holds no other order.
func TestUpstreamRecordRefusalHoldsNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{
		{"404", http.StatusNotFound},
		{"500", http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			const n = 30
			bad := testOrcid(0)
			var calls atomic.Int64
			upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
				if r.URL.Path == "/oauth/token" {
					answerToken(w)
					return nil
				}
				calls.Add(1)
				if strings.Contains(r.URL.Path, "/"+bad+"/") {
					w.WriteHeader(tc.status)
					return nil
				}
				w.WriteHeader(http.StatusCreated)
				return nil
			})
			// One call at a time: the record's order, claimed first, is the first
			// to ask at each turn it is due.
			d, _ := upstreamAt(t, e, n, upstream.URL, upstream.URL, func(o *dispatch.Options) { o.RetryBase, o.PerHost = 5*time.Second, 1 })
			delivered := func() int {
				k := 0
				for _, dl := range e.deliveries(store.DeliveryFilter{Limit: 1000}) {
					if dl.EventType == store.UpstreamRegister && dl.State == store.StateDelivered {
						k++
					}
				}
				return k
			}
			for range 5 { // the host's turns: a queue of 8 rows each
				e.tick(d)
				e.clock.Advance(time.Second)
			}
			is.Equal(delivered(), n-1) // none held
			is.Equal(calls.Load(), int64(n))
		})
	}
}

// TestUpstreamStrayFailuresHoldNothing: ORCID answers 500 to one record (one it
// cannot process) and, now and then, to another call (one node behind its
// balancer failing), while it answers every other call: that is no outage. With
// the default settings, 200 orders go out at once but those that met a 500,
// which are retried at their own backoff; the record's retries, alone (its
// failure followed by its own), hold nothing either; hookd's log never says
// that the API is failing; an order made later goes out at once.
func TestUpstreamStrayFailuresHoldNothing(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	const n = 200
	bad := testOrcid(0)
	var mu sync.Mutex
	met := map[string]bool{} // the records whose call met a 500
	var calls atomic.Int64
	upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			answerToken(w)
			return nil
		}
		k := calls.Add(1)
		id := strings.Split(strings.TrimPrefix(r.URL.Path, "/v3.0/"), "/")[0]
		mu.Lock()
		fail := id == bad || k%20 == 0 && !met[id] // a node's failure, once for a record
		met[id] = met[id] || fail
		mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			return nil
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	var logs lockedBuffer
	d, org := upstreamAt(t, e, n, upstream.URL, upstream.URL, func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	delivered := func() map[string]bool {
		got := map[string]bool{}
		for _, dl := range e.deliveries(store.DeliveryFilter{Limit: 1000}) {
			if dl.EventType == store.UpstreamRegister && dl.State == store.StateDelivered {
				got[dl.Subject] = true
			}
		}
		return got
	}
	for range 10 {
		e.tick(d)
		e.clock.Advance(time.Second)
	}
	got := delivered()
	mu.Lock()
	failed := maps.Clone(met)
	mu.Unlock()
	for i := range n {
		if id := testOrcid(i); !failed[id] {
			is.True(got[id]) // not held by another record's 500
		}
	}
	is.True(len(failed) >= 2) // the record and the node's failures
	// The others' retries, then the record's, alone, for 20 minutes.
	for range 20 * 60 {
		e.tick(d)
		e.clock.Advance(time.Second)
	}
	is.Equal(len(delivered()), n-1) // all but the record
	before := calls.Load()
	_, err := e.st.PutMember(ctx, org, testOrcid(n), store.MemberInfo{}, 0)
	is.NoErr(err)
	e.tick(d)
	is.True(delivered()[testOrcid(n)]) // the order made later, at once
	is.Equal(calls.Load(), before+1)
	is.True(!strings.Contains(logs.String(), "API failing")) // no outage said
}

// TestUpstreamFailingRecordsStarveNoOrder: ORCID answers 500 to two records it
// cannot process, for good, and every other call; whatever the two made of it
// (an outage, when they fail in a row), they do not keep asking first while the
// other orders wait, nor make the wait longer: with the default settings, the
// orders of another record go out within a wait. Both when the two are all
// there is to register for two hours before a member is added (a wait of
// retry_base), and when they are the oldest orders through ORCID's outage of
// ten minutes, which then ends (the wait it had reached, 8 minutes at most).
func TestUpstreamFailingRecordsStarveNoOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int           // members, the two failing ones first
		outage time.Duration // ORCID down at first for so long
		quiet  time.Duration // then nothing else to do for so long, before a member is added
		within time.Duration // the others are carried out within so long after
	}{
		{"alone, then a member added", 2, 0, 2 * time.Hour, 70 * time.Second},
		{"the oldest through an outage", 20, 10 * time.Minute, 0, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			e := newEnv(t)
			start := e.clock.Now()
			broken := func(id string) bool { return id == testOrcid(0) || id == testOrcid(1) }
			upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
				if r.URL.Path == "/oauth/token" {
					answerToken(w)
					return nil
				}
				id := strings.Split(strings.TrimPrefix(r.URL.Path, "/v3.0/"), "/")[0]
				if broken(id) || e.clock.Now().Before(start.Add(tc.outage)) {
					w.WriteHeader(http.StatusInternalServerError)
					return nil
				}
				w.WriteHeader(http.StatusCreated)
				return nil
			})
			d, org := upstreamAt(t, e, tc.n, upstream.URL, upstream.URL, nil)
			for e.clock.Now().Before(start.Add(tc.outage + tc.quiet)) {
				e.tick(d)
				e.clock.Advance(time.Second)
			}
			if tc.quiet > 0 {
				_, err := e.st.PutMember(ctx, org, testOrcid(tc.n), store.MemberInfo{}, 0)
				is.NoErr(err)
			}
			// A wait of the default settings (Rand 0.5: jittered x1), and a turn.
			for end := e.clock.Now().Add(tc.within); e.clock.Now().Before(end); {
				e.tick(d)
				e.clock.Advance(time.Second)
			}
			for _, dl := range e.deliveries(store.DeliveryFilter{Limit: 1000}) {
				if dl.EventType == store.UpstreamRegister && !broken(dl.Subject) {
					is.Equal(dl.State, store.StateDelivered) // not held behind the two
				}
			}
		})
	}
}

// TestUpstreamAnswerEndingOutageSaysWhen: ORCID fails the calls out at once but
// two, which it answers once the others have made it down (it was down a
// moment). The answer ends the outage, but not the wait already begun (a
// backoff): hookd's log says when the orders waiting go out, and they go out
// then.
func TestUpstreamAnswerEndingOutageSaysWhen(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var calls, failed atomic.Int64
	var back atomic.Bool // it answers again
	var logs lockedBuffer
	upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			answerToken(w)
			return nil
		}
		if k := calls.Add(1); k <= 2 {
			// Answered once the others made it down.
			for end := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "API failing") && time.Now().Before(end); {
				time.Sleep(5 * time.Millisecond)
			}
			back.Store(true)
		}
		if back.Load() {
			w.WriteHeader(http.StatusCreated)
			return nil
		}
		failed.Add(1)
		w.WriteHeader(http.StatusBadGateway)
		return nil
	})
	d, _ := upstreamAt(t, e, 40, upstream.URL, upstream.URL, func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	start := e.clock.Now()
	e.tick(d)
	is.True(strings.Contains(logs.String(), "upstream ORCID API failing"))
	var line string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "upstream ORCID API answers again") {
			line = l
		}
	}
	wait := start.Add(time.Minute - time.Second) // retry_base, jittered x1, a turn before the order that asked
	is.True(strings.Contains(line, "from="+wait.Format(time.RFC3339)))
	delivered := func() int {
		k := 0
		for _, dl := range e.deliveries(store.DeliveryFilter{Limit: 1000}) {
			if dl.EventType == store.UpstreamRegister && dl.State == store.StateDelivered {
				k++
			}
		}
		return k
	}
	before := delivered()
	for e.clock.Now().Before(wait) {
		e.clock.Advance(time.Second)
		if e.clock.Now().Before(wait) {
			e.tick(d)
			is.Equal(delivered(), before) // the wait holds
		}
	}
	for range 3 {
		e.tick(d)
		e.clock.Advance(time.Second)
	}
	is.True(delivered() >= 40-int(failed.Load())) // then they go out (the calls that failed at their own backoff)
}

// TestUpstreamPartialFailuresHoldNothing: ORCID answers most calls but fails
// some with a 500 while 200 registration orders wait: a node behind its
// balancer failing 30% of calls at random, or five records in a row of the
// members file that it cannot process. Two such failures come back one after
// the other now and then, and that is no outage: with the default settings the
// orders whose call was answered are carried out at once, not one wait at a
// time, and hookd's log never says that the API is failing.
func TestUpstreamPartialFailuresHoldNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(id string, k int64) bool // k: the call's number
	}{
		{"30% of calls at random", func(_ string, k int64) bool {
			return rand.New(rand.NewPCG(uint64(k), 7)).Float64() < 0.3
		}},
		{"five records in a row", func(id string, _ int64) bool {
			for i := 10; i < 15; i++ {
				if id == testOrcid(i) {
					return true
				}
			}
			return false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			const n = 200
			var calls atomic.Int64
			upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
				if r.URL.Path == "/oauth/token" {
					answerToken(w)
					return nil
				}
				id := strings.Split(strings.TrimPrefix(r.URL.Path, "/v3.0/"), "/")[0]
				if tc.fail(id, calls.Add(1)) {
					w.WriteHeader(http.StatusInternalServerError)
					return nil
				}
				w.WriteHeader(http.StatusCreated)
				return nil
			})
			var logs lockedBuffer
			d, _ := upstreamAt(t, e, n, upstream.URL, upstream.URL, func(o *dispatch.Options) {
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			delivered := func() int {
				k := 0
				for _, dl := range e.deliveries(store.DeliveryFilter{Limit: 1000}) {
					if dl.EventType == store.UpstreamRegister && dl.State == store.StateDelivered {
						k++
					}
				}
				return k
			}
			for range 10 {
				e.tick(d)
				e.clock.Advance(time.Second)
			}
			got := delivered()
			t.Logf("%d of %d orders carried out in 10 s, %d calls", got, n, calls.Load())
			is.True(got >= n/2) // those answered, not held behind a wait
			// The retries of the orders that met a 500, for three minutes.
			for range 3 * 60 {
				e.tick(d)
				e.clock.Advance(time.Second)
			}
			is.True(!strings.Contains(logs.String(), "API failing")) // no outage said
		})
	}
}
