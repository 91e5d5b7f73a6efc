package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/store"
)

func TestTokenClientCredentials(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook, store.ScopeNotify)

	check := func(t *testing.T, res response, scope string) tokenResponse {
		is := is.New(t)
		is.Equal(res.status, http.StatusOK)                                            // token issued
		is.Equal(res.header.Get("Cache-Control"), "no-store")                          // RFC 6749 5.1
		is.Equal(res.header.Get("Pragma"), "no-cache")                                 // as ORCID answers
		is.True(strings.HasPrefix(res.header.Get("Content-Type"), "application/json")) // JSON body
		var tr tokenResponse
		decodeJSON(t, res.body, &tr)
		is.True(tr.AccessToken != "")                        // access_token
		is.Equal(tr.TokenType, "bearer")                     // token_type as ORCID writes it
		is.True(tr.RefreshToken != "")                       // refresh_token
		is.True(tr.RefreshToken != tr.AccessToken)           // two different tokens
		is.Equal(tr.ExpiresIn, int64(time.Hour/time.Second)) // expires_in is the TTL, on the store's clock
		is.Equal(tr.Scope, scope)                            // scope granted
		is.True(tr.Orcid == nil)                             // "orcid": null, as ORCID's client-credentials answer
		is.True(strings.Contains(string(res.body), `"orcid":null`))
		return tr
	}

	t.Run("form", func(t *testing.T) {
		is := is.New(t)
		res := h.postForm(t, "/oauth/token", url.Values{
			"client_id": {c.ID}, "client_secret": {c.Secret},
			"grant_type": {"client_credentials"}, "scope": {"/webhook"},
		}, "", "")
		tr := check(t, res, "/webhook")
		got, err := h.st.TokenInfo(t.Context(), tr.AccessToken)
		is.NoErr(err)                // token is known to the store
		is.Equal(got.ClientID, c.ID) // token belongs to the client
	})
	t.Run("basic", func(t *testing.T) {
		is := is.New(t)
		res := h.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"/webhook"}}, c.ID, c.Secret)
		got, err := h.st.TokenInfo(t.Context(), check(t, res, "/webhook").AccessToken)
		is.NoErr(err)                // token is known to the store
		is.Equal(got.ClientID, c.ID) // token belongs to the Basic user
	})
	t.Run("no scope asks for every granted scope", func(t *testing.T) {
		res := h.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, c.ID, c.Secret)
		check(t, res, strings.Join(c.Scopes, " "))
	})
	t.Run("basic with matching client_id in form", func(t *testing.T) {
		is := is.New(t)
		res := h.postForm(t, "/oauth/token", url.Values{"client_id": {c.ID}, "grant_type": {"client_credentials"}, "scope": {"/webhook"}}, c.ID, c.Secret)
		is.Equal(check(t, res, "/webhook").TokenType, "bearer") // accepted
	})
	t.Run("two scopes", func(t *testing.T) {
		is := is.New(t)
		res := h.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"/webhook /notify"}}, c.ID, c.Secret)
		got, err := h.st.TokenInfo(t.Context(), check(t, res, "/webhook /notify").AccessToken)
		is.NoErr(err)                                         // token is known to the store
		is.Equal(got.Scopes, []string{"/webhook", "/notify"}) // both scopes on one token
	})
	t.Run("tokens differ", func(t *testing.T) {
		is := is.New(t)
		a, b := h.token(t, c, "/webhook"), h.token(t, c, "/webhook")
		is.True(a.AccessToken != b.AccessToken) // every request gets a new token
	})
}

