package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"hookd/httpapi"
	"hookd/ssrf"
	"hookd/store"
)

// inboxHarness is the real router with the inbox on, on a real store, behind a
// real HTTP server whose address is hookd's own (the inbox exception's).
type inboxHarness struct {
	*harness
	api  *httpapi.Server
	self *ssrf.Inbox
	// handled receives the path of every request the server has finished with.
	handled chan string
}

func newInboxHarness(tb testing.TB, lim store.InboxLimits, opt ...func(*httpapi.Options)) *inboxHarness {
	tb.Helper()
	return newInboxHarnessWith(tb, lim, func(*http.Server) {}, opt...)
}

// newInboxHarnessWith is newInboxHarness with the HTTP server's settings changed by srvOpt.
func newInboxHarnessWith(tb testing.TB, lim store.InboxLimits, srvOpt func(*http.Server), opt ...func(*httpapi.Options)) *inboxHarness {
	tb.Helper()
	is := is.New(tb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err) // listen first: the inbox exception needs the address
	self, err := ssrf.NewInbox(ln.Addr().String())
	is.NoErr(err) // hookd's own address
	st := newStore(tb)
	clk := newClock(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC))
	st.Now = clk.Now
	opts := httpapi.Options{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store:     st,
		PublicURL: self.Base(),
		TokenTTL:  time.Hour,
		Inbox:     &httpapi.InboxOptions{Limits: lim, Self: self},
	}
	for _, o := range opt {
		o(&opts)
	}
	api := httpapi.NewServer(opts)
	handled := make(chan string, 100)
	h := api.Handler()
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		select {
		case handled <- r.URL.Path:
		default:
		}
	})}}
	srvOpt(srv.Config)
	srv.Start()
	tb.Cleanup(srv.Close)
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &inboxHarness{
		harness: &harness{st: st, clock: clk, srv: srv, http: c, opts: opts, public: opts.PublicURL},
		api:     api, self: self, handled: handled,
	}
}

// post sends one request to the inbox and reads the answer (a 3xx included).
func (h *inboxHarness) post(tb testing.TB, method, rawPath, body string, header ...string) response {
	tb.Helper()
	is := is.New(tb)
	req, err := http.NewRequest(method, h.srv.URL, strings.NewReader(body))
	is.NoErr(err) // make request
	path, query, _ := strings.Cut(rawPath, "?")
	req.URL.Opaque, req.URL.RawQuery = path, query
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := h.http.Do(req)
	is.NoErr(err) // send
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	is.NoErr(err) // read the answer
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (h *inboxHarness) requests(tb testing.TB, inbox string) []store.InboxRequest {
	tb.Helper()
	rs, err := h.st.InboxRequests(context.Background(), store.InboxFilter{Inbox: inbox, Limit: 1000})
	if err != nil {
		tb.Fatalf("list inbox requests: %v", err)
	}
	return rs
}

func TestInboxRecordsRequest(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	res := h.post(t, http.MethodPost, "/inbox/demo/0000-0002-7253-3645/updated%2Fx?a=1&b=%20", `{"hello":"<script>"}`,
		"Content-Type", "application/json", "X-Custom", "one")
	is.Equal(res.status, http.StatusNoContent)                    // the default answer
	is.Equal(len(res.body), 0)                                    // with no body
	is.Equal(res.header.Get("X-Content-Type-Options"), "nosniff") // nothing to sniff

	rs := h.requests(t, "demo")
	is.Equal(len(rs), 1) // recorded
	r := rs[0]
	is.Equal(r.Inbox, "demo")                                                 // in its inbox
	is.Equal(r.Method, http.MethodPost)                                       // method
	is.Equal(r.Path, "/inbox/demo/0000-0002-7253-3645/updated%2Fx")           // path as sent
	is.Equal(r.Query, "a=1&b=%20")                                            // query as sent
	is.Equal(string(r.Body), `{"hello":"<script>"}`)                          // body as sent
	is.Equal(r.HeaderValue("X-Custom"), "one")                                // headers
	is.Equal(r.HeaderValue("Content-Type"), "application/json")               // all of them
	is.Equal(r.HeaderValue("Host"), strings.TrimPrefix(h.srv.URL, "http://")) // Host too
	is.True(strings.HasPrefix(r.RemoteAddr, "127.0.0.1:"))                    // the sender's address
	is.True(r.ReceivedAt.Equal(h.clock.Now()))                                // when
	is.Equal(r.Signature.Verdict, store.VerdictUnsigned)                      // not signed
	is.Equal(r.AnswerStatus, http.StatusNoContent)                            // and what it got

	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "PROPFIND"} {
		res := h.post(t, m, "/inbox/demo", "")
		is.Equal(res.status, http.StatusNoContent) // every method is taken
	}
	rs = h.requests(t, "demo")
	is.Equal(len(rs), 8)               // and recorded
	is.Equal(rs[0].Method, "PROPFIND") // a method the router does not know too
	is.Equal(rs[0].Path, "/inbox/demo")
}

// TestInboxKeepsHeaderBytes: a header value with bytes that are not UTF-8 (HTTP
// allows any byte from 0x80 up in one) is kept as sent, as a path is, so that the
// command line and the console show them as \xNN: the headers' JSON turned each
// into U+FFFD, and the request read back was not the one sent.
func TestInboxKeepsHeaderBytes(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	res := h.post(t, http.MethodPost, "/inbox/bin/p%FF", "", "X-Bin", "ab\xff\xfecd", "X-Text", "caf\u00e9 <b>")
	is.Equal(res.status, http.StatusNoContent) // taken
	rs := h.requests(t, "bin")
	is.Equal(len(rs), 1)                                                           // recorded
	is.Equal(rs[0].HeaderValue("X-Bin"), "ab\xff\xfecd")                           // its bytes as sent
	is.Equal(rs[0].HeaderValue("X-Text"), "caf\u00e9 <b>")                         // text as before
	is.Equal(store.VisibleText(rs[0].HeaderValue("X-Bin"), false), `ab\xff\xfecd`) // shown as \xNN
	r, err := h.st.InboxRequestByID(context.Background(), rs[0].ID)
	is.NoErr(err)
	is.Equal(r.HeaderValue("X-Bin"), "ab\xff\xfecd") // read alone, too
}

