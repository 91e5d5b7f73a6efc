package httpapi_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/store"
)

// TestAdminToken: the operator's static token (auth.admin_token_file) reaches the
// admin API and nothing else; a wrong one is a 401.
func TestAdminToken(t *testing.T) {
	const admin = "operator-token-0123456789"
	h := newHarness(t, func(o *httpapi.Options) { o.AdminToken = admin })
	call := func(method, path, tok, body string) int {
		req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return h.send(t, req).status
	}
	is := is.New(t)
	is.Equal(call(http.MethodPost, "/api/hub/v1/organisations", admin, `{"name":"Uni","tech-contact-email":"it@uni.example"}`), http.StatusCreated) // admin API
	is.Equal(call(http.MethodGet, "/api/hub/v1/organisations", admin, ""), http.StatusOK)
	is.Equal(call(http.MethodGet, "/api/hub/v1/organisations", admin+"x", ""), http.StatusUnauthorized)                             // a wrong token
	is.Equal(call(http.MethodGet, "/api/notifications/v1/webhooks", admin, ""), http.StatusForbidden)                               // no /webhook scope
	is.Equal(call(http.MethodPost, "/api/notifications/v1/events", admin, `{"orcid":"0000-0002-7253-3645"}`), http.StatusForbidden) // no /notify scope
}

// TestAdminTokenGuessingIsSlowed: the admin routes take the operator's admin
// token, which a person may have chosen (16 characters will do): guessing at it
// there is slowed as at the token endpoint, counted against the address and the
// admin token; the right token still gets through, after its wait, and an
// address guessing on several connections at once is checked one request at a
// time, a request whose turn is more than 5 s away refused with 429.
func TestAdminTokenGuessingIsSlowed(t *testing.T) {
	is := is.New(t)
	const admin = "operator-chosen-1"
	h := newHarness(t, func(o *httpapi.Options) { o.AdminToken = admin })
	guess := func(tok string) response { return h.do(t, http.MethodGet, "/api/admin/v1/webhooks", tok) }
	for i := range 5 {
		is.Equal(guess(fmt.Sprintf("operator-chosen-guess-%d", i)).status, http.StatusUnauthorized) // a wrong token
	}
	is.Equal(h.delays(), []time.Duration{250 * time.Millisecond, 500 * time.Millisecond})       // the 4th and 5th waited
	is.Equal(h.do(t, http.MethodGet, "/api/hub/v1/organisations", admin).status, http.StatusOK) // the right one: slowed, not locked out
	is.Equal(h.delays()[2], time.Second)                                                        // after its wait
	is.Equal(h.do(t, http.MethodGet, "/api/hub/v1/organisations", "").status, http.StatusUnauthorized)
	is.Equal(len(h.delays()), 3) // no token at all is no guess

	for i := range 3 {
		is.Equal(guess(fmt.Sprintf("operator-chosen-again-%d", i)).status, http.StatusUnauthorized)
	}
	release := h.holdAuth()
	t.Cleanup(release) // a failure below must not leave the held request waiting
	first := make(chan response, 1)
	n := len(h.delays())
	go func() { first <- guess("operator-chosen-held") }()
	for deadline := time.Now().Add(10 * time.Second); len(h.delays()) == n; {
		if time.Now().After(deadline) {
			t.Fatal("the held guess never began its wait")
		}
		time.Sleep(time.Millisecond)
	}
	res := guess(admin) // even the right token: its turn is too far away
	is.Equal(res.status, http.StatusTooManyRequests)
	is.True(res.header.Get("Retry-After") != "")                                   // says when
	is.True(strings.Contains(string(res.body), "too many failed authentications")) // and why
	release()
	is.Equal((<-first).status, http.StatusUnauthorized) // the guess that had the turn was checked
}

// TestAdminClientNotSlowedByGuesses: guesses at the admin token from one address
// slow that address and the admin token, not a client's /admin token sent from
// another address (such a token is generated, as good as unguessable): an
// attacker sending wrong tokens must not make every call of the Hub's client
// wait.
func TestAdminClientNotSlowedByGuesses(t *testing.T) {
	is := is.New(t)
	const admin = "operator-chosen-1"
	h := newHarness(t, func(o *httpapi.Options) {
		o.AdminToken = admin
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	tok := h.token(t, h.client(t, "hub", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	from := func(addr, tok string) response {
		return h.do(t, http.MethodGet, "/api/hub/v1/organisations", tok, "X-Forwarded-For", addr)
	}
	for i := range 8 {
		is.Equal(from("192.0.2.1", fmt.Sprintf("operator-chosen-guess-%d", i)).status, http.StatusUnauthorized) // a wrong token
	}
	n := len(h.delays())
	is.True(n > 0) // the guesses were slowed
	for range 3 {
		is.Equal(from("198.51.100.7", tok).status, http.StatusOK) // the client's token
	}
	is.Equal(len(h.delays()), n) // without a wait
	is.Equal(from("198.51.100.7", admin).status, http.StatusOK)
	is.Equal(len(h.delays()), n+1) // the admin token itself waits, as README says
}
