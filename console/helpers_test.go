package console_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"maps"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/console"
	"hookd/secret"
	"hookd/store"
)

// Records of ORCID's documentation, with valid check digits.
const (
	recordX  = "0000-0002-7253-3645" // client B's ORCID-style registration
	memberA  = "0000-0002-9079-593X" // a member of organisation A
	memberB  = "0000-0001-5109-3700" // a member of organisation B
	adminTok = "operator-admin-token-0123456789"
)

// clock is a pinned clock for the store (and so the console) that tests move.
type clock struct{ ms atomic.Int64 }

func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// env is the console on a real store behind a real HTTP server, with a small world:
// clients A and B, an /admin client, organisations A and B (each with a member, a
// webhook and a staff client), A's platform webhook for every record, B's
// ORCID-style registration, hookd's upstream registration, and their deliveries.
type env struct {
	h      *console.Handler
	path   string // the database file
	st     *store.Store
	clock  *clock
	srv    *httptest.Server
	nudges atomic.Int32
	opts   console.Options

	a, b, admin, staffA, staffB store.Credentials
	orgA, orgB                  store.Organisation
	hookA, hookB                store.Subscription // A's platform, B's ORCID-style
	orgHookA, orgHookB          store.Subscription
	upstream                    store.Subscription
	delA, delB, delOrgA         store.Delivery
}

// newEnv builds the env with its world; opt may change the console's options.
func newEnv(tb testing.TB, opt ...func(*console.Options)) *env {
	tb.Helper()
	e := openEnv(tb)
	e.seed(tb)
	e.start(tb, opt...)
	return e
}

// openEnv opens a store with its clock pinned at 2024-03-01 12:00 UTC, and nothing in it.
func openEnv(tb testing.TB) *env {
	tb.Helper()
	is := is.New(tb)
	box, err := secret.NewBox(secret.Random(secret.KeySize))
	is.NoErr(err)
	path := filepath.Join(tb.TempDir(), "hookd.db")
	st, err := store.Open(context.Background(), store.Options{Path: path, Box: box})
	is.NoErr(err) // open store
	tb.Cleanup(func() { st.Close() })
	e := &env{path: path, st: st, clock: &clock{}}
	e.clock.ms.Store(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	st.Now = e.clock.Now
	e.opts = console.Options{
		Store:      st,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		AdminToken: adminTok,
		PublicURL:  "http://127.0.0.1:8080",
		Nudge:      func() { e.nudges.Add(1) },
		Version:    "test",
	}
	return e
}

// start serves the console on the env's store.
func (e *env) start(tb testing.TB, opt ...func(*console.Options)) {
	tb.Helper()
	for _, o := range opt {
		o(&e.opts)
	}
	h := console.New(e.opts)
	e.h = h
	// As hookd's proxy handling does for a trusted proxy, the test server takes a
	// request's address from a header, so a test can come from several.
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if from := r.Header.Get(testFrom); from != "" {
			r.RemoteAddr = net.JoinHostPort(from, "40000")
		}
		h.ServeHTTP(w, r)
	}))
	tb.Cleanup(e.srv.Close)
}

// testFrom is the header a test sends the address its request comes from in.
const testFrom = "X-Test-From"

// seed makes the env's world. Its targets are names under .example: the handler
// tests call nothing, and the deliveries are due only an hour after the start.
func (e *env) seed(tb testing.TB) {
	tb.Helper()
	is := is.New(tb)
	ctx := context.Background()
	st := e.st
	var err error
	client := func(name string, scopes ...string) store.Credentials {
		c, err := st.CreateClient(ctx, store.NewClient{Name: name, Scopes: scopes})
		is.NoErr(err) // create client
		return c
	}
	e.a = client("client-a", store.ScopeWebhook)
	e.b = client("client-b", store.ScopeWebhook)
	e.admin = client("admin", store.ScopeAdmin)
	e.orgA, err = st.CreateOrganisation(ctx, "University A", "it@a.example")
	is.NoErr(err)
	e.orgB, err = st.CreateOrganisation(ctx, "University B", "it@b.example")
	is.NoErr(err)
	e.staffA, err = st.CreateOrgClient(ctx, e.orgA.ID, store.NewClient{Name: "staff-a", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	e.staffB, err = st.CreateOrgClient(ctx, e.orgB.ID, store.NewClient{Name: "staff-b", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, err = st.PutMember(ctx, e.orgA.ID, memberA, store.MemberInfo{}, 0)
	is.NoErr(err)
	_, err = st.PutMember(ctx, e.orgB.ID, memberB, store.MemberInfo{}, 0)
	is.NoErr(err)
	for _, o := range []store.Organisation{e.orgA, e.orgB} {
		_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://hooks.example/" + o.Name})
		is.NoErr(err)
	}
	_, _, err = st.CreateWebhook(ctx, e.a.ID, store.WebhookSpec{TargetURL: "https://a.example/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, e.b.ID, recordX, "https://b.example/cb")
	is.NoErr(err)
	_, err = st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err)
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: recordX}, {Orcid: memberA}, {Orcid: memberB}}, time.Hour)
	is.NoErr(err)

	hooks, err := st.Subscriptions(ctx, store.SubscriptionFilter{})
	is.NoErr(err)
	for _, h := range hooks {
		switch {
		case h.ClientID == e.a.ID:
			e.hookA = h
		case h.ClientID == e.b.ID:
			e.hookB = h
		case h.OrgID == e.orgA.ID:
			e.orgHookA = h
		case h.OrgID == e.orgB.ID:
			e.orgHookB = h
		case h.Format == store.FormatUpstream:
			e.upstream = h
		}
	}
	first := func(uid string) store.Delivery {
		ds, err := st.Deliveries(ctx, store.DeliveryFilter{Webhook: uid, Limit: 1})
		is.NoErr(err)
		is.Equal(len(ds), 1) // the webhook has a delivery
		return ds[0]
	}
	e.delA, e.delB, e.delOrgA = first(e.hookA.UID), first(e.hookB.UID), first(e.orgHookA.UID)
}

// rawDB opens the env's database file directly, to look at what the store wrote.
func (e *env) rawDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+e.path+"?mode=ro")
	is.New(tb).NoErr(err)
	tb.Cleanup(func() { db.Close() })
	return db
}

