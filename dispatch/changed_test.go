package dispatch_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// TestChangedWebhookNotCalledWithWhatItWas: a delivery claimed before its webhook
// changed (queued for its host while the change committed) does not go out as the
// webhook was: deactivated or removed, it is not sent at all; with a new URL, it
// goes to the new one.
func TestChangedWebhookNotCalledWithWhatItWas(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		change func(e *testEnv, wh store.Subscription) error
		after  string // the delivery's state once the dispatcher has seen it again
		path   string // the path the receiver got, if any
	}{
		{"deactivated", func(e *testEnv, wh store.Subscription) error {
			_, err := e.st.SetSubscriptionActive(ctx, wh.UID, false, "endpoint retired")
			return err
		}, "dead", ""},
		{"removed", func(e *testEnv, wh store.Subscription) error {
			return e.st.RemoveSubscription(ctx, wh.UID)
		}, "dead", ""},
		{"moved", func(e *testEnv, wh store.Subscription) error {
			target := strings.Replace(wh.Target, "/old", "/new", 1)
			_, err := e.st.UpdateWebhook(ctx, e.client.ID, wh.UID, store.WebhookPatch{TargetURL: &target})
			return err
		}, "delivered", "/new"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			recv := newReceiver(t, nil)
			d := e.dispatcher(nil)
			wh, _, err := e.st.CreateWebhook(ctx, e.client.ID, store.WebhookSpec{TargetURL: recv.URL + "/old", Auth: store.Auth{Type: store.AuthNone}})
			is.NoErr(err)
			e.intake(0, store.Event{Orcid: testOrcid(1)})
			claimed, err := e.st.Exchange(ctx, nil, 10, time.Minute)
			is.NoErr(err)
			is.Equal(len(claimed), 1) // claimed, and waiting for its host

			is.NoErr(tt.change(e, wh))
			o := dispatch.Deliver(ctx, d, claimed[0])
			is.Equal(o.Kind, store.OutcomeReleased) // handed back unsent
			is.Equal(recv.count(), 0)               // nothing went out as the webhook was

			_, err = e.st.Exchange(ctx, []store.Outcome{o}, 0, time.Minute)
			is.NoErr(err)
			for range 5 {
				e.tick(d)
			}
			ds := e.deliveries(store.DeliveryFilter{})
			is.Equal(len(ds), 1)
			is.Equal(ds[0].StateName(), tt.after)
			is.Equal(ds[0].Attempts, map[string]int{"dead": 0, "delivered": 1}[tt.after]) // the handed-back call was no attempt
			if tt.path == "" {
				is.Equal(recv.count(), 0) // never sent
			} else {
				reqs := recv.requests()
				is.Equal(len(reqs), 1)
				is.Equal(reqs[0].path, tt.path) // to the webhook as it is now
			}
		})
	}
}

// TestGoneFromAnAddressLeftDuringTheCall: a 410 from the URL a webhook had when the
// call went out, answered after the owner moved the webhook to a new URL, does not
// deactivate it: the new address never said it was gone. The delivery is retried
// there instead.
func TestGoneFromAnAddressLeftDuringTheCall(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	var wh store.Subscription
	recv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/old" {
			// The owner moves the webhook while the old endpoint is answering.
			target := strings.Replace(wh.Target, "/old", "/new", 1)
			if _, err := e.st.UpdateWebhook(ctx, e.client.ID, wh.UID, store.WebhookPatch{TargetURL: &target}); err != nil {
				return err
			}
			w.WriteHeader(http.StatusGone)
			return nil
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	var err error
	wh, _, err = e.st.CreateWebhook(ctx, e.client.ID, store.WebhookSpec{TargetURL: recv.URL + "/old", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // create webhook
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	e.intake(0, store.Event{Orcid: testOrcid(1)})
	is.Equal(e.tick(d), 1) // the old address answers 410, after the move committed
	var line struct {
		Msg     string `json:"msg"`
		State   string `json:"state"`
		RetryIn any    `json:"retry_in"`
		Err     string `json:"err"`
	}
	is.NoErr(json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line)) // one line
	is.Equal(line.Msg, "delivery failed")
	is.Equal(line.State, "")                               // not said to be deactivated
	is.True(line.RetryIn != "")                            // but to be retried
	is.True(strings.Contains(line.Err, "not deactivated")) // in the words of its attempt
	reqs := recv.requests()
	is.Equal(len(reqs), 1)
	is.NoErr(reqs[0].verr) // the move committed during the call

	got, err := e.st.Webhook(ctx, e.client.ID, wh.UID)
	is.NoErr(err)            // get webhook
	is.True(got.Active)      // not deactivated for the address it left
	is.Equal(got.Reason, "") // and no reason given
	row := e.only()
	is.Equal(row.StateName(), "failed") // the delivery waits for its retry
	as := e.attempts(row.ID)
	is.Equal(len(as), 1)
	is.Equal(as[0].Status, 410)                                         // the attempt logged as it was answered
	is.True(!strings.Contains(as[0].Error, "subscription deactivated")) // without saying it deactivated anything
	is.True(strings.Contains(as[0].Error, recv.URL+"/old"))             // naming the address that answered

	e.clock.Advance(time.Minute)
	for i := 0; i < 5 && e.only().StateName() != "delivered"; i++ {
		e.tick(d)
	}
	is.Equal(e.only().StateName(), "delivered") // delivered at the new address
	reqs = recv.requests()
	is.Equal(reqs[len(reqs)-1].path, "/new")
}
