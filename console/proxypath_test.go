package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/console"
)

// attrURL finds the addresses a page gives the browser: links, forms, assets and
// the data attributes its script reads.
var attrURL = regexp.MustCompile(`(href|src|action|data-[a-z-]+)="(/[^"]*)"`)

// TestBehindProxyPath: behind a proxy that serves hookd under /hookd/ and takes
// that path off (http.public_url "…/hookd"), the console works as the browser
// reaches it: sign-in, its redirects and cookies, and every page's links, forms
// and assets are under /hookd/; a deep link signed out comes back to itself.
func TestBehindProxyPath(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(o *console.Options) { o.AdminToken, o.PublicURL = adminTok, "http://hookd.example/hookd/" })
	target, err := url.Parse(e.srv.URL)
	is.NoErr(err)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/hookd/") {
			http.Error(w, "not hookd's", http.StatusNotFound) // what else the proxy serves
			return
		}
		(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/hookd")
			pr.Out.URL.RawPath = ""
		}}).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	jar, err := cookiejar.New(nil)
	is.NoErr(err)
	c := &http.Client{Jar: jar, Transport: ownTransport(t), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, string, string) {
		t.Helper()
		res, err := c.Get(proxy.URL + path)
		is.NoErr(err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		is.NoErr(err)
		return res.StatusCode, res.Header.Get("Location"), string(b)
	}

	// A deep link, signed out, leads to the sign-in page under the path.
	status, loc, _ := get("/hookd/console/webhooks")
	is.Equal(status, http.StatusSeeOther)
	is.Equal(loc, "/hookd/console/signin?next=%2Fhookd%2Fconsole%2Fwebhooks")
	status, _, body := get(loc)
	is.Equal(status, http.StatusOK) // the sign-in page, through the proxy
	m := csrfField.FindStringSubmatch(body)
	is.True(m != nil) // with its form's token, in a cookie the browser sends back
	is.True(strings.Contains(body, `name="next" value="/hookd/console/webhooks"`))
	res, err := c.PostForm(proxy.URL+"/hookd/console/signin", url.Values{"csrf": {m[1]}, "kind": {"token"}, "token": {adminTok}, "next": {"/hookd/console/webhooks"}})
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusSeeOther)                                   // signed in
	is.Equal(res.Header.Get("Location"), "/hookd/console/webhooks")                 // back to the deep link
	is.True(strings.Contains(res.Header.Get("Set-Cookie"), "Path=/hookd/console/")) // the session's cookie under the path

	// Every page reachable from the overview, and everything each links to.
	seen := map[string]bool{"/hookd/console/": true}
	queue := []string{"/hookd/console/"}
	pages, links := 0, 0
	for len(queue) > 0 && pages < 80 {
		p := queue[0]
		queue = queue[1:]
		status, loc, body := get(p)
		if status == http.StatusSeeOther || status == http.StatusFound || status == http.StatusMovedPermanently {
			is.True(strings.HasPrefix(loc, "/hookd/")) // a redirect stays under the path
			continue
		}
		if status != http.StatusOK {
			t.Fatalf("GET %s through the proxy: %d", p, status)
		}
		pages++
		for _, a := range attrURL.FindAllStringSubmatch(body, -1) {
			links++
			u := strings.ReplaceAll(a[2], "&amp;", "&")
			if !strings.HasPrefix(u, "/hookd/") {
				t.Fatalf("%s gives the browser %s=%q, not under /hookd/", p, a[1], a[2])
			}
			if (a[1] == "href" || a[1] == "src") && !seen[u] && !strings.Contains(u, "/signout") {
				seen[u] = true
				queue = append(queue, u)
			}
		}
	}
	is.True(pages >= 10)  // the crawl went through the console's sections
	is.True(links >= 100) // and checked their addresses
	_, _, body = get("/hookd/console/inbox")
	is.True(strings.Contains(body, `data-live="/hookd/console/inbox/events`)) // the live view's stream too

	res, err = c.PostForm(proxy.URL+"/hookd/console/signout", url.Values{"csrf": {csrfField.FindStringSubmatch(body)[1]}})
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusSeeOther)
	is.Equal(res.Header.Get("Location"), "/hookd/console/signin?done=signedout") // signed out, under the path
}

