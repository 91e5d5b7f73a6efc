package console_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/console"
	"hookd/store"
)

// TestOverviewHourAverageWeighted: the overview's "figures by hour" table gives an
// hour's average attempt duration. One attempt of 1 s in one minute and three of
// 10 ms in the next average (1000+3*10)/4 = 257 ms, not the mean of the two
// minutes' averages (505 ms).
func TestOverviewHourAverageWeighted(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	e.clock.Advance(2 * time.Hour)
	claimed, err := e.st.Claim(ctx, 1000, 30*time.Minute)
	is.NoErr(err)
	var slow, fast []store.Outcome
	for _, c := range claimed {
		o := store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Attempt: c.Attempt, Kind: store.OutcomeDelivered, Status: 204, StartedAt: e.clock.Now()}
		switch {
		case len(slow) == 0:
			o.Duration = time.Second
			slow = append(slow, o)
		case len(fast) < 3:
			o.Duration = 10 * time.Millisecond
			fast = append(fast, o)
		}
	}
	is.Equal(len(fast), 3)
	is.NoErr(recordOutcomes(ctx, e.st, slow))
	e.clock.Advance(time.Minute)
	for i := range fast {
		fast[i].StartedAt = e.clock.Now()
	}
	is.NoErr(recordOutcomes(ctx, e.st, fast))

	p := e.as(t, "token").get(t, "/console/")
	// The row of the hour with the four attempts.
	row := regexp.MustCompile(`<tr><th scope="row">[^\n]*?</th><td>4</td><td>0</td><td>([^<]*)</td></tr>`).FindStringSubmatch(p.body)
	if row == nil {
		t.Fatalf("no hour row with 4 attempts in:\n%s", p.body[strings.Index(p.body, "figures by hour"):])
	}
	is.Equal(row[1], "257 ms") // the hour's attempts' average
}

// enabledBox is whether the organisation form's Enabled box is ticked.
var enabledBox = regexp.MustCompile(`<input type="checkbox" id="enabled" name="enabled"( checked)?>`)

// TestHubFormShowsSavedEnabled: an organisation that chose e-mail only (no webhook
// URL, Enabled unticked, as the form's hint says) finds its form as it saved it;
// saving it again unchanged (to change the notification address) works.
func TestHubFormShowsSavedEnabled(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "staffA")
	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	p := u.post(t, org+"/webhook", url.Values{"url": {""}, "email_enabled": {"on"}, "notification_email": {"orcid@a.example"}})
	is.Equal(p.status, http.StatusSeeOther) // e-mail only: saved
	h, err := e.st.HubSettings(context.Background(), e.orgA.ID)
	is.NoErr(err)
	is.True(!h.Enabled && h.EmailEnabled) // as saved

	page := u.get(t, org)
	m := enabledBox.FindStringSubmatch(page.body)
	is.True(m != nil)
	is.Equal(m[1], "") // Enabled is shown unticked, as saved

	// The form sent back as the page shows it, with a new address only.
	form := url.Values{"url": {""}, "email_enabled": {"on"}, "notification_email": {"it-orcid@a.example"}}
	if m[1] != "" {
		form.Set("enabled", "on")
	}
	p = u.post(t, org+"/webhook", form)
	is.Equal(p.status, http.StatusSeeOther) // saved, not "required when enabled is true"
}

// TestFlashesSaidOnce: a change's message is shown once, in one status region.
func TestFlashesSaidOnce(t *testing.T) {
	e := newEnv(t)
	t.Run("sign-out", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "a")
		p := u.post(t, "/console/signout", nil)
		is.Equal(p.status, http.StatusSeeOther)
		page := u.get(t, p.location)
		is.Equal(strings.Count(page.body, "You are signed out."), 1) // said once
	})
	t.Run("a client removed", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "token")
		p := u.post(t, "/console/clients/"+e.b.ID+"/remove", url.Values{"confirm": {"yes"}})
		is.Equal(p.status, http.StatusSeeOther)
		page := u.get(t, p.location)
		is.Equal(strings.Count(page.body, `role="status"`), 1) // one message, not "Removed." and "The client is removed, …"
	})
}

// TestMemberUpdateSaysUpdated: the member form on an iD already a member updates
// it (the audit log says organisation.member.update); the page does not say the
// member was added.
func TestMemberUpdateSaysUpdated(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "staffA")
	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	p := u.post(t, org+"/members", url.Values{"orcid": {memberA}, "name": {"Ada Lovelace"}})
	is.Equal(p.status, http.StatusSeeOther)
	log, err := e.st.AuditLog(context.Background(), store.AuditQuery{Action: "organisation.member."})
	is.NoErr(err)
	is.Equal(log[0].Action, "organisation.member.update") // an update
	page := u.get(t, p.location)
	is.True(!strings.Contains(page.body, "The member is added.")) // not said to be added
}

// TestFailingUpstreamHasOwner: the overview's failing endpoints name every
// webhook's owner as the other pages do (hookd's upstream registration: "hookd").
func TestFailingUpstreamHasOwner(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	failEvery(t, e, store.Outcome{Kind: store.OutcomeRetry, Status: 503, Error: "HTTP 503"})
	p := e.as(t, "token").get(t, "/console/")
	row := regexp.MustCompile(`(?s)<a href="/console/webhooks/` + e.upstream.UID + `">.*?</td>\s*<td>([^<]*)</td>`).FindStringSubmatch(p.body)
	if row == nil {
		t.Fatalf("the upstream registration is not among the failing endpoints")
	}
	is.Equal(row[1], "hookd") // its owner, as the webhooks and deliveries pages say
}

// TestOverviewRetryingAsTheList: the overview's "N of them retrying" counts what
// the deliveries list calls retrying (?state=failed, which its link opens). A dead
// delivery that was replayed is pending again, with a fresh retry budget: the list
// says "pending", and so must the overview.
func TestOverviewRetryingAsTheList(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	failEvery(t, e, store.Outcome{Kind: store.OutcomeDead, Status: 500, Error: "HTTP 500"})
	u := e.as(t, "b")
	p := u.post(t, "/console/deliveries/"+strconv.FormatInt(e.delB.ID, 10)+"/replay", nil)
	is.Equal(p.status, http.StatusSeeOther)
	d, err := e.st.Delivery(ctx, store.DeliveryFilter{ID: e.delB.ID})
	is.NoErr(err)
	is.Equal(d.StateName(), "pending") // as the store and the list say

	list := u.get(t, "/console/deliveries?state=failed")
	is.True(strings.Contains(list.body, "No delivery matches this filter.")) // none retrying
	over := u.get(t, "/console/")
	is.True(strings.Contains(over.body, "<dt>Pending</dt><dd>1</dd>"))
	m := regexp.MustCompile(`(\d+) of them retrying`).FindStringSubmatch(over.body)
	is.True(m != nil)
	is.Equal(m[0], "0 of them retrying") // as the list: none
}

// TestStaffSignInFormErrorOnItsPage: the organisation page's "Create the sign-in"
// form, sent with a name already taken, answers on the organisation's page with
// the message beside the field typed in (staff-name), keeping what was typed.
func TestStaffSignInFormErrorOnItsPage(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "token")
	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	form := u.get(t, org)
	is.True(strings.Contains(form.body, `id="staff-name"`)) // the form as the page has it
	p := u.post(t, "/console/clients", url.Values{"org": {strconv.FormatInt(e.orgA.ID, 10)}, "from": {"organisation"}, "scope_webhook": {"on"}, "name": {"staff-a"}})
	is.Equal(p.status, http.StatusBadRequest)
	is.True(strings.Contains(p.body, "<h1><bdi>University A</bdi></h1>")) // still the organisation's page
	is.True(besideField(p.body, "staff-name", "already exists"))          // beside the field typed in
	is.True(strings.Contains(p.body, `name="name" value="staff-a"`))      // what was typed kept
}