func TestTokenErrors(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	other := h.client(t, "other", store.ScopeWebhook)
	good := func(extra ...string) url.Values {
		v := url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "grant_type": {"client_credentials"}, "scope": {"/webhook"}}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == "" {
				v.Del(extra[i])
				continue
			}
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	otherRefresh := h.token(t, other, "/webhook").RefreshToken

	tests := []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		code       string
	}{
		{"bad secret", good("client_secret", "not-the-secret"), "", "", 401, "invalid_client"},
		{"bad secret basic", good("client_id", "", "client_secret", ""), c.ID, "not-the-secret", 401, "invalid_client"},
		{"unknown client", good("client_id", "APP-NOSUCHCLIENT0000"), "", "", 401, "invalid_client"},
		{"unknown client basic", good("client_id", "", "client_secret", ""), "APP-NOSUCHCLIENT0000", c.Secret, 401, "invalid_client"},
		{"another client's secret", good("client_secret", other.Secret), "", "", 401, "invalid_client"},
		{"no credentials", good("client_id", "", "client_secret", ""), "", "", 401, "invalid_client"},
		{"client id without a secret", good("client_secret", ""), "", "", 400, "invalid_request"},
		{"client id without a secret, basic", good("client_id", "", "client_secret", ""), c.ID, "", 400, "invalid_request"},
		{"basic and form secret", good(), c.ID, c.Secret, 400, "invalid_request"},
		{"basic user differs from form client_id", good("client_id", other.ID, "client_secret", ""), c.ID, c.Secret, 400, "invalid_request"},
		{"missing grant_type", good("grant_type", ""), "", "", 400, "invalid_request"},
		{"unsupported grant", good("grant_type", "password"), "", "", 400, "unsupported_grant_type"},
		{"authorization_code grant", good("grant_type", "authorization_code"), "", "", 400, "unsupported_grant_type"},
		{"scope not granted", good("scope", "/notify"), "", "", 400, "invalid_scope"},
		{"one scope of two not granted", good("scope", "/webhook /admin"), "", "", 400, "invalid_scope"},
		{"unknown scope", good("scope", "/read-limited"), "", "", 400, "invalid_scope"},
		{"refresh without refresh_token", good("grant_type", "refresh_token"), "", "", 400, "invalid_request"},
		{"unknown refresh token", good("grant_type", "refresh_token", "refresh_token", "5eb23750-1e19-47a3-b6f6-26635c34e8ee"), "", "", 400, "invalid_grant"},
		{"another client's refresh token", good("grant_type", "refresh_token", "refresh_token", otherRefresh), "", "", 400, "invalid_grant"},
		{"a parameter given twice", func() url.Values { v := good(); v.Add("client_id", other.ID); return v }(), "", "", 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			res := h.postForm(t, "/oauth/token", tt.form, tt.user, tt.pass)
			oauthError(t, res, tt.status, tt.code)
			is.Equal(res.header.Get("Cache-Control"), "no-store") // errors are not cached either
		})
	}

	t.Run("bad basic secret asks for Basic", func(t *testing.T) {
		is := is.New(t)
		res := h.postForm(t, "/oauth/token", good("client_id", "", "client_secret", ""), c.ID, "wrong-secret")
		oauthError(t, res, 401, "invalid_client")
		is.True(strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Basic")) // RFC 6749 5.2
	})

	t.Run("JSON body", func(t *testing.T) {
		is := is.New(t)
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
		is.NoErr(err) // make request
		req.Header.Set("Content-Type", "application/json")
		oauthError(t, h.send(t, req), 400, "invalid_request")
	})

	t.Run("GET is not allowed", func(t *testing.T) {
		is := is.New(t)
		for _, path := range []string{"/oauth/token", "/oauth/revoke"} {
			res := h.do(t, http.MethodGet, path+"?"+good().Encode(), "")
			e := oauthError(t, res, http.StatusMethodNotAllowed, "invalid_request") // credentials never travel in a URL; OAuth's body
			is.True(strings.Contains(res.header.Get("Allow"), "POST"))              // says what is allowed
			is.True(strings.Contains(e.Description, "POST"))                        // in words too
		}
	})

	t.Run("no token was issued", func(t *testing.T) {
		is := is.New(t)
		res := h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook", "5eb23750-1e19-47a3-b6f6-26635c34e8ee")
		oauthError(t, res, 401, "invalid_token")                                               // the seed's token was never issued here
		is.True(strings.Contains(res.header.Get("WWW-Authenticate"), `error="invalid_token"`)) // RFC 6750 3.1
	})
}