// TestInboxKeepsNoCredentials: whoever sees an inbox sees every request to it, so
// it keeps no credentials: the values of the headers that carry them (an
// Authorization's scheme stays) and a form's secrets; the rest as sent.
func TestInboxKeepsNoCredentials(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	res := h.post(t, http.MethodPost, "/inbox/shared/cc", "grant_type=client_credentials&client_id=APP-1&client_secret=s3cr%26t&scope=x",
		"Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic aWJ1c2VyOklOQk9YQkFTSUNQVy1XdzM=",
		"Apikey", "hub-key-1", "X-Api-Key", "k2", "Cookie", "session=abc", "X-Custom", "kept")
	is.Equal(res.status, http.StatusNoContent)
	res = h.post(t, http.MethodPost, "/inbox/shared/bearer?access_token=QT1&author=ann&api%5Fkey=QT2", `{}`, "Content-Type", "application/json",
		"Authorization", "Bearer 677d530f-aaaa", "X-Auth-Token", "XT3", "Private-Token", "PT4",
		"X-Session-Id", "SI5 [redacted]", // a value that only looks redacted
		"Proxy-Authorization", "sk_live_PA6 extra") // a token sent bare: no scheme to keep
	is.Equal(res.status, http.StatusNoContent)

	rs := h.requests(t, "shared")
	is.Equal(len(rs), 2)
	is.Equal(rs[0].HeaderValue("Authorization"), "Bearer [redacted]") // the scheme says what was sent
	is.Equal(rs[0].HeaderValue("X-Auth-Token"), "[redacted]")
	is.Equal(rs[0].HeaderValue("Private-Token"), "[redacted]")
	is.Equal(rs[0].HeaderValue("X-Session-Id"), "[redacted]")
	is.Equal(rs[0].HeaderValue("Proxy-Authorization"), "[redacted]")
	is.Equal(rs[0].Query, "access_token=%5Bredacted%5D&author=ann&api%5Fkey=%5Bredacted%5D") // a token in the URL goes too; other parameters stay
	form, body := rs[1], string(rs[1].Body)
	is.Equal(form.HeaderValue("Authorization"), "Basic [redacted]")
	is.Equal(form.HeaderValue("Apikey"), "[redacted]")
	is.Equal(form.HeaderValue("X-Api-Key"), "[redacted]")
	is.Equal(form.HeaderValue("Cookie"), "[redacted]")
	is.Equal(form.HeaderValue("X-Custom"), "kept")                                                       // other headers as sent
	is.Equal(body, "grant_type=client_credentials&client_id=APP-1&client_secret=%5Bredacted%5D&scope=x") // the form's secret goes, the rest stays
	for _, r := range rs {
		for _, secret := range []string{"aWJ1c2Vy", "hub-key-1", "k2", "abc", "s3cr", "677d530f", "XT3", "PT4", "SI5", "PA6"} {
			for _, f := range r.Header {
				is.True(!strings.Contains(f.Value, secret)) // no trace in any header
			}
		}
	}
}

// TestInboxKeepsNoMultipartCredentials: a form sent as multipart/form-data keeps
// no credentials either: its fields whose names carry one (a file's too) were
// kept whole, a password and a client_secret readable by whoever sees the inbox,
// where the same form urlencoded had them redacted. The rest stays byte for byte.
func TestInboxKeepsNoMultipartCredentials(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	var b strings.Builder
	mw := multipart.NewWriter(&b)
	for _, f := range [][2]string{{"user", "ann"}, {"Password", "PW1"}, {"client_secret", "CS2"}, {"note", "kept\r\n--not a delimiter"}} {
		is.NoErr(mw.WriteField(f[0], f[1]))
	}
	fw, err := mw.CreateFormFile("api_key", "key.txt")
	is.NoErr(err)
	io.WriteString(fw, "AK3")
	fw, err = mw.CreateFormFile("upload", "token.txt") // a file named so, its field not
	is.NoErr(err)
	io.WriteString(fw, "file body")
	is.NoErr(mw.Close())
	res := h.post(t, http.MethodPost, "/inbox/mp/x", b.String(), "Content-Type", mw.FormDataContentType()+"; charset=UTF-8")
	is.Equal(res.status, http.StatusNoContent)
	// Lines ending in LF alone, as Go's reader takes them, and a quoted name.
	lf := "--b\nContent-Disposition: form-data; name=\"X-Session\"\n\nSE4\n--b\nContent-Disposition: form-data; name=x\n\ny\n--b--\n"
	res = h.post(t, http.MethodPost, "/inbox/mp/lf", lf, "Content-Type", "multipart/form-data; boundary=b")
	is.Equal(res.status, http.StatusNoContent)

	rs := h.requests(t, "mp")
	is.Equal(len(rs), 2)
	is.Equal(string(rs[0].Body), strings.Replace(lf, "SE4", "[redacted]", 1)) // only the credential's value changed
	_, params, err := mime.ParseMediaType(rs[1].HeaderValue("Content-Type"))
	is.NoErr(err)
	form, err := multipart.NewReader(bytes.NewReader(rs[1].Body), params["boundary"]).ReadForm(1 << 20)
	is.NoErr(err) // still a form
	is.Equal(form.Value["user"], []string{"ann"})
	is.Equal(form.Value["Password"], []string{"[redacted]"})
	is.Equal(form.Value["client_secret"], []string{"[redacted]"})
	is.Equal(form.Value["note"], []string{"kept\r\n--not a delimiter"})
	for name, want := range map[string]string{"api_key": "[redacted]", "upload": "file body"} {
		f, err := form.File[name][0].Open()
		is.NoErr(err)
		got, err := io.ReadAll(f)
		is.NoErr(err)
		is.Equal(string(got), want) // a file as its field's name says
	}
	for _, secret := range []string{"PW1", "CS2", "AK3", "SE4"} {
		for _, r := range rs {
			is.True(!strings.Contains(string(r.Body), secret)) // no trace
		}
	}
}

// TestInboxKeepsNoCredentialsOfLooseFields: a query's or a form's field that a
// lenient reader takes for a credential keeps none either. A ';' separates fields
// to some readers ("a=1;token=T" was kept whole, Go's reader refusing it), and a
// name with a malformed escape is read with its others ("%74oken%zz", "token%zz"
// to PHP's, was kept whole, Go's refusing it); the rest as sent.
func TestInboxKeepsNoCredentialsOfLooseFields(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	for _, tt := range []struct{ query, form, want string }{
		{"a=1;token=QT1;b=2", "a=1;token=FT1;b=2", "a=1;token=%5Bredacted%5D;b=2"},
		{"%74oken%zz=QT2&x=%zz", "%74oken%zz=FT2&x=%zz", "%74oken%zz=%5Bredacted%5D&x=%zz"},
		{"%74oken=QT3&x=%zz", "%74oken=FT3&x=%zz", "%74oken=%5Bredacted%5D&x=%zz"}, // a bad escape elsewhere
		{"x;secret=QT4", "x;secret=FT4", "x;secret=%5Bredacted%5D"},
		{"token=QT5;x", "token=FT5;x", "token=%5Bredacted%5D"}, // all of it, to a reader of '&' alone
		{"a=b;c;d=e%", "a=b;c;d=e%", "a=b;c;d=e%"},             // nothing to hide: as sent
	} {
		res := h.post(t, http.MethodPost, "/inbox/loose/x?"+tt.query, tt.form, "Content-Type", "application/x-www-form-urlencoded")
		is.Equal(res.status, http.StatusNoContent)
		rs := h.requests(t, "loose")
		is.Equal(rs[0].Query, tt.want)        // the query
		is.Equal(string(rs[0].Body), tt.want) // and the form
	}
}

