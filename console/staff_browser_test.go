package console_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"hookd/console"
	"hookd/store"
)

// TestBrowserStaffFirstDay: an organisation's staff, on their first day, set the
// organisation's webhook to a long address, import members from a file with long
// and bad rows, add a member with a long name, and read the webhook's deliveries and
// attempts. Every page fits the window (nothing scrolls sideways), has no serious
// accessibility violation, and a refused second rotation of the signing secret
// gives its time in the reader's zone, as every other time on the page.
func TestBrowserStaffFirstDay(t *testing.T) {
	is := is.New(t)
	b := newBrowser(t)
	s := newStackOn(t, newEnv(t, func(o *console.Options) { o.AllowPrivateTargets = true })) // the receiver is on 127.0.0.1
	ctx := context.Background()
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	hook := s.recv.URL + "/" + long("h", 1900)

	tab := b.tab()
	signIn(t, tab, s.url, s.staffA.ID, s.staffA.Secret)
	org := s.url + "/console/organisations/" + strconv.FormatInt(s.orgA.ID, 10)
	do(t, tab, "set the webhook",
		chromedp.Navigate(org), chromedp.WaitVisible(css("#url")),
		chromedp.SetValue(css("#url"), hook),
		chromedp.Click(css(`form[action$="/webhook"] button[type="submit"]`)),
		chromedp.WaitVisible(css(".flash")))

	csv := "orcid,name,email,eppn\n" +
		"0000-0002-1825-0097," + long("N", 200) + ",a@" + long("e", 60) + ".example," + long("p", 200) + "\n" +
		long("9", 300) + ",bad,,\n" +
		"0000-0001-5109-3700,Ann,not-" + long("m", 250) + ",\n"
	file := filepath.Join(t.TempDir(), "members.csv")
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	do(t, tab, "import", chromedp.SetUploadFiles(css("#file"), []string{file}),
		chromedp.Click(css(`form[action$="/members/import"] button[type="submit"]`)), chromedp.WaitVisible(css(".report")))
	is.True(strings.Contains(text(t, tab), "1 member added, 0 updated, 2 rejected.")) // the report
	fits(t, tab, "the import's report")
	accessible(t, tab, "the import's report")

	do(t, tab, "add a member", chromedp.Navigate(org), chromedp.WaitVisible(css("#m-orcid")),
		chromedp.SetValue(css("#m-orcid"), "0000-0002-7253-3645"), chromedp.SetValue(css("#m-name"), long("M", 200)),
		chromedp.Click(css(`form[action$="/members"] button[type="submit"]`)), chromedp.WaitVisible(css(".flash")))
	fits(t, tab, "the organisation with long members")

	h, err := s.st.HubSettings(ctx, s.orgA.ID)
	is.NoErr(err)
	is.Equal(h.URL, hook) // saved
	s.deliver(t)          // the new members' CREATED, answered 500
	for _, path := range []string{"/console/", "/console/webhooks", "/console/webhooks/" + h.WebhookUID, "/console/deliveries", "/console/audit"} {
		do(t, tab, "open "+path, chromedp.Navigate(s.url+path), chromedp.WaitVisible(css("main")))
		fits(t, tab, path)
		accessible(t, tab, path)
	}
	ds, err := s.st.Deliveries(ctx, store.DeliveryFilter{Visible: store.Visibility{OrgID: s.orgA.ID}, Webhook: h.WebhookUID, Limit: 1})
	is.NoErr(err)
	is.True(len(ds) == 1)
	do(t, tab, "a delivery", chromedp.Navigate(s.url+"/console/deliveries/"+strconv.FormatInt(ds[0].ID, 10)), chromedp.WaitVisible(css("main")))
	fits(t, tab, "a delivery")
	accessible(t, tab, "a delivery")

	// Rotate the signing secret, then again within the day of overlap.
	wh := s.url + "/console/webhooks/" + h.WebhookUID
	rotate := `form[action$="/rotate-secret"] button[type="submit"]`
	do(t, tab, "rotate", chromedp.Navigate(wh), chromedp.WaitVisible(css(rotate)), chromedp.Click(css(rotate)), chromedp.WaitVisible(css(".secret-value")))
	do(t, tab, "rotate again", chromedp.Navigate(wh), chromedp.WaitVisible(css(rotate)), chromedp.Click(css(rotate)), chromedp.WaitVisible(css("#revoke-error")))
	refused := get(t, tab, "the refusal", chromedp.Text(css("#revoke-error")))
	is.True(strings.Contains(refused, "still signs until"))
	is.True(strings.Contains(refused, "CET") || strings.Contains(refused, "CEST") || strings.Contains(refused, "GMT+")) // the reader's zone (Europe/Berlin)
	is.True(!strings.Contains(refused, "UTC") && !strings.Contains(refused, "T12:"))                                    // not the server's
	is.Equal(get(t, tab, "focus", chromedp.Evaluate[string](`document.activeElement.id`)), "revoke")                    // the box that mends it has the focus
	accessible(t, tab, "a refused rotation")

	// In a phone's window too: tables scroll in their frame, the rest wraps, and a
	// frame that scrolls can be scrolled from the keyboard.
	do(t, tab, "a phone's window", chromedp.EmulateViewport(375, 800))
	for _, path := range []string{"/console/organisations/" + strconv.FormatInt(s.orgA.ID, 10), "/console/webhooks/" + h.WebhookUID, "/console/deliveries",
		"/console/deliveries/" + strconv.FormatInt(ds[0].ID, 10), "/console/clients", "/console/inbox", "/console/audit", "/console/"} {
		do(t, tab, "open "+path, chromedp.Navigate(s.url+path), chromedp.WaitVisible(css("main")))
		fits(t, tab, path+" at 375 px")
		accessible(t, tab, path+" at 375 px")
	}
	b.check()
}

// fits fails the test when the page is wider than the window: something long is
// not wrapped and the page scrolls sideways.
func fits(t *testing.T, tab context.Context, what string) {
	t.Helper()
	w := get(t, tab, "measure "+what, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if w[0] > w[1] {
		t.Errorf("%s is %d px wide in a window of %d px: a long value is not wrapped", what, w[0], w[1])
	}
}