func TestTokenRefresh(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook, store.ScopeNotify)
	first := h.token(t, c, "/webhook /notify")

	refresh := func(t *testing.T, extra ...string) response {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return h.postForm(t, "/oauth/token", v, c.ID, c.Secret)
	}

	t.Run("narrower scope", func(t *testing.T) {
		is := is.New(t)
		res := refresh(t, "scope", "/webhook", "revoke_old", "False")
		is.Equal(res.status, http.StatusOK)                   // refreshed
		is.Equal(res.header.Get("Cache-Control"), "no-store") // not cached
		var tr tokenResponse
		decodeJSON(t, res.body, &tr)
		is.True(tr.AccessToken != first.AccessToken)                       // a new access token
		is.Equal(tr.TokenType, "bearer")                                   // token_type
		is.Equal(tr.RefreshToken, first.RefreshToken)                      // the refresh token stays
		is.Equal(tr.Scope, "/webhook")                                     // narrowed
		is.Equal(tr.ExpiresIn, int64(time.Hour/time.Second))               // full TTL
		is.Equal(h.list(t, seedOrcid, tr.AccessToken).Orcid, seedOrcid)    // the new token works
		is.Equal(h.list(t, seedOrcid, first.AccessToken).Orcid, seedOrcid) // the old one too, with revoke_old false
	})
	t.Run("expires_in", func(t *testing.T) {
		is := is.New(t)
		res := refresh(t, "expires_in", "60", "revoke_old", "false")
		is.Equal(res.status, http.StatusOK)
		var tr tokenResponse
		decodeJSON(t, res.body, &tr)
		is.Equal(tr.ExpiresIn, int64(60)) // shorter, as asked
		res = refresh(t, "expires_in", "99999999", "revoke_old", "false")
		decodeJSON(t, res.body, &tr)
		is.Equal(tr.ExpiresIn, int64(time.Hour/time.Second)) // never longer than a new token's
		oauthError(t, refresh(t, "expires_in", "soon"), 400, "invalid_request")
	})
	t.Run("wider than granted", func(t *testing.T) {
		res := refresh(t, "scope", "/webhook /admin")
		oauthError(t, res, 400, "invalid_scope")
	})
	t.Run("after a narrower refresh, the original scope again", func(t *testing.T) {
		is := is.New(t)
		res := refresh(t) // no scope: the refresh token's own, as first issued
		is.Equal(res.status, http.StatusOK)
		var tr tokenResponse
		decodeJSON(t, res.body, &tr)
		is.Equal(tr.Scope, "/webhook /notify") // the narrower refresh before did not shrink the grant
	})
	t.Run("the old token revoked by default, as ORCID does", func(t *testing.T) {
		is := is.New(t)
		second := h.token(t, c, "/webhook")
		res := h.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}}, c.ID, c.Secret)
		is.Equal(res.status, http.StatusOK) // refreshed
		var tr tokenResponse
		decodeJSON(t, res.body, &tr)
		is.Equal(h.list(t, seedOrcid, tr.AccessToken).Orcid, seedOrcid)                                            // the new token works
		oauthError(t, h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook", second.AccessToken), 401, "invalid_token") // the old one is revoked
	})
}

