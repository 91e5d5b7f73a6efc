package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"hookd/dispatch"
	"hookd/httpapi"
	"hookd/store"
)

// Platform webhooks end to end: registered through hookd's real HTTP API, delivered
// by a real dispatcher to real receivers on 127.0.0.1, with callback auth. Helpers
// here carry an "auth" prefix so they stay apart from the package's other helpers.

const authWebhooks = "/api/notifications/v1/webhooks"

// authAPI is hookd's HTTP API on the env's store. It also serves /oauth/token, so
// it is the token endpoint of client_credential webhooks; tokenRequests counts the
// calls to it, and failToken makes it answer 500.
type authAPI struct {
	e             *testEnv
	srv           *httptest.Server
	token         string // a /webhook token of the env's client
	tokenRequests atomic.Int32
	failToken     atomic.Bool
}

func newAuthAPI(e *testEnv) *authAPI {
	e.tb.Helper()
	is := is.New(e.tb)
	a := &authAPI{e: e}
	h := httpapi.NewServer(httpapi.Options{Store: e.st, AllowPrivateTargets: true, TokenTTL: time.Hour}).Handler()
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			a.tokenRequests.Add(1)
			if a.failToken.Load() {
				http.Error(w, "token service down", http.StatusInternalServerError)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	e.tb.Cleanup(a.srv.Close)
	// The tests move the clock by a day: the token outlives that.
	tok, err := e.st.IssueToken(context.Background(), e.client.Client, []string{store.ScopeWebhook}, 30*24*time.Hour)
	is.NoErr(err) // issue a /webhook token
	a.token = tok.Access
	return a
}

// call sends a platform API request with a JSON body (none when empty) and returns
// the status and body.
func (a *authAPI) call(method, path, body string) (int, []byte) {
	a.e.tb.Helper()
	is := is.New(a.e.tb)
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	is.NoErr(err) // make request
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	res, err := a.srv.Client().Do(req)
	is.NoErr(err) // send request
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	is.NoErr(err) // read response
	return res.StatusCode, b
}

// authCreated is the part of a created webhook record these tests use.
type authCreated struct {
	ID            string `json:"id"`
	SigningSecret string `json:"signingSecret"`
}

// create registers a webhook through the API and returns its id and signing secret.
func (a *authAPI) create(body string) authCreated {
	a.e.tb.Helper()
	is := is.New(a.e.tb)
	status, b := a.call(http.MethodPost, authWebhooks, body)
	if status != http.StatusOK {
		a.e.tb.Logf("body: %s", b)
	}
	is.Equal(status, http.StatusOK) // webhook created
	var rec authCreated
	is.NoErr(json.Unmarshal(b, &rec))                       // record
	is.True(strings.HasPrefix(rec.SigningSecret, "whsec_")) // with its signing secret
	return rec
}

// callbackClient makes the OAuth client a client_credential webhook authenticates
// with at hookd's own token endpoint (scope /notify).
func (a *authAPI) callbackClient(id, secret string) {
	a.e.tb.Helper()
	is := is.New(a.e.tb)
	_, err := a.e.st.CreateClient(context.Background(), store.NewClient{ID: id, Name: id, Secret: secret, Scopes: []string{store.ScopeNotify}})
	is.NoErr(err) // create the callback's OAuth client
}

// bearerOf returns the token of an "Authorization: Bearer" header ("" when none).
func bearerOf(h http.Header) string {
	tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return tok
}

// checkBearer is a receiver's check of a bearer token: hookd's store must know it as
// a live /notify token of the callback client.
func checkBearer(st *store.Store, clientID string, h http.Header) error {
	tok := bearerOf(h)
	if tok == "" {
		return errString("no bearer token: Authorization " + h.Get("Authorization"))
	}
	info, err := st.TokenInfo(context.Background(), tok)
	if err != nil {
		return err
	}
	if info.ClientID != clientID || !info.HasScope(store.ScopeNotify) {
		return errString("token of " + info.ClientID + " with scopes " + strings.Join(info.Scopes, " "))
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// signatures splits a webhook-signature header into its "v1,…" parts.
func signatures(h http.Header) []string { return strings.Fields(h.Get("webhook-signature")) }

// verifies reports whether the Standard Webhooks library accepts the request with
// secret when only the signature sig is sent.
func verifies(tb testing.TB, secret, sig string, r received) bool {
	tb.Helper()
	is := is.New(tb)
	wh, err := standardwebhooks.NewWebhook(secret)
	is.NoErr(err) // the whsec_ secret parses
	h := r.header.Clone()
	h.Set("webhook-signature", sig)
	return wh.Verify(r.body, h) == nil
}

func TestBasicAuthDelivery(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "hookd-user" || pass != "pw-SECRET-basic-123" {
			w.WriteHeader(http.StatusUnauthorized)
			return errString("bad basic credentials")
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	rec := a.create(`{"targetURL":"` + rv.URL + `/notify","auth":{"type":"basic","username":"hookd-user","password":"pw-SECRET-basic-123"}}`)
	d := e.dispatcher(nil)
	e.intake(0, store.Event{Orcid: orcidA})

	is.Equal(e.tick(d), 1) // one call
	reqs := rv.requests()
	is.Equal(len(reqs), 1) // received
	r := reqs[0]
	is.NoErr(r.verr)                                                      // the receiver accepted the Basic credentials
	is.True(strings.HasPrefix(r.header.Get("Authorization"), "Basic "))   // Authorization: Basic
	is.Equal(r.method, http.MethodPost)                                   // a POST
	is.Equal(r.path, "/notify")                                           // to the target URL
	is.Equal(r.header.Get("Content-Type"), "application/json")            // a JSON body
	is.Equal(r.header.Get("User-Agent"), "hookd/1.2.3-test")              // hookd's User-Agent
	is.Equal(r.header.Get("webhook-id"), store.MessageID(e.only().ID, 0)) // the Standard Webhooks id
	is.True(r.header.Get("webhook-timestamp") != "")                      // and timestamp
	is.Equal(len(signatures(r.header)), 1)                                // one signature
	is.True(verifies(t, rec.SigningSecret, signatures(r.header)[0], r))   // made with the secret from creation
	wh, err := standardwebhooks.NewWebhook(rec.SigningSecret)
	is.NoErr(err)                         // the secret parses
	is.NoErr(wh.Verify(r.body, r.header)) // the library verifies the request as sent

	var raw map[string]json.RawMessage
	is.NoErr(json.Unmarshal(r.body, &raw)) // the body is a JSON object
	is.Equal(len(raw), 3)                  // with type, timestamp and data only
	var body struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      struct {
			Orcid string `json:"orcid"`
			URL   string `json:"url"`
		} `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	is.NoErr(dec.Decode(&body))                                   // in the Standard Webhooks shape
	is.Equal(body.Type, "orcid.record.updated")                   // the event type
	is.True(body.Timestamp.Equal(e.start))                        // when the event happened
	is.Equal(body.Data.Orcid, orcidA)                             // the record
	is.Equal(body.Data.URL, "https://orcid.org/"+orcidA)          // and its URL
	is.Equal(e.only().StateName(), "delivered")                   // delivered
	is.True(!strings.Contains(string(r.body), "pw-SECRET-basic")) // the password is only in the header
}

func TestNoAuthDelivery(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	rv := newReceiver(t, nil)
	rec := a.create(`{"targetURL":"` + rv.URL + `/n","auth":{"type":"noauth"}}`)
	d := e.dispatcher(nil)
	e.intake(0, store.Event{Orcid: orcidA, Type: store.EventCreated})

	is.Equal(e.tick(d), 1) // one call
	r := rv.requests()[0]
	is.Equal(r.header.Get("Authorization"), "")                                   // no Authorization header
	is.Equal(len(r.header.Values("Authorization")), 0)                            // none at all
	is.True(verifies(t, rec.SigningSecret, r.header.Get("webhook-signature"), r)) // still signed
	is.True(strings.Contains(string(r.body), `"type":"orcid.record.created"`))    // the created type
}

// TestStandardPayloadRecordURL: against ORCID's sandbox (HubOptions.RecordURL, set
// from upstream.api_url), the platform payload's data.url is the record's sandbox
// address, as the Hub's payload and e-mail give it: the iD is no production record.
func TestStandardPayloadRecordURL(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	rv := newReceiver(t, nil)
	a.create(`{"targetURL":"` + rv.URL + `/n","auth":{"type":"noauth"}}`)
	d := e.dispatcher(nil)
	d.ConfigureHub(dispatch.HubOptions{RecordURL: "https://sandbox.orcid.org/"})
	e.intake(0, store.Event{Orcid: orcidA})

	is.Equal(e.tick(d), 1) // one call
	var body struct {
		Data struct {
			URL string `json:"url"`
		} `json:"data"`
	}
	is.NoErr(json.Unmarshal(rv.requests()[0].body, &body))       // a JSON body
	is.Equal(body.Data.URL, "https://sandbox.orcid.org/"+orcidA) // the sandbox record
}

func TestClientCredentialDelivery(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	a.callbackClient("callback-app", "cs-SECRET-cc-456")
	var reject atomic.Bool // answer the next request 401
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if reject.CompareAndSwap(true, false) {
			w.WriteHeader(http.StatusUnauthorized)
			return nil
		}
		if err := checkBearer(e.st, "callback-app", r.Header); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + a.srv.URL + `/oauth/token"}}`)
	d := e.dispatcher(nil)

	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // first delivery
	e.intake(0, store.Event{Orcid: orcidB})
	is.Equal(e.tick(d), 1) // second delivery

	reqs := rv.requests()
	is.Equal(len(reqs), 2) // two calls
	for _, r := range reqs {
		is.NoErr(r.verr) // the receiver found a live token of the callback client
	}
	first := bearerOf(reqs[0].header)
	is.True(first != "")                                                     // a bearer token
	is.Equal(bearerOf(reqs[1].header), first)                                // reused
	is.Equal(a.tokenRequests.Load(), int32(1))                               // fetched once
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered"})), 2) // both delivered

	t.Run("a 401 gets a new token, once, in the same attempt", func(t *testing.T) {
		is := is.New(t)
		e.clock.Advance(2 * time.Minute) // the cached token is not one fetched moments ago
		reject.Store(true)
		e.intake(0, store.Event{Orcid: orcidA})
		is.Equal(e.tick(d), 1) // one attempt

		reqs := rv.requests()
		is.Equal(len(reqs), 4)                    // two calls in that attempt
		is.Equal(bearerOf(reqs[2].header), first) // the first with the cached token (answered 401)
		second := bearerOf(reqs[3].header)
		is.True(second != first)                   // the retry with a new one
		is.NoErr(reqs[3].verr)                     // which is live
		is.Equal(a.tokenRequests.Load(), int32(2)) // fetched once more

		ds := e.deliveries(store.DeliveryFilter{Orcid: orcidA})
		is.Equal(ds[0].StateName(), "delivered") // the delivery succeeded
		as := e.attempts(ds[0].ID)
		is.Equal(len(as), 1)        // as one attempt
		is.Equal(as[0].Attempt, 1)  // the first
		is.Equal(as[0].Status, 204) // answered 204

		e.intake(0, store.Event{Orcid: orcidB})
		is.Equal(e.tick(d), 1)                              // the next delivery
		is.Equal(bearerOf(rv.requests()[4].header), second) // reuses the new token
		is.Equal(a.tokenRequests.Load(), int32(2))          // without fetching
	})

	t.Run("a revoked token is replaced", func(t *testing.T) {
		is := is.New(t)
		cached := bearerOf(rv.requests()[rv.count()-1].header)
		is.NoErr(e.st.RevokeToken(context.Background(), "callback-app", cached)) // the token service revokes the cached token
		e.clock.Advance(2 * time.Minute)
		before, n := a.tokenRequests.Load(), rv.count()
		e.intake(0, store.Event{Orcid: orcidA})
		is.Equal(e.tick(d), 1) // one attempt
		reqs := rv.requests()
		is.Equal(len(reqs), n+2)                      // two calls
		is.True(reqs[n].verr != nil)                  // the first with the revoked token, refused with a 401
		is.NoErr(reqs[n+1].verr)                      // the retry with a live one
		is.True(bearerOf(reqs[n+1].header) != cached) // a new token
		is.Equal(a.tokenRequests.Load(), before+1)    // fetched once
		ds := e.deliveries(store.DeliveryFilter{Orcid: orcidA})
		is.Equal(ds[0].StateName(), "delivered") // delivered
	})

	t.Run("a second 401 fails the attempt", func(t *testing.T) {
		is := is.New(t)
		bad := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
			w.WriteHeader(http.StatusUnauthorized)
			return nil
		})
		uid := e.deliveries(store.DeliveryFilter{})[0].SubscriptionUID
		status, _ := a.call(http.MethodPatch, authWebhooks+"/"+uid, `{"targetURL":"`+bad.URL+`/cc"}`)
		is.Equal(status, http.StatusOK) // pointed at a receiver that always answers 401
		e.clock.Advance(2 * time.Minute)
		before := a.tokenRequests.Load()
		e.intake(0, store.Event{Orcid: orcidA})
		is.Equal(e.tick(d), 1)                     // one attempt
		is.Equal(bad.count(), 2)                   // the call and one retry, no more
		is.Equal(a.tokenRequests.Load(), before+1) // with one new token
		ds := e.deliveries(store.DeliveryFilter{Orcid: orcidA})
		is.Equal(ds[0].StateName(), "failed") // a failure, retried later
		as := e.attempts(ds[0].ID)
		is.Equal(len(as), 1)        // one attempt
		is.Equal(as[0].Status, 401) // logged with the 401

		// The next delivery, moments after that new token was fetched: its 401 is the
		// receiver's answer to any token, and no other is fetched.
		e.intake(0, store.Event{Orcid: orcidB})
		is.Equal(e.tick(d), 1)
		is.Equal(bad.count(), 3)                   // one call
		is.Equal(a.tokenRequests.Load(), before+1) // no token more
		ds = e.deliveries(store.DeliveryFilter{Orcid: orcidB})
		as = e.attempts(ds[0].ID)
		is.Equal(as[len(as)-1].Status, 401)
		is.True(strings.Contains(as[len(as)-1].Error, "a token fetched moments before")) // says why none was fetched
	})
}

// TestClientCredential401SharesOneNewToken: the calls in flight when a callback's
// token stops being good are refused together; they share one new token instead
// of each fetching its own.
func TestClientCredential401SharesOneNewToken(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	a.callbackClient("callback-app", "cs-SECRET-cc-456")
	const n = 4
	var (
		mu      sync.Mutex
		stale   string // the token the receiver stops taking
		held    int
		release = make(chan struct{})
	)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		mu.Lock()
		if bearerOf(r.Header) == stale {
			if held++; held == n {
				close(release)
			}
			mu.Unlock()
			block(r, release, 5*time.Second) // until all n are in flight with it
			w.WriteHeader(http.StatusUnauthorized)
			return nil
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + a.srv.URL + `/oauth/token"}}`)
	d := e.dispatcher(func(o *dispatch.Options) { o.PerHost = n })
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // the first token, cached
	mu.Lock()
	stale = bearerOf(rv.requests()[0].header)
	mu.Unlock()
	e.clock.Advance(2 * time.Minute) // the cached token is not one fetched moments ago

	for i := range n {
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	is.Equal(e.tick(d), n)                     // n calls, refused together, then sent again
	is.Equal(a.tokenRequests.Load(), int32(2)) // the first token and one new one for all n
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered"})), n+1)
}

func TestTokenEndpointFailure(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	a.callbackClient("callback-app", "cs-SECRET-cc-456")
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if err := checkBearer(e.st, "callback-app", r.Header); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + a.srv.URL + `/oauth/token"}}`)
	d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Minute })
	a.failToken.Store(true)
	e.intake(0, store.Event{Orcid: orcidA})

	is.Equal(e.tick(d), 1)               // one attempt
	is.Equal(rv.count(), 0)              // nothing reached the receiver
	is.True(a.tokenRequests.Load() >= 1) // the token endpoint was asked
	row := e.only()
	is.Equal(row.StateName(), "failed") // the attempt failed
	as := e.attempts(row.ID)
	is.Equal(len(as), 1)                                                 // logged
	is.Equal(as[0].Status, 0)                                            // with no response from the target
	is.True(strings.Contains(as[0].Error, "token endpoint"))             // the error names the token endpoint
	is.Equal(as[0].Error, "token endpoint: HTTP 500 token service down") // on one line, with the endpoint's status and answer
	is.True(!strings.Contains(as[0].Error, "cs-SECRET-cc-456"))          // and does not carry the client secret
	is.True(row.DueAt.Equal(e.start.Add(time.Minute)))                   // retried after the backoff

	t.Run("recovers when the token endpoint does", func(t *testing.T) {
		is := is.New(t)
		a.failToken.Store(false)
		e.clock.Advance(time.Minute)
		is.Equal(e.tick(d), 1)                      // the retry
		is.Equal(rv.count(), 1)                     // reaches the receiver
		is.NoErr(rv.requests()[0].verr)             // with a live token
		is.Equal(e.only().StateName(), "delivered") // delivered
	})
}

