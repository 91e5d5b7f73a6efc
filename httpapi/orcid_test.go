package httpapi_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/store"
)

func TestWebhookLifecycle(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "lab")
	path := webhookPath(seedOrcid, seedSegment)

	// The seed's request: PUT with Accept: application/json and Content-Length: 0.
	res := h.do(t, http.MethodPut, path, tok, "Accept", "application/json")
	is.Equal(res.status, http.StatusCreated)                                   // new registration
	is.Equal(res.header.Get("Location"), testPublic+path)                      // absolute Location, segment as sent
	is.Equal(len(res.body), 0)                                                 // no body
	is.Equal(res.header.Get("Content-Type"), "application/json;charset=UTF-8") // the seed's headers

	res = h.do(t, http.MethodPut, path, tok)
	is.Equal(res.status, http.StatusNoContent) // existing registration
	is.Equal(res.header.Get("Location"), "")   // nothing new to point at
	is.Equal(len(h.allSubscriptions(t)), 1)    // still one registration

	res = h.do(t, http.MethodGet, path, tok)
	is.Equal(res.status, http.StatusOK) // get one
	var one webhook
	decodeJSON(t, res.body, &one)
	is.Equal(one.Orcid, seedOrcid)          // orcid
	is.Equal(one.Callback, seedCallback)    // callback decoded exactly once
	is.Equal(one.Status, "active")          // status
	is.Equal(one.Location, testPublic+path) // location of the resource

	l := h.list(t, seedOrcid, tok)
	is.Equal(l.Orcid, seedOrcid)                   // list names the record
	is.Equal(len(l.Webhooks), 1)                   // one registration
	is.Equal(l.Webhooks[0].Callback, seedCallback) // the one we made

	res = h.do(t, http.MethodDelete, path, tok, "Accept", "application/json")
	is.Equal(res.status, http.StatusNoContent)           // unregistered
	is.Equal(len(h.allSubscriptions(t)), 0)              // gone from the store
	is.Equal(len(h.list(t, seedOrcid, tok).Webhooks), 0) // gone from the list

	orcidError(t, h.do(t, http.MethodDelete, path, tok), http.StatusNotFound, 9028) // DELETE of an absent webhook
	orcidError(t, h.do(t, http.MethodGet, path, tok), http.StatusNotFound, 9011)    // GET of an absent webhook

	res = h.do(t, http.MethodPut, path, tok)
	is.Equal(res.status, http.StatusCreated) // registering again after DELETE is new again
}

func TestWebhookCallbackRoundTrip(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "lab")

	callbacks := []string{
		seedCallback,
		"https://nowhere2.com/0000-0002-7465-2162/updated",
		"http://nowhere2.com/0000-0002-7253-3645/updated?a=1&b=%25x",
		"http://nowhere2.com/a%2Fb/c?next=%2Fhome%3Fx%3D1%26y%3D2",
		"https://example.org:8443/hooks/%E2%9C%93?sig=a%2Bb%3D&x=%2525",
		"http://nowhere2.com/path;params/x~y_z.-",
	}
	encoders := []struct {
		name string
		fn   func(string) string
	}{
		{"EscapeSegment", httpapi.EscapeSegment},
		{"url.PathEscape", url.PathEscape},
		{"url.QueryEscape", url.QueryEscape}, // no spaces in these callbacks, so the same as a strict encoder
		{"lower-case hex", func(s string) string { return lowerEscapes(httpapi.EscapeSegment(s)) }},
	}
	for _, id := range []string{seedOrcid, seedOrcidX} {
		for _, cb := range callbacks {
			for _, enc := range encoders {
				segment := enc.fn(cb)
				t.Run(id+" "+enc.name+" "+cb, func(t *testing.T) {
					is := is.New(t)
					is.True(!strings.Contains(segment, "/")) // one path segment
					path := webhookPath(id, segment)

					res := h.do(t, http.MethodPut, path, tok, "Content-Length", "0")
					is.Equal(res.status, http.StatusCreated)              // registered
					is.Equal(res.header.Get("Location"), testPublic+path) // Location echoes the segment as sent

					subs := h.allSubscriptions(t)
					is.Equal(len(subs), 1)       // one registration
					is.Equal(subs[0].Target, cb) // stored byte-exact
					is.Equal(subs[0].Orcid, id)  // for the record in the path

					res = h.do(t, http.MethodGet, path, tok)
					is.Equal(res.status, http.StatusOK) // found by the same segment
					var one webhook
					decodeJSON(t, res.body, &one)
					is.Equal(one.Callback, cb) // returned byte-exact
					is.Equal(one.Orcid, id)    // orcid

					// Any other encoding of the same callback names the same registration.
					other := webhookPath(id, httpapi.EscapeSegment(cb))
					is.Equal(h.do(t, http.MethodPut, other, tok).status, http.StatusNoContent) // same registration

					l := h.list(t, id, tok)
					is.Equal(len(l.Webhooks), 1)         // listed once
					is.Equal(l.Webhooks[0].Callback, cb) // listed byte-exact

					is.Equal(h.do(t, http.MethodDelete, path, tok).status, http.StatusNoContent) // unregistered by the same segment
					is.Equal(len(h.allSubscriptions(t)), 0)                                      // and gone
				})
			}
		}
	}

	t.Run("distinct callbacks stay distinct", func(t *testing.T) {
		is := is.New(t)
		// These differ only in how much is encoded: hookd must not decode twice.
		a := "http://nowhere2.com/x?b=%25x"
		b := "http://nowhere2.com/x?b=%x"
		c := "http://nowhere2.com/a%2Fb"
		d := "http://nowhere2.com/a/b"
		for _, cb := range []string{a, b, c, d} {
			is.Equal(h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment(cb)), tok).status, http.StatusCreated) // each is new
		}
		got := map[string]bool{}
		for _, w := range h.list(t, seedOrcid, tok).Webhooks {
			got[w.Callback] = true
		}
		is.True(got[a] && got[b] && got[c] && got[d]) // each stored as sent
		is.Equal(len(got), 4)                         // no two merged
	})
}