// TestBehindProxyPathKeepsWhatWasTyped: behind a proxy that serves hookd under a
// path, what a reader typed and a page shows again (a refused form's fields, a
// filter's) is shown as typed, even when it starts with /console/: only the page's
// own addresses are put under the path, so sending the form again sends what was
// typed.
func TestBehindProxyPathKeepsWhatWasTyped(t *testing.T) {
	is := is.New(t)
	_, u := signedInBehindProxyPath(t, "/hookd")

	refused := u.post(t, "/hookd/console/clients", url.Values{"name": {"/console/reports"}, "email": {"not an address"}, "scope_webhook": {"on"}})
	is.Equal(refused.status, http.StatusBadRequest)                                                           // the e-mail address is refused
	is.True(strings.Contains(refused.body, `<input id="name" name="name" value="/console/reports" required`)) // the name as typed
	is.True(strings.Contains(refused.body, `action="/hookd/console/clients"`))                                // the form's own address under the path
	for path, field := range map[string]string{
		"/hookd/console/webhooks?url=/console/hooks":     `name="url" value="/console/hooks"`,
		"/hookd/console/audit?actor=/console/someone":    `name="actor" value="/console/someone"`,
		"/hookd/console/deliveries?client=/console/nope": `name="client" value="/console/nope"`,
	} {
		p := u.get(t, path)
		if !strings.Contains(p.body, field) {
			t.Errorf("GET %s: the filter's field is not %s as typed", path, field)
		}
	}
}

// TestBehindProxyPathCleansUnderThePath: an address that is not in its clean form
// (a doubled slash, which a browser keeps and some proxies pass on as it is) is
// sent to its clean form under the path, not to the host's /console/, which is not
// hookd's.
func TestBehindProxyPathCleansUnderThePath(t *testing.T) {
	p := newPathProxy(t)
	e := newEnv(t, func(o *console.Options) { o.PublicURL = p.front() })
	p.start(e.srv.URL)
	e.srv = p.srv // the reader goes through the proxy
	u := e.newUser(t)
	for from, to := range map[string]string{
		"/hookd/console//webhooks":           "/hookd/console/webhooks",
		"/hookd/console/./clients?after=1:x": "/hookd/console/clients?after=1:x",
		"/hookd/console//assets/console.css": "/hookd/console/assets/console.css",
		"/hookd/console//signin":             "/hookd/console/signin",
	} {
		t.Run(from, func(t *testing.T) {
			is := is.New(t)
			p := u.get(t, from)
			is.Equal(p.status, http.StatusTemporaryRedirect)
			is.Equal(p.location, to) // under the path
		})
	}
}

// TestBehindProxyPathNextStaysUnderThePath: behind a proxy that serves hookd under
// a path, the sign-in leads back to next only where the browser, resolving it,
// stays in hookd's console: /hookd/../console/x is the host's /console/x, not
// hookd's, and leads to the overview.
func TestBehindProxyPathNextStaysUnderThePath(t *testing.T) {
	p := newPathProxy(t)
	e := newEnv(t, func(o *console.Options) { o.PublicURL = p.front() })
	p.start(e.srv.URL)
	e.srv = p.srv // the reader goes through the proxy
	for next, want := range map[string]string{
		"/hookd/console/deliveries?state=dead": "/hookd/console/deliveries?state=dead",
		"/console/webhooks":                    "/hookd/console/webhooks",
		"/hookd/../console/webhooks":           "/hookd/console/",
		"/hookd/%2e%2e/console/webhooks":       "/hookd/console/",
		"/hookd/./console/webhooks":            "/hookd/console/",
		"/hookd/console/../../console/x":       "/hookd/console/",
	} {
		t.Run(next, func(t *testing.T) {
			is := is.New(t)
			u := e.newUser(t)
			form := u.get(t, "/hookd/console/signin?next="+url.QueryEscape(next))
			m := csrfField.FindStringSubmatch(form.body)
			is.True(m != nil) // the sign-in form
			p := u.post(t, "/hookd/console/signin", url.Values{"csrf": {m[1]}, "kind": {"token"}, "token": {adminTok}, "next": {next}})
			is.Equal(p.status, http.StatusSeeOther) // signed in
			is.Equal(p.location, want)              // and sent on
		})
	}
}