func TestCustomHeaders(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	rv := newReceiver(t, nil)
	rec := a.create(`{"targetURL":"` + rv.URL + `/h","headers":{"X-Tenant":"t-42","x-trace":"abc"}}`)
	d := e.dispatcher(nil)
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // one call
	r := rv.requests()[0]
	is.Equal(r.header.Get("X-Tenant"), "t-42")                                    // custom headers arrive
	is.Equal(r.header.Get("X-Trace"), "abc")                                      // whatever their case
	is.True(verifies(t, rec.SigningSecret, r.header.Get("webhook-signature"), r)) // beside a valid signature

	t.Run("the API refuses to override the signature", func(t *testing.T) {
		is := is.New(t)
		status, body := a.call(http.MethodPatch, authWebhooks+"/"+rec.ID, `{"headers":{"webhook-signature":"v1,forged"}}`)
		is.Equal(status, http.StatusBadRequest)                      // refused
		is.True(strings.Contains(string(body), "webhook-signature")) // naming the header
	})

	t.Run("stored protected headers are not sent", func(t *testing.T) {
		is := is.New(t)
		// The store keeps headers as given; this stands for a row written by an older
		// version or by hand. The dispatcher must still not let them through.
		forged := map[string]string{
			"webhook-signature": "v1,Zm9yZ2Vk", "WEBHOOK-ID": "msg_forged", "Webhook-Timestamp": "1",
			"Authorization": "Bearer forged", "User-Agent": "evil/1", "Content-Type": "text/plain", "X-Tenant": "t-7",
			"content-encoding": "gzip", "Proxy-Authorization": "Basic Zm9yZ2Vk",
		}
		sub, signing, err := e.st.CreateWebhook(context.Background(), e.client.ID, store.WebhookSpec{
			TargetURL: rv.URL + "/forged", Orcid: orcidB, Headers: forged,
			Auth: store.Auth{Type: store.AuthBasic, Username: "real-user", Secret: "real-pass"},
		})
		is.NoErr(err) // create webhook in the store
		e.intake(0, store.Event{Orcid: orcidB})
		is.Equal(e.tick(d), 2) // one call for each webhook
		var got *received
		for _, r := range rv.requests() {
			if r.path == "/forged" {
				got = &r
			}
		}
		is.True(got != nil) // the forged webhook was called
		sig := got.header.Get("webhook-signature")
		is.True(!strings.Contains(sig, "Zm9yZ2Vk"))                                                                                  // the forged signature is not sent
		is.True(verifies(t, signing, sig, *got))                                                                                     // the real one is
		is.Equal(got.header.Get("webhook-id"), store.MessageID(e.deliveries(store.DeliveryFilter{SubscriptionID: sub.ID})[0].ID, 0)) // the real webhook-id
		is.True(got.header.Get("Webhook-Timestamp") != "1")                                                                          // the real timestamp
		user, pass, ok := (&http.Request{Header: got.header}).BasicAuth()
		is.True(ok)                                                  // Basic auth, not the forged bearer
		is.Equal(user, "real-user")                                  // with the configured user
		is.Equal(pass, "real-pass")                                  // and password
		is.Equal(got.header.Get("User-Agent"), "hookd/1.2.3-test")   // hookd's User-Agent
		is.Equal(got.header.Get("Content-Type"), "application/json") // the real content type
		is.Equal(got.header.Get("Content-Encoding"), "")             // nor a header that changes how the body is read
		is.Equal(got.header.Get("Proxy-Authorization"), "")          // or one of the hop-by-hop ones
		is.Equal(got.header.Get("X-Tenant"), "t-7")                  // other custom headers still arrive
	})
}

