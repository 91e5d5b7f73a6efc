package console_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/matryer/is"

	"hookd/console"
	"hookd/dispatch"
	"hookd/httpapi"
	"hookd/store"
)

// The browser tests drive Debian's chromium with chromedp through the flows a person
// follows, check each page with axe-core, and (with -screenshots) write pictures of
// the main pages to docs/.
//
//	go test ./console -run TestBrowser                # the flows
//	go test ./console -run TestBrowser -screenshots   # and docs/console-*.png
var screenshots = flag.Bool("screenshots", false, "write screenshots of the console's main pages to ../docs/")

// axeSource is axe-core 4.14.1 (MPL-2.0), from `npm pack axe-core`; see testdata/.
//
//go:embed testdata/axe.min.js
var axeSource string

// chromiumPath finds the browser, or skips the test (fails it when CI=true).
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is missing at %s (CI=true): install Debian's chromium package (.ci/run does)", path)
		}
		t.Skipf("chromium is missing at %s: install Debian's chromium package (apt-get install chromium) or set CHROMIUM to run the browser tests", path)
	}
	return path
}

// browser is a running chromium; tab opens a fresh, isolated browser context.
type browser struct {
	t    *testing.T
	root context.Context

	mu       sync.Mutex
	problems []string // CSP violations, script errors and dialogs seen on any page
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		// Every name but 127.0.0.1 and localhost resolves to nothing, without asking DNS: the pages
		// are on 127.0.0.1, and chromium otherwise looks up Google's services
		// (www.google.com, accounts.google.com, content-autofill.googleapis.com, ...)
		// and would call them.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"),
		chromedp.Flag("lang", "en-GB"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	// A bound on the whole browser session, so a hang fails instead of blocking.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(cancelRoot)
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, root: root}
}

// tab opens a page in a browser context of its own (its own cookies), for a reader
// in Europe/Berlin with the locale en-GB, and watches it for CSP violations, script errors
// and dialogs.
func (b *browser) tab() context.Context {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open a tab: %v", err)
	}
	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// A CSP violation is an error of the browser's log; a missing favicon (a
			// network error) is not a problem of the page.
			if (m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException) && m.Source != "network" {
				b.problem(string(m.Type) + " " + m.Source + ": " + m.Text)
			}
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.problem("a dialog opened: " + ev.Message)
			chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		b.t.Fatalf("enable the log: %v", err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Europe/Berlin"}); err != nil {
		b.t.Fatalf("set the time zone: %v", err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: "en_GB"}); err != nil {
		b.t.Fatalf("set the locale: %v", err)
	}
	return ctx
}

func (b *browser) problem(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

// check fails the test if any page had a CSP violation, a script error or a dialog.
func (b *browser) check() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Errorf("the pages had problems: %s", strings.Join(b.problems, "; "))
	}
}

// axeResult is what the test keeps of axe.run's answer.
type axeResult struct {
	URL        string `json:"url"`
	Violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any  `json:"target"`
			HTML   string `json:"html"`
		} `json:"nodes"`
	} `json:"violations"`
}