// TestStaffSignInFormForNoOrganisation: the staff sign-in form sent for an
// organisation that does not exist (deleted since the page was shown, or a forged
// id) answers that the organisation is not found, naming the sign-in typed, which
// was not created: it answered on the Clients page, whose form, sent again as it
// was, made a client bound to no organisation. It is not an error of the server's.
func TestStaffSignInFormForNoOrganisation(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "token")
	ctx := context.Background()
	gone, err := e.st.CreateOrganisation(ctx, "University Gone", "it@gone.example")
	is.NoErr(err)
	is.True(strings.Contains(u.get(t, "/console/organisations/"+strconv.FormatInt(gone.ID, 10)).body, `id="staff-name"`)) // the page, with its form
	is.NoErr(e.st.DeleteOrganisation(ctx, gone.ID))                                                                       // deleted meanwhile (the Hub API)
	before, err := e.st.ConsoleClients(ctx)
	is.NoErr(err)
	for _, tt := range []struct{ org, name, says string }{
		{strconv.FormatInt(gone.ID, 10), "gone staff", "The staff sign-in &#34;gone staff&#34; was not created."},
		{strconv.FormatInt(gone.ID, 10), strings.Repeat("n", 300), "The staff sign-in &#34;" + strings.Repeat("n", 64) + "&#34;… was not created."},
		{strconv.FormatInt(gone.ID, 10), "", "The staff sign-in was not created."},
		{"999999", "staff-a", "The staff sign-in &#34;staff-a&#34; was not created."}, // taken, but the organisation is what is wrong
	} {
		p := u.post(t, "/console/clients", url.Values{"org": {tt.org}, "from": {"organisation"}, "scope_webhook": {"on"}, "name": {tt.name}})
		is.Equal(p.status, http.StatusNotFound)                              // refused, not a 500
		is.True(strings.Contains(p.body, "<h1>Organisation not found</h1>")) // not the Clients page
		is.True(strings.Contains(p.body, "There is no organisation "+tt.org+": it was deleted"))
		is.True(strings.Contains(p.body, tt.says))                         // what was typed, and that it was not made
		is.True(!strings.Contains(p.body, "<bdi>University A</bdi></h1>")) // no other organisation's page
		is.True(strings.Contains(p.body, `<a href="/console/clients">`))
	}
	after, err := e.st.ConsoleClients(ctx)
	is.NoErr(err)
	is.Equal(len(after), len(before)) // nothing made
	// The Clients page's own form keeps its answer beside its select.
	p := u.post(t, "/console/clients", url.Values{"org": {"999999"}, "scope_webhook": {"on"}, "name": {"x"}})
	is.Equal(p.status, http.StatusBadRequest)
	is.True(besideField(p.body, "org", "there is no such organisation"))
}

// TestEmailOnWithoutRelay: an organisation's page with e-mail on says when hookd's
// configuration names no SMTP relay to send it through, and says nothing of it
// when one is configured or e-mail is off.
func TestEmailOnWithoutRelay(t *testing.T) {
	const notice = "E-mail is on, but hookd's configuration names no SMTP relay"
	for _, tt := range []struct {
		name       string
		configured bool
		emailOn    bool
		shown      bool
	}{
		{"no relay, e-mail on", false, true, true},
		{"no relay, e-mail off", false, false, false},
		{"a relay, e-mail on", true, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, func(o *console.Options) { o.EmailConfigured = tt.configured })
			_, _, err := e.st.SetHubSettings(context.Background(), e.orgA.ID, store.HubSettings{Enabled: true, URL: "https://hooks.example/a", EmailEnabled: tt.emailOn})
			is.NoErr(err)
			for _, who := range []string{"token", "staffA"} { // the operator and the organisation's staff
				page := e.as(t, who).get(t, "/console/organisations/"+strconv.FormatInt(e.orgA.ID, 10))
				is.Equal(page.status, http.StatusOK)
				is.Equal(strings.Contains(page.body, notice), tt.shown)
			}
		})
	}
}

// TestDeliveryOfDeactivatedWebhookOffersNoDeadEnd: a delivery whose webhook is
// deactivated cannot be replayed (the store refuses it: activate first). Its page
// does not offer a "Replay this delivery" button that only leads to an error page.
func TestDeliveryOfDeactivatedWebhookOffersNoDeadEnd(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "b")
	p := u.post(t, "/console/webhooks/"+e.hookB.UID+"/deactivate", nil)
	is.Equal(p.status, http.StatusSeeOther)
	path := "/console/deliveries/" + strconv.FormatInt(e.delB.ID, 10)
	page := u.get(t, path)
	is.True(strings.Contains(page.body, ">dead</span>"))                                             // dead by the deactivation
	is.True(strings.Contains(page.body, "Its webhook is deactivated: <a href=\"/console/webhooks/")) // saying what to do first
	if strings.Contains(page.body, `action="`+path+`/replay"`) {
		r := u.post(t, path+"/replay", nil)
		t.Errorf("the page offers a replay; pressing it answers %d: %s", r.status, mainRe.FindStringSubmatch(r.body)[1])
	}
}

var mainRe = regexp.MustCompile(`(?s)<main[^>]*>(.*)</main>`)

// TestKindFilterOffersWhatTheReaderHas: the webhooks page's Kind filter offers
// each role the kinds it can have: a client no organisation's kinds, an
// organisation's staff those but not hookd's upstream registration, the
// operator every kind.
func TestKindFilterOffersWhatTheReaderHas(t *testing.T) {
	e := newEnv(t)
	option := regexp.MustCompile(`<option value="([a-z]*)"[^>]*>([^<]*)</option>`)
	for _, tt := range []struct {
		who  string
		want []string
	}{
		{"a", []string{"any", "ORCID-style", "Platform"}},
		{"staffA", []string{"any", "ORCID-style", "Platform", "Organisation webhook", "Organisation e-mail"}},
		{"token", []string{"any", "ORCID-style", "Platform", "Organisation webhook", "Organisation e-mail", "Upstream registration"}},
	} {
		t.Run(tt.who, func(t *testing.T) {
			is := is.New(t)
			p := e.as(t, tt.who).get(t, "/console/webhooks")
			is.Equal(p.status, http.StatusOK)
			sel := regexp.MustCompile(`(?s)<select id="f-kind".*?</select>`).FindString(p.body)
			var got []string
			for _, m := range option.FindAllStringSubmatch(sel, -1) {
				got = append(got, m[2])
			}
			is.Equal(got, tt.want) // the kinds offered
		})
	}
}

// TestBadChoiceSaidInThePageWords: a state or kind the select does not offer
// (a hand-edited or old bookmark) is answered beside the field in the words the
// select shows (retrying, in flight; ORCID-style, Platform, …), not the store's
// internal names (failed, in-flight; empty, standard, hub …), which the form
// does not offer.
func TestBadChoiceSaidInThePageWords(t *testing.T) {
	e := newEnv(t)
	u := e.as(t, "token")
	errorOf := regexp.MustCompile(`id="(f-state|f-kind)-error"><span class="label">Error:</span> ([^<]*)`)
	for _, tt := range []struct{ path, bad string }{
		{"/console/deliveries?state=retry", "in-flight"},
		{"/console/webhooks?kind=platform", "standard"},
	} {
		p := u.get(t, tt.path)
		m := errorOf.FindStringSubmatch(p.body)
		if p.status != http.StatusBadRequest || m == nil {
			t.Fatalf("%s: %d, no error beside the field", tt.path, p.status)
		}
		if strings.Contains(m[2], tt.bad) {
			t.Errorf("%s: the message beside the field names choices the form does not offer: %s", tt.path, m[2])
		}
	}
}

