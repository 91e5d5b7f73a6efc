package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/secret"
	"hookd/store"
)

// The platform webhook API (seed 004) through the real router, on a real store.
// Helpers here carry a "platform" prefix so they stay apart from the package's
// other test helpers.

const platformPath = "/api/notifications/v1/webhooks"

// platformAuth is the auth object as the API shows it: never a password or a
// client secret (a strict decode fails if one appears).
type platformAuth struct {
	Type     string `json:"type"`
	Username string `json:"username,omitempty"`
	ClientID string `json:"clientID,omitempty"`
	TokenURL string `json:"tokenURL,omitempty"`
}

// platformRecord is a webhook record with hookd's optional fields.
type platformRecord struct {
	ID            string            `json:"id"`
	CreatedAt     time.Time         `json:"createdAt"`
	UpdatedAt     time.Time         `json:"updatedAt"`
	TargetURL     string            `json:"targetURL"`
	Auth          platformAuth      `json:"auth"`
	Status        string            `json:"status"`
	Reason        string            `json:"reason"`
	Orcid         string            `json:"orcid"`
	Types         []string          `json:"types"`
	Description   string            `json:"description"`
	Headers       map[string]string `json:"headers"`
	SigningSecret string            `json:"signingSecret"`
}

// platformPage is the body of the list call.
type platformPage struct {
	Webhooks   []platformRecord `json:"webhooks"`
	NextCursor string           `json:"nextCursor"`
}

