package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/smtptest"
	"hookd/store"
)

// TestDeactivationNotice: when a 410 deactivates a webhook, its owner (a client with
// a contact address) gets an e-mail through a real SMTP server.
func TestDeactivationNotice(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err) // a client with a contact address
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, orcidA, rv.URL+"/gone")
	is.NoErr(err)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // one call, answered 410

	msgs := mail.Messages()
	is.Equal(len(msgs), 1)                                         // one notice
	is.Equal(msgs[0].To, []string{"ops@lab.example"})              // to the owner
	is.True(strings.Contains(msgs[0].Data, "webhook deactivated")) // says what happened
	is.True(strings.Contains(msgs[0].Data, "410 Gone"))            // and why
	// A message of hookd's, as an organisation's e-mail is: no out-of-office
	// replies to it, hookd's name, and a Message-ID of email.from's domain, not
	// of the name of hookd's machine.
	is.True(regexp.MustCompile(`(?m)^Auto-Submitted: auto-generated\r$`).MatchString(msgs[0].Data))
	is.True(regexp.MustCompile(`(?m)^X-Mailer: hookd/1.2.3-test\r$`).MatchString(msgs[0].Data))
	is.True(regexp.MustCompile(`(?m)^User-Agent: hookd/1.2.3-test\r$`).MatchString(msgs[0].Data))
	is.True(!strings.Contains(msgs[0].Data, "go-mail"))
	is.True(regexp.MustCompile(`(?m)^Message-ID: <notice\.[0-9a-f-]{36}@hookd\.example>\r$`).MatchString(msgs[0].Data))
	sub, err := e.st.OrcidWebhook(ctx, owner.ID, orcidA, rv.URL+"/gone")
	is.NoErr(err)
	is.True(!sub.Active) // deactivated

	// Reactivating (a new PUT) does not resend what was pending.
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, orcidA, rv.URL+"/gone")
	is.NoErr(err)
	e.clock.Advance(time.Hour)
	is.Equal(e.tick(d), 0) // nothing is sent by itself
}

// TestDeactivationNoticeOnce: many deliveries of one subscription answered 410 in one
// batch give one notice, not one per delivery.
func TestDeactivationNoticeOnce(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	sub, _, err := e.st.CreateWebhook(ctx, owner.ID, store.WebhookSpec{TargetURL: rv.URL + "/all", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // a webhook for every record
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, store.Event{Orcid: testOrcid(1)}, store.Event{Orcid: testOrcid(2)}, store.Event{Orcid: testOrcid(3)})
	is.Equal(e.tick(d), 3)            // three calls, each answered 410
	is.Equal(len(mail.Messages()), 1) // one notice
	got, err := e.st.Webhook(ctx, owner.ID, sub.UID)
	is.NoErr(err)
	is.Equal(got.Active, false) // deactivated
}

// TestSubscriptionDeletedInFlight: a subscription deleted while one of its deliveries
// is in flight does not stop the dispatcher: the outcome is recorded on the row kept
// as history (dead, not retried) and the next deliveries go on.
func TestSubscriptionDeletedInFlight(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slow := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		arrived <- struct{}{}
		block(r, release, 5*time.Second)
		w.WriteHeader(http.StatusInternalServerError)
		return nil
	})
	ok := newReceiver(t, nil)
	e.subscribe(orcidA, slow.URL+"/slow")
	d := e.dispatcher(nil)
	e.intake(0, store.Event{Orcid: orcidA})
	n, err := d.Tick(ctx)
	is.NoErr(err)
	is.Equal(n, 1) // the call starts
	<-arrived
	is.NoErr(e.st.DeleteOrcidWebhook(ctx, e.client.ID, orcidA, slow.URL+"/slow")) // deleted meanwhile
	close(release)
	is.NoErr(d.Wait(ctx)) // the outcome of a deleted delivery is recorded without error
	kept := e.only()
	is.Equal(kept.StateName(), "dead")    // a failure of a removed webhook is final
	is.True(!kept.RemovedAt.IsZero())     // kept as a removed webhook's history
	is.Equal(len(e.attempts(kept.ID)), 1) // with its attempt

	e.subscribe(orcidB, ok.URL+"/ok")
	e.intake(0, store.Event{Orcid: orcidB})
	is.Equal(e.tick(d), 1)  // the dispatcher goes on
	is.Equal(ok.count(), 1) // and delivers
}

