package dispatch

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestRedact: every form in which a sent secret can come back, and
// credential-shaped values hookd did not send, are replaced; other text stays.
func TestRedact(t *testing.T) {
	const (
		user     = "svc-user"
		password = `p&ss wörd<"42">`
		clientID = "cb app"
		secret   = "cs+SECRET/9=="
		token    = "tok-7f3a9c1e5b"
		apikey   = "hub-KEY-0a1b2c3d"
	)
	var s sent
	s.addBasic(user, password)
	s.addClient(clientID, secret)
	s.add(token, apikey, "")
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	clientBasic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(secret)))

	tests := []struct {
		name, in string
		gone     []string // none of these may be left
		kept     []string // these must be left
	}{
		{"plain", "password was " + password + " and token " + token, []string{password, token}, []string{"password was", "and token"}},
		{"form echo", "client_id=" + url.QueryEscape(clientID) + "&client_secret=" + url.QueryEscape(secret) + "&grant_type=client_credentials",
			[]string{url.QueryEscape(secret), secret}, []string{"grant_type=client_credentials", "client_id=cb+app"}},
		{"basic header echo", "Authorization: Basic " + basic + "\r\nAccept: */*", []string{basic}, []string{"Accept: */*"}},
		{"oauth2 basic echo", `{"Authorization":["Basic ` + clientBasic + `"]}`, []string{clientBasic}, []string{"Authorization"}},
		{"json, as Go writes it", `{"pw":"p\u0026ss wörd\u003c\"42\"\u003e"}`, []string{"wörd", "ss w"}, []string{`{"pw":"`}},
		{"json, as Python writes it", `{"pw": "p&ss w\u00f6rd<\"42\">"}`, []string{"w\u00f6rd", "ss w"}, []string{`{"pw": "`}},
		{"json, as JavaScript writes it", `{"pw":"p&ss wörd<\"42\">"}`, []string{"wörd", "ss w"}, []string{`{"pw":"`}},
		{"path escaped", "/relay/" + url.PathEscape(password), []string{url.PathEscape(password)}, []string{"/relay/"}},
		{"base64 alone", base64.StdEncoding.EncodeToString([]byte(apikey)), []string{base64.StdEncoding.EncodeToString([]byte(apikey))}, nil},
		{"foreign bearer", "got Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x and more", []string{"eyJhbGciOiJIUzI1NiJ9"}, []string{"got Authorization: "}},
		{"foreign scheme", "header was bearer abcdefgh12345678 then", []string{"abcdefgh12345678"}, []string{"header was bearer ", " then"}},
		{"foreign field", `{"access_token":"abc123xyz","token_type":"bearer"}`, []string{"abc123xyz"}, []string{`"token_type":"bearer"`}},
		{"foreign apikey", "apikey: 0123456789abcdef", []string{"0123456789abcdef"}, []string{"apikey: "}},
		{"harmless", "HTTP 500: upstream busy, try later", nil, []string{"HTTP 500: upstream busy, try later"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			out := s.redact(tt.in)
			for _, g := range tt.gone {
				is.True(!strings.Contains(out, g)) // a secret is left
			}
			for _, k := range tt.kept {
				is.True(strings.Contains(out, k)) // other text stays
			}
			if len(tt.gone) > 0 {
				is.True(strings.Contains(out, redacted)) // says what was there
			}
		})
	}
}

// TestRedactBeforeCut: a secret that starts inside the stored snippet and ends
// beyond it is redacted whole, not stored in part.
func TestRedactBeforeCut(t *testing.T) {
	is := is.New(t)
	secret := "s3cr3t-" + strings.Repeat("Z", 40)
	var s sent
	s.add(secret)
	r := result{sent: s, body: strings.Repeat("a", responseSnippet-10) + secret + strings.Repeat("b", 100), err: strings.Repeat("e", 5000)}
	r.redactResult()
	is.True(len(r.body) <= responseSnippet)           // cut to the snippet
	is.True(!strings.Contains(r.body, "s3cr3t"))      // no part of the secret
	is.True(strings.HasSuffix(r.body, redacted[:10])) // the marker, cut where the snippet ends
	is.Equal(len(r.err), maxErrorText)                // the error is bounded
}
