package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"hookd/store"
)

// refusedCleanly fails the test for a 5xx, and for a 4xx that is not in the
// route's error format.
func refusedCleanly(t *testing.T, what string, res response, problem bool) {
	t.Helper()
	if res.status >= 500 {
		t.Fatalf("%s: %d %s", what, res.status, res.body)
	}
	if res.status >= 400 && problem && !strings.HasPrefix(res.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("%s: %d without a problem body: %s", what, res.status, res.body)
	}
}

// uriChars are the characters a URI's path may hold (RFC 3986 §3.3, with '%' of
// its escapes and '/').
const uriChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@/"

// FuzzCallbackSegment sends any callback segment to the ORCID-style routes: the
// answer is a registration or a 4xx, never a server error, and a registered
// callback round-trips byte for byte, but for its scheme and host, in lower case.
func FuzzCallbackSegment(f *testing.F) {
	for _, s := range []string{seedSegment, "http%3A%2F%2Fa.example%2Fx%3Fy%3D1%26z%3D%252F", "%zz", "http://a.example/", "https%3A%2F%2F127.0.0.1%2F", "", "%00", "http%3A%2F%2F%5B%3A%3A1%5D%2F",
		"http%3A%2F%2Fa.example%2F{a|b}^", "HTTP%3A%2F%2FA.Example%2FX"} {
		f.Add(s)
	}
	h := newHarness(f)
	tok := h.webhookToken(f, "fuzz")
	f.Fuzz(func(t *testing.T, seg string) {
		req, err := http.NewRequest(http.MethodPut, h.srv.URL, nil)
		if err != nil {
			t.Skip()
		}
		req.URL.Opaque = "/" + seedOrcid + "/webhook/" + seg
		for i := 0; i < len(seg); i++ {
			if seg[i] <= ' ' || seg[i] >= 0x7f || seg[i] == '#' || seg[i] == '?' {
				t.Skip() // not a path a client sends as is
			}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := h.http.Do(req)
		if err != nil {
			t.Skip() // refused by the client library
		}
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("PUT %q: %d", seg, res.StatusCode)
		}
		if res.StatusCode != http.StatusCreated {
			return
		}
		cb, err := url.PathUnescape(seg)
		if err != nil {
			t.Fatalf("PUT %q registered a segment that does not decode: %v", seg, err)
		}
		// The Location is the segment as sent, with what a URI cannot hold as it
		// is ('|', '{') percent-encoded: a URI, naming the same callback.
		loc := res.Header.Get("Location")
		locSeg, ok := strings.CutPrefix(loc, h.public+"/"+seedOrcid+"/webhook/")
		if !ok || strings.Trim(locSeg, uriChars) != "" {
			t.Fatalf("PUT %q: Location %q is not a URI of the segment", seg, loc)
		}
		if got, err := url.PathUnescape(locSeg); err != nil || got != cb || (strings.Trim(seg, uriChars) == "" && locSeg != seg) {
			t.Fatalf("PUT %q: Location %q is not the segment as sent, in a URI", seg, loc)
		}
		var got webhook
		decodeJSON(t, h.do(t, http.MethodGet, "/"+seedOrcid+"/webhook/"+seg, tok).body, &got)
		if want := store.CanonicalURL(cb); got.Callback != want { // its scheme and host in lower case
			t.Fatalf("PUT %q: callback stored as %q, want %q", seg, got.Callback, want)
		}
	})
}

// FuzzEventsBody posts any body to the intake: 202 or a problem, never a 5xx.
func FuzzEventsBody(f *testing.F) {
	for _, s := range []string{`{"orcid":"0000-0002-7253-3645"}`, `[{"orcid":"0000-0002-7253-3645","type":"CREATED","id":"a"}]`, `[]`, `{"orcid":1}`, `{"orcid":"x","extra":1}`, "[" + strings.Repeat(`{"orcid":"0000-0002-7253-3645"},`, 3) + `{}]`, "{\"orcid\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	h := newHarness(f)
	c := h.client(f, "fuzz", store.ScopeNotify)
	tok := h.token(f, c, store.ScopeNotify).AccessToken
	f.Fuzz(func(t *testing.T, body []byte) {
		res := h.call(t, http.MethodPost, "/api/notifications/v1/events", "Bearer "+tok, string(body))
		refusedCleanly(t, "POST events", res, true)
		if res.status != http.StatusAccepted && res.status != http.StatusBadRequest && res.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("POST events %q: %d %s", body, res.status, res.body)
		}
	})
}