// failEvery claims every delivery due two hours on and records each with the
// outcome as (StartedAt now, a retry an hour after); it returns what it claimed.
func failEvery(t *testing.T, e *env, as store.Outcome) []store.Claimed {
	t.Helper()
	ctx := context.Background()
	e.clock.Advance(2 * time.Hour)
	claimed, err := e.st.Claim(ctx, 1000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var outs []store.Outcome
	for _, c := range claimed {
		o := as
		o.DeliveryID, o.SubscriptionID, o.Attempt, o.StartedAt = c.ID, c.Target.SubscriptionID, c.Attempt, e.clock.Now()
		if o.Kind == store.OutcomeRetry {
			o.RetryAt = e.clock.Now().Add(time.Hour)
		}
		outs = append(outs, o)
	}
	if err := recordOutcomes(ctx, e.st, outs); err != nil {
		t.Fatal(err)
	}
	return claimed
}

// TestPathIDAsWritten: a delivery, an organisation or an inbox request has one
// page, at the id as the console writes it: +1 or 01 names nothing.
func TestPathIDAsWritten(t *testing.T) {
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled = true })
	w := seedInbox(t, e)
	op := e.as(t, "token")
	for _, page := range []struct{ prefix, suffix string }{
		{"/console/deliveries/", strconv.FormatInt(e.delA.ID, 10)},
		{"/console/organisations/", strconv.FormatInt(e.orgA.ID, 10)},
		{"/console/inbox/requests/", strconv.FormatInt(w.aReq.ID, 10)},
	} {
		t.Run(page.prefix, func(t *testing.T) {
			is := is.New(t)
			is.Equal(op.get(t, page.prefix+page.suffix).status, http.StatusOK) // the page
			for _, alias := range []string{"+", "0", "00"} {
				is.Equal(op.get(t, page.prefix+alias+page.suffix).status, http.StatusNotFound) // and no other URL for it
			}
		})
	}
}

// TestWebhookPageTitleSaysItsKindOnce: an organisation's webhook is titled
// "Organisation webhook", not "Organisation webhook webhook"; a platform one
// "Platform webhook"; a removed one's history page names it the same way.
func TestWebhookPageTitleSaysItsKindOnce(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "staffA")
	p := u.get(t, "/console/webhooks/"+e.orgHookA.UID)
	is.Equal(p.status, http.StatusOK)
	is.True(strings.Contains(p.body, "<h1>Organisation webhook</h1>"))               // said once
	is.True(strings.Contains(p.body, "<title>Organisation webhook · hookd console")) // and in the tab's title
	is.True(!strings.Contains(p.body, "webhook webhook"))
	a := e.as(t, "a").get(t, "/console/webhooks/"+e.hookA.UID)
	is.True(strings.Contains(a.body, "<h1>Platform webhook</h1>"))

	is.NoErr(e.st.RemoveSubscription(context.Background(), e.orgHookA.UID))
	gone := u.get(t, "/console/webhooks/"+e.orgHookA.UID)
	is.True(strings.Contains(gone.body, "The Organisation webhook <code")) // its history page
	is.True(!strings.Contains(gone.body, "webhook webhook"))
}

// TestEmailToTechContactSaysSo: an organisation's e-mail to its technical contact
// is named so on the webhooks list, its page and its deliveries, not by the
// store's "tech-contact", which reads like an address.
func TestEmailToTechContactSaysSo(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	h, err := e.st.HubSettings(ctx, e.orgA.ID)
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, e.orgA.ID, store.HubSettings{Enabled: true, URL: h.URL, EmailEnabled: true})
	is.NoErr(err)
	ws, err := e.st.Subscriptions(ctx, store.SubscriptionFilter{OrgID: e.orgA.ID, Format: store.FormatEmail})
	is.NoErr(err)
	is.Equal(len(ws), 1)
	id, err := e.st.SendTestEvent(ctx, ws[0].UID, "")
	is.NoErr(err)
	u := e.as(t, "staffA")
	for _, path := range []string{"/console/webhooks", "/console/webhooks/" + ws[0].UID, "/console/deliveries", "/console/deliveries/" + strconv.FormatInt(id, 10)} {
		p := u.get(t, path)
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "the organisation&#39;s technical contact</code>")) // in words
		is.True(!strings.Contains(p.body, ">tech-contact<"))                                 // not the store's
	}
}

// TestDeliveryInFlightSaysItsAttemptIsUnderWay: a delivery out on its first call
// counts that attempt; its page says the attempt is under way, not "Not attempted
// yet" beside "Attempts 1".
func TestDeliveryInFlightSaysItsAttemptIsUnderWay(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.clock.Advance(time.Hour) // everything is due
	claimed, err := e.st.Claim(context.Background(), 1000, time.Minute)
	is.NoErr(err)
	is.True(len(claimed) > 0)
	p := e.as(t, "staffA").get(t, "/console/deliveries/"+strconv.FormatInt(e.delOrgA.ID, 10))
	is.Equal(p.status, http.StatusOK)
	is.True(strings.Contains(p.body, "in flight"))
	is.True(strings.Contains(p.body, "The first attempt is under way"))
	is.True(!strings.Contains(p.body, "Not attempted yet"))
}

// TestPagePastTheEndSaysSo: a list's page past its end (an old link, or its rows
// gone meanwhile) says so and leads to the first page, instead of saying that the
// organisation has no members or that nothing was delivered or recorded yet.
func TestPagePastTheEndSaysSo(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "staffA")
	for path, first := range map[string]string{
		"/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10) + "?after=9999-9999-9999-9994": "Go to the first page",
		"/console/deliveries?before=1":            "Go to the newest",
		"/console/deliveries?before=1&state=dead": "Go to the newest",
		"/console/webhooks?before=1":              "Go to the newest",
		"/console/audit?before=1":                 "Go to the newest",
	} {
		p := u.get(t, path)
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "this page is past the end of the list")) // said
		is.True(strings.Contains(p.body, first+"</a>"))                            // with the way back
		for _, untrue := range []string{"No members yet", "No deliveries yet", "No delivery matches", "Nothing recorded yet", "has no webhook yet"} {
			is.True(!strings.Contains(p.body, untrue)) // not that the list is empty
		}
	}
}

// TestOperatorListsPastTheEndSaySo: the clients' and the organisations' pages
// past their end (an old link) say so and lead back to the first page, as every
// other list does, instead of saying there is no client or organisation yet.
func TestOperatorListsPastTheEndSaySo(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "token")
	for path, untrue := range map[string]string{
		"/console/clients?after=99999999999999:ZZZ": "No clients yet",
		"/console/organisations?after=999999":       "No organisation yet",
	} {
		p := u.get(t, path)
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "this page is past the end of the list")) // said
		is.True(strings.Contains(p.body, "Go to the first page</a>"))              // with the way back
		is.True(!strings.Contains(p.body, untrue))                                 // not that the list is empty
	}
}