// TestInboxKeepsNoCredentialsOfAnyForm: a body that a receiver may read as a form
// keeps no credentials, however its Content-Type says so: two Content-Type
// headers (Go's reader takes the first, others the last), multipart/mixed (Go's
// Request.MultipartReader reads it), a type Go's reader refuses but others read
// (a ',' after it, a parameter with no value), a multipart type with no boundary,
// or one its body's delimiters do not have. Each was kept whole, its secret
// field readable by whoever sees the inbox. JSON stays whole.
func TestInboxKeepsNoCredentialsOfAnyForm(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	const mp = "--b\r\nContent-Disposition: form-data; name=token\r\n\r\nMP1\r\n--b--\r\n"
	const mpKept = "--b\r\nContent-Disposition: form-data; name=token\r\n\r\n[redacted]\r\n--b--\r\n"
	for _, tt := range []struct {
		types      []string
		body, want string
	}{
		{[]string{"multipart/form-data; boundary=b", "application/x-www-form-urlencoded"}, mp, mpKept},
		{[]string{"application/x-www-form-urlencoded", "multipart/form-data; boundary=b"}, mp, mpKept},
		{[]string{"application/x-www-form-urlencoded", "multipart/form-data; boundary=b"}, "a=1&token=FT1", "a=1&token=%5Bredacted%5D"},
		{[]string{"multipart/mixed; boundary=b"}, mp, mpKept},
		{[]string{"multipart/form-data; boundary=b; charset"}, mp, mpKept},
		{[]string{"multipart/form-data"}, mp, mpKept},
		{[]string{"multipart/form-data; boundary=other"}, mp, mpKept},
		{[]string{"application/x-www-form-urlencoded, text/plain"}, "a=1&token=FT2", "a=1&token=%5Bredacted%5D"},
		{[]string{"application/json"}, `{"token":"JS1"}`, `{"token":"JS1"}`}, // JSON is kept whole
	} {
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/inbox/forms/x", strings.NewReader(tt.body))
		is.NoErr(err)
		req.Header["Content-Type"] = tt.types
		res, err := h.http.Do(req)
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusNoContent)
		rs := h.requests(t, "forms")
		is.Equal(string(rs[0].Body), tt.want) // the body without its credential
	}
}

// TestInboxKeepsNoCredentialsOfOddMultipart: a multipart body that Go's reader
// refuses but others read keeps no credentials either: lines ending in a CR alone
// (Python's email parser ends a line there), and a part whose headers end at a line
// that is no header, or with no empty line after them. Each was kept whole, its
// secret readable by whoever sees the inbox. What Go's reader takes for one value
// goes whole, a CR before a delimiter in it or not; the rest stays as sent.
func TestInboxKeepsNoCredentialsOfOddMultipart(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	for _, tt := range []struct{ body, want string }{
		{"--b\rContent-Disposition: form-data; name=password\r\rPW1\r--b\rContent-Disposition: form-data; name=x\r\rkept\r--b--\r",
			"--b\rContent-Disposition: form-data; name=password\r\r[redacted]\r--b\rContent-Disposition: form-data; name=x\r\rkept\r--b--\r"},
		{"--b\r\nContent-Type: text/plain\rContent-Disposition: form-data; name=token\r\r\nT2\r\n--b--",
			"--b\r\nContent-Type: text/plain\rContent-Disposition: form-data; name=token\r\r\n[redacted]\r\n--b--"},
		{"--b\r\nContent-Disposition: form-data; name=token\r\nT3\r\n--b--",
			"--b\r\nContent-Disposition: form-data; name=token\r\n[redacted]\r\n--b--"},
		{"--b\r\nContent-Disposition: form-data; name=secret\r\nS4 one\r\n\r\nS4 two\r\n--b--",
			"--b\r\nContent-Disposition: form-data; name=secret\r\n[redacted]\r\n--b--"},
		{"--b\r\nContent-Disposition: form-data; name=token\r\n\r\nT5\r--b\r\nT5 too\r\n--b--",
			"--b\r\nContent-Disposition: form-data; name=token\r\n\r\n[redacted]\r\n--b--"},
	} {
		res := h.post(t, http.MethodPost, "/inbox/odd/x", tt.body, "Content-Type", "multipart/form-data; boundary=b")
		is.Equal(res.status, http.StatusNoContent)
		rs := h.requests(t, "odd")
		is.Equal(string(rs[0].Body), tt.want) // only the credential's value changed
	}
}

// TestInboxKeepsNoCredentialsOfURLsInHeaders: a URL in another header keeps no
// credential of its query either. A proxy in front of hookd may send the URL it
// was called at (X-Original-URI, X-Envoy-Original-Path): the query was kept
// without its token and the header with it, readable by whoever sees the inbox.
func TestInboxKeepsNoCredentialsOfURLsInHeaders(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	res := h.post(t, http.MethodPost, "/inbox/proxied/x?a=1&token=QT1", "",
		"X-Original-Uri", "/hookd/inbox/proxied/x?a=1&token=QT1",
		"Referer", "https://app.example/cb?code=c&access_token=QT2#state",
		"X-Note", "why? no credential here")
	is.Equal(res.status, http.StatusNoContent)
	rs := h.requests(t, "proxied")
	is.Equal(rs[0].Query, "a=1&token=%5Bredacted%5D")
	is.Equal(rs[0].HeaderValue("X-Original-Uri"), "/hookd/inbox/proxied/x?a=1&token=%5Bredacted%5D") // as the query is kept
	is.Equal(rs[0].HeaderValue("Referer"), "https://app.example/cb?code=c&access_token=%5Bredacted%5D#state")
	is.Equal(rs[0].HeaderValue("X-Note"), "why? no credential here") // the rest as sent
}

// TestInboxKeepsNoCredentialsOfPHPNames: a field whose name has a '.', a space
// (a '+' or %20 in a form) or a '[' where a credential's has a '_' keeps no
// credential either: PHP reads each as '_', so a receiver in PHP takes api.key,
// "api key" and api[key for its api_key. Each was kept whole.
func TestInboxKeepsNoCredentialsOfPHPNames(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	const fields = "api.key=K1&api+key=K2&api%20key=K3&api[key=K4&x.y=kept"
	const want = "api.key=%5Bredacted%5D&api+key=%5Bredacted%5D&api%20key=%5Bredacted%5D&api[key=%5Bredacted%5D&x.y=kept"
	res := h.post(t, http.MethodPost, "/inbox/php/x?"+fields, fields, "Content-Type", "application/x-www-form-urlencoded", "X-Api.Key", "K5")
	is.Equal(res.status, http.StatusNoContent)
	const mp = "--b\r\nContent-Disposition: form-data; name=\"api.key\"\r\n\r\nK6\r\n--b\r\nContent-Disposition: form-data; name=\"api key\"\r\n\r\nK7\r\n--b--\r\n"
	res = h.post(t, http.MethodPost, "/inbox/php/mp", mp, "Content-Type", "multipart/form-data; boundary=b")
	is.Equal(res.status, http.StatusNoContent)
	rs := h.requests(t, "php")
	is.Equal(len(rs), 2)
	is.Equal(string(rs[0].Body), strings.NewReplacer("K6", "[redacted]", "K7", "[redacted]").Replace(mp)) // the multipart fields
	is.Equal(rs[1].Query, want)                                                                           // the query
	is.Equal(string(rs[1].Body), want)                                                                    // the form
	is.Equal(rs[1].HeaderValue("X-Api.Key"), "[redacted]")                                                // a header so named
}