// lowerEscapes lower-cases the hex digits of every %XX in s.
func lowerEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = toLower(b[i+1])
			b[i+2] = toLower(b[i+2])
		}
	}
	return string(b)
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func TestWebhookOtherClient(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	ownerClient := h.client(t, "owner", store.ScopeWebhook)
	owner := h.token(t, ownerClient, "/webhook").AccessToken
	intruder := h.webhookToken(t, "intruder")
	path := webhookPath(seedOrcid, seedSegment)
	is.Equal(h.do(t, http.MethodPut, path, owner).status, http.StatusCreated) // owner registers

	orcidError(t, h.do(t, http.MethodGet, path, intruder), http.StatusForbidden, 9014) // GET of another client's
	res := h.do(t, http.MethodPut, path, intruder)
	is.Equal(res.status, http.StatusNoContent)                                            // PUT of another client's: 204, as at ORCID
	is.Equal(res.header.Get("Location"), "")                                              // not a new registration
	orcidError(t, h.do(t, http.MethodDelete, path, intruder), http.StatusForbidden, 9014) // DELETE of another client's: 403 9014, as at ORCID

	is.Equal(len(h.list(t, seedOrcid, intruder).Webhooks), 0) // the intruder sees none of the owner's
	l := h.list(t, seedOrcid, owner)
	is.Equal(len(l.Webhooks), 1)                   // the owner's is still there
	is.Equal(l.Webhooks[0].Callback, seedCallback) // unchanged
	subs := h.allSubscriptions(t)
	is.Equal(len(subs), 1)                                                         // nothing added
	is.Equal(subs[0].ClientID, ownerClient.ID)                                     // still the owner's
	is.Equal(h.do(t, http.MethodDelete, path, owner).status, http.StatusNoContent) // the owner may delete it
}