// TestDeactivationNoticeLongTarget: a webhook of a URL of 2,000 bytes, deactivated,
// is named in its notice's subject cut short, on a header line of a length a
// relay takes (RFC 5322: 78 characters, never more than 998), and whole in the
// body.
func TestDeactivationNoticeLongTarget(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	long := rv.URL + "/gone/" + strings.Repeat("x", 2000-len(rv.URL+"/gone/"))
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, orcidA, long)
	is.NoErr(err)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1)
	msgs := mail.Messages()
	is.Equal(len(msgs), 1) // the notice
	head, body, _ := strings.Cut(msgs[0].Data, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if len(l) > 78 {
			t.Errorf("header line of %d characters: %.100q…", len(l), l)
		}
	}
	is.True(regexp.MustCompile(`\(http://127\.0\.0\.1:\d+/gone/x+\.\.\.\)\r\n`).MatchString(head + "\r\n")) // the subject names it, cut
	is.True(strings.Count(strings.ReplaceAll(body, "=\r\n", ""), "x") >= 1900)                              // the body names it whole
}

// TestDeactivationNoticeOncePerAddress: a client's webhooks for 30 records call one
// URL, which answers 410: each is deactivated on its own, and the client's address
// gets one notice, not 30 at once (each a session of hookd's relay).
func TestDeactivationNoticeOncePerAddress(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err)
	other, err := e.st.CreateClient(ctx, store.NewClient{Name: "other", Scopes: []string{store.ScopeWebhook}, Email: "it@other.example"})
	is.NoErr(err)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	var evs []store.Event
	for i := range 30 {
		_, _, err := e.st.PutOrcidWebhook(ctx, owner.ID, testOrcid(i), rv.URL+"/gone")
		is.NoErr(err)
		evs = append(evs, store.Event{Orcid: testOrcid(i)})
	}
	_, _, err = e.st.PutOrcidWebhook(ctx, other.ID, testOrcid(0), rv.URL+"/other")
	is.NoErr(err)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, evs...)
	for i := 0; i < 10 && rv.count() < 31; i++ {
		e.tick(d)
		e.clock.Advance(10 * time.Second)
	}
	is.Equal(rv.count(), 31) // every webhook called, answered 410
	to := map[string]int{}
	for _, m := range mail.Messages() {
		to[strings.Join(m.To, ",")]++
		is.True(strings.Contains(strings.ReplaceAll(m.Data, "=\r\n", ""), "one such notice an hour at most")) // says so
	}
	is.Equal(to, map[string]int{"ops@lab.example": 1, "it@other.example": 1}) // one each
}

// goneOwners makes n clients with an e-mail address (ops0@lab.example, …), each
// with an ORCID webhook for testOrcid(i) at a receiver that answers 410 Gone,
// and returns the receiver and an event for each webhook.
func goneOwners(t *testing.T, e *testEnv, n int) (*receiver, []store.Event) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	var evs []store.Event
	for i := range n {
		c, err := e.st.CreateClient(ctx, store.NewClient{Name: fmt.Sprintf("owner %d", i), Scopes: []string{store.ScopeWebhook},
			Email: fmt.Sprintf("ops%d@lab.example", i)})
		is.NoErr(err)
		_, _, err = e.st.PutOrcidWebhook(ctx, c.ID, testOrcid(i), rv.URL+"/gone")
		is.NoErr(err)
		evs = append(evs, store.Event{Orcid: testOrcid(i)})
	}
	return rv, evs
}