// platformAttempt and platformDelivery are the body of the deliveries call.
type platformAttempt struct {
	Attempt    int       `json:"attempt"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMS int64     `json:"durationMs"`
	Status     int       `json:"status"`
	Error      string    `json:"error"`
	Response   string    `json:"response"`
}

type platformDelivery struct {
	ID               int64             `json:"id"`
	MessageID        string            `json:"messageId"`
	WebhookID        string            `json:"webhookId"`
	WebhookRemovedAt time.Time         `json:"webhookRemovedAt"`
	ClientID         string            `json:"clientId"`
	OrgID            int64             `json:"orgId"`
	Format           string            `json:"format"`
	Target           string            `json:"target"`
	Orcid            string            `json:"orcid"`
	Type             string            `json:"type"`
	State            string            `json:"state"`
	Events           int               `json:"events"`
	FirstEvent       time.Time         `json:"firstEventAt"`
	LastEvent        time.Time         `json:"lastEventAt"`
	DueAt            time.Time         `json:"dueAt"`
	DoneAt           time.Time         `json:"doneAt"`
	ReplayedAt       time.Time         `json:"replayedAt"`
	LastStatus       int               `json:"lastStatus"`
	LastError        string            `json:"lastError"`
	AttemptsLog      []platformAttempt `json:"attempts"`
}

// platformCall sends a platform API request with a JSON body (none when empty), the
// seed's Accept header, and a bearer token when token is not empty.
func platformCall(tb testing.TB, h *harness, method, path, token, body string, header ...string) response {
	tb.Helper()
	is := is.New(tb)
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	is.NoErr(err) // make request
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return h.send(tb, req)
}

// platformOK checks a success status with a JSON body and decodes it strictly.
func platformOK(tb testing.TB, res response, status int, v any) {
	tb.Helper()
	is := is.New(tb)
	if res.status != status {
		tb.Logf("body: %s", res.body)
	}
	is.Equal(res.status, status)                                                   // status
	is.True(strings.HasPrefix(res.header.Get("Content-Type"), "application/json")) // JSON body
	decodeJSON(tb, res.body, v)
}

// platformProblem checks an error status with an RFC 9457 body and decodes it.
func platformProblem(tb testing.TB, res response, status int) eventsProblem {
	tb.Helper()
	is := is.New(tb)
	if res.status != status {
		tb.Logf("body: %s", res.body)
	}
	is.Equal(res.status, status)                                         // status
	is.Equal(res.header.Get("Content-Type"), "application/problem+json") // RFC 9457 media type
	var p eventsProblem
	decodeJSON(tb, res.body, &p)
	is.Equal(p.Status, status) // status repeated in the body
	is.True(p.Detail != "")    // detail says what is wrong
	is.True(p.Title != "")     // title is set
	is.True(p.Type != "")      // type is set
	return p
}

// platformCreate registers a webhook and returns its record (with the signing secret).
func platformCreate(tb testing.TB, h *harness, token, body string) platformRecord {
	tb.Helper()
	var rec platformRecord
	platformOK(tb, platformCall(tb, h, http.MethodPost, platformPath, token, body), http.StatusOK, &rec)
	return rec
}

// platformGet returns one webhook.
func platformGet(tb testing.TB, h *harness, token, id string) platformRecord {
	tb.Helper()
	var rec platformRecord
	platformOK(tb, platformCall(tb, h, http.MethodGet, platformPath+"/"+id, token, ""), http.StatusOK, &rec)
	return rec
}

// platformList returns one page of the caller's webhooks; query may be empty.
func platformList(tb testing.TB, h *harness, token, query string) platformPage {
	tb.Helper()
	is := is.New(tb)
	path := platformPath
	if query != "" {
		path += "?" + query
	}
	res := platformCall(tb, h, http.MethodGet, path, token, "")
	var p platformPage
	platformOK(tb, res, http.StatusOK, &p)
	is.True(p.Webhooks != nil) // an empty list is [], not null
	return p
}

// platformDeliveries returns a webhook's deliveries, newest first.
func platformDeliveries(tb testing.TB, h *harness, token, id string) []platformDelivery {
	tb.Helper()
	var out struct {
		Deliveries []platformDelivery `json:"deliveries"`
	}
	platformOK(tb, platformCall(tb, h, http.MethodGet, platformPath+"/"+id+"/deliveries", token, ""), http.StatusOK, &out)
	return out.Deliveries
}

// platformTokens makes a client with the /webhook and /notify scopes and returns a
// token for each.
func platformTokens(tb testing.TB, h *harness, name string) (webhookTok, notifyTok string) {
	tb.Helper()
	c := h.client(tb, name, store.ScopeWebhook, store.ScopeNotify)
	return h.token(tb, c, store.ScopeWebhook).AccessToken, h.token(tb, c, store.ScopeNotify).AccessToken
}

// platformNotify posts one event for id to the intake and returns how many
// deliveries it made.
func platformNotify(tb testing.TB, h *harness, notifyTok, id string) int {
	tb.Helper()
	var got eventsAccepted
	res := platformCall(tb, h, http.MethodPost, "/api/notifications/v1/events", notifyTok, `{"orcid":"`+id+`"}`)
	platformOK(tb, res, http.StatusAccepted, &got)
	return got.Deliveries
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(tb testing.TB, raw []byte) []string {
	tb.Helper()
	is := is.New(tb)
	var m map[string]json.RawMessage
	is.NoErr(json.Unmarshal(raw, &m)) // a JSON object
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

const seedBody = `{
"targetURL": "https://example.com/notify",
"auth": {
"type": "basic",
"username": "USERNAME",
"password": "PASSWORD"
}
}`

func TestPlatformCreate(t *testing.T) {
	h := newHarness(t)
	tok := h.webhookToken(t, "platform-client")

	t.Run("seed request and record shape", func(t *testing.T) {
		is := is.New(t)
		res := platformCall(t, h, http.MethodPost, platformPath, tok, seedBody)
		is.Equal(res.status, http.StatusOK)                                            // 200, as the seed says
		is.True(strings.HasPrefix(res.header.Get("Content-Type"), "application/json")) // JSON
		is.Equal(keysOf(t, res.body), []string{"auth", "createdAt", "id", "signingSecret", "status", "targetURL", "updatedAt"})
		var raw map[string]json.RawMessage
		is.NoErr(json.Unmarshal(res.body, &raw))                              // record
		is.Equal(keysOf(t, raw["auth"]), []string{"type", "username"})        // auth shows type and username only
		is.True(!bytes.Contains(res.body, []byte("PASSWORD")))                // the password is never echoed
		is.True(!bytes.Contains(bytes.ToLower(res.body), []byte("password"))) // not even its key

		var rec platformRecord
		decodeJSON(t, res.body, &rec)
		_, err := uuid.Parse(rec.ID)
		is.NoErr(err)                                                         // id is a UUID
		is.Equal(len(rec.ID), 36)                                             // in its canonical form
		is.Equal(rec.TargetURL, "https://example.com/notify")                 // targetURL as sent
		is.Equal(rec.Auth, platformAuth{Type: "basic", Username: "USERNAME"}) // auth without the password
		is.Equal(rec.Status, "active")                                        // a new webhook is active
		is.True(rec.CreatedAt.Equal(h.clock.Now()))                           // createdAt on the store's clock
		is.True(rec.UpdatedAt.Equal(rec.CreatedAt))                           // updatedAt starts equal
		is.True(strings.Contains(string(raw["createdAt"]), "T"))              // RFC 3339
		is.True(strings.HasPrefix(rec.SigningSecret, "whsec_"))               // a Standard Webhooks secret
		key, err := secret.SigningKey(rec.SigningSecret)
		is.NoErr(err)           // its base64 decodes
		is.True(len(key) >= 24) // to a real key

		t.Run("GET has no signing secret", func(t *testing.T) {
			is := is.New(t)
			res := platformCall(t, h, http.MethodGet, platformPath+"/"+rec.ID, tok, "")
			is.Equal(res.status, http.StatusOK)                                                                    // found
			is.Equal(keysOf(t, res.body), []string{"auth", "createdAt", "id", "status", "targetURL", "updatedAt"}) // the seed's shape exactly
			is.True(!bytes.Contains(res.body, []byte("PASSWORD")))                                                 // no password
			is.True(!bytes.Contains(res.body, []byte("whsec_")))                                                   // no signing secret
			got := platformGet(t, h, tok, rec.ID)
			is.Equal(got.ID, rec.ID)                    // same id
			is.Equal(got.Auth, rec.Auth)                // same auth view
			is.Equal(got.TargetURL, rec.TargetURL)      // same target
			is.True(got.CreatedAt.Equal(rec.CreatedAt)) // same times
		})
		t.Run("list has no secrets", func(t *testing.T) {
			is := is.New(t)
			res := platformCall(t, h, http.MethodGet, platformPath, tok, "")
			is.Equal(res.status, http.StatusOK)                    // listed
			is.True(!bytes.Contains(res.body, []byte("PASSWORD"))) // no password
			is.True(!bytes.Contains(res.body, []byte("whsec_")))   // no signing secret
			p := platformList(t, h, tok, "")
			is.Equal(len(p.Webhooks), 1)       // the one webhook
			is.Equal(p.Webhooks[0].ID, rec.ID) // is this one
			is.Equal(p.NextCursor, "")         // and there is no next page
		})
	})

	t.Run("client_credential shows clientID and tokenURL only", func(t *testing.T) {
		is := is.New(t)
		body := `{"targetURL":"https://example.com/cc","auth":{"type":"client_credential","clientID":"cb-app","clientSecret":"cs-NEVER-SHOWN-1","tokenURL":"https://auth.example.com/oauth/token"}}`
		res := platformCall(t, h, http.MethodPost, platformPath, tok, body)
		is.Equal(res.status, http.StatusOK)                            // created
		is.True(!bytes.Contains(res.body, []byte("cs-NEVER-SHOWN-1"))) // the client secret is not echoed
		is.True(!bytes.Contains(res.body, []byte("clientSecret")))     // nor its key
		var raw map[string]json.RawMessage
		is.NoErr(json.Unmarshal(res.body, &raw))                                   // record
		is.Equal(keysOf(t, raw["auth"]), []string{"clientID", "tokenURL", "type"}) // auth: type, clientID, tokenURL
		var rec platformRecord
		decodeJSON(t, res.body, &rec)
		is.Equal(rec.Auth, platformAuth{Type: "client_credential", ClientID: "cb-app", TokenURL: "https://auth.example.com/oauth/token"}) // auth view

		for _, r := range []response{
			platformCall(t, h, http.MethodGet, platformPath+"/"+rec.ID, tok, ""),
			platformCall(t, h, http.MethodGet, platformPath, tok, ""),
			platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok, `{"description":"changed"}`),
			platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/deactivate", tok, ""),
			platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/activate", tok, ""),
		} {
			is.Equal(r.status, http.StatusOK)                            // answered
			is.True(!bytes.Contains(r.body, []byte("cs-NEVER-SHOWN-1"))) // never the client secret
			is.True(!bytes.Contains(r.body, []byte("PASSWORD")))         // nor the basic password
			is.True(!bytes.Contains(r.body, []byte("whsec_")))           // nor a signing secret
		}
	})

	t.Run("PATCH never shows the new password", func(t *testing.T) {
		is := is.New(t)
		rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/p"}`)
		res := platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok, `{"auth":{"type":"basic","username":"u2","password":"pw-NEVER-SHOWN-2"}}`)
		is.Equal(res.status, http.StatusOK)                            // changed
		is.True(!bytes.Contains(res.body, []byte("pw-NEVER-SHOWN-2"))) // the password is not echoed
		var got platformRecord
		decodeJSON(t, res.body, &got)
		is.Equal(got.Auth, platformAuth{Type: "basic", Username: "u2"}) // the new auth, without its password
		is.Equal(got.SigningSecret, "")                                 // PATCH does not show the signing secret
	})

	t.Run("noauth by default and explicitly", func(t *testing.T) {
		is := is.New(t)
		a := platformCreate(t, h, tok, `{"targetURL":"https://example.com/n1"}`)
		is.Equal(a.Auth, platformAuth{Type: "noauth"}) // no auth object means noauth
		b := platformCreate(t, h, tok, `{"targetURL":"https://example.com/n2","auth":{"type":"noauth"}}`)
		is.Equal(b.Auth, platformAuth{Type: "noauth"}) // explicit noauth
		is.True(a.SigningSecret != b.SigningSecret)    // each webhook has its own signing secret
		is.True(a.ID != b.ID)                          // and its own id
	})

	t.Run("optional fields", func(t *testing.T) {
		is := is.New(t)
		rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/o","orcid":"https://orcid.org/`+seedOrcid+`",
			"types":["orcid.record.created","UPDATED"],"description":"lab feed","headers":{"X-Tenant":"t-1"}}`)
		is.Equal(rec.Orcid, seedOrcid)                                                // the iD, normalised from its URL
		is.Equal(rec.Types, []string{"orcid.record.created", "orcid.record.updated"}) // types in the platform's words
		is.Equal(rec.Description, "lab feed")                                         // description
		is.Equal(rec.Headers, map[string]string{"X-Tenant": "t-1"})                   // custom headers
	})
}

func TestPlatformValidation(t *testing.T) {
	const target = `"targetURL":"https://example.com/notify"`
	tests := []struct {
		name   string
		body   string
		field  string // the field the problem names ("" for none, "*" not checked)
		detail string // a piece of the detail
	}{
		{"empty body", ``, "", "empty"},
		{"not JSON", `{"targetURL" "x"}`, "", "JSON"},
		{"missing targetURL", `{}`, "targetURL", "required"},
		{"non-http URL", `{"targetURL":"ftp://example.com/x"}`, "targetURL", "http"},
		{"relative URL", `{"targetURL":"/notify"}`, "targetURL", "http"},
		{"targetURL not a string", `{"targetURL":5}`, "targetURL", "string"},
		{"loopback target", `{"targetURL":"http://127.0.0.1:9/x"}`, "targetURL", "allow_private_targets"},
		{"localhost target", `{"targetURL":"http://localhost:9/x"}`, "targetURL", "loopback"},
		{"private target", `{"targetURL":"http://10.1.2.3/x"}`, "targetURL", "private"},
		{"auth without type", `{` + target + `,"auth":{"username":"u","password":"pw-never-echo"}}`, "auth.type", "required"},
		{"unknown auth type", `{` + target + `,"auth":{"type":"digest"}}`, "auth.type", "digest"},
		{"basic without password", `{` + target + `,"auth":{"type":"basic","username":"u"}}`, "auth.password", "required"},
		{"basic without username", `{` + target + `,"auth":{"type":"basic","password":"pw-never-echo"}}`, "auth.username", "required"},
		{"basic username with colon", `{` + target + `,"auth":{"type":"basic","username":"a:b","password":"pw-never-echo"}}`, "auth.username", ":"},
		{"basic username with a line break", `{` + target + `,"auth":{"type":"basic","username":"u\r\n","password":"pw-never-echo"}}`, "auth.username", "control character"},
		{"basic username far too long", `{` + target + `,"auth":{"type":"basic","username":"` + strings.Repeat("u", 60000) + `","password":"pw-never-echo"}}`, "auth.username", "the limit is 1024"},
		// Sent as given: every call, every token request, would be refused as if
		// the password or secret were wrong.
		{"basic username with a space copied after it", `{` + target + `,"auth":{"type":"basic","username":"u ","password":"pw-never-echo"}}`, "auth.username", `"u " begins or ends with white space`},
		{"client id with a space copied after it", `{` + target + `,"auth":{"type":"client_credential","clientID":"APP-1 ","clientSecret":"pw-never-echo","tokenURL":"https://id.example.org/token"}}`, "auth.clientID", `"APP-1 " begins or ends with white space`},
		{"client id with a no-break space before it", `{` + target + `,"auth":{"type":"client_credential","clientID":"\u00a0APP-1","clientSecret":"pw-never-echo","tokenURL":"https://id.example.org/token"}}`, "auth.clientID", "white space"},
		{"client id with a NUL", `{` + target + `,"auth":{"type":"client_credential","clientID":"a\u0000","clientSecret":"s","tokenURL":"https://id.example.org/token"}}`, "auth.clientID", "control character"},
		{"basic with clientID", `{` + target + `,"auth":{"type":"basic","username":"u","password":"pw-never-echo","clientID":"c"}}`, "auth.clientID", "basic"},
		{"client_credential without tokenURL", `{` + target + `,"auth":{"type":"client_credential","clientID":"c","clientSecret":"pw-never-echo"}}`, "auth.tokenURL", "required"},
		{"client_credential without clientSecret", `{` + target + `,"auth":{"type":"client_credential","clientID":"c","tokenURL":"https://a.example.com/t"}}`, "auth.clientSecret", "required"},
		{"client_credential with ftp tokenURL", `{` + target + `,"auth":{"type":"client_credential","clientID":"c","clientSecret":"pw-never-echo","tokenURL":"ftp://a.example.com/t"}}`, "auth.tokenURL", "http"},
		{"client_credential with loopback tokenURL", `{` + target + `,"auth":{"type":"client_credential","clientID":"c","clientSecret":"pw-never-echo","tokenURL":"http://127.0.0.1:9/t"}}`, "auth.tokenURL", "allow_private_targets"},
		{"noauth with password", `{` + target + `,"auth":{"type":"noauth","password":"pw-never-echo"}}`, "auth.password", "noauth"},
		{"noauth with an empty username", `{` + target + `,"auth":{"type":"noauth","username":""}}`, "auth.username", "noauth"},
		{"basic with an empty tokenURL", `{` + target + `,"auth":{"type":"basic","username":"u","password":"pw-never-echo","tokenURL":""}}`, "auth.tokenURL", "basic"},
		{"client_credential with an empty password", `{` + target + `,"auth":{"type":"client_credential","clientID":"c","clientSecret":"pw-never-echo","tokenURL":"https://a.example.com/t","password":""}}`, "auth.password", "client_credential"},
		{"password not a string", `{` + target + `,"auth":{"type":"basic","username":"u","password":5}}`, "auth.password", "string"},
		{"unknown field", `{` + target + `,"colour":"red"}`, "colour", "colour"},
		{"unknown field holding a number beyond float64", `{` + target + `,"colour":1e400}`, "colour", "unknown field"},
		{"a field name in another case", `{"targetUrl":"https://example.com/notify"}`, "targetUrl", "case-sensitive"},
		{"a stray brace after the value", `{` + target + `}}`, "", "after"},
		// The decoder names a nested unknown field without its path ("secret", not
		// "auth.secret"): only the detail is checked here.
		{"unknown auth field", `{` + target + `,"auth":{"type":"noauth","secret":"pw-never-echo"}}`, "*", "secret"},
		{"bad orcid checksum", `{` + target + `,"orcid":"0000-0002-7253-3646"}`, "orcid", "check digit"},
		{"malformed orcid", `{` + target + `,"orcid":"0000-0002-7253"}`, "orcid", "form"},
		{"orcid URL without an iD", `{` + target + `,"orcid":"https://orcid.org/"}`, "orcid", ""},
		{"orcid of spaces", `{` + target + `,"orcid":"   "}`, "orcid", `"   " is not an ORCID iD: give one, or "*" for every record (or leave orcid out)`},
		{"bad types entry", `{` + target + `,"types":["orcid.record.deleted"]}`, "types[0]", "orcid.record.deleted"},
		{"bad second types entry", `{` + target + `,"types":["orcid.record.updated","bogus"]}`, "types[1]", "bogus"},
		{"a null in types", `{` + target + `,"types":["orcid.record.updated",null]}`, "types[1]", "types[1]: is null"},
		{"a number in types", `{` + target + `,"types":["orcid.record.updated",5]}`, "types[1]", "types[1]: must be a string, got number"},
		{"an object first in types", `{` + target + `,"types":[{},"orcid.record.updated"]}`, "types[0]", "types[0]: must be a string, got object"},
		{"a header's value a number", `{` + target + `,"headers":{"X-A":"1","X-B":2}}`, "headers.X-B", "headers.X-B: must be a string, got number"},
		{"a header's value null", `{` + target + `,"headers":{"X-A":"1","X-B":null}}`, "headers.X-B", "headers.X-B: is null"},
		{"reserved header webhook-signature", `{` + target + `,"headers":{"webhook-signature":"v1,forged"}}`, "headers.webhook-signature", "cannot be overridden"},
		{"reserved header Webhook-Id", `{` + target + `,"headers":{"Webhook-Id":"msg_1"}}`, "headers.Webhook-Id", "cannot be overridden"},
		{"reserved header Authorization", `{` + target + `,"headers":{"Authorization":"Bearer x"}}`, "headers.Authorization", "cannot be overridden"},
		{"reserved header apikey", `{` + target + `,"headers":{"APIKEY":"k"}}`, "headers.APIKEY", "cannot be overridden"},
		{"reserved header content-type", `{` + target + `,"headers":{"content-type":"text/plain"}}`, "headers.content-type", "cannot be overridden"},
		{"bad header name", `{` + target + `,"headers":{"X Bad":"v"}}`, "headers", "header name"},
		{"header value with a newline", `{` + target + `,"headers":{"X-A":"a\r\nX-B: b"}}`, "headers.X-A", "control character"},
		{"header value with NUL", `{` + target + `,"headers":{"X-A":"a\u0000b"}}`, "headers.X-A", "control character"},
		{"header value with BEL", `{` + target + `,"headers":{"X-A":"a\u0007"}}`, "headers.X-A", "control character"},
		{"header value with DEL", `{` + target + `,"headers":{"X-A":"a\u007f"}}`, "headers.X-A", "control character"},
		{"header value too long", `{` + target + `,"headers":{"X-A":"` + strings.Repeat("v", 1025) + `"}}`, "headers.X-A", "1024"},
		{"header name with NUL", `{` + target + `,"headers":{"X\u0000A":"v"}}`, "headers", "header name"},
		{"header name with a slash", `{` + target + `,"headers":{"X/A":"v"}}`, "headers", "header name"},
		{"header name not ASCII", `{` + target + `,"headers":{"X-Ä":"v"}}`, "headers", "header name"},
		{"reserved header Host", `{` + target + `,"headers":{"host":"example.org"}}`, "headers.host", "cannot be overridden"},
		{"port 0", `{"targetURL":"https://example.com:0/x"}`, "targetURL", "port"},
		{"an empty fragment", `{"targetURL":"https://example.com/x#"}`, "targetURL", "not even an empty one"},
		{"port 99999", `{"targetURL":"https://example.com:99999/x"}`, "targetURL", "port"},
		{"control character in URL", `{"targetURL":"https://example.com/a\u0007b"}`, "targetURL", "control character"},
		{"tokenURL port 0", `{` + target + `,"auth":{"type":"client_credential","clientID":"c","clientSecret":"pw-never-echo","tokenURL":"https://a.example.com:0/t"}}`, "auth.tokenURL", "port"},
		{"description with a control character", `{` + target + `,"description":"a\u0000b"}`, "description", "control character"},
		{"invalid UTF-8 in description", "{" + target + ",\"description\":\"a\xffb\"}", "", "UTF-8"},
		{"lone surrogate in description", `{` + target + `,"description":"a\udc00b"}`, "", "UTF-8"},
		{"description too long", `{` + target + `,"description":"` + strings.Repeat("d", 501) + `"}`, "description", "500"},
		{"trailing data", `{` + target + `}{}`, "", "after"},
	}
	h := newHarness(t)
	tok := h.webhookToken(t, "validation-client")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			res := platformCall(t, h, http.MethodPost, platformPath, tok, tt.body)
			p := platformProblem(t, res, http.StatusBadRequest)
			if tt.field != "*" {
				is.Equal(p.Field, tt.field) // the problem names the field
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q does not mention %q", p.Detail, tt.detail)
			}
			if tt.field != "" && tt.field != "*" {
				is.Equal(p.Type, "https://hookd.dev/problems/validation") // a validation problem
			}
			is.True(!bytes.Contains(res.body, []byte("pw-never-echo"))) // secrets are not echoed in errors
			is.Equal(len(platformList(t, h, tok, "").Webhooks), 0)      // a bad request creates nothing
			is.Equal(len(h.allSubscriptions(t)), 0)                     // not even hidden
		})
	}

	t.Run("not JSON content type", func(t *testing.T) {
		is := is.New(t)
		res := platformCall(t, h, http.MethodPost, platformPath, tok, `{`+target+`}`, "Content-Type", "text/plain")
		p := platformProblem(t, res, http.StatusBadRequest)
		is.True(strings.Contains(p.Detail, "Content-Type"))    // names the header
		is.Equal(len(platformList(t, h, tok, "").Webhooks), 0) // nothing created
	})

	t.Run("PATCH validates too and changes nothing", func(t *testing.T) {
		is := is.New(t)
		rec := platformCreate(t, h, tok, `{`+target+`,"auth":{"type":"basic","username":"u","password":"p"},"description":"d0"}`)
		for _, body := range []string{
			`{"targetURL":"ftp://example.com/x","description":"d1"}`,
			`{"description":"d1","auth":{"type":"basic","username":"u2"}}`,
			`{"description":"d1","auth":{"type":"basic","username":" u2","password":"p2"}}`,
			`{"description":"d1","auth":{"type":"client_credential","clientID":"APP-1\t","clientSecret":"s","tokenURL":"https://id.example.org/token"}}`,
			`{"description":"d1","auth":{"type":"noauth","username":"","password":""}}`,
			`{"description":"d1","headers":{"webhook-signature":"v1,x"}}`,
			`{"description":"d1","types":["nope"]}`,
			`{"description":"d1","orcid":"0000-0002-7253-3646"}`,
			`{"description":"d1","orcid":" \t "}`,
			`{"description":"d1","orcid":""}`, // not every record
			`{"description":"d1","types":[]}`, // not every type
			`{"description":"d1","colour":"red"}`,
		} {
			platformProblem(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok, body), http.StatusBadRequest)
		}
		got := platformGet(t, h, tok, rec.ID)
		is.Equal(got.Description, "d0")                                // unchanged
		is.Equal(got.TargetURL, "https://example.com/notify")          // unchanged
		is.Equal(got.Auth, platformAuth{Type: "basic", Username: "u"}) // unchanged
		is.True(got.UpdatedAt.Equal(rec.UpdatedAt))                    // not even touched
	})
}

func TestPlatformPrivateTargetsAllowed(t *testing.T) {
	is := is.New(t)
	h := newHarness(t, func(o *httpapi.Options) { o.AllowPrivateTargets = true })
	tok := h.webhookToken(t, "dev-client")
	rec := platformCreate(t, h, tok, `{"targetURL":"http://127.0.0.1:9/x","auth":{"type":"client_credential","clientID":"c","clientSecret":"s","tokenURL":"http://localhost:9/t"}}`)
	is.Equal(rec.TargetURL, "http://127.0.0.1:9/x")     // loopback allowed in dev mode
	is.Equal(rec.Auth.TokenURL, "http://localhost:9/t") // for the token URL too
}

func TestPlatformAuthRequired(t *testing.T) {
	h := newHarness(t)
	tok := h.webhookToken(t, "owner")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/a"}`)
	notifyOnly := h.token(t, h.client(t, "notifier", store.ScopeNotify), store.ScopeNotify).AccessToken

	id := platformPath + "/" + rec.ID
	routes := []struct{ method, path, body string }{
		{http.MethodPost, platformPath, `{"targetURL":"https://example.com/b"}`},
		{http.MethodGet, platformPath, ""},
		{http.MethodGet, id, ""},
		{http.MethodPatch, id, `{"description":"x"}`},
		{http.MethodDelete, id, ""},
		{http.MethodPost, id + "/deactivate", ""},
		{http.MethodPost, id + "/activate", ""},
		{http.MethodPost, id + "/rotate-secret", ""},
		{http.MethodGet, id + "/deliveries", ""},
		{http.MethodPost, id + "/replay", `{"since":"2024-01-01T00:00:00Z"}`},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+strings.TrimPrefix(rt.path, platformPath), func(t *testing.T) {
			is := is.New(t)
			res := platformCall(t, h, rt.method, rt.path, "", rt.body)
			platformProblem(t, res, http.StatusUnauthorized)
			is.True(strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer")) // says how to authenticate

			res = platformCall(t, h, rt.method, rt.path, "not-a-token", rt.body)
			platformProblem(t, res, http.StatusUnauthorized)
			is.True(strings.Contains(res.header.Get("WWW-Authenticate"), "invalid_token")) // names the error

			p := platformProblem(t, platformCall(t, h, rt.method, rt.path, notifyOnly, rt.body), http.StatusForbidden)
			is.True(strings.Contains(p.Detail, store.ScopeWebhook)) // names the missing scope
		})
	}
	t.Run("nothing changed", func(t *testing.T) {
		is := is.New(t)
		l := platformList(t, h, tok, "")
		is.Equal(len(l.Webhooks), 1)             // refused requests created nothing
		is.Equal(l.Webhooks[0].Status, "active") // nor deactivated anything
		is.Equal(l.Webhooks[0].Description, "")  // nor patched anything
	})
}