// TestBehindProxyPathCancelLeadsBack: behind a proxy that serves hookd under a
// path, the Cancel of a page that asks first leads back to the page asked on under
// the path, whether its back field names that page as the console has it (as the
// page gives it) or as the browser does; one that leaves hookd's console leads to
// the organisation's page: /console without its slash too, which the page's
// addresses under the path are not made from, and which is the host's /console.
func TestBehindProxyPathCancelLeadsBack(t *testing.T) {
	is := is.New(t)
	e, u := signedInBehindProxyPath(t, "/hookd")

	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	page := u.get(t, "/hookd"+org+"?after="+memberB)
	is.True(strings.Contains(page.body, `<input type="hidden" name="back" value="`+org+`?after=`+memberB+`">`)) // the page, as the console has it
	for back, want := range map[string]string{
		org + "?after=" + memberB:            "/hookd" + org + "?after=" + memberB,
		"/hookd" + org + "?after=" + memberB: "/hookd" + org + "?after=" + memberB,
		"/hookd/.." + org:                    "/hookd" + org,
		"/console":                           "/hookd" + org,
		"/console?after=" + memberB:          "/hookd" + org,
		"/hookd/console":                     "/hookd" + org,
	} {
		q := u.post(t, "/hookd"+org+"/members/"+memberA+"/remove", url.Values{"back": {back}})
		is.Equal(q.status, http.StatusOK)
		if c := regexp.MustCompile(`<a href="([^"]*)">Cancel</a>`).FindStringSubmatch(q.body); c == nil || c[1] != want {
			t.Errorf("back %q: Cancel leads to %v, not %s", back, c, want)
		}
	}
}