func TestSecretRotationOverlap(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	rv := newReceiver(t, nil)
	rec := a.create(`{"targetURL":"` + rv.URL + `/rot"}`)
	d := e.dispatcher(nil)

	status, body := a.call(http.MethodPost, authWebhooks+"/"+rec.ID+"/rotate-secret", "")
	is.Equal(status, http.StatusOK) // rotated
	var rot struct {
		SigningSecret            string    `json:"signingSecret"`
		PreviousSecretValidUntil time.Time `json:"previousSecretValidUntil"`
	}
	is.NoErr(json.Unmarshal(body, &rot))                                          // rotation answer
	is.True(strings.HasPrefix(rot.SigningSecret, "whsec_"))                       // a new secret
	is.True(rot.SigningSecret != rec.SigningSecret)                               // not the old one
	is.True(rot.PreviousSecretValidUntil.Equal(e.start.Add(store.SecretOverlap))) // the old one is valid for 24 h

	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // delivered during the overlap
	r := rv.requests()[0]
	sigs := signatures(r.header)
	is.Equal(len(sigs), 2) // two signatures, space-separated
	for _, s := range sigs {
		is.True(strings.HasPrefix(s, "v1,")) // each a v1 signature
	}
	oldOK := []bool{verifies(t, rec.SigningSecret, sigs[0], r), verifies(t, rec.SigningSecret, sigs[1], r)}
	newOK := []bool{verifies(t, rot.SigningSecret, sigs[0], r), verifies(t, rot.SigningSecret, sigs[1], r)}
	is.True(oldOK[0] != oldOK[1]) // exactly one verifies with the old secret
	is.True(newOK[0] != newOK[1]) // exactly one with the new
	is.True(oldOK[0] != newOK[0]) // and they are different ones
	for _, s := range []string{rec.SigningSecret, rot.SigningSecret} {
		wh, err := standardwebhooks.NewWebhook(s)
		is.NoErr(err)                         // the secret parses
		is.NoErr(wh.Verify(r.body, r.header)) // receivers holding either secret accept the request
	}

	t.Run("after 24 hours only the new secret signs", func(t *testing.T) {
		is := is.New(t)
		e.clock.Advance(store.SecretOverlap + time.Millisecond)
		// The store caches a subscription's opened target (with its signing secrets)
		// for 5 s of wall time, whatever its clock says (store/targets.go), so moving
		// the pinned clock past the overlap alone would still send the cached pair of
		// signatures. Reopening the store, as 24 real hours would have emptied the
		// cache, keeps this test about the overlap itself.
		e.reopen()
		d := e.dispatcher(nil)
		e.intake(0, store.Event{Orcid: orcidA})
		is.Equal(e.tick(d), 1) // delivered after the overlap
		r := rv.requests()[1]
		sigs := signatures(r.header)
		is.Equal(len(sigs), 1)                               // one signature
		is.True(verifies(t, rot.SigningSecret, sigs[0], r))  // with the new secret
		is.True(!verifies(t, rec.SigningSecret, sigs[0], r)) // not the old
	})
}