func TestWebhookAuth(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	notifier := h.client(t, "notifier", store.ScopeNotify)
	notifyTok := h.token(t, notifier, "/notify").AccessToken
	path := webhookPath(seedOrcid, seedSegment)

	for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
		t.Run(method+" without token", func(t *testing.T) {
			is := is.New(t)
			res := h.do(t, method, path, "")
			is.Equal(res.status, http.StatusUnauthorized)                                // 401
			is.True(strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer"))     // RFC 6750 3
			e := oauthError(t, res, http.StatusUnauthorized, "unauthorized")             // ORCID's code for no token
			is.True(strings.HasPrefix(e.Description, "Full authentication is required")) // ORCID's words
		})
		t.Run(method+" with a bad token", func(t *testing.T) {
			oauthError(t, h.do(t, method, path, "not-a-token"), http.StatusUnauthorized, "invalid_token")
		})
		t.Run(method+" without the webhook scope", func(t *testing.T) {
			is := is.New(t)
			e := orcidError(t, h.do(t, method, path, notifyTok), http.StatusForbidden, 9038)
			is.True(strings.Contains(e.DeveloperMessage, "/webhook")) // names the scope needed
		})
	}
	t.Run("list without the webhook scope", func(t *testing.T) {
		orcidError(t, h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook", notifyTok), http.StatusForbidden, 9038)
	})
	t.Run("basic instead of bearer", func(t *testing.T) {
		is := is.New(t)
		res := h.do(t, http.MethodPut, path, "", "Authorization", "Basic "+notifier.Secret)
		is.Equal(res.status, http.StatusUnauthorized) // only bearer tokens
	})
	t.Run("XML error", func(t *testing.T) {
		is := is.New(t)
		e := orcidXMLError(t, h.do(t, http.MethodPut, path, notifyTok, "Accept", "application/xml"), http.StatusForbidden, 9038)
		is.True(e.DeveloperMessage != "") // developer-message
		orcidXMLError(t, h.do(t, http.MethodPut, path, notifyTok, "Accept", "application/json;q=0.5, application/orcid+xml"), http.StatusForbidden, 9038)
		orcidError(t, h.do(t, http.MethodPut, path, notifyTok, "Accept", "application/xml;q=0.5, application/json"), http.StatusForbidden, 9038)
	})
	is.Equal(len(h.allSubscriptions(t)), 0) // none of it registered anything
}

func TestWebhookBadInput(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "lab")
	long := "http://nowhere2.com/" + strings.Repeat("a", 2048)

	tests := []struct {
		name    string
		orcid   string
		seg     string
		status  int
		code    int
		putOnly bool // the SSRF guard is for new registrations
	}{
		{"malformed iD", "0000-0002-7253-364", seedSegment, 400, 9001, false},
		{"iD without hyphens", "0000000272533645", seedSegment, 400, 9001, false},
		{"iD with bad checksum", "0000-0002-7253-3646", seedSegment, 400, 9001, false},
		{"iD with lower-case x", "0000-0002-9079-593x", seedSegment, 400, 9001, false},
		{"iD as URL", url.PathEscape("https://orcid.org/" + seedOrcid), seedSegment, 400, 9001, false},
		{"relative callback", seedOrcid, httpapi.EscapeSegment("/0000-0002-7253-3645/updated"), 400, 9012, false},
		{"callback without scheme", seedOrcid, httpapi.EscapeSegment("nowhere2.com/updated"), 400, 9012, false},
		{"ftp callback", seedOrcid, httpapi.EscapeSegment("ftp://nowhere2.com/updated"), 400, 9012, false},
		{"javascript callback", seedOrcid, httpapi.EscapeSegment("javascript:alert(1)"), 400, 9012, false},
		{"callback without host", seedOrcid, httpapi.EscapeSegment("http:///updated"), 400, 9012, false},
		{"callback with user info", seedOrcid, httpapi.EscapeSegment("http://u:p@nowhere2.com/x"), 400, 9012, false},
		{"callback with space", seedOrcid, httpapi.EscapeSegment("http://nowhere2.com/a b"), 400, 9012, false},
		{"callback too long", seedOrcid, httpapi.EscapeSegment(long[:2049]), 400, 9012, false},
		{"callback far too long", seedOrcid, httpapi.EscapeSegment(long + long), 400, 9012, false},
		{"unencoded query", seedOrcid, "http%3A%2F%2Fnowhere2.com%2Fx?a=1", 400, 9012, false},
		{"unencoded query beside an encoded one", seedOrcid, "http%3A%2F%2Fnowhere2.com%2Fx%3Fa%3D1?b=2", 400, 9012, false},
		{"empty callback", seedOrcid, "", 400, 9012, false},
		{"loopback literal", seedOrcid, httpapi.EscapeSegment("http://127.0.0.1:9000/updated"), 400, 9012, true},
		{"IPv6 loopback literal", seedOrcid, httpapi.EscapeSegment("http://[::1]:9000/updated"), 400, 9012, true},
		{"private literal", seedOrcid, httpapi.EscapeSegment("http://10.1.2.3/updated"), 400, 9012, true},
		{"link-local literal", seedOrcid, httpapi.EscapeSegment("http://169.254.169.254/latest/meta-data"), 400, 9012, true},
		{"localhost", seedOrcid, httpapi.EscapeSegment("http://localhost:9000/updated"), 400, 9012, true},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
			if tt.putOnly && method != http.MethodPut {
				continue
			}
			t.Run(method+" "+tt.name, func(t *testing.T) {
				is := is.New(t)
				e := orcidError(t, h.do(t, method, webhookPath(tt.orcid, tt.seg), tok), tt.status, tt.code)
				is.True(strings.HasPrefix(e.DeveloperMessage, "400 Bad Request: ")) // ORCID's message form
			})
		}
	}
	t.Run("XML", func(t *testing.T) {
		orcidXMLError(t, h.do(t, http.MethodPut, webhookPath(seedOrcid, "ftp%3A%2F%2Fx"), tok, "Accept", "application/xml"), 400, 9012)
		orcidXMLError(t, h.do(t, http.MethodPut, webhookPath("0000-0002-7253-3646", seedSegment), tok, "Accept", "application/xml"), 400, 9001)
	})
	t.Run("bad percent-encoding", func(t *testing.T) {
		is := is.New(t)
		res := h.do(t, http.MethodPut, webhookPath(seedOrcid, "http%3A%2F%2Fnowhere2.com%2F%zz"), tok)
		is.Equal(res.status, http.StatusBadRequest) // refused (by net/http before the router)
	})
	t.Run("list with a bad iD", func(t *testing.T) {
		orcidError(t, h.do(t, http.MethodGet, "/0000-0002-7253-3646/webhook", tok), 400, 9001)
	})
	t.Run("longest callback is accepted", func(t *testing.T) {
		is := is.New(t)
		cb := long[:2048]
		res := h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment(cb)), tok)
		is.Equal(res.status, http.StatusCreated)                                                                                  // exactly 2048 bytes is allowed
		is.Equal(h.allSubscriptions(t)[0].Target, cb)                                                                             // stored whole
		is.Equal(h.do(t, http.MethodDelete, webhookPath(seedOrcid, httpapi.EscapeSegment(cb)), tok).status, http.StatusNoContent) // clean up
	})

	is.Equal(len(h.allSubscriptions(t)), 0)              // bad input changed nothing
	is.Equal(len(h.list(t, seedOrcid, tok).Webhooks), 0) // and the list shows nothing new
}