func TestPlatformOwnership(t *testing.T) {
	h := newHarness(t)
	alice := h.webhookToken(t, "alice")
	bob := h.webhookToken(t, "bob")
	rec := platformCreate(t, h, alice, `{"targetURL":"https://example.com/alice","auth":{"type":"basic","username":"a","password":"p"}}`)
	mine := platformCreate(t, h, bob, `{"targetURL":"https://example.com/bob"}`)

	id := platformPath + "/" + rec.ID
	routes := []struct{ method, path, body string }{
		{http.MethodGet, id, ""},
		{http.MethodPatch, id, `{"description":"bob was here"}`},
		{http.MethodDelete, id, ""},
		{http.MethodPost, id + "/deactivate", ""},
		{http.MethodPost, id + "/activate", ""},
		{http.MethodPost, id + "/rotate-secret", ""},
		{http.MethodGet, id + "/deliveries", ""},
		{http.MethodPost, id + "/replay", `{"since":"2024-01-01T00:00:00Z"}`},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+strings.TrimPrefix(rt.path, id), func(t *testing.T) {
			is := is.New(t)
			theirs := platformProblem(t, platformCall(t, h, rt.method, rt.path, bob, rt.body), http.StatusNotFound)
			// An id that exists for nobody answers the same: no leak of existence.
			ghost := strings.Replace(rt.path, rec.ID, uuid.NewString(), 1)
			nobody := platformProblem(t, platformCall(t, h, rt.method, ghost, bob, rt.body), http.StatusNotFound)
			is.Equal(theirs, nobody) // the same problem either way
		})
	}

	t.Run("lists are separate", func(t *testing.T) {
		is := is.New(t)
		b := platformList(t, h, bob, "")
		is.Equal(len(b.Webhooks), 1)        // bob sees one webhook
		is.Equal(b.Webhooks[0].ID, mine.ID) // his own
		a := platformList(t, h, alice, "")
		is.Equal(len(a.Webhooks), 1)       // alice sees one
		is.Equal(a.Webhooks[0].ID, rec.ID) // hers
		p := platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"?cursor="+rec.ID, bob, ""), http.StatusBadRequest)
		is.True(!strings.Contains(p.Detail, "alice")) // another client's id is not a cursor, and says nothing about her
	})

	t.Run("alice's webhook is untouched", func(t *testing.T) {
		is := is.New(t)
		got := platformGet(t, h, alice, rec.ID)
		is.Equal(got.Status, "active")                                 // not deactivated
		is.Equal(got.Description, "")                                  // not patched
		is.True(got.UpdatedAt.Equal(rec.UpdatedAt))                    // not touched at all
		is.Equal(got.Auth, platformAuth{Type: "basic", Username: "a"}) // same auth
	})
}