func TestRevoke(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	other := h.client(t, "other", store.ScopeWebhook)

	t.Run("access token", func(t *testing.T) {
		is := is.New(t)
		tok := h.token(t, c, "/webhook")
		is.Equal(h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook", tok.AccessToken).status, http.StatusOK) // works before
		res := h.postForm(t, "/oauth/revoke", url.Values{"token": {tok.AccessToken}}, c.ID, c.Secret)
		is.Equal(res.status, http.StatusOK) // RFC 7009 2.2
		res = h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook", tok.AccessToken)
		oauthError(t, res, 401, "invalid_token")
		is.True(strings.Contains(res.header.Get("WWW-Authenticate"), `error="invalid_token"`)) // RFC 6750 3.1
		res = h.do(t, http.MethodPut, webhookPath(seedOrcid, seedSegment), tok.AccessToken)
		oauthError(t, res, 401, "invalid_token")
		is.Equal(len(h.allSubscriptions(t)), 0) // the PUT with a revoked token changed nothing
	})
	t.Run("refresh token", func(t *testing.T) {
		is := is.New(t)
		tok := h.token(t, c, "/webhook")
		res := h.postForm(t, "/oauth/revoke", url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, "", "")
		is.Equal(res.status, http.StatusOK) // revoked
		res = h.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, c.ID, c.Secret)
		oauthError(t, res, 400, "invalid_grant")
	})
	t.Run("another client's token is left alone", func(t *testing.T) {
		is := is.New(t)
		tok := h.token(t, c, "/webhook")
		res := h.postForm(t, "/oauth/revoke", url.Values{"token": {tok.AccessToken}}, other.ID, other.Secret)
		is.Equal(res.status, http.StatusOK)                                                                // RFC 7009: no hint whether it exists
		is.Equal(h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook", tok.AccessToken).status, http.StatusOK) // still valid
	})
	t.Run("unknown token", func(t *testing.T) {
		is := is.New(t)
		res := h.postForm(t, "/oauth/revoke", url.Values{"token": {"no-such-token"}}, c.ID, c.Secret)
		is.Equal(res.status, http.StatusOK) // RFC 7009 2.2
	})
	t.Run("missing token", func(t *testing.T) {
		res := h.postForm(t, "/oauth/revoke", url.Values{}, c.ID, c.Secret)
		oauthError(t, res, 400, "invalid_request")
	})
	t.Run("bad client", func(t *testing.T) {
		is := is.New(t)
		tok := h.token(t, c, "/webhook")
		res := h.postForm(t, "/oauth/revoke", url.Values{"token": {tok.AccessToken}}, c.ID, "wrong-secret")
		oauthError(t, res, 401, "invalid_client")
		is.Equal(h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook", tok.AccessToken).status, http.StatusOK) // still valid
	})
}

func TestExpiredToken(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.token(t, h.client(t, "lab", store.ScopeWebhook), "/webhook")

	h.clock.Advance(time.Hour - time.Second)
	is.Equal(h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook", tok.AccessToken).status, http.StatusOK) // valid just before expiry

	h.clock.Advance(time.Second)
	res := h.do(t, http.MethodPut, webhookPath(seedOrcid, seedSegment), tok.AccessToken)
	e := oauthError(t, res, 401, "invalid_token")
	is.True(strings.Contains(e.Description, "expired"))                                    // says why
	is.True(strings.Contains(res.header.Get("WWW-Authenticate"), `error="invalid_token"`)) // RFC 6750 3.1
	is.Equal(len(h.allSubscriptions(t)), 0)                                                // nothing registered
}

// TestTokenDefaultLifetime: without a configured lifetime a token lasts as ORCID's
// do: expires_in 631138518.
func TestTokenDefaultLifetime(t *testing.T) {
	is := is.New(t)
	h := newHarness(t, func(o *httpapi.Options) { o.TokenTTL = 0 })
	tr := h.token(t, h.client(t, "lab", store.ScopeWebhook), "/webhook")
	is.Equal(tr.ExpiresIn, int64(631138518)) // ORCID's expires_in
}

// TestTokenShortLifetime: a lifetime of part of a second (auth.token_ttl = "500ms",
// warned of) is an expires_in of 1, not 0, which Go's oauth2 reads as a token
// that never expires.
func TestTokenShortLifetime(t *testing.T) {
	is := is.New(t)
	h := newHarness(t, func(o *httpapi.Options) { o.TokenTTL = 500 * time.Millisecond })
	tr := h.token(t, h.client(t, "lab", store.ScopeWebhook), "/webhook")
	is.Equal(tr.ExpiresIn, int64(1))
}

// TestTokenEndpointSlowsGuessing: wrong secrets at the token and revoke endpoints
// earn a growing wait before the next check; the right secret still gets in.
func TestTokenEndpointSlowsGuessing(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	guess := func(path, sec string) response {
		return h.postForm(t, path, url.Values{"client_id": {c.ID}, "client_secret": {sec}, "grant_type": {"client_credentials"}, "token": {"x"}}, "", "")
	}
	for i := range 3 {
		oauthError(t, guess("/oauth/token", fmt.Sprintf("guess-%d", i)), http.StatusUnauthorized, "invalid_client")
	}
	is.Equal(len(h.delays()), 0) // a few failures cost nothing
	oauthError(t, guess("/oauth/revoke", "guess-3"), http.StatusUnauthorized, "invalid_client")
	oauthError(t, guess("/oauth/token", "guess-4"), http.StatusUnauthorized, "invalid_client")
	is.Equal(h.delays(), []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}) // then each waits longer, at either endpoint

	res := guess("/oauth/token", c.Secret)
	is.Equal(res.status, http.StatusOK)                    // the right secret still gets a token: slowed, not locked out
	is.Equal(h.delays()[2], time.Second)                   // after its wait
	is.Equal(guess("/oauth/revoke", c.Secret).status, 200) // and may revoke
	is.Equal(h.delays()[3], time.Second)                   // the address's failures are not forgiven by a success
}

// TestTokenEndpointTakesTurns: an address guessing on several connections at
// once is checked one request at a time; a request whose turn is more than 5 s
// away is refused at once, with 429 and a Retry-After, and nothing checked.
func TestTokenEndpointTakesTurns(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	guess := func(sec string) response {
		return h.postForm(t, "/oauth/token", url.Values{"client_id": {c.ID}, "client_secret": {sec}, "grant_type": {"client_credentials"}}, "", "")
	}
	for i := range 8 {
		oauthError(t, guess(fmt.Sprintf("guess-%d", i)), http.StatusUnauthorized, "invalid_client")
	}
	is.Equal(h.delays()[len(h.delays())-1], 4*time.Second) // the 8th waited 4 s: the next waits 5

	release := h.holdAuth()
	t.Cleanup(release) // a failure below must not leave the held request, and the server's Close, waiting
	first := make(chan response, 1)
	go func() { first <- guess("guess-8") }()
	for deadline := time.Now().Add(10 * time.Second); len(h.delays()) < 6; {
		if time.Now().After(deadline) {
			t.Fatal("the first guess never began its wait")
		}
		time.Sleep(time.Millisecond)
	}
	res := guess(c.Secret) // even the right secret: its turn is 10 s away
	e := oauthError(t, res, http.StatusTooManyRequests, "temporarily_unavailable")
	is.Equal(res.header.Get("Retry-After"), "5") // when a turn 5 s away is free again
	is.Equal(res.header.Get("Cache-Control"), "no-store")
	is.True(strings.Contains(e.Description, "try again in 5 s")) // says when
	is.Equal(len(h.delays()), 6)                                 // it did not wait
	release()
	oauthError(t, <-first, http.StatusUnauthorized, "invalid_client") // the guess that had the turn was checked
}

// TestTokenFormContentType: the token endpoint reads a form whatever the case of its
// media type, and says what is wrong with a body it cannot read as one (rather
// than blame the credentials it did not see).
func TestTokenFormContentType(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	form := url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "grant_type": {"client_credentials"}, "scope": {"/webhook"}}.Encode()
	post := func(ct string) response {
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth/token", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		return h.send(t, req)
	}
	for _, tt := range []struct {
		ct, code, says string
	}{
		{"", "invalid_request", "no Content-Type"},
		{"application/x-www-form-urlencodedx", "invalid_request", "must be application/x-www-form-urlencoded"},
	} {
		t.Run(tt.ct, func(t *testing.T) {
			is := is.New(t)
			e := oauthError(t, post(tt.ct), http.StatusBadRequest, tt.code)
			is.True(strings.Contains(e.Description, tt.says)) // says what is wrong with the body
		})
	}
	for _, ct := range []string{"Application/X-WWW-Form-Urlencoded", "application/x-www-form-urlencoded; charset=UTF-8",
		"application/x-www-form-urlencoded; charset=ISO-8859-1"} { // Apache HttpClient's
		t.Run(ct, func(t *testing.T) {
			is.New(t).Equal(post(ct).status, http.StatusOK) // media types ignore case
		})
	}
}

// TestTokenBasicSecretAsSent: a secret chosen with a '+' and a '/' in it, sent
// with HTTP Basic as it is (curl -u id:secret), authenticates, as it does in the
// form; so does the same secret form-encoded first (RFC 6749 §2.3.1).
func TestTokenBasicSecretAsSent(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	const chosen = "Ab+cd/ef=gh+ij-long-enough"
	c, err := h.st.CreateClient(t.Context(), store.NewClient{Name: "chosen", Secret: chosen, Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	grant := url.Values{"grant_type": {"client_credentials"}, "scope": {"/webhook"}}
	is.Equal(h.postForm(t, "/oauth/token", grant, c.ID, chosen).status, http.StatusOK)                  // as it is
	is.Equal(h.postForm(t, "/oauth/token", grant, c.ID, url.QueryEscape(chosen)).status, http.StatusOK) // form-encoded
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"/webhook"}, "client_id": {c.ID}, "client_secret": {chosen}}
	is.Equal(h.postForm(t, "/oauth/token", form, "", "").status, http.StatusOK) // in the form
}

// TestTokenBasicSecretWithSpaces: a passphrase chosen as a secret, form-encoded
// before HTTP Basic as RFC 6749 §2.3.1 has it and golang.org/x/oauth2 sends it (a
// space as '+'), authenticates at the first request; sent as it is, too.
func TestTokenBasicSecretWithSpaces(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	const chosen = "correct horse battery staple"
	c, err := h.st.CreateClient(t.Context(), store.NewClient{Name: "passphrase", Secret: chosen, Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	grant := url.Values{"grant_type": {"client_credentials"}, "scope": {"/webhook"}}
	is.Equal(h.postForm(t, "/oauth/token", grant, c.ID, url.QueryEscape(chosen)).status, http.StatusOK) // form-encoded
	is.Equal(h.postForm(t, "/oauth/token", grant, c.ID, chosen).status, http.StatusOK)                  // as it is
	is.Equal(h.postForm(t, "/oauth/token", grant, c.ID, "correct+horse+battery+stapler").status, http.StatusUnauthorized)
}

// TestTokenBasicPlusRetryCountsEachSecret: a Basic secret with a '+' is checked as
// sent and with the '+' read as a space; each check counts as a failure to the
// guessing guard, so a '+' buys a guesser no second guess.
func TestTokenBasicPlusRetryCountsEachSecret(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	grant := url.Values{"grant_type": {"client_credentials"}, "scope": {"/webhook"}}
	for i := range 2 {
		oauthError(t, h.postForm(t, "/oauth/token", grant, c.ID, fmt.Sprintf("guess+%d", i)), http.StatusUnauthorized, "invalid_client")
	}
	// Four secrets tried ("guess+0", "guess 0", "guess+1", "guess 1"): past the
	// three free failures, the next check waits.
	oauthError(t, h.postForm(t, "/oauth/token", grant, c.ID, "guess-2"), http.StatusUnauthorized, "invalid_client")
	is.Equal(len(h.delays()), 1) // the third request waited
}

// TestTokenSeveralAuthorizationHeadersRefused: a token or revoke request with two
// Authorization headers is refused, whichever of them holds the client's
// credentials: taking the first would let the headers' order decide which client
// asks.
func TestTokenSeveralAuthorizationHeadersRefused(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	other := h.client(t, "other", store.ScopeWebhook)
	tok := h.token(t, c, "/webhook")
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"/webhook"}}},
		{"/oauth/revoke", url.Values{"token": {tok.AccessToken}}},
	} {
		for _, second := range []store.Credentials{c, other} {
			t.Run(tc.path+" "+second.ID, func(t *testing.T) {
				is := is.New(t)
				req, err := http.NewRequest(http.MethodPost, h.srv.URL+h.opts.BasePath+tc.path, strings.NewReader(tc.form.Encode()))
				is.NoErr(err) // make request
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Accept", "application/json")
				req.SetBasicAuth(c.ID, c.Secret)
				basic := req.Header.Get("Authorization")
				req.SetBasicAuth(second.ID, second.Secret)
				req.Header.Add("Authorization", basic) // both, the first client's last
				res := h.send(t, req)
				oauthError(t, res, http.StatusBadRequest, "invalid_request")
				is.True(strings.Contains(string(res.body), "Authorization header")) // saying why
			})
		}
	}
	is := is.New(t)
	is.Equal(h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook", tok.AccessToken).status, http.StatusOK) // nothing was revoked
}