// user is a browser-like HTTP client: a cookie jar, no redirects followed, and the
// CSRF token of its session once signed in.
type user struct {
	e    *env
	http *http.Client
	csrf string
	from string // the address the console sees the user's requests come from ("": 127.0.0.1)
}

func (e *env) newUser(tb testing.TB) *user {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	is.New(tb).NoErr(err)
	return &user{e: e, http: &http.Client{Jar: jar, Transport: ownTransport(tb), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// ownTransport is a transport of the test's own, its idle connections closed
// when the test ends. Not http.DefaultTransport: every httptest.Server's Close
// closes that one's idle connections, and a parallel test's Close could break
// one the moment it was taken for a request ("HTTP/1.x transport connection
// broken: http: CloseIdleConnections called").
func ownTransport(tb testing.TB) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(tr.CloseIdleConnections)
	return tr
}

// page is a fully read response.
type page struct {
	status   int
	header   http.Header
	body     string
	location string
}

func (u *user) do(tb testing.TB, req *http.Request) page {
	tb.Helper()
	is := is.New(tb)
	if u.from != "" {
		req.Header.Set(testFrom, u.from)
	}
	res, err := u.http.Do(req)
	is.NoErr(err) // request
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	is.NoErr(err)
	return page{status: res.StatusCode, header: res.Header, body: string(b), location: res.Header.Get("Location")}
}

func (u *user) get(tb testing.TB, path string) page {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, u.e.srv.URL+path, nil)
	is.New(tb).NoErr(err)
	return u.do(tb, req)
}

// post sends a form with the session's CSRF token (unless the form has its own).
func (u *user) post(tb testing.TB, path string, form url.Values) page {
	tb.Helper()
	form = url.Values(maps.Clone(form)) // the caller's stays as it was
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", u.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, u.e.srv.URL+path, strings.NewReader(form.Encode()))
	is.New(tb).NoErr(err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return u.do(tb, req)
}

// upload posts a multipart form with one file, and the session's CSRF token.
func (u *user) upload(tb testing.TB, path string, fields url.Values, field, filename, content string) page {
	tb.Helper()
	is := is.New(tb)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	is.NoErr(mw.WriteField("csrf", u.csrf))
	for k, vs := range fields {
		for _, v := range vs {
			is.NoErr(mw.WriteField(k, v))
		}
	}
	fw, err := mw.CreateFormFile(field, filename)
	is.NoErr(err)
	_, err = io.WriteString(fw, content)
	is.NoErr(err)
	is.NoErr(mw.Close())
	req, err := http.NewRequest(http.MethodPost, u.e.srv.URL+path, &buf)
	is.NoErr(err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return u.do(tb, req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signInForm opens the sign-in page and returns its form's CSRF token.
func (u *user) signInForm(tb testing.TB) string {
	tb.Helper()
	is := is.New(tb)
	p := u.get(tb, "/console/signin")
	is.Equal(p.status, http.StatusOK) // the sign-in page
	m := csrfField.FindStringSubmatch(p.body)
	is.True(m != nil) // the form carries a CSRF token
	return m[1]
}

// signIn signs in with a client's id and secret (or, with id "", the admin token
// as secret) and keeps the session's CSRF token.
func (u *user) signIn(tb testing.TB, id, secret string) page {
	tb.Helper()
	form := url.Values{"csrf": {u.signInForm(tb)}, "client_id": {id}, "secret": {secret}, "kind": {"client"}}
	if id == "" {
		form = url.Values{"csrf": form["csrf"], "token": {secret}, "kind": {"token"}}
	}
	p := u.post(tb, "/console/signin", form)
	if p.status == http.StatusSeeOther {
		home := u.get(tb, "/console/")
		if m := csrfField.FindStringSubmatch(home.body); m != nil {
			u.csrf = m[1]
		}
	}
	return p
}

// as returns a user signed in as one of the env's principals: "token", "admin",
// "a", "b", "staffA", "staffB".
func (e *env) as(tb testing.TB, who string) *user {
	tb.Helper()
	u := e.newUser(tb)
	var p page
	switch who {
	case "token":
		p = u.signIn(tb, "", adminTok)
	default:
		c := map[string]store.Credentials{"admin": e.admin, "a": e.a, "b": e.b, "staffA": e.staffA, "staffB": e.staffB}[who]
		p = u.signIn(tb, c.ID, c.Secret)
	}
	if p.status != http.StatusSeeOther || u.csrf == "" {
		tb.Fatalf("sign in as %s: status %d, csrf %q", who, p.status, u.csrf)
	}
	return u
}
