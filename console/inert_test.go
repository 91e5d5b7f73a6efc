package console_test

import (
	"context"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// Markup and javascript: URLs, stored in every field someone else types; each page
// that shows them must show them as text.
const (
	evilURL      = `javascript:alert(1)//<script>alert(1)</script>`
	evilDesc     = `<img src=x onerror=alert(2)>`
	evilHeader   = `"><script>alert(3)</script>`
	evilUser     = `<b onmouseover=alert(4)>u</b>`
	evilOrg      = `<script>alert(5)</script> University`
	evilHubURL   = `javascript:alert(6)`
	evilMember   = `<svg onload=alert(7)>`
	evilClient   = `<i onclick=alert(8)>c</i>`
	evilError    = "<script>alert(9)</script>\u202egnp.exe\x1b[31m" // a right-to-left override, an escape sequence
	evilResponse = "<html><script>alert(10)</script><a href=\"javascript:alert(11)\">x</a>\u202e\x1b[2J"
	evilSignIn   = `<script>alert(12)</script>`
)

// raw are what must never appear unescaped in a page: markup, and characters that
// hide or reorder the text after them.
var raw = []string{"<script>alert", "<img src=x", "<svg onload", "<b onmouseover", "<i onclick", "<html><script>", `<a href="javascript:`, "\u202e", "\x1b"}

// jsAttr finds a javascript: URL in an attribute a browser would follow or load.
var jsAttr = regexp.MustCompile(`(?i)(href|src|action|formaction|xlink:href)\s*=\s*["']?\s*javascript:`)

// seedEvil stores the payloads and returns the ids of the pages that show them.
func seedEvil(tb testing.TB, e *env) (hookUID, orgHookUID string, deliveryID int64) {
	tb.Helper()
	is := is.New(tb)
	ctx := context.Background()
	c, err := e.st.CreateClient(ctx, store.NewClient{Name: evilClient, Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	// The store keeps what the API validated; here it is given directly, as a
	// future bug in a validation might let it through.
	sub, _, err := e.st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: evilURL, Description: evilDesc,
		Headers: map[string]string{"X-Note": evilHeader}, Auth: store.Auth{Type: store.AuthBasic, Username: evilUser, Secret: "pw"}})
	is.NoErr(err)
	o, err := e.st.CreateOrganisation(ctx, evilOrg, "it@evil.example")
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: evilHubURL})
	is.NoErr(err)
	name := evilMember
	_, err = e.st.PutMember(ctx, o.ID, "0000-0002-1825-0097", store.MemberInfo{Name: &name}, 0)
	is.NoErr(err)
	_, err = e.st.CreateOrgClient(ctx, o.ID, store.NewClient{Name: "evil-staff", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)

	// A failed attempt with a hostile error and response, then one that deactivates
	// the webhook with a reason that quotes the error.
	deliveryID, err = e.st.SendTestEvent(ctx, sub.UID, "")
	is.NoErr(err)
	claimed, err := e.st.Claim(ctx, 100, time.Minute)
	is.NoErr(err)
	for _, cl := range claimed {
		kind := store.OutcomeReleased
		if cl.ID == deliveryID {
			kind = store.OutcomeRetry
		}
		is.NoErr(recordOutcomes(ctx, e.st, []store.Outcome{{DeliveryID: cl.ID, SubscriptionID: cl.Target.SubscriptionID, Kind: kind,
			Attempt: cl.Attempt, StartedAt: e.clock.Now(), Duration: 5 * time.Millisecond, Status: 500, Error: evilError,
			Response: evilResponse, RetryAt: e.clock.Now()}}))
	}
	claimed, err = e.st.Claim(ctx, 100, time.Minute)
	is.NoErr(err)
	for _, cl := range claimed {
		kind := store.OutcomeReleased
		if cl.ID == deliveryID {
			kind = store.OutcomeDeactivate
		}
		is.NoErr(recordOutcomes(ctx, e.st, []store.Outcome{{DeliveryID: cl.ID, SubscriptionID: cl.Target.SubscriptionID, Kind: kind,
			Attempt: cl.Attempt, StartedAt: e.clock.Now(), Duration: 5 * time.Millisecond, Status: 502, Error: evilError,
			Response: evilResponse, RetryAt: e.clock.Now(), FailingSince: e.clock.Now()}})) // the run the first failure began
	}
	hooks, err := e.st.Subscriptions(ctx, store.SubscriptionFilter{OrgID: o.ID})
	is.NoErr(err)
	// An audit entry quoting the target, and a failed sign-in with a hostile id (no
	// client's: the audit log keeps "(no such client)" instead).
	u := e.as(tb, "token")
	p := u.post(tb, "/console/webhooks/"+hooks[0].UID+"/deactivate", nil)
	is.Equal(p.status, 303)
	bad := e.newUser(tb)
	form := url.Values{"csrf": {bad.signInForm(tb)}, "client_id": {evilSignIn}, "secret": {"x"}, "kind": {"client"}}
	is.Equal(bad.post(tb, "/console/signin", form).status, 401)
	e.clock.Advance(time.Minute) // past the address's slow-down
	return sub.UID, hooks[0].UID, deliveryID
}