// TestMalformedPagePositionSaidSo: a list page whose position in the address
// (before, after) is not one its links give, as a person editing the address
// writes it, is a 400 that says so in place of the list, as a filter's bad value
// is: no rows, no links to the first and the next page, no live view. It showed
// the first page with both links, as if the value meant something.
func TestMalformedPagePositionSaidSo(t *testing.T) {
	e := newEnv(t)
	postInbox(t, e, "demo", "/x", nil, "")
	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	const (
		deliveries = "Deliveries, newest first"
		webhooks   = "Webhooks, newest first"
		requests   = "Requests, newest first"
	)
	for _, tt := range []struct{ path, says, list string }{
		{"/console/deliveries?before=abc", "before=&#34;abc&#34;, is not a number", deliveries},
		{"/console/deliveries?state=dead&before=abc", "before=&#34;abc&#34;, is not a number", deliveries},
		{"/console/deliveries?before=0", "before=&#34;0&#34;, is not a row&#39;s number", deliveries},
		{"/console/deliveries?before=-3", "before=&#34;-3&#34;, is not a row&#39;s number", deliveries},
		{"/console/webhooks?before=abc", "before=&#34;abc&#34;, is not a number", webhooks},
		{"/console/webhooks?kind=standard&before=1x", "before=&#34;1x&#34;, is not a number", webhooks},
		{"/console/audit?before=abc", "before=&#34;abc&#34;, is not a number", "Audit log, newest first"},
		{"/console/organisations?after=abc", "after=&#34;abc&#34;, is not a number", `<caption class="visually-hidden">Organisations</caption>`},
		{org + "?after=abc", "after=&#34;abc&#34;, is not a member&#39;s ORCID iD", "Members by iD"},
		{"/console/clients?after=abc", "after=&#34;abc&#34;, is not a client&#39;s time and id", "Clients, oldest first"},
		{"/console/clients?after=x:" + e.a.ID, "after=&#34;x:" + e.a.ID + "&#34;, is not a client&#39;s time and id", "Clients, oldest first"},
		{"/console/inbox?before=abc", "before=&#34;abc&#34;, is not a number", requests},
		{"/console/inbox?inbox=demo&before=abc", "before=&#34;abc&#34;, is not a number", requests},
		{"/console/inbox?inboxes_after=a%2Fb", "inboxes_after=&#34;a/b&#34;, is not an inbox name", "Inboxes by name"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			is := is.New(t)
			p := e.as(t, "token").get(t, tt.path)
			is.Equal(p.status, http.StatusBadRequest)                                                                                                                       // refused, as a filter's bad value is
			is.True(strings.Contains(p.body, `<div class="form-error" role="alert" tabindex="-1"><p><strong>Not shown.</strong> The page&#39;s position in the address, `)) // said in the console's error style
			is.True(strings.Contains(p.body, tt.says))                                                                                                                      // saying what is wrong
			is.True(strings.Contains(p.body, "page through the list with its own links."))                                                                                  // and what to do
			is.True(!strings.Contains(p.body, tt.list))                                                                                                                     // not the list
			is.True(!strings.Contains(p.body, `class="pager"`))                                                                                                             // nor links to its pages
			is.True(!strings.Contains(p.body, "past the end of the list"))                                                                                                  // nor an old link's words
			is.True(!strings.Contains(p.body, "data-live="))                                                                                                                // nor a live view
		})
	}
	t.Run("the live view's position", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "token")
		for _, path := range []string{"/console/inbox/events?after=abc", "/console/inbox/events?inbox=demo&after=-1"} {
			_, res := u.stream(t, path)
			is.Equal(res.StatusCode, http.StatusBadRequest) // not a stream of every request since the first
		}
	})
}

// TestMalformedPagePositionLeadsToTheList: the 400 of a list page whose position
// in the address is none of its own links the list's first page (the newest of a
// newest-first one), with the filter kept, as a page past the end does: it told
// the reader to page through the list with its own links, and showed none.
func TestMalformedPagePositionLeadsToTheList(t *testing.T) {
	e := newEnv(t)
	postInbox(t, e, "demo", "/x", nil, "")
	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	for _, tt := range []struct{ path, link string }{
		{"/console/deliveries?state=dead&before=abc", `<a href="/console/deliveries?state=dead">Go to the newest</a>`},
		{"/console/webhooks?kind=standard&before=1x", `<a href="/console/webhooks?kind=standard">Go to the newest</a>`},
		{"/console/audit?action=webhook.&before=abc", `<a href="/console/audit?action=webhook.">Go to the newest</a>`},
		{"/console/organisations?after=abc", `<a href="/console/organisations">Go to the first page</a>`},
		{org + "?after=abc", `<a href="` + org + `">Go to the first page</a>`},
		{"/console/clients?after=abc", `<a href="/console/clients">Go to the first page</a>`},
		{"/console/inbox?inbox=demo&before=abc", `<a href="/console/inbox?inbox=demo">Go to the newest</a>`},
		{"/console/inbox?inboxes_after=a%2Fb", `<a href="/console/inbox">Go to the first page</a>`},
	} {
		t.Run(tt.path, func(t *testing.T) {
			is := is.New(t)
			p := e.as(t, "token").get(t, tt.path)
			is.Equal(p.status, http.StatusBadRequest)
			is.True(strings.Contains(p.body, "page through the list with its own links. "+tt.link+".")) // the way back to the list, in the message
			is.True(!strings.Contains(p.body, `class="pager"`))                                         // and no other page's link
		})
	}
}

// TestInboxLinksLeaveAMalformedPosition: the inbox page's links back to its lists
// (Refresh, the page its live view refreshes, each list's pager and first page)
// leave out a position in the address that is none of its own (an inboxes_after
// that is not an inbox name, a before that is not a row's number), keeping the
// rest: they kept it, so each led to the same 400, or on an inbox's page carried
// it on.
func TestInboxLinksLeaveAMalformedPosition(t *testing.T) {
	e := newEnv(t)
	for i := range 55 {
		postInbox(t, e, fmt.Sprintf("box-%02d", i), "/x", nil, "")
	}
	links := regexp.MustCompile(`(?:href|data-page|data-live)="(/console/inbox[^"]*)"`)
	for _, tt := range []struct {
		path    string
		status  int
		refresh string
	}{
		{"/console/inbox?inboxes_after=a%2Fb", http.StatusBadRequest, "/console/inbox"},
		{"/console/inbox?inboxes_after=a%2Fb&before=abc", http.StatusBadRequest, "/console/inbox"},
		{"/console/inbox?inboxes_after=box-00&before=abc", http.StatusBadRequest, "/console/inbox?inboxes_after=box-00"},
		{"/console/inbox?inboxes_after=a%2Fb&before=3", http.StatusBadRequest, "/console/inbox?before=3"},
		{"/console/inbox?inbox=box-01&inboxes_after=a%2Fb", http.StatusOK, "/console/inbox?inbox=box-01"},
		{"/console/inbox?inbox=box-01&before=abc", http.StatusBadRequest, "/console/inbox?inbox=box-01"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			is := is.New(t)
			p := e.as(t, "token").get(t, tt.path)
			is.Equal(p.status, tt.status)
			if !strings.Contains(p.body, `<a href="`+html.EscapeString(tt.refresh)+`">Refresh</a>`) {
				t.Errorf("Refresh does not lead to %s", tt.refresh)
			}
			for _, m := range links.FindAllStringSubmatch(p.body, -1) {
				if strings.Contains(m[1], "a%2Fb") || strings.Contains(m[1], "before=abc") {
					t.Errorf("a link keeps the malformed position: %s", m[1])
				}
			}
		})
	}
}

// TestOrganisationPageSaysImportsAreNotEmailed: the organisation's page does not
// promise an e-mail for every record that joins: a member added alone is told to
// the webhook and the e-mail, but an import tells the webhook only, and the page
// says so where it tells what is sent and beside the import.
func TestOrganisationPageSaysImportsAreNotEmailed(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	p := e.as(t, "staffA").get(t, "/console/organisations/"+strconv.FormatInt(e.orgA.ID, 10))
	is.Equal(p.status, http.StatusOK)
	is.True(!strings.Contains(p.body, "and when a record joins the organisation, hookd calls the webhook with the Hub's JSON and, when e-mail is on, writes")) // not promised for every joining record
	is.True(strings.Contains(p.body, "an import tells the webhook only"))                                                                                      // what is sent, said
	is.True(strings.Contains(p.body, "no e-mail for each of them"))                                                                                            // and beside the import
}