func TestWebhookPrivateTargets(t *testing.T) {
	is := is.New(t)
	cb := "http://127.0.0.1:9000/0000-0002-7253-3645/updated"
	seg := httpapi.EscapeSegment(cb)
	is.Equal(seg, "http%3A%2F%2F127.0.0.1%3A9000%2F0000-0002-7253-3645%2Fupdated") // as ORCID's docs encode

	t.Run("refused by default", func(t *testing.T) {
		is := is.New(t)
		h := newHarness(t)
		tok := h.webhookToken(t, "lab")
		e := orcidError(t, h.do(t, http.MethodPut, webhookPath(seedOrcid, seg), tok), http.StatusBadRequest, 9012)
		is.True(strings.Contains(e.DeveloperMessage, "allow_private_targets")) // says how to allow it
		is.Equal(len(h.allSubscriptions(t)), 0)                                // nothing stored
	})
	t.Run("allowed", func(t *testing.T) {
		is := is.New(t)
		h := newHarness(t, func(o *httpapi.Options) { o.AllowPrivateTargets = true })
		tok := h.webhookToken(t, "lab")
		res := h.do(t, http.MethodPut, webhookPath(seedOrcid, seg), tok)
		is.Equal(res.status, http.StatusCreated)                                     // registered
		is.Equal(res.header.Get("Location"), testPublic+webhookPath(seedOrcid, seg)) // Location
		is.Equal(h.allSubscriptions(t)[0].Target, cb)                                // stored as sent

		// The same store served with private targets refused again (hookd dev's
		// database moved to hookd serve): the registration can still be seen and removed.
		strict := h.opts
		strict.AllowPrivateTargets = false
		srv := httptest.NewServer(httpapi.NewServer(strict).Handler())
		defer srv.Close()
		h2 := *h
		h2.srv, h2.opts = srv, strict
		orcidError(t, h2.do(t, http.MethodPut, webhookPath(seedOrcid, seg), tok), http.StatusBadRequest, 9012) // not registered again
		res = h2.do(t, http.MethodGet, webhookPath(seedOrcid, seg), tok)
		is.Equal(res.status, http.StatusOK) // still visible
		var one webhook
		decodeJSON(t, res.body, &one)
		is.Equal(one.Callback, cb)                                                                           // the one made before
		is.Equal(h2.do(t, http.MethodDelete, webhookPath(seedOrcid, seg), tok).status, http.StatusNoContent) // and removable
		is.Equal(len(h.allSubscriptions(t)), 0)                                                              // gone
	})
}