// TestTokenAnswersJSONAndReadsTheFormOnly: the token endpoint answers JSON whatever
// the Accept (ORCID's produces JSON alone), its errors too, and does not read
// credentials from the query string, where they would end up in access logs.
func TestTokenAnswersJSONAndReadsTheFormOnly(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	post := func(query string, form url.Values) response {
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth/token?"+query, strings.NewReader(form.Encode()))
		is.NoErr(err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/xml")
		return h.send(t, req)
	}

	res := post("", url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "grant_type": {"client_credentials"}, "scope": {"/webhook"}})
	is.Equal(res.status, http.StatusOK)                                        // a token
	is.Equal(res.header.Get("Content-Type"), "application/json;charset=UTF-8") // in JSON, though XML was asked for
	var tr tokenResponse
	decodeJSON(t, res.body, &tr)
	is.Equal(tr.Scope, "/webhook")

	res = post("", url.Values{"client_id": {c.ID}, "client_secret": {"wrong"}, "grant_type": {"client_credentials"}})
	is.Equal(res.status, http.StatusUnauthorized)                              // a wrong secret
	is.Equal(res.header.Get("Content-Type"), "application/json;charset=UTF-8") // its error in JSON too
	is.True(strings.Contains(string(res.body), `"error":"invalid_client"`))

	q := url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "grant_type": {"client_credentials"}}.Encode()
	res = post(q, nil)
	is.Equal(res.status, http.StatusUnauthorized) // credentials in the query string are not read
	e := oauthError(t, res, http.StatusUnauthorized, "invalid_client")
	// ... and the refusal says they came there, not that none came.
	is.Equal(e.Description, "Client authentication is required: client_id and client_secret (client_id and client_secret came in the URL's query, which is not read: send them in the form body (application/x-www-form-urlencoded, as curl -d sends it) or with HTTP Basic)")

	res = post(url.Values{"client_secret": {c.Secret}}.Encode(), url.Values{"client_id": {c.ID}, "grant_type": {"client_credentials"}})
	e = oauthError(t, res, http.StatusBadRequest, "invalid_request")
	is.True(strings.Contains(e.Description, "(client_secret came in the URL's query, which is not read: send it in the form body")) // the secret alone

	res = post(url.Values{"grant_type": {"client_credentials"}}.Encode(), url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}})
	e = oauthError(t, res, http.StatusBadRequest, "invalid_request")
	is.Equal(e.Description, "Missing grant type (grant_type came in the URL's query, which is not read: send it in the form body (application/x-www-form-urlencoded, as curl -d sends it))")

	res = post("", url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}})
	e = oauthError(t, res, http.StatusBadRequest, "invalid_request")
	is.Equal(e.Description, "Missing grant type") // none sent anywhere: as before
}