// TestDeactivationNoticesBoundedSessions: deactivation notices to many owners at
// once (a host that answers 410 for the webhooks of many clients) go to the relay
// at most per_host sessions at a time, as organisation e-mail does, not one
// session each at once; every one is sent.
func TestDeactivationNoticesBoundedSessions(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	mail.SetDataDelay(100 * time.Millisecond) // a relay slow enough for sessions to overlap
	const owners = 12
	rv, evs := goneOwners(t, e, owners)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.PerHost = 2
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, evs...)
	for i := 0; i < 10 && rv.count() < owners; i++ {
		e.tick(d)
	}
	is.Equal(rv.count(), owners)           // every webhook called, answered 410
	is.Equal(len(mail.Messages()), owners) // each owner told
	is.True(mail.PeakData() <= 2)          // at most per_host sessions at once
}

// TestDeactivationNoticeAfterFailedOne: a notice that the relay refused does not
// count as the address's one notice of the hour: the next deactivation of its
// owner's tells them.
func TestDeactivationNoticeAfterFailedOne(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	for i := range 2 {
		_, _, err := e.st.PutOrcidWebhook(ctx, owner.ID, testOrcid(i), rv.URL+fmt.Sprintf("/gone/%d", i))
		is.NoErr(err)
	}
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	mail.SetRefuse(true)
	e.intake(0, store.Event{Orcid: testOrcid(0)})
	is.Equal(e.tick(d), 1)                                      // the first webhook answers 410 and is deactivated
	is.Equal(len(mail.Messages()), 0)                           // its notice refused by the relay
	is.True(strings.Contains(logs.String(), "try again later")) // and logged
	mail.SetRefuse(false)
	e.intake(0, store.Event{Orcid: testOrcid(1)})
	is.Equal(e.tick(d), 1)            // the second one too
	is.Equal(len(mail.Messages()), 1) // its owner is told
}

// TestDeactivationNoticeAgainAfterFailedOne: a webhook whose deactivation notice
// the relay refused, made active again and deactivated again within the hour, has
// its owner told then: the refused notice told no one.
func TestDeactivationNoticeAgainAfterFailedOne(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, testOrcid(0), rv.URL+"/gone")
	is.NoErr(err)
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	mail.SetRefuse(true)
	e.intake(0, store.Event{Orcid: testOrcid(0)})
	is.Equal(e.tick(d), 1)                                      // the webhook answers 410 and is deactivated
	is.Equal(len(mail.Messages()), 0)                           // its notice refused by the relay
	is.True(strings.Contains(logs.String(), "try again later")) // and logged
	mail.SetRefuse(false)
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, testOrcid(0), rv.URL+"/gone")
	is.NoErr(err) // registered again
	e.intake(0, store.Event{Orcid: testOrcid(0)})
	is.Equal(e.tick(d), 1)                                                                      // deactivated again
	is.Equal(len(mail.Messages()), 1)                                                           // its owner is told
	is.True(!strings.Contains(logs.String(), "told of its deactivation less than an hour ago")) // not said to be told before
}

