package console_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/console"
	"hookd/ssrf"
	"hookd/store"
)

// The inbox's part of the env's world: client A's ORCID-style registration calls
// the inbox a-box, organisation A's webhook calls org-a-box, and nobody's webhook
// calls stranger. Each has received one request.
const recordInbox = "0000-0002-1825-0097"

type inboxWorld struct {
	aReq, orgReq, strangerReq store.InboxRequest
}

func seedInbox(tb testing.TB, e *env) inboxWorld {
	tb.Helper()
	is := is.New(tb)
	ctx := context.Background()
	_, _, err := e.st.PutOrcidWebhook(ctx, e.a.ID, recordInbox, "http://127.0.0.1:8080/inbox/a-box/"+recordInbox+"/updated")
	is.NoErr(err) // A calls a-box
	_, _, err = e.st.SetHubSettings(ctx, e.orgA.ID, store.HubSettings{Enabled: true, URL: "http://127.0.0.1:8080/inbox/org-a-box"})
	is.NoErr(err) // organisation A calls org-a-box
	return inboxWorld{
		aReq:        postInbox(tb, e, "a-box", "/"+recordInbox+"/updated", nil, ""),
		orgReq:      postInbox(tb, e, "org-a-box", "", http.Header{"Content-Type": {"application/json"}}, `{"orcid":"`+memberA+`"}`),
		strangerReq: postInbox(tb, e, "stranger", "/x", nil, "hello"),
	}
}

// postInbox records a POST to an inbox, as the inbox's route does.
func postInbox(tb testing.TB, e *env, inbox, rest string, h http.Header, body string) store.InboxRequest {
	tb.Helper()
	if h == nil {
		h = http.Header{}
	}
	r, _, err := e.st.RecordInboxRequest(context.Background(), store.InboxReceipt{Inbox: inbox, Method: http.MethodPost,
		Path: "/inbox/" + inbox + rest, Header: h, Body: []byte(body), RemoteAddr: "127.0.0.1:50000"}, store.InboxLimits{})
	if err != nil {
		tb.Fatalf("record a request to %s: %v", inbox, err)
	}
	return r
}

// TestInboxPagesAuthorisation sends the inbox page's requests as each kind of
// principal: the operator sees every inbox, a client the inboxes its webhooks
// call, an organisation's staff those of its organisation's webhook (and of its
// own client's); any other inbox is not found.
func TestInboxPagesAuthorisation(t *testing.T) {
	roles := []string{"token", "admin", "a", "b", "staffA"}
	id := func(r store.InboxRequest) string { return strconv.FormatInt(r.ID, 10) }
	cases := []struct {
		name   string
		method string
		path   func(w inboxWorld) string
		form   url.Values
		want   [5]int // token, admin, a, b, staffA
	}{
		{"the inboxes", "GET", func(inboxWorld) string { return "/console/inbox" }, nil, [5]int{200, 200, 200, 200, 200}},
		{"A's inbox", "GET", func(inboxWorld) string { return "/console/inbox?inbox=a-box" }, nil, [5]int{200, 200, 200, 404, 404}},
		{"organisation A's inbox", "GET", func(inboxWorld) string { return "/console/inbox?inbox=org-a-box" }, nil, [5]int{200, 200, 404, 404, 200}},
		{"an inbox nobody's webhook calls", "GET", func(inboxWorld) string { return "/console/inbox?inbox=stranger" }, nil, [5]int{200, 200, 404, 404, 404}},
		{"an empty inbox", "GET", func(inboxWorld) string { return "/console/inbox?inbox=never" }, nil, [5]int{200, 200, 404, 404, 404}},
		{"not an inbox name", "GET", func(inboxWorld) string { return "/console/inbox?inbox=a%2Fb" }, nil, [5]int{404, 404, 404, 404, 404}},
		{"a request to A's", "GET", func(w inboxWorld) string { return "/console/inbox/requests/" + id(w.aReq) }, nil, [5]int{200, 200, 200, 404, 404}},
		{"a request to organisation A's", "GET", func(w inboxWorld) string { return "/console/inbox/requests/" + id(w.orgReq) }, nil, [5]int{200, 200, 404, 404, 200}},
		{"a request to stranger", "GET", func(w inboxWorld) string { return "/console/inbox/requests/" + id(w.strangerReq) }, nil, [5]int{200, 200, 404, 404, 404}},
		{"no such request", "GET", func(inboxWorld) string { return "/console/inbox/requests/999999" }, nil, [5]int{404, 404, 404, 404, 404}},
		{"not a request id", "GET", func(inboxWorld) string { return "/console/inbox/requests/x" }, nil, [5]int{404, 404, 404, 404, 404}},
		{"the stream of an inbox nobody's webhook calls", "GET", func(inboxWorld) string { return "/console/inbox/events?inbox=stranger" }, nil, [5]int{0, 0, 404, 404, 404}},
		{"set A's answer", "POST", func(inboxWorld) string { return "/console/inbox/a-box/answer" }, url.Values{"status": {"500"}}, [5]int{303, 303, 303, 404, 404}},
		{"reset A's answer", "POST", func(inboxWorld) string { return "/console/inbox/a-box/answer" }, url.Values{"reset": {"yes"}}, [5]int{303, 303, 303, 404, 404}},
		{"set organisation A's answer", "POST", func(inboxWorld) string { return "/console/inbox/org-a-box/answer" }, url.Values{"status": {"410"}}, [5]int{303, 303, 404, 404, 303}},
		{"set stranger's answer", "POST", func(inboxWorld) string { return "/console/inbox/stranger/answer" }, url.Values{"status": {"410"}}, [5]int{303, 303, 404, 404, 404}},
		{"empty A's", "POST", func(inboxWorld) string { return "/console/inbox/a-box/clear" }, url.Values{"confirm": {"yes"}}, [5]int{303, 303, 303, 404, 404}},
		{"empty organisation A's", "POST", func(inboxWorld) string { return "/console/inbox/org-a-box/clear" }, url.Values{"confirm": {"yes"}}, [5]int{303, 303, 404, 404, 303}},
		{"empty stranger", "POST", func(inboxWorld) string { return "/console/inbox/stranger/clear" }, url.Values{"confirm": {"yes"}}, [5]int{303, 303, 404, 404, 404}},
		{"an unknown action", "POST", func(inboxWorld) string { return "/console/inbox/a-box/explode" }, nil, [5]int{404, 404, 404, 404, 404}},
		{"a bad name's answer", "POST", func(inboxWorld) string { return "/console/inbox/a..b%20/answer" }, url.Values{"status": {"500"}}, [5]int{404, 404, 404, 404, 404}},
	}
	for _, c := range cases {
		for i, role := range roles {
			if c.want[i] == 0 {
				continue // a stream that is served: TestInboxEvents
			}
			t.Run(fmt.Sprintf("%s as %s", c.name, role), func(t *testing.T) {
				t.Parallel()
				is := is.New(t)
				e := newEnv(t)
				w := seedInbox(t, e)
				u := e.as(t, role)
				var p page
				if c.method == "GET" {
					p = u.get(t, c.path(w))
				} else {
					p = u.post(t, c.path(w), c.form)
				}
				is.Equal(p.status, c.want[i]) // the answer for this role
				if p.status == http.StatusOK {
					is.Equal(p.header.Get("Content-Type"), "text/html; charset=utf-8") // a page
				}
			})
		}
	}
}