func TestEverythingTypedIsText(t *testing.T) {
	e := newEnv(t)
	hookUID, orgHookUID, deliveryID := seedEvil(t, e)
	orgs, err := e.st.Organisations(context.Background())
	is.New(t).NoErr(err)
	var orgID int64
	for _, o := range orgs {
		if o.Name == evilOrg {
			orgID = o.ID
		}
	}
	// Each page and the payloads it must show, escaped.
	pages := map[string][]string{
		"/console/":                        {evilURL, evilError},
		"/console/webhooks":                {evilURL, evilDesc, evilOrg, evilClient, evilHubURL},
		"/console/webhooks?url=javascript": {evilURL, evilHubURL},
		"/console/webhooks/" + hookUID:     {evilURL, evilDesc, evilHeader, evilUser, evilClient, evilError, evilResponse},
		"/console/webhooks/" + orgHookUID:  {evilHubURL, evilOrg},
		"/console/deliveries":              {evilURL, evilClient, evilError},
		"/console/deliveries/" + strconv.FormatInt(deliveryID, 10): {evilURL, evilClient, evilError, evilResponse},
		"/console/organisations":                                   {evilOrg},
		"/console/organisations/" + strconv.FormatInt(orgID, 10):   {evilOrg, evilHubURL, evilMember},
		"/console/clients":                                         {evilClient, evilOrg},
		"/console/audit":                                           {evilHubURL, "(no such client)"},
	}
	u := e.as(t, "token")
	for path, shown := range pages {
		t.Run(path, func(t *testing.T) {
			is := is.New(t)
			p := u.get(t, path)
			is.Equal(p.status, 200)
			for _, r := range raw {
				if strings.Contains(p.body, r) {
					t.Errorf("%s shows %q unescaped", path, r)
				}
			}
			is.True(!jsAttr.MatchString(p.body)) // no javascript: URL to follow
			for _, s := range shown {
				is.True(strings.Contains(p.body, htmlText(store.VisibleText(s, true)))) // shown, as text
			}
		})
	}

	// Once the webhook is removed, the pages of its history show the same as text.
	is.New(t).NoErr(e.st.RemoveSubscription(context.Background(), hookUID))
	for path, want := range map[string]struct {
		status int
		shown  []string
	}{
		"/console/webhooks/" + hookUID:                             {404, []string{evilURL}},
		"/console/deliveries?webhook=" + hookUID:                   {200, []string{evilURL, evilClient, evilError}},
		"/console/deliveries/" + strconv.FormatInt(deliveryID, 10): {200, []string{evilURL, evilClient, evilError, evilResponse}},
	} {
		t.Run("removed "+path, func(t *testing.T) {
			is := is.New(t)
			p := u.get(t, path)
			is.Equal(p.status, want.status)
			is.True(strings.Contains(p.body, "removed")) // the history, marked
			for _, r := range raw {
				if strings.Contains(p.body, r) {
					t.Errorf("%s shows %q unescaped", path, r)
				}
			}
			is.True(!jsAttr.MatchString(p.body)) // no javascript: URL to follow
			for _, s := range want.shown {
				is.True(strings.Contains(p.body, htmlText(store.VisibleText(s, true)))) // shown, as text
			}
		})
	}
}

// htmlText is s as html/template writes it in text.
func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;").Replace(s)
}
