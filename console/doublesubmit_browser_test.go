package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"hookd/console"
	"hookd/httpapi"
	"hookd/store"
)

// clickTwice double-clicks the element, as a person does: two clicks at its
// centre, 150 ms apart, the second while the first's form is on its way.
func clickTwice(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		at, err := chromedp.Evaluate[[]float64](`(() => {
			const el = document.querySelector(`+strconv.Quote(sel)+`);
			el.scrollIntoView({block: "center"});
			const r = el.getBoundingClientRect();
			return [r.left + r.width / 2, r.top + r.height / 2];
		})()`)(ctx, t)
		if err != nil {
			return err
		}
		if _, err := chromedp.MouseClickXY(at[0], at[1])(ctx, t); err != nil {
			return err
		}
		time.Sleep(150 * time.Millisecond) // a hand's double click
		_, err = chromedp.MouseClickXY(at[0], at[1], chromedp.ClickCount(2))(ctx, t)
		return err
	})
}

// TestBrowserDoubleClickSendsOnce: a double click on a form's button (Create the
// client, Rotate the signing secret) sends the form once, and the page shows its
// answer: the new secret, shown once.
func TestBrowserDoubleClickSendsOnce(t *testing.T) {
	is := is.New(t)
	b := newBrowser(t)
	s := newStack(t)
	ctx := context.Background()
	// The console behind a server that takes its time to answer a form, as one
	// far away does: a second click comes before the first's answer.
	api := httpapi.NewServer(httpapi.Options{Store: s.st, Logger: s.opts.Logger, Console: console.New(s.opts)}).Handler()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path != "/console/signin" {
			time.Sleep(500 * time.Millisecond)
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(slow.Close)
	s.url = slow.URL
	tab := b.tab()
	signInToken(t, tab, s.url)
	create := `form[action$="/console/clients"].card button[type="submit"]`
	do(t, tab, "the clients", chromedp.Navigate(s.url+"/console/clients"), chromedp.WaitVisible(css("#name")),
		chromedp.SendKeys(css("#name"), "twice"))
	do(t, tab, "create", clickTwice(create))
	do(t, tab, "its answer", chromedp.WaitVisible(css(".secret-value, #name-error")))
	clients, err := s.st.ConsoleClients(ctx)
	is.NoErr(err)
	n := 0
	for _, c := range clients {
		if c.Name == "twice" {
			n++
		}
	}
	is.Equal(n, 1)                                             // made once
	is.True(!strings.Contains(text(t, tab), "already exists")) // the answer of the one sent
	is.True(get(t, tab, "the secret", chromedp.Text(css(".secret-value"))) != "")

	// Rotating a webhook's signing secret: rotated once, and the new secret shown,
	// where the second rotation was refused ("Not rotated") within the first's
	// day of overlap, the first's secret never seen.
	rotate := `form[action$="/rotate-secret"] button[type="submit"]`
	do(t, tab, "the webhook", chromedp.Navigate(s.url+"/console/webhooks/"+s.hookA.UID), chromedp.WaitVisible(css(rotate)))
	do(t, tab, "rotate", clickTwice(rotate))
	do(t, tab, "its answer", chromedp.WaitVisible(css(".secret-value, #revoke-error")))
	is.True(get(t, tab, "the new secret", chromedp.Text(css(".secret-value"))) != "")
	log, err := s.st.AuditLog(ctx, store.AuditQuery{Action: "webhook.rotate-secret"})
	is.NoErr(err)
	is.Equal(len(log), 1)

	// Back to the form, it is sent again as any form.
	do(t, tab, "the clients again", chromedp.Navigate(s.url+"/console/clients"), chromedp.WaitVisible(css("#name")),
		chromedp.SendKeys(css("#name"), "once more"), chromedp.Click(css(create)), chromedp.WaitVisible(css(".secret-value")))
	do(t, tab, "back", chromedp.NavigateBack(), chromedp.WaitVisible(css("#name")),
		chromedp.SetValue(css("#name"), "and again"), chromedp.Click(css(create)), chromedp.WaitVisible(css(".secret-value")))
	is.True(strings.Contains(text(t, tab), "and again"))
	b.check()
}