// TestInboxListsShowOnlyOwn: each principal's inbox page lists its inboxes and
// their requests only, and the navigation leads there.
func TestInboxListsShowOnlyOwn(t *testing.T) {
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled = true })
	w := seedInbox(t, e)
	link := func(r store.InboxRequest) string { return fmt.Sprintf(`href="/console/inbox/requests/%d"`, r.ID) }
	for _, tt := range []struct {
		role        string
		see, notSee []string
	}{
		{"token", []string{"?inbox=a-box", "?inbox=org-a-box", "?inbox=stranger", link(w.aReq), link(w.orgReq), link(w.strangerReq)}, nil},
		{"a", []string{"?inbox=a-box", link(w.aReq)}, []string{"org-a-box", "stranger", link(w.orgReq), link(w.strangerReq)}},
		{"staffA", []string{"?inbox=org-a-box", link(w.orgReq)}, []string{">a-box<", "?inbox=a-box", "stranger", link(w.aReq), link(w.strangerReq)}},
		{"b", []string{"None of your webhooks calls an inbox yet."}, []string{"a-box", "stranger", "org-a-box"}},
	} {
		t.Run(tt.role, func(t *testing.T) {
			is := is.New(t)
			p := e.as(t, tt.role).get(t, "/console/inbox")
			is.Equal(p.status, http.StatusOK)
			is.True(strings.Contains(p.body, `<a href="/console/inbox" aria-current="page">Inbox</a>`)) // in the navigation, as the current page
			is.True(!strings.Contains(p.body, "The inbox is off"))                                      // it is on
			for _, s := range tt.see {
				if !strings.Contains(p.body, s) {
					t.Errorf("%s does not see %q", tt.role, s)
				}
			}
			for _, s := range tt.notSee {
				if strings.Contains(p.body, s) {
					t.Errorf("%s sees %q", tt.role, s)
				}
			}
		})
	}
	t.Run("an inbox a webhook calls is listed before it received anything", func(t *testing.T) {
		is := is.New(t)
		_, err := e.st.ClearInbox(context.Background(), "a-box")
		is.NoErr(err)
		p := e.as(t, "a").get(t, "/console/inbox")
		is.True(strings.Contains(p.body, `<a href="/console/inbox?inbox=a-box">a-box</a></td>
    <td>0</td>`)) // listed, holding nothing
	})
	t.Run("an inbox that is off says so", func(t *testing.T) {
		is := is.New(t)
		off := newEnv(t)
		p := off.as(t, "token").get(t, "/console/inbox")
		is.True(strings.Contains(p.body, "The inbox is off in this hookd"))                            // said
		is.True(strings.Contains(p.body, "Once the inbox is on (<code>[inbox] enabled = true</code>")) // with how to turn it on
		is.True(!strings.Contains(p.body, "Register a callback"))                                      // before a callback could land there
	})
}

// TestInboxAnswerForm: each bad value is refused with its error beside its field
// and changes nothing; a good one is stored and audited; reset and clear work.
func TestInboxAnswerForm(t *testing.T) {
	e := newEnv(t)
	w := seedInbox(t, e)
	u := e.as(t, "a")
	ctx := context.Background()
	const path = "/console/inbox/a-box/answer"
	for _, tt := range []struct {
		name  string
		form  url.Values
		field string
		msg   string
	}{
		{"a status that is no number", url.Values{"status": {"five hundred"}}, "status", "write a status as a number"},
		{"a status out of range", url.Values{"status": {"99"}}, "status", "99 is not a status an inbox answers with"},
		{"a 3xx that is no redirect", url.Values{"status": {"304"}}, "status", "an inbox redirects with 301, 302, 303, 307 or 308"},
		{"Retry-After with a 500", url.Values{"status": {"500"}, "retry_after": {"5"}}, "retry_after", "is sent only with a 429 or a 503"},
		{"Retry-After that is no number", url.Values{"status": {"429"}, "retry_after": {"soon"}}, "retry_after", "write whole seconds"},
		{"a redirect without a URL", url.Values{"status": {"302"}}, "location", "a redirect (302) needs a Location"},
		{"a javascript: redirect", url.Values{"location": {"javascript:alert(1)"}}, "location", "must be an absolute http or https URL"},
		{"a delay too long", url.Values{"delay": {"1h"}}, "delay", "must be from 0s to 5m0s"},
		{"a delay that is no duration", url.Values{"delay": {"a while"}}, "delay", "write a duration such as 30s"},
		{"a Retry-After past what a duration holds", url.Values{"status": {"503"}, "retry_after": {"36028797018964088"}}, "retry_after",
			"must be whole seconds from 1 to 86400 (a day), got 36028797018964088"},
		{"a delay in seconds past what a duration holds", url.Values{"delay": {"36028797018963998"}}, "delay", "must be from 0 to 300 seconds (5m0s), got 36028797018963998"},
		{"a delay of too many seconds", url.Values{"delay": {"301"}}, "delay", "must be from 0 to 300 seconds (5m0s), got 301"},
		{"a status of 0", url.Values{"status": {"0"}}, "status", "0 is not a status an inbox answers with"},
		{"a Retry-After of 0", url.Values{"status": {"503"}, "retry_after": {"0"}}, "retry_after", "must be whole seconds from 1 to 86400 (a day), got 0"},
		{"a Retry-After of 0 with a 500", url.Values{"status": {"500"}, "retry_after": {"0"}}, "retry_after", "must be whole seconds from 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			p := u.post(t, path, tt.form)
			is.Equal(p.status, http.StatusBadRequest)      // refused
			is.True(besideField(p.body, tt.field, tt.msg)) // with the error beside the field
			for k, v := range tt.form {
				is.True(strings.Contains(p.body, `name="`+k+`"`) && strings.Contains(p.body, `value="`+htmlText(v[0])+`"`)) // what was typed stays
			}
			a, err := e.st.InboxAnswerOf(ctx, "a-box")
			is.NoErr(err)
			is.True(a.IsDefault()) // nothing changed
		})
	}

	t.Run("a good one, then reset", func(t *testing.T) {
		is := is.New(t)
		p := u.post(t, path, url.Values{"status": {"429"}, "retry_after": {"120"}, "delay": {"2"}})
		is.Equal(p.status, http.StatusSeeOther) // saved
		is.Equal(p.location, "/console/inbox?done=answer&inbox=a-box")
		a, err := e.st.InboxAnswerOf(ctx, "a-box")
		is.NoErr(err)
		is.Equal(a, store.InboxAnswer{Status: 429, RetryAfter: 120 * time.Second, Delay: 2 * time.Second}) // as typed; a bare delay is seconds
		page := u.get(t, p.location)
		is.True(strings.Contains(page.body, "The inbox answers as set below from now on."))
		is.True(strings.Contains(page.body, "<strong>429 Too Many Requests, Retry-After: 120, after 2s</strong>")) // shown
		is.True(strings.Contains(page.body, `value="429"`))                                                        // in the form too
		log, err := e.st.AuditLog(ctx, store.AuditQuery{Visible: store.Visibility{ClientID: e.a.ID}, Action: "inbox."})
		is.NoErr(err)
		is.Equal(len(log), 1) // audited
		is.Equal(log[0].Actor, e.a.ID)
		is.Equal(log[0].Target, "a-box")
		is.Equal(log[0].Detail, "429 Too Many Requests, Retry-After: 120, after 2s")

		p = u.post(t, path, url.Values{"reset": {"yes"}, "status": {"500"}})
		is.Equal(p.status, http.StatusSeeOther)
		a, err = e.st.InboxAnswerOf(ctx, "a-box")
		is.NoErr(err)
		is.True(a.IsDefault()) // reset wins over the fields
	})

	t.Run("clear asks first, then empties the inbox", func(t *testing.T) {
		is := is.New(t)
		p := u.post(t, "/console/inbox/a-box/clear", nil)
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "confirm", "tick the box to confirm")) // asked
		_, err := e.st.InboxRequestByID(ctx, w.aReq.ID)
		is.NoErr(err) // still there
		p = u.post(t, "/console/inbox/a-box/clear", url.Values{"confirm": {"yes"}})
		is.Equal(p.status, http.StatusSeeOther)
		page := u.get(t, p.location)
		is.True(strings.Contains(page.body, "The inbox is emptied"))
		is.True(strings.Contains(page.body, "Nothing received yet"))
		rs, err := e.st.InboxRequests(ctx, store.InboxFilter{Inbox: "a-box"})
		is.NoErr(err)
		is.Equal(len(rs), 0) // emptied
		log, err := e.st.AuditLog(ctx, store.AuditQuery{Visible: store.Visibility{ClientID: e.a.ID}, Action: "inbox.clear"})
		is.NoErr(err)
		is.Equal(len(log), 1) // audited
		is.Equal(log[0].Detail, "1 request")
		_, err = e.st.InboxRequestByID(ctx, w.orgReq.ID)
		is.NoErr(err) // another inbox's stay
	})

	t.Run("clear says that the answer stays only of one set", func(t *testing.T) {
		is := is.New(t)
		a, err := e.st.InboxAnswerOf(ctx, "a-box")
		is.NoErr(err)
		is.True(a.IsDefault()) // none set
		page := u.get(t, "/console/inbox?inbox=a-box")
		is.True(strings.Contains(page.body, "Delete every request of inbox a-box</label>")) // no answer of its own to keep
		p := u.post(t, "/console/inbox/a-box/clear", url.Values{"confirm": {"yes"}})
		is.Equal(p.status, http.StatusSeeOther)
		page = u.get(t, p.location)
		is.True(strings.Contains(page.body, "The inbox is emptied."))
		is.True(!strings.Contains(page.body, "answer stays")) // of an answer it has not

		_, err = e.st.SetInboxAnswer(ctx, "a-box", store.InboxAnswer{Status: 500})
		is.NoErr(err)
		page = u.get(t, "/console/inbox?inbox=a-box")
		is.True(strings.Contains(page.body, "Delete every request of inbox a-box (its answer stays)</label>")) // the answer set
		p = u.post(t, "/console/inbox/a-box/clear", url.Values{"confirm": {"yes"}})
		is.Equal(p.status, http.StatusSeeOther)
		page = u.get(t, p.location)
		is.True(strings.Contains(page.body, "The inbox is emptied; its answer stays as set below.")) // kept, and said
		is.True(strings.Contains(page.body, "<strong>500 Internal Server Error</strong>"))
		is.NoErr(e.st.ResetInboxAnswer(ctx, "a-box"))
	})
}

