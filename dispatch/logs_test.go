package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/smtptest"
	"hookd/store"
)

// lockedBuffer is a log destination the dispatcher's goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFailureLogIsRateLimited: twenty failures of one receiver within a minute make
// one log line; the next line, a minute later, says how many were left out. The
// query string of the target, which may hold a credential, is never logged.
func TestFailureLogIsRateLimited(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var logs lockedBuffer
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusServiceUnavailable)
		return nil
	})
	for i := 0; i < 20; i++ {
		e.subscribe(testOrcid(i), rv.URL+"/hook?key=SECRET-IN-QUERY")
	}
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.PerHost = 20
		o.Workers = 20
	})
	var events []store.Event
	for i := 0; i < 20; i++ {
		events = append(events, store.Event{Orcid: testOrcid(i)})
	}
	e.intake(0, events...)
	is.Equal(e.tick(d), 20)                                              // twenty failing calls
	is.Equal(strings.Count(logs.String(), `"msg":"delivery failed"`), 1) // one line for the host
	is.True(!strings.Contains(logs.String(), "SECRET-IN-QUERY"))         // no query string in the log
	var line struct {
		Webhook string `json:"webhook"`
	}
	is.NoErr(json.Unmarshal([]byte(strings.SplitN(logs.String(), "\n", 2)[0]), &line))
	_, err := e.st.Subscription(context.Background(), line.Webhook)
	is.NoErr(err) // the line names the webhook by the id the APIs and the command line show

	is.True(!strings.Contains(logs.String(), `"suppressed"`)) // nothing summarised yet

	e.clock.Advance(2 * time.Minute)                                     // the retries are due, and the minute is over
	is.Equal(e.tick(d), 20)                                              // twenty more failures
	is.Equal(strings.Count(logs.String(), `"msg":"delivery failed"`), 2) // one more line
	is.True(strings.Contains(logs.String(), `"suppressed":19`))          // counting the first minute's others
}

// TestRelayKeyNotLogged: a callback that is another hookd's relay
// (…/relay/{orcid}/{key}, which a hookd in Hub mode registers at the hookd serving
// as its upstream) is logged without its key, a credential that lets whoever holds
// it make that hookd fan an update out: in the line of a failure, and in the line
// of every delivery that hookd dev logs.
func TestRelayKeyNotLogged(t *testing.T) {
	const key = "6dc9ba0ed70fab6ccfd2d1e54de534654cccbde1"
	for _, fail := range []bool{true, false} {
		t.Run(map[bool]string{true: "failed", false: "delivered"}[fail], func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			var logs lockedBuffer
			rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				if fail {
					w.WriteHeader(http.StatusServiceUnavailable)
				} else {
					w.WriteHeader(http.StatusNoContent)
				}
				return nil
			})
			e.subscribe(testOrcid(0), rv.URL+"/hub/relay/"+testOrcid(0)+"/"+key)
			d := e.dispatcher(func(o *dispatch.Options) {
				o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
				o.LogDeliveries = !fail
			})
			e.intake(0, store.Event{Orcid: testOrcid(0)})
			is.Equal(e.tick(d), 1)                                                                                  // one call
			is.True(strings.Contains(logs.String(), `"target":"`+rv.URL+"/hub/relay/"+testOrcid(0)+`/[redacted]"`)) // logged, with its record
			is.True(!strings.Contains(logs.String(), key[:12]))                                                     // without its key
		})
	}
}

// TestDeathLogIsRateLimited: a receiver down past give_up_after makes every one of
// its deliveries die, one after another; they make one line a minute per host, as
// its retries do, and the next says how many were left out.
func TestDeathLogIsRateLimited(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var logs lockedBuffer
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusInternalServerError)
		return nil
	})
	for i := 0; i < 20; i++ {
		e.subscribe(testOrcid(i), rv.URL+"/hook")
	}
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.PerHost, o.Workers = 20, 20
		o.RetryBase, o.RetryMaxDelay, o.GiveUpAfter = time.Minute, time.Minute, time.Minute
	})
	events := func() {
		var evs []store.Event
		for i := 0; i < 20; i++ {
			evs = append(evs, store.Event{Orcid: testOrcid(i)})
		}
		e.intake(0, evs...)
	}
	dead := func() int { return strings.Count(logs.String(), `"state":"dead"`) }
	events()
	is.Equal(e.tick(d), 20) // twenty failing calls
	e.clock.Advance(2 * time.Minute)
	is.Equal(e.tick(d), 20)                                               // their retries, past give_up_after
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "dead"})), 20)  // every one is dead
	is.Equal(dead(), 1)                                                   // in one line for the host
	is.True(strings.Count(logs.String(), `"msg":"delivery failed"`) <= 2) // with at most one of its retries

	events()
	is.Equal(e.tick(d), 20) // twenty new deliveries fail
	e.clock.Advance(2 * time.Minute)
	is.Equal(e.tick(d), 20)                                     // and die
	is.Equal(dead(), 2)                                         // one more line, a minute on
	is.True(strings.Contains(logs.String(), `"suppressed":19`)) // counting the deaths left out
}