// accessible injects axe-core into the page and fails the test on any serious or
// critical violation (the others are logged).
func accessible(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepLimit)
	defer cancel()
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+";\ntypeof axe === 'object'"))
	if err != nil || !loaded {
		t.Fatalf("%s: load axe-core: %v", name, err)
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[axeResult](`axe.run(document, {resultTypes: ["violations"]}).then(r => ({url: location.pathname,
		violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
			nodes: v.nodes.map(n => ({target: n.target, html: n.html}))}))}))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: run axe-core: %v", name, err)
	}
	for _, v := range res.Violations {
		var where []string
		for _, n := range v.Nodes {
			b, _ := json.Marshal(n.Target)
			where = append(where, string(b)+" "+n.HTML)
		}
		msg := fmt.Sprintf("%s (%s): axe %s, %s: %s\n\t%s", name, res.URL, v.Impact, v.ID, v.Help, strings.Join(where, "\n\t"))
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
}

// stepLimit bounds one step on a page, so a wait that cannot succeed fails the test
// instead of using up the whole browser session.
const stepLimit = 30 * time.Second

// do runs steps on the tab, failing the test on an error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs an action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text returns the visible text of the page's main element.
func text(t *testing.T, ctx context.Context) string {
	t.Helper()
	return get(t, ctx, "read the page", chromedp.Text(chromedp.CSS("main")))
}

// css is a CSS selector.
func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// stack is the daemon's HTTP side on the env's store: the API with the console
// mounted, a dispatcher the test drives, and a receiver whose answer it sets.
type stack struct {
	*env
	url    string
	disp   *dispatch.Dispatcher
	status atomic.Int32 // what the receiver answers
	recv   *httptest.Server
	// saw, when set, is told of each request the server gets (newInboxStack's).
	saw atomic.Pointer[func(*http.Request)]
}

func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackOn(t, newEnv(t))
}

// newStackOn builds the stack on an env (whose console server it does not use).
func newStackOn(t *testing.T, e *env) *stack {
	t.Helper()
	s := &stack{env: e}
	s.status.Store(http.StatusInternalServerError)
	s.recv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := int(s.status.Load())
		w.WriteHeader(code)
		if code >= 300 {
			fmt.Fprintf(w, "receiver is down for maintenance (%d)", code)
		}
	}))
	t.Cleanup(s.recv.Close)
	s.disp = dispatch.New(dispatch.Options{Store: s.st, AllowPrivateTargets: true, Timeout: 10 * time.Second, Workers: 4, PerHost: 2})
	t.Cleanup(s.disp.Close)
	opts := s.opts
	opts.Nudge = s.disp.Nudge
	api := httpapi.NewServer(httpapi.Options{Store: s.st, Logger: s.opts.Logger, Console: console.New(opts), Nudge: s.disp.Nudge})
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// deliver runs one turn of the dispatcher and waits for its calls and outcomes.
func (s *stack) deliver(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.disp.Tick(ctx); err != nil {
		t.Fatalf("dispatch turn: %v", err)
	}
	if err := s.disp.Wait(ctx); err != nil {
		t.Fatalf("dispatch wait: %v", err)
	}
}

// signIn signs in through the form, typing as a person would.
func signIn(t *testing.T, ctx context.Context, base, id, secret string) {
	t.Helper()
	do(t, ctx, "sign in as "+id,
		chromedp.Navigate(base+"/console/signin"),
		chromedp.WaitVisible(css("#client_id")),
		chromedp.SendKeys(css("#client_id"), id),
		chromedp.SendKeys(css("#secret"), secret+kb.Enter),
		chromedp.WaitVisible(css(".who")),
	)
}

// signInToken signs in with the admin token.
func signInToken(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	do(t, ctx, "sign in as operator", chromedp.Navigate(base+"/console/signin"), chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), adminTok+kb.Enter), chromedp.WaitVisible(css(".who")))
}

func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	s := newStack(t)
	ctx := context.Background()
	// Client C's ORCID-style registration, called back at the receiver.
	c, err := s.st.CreateClient(ctx, store.NewClient{Name: "cris-sync", Scopes: []string{store.ScopeWebhook}})
	if err != nil {
		t.Fatal(err)
	}
	const record = "0000-0002-1825-0097"
	if _, _, err := s.st.PutOrcidWebhook(ctx, c.ID, record, s.recv.URL+"/"+record+"/updated"); err != nil {
		t.Fatal(err)
	}

	t.Run("sign in: a wrong secret is refused, then with the keyboard", func(t *testing.T) {
		is := is.New(t)
		tab := b.tab()
		do(t, tab, "open hookd", chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(css("#client_id")))
		url := get(t, tab, "location", chromedp.Location())
		is.True(strings.HasPrefix(url, s.url+"/console/signin")) // GET / leads to the console's sign-in
		accessible(t, tab, "sign-in")
		do(t, tab, "a wrong secret",
			chromedp.SendKeys(css("#client_id"), c.ID),
			chromedp.SendKeys(css("#secret"), "not-the-secret"),
			chromedp.Click(css(`form button[type="submit"]`)),
			chromedp.WaitVisible(css(".form-error")))
		is.True(strings.Contains(text(t, tab), "The client id or secret is wrong.")) // refused, and said so
		accessible(t, tab, "sign-in refused")
		s.clock.Advance(time.Minute) // past the slow-down of the failure

		// The id is kept and the secret field has the focus: type it and press Enter.
		is.Equal(get(t, tab, "focus", chromedp.Evaluate[string](`document.activeElement.id`)), "secret")
		do(t, tab, "type the secret", chromedp.KeyEvent(c.Secret+kb.Enter), chromedp.WaitVisible(css(".who")))
		is.True(strings.Contains(text(t, tab), "Your webhooks and their deliveries.")) // the overview
		do(t, tab, "Tab", chromedp.KeyEvent(kb.Tab))
		is.Equal(get(t, tab, "focus", chromedp.Evaluate[string](`document.activeElement.className`)), "skip") // the first Tab reaches "Skip to content"
		accessible(t, tab, "overview")
	})

	t.Run("a failing delivery, the receiver fixed, replayed, delivered", func(t *testing.T) {
		is := is.New(t)
		if _, err := s.st.Intake(ctx, "", "", []store.Event{{Orcid: record}}, 0); err != nil { // what hookd notify does
			t.Fatal(err)
		}
		s.deliver(t) // the receiver answers 500
		tab := b.tab()
		signIn(t, tab, s.url, c.ID, c.Secret)
		do(t, tab, "deliveries", chromedp.Navigate(s.url+"/console/deliveries"), chromedp.WaitVisible(css("table")))
		page := text(t, tab)
		is.True(strings.Contains(page, "retrying")) // the failing delivery
		is.True(strings.Contains(page, "HTTP 500"))
		accessible(t, tab, "deliveries")
		do(t, tab, "open the delivery", chromedp.Click(css(`td a[href^="/console/deliveries/"]`)), chromedp.WaitVisible(css(`dl.facts`)))
		is.True(strings.Contains(text(t, tab), "receiver is down for maintenance (500)")) // the response snippet
		accessible(t, tab, "delivery")

		s.status.Store(http.StatusNoContent) // the receiver is fixed
		do(t, tab, "replay", chromedp.Click(css(`form[action$="/replay"] button`)), chromedp.WaitVisible(css(".flash")))
		is.True(strings.Contains(text(t, tab), "The delivery is due again"))
		s.deliver(t)
		do(t, tab, "reload", chromedp.Reload(), chromedp.WaitVisible(css("h1")))
		page = text(t, tab)
		is.True(strings.Contains(page, "delivered")) // now delivered
		is.True(strings.Contains(page, "HTTP 204"))  // by the second attempt
		is.True(strings.Contains(page, "HTTP 500"))  // after the first
		zone := get(t, tab, "the zone", chromedp.Text(css("[data-zone]")))
		is.Equal(zone, "Times are in your time zone, Europe/Berlin.") // times in the reader's zone
		accessible(t, tab, "delivery delivered")
	})

	t.Run("an organisation's webhook: a bad URL, then a good one", func(t *testing.T) {
		is := is.New(t)
		tab := b.tab()
		signIn(t, tab, s.url, s.staffA.ID, s.staffA.Secret)
		do(t, tab, "organisation", chromedp.Navigate(s.url+"/console/organisations"), chromedp.WaitVisible(css("#url")))
		accessible(t, tab, "organisation")
		do(t, tab, "a bad URL",
			chromedp.Clear(css("#url")),
			chromedp.SendKeys(css("#url"), "hooks.uni-a.example/orcid"),
			chromedp.Click(css(`form[action$="/webhook"] button[type="submit"]`)),
			chromedp.WaitVisible(css("#url-error")))
		is.True(strings.Contains(get(t, tab, "the error", chromedp.Text(css("#url-error"))), "must be an absolute http or https URL"))
		is.Equal(get(t, tab, "aria-invalid", chromedp.Evaluate[string](`document.querySelector("#url").getAttribute("aria-invalid")`)), "true")
		is.True(strings.Contains(get(t, tab, "aria-describedby", chromedp.Evaluate[string](`document.querySelector("#url").getAttribute("aria-describedby")`)), "url-error")) // read out with the field
		is.Equal(get(t, tab, "focus", chromedp.Evaluate[string](`document.activeElement.id`)), "url")                                                                         // and it has the focus, to be mended
		accessible(t, tab, "organisation form error")
		do(t, tab, "a good URL",
			chromedp.Clear(css("#url")),
			chromedp.SendKeys(css("#url"), "https://hooks.uni-a.example/orcid"),
			chromedp.Click(css(`form[action$="/webhook"] button[type="submit"]`)),
			chromedp.WaitVisible(css(".flash")))
		is.True(strings.Contains(text(t, tab), "The settings are saved."))
		h, err := s.st.HubSettings(ctx, s.orgA.ID)
		is.NoErr(err)
		is.Equal(h.URL, "https://hooks.uni-a.example/orcid") // stored
	})

	t.Run("a client sees only its own webhooks", func(t *testing.T) {
		is := is.New(t)
		tab := b.tab()
		signIn(t, tab, s.url, s.a.ID, s.a.Secret)
		do(t, tab, "webhooks", chromedp.Navigate(s.url+"/console/webhooks"), chromedp.WaitVisible(css("table")))
		page := text(t, tab)
		is.True(strings.Contains(page, "https://a.example/hook")) // its own
		is.True(!strings.Contains(page, "b.example"))             // not B's
		is.True(!strings.Contains(page, "/updated"))              // nor C's
		is.True(!strings.Contains(page, "University"))            // nor the organisations'
		accessible(t, tab, "webhooks")
		do(t, tab, "B's webhook", chromedp.Navigate(s.url+"/console/webhooks/"+s.hookB.UID), chromedp.WaitVisible(css("h1")))
		is.True(strings.Contains(text(t, tab), "Not found")) // as if it did not exist
		accessible(t, tab, "not found")
		do(t, tab, "its own client", chromedp.Navigate(s.url+"/console/clients"), chromedp.WaitVisible(css("table")))
		is.Equal(get(t, tab, "rows", chromedp.Evaluate[int](`document.querySelectorAll("tbody tr").length`)), 1) // itself only
		accessible(t, tab, "clients")
		do(t, tab, "rotate: asked first", chromedp.Click(css(`form[action$="/rotate"] button`)), chromedp.WaitVisible(css(`form.buttons button`)))
		is.True(strings.Contains(text(t, tab), "The old one stops working at once"))
		accessible(t, tab, "confirm")
		do(t, tab, "cancel", chromedp.Click(css(`main a[href="/console/clients"]`)), chromedp.WaitVisible(css("table")))
	})

	t.Run("a POST without the CSRF token is refused", func(t *testing.T) {
		is := is.New(t)
		tab := b.tab()
		signIn(t, tab, s.url, s.a.ID, s.a.Secret)
		do(t, tab, "A's webhook", chromedp.Navigate(s.url+"/console/webhooks/"+s.hookA.UID), chromedp.WaitVisible(css(`form[action$="/deactivate"]`)))
		accessible(t, tab, "webhook")
		do(t, tab, "submit without the token",
			chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action$="/deactivate"] input[name="csrf"]').remove()`),
			chromedp.Click(css(`form[action$="/deactivate"] button`)),
			chromedp.WaitNotPresent(css(`form[action$="/deactivate"]`))) // the next page
		is.True(strings.Contains(text(t, tab), "Form refused"))
		w, err := s.st.Subscription(ctx, s.hookA.UID)
		is.NoErr(err)
		is.True(w.Active) // nothing changed
	})

	t.Run("sign out ends the session", func(t *testing.T) {
		is := is.New(t)
		tab := b.tab()
		signIn(t, tab, s.url, s.b.ID, s.b.Secret)
		jar, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{s.url + "/console/"}})
		is.NoErr(err)
		var session *network.Cookie
		for _, c := range jar.Cookies {
			if c.Name == "hookd_session" {
				session = c
			}
		}
		is.True(session != nil)
		is.True(session.HTTPOnly)                                // no script reads it
		is.Equal(session.SameSite, network.CookieSameSiteStrict) // no other site sends it
		do(t, tab, "sign out", chromedp.Click(css(`.who button`)), chromedp.WaitVisible(css("#client_id")))
		is.True(strings.Contains(text(t, tab), "You are signed out."))
		accessible(t, tab, "signed out")
		do(t, tab, "the overview again", chromedp.Navigate(s.url+"/console/"), chromedp.WaitVisible(css("#client_id")))
		is.True(strings.HasPrefix(get(t, tab, "location", chromedp.Location()), s.url+"/console/signin")) // signed out
		_, err = chromedp.Call(tab, network.SetCookie, network.SetCookieParams{Name: session.Name, Value: session.Value,
			URL: s.url + "/console/", Path: "/console/", HTTPOnly: new(true), SameSite: network.CookieSameSiteStrict})
		is.NoErr(err)
		do(t, tab, "the old cookie again", chromedp.Navigate(s.url+"/console/"), chromedp.WaitVisible(css("#client_id")))
		is.True(strings.HasPrefix(get(t, tab, "location", chromedp.Location()), s.url+"/console/signin")) // the old session id opens nothing
	})

	t.Run("what others typed stays text, on every page", func(t *testing.T) {
		is := is.New(t)
		hookUID, orgHookUID, deliveryID := seedEvil(t, s.env)
		tab := b.tab()
		signInToken(t, tab, s.url)
		paths := []string{"/console/", "/console/webhooks", "/console/webhooks/" + hookUID, "/console/webhooks/" + orgHookUID,
			"/console/deliveries", fmt.Sprintf("/console/deliveries/%d", deliveryID), "/console/organisations", "/console/clients", "/console/audit"}
		do(t, tab, "organisations", chromedp.Navigate(s.url+"/console/organisations"), chromedp.WaitVisible(css("h1")))
		paths = append(paths, get(t, tab, "organisation links", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('td a')).map(a => a.getAttribute('href'))`))...)
		for _, path := range paths {
			do(t, tab, path, chromedp.Navigate(s.url+path), chromedp.WaitVisible(css("h1")))
			made := get(t, tab, "elements made of stored text", chromedp.Evaluate[int](`document.querySelectorAll(
				'main script, main img, main svg[onload], main b, main i, [onerror], [onclick], [onmouseover], a[href^="javascript:"]').length`))
			is.Equal(made, 0) // no element made of stored text
			accessible(t, tab, path)
		}
		// And once the webhook is removed, on the pages of its history.
		is.NoErr(s.st.RemoveSubscription(ctx, hookUID))
		for _, path := range []string{"/console/webhooks/" + hookUID, "/console/deliveries?webhook=" + hookUID,
			fmt.Sprintf("/console/deliveries/%d", deliveryID)} {
			do(t, tab, path, chromedp.Navigate(s.url+path), chromedp.WaitVisible(css("h1")))
			is.True(strings.Contains(text(t, tab), "removed")) // the history, marked
			made := get(t, tab, "elements made of stored text", chromedp.Evaluate[int](`document.querySelectorAll(
				'main script, main img, main svg[onload], main b, main i, [onerror], [onclick], [onmouseover], a[href^="javascript:"]').length`))
			is.Equal(made, 0) // no element made of stored text
			accessible(t, tab, path)
		}
	})

	b.check() // no CSP violation, script error or dialog on any page
}

// TestBrowserLongValuesFitThePage: values the API and the console accept at their
// longest, without a space (a client's name of 200 characters, a webhook's
// description of 500, an organisation's name of 200), are wrapped: no page is made
// wider than the window (1280 px), so nothing needs scrolling sideways.
func TestBrowserLongValuesFitThePage(t *testing.T) {
	b := newBrowser(t)
	s := newStack(t)
	ctx := context.Background()
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	c, err := s.st.CreateClient(ctx, store.NewClient{Name: "c" + long("x", 199), Scopes: []string{store.ScopeWebhook}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://long.example/hook", Description: long("d", 500),
		Auth: store.Auth{Type: store.AuthNone}}); err != nil {
		t.Fatal(err)
	}
	o, err := s.st.CreateOrganisation(ctx, "U"+long("n", 199), "it@long.example")
	if err != nil {
		t.Fatal(err)
	}
	tab := b.tab()
	signInToken(t, tab, s.url)
	for _, path := range []string{"/console/webhooks", "/console/clients", "/console/organisations", "/console/organisations/" + strconv.FormatInt(o.ID, 10)} {
		do(t, tab, "open "+path, chromedp.Navigate(s.url+path), chromedp.WaitVisible(css("main")))
		w := get(t, tab, "measure "+path, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		if w[0] > w[1] {
			t.Errorf("%s is %d px wide in a window of %d px: a long value is not wrapped", path, w[0], w[1])
		}
	}
}

// TestBrowserNarrowTablesKeepWords: in a phone's window a table's headings keep
// their words (a wide table scrolls in its frame), while long values still wrap.
func TestBrowserNarrowTablesKeepWords(t *testing.T) {
	b := newBrowser(t)
	s := newStack(t)
	ctx := context.Background()
	for _, name := range []string{"cris-sync", "library-dashboard"} {
		c, err := s.st.CreateClient(ctx, store.NewClient{Name: name, Scopes: []string{store.ScopeWebhook}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.st.PutOrcidWebhook(ctx, c.ID, "0000-0002-1825-0097", s.recv.URL+"/0000-0002-1825-0097/updated"); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.tab()
	signInToken(t, tab, s.url)
	do(t, tab, "a phone's window", chromedp.EmulateViewport(480, 900))
	for _, path := range []string{"/console/webhooks", "/console/clients"} {
		do(t, tab, "open "+path, chromedp.Navigate(s.url+path), chromedp.WaitVisible(css("main table")))
		broken := get(t, tab, "measure "+path, chromedp.Evaluate[[]string](`
			[...document.querySelectorAll('main th')].filter(th => {
				const w = th.textContent.trim();
				if (w === '' || /\s/.test(w) || th.querySelector('.visually-hidden')) return false;
				const r = document.createRange(); r.selectNodeContents(th);
				const tops = new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top)));
				return tops.size > 1;
			}).map(th => th.textContent.trim())`))
		if len(broken) > 0 {
			t.Errorf("%s at 480 px: the headings %q are broken inside the word", path, broken)
		}
	}
}

// TestBrowserTableCellsKeepWords: a table's cells keep their words as its headings
// do, in a desktop window, a phone's (375 px) and at 200% zoom: an organisation's
// members table broke its Remove buttons ("Remov|e") and e-mail addresses at 1280
// px, and in a narrow window its iDs into pairs of digits and the audit log's
// "signin" into "signi|n", while the table scrolled in its frame all the same. A
// long name without a space still wraps in its cell.
func TestBrowserTableCellsKeepWords(t *testing.T) {
	b := newBrowser(t)
	s := newStack(t)
	ctx := context.Background()
	o, err := s.st.CreateOrganisation(ctx, "University of Testing", "it@uni.example")
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"0000-0002-1825-0097", "0000-0001-5109-3700", "0000-0002-7253-3645", "0000-0002-9079-593X"} {
		name, email := fmt.Sprintf("Member %d", i+1), fmt.Sprintf("member%d@uni.example", i+1)
		if _, err := s.st.PutMember(ctx, o.ID, id, store.MemberInfo{Name: &name, Email: &email}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// A name without a space, as long as the API takes, still wraps in its cell:
	// the clients table keeps to the window instead of scrolling in its frame.
	if _, err := s.st.CreateClient(ctx, store.NewClient{Name: "c" + strings.Repeat("x", 199), Scopes: []string{store.ScopeWebhook}}); err != nil {
		t.Fatal(err)
	}
	tab := b.tab()
	signInToken(t, tab, s.url)
	do(t, tab, "clients", chromedp.Navigate(s.url+"/console/clients"), chromedp.WaitVisible(css("main table")))
	if w := get(t, tab, "the table's width", chromedp.Evaluate[[]int](`(f => [f.scrollWidth, f.clientWidth])(document.querySelector("main .table-wrap"))`)); w[0] > w[1] {
		t.Errorf("the clients table is %d px wide in a frame of %d px at 1280 px: a long name is not wrapped", w[0], w[1])
	}
	// The words of the cells' text broken across lines: a word may break after
	// its hyphen (an iD at its groups), not inside. URLs and a webhook's
	// description wrap anywhere on purpose, and a word wider than a cell may
	// be, the long name, breaks.
	const brokenWords = `[...document.querySelectorAll('main td')].flatMap(td => {
		const broken = [], walk = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
		for (let n; (n = walk.nextNode()); ) {
			if (n.parentElement.closest('.desc, code.url, pre, .visually-hidden')) continue;
			for (const m of n.data.matchAll(/[^\s-]+-?/g)) {
				if (m[0].length > 40) continue;
				const r = document.createRange(); r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
				if (new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top))).size > 1) broken.push(m[0]);
			}
		}
		return broken;
	})`
	paths := []string{"/console/organisations/" + strconv.FormatInt(o.ID, 10), "/console/clients", "/console/audit", "/console/deliveries"}
	for _, w := range []struct {
		name          string
		width, height int64
		scale         float64
	}{{"1280 px", 1280, 900, 1}, {"375 px", 375, 800, 1}, {"200% zoom", 640, 450, 2}} {
		do(t, tab, "a window of "+w.name, chromedp.EmulateViewport(w.width, w.height, chromedp.EmulateScale(w.scale)))
		for _, path := range paths {
			do(t, tab, "open "+path, chromedp.Navigate(s.url+path), chromedp.WaitVisible(css("main table")))
			if broken := get(t, tab, "measure "+path, chromedp.Evaluate[[]string](brokenWords)); len(broken) > 0 {
				t.Errorf("%s at %s: the words %q are broken inside", path, w.name, broken)
			}
			if wh := get(t, tab, "page width", chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`)); wh[0] > wh[1] {
				t.Errorf("%s at %s is %d px wide in a window of %d px", path, w.name, wh[0], wh[1])
			}
		}
	}
	b.check()
}