func TestBasePath(t *testing.T) {
	is := is.New(t)
	const base = "/orcid-api-web"
	h := newHarness(t, func(o *httpapi.Options) { o.BasePath = base })
	c := h.client(t, "lab", store.ScopeWebhook)
	tok := h.token(t, c, "/webhook").AccessToken // h.token posts to the base path
	path := webhookPath(seedOrcid, seedSegment)

	res := h.do(t, http.MethodPut, path, tok)
	is.Equal(res.status, http.StatusCreated)                               // registered under the base path
	is.Equal(res.header.Get("Location"), testPublic+base+path)             // the seed's Location shape
	is.Equal(h.list(t, seedOrcid, tok).Webhooks[0].Callback, seedCallback) // listed under the base path

	res = h.doRaw(t, http.MethodPut, "/0000-0002-9079-593X/webhook/"+seedSegment, tok)
	orcidError(t, res, http.StatusNotFound, 9011) // not at the root
	res = h.doRaw(t, http.MethodGet, path, tok)
	orcidError(t, res, http.StatusNotFound, 9011)                                                                                     // not at the root
	is.True(strings.Contains(string(res.body), "(the ORCID routes are under http.base_path /orcid-api-web: /orcid-api-web"+path+")")) // saying where they are
	res = h.doRaw(t, http.MethodPost, "/oauth/token?grant_type=client_credentials", "")
	is.Equal(res.status, http.StatusNotFound) // the token endpoint is not at the root either
	is.Equal(len(h.allSubscriptions(t)), 1)   // only the one registration

	res = h.doRaw(t, http.MethodGet, "/healthz", "")
	is.Equal(res.status, http.StatusOK) // operations stay at the root

	for _, p := range []string{base, base + "/nope", "/inbox/lab/x", "/console/", "/nope"} {
		res = h.doRaw(t, http.MethodGet, p, "")
		is.Equal(res.status, http.StatusNotFound)
		is.True(!strings.Contains(string(res.body), "http.base_path")) // no hint where none would help
	}
}

func TestWebhookLocationWithoutPublicURL(t *testing.T) {
	is := is.New(t)
	h := newHarness(t, func(o *httpapi.Options) { o.PublicURL = "" })
	tok := h.webhookToken(t, "lab")
	path := webhookPath(seedOrcidX, seedSegment)
	res := h.do(t, http.MethodPut, path, tok)
	is.Equal(res.status, http.StatusCreated)             // registered
	is.Equal(res.header.Get("Location"), h.srv.URL+path) // made from the request's host
}

func TestNoRedirects(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "lab")
	// Paths a cleaning router would redirect; h.send fails the test on any 3xx.
	paths := []string{
		"/" + seedOrcid + "/webhook/",
		"/" + seedOrcid + "/webhook//",
		"/" + seedOrcid + "/webhook/" + seedSegment + "/",
		"/" + seedOrcid + "//webhook/" + seedSegment,
		"//" + seedOrcid + "/webhook/" + seedSegment,
		"/./" + seedOrcid + "/webhook/" + seedSegment,
		"/" + seedOrcid + "/webhook/../webhook/" + seedSegment,
		"/" + seedOrcid + "/Webhook/" + seedSegment,
		"/" + seedOrcid + "/webhook/http%3A%2F%2Fnowhere2.com%2F%2E%2E%2Fx",
		"/" + seedOrcid + "/webhook/http%3A%2F%2F%2F%2Fnowhere2.com",
		"/" + seedOrcid + "/webhook/",
		"/oauth/token/",
	}
	for _, p := range paths {
		for _, m := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
			res := h.do(t, m, p, tok)
			is.True(res.status >= 400 || res.status < 300) // no redirect for m p
		}
	}
	// A callback with "%2E%2E" is kept as it is, not resolved.
	cb := "http://nowhere2.com/../x"
	seg := "http%3A%2F%2Fnowhere2.com%2F%2E%2E%2Fx"
	is.Equal(h.do(t, http.MethodDelete, webhookPath(seedOrcid, seg), tok).status, http.StatusNotFound) // the loop above cleaned up
	res := h.do(t, http.MethodPut, webhookPath(seedOrcid, seg), tok)
	is.Equal(res.status, http.StatusCreated) // registered
	found := false
	for _, sub := range h.allSubscriptions(t) {
		found = found || sub.Target == cb
	}
	is.True(found) // stored as sent, not cleaned
}

