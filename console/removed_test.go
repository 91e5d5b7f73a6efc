package console_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// TestRemovedWebhookHistory: a removed webhook's deliveries stay in the console as
// history, as on the command line and in the APIs: listed and shown to whoever saw
// the webhook, marked as a removed webhook's, and never sent again.
func TestRemovedWebhookHistory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	del := "/console/deliveries/" + strconv.FormatInt(e.delA.ID, 10)
	history := "/console/deliveries?webhook=" + e.hookA.UID
	a := e.as(t, "a")
	p := a.post(t, "/console/webhooks/"+e.hookA.UID+"/delete", url.Values{"confirm": {"yes"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("delete: status %d", p.status)
	}

	t.Run("its owner sees the history", func(t *testing.T) {
		is := is.New(t)
		// The delete leads to the history, which the page could only name by an id
		// it no longer showed.
		loc, err := url.Parse(p.location)
		is.NoErr(err)
		is.Equal(loc.Path, "/console/deliveries")
		is.Equal(loc.Query().Get("webhook"), e.hookA.UID)
		after := a.get(t, p.location).body
		is.True(strings.Contains(after, "The webhook is deleted.")) // the flash says so
		is.True(strings.Contains(after, "was removed <time"))       // beside what the history is
		is.True(strings.Contains(after, `href="`+del+`"`))          // and its deliveries
		list := a.get(t, "/console/deliveries")
		is.Equal(list.status, http.StatusOK)
		is.True(strings.Contains(list.body, `href="`+del+`"`))                             // still listed
		is.True(strings.Contains(list.body, `<a href="`+history+`">`))                     // its webhook leads to the history
		is.True(strings.Contains(list.body, `<span class="badge removed">removed</span>`)) // marked

		h := a.get(t, history)
		is.Equal(h.status, http.StatusOK)
		is.True(strings.Contains(h.body, "was removed <time")) // the history says what it is
		is.True(strings.Contains(h.body, `href="`+del+`"`))

		w := a.get(t, "/console/webhooks/"+e.hookA.UID)
		is.Equal(w.status, http.StatusNotFound)                       // the webhook is gone
		is.True(strings.Contains(w.body, "<h1>Webhook removed</h1>")) // and the page says when
		is.True(strings.Contains(w.body, `<a href="`+history+`">`))   // and where its deliveries are

		d := a.get(t, del)
		is.Equal(d.status, http.StatusOK)
		is.True(strings.Contains(d.body, "kept as history until retention purges it")) // marked
		is.True(!strings.Contains(d.body, "Replay this delivery"))                     // offered no replay
	})

	t.Run("a webhook that had no deliveries", func(t *testing.T) {
		is := is.New(t)
		wh, _, err := e.st.CreateWebhook(ctx, e.a.ID, store.WebhookSpec{TargetURL: "https://a.example/other", Auth: store.Auth{Type: store.AuthNone}})
		is.NoErr(err)
		p := a.post(t, "/console/webhooks/"+wh.UID+"/delete", url.Values{"confirm": {"yes"}})
		is.Equal(p.status, http.StatusSeeOther)
		is.True(strings.HasPrefix(p.location, "/console/webhooks?"))                                          // back to the list
		is.True(strings.Contains(a.get(t, p.location).body, "The webhook is deleted. It had no deliveries.")) // nothing to look for
	})

	t.Run("never sent again", func(t *testing.T) {
		is := is.New(t)
		p := a.post(t, del+"/replay", nil)
		is.Equal(p.status, http.StatusConflict)                   // refused
		is.True(strings.Contains(p.body, "cannot be sent again")) // saying why
		p = a.post(t, "/console/deliveries/replay", url.Values{"since": {"24h"}})
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "0 deliveries are due again.")) // the history is left alone
		d, err := e.st.Delivery(ctx, store.DeliveryFilter{ID: e.delA.ID})
		is.NoErr(err)
		is.Equal(d.StateName(), "dead") // as the removal left it
		is.Equal(d.LastError, "not sent: webhook removed")
	})

	t.Run("others do not see it", func(t *testing.T) {
		is := is.New(t)
		for _, who := range []string{"b", "staffA"} {
			u := e.as(t, who)
			is.Equal(u.get(t, del).status, http.StatusNotFound) // as if it did not exist
			w := u.get(t, "/console/webhooks/"+e.hookA.UID)
			is.Equal(w.status, http.StatusNotFound)
			is.True(!strings.Contains(w.body, "Webhook removed")) // not even that it was removed
			h := u.get(t, history)
			is.Equal(h.status, http.StatusBadRequest)
			is.True(besideField(h.body, "f-webhook", "no webhook")) // an unknown webhook to them
			is.True(!strings.Contains(u.get(t, "/console/deliveries").body, `href="`+del+`"`))
		}
		op := e.as(t, "token")
		is.True(strings.Contains(op.get(t, "/console/deliveries").body, `href="`+del+`"`)) // the operator sees everything
	})

	t.Run("a removed client's and a deleted organisation's", func(t *testing.T) {
		is := is.New(t)
		op := e.as(t, "token")
		p := op.post(t, "/console/clients/"+e.b.ID+"/remove", url.Values{"confirm": {"yes"}})
		is.Equal(p.status, http.StatusSeeOther)
		p = op.post(t, "/console/organisations/"+strconv.FormatInt(e.orgB.ID, 10)+"/webhook", url.Values{"url": {"https://b.example/org"}, "enabled": {"on"}})
		is.Equal(p.status, http.StatusSeeOther) // an audit entry about organisation B
		is.NoErr(e.st.DeleteOrganisation(ctx, e.orgB.ID))
		list := op.get(t, "/console/deliveries")
		is.True(strings.Contains(list.body, `a removed client <code class="id">`+e.b.ID+`</code>`))           // named by its id
		is.True(strings.Contains(list.body, "a deleted organisation ("+strconv.FormatInt(e.orgB.ID, 10)+")")) // and by its id
		h := op.get(t, "/console/deliveries?client="+e.b.ID)
		is.Equal(h.status, http.StatusOK) // a removed client's history is found by its id
		is.True(strings.Contains(h.body, `href="/console/deliveries/`+strconv.FormatInt(e.delB.ID, 10)+`"`))

		// An organisation made later with the deleted one's id (as a hookd before
		// schema version 35 gave it): its staff do not see the deleted
		// organisation's history.
		e.clock.Advance(time.Second)
		rw, err := sql.Open("sqlite", "file:"+e.path)
		is.NoErr(err)
		defer rw.Close()
		now := e.clock.Now().UnixMilli()
		_, err = rw.Exec(`INSERT INTO organisations(id, name, tech_contact_email, created_at, updated_at)
			VALUES (?, 'University C', 'it@c.example', ?, ?)`, e.orgB.ID, now, now)
		is.NoErr(err)
		c, err := e.st.Organisation(ctx, e.orgB.ID)
		is.NoErr(err) // the id given again
		staff, err := e.st.CreateOrgClient(ctx, c.ID, store.NewClient{Name: "staff-c", Scopes: []string{store.ScopeWebhook}})
		is.NoErr(err)
		u := e.newUser(t)
		is.Equal(u.signIn(t, staff.ID, staff.Secret).status, http.StatusSeeOther)
		is.True(!strings.Contains(u.get(t, "/console/deliveries").body, e.orgHookB.UID)) // not the old organisation's
		is.True(strings.Contains(u.get(t, "/console/deliveries").body, "No deliveries yet."))
		is.True(!strings.Contains(u.get(t, "/console/audit").body, "organisation.webhook")) // nor its audit entries
		is.True(strings.Contains(op.get(t, "/console/audit").body, "organisation.webhook"))
		is.True(strings.Contains(op.get(t, "/console/deliveries").body, "<td>a deleted organisation ("+strconv.FormatInt(c.ID, 10)+")</td>")) // the history takes no new name
	})
}
