package console_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"hookd/store"
)

// TestBrowserScreenshots writes pictures of the console's main pages to docs/, for
// the README, from a small world of made-up but plausible data: go test ./console
// -run TestBrowserScreenshots -screenshots. Each page is checked with axe-core too.
func TestBrowserScreenshots(t *testing.T) {
	if !*screenshots {
		t.Skip("run with -screenshots to write docs/console-*.png")
	}
	is := is.New(t)
	b := newBrowser(t)
	e := openEnv(t)
	e.start(t)
	s := newStackOn(t, e)
	ctx := context.Background()

	// Every callback goes to this receiver on 127.0.0.1: /broken answers 503, the rest 204.
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/broken") {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"maintenance until 14:00"}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)

	cris, err := s.st.CreateClient(ctx, store.NewClient{Name: "cris-sync", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}, Email: "cris@uni.example"})
	is.NoErr(err)
	_, err = s.st.CreateClient(ctx, store.NewClient{Name: "operations", Scopes: []string{store.ScopeAdmin}})
	is.NoErr(err)
	platform, _, err := s.st.CreateWebhook(ctx, cris.ID, store.WebhookSpec{TargetURL: recv.URL + "/cris/orcid",
		Description: "Research information system: every record", Auth: store.Auth{Type: store.AuthBasic, Username: "hookd", Secret: "pw"},
		Headers: map[string]string{"X-Source": "hookd"}})
	is.NoErr(err)
	records := []string{"0000-0002-1825-0097", "0000-0001-5109-3700", "0000-0002-9079-593X", "0000-0002-7253-3645"}
	var brokenSub int64
	for i, r := range records {
		cb := recv.URL + "/profiles/" + r + "/updated"
		if i == 3 {
			cb = recv.URL + "/broken/" + r
		}
		sub, _, err := s.st.PutOrcidWebhook(ctx, cris.ID, r, cb)
		is.NoErr(err)
		if i == 3 {
			brokenSub = sub.ID
		}
	}
	uni, err := s.st.CreateOrganisation(ctx, "University of Testing", "it@uni.example")
	is.NoErr(err)
	for _, r := range records[:3] {
		name := map[string]string{records[0]: "Josiah Carberry", records[1]: "Ann Example", records[2]: "Sofia Garcia"}[r]
		_, err := s.st.PutMember(ctx, uni.ID, r, store.MemberInfo{Name: &name}, 0)
		is.NoErr(err)
	}
	_, _, err = s.st.SetHubSettings(ctx, uni.ID, store.HubSettings{Enabled: true, URL: recv.URL + "/uni-testing/orcid", AppendOrcid: true})
	is.NoErr(err)
	staff, err := s.st.CreateOrgClient(ctx, uni.ID, store.NewClient{Name: "uni-testing-staff", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)

	// A day of delivery figures, by the minute: a daily rhythm, and an hour in the
	// afternoon when one receiver failed.
	var subs []int64
	for _, w := range mustWebhooks(t, s.st, "") {
		if w.ID != brokenSub {
			subs = append(subs, w.ID)
		}
	}
	for m := range 24 * 60 {
		h := float64(m) / 60
		n := int(math.Round(7 + 5*math.Sin((h-8)/24*2*math.Pi)))
		var outs []store.Outcome
		for i := range n {
			o := store.Outcome{DeliveryID: 1 << 40, SubscriptionID: subs[i%len(subs)], Kind: store.OutcomeDelivered, Attempt: 1,
				StartedAt: s.clock.Now(), Duration: time.Duration(40+(m*7+i*13)%25) * time.Millisecond, Status: 204}
			if h > 14 && h < 15.2 && i%3 == 0 {
				o.SubscriptionID, o.Kind, o.Status, o.Duration, o.Error, o.RetryAt = brokenSub, store.OutcomeRetry, 503, 10*time.Second, "HTTP 503", s.clock.Now()
			}
			outs = append(outs, o)
		}
		is.NoErr(recordOutcomes(ctx, s.st, outs))
		s.clock.Advance(time.Minute)
	}

	// Real deliveries through the dispatcher: the broken one fails twice, the rest succeed.
	_, err = s.st.Intake(ctx, cris.ID, "", []store.Event{{Orcid: records[0]}, {Orcid: records[1]}, {Orcid: records[3]}}, 0)
	is.NoErr(err)
	s.deliver(t)
	s.clock.Advance(90 * time.Second)
	_, err = s.st.Replay(ctx, store.DeliveryFilter{Since: s.clock.Now().Add(-time.Hour), ClientID: cris.ID})
	is.NoErr(err)
	s.deliver(t)
	s.clock.Advance(2 * time.Minute)
	broken, err := s.st.Deliveries(ctx, store.DeliveryFilter{Orcid: records[3], ClientID: cris.ID, State: "failed", Limit: 1})
	is.NoErr(err)
	is.Equal(len(broken), 1) // the broken receiver's delivery, retrying

	shots := filepath.Join("..", "docs")
	is.NoErr(os.MkdirAll(shots, 0o755))
	shoot := func(tab context.Context, name, path, waitFor string) {
		t.Helper()
		do(t, tab, name, chromedp.Navigate(s.url+path), chromedp.WaitVisible(css(waitFor)))
		accessible(t, tab, name)
		png := get(t, tab, "screenshot "+name, chromedp.FullScreenshot(100))
		is.NoErr(os.WriteFile(filepath.Join(shots, "console-"+name+".png"), png, 0o644))
	}

	signedOut := b.tab()
	shoot(signedOut, "signin", "/console/signin", "#client_id")

	// The organisation's staff import members from a file with one bad line.
	staffTab := b.tab()
	signIn(t, staffTab, s.url, staff.ID, staff.Secret)
	csv := filepath.Join(t.TempDir(), "members-2024-03.csv")
	is.NoErr(os.WriteFile(csv, []byte("orcid,name,email\n0000-0002-7253-3645,Li Wei,li.wei@uni.example\n0000-0002-7253-3646,Typo,\n"), 0o644))
	do(t, staffTab, "import", chromedp.Navigate(fmt.Sprintf("%s/console/organisations/%d", s.url, uni.ID)), chromedp.WaitVisible(css("#file")),
		chromedp.SetUploadFiles(css("#file"), []string{csv}), chromedp.Click(css(`form[action$="/import"] button`)), chromedp.WaitVisible(css(".report")))
	accessible(t, staffTab, "organisation after import")
	png := get(t, staffTab, "screenshot organisation", chromedp.FullScreenshot(100))
	is.NoErr(os.WriteFile(filepath.Join(shots, "console-organisation.png"), png, 0o644))

	op := b.tab()
	signInToken(t, op, s.url)
	shoot(op, "overview", "/console/", "figure.chart")
	shoot(op, "webhooks", "/console/webhooks", "table")
	shoot(op, "webhook", "/console/webhooks/"+platform.UID, "table")
	shoot(op, "deliveries", "/console/deliveries", "table")
	shoot(op, "delivery", fmt.Sprintf("/console/deliveries/%d", broken[0].ID), "table")
	shoot(op, "clients", "/console/clients", "table")
	shoot(op, "audit", "/console/audit", "table")
	b.check()
}

// mustWebhooks lists a client's webhooks (every one when clientID is empty).
func mustWebhooks(t *testing.T, st *store.Store, clientID string) []store.Subscription {
	t.Helper()
	ws, err := st.Subscriptions(context.Background(), store.SubscriptionFilter{ClientID: clientID, NewestFirst: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return ws
}
