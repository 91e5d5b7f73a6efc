package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"hookd/console"
	"hookd/dispatch"
	"hookd/httpapi"
)

// pathProxy is a reverse proxy on 127.0.0.1 that serves hookd under /hookd/ (or
// another path) and takes that path off, as nginx's `location /hookd/ { proxy_pass
// …/; }` does, and serves a page of its own at any other path (another application
// of the same host), noting the cookies a browser sends it.
type pathProxy struct {
	srv   *httptest.Server
	under string // the path hookd is served under, "/hookd"
	mu    sync.Mutex
	// others are the Cookie headers the browser sent to the other application.
	others []string
}

// newPathProxy starts the proxy under /hookd, unstarted until target is known:
// its address makes hookd's public URL.
func newPathProxy(t *testing.T) *pathProxy {
	t.Helper()
	return newPathProxyUnder(t, "/hookd")
}

// newPathProxyUnder is newPathProxy serving hookd under the path under.
func newPathProxyUnder(t *testing.T, under string) *pathProxy {
	t.Helper()
	p := &pathProxy{srv: httptest.NewUnstartedServer(nil), under: under}
	t.Cleanup(p.srv.Close)
	return p
}

// front is hookd's address as the browser reaches it: http.public_url.
func (p *pathProxy) front() string { return "http://" + p.srv.Listener.Addr().String() + p.under }