// TestInboxKeepsNoCredentialsOfPathParameters: a credential sent as a parameter
// of the path (";jsessionid=…", which Java servers read from a URL's path, and
// ";token=…") is not kept either: the path was kept as sent, the session or the
// token readable by whoever sees the inbox. Its other parameters stay, and an
// empty one, which holds nothing.
func TestInboxKeepsNoCredentialsOfPathParameters(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	res := h.post(t, http.MethodPost, "/inbox/pp/x;jsessionid=JS1/y;v=1;token=T2;%74oken=T3;session_id=;a=b/z;Secret=T4;q=\"x;token=T6\"?a=1;token=QT5", "")
	is.Equal(res.status, http.StatusNoContent)
	rs := h.requests(t, "pp")
	is.Equal(len(rs), 1)
	is.Equal(rs[0].Path, "/inbox/pp/x;jsessionid=%5Bredacted%5D/y;v=1;token=%5Bredacted%5D;%74oken=%5Bredacted%5D;session_id=;a=b/z;Secret=%5Bredacted%5D;q=\"x;token=%5Bredacted%5D")
	is.Equal(rs[0].Query, "a=1;token=%5Bredacted%5D")
	r, err := h.st.InboxRequestByID(context.Background(), rs[0].ID)
	is.NoErr(err)
	is.Equal(r.URL(), rs[0].URL()) // read alone, the same
}

// TestInboxKeepsNoCredentialsOfURLsInText: a URL in a header's value among other
// text keeps no credential either: Link's <…>; rel="next" (an API paging with
// its access_token), a URL in quotes or in words. Only a value that was a URL
// alone (no space) was read: these were kept whole. A path's parameters in such
// a URL, and a header's own parameters (; session=…), are read as a path's are.
func TestInboxKeepsNoCredentialsOfURLsInText(t *testing.T) {
	h := newInboxHarness(t, store.InboxLimits{})
	header := map[string][2]string{
		"Link": {`<https://api.example/items?page=2&access_token=L1>; rel="next", <https://api.example/items;jsessionid=L2?page=9&access_token=L3>; rel="last"`,
			`<https://api.example/items?page=2&access_token=%5Bredacted%5D>; rel="next", <https://api.example/items;jsessionid=%5Bredacted%5D?page=9&access_token=%5Bredacted%5D>; rel="last"`},
		"X-Forwarded-Uri": {"/hookd/inbox/urls/x;jsessionid=U4?a=1#f?token=U5",
			"/hookd/inbox/urls/x;jsessionid=%5Bredacted%5D?a=1#f?token=%5Bredacted%5D"},
		"X-Note":     {"see https://x.example/?token=U6 for it", "see https://x.example/?token=%5Bredacted%5D for it"},
		"X-Quoted":   {`url="https://x.example/?code=c&token=U7"; v=1`, `url="https://x.example/?code=c&token=%5Bredacted%5D"; v=1`},
		"X-Params":   {`v; session="U8 x"; b=1`, `v; session=%5Bredacted%5D; b=1`},
		"X-In-Param": {`a; url="https://x.example/?token=U9"`, `a; url="https://x.example/?token=%5Bredacted%5D"`},
		"X-Text":     {"why? no credential here; none", "why? no credential here; none"},
		"X-Already":  {"<https://x.example/?token=%5Bredacted%5D>", "<https://x.example/?token=%5Bredacted%5D>"},
		"X-Fragment": {"https://app.example/cb?state=s#access_token=F1&expires_in=3600 <https://b.example/#id_token=F2>",
			"https://app.example/cb?state=s#access_token=%5Bredacted%5D&expires_in=3600 <https://b.example/#id_token=%5Bredacted%5D>"},
		"X-Hash": {"issue #42 fixed", "issue #42 fixed"},
	}
	h.keptHeaders(t, "urls", header)
}

// keptHeaders posts one request to inbox with each header's value as sent
// (header[name][0]) and checks that the inbox kept it as header[name][1].
func (h *inboxHarness) keptHeaders(t *testing.T, inbox string, header map[string][2]string) {
	t.Helper()
	is := is.New(t)
	var kv []string
	for name, v := range header {
		kv = append(kv, name, v[0])
	}
	res := h.post(t, http.MethodPost, "/inbox/"+inbox+"/x", "", kv...)
	is.Equal(res.status, http.StatusNoContent)
	rs := h.requests(t, inbox)
	is.Equal(len(rs), 1)
	for name, v := range header {
		is.Equal(rs[0].HeaderValue(name), v[1]) // without its credentials, the rest as sent
	}
}

// TestInboxKeepsNoCredentialsOfFragments: a fragment a client sends in the
// request line (browsers do not; a hand-made request may), after the path or
// after the query, keeps no credential: Go reads it as part of the path or of
// the query, and it was kept as sent (#access_token=T, as OAuth's implicit
// grant returns a token).
func TestInboxKeepsNoCredentialsOfFragments(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	is.Equal(h.post(t, http.MethodPost, "/inbox/frag/x?a=1#access_token=Q1&expires_in=60", "").status, http.StatusNoContent)
	is.Equal(h.post(t, http.MethodPost, "/inbox/frag/y#access_token=P1&state=s", "").status, http.StatusNoContent)
	rs := h.requests(t, "frag")
	is.Equal(len(rs), 2)
	is.Equal(rs[1].Path, "/inbox/frag/x")
	is.Equal(rs[1].Query, "a=1#access_token=%5Bredacted%5D&expires_in=60")    // the query's fragment
	is.Equal(rs[0].Path, "/inbox/frag/y#access_token=%5Bredacted%5D&state=s") // the path's
	is.Equal(rs[0].Query, "")
}

// TestInboxKeepsNoCredentialsOfNestedURLs: a URL in a query's value, sent
// unescaped (?next=https://app/cb?token=T, a return address), keeps no
// credential of its own query either: a query was read from its first '?' as
// one, the "?token=T" after another '?' part of the value before it, and such
// a token was kept in the query and in a header's URL (Link, a list of URLs).
func TestInboxKeepsNoCredentialsOfNestedURLs(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	res := h.post(t, http.MethodPost, "/inbox/nested/x?next=https://app.example/cb?token=N1&a=1", "next=/cb?session=N2&b=why?",
		"Content-Type", "application/x-www-form-urlencoded",
		"Link", `<https://api.example/items?page=2&return=https://api.example/b?access_token=N3>; rel="next"`,
		"X-Urls", "https://x.example/?a=1,https://y.example/?token=N4",
		"Referer", "https://app.example/login?next=/dashboard?session_id=N5")
	is.Equal(res.status, http.StatusNoContent)
	rs := h.requests(t, "nested")
	is.Equal(len(rs), 1)
	is.Equal(rs[0].Query, "next=https://app.example/cb?token=%5Bredacted%5D&a=1")
	is.Equal(string(rs[0].Body), "next=/cb?session=%5Bredacted%5D&b=why?") // a '?' alone stays
	is.Equal(rs[0].HeaderValue("Link"), `<https://api.example/items?page=2&return=https://api.example/b?access_token=%5Bredacted%5D>; rel="next"`)
	is.Equal(rs[0].HeaderValue("X-Urls"), "https://x.example/?a=1,https://y.example/?token=%5Bredacted%5D")
	is.Equal(rs[0].HeaderValue("Referer"), "https://app.example/login?next=/dashboard?session_id=%5Bredacted%5D")
}

// TestInboxKeepsNoCredentialsOfSpacedParameters: a header's parameter with
// spaces or tabs around its '=' (; session = T), which Go's reader
// (mime.ParseMediaType) takes as session=T, keeps no credential either: a
// name followed by a space, or an '=' by one, was read as no parameter or an
// empty one, and its value kept.
func TestInboxKeepsNoCredentialsOfSpacedParameters(t *testing.T) {
	h := newInboxHarness(t, store.InboxLimits{})
	header := map[string][2]string{
		"X-Spaced":  {"v; session = W1; b = 1", "v; session = %5Bredacted%5D; b = 1"},
		"X-Tabbed":  {"v;\ttoken\t=\tW2", "v;\ttoken\t=\t%5Bredacted%5D"},
		"X-After":   {`v; token= "W3 x"; b=1`, "v; token= %5Bredacted%5D; b=1"},
		"X-Empty":   {"v; token= ; b=1", "v; token= ; b=1"},              // nothing to keep
		"X-Words":   {"v; a token=x; b", "v; a token=%5Bredacted%5D; b"}, // a word token=x, as one without the ';'
		"X-Nothing": {"v; a token; b", "v; a token; b"},                  // no value
	}
	h.keptHeaders(t, "spaced", header)
}