// TestDeactivationNoticeRiderOfAFailedOne: two webhooks of one owner deactivated
// at once make one notice, the other skipped for the one being sent to the same
// address; when the relay refuses that one, the owner of the skipped one was not
// told either, and its next deactivation within the hour tells them.
func TestDeactivationNoticeRiderOfAFailedOne(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	orcidOf, urlOf := map[string]string{}, map[string]string{} // by webhook uid
	for i := range 2 {
		sub, _, err := e.st.PutOrcidWebhook(ctx, owner.ID, testOrcid(i), rv.URL+fmt.Sprintf("/gone/%d", i))
		is.NoErr(err)
		orcidOf[sub.UID], urlOf[sub.UID] = testOrcid(i), rv.URL+fmt.Sprintf("/gone/%d", i)
	}
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	// The relay takes its time over the first notice, so the second is skipped
	// while it is being sent, and then refuses it.
	mail.SetDelay(smtptest.Dot, 300*time.Millisecond)
	mail.SetReply(smtptest.Dot, 451, []int{4, 3, 0}, "try again later")
	e.intake(0, store.Event{Orcid: testOrcid(0)}, store.Event{Orcid: testOrcid(1)})
	is.Equal(e.tick(d), 2)            // both answer 410 and are deactivated
	is.Equal(len(mail.Messages()), 0) // the one notice refused
	rider := ""
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct{ Msg, Webhook, Owner string }
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Owner, "not told again: its owner's address") {
			rider = rec.Webhook
		}
	}
	is.True(orcidOf[rider] != "") // one notice was skipped for the other
	mail.SetReply(smtptest.Dot, 0, nil, "")
	mail.SetDelay(smtptest.Dot, 0)
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, orcidOf[rider], urlOf[rider])
	is.NoErr(err) // registered again
	before := len(logs.String())
	e.intake(0, store.Event{Orcid: orcidOf[rider]})
	is.Equal(e.tick(d), 1)                                                                               // the skipped one, registered again, deactivated again
	is.Equal(len(mail.Messages()), 1)                                                                    // its owner is told
	is.True(!strings.Contains(logs.String()[before:], "told of its deactivation less than an hour ago")) // not said to be told before
}

// TestNoticesAndEmailShareRelaySessions: deactivation notices to many owners sent
// while an organisation's e-mail deliveries go out share the relay's per_host
// sessions with them: the relay never has more than per_host sessions of hookd's
// at once, and every message of both kinds is sent.
func TestNoticesAndEmailShareRelaySessions(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	mail.SetDataDelay(100 * time.Millisecond) // a relay slow enough for sessions to overlap
	const n = 8
	rv, evs := goneOwners(t, e, n)
	org, err := e.st.CreateOrganisation(ctx, "University of Testing", "tech@uni.example")
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true, NotificationEmail: "orcid@uni.example"})
	is.NoErr(err)
	for i := range n {
		_, err = e.st.PutMember(ctx, org.ID, testOrcid(100+i), store.MemberInfo{}, 0)
		is.NoErr(err) // each member's e-mail of CREATED
	}
	d := e.dispatcher(func(o *dispatch.Options) {
		o.PerHost = 2
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, evs...)
	claimed, err := d.Tick(ctx)
	is.NoErr(err)
	is.Equal(claimed, 2*n) // the webhooks' calls and the e-mails, the e-mails two at a time
	waitFor(t, 5*time.Second, "every webhook's 410", func() bool { return rv.count() == n })
	// The turns that record the 410s send the notices while the e-mails still go
	// (what a relay busy with notices cannot take yet is handed back, and claimed
	// again by a later turn).
	notices := func() int {
		k := 0
		for _, m := range mail.Messages() {
			if strings.HasPrefix(m.To[0], "ops") {
				k++
			}
		}
		return k
	}
	for i := 0; i < 300 && len(mail.Messages()) < 2*n; i++ {
		_, err := d.Tick(ctx)
		is.NoErr(err)
		time.Sleep(10 * time.Millisecond)
	}
	is.NoErr(d.Wait(ctx))
	is.Equal(notices(), n)              // each owner told
	is.Equal(len(mail.Messages()), 2*n) // and each e-mail sent
	t.Logf("the most sessions at once: %d", mail.PeakSessions())
	is.True(mail.PeakSessions() <= 2) // at most per_host sessions at once, of both kinds
}