// start forwards /hookd/… to target, without /hookd.
func (p *pathProxy) start(target string) {
	u, err := url.Parse(target)
	if err != nil {
		panic(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, p.under)
		pr.Out.URL.RawPath = ""
		pr.SetXForwarded()
	}}
	p.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == p.under || strings.HasPrefix(r.URL.Path, p.under+"/") {
			rp.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		if c := r.Header.Get("Cookie"); c != "" {
			p.others = append(p.others, r.URL.Path+": "+c)
		}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>Other</title><main><h1>Another application</h1></main></html>`)
	})
	p.srv.Start()
}

// newProxiedStack is the daemon's HTTP side (the API with the inbox and the console)
// on the env's world, behind a proxy that serves it under /hookd/: its public URL
// is the proxy's.
func newProxiedStack(t *testing.T) (*stack, *pathProxy) {
	t.Helper()
	e := openEnv(t)
	e.seed(t)
	p := newPathProxy(t)
	s := &stack{env: e}
	s.disp = dispatch.New(dispatch.Options{Store: s.st, AllowPrivateTargets: true, Timeout: 10 * time.Second, Workers: 4, PerHost: 2})
	t.Cleanup(s.disp.Close)
	opts := s.opts
	opts.Nudge, opts.InboxEnabled, opts.PublicURL = s.disp.Nudge, true, p.front()
	cons := console.New(opts)
	api := httpapi.NewServer(httpapi.Options{Store: s.st, Logger: s.opts.Logger, Console: cons, Nudge: s.disp.Nudge,
		PublicURL: p.front(), AllowPrivateTargets: true, Inbox: &httpapi.InboxOptions{}})
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(cons.Shutdown) // before the servers close: the live views' streams end
	p.start(srv.URL)
	s.url = p.front()
	return s, p
}

// TestBrowserBehindProxyPath follows an operator through the console as a browser
// reaches it behind a proxy that serves hookd under /hookd/ (http.public_url
// "http://127.0.0.1:PORT/hookd"): a deep link signed out, the sign-in and back, every
// section of the navigation, the inbox page's live view, a form that redirects
// (a client created and removed, a delivery replayed) and sign-out all stay under
// /hookd/, with cookies the browser keeps for hookd's path only.
func TestBrowserBehindProxyPath(t *testing.T) {
	b := newBrowser(t)
	s, proxy := newProxiedStack(t)
	front := s.url
	tab := b.tab()
	// under fails the test unless the tab's address is under the path, and returns
	// the rest of it.
	under := func(t *testing.T, what string) string {
		t.Helper()
		loc := get(t, tab, "location", chromedp.Location())
		if !strings.HasPrefix(loc, front+"/console/") {
			t.Fatalf("%s: the browser is at %s, not under %s/console/", what, loc, front)
		}
		return strings.TrimPrefix(loc, front)
	}
	// styled says the page's style sheet came through the proxy.
	styled := func(t *testing.T) bool {
		return get(t, tab, "style sheet", chromedp.Evaluate[bool](`Array.from(document.styleSheets).some(s => s.cssRules.length > 0)`))
	}

	t.Run("a deep link, signed out, comes back after the sign-in", func(t *testing.T) {
		is := is.New(t)
		do(t, tab, "the deliveries, signed out", chromedp.Navigate(front+"/console/deliveries?state=pending"), chromedp.WaitVisible(css("#token")))
		is.Equal(under(t, "sign-in"), "/console/signin?next=%2Fhookd%2Fconsole%2Fdeliveries%3Fstate%3Dpending")
		is.True(styled(t)) // the style sheet, under the path
		do(t, tab, "sign in", chromedp.SendKeys(css("#token"), adminTok+"\r"), chromedp.WaitVisible(css(".who")))
		is.Equal(under(t, "signed in"), "/console/deliveries?state=pending") // back at the deep link

		jar, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{front + "/console/"}})
		is.NoErr(err)
		var names []string
		for _, c := range jar.Cookies {
			names = append(names, c.Name+" "+c.Path)
		}
		slices.Sort(names)
		// The session's cookie and the sign-in form's (kept, for a sign-in page of
		// another tab), both for hookd's path.
		is.Equal(names, []string{"hookd_session /hookd/console/", "hookd_signin /hookd/console/"})
		do(t, tab, "another application of the host", chromedp.Navigate(strings.TrimSuffix(front, "/hookd")+"/other/"), chromedp.WaitVisible(css("h1")))
		do(t, tab, "hookd again", chromedp.Navigate(front+"/"), chromedp.WaitVisible(css(".who")))
		is.Equal(under(t, "hookd's root"), "/console/") // GET / leads to the console, under the path
		proxy.mu.Lock()
		is.Equal(len(proxy.others), 0) // no cookie of hookd's went to the other application
		proxy.mu.Unlock()
	})

	t.Run("every section of the navigation", func(t *testing.T) {
		is := is.New(t)
		hrefs := get(t, tab, "the navigation", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("nav a")).map(a => a.getAttribute("href"))`))
		is.Equal(len(hrefs), 7) // an operator's sections
		for _, href := range hrefs {
			is.True(strings.HasPrefix(href, "/hookd/console/")) // a link under the path
			do(t, tab, "open "+href, chromedp.Click(css(fmt.Sprintf(`nav a[href=%q]`, href))), chromedp.WaitVisible(css(`nav a[aria-current="page"][href=`+fmt.Sprintf("%q", href)+`]`)))
			is.Equal(front+under(t, href), strings.TrimSuffix(front, "/hookd")+href)
			is.True(!strings.Contains(text(t, tab), "Not found")) // the section, not an error
			is.True(styled(t))
			wrong := get(t, tab, "addresses", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("[href], [src], [action], [data-live]"))
				.map(el => el.getAttribute("href") || el.getAttribute("src") || el.getAttribute("action") || el.getAttribute("data-live"))
				.filter(u => u.startsWith("/") && !u.startsWith("/hookd/"))`))
			is.Equal(len(wrong), 0) // every address the page gives is under the path
		}
	})

	t.Run("the inbox page's live view", func(t *testing.T) {
		is := is.New(t)
		res, err := http.Post(front+"/inbox/demo/first", "text/plain", strings.NewReader("one"))
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusNoContent) // the inbox, through the proxy
		do(t, tab, "the inbox", chromedp.Navigate(front+"/console/inbox"), chromedp.WaitVisible(css("#inboxes")),
			chromedp.Click(css(`#inboxes a[href="/hookd/console/inbox?inbox=demo"]`)), chromedp.WaitVisible(css("#live-status")))
		is.Equal(under(t, "inbox"), "/console/inbox?inbox=demo")
		is.Equal(get(t, tab, "status", chromedp.Text(css("#live-status"))), "Live: new requests appear below as they arrive.") // the stream is open
		do(t, tab, "mark the page", chromedp.Evaluate[chromedp.Void](`window.sameDocument = true`))
		res, err = http.Post(front+"/inbox/demo/second", "text/plain", strings.NewReader("two"))
		is.NoErr(err)
		res.Body.Close()
		do(t, tab, "the request appears", chromedp.WaitVisible(css("#requests tbody tr:nth-child(2)")))
		is.True(get(t, tab, "the same page", chromedp.Evaluate[bool](`window.sameDocument === true`))) // fetched again by the script, no reload
		is.True(strings.Contains(text(t, tab), "POST /inbox/demo/second"))
		href := get(t, tab, "the new row's link", chromedp.Evaluate[string](`document.querySelector("#requests tbody tr:first-child td a").getAttribute("href")`))
		is.True(strings.HasPrefix(href, "/hookd/console/inbox/requests/")) // the swapped-in list's links, under the path
	})

	t.Run("a client created and removed", func(t *testing.T) {
		is := is.New(t)
		do(t, tab, "clients", chromedp.Navigate(front+"/console/clients"), chromedp.WaitVisible(css("#name")),
			chromedp.SendKeys(css("#name"), "proxied-client"), chromedp.Click(css(`form[action="/hookd/console/clients"] button[type="submit"]`)),
			chromedp.WaitVisible(css(".secret")))
		is.True(strings.Contains(text(t, tab), "proxied-client")) // created
		under(t, "created")
		do(t, tab, "remove: asked first", chromedp.Click(css(`button[aria-label="Remove proxied-client"]`)), chromedp.WaitVisible(css("form.buttons button")))
		action := get(t, tab, "the confirmation's form", chromedp.Evaluate[string](`document.querySelector("form.buttons").getAttribute("action")`))
		is.True(strings.HasPrefix(action, "/hookd/console/clients/")) // the confirmation posts under the path
		is.Equal(get(t, tab, "cancel", chromedp.Evaluate[string](`document.querySelector("form.buttons a").getAttribute("href")`)), "/hookd/console/clients")
		do(t, tab, "remove", chromedp.Click(css("form.buttons button")), chromedp.WaitVisible(css(".flash")))
		is.Equal(under(t, "removed"), "/console/clients?done=client-removed") // redirected, under the path
		is.True(!strings.Contains(text(t, tab), "proxied-client"))            // gone
	})

	t.Run("a delivery replayed", func(t *testing.T) {
		is := is.New(t)
		path := fmt.Sprintf("/console/deliveries/%d", s.delA.ID)
		do(t, tab, "a delivery", chromedp.Navigate(front+path), chromedp.WaitVisible(css(`form[action$="/replay"] button`)),
			chromedp.Click(css(`form[action$="/replay"] button`)), chromedp.WaitVisible(css(".flash")))
		is.True(strings.Contains(text(t, tab), "The delivery is due again"))
		is.Equal(under(t, "replayed"), path+"?done=replayed")
	})

	t.Run("sign out", func(t *testing.T) {
		is := is.New(t)
		do(t, tab, "sign out", chromedp.Click(css(".who button")), chromedp.WaitVisible(css("#token")))
		is.Equal(under(t, "signed out"), "/console/signin?done=signedout")
		is.True(strings.Contains(text(t, tab), "You are signed out."))
		jar, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{front + "/console/"}})
		is.NoErr(err)
		for _, c := range jar.Cookies {
			is.True(c.Name != "hookd_session") // the session's cookie is gone
		}
		do(t, tab, "the overview again", chromedp.Navigate(front+"/console/"), chromedp.WaitVisible(css("#token")))
		under(t, "signed out")
		proxy.mu.Lock()
		is.Equal(len(proxy.others), 0) // still no cookie of hookd's went elsewhere
		proxy.mu.Unlock()
	})

	b.check() // no CSP violation, script error or dialog on any page
}