// TestTrailingSlashAfterCallbackSegment: ORCID's callback is one percent-encoded
// path segment, and a '/' after it is ignored, as ORCID's router does: the same
// PUT with one re-registers the same callback, and a DELETE with one removes it.
func TestTrailingSlashAfterCallbackSegment(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "lab")
	path := webhookPath(seedOrcid, seedSegment)

	is.Equal(h.do(t, http.MethodPut, path, tok).status, http.StatusCreated)
	res := h.do(t, http.MethodPut, path+"/", tok)
	for _, s := range h.allSubscriptions(t) {
		is.True(s.Target != seedCallback+"/") // no second URL
	}
	is.Equal(res.status, http.StatusNoContent) // the same registration
	is.Equal(h.do(t, http.MethodDelete, path+"/", tok).status, http.StatusNoContent)
}

// TestCallbackLimitInBytes: a callback "longer than 2048 bytes" is bad input, as
// ORCID's contract says: one of 1,120 characters that is 2,220 bytes in UTF-8 is
// refused with 400 / 9012 and changes nothing.
func TestCallbackLimitInBytes(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "lab")
	cb := "http://nowhere2.com/" + strings.Repeat("é", 1100)
	res := h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment(cb)), tok)
	is.Equal(res.status, http.StatusBadRequest)                                       // refused
	is.True(strings.Contains(string(res.body), "2220 bytes long; the limit is 2048")) // saying why
	is.Equal(len(h.allSubscriptions(t)), 0)                                           // bad input changes nothing
}

// TestORCIDRegistrationMadeBeforeStillReachable: a registration an older hookd took,
// whose callback's host today's rules refuse (an empty label, a name IDNA refuses),
// can still be read and removed.
func TestORCIDRegistrationMadeBeforeStillReachable(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, "lab", store.ScopeWebhook)
	tok := h.token(t, c, store.ScopeWebhook).AccessToken
	for _, cb := range []string{"https://hooks..lab.example/updated", "https://bad-.bücher.example/updated"} {
		t.Run(cb, func(t *testing.T) {
			is := is.New(t)
			_, _, err := h.st.PutOrcidWebhook(t.Context(), c.ID, seedOrcid, cb) // as an older hookd registered it
			is.NoErr(err)
			seg := httpapi.EscapeSegment(cb)
			is.Equal(h.do(t, http.MethodPut, webhookPath(seedOrcid, seg), tok).status, http.StatusBadRequest) // not registered anew
			is.Equal(h.do(t, http.MethodGet, webhookPath(seedOrcid, seg), tok).status, http.StatusOK)
			is.Equal(h.do(t, http.MethodDelete, webhookPath(seedOrcid, seg), tok).status, http.StatusNoContent)
		})
	}
}