// TestReplaySectionReads: the replay form under the deliveries says what it does
// in a sentence to the operator too, who sees every owner's deliveries ("every
// retrying or dead deliveries" it said), as to a client.
func TestReplaySectionReads(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	failEvery(t, e, store.Outcome{Kind: store.OutcomeDead, Status: 500, Error: "HTTP 500"})
	for who, want := range map[string]string{"token": "Makes every one of the retrying or dead deliveries whose last event",
		"a": "Makes every one of your retrying or dead deliveries whose last event"} {
		p := e.as(t, who).get(t, "/console/deliveries")
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, want)) // the sentence, for who
	}
}

// switchOff switches webhooks off as the dispatch loop does: every delivery fails
// (at 14:00 UTC), then organisation A's webhook is deactivated for failing since
// then and A's platform webhook for a 410 Gone (at 16:00 UTC).
func switchOff(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	failEvery(t, e, store.Outcome{Kind: store.OutcomeRetry, Status: 500, Error: "HTTP 500"})
	since := e.clock.Now()
	e.clock.Advance(2 * time.Hour)
	claimed, err := e.st.Claim(ctx, 1000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var outs []store.Outcome
	for _, c := range claimed {
		o := store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Attempt: c.Attempt, StartedAt: e.clock.Now(),
			Kind: store.OutcomeRetry, Status: 500, Error: "HTTP 500", RetryAt: e.clock.Now().Add(time.Hour)}
		switch c.Target.SubscriptionID {
		case e.orgHookA.ID:
			o.Kind, o.FailingSince = store.OutcomeDeactivate, since
		case e.hookA.ID:
			o.Kind, o.Status, o.Error = store.OutcomeGone, 410, "HTTP 410"
		}
		outs = append(outs, o)
	}
	if err := recordOutcomes(ctx, e.st, outs); err != nil {
		t.Fatal(err)
	}
}

// TestReasonTimeAsOtherTimes: the reason hookd gives a webhook it switched off
// (failing since a time, a 410 Gone at a time) shows that time as the console
// shows every time, a <time> in UTC that the script puts in the reader's zone,
// where it was RFC 3339 text in the middle of the sentence; so does the error of
// the attempt that switched it off, which says the same. The store and the APIs
// keep the reason as it was.
func TestReasonTimeAsOtherTimes(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	switchOff(t, e)
	ctx := context.Background()
	const (
		failing = `deliveries failed continuously since <time datetime="2024-03-01T14:00:00Z">2024-03-01 14:00:00 UTC</time> (last: HTTP 500)`
		gone    = `the target answered 410 Gone at <time datetime="2024-03-01T16:00:00Z">2024-03-01 16:00:00 UTC</time>`
	)
	org, err := e.st.Subscription(ctx, e.orgHookA.UID)
	is.NoErr(err)
	is.Equal(org.Reason, "deliveries failed continuously since 2024-03-01T14:00:00Z (last: HTTP 500)") // the store's words, as before
	hook, err := e.st.Subscription(ctx, e.hookA.UID)
	is.NoErr(err)
	is.Equal(hook.Reason, "the target answered 410 Gone at 2024-03-01T16:00:00Z")

	u := e.as(t, "token")
	for path, says := range map[string][]string{
		"/console/webhooks/" + e.orgHookA.UID:                        {`<span class="reason">` + failing + `</span>`},
		"/console/webhooks/" + e.hookA.UID:                           {`<span class="reason">` + gone + `</span>`},
		"/console/webhooks":                                          {`<span class="reason">` + failing + `</span>`, `<span class="reason">` + gone + `</span>`},
		"/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10): {"hookd turned the webhook off: " + failing + "."},
		"/console/deliveries?webhook=" + e.orgHookA.UID:              {`<span class="error-text">` + failing + `</span>`},
		"/console/deliveries/" + strconv.FormatInt(e.delOrgA.ID, 10): {`<dd><span class="error-text">` + failing + `</span></dd>`, `<td><span class="error-text">` + failing + `</span></td>`},
	} {
		p := u.get(t, path)
		is.Equal(p.status, http.StatusOK)
		for _, s := range says {
			if !strings.Contains(p.body, s) {
				t.Errorf("%s does not say %s", path, s)
			}
		}
		is.True(!strings.Contains(p.body, "2024-03-01T14:00:00Z (last")) // not the raw time
		is.True(!strings.Contains(p.body, "Gone at 2024-03-01T16:00:00Z"))
	}
}

// TestReasonTimeOfGoneInWhatItLeftUnsent: a delivery a 410 Gone's deactivation
// left unsent says so with the reason's time as the console's other times, a
// <time> in UTC, in the list and on its page, as one left by a deactivation for
// failing does: the bracket after the time kept it RFC 3339 text.
func TestReasonTimeOfGoneInWhatItLeftUnsent(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	e.clock.Advance(2 * time.Hour) // the env's deliveries are due
	claimed, err := e.st.Claim(ctx, 1000, time.Minute)
	is.NoErr(err)
	_, err = e.st.Intake(ctx, "", "", []store.Event{{Orcid: recordX}}, time.Hour) // one more for A's platform webhook, due in an hour
	is.NoErr(err)
	var outs []store.Outcome
	for _, c := range claimed {
		o := store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Attempt: c.Attempt, StartedAt: e.clock.Now(),
			Kind: store.OutcomeRetry, Status: 500, Error: "HTTP 500", RetryAt: e.clock.Now().Add(time.Hour)}
		if c.Target.SubscriptionID == e.hookA.ID {
			o.Kind, o.Status, o.Error = store.OutcomeGone, 410, "HTTP 410"
		}
		outs = append(outs, o)
	}
	is.NoErr(recordOutcomes(ctx, e.st, outs))
	ds, err := e.st.Deliveries(ctx, store.DeliveryFilter{Webhook: e.hookA.UID, State: "dead", Limit: 10})
	is.NoErr(err)
	var unsent store.Delivery
	for _, d := range ds {
		if d.Attempts == 0 {
			unsent = d
		}
	}
	is.Equal(unsent.LastError, "not sent: subscription deactivated (the target answered 410 Gone at 2024-03-01T14:00:00Z)") // the store's words, as before

	const says = `<span class="error-text">not sent: subscription deactivated (the target answered 410 Gone at <time datetime="2024-03-01T14:00:00Z">2024-03-01 14:00:00 UTC</time>)</span>`
	u := e.as(t, "token")
	for _, path := range []string{"/console/deliveries?webhook=" + e.hookA.UID, "/console/deliveries/" + strconv.FormatInt(unsent.ID, 10)} {
		p := u.get(t, path)
		is.Equal(p.status, http.StatusOK)
		if !strings.Contains(p.body, says) {
			t.Errorf("%s does not say %s", path, says)
		}
		is.True(!strings.Contains(p.body, "Gone at 2024-03-01T14:00:00Z")) // not the raw time
	}
}

