package httpapi_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/secret"
	"hookd/store"
)

// Values from ORCID's documentation (seeds 000 to 002).
const (
	seedOrcid    = "0000-0002-7253-3645"
	seedOrcidX   = "0000-0002-9079-593X" // check digit X
	seedCallback = "http://nowhere2.com/0000-0002-7253-3645/updated"
	seedSegment  = "http%3A%2F%2Fnowhere2.com%2F0000-0002-7253-3645%2Fupdated"
	testPublic   = "https://hookd.example.org"
)

// clock is a pinned clock for store.Store.Now that tests move by hand. It is safe
// to read from the server's goroutines while a test moves it.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ms.Store(t.UnixMilli())
	return c
}

func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// newStore opens a real SQLite file in a temporary folder, closed when the test ends.
func newStore(tb testing.TB) *store.Store {
	tb.Helper()
	st, _ := newStoreAt(tb)
	return st
}

// newStoreAt is newStore, and the path of its database file; with, when given,
// changes the store's options before it opens.
func newStoreAt(tb testing.TB, with ...func(*store.Options)) (*store.Store, string) {
	tb.Helper()
	is := is.New(tb)
	box, err := secret.NewBox(secret.Random(secret.KeySize))
	is.NoErr(err) // make secret box
	path := filepath.Join(tb.TempDir(), "hookd.db")
	so := store.Options{Path: path, Box: box}
	for _, w := range with {
		w(&so)
	}
	st, err := store.Open(context.Background(), so)
	is.NoErr(err) // open store
	tb.Cleanup(func() { st.Close() })
	return st, path
}

// harness is the real router on a real store, behind a real HTTP server. Its
// methods take the testing.TB of the (sub)test that calls them.
type harness struct {
	st     *store.Store
	path   string // the store's database file
	clock  *clock
	srv    *httptest.Server
	http   *http.Client
	opts   httpapi.Options
	public string // PublicURL + BasePath: what Location headers start with

	auth *authDelays // what the server would have waited before checking client credentials
}

// authDelays records the waits before credential checks; the harness records
// them instead of waiting, or, while held, waits until released.
type authDelays struct {
	mu   sync.Mutex
	d    []time.Duration
	hold chan struct{}
}