// TestBrowserReplayTheDeadSaysSo: a client follows the overview's link to its
// dead deliveries and replays them; the list, narrowed to dead ones, is then empty,
// and the page says how many are due again, where it said only that no delivery
// matches the filter, as if nothing had been done.
func TestBrowserReplayTheDeadSaysSo(t *testing.T) {
	is := is.New(t)
	b := newBrowser(t)
	s := newStack(t)
	ctx := context.Background()
	failEvery(t, s.env, store.Outcome{Kind: store.OutcomeDead, Status: 500, Error: "HTTP 500"})
	ofA, err := s.st.Deliveries(ctx, store.DeliveryFilter{Webhook: s.hookA.UID})
	is.NoErr(err)
	is.True(len(ofA) > 1) // A's platform webhook covers every record
	tab := b.tab()
	signIn(t, tab, s.url, s.a.ID, s.a.Secret)
	do(t, tab, "the dead ones", chromedp.Click(css(`a[href="/console/deliveries?state=dead"]`)), chromedp.WaitVisible(css("#replay-h")))
	is.True(strings.Contains(text(t, tab), "#"+strconv.FormatInt(s.delA.ID, 10))) // A's dead deliveries
	do(t, tab, "replay them", chromedp.Click(css(`section[aria-labelledby="replay-h"] button[type="submit"]`)),
		chromedp.WaitNotPresent(css("#replay-h")))
	page := text(t, tab)
	is.True(strings.Contains(page, fmt.Sprintf("%d deliveries are due again and go out from now on", len(ofA)))) // what was done
	is.True(strings.Contains(page, "No delivery matches this filter."))                                          // and the list, now empty
	accessible(t, tab, "replayed")
	for _, d := range ofA {
		got, err := s.st.Delivery(ctx, store.DeliveryFilter{ID: d.ID})
		is.NoErr(err)
		is.Equal(got.StateName(), "pending") // due again
	}
	b.check()
}

