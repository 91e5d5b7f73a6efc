package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// hangingTokenEndpoint is a token endpoint that never answers its first hangs
// requests (every one when hangs is 0) and issues a token to the others, and the
// count of its requests.
func hangingTokenEndpoint(t *testing.T, hangs int32) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i := n.Add(1); hangs > 0 && i > hangs {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"tok-abcdefgh","token_type":"bearer","expires_in":3600}`))
			return
		}
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); srv.CloseClientConnections(); srv.Close() })
	return srv, &n
}

// hangingTokenWebhook is an environment with one client_credential webhook whose
// token endpoint never answers: the count of its requests, and the webhook's receiver.
func hangingTokenWebhook(t *testing.T) (*testEnv, *atomic.Int32, *receiver) {
	return tokenWebhook(t, 0)
}

// tokenWebhook is hangingTokenWebhook whose token endpoint hangs only its first
// hangs requests (hangingTokenEndpoint).
func tokenWebhook(t *testing.T, hangs int32) (*testEnv, *atomic.Int32, *receiver) {
	t.Helper()
	e := newEnv(t)
	a := newAuthAPI(e)
	tok, n := hangingTokenEndpoint(t, hangs)
	rv := newReceiver(t, nil)
	a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tok.URL + `/oauth/token"}}`)
	return e, n, rv
}

// TestTokenFetchWithinTimeout: a token endpoint that never answers costs an
// attempt delivery.timeout, not one for each style oauth2 tries, nor one for the
// fetch and another for the call: one deadline bounds the whole attempt, so once
// the first request to the endpoint has used it up, no other is sent.
func TestTokenFetchWithinTimeout(t *testing.T) {
	is := is.New(t)
	e, n, rv := hangingTokenWebhook(t)
	const timeout = 400 * time.Millisecond
	d := e.dispatcher(func(o *dispatch.Options) { o.Timeout = timeout })
	e.intake(0, store.Event{Orcid: orcidA})

	is.Equal(e.tick(d), 1)       // one attempt, which ends
	is.Equal(n.Load(), int32(1)) // with one request to the token endpoint, not one for each style
	is.Equal(rv.count(), 0)      // nothing reached the receiver
	as := e.attempts(e.only().ID)
	is.Equal(len(as), 1)                                                     // logged
	is.Equal(as[0].Error, "token endpoint: timeout after "+timeout.String()) // as the delivery's timeout
}

// TestShutdownCancelsTokenFetch: a shutdown's cancel ends a token fetch as it ends
// a call: the delivery is handed back, not counted as a failed attempt.
func TestShutdownCancelsTokenFetch(t *testing.T) {
	is := is.New(t)
	e, n, _ := hangingTokenWebhook(t)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Timeout = time.Hour // Run ends only if the shutdown ends the fetch
		o.ShutdownGrace = 100 * time.Millisecond
	})
	e.intake(0, store.Event{Orcid: orcidA})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	waitFor(t, 2*time.Second, "the token request", func() bool { return n.Load() == 1 })
	cancel()
	is.NoErr(<-ran) // Run ended: the shutdown ended the fetch
	row := e.only()
	is.Equal(row.StateName(), "pending") // released
	is.Equal(row.Attempts, 0)            // not counted as an attempt
}

// TestTokenEndpointRedirect: a token endpoint that redirects (a token URL written
// with http:// where its server moved to https://, or a path moved) is not
// followed, the client secret would go along, and the attempt log says where it
// points, as for a receiver's redirect, not "HTTP 301" alone.
func TestTokenEndpointRedirect(t *testing.T) {
	var moved atomic.Int32
	tok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth/token":
			w.Header().Set("Location", "https://"+r.Host+"/oauth/token?from=http")
			w.WriteHeader(http.StatusMovedPermanently)
		case "/old/token":
			w.Header().Set("Location", "/oauth2/v2/token")
			w.WriteHeader(http.StatusPermanentRedirect)
		default:
			moved.Add(1)
		}
	}))
	t.Cleanup(tok.Close)
	for _, tc := range []struct{ path, want string }{
		{"/oauth/token", `token endpoint: HTTP 301 redirect to "https://` + tok.Listener.Addr().String() + `/oauth/token" not followed`},
		{"/old/token", `token endpoint: HTTP 308 redirect to "` + tok.URL + `/oauth2/v2/token" not followed`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			a := newAuthAPI(e)
			rv := newReceiver(t, nil)
			a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tok.URL + tc.path + `"}}`)
			d := e.dispatcher(nil)
			e.intake(0, store.Event{Orcid: orcidA})
			is.Equal(e.tick(d), 1) // one attempt
			dl := e.only()
			as := e.attempts(dl.ID)
			is.Equal(len(as), 1)               // logged
			is.Equal(as[0].Error, tc.want)     // saying where the endpoint points
			is.Equal(dl.StateName(), "failed") // retried
			is.Equal(rv.count(), 0)            // the receiver is not called without a token
			is.Equal(moved.Load(), int32(0))   // and the redirect is not followed
		})
	}
}