// authDelivery is one delivery as GET …/webhooks/{id}/deliveries shows it.
type authDelivery struct {
	ID       int64  `json:"id"`
	Orcid    string `json:"orcid"`
	State    string `json:"state"`
	Attempts []struct {
		Attempt int    `json:"attempt"`
		Status  int    `json:"status"`
		Error   string `json:"error"`
	} `json:"attempts"`
}

// deliveries returns a webhook's deliveries through the API, by record.
func (a *authAPI) deliveries(id string) map[string]authDelivery {
	a.e.tb.Helper()
	is := is.New(a.e.tb)
	status, body := a.call(http.MethodGet, authWebhooks+"/"+id+"/deliveries", "")
	is.Equal(status, http.StatusOK) // deliveries listed
	var out struct {
		Deliveries []authDelivery `json:"deliveries"`
	}
	is.NoErr(json.Unmarshal(body, &out)) // deliveries body
	m := map[string]authDelivery{}
	for _, d := range out.Deliveries {
		m[d.Orcid] = d
	}
	return m
}

// replay asks for every failed or dead delivery of a webhook since since, and
// returns how many were replayed.
func (a *authAPI) replay(id string, since time.Time) int {
	a.e.tb.Helper()
	is := is.New(a.e.tb)
	status, body := a.call(http.MethodPost, authWebhooks+"/"+id+"/replay", `{"since":"`+since.Format(time.RFC3339)+`"}`)
	if status != http.StatusAccepted {
		a.e.tb.Logf("body: %s", body)
	}
	is.Equal(status, http.StatusAccepted) // 202
	var out struct {
		Replayed int `json:"replayed"`
	}
	is.NoErr(json.Unmarshal(body, &out)) // {"replayed": N}
	return out.Replayed
}