// TestInboxLinksDelivery: a request that a hookd delivery sent links to the
// delivery's page, and the delivery's page lists the request, for its owner.
func TestInboxLinksDelivery(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	seedInbox(t, e)
	ctx := context.Background()
	_, err := e.st.Intake(ctx, "", "", []store.Event{{Orcid: recordInbox}}, 0)
	is.NoErr(err) // an event for the record A's registration covers
	_, err = e.st.Claim(ctx, 10, time.Minute)
	is.NoErr(err) // the dispatcher takes it
	ds, err := e.st.Deliveries(ctx, store.DeliveryFilter{ClientID: e.a.ID, Orcid: recordInbox, State: "in-flight"})
	is.NoErr(err)
	var d store.Delivery
	for _, x := range ds {
		if strings.Contains(x.Target, "/inbox/a-box/") {
			d = x
		}
	}
	is.True(d.ID != 0) // the delivery to a-box
	r := postInbox(t, e, "a-box", "/"+recordInbox+"/updated", http.Header{"Webhook-Id": {store.MessageID(d.ID, 0)}}, "")
	is.Equal(r.DeliveryID, d.ID) // linked by its webhook-id

	u := e.as(t, "a")
	req := u.get(t, "/console/inbox/requests/"+strconv.FormatInt(r.ID, 10))
	is.Equal(req.status, http.StatusOK)
	is.True(strings.Contains(req.body, fmt.Sprintf(`<a href="/console/deliveries/%d">hookd delivery #%d</a>, attempt 1`, d.ID, d.ID))) // to the delivery
	del := u.get(t, "/console/deliveries/"+strconv.FormatInt(d.ID, 10))
	is.Equal(del.status, http.StatusOK)
	is.True(strings.Contains(del.body, fmt.Sprintf(`<a href="/console/inbox/requests/%d">request #%d</a> in inbox a-box, attempt 1`, r.ID, r.ID))) // and back
	list := u.get(t, "/console/inbox?inbox=a-box")
	is.True(strings.Contains(list.body, fmt.Sprintf(`<a href="/console/deliveries/%d">delivery #%d</a>, attempt 1`, d.ID, d.ID))) // the list links it too

	// The registration removed, its owner still sees what its delivery made.
	is.True(strings.Contains(req.body, `<a href="/console/inbox?inbox=a-box">a-box</a>`)) // while its webhook calls the inbox, a link to it
	is.NoErr(e.st.DeleteOrcidWebhook(ctx, e.a.ID, recordInbox, "http://127.0.0.1:8080/inbox/a-box/"+recordInbox+"/updated"))
	req = u.get(t, "/console/inbox/requests/"+strconv.FormatInt(r.ID, 10))
	is.Equal(req.status, http.StatusOK)                                          // through the delivery
	is.Equal(u.get(t, "/console/inbox?inbox=a-box").status, http.StatusNotFound) // not the inbox any more
	is.True(!strings.Contains(req.body, `href="/console/inbox?inbox=a-box"`))    // so no link to it
	is.True(strings.Contains(req.body, "none of your webhooks calls it any more"))

	// A client made later with A's id sees neither the delivery nor the request it
	// made, as it sees nothing else of the removed client's.
	is.NoErr(e.st.RemoveClient(ctx, e.a.ID))
	e.clock.Advance(time.Second)
	again, err := e.st.CreateClient(ctx, store.NewClient{ID: e.a.ID, Name: "newcomer", Secret: "newcomer-secret-1", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	n := e.newUser(t)
	is.Equal(n.signIn(t, again.ID, again.Secret).status, http.StatusSeeOther)
	is.Equal(n.get(t, "/console/deliveries/"+strconv.FormatInt(d.ID, 10)).status, http.StatusNotFound)
	is.Equal(n.get(t, "/console/inbox/requests/"+strconv.FormatInt(r.ID, 10)).status, http.StatusNotFound)
}

// stream opens the inbox's event stream as u and returns a func that reads the
// next event's id and data (failing the test when the stream ends first).
func (u *user) stream(t *testing.T, path string) (next func() (id, data string), res *http.Response) {
	t.Helper()
	is := is.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.e.srv.URL+path, nil)
	is.NoErr(err)
	res, err = u.http.Do(req)
	is.NoErr(err) // the stream
	t.Cleanup(func() { res.Body.Close() })
	sc := bufio.NewScanner(res.Body)
	return func() (string, string) {
		t.Helper()
		var id, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && id != "":
				return id, data
			}
		}
		t.Fatalf("the stream ended before an event: %v", sc.Err())
		return "", ""
	}, res
}