// TestTokenEndpointClientAuthentication: a callback's client credentials go to
// its token endpoint in an Authorization header (HTTP Basic); an endpoint that
// refuses them there (a 401 or 400 invalid_client) is asked again with them in
// the form, which is kept for its later fetches. One that answers 429, 503 or
// 500 is not asked again at once the other way: it said to wait, or failed
// whatever the way.
func TestTokenEndpointClientAuthentication(t *testing.T) {
	cases := []struct {
		name  string
		basic int // the endpoint's status to credentials in the header; the form's get a token
		form  int // 0: a token
		want  []string
	}{
		{"form only", http.StatusUnauthorized, 0, []string{"basic", "form", "form"}},
		{"invalid_client both ways", http.StatusBadRequest, http.StatusBadRequest, []string{"basic", "form"}},
		{"429", http.StatusTooManyRequests, 0, []string{"basic"}},
		{"503", http.StatusServiceUnavailable, 0, []string{"basic"}},
		{"500", http.StatusInternalServerError, 0, []string{"basic"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			a := newAuthAPI(e)
			var mu sync.Mutex
			var ways []string
			tok := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, body []byte) error {
				way, status := "form", tc.form
				if id, secret, ok := r.BasicAuth(); ok {
					if id != "callback-app" || secret != "cs-SECRET-cc-456" {
						return fmt.Errorf("Basic credentials %q", id)
					}
					way, status = "basic", tc.basic
				} else if f, _ := url.ParseQuery(string(body)); f.Get("client_id") != "callback-app" || f.Get("client_secret") != "cs-SECRET-cc-456" {
					return fmt.Errorf("no credentials in the form: %s", body)
				}
				mu.Lock()
				ways = append(ways, way)
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				if status != 0 {
					w.Header().Set("Retry-After", "60")
					w.WriteHeader(status)
					io.WriteString(w, `{"error":"invalid_client"}`)
					return nil
				}
				io.WriteString(w, `{"access_token":"tok-abcdefgh","token_type":"bearer","expires_in":3600}`)
				return nil
			})
			rv := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				if n == 2 {
					w.WriteHeader(http.StatusUnauthorized) // the token taken before, revoked: a new one is fetched
					return nil
				}
				w.WriteHeader(http.StatusNoContent)
				return nil
			})
			a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tok.URL + `/oauth/token"}}`)
			d := e.dispatcher(nil)
			e.intake(0, store.Event{Orcid: orcidA})
			is.Equal(e.tick(d), 1)
			if tc.form == 0 && tc.basic == http.StatusUnauthorized {
				e.intake(0, store.Event{Orcid: orcidB})
				is.Equal(e.tick(d), 1)
				is.Equal(rv.count(), 3) // delivered, refused (401), delivered with the new token
			}
			for _, r := range tok.requests() {
				is.NoErr(r.verr) // the endpoint had the client's credentials
			}
			mu.Lock()
			defer mu.Unlock()
			is.Equal(ways, tc.want) // how, and how often, the endpoint was asked
		})
	}
}