func TestPlatformListPagination(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "pager")
	is.Equal(len(platformList(t, h, tok, "").Webhooks), 0) // nothing yet

	var ids []string
	for i := range 5 {
		rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/`+string(rune('a'+i))+`"}`)
		ids = append(ids, rec.ID)
	}
	all := platformList(t, h, tok, "")
	is.Equal(len(all.Webhooks), 5) // all five by default
	is.Equal(all.NextCursor, "")   // on one page

	var got []string
	cursor := ""
	pages := 0
	for {
		q := "limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		p := platformList(t, h, tok, q)
		pages++
		is.True(len(p.Webhooks) <= 2) // at most limit per page
		for _, w := range p.Webhooks {
			got = append(got, w.ID)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
		is.True(pages < 5) // the pages end
	}
	is.Equal(pages, 3) // 2 + 2 + 1
	is.Equal(got, ids) // every webhook once, oldest first

	t.Run("a webhook's id, as cursors were once", func(t *testing.T) {
		is := is.New(t)
		p := platformList(t, h, tok, "limit=2&cursor="+ids[2])
		is.Equal(p.Webhooks[0].ID, ids[3]) // the page after it
	})

	t.Run("exact fit has no next page", func(t *testing.T) {
		is := is.New(t)
		p := platformList(t, h, tok, "limit=5")
		is.Equal(len(p.Webhooks), 5) // all five
		is.Equal(p.NextCursor, "")   // and no empty page after them
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, q := range []string{"limit=0", "limit=501", "limit=abc", "limit=-1"} {
			p := platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"?"+q, tok, ""), http.StatusBadRequest)
			is.New(t).Equal(p.Field, "limit") // names limit
		}
		p := platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"?cursor=nope", tok, ""), http.StatusBadRequest)
		is.New(t).True(strings.Contains(p.Detail, "cursor")) // names the cursor
		is.New(t).Equal(p.Field, "cursor")                   // as the field at fault, like limit
	})
	t.Run("the webhook that ends a page removed before the next page", func(t *testing.T) {
		is := is.New(t)
		p := platformList(t, h, tok, "limit=2")
		is.Equal(platformCall(t, h, http.MethodDelete, platformPath+"/"+p.Webhooks[1].ID, tok, "").status, http.StatusNoContent)
		next := platformList(t, h, tok, "limit=2&cursor="+p.NextCursor)
		is.Equal(next.Webhooks[0].ID, ids[2]) // the cursor holds
	})
}

func TestPlatformPatch(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "patcher")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/old","auth":{"type":"basic","username":"u","password":"p"},
		"description":"old","headers":{"X-Old":"1"},"orcid":"`+seedOrcid+`"}`)
	h.clock.Advance(time.Minute)

	var got platformRecord
	platformOK(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok,
		`{"targetURL":"https://example.com/new","description":"new","headers":{"X-New":"2","X-Also":"3"}}`), http.StatusOK, &got)
	is.Equal(got.ID, rec.ID)                                                      // same webhook
	is.Equal(got.TargetURL, "https://example.com/new")                            // targetURL changed
	is.Equal(got.Description, "new")                                              // description changed
	is.Equal(got.Headers, map[string]string{"X-New": "2", "X-Also": "3"})         // headers replaced
	is.Equal(got.Auth, platformAuth{Type: "basic", Username: "u"})                // auth kept (not sent)
	is.Equal(got.Orcid, seedOrcid)                                                // orcid kept (not sent)
	is.Equal(got.Status, "active")                                                // status kept
	is.True(got.CreatedAt.Equal(rec.CreatedAt))                                   // createdAt kept
	is.True(got.UpdatedAt.Equal(rec.CreatedAt.Add(time.Minute)))                  // updatedAt moved
	is.Equal(platformGet(t, h, tok, rec.ID).TargetURL, "https://example.com/new") // and stored

	t.Run("clear headers, orcid and description", func(t *testing.T) {
		is := is.New(t)
		var got platformRecord
		platformOK(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok, `{"headers":{},"orcid":"*","description":""}`), http.StatusOK, &got)
		is.Equal(len(got.Headers), 0) // headers cleared
		is.Equal(got.Orcid, "")       // every record now
		is.Equal(got.Description, "") // description cleared
	})
	t.Run("change auth type", func(t *testing.T) {
		is := is.New(t)
		var got platformRecord
		platformOK(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok,
			`{"auth":{"type":"client_credential","clientID":"cid","clientSecret":"cs","tokenURL":"https://auth.example.com/t"}}`), http.StatusOK, &got)
		is.Equal(got.Auth, platformAuth{Type: "client_credential", ClientID: "cid", TokenURL: "https://auth.example.com/t"}) // no username left over
		is.Equal(platformGet(t, h, tok, rec.ID).Auth, got.Auth)                                                              // stored
	})
	t.Run("unknown id", func(t *testing.T) {
		platformProblem(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+uuid.NewString(), tok, `{"description":"x"}`), http.StatusNotFound)
	})
	t.Run("a body that changes nothing", func(t *testing.T) {
		is := is.New(t)
		before := platformGet(t, h, tok, rec.ID)
		h.clock.Advance(time.Minute)
		var got platformRecord
		platformOK(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok, `{}`), http.StatusOK, &got)
		is.Equal(got, before)                                                                                                       // the webhook as it was
		is.True(platformGet(t, h, tok, rec.ID).UpdatedAt.Equal(before.UpdatedAt))                                                   // updatedAt not touched
		platformProblem(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+uuid.NewString(), tok, `{}`), http.StatusNotFound) // (still a 404 for another)
	})
}

// An empty orcid or types, as a form field left blank or a script's unset variable
// sends them, never widens what a webhook receives: not on creation, not on a
// change. Every record is asked for with "*", every type by listing them.
func TestPlatformEmptyFilterNeverWidens(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok, notifyTok := platformTokens(t, h, "narrow")
	const other = "0000-0002-1825-0097"
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/one","orcid":"`+seedOrcid+`","types":["orcid.record.updated"]}`)

	for _, tt := range []struct {
		name, method, path, body, field, detail string
	}{
		{"PATCH orcid \"\"", http.MethodPatch, platformPath + "/" + rec.ID, `{"orcid":""}`, "orcid", `orcid: is empty: give an ORCID iD, or "*" for every record`},
		{"PATCH types []", http.MethodPatch, platformPath + "/" + rec.ID, `{"types":[]}`, "types", "types: is empty: give the event types to deliver (orcid.record.updated, orcid.record.created), or list both for every type"},
		{"PATCH orcid null", http.MethodPatch, platformPath + "/" + rec.ID, `{"orcid":null}`, "orcid", `orcid: is null: leave orcid out to keep it, or give an ORCID iD, or "*" for every record`},
		{"PATCH types null", http.MethodPatch, platformPath + "/" + rec.ID, `{"types":null}`, "types", "types: is null: leave types out to keep them, or list the event types"},
		{"PATCH orcid of spaces", http.MethodPatch, platformPath + "/" + rec.ID, `{"orcid":"  "}`, "orcid", `"  " is not an ORCID iD: give one, or "*" for every record`},
		{"POST orcid \"\"", http.MethodPost, platformPath, `{"targetURL":"https://example.com/two","orcid":""}`, "orcid", `orcid: is empty: give an ORCID iD, or "*" for every record (or leave orcid out)`},
		{"POST types []", http.MethodPost, platformPath, `{"targetURL":"https://example.com/two","types":[]}`, "types", "or leave types out for every type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			p := platformProblem(t, platformCall(t, h, tt.method, tt.path, tok, tt.body), http.StatusBadRequest)
			is.Equal(p.Field, tt.field) // names the field
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q does not say %q", p.Detail, tt.detail)
			}
			webhooks := platformList(t, h, tok, "").Webhooks
			is.Equal(len(webhooks), 1)                                    // nothing created
			is.Equal(webhooks[0].Orcid, seedOrcid)                        // still one record
			is.Equal(webhooks[0].Types, []string{"orcid.record.updated"}) // still one type
			is.Equal(platformNotify(t, h, notifyTok, other), 0)           // another record's event reaches nothing
		})
	}

	t.Run("every record and every type, asked for", func(t *testing.T) {
		is := is.New(t)
		var got platformRecord
		platformOK(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok,
			`{"orcid":"*","types":["orcid.record.updated","orcid.record.created"]}`), http.StatusOK, &got)
		is.Equal(got.Orcid, "")                                                       // every record
		is.Equal(got.Types, []string{"orcid.record.updated", "orcid.record.created"}) // both types
		is.Equal(platformNotify(t, h, notifyTok, other), 1)                           // another record's event reaches it now
		all := platformCreate(t, h, tok, `{"targetURL":"https://example.com/all","orcid":"*"}`)
		is.Equal(all.Orcid, "") // "*" on creation too
	})
}

func TestPlatformDelete(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok, notify := platformTokens(t, h, "deleter")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/d"}`)
	keep := platformCreate(t, h, tok, `{"targetURL":"https://example.com/keep"}`)
	is.Equal(platformNotify(t, h, notify, seedOrcid), 2)                                                                  // one delivery for each webhook
	is.Equal(platformCall(t, h, http.MethodGet, platformPath+"/"+strings.ToUpper(rec.ID), tok, "").status, http.StatusOK) // an id in capitals is the same id

	res := platformCall(t, h, http.MethodDelete, platformPath+"/"+rec.ID, tok, "")
	is.Equal(res.status, http.StatusNoContent) // 204
	is.Equal(len(res.body), 0)                 // without a body

	platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"/"+rec.ID, tok, ""), http.StatusNotFound)    // gone
	platformProblem(t, platformCall(t, h, http.MethodDelete, platformPath+"/"+rec.ID, tok, ""), http.StatusNotFound) // a second DELETE is a 404

	// Its history stays until retention: the delivery that was waiting is dead and
	// marked as a removed webhook's.
	kept := platformDeliveries(t, h, tok, rec.ID)
	is.Equal(len(kept), 1)                                                                                                        // the deleted webhook's delivery is still listed
	is.Equal(kept[0].WebhookID, rec.ID)                                                                                           // under its id
	is.True(kept[0].WebhookRemovedAt.Equal(h.clock.Now()))                                                                        // marked as removed, and when
	is.Equal(kept[0].State, "dead")                                                                                               // it will never be sent
	is.Equal(kept[0].LastError, "not sent: webhook removed")                                                                      // and says why
	other := h.webhookToken(t, "other")                                                                                           // another client
	platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"/"+rec.ID+"/deliveries", other, ""), http.StatusNotFound) // sees none of it
	p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/replay", tok, `{"since":"1h"}`), http.StatusNotFound)
	is.Equal(p.Detail, "not found") // a removed webhook is replayed no more

	l := platformList(t, h, tok, "")
	is.Equal(len(l.Webhooks), 1)        // one left
	is.Equal(l.Webhooks[0].ID, keep.ID) // the other one
	ds, err := h.st.Deliveries(context.Background(), store.DeliveryFilter{})
	is.NoErr(err)                                        // list deliveries
	is.Equal(len(ds), 2)                                 // both deliveries are kept
	is.Equal(platformNotify(t, h, notify, seedOrcid), 1) // new events reach only the one left (merged into its pending row)
}