// TestInboxEvents: the stream sends an event for each new request the reader may
// see, from where the page left off, and ends at the console's shutdown.
func TestInboxEvents(t *testing.T) {
	e := newEnv(t)
	w := seedInbox(t, e)

	t.Run("one inbox, from after", func(t *testing.T) {
		is := is.New(t)
		next, res := e.as(t, "a").stream(t, "/console/inbox/events?inbox=a-box&after=0")
		is.Equal(res.StatusCode, http.StatusOK)
		is.Equal(res.Header.Get("Content-Type"), "text/event-stream; charset=utf-8")
		id, data := next()
		is.Equal(id, strconv.FormatInt(w.aReq.ID, 10))                                 // what came after 0
		is.Equal(data, fmt.Sprintf(`{"id":%d,"inbox":"a-box"}`, w.aReq.ID))            // named
		postInbox(t, e, "stranger", "/y", nil, "")                                     // another inbox's
		r := postInbox(t, e, "a-box", "/z", nil, "")                                   // then this one's
		id, _ = next()                                                                 // wakes the stream
		is.Equal(id, strconv.FormatInt(r.ID, 10))                                      // only this inbox's
		is.True(res.Header.Get("Cache-Control") == "no-store")                         // never cached
		is.True(strings.Contains(res.Header.Get("Content-Security-Policy"), "'self'")) // the console's headers
	})

	t.Run("every inbox one sees, from Last-Event-ID", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "staffA")
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/console/inbox/events", nil)
		is.NoErr(err)
		req.Header.Set("Last-Event-ID", strconv.FormatInt(w.strangerReq.ID, 10))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res, err := u.http.Do(req.WithContext(ctx))
		is.NoErr(err)
		defer res.Body.Close()
		postInbox(t, e, "a-box", "/not-staff", nil, "")
		r := postInbox(t, e, "org-a-box", "/staff", nil, "")
		sc := bufio.NewScanner(res.Body)
		var ids []string
		for len(ids) == 0 && sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				ids = append(ids, id)
			}
		}
		is.Equal(ids, []string{strconv.FormatInt(r.ID, 10)}) // organisation A's inbox only
	})

	t.Run("shutdown ends the streams", func(t *testing.T) {
		is := is.New(t)
		next, res := e.as(t, "token").stream(t, "/console/inbox/events?after=0")
		id, _ := next()
		is.Equal(id, strconv.FormatInt(w.aReq.ID, 10)) // the oldest first
		e.h.Shutdown()
		done := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(res.Body)
			done <- err
		}()
		select {
		case err := <-done:
			is.NoErr(err) // the stream ended cleanly
		case <-time.After(20 * time.Second):
			t.Fatal("the stream did not end at shutdown")
		}
	})
}

// TestInboxStreamEndsWithItsSession: a live view open when its session ends (at
// sign-out, or when the client's secret is rotated elsewhere) is told nothing of
// what arrives after, and its stream ends.
func TestInboxStreamEndsWithItsSession(t *testing.T) {
	e := newEnv(t)
	seedInbox(t, e)
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, u *user)
	}{
		{"at sign-out", func(t *testing.T, u *user) {
			is.New(t).Equal(u.post(t, "/console/signout", nil).status, http.StatusSeeOther)
		}},
		{"when the client's secret is rotated elsewhere", func(t *testing.T, u *user) {
			_, err := e.st.RotateClientSecret(context.Background(), e.a.ID, "") // hookd client rotate
			is.New(t).NoErr(err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			u := e.as(t, "a")
			next, res := u.stream(t, "/console/inbox/events?inbox=a-box&after=0")
			is.Equal(res.StatusCode, http.StatusOK)
			next() // the stream is open
			tc.end(t, u)
			after := postInbox(t, e, "a-box", "/after-the-session", nil, "")
			rest, err := io.ReadAll(res.Body)
			is.NoErr(err)                                                                         // the stream ended
			is.True(!strings.Contains(string(rest), "id: "+strconv.FormatInt(after.ID, 10)+"\n")) // and said nothing of it
		})
	}
}

// TestInboxStreamStopsWhenAnotherOwnerCalls: a live view is told nothing more of
// an inbox that has become the operator's alone since it opened (another owner's
// webhook calls it too): a view of that inbox ends, and a view of every inbox the
// reader sees goes on without it.
func TestInboxStreamStopsWhenAnotherOwnerCalls(t *testing.T) {
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled = true })
	w := seedInbox(t, e)
	ctx := t.Context()
	_, _, err := e.st.CreateWebhook(ctx, e.a.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/a-two", Auth: store.Auth{Type: store.AuthNone}})
	is.New(t).NoErr(err) // A calls a-two as well
	a := e.as(t, "a")
	one, oneRes := a.stream(t, "/console/inbox/events?inbox=a-box&after=0")
	every, _ := a.stream(t, "/console/inbox/events?after="+strconv.FormatInt(w.strangerReq.ID, 10))
	is := is.New(t)
	id, _ := one()
	is.Equal(id, strconv.FormatInt(w.aReq.ID, 10)) // the view of a-box is open

	_, _, err = e.st.CreateWebhook(ctx, e.b.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/a-box/mine", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)                // B points a webhook at A's inbox
	e.clock.Advance(time.Second) // a stream checks what its reader sees once a second at most
	after := postInbox(t, e, "a-box", "/after-b", nil, "")
	mine := postInbox(t, e, "a-two", "/still-mine", nil, "")

	rest, err := io.ReadAll(oneRes.Body)
	is.NoErr(err)                                                                         // the view of a-box ended
	is.True(!strings.Contains(string(rest), "id: "+strconv.FormatInt(after.ID, 10)+"\n")) // saying nothing of it
	id, _ = every()
	is.Equal(id, strconv.FormatInt(mine.ID, 10)) // the other view tells of a-two's request, not a-box's
}

// TestInboxStreamsEach: one principal may keep a few live views open (a tab each),
// not every stream the console allows, so another still gets one.
func TestInboxStreamsEach(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	seedInbox(t, e)
	a := e.as(t, "a")
	for range 4 {
		_, res := a.stream(t, "/console/inbox/events?after=0")
		is.Equal(res.StatusCode, http.StatusOK) // a tab's live view
	}
	_, res := a.stream(t, "/console/inbox/events?after=0")
	is.Equal(res.StatusCode, http.StatusServiceUnavailable) // a fifth: refused
	_, res = e.as(t, "b").stream(t, "/console/inbox/events?after=0")
	is.Equal(res.StatusCode, http.StatusOK) // another principal still gets one
}

// TestInboxStreamsLeaveTheOperatorOne: clients and staff who have every live view
// the console allows them together open leave the operator (the admin token, an
// admin client) its own: a stream of theirs is refused, the operator's opens.
func TestInboxStreamsLeaveTheOperatorOne(t *testing.T) {
	is := is.New(t)
	defer console.SetMaxStreams(8)()
	e := newEnv(t)
	seedInbox(t, e)
	for _, who := range []string{"a", "b"} {
		u := e.as(t, who)
		for range 4 {
			_, res := u.stream(t, "/console/inbox/events?after=0")
			is.Equal(res.StatusCode, http.StatusOK) // a tab's live view
		}
	}
	_, res := e.as(t, "staffA").stream(t, "/console/inbox/events?after=0")
	is.Equal(res.StatusCode, http.StatusServiceUnavailable) // every client's and staff member's place taken
	for _, who := range []string{"token", "admin"} {
		_, res := e.as(t, who).stream(t, "/console/inbox/events?after=0")
		is.Equal(res.StatusCode, http.StatusOK) // the operator's still opens
	}
}

// TestInboxStreamAskedWhy: the page's script asks why its live view stopped with a
// HEAD of the stream's address (inbox.js), which answers as the stream would and
// opens none. A page being left asks too, and the browser may keep that request
// open for seconds after the page has gone: each one took a place as a stream, and
// the next page's live view could be refused as one too many.
func TestInboxStreamAskedWhy(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	seedInbox(t, e)
	a := e.as(t, "a")
	// head asks on a connection of its own, which stays open, as a browser that
	// keeps the request after its page has gone does.
	head := func() *http.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, e.srv.URL+"/console/inbox/events?inbox=a-box&after=0", nil)
		is.NoErr(err)
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		res, err := (&http.Client{Jar: a.http.Jar, Transport: tr, CheckRedirect: a.http.CheckRedirect}).Do(req)
		is.NoErr(err) // the question
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	for range 3 {
		_, res := a.stream(t, "/console/inbox/events?inbox=a-box&after=0")
		is.Equal(res.StatusCode, http.StatusOK) // a tab's live view
	}
	for range 4 {
		res := head()
		is.Equal(res.StatusCode, http.StatusOK) // a place is free
		is.Equal(res.Header.Get("Content-Type"), "text/event-stream; charset=utf-8")
	}
	_, res := a.stream(t, "/console/inbox/events?inbox=a-box&after=0")
	is.Equal(res.StatusCode, http.StatusOK) // the fourth tab's live view: the questions took no place
	res = head()
	is.Equal(res.StatusCode, http.StatusServiceUnavailable) // now none is free, and the answer says so
	is.Equal(res.Header.Get("Retry-After"), "30")

	// Answered as the stream is: the inbox must be the reader's, the session open.
	for _, c := range []struct {
		u    *user
		want int
	}{{e.as(t, "b"), http.StatusNotFound}, {e.newUser(t), http.StatusSeeOther}} {
		req, err := http.NewRequest(http.MethodHead, e.srv.URL+"/console/inbox/events?inbox=a-box", nil)
		is.NoErr(err)
		is.Equal(c.u.do(t, req).status, c.want)
	}
}