func (a *authDelays) sleep(ctx context.Context, d time.Duration) error {
	a.mu.Lock()
	a.d = append(a.d, d)
	hold := a.hold
	a.mu.Unlock()
	if hold == nil {
		return nil
	}
	select {
	case <-hold:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// holdAuth makes the waits before credential checks last until release is
// called (once or more).
func (h *harness) holdAuth() (release func()) {
	h.auth.mu.Lock()
	defer h.auth.mu.Unlock()
	hold := make(chan struct{})
	h.auth.hold = hold
	return sync.OnceFunc(func() {
		h.auth.mu.Lock()
		defer h.auth.mu.Unlock()
		h.auth.hold = nil
		close(hold)
	})
}

// delays returns the waits before credential checks so far.
func (h *harness) delays() []time.Duration {
	h.auth.mu.Lock()
	defer h.auth.mu.Unlock()
	return append([]time.Duration(nil), h.auth.d...)
}

// newHarness starts hookd's HTTP API; opt may change the options before it starts.
// The store's clock is pinned (2024-03-01 12:00 UTC) and the token TTL is one hour.
func newHarness(tb testing.TB, opt ...func(*httpapi.Options)) *harness {
	tb.Helper()
	return newHarnessOn(tb, nil, opt...)
}

// newHarnessOn is newHarness on a store whose options with changes (when not nil).
func newHarnessOn(tb testing.TB, with func(*store.Options), opt ...func(*httpapi.Options)) *harness {
	tb.Helper()
	var ws []func(*store.Options)
	if with != nil {
		ws = append(ws, with)
	}
	st, path := newStoreAt(tb, ws...)
	clk := newClock(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC))
	st.Now = clk.Now
	opts := httpapi.Options{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store:     st,
		PublicURL: testPublic,
		TokenTTL:  time.Hour,
	}
	for _, o := range opt {
		o(&opts)
	}
	h := &harness{st: st, path: path, clock: clk, opts: opts, public: opts.PublicURL + opts.BasePath, auth: &authDelays{}}
	api := httpapi.NewServer(opts)
	httpapi.SetAuthSleep(api, h.auth.sleep)
	h.srv = httptest.NewServer(api.Handler())
	tb.Cleanup(h.srv.Close)
	h.http = h.srv.Client()
	// A redirect is never right here; keep the 3xx so the test sees it.
	h.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return h
}

// client creates an API client directly in the store.
func (h *harness) client(tb testing.TB, name string, scopes ...string) store.Credentials {
	tb.Helper()
	is := is.New(tb)
	c, err := h.st.CreateClient(context.Background(), store.NewClient{Name: name, Scopes: scopes})
	is.NoErr(err) // create client
	return c
}

// response is a fully read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// send makes one request and reads the response. It fails the test on any 3xx, and
// on an exchange that openapi.json does not describe.
func (h *harness) send(tb testing.TB, req *http.Request) response {
	tb.Helper()
	is := is.New(tb)
	reqBody := requestBody(tb, req)
	res, err := h.http.Do(req)
	is.NoErr(err) // send request
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	is.NoErr(err) // read response body
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		tb.Fatalf("%s %s: got a redirect %d to %q", req.Method, req.URL.RequestURI(), res.StatusCode, res.Header.Get("Location"))
	}
	checkAPI(tb, h.opts.BasePath, req, reqBody, res, body)
	// Every answer of hookd's says nosniff; net/http's own refusal of a request it
	// cannot parse (a 400 that closes the connection) comes before any handler.
	netHTTPs := res.StatusCode == http.StatusBadRequest && res.Close
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" && !netHTTPs {
		tb.Errorf("%s %s: X-Content-Type-Options %q, want nosniff", req.Method, req.URL.RequestURI(), got)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

// do sends method to rawPath (already escaped; it goes on the wire byte for byte,
// after the base path) with a bearer token when token is not empty.
func (h *harness) do(tb testing.TB, method, rawPath, token string, header ...string) response {
	tb.Helper()
	return h.doRaw(tb, method, h.opts.BasePath+rawPath, token, header...)
}

// doRaw is do without the base path.
func (h *harness) doRaw(tb testing.TB, method, rawPath, token string, header ...string) response {
	tb.Helper()
	is := is.New(tb)
	req, err := http.NewRequest(method, h.srv.URL, nil)
	is.NoErr(err) // make request
	path, query, _ := strings.Cut(rawPath, "?")
	req.URL.Opaque = path // sent exactly as given: no re-encoding of %2F and friends
	req.URL.RawQuery = query
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return h.send(tb, req)
}

// postForm posts a form to rawPath after the base path; with user set, it
// authenticates with HTTP Basic.
func (h *harness) postForm(tb testing.TB, rawPath string, form url.Values, user, pass string) response {
	tb.Helper()
	is := is.New(tb)
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+h.opts.BasePath+rawPath, strings.NewReader(form.Encode()))
	is.NoErr(err) // make request
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return h.send(tb, req)
}

// tokenResponse is the token endpoint's success body.
type tokenResponse struct {
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	RefreshToken string  `json:"refresh_token"`
	ExpiresIn    int64   `json:"expires_in"`
	Scope        string  `json:"scope"`
	Orcid        *string `json:"orcid"`
}

// oauthErr is the OAuth error body.
type oauthErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// orcidErr is ORCID's error body.
type orcidErr struct {
	ResponseCode     int    `json:"response-code" xml:"response-code"`
	DeveloperMessage string `json:"developer-message" xml:"developer-message"`
	UserMessage      string `json:"user-message" xml:"user-message"`
	ErrorCode        int    `json:"error-code" xml:"error-code"`
	MoreInfo         string `json:"more-info" xml:"more-info"`
}

// webhook is how hookd shows one ORCID-style registration.
type webhook struct {
	Orcid     string    `json:"orcid"`
	Callback  string    `json:"callback"`
	Location  string    `json:"location"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created-at"`
	UpdatedAt time.Time `json:"updated-at"`
}

// webhookList is the body of GET {orcid}/webhook.
type webhookList struct {
	Orcid    string    `json:"orcid"`
	Webhooks []webhook `json:"webhooks"`
}