func TestPlatformDeactivate(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok, notify := platformTokens(t, h, "toggler")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/t","orcid":"`+seedOrcid+`"}`)
	is.Equal(platformNotify(t, h, notify, seedOrcid), 1)  // an active webhook gets a delivery
	is.Equal(platformNotify(t, h, notify, seedOrcidX), 0) // only for its record

	h.clock.Advance(time.Minute)
	var got platformRecord
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/deactivate", tok, ""), http.StatusOK, &got)
	is.Equal(got.Status, "deactivated")                                     // deactivated
	is.Equal(got.Reason, "")                                                // by its owner: no reason
	is.True(got.UpdatedAt.Equal(rec.CreatedAt.Add(time.Minute)))            // updatedAt moved
	is.Equal(platformGet(t, h, tok, rec.ID).Status, "deactivated")          // and stored
	is.Equal(platformList(t, h, tok, "").Webhooks[0].Status, "deactivated") // listed so

	ds := platformDeliveries(t, h, tok, rec.ID)
	is.Equal(len(ds), 1)             // the pending delivery
	is.Equal(ds[0].State, "dead")    // became dead (replayable)
	is.Equal(ds[0].Orcid, seedOrcid) // for the record

	is.Equal(platformNotify(t, h, notify, seedOrcid), 0)    // a deactivated webhook gets no deliveries
	is.Equal(len(platformDeliveries(t, h, tok, rec.ID)), 1) // none were made

	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/deactivate", tok, ""), http.StatusOK, &got)
	is.Equal(got.Status, "deactivated") // deactivating again is fine

	p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/replay", tok, `{"since":"2024-01-01T00:00:00Z"}`), http.StatusConflict)
	is.True(strings.Contains(p.Detail, "activate")) // replay asks to activate first

	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/activate", tok, ""), http.StatusOK, &got)
	is.Equal(got.Status, "active")                            // active again
	is.Equal(platformGet(t, h, tok, rec.ID).Status, "active") // and stored
	ds = platformDeliveries(t, h, tok, rec.ID)
	is.Equal(len(ds), 1)          // activating does not resend by itself
	is.Equal(ds[0].State, "dead") // the old delivery stays dead

	is.Equal(platformNotify(t, h, notify, seedOrcid), 1) // new events reach it again
	ds = platformDeliveries(t, h, tok, rec.ID)
	is.Equal(len(ds), 2)             // a new delivery
	is.Equal(ds[0].State, "pending") // newest first, pending
}

func TestPlatformDeliveriesAndReplayAPI(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok, notify := platformTokens(t, h, "replayer")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/r"}`)
	is.Equal(platformNotify(t, h, notify, seedOrcid), 1) // one delivery

	res := platformCall(t, h, http.MethodGet, platformPath+"/"+rec.ID+"/deliveries", tok, "")
	ds := platformDeliveries(t, h, tok, rec.ID)
	is.Equal(len(ds), 1) // listed
	d := ds[0]
	is.Equal(d.State, "pending")                               // not tried yet
	is.Equal(d.Orcid, seedOrcid)                               // for the record
	is.Equal(d.Type, "orcid.record.updated")                   // in the platform's words, as in the payload and types
	is.Equal(d.MessageID, "msg_"+strconv.FormatInt(d.ID, 10))  // the webhook-id it is sent with
	is.Equal(d.Events, 1)                                      // one event
	is.True(d.DueAt.Equal(h.clock.Now()))                      // due now (no coalescing window)
	is.Equal(len(d.AttemptsLog), 0)                            // no attempts
	is.True(bytes.Contains(res.body, []byte(`"attempts":[]`))) // an empty log is [], not null

	t.Run("replay needs since", func(t *testing.T) {
		is := is.New(t)
		for _, body := range []string{`{}`, ``} {
			res := platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/replay", tok, body)
			p := platformProblem(t, res, http.StatusBadRequest)
			if body == `{}` {
				is.Equal(p.Field, "since") // names since
			}
		}
		p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/replay", tok, `{"since":"yesterday"}`), http.StatusBadRequest)
		is.Equal(p.Field, "since")                   // names since
		is.True(!strings.Contains(p.Detail, "2006")) // never Go's time layout
		is.True(strings.Contains(p.Detail, "2h"))    // but the forms it takes
		platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/replay", tok, `{"since":"2024-01-01T00:00:00Z","id":1}`), http.StatusBadRequest)
		p = platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/replay", tok, `{"since":"1h","deliveryId":1}`), http.StatusBadRequest)
		is.Equal(p.Field, "deliveryId") // one or the other
		for _, c := range []struct{ body, field string }{
			{`{"since":"1h","webhook":"` + rec.ID + `"}`, "webhook"},
			{`{"since":"1h","client":"replayer"}`, "client"},
			{`{"since":"1h","org":1}`, "org"},
		} {
			p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/replay", tok, c.body), http.StatusBadRequest)
			is.Equal(p.Field, c.field) // the admin API's filters, named as given
			is.True(strings.HasPrefix(p.Detail, c.field+": "))
		}
	})
	t.Run("nothing failed: nothing replayed", func(t *testing.T) {
		is := is.New(t)
		var got struct {
			Replayed int `json:"replayed"`
		}
		platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/replay", tok, `{"since":"2024-01-01T00:00:00Z"}`), http.StatusAccepted, &got)
		is.Equal(got.Replayed, 0) // a pending delivery is not replayed
	})
	t.Run("bad state filter", func(t *testing.T) {
		platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"/"+rec.ID+"/deliveries?state=lost", tok, ""), http.StatusBadRequest)
	})
	t.Run("a query string that does not parse", func(t *testing.T) {
		is := is.New(t)
		for _, q := range []string{"state=dead;", "state=%zz", "%zz=1", "limit=5;x=1"} {
			p := platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"/"+rec.ID+"/deliveries?"+q, tok, ""), http.StatusBadRequest)
			is.True(strings.Contains(p.Detail, "the query string does not parse")) // not a filter dropped, and everything listed
		}
	})
	t.Run("no webhook id", func(t *testing.T) {
		platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"//deliveries", tok, ""), http.StatusNotFound) // not every webhook's
	})
	t.Run("a finished delivery has no dueAt", func(t *testing.T) {
		is := is.New(t)
		platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/deactivate", tok, ""), http.StatusOK, &platformRecord{})
		res := platformCall(t, h, http.MethodGet, platformPath+"/"+rec.ID+"/deliveries", tok, "")
		is.Equal(res.status, http.StatusOK) // listed
		var out struct {
			Deliveries []json.RawMessage `json:"deliveries"`
		}
		is.NoErr(json.Unmarshal(res.body, &out)) // deliveries
		is.Equal(len(out.Deliveries), 1)         // the one, now dead
		for _, k := range keysOf(t, out.Deliveries[0]) {
			is.True(k != "dueAt") // a dead delivery is due never: no "0001-01-01" dueAt
		}
	})
}

func TestPlatformRotateSecret(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "rotator", store.ScopeWebhook)
	tok := h.token(t, c, store.ScopeWebhook).AccessToken
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/r"}`)
	var got struct {
		SigningSecret            string    `json:"signingSecret"`
		PreviousSecretValidUntil time.Time `json:"previousSecretValidUntil"`
	}
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/rotate-secret", tok, ""), http.StatusOK, &got)
	is.True(strings.HasPrefix(got.SigningSecret, "whsec_"))                                                               // a new whsec_ secret
	is.True(got.SigningSecret != rec.SigningSecret)                                                                       // different from the first
	is.True(got.PreviousSecretValidUntil.Equal(h.clock.Now().Add(store.SecretOverlap)))                                   // the old one signs for 24 h more
	is.True(!bytes.Contains(platformCall(t, h, http.MethodGet, platformPath+"/"+rec.ID, tok, "").body, []byte("whsec_"))) // GET still shows no secret

	// A second rotation within the overlap would drop the first old secret before
	// the time promised: it is refused, saying until when, and changes nothing.
	h.clock.Advance(30 * time.Minute)
	p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/rotate-secret", tok, ""), http.StatusConflict)
	is.True(strings.Contains(p.Detail, "the secret the last rotation replaced still signs until 2024-03-02T12:00:00Z, as that rotation promised: rotate again from then")) // until when
	is.Equal(p.Field, "revokePrevious")                                                                                                                                    // the field that makes it now
	is.True(strings.Contains(p.Detail, `({"revokePrevious": true})`))                                                                                                      // and how to give it
	h.clock.Advance(store.SecretOverlap - 30*time.Minute)
	tok = h.token(t, c, store.ScopeWebhook).AccessToken
	again := got
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/rotate-secret", tok, ""), http.StatusOK, &again) // once the overlap is over
	is.True(again.SigningSecret != got.SigningSecret)

	// A body that is not the call's is refused, saying why, and rotates nothing; an
	// empty one, whatever its type, is the call without a body.
	for body, want := range map[string]string{
		`{"revokePrevious": "yes"}`: "revokePrevious",
		`{"revoke": true}`:          "revoke",
		`[true]`:                    "request body must be",
	} {
		p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/rotate-secret", tok, body), http.StatusBadRequest)
		is.True(strings.Contains(p.Field+" "+p.Detail, want)) // names what is wrong
	}
	p = platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/rotate-secret", tok, " ", "Content-Type", "application/x-www-form-urlencoded"), http.StatusConflict)
	is.True(strings.Contains(p.Detail, "or revoke both old secrets with this rotation")) // still in the overlap: nothing rotated; and how to end it

	// A secret that leaked: the rotation revokes the old ones at once, during an
	// overlap too, and says no time.
	res := platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/rotate-secret", tok, `{"revokePrevious": true}`)
	revoked := got
	platformOK(t, res, http.StatusOK, &revoked)
	is.True(revoked.SigningSecret != again.SigningSecret && strings.HasPrefix(revoked.SigningSecret, "whsec_"))
	is.Equal(keysOf(t, res.body), []string{"signingSecret"}) // no previousSecretValidUntil
	next := got
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/rotate-secret", tok, "{}"), http.StatusOK, &next) // no overlap left to wait for
	is.True(next.PreviousSecretValidUntil.Equal(h.clock.Now().Add(store.SecretOverlap)))
}

// TestPlatformRotateSecretRefusalTime: the time a second rotation's 409 gives is
// the first second a rotation is taken at. The overlap a rotation promises keeps
// milliseconds (…:00.961Z); the refusal said …:00Z, so a rotation at …:00Z, as
// told, was refused again.
func TestPlatformRotateSecretRefusalTime(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	h.clock.Advance(961 * time.Millisecond)
	c := h.client(t, "rotator", store.ScopeWebhook)
	tok := h.token(t, c, store.ScopeWebhook).AccessToken
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/r"}`)
	var got struct {
		SigningSecret            string    `json:"signingSecret"`
		PreviousSecretValidUntil time.Time `json:"previousSecretValidUntil"`
	}
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/rotate-secret", tok, ""), http.StatusOK, &got)
	is.Equal(got.PreviousSecretValidUntil.Format(time.RFC3339Nano), "2024-03-02T12:00:00.961Z") // the promise, to the millisecond

	h.clock.Advance(store.SecretOverlap - 1*time.Millisecond) // 2024-03-02T12:00:00.960Z
	tok = h.token(t, c, store.ScopeWebhook).AccessToken
	p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/rotate-secret", tok, ""), http.StatusConflict)
	is.True(strings.Contains(p.Detail, "still signs until 2024-03-02T12:00:01Z, as that rotation promised: rotate again from then")) // the second it is taken at
	h.clock.Advance(40 * time.Millisecond)                                                                                           // 2024-03-02T12:00:01Z, as told
	tok = h.token(t, c, store.ScopeWebhook).AccessToken
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/rotate-secret", tok, ""), http.StatusOK, &got) // taken
}