// TestBrowserReasonTimeInReadersZone: the time in the reason hookd switched a
// webhook off for is in the reader's zone, with the UTC time as its title, as
// every other time of the console, on the webhook's page, the list and the
// organisation's page: it was the server's RFC 3339 text.
func TestBrowserReasonTimeInReadersZone(t *testing.T) {
	b := newBrowser(t)
	s := newStack(t)
	switchOff(t, s.env)
	tab := b.tab()
	signInToken(t, tab, s.url)
	for _, path := range []string{"/console/webhooks/" + s.orgHookA.UID, "/console/webhooks", "/console/organisations/" + strconv.FormatInt(s.orgA.ID, 10)} {
		is := is.New(t)
		do(t, tab, "open "+path, chromedp.Navigate(s.url+path), chromedp.WaitVisible(css("main")))
		sel := `.reason time`
		if strings.HasPrefix(path, "/console/organisations/") {
			sel = `.form-error time`
		}
		got := get(t, tab, "the reason's time on "+path, chromedp.Evaluate[[]string](
			`(el => el ? [el.closest(".reason, .form-error").textContent, el.title] : [])(document.querySelector('`+sel+`[datetime="2024-03-01T14:00:00Z"]'))`))
		if len(got) != 2 {
			t.Fatalf("%s: no <time> in the reason", path)
		}
		is.True(strings.Contains(got[0], "deliveries failed continuously since 1 Mar 2024, 15:00:00 CET (last: HTTP 500)")) // in the reader's zone (Europe/Berlin)
		is.Equal(got[1], "2024-03-01 14:00:00 UTC")                                                                         // the UTC time at hand
		accessible(t, tab, path)
	}
	b.check()
}

