package main

import (
	"context"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// TestActivatePastFanOutCapCLI: hookd webhooks activate holds a client's webhook
// to the caps of the configuration it is given (here one webhook per record), as
// the daemon does, and says which cap and what to do; the webhook stays
// deactivated.
func TestActivatePastFanOutCapCLI(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "[delivery]\nmax_webhooks_per_record = 1\n")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "member", "-id", "member", "-secret", "member-secret")
	is.NoErr(err)
	ctx := context.Background()
	st := openTestStore(t, cfg)
	first, _, err := st.PutOrcidWebhook(ctx, "member", "0000-0002-7253-3645", "https://example.org/1")
	is.NoErr(err)
	_, err = st.SetSubscriptionActive(ctx, first.UID, false, store.ReasonOperator)
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, "member", "0000-0002-7253-3645", "https://example.org/2")
	is.NoErr(err) // the place the first left
	st.Close()

	_, err = runCmd(t, "webhooks", "activate", "-config", cfg, first.UID)
	is.True(err != nil) // refused
	is.Equal(err.Error(), "webhooks activate: client member has 1 active webhook for ORCID iD 0000-0002-7253-3645, and delivery.max_webhooks_per_record allows 1: "+
		"nothing was changed; delete or deactivate one of them first, or raise delivery.max_webhooks_per_record in hookd's configuration")
	out, err := runCmd(t, "webhooks", "show", "-config", cfg, first.UID)
	is.NoErr(err)
	is.True(strings.Contains(out, "deactivated")) // as it was
}