// FuzzWebhookBody posts any body to the platform API's create route: a webhook
// that can be read back, or a problem, never a 5xx.
func FuzzWebhookBody(f *testing.F) {
	for _, s := range []string{`{"targetURL":"https://example.org/hook"}`,
		`{"targetURL":"https://example.org/h","auth":{"type":"basic","username":"u","password":"p"},"headers":{"X-A":"b"},"types":["orcid.record.created"],"orcid":"0000-0002-7253-3645","description":"d"}`,
		`{"targetURL":"https://example.org/h","auth":{"type":"client_credential","clientID":"c","clientSecret":"s","tokenURL":"https://example.org/t"}}`,
		`{"targetURL":"http://127.0.0.1/"}`, `{"targetURL":"https://example.org:99999/"}`, `{"headers":{"X\u0000":"a"}}`, `null`} {
		f.Add([]byte(s))
	}
	h := newHarness(f)
	tok := h.webhookToken(f, "fuzz")
	f.Fuzz(func(t *testing.T, body []byte) {
		res := h.call(t, http.MethodPost, "/api/notifications/v1/webhooks", "Bearer "+tok, string(body))
		refusedCleanly(t, "POST webhooks", res, true)
		if res.status != http.StatusOK {
			return
		}
		var rec struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(res.body, &rec); err != nil || rec.ID == "" {
			t.Fatalf("POST webhooks %q: 200 without an id: %s", body, res.body)
		}
		got := h.call(t, http.MethodGet, "/api/notifications/v1/webhooks/"+rec.ID, "Bearer "+tok, "")
		if got.status != http.StatusOK {
			t.Fatalf("created webhook %s cannot be read: %d %s", rec.ID, got.status, got.body)
		}
		h.call(t, http.MethodDelete, "/api/notifications/v1/webhooks/"+rec.ID, "Bearer "+tok, "")
	})
}

// FuzzHubBodies sends any body to the organisation admin API's writes: the answer
// is a success or a problem, never a 5xx.
func FuzzHubBodies(f *testing.F) {
	for _, s := range []string{`{"name":"Uni","tech-contact-email":"it@uni.example"}`,
		`{"enabled":true,"url":"https://example.org/org","append-orcid":true,"apikey":"k","email-notifications-enabled":true,"notification-email":"a@b.example"}`,
		`{"name":"Ann","email":"ann@uni.example","eppn":"ann@uni"}`, `{"name":""}`, `{"url":"javascript:alert(1)"}`, `{}`} {
		for route := range byte(3) {
			f.Add(route, []byte(s))
		}
	}
	h := newHarness(f)
	c := h.client(f, "fuzz", store.ScopeAdmin)
	tok := "Bearer " + h.token(f, c, store.ScopeAdmin).AccessToken
	res := h.call(f, http.MethodPost, "/api/hub/v1/organisations", tok, `{"name":"Fuzz","tech-contact-email":"it@uni.example"}`)
	if res.status != http.StatusCreated {
		f.Fatalf("create organisation: %d %s", res.status, res.body)
	}
	var org struct {
		ID json.Number `json:"id"`
	}
	json.Unmarshal(res.body, &org)
	orgPath := "/api/hub/v1/organisations/" + org.ID.String()
	f.Fuzz(func(t *testing.T, route byte, body []byte) {
		switch route % 3 {
		case 0:
			refusedCleanly(t, "POST organisations", h.call(t, http.MethodPost, "/api/hub/v1/organisations", tok, string(body)), true)
		case 1:
			refusedCleanly(t, "PUT webhook", h.call(t, http.MethodPut, orgPath+"/webhook", tok, string(body)), true)
		case 2:
			refusedCleanly(t, "PUT member", h.call(t, http.MethodPut, orgPath+"/members/"+seedOrcid, tok, string(body)), true)
		}
	})
}

// FuzzTokenForm posts any form to the token endpoint: a token, or an OAuth error,
// never a 5xx.
func FuzzTokenForm(f *testing.F) {
	h := newHarness(f)
	c := h.client(f, "fuzz", store.ScopeWebhook)
	for _, s := range []string{
		url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "grant_type": {"client_credentials"}, "scope": {"/webhook"}}.Encode(),
		url.Values{"client_id": {c.ID}, "grant_type": {"client_credentials"}}.Encode(),
		"grant_type=refresh_token&refresh_token=x", "client_id=%zz", "", "scope=%2Fwebhook%20%2Fadmin&client_id=" + c.ID,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, form string) {
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth/token", bytes.NewBufferString(form))
		if err != nil {
			t.Skip()
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res := h.send(t, req)
		if res.status >= 500 {
			t.Fatalf("token form %q: %d %s", form, res.status, res.body)
		}
		var body map[string]any
		if err := json.Unmarshal(res.body, &body); err != nil {
			t.Fatalf("token form %q: %d with a body that is not JSON: %s", form, res.status, res.body)
		}
		if res.status == http.StatusOK && body["access_token"] == nil {
			t.Fatalf("token form %q: 200 without an access token", form)
		}
		if res.status != http.StatusOK && body["error"] == nil {
			t.Fatalf("token form %q: %d without an OAuth error", form, res.status)
		}
	})
}