// TestInboxNotCalledFromAnotherHost: a webhook pointed at another host's
// /inbox/{name} does not call hookd's inbox of that name, so its owner gets no
// part in it (it could otherwise set the answer another client's deliveries get,
// a 410 that deactivates them); one that reaches this hookd does.
func TestInboxNotCalledFromAnotherHost(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	own, err := ssrf.NewInbox("127.0.0.1:8081") // listening there, reached through a proxy at :8080
	is.NoErr(err)
	e.start(t, func(o *console.Options) { o.Inbox, o.InboxEnabled = own, true })
	seedInbox(t, e)
	_, _, err = e.st.CreateWebhook(t.Context(), e.b.ID, store.WebhookSpec{TargetURL: "https://b-owned.example/inbox/a-box/x", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	b := e.as(t, "b")
	is.Equal(b.get(t, "/console/inbox?inbox=a-box").status, http.StatusNotFound)
	is.Equal(b.post(t, "/console/inbox/a-box/answer", url.Values{"status": {"410"}}).status, http.StatusNotFound)
	ans, err := e.st.InboxAnswerOf(t.Context(), "a-box")
	is.NoErr(err)
	is.True(ans.IsDefault()) // unchanged
	is.True(!strings.Contains(b.get(t, "/console/inbox").body, "a-box"))

	_, _, err = e.st.CreateWebhook(t.Context(), e.b.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/b-box/x", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	is.Equal(b.get(t, "/console/inbox?inbox=b-box").status, http.StatusOK) // its own, at hookd's public URL
	for i, target := range []string{"http://127.0.0.1:8081/inbox/c-box/x", "http://localhost:8081/inbox/d-box/x", "http://[::1]:8081/inbox/e-box/x"} {
		_, _, err = e.st.CreateWebhook(t.Context(), e.b.ID, store.WebhookSpec{TargetURL: target, Auth: store.Auth{Type: store.AuthNone}})
		is.NoErr(err)
		want := http.StatusOK // at the address hookd listens on, by its literal or as localhost
		if i == 2 {
			want = http.StatusNotFound // hookd does not listen on ::1
		}
		is.Equal(b.get(t, "/console/inbox?inbox="+[]string{"c-box", "d-box", "e-box"}[i]).status, want)
	}
}

// TestInboxCalledByTwoOwners: a client that points a webhook at another's inbox,
// on hookd's own address, gets no part in it: it cannot read it, answer for it (a
// 410 would deactivate the other's webhook) or empty it. An inbox that the webhooks
// of two owners call is the operator's alone, until one of them stops calling it.
func TestInboxCalledByTwoOwners(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled = true })
	w := seedInbox(t, e)
	bHook, _, err := e.st.CreateWebhook(t.Context(), e.b.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/a-box/mine", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // B points a webhook at A's inbox
	a, b, op := e.as(t, "a"), e.as(t, "b"), e.as(t, "token")
	for _, u := range []*user{a, b} {
		is.Equal(u.get(t, "/console/inbox?inbox=a-box").status, http.StatusNotFound)                                  // neither reads it
		is.Equal(u.get(t, "/console/inbox/requests/"+strconv.FormatInt(w.aReq.ID, 10)).status, http.StatusNotFound)   // nor its requests
		is.Equal(u.post(t, "/console/inbox/a-box/answer", url.Values{"status": {"410"}}).status, http.StatusNotFound) // nor answers for it
		is.Equal(u.post(t, "/console/inbox/a-box/clear", url.Values{"confirm": {"yes"}}).status, http.StatusNotFound) // nor empties it
		is.True(!strings.Contains(u.get(t, "/console/inbox").body, `href="/console/inbox?inbox=a-box"`))              // nor lists it
	}
	ans, err := e.st.InboxAnswerOf(t.Context(), "a-box")
	is.NoErr(err)
	is.True(ans.IsDefault()) // the answer is unchanged
	rs, err := e.st.InboxRequests(t.Context(), store.InboxFilter{Names: []string{"a-box"}})
	is.NoErr(err)
	is.Equal(len(rs), 1)                                                    // and the request still there
	is.Equal(op.get(t, "/console/inbox?inbox=a-box").status, http.StatusOK) // the operator sees it

	is.NoErr(e.st.DeleteWebhook(t.Context(), e.b.ID, bHook.UID))
	is.Equal(a.get(t, "/console/inbox?inbox=a-box").status, http.StatusOK) // A's again once B's webhook is gone
}

// TestInboxLiveViewIsNoUse: a live view left open does not keep its session from
// ending when idle: neither its stream (which the browser opens again every 5
// minutes) nor its script's refreshes of the page are a use of the session.
func TestInboxLiveViewIsNoUse(t *testing.T) {
	e := newEnv(t)
	seedInbox(t, e)
	is := is.New(t)
	u := e.as(t, "a")
	e.clock.Advance(20 * time.Minute)
	next, res := u.stream(t, "/console/inbox/events?inbox=a-box&after=0")
	is.Equal(res.StatusCode, http.StatusOK) // the live view, 20 minutes after the reader's last page
	next()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/console/inbox?inbox=a-box", nil)
	is.NoErr(err)
	req.Header.Set("X-Hookd-Live", "refresh")
	is.Equal(u.do(t, req).status, http.StatusOK) // the script's refresh after an event
	e.clock.Advance(15 * time.Minute)
	is.Equal(u.get(t, "/console/").status, http.StatusSeeOther) // 35 minutes after the reader's last page: signed out
}

// TestInboxStreamReadsNoBodies: a live view tells of each request by its id and
// inbox, and reads no more of it: a stream opened from the first kept request
// (after=0, as any signed-in reader may ask) over requests of 60 KB each reads
// far less than their bodies, whoever opens it and whatever it sees of them.
func TestInboxStreamReadsNoBodies(t *testing.T) {
	e := newEnv(t)
	seedInbox(t, e)
	body := strings.Repeat("x", 60<<10)
	for range 100 {
		postInbox(t, e, "stranger", "/big", nil, body)
	}
	last := postInbox(t, e, "a-box", "/last", nil, "")
	is := is.New(t)
	u := e.as(t, "a")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	next, _ := u.stream(t, "/console/inbox/events?after=0")
	for id := ""; id != strconv.FormatInt(last.ID, 10); {
		id, _ = next() // A's requests only; the strangers' are read past
	}
	runtime.ReadMemStats(&after)
	read := after.TotalAlloc - before.TotalAlloc
	is.True(read < 2<<20) // under 2 MB for 100 bodies of 60 KB (6 MB)
}

// TestInboxesListPages: the list of inboxes pages as every table does (50 by
// name, "Next page" and "First page"), so a hookd whose inbox holds requests to
// hundreds of names does not send them all with each live update.
func TestInboxesListPages(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	for i := range 60 {
		postInbox(t, e, fmt.Sprintf("box-%02d", i), "/x", nil, "")
	}
	u := e.as(t, "token")
	inboxes := regexp.MustCompile(`(?s)<section id="inboxes".*?</section>`)
	named := regexp.MustCompile(`<td><a href="/console/inbox\?inbox=([^"]+)">`)
	names := func(body string) []string {
		var out []string
		for _, m := range named.FindAllStringSubmatch(inboxes.FindString(body), -1) {
			out = append(out, m[1])
		}
		return out
	}
	p := u.get(t, "/console/inbox")
	is.Equal(p.status, http.StatusOK)
	first := names(p.body)
	is.Equal(len(first), 50)                                                                             // a page
	is.Equal(first[0], "box-00")                                                                         // by name
	is.True(strings.Contains(p.body, `href="/console/inbox?inboxes_after=box-49" rel="next">Next page`)) // and the next one
	p = u.get(t, "/console/inbox?inboxes_after=box-49")
	is.Equal(p.status, http.StatusOK)
	rest := names(p.body)
	is.Equal(len(rest), 10)
	is.Equal(rest[0], "box-50")
	is.True(strings.Contains(p.body, `<a href="/console/inbox">« First page</a>`))
	is.True(strings.Contains(p.body, `data-page="/console/inbox?inboxes_after=box-49"`)) // the live update keeps the page
	p = u.get(t, "/console/inbox?inboxes_after=zzz")
	is.True(strings.Contains(inboxes.FindString(p.body), "past the end of the list")) // an old link says so
}

// TestInboxKeepsAnotherOwnersDeliveries: the requests an owner's deliveries made
// in an inbox stay that owner's when its webhook stops calling the inbox and
// another owner's starts to (the name taken after it): the newcomer sees the
// inbox, and what anyone posted into it, but not what the first owner's
// deliveries sent (their bodies, headers and signatures), in the list, by the
// request's address or in the live view; the first owner still sees them through
// its deliveries, and the operator sees everything.
func TestInboxKeepsAnotherOwnersDeliveries(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled = true })
	w := seedInbox(t, e)
	ctx := t.Context()
	_, err := e.st.Intake(ctx, "", "", []store.Event{{Orcid: recordInbox}}, 0)
	is.NoErr(err)
	_, err = e.st.Claim(ctx, 10, time.Minute)
	is.NoErr(err) // A's delivery to a-box is in flight
	ds, err := e.st.Deliveries(ctx, store.DeliveryFilter{ClientID: e.a.ID, Orcid: recordInbox, State: "in-flight"})
	is.NoErr(err)
	var d store.Delivery
	for _, x := range ds {
		if strings.Contains(x.Target, "/inbox/a-box/") {
			d = x
		}
	}
	is.True(d.ID != 0)
	sent := postInbox(t, e, "a-box", "/"+recordInbox+"/updated", http.Header{"Webhook-Id": {store.MessageID(d.ID, 0)}}, `{"of":"A's delivery"}`)
	is.Equal(sent.DeliveryID, d.ID) // made by A's delivery
	is.NoErr(e.st.DeleteOrcidWebhook(ctx, e.a.ID, recordInbox, "http://127.0.0.1:8080/inbox/a-box/"+recordInbox+"/updated"))
	_, _, err = e.st.CreateWebhook(ctx, e.b.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/a-box/b", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // B's webhook calls a-box now
	e.clock.Advance(time.Second)
	posted := postInbox(t, e, "a-box", "/anyone", nil, "posted by anyone")

	link := func(r store.InboxRequest) string {
		return `href="/console/inbox/requests/` + strconv.FormatInt(r.ID, 10) + `"`
	}
	b := e.as(t, "b")
	list := b.get(t, "/console/inbox?inbox=a-box")
	is.Equal(list.status, http.StatusOK)               // a-box is B's now
	is.True(strings.Contains(list.body, link(posted))) // with what anyone posted
	is.True(!strings.Contains(list.body, link(sent)))  // but not what A's delivery sent
	every := b.get(t, "/console/inbox")
	is.True(!strings.Contains(every.body, link(sent)))
	is.True(strings.Contains(every.body, `<a href="/console/inbox?inbox=a-box">a-box</a></td>
    <td>2</td>`)) // counted as the two requests B sees, not three
	page := b.get(t, "/console/inbox/requests/"+strconv.FormatInt(sent.ID, 10))
	is.Equal(page.status, http.StatusNotFound) // nor by its address
	is.True(!strings.Contains(page.body, "A&#39;s delivery"))
	is.Equal(b.get(t, "/console/inbox/requests/"+strconv.FormatInt(posted.ID, 10)).status, http.StatusOK)
	next, _ := b.stream(t, "/console/inbox/events?inbox=a-box&after=0")
	id, _ := next()
	is.Equal(id, strconv.FormatInt(w.aReq.ID, 10)) // what anyone posted, from the start
	id, _ = next()
	is.Equal(id, strconv.FormatInt(posted.ID, 10)) // and not A's delivery's, between

	a := e.as(t, "a")
	is.Equal(a.get(t, "/console/inbox/requests/"+strconv.FormatInt(sent.ID, 10)).status, http.StatusOK) // A still, through its delivery
	op := e.as(t, "token")
	is.True(strings.Contains(op.get(t, "/console/inbox?inbox=a-box").body, link(sent))) // and the operator
	is.Equal(op.get(t, "/console/inbox/requests/"+strconv.FormatInt(sent.ID, 10)).status, http.StatusOK)
}

// TestInboxKeepsAnOwnersRequestsPastItsDeliveries: a request an owner's delivery
// sent stays that owner's after retention has purged the delivery (the inbox keeps
// requests longer than hookd keeps delivered deliveries): the owner still reads it,
// the owner who took the inbox's name after it still does not, and the operator
// does.
func TestInboxKeepsAnOwnersRequestsPastItsDeliveries(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled = true })
	seedInbox(t, e)
	ctx := t.Context()
	claimed, c, _ := inFlightToInboxes(t, e, 0, 10)
	is.True(c.ID != 0) // A's delivery to a-box, in flight
	sent := postInbox(t, e, "a-box", "/"+recordInbox+"/updated", http.Header{"Webhook-Id": {store.MessageID(c.ID, 0)}}, `{"of":"A's delivery"}`)
	is.Equal(sent.DeliveryID, c.ID)
	var outcomes []store.Outcome
	for _, x := range claimed {
		outcomes = append(outcomes, store.Outcome{DeliveryID: x.ID, SubscriptionID: x.Target.SubscriptionID,
			Kind: store.OutcomeDelivered, Attempt: x.Attempt, StartedAt: e.st.Now(), Status: 204})
	}
	_, err := e.st.Exchange(ctx, outcomes, 0, time.Minute)
	is.NoErr(err) // delivered
	is.NoErr(e.st.DeleteOrcidWebhook(ctx, e.a.ID, recordInbox, "http://127.0.0.1:8080/inbox/a-box/"+recordInbox+"/updated"))
	_, _, err = e.st.CreateWebhook(ctx, e.b.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/a-box/b", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // B's webhook calls a-box now
	e.clock.Advance(time.Second)
	n, _, err := e.st.Purge(ctx, store.StateDelivered, e.st.Now(), 100)
	is.NoErr(err)
	is.True(n >= 1) // A's delivery is gone
	_, err = e.st.Delivery(ctx, store.DeliveryFilter{ID: c.ID})
	is.True(err != nil)

	page := "/console/inbox/requests/" + strconv.FormatInt(sent.ID, 10)
	a := e.as(t, "a")
	got := a.get(t, page)
	is.Equal(got.status, http.StatusOK) // A still reads what its delivery sent
	is.True(strings.Contains(got.body, "A&#39;s delivery"))
	is.Equal(e.as(t, "b").get(t, page).status, http.StatusNotFound) // B, whose inbox it is now, does not
	is.Equal(e.as(t, "token").get(t, page).status, http.StatusOK)   // the operator does
}

