package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"hookd/console"
	"hookd/dispatch"
	"hookd/httpapi"
	"hookd/store"
)

// newInboxStack is the daemon's HTTP side with the inbox on, on an empty store:
// the API with its inbox route and the console mounted, and a dispatcher the test
// drives. The store's clock is pinned near the wall clock, which the dispatcher
// signs its calls with: the inbox finds their timestamps within tolerance.
func newInboxStack(t *testing.T) *stack {
	t.Helper()
	e := openEnv(t)
	e.clock.ms.Store(time.Now().UnixMilli())
	s := &stack{env: e}
	s.disp = dispatch.New(dispatch.Options{Store: s.st, AllowPrivateTargets: true, Timeout: 10 * time.Second, Workers: 4, PerHost: 2})
	t.Cleanup(s.disp.Close)
	opts := s.opts
	opts.Nudge, opts.InboxEnabled = s.disp.Nudge, true
	srv := httptest.NewUnstartedServer(nil)
	opts.PublicURL = "http://" + srv.Listener.Addr().String()
	cons := console.New(opts)
	api := httpapi.NewServer(httpapi.Options{Store: s.st, Logger: s.opts.Logger, Console: cons, Nudge: s.disp.Nudge,
		PublicURL: opts.PublicURL, AllowPrivateTargets: true, Inbox: &httpapi.InboxOptions{}})
	h := api.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if saw := s.saw.Load(); saw != nil {
			(*saw)(r)
		}
		h.ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(cons.Shutdown) // before the server closes: the live views' streams end
	s.url = srv.URL
	return s
}