// platformSecretsHarness is newHarness on a store at a path the test knows, so it
// can read the database file.
func platformSecretsHarness(tb testing.TB, path string) *harness {
	tb.Helper()
	is := is.New(tb)
	box, err := secret.LoadKeyFile(filepath.Join(filepath.Dir(path), "key"), true)
	is.NoErr(err) // create the secret key
	st, err := store.Open(context.Background(), store.Options{Path: path, Box: box})
	is.NoErr(err) // open store
	tb.Cleanup(func() { st.Close() })
	clk := newClock(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC))
	st.Now = clk.Now
	opts := httpapi.Options{Store: st, TokenTTL: time.Hour}
	srv := httptest.NewServer(httpapi.NewServer(opts).Handler())
	tb.Cleanup(srv.Close)
	return &harness{st: st, clock: clk, srv: srv, http: srv.Client(), opts: opts}
}

func TestPlatformSecretsAtRest(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "hookd.db")
	h := platformSecretsHarness(t, path)
	c := h.client(t, "at-rest", store.ScopeWebhook)
	tok := h.token(t, c, store.ScopeWebhook).AccessToken

	basic := platformCreate(t, h, tok, `{"targetURL":"https://example.com/b","auth":{"type":"basic","username":"user-b","password":"pw-SECRET-basic-123"}}`)
	cc := platformCreate(t, h, tok, `{"targetURL":"https://example.com/c","auth":{"type":"client_credential","clientID":"cid-c","clientSecret":"cs-SECRET-cc-456","tokenURL":"https://auth.example.com/t"}}`)
	patched := platformCreate(t, h, tok, `{"targetURL":"https://example.com/p"}`)
	platformOK(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+patched.ID, tok,
		`{"auth":{"type":"basic","username":"user-p","password":"pw-SECRET-patched-789"}}`), http.StatusOK, &platformRecord{})
	var rotated struct {
		SigningSecret            string    `json:"signingSecret"`
		PreviousSecretValidUntil time.Time `json:"previousSecretValidUntil"`
	}
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+basic.ID+"/rotate-secret", tok, ""), http.StatusOK, &rotated)

	secrets := []string{"pw-SECRET-basic-123", "cs-SECRET-cc-456", "pw-SECRET-patched-789", c.Secret, tok}
	for _, s := range []string{basic.SigningSecret, cc.SigningSecret, patched.SigningSecret, rotated.SigningSecret, c.SigningSecret} {
		key, err := secret.SigningKey(s)
		is.NoErr(err) // signing secret decodes
		secrets = append(secrets, s, strings.TrimPrefix(s, "whsec_"), string(key))
	}
	check := func(when string) {
		t.Helper()
		var files int
		for _, f := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(f)
			if os.IsNotExist(err) {
				continue
			}
			is.NoErr(err) // read the database file
			files++
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s: %s holds the secret %.12q… in clear", when, filepath.Base(f), s)
				}
			}
		}
		is.True(files > 0) // something was read
	}
	check("while open")
	is.NoErr(h.st.Close()) // close the store (checkpoints the WAL)
	check("after close")
}

// TestPlatformDeliveriesOfAnOrcidRegistration: the routes under one webhook id
// agree: the id of one of the caller's ORCID-style registrations is not a
// platform webhook's, for its deliveries as for itself (their history is under
// /orcid-webhooks/deliveries).
func TestPlatformDeliveriesOfAnOrcidRegistration(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok, notify := platformTokens(t, h, "mixed")
	res := h.do(t, http.MethodPut, webhookPath(seedOrcid, seedSegment), tok)
	is.Equal(res.status, http.StatusCreated) // ORCID-style registration
	platformNotify(t, h, notify, seedOrcid)
	var uid string
	for _, s := range h.allSubscriptions(t) {
		uid = s.UID
	}
	platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"/"+uid, tok, ""), http.StatusNotFound) // not a platform webhook
	platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+uid+"/replay", tok, `{"since":"1h"}`), http.StatusNotFound)
	platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"/"+uid+"/deliveries", tok, ""), http.StatusNotFound)   // nor its deliveries
	platformProblem(t, platformCall(t, h, http.MethodGet, platformPath+"/"+uid+"/deliveries/1", tok, ""), http.StatusNotFound) // nor one of them
}

// TestPlatformListCursorAfterRemovals: a webhook registered between two pages of
// the list is on the next page, also when the webhooks after the cursor were removed
// meanwhile (its id is never one a removed webhook had).
func TestPlatformListCursorAfterRemovals(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "pager")
	a := platformCreate(t, h, tok, `{"targetURL":"https://example.com/a"}`)
	b := platformCreate(t, h, tok, `{"targetURL":"https://example.com/b"}`)
	c := platformCreate(t, h, tok, `{"targetURL":"https://example.com/c"}`)

	p1 := platformList(t, h, tok, "limit=2")
	is.Equal(len(p1.Webhooks), 2)
	is.Equal(p1.Webhooks[0].ID, a.ID)
	is.Equal(p1.Webhooks[1].ID, b.ID)
	is.True(p1.NextCursor != "") // c is on the next page

	// Between the pages: b and c are deleted, d is registered.
	is.Equal(platformCall(t, h, http.MethodDelete, platformPath+"/"+b.ID, tok, "").status, http.StatusNoContent)
	is.Equal(platformCall(t, h, http.MethodDelete, platformPath+"/"+c.ID, tok, "").status, http.StatusNoContent)
	d := platformCreate(t, h, tok, `{"targetURL":"https://example.com/d"}`)

	p2 := platformList(t, h, tok, "limit=2&cursor="+p1.NextCursor)
	var got []string
	for _, w := range p2.Webhooks {
		got = append(got, w.ID)
	}
	is.Equal(got, []string{d.ID}) // the new one, on the next page
}

// TestPlatformAuthExtraFieldNamedAlike: an auth object with several fields its type
// does not use is refused naming the first of them in the document's order, the
// same one every time.
func TestPlatformAuthExtraFieldNamedAlike(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "extra-fields")
	body := `{"targetURL":"https://example.com/x","auth":{"type":"noauth","tokenURL":"https://a.example.com/t","clientSecret":"cs","clientID":"c","password":"pw","username":"u"}}`
	for range 20 {
		p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath, tok, body), http.StatusBadRequest)
		is.Equal(p.Field, "auth.username")
	}
}

// TestPlatformHostsWrittenOtherwise: a target or token URL whose host no resolver
// answers for (an empty label), or whose host is loopback or link-local written in
// full-width digits, is refused at registration, naming the field.
func TestPlatformHostsWrittenOtherwise(t *testing.T) {
	h := newHarness(t)
	tok := h.webhookToken(t, "hosts")
	for _, target := range []string{"http://localhost../x", "http://127.0.0.1../x", "https://１２７．０．０．１/x", "https://１６９．２５４．１６９．２５４/latest/meta-data"} {
		t.Run(target, func(t *testing.T) {
			is := is.New(t)
			p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath, tok, `{"targetURL":"`+target+`"}`), http.StatusBadRequest)
			is.Equal(p.Field, "targetURL")
			p = platformProblem(t, platformCall(t, h, http.MethodPost, platformPath, tok,
				`{"targetURL":"https://example.com/x","auth":{"type":"client_credential","clientID":"c","clientSecret":"s","tokenURL":"`+target+`"}}`), http.StatusBadRequest)
			is.Equal(p.Field, "auth.tokenURL")
		})
	}
	platformCreate(t, h, tok, `{"targetURL":"https://bücher.example/hook"}`) // a name in another script is a name
}

// TestPlatformBodylessCallsRefuseABody: deactivate, activate and DELETE take no body;
// one that comes is refused, naming its field, and changes nothing (a deactivation's
// "reason" would otherwise be dropped without a word). An empty body is no body.
func TestPlatformBodylessCallsRefuseABody(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "bodyless")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/x"}`)
	p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/deactivate", tok, `{"reason":"maintenance window"}`), http.StatusBadRequest)
	is.Equal(p.Field, "reason")
	is.True(strings.Contains(p.Detail, "this call takes no body"))
	is.Equal(platformGet(t, h, tok, rec.ID).Status, "active") // unchanged
	p = platformProblem(t, platformCall(t, h, http.MethodDelete, platformPath+"/"+rec.ID, tok, `{"force":true}`), http.StatusBadRequest)
	is.Equal(p.Field, "force")
	is.Equal(platformGet(t, h, tok, rec.ID).Status, "active") // still there
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/deactivate", tok, "{}"), http.StatusOK, &platformRecord{})
	platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/activate", tok, "[]"), http.StatusBadRequest)
	is.Equal(platformGet(t, h, tok, rec.ID).Status, "deactivated")
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/activate", tok, " \n", "Content-Type", "application/x-www-form-urlencoded"), http.StatusOK, &platformRecord{})
	is.Equal(platformGet(t, h, tok, rec.ID).Status, "active")
}

// TestAPIEncodedSlashIsNoSeparator: an encoded slash (%2F) in a path of hookd's
// API is no path separator: "{id}%2Fdeactivate" is no webhook id, and is a 404
// that changes nothing, where the router, reading the decoded path, used to
// deactivate the webhook.
func TestAPIEncodedSlashIsNoSeparator(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "slashes")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/x"}`)
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, platformPath + "/" + rec.ID + "%2Fdeactivate"},
		{http.MethodPost, platformPath + "/" + rec.ID + "%2fdeactivate"},
		{http.MethodDelete, platformPath + "%2F" + rec.ID},
		{http.MethodGet, "/api/notifications/v1%2Fwebhooks"},
	} {
		p := platformProblem(t, platformCall(t, h, c.method, c.path, tok, ""), http.StatusNotFound)
		is.True(strings.Contains(p.Detail, "%2F")) // says why
	}
	got := platformGet(t, h, tok, rec.ID)
	is.Equal(got.Status, "active") // neither deactivated nor deleted
}

// TestPlatformTypesOnce: a types list that names one type twice, in either of its
// names, is refused naming the repeat.
func TestPlatformTypesOnce(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "dup-types")
	p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath, tok, `{"targetURL":"https://example.com/x","types":["orcid.record.updated","orcid.record.created","UPDATED"]}`), http.StatusBadRequest)
	is.Equal(p.Field, "types[2]")
	is.True(strings.Contains(p.Detail, "types[0] again"))
}