// TestInboxRequestRecordedBeforeOwnersKept: a request a delivery sent that an
// older hookd recorded keeps no owner (schema version 36 added the columns and
// left the rows already kept as they were): while its delivery is kept, its
// owner reads it in the list and by its address alike, a client's and an
// organisation's staff; another owner does neither.
func TestInboxRequestRecordedBeforeOwnersKept(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled = true })
	seedInbox(t, e)
	_, toA, toOrg := inFlightToInboxes(t, e, 2*time.Hour, 20) // the world's deliveries are due, organisation A's to memberA too
	is.True(toA.ID != 0)                                      // A's delivery to a-box, in flight
	is.True(toOrg.ID != 0)                                    // organisation A's to org-a-box
	sentA := postInbox(t, e, "a-box", "/"+recordInbox+"/updated", http.Header{"Webhook-Id": {store.MessageID(toA.ID, 0)}}, `{"of":"A's delivery"}`)
	is.Equal(sentA.DeliveryID, toA.ID)
	sentOrg := postInbox(t, e, "org-a-box", "", http.Header{"Webhook-Id": {store.MessageID(toOrg.ID, 0)}}, `{"of":"the organisation's delivery"}`)
	is.Equal(sentOrg.DeliveryID, toOrg.ID)

	// As an older hookd recorded them: no owner on the request.
	db, err := sql.Open("sqlite", "file:"+e.path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	defer db.Close()
	_, err = db.Exec(`UPDATE inbox_requests SET sender_client_id = NULL, sender_client_since = NULL, sender_org_id = NULL`)
	is.NoErr(err)

	for _, c := range []struct {
		role, inbox, body string
		sent              store.InboxRequest
	}{{"a", "a-box", "A&#39;s delivery", sentA}, {"staffA", "org-a-box", "the organisation&#39;s delivery", sentOrg}} {
		u := e.as(t, c.role)
		page := "/console/inbox/requests/" + strconv.FormatInt(c.sent.ID, 10)
		list := u.get(t, "/console/inbox?inbox="+c.inbox)
		is.Equal(list.status, http.StatusOK)
		is.True(strings.Contains(list.body, `href="`+page+`"`)) // listed to its owner
		got := u.get(t, page)
		is.Equal(got.status, http.StatusOK) // and read by its address
		is.True(strings.Contains(got.body, c.body))
		is.Equal(e.as(t, "b").get(t, page).status, http.StatusNotFound) // not another owner
	}
}