// TestPoisonOutcomeDropped: when the loop's transaction keeps failing because of one
// outcome, the third failed turn records the outcomes one at a time, drops (and logs)
// the bad one, and the loop goes on.
func TestPoisonOutcomeDropped(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	rv := newReceiver(t, nil)
	e.subscribe(orcidA, rv.URL+"/a")
	e.subscribe(orcidB, rv.URL+"/b")
	e.intake(0, store.Event{Orcid: orcidA}, store.Event{Orcid: orcidB})
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	n, err := d.Tick(ctx)
	is.NoErr(err)  // tick
	is.Equal(n, 2) // both claimed
	waitFor(t, 5*time.Second, "both outcomes", func() bool { return dispatch.Pending(d) == 2 })
	dispatch.AddOutcome(d, store.Outcome{DeliveryID: 1 << 40, Kind: 42}) // an outcome no transaction can record

	for i := 1; i <= 3; i++ {
		_, err := d.Tick(ctx)
		is.True(err != nil) // the turn's transaction fails
		if i < 3 {
			is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered"})), 0) // and records nothing
		}
	}
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered"})), 2) // the third recorded the good ones alone
	is.True(strings.Contains(logs.String(), "dropping an outcome"))          // and logged the one it dropped
	_, err = d.Tick(ctx)
	is.NoErr(err)                    // the loop goes on
	is.Equal(dispatch.Pending(d), 0) // with nothing left over
}

// logLines parses a JSON log, one record a line.
func logLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if l == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("a log line that is not one JSON record: %q", l)
		}
		lines = append(lines, rec)
	}
	return lines
}