// TestPlatformBodiesThatSayNothing: what clients send for no body (null from a
// JSON encoder, {} with curl -d's form type or as text) is no body, for the calls
// that take none and for rotate-secret's optional one.
func TestPlatformBodiesThatSayNothing(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "bodyless-none")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/x"}`)
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/deactivate", tok, "null"), http.StatusOK, &platformRecord{})
	is.Equal(platformGet(t, h, tok, rec.ID).Status, "deactivated")
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/activate", tok, "{}", "Content-Type", "application/x-www-form-urlencoded"), http.StatusOK, &platformRecord{})
	for _, c := range []struct{ body, ct string }{{"null", "application/json"}, {"{}", "application/x-www-form-urlencoded"}} {
		one := platformCreate(t, h, tok, `{"targetURL":"https://example.com/y"}`)
		var got struct {
			SigningSecret            string    `json:"signingSecret"`
			PreviousSecretValidUntil time.Time `json:"previousSecretValidUntil"`
		}
		platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+one.ID+"/rotate-secret", tok, c.body, "Content-Type", c.ct), http.StatusOK, &got)
		is.True(strings.HasPrefix(got.SigningSecret, "whsec_"))
	}
	is.Equal(platformCall(t, h, http.MethodDelete, platformPath+"/"+rec.ID, tok, "{}", "Content-Type", "text/plain").status, http.StatusNoContent)
	p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/activate", tok, "reason=x", "Content-Type", "application/x-www-form-urlencoded"), http.StatusBadRequest)
	is.True(strings.Contains(p.Detail, "this call takes no body")) // a form that says something is no empty body
}

// TestSeveralAuthorizationHeadersRefused: a request with two Authorization
// headers is refused, in each family's body, whichever of them holds: taking the
// first would be a guess at which credentials the caller meant.
func TestSeveralAuthorizationHeadersRefused(t *testing.T) {
	h := newHarness(t)
	tok := h.webhookToken(t, "two-headers")
	for _, path := range []string{platformPath, "/" + seedOrcid + "/webhook"} {
		for _, second := range []string{"Bearer " + tok, "Bearer not-a-token"} {
			t.Run(path+" "+second, func(t *testing.T) {
				is := is.New(t)
				req, err := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
				is.NoErr(err) // make request
				req.Header.Add("Authorization", "Bearer "+tok)
				req.Header.Add("Authorization", second)
				res := h.send(t, req)
				is.Equal(res.status, http.StatusUnauthorized)                                  // refused
				is.True(strings.Contains(string(res.body), "one Authorization header"))        // saying why
				is.True(strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer realm")) // and how to authenticate
			})
		}
	}
}

// TestPlatformCreateIdempotencyKey: a creation repeated with its Idempotency-Key (a
// client retrying after a lost answer) creates nothing more and answers the webhook
// the first one created, with its signing secret; the key sent with other fields, or
// once its webhook was removed, is a 422 naming the key that creates nothing.
func TestPlatformCreateIdempotencyKey(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "retrier", store.ScopeWebhook, store.ScopeNotify)
	tok, notify := h.token(t, c, store.ScopeWebhook).AccessToken, h.token(t, c, store.ScopeNotify).AccessToken
	body := `{"targetURL":"https://example.com/once","auth":{"type":"basic","username":"u","password":"p"}}`
	create := func(body, key string) response {
		return platformCall(t, h, http.MethodPost, platformPath, tok, body, "Idempotency-Key", key)
	}
	var first, again platformRecord
	res := create(body, "create-1")
	platformOK(t, res, http.StatusOK, &first)
	is.Equal(res.header.Get("Idempotent-Replayed"), "") // a first answer
	h.clock.Advance(time.Minute)
	res = create(body, "create-1")
	platformOK(t, res, http.StatusOK, &again)
	is.Equal(res.header.Get("Idempotent-Replayed"), "true") // the answer to a repeat
	is.Equal(again.ID, first.ID)                            // the same webhook
	is.Equal(again.SigningSecret, first.SigningSecret)      // with its signing secret
	is.Equal(len(platformList(t, h, tok, "").Webhooks), 1)  // and no second one
	is.Equal(platformNotify(t, h, notify, seedOrcid), 1)    // an event reaches it once

	for _, tt := range []struct{ name, body string }{
		{"other target", `{"targetURL":"https://example.com/other","auth":{"type":"basic","username":"u","password":"p"}}`},
		{"other password", `{"targetURL":"https://example.com/once","auth":{"type":"basic","username":"u","password":"q"}}`},
	} {
		p := platformProblem(t, create(tt.body, "create-1"), http.StatusUnprocessableEntity)
		is.Equal(p.Field, "Idempotency-Key")                   // names the key
		is.Equal(len(platformList(t, h, tok, "").Webhooks), 1) // nothing created
	}
	other := h.webhookToken(t, "someone-else")
	var theirs platformRecord
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath, other, body, "Idempotency-Key", "create-1"), http.StatusOK, &theirs)
	is.True(theirs.ID != first.ID) // keys are per client

	is.Equal(platformCall(t, h, http.MethodDelete, platformPath+"/"+first.ID, tok, "").status, http.StatusNoContent)
	p := platformProblem(t, create(body, "create-1"), http.StatusUnprocessableEntity)
	is.Equal(p.Field, "Idempotency-Key")                   // its webhook was removed
	is.True(strings.Contains(p.Detail, first.ID))          // which it names
	is.Equal(len(platformList(t, h, tok, "").Webhooks), 0) // and nothing is created

	h.clock.Advance(store.IdempotencyWindow)
	tok = h.token(t, c, store.ScopeWebhook).AccessToken
	var later platformRecord
	platformOK(t, create(body, "create-1"), http.StatusOK, &later)
	is.True(later.ID != first.ID) // after 24 h the key makes a new one

	p = platformProblem(t, platformCall(t, h, http.MethodPost, platformPath, tok, body, "Idempotency-Key", strings.Repeat("k", 201)), http.StatusBadRequest)
	is.Equal(p.Field, "Idempotency-Key") // a key too long
}

// TestBodyTooLarge: a body over its route's limit is refused with 413 Content Too
// Large, in the problem body, saying the limit, and changes nothing; one at the
// limit is read.
func TestBodyTooLarge(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	c := h.client(t, "sender", store.ScopeWebhook, store.ScopeNotify)
	tok := h.token(t, c, store.ScopeWebhook+" "+store.ScopeNotify).AccessToken
	admin := h.token(t, h.client(t, "admin", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.org/hook"}`)
	orgs := "/api/hub/v1/organisations"
	res := h.hubReq(t, http.MethodPost, orgs, admin, `{"name": "Uni", "tech-contact-email": "tech@uni.example"}`)
	is.Equal(res.status, http.StatusCreated) // an organisation
	var org orgBody
	decodeJSON(t, res.body, &org)
	one := fmt.Sprintf("%s/%d", orgs, org.ID)

	// padded is a JSON object of n bytes or more: a description that long.
	padded := func(n int, fields string) string {
		return `{` + fields + `"description":"` + strings.Repeat("d", n) + `"}`
	}
	for _, tt := range []struct {
		name, method, path, token, body string
		limit                           int
	}{
		{"create a webhook", http.MethodPost, platformPath, tok, padded(64<<10, `"targetURL":"https://example.org/big",`), 64 << 10},
		{"change a webhook", http.MethodPatch, platformPath + "/" + rec.ID, tok, padded(64<<10, ""), 64 << 10},
		{"a call that takes no body", http.MethodPost, platformPath + "/" + rec.ID + "/deactivate", tok, padded(64<<10, ""), 64 << 10},
		{"replay", http.MethodPost, platformPath + "/" + rec.ID + "/replay", tok, padded(4<<10, `"since":"2h",`), 4 << 10},
		{"events", http.MethodPost, "/api/notifications/v1/events", tok, "[" + strings.Repeat(`{"orcid":"0000-0002-7253-3645"},`, 40000) + "{}]", 1 << 20},
		{"an organisation's settings", http.MethodPut, one + "/webhook", admin, padded(64<<10, `"url":"https://hooks.uni.example/orcid",`), 64 << 10},
		{"a member", http.MethodPut, one + "/members/0000-0002-7253-3645", admin, padded(64<<10, ""), 64 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			p := platformProblem(t, platformCall(t, h, tt.method, tt.path, tt.token, tt.body), http.StatusRequestEntityTooLarge)
			is.True(strings.HasPrefix(p.Detail, fmt.Sprintf("request body is larger than %d bytes", tt.limit))) // says the limit
		})
	}
	got := platformGet(t, h, tok, rec.ID)
	is.Equal(got.Status, "active") // nothing changed: not deactivated
	subs := h.allSubscriptions(t)
	is.Equal(len(subs), 1) // nor another webhook, nor the organisation's
	ds, err := h.st.Deliveries(context.Background(), store.DeliveryFilter{})
	is.NoErr(err)
	is.Equal(len(ds), 0) // nor any event taken
	res = h.hubReq(t, http.MethodGet, one+"/members", admin, "")
	is.True(!strings.Contains(string(res.body), "0000-0002-7253-3645")) // nor a member
}

// TestPlatformReplayOrcidAsURL: a replay's orcid may be the record's
// https://orcid.org/ URL, as a webhook's orcid and the deliveries list's may; one
// that holds no iD is refused, naming orcid, and replays nothing (read as no
// filter, it would replay every record's deliveries).
func TestPlatformReplayOrcidAsURL(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok, notify := platformTokens(t, h, "replayer")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/r"}`)
	is.Equal(platformNotify(t, h, notify, seedOrcid), 1) // one delivery
	replay := platformPath + "/" + rec.ID + "/replay"
	// Deactivated, its pending delivery is dead; activated, it can be replayed.
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/deactivate", tok, ""), http.StatusOK, &platformRecord{})
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+rec.ID+"/activate", tok, ""), http.StatusOK, &platformRecord{})
	is.Equal(platformDeliveries(t, h, tok, rec.ID)[0].State, "dead")

	for _, orcid := range []string{"https://orcid.org/", "   "} {
		p := platformProblem(t, platformCall(t, h, http.MethodPost, replay, tok, `{"since":"1h","orcid":"`+orcid+`"}`), http.StatusBadRequest)
		is.Equal(p.Field, "orcid")                                       // names orcid
		is.True(strings.Contains(p.Detail, "is not an ORCID iD"))        // saying why
		is.Equal(platformDeliveries(t, h, tok, rec.ID)[0].State, "dead") // nothing replayed
	}
	var got struct {
		Replayed int `json:"replayed"`
	}
	platformOK(t, platformCall(t, h, http.MethodPost, replay, tok, `{"since":"1h","orcid":"https://orcid.org/`+seedOrcid+`"}`), http.StatusAccepted, &got)
	is.Equal(got.Replayed, 1)                                           // the record's delivery
	is.Equal(platformDeliveries(t, h, tok, rec.ID)[0].State, "pending") // due again
}