// TestBrowserMemberRemovalAsksFirst: removing an organisation's member asks first,
// as removing a client does, on the same page, and by keyboard: Tab to the row's
// Remove button and Enter ask; Cancel leads back with the member kept, to the page
// of the list asked on; the confirming button, reached with Tab, removes it.
func TestBrowserMemberRemovalAsksFirst(t *testing.T) {
	is := is.New(t)
	b := newBrowser(t)
	s := newStack(t)
	ctx := context.Background()
	path := "/console/organisations/" + strconv.FormatInt(s.orgA.ID, 10)
	remove := `button[aria-label="Remove ` + memberA + `"]`
	member := func() bool {
		ms, err := s.st.Members(ctx, s.orgA.ID)
		is.NoErr(err)
		return len(ms) == 1 && ms[0].Orcid == memberA
	}
	tab := b.tab()
	signIn(t, tab, s.url, s.staffA.ID, s.staffA.Secret)
	ask := func(page string) {
		t.Helper()
		do(t, tab, "the organisation", chromedp.Navigate(s.url+page), chromedp.WaitVisible(css(remove)))
		tabTo(t, tab, remove)
		do(t, tab, "remove: asked first", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(css("form.buttons button")))
		is.True(strings.Contains(text(t, tab), "Remove "+memberA+" from “University A”?")) // the question
		is.True(member())                                                                  // nothing changed yet
	}
	ask(path)
	accessible(t, tab, "confirm a member's removal")
	tabTo(t, tab, `main a[href="`+path+`"]`)
	do(t, tab, "cancel", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(css(remove)))
	is.True(member()) // kept

	later := path + "?after=" + memberB // a page after the first, with the member on it
	ask(later)
	tabTo(t, tab, `main a[href="`+later+`"]`)
	do(t, tab, "cancel from a later page", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(css(remove)))
	is.Equal(get(t, tab, "the address", chromedp.Evaluate[string](`location.pathname + location.search`)), later) // back to that page
	is.True(member())

	ask(path)
	tabTo(t, tab, "form.buttons button.danger")
	do(t, tab, "confirm", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(css(".flash")))
	is.True(strings.Contains(text(t, tab), "The member is removed."))
	is.True(!member()) // removed
	accessible(t, tab, "a member removed")
	b.check()
}

// tabTo presses Tab until the element sel has the focus, as a keyboard user reaches
// it, and fails the test when 100 presses do not reach it.
func tabTo(t *testing.T, tab context.Context, sel string) {
	t.Helper()
	for range 100 {
		if get(t, tab, "the focus", chromedp.Evaluate[bool](`document.activeElement.matches(`+strconv.Quote(sel)+`)`)) {
			return
		}
		do(t, tab, "Tab", chromedp.KeyEvent(kb.Tab))
	}
	t.Fatalf("Tab does not reach %s", sel)
}