// TestTokenEndpointRefusesBothWays: a token endpoint that refuses a callback's
// client credentials both ways, in an Authorization header (HTTP Basic) and in
// the form, is told of by both answers, in the attempt log, the delivery's last
// error (which the console and hookd deliveries show) and the log: only the
// form's was, which hid the cause when it was the header's answer (a 401
// invalid_client to a wrong secret, then a 400 to credentials in a form the
// endpoint does not take). The refusal handed on to the next delivery reads
// the same. The client's secret, which an answer may echo, is in none of them.
func TestTokenEndpointRefusesBothWays(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	tok := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if _, _, ok := r.BasicAuth(); ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client","error_description":"client authentication failed"}`)
			return nil
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "unsupported: client_secret=cs-SECRET-cc-456 in the body\n")
		return nil
	})
	rv := newReceiver(t, nil)
	a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tok.URL + `/oauth/token"}}`)
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.LogDeliveries = true
	})
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1)
	e.clock.Advance(time.Second)
	e.intake(0, store.Event{Orcid: orcidB})
	is.Equal(e.tick(d), 1)   // handed the refusal of a moment before
	is.Equal(tok.count(), 2) // asked once each way
	is.Equal(rv.count(), 0)  // the receiver is not called without a token

	const want = `token endpoint: credentials as HTTP Basic: oauth2: "invalid_client" "client authentication failed"; ` +
		`in the form: HTTP 400 unsupported: client_secret=[redacted] in the body`
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		as := e.attempts(dl.ID)
		is.Equal(len(as), 1)
		is.True(strings.HasPrefix(dl.LastError, want)) // both answers, the header's first
		is.Equal(as[0].Error, dl.LastError)            // in the attempt log too
		is.Equal(dl.StateName(), "failed")             // retried
	}
	is.True(strings.Contains(logs.String(), `"err":"`+strings.ReplaceAll(want, `"`, `\"`))) // and the log
	is.True(!strings.Contains(logs.String(), "cs-SECRET-cc-456"))                           // no secret
}

// TestTokenRefusalHandedOnSaysSo: a delivery that takes the token endpoint's
// refusal of an earlier request (another delivery's, here on its own first
// attempt) says plainly that the endpoint was not asked for it, when the refusal
// came and until when it holds: it said "its answer of a moment before", which a
// first attempt had never had. The delivery that asked says nothing of it.
func TestTokenRefusalHandedOnSaysSo(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	tok := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_client"}`)
		return nil
	})
	rv := newReceiver(t, nil)
	a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-secret","tokenURL":"` + tok.URL + `/oauth/token"}}`)
	d := e.dispatcher(nil)
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // asks, and is refused
	e.clock.Advance(time.Second)
	e.intake(0, store.Event{Orcid: orcidB})
	is.Equal(e.tick(d), 1)   // takes that refusal on its first attempt
	is.Equal(tok.count(), 2) // asked once each way, for the first delivery alone

	const handedOn = " (the endpoint was not asked for this attempt: this is its answer at 12:00:00 UTC to an earlier request " +
		"with the same credentials, which hookd takes as the answer until 12:00:30 UTC, then asks again)"
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		as := e.attempts(dl.ID)
		is.Equal(len(as), 1) // a first attempt each
		is.True(!strings.Contains(as[0].Error, "a moment before"))
		if dl.Subject == orcidA {
			is.True(!strings.Contains(as[0].Error, "not asked")) // it asked
		} else {
			is.True(strings.HasSuffix(as[0].Error, handedOn)) // it did not, and says so
		}
	}
}

// TestTokenEndpointEchoQuotedRedacted: an OAuth error whose description
// echoes the client's secret is worded by oauth2 with the description quoted
// as Go quotes it, which writes a character it does not know as printable (one
// of a Unicode version newer than Go's tables, a private use one, a tag) as
// \U escape: such an echo, of the header's try and of the form's, was stored
// in the attempt log, the delivery's last error and the log, the secret
// readable but for that escape. It is redacted as the secret's other forms are.
func TestTokenEndpointEchoQuotedRedacted(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	const secret = "cs-SECRET-\U0001FAE9-cc-\U000F0041-456"
	tok := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		b, _ := json.Marshal(map[string]string{"error": "invalid_client", "error_description": "wrong secret " + secret})
		w.Write(b)
		return nil
	})
	rv := newReceiver(t, nil)
	js, _ := json.Marshal(secret)
	a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":` + string(js) + `,"tokenURL":"` + tok.URL + `/oauth/token"}}`)
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.LogDeliveries = true
	})
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1)
	is.Equal(tok.count(), 2) // asked once each way
	quoted := strconv.Quote(secret)
	quoted = quoted[1 : len(quoted)-1] // as %q writes it within the description
	dl := e.deliveries(store.DeliveryFilter{})[0]
	const want = `token endpoint: credentials as HTTP Basic: oauth2: "invalid_client" "wrong secret [redacted]"; ` +
		`in the form: oauth2: "invalid_client" "wrong secret [redacted]"`
	is.True(strings.HasPrefix(dl.LastError, want))                   // both answers, the secret redacted
	is.True(!strings.Contains(dl.LastError, "SECRET"))               // no part of it in the last error
	is.True(!strings.Contains(e.attempts(dl.ID)[0].Error, "SECRET")) // nor in the attempt log
	is.True(!strings.Contains(logs.String(), "SECRET"))              // nor in the log
	is.True(!strings.Contains(logs.String(), quoted))
}