// TestWebhookListUnknownQuery: the list of a record's registrations takes no query
// parameter; one given is refused, named, as every other list of hookd's refuses
// one it does not take, in ORCID's error body.
func TestWebhookListUnknownQuery(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "lab")
	is.Equal(h.do(t, http.MethodPut, webhookPath(seedOrcid, seedSegment), tok).status, http.StatusCreated)
	for query, want := range map[string]string{
		"x=1":        "x: unknown query parameter: this list takes none",
		"limit=1":    "limit: unknown query parameter",
		"orcid=&x=1": "orcid: unknown query parameter",
		"a=%zz":      "the query string does not parse",
	} {
		e := orcidError(t, h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook?"+query, tok), http.StatusBadRequest, 9001)
		is.True(strings.Contains(e.DeveloperMessage, want)) // names the parameter
	}
	e := orcidXMLError(t, h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook?x=1", tok, "Accept", "application/xml"), http.StatusBadRequest, 9001)
	is.True(strings.Contains(e.DeveloperMessage, "x: unknown query parameter")) // in XML when asked for
	is.Equal(len(h.list(t, seedOrcid, tok).Webhooks), 1)                        // without a query, the list
}

// TestWebhookLocationIsURI: a 201's Location is a URI: the callback segment as sent,
// with what a URI cannot hold as it is (a letter beyond ASCII sent as raw UTF-8,
// '{', '|') percent-encoded as the GET's location encodes it; it names the same
// registration, and a segment that is a URI's already is echoed as sent.
func TestWebhookLocationIsURI(t *testing.T) {
	h := newHarness(t)
	tok := h.webhookToken(t, "lab")
	for _, tt := range []struct{ sent, location, callback string }{
		{"http:%2F%2Fb\xc3\xbccher.example%2F\xc3\xbc", "http:%2F%2Fb%C3%BCcher.example%2F%C3%BC", "http://bücher.example/ü"},
		{"http%3A%2F%2Fa.example%2F%7Ba%7D{b|c}^", "http%3A%2F%2Fa.example%2F%7Ba%7D%7Bb%7Cc%7D%5E", "http://a.example/{a}{b|c}^"},
		{"http:%2F%2Fa.example%2Fok;x=1", "http:%2F%2Fa.example%2Fok;x=1", "http://a.example/ok;x=1"}, // a URI's already: as sent
	} {
		t.Run(tt.callback, func(t *testing.T) {
			is := is.New(t)
			res := h.do(t, http.MethodPut, webhookPath(seedOrcid, tt.sent), tok)
			is.Equal(res.status, http.StatusCreated)
			loc := res.header.Get("Location")
			is.Equal(loc, testPublic+webhookPath(seedOrcid, tt.location)) // percent-encoded where it must be
			u, err := url.Parse(loc)
			is.NoErr(err) // a URI
			var got webhook
			res = h.do(t, http.MethodGet, u.EscapedPath(), tok)
			is.Equal(res.status, http.StatusOK) // naming the registration
			decodeJSON(t, res.body, &got)
			is.Equal(got.Callback, tt.callback)
			is.Equal(got.Location, testPublic+webhookPath(seedOrcid, httpapi.EscapeSegment(tt.callback))) // as the GET encodes it
		})
	}
}

// TestWebhookCallbackSchemeHostCase: a callback's scheme and host are
// case-insensitive (RFC 3986 §6.2.2.1): registered in capitals and again in lower
// case, it is one registration, kept and shown in lower case, found and removed
// under either spelling, and an event calls it once. Its path keeps its case.
func TestWebhookCallbackSchemeHostCase(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "lab")
	upper := httpapi.EscapeSegment("HTTP://EXAMPLE.COM/Hook")
	res := h.do(t, http.MethodPut, webhookPath(seedOrcid, upper), tok)
	is.Equal(res.status, http.StatusCreated)
	is.Equal(res.header.Get("Location"), testPublic+webhookPath(seedOrcid, upper)) // the segment as sent
	for _, spelling := range []string{"http://example.com/Hook", "Http://Example.Com/Hook"} {
		is.Equal(h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment(spelling)), tok).status, http.StatusNoContent) // the same receiver
	}
	other := h.webhookToken(t, "other")
	is.Equal(h.do(t, http.MethodPut, webhookPath(seedOrcid, url.PathEscape("http://EXAMPLE.com/Hook")), other).status, http.StatusNoContent) // another client's PUT of it, as at ORCID

	l := h.list(t, seedOrcid, tok)
	is.Equal(len(l.Webhooks), 1)                                // one registration
	is.Equal(l.Webhooks[0].Callback, "http://example.com/Hook") // kept in lower case, its path as sent
	var one webhook
	res = h.do(t, http.MethodGet, webhookPath(seedOrcid, upper), tok)
	is.Equal(res.status, http.StatusOK) // found under the spelling it was sent in
	decodeJSON(t, res.body, &one)
	is.Equal(one.Callback, "http://example.com/Hook")
	is.Equal(one.Location, testPublic+webhookPath(seedOrcid, httpapi.EscapeSegment("http://example.com/Hook")))

	is.Equal(h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment("http://example.com/hook")), tok).status, http.StatusCreated) // a path in another case is another's
	is.Equal(h.do(t, http.MethodDelete, webhookPath(seedOrcid, httpapi.EscapeSegment("http://example.com/hook")), tok).status, http.StatusNoContent)

	notify := h.token(t, h.client(t, "notifier", store.ScopeNotify), store.ScopeNotify).AccessToken
	var got eventsAccepted
	platformOK(t, platformCall(t, h, http.MethodPost, "/api/notifications/v1/events", notify, `{"orcid":"`+seedOrcid+`"}`), http.StatusAccepted, &got)
	is.Equal(got.Deliveries, 1) // one call

	is.Equal(h.do(t, http.MethodDelete, webhookPath(seedOrcid, httpapi.EscapeSegment("http://Example.COM/Hook")), tok).status, http.StatusNoContent) // removed under another spelling
	is.Equal(len(h.allSubscriptions(t)), 0)
}