// TestRotateSecretNullFlag: a rotation's "revoke previous" flag given as null is
// refused, naming it, and rotates nothing, on the platform API and the Hub API
// alike: read as false, a null meant as true (a script's unset variable, for a
// secret that leaked) would leave the old secret signing for a day.
func TestRotateSecretNullFlag(t *testing.T) {
	h := newHarness(t)
	t.Run("platform", func(t *testing.T) {
		is := is.New(t)
		tok := h.webhookToken(t, "rotator")
		rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/r"}`)
		rotate := platformPath + "/" + rec.ID + "/rotate-secret"
		for _, body := range []string{`{"revokePrevious": null}`, `{"revokePrevious":null}`} {
			p := platformProblem(t, platformCall(t, h, http.MethodPost, rotate, tok, body), http.StatusBadRequest)
			is.Equal(p.Field, "revokePrevious")                                              // names the flag
			is.True(strings.Contains(p.Detail, "is null: give true to stop the old secret")) // and what to give
		}
		var got struct {
			SigningSecret            string    `json:"signingSecret"`
			PreviousSecretValidUntil time.Time `json:"previousSecretValidUntil"`
		}
		platformOK(t, platformCall(t, h, http.MethodPost, rotate, tok, ""), http.StatusOK, &got) // nothing rotated before: no 409
		is.True(!got.PreviousSecretValidUntil.IsZero())
		platformProblem(t, platformCall(t, h, http.MethodPost, rotate, tok, "null"), http.StatusConflict) // a null body is still no body
	})
	t.Run("organisation", func(t *testing.T) {
		is := is.New(t)
		admin := h.token(t, h.client(t, "admin", store.ScopeAdmin), store.ScopeAdmin).AccessToken
		const orgs = "/api/hub/v1/organisations"
		res := h.hubReq(t, http.MethodPost, orgs, admin, `{"name": "Uni", "tech-contact-email": "it@uni.example"}`)
		is.Equal(res.status, http.StatusCreated)
		var o orgBody
		decodeJSON(t, res.body, &o)
		one := fmt.Sprintf("%s/%d", orgs, o.ID)
		is.Equal(h.hubReq(t, http.MethodPut, one+"/webhook", admin, `{"enabled": true, "url": "https://hooks.uni.example/orcid"}`).status, http.StatusCreated)
		p := problemOf(t, h.hubReq(t, http.MethodPost, one+"/webhook/rotate-secret", admin, `{"revoke-previous": null}`), http.StatusBadRequest, "revoke-previous")
		is.True(strings.Contains(p.Detail, "leave revoke-previous out"))                                      // in this API's words
		is.Equal(h.hubReq(t, http.MethodPost, one+"/webhook/rotate-secret", admin, "").status, http.StatusOK) // nothing rotated before
	})
}

// TestMalformedBearerHeader: an Authorization header of the Bearer scheme that is
// not "Bearer" 1*SP token (RFC 6750 §2.1) is a 401 invalid_request that says what
// is wrong with it, with WWW-Authenticate naming the error, on every bearer route
// in its own body, and never echoes the token; spaces before the token are fine.
func TestMalformedBearerHeader(t *testing.T) {
	h := newHarness(t)
	tok := h.webhookToken(t, "malformed")
	for _, path := range []string{platformPath, "/" + seedOrcid + "/webhook"} {
		for header, want := range map[string]string{
			"Bearer " + tok + " extra": "more than the token follows Bearer",
			"Bearer\t" + tok:           "a tab separates Bearer from the token",
			"bearer \t" + tok:          "a tab separates Bearer from the token",
			"Bearer " + tok + "\tx":    "more than the token follows Bearer",
		} {
			t.Run(path+" "+strings.ReplaceAll(header, tok, "TOKEN"), func(t *testing.T) {
				is := is.New(t)
				res := h.doRaw(t, http.MethodGet, path, "", "Authorization", header)
				is.Equal(res.status, http.StatusUnauthorized)                                                 // refused
				is.Equal(res.header.Get("WWW-Authenticate"), `Bearer realm="hookd", error="invalid_request"`) // as for two headers
				is.True(strings.Contains(string(res.body), "The Authorization header is malformed: "+want))   // saying what is wrong
				is.True(!strings.Contains(string(res.body), tok))                                             // not the token
				if strings.HasPrefix(path, "/api/") {
					is.Equal(res.header.Get("Content-Type"), "application/problem+json") // the route's own body
				} else {
					is.True(strings.Contains(string(res.body), `"error":"invalid_request"`)) // OAuth's, as ORCID answers
				}
			})
		}
		t.Run(path+" spaces", func(t *testing.T) {
			res := h.doRaw(t, http.MethodGet, path, "", "Authorization", "Bearer   "+tok)
			is.New(t).Equal(res.status, http.StatusOK) // 1*SP
		})
	}
}

// TestHiddenCharactersRefused: a webhook's description, or an organisation's name,
// with a direction control (U+202E turns the text after it around in the console)
// or a zero-width character (two texts that differ look alike) is a 400 naming the
// field, the character and its byte, and changes nothing; Persian's zero-width
// non-joiner between its letters is text.
func TestHiddenCharactersRefused(t *testing.T) {
	h := newHarness(t)
	tok := h.webhookToken(t, "hidden")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/h","description":"nightly sync"}`)
	for desc, want := range map[string]string{
		`abc\u202eevil`:      "description: has a direction control character (U+202E) at byte 3",
		`abc\u2067x`:         "description: has a direction control character (U+2067) at byte 3",
		`nightly\u200b sync`: "description: has a zero-width character (U+200B) at byte 7, which shows as nothing: remove it",
		`\ufeffnightly sync`: "description: has a zero-width character (U+FEFF) at byte 0, which shows as nothing: remove it",
		`night\u200dly sync`: "description: has a zero-width character (U+200D) at byte 5, which shows as nothing: remove it",
		"line one\n\u202ex":  "description: has a direction control character (U+202E) at byte 9",
	} {
		t.Run(desc, func(t *testing.T) {
			is := is.New(t)
			body := `{"targetURL":"https://example.com/h2","description":"` + strings.ReplaceAll(desc, "\n", `\n`) + `"}`
			p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath, tok, body), http.StatusBadRequest)
			is.Equal(p.Field, "description") // names the field
			is.Equal(p.Detail, want)         // the character and where it is
			p = platformProblem(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok, `{"description":"`+strings.ReplaceAll(desc, "\n", `\n`)+`"}`), http.StatusBadRequest)
			is.Equal(p.Field, "description")                                     // so for a change
			is.Equal(platformGet(t, h, tok, rec.ID).Description, "nightly sync") // which changes nothing
		})
	}
	is := is.New(t)
	is.Equal(len(platformList(t, h, tok, "").Webhooks), 1) // none was created
	persian := "همگام\u200cسازی شبانه"
	is.Equal(platformCreate(t, h, tok, `{"targetURL":"https://example.com/fa","description":"`+persian+`"}`).Description, persian) // text

	admin := h.token(t, h.client(t, "admin", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	const orgs = "/api/hub/v1/organisations"
	p := problemOf(t, h.hubReq(t, http.MethodPost, orgs, admin, `{"name": "Uni\u200bversity", "tech-contact-email": "it@uni.example"}`), http.StatusBadRequest, "name")
	is.Equal(p.Detail, "name: has a zero-width character (U+200B) at byte 3, which shows as nothing: remove it") // a name, as a description
}

// TestHiddenCharactersKeptWhenResent: a webhook's description and a member's name
// and eppn that an older hookd stored with a zero-width character or a direction
// control are taken when sent again unchanged (a PATCH that sends the whole
// webhook back, a Hub sync that PUTs the member again): they were refused, so
// automation sending back what hookd answered failed after an upgrade. A new or
// changed value with such a character is still refused, and changes nothing.
func TestHiddenCharactersKeptWhenResent(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "kept")
	rec := platformCreate(t, h, tok, `{"targetURL":"https://example.com/h","description":"nightly sync"}`)
	admin := h.token(t, h.client(t, "admin", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	const orgs = "/api/hub/v1/organisations"
	var org orgBody
	res := h.hubReq(t, http.MethodPost, orgs, admin, `{"name": "Uni", "tech-contact-email": "it@uni.example"}`)
	is.Equal(res.status, http.StatusCreated)
	decodeJSON(t, res.body, &org)
	member := fmt.Sprintf("%s/%d/members/%s", orgs, org.ID, seedOrcid)
	is.Equal(h.hubReq(t, http.MethodPut, member, admin, `{"name": "Ann Lee", "eppn": "ann@uni"}`).status, http.StatusCreated)

	const desc, name, eppn = "nightly\u200b sync \u202eevil", "Ann\u200b Lee", "ann\u2060@uni"
	db, err := sql.Open("sqlite", "file:"+h.path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	_, err = db.Exec("UPDATE subscriptions SET description = ? WHERE uid = ?", desc, rec.ID) // as an older hookd took them
	is.NoErr(err)
	_, err = db.Exec("UPDATE members SET name = ?, eppn = ?", name, eppn)
	is.NoErr(err)
	is.NoErr(db.Close())

	got := platformGet(t, h, tok, rec.ID)
	is.Equal(got.Description, desc)
	whole, err := json.Marshal(map[string]any{"targetURL": got.TargetURL, "description": got.Description})
	is.NoErr(err)
	var patched platformRecord
	platformOK(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok, string(whole)), http.StatusOK, &patched)
	is.Equal(patched.Description, desc) // sent back unchanged: taken

	p := platformProblem(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+rec.ID, tok, `{"description":"nightly\u200b sync"}`), http.StatusBadRequest)
	is.Equal(p.Field, "description") // a changed one is refused
	is.Equal(p.Detail, "description: has a zero-width character (U+200B) at byte 7, which shows as nothing: remove it")
	is.Equal(platformGet(t, h, tok, rec.ID).Description, desc) // and changes nothing
	p = platformProblem(t, platformCall(t, h, http.MethodPost, platformPath, tok, `{"targetURL":"https://example.com/h2","description":"nightly\u200b sync \u202eevil"}`), http.StatusBadRequest)
	is.Equal(p.Field, "description") // a new webhook's too, the same text as another's

	sync := `{"name": "Ann\u200b Lee", "email": "ann@uni.example", "eppn": "ann\u2060@uni"}`
	is.Equal(h.hubReq(t, http.MethodPut, member, admin, sync).status, http.StatusNoContent) // the Hub's sync: taken
	ms, err := h.st.Members(context.Background(), org.ID)
	is.NoErr(err)
	is.Equal(len(ms), 1)
	is.Equal([]string{ms[0].Name, ms[0].Email, ms[0].EPPN}, []string{name, "ann@uni.example", eppn})

	pb := problemOf(t, h.hubReq(t, http.MethodPut, member, admin, `{"name": "Ann\u200b Lea"}`), http.StatusBadRequest, "name")
	is.Equal(pb.Detail, "name: has a zero-width character (U+200B) at byte 3, which shows as nothing: remove it") // changed: refused
	problemOf(t, h.hubReq(t, http.MethodPut, member, admin, `{"eppn": "ann@uni\u200b"}`), http.StatusBadRequest, "eppn")
	problemOf(t, h.hubReq(t, http.MethodPut, fmt.Sprintf("%s/%d/members/%s", orgs, org.ID, seedOrcidX), admin, sync), http.StatusBadRequest, "name") // a new member's
	ms, err = h.st.Members(context.Background(), org.ID)
	is.NoErr(err)
	is.Equal(len(ms), 1)
	is.Equal([]string{ms[0].Name, ms[0].EPPN}, []string{name, eppn}) // nothing changed
}