// TestBrowserInbox follows a developer on the inbox page: a request posted to the
// inbox appears without a reload, a callback hookd delivers appears with its
// delivery (and the delivery's page shows it back), the answer is set from the
// page (a bad status first), and what strangers posted stays text.
func TestBrowserInbox(t *testing.T) {
	b := newBrowser(t)
	s := newInboxStack(t)
	ctx := context.Background()
	c, err := s.st.CreateClient(ctx, store.NewClient{Name: "cris-sync", Scopes: []string{store.ScopeWebhook}})
	if err != nil {
		t.Fatal(err)
	}
	const record = "0000-0002-1825-0097"
	callback := s.url + "/inbox/demo/" + record + "/updated"
	if _, _, err := s.st.PutOrcidWebhook(ctx, c.ID, record, callback); err != nil {
		t.Fatal(err)
	}
	tab := b.tab()
	signIn(t, tab, s.url, c.ID, c.Secret)

	// rows is the number of requests the page lists.
	rows := func(t *testing.T) int {
		return get(t, tab, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#requests tbody tr").length`))
	}
	// post sends a request to the demo inbox at path.
	post := func(t *testing.T, path string) {
		t.Helper()
		res, err := http.Post(s.url+"/inbox/demo/"+path, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	// waitRows waits until the page lists n requests, as the browser shows it. When
	// it does not, it says what the page, the inbox and the deliveries hold.
	waitRows := func(t *testing.T, what string, n int) {
		t.Helper()
		wait, cancel := context.WithTimeout(tab, stepLimit)
		defer cancel()
		err := chromedp.Do(wait, chromedp.WaitVisible(css(fmt.Sprintf("#requests tbody tr:nth-child(%d)", n))))
		if err == nil {
			return
		}
		t.Errorf("%s: %v", what, err)
		inboxState(t, tab, s.st)
		t.FailNow()
	}

	// liveStarts waits until the page's live view has started: its status shown and
	// not one of the reasons it stopped (too many views, signed out).
	liveStarts := func(t *testing.T, what string) {
		t.Helper()
		do(t, tab, what, chromedp.WaitVisible(css("#live-status")))
		if status := get(t, tab, "status", chromedp.Text(css("#live-status"))); strings.HasPrefix(status, "Live updates") {
			t.Fatalf("%s: %s", what, status)
		}
	}

	t.Run("a request posted to the inbox appears without a reload", func(t *testing.T) {
		is := is.New(t)
		do(t, tab, "the inbox page", chromedp.Navigate(s.url+"/console/"), chromedp.WaitVisible(css(".who")),
			chromedp.Click(css(`nav a[href="/console/inbox"]`)), chromedp.WaitVisible(css("#inboxes")))
		is.True(strings.Contains(text(t, tab), "demo")) // the inbox its webhook calls, listed before it got anything
		accessible(t, tab, "inbox, no requests")
		do(t, tab, "the demo inbox", chromedp.Click(css(`#inboxes a[href="/console/inbox?inbox=demo"]`)), chromedp.WaitVisible(css("#answer-h")))
		is.True(strings.Contains(text(t, tab), "Nothing received yet"))
		do(t, tab, "the live view starts", chromedp.WaitVisible(css("#live-status")))
		is.Equal(get(t, tab, "status", chromedp.Text(css("#live-status"))), "Live: new requests appear below as they arrive.")
		do(t, tab, "mark the page", chromedp.Evaluate[chromedp.Void](`window.sameDocument = true`)) // a reload would forget it

		res, err := http.Post(s.url+"/inbox/demo/hello?from=curl", "application/json", strings.NewReader(`{"hello":"inbox"}`))
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusNoContent) // recorded and answered

		waitRows(t, "the request appears", 1)
		is.True(get(t, tab, "the same page", chromedp.Evaluate[bool](`window.sameDocument === true`))) // no reload
		page := text(t, tab)
		is.True(strings.Contains(page, "POST /inbox/demo/hello?from=curl")) // what was posted
		is.True(strings.Contains(page, "unsigned"))                         // its verdict
		is.True(strings.Contains(get(t, tab, "status", chromedp.Text(css("#live-status"))), "New: request #"))
		title := get(t, tab, "time", chromedp.Evaluate[string](`document.querySelector("#requests time").title`))
		is.True(strings.HasSuffix(title, " UTC")) // the new row's time is shown in the reader's zone too
		accessible(t, tab, "inbox, live")
	})

	t.Run("a callback hookd delivers, linked both ways", func(t *testing.T) {
		is := is.New(t)
		if _, err := s.st.Intake(ctx, "", "", []store.Event{{Orcid: record}}, 0); err != nil {
			t.Fatal(err)
		}
		s.deliver(t)
		waitRows(t, "the callback appears", 2)
		is.True(strings.Contains(text(t, tab), "POST /inbox/demo/"+record+"/updated"))
		do(t, tab, "open the request", chromedp.Click(css(`#requests tbody tr:first-child td a[href^="/console/inbox/requests/"]`)),
			chromedp.WaitVisible(css("#headers-h")))
		page := text(t, tab)
		is.True(strings.Contains(page, "valid: signed with the signing secret of client "+c.ID)) // its verdict and why
		is.True(strings.Contains(page, "Webhook-Signature"))                                     // its headers
		is.True(strings.Contains(page, "Empty."))                                                // ORCID's callback has no body
		accessible(t, tab, "inbox request")
		do(t, tab, "its delivery", chromedp.Click(css(`a[href^="/console/deliveries/"]`)), chromedp.WaitVisible(css("#inbox-h")))
		page = text(t, tab)
		is.True(strings.Contains(page, "delivered"))                // the delivery
		is.True(strings.Contains(page, "in inbox demo, attempt 1")) // lists what the inbox recorded
		do(t, tab, "and back", chromedp.Click(css(`#inbox-h + ul a`)), chromedp.WaitVisible(css("#headers-h")))
		is.True(strings.Contains(text(t, tab), "attempt 1"))
	})

	t.Run("the answer is set from the page", func(t *testing.T) {
		is := is.New(t)
		do(t, tab, "the demo inbox", chromedp.Navigate(s.url+"/console/inbox?inbox=demo"), chromedp.WaitVisible(css("#status")),
			chromedp.WaitVisible(css("#live-status")))
		do(t, tab, "a status that is none", chromedp.SendKeys(css("#status"), "99"),
			chromedp.Click(css(`form[action$="/answer"] button[type="submit"]`)), chromedp.WaitVisible(css("#status-error")))
		is.True(strings.Contains(get(t, tab, "the error", chromedp.Text(css("#status-error"))), "99 is not a status an inbox answers with"))
		is.Equal(get(t, tab, "aria-invalid", chromedp.Evaluate[string](`document.querySelector("#status").getAttribute("aria-invalid")`)), "true")
		accessible(t, tab, "inbox answer error")
		// The refused form's page is at the form's address, which no GET answers: its
		// live view still fetches the inbox's page, and what was typed stays.
		liveStarts(t, "the live view starts beside the refused form")
		n := rows(t)
		post(t, "beside-a-refused-form")
		waitRows(t, "the request appears beside the refused form", n+1)
		is.True(strings.Contains(get(t, tab, "status", chromedp.Text(css("#live-status"))), "New: request #"))
		is.Equal(get(t, tab, "the typed status", chromedp.Evaluate[string](`document.querySelector("#status").value`)), "99")
		do(t, tab, "500", chromedp.Clear(css("#status")), chromedp.SendKeys(css("#status"), "500"),
			chromedp.Click(css(`form[action$="/answer"] button[type="submit"]`)), chromedp.WaitVisible(css(".flash")))
		is.True(strings.Contains(text(t, tab), "Now: 500 Internal Server Error."))
		liveStarts(t, "the live view starts again")
		before := rows(t)
		if _, err := s.st.Intake(ctx, "", "", []store.Event{{Orcid: record}}, 0); err != nil {
			t.Fatal(err)
		}
		s.deliver(t)
		waitRows(t, "the failing attempt appears", before+1)
		first := get(t, tab, "the newest row", chromedp.Text(css("#requests tbody tr:first-child")))
		is.True(strings.Contains(first, "500")) // answered as set
		a, err := s.st.InboxAnswerOf(ctx, "demo")
		is.NoErr(err)
		is.Equal(a.StatusCode(), 500) // stored
	})

	t.Run("what strangers post stays text", func(t *testing.T) {
		is := is.New(t)
		req, err := http.NewRequest(http.MethodPost, s.url+"/inbox/demo/%3Cscript%3Ealert(1)%3C%2Fscript%3E?next=javascript:alert(2)",
			strings.NewReader(`<img src=x onerror=alert(3)><a href="javascript:alert(4)">x</a>`))
		is.NoErr(err)
		req.Header.Set("X-Evil", `"><svg onload=alert(5)>`)
		res, err := http.DefaultClient.Do(req)
		is.NoErr(err)
		res.Body.Close()
		do(t, tab, "the inbox", chromedp.Navigate(s.url+"/console/inbox?inbox=demo"), chromedp.WaitVisible(css("#requests table")))
		paths := []string{"/console/inbox", "/console/inbox?inbox=demo",
			get(t, tab, "the newest request", chromedp.Evaluate[string](`document.querySelector('#requests tbody a').getAttribute('href')`))}
		for _, path := range paths {
			do(t, tab, path, chromedp.Navigate(s.url+path), chromedp.WaitVisible(css("h1")))
			made := get(t, tab, "elements made of stored text", chromedp.Evaluate[int](`document.querySelectorAll(
				'main script:not([src^="/console/assets/"]), main img, main svg, [onerror], [onload], a[href^="javascript:"]').length`))
			is.Equal(made, 0) // no element made of stored text
			accessible(t, tab, path)
		}
		is.True(strings.Contains(text(t, tab), `<img src=x onerror=alert(3)>`)) // the body, as text
	})

	t.Run("the focus stays on its link while the list updates", func(t *testing.T) {
		is := is.New(t)
		do(t, tab, "the demo inbox", chromedp.Navigate(s.url+"/console/inbox?inbox=demo"), chromedp.WaitVisible(css("#live-status")))
		n := rows(t)
		href := get(t, tab, "a keyboard on a request's link", chromedp.Evaluate[string](
			`(a => (a.focus(), a.getAttribute("href")))(document.querySelector("#requests tbody tr:last-child a"))`))
		post(t, "while-reading")
		waitRows(t, "the request appears", n+1)
		is.Equal(get(t, tab, "the focus", chromedp.Evaluate[string](`document.activeElement.getAttribute("href") || document.activeElement.tagName`)), href) // not thrown back to the page's top
	})

	t.Run("the inbox page left again and again keeps its live view", func(t *testing.T) {
		is := is.New(t)
		// The streams the server is asked to open (a GET of the stream's address), and
		// the questions why one stopped (a HEAD).
		var mu sync.Mutex
		var opened []string
		var asked int
		saw := func(r *http.Request) {
			if r.URL.Path != "/console/inbox/events" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if r.Method == http.MethodGet {
				opened = append(opened, r.Header.Get("Accept"))
			} else {
				asked++
			}
		}
		s.saw.Store(&saw)
		defer s.saw.Store(nil)
		// Each page takes a while to go, as on a busy machine: its stream closes
		// first, its script asks why (it cannot tell a page being left from a stream
		// refused), and the question reaches the server before the page has gone.
		slow, err := chromedp.Call(tab, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `addEventListener("pagehide", () => { const end = Date.now() + 100; while (Date.now() < end); });`})
		is.NoErr(err)
		defer chromedp.Call(tab, cdppage.RemoveScriptToEvaluateOnNewDocument, cdppage.RemoveScriptToEvaluateOnNewDocumentParams(slow))
		const pages = 6
		for range pages {
			do(t, tab, "the demo inbox", chromedp.Navigate(s.url+"/console/inbox?inbox=demo"), chromedp.WaitVisible(css("#live-status")))
			do(t, tab, "and away", chromedp.Navigate(s.url+"/console/"), chromedp.WaitVisible(css(".who")))
		}
		do(t, tab, "the demo inbox again", chromedp.Navigate(s.url+"/console/inbox?inbox=demo"))
		liveStarts(t, "its live view starts")
		n := rows(t)
		post(t, "after-leaving")
		waitRows(t, "the request appears", n+1)
		mu.Lock()
		defer mu.Unlock()
		// Only the pages' EventSources opened a stream. The question why is a HEAD,
		// which opens none: as a GET it opened one, which a browser may keep for
		// seconds after the page has gone (Chromium reads on an abandoned answer for
		// up to 5 s), a live view of the reader's that long, so that a few pages
		// left in a row could have the next one's refused as one too many.
		t.Logf("%d streams opened, %d questions why", len(opened), asked)
		is.True(len(opened) >= pages+1) // a stream for each page
		for _, accept := range opened {
			is.Equal(accept, "text/event-stream") // an EventSource's, and no other
		}
	})

	t.Run("a live view refused for too many open says so", func(t *testing.T) {
		is := is.New(t)
		do(t, tab, "away from the inbox (its live view ends)", chromedp.Navigate(s.url+"/console/"), chromedp.WaitVisible(css(".who")))
		other, cancel := chromedp.NewContext(tab) // another tab of the same sign-in
		defer cancel()
		is.NoErr(chromedp.Do(other)) // opened here, to live past the steps' time limits
		do(t, other, "four live views in another tab", chromedp.Navigate(s.url+"/console/"), chromedp.WaitVisible(css(".who")),
			// One refused while the server has not yet seen the first tab's stream end
			// is opened again.
			chromedp.Evaluate[chromedp.Void](`window.views = [];
				const open = () => {
					const v = new EventSource("/console/inbox/events?inbox=demo");
					v.onerror = () => { if (v.readyState === EventSource.CLOSED) { window.views = window.views.filter(x => x !== v); setTimeout(open, 200); } };
					window.views.push(v);
				};
				for (let i = 0; i < 4; i++) open();`),
			chromedp.Poll[chromedp.Void](`window.views.length === 4 && window.views.every(v => v.readyState === EventSource.OPEN)`))
		do(t, tab, "the demo inbox, a fifth", chromedp.Navigate(s.url+"/console/inbox?inbox=demo"),
			chromedp.Poll[chromedp.Void](`document.querySelector("#live-status").textContent.includes("Live updates")`))
		status := get(t, tab, "status", chromedp.Text(css("#live-status")))
		is.True(strings.Contains(status, "too many live views of the inbox are open")) // the reason, not "signed out, or hookd stopped"
		is.True(!strings.Contains(status, "signed out"))
		do(t, other, "close them", chromedp.Evaluate[chromedp.Void](`window.views.forEach(v => v.close())`))
	})

	t.Run("a live view left open does not keep its session", func(t *testing.T) {
		is := is.New(t)
		s.clock.Advance(20 * time.Minute)
		do(t, tab, "the demo inbox", chromedp.Navigate(s.url+"/console/inbox?inbox=demo"), chromedp.WaitVisible(css("#live-status")))
		before := rows(t)
		s.clock.Advance(20 * time.Minute) // nobody at the page
		post(t, "unattended")
		waitRows(t, "the request appears", before+1) // the script fetched the page again
		s.clock.Advance(15 * time.Minute)            // 35 minutes since the reader's last page
		do(t, tab, "the overview", chromedp.Navigate(s.url+"/console/"), chromedp.WaitVisible(css("#client_id")))
		is.True(strings.Contains(text(t, tab), "Sign in")) // the session ended while idle
	})

	b.check() // no CSP violation, script error or dialog on any page
}

// TestBrowserScreenshotsInbox writes docs/console-inbox.png (with -screenshots): a
// developer's inbox after hookd's callbacks, one failing, and a request by hand.
func TestBrowserScreenshotsInbox(t *testing.T) {
	if !*screenshots {
		t.Skip("run with -screenshots to write docs/console-inbox.png")
	}
	is := is.New(t)
	b := newBrowser(t)
	s := newInboxStack(t)
	ctx := context.Background()
	c, err := s.st.CreateClient(ctx, store.NewClient{Name: "cris-sync", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}})
	is.NoErr(err)
	for _, r := range []string{"0000-0002-1825-0097", "0000-0001-5109-3700", "0000-0002-7253-3645"} {
		_, _, err := s.st.PutOrcidWebhook(ctx, c.ID, r, s.url+"/inbox/demo/"+r+"/updated")
		is.NoErr(err)
	}
	_, err = s.st.Intake(ctx, c.ID, "", []store.Event{{Orcid: "0000-0002-1825-0097"}, {Orcid: "0000-0001-5109-3700"}}, 0)
	is.NoErr(err)
	s.deliver(t)
	s.clock.Advance(47 * time.Second)
	_, err = s.st.SetInboxAnswer(ctx, "demo", store.InboxAnswer{Status: 503, RetryAfter: 120 * time.Second})
	is.NoErr(err)
	_, err = s.st.Intake(ctx, c.ID, "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
	is.NoErr(err)
	s.deliver(t)
	s.clock.Advance(95 * time.Second)
	res, err := http.Post(s.url+"/inbox/demo/manual-test?source=curl", "application/json", strings.NewReader(`{"hello":"inbox"}`))
	is.NoErr(err)
	res.Body.Close()

	tab := b.tab()
	signIn(t, tab, s.url, c.ID, c.Secret)
	do(t, tab, "inbox", chromedp.Navigate(s.url+"/console/inbox?inbox=demo"), chromedp.WaitVisible(css("#live-status")))
	accessible(t, tab, "inbox")
	shots := filepath.Join("..", "docs")
	is.NoErr(os.MkdirAll(shots, 0o755))
	png := get(t, tab, "screenshot inbox", chromedp.FullScreenshot(100))
	is.NoErr(os.WriteFile(filepath.Join(shots, "console-inbox.png"), png, 0o644))
	b.check()
}

// inboxState logs what a failed wait on the inbox page needs to be understood: the
// live view's status and the rows the page lists, the requests the inbox recorded,
// and the deliveries with their states.
func inboxState(t *testing.T, tab context.Context, st *store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 5*time.Second)
	defer cancel()
	page, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("#live-status") || {}).textContent + " | rows " +
		document.querySelectorAll("#requests tbody tr").length + " | " + location.href`))
	t.Logf("the page: %q (err %v)", page, err)
	rs, err := st.InboxRequests(context.Background(), store.InboxFilter{})
	if err != nil {
		t.Logf("inbox requests: %v", err)
	}
	for _, r := range rs {
		t.Logf("inbox request #%d %s %s %s answered %d, delivery %d attempt %d", r.ID, r.Inbox, r.Method, r.Path, r.AnswerStatus, r.DeliveryID, r.Attempt)
	}
	ds, err := st.Deliveries(context.Background(), store.DeliveryFilter{})
	if err != nil {
		t.Logf("deliveries: %v", err)
	}
	for _, d := range ds {
		t.Logf("delivery #%d %s due %s attempts %d events %d", d.ID, d.State, d.DueAt.Format(time.RFC3339Nano), d.Attempts, d.EventCount)
	}
}