// TestReasonTimeInReplayRefusal: a replay of a delivery refused because its
// webhook is deactivated (the page was open before it was) quotes the reason with
// its time as the console's other times, a <time> in UTC, where it was the RFC
// 3339 text the store wrote.
func TestReasonTimeInReplayRefusal(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	switchOff(t, e)
	u := e.as(t, "token")
	for id, says := range map[int64]string{
		e.delOrgA.ID: `, which is deactivated (deliveries failed continuously since <time datetime="2024-03-01T14:00:00Z">2024-03-01 14:00:00 UTC</time> (last: HTTP 500)): activate the webhook first, then replay`,
		e.delA.ID:    `, which is deactivated (the target answered 410 Gone at <time datetime="2024-03-01T16:00:00Z">2024-03-01 16:00:00 UTC</time>): activate the webhook first, then replay`,
	} {
		p := u.post(t, "/console/deliveries/"+strconv.FormatInt(id, 10)+"/replay", nil)
		is.Equal(p.status, http.StatusConflict)
		is.True(strings.Contains(p.body, "<h1>Not replayed</h1>"))
		if !strings.Contains(p.body, says) {
			t.Errorf("the refusal of delivery %d does not say %s:\n%s", id, says, p.body)
		}
		is.True(!strings.Contains(p.body, "2024-03-01T14:00:00Z (last")) // not the raw time
		is.True(!strings.Contains(p.body, "Gone at 2024-03-01T16:00:00Z"))
	}
}

// TestReplayRefusalLinks: the page of a replay refused because the delivery's
// webhook is deactivated links to the webhook's page, where it is activated, and
// back to the delivery's, where it is replayed after, under public_url's path as
// every link of a page is (behind a proxy that serves hookd under /hookd/); it quotes the store's refusal as before. It linked to
// the overview only. A refusal for another cause (the webhook removed) links back
// to the delivery, not to the webhook.
func TestReplayRefusalLinks(t *testing.T) {
	is := is.New(t)
	e, _ := signedInBehindProxyPath(t, "/hookd")
	switchOff(t, e)
	u := e.operatorUnder(t, "/hookd") // the first session is idle past its end
	del := "/console/deliveries/" + strconv.FormatInt(e.delOrgA.ID, 10)
	p := u.post(t, "/hookd"+del+"/replay", nil)
	is.Equal(p.status, http.StatusConflict)
	is.True(strings.Contains(p.body, "<h1>Not replayed</h1>"))
	is.True(strings.Contains(p.body, "<p>delivery "+strconv.FormatInt(e.delOrgA.ID, 10)+" belongs to webhook "+e.orgHookA.UID+", which is deactivated (")) // the store's words
	for _, link := range []string{
		`<a href="/hookd/console/webhooks/` + e.orgHookA.UID + `">`,
		`<a href="/hookd` + del + `">`,
		`<a href="/hookd/console/">Go to the overview</a>`,
	} {
		if !strings.Contains(p.body, link) {
			t.Errorf("the refusal has no link %s:\n%s", link, p.body)
		}
	}

	// A removed webhook's delivery: its page, where it is history, not the webhook's.
	is.NoErr(e.st.RemoveSubscription(context.Background(), e.hookB.UID))
	del = "/console/deliveries/" + strconv.FormatInt(e.delB.ID, 10)
	p = u.post(t, "/hookd"+del+"/replay", nil)
	is.Equal(p.status, http.StatusConflict)
	is.True(strings.Contains(p.body, "cannot be sent again")) // the store's words
	is.True(strings.Contains(p.body, `<a href="/hookd`+del+`">`))
	is.True(!strings.Contains(p.body, `href="/hookd/console/webhooks/`+e.hookB.UID))
}

// TestReplaySinceKeptAsTyped: the replay form of a list sent with its time
// emptied is refused beside the field, left empty as it was sent, as the webhook
// page's replay form leaves it: the field came back with 24h in it beside the
// error that "" is not a time, which read as if 24h were refused.
func TestReplaySinceKeptAsTyped(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	failEvery(t, e, store.Outcome{Kind: store.OutcomeDead, Status: 500, Error: "HTTP 500"})
	u := e.as(t, "token")
	sinceField := regexp.MustCompile(`<input id="since" name="since" value="([^"]*)"`)
	for _, path := range []string{"/console/deliveries/replay", "/console/deliveries/replay?state=dead", "/console/webhooks/" + e.hookA.UID + "/replay"} {
		p := u.post(t, path, url.Values{"since": {""}})
		is.Equal(p.status, http.StatusBadRequest) // refused
		m := sinceField.FindStringSubmatch(p.body)
		is.True(m != nil)                                     // the form is shown again
		is.Equal(m[1], "")                                    // as typed: empty
		is.True(strings.Contains(p.body, `id="since-error"`)) // its error beside it
		p = u.post(t, path, url.Values{"since": {"  3x "}})
		is.Equal(sinceField.FindStringSubmatch(p.body)[1], "  3x ") // as typed
	}
	ds, err := e.st.Deliveries(context.Background(), store.DeliveryFilter{State: "dead"})
	is.NoErr(err)
	is.True(len(ds) > 0) // nothing replayed
	// Not sent, the form offers the list's own time.
	p := u.get(t, "/console/deliveries?state=dead")
	is.Equal(sinceField.FindStringSubmatch(p.body)[1], "24h")
	// A list until a time more than a day to come offers the last day, not a day
	// before its until: a time to come, which the form would refuse as offered.
	later := e.st.Now().Add(72 * time.Hour).UTC().Format("2006-01-02 15:04")
	p = u.get(t, "/console/deliveries?state=dead&until="+url.QueryEscape(later))
	is.Equal(sinceField.FindStringSubmatch(p.body)[1], "24h")
	p = u.post(t, "/console/deliveries/replay?state=dead&until="+url.QueryEscape(later), url.Values{"since": {"24h"}})
	is.True(!strings.Contains(p.body, `id="since-error"`)) // taken
}

// TestDeactivateTwiceChangesNothing: a webhook deactivated already (a second
// click, a page of another tab, two clicks at once) is left as it was, with the
// reason it was deactivated for, and no second audit entry: the page says it was
// deactivated already. Activating an active one is the same.
func TestDeactivateTwiceChangesNothing(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	owner, op := e.as(t, "a"), e.as(t, "token")
	self := "/console/webhooks/" + e.hookA.UID
	entries := func(action string) int {
		t.Helper()
		log, err := e.st.AuditLog(ctx, store.AuditQuery{Action: action})
		is.NoErr(err)
		n := 0
		for _, en := range log {
			if en.Action == action && en.Target == e.hookA.UID {
				n++
			}
		}
		return n
	}
	p := owner.post(t, self+"/deactivate", nil)
	is.Equal(p.status, http.StatusSeeOther)
	is.True(strings.Contains(owner.get(t, p.location).body, "The webhook is deactivated."))
	for _, u := range []*user{owner, op} { // the owner's second click; the operator's page of before
		p = u.post(t, self+"/deactivate", nil)
		is.Equal(p.status, http.StatusSeeOther)
		page := u.get(t, p.location).body
		is.True(strings.Contains(page, "The webhook was deactivated already"))                 // said so
		is.True(!strings.Contains(page, "The webhook is deactivated. Its pending deliveries")) // not as if this did it
	}
	is.Equal(entries("webhook.deactivate"), 1) // one entry: the change there was
	w, err := e.st.Subscription(ctx, e.hookA.UID)
	is.NoErr(err)
	is.True(!w.Active)
	is.Equal(w.Reason, "") // the owner's own, not made the operator's by the second

	// Two clicks at once: one changes it, the other finds it changed.
	p = owner.post(t, self+"/activate", nil)
	is.Equal(p.status, http.StatusSeeOther)
	form := url.Values{"csrf": {owner.csrf}}.Encode()
	done := make(chan *http.Response, 2)
	for range 2 {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+self+"/deactivate", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := owner.http.Do(req)
			if err != nil {
				t.Error(err)
			} else {
				res.Body.Close()
			}
			done <- res
		}()
	}
	var flashes []string
	for range 2 {
		res := <-done
		is.True(res != nil)
		is.Equal(res.StatusCode, http.StatusSeeOther)
		u, err := url.Parse(res.Header.Get("Location"))
		is.NoErr(err)
		flashes = append(flashes, u.Query().Get("done"))
	}
	slices.Sort(flashes)
	is.Equal(strings.Join(flashes, " "), "already-deactivated deactivated")
	is.Equal(entries("webhook.deactivate"), 2)

	p = owner.post(t, self+"/activate", nil)
	is.Equal(p.status, http.StatusSeeOther)
	p = owner.post(t, self+"/activate", nil)
	is.Equal(p.status, http.StatusSeeOther)
	is.True(strings.Contains(owner.get(t, p.location).body, "The webhook was active already"))
	is.Equal(entries("webhook.activate"), 2) // the two that activated it
}