// TestTokenEndpointUnreadableRetryAfter: a token endpoint's 429 or 503 whose
// Retry-After is neither seconds nor an HTTP date is backed off from, as a
// receiver's is, and the attempt log says so: it held the delivery 30 s as if
// the endpoint had asked for that, saying nothing. The refusal handed on to
// the next delivery reads the same.
func TestTokenEndpointUnreadableRetryAfter(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			a := newAuthAPI(e)
			tok := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				w.Header().Set("Retry-After", "soon")
				w.WriteHeader(status)
				return nil
			})
			rv := newReceiver(t, nil)
			a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tok.URL + `/oauth/token"}}`)
			d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = 2 * time.Minute })
			const note = ` (its Retry-After "soon" is neither seconds nor an HTTP date: backing off instead)`
			t0 := e.clock.Now()
			e.intake(0, store.Event{Orcid: orcidA})
			is.Equal(e.tick(d), 1)
			e.clock.Advance(10 * time.Second)
			e.intake(0, store.Event{Orcid: orcidB})
			is.Equal(e.tick(d), 1) // handed the refusal of a moment before
			is.Equal(tok.count(), 1)
			is.Equal(rv.count(), 0) // the receiver is not called without a token
			for _, dl := range e.deliveries(store.DeliveryFilter{}) {
				t.Log(dl.LastError)
				is.True(strings.HasPrefix(dl.LastError, "token endpoint: "))
				is.True(strings.Contains(dl.LastError, note)) // says why it was not waited for
				at := t0
				if dl.Subject == orcidB {
					at = t0.Add(10 * time.Second)
				}
				is.Equal(dl.DueAt, at.Add(2*time.Minute)) // backed off, not held 30 s
			}
		})
	}
}

// TestTokenTypeNotBearer: a token endpoint that issues a token of another type
// than bearer (mac, DPoP, N_A) has it refused, not sent as "Authorization:
// Bearer" (RFC 6749 §7.1: a client does not use a token type it does not
// understand); the attempt log names the type. One of token_type "Bearer" in
// any case, or none (taken for bearer, as oauth2 does), is sent.
func TestTokenTypeNotBearer(t *testing.T) {
	cases := []struct {
		name, answer, want string // want: the attempt's error, "" for delivered
	}{
		{"mac", `{"access_token":"tok-abcdefgh","token_type":"mac","expires_in":3600}`,
			`token endpoint: HTTP 200 issued a token of token_type "mac", which hookd does not send: it sends bearer tokens only`},
		{"DPoP", `{"access_token":"tok-abcdefgh","token_type":"DPoP","expires_in":3600}`,
			`token endpoint: HTTP 200 issued a token of token_type "DPoP", which hookd does not send: it sends bearer tokens only`},
		{"N_A", `{"access_token":"tok-abcdefgh","token_type":"N_A"}`,
			`token endpoint: HTTP 200 issued a token of token_type "N_A", which hookd does not send: it sends bearer tokens only`},
		{"echoed secret", `{"access_token":"tok-abcdefgh","token_type":"cs-SECRET-cc-456 tok-abcdefgh"}`,
			`token endpoint: HTTP 200 issued a token of token_type "[redacted] [redacted]", which hookd does not send: it sends bearer tokens only`},
		{"Bearer", `{"access_token":"tok-abcdefgh","token_type":"Bearer","expires_in":3600}`, ""},
		{"none", `{"access_token":"tok-abcdefgh","expires_in":3600}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			a := newAuthAPI(e)
			tok := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tc.answer)
				return nil
			})
			rv := newReceiver(t, nil)
			a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tok.URL + `/oauth/token"}}`)
			d := e.dispatcher(nil)
			e.intake(0, store.Event{Orcid: orcidA})
			is.Equal(e.tick(d), 1)
			dl := e.only()
			if tc.want == "" {
				is.Equal(dl.StateName(), "delivered")
				is.Equal(rv.requests()[0].header.Get("Authorization"), "Bearer tok-abcdefgh")
				return
			}
			is.Equal(rv.count(), 0) // the token is not sent
			as := e.attempts(dl.ID)
			is.Equal(len(as), 1)
			is.Equal(as[0].Error, tc.want)     // names the type
			is.Equal(dl.StateName(), "failed") // retried
			e.intake(0, store.Event{Orcid: orcidB})
			is.Equal(e.tick(d), 1)
			is.Equal(tok.count(), 1) // the answer is handed on for a while, as a refusal is
			is.Equal(rv.count(), 0)
		})
	}
}