// statuses lists the statuses of an attempt log, sorted: the store orders the log
// by attempt number first, and a replayed dead delivery numbers its attempts from 1
// again, so the log is not in time order (reported; see store.Attempts).
func statuses(d authDelivery) []int {
	var out []int
	for _, a := range d.Attempts {
		out = append(out, a.Status)
	}
	slices.Sort(out)
	return out
}

func TestReplaySince(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	var up atomic.Bool
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		if up.Load() {
			w.WriteHeader(http.StatusNoContent)
		} else {
			w.WriteHeader(http.StatusInternalServerError)
		}
		return nil
	})
	rec := a.create(`{"targetURL":"` + rv.URL + `/r"}`)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.RetryBase = time.Minute
		o.GiveUpAfter = time.Minute
	})

	// A fails twice and is dead; B (an event a minute later) fails once.
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // A's first attempt (500)
	e.clock.Advance(time.Minute)
	e.intake(0, store.Event{Orcid: orcidB})
	is.Equal(e.tick(d), 2)  // A's second attempt and B's first (500 each)
	is.Equal(rv.count(), 3) // three calls

	ds := a.deliveries(rec.ID)
	is.Equal(len(ds), 2)                            // two deliveries
	is.Equal(ds[orcidA].State, "dead")              // A gave up
	is.Equal(statuses(ds[orcidA]), []int{500, 500}) // after two attempts
	for _, at := range ds[orcidA].Attempts {
		is.True(strings.Contains(at.Error, "HTTP 500")) // logged as HTTP 500
	}
	is.Equal(ds[orcidB].State, "failed")       // B waits for a retry
	is.Equal(statuses(ds[orcidB]), []int{500}) // after one attempt

	status, body := a.call(http.MethodPost, authWebhooks+"/"+rec.ID+"/replay", `{}`)
	is.Equal(status, http.StatusBadRequest)            // since is required
	is.True(strings.Contains(string(body), `"since"`)) // and named
	status, body = a.call(http.MethodPost, authWebhooks+"/"+rec.ID+"/replay", `{"since":"`+e.start.Add(time.Hour).Format(time.RFC3339)+`"}`)
	is.Equal(status, http.StatusBadRequest)                     // an hour later is to come: refused, not "replayed 0"
	is.True(strings.Contains(string(body), "is in the future")) // saying so
	is.Equal(a.replay(rec.ID, e.start.Add(30*time.Second)), 1)  // only B since 30 s after A's event
	is.Equal(a.replay(rec.ID, e.start), 1)                      // since A's event: A (B is due already, with a fresh budget)

	up.Store(true)
	is.Equal(e.tick(d), 2)  // both are due at once, without moving the clock
	is.Equal(rv.count(), 5) // and called
	ds = a.deliveries(rec.ID)
	is.Equal(ds[orcidA].State, "delivered")              // A delivered
	is.Equal(statuses(ds[orcidA]), []int{204, 500, 500}) // its log keeps the failures
	is.Equal(ds[orcidB].State, "delivered")              // B delivered
	is.Equal(statuses(ds[orcidB]), []int{204, 500})      // likewise
	is.Equal(a.replay(rec.ID, e.start), 0)               // nothing left to replay
}