// TestBadTimeQuotedShort: a time that is not one, 10,000 characters pasted into
// the replay form's field or a list's filter, is quoted in its error by its first
// 64 characters and an ellipsis, not whole; the field keeps what was typed.
func TestBadTimeQuotedShort(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	failEvery(t, e, store.Outcome{Kind: store.OutcomeDead, Status: 500, Error: "HTTP 500"})
	u := e.as(t, "token")
	long := strings.Repeat("x", 10000)
	quoted := "&#34;" + strings.Repeat("x", 64) + "&#34;… is not a time"
	for _, path := range []string{"/console/deliveries/replay?state=dead", "/console/webhooks/" + e.hookA.UID + "/replay"} {
		p := u.post(t, path, url.Values{"since": {long}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "since", quoted))                  // the first 64 and an ellipsis
		is.Equal(strings.Count(p.body, long), 1)                       // once: in the field, as typed
		is.True(strings.Contains(p.body, `name="since" value="`+long)) // kept
	}
	p := u.get(t, "/console/deliveries?until="+long)
	is.Equal(p.status, http.StatusBadRequest)
	is.True(besideField(p.body, "f-until", quoted))
	is.Equal(strings.Count(p.body, long), 1) // in the field only
	ds, err := e.st.Deliveries(context.Background(), store.DeliveryFilter{State: "dead"})
	is.NoErr(err)
	is.True(len(ds) > 0) // nothing replayed
}

// TestReplayTimeMissing: a replay form sent with its time emptied says the time
// is missing and the forms it takes, where it said `"" is not a time`; on a list
// with no rows left, where the form is not shown, the message above says so too.
func TestReplayTimeMissing(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "token")
	const says = "the time is missing: give an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or how long ago (90m, 2h, 7d)"
	// No dead deliveries yet: the list is empty, and its form not shown.
	p := u.post(t, "/console/deliveries/replay?state=dead", url.Values{"since": {""}})
	is.Equal(p.status, http.StatusBadRequest)
	is.True(strings.Contains(p.body, "<strong>Not replayed.</strong> The time is missing: give an RFC 3339 time"))
	failEvery(t, e, store.Outcome{Kind: store.OutcomeDead, Status: 500, Error: "HTTP 500"})
	u = e.as(t, "token") // the clock moved past the session's idle end
	for _, path := range []string{"/console/deliveries/replay", "/console/deliveries/replay?state=dead", "/console/webhooks/" + e.hookA.UID + "/replay"} {
		for _, since := range []string{"", "   "} {
			p := u.post(t, path, url.Values{"since": {since}})
			is.Equal(p.status, http.StatusBadRequest)
			is.True(besideField(p.body, "since", says))
			is.True(!strings.Contains(p.body, "is not a time"))
		}
	}
	ds, err := e.st.Deliveries(context.Background(), store.DeliveryFilter{State: "dead"})
	is.NoErr(err)
	is.True(len(ds) > 0) // nothing replayed
}

// TestLongValuesQuotedShort: 10,000 characters pasted into a filter's field (a
// record, a webhook id, a client), the member form's iD, a members file's header
// or a list's position in the address are quoted in their error by the first 64
// characters and an ellipsis, not whole.
func TestLongValuesQuotedShort(t *testing.T) {
	e := newEnv(t)
	u := e.as(t, "token")
	long := strings.Repeat("x", 10000)
	short := "&#34;" + strings.Repeat("x", 64) + "&#34;…"
	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	for _, tt := range []struct {
		name  string
		p     func() page
		field string // the field the error is beside ("": above the list)
		says  string
	}{
		{"deliveries' record", func() page { return u.get(t, "/console/deliveries?orcid="+long) }, "f-orcid", "ORCID iD " + short + " must have the form"},
		{"deliveries' webhook", func() page { return u.get(t, "/console/deliveries?webhook="+long) }, "f-webhook", "no webhook " + short},
		{"deliveries' client", func() page { return u.get(t, "/console/deliveries?client="+long) }, "f-client", "no client " + short},
		{"webhooks' record", func() page { return u.get(t, "/console/webhooks?orcid="+long) }, "f-orcid", "ORCID iD " + short},
		{"webhooks' client", func() page { return u.get(t, "/console/webhooks?client="+long) }, "f-client", "no client " + short},
		{"webhooks' status", func() page { return u.get(t, "/console/webhooks?status="+long) }, "f-status", short + ": use active or deactivated"},
		{"a member's iD", func() page { return u.post(t, org+"/members", url.Values{"orcid": {long}}) }, "m-orcid", "ORCID iD " + short},
		{"a members file's header", func() page { return u.upload(t, org+"/members/import", nil, "file", "m.csv", long+"\n") }, "file", "unknown column " + short},
		{"the deliveries' position", func() page { return u.get(t, "/console/deliveries?before="+long) }, "", "before=" + short + ", is not a number"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			p := tt.p()
			is.Equal(p.status, http.StatusBadRequest)
			if tt.field != "" {
				is.True(besideField(p.body, tt.field, tt.says))
			} else {
				is.True(strings.Contains(p.body, tt.says))
			}
			is.True(strings.Count(p.body, long) <= 1) // whole in the field as typed, if anywhere
		})
	}
}

// TestMemberAddedAgainChangesNothing: the Add a member form sent for a record that
// is a member already, with no other field (a second click, or a member added
// before), says so and that nothing changed, with no audit entry; it said "The
// member is updated.". With a field given, the member is updated, as before.
func TestMemberAddedAgainChangesNothing(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	u := e.as(t, "staffA")
	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	p := u.post(t, org+"/members", url.Values{"orcid": {memberA}})
	is.Equal(p.status, http.StatusSeeOther)
	page := u.get(t, p.location).body
	is.True(strings.Contains(page, "That record is a member already, and the form gave no name, e-mail or eduPersonPrincipalName to change: nothing changed."))
	is.True(!strings.Contains(page, "The member is updated."))
	log, err := e.st.AuditLog(ctx, store.AuditQuery{Action: "organisation.member."})
	is.NoErr(err)
	is.Equal(len(log), 0) // nothing to record
	p = u.post(t, org+"/members", url.Values{"orcid": {memberA}, "name": {"Ann"}})
	is.Equal(p.status, http.StatusSeeOther)
	is.True(strings.Contains(u.get(t, p.location).body, "The member is updated."))
	log, err = e.st.AuditLog(ctx, store.AuditQuery{Action: "organisation.member."})
	is.NoErr(err)
	is.Equal(len(log), 1)
}