// TestInboxKeepsNoCredentialsOfFirstFields: a name=value pair that begins a
// header's value, or follows a ',', a space or a tab (a list of them, without
// the ';' of a parameter), keeps no credential: only those after a ';' were
// read, and X-Params: token=T; a=1 was kept.
func TestInboxKeepsNoCredentialsOfFirstFields(t *testing.T) {
	h := newInboxHarness(t, store.InboxLimits{})
	header := map[string][2]string{
		"X-Params": {"token=F1; a=1", "token=%5Bredacted%5D; a=1"},
		"X-List":   {"a=1, session_id=F2", "a=1, session_id=%5Bredacted%5D"},
		"X-Words":  {"user=bob password=F3", "user=bob password=%5Bredacted%5D"},
		"X-Spaced": {"api_key = F4", "api_key = %5Bredacted%5D"},
		"X-Kept":   {"a=1, b=2; c=3", "a=1, b=2; c=3"},
		"X-Quoted": {`token="F5 x", a=1`, "token=%5Bredacted%5D, a=1"},
	}
	h.keptHeaders(t, "first", header)
}

// TestInboxKeepsNoCredentialsOfListedFields: a name=value pair after an '&' (a
// query sent in a header, as a proxy may send one), or after a quoted text with
// a space in it, or in quotes, keeps no credential: the closing quote of "My
// App" was read as opening one, and the pairs after it were not read, nor were
// those after an '&'.
func TestInboxKeepsNoCredentialsOfListedFields(t *testing.T) {
	h := newInboxHarness(t, store.InboxLimits{})
	header := map[string][2]string{
		"X-Args":    {"a=1&b=2&token=L1", "a=1&b=2&token=%5Bredacted%5D"},
		"X-Note":    {`note="hello world" token=L2`, `note="hello world" token=%5Bredacted%5D`},
		"X-Realm":   {`realm="My App",session_id=L3`, `realm="My App",session_id=%5Bredacted%5D`},
		"X-Escaped": {`x="a \" b",api_key=L4`, `x="a \" b",api_key=%5Bredacted%5D`},
		"X-Quoted":  {`a="x, password=L5", b=1`, `a="x, password=%5Bredacted%5D", b=1`},
		"X-Kept":    {`a=1&b=2, c="d e",f=g&h`, `a=1&b=2, c="d e",f=g&h`},
	}
	h.keptHeaders(t, "listed", header)
}

// TestInboxKeepsNoCredentialsOfBase64Fields: the value of a name=value pair
// without its ';' (one that begins a header's value, or follows a ',', an '&',
// a space or a tab) goes whole when it has a '/', as base64 values have (an AWS
// secret access key): it ended at the first '/', as a path's parameter does,
// and the rest of it was kept.
func TestInboxKeepsNoCredentialsOfBase64Fields(t *testing.T) {
	h := newInboxHarness(t, store.InboxLimits{})
	header := map[string][2]string{
		"X-Keys":  {"id=AKIA1, aws_secret=wJalrXUtnFEMI/K7MDENG/bPxRfiCYB64, region=eu", "id=AKIA1, aws_secret=%5Bredacted%5D, region=eu"},
		"X-First": {"token=YWJj/ZGVm+Z2hp== x", "token=%5Bredacted%5D x"},
		"X-URL":   {"a=1 session=https://x/a?b=1", "a=1 session=%5Bredacted%5D?b=1"},
		"X-Kept":  {"next=/a/b, path=/c", "next=/a/b, path=/c"},
	}
	h.keptHeaders(t, "base64", header)
}

// TestInboxKeepsNoCredentialAsScheme: an Authorization keeps its first word, the
// scheme, only when it is one of those known: a token or a password sent bare
// before more text (abc123 x, hunter two) read as a scheme, being a letter, then
// letters and digits, and was kept. A known scheme is kept as sent.
func TestInboxKeepsNoCredentialAsScheme(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	for _, tt := range []struct{ sent, kept string }{
		{"abc123 x", "[redacted]"},
		{"hunter two", "[redacted]"},
		{"Ab1-Cd2 x", "[redacted]"},
		{"Bearer T1", "Bearer [redacted]"},
		{"basic dTM6cDM=", "basic [redacted]"},
		{`Digest username="u", response="R1"`, "Digest [redacted]"},
		{"AWS4-HMAC-SHA256 Credential=AKID/20240301/us-east-1/s3/aws4_request, Signature=S1", "AWS4-HMAC-SHA256 [redacted]"},
		{"HMAC-SHA256 Credential=c, Signature=S2", "HMAC-SHA256 [redacted]"},
		{"Token T2", "Token [redacted]"},
		{"SCRAM-SHA-256 data", "SCRAM-SHA-256 [redacted]"},
		{"NTLM TlRMTVNTUAAB", "NTLM [redacted]"},
	} {
		res := h.post(t, http.MethodPost, "/inbox/schemes/x", "", "Authorization", tt.sent)
		is.Equal(res.status, http.StatusNoContent)
		rs := h.requests(t, "schemes")
		is.Equal(rs[0].HeaderValue("Authorization"), tt.kept) // the scheme when it is one, no credential
	}
}

func TestInboxRefuses(t *testing.T) {
	h := newInboxHarness(t, store.InboxLimits{})
	for _, tt := range []struct {
		name, path, body string
		header           []string
		status           int
	}{
		{"no name", "/inbox/", "", nil, http.StatusNotFound},
		{"bad name", "/inbox/%3Cb%3E/x", "", nil, http.StatusNotFound},
		{"dot segments", "/inbox/demo/../../healthz", "", nil, http.StatusNotFound},
		{"long body", "/inbox/demo", strings.Repeat("x", store.MaxInboxBody+1), nil, http.StatusRequestEntityTooLarge},
		{"long headers", "/inbox/demo", "", []string{"X-Big", strings.Repeat("x", store.MaxInboxHeaders)}, http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			res := h.post(t, http.MethodPost, tt.path, tt.body, tt.header...)
			is.Equal(res.status, tt.status)                                                                         // refused
			is.Equal(res.header.Get("Content-Type"), "text/plain; charset=utf-8")                                   // in plain text
			is.True(strings.Contains(string(res.body), "nothing was recorded") || tt.status == http.StatusNotFound) // saying so
		})
	}
	is := is.New(t)
	all, err := h.st.InboxRequests(context.Background(), store.InboxFilter{})
	is.NoErr(err)         // list
	is.Equal(len(all), 0) // nothing was recorded

	res := h.post(t, http.MethodPost, "/inbox", "")
	is.Equal(res.status, http.StatusNotFound) // /inbox itself is no inbox

	res = h.post(t, http.MethodPost, "/inbox/_hooks/x", "")
	is.Equal(res.status, http.StatusNotFound)                                                                                                                           // a name the rule refuses
	is.Equal(string(res.body), "no such inbox: \"_hooks\" is not an inbox name: use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)\n") // says which rule
}