// TestRetryAfterEchoNotStored: a receiver that echoes a secret where a
// Retry-After belongs does not get it into the attempt log: the value hookd quotes
// ("neither seconds nor an HTTP date") is redacted as the rest of its answer is.
func TestRetryAfterEchoNotStored(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	const pass = "pw-SECRET-basic-123"
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		_, p, _ := r.BasicAuth()
		w.Header().Set("Retry-After", p) // an echo where a number belongs
		w.WriteHeader(http.StatusTooManyRequests)
		return nil
	})
	a.create(`{"targetURL":"` + rv.URL + `/notify","auth":{"type":"basic","username":"hookd-user","password":"` + pass + `"}}`)
	d := e.dispatcher(nil)
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // one call
	row := e.only()
	as := e.attempts(row.ID)
	is.Equal(len(as), 1)
	is.True(strings.Contains(as[0].Error, "is neither seconds nor an HTTP date")) // still said
	is.True(!strings.Contains(as[0].Error, pass))                                 // the password is not in the attempt log
	is.True(!strings.Contains(row.LastError, pass))                               // nor in the delivery's last error
}

// TestRetryAfterReadBeforeRedaction: a Retry-After is read as the receiver sent
// it, even when a secret the call sent is part of it (a short password such as
// "12" is in "120", a year in an HTTP date): the receiver is waited for as it
// asked, not backed off from as if it had sent something unreadable.
func TestRetryAfterReadBeforeRedaction(t *testing.T) {
	for _, tc := range []struct{ name, pass, header string }{
		{"seconds", "12", "120"},
		{"HTTP date", "GMT", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			a := newAuthAPI(e)
			header := tc.header
			if header == "" {
				header = e.start.Add(2 * time.Minute).Format(http.TimeFormat)
			}
			rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				w.Header().Set("Retry-After", header)
				w.WriteHeader(http.StatusTooManyRequests)
				return nil
			})
			a.create(`{"targetURL":"` + rv.URL + `/notify","auth":{"type":"basic","username":"hookd-user","password":"` + tc.pass + `"}}`)
			d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Hour })
			e.intake(0, store.Event{Orcid: orcidA})
			is.Equal(e.tick(d), 1) // one call
			row := e.only()
			is.Equal(row.LastStatus, http.StatusTooManyRequests)             // the status is kept
			is.True(row.DueAt.Equal(e.start.Add(2 * time.Minute)))           // due as the Retry-After asked, not after the backoff
			is.True(!strings.Contains(row.LastError, "neither seconds nor")) // not taken for unreadable
		})
	}
}