// TestBehindProxyPathConsole: behind a proxy that serves hookd under /console/
// (public_url "…/console", the console at /console/console/), a page's back field
// and the sign-in's next lead to the console page they name, whether they name it
// as the console has it (/console/organisations/1, as the page gives it) or as the
// browser does (/console/console/organisations/1): the first lost /console as the
// base path and was refused, so that Cancel and the confirmed change led to the
// list's first page and the sign-in to the overview. What leaves the console, and
// the sign-in, are refused under this path too.
func TestBehindProxyPathConsole(t *testing.T) {
	e, u := signedInBehindProxyPath(t, "/console")
	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	page := u.get(t, "/console"+org+"?after="+memberB)
	is.New(t).True(strings.Contains(page.body, `<input type="hidden" name="back" value="`+org+`?after=`+memberB+`">`)) // the page, as the console has it

	cancel := regexp.MustCompile(`<a href="([^"]*)">Cancel</a>`)
	for back, want := range map[string]string{
		org + "?after=" + memberB:              "/console" + org + "?after=" + memberB,
		"/console" + org + "?after=" + memberB: "/console" + org + "?after=" + memberB,
		"/console/console/":                    "/console/console/",
		"/console":                             "/console" + org,
		"/console/console":                     "/console" + org,
		"/console/console?after=" + memberB:    "/console" + org,
		"/console/signin":                      "/console" + org,
		"/console/console/signin?next=" + org:  "/console" + org,
		"/console/.." + org:                    "/console" + org,
		"/console/console/../.." + org:         "/console" + org,
		"/console/%2e%2e" + org:                "/console" + org,
		"//evil.example" + org:                 "/console" + org,
		"//evil.example/console" + org:         "/console" + org,
		"http://evil.example/console" + org:    "/console" + org,
		"/console/console\\organisations":      "/console" + org,
		"/console\\console" + org:              "/console" + org,
	} {
		q := u.post(t, "/console"+org+"/members/"+memberA+"/remove", url.Values{"back": {back}})
		if q.status != http.StatusOK {
			t.Fatalf("back %q: the question is %d", back, q.status)
		}
		if c := cancel.FindStringSubmatch(q.body); c == nil || c[1] != want {
			t.Errorf("back %q: Cancel leads to %v, not %s", back, c, want)
		}
	}

	// The change confirmed leads back to the page asked on, with its flash.
	done := u.post(t, "/console"+org+"/members/"+memberA+"/remove", url.Values{"confirm": {"yes"}, "back": {org + "?after=" + memberB}})
	is.New(t).Equal(done.status, http.StatusSeeOther)
	if want := "/console" + org + "?after=" + memberB + "&done=removed"; done.location != want {
		t.Errorf("the removal leads to %s, not %s", done.location, want)
	}

	for next, want := range map[string]string{
		"/console/deliveries?state=dead":            "/console/console/deliveries?state=dead",
		"/console/console/deliveries?state=dead":    "/console/console/deliveries?state=dead",
		"/console/console":                          "/console/console/",
		"/console/console/signin":                   "/console/console/",
		"/console/signin?next=%2Fconsole%2Fclients": "/console/console/",
		"/console/../console/webhooks":              "/console/console/",
		"/console/%2e%2e/console/webhooks":          "/console/console/",
		"/console/console/../../console/webhooks":   "/console/console/",
		"//evil.example/console/webhooks":           "/console/console/",
	} {
		t.Run(next, func(t *testing.T) {
			is := is.New(t)
			u := e.newUser(t)
			form := u.get(t, "/console/console/signin?next="+url.QueryEscape(next))
			m := csrfField.FindStringSubmatch(form.body)
			is.True(m != nil)                                                    // the sign-in form
			is.True(strings.Contains(form.body, `name="next" value="`+want+`"`)) // it names where it leads
			p := u.post(t, "/console/console/signin", url.Values{"csrf": {m[1]}, "kind": {"token"}, "token": {adminTok}, "next": {next}})
			is.Equal(p.status, http.StatusSeeOther) // signed in
			is.Equal(p.location, want)              // and sent on
		})
	}
}

// signedInBehindProxyPath is a console served under the path under (/hookd) by a
// proxy that takes the path off, and its operator signed in through it with the
// admin token.
func signedInBehindProxyPath(t *testing.T, under string) (*env, *user) {
	t.Helper()
	p := newPathProxyUnder(t, under)
	e := newEnv(t, func(o *console.Options) { o.PublicURL = p.front() })
	p.start(e.srv.URL)
	e.srv = p.srv // the reader goes through the proxy
	return e, e.operatorUnder(t, under)
}

// operatorUnder is the env's operator signed in with the admin token through a
// proxy that serves the console under the path under.
func (e *env) operatorUnder(t *testing.T, under string) *user {
	t.Helper()
	is := is.New(t)
	u := e.newUser(t)
	signin := u.get(t, under+"/console/signin")
	m := csrfField.FindStringSubmatch(signin.body)
	is.True(m != nil) // the sign-in form
	is.Equal(u.post(t, under+"/console/signin", url.Values{"csrf": {m[1]}, "kind": {"token"}, "token": {adminTok}}).status, http.StatusSeeOther)
	u.csrf = csrfField.FindStringSubmatch(u.get(t, under+"/console/").body)[1]
	return u
}
