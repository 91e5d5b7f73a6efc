package dispatch_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// TestMemoryIsBounded: what the dispatcher remembers per host and per subscription
// (the failure log, the owners told of a deactivation, the callbacks' token
// sources) grows with the hosts and subscriptions it meets, and shrinks again once
// time has passed. (The caps are TestRememberedIsCapped's.)
func TestMemoryIsBounded(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"tok","token_type":"bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokens.Close)
	// webhook(i) is a client_credential webhook for record i on a receiver of its
	// own (a host of its own) answering 410, with an event waiting.
	webhook := func(i int) {
		rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
			w.WriteHeader(http.StatusGone)
			return nil
		})
		_, _, err := e.st.CreateWebhook(ctx, e.client.ID, store.WebhookSpec{TargetURL: rv.URL + "/hook", Orcid: testOrcid(i),
			Auth: store.Auth{Type: store.AuthClientCredential, ClientID: "app", Secret: "app-secret", TokenURL: tokens.URL}})
		is.NoErr(err) // create webhook
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	const hosts = 30
	for i := range hosts {
		webhook(i)
	}
	d := e.dispatcher(nil)
	is.Equal(e.tick(d), hosts) // one call to each host, each answered 410
	failures, told, sources := dispatch.Remembered(d)
	is.Equal(failures, hosts) // the failure log remembers each host
	is.Equal(told, hosts)     // each subscription's owner was told (here: logged, as no e-mail is set up)
	is.Equal(sources, hosts)  // and each subscription has a token source

	e.clock.Advance(2 * time.Hour) // nothing happens for two hours
	webhook(hosts)
	is.Equal(e.tick(d), 1) // then one more host and subscription
	failures, told, sources = dispatch.Remembered(d)
	is.Equal(failures, 1) // the others are forgotten
	is.Equal(told, 1)
	is.Equal(sources, 1)
}