// TestInboxStreamReadsPastAnotherKindOfOwner: a live view of every inbox passes
// over a request that an owner of the other kind sent (an organisation's webhook
// for a client, a client's for an organisation's staff), as over any other
// owner's, to tell of the next one its reader sees.
func TestInboxStreamReadsPastAnotherKindOfOwner(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled = true })
	w := seedInbox(t, e)
	_, toA, toOrg := inFlightToInboxes(t, e, 2*time.Hour, 20) // the world's deliveries are due, organisation A's to memberA too
	is.True(toA.ID != 0 && toOrg.ID != 0)                     // A's delivery to a-box and organisation A's to org-a-box, in flight
	sentA := postInbox(t, e, "a-box", "/"+recordInbox+"/updated", http.Header{"Webhook-Id": {store.MessageID(toA.ID, 0)}}, "{}")
	is.Equal(sentA.SenderClientID, e.a.ID)
	sentOrg := postInbox(t, e, "org-a-box", "", http.Header{"Webhook-Id": {store.MessageID(toOrg.ID, 0)}}, "{}")
	is.Equal(sentOrg.SenderOrgID, e.orgA.ID)
	laterA := postInbox(t, e, "a-box", "/anyone", nil, "")
	laterOrg := postInbox(t, e, "org-a-box", "/anyone", nil, "")
	from := "/console/inbox/events?after=" + strconv.FormatInt(w.strangerReq.ID, 10)

	next, _ := e.as(t, "a").stream(t, from)
	for _, want := range []store.InboxRequest{sentA, laterA} {
		id, _ := next()
		is.Equal(id, strconv.FormatInt(want.ID, 10)) // A's own, past the organisation's delivery's
	}
	next, _ = e.as(t, "staffA").stream(t, from)
	for _, want := range []store.InboxRequest{sentOrg, laterOrg} {
		id, _ := next()
		is.Equal(id, strconv.FormatInt(want.ID, 10)) // the organisation's, past A's delivery's
	}
}

