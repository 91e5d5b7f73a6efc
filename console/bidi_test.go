package console_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// TestDirectionControlsShownEscaped: a direction control (U+202E, right-to-left
// override) that a client put in its webhook's URL, or organisation staff in the
// name of a members file, would turn around the text after it on the operator's
// pages: the rest of the webhooks list's cell (the description), the sentence about
// a delivery, the audit log's entry of the import (its counts). Each is shown as an
// escape instead, as the inbox and a receiver's answers are.
func TestDirectionControlsShownEscaped(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	const rlo = "\u202e"
	hook, _, err := e.st.CreateWebhook(ctx, e.a.ID, store.WebhookSpec{TargetURL: "https://a.example/" + rlo + "elif", Description: "nightly sync",
		Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	id, err := e.st.SendTestEvent(ctx, hook.UID, "")
	is.NoErr(err)

	staff := e.as(t, "staffA")
	p := staff.upload(t, "/console/organisations/"+strconv.FormatInt(e.orgA.ID, 10)+"/members/import", nil, "file", "members"+rlo+"vsc.csv", "orcid\n"+memberA+"\n")
	is.Equal(p.status, http.StatusOK)
	is.True(strings.Contains(p.body, `<code>members\u202evsc.csv</code>: 0 members added, 0 updated, 1 unchanged`)) // the report names the file escaped

	op := e.as(t, "admin")
	for _, path := range []string{"/console/webhooks", "/console/webhooks/" + hook.UID, "/console/deliveries", "/console/deliveries/" + strconv.FormatInt(id, 10), "/console/audit"} {
		p := op.get(t, path)
		is.Equal(p.status, http.StatusOK)
		is.True(!strings.Contains(p.body, rlo)) // no direction control on the page
	}
	is.True(strings.Contains(op.get(t, "/console/webhooks").body, `https://a.example/\u202eelif`))                                   // the URL, escaped
	is.True(strings.Contains(op.get(t, "/console/audit").body, `members\u202evsc.csv: 0 added, 0 updated, 1 unchanged, 0 rejected`)) // the import's entry, escaped
}