// TestEmailWaitingForNoticeAtShutdown: an organisation's e-mail that waits for
// the relay's one session, held by a notice, when hookd stops goes back unsent
// once the grace ends, not counted as an attempt, and the loop stops: the notice
// is sent.
func TestEmailWaitingForNoticeAtShutdown(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	mail.SetDataDelay(time.Second) // the notice holds the relay's session for a second
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, orcidB, rv.URL+"/gone")
	is.NoErr(err)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.PerHost, o.Tick, o.ShutdownGrace = 1, 20*time.Millisecond, 100*time.Millisecond
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, store.Event{Orcid: orcidB})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(rctx) }()
	waitFor(t, 5*time.Second, "the notice's session", func() bool { return mail.Sessions() == 1 })
	e.emailOrg() // an e-mail of orcidA's, due now
	waitFor(t, 5*time.Second, "the e-mail to wait for the relay", func() bool {
		emails, _ := dispatch.WaitingForRelay(d)
		return emails == 1
	})
	cancel()
	select {
	case err := <-ran:
		is.NoErr(err) // Run stops
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return with an e-mail waiting for the relay")
	}
	msgs := mail.Messages()
	is.Equal(len(msgs), 1)                            // the notice alone
	is.Equal(msgs[0].To, []string{"ops@lab.example"}) // to the owner
	emailed := e.deliveries(store.DeliveryFilter{Orcid: orcidA})
	is.Equal(len(emailed), 1)
	is.Equal(emailed[0].StateName(), "pending") // handed back
	is.Equal(len(e.attempts(emailed[0].ID)), 0) // not an attempt
}

// TestEmailInHangingSessionAtShutdown: an organisation's e-mail whose relay stops
// answering after the message (it holds it, and says nothing) when hookd stops is
// cut short once the grace ends, handed back unsent and not counted as an
// attempt: the stop does not wait for the session's own timeout, which go-mail
// would (it reads the context only while it dials).
func TestEmailInHangingSessionAtShutdown(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	relay := smtptest.NewHanging(t)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Tick, o.Timeout, o.ShutdownGrace = 20*time.Millisecond, time.Minute, 100*time.Millisecond
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay.Addr, From: "hookd@hookd.example"}}
	})
	e.emailOrg()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(rctx) }()
	select {
	case <-relay.Held():
	case <-time.After(5 * time.Second):
		t.Fatal("the e-mail did not reach the relay")
	}
	stopped := time.Now()
	cancel()
	select {
	case err := <-ran:
		is.NoErr(err) // Run stops
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s with an e-mail's session hanging (the delivery timeout is a minute)")
	}
	t.Logf("stopped in %s", time.Since(stopped).Round(time.Millisecond))
	emailed := e.deliveries(store.DeliveryFilter{Orcid: orcidA})
	is.Equal(len(emailed), 1)
	is.Equal(emailed[0].StateName(), "pending") // handed back, sent again later
	is.Equal(len(e.attempts(emailed[0].ID)), 0) // not an attempt
	waitFor(t, 5*time.Second, "hookd to close its connection", func() bool { return relay.Sessions() == 0 })
}

// TestNoticeInHangingSessionCutAtStop: a deactivation notice whose relay stops
// answering after the message is cut short at StopBy's cut, however long the
// delivery timeout: Run returns by then, the log says the notice was not sent
// because hookd stopped, and the deactivation is recorded.
func TestNoticeInHangingSessionCutAtStop(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	relay := smtptest.NewHanging(t)
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, orcidB, rv.URL+"/gone")
	is.NoErr(err)
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Tick, o.Timeout = 20*time.Millisecond, time.Minute
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay.Addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, store.Event{Orcid: orcidB})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(rctx) }()
	select {
	case <-relay.Held():
	case <-time.After(5 * time.Second):
		t.Fatal("the notice did not reach the relay")
	}
	stopped := time.Now()
	d.StopBy(stopped.Add(300*time.Millisecond), stopped.Add(time.Second))
	cancel()
	select {
	case err := <-ran:
		is.NoErr(err) // Run stops
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s with a notice's session hanging (the delivery timeout is a minute)")
	}
	took := time.Since(stopped)
	t.Logf("stopped in %s", took.Round(time.Millisecond))
	is.True(took >= 300*time.Millisecond) // the notice had until the cut
	is.True(took < 2*time.Second)
	is.True(strings.Contains(logs.String(), `"msg":"deactivation notice not sent: hookd stopped while it was being sent"`))
	sub, err := e.st.OrcidWebhook(ctx, owner.ID, orcidB, rv.URL+"/gone")
	is.NoErr(err)
	is.True(!sub.Active) // the deactivation is recorded
	waitFor(t, 5*time.Second, "hookd to close its connection", func() bool { return relay.Sessions() == 0 })
}