// TestShutdownBeforeTheRequestIsNotSent: a shutdown that cuts a call while it still
// waits for its token releases the delivery as unsent: its first message to the
// receiver is msg_N, whatever it took in meanwhile.
func TestShutdownBeforeTheRequestIsNotSent(t *testing.T) {
	is := is.New(t)
	e, asked, rv := tokenWebhook(t, 1) // the first fetch hangs until hookd gives up on it
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Timeout = 3 * time.Second
		o.ShutdownGrace = 100 * time.Millisecond
	})
	e.intake(0, store.Event{Orcid: orcidA})
	runUntil(t, d, "the token request", func() bool { return asked.Load() == 1 })
	is.Equal(rv.count(), 0) // nothing reached the receiver

	e.intake(0, store.Event{Orcid: orcidA, Type: store.EventCreated}) // merged into the released row
	row := e.only()
	is.Equal(row.MsgRev, 0)
	is.Equal(e.tick(e.dispatcher(nil)), 1)
	reqs := rv.requests()
	is.Equal(len(reqs), 1)
	is.Equal(reqs[0].header.Get("webhook-id"), store.MessageID(row.ID, 0)) // the first message it ever got
}

// TestHandedOnTokenRefusalKeepsItsTime: a token endpoint's 503 with a Retry-After,
// handed on to the deliveries that need a token later, holds them until the time
// it said, not for its Retry-After again from each one's moment.
func TestHandedOnTokenRefusalKeepsItsTime(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	var asked atomic.Int32
	tok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(tok.Close)
	rv := newReceiver(t, nil)
	a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tok.URL + `/oauth/token"}}`)
	d := e.dispatcher(nil)
	t0 := e.clock.Now()
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1)
	first := asked.Load() // oauth2 may try both client auth styles
	e.clock.Advance(590 * time.Second)
	e.intake(0, store.Event{Orcid: orcidB})
	is.Equal(e.tick(d), 1)
	is.Equal(asked.Load(), first) // the refusal was handed on, not asked again
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		is.Equal(dl.DueAt, t0.Add(600*time.Second)) // when the endpoint said, for both
	}
}