// TestInboxRefusesLongBodyUnsent: a body its Content-Length says is longer than
// an inbox keeps is refused before it is sent: a caller that asks first
// (Expect: 100-continue) is answered 413 at once, not told to go on and sent
// the 413 only once 64 KiB of it have arrived.
func TestInboxRefusesLongBodyUnsent(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.srv.URL, "http://"))
	is.NoErr(err) // connect
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /inbox/demo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", store.MaxInboxBody+1)
	is.NoErr(err) // the request's head, no body
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	is.NoErr(err) // an answer without the body
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	is.NoErr(err)
	is.Equal(res.StatusCode, http.StatusRequestEntityTooLarge) // refused at once, no 100 Continue
	is.Equal(string(body), fmt.Sprintf("the body is longer than %d bytes, all an inbox keeps: nothing was recorded\n", store.MaxInboxBody))
	is.Equal(len(h.requests(t, "demo")), 0) // nothing was recorded

	// A body of exactly the bound, announced the same way, is asked for and kept.
	res2 := h.post(t, http.MethodPost, "/inbox/demo", strings.Repeat("x", store.MaxInboxBody), "Expect", "100-continue")
	is.Equal(res2.status, http.StatusNoContent) // taken
	is.Equal(len(h.requests(t, "demo")), 1)     // recorded
}

// TestInboxBoundsRequestLine: an inbox keeps at most 8 KiB of a request's method,
// path and query, as kept, its credentials as "[redacted]": a path or a query as
// long as hookd's 64 KiB of headers let through was kept whole, past the bounds of
// the body and headers, and a query of 1,000 empty "token" parameters (6 KB) as
// 21 KB. Each is a 414 saying what is too long; every URL hookd calls fits.
func TestInboxBoundsRequestLine(t *testing.T) {
	h := newInboxHarnessWith(t, store.InboxLimits{}, func(s *http.Server) { s.MaxHeaderBytes = 64 << 10 }) // as hookd serve has it
	for _, tt := range []struct{ name, path, says string }{
		{"long path", "/inbox/demo/" + strings.Repeat("p", 60000),
			"request line: the method, path and query are 60017 bytes long as kept; an inbox keeps at most 8192: nothing was recorded\n"},
		{"long query", "/inbox/demo?" + strings.Repeat("a", 60000),
			"request line: the method, path and query are 60017 bytes long as kept; an inbox keeps at most 8192: nothing was recorded\n"},
		{"redacted query", "/inbox/demo?" + strings.Repeat("token&", 1000),
			"request line: the method, path and query are 21017 bytes long as kept, its credentials as [redacted]; an inbox keeps at most 8192: nothing was recorded\n"},
		{"redacted path", "/inbox/demo/x" + strings.Repeat(";token=x", 1000),
			"request line: the method, path and query are 21018 bytes long as kept, its credentials as [redacted]; an inbox keeps at most 8192: nothing was recorded\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			res := h.post(t, http.MethodPost, tt.path, "")
			is.Equal(res.status, http.StatusRequestURITooLong) // refused
			is.Equal(string(res.body), tt.says)                // saying what is too long
		})
	}
	is := is.New(t)
	is.Equal(len(h.requests(t, "")), 0) // nothing was recorded

	// A URL hookd calls fits, even one of its 2,048 bytes of "token" parameters,
	// each kept as 20 bytes.
	url := "/inbox/demo?" + strings.Repeat("token&", (store.MaxURLLength-len("http://127.0.0.1:65535/inbox/demo?"))/6)
	is.Equal(h.post(t, http.MethodDelete, url, "").status, http.StatusNoContent) // kept
	rs := h.requests(t, "demo")
	is.Equal(len(rs), 1)                                                   // recorded
	is.True(strings.HasPrefix(rs[0].Query, "token=%5Bredacted%5D&token=")) // its credentials redacted
}

// TestInboxBoundsFormAsKept: a form's body is bounded as kept, its credentials
// as "[redacted]": 10,922 empty "token" fields (64 KiB as sent) were kept as
// 229 KB of "token=%5Bredacted%5D", three and a half times the 64 KiB an inbox
// keeps of a body. It is a 413 saying so; a form of the bound whose credentials
// are longer than "[redacted]" is kept.
func TestInboxBoundsFormAsKept(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	res := h.post(t, http.MethodPost, "/inbox/demo", strings.Repeat("token&", store.MaxInboxBody/6), form...)
	is.Equal(res.status, http.StatusRequestEntityTooLarge) // refused
	is.Equal(string(res.body), "body: is 229362 bytes long as kept, its form's credentials as [redacted]; an inbox keeps at most 65536: nothing was recorded\n")
	is.Equal(len(h.requests(t, "")), 0) // nothing was recorded

	body := "client_secret=" + strings.Repeat("s", 40) + "&x="
	body += strings.Repeat("x", store.MaxInboxBody-len(body))
	is.Equal(h.post(t, http.MethodPost, "/inbox/demo", body, form...).status, http.StatusNoContent) // kept
	rs := h.requests(t, "demo")
	is.Equal(len(rs), 1)                                                                 // recorded
	is.True(strings.HasPrefix(string(rs[0].Body), "client_secret=%5Bredacted%5D&x=xxx")) // its credential redacted
}

// TestInboxBounds: the handler keeps the newest per inbox and in all.
func TestInboxBounds(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{PerInbox: 2, Total: 3})
	for i := range 4 {
		is.Equal(h.post(t, http.MethodPost, "/inbox/a", "a"+strconv.Itoa(i)).status, http.StatusNoContent) // to a
	}
	got := h.requests(t, "a")
	is.Equal(len(got), 2)               // a keeps 2
	is.Equal(string(got[0].Body), "a3") // the newest
	is.Equal(string(got[1].Body), "a2")
	for i := range 2 {
		h.post(t, http.MethodPost, "/inbox/b", "b"+strconv.Itoa(i))
	}
	all := h.requests(t, "")
	is.Equal(len(all), 3) // 3 in all
	var bodies []string
	for _, r := range all {
		bodies = append(bodies, string(r.Body))
	}
	is.Equal(bodies, []string{"b1", "b0", "a3"}) // the oldest went
}