// TestTokenTooLong: a token longer than 16 KiB is not sent, nor kept: as a
// header, servers refuse it (most beyond 8 KiB), and the token cache would hold
// it for each of its thousands of sources (up to the 1 MiB oauth2 reads). The
// attempt says so, with the token's length, and the answer is handed on as a
// refusal is; a token of 16 KiB is sent.
func TestTokenTooLong(t *testing.T) {
	for _, n := range []int{16 << 10, 16<<10 + 1, 1000 << 10} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			a := newAuthAPI(e)
			long := strings.Repeat("t", n)
			tok := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":3600}`, long)
				return nil
			})
			rv := newReceiver(t, nil)
			a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tok.URL + `/oauth/token"}}`)
			d := e.dispatcher(nil)
			e.intake(0, store.Event{Orcid: orcidA})
			is.Equal(e.tick(d), 1)
			dl := e.only()
			if n <= 16<<10 {
				is.Equal(dl.StateName(), "delivered")
				is.Equal(rv.requests()[0].header.Get("Authorization"), "Bearer "+long) // sent whole
				return
			}
			is.Equal(rv.count(), 0) // the token is not sent
			as := e.attempts(dl.ID)
			is.Equal(len(as), 1)
			is.Equal(as[0].Error, fmt.Sprintf("token endpoint: HTTP 200 issued a token of %d bytes, which hookd does not send: "+
				"it sends tokens of at most 16 KiB, as most servers refuse a longer header", n)) // says why
			is.Equal(dl.StateName(), "failed") // retried
			e.intake(0, store.Event{Orcid: orcidB})
			is.Equal(e.tick(d), 1)
			is.Equal(tok.count(), 1) // the answer is handed on for a while, as a refusal is
			is.Equal(rv.count(), 0)
		})
	}
}

// TestTokenEndpointLongRetryAfterDate: a token endpoint's Retry-After that reads
// as an HTTP date written long (its seconds with a fraction, which the date
// takes) is waited for as it reads, however long: the refusal kept it cut to 128
// bytes, its " GMT" gone, so that the delivery backed off instead, its attempt
// saying the endpoint's date was neither seconds nor an HTTP date.
func TestTokenEndpointLongRetryAfterDate(t *testing.T) {
	for _, zeros := range []int{40, 200, 60 << 10} {
		t.Run(strconv.Itoa(zeros), func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			a := newAuthAPI(e)
			t0 := e.clock.Now()
			at := t0.Add(20 * time.Minute).UTC().Truncate(time.Second)
			date := at.Format("Mon, 02 Jan 2006 15:04:05") + "." + strings.Repeat("0", zeros) + " GMT"
			tok := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				w.Header().Set("Retry-After", date)
				w.WriteHeader(http.StatusTooManyRequests)
				return nil
			})
			rv := newReceiver(t, nil)
			a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tok.URL + `/oauth/token"}}`)
			d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = 2 * time.Minute })
			e.intake(0, store.Event{Orcid: orcidA})
			is.Equal(e.tick(d), 1)
			e.clock.Advance(10 * time.Second)
			e.intake(0, store.Event{Orcid: orcidB})
			is.Equal(e.tick(d), 1) // handed the refusal of a moment before
			is.Equal(tok.count(), 1)
			for _, dl := range e.deliveries(store.DeliveryFilter{}) {
				t.Log(dl.LastError)
				is.True(!strings.Contains(dl.LastError, "neither seconds nor an HTTP date"))
				is.Equal(dl.DueAt, at) // waited for as the endpoint asked
			}
		})
	}
}