// TestTokenAuthorizationHeaderRead: HTTP Basic credentials apart from the scheme
// by more than one space (RFC 9110's 1*SP) authenticate; an Authorization header
// that holds no credentials hookd reads is refused saying what is wrong with it,
// not as if no credentials had come; and form credentials beside a header of
// another scheme still count.
func TestTokenAuthorizationHeaderRead(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	basic := base64.StdEncoding.EncodeToString([]byte(c.ID + ":" + c.Secret))
	post := func(t *testing.T, auth string, form url.Values) response {
		t.Helper()
		form.Set("grant_type", "client_credentials")
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
		is.New(t).NoErr(err) // make request
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		return h.send(t, req)
	}
	for name, auth := range map[string]string{"one space": "Basic " + basic, "two spaces": "Basic  " + basic, "lower case, three spaces": "basic   " + basic} {
		t.Run(name, func(t *testing.T) {
			is.New(t).Equal(post(t, auth, url.Values{}).status, http.StatusOK) // a token
		})
	}
	for _, tc := range []struct{ name, auth, says string }{
		{"a bearer token", "Bearer " + basic, "is not HTTP Basic"},
		{"not base64", "Basic not/base64!", "not base64"},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID+c.Secret)), "without a ':'"},
		{"no credentials", "Basic", "without credentials"},
		// A tab where RFC 9110 takes spaces is named, not taken for another
		// scheme ("is not HTTP Basic"), as a tab after Bearer is.
		{"a tab after Basic", "Basic\t" + basic, "Client authentication failed: a tab separates Basic from the credentials, where RFC 9110 takes spaces: send Authorization: Basic base64(client_id:client_secret)"},
		{"a space and a tab after Basic", "Basic \t" + basic, "a tab separates Basic from the credentials, where RFC 9110 takes spaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			res := post(t, tc.auth, url.Values{})
			e := oauthError(t, res, http.StatusUnauthorized, "invalid_client")
			is.Equal(res.header.Get("WWW-Authenticate"), `Basic realm="hookd"`) // the scheme it takes (RFC 6749 §5.2)
			is.True(strings.Contains(e.Description, tc.says))                   // says what is wrong with the header
			is.True(!strings.Contains(e.Description, "is required"))            // not that nothing came
			is.True(!strings.Contains(e.Description, c.Secret))                 // and shows no secret
		})
	}
	t.Run("form beside another scheme", func(t *testing.T) {
		res := post(t, "Bearer something-a-proxy-added", url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}})
		is.New(t).Equal(res.status, http.StatusOK) // the form's credentials
	})
}