// TestInboxAnswerModes: every way an inbox can answer, as a sender sees it.
func TestInboxAnswerModes(t *testing.T) {
	h := newInboxHarness(t, store.InboxLimits{})
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		answer store.InboxAnswer
		status int
		header map[string]string
	}{
		{"default", store.InboxAnswer{}, 204, nil},
		{"200", store.InboxAnswer{Status: 200}, 200, map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
		{"500", store.InboxAnswer{Status: 500}, 500, nil},
		{"410 Gone", store.InboxAnswer{Status: 410}, 410, nil},
		{"429 with Retry-After", store.InboxAnswer{Status: 429, RetryAfter: 120 * time.Second}, 429, map[string]string{"Retry-After": "120"}},
		{"503 with Retry-After", store.InboxAnswer{Status: 503, RetryAfter: 5 * time.Second}, 503, map[string]string{"Retry-After": "5"}},
		{"redirect", store.InboxAnswer{Location: "https://example.org/moved"}, 302, map[string]string{"Location": "https://example.org/moved"}},
		{"308", store.InboxAnswer{Status: 308, Location: "http://127.0.0.1:1/x"}, 308, map[string]string{"Location": "http://127.0.0.1:1/x"}},
		{"short delay, then 500", store.InboxAnswer{Status: 500, Delay: 20 * time.Millisecond}, 500, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			_, err := h.st.SetInboxAnswer(ctx, "modes", tt.answer)
			is.NoErr(err) // as the console or the CLI sets it
			res := h.post(t, http.MethodPost, "/inbox/modes/cb", "x")
			is.Equal(res.status, tt.status)                               // the status
			is.Equal(res.header.Get("X-Content-Type-Options"), "nosniff") // never sniffed
			for k, v := range tt.header {
				is.Equal(res.header.Get(k), v) // the headers of the mode
			}
			if tt.status != 204 {
				is.True(strings.Contains(string(res.body), "recorded request")) // a line saying what happened
			}
			last := h.requests(t, "modes")[0]
			is.Equal(last.AnswerStatus, tt.status)      // recorded with its answer
			is.Equal(last.AnswerDelay, tt.answer.Delay) // and delay
			if tt.answer.Location != "" {
				// A browser that follows a link to the inbox is not sent on: the
				// redirect's Location goes with a webhook's POST alone.
				for _, m := range []string{http.MethodGet, http.MethodHead} {
					res := h.post(t, m, "/inbox/modes/cb", "")
					is.Equal(res.status, tt.status)          // the same status
					is.Equal(res.header.Get("Location"), "") // without where to
				}
				res := h.post(t, http.MethodGet, "/inbox/modes/cb", "")
				is.True(strings.Contains(string(res.body), tt.answer.Location)) // the line names it
			}
		})
	}
}

// TestInboxDelayEndsWhenCallerLeaves: a delayed answer (5 minutes here) ends as
// soon as the caller gives up, and at once when the server stops.
func TestInboxDelayEndsWhenCallerLeaves(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	_, err := h.st.SetInboxAnswer(context.Background(), "slow", store.InboxAnswer{Status: 500, Delay: store.MaxInboxDelay})
	is.NoErr(err) // answer after 5 minutes
	recorded, stop := h.st.WatchInbox()
	defer stop()

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/inbox/slow/x", nil)
		res, err := h.http.Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, recorded, "the request to be recorded")
	cancel()                                     // the caller's timeout
	is.True(errors.Is(<-errc, context.Canceled)) // the caller gave up
	select {
	case p := <-h.handled:
		is.Equal(p, "/inbox/slow/x") // the handler returned, long before its delay
	case <-time.After(30 * time.Second):
		t.Fatal("the inbox still waited 30s after its caller left")
	}

	// A shutdown ends the wait with a 503.
	resc := make(chan int, 1)
	go func() {
		res, err := h.http.Post(h.srv.URL+"/inbox/slow/y", "text/plain", nil)
		if err != nil {
			resc <- 0
			return
		}
		res.Body.Close()
		resc <- res.StatusCode
	}()
	waitFor(t, recorded, "the second request to be recorded")
	h.api.StopInbox()
	select {
	case status := <-resc:
		is.Equal(status, http.StatusServiceUnavailable) // hookd is stopping
	case <-time.After(30 * time.Second):
		t.Fatal("StopInbox did not end a delayed answer within 30s")
	}

	// Each record says what was answered, not the 500 after 5 minutes set.
	rs := h.requests(t, "slow")
	is.Equal(len(rs), 2)
	is.Equal(rs[1].Path, "/inbox/slow/x")
	is.Equal(rs[1].AnswerStatus, 0)                                                 // none: the caller left
	is.True(rs[1].AnswerDelay < store.MaxInboxDelay)                                // after its wait, not the delay set
	is.True(strings.HasPrefix(rs[1].AnswerWords(), "none: the caller left after ")) // and says so
	is.Equal(rs[0].AnswerStatus, http.StatusServiceUnavailable)                     // hookd stopping
	is.True(rs[0].AnswerDelay < store.MaxInboxDelay)
}

// TestInboxAnswersBoundedAtOnce: the inbox answers at most InboxOptions.MaxAnswering
// requests at once, a delayed answer while it waits included; past that a request
// is answered 503 at once and nothing is recorded, so connections held open by a
// delay cannot take hookd's memory.
func TestInboxAnswersBoundedAtOnce(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{}, func(o *httpapi.Options) { o.Inbox.MaxAnswering = 1 })
	_, err := h.st.SetInboxAnswer(context.Background(), "slow", store.InboxAnswer{Status: 500, Delay: store.MaxInboxDelay})
	is.NoErr(err) // answer after 5 minutes
	recorded, stop := h.st.WatchInbox()
	defer stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/inbox/slow/held", nil)
		res, err := h.http.Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, recorded, "the first request to be recorded")

	res := h.post(t, http.MethodPost, "/inbox/other/x", "hello")
	is.Equal(res.status, http.StatusServiceUnavailable)                        // refused while the first waits
	is.Equal(res.header.Get("Retry-After"), "5")                               // says when to try again
	is.True(strings.Contains(string(res.body), "nothing was recorded"))        // and that nothing changed
	is.True(strings.Contains(string(res.body), "answering 1 request already")) // and why
	is.Equal(len(h.requests(t, "other")), 0)                                   // not recorded

	cancel() // the first caller gives up
	is.True(errors.Is(<-errc, context.Canceled))
	for done := false; !done; {
		select {
		case p := <-h.handled:
			done = p == "/inbox/slow/held" // the refused request's came first
		case <-time.After(30 * time.Second):
			t.Fatal("the inbox still waited 30s after its caller left")
		}
	}
	res = h.post(t, http.MethodPost, "/inbox/other/x", "hello")
	is.Equal(res.status, http.StatusNoContent) // its place is free again
	is.Equal(len(h.requests(t, "other")), 1)
}

// TestInboxDelayOutlastsServerTimeouts: a delayed answer comes whole even when the
// delay is longer than the server's read and write timeouts (hookd serve's are 30 s
// and 60 s; a delay may be 5 minutes).
func TestInboxDelayOutlastsServerTimeouts(t *testing.T) {
	is := is.New(t)
	h := newInboxHarnessWith(t, store.InboxLimits{}, func(s *http.Server) {
		s.ReadTimeout, s.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond
	})
	_, err := h.st.SetInboxAnswer(context.Background(), "slow", store.InboxAnswer{Status: 500, Delay: 400 * time.Millisecond})
	is.NoErr(err) // a delay four times the server's timeouts
	res := h.post(t, http.MethodPost, "/inbox/slow/x", "x")
	is.Equal(res.status, http.StatusInternalServerError)            // the answer set, not a default 200 or a cut connection
	is.True(strings.Contains(string(res.body), "recorded request")) // whole
}

func waitFor(tb testing.TB, ch <-chan struct{}, what string) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		tb.Fatalf("waited 30s for %s", what)
	}
}