// TestMemberAddedAgainSameDetails: the Add a member form sent for a member with the
// details it has already (the form sent twice, a member added before) says that
// nothing changed, with no audit entry; it said "The member is updated." and
// logged organisation.member.update for a member left as it was. A detail that
// differs still updates it.
func TestMemberAddedAgainSameDetails(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	u := e.as(t, "staffA")
	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	const id = "0000-0002-7253-3645"
	form := url.Values{"orcid": {id}, "name": {"Ann Lee"}, "email": {"ann@uni.example"}}
	entries := func() int {
		t.Helper()
		log, err := e.st.AuditLog(ctx, store.AuditQuery{Action: "organisation.member."})
		is.NoErr(err)
		return len(log)
	}
	p := u.post(t, org+"/members", form)
	is.Equal(p.status, http.StatusSeeOther)
	is.True(strings.Contains(u.get(t, p.location).body, "The member is added."))
	is.Equal(entries(), 1)
	for _, f := range []url.Values{form, {"orcid": {id}, "name": {"Ann Lee"}}} { // sent again; a part of it
		p = u.post(t, org+"/members", f)
		is.Equal(p.status, http.StatusSeeOther)
		page := u.get(t, p.location).body
		is.True(strings.Contains(page, "That record is a member already, with the details the form gave: nothing changed."))
		is.True(!strings.Contains(page, "The member is updated."))
		is.Equal(entries(), 1) // nothing to record
	}
	p = u.post(t, org+"/members", url.Values{"orcid": {id}, "name": {"Ann Lee-Smith"}})
	is.Equal(p.status, http.StatusSeeOther)
	is.True(strings.Contains(u.get(t, p.location).body, "The member is updated."))
	is.Equal(entries(), 2)
	members, err := e.st.Members(ctx, e.orgA.ID)
	is.NoErr(err)
	for _, m := range members {
		if m.Orcid == id {
			is.Equal(m.Name, "Ann Lee-Smith")
			is.Equal(m.Email, "ann@uni.example") // kept
		}
	}
}

// TestClientsFormKeepsADeletedOrganisation: the Clients page's form, sent for an
// organisation deleted since the page was shown, is shown again with that
// organisation still chosen and an error beside it, so that sending it again as
// it is is refused again: the list then showed "none" chosen, and the form sent
// again made the staff client one bound to no organisation. Another
// organisation, or none, chosen by hand, is taken.
func TestClientsFormKeepsADeletedOrganisation(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "token")
	ctx := context.Background()
	gone, err := e.st.CreateOrganisation(ctx, "University Gone", "it@gone.example")
	is.NoErr(err)
	is.True(strings.Contains(u.get(t, "/console/clients").body, ">University Gone</option>")) // the form offers it
	is.NoErr(e.st.DeleteOrganisation(ctx, gone.ID))                                           // deleted meanwhile (the Hub API)
	before, err := e.st.ConsoleClients(ctx)
	is.NoErr(err)

	// chosen is the value of the org select's chosen option, as a browser sends it.
	chosen := func(body string) string {
		sel := regexp.MustCompile(`(?s)<select id="org"[^>]*>(.*?)</select>`).FindStringSubmatch(body)
		is.True(sel != nil) // the form is shown again
		opt := regexp.MustCompile(`<option value="([^"]*)" selected>`).FindAllStringSubmatch(sel[1], -1)
		if len(opt) == 0 {
			return "" // none chosen: a browser sends the first, "none"
		}
		is.Equal(len(opt), 1)
		return html.UnescapeString(opt[0][1])
	}
	form := url.Values{"org": {strconv.FormatInt(gone.ID, 10)}, "scope_webhook": {"on"}, "name": {"gone staff"}}
	for range 2 { // sent, then sent again as shown
		p := u.post(t, "/console/clients", form)
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "org", "there is no such organisation"))
		is.True(strings.Contains(p.body, "choose another, or none"))
		is.Equal(chosen(p.body), strconv.FormatInt(gone.ID, 10)) // still chosen, not none
		is.True(strings.Contains(p.body, "organisation "+strconv.FormatInt(gone.ID, 10)+" (deleted)"))
		is.True(strings.Contains(p.body, `value="gone staff"`)) // what was typed kept
		form.Set("org", chosen(p.body))
	}
	// Nor a value that names no organisation at all.
	p := u.post(t, "/console/clients", url.Values{"org": {"abc"}, "scope_webhook": {"on"}, "name": {"gone staff"}})
	is.Equal(p.status, http.StatusBadRequest)
	is.True(besideField(p.body, "org", "choose an organisation from the list"))
	is.Equal(chosen(p.body), "abc")
	after, err := e.st.ConsoleClients(ctx)
	is.NoErr(err)
	is.Equal(len(after), len(before)) // nothing made

	// Another organisation chosen by hand is taken, and so is none.
	form.Set("org", strconv.FormatInt(e.orgA.ID, 10))
	p = u.post(t, "/console/clients", form)
	is.Equal(p.status, http.StatusCreated)
	p = u.post(t, "/console/clients", url.Values{"org": {""}, "scope_webhook": {"on"}, "name": {"unbound"}})
	is.Equal(p.status, http.StatusCreated)
	after, err = e.st.ConsoleClients(ctx)
	is.NoErr(err)
	orgOf := map[string]int64{}
	for _, c := range after {
		orgOf[c.Name] = c.OrgID
	}
	is.Equal(orgOf["gone staff"], e.orgA.ID) // the organisation chosen
	is.Equal(orgOf["unbound"], int64(0))     // none, chosen
}

// TestStaleFormsOfADeletedOrganisation: a form shown for an organisation that is
// deleted before it is sent, after another organisation was made, is refused and
// changes nothing: the newcomer does not take the deleted one's id, so the Clients
// form made a staff client of the newcomer, and the deleted organisation's page's
// forms acted on the newcomer.
func TestStaleFormsOfADeletedOrganisation(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "token")
	ctx := context.Background()
	gone, err := e.st.CreateOrganisation(ctx, "University Gone", "it@gone.example") // the newest
	is.NoErr(err)
	page := "/console/organisations/" + strconv.FormatInt(gone.ID, 10)
	is.True(strings.Contains(u.get(t, "/console/clients").body, ">University Gone</option>")) // the Clients form offers it
	is.Equal(u.get(t, page).status, http.StatusOK)                                            // and its page is shown
	is.NoErr(e.st.DeleteOrganisation(ctx, gone.ID))                                           // deleted meanwhile (the Hub API)
	newcomer, err := e.st.CreateOrganisation(ctx, "University New", "it@new.example")         // and another made
	is.NoErr(err)
	before, err := e.st.ConsoleClients(ctx)
	is.NoErr(err)

	p := u.post(t, "/console/clients", url.Values{"org": {strconv.FormatInt(gone.ID, 10)}, "scope_webhook": {"on"}, "name": {"gone staff"}})
	is.Equal(p.status, http.StatusBadRequest) // refused
	is.True(besideField(p.body, "org", "there is no such organisation"))
	is.True(strings.Contains(p.body, "organisation "+strconv.FormatInt(gone.ID, 10)+" (deleted)"))
	p = u.post(t, page+"/members", url.Values{"orcid": {"0000-0002-7253-3645"}, "name": {"Ann Lee"}})
	is.Equal(p.status, http.StatusNotFound) // the deleted one's page's forms too
	p = u.post(t, page+"/webhook", url.Values{"url": {"https://gone.example/hook"}, "enabled": {"on"}})
	is.Equal(p.status, http.StatusNotFound)

	after, err := e.st.ConsoleClients(ctx)
	is.NoErr(err)
	is.Equal(len(after), len(before)) // no client made
	for _, c := range after {
		is.True(c.OrgID != newcomer.ID) // least of all the newcomer's staff
	}
	members, err := e.st.Members(ctx, newcomer.ID)
	is.NoErr(err)
	is.Equal(len(members), 0) // nor a member of the newcomer's
	settings, err := e.st.HubSettings(ctx, newcomer.ID)
	is.NoErr(err)
	is.Equal(settings.URL, "")     // nor its webhook
	is.True(newcomer.ID > gone.ID) // which has an id of its own
}