// TestTokenSeveralContentTypesRefused: a token or revoke request with two
// Content-Type headers is refused, saying so, as a JSON body with two is: which one
// labels the body would be a guess (the form reader took the first). Nothing is
// revoked.
func TestTokenSeveralContentTypesRefused(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	issued := h.token(t, c, store.ScopeWebhook)
	for _, tt := range []struct {
		path string
		form url.Values
	}{
		{"/oauth/token", url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "grant_type": {"client_credentials"}}},
		{"/oauth/revoke", url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "token": {issued.AccessToken}}},
	} {
		for _, second := range []string{"application/json", "application/x-www-form-urlencoded"} {
			t.Run(tt.path+" "+second, func(t *testing.T) {
				is := is.New(t)
				req, err := http.NewRequest(http.MethodPost, h.srv.URL+tt.path, strings.NewReader(tt.form.Encode()))
				is.NoErr(err) // make request
				req.Header.Add("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Add("Content-Type", second)
				e := oauthError(t, h.send(t, req), http.StatusBadRequest, "invalid_request")
				is.Equal(e.Description, "2 Content-Type headers: send one, application/x-www-form-urlencoded") // says what is wrong
			})
		}
	}
	is := is.New(t)
	is.Equal(h.list(t, seedOrcid, issued.AccessToken).Orcid, seedOrcid) // the token was not revoked
}