// TestInboxSignatureOverHTTP: a request signed with the official library and the
// secret of a client whose registration calls the inbox is valid; with a changed
// body, or another client's secret, invalid.
func TestInboxSignatureOverHTTP(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	c := h.client(t, "signer", store.ScopeWebhook)
	_, _, err := h.st.PutOrcidWebhook(context.Background(), c.ID, "0000-0002-1825-0097", h.self.Base()+"/inbox/sig")
	is.NoErr(err) // its registration calls the inbox
	other := h.client(t, "another", store.ScopeWebhook)
	const body = `{"type":"orcid.record.updated"}`
	wh, err := standardwebhooks.NewWebhook(c.SigningSecret)
	is.NoErr(err) // the official library
	sig, err := wh.Sign("msg_x", h.clock.Now(), []byte(body))
	is.NoErr(err) // signs
	ts := strconv.FormatInt(h.clock.Now().Unix(), 10)
	h.post(t, http.MethodPost, "/inbox/sig", body, "webhook-id", "msg_x", "webhook-timestamp", ts, "webhook-signature", sig)
	h.post(t, http.MethodPost, "/inbox/sig", body+"!", "webhook-id", "msg_x", "webhook-timestamp", ts, "webhook-signature", sig)
	owh, err := standardwebhooks.NewWebhook(other.SigningSecret)
	is.NoErr(err)
	osig, err := owh.Sign("msg_y", h.clock.Now(), []byte(body))
	is.NoErr(err) // signed with the secret of a client none of whose webhooks call the inbox
	h.post(t, http.MethodPost, "/inbox/sig", body, "webhook-id", "msg_y", "webhook-timestamp", ts, "webhook-signature", osig)
	rs := h.requests(t, "sig")
	is.Equal(rs[2].Signature.Verdict, store.VerdictValid)                    // the first: valid
	is.Equal(rs[2].Signature.Signer, store.Signer{Kind: "client", ID: c.ID}) // the client's secret
	is.Equal(rs[1].Signature.Verdict, store.VerdictInvalid)                  // the changed body: invalid
	is.Equal(rs[1].Signature.Problem, store.SignatureWrong)                  // wrong secret
	is.Equal(rs[0].Signature.Verdict, store.VerdictInvalid)                  // another client's secret: invalid
	is.Equal(rs[0].Signature.Problem, store.SignatureWrong)                  // not named
	is.Equal(rs[0].Signature.Signer, store.Signer{})
}

// TestInboxRegistration: with private targets refused, a registration may name
// hookd's own inbox, and nothing else on hookd's address or another loopback port.
func TestInboxRegistration(t *testing.T) {
	h := newInboxHarness(t, store.InboxLimits{})
	tok := h.webhookToken(t, "dev")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	own := h.self.Base()
	for _, tt := range []struct {
		callback string
		status   int
	}{
		{own + "/inbox/demo/0000-0002-7253-3645/updated", http.StatusCreated},
		{own + "/healthz", http.StatusBadRequest},
		{own + "/inbox/../metrics", http.StatusBadRequest},
		{other.URL + "/inbox/demo", http.StatusBadRequest},
		{"http://localhost:" + strings.Split(own, ":")[2] + "/inbox/demo", http.StatusBadRequest},
	} {
		t.Run(tt.callback, func(t *testing.T) {
			is := is.New(t)
			res := h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment(tt.callback)), tok, "Accept", "application/json")
			is.Equal(res.status, tt.status) // registered, or refused
			if tt.status == http.StatusBadRequest {
				orcidError(t, res, http.StatusBadRequest, 9012) // as a callback the SSRF guard refuses
			}
		})
	}
	is := is.New(t)
	rec := platformCreate(t, h.harness, tok, `{"targetURL":"`+own+`/inbox/platform","auth":{"type":"noauth"}}`)
	is.Equal(rec.TargetURL, own+"/inbox/platform") // a platform webhook may call the inbox too
	res := platformCall(t, h.harness, http.MethodPost, platformPath, tok, `{"targetURL":"`+own+`/metrics","auth":{"type":"noauth"}}`)
	platformProblem(t, res, http.StatusBadRequest) // and nothing else of hookd's
}

// TestInboxIsNoTokenURL: hookd's own inbox is an exception for a webhook's
// target only: a client_credential token URL there is refused as any loopback
// one is, and the refusal says so, not that the inbox is off.
func TestInboxIsNoTokenURL(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{})
	tok := h.webhookToken(t, "dev")
	own := h.self.Base()
	res := platformCall(t, h.harness, http.MethodPost, platformPath, tok, `{"targetURL":"`+own+`/inbox/platform",`+
		`"auth":{"type":"client_credential","clientID":"app","clientSecret":"app-secret","tokenURL":"`+own+`/inbox/tokens"}}`)
	p := platformProblem(t, res, http.StatusBadRequest)
	is.True(strings.Contains(p.Detail, "auth.tokenURL"))                                                                // naming the field
	is.True(strings.Contains(p.Detail, "127.0.0.0/8 (Loopback)"))                                                       // and why it is refused
	is.True(!strings.Contains(p.Detail, "[inbox] enabled = true"))                                                      // not the inbox being off: it is on
	is.True(strings.Contains(p.Detail, "hookd's own inbox is called as a webhook's targetURL only, never for a token")) // what holds
}

// TestInboxOff: without the inbox option, /inbox/ is no route and hookd's own
// address gets no exception.
func TestInboxOff(t *testing.T) {
	is := is.New(t)
	h := newInboxHarness(t, store.InboxLimits{}, func(o *httpapi.Options) { o.Inbox = nil })
	res := h.post(t, http.MethodPost, "/inbox/demo", "x")
	is.Equal(res.status, http.StatusNotFound)                                                               // no inbox
	is.True(strings.Contains(string(res.body), "hookd's inbox is off: [inbox] enabled = true turns it on")) // saying why, and what to do
	tok := h.webhookToken(t, "dev")
	res = h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment(h.self.Base()+"/inbox/demo")), tok, "Accept", "application/json")
	orcidError(t, res, http.StatusBadRequest, 9012) // loopback, refused like any other
}

// TestInboxStoreFault: a request to an inbox that meets a store fault (a
// database that takes no writes, then hookd stopping) is answered 503 with
// Retry-After and the fault's words, as the APIs answer it, and logged as they
// log it, once a minute for each fault: it was a 500 "internal error", and each
// request, every delivery of a webhook pointed at the inbox, logged a line.
func TestInboxStoreFault(t *testing.T) {
	is := is.New(t)
	logs := &lockedBuffer{}
	h := newInboxHarness(t, store.InboxLimits{}, func(o *httpapi.Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	is.Equal(h.post(t, http.MethodPost, "/inbox/demo/x", "hi").status, http.StatusNoContent) // recorded
	is.NoErr(h.st.QueryOnly(context.Background(), true))                                     // a database that takes no writes
	for range 3 {
		res := h.post(t, http.MethodPost, "/inbox/demo/x", "hi")
		is.Equal(res.status, http.StatusServiceUnavailable) // to send again, not an error
		is.Equal(res.header.Get("Retry-After"), "10")
		is.Equal(string(res.body), "the database is read-only: check the permissions and the mount of the database file and its folder; nothing was recorded, try again later\n")
	}
	is.NoErr(h.st.Close())
	res := h.post(t, http.MethodPost, "/inbox/demo/x", "hi")
	is.Equal(res.status, http.StatusServiceUnavailable)
	is.True(strings.HasPrefix(string(res.body), "hookd is stopping: nothing of this call was stored")) // another fault
	out := logs.String()
	is.True(!strings.Contains(out, `msg="request failed"`))                           // no internal error
	is.Equal(strings.Count(out, `level=ERROR msg="request refused: store fault"`), 2) // each fault once
	is.Equal(strings.Count(out, "the database is read-only"), 1)
}