// TestWebhookDeleteRemovesEverySpelling: a client's registrations of one receiver
// that an older hookd kept under two spellings of its scheme, host and default
// port (HTTP://EXAMPLE.COM/x, http://Example.com:80/x) are one registration: a
// DELETE under any spelling removes both, and the receiver is no longer called.
// It removed one, answered 204, and the GET of the callback just removed still
// answered 200, the event still calling the receiver through the other. Another
// client's registration of the receiver stays.
func TestWebhookDeleteRemovesEverySpelling(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	lab := h.client(t, "lab", store.ScopeWebhook)
	tok := h.token(t, lab, store.ScopeWebhook).AccessToken
	other := h.client(t, "other", store.ScopeWebhook)
	otherTok := h.token(t, other, store.ScopeWebhook).AccessToken
	db, err := sql.Open("sqlite", "file:"+h.path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	for i, r := range []struct{ client, target string }{
		{lab.ID, "HTTP://EXAMPLE.COM/x"}, {lab.ID, "http://Example.com:80/x"}, {other.ID, "http://EXAMPLE.com/x"},
	} { // as an older hookd kept them, each spelling apart
		_, err = db.Exec(`INSERT INTO subscriptions(id, uid, client_id, format, target, orcid, created_at, updated_at)
			VALUES ((SELECT value + 1 FROM id_marks WHERE name = 'subscriptions'), ?, ?, 'empty', ?, ?, 0, 0)`,
			fmt.Sprintf("00000000-0000-7000-8000-%012d", i+1), r.client, r.target, seedOrcid)
		is.NoErr(err)
	}
	is.NoErr(db.Close())
	is.Equal(len(h.list(t, seedOrcid, tok).Webhooks), 2)

	seg := httpapi.EscapeSegment("http://example.com/x")
	is.Equal(h.do(t, http.MethodDelete, webhookPath(seedOrcid, seg), tok).status, http.StatusNoContent)
	for _, spelling := range []string{"http://example.com/x", "HTTP://EXAMPLE.COM/x", "http://Example.com:80/x"} {
		is.Equal(h.do(t, http.MethodGet, webhookPath(seedOrcid, httpapi.EscapeSegment(spelling)), tok).status, http.StatusForbidden) // only the other client's is left
	}
	is.Equal(len(h.list(t, seedOrcid, tok).Webhooks), 0)                                           // none of the client's
	is.Equal(h.do(t, http.MethodGet, webhookPath(seedOrcid, seg), otherTok).status, http.StatusOK) // the other client's stays

	notify := h.token(t, h.client(t, "notifier", store.ScopeNotify), store.ScopeNotify).AccessToken
	var got eventsAccepted
	platformOK(t, platformCall(t, h, http.MethodPost, "/api/notifications/v1/events", notify, `{"orcid":"`+seedOrcid+`"}`), http.StatusAccepted, &got)
	is.Equal(got.Deliveries, 1) // the other client's alone

	is.Equal(h.do(t, http.MethodDelete, webhookPath(seedOrcid, seg), otherTok).status, http.StatusNoContent)
	is.Equal(h.do(t, http.MethodDelete, webhookPath(seedOrcid, seg), tok).status, http.StatusNotFound) // gone
	is.Equal(h.do(t, http.MethodPut, webhookPath(seedOrcid, seg), tok).status, http.StatusCreated)     // registered anew
}