// inFlightToInboxes sends an event of recordInbox and, after advance, claims up
// to limit deliveries: those claimed, and among them A's to a-box and organisation
// A's (each zero when not claimed).
func inFlightToInboxes(t *testing.T, e *env, advance time.Duration, limit int) (claimed []store.Claimed, toA, toOrg store.Claimed) {
	t.Helper()
	is := is.New(t)
	_, err := e.st.Intake(t.Context(), "", "", []store.Event{{Orcid: recordInbox}}, 0)
	is.NoErr(err)
	e.clock.Advance(advance)
	claimed, err = e.st.Claim(t.Context(), limit, time.Minute)
	is.NoErr(err)
	for _, x := range claimed {
		switch {
		case x.Target == nil:
		case strings.Contains(x.Target.URL, "/inbox/a-box/"):
			toA = x
		case x.Target.SubscriptionID == e.orgHookA.ID:
			toOrg = x
		}
	}
	return claimed, toA, toOrg
}

// TestInboxEmptiedOfWhatItsReaderSees: an owner who empties an inbox whose name it
// took after another owner's webhook stopped calling it deletes what it sees there,
// not what the other owner's deliveries sent, which that owner still reads through
// its deliveries; the operator empties it all.
func TestInboxEmptiedOfWhatItsReaderSees(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled = true })
	seedInbox(t, e)
	ctx := t.Context()
	_, err := e.st.Intake(ctx, "", "", []store.Event{{Orcid: recordInbox}}, 0)
	is.NoErr(err)
	_, err = e.st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	ds, err := e.st.Deliveries(ctx, store.DeliveryFilter{ClientID: e.a.ID, Orcid: recordInbox, State: "in-flight"})
	is.NoErr(err)
	var d store.Delivery
	for _, x := range ds {
		if strings.Contains(x.Target, "/inbox/a-box/") {
			d = x
		}
	}
	is.True(d.ID != 0)
	sent := postInbox(t, e, "a-box", "/"+recordInbox+"/updated", http.Header{"Webhook-Id": {store.MessageID(d.ID, 0)}}, "")
	is.Equal(sent.DeliveryID, d.ID) // made by A's delivery
	is.NoErr(e.st.DeleteOrcidWebhook(ctx, e.a.ID, recordInbox, "http://127.0.0.1:8080/inbox/a-box/"+recordInbox+"/updated"))
	_, _, err = e.st.CreateWebhook(ctx, e.b.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/a-box/b", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // B's webhook calls a-box now

	b := e.as(t, "b")
	is.Equal(b.post(t, "/console/inbox/a-box/clear", url.Values{"confirm": {"yes"}}).status, http.StatusSeeOther)
	left, err := e.st.InboxRequests(ctx, store.InboxFilter{Inbox: "a-box"})
	is.NoErr(err)
	is.Equal(len(left), 1)        // what anyone posted is gone
	is.Equal(left[0].ID, sent.ID) // what A's delivery sent stays
	a := e.as(t, "a")
	is.Equal(a.get(t, "/console/inbox/requests/"+strconv.FormatInt(sent.ID, 10)).status, http.StatusOK) // A's still
	log := e.as(t, "token").get(t, "/console/audit")
	is.True(strings.Contains(log.body, "1 request")) // B's emptying deleted one

	is.Equal(e.as(t, "token").post(t, "/console/inbox/a-box/clear", url.Values{"confirm": {"yes"}}).status, http.StatusSeeOther)
	left, err = e.st.InboxRequests(ctx, store.InboxFilter{Inbox: "a-box"})
	is.NoErr(err)
	is.Equal(len(left), 0) // the operator's empties it all
}

// TestInboxStreamReadsPastAnotherOwnersDeliveries: a live view passes over what
// another owner's deliveries sent as it passes over any request it does not tell
// of, in the query that reads the arrivals: the 2,000 that inbox.keep_total keeps
// (100,000 at most), each sent by a delivery of another owner into its inboxes,
// cost a reader's stream from the first kept request (after=0, as any signed-in
// reader may ask, or a reader whose own inbox is quiet, reconnecting every five
// minutes) about what 2,000 requests anyone posted cost, where each was looked up
// as a delivery of its own: 13 MB and a third of a second.
func TestInboxStreamReadsPastAnotherOwnersDeliveries(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled = true })
	ctx := t.Context()
	const inboxes, each = 10, store.DefaultInboxKeepTotal / 10
	webhooks := map[int64]string{}
	for i := range inboxes {
		name := "a-" + strconv.Itoa(i)
		w, _, err := e.st.CreateWebhook(ctx, e.a.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/" + name, Auth: store.Auth{Type: store.AuthNone}})
		is.NoErr(err) // A's webhooks call a-0 to a-9
		webhooks[w.ID] = name
	}
	events := make([]store.Event, each)
	for i := range events {
		events[i] = store.Event{Orcid: manyMembers(i)}
	}
	_, err := e.st.Intake(ctx, "", "", events, 0)
	is.NoErr(err)
	claimed, err := e.st.Claim(ctx, 20*each, time.Hour)
	is.NoErr(err)
	sent := 0
	for _, c := range claimed {
		if name, ok := webhooks[c.Target.SubscriptionID]; ok {
			r := postInbox(t, e, name, "", http.Header{"Webhook-Id": {store.MessageID(c.ID, 0)}}, "{}")
			is.Equal(r.DeliveryID, c.ID)
			sent++
		}
	}
	is.Equal(sent, inboxes*each) // each of A's deliveries sent one
	_, _, err = e.st.CreateWebhook(ctx, e.b.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/b-box", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // B's webhook calls b-box
	posted := postInbox(t, e, "b-box", "/anyone", nil, "")

	b := e.as(t, "b")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	next, _ := b.stream(t, "/console/inbox/events?after=0")
	id, _ := next()
	runtime.ReadMemStats(&after)
	is.Equal(id, strconv.FormatInt(posted.ID, 10)) // what was posted into B's inbox, past A's deliveries'
	if read := after.TotalAlloc - before.TotalAlloc; read > 2<<20 {
		t.Errorf("%d KB to pass over %d requests of another owner's deliveries", read>>10, sent)
	}
}

// TestInboxStreamsStoreFaultLoggedOnce: a store fault that every open live view
// meets at once (here the store closed as hookd stops) is logged as the
// requests' faults are, once a minute at most, not a line for each stream: fifty
// views open during the fault logged fifty lines each time.
func TestInboxStreamsStoreFaultLoggedOnce(t *testing.T) {
	defer console.SetStreamBeat(20 * time.Millisecond)() // the streams read again at once
	is := is.New(t)
	var logs syncLog
	e := newEnv(t, func(o *console.Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	seedInbox(t, e)
	var bodies []io.Reader
	for _, who := range []string{"a", "token"} {
		u := e.as(t, who)
		for range 4 {
			next, res := u.stream(t, "/console/inbox/events?after=0")
			is.Equal(res.StatusCode, http.StatusOK)
			next() // open
			bodies = append(bodies, res.Body)
		}
	}
	is.NoErr(e.st.Close())
	for _, b := range bodies {
		_, err := io.ReadAll(b)
		is.NoErr(err) // each stream ended
	}
	out := logs.String()
	is.Equal(strings.Count(out, `level=ERROR msg="request refused: store fault"`), 1) // one line for eight streams
	is.True(strings.Contains(out, "path=/console/inbox/events"))
	is.True(strings.Contains(out, "hookd is stopping")) // the fault's words
	is.True(!strings.Contains(out, "console inbox stream"))
}
