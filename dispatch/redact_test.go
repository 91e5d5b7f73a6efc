package dispatch

import (
	"cmp"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

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
	// As a client or an endpoint that does not form-encode them first (RFC 6749
	// §2.3.1 says to, and many do not) writes them.
	clientBasicRaw := base64.StdEncoding.EncodeToString([]byte(clientID + ":" + secret))

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
		{"basic of the client's credentials not form-encoded", `{"expected":"` + clientBasicRaw + `"}`, []string{clientBasicRaw}, []string{`{"expected":"`}},
		{"json, as Go writes it", `{"pw":"p\u0026ss wörd\u003c\"42\"\u003e"}`, []string{"wörd", "ss w"}, []string{`{"pw":"`}},
		{"json, as Python writes it", `{"pw": "p&ss w\u00f6rd<\"42\">"}`, []string{"w\u00f6rd", "ss w"}, []string{`{"pw": "`}},
		{"json, as JavaScript writes it", `{"pw":"p&ss wörd<\"42\">"}`, []string{"wörd", "ss w"}, []string{`{"pw":"`}},
		{"html escaped, as Go writes it", "<p>client_secret=" + "p&amp;ss wörd&lt;&#34;42&#34;&gt;" + "</p>", []string{"ss w", "&#34;42"}, []string{"<p>client_secret=", "</p>"}},
		{"html escaped, as Python writes it", "<p>" + "p&amp;ss wörd&lt;&quot;42&quot;&gt;" + "</p>", []string{"ss w", "&quot;42"}, []string{"<p>", "</p>"}},
		{"html escaped with a named entity for the ö", "<p>p&amp;ss w&ouml;rd&lt;&quot;42&quot;&gt;</p>", []string{"ss w", "42"}, []string{"<p>", "</p>"}},
		{"html escaped with hex entities", "<p>p&#x26;ss wörd&#x3c;&#x22;42&#x22;&#x3e;</p>", []string{"ss w", "42"}, []string{"<p>", "</p>"}},
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

// TestRedactEntityLikeSecret: a secret that itself reads as an HTML entity
// ("&not" is "¬"), echoed both as sent and HTML-escaped, is found in both forms.
func TestRedactEntityLikeSecret(t *testing.T) {
	is := is.New(t)
	var s sent
	s.add("p&not9-Zq")
	out := s.redact(`<p>p&amp;not9-Zq</p> and "p&not9-Zq"`)
	is.True(!strings.Contains(out, "not9-Zq")) // neither form is left
	is.True(!strings.Contains(out, "¬9-Zq"))   // nor what reading the entity made of it
	is.True(strings.Contains(out, redacted))
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

// TestResultValidUTF8: an error that carries a token endpoint's answer in bytes that
// are not UTF-8 is stored as UTF-8, as the response snippet is.
func TestResultValidUTF8(t *testing.T) {
	is := is.New(t)
	r := result{err: "token endpoint: oauth2: cannot fetch token: 400 Bad Request\nResponse: \xff\xfe{\"error\":\"x\"}", body: "\xc3"}
	r.redactResult()
	is.True(utf8.ValidString(r.err))
	is.True(strings.Contains(r.err, `?{"error":"x"}`)) // what could be read is kept
	is.True(utf8.ValidString(r.body))
}

// redactAlways is redact as it was before it skipped work: every form of every
// secret looked for, longest first, and then every credential pattern in turn.
func redactAlways(s sent, text string) string {
	if text == "" {
		return text
	}
	var all []string
	for _, v := range s {
		all = append(all, forms(v)...)
	}
	slices.SortFunc(all, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	for _, v := range slices.Compact(all) {
		if v != "" && strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, redacted)
		}
	}
	for _, p := range credentialPatterns {
		text = p.re.ReplaceAllString(text, p.repl)
	}
	return text
}

// redactSkipSeeds are texts for TestRedactSkipsOnlyWhatCannotMatch and
// FuzzRedactSkip: each pattern's words in several cases and places, with and
// without a value, and in the non-ASCII letters that (?i) also takes for them.
func redactSkipSeeds() []string {
	seeds := []string{"", "OK", "ok\n", `{"status":"received"}`, "<html><body>Accepted</body></html>",
		"Authorization: Basic dXNlcjpwYXNzd29yZA==", `{"Authorization":["Bearer abcdefgh12345"]}`,
		"set-cookie: a=b; Path=/", "X-API-KEY=zzz", "apikey:\"hub-KEY-0a1b2c3d\"", "Proxy-Authorization: Digest 0123456789abcdef",
		"grant=x&client_secret=abc&y=1", `{"password":"hunter22","passwd":"x"}`, "access_token=a.b.c&refresh_token=d&id_token=e",
		"api_key: 1234", "BEARER    ABCDEFGHIJKL==", "basic abc", "digestion", "passwordless", "cookies!",
		"\u212aey", "api\u212aey: secret-value", "\u017fet-cookie: a=b", "pa\u017f\u017fword=zzz", "ba\u017fic abcdefghijk",
		"héllo Authorization: Bearer abcdefgh12345", "ＡＰＩＫＥＹ: x", "\xff\xfeapikey=1",
	}
	for _, p := range credentialPatterns {
		for _, w := range p.words {
			seeds = append(seeds, w, strings.ToUpper(w)+": value-1234567890", "x "+w+"=v&z", `{"`+w+`":"abcdefgh1234"}`,
				strings.ToUpper(w[:1])+w[1:]+"  \t abcdefghij==")
		}
	}
	return seeds
}

// redactSecretSeeds are secrets and texts for the same tests: a secret's form in
// a text, and a replaced form that makes another secret's shorter form appear
// across the marker, which redact must then replace too.
var redactSecretSeeds = []struct{ text, a, b string }{
	{"0", "0", "a"},
	{"secretvalue", "secretvalue", "ed"},
	{"QQQQQQQQQQQQx", "QQQQQQQQQQQQ", "ed]x"},
	{"echo: s3cr3t-signing-keypw", "s3cr3t-signing-key", "dacted]pw"},
	{`{"echo":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "hub-KEY-0a1b2c3d"},
	{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("u:p&ss")), "p&ss", base64.StdEncoding.EncodeToString([]byte("u:p&ss"))},
	{"pw=p%26ss+w%C3%B6rd", "p&ss wörd", "x"},
	{`{"status":"received"}`, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""},
}

// TestRedactSkipsOnlyWhatCannotMatch: redact skips a secret's forms or a
// credential pattern only where they cannot change the text, so what it returns
// is what looking for all of them returns.
func TestRedactSkipsOnlyWhatCannotMatch(t *testing.T) {
	is := is.New(t)
	changed := 0
	for _, text := range redactSkipSeeds() {
		want := redactAlways(nil, text)
		if want != text {
			changed++
		}
		is.Equal(sent(nil).redact(text), want) // text
	}
	is.True(changed > 40) // the seeds exercise the patterns, not only the skip
	for _, c := range redactSecretSeeds {
		var s sent
		s.add(c.a, c.b)
		is.Equal(s.redact(c.text), redactAlways(s, c.text)) // secrets
	}
}

// FuzzRedactSkip is TestRedactSkipsOnlyWhatCannotMatch for any text and two
// secrets, of which the text is built to hold some forms.
func FuzzRedactSkip(f *testing.F) {
	for _, text := range redactSkipSeeds() {
		f.Add(text, "", "", uint8(0))
	}
	for _, c := range redactSecretSeeds {
		f.Add(c.text, c.a, c.b, uint8(0))
		f.Add(c.text, c.a, c.b, uint8(0x2d))
	}
	f.Fuzz(func(t *testing.T, text, a, b string, mix uint8) {
		// mix puts forms of the secrets into the text: which ones, and where.
		for i, v := range []string{a, b} {
			if fs := forms(v); mix>>(4*i)&8 != 0 && v != "" {
				form := fs[int(mix>>(4*i)&7)%len(fs)]
				at := min(int(mix)%(len(text)+1), len(text))
				text = text[:at] + form + text[at:]
			}
		}
		var s sent
		s.add(a, b)
		if got, want := s.redact(text), redactAlways(s, text); got != want {
			t.Fatalf("redact(%q) with secrets %q, %q = %q, want %q", text, a, b, got, want)
		}
		for _, form := range forms(text) {
			if len(form) < len(text) {
				t.Fatalf("form %q of %q is shorter than it", form, text)
			}
			if !mayHoldForm(form, text) || !mayHoldForm("<"+form+">", text) {
				t.Fatalf("mayHoldForm says no text with form %q can hold a form of %q", form, text)
			}
		}
	})
}

// TestMayHoldForm: redact makes a secret's forms only for a text that
// mayHoldForm says may hold one, so it must say so for every text that does; and
// it must say no to the answers most receivers give, or it saves nothing.
func TestMayHoldForm(t *testing.T) {
	is := is.New(t)
	secrets := []string{"a", "ab", "abc", "é", "\u2028", "\xff", "\xff\xfe\xfd", "p&ss wörd<\"42\">", "&&&", "+/", "~~~~~~",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "𝄞x", "a b+c/d=e", "\x00\x01\xfb\xff", "tok-7f3a9c1e5b"}
	for i := range 512 { // base64 forms with '+' and '/' in every place
		secrets = append(secrets, string([]byte{'k', byte(i), byte(i * 7), byte(i * 13), 'x', byte(255 - i)}))
	}
	for _, v := range secrets {
		for _, form := range forms(v) {
			is.True(len(form) >= len(v))                         // no form is shorter than its secret
			is.True(mayHoldForm(form, v))                        // the form itself
			is.True(mayHoldForm(`{"echo":"`+form+`","n":1}`, v)) // the form inside other text
		}
	}
	for _, text := range []string{"OK", "ok", "", `{"status":"received","id":"msg_2LqW8qZ4f9Rk","orcid":"0000-0002-1825-0097"}`,
		"<html><body><h1>200 OK</h1></body></html>"} {
		is.True(!mayHoldForm(text, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")) // an answer that holds none
	}
}

// BenchmarkRedact is the redaction of one delivery's answer: an ORCID-style call
// sends one signing secret, and most receivers answer with a word or a short JSON
// receipt that holds neither it nor anything credential-shaped.
func BenchmarkRedact(b *testing.B) {
	var s sent
	s.add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	for _, bc := range []struct{ name, text string }{
		{"word", "OK"},
		{"receipt", `{"status":"received","id":"msg_2LqW8qZ4f9Rk","orcid":"0000-0002-1825-0097"}`},
		{"echoed header", "Authorization: Bearer 0123456789abcdef\r\nAccept: */*"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = s.redact(bc.text)
			}
		})
	}
}

// TestSigningKeyEchoRedacted: a receiver that echoes the signing key as its
// libraries hold it (the base64 after whsec_) does not get it stored.
func TestSigningKeyEchoRedacted(t *testing.T) {
	const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key := strings.TrimPrefix(whsec, "whsec_")
	r := result{status: 401, body: `{"error":"signature mismatch","secret":"` + key + `"}`}
	r.sent.addSigning(whsec)
	r.redactResult()
	if strings.Contains(r.body, key) {
		t.Errorf("the signing key is stored: %s", r.body)
	}
}

// TestRedactMarksOnce: a header whose value was a sent secret, already replaced by
// the marker, is left with one marker, not a second one around the first's '['.
func TestRedactMarksOnce(t *testing.T) {
	is := is.New(t)
	var s sent
	s.add("hub-KEY-0a1b2c3d")
	out := s.redact("Apikey: hub-KEY-0a1b2c3d\nX-Api-Key: [redacted]\n" + `{"Authorization":["Bearer abcdefgh12345678"]}`)
	is.Equal(out, "Apikey: [redacted]\nX-Api-Key: [redacted]\n"+`{"Authorization":["[redacted]"]}`)
}

// TestRedactTarget: a target as logs and notices write it: a URL without what may
// carry a credential, an e-mail address as it is (a domain not in ASCII too).
func TestRedactTarget(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://u:p@hooks.example/x?token=T#f", "https://hooks.example/x"},
		{"http://127.0.0.1:8080/relay/0000-0002-7253-3645/KEY", "http://127.0.0.1:8080/relay/0000-0002-7253-3645/[redacted]"},
		{"orcid@universität.example", "orcid@universität.example"},
		{"orcid@uni.example", "orcid@uni.example"},
	} {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