// TestTokenRequestsCarryUserAgent: the calls hookd makes to token endpoints, a
// client_credential callback's and the upstream ORCID API's, carry its
// User-Agent as its deliveries and registrations do, not the HTTP library's, and
// ask for JSON, as ORCID's documentation does.
func TestTokenRequestsCarryUserAgent(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	a := newAuthAPI(e)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		switch {
		case strings.HasSuffix(r.URL.Path, "/oauth/token"):
			answerToken(w)
		case r.Method == http.MethodPut: // the upstream API's registration
			w.WriteHeader(http.StatusCreated)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
		return nil
	})
	a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-ua-789","tokenURL":"` + rv.URL + `/callback/oauth/token"}}`)
	_, err := e.st.ConfigureUpstream(ctx, rv.URL+"/api")
	is.NoErr(err) // upstream configured
	org, err := e.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err) // organisation
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err) // e-mail on: its members are registered upstream
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
	is.NoErr(err) // member

	d := e.dispatcher(nil)
	d.ConfigureHub(dispatch.HubOptions{Upstream: dispatch.UpstreamOptions{APIURL: rv.URL + "/api", TokenURL: rv.URL + "/upstream/oauth/token",
		ClientID: "APP-1", ClientSecret: "up-secret", PublicURL: "https://hub.example.org"}})
	e.intake(0, store.Event{Orcid: orcidA})
	e.tick(d)
	key, err := e.st.RelayKey(ctx, orcidA)
	is.NoErr(err) // relay key

	var tokenCalls, calls []string
	for _, r := range rv.requests() {
		if strings.HasSuffix(r.path, "/oauth/token") {
			tokenCalls = append(tokenCalls, r.path)
			is.Equal(r.header.Get("Accept"), "application/json") // a token in JSON
		} else {
			calls = append(calls, r.method+" "+r.path)
		}
		is.Equal(r.header.Get("User-Agent"), "hookd/1.2.3-test") // hookd's, on every call
	}
	slices.Sort(tokenCalls)
	is.Equal(tokenCalls, []string{"/callback/oauth/token", "/upstream/oauth/token"})                             // both token endpoints were called
	is.True(slices.Contains(calls, "POST /cc"))                                                                  // the delivery
	is.True(slices.Contains(calls, "PUT /api/"+orcidA+"/webhook/https://hub.example.org/relay/"+orcidA+"/"+key)) // the registration
}

// TestClientSigningSecretRotation: the signing secret of a client's ORCID-style
// callbacks can be rotated as a webhook's can. The old one signs beside the new one
// for a day, a second rotation within it is refused, and one that revokes makes the
// new one sign alone at once.
func TestClientSigningSecretRotation(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	rv := newReceiver(t, nil)
	e.subscribe(orcidA, rv.URL+"/orcid")
	d := e.dispatcher(nil)
	old := e.client.SigningSecret

	c, rotated, until, err := e.st.RotateClientSigningSecret(ctx, e.client.Name, store.KeepPrevious)
	is.NoErr(err)                                                   // rotated, by the client's name
	is.Equal(c.ID, e.client.ID)                                     // the client named
	is.True(strings.HasPrefix(rotated, "whsec_") && rotated != old) // a new secret
	is.True(until.Equal(e.start.Add(store.SecretOverlap)))          // the old one signs for a day
	_, _, _, err = e.st.RotateClientSigningSecret(ctx, e.client.ID, store.KeepPrevious)
	is.True(errors.Is(err, store.ErrConflict)) // not again within that day
	_, _, _, err = e.st.RotateClientSigningSecret(ctx, "nobody", store.KeepPrevious)
	is.True(errors.Is(err, store.ErrNotFound)) // nor of a client that does not exist

	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // delivered during the overlap
	r := rv.requests()[0]
	sigs := signatures(r.header)
	is.Equal(len(sigs), 2) // both signatures, space-separated
	for _, s := range []string{old, rotated} {
		wh, err := standardwebhooks.NewWebhook(s)
		is.NoErr(err)                         // the secret parses
		is.NoErr(wh.Verify(r.body, r.header)) // receivers holding either secret accept the call
	}

	t.Run("after 24 hours only the new secret signs", func(t *testing.T) {
		is := is.New(t)
		e.clock.Advance(store.SecretOverlap + time.Millisecond)
		e.reopen() // as 24 real hours would have emptied the store's cache of targets
		d := e.dispatcher(nil)
		e.intake(0, store.Event{Orcid: orcidA})
		is.Equal(e.tick(d), 1)
		r := rv.requests()[1]
		sigs := signatures(r.header)
		is.Equal(len(sigs), 1)                    // one signature
		is.True(verifies(t, rotated, sigs[0], r)) // with the new secret
		is.True(!verifies(t, old, sigs[0], r))    // not the old

		_, again, _, err := e.st.RotateClientSigningSecret(ctx, e.client.ID, store.KeepPrevious)
		is.NoErr(err) // the overlap is over: a rotation may come again
		_, leaked, until, err := e.st.RotateClientSigningSecret(ctx, e.client.ID, store.RevokePrevious)
		is.NoErr(err)           // revoking comes during an overlap too
		is.True(until.IsZero()) // and promises nothing
		e.intake(0, store.Event{Orcid: orcidA})
		is.Equal(e.tick(d), 1)
		r = rv.requests()[2]
		sigs = signatures(r.header)
		is.Equal(len(sigs), 1)                   // the new secret signs alone, at once
		is.True(verifies(t, leaked, sigs[0], r)) // the newest
		is.True(!verifies(t, again, sigs[0], r)) // not the one it replaced
	})
}