// TestTokenQueryParametersNotIgnored: a parameter that shapes the token (scope,
// expires_in, revoke_old) sent in the URL's query, which is not read, refuses the
// request, saying so: a client asking ?scope=/webhook with its credentials and
// grant in the form was issued a token of every scope it is granted, and a
// refresh with ?revoke_old=false revoked the old token.
func TestTokenQueryParametersNotIgnored(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook, store.ScopeNotify)
	post := func(query string, form url.Values) response {
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth/token?"+query, strings.NewReader(form.Encode()))
		is.NoErr(err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return h.send(t, req)
	}
	creds := url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "grant_type": {"client_credentials"}}
	res := post(url.Values{"scope": {"/webhook"}}.Encode(), creds)
	e := oauthError(t, res, http.StatusBadRequest, "invalid_request")
	is.Equal(e.Description, "Not issued: the token would not be the one asked for (scope came in the URL's query, which is not read: send it in the form body (application/x-www-form-urlencoded, as curl -d sends it))")

	tr := h.token(t, c, store.ScopeWebhook)
	refresh := url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}
	res = post(url.Values{"revoke_old": {"false"}, "expires_in": {"60"}}.Encode(), refresh)
	e = oauthError(t, res, http.StatusBadRequest, "invalid_request")
	is.True(strings.Contains(e.Description, "(expires_in and revoke_old came in the URL's query, which is not read"))
	is.Equal(h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook", tr.AccessToken).status, http.StatusOK) // nothing was revoked

	// The same in the form: issued as asked.
	res = post("", url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "grant_type": {"client_credentials"}, "scope": {"/webhook"}})
	is.Equal(res.status, http.StatusOK)
	var ok tokenResponse
	decodeJSON(t, res.body, &ok)
	is.Equal(ok.Scope, "/webhook")
}
