package dispatch_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// TestDeactivationNotice: when a 410 deactivates a webhook, its owner (a client with
// a contact address) gets an e-mail through a real SMTP server.
func TestDeactivationNotice(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := newSMTPServer(t, "", "")
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}, Email: "ops@lab.example"})
	is.NoErr(err) // a client with a contact address
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, orcidA, rv.URL+"/gone")
	is.NoErr(err)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Hub = dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.addr, From: "hookd@hookd.example"}}
	})
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // one call, answered 410

	msgs := mail.messages()
	is.Equal(len(msgs), 1)                                                 // one notice
	is.Equal(msgs[0].to, []string{"ops@lab.example"})                      // to the owner
	is.True(strings.Contains(string(msgs[0].data), "webhook deactivated")) // says what happened
	is.True(strings.Contains(string(msgs[0].data), "410 Gone"))            // and why
	sub, err := e.st.OrcidWebhook(ctx, owner.ID, orcidA, rv.URL+"/gone")
	is.NoErr(err)
	is.True(!sub.Active) // deactivated

	// Reactivating (a new PUT) does not resend what was pending.
	_, _, err = e.st.PutOrcidWebhook(ctx, owner.ID, orcidA, rv.URL+"/gone")
	is.NoErr(err)
	e.clock.Advance(time.Hour)
	is.Equal(e.tick(d), 0) // nothing is sent by itself
}