// TestMassDeactivationLogIsBounded: 200 ORCID-style webhooks calling one receiver
// that answers 410 are deactivated within a turn or two; the log has ten of them
// in full, one line each (the delivery's failure and the deactivation's advice
// together; with e-mail configured, the notice that does not go to the owner's
// address again too), and once their minute ends one line sums up the others,
// naming the host, how many, why and how to list them, where it had two or three
// lines for each, enough to make journald drop lines. Every one is deactivated,
// with its reason. A webhook of another host deactivated in the same minute is
// logged in full.
func TestMassDeactivationLogIsBounded(t *testing.T) {
	const n = 200
	for _, withEmail := range []bool{false, true} {
		t.Run(map[bool]string{false: "no e-mail", true: "e-mail"}[withEmail], func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			e := newEnv(t)
			var email dispatch.EmailOptions
			var mail *smtptest.Server
			if withEmail {
				mail = smtptest.NewServer(t, "", "")
				email = dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@hookd.example"}
			}
			owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
			is.NoErr(err)
			gone := func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				w.WriteHeader(http.StatusGone)
				return nil
			}
			rv, other := newReceiver(t, gone), newReceiver(t, gone)
			var evs []store.Event
			for i := range n {
				_, _, err := e.st.PutOrcidWebhook(ctx, owner.ID, testOrcid(i), rv.URL+"/gone/"+testOrcid(i)+"?token=SECRET-IN-QUERY")
				is.NoErr(err)
				evs = append(evs, store.Event{Orcid: testOrcid(i)})
			}
			var logs lockedBuffer
			d := e.dispatcher(func(o *dispatch.Options) {
				o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
				o.Workers, o.PerHost = 32, 32
				o.Hub = dispatch.HubOptions{Email: email}
			})
			e.intake(0, evs...)
			for i := 0; i < 20 && rv.count() < n; i++ {
				e.tick(d)
			}
			is.Equal(rv.count(), n) // every webhook called, answered 410

			// Another host's webhook, deactivated in the same minute.
			otherSub, _, err := e.st.PutOrcidWebhook(ctx, owner.ID, orcidA, other.URL+"/gone")
			is.NoErr(err)
			e.intake(0, store.Event{Orcid: orcidA})
			e.clock.Advance(10 * time.Second)
			is.Equal(e.tick(d), 1)

			// Every one deactivated, with its reason, and listed as such.
			subs, err := e.st.Subscriptions(ctx, store.SubscriptionFilter{ClientID: owner.ID, Status: "deactivated"})
			is.NoErr(err)
			is.Equal(len(subs), n+1) // every one deactivated
			for _, s := range subs {
				is.True(!s.Active)
				is.True(strings.Contains(s.Reason, "410 Gone")) // with its reason
			}

			host := strings.TrimPrefix(rv.URL, "http://")
			full, otherFull, apart := 0, 0, 0
			for _, l := range logLines(t, logs.String()) {
				msg, _ := l["msg"].(string)
				if strings.HasPrefix(msg, "deactivation notice not sent") || l["state"] == "deactivated" && !strings.HasPrefix(msg, "webhook deactivated") {
					apart++
				}
				if strings.HasPrefix(msg, "webhook deactivated") {
					is.True(l["webhook"] != "" && l["delivery"] != nil) // naming the webhook and the delivery
					if l["webhook"] == otherSub.UID {
						otherFull++
					} else {
						full++
					}
				}
			}
			t.Logf("%d lines for %d deactivations of one host", len(logLines(t, logs.String())), n)
			is.Equal(full, 10)                                                            // ten in full
			is.Equal(otherFull, 1)                                                        // the other host's in full, in the same minute
			is.Equal(apart, 0)                                                            // the delivery's failure and the notice not sent are said on the deactivation's line
			is.True(!strings.Contains(logs.String(), `"msg":"more webhooks deactivated`)) // the minute is not over
			is.True(len(logLines(t, logs.String())) <= 11)                                // nor any other line

			e.clock.Advance(time.Minute) // the minute is over
			e.tick(d)
			var sums []map[string]any
			for _, l := range logLines(t, logs.String()) {
				if strings.HasPrefix(l["msg"].(string), "more webhooks deactivated") {
					sums = append(sums, l)
				}
			}
			is.Equal(len(sums), 1)                                                                         // one line sums up the others
			is.Equal(sums[0]["host"], host)                                                                // naming the host
			is.Equal(sums[0]["more"], float64(n-10))                                                       // how many
			is.Equal(sums[0]["reasons"], "410 Gone")                                                       // why
			is.True(strings.Contains(sums[0]["list"].(string), "hookd webhooks list -status deactivated")) // and how to list them
			is.True(len(logLines(t, logs.String())) <= 12)
			is.True(!strings.Contains(logs.String(), "SECRET-IN-QUERY")) // no credential of a URL's

			e.clock.Advance(time.Minute)
			e.tick(d)
			is.Equal(len(logLines(t, logs.String())), 12) // summed up once
			if withEmail {
				is.Equal(len(mail.Messages()), 1) // the owner's address told once
			}
		})
	}
}

// TestDeactivationsLeftOutSummedUpAtStop: the deactivations left out of the log
// in a minute that has not ended when hookd stops are summed up before Run
// returns, not lost with the process.
func TestDeactivationsLeftOutSummedUpAtStop(t *testing.T) {
	const n = 25
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	var evs []store.Event
	for i := range n {
		e.subscribe(testOrcid(i), rv.URL+"/gone")
		evs = append(evs, store.Event{Orcid: testOrcid(i)})
	}
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.Tick = 20 * time.Millisecond
	})
	e.intake(0, evs...)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(rctx) }()
	waitFor(t, 10*time.Second, "every webhook deactivated", func() bool {
		subs, err := e.st.Subscriptions(ctx, store.SubscriptionFilter{ClientID: e.client.ID, Status: "deactivated"})
		return err == nil && len(subs) == n
	})
	waitFor(t, 5*time.Second, "ten lines", func() bool { return strings.Count(logs.String(), `"msg":"webhook deactivated`) == 10 })
	is.True(!strings.Contains(logs.String(), `"msg":"more webhooks deactivated`)) // the minute has not ended
	cancel()
	is.NoErr(<-ran)
	is.Equal(strings.Count(logs.String(), `"msg":"more webhooks deactivated`), 1) // summed up as the loop stops
	is.True(strings.Contains(logs.String(), fmt.Sprintf(`"more":%d`, n-10)))
}
