package console_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// TestActivatePastFanOutCap: the console's activate button of a client's webhook
// for every record, when the client has as many active ones as
// delivery.max_every_record_webhooks allows (100 by default), shows the refusal,
// naming the count and the key, to its owner and to the operator, and the webhook
// stays deactivated.
func TestActivatePastFanOutCap(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.st.SetSubscriptionActive(ctx, e.hookA.UID, false, "")
	is.NoErr(err) // A's webhook for every record, deactivated by its owner
	for i := range store.DefaultMaxEveryRecordWebhooks {
		_, _, err := e.st.CreateWebhook(ctx, e.a.ID, store.WebhookSpec{TargetURL: fmt.Sprintf("https://a.example/all/%d", i), Auth: store.Auth{Type: store.AuthNone}})
		is.NoErr(err) // up to the cap
	}
	self := "/console/webhooks/" + e.hookA.UID
	for _, who := range []string{"a", "token"} {
		p := e.as(t, who).post(t, self+"/activate", nil)
		is.Equal(p.status, http.StatusBadRequest)                                                                                        // refused, on the webhook's page
		is.True(strings.Contains(p.body, "has 100 active webhooks for every record, and delivery.max_every_record_webhooks allows 100")) // why
	}
	w, err := e.st.Subscription(ctx, e.hookA.UID)
	is.NoErr(err)
	is.True(!w.Active) // still deactivated
}