// TestDeactivationNoticeOwnerWithoutAddress: a webhook whose owner has no e-mail
// address is logged as deactivated with its owner not told, and why: not as told
// by an e-mail that never goes. The relay is not called.
func TestDeactivationNoticeOwnerWithoutAddress(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // a client without a contact address
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, orcidA, rv.URL+"/gone")
	is.NoErr(err)
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // answered 410, deactivated

	var owners []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l struct{ Msg, Owner string }
		is.NoErr(json.Unmarshal([]byte(line), &l))
		if strings.HasPrefix(l.Msg, "webhook deactivated") {
			owners = append(owners, l.Owner)
		}
	}
	is.Equal(owners, []string{"not told: its owner has no e-mail address"}) // one line, saying so
	is.Equal(len(mail.Messages()), 0)
	is.Equal(mail.PeakSessions(), 0) // the relay is not called
}

// TestDeactivationNoticeWebhookRemoved: a webhook removed after its deactivation,
// before its owner's address is read, is logged as deactivated with its owner not
// told because it was removed, and nothing else: it was logged as "its owner's
// address was not read", beside an error line that the subscription was not
// found. No e-mail goes.
func TestDeactivationNoticeWebhookRemoved(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	sub, _, err := e.st.PutOrcidWebhook(ctx, owner.ID, orcidA, rv.URL+"/gone")
	is.NoErr(err)
	dispatch.OnNoticeRead(t, func(int64) {
		is.NoErr(e.st.RemoveSubscription(context.Background(), sub.UID)) // removed meanwhile
	})
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // answered 410, deactivated

	var owners []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l struct{ Level, Msg, Owner string }
		is.NoErr(json.Unmarshal([]byte(line), &l))
		is.True(l.Level != "ERROR") // no error line
		if strings.HasPrefix(l.Msg, "webhook deactivated") {
			owners = append(owners, l.Owner)
		}
	}
	is.Equal(owners, []string{"not told: the webhook was removed"}) // one line, saying so
	is.Equal(len(mail.Messages()), 0)
	is.Equal(mail.PeakSessions(), 0) // the relay is not called
}

// TestDeactivationLinesNameTheDelivery: the lines of a webhook's deactivation,
// written in the background once its owner's address is read (and so maybe after
// other lines), name the delivery whose answer deactivated it beside the webhook:
// the deactivation's line, which is that delivery's own, and the notice's error
// when the relay refuses it. They named the webhook alone, which a second
// deactivation of the same webhook (activated, and failing again) shares.
func TestDeactivationLinesNameTheDelivery(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	relay := dispatch.RefusingSMTP(t, 0, "550 5.1.1 user unknown")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	sub, _, err := e.st.PutOrcidWebhook(ctx, owner.ID, orcidA, rv.URL+"/gone")
	is.NoErr(err)
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay, From: "hookd@hookd.example"}}
	})
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // answered 410, deactivated
	id := e.only().ID

	lines := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l struct {
			Msg, Webhook, Owner string
			Delivery            int64
		}
		is.NoErr(json.Unmarshal([]byte(line), &l))
		switch {
		case l.Msg == "delivery failed", strings.HasPrefix(l.Msg, "webhook deactivated"), l.Msg == "deactivation notice":
			lines[l.Msg]++
			is.Equal(l.Webhook, sub.UID) // the webhook
			is.Equal(l.Delivery, id)     // and the delivery, on each line
		}
	}
	is.Equal(len(lines), 2) // the deactivation's line (the delivery's own) and the refused notice's
}