// token gets an access token for scope with the client's credentials over HTTP.
func (h *harness) token(tb testing.TB, c store.Credentials, scope string) tokenResponse {
	tb.Helper()
	is := is.New(tb)
	res := h.postForm(tb, "/oauth/token", url.Values{
		"client_id":     {c.ID},
		"client_secret": {c.Secret},
		"grant_type":    {"client_credentials"},
		"scope":         {scope},
	}, "", "")
	is.Equal(res.status, http.StatusOK) // token issued
	var tr tokenResponse
	decodeJSON(tb, res.body, &tr)
	is.True(tr.AccessToken != "") // token has an access token
	return tr
}

// webhookToken makes a client with the /webhook scope and returns a token for it.
func (h *harness) webhookToken(tb testing.TB, name string) string {
	tb.Helper()
	return h.token(tb, h.client(tb, name, store.ScopeWebhook), store.ScopeWebhook).AccessToken
}

// list returns a record's registrations as the token's client sees them.
func (h *harness) list(tb testing.TB, orcid, token string) webhookList {
	tb.Helper()
	is := is.New(tb)
	res := h.do(tb, http.MethodGet, "/"+orcid+"/webhook", token)
	is.Equal(res.status, http.StatusOK) // list webhooks
	var l webhookList
	decodeJSON(tb, res.body, &l)
	return l
}

// allSubscriptions returns every subscription in the store, whoever owns it.
func (h *harness) allSubscriptions(tb testing.TB) []store.Subscription {
	tb.Helper()
	is := is.New(tb)
	subs, err := h.st.Subscriptions(context.Background(), store.SubscriptionFilter{})
	is.NoErr(err) // list subscriptions
	return subs
}

func decodeJSON(tb testing.TB, body []byte, v any) {
	tb.Helper()
	is := is.New(tb)
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err != nil {
		tb.Logf("body: %s", body)
	}
	is.NoErr(err) // response body is the expected JSON
}

// orcidError decodes ORCID's JSON error body and checks its status and code.
func orcidError(tb testing.TB, res response, status, code int) orcidErr {
	tb.Helper()
	is := is.New(tb)
	if res.status != status {
		tb.Logf("body: %s", res.body)
	}
	is.Equal(res.status, status)                                                   // status
	is.True(strings.HasPrefix(res.header.Get("Content-Type"), "application/json")) // JSON error body
	var e orcidErr
	decodeJSON(tb, res.body, &e)
	is.Equal(e.ResponseCode, status)  // response-code repeats the status
	is.Equal(e.ErrorCode, code)       // ORCID error-code
	is.True(e.DeveloperMessage != "") // developer-message says what is wrong
	is.True(e.UserMessage != "")      // user-message is filled
	is.True(e.MoreInfo != "")         // more-info is filled
	return e
}

// orcidXMLError decodes ORCID's XML error body and checks its status and code.
func orcidXMLError(tb testing.TB, res response, status, code int) orcidErr {
	tb.Helper()
	is := is.New(tb)
	is.Equal(res.status, status)                                                  // status
	is.True(strings.HasPrefix(res.header.Get("Content-Type"), "application/xml")) // XML error body
	is.True(strings.Contains(string(res.body), "<error-code>"))                   // ORCID's element name
	var e struct {
		XMLName xml.Name
		orcidErr
	}
	is.NoErr(xml.Unmarshal(res.body, &e)) // XML parses
	is.Equal(e.XMLName.Local, "error")    // root element
	is.Equal(e.ResponseCode, status)      // response-code
	is.Equal(e.ErrorCode, code)           // error-code
	return e.orcidErr
}

// oauthError decodes an OAuth error body and checks its status and code.
func oauthError(tb testing.TB, res response, status int, code string) oauthErr {
	tb.Helper()
	is := is.New(tb)
	if res.status != status {
		tb.Logf("body: %s", res.body)
	}
	is.Equal(res.status, status) // status
	var e oauthErr
	decodeJSON(tb, res.body, &e)
	is.Equal(e.Error, code)      // OAuth error code
	is.True(e.Description != "") // error_description says why
	return e
}

// webhookPath is the escaped path of a registration.
func webhookPath(orcid, segment string) string { return "/" + orcid + "/webhook/" + segment }
