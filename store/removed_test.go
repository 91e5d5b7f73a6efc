package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

const (
	histOrcid    = "0000-0002-7253-3645"
	histCallback = "https://example.org/orcid-style"
)

// history is a store with a client that has an ORCID-style registration and a
// platform webhook, and an organisation whose webhook covers the same record; one
// event made a delivery for each, and each delivery has failed once.
type history struct {
	st       *store.Store
	client   store.Credentials
	org      store.Organisation
	orcidUID string // the client's ORCID-style registration
	platUID  string // the client's platform webhook
	hubUID   string // the organisation's webhook
}

func newHistory(t *testing.T) *history {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	h := &history{st: newStore(t)}
	var err error
	h.client, err = h.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	reg, _, err := h.st.PutOrcidWebhook(ctx, h.client.ID, histOrcid, histCallback)
	is.NoErr(err)
	h.orcidUID = reg.UID
	plat, _, err := h.st.CreateWebhook(ctx, h.client.ID, store.WebhookSpec{TargetURL: "https://example.org/platform", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	h.platUID = plat.UID
	h.org, err = h.st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	_, _, err = h.st.SetHubSettings(ctx, h.org.ID, store.HubSettings{Enabled: true, URL: "https://example.org/hub"})
	is.NoErr(err)
	_, err = h.st.PutMember(ctx, h.org.ID, histOrcid, store.MemberInfo{}, 0)
	is.NoErr(err) // a member (its CREATED goes to the organisation's webhook)
	subs, err := h.st.Subscriptions(ctx, store.SubscriptionFilter{OrgID: h.org.ID, Format: store.FormatHub})
	is.NoErr(err)
	h.hubUID = subs[0].UID
	_, err = h.st.Intake(ctx, "", "", []store.Event{{Orcid: histOrcid}}, 0)
	is.NoErr(err)
	claimed, err := h.st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 3) // one delivery per subscription
	var failed []store.Outcome
	for _, c := range claimed {
		failed = append(failed, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeRetry,
			Attempt: c.Attempt, StartedAt: h.st.Now(), Status: 500, Error: "HTTP 500", RetryAt: h.st.Now().Add(time.Hour)})
	}
	_, err = h.st.Exchange(ctx, failed, 0, 0)
	is.NoErr(err) // each failed once
	return h
}

// remover is a way to remove subscriptions, and which of a history's it removes.
type remover struct {
	name    string
	remove  func(h *history) error
	removed func(h *history) []string // the uids removed
}

// removals are the paths that remove subscriptions.
func removals(ctx context.Context) []remover {
	return []remover{
		{"ORCID DELETE by its client", func(h *history) error {
			return h.st.DeleteOrcidWebhook(ctx, h.client.ID, histOrcid, histCallback)
		}, func(h *history) []string { return []string{h.orcidUID} }},
		{"platform DELETE by its client", func(h *history) error {
			return h.st.DeleteWebhook(ctx, h.client.ID, h.platUID)
		}, func(h *history) []string { return []string{h.platUID} }},
		{"an operator's remove", func(h *history) error {
			return h.st.RemoveSubscription(ctx, h.orcidUID)
		}, func(h *history) []string { return []string{h.orcidUID} }},
		{"the client's removal", func(h *history) error {
			return h.st.RemoveClient(ctx, h.client.ID)
		}, func(h *history) []string { return []string{h.orcidUID, h.platUID} }},
		{"the organisation's deletion", func(h *history) error {
			return h.st.DeleteOrganisation(ctx, h.org.ID)
		}, func(h *history) []string { return []string{h.hubUID} }},
		{"the organisation's settings deleted", func(h *history) error {
			return h.st.DeleteHubSettings(ctx, h.org.ID)
		}, func(h *history) []string { return []string{h.hubUID} }},
	}
}

// TestRemovalKeepsHistory is the rule "history outlives a registration" on every
// path that removes a subscription: its deliveries and their attempts stay, marked
// as a removed webhook's, the waiting ones dead, never replayed, listed by webhook,
// client and organisation, until retention purges them and forgets the webhook.
func TestRemovalKeepsHistory(t *testing.T) {
	ctx := context.Background()
	for _, tt := range removals(ctx) {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			h := newHistory(t)
			before, err := h.st.Deliveries(ctx, store.DeliveryFilter{})
			is.NoErr(err)
			is.NoErr(tt.remove(h)) // remove
			after, err := h.st.Deliveries(ctx, store.DeliveryFilter{})
			is.NoErr(err)
			is.Equal(len(after), len(before)) // no delivery went with it
			for _, uid := range tt.removed(h) {
				_, err := h.st.Subscription(ctx, uid)
				is.True(errors.Is(err, store.ErrNotFound)) // the webhook is gone
				ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Webhook: uid})
				is.NoErr(err)        // its deliveries are listed by its id
				is.Equal(len(ds), 1) // all of them
				d := ds[0]
				is.True(d.RemovedAt.Equal(h.st.Now()))             // marked as a removed webhook's
				is.Equal(d.SubscriptionID, int64(0))               // with no live subscription
				is.Equal(d.StateName(), "dead")                    // the waiting delivery will never go out
				is.Equal(d.LastError, "not sent: webhook removed") // and says why
				log, err := h.st.Attempts(ctx, d.ID)
				is.NoErr(err)
				is.Equal(len(log), 1) // its attempt stays
				if d.ClientID != "" {
					byClient, err := h.st.Deliveries(ctx, store.DeliveryFilter{ClientID: d.ClientID, Webhook: uid})
					is.NoErr(err)
					is.Equal(len(byClient), 1) // listed for its client, even a removed one
				}
				if d.OrgID != 0 {
					byOrg, err := h.st.Deliveries(ctx, store.DeliveryFilter{OrgID: d.OrgID, Webhook: uid})
					is.NoErr(err)
					is.Equal(len(byOrg), 1) // listed for its organisation, even a deleted one
				}
				_, err = h.st.Replay(ctx, store.DeliveryFilter{ID: d.ID})
				is.True(errors.Is(err, store.ErrConflict)) // a removed webhook's delivery is not sent again
				res, err := h.st.Replay(ctx, store.DeliveryFilter{Since: time.Unix(0, 0)})
				is.NoErr(err)
				is.True(res.Replayed <= len(after)-len(tt.removed(h))) // nor in a bulk replay
			}

			// Retention: nothing before it is due, everything after it.
			n, err := h.st.PurgeRemoved(ctx, h.st.Now(), 100)
			is.NoErr(err)
			is.Equal(n, 0) // kept until retention
			n, err = h.st.PurgeRemoved(ctx, h.st.Now().Add(time.Millisecond), 100)
			is.NoErr(err)
			is.Equal(n, len(tt.removed(h))) // then purged
			for _, uid := range tt.removed(h) {
				_, err := h.st.Deliveries(ctx, store.DeliveryFilter{Webhook: uid})
				is.True(errors.Is(err, store.ErrInvalid)) // and the removed webhook forgotten
			}
		})
	}
}

// TestRemovedInFlight: a delivery in flight when its subscription is removed ends
// delivered or dead when its outcome comes, never pending again.
func TestRemovedInFlight(t *testing.T) {
	for _, tt := range []struct {
		kind  store.OutcomeKind
		state string
	}{
		{store.OutcomeDelivered, "delivered"},
		{store.OutcomeRetry, "dead"},
		{store.OutcomeReleased, "dead"},
		{store.OutcomeGone, "dead"},
	} {
		t.Run(tt.kind.String(), func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			st := newStore(t)
			c, err := st.CreateClient(ctx, store.NewClient{Name: "c", Scopes: []string{store.ScopeWebhook}})
			is.NoErr(err)
			sub, _, err := st.PutOrcidWebhook(ctx, c.ID, histOrcid, histCallback)
			is.NoErr(err)
			_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: histOrcid}}, 0)
			is.NoErr(err)
			claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
			is.NoErr(err)
			is.Equal(len(claimed), 1) // in flight
			is.NoErr(st.RemoveSubscription(ctx, sub.UID))
			// A new subscription may take the removed one's row id: the outcome must not touch it.
			other, _, err := st.PutOrcidWebhook(ctx, c.ID, histOrcid, histCallback+"/2")
			is.NoErr(err)
			_, err = st.Exchange(ctx, []store.Outcome{{DeliveryID: claimed[0].ID, SubscriptionID: claimed[0].Target.SubscriptionID,
				Kind: tt.kind, Attempt: 1, StartedAt: st.Now(), Status: 500, RetryAt: st.Now()}}, 10, time.Minute)
			is.NoErr(err)
			d, err := st.Delivery(ctx, store.DeliveryFilter{ID: claimed[0].ID})
			is.NoErr(err)
			is.Equal(d.StateName(), tt.state) // finished, not pending again
			is.True(!d.RemovedAt.IsZero())    // as a removed webhook's
			got, err := st.Subscription(ctx, other.UID)
			is.NoErr(err)
			is.True(got.Active)                // the new subscription was not deactivated
			is.True(got.FailingSince.IsZero()) // nor marked failing
		})
	}
}

// TestFilterValuesChecked: every value of a delivery or webhook filter is checked,
// and one that names nothing is an error naming the field, never "everything".
func TestFilterValuesChecked(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t)
	since := h.st.Now().Add(-time.Hour)
	for _, tt := range []struct {
		name  string
		f     store.DeliveryFilter
		field string
	}{
		{"unknown state", store.DeliveryFilter{State: "garbage"}, "state"},
		{"malformed iD", store.DeliveryFilter{Orcid: "0000-0002-7253-3646"}, "orcid"},
		{"unknown webhook", store.DeliveryFilter{Webhook: "nope"}, "webhook"},
		{"another client's webhook", store.DeliveryFilter{ClientID: "APP-NOBODY", Webhook: h.orcidUID}, "client"},
		{"unknown client", store.DeliveryFilter{ClientID: "APP-NOBODY"}, "client"},
		{"unknown organisation", store.DeliveryFilter{OrgID: 999}, "org"},
		{"until before since", store.DeliveryFilter{Since: since, Until: since}, "until"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			_, err := h.st.Deliveries(ctx, tt.f)
			var e *store.Error
			is.True(errors.As(err, &e))     // refused
			is.Equal(e.Code, store.Invalid) // as bad input
			is.Equal(e.Field, tt.field)     // naming the field
		})
	}
	for _, tt := range []struct {
		name  string
		f     store.SubscriptionFilter
		field string
	}{
		{"unknown format", store.SubscriptionFilter{Format: "garbage"}, "format"},
		{"unknown status", store.SubscriptionFilter{Status: "garbage"}, "status"},
		{"malformed iD", store.SubscriptionFilter{Orcid: "x"}, "orcid"},
		{"unknown client", store.SubscriptionFilter{ClientID: "APP-NOBODY"}, "client"},
		{"unknown organisation", store.SubscriptionFilter{OrgID: 999}, "org"},
	} {
		t.Run("webhooks: "+tt.name, func(t *testing.T) {
			is := is.New(t)
			_, err := h.st.Subscriptions(ctx, tt.f)
			var e *store.Error
			is.True(errors.As(err, &e)) // refused
			is.Equal(e.Field, tt.field) // naming the field
		})
	}
	t.Run("known values narrow the list", func(t *testing.T) {
		is := is.New(t)
		for _, f := range []store.DeliveryFilter{
			{Webhook: h.orcidUID}, {ClientID: h.client.ID, State: "failed", Orcid: histOrcid}, {OrgID: h.org.ID, Since: since},
		} {
			ds, err := h.st.Deliveries(ctx, f)
			is.NoErr(err)
			is.True(len(ds) >= 1 && len(ds) < 3) // some, not all
		}
		ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Until: since})
		is.NoErr(err)
		is.Equal(len(ds), 0) // nothing before the events
		subs, err := h.st.Subscriptions(ctx, store.SubscriptionFilter{Format: store.FormatStandard, Status: "active"})
		is.NoErr(err)
		is.Equal(len(subs), 1) // the platform webhook
	})
}

// TestReplaySaysWhy: a replay of one delivery that cannot go says why and what to
// do; a bulk replay leaves deactivated webhooks' deliveries alone and counts them.
func TestReplaySaysWhy(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	h := newHistory(t)
	ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Webhook: h.platUID})
	is.NoErr(err)
	plat := ds[0]

	_, err = h.st.Replay(ctx, store.DeliveryFilter{ID: 9999})
	is.True(errors.Is(err, store.ErrNotFound)) // no such delivery
	other, err := h.st.CreateClient(ctx, store.NewClient{Name: "other", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, err = h.st.Replay(ctx, store.DeliveryFilter{ID: plat.ID, ClientID: other.ID})
	is.True(errors.Is(err, store.ErrNotFound)) // another client's delivery is not found
	_, err = h.st.Replay(ctx, store.DeliveryFilter{})
	is.True(errors.Is(err, store.ErrInvalid)) // a bulk replay needs since

	_, err = h.st.SetSubscriptionActive(ctx, h.platUID, false, store.ReasonOperator)
	is.NoErr(err) // an operator deactivates the platform webhook
	_, err = h.st.Replay(ctx, store.DeliveryFilter{ID: plat.ID})
	is.True(errors.Is(err, store.ErrDeactivated)) // says it is deactivated
	var e *store.Error
	is.True(errors.As(err, &e))
	is.Equal(e.Value, h.platUID) // naming the webhook to activate
	res, err := h.st.Replay(ctx, store.DeliveryFilter{Since: time.Unix(0, 0)})
	is.NoErr(err)
	is.Equal(res.Replayed, 2)    // the other two
	is.Equal(res.Deactivated, 1) // and counts the one left alone

	claimed, err := h.st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 2) // the replayed ones are due now
	is.Equal(claimed[0].Attempt, 2)
	_, err = h.st.Replay(ctx, store.DeliveryFilter{ID: claimed[0].ID})
	is.True(errors.Is(err, store.ErrConflict)) // one in flight waits for its outcome
}

// TestVisibility: what a principal sees of deliveries, webhooks and the audit log is
// one filter field (Visible): a client its own, an organisation's staff the
// organisation's and their own, removed webhooks' history included, and never what
// a deleted organisation or removed client had before one with the same id was made.
func TestVisibility(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	h := newHistory(t)
	advance := movable(h.st)
	staff, err := h.st.CreateOrgClient(ctx, h.org.ID, store.NewClient{Name: "staff", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	staffHook, _, err := h.st.CreateWebhook(ctx, staff.ID, store.WebhookSpec{TargetURL: "https://example.org/staff", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	_, err = h.st.SendTestEvent(ctx, staffHook.UID, "")
	is.NoErr(err) // a delivery of the staff client's own webhook
	is.NoErr(h.st.RemoveSubscription(ctx, h.orcidUID))
	is.NoErr(h.st.Audit(ctx, store.AuditEntry{Actor: store.ActorAdminToken, Via: store.ViaAPI, Action: "organisation.update", OrgID: h.org.ID}))

	webhooks := func(v store.Visibility) []string {
		var out []string
		ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Visible: v})
		is.NoErr(err)
		for _, d := range ds {
			out = append(out, d.SubscriptionUID)
		}
		return out
	}
	client := store.Visibility{ClientID: h.client.ID}
	org := store.Visibility{ClientID: staff.ID, OrgID: h.org.ID}
	is.Equal(webhooks(client), []string{h.platUID, h.orcidUID}) // its own, the removed one's history too
	is.Equal(webhooks(org), []string{staffHook.UID, h.hubUID})  // the organisation's and the staff client's own
	is.Equal(len(webhooks(store.Visibility{})), 4)              // an operator: all
	_, err = h.st.Deliveries(ctx, store.DeliveryFilter{Visible: org, Webhook: h.platUID})
	is.True(errors.Is(err, store.ErrInvalid)) // another's webhook is unknown
	ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Visible: client, ClientID: "owner"})
	is.NoErr(err) // a client by name, as the command line takes it
	is.Equal(len(ds), 2)
	is.Equal(ds[0].ClientName, "owner") // with its name
	subs, err := h.st.Subscriptions(ctx, store.SubscriptionFilter{Visible: org})
	is.NoErr(err)
	is.Equal(len(subs), 2)           // the organisation's and the staff's
	is.Equal(subs[0].OrgName, "Uni") // with the owner's name
	entries, err := h.st.AuditLog(ctx, store.AuditQuery{Visible: org})
	is.NoErr(err)
	is.Equal(len(entries), 1) // the organisation's entry

	// The organisation is deleted and another one takes its id (as a hookd before
	// schema version 35 gave it): its staff see none of what the deleted one had.
	is.NoErr(h.st.DeleteOrganisation(ctx, h.org.ID))
	advance(time.Second)
	again, err := store.CreateOrganisationWithID(ctx, h.st, h.org.ID, "Again")
	is.NoErr(err)
	is.Equal(again.ID, h.org.ID) // the same id
	newStaff, err := h.st.CreateOrgClient(ctx, again.ID, store.NewClient{Name: "staff2", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	is.Equal(len(webhooks(store.Visibility{ClientID: newStaff.ID, OrgID: again.ID})), 0) // no history of the deleted one
	entries, err = h.st.AuditLog(ctx, store.AuditQuery{Visible: store.Visibility{ClientID: newStaff.ID, OrgID: again.ID}})
	is.NoErr(err)
	is.Equal(len(entries), 0) // nor its audit entries
	ds, err = h.st.Deliveries(ctx, store.DeliveryFilter{OrgID: again.ID})
	is.NoErr(err)
	is.Equal(len(ds), 0) // nor when an operator asks for the new one's
	ds, err = h.st.Deliveries(ctx, store.DeliveryFilter{Webhook: h.hubUID})
	is.NoErr(err)
	is.Equal(ds[0].OrgName, "") // and the history does not take the new one's name
	is.Equal(ds[0].OrgID, h.org.ID)
}

// TestDeleteOrganisationKeepsStaffHistory: deleting an organisation deletes its
// staff clients (a trigger of the schema), and what they registered goes first
// through the removal that keeps history: the deletion succeeds, and the staff
// client's webhook's deliveries and attempts stay as a removed webhook's history.
func TestDeleteOrganisationKeepsStaffHistory(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	h := newHistory(t)
	staff, err := h.st.CreateOrgClient(ctx, h.org.ID, store.NewClient{Name: "staff", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	hook, _, err := h.st.CreateWebhook(ctx, staff.ID, store.WebhookSpec{TargetURL: "https://example.org/staff", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	id, err := h.st.SendTestEvent(ctx, hook.UID, "")
	is.NoErr(err)
	claimed, err := h.st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1) // the staff webhook's delivery, in flight
	_, err = h.st.Exchange(ctx, []store.Outcome{{DeliveryID: id, SubscriptionID: hook.ID, Kind: store.OutcomeRetry, Attempt: 1,
		StartedAt: h.st.Now(), Status: 503, Error: "HTTP 503", RetryAt: h.st.Now().Add(time.Hour)}}, 0, 0)
	is.NoErr(err) // tried once, waiting for a retry

	is.NoErr(h.st.DeleteOrganisation(ctx, h.org.ID)) // succeeds
	_, err = h.st.Client(ctx, staff.ID)
	is.True(errors.Is(err, store.ErrNotFound)) // the staff client went with the organisation
	_, err = h.st.Subscription(ctx, hook.UID)
	is.True(errors.Is(err, store.ErrNotFound)) // and its webhook
	ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Webhook: hook.UID})
	is.NoErr(err)        // whose deliveries are listed by its id
	is.Equal(len(ds), 1) // all of them
	d := ds[0]
	is.Equal(d.ID, id)
	is.True(!d.RemovedAt.IsZero()) // as a removed webhook's history
	is.Equal(d.ClientID, staff.ID) // of the removed client
	is.Equal(d.StateName(), "dead")
	is.Equal(d.LastError, "not sent: webhook removed")
	log, err := h.st.Attempts(ctx, id)
	is.NoErr(err)
	is.Equal(len(log), 1) // with its attempt
	is.Equal(log[0].Status, 503)
	byClient, err := h.st.Deliveries(ctx, store.DeliveryFilter{ClientID: staff.ID})
	is.NoErr(err)
	is.Equal(len(byClient), 1) // found by the removed client's id
	_, err = h.st.Replay(ctx, store.DeliveryFilter{ID: id})
	is.True(errors.Is(err, store.ErrConflict)) // never sent again
}

// TestRemovedForgottenWithLastDelivery: a removed webhook is forgotten when its last
// delivery goes, whichever purge takes it (retention of delivered rows, or of a
// removed webhook's), and not before.
func TestRemovedForgottenWithLastDelivery(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "c", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	// delivered registers a webhook calling callback and delivers one event to it.
	delivered := func(callback string) store.Subscription {
		sub, _, err := st.PutOrcidWebhook(ctx, c.ID, histOrcid, callback)
		is.NoErr(err)
		_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: histOrcid}}, 0)
		is.NoErr(err)
		claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 1)
		_, err = st.Exchange(ctx, []store.Outcome{{DeliveryID: claimed[0].ID, SubscriptionID: sub.ID,
			Kind: store.OutcomeDelivered, Attempt: 1, StartedAt: st.Now(), Status: 204}}, 0, time.Minute)
		is.NoErr(err)
		return sub
	}
	known := func(uid string) bool {
		_, err := st.Deliveries(ctx, store.DeliveryFilter{Webhook: uid})
		is.True(err == nil || errors.Is(err, store.ErrInvalid))
		return err == nil
	}

	sub := delivered(histCallback) // one delivered
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: histOrcid}}, time.Hour)
	is.NoErr(err) // and one waiting
	is.NoErr(st.RemoveSubscription(ctx, sub.UID))
	is.True(known(sub.UID)) // its history is kept
	later := st.Now().Add(time.Millisecond)
	n, _, err := st.Purge(ctx, store.StateDelivered, later, 100)
	is.NoErr(err)
	is.Equal(n, 1)          // the delivered one goes with everyone's
	is.True(known(sub.UID)) // the other (now dead) still holds the webhook
	n, err = st.PurgeRemoved(ctx, later, 100)
	is.NoErr(err)
	is.Equal(n, 1)           // then the dead one
	is.True(!known(sub.UID)) // and the webhook with it

	// The same when the last one goes with everyone's delivered rows, in a process
	// whose first PurgeRemoved has already looked at every removed webhook.
	sub = delivered(histCallback + "/2")
	is.NoErr(st.RemoveSubscription(ctx, sub.UID))
	is.True(known(sub.UID))
	n, _, err = st.Purge(ctx, store.StateDelivered, st.Now().Add(time.Millisecond), 100)
	is.NoErr(err)
	is.Equal(n, 1)           // its only delivery
	is.True(!known(sub.UID)) // and the webhook with it, by Purge itself
}

// addFinished gives the subscription with public id uid n finished deliveries
// (delivered and dead in turn), finished an hour ago, written straight into the
// file as a long history leaves them.
func addFinished(t *testing.T, h *history, uid string, n int) {
	t.Helper()
	addDone(t, h, uid, n, -1, time.Hour)
}

// addDone writes n finished deliveries of the subscription with public id uid,
// finished age ago: all in state (2 delivered, 3 dead), or in turn when state is -1.
func addDone(t *testing.T, h *history, uid string, n, state int, age time.Duration) {
	t.Helper()
	at := h.st.Now().Add(-age).UnixMilli()
	for i := range n {
		st := state
		if st < 0 {
			st = 2 + i%2
		}
		err := store.ExecWrite(context.Background(), h.st, `INSERT INTO deliveries(subscription_id, subject, event_type, state,
			due_at, first_event_at, last_event_at, attempts, done_at)
			SELECT id, ?2, 'UPDATED', ?3, ?4, ?4, ?4, 1, ?4 FROM subscriptions WHERE uid = ?1`, uid, histOrcid, st, at)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// states counts deliveries by state name.
func states(ds []store.Delivery) map[string]int {
	out := map[string]int{}
	for _, d := range ds {
		out[d.StateName()]++
	}
	return out
}

// TestRemovalMovesHistoryAhead: a removal with more finished deliveries than fit in
// its transaction moves them to the removed webhook's record first, a few a
// transaction, on every path that removes subscriptions; what it leaves is what a
// removal in one transaction leaves, and webhooks it does not remove keep theirs.
func TestRemovalMovesHistoryAhead(t *testing.T) {
	ctx := context.Background()
	defer store.SetAhead(2, 3)()
	for _, tt := range removals(ctx) {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			h := newHistory(t)
			all := []string{h.orcidUID, h.platUID, h.hubUID}
			for _, uid := range all {
				addFinished(t, h, uid, 7) // 4 delivered, 3 dead, beside the one waiting
			}
			moves := store.AheadMoves(h.st)
			is.NoErr(tt.remove(h))
			removed := tt.removed(h)
			is.True(store.AheadMoves(h.st)-moves >= int64((7*len(removed)+2)/3)) // 7 rows each, 3 a transaction
			for _, uid := range all {
				ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Webhook: uid})
				is.NoErr(err)
				is.Equal(len(ds), 8) // every delivery kept
				gone := slices.Contains(removed, uid)
				for _, d := range ds {
					is.Equal(d.SubscriptionID == 0, gone) // a removed webhook's, or still its live webhook's
					is.Equal(d.RemovedAt.IsZero(), !gone)
				}
				want := map[string]int{"delivered": 4, "dead": 3, "failed": 1}
				if gone {
					want = map[string]int{"delivered": 4, "dead": 4} // the waiting one dead too
				}
				is.Equal(states(ds), want)
			}
			left, err := store.QueryInt(ctx, h.st, "SELECT count(*) FROM removed_subscriptions r JOIN subscriptions s ON s.uid = r.uid")
			is.NoErr(err)
			is.Equal(left, int64(0)) // no live webhook has a removed record
		})
	}
}

// TestRemovalFailingMovesHistoryBack: when a removal fails after its history was
// moved ahead, the history goes back to the webhook, which is as it was.
func TestRemovalFailingMovesHistoryBack(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetAhead(2, 3)()
	h := newHistory(t)
	addFinished(t, h, h.orcidUID, 7)
	moves := store.AheadMoves(h.st)
	is.True(store.RemoveThenFail(ctx, h.st, h.orcidUID) != nil) // the removal failed
	is.True(store.AheadMoves(h.st) > moves)                     // after moving the history ahead
	checkAsBefore(t, h)
}

// TestRecoverAhead: history moved ahead of a removal that never came (the process
// stopped between) goes back to its webhook at the next start.
func TestRecoverAhead(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetAhead(2, 3)()
	h := newHistory(t)
	addFinished(t, h, h.orcidUID, 7)
	is.NoErr(store.MoveAhead(ctx, h.st, h.orcidUID))
	moved, err := store.QueryInt(ctx, h.st, "SELECT count(*) FROM deliveries WHERE removed_subscription_id IS NOT NULL")
	is.NoErr(err)
	is.Equal(moved, int64(7)) // the finished ones moved
	n, err := h.st.RecoverAhead(ctx)
	is.NoErr(err)
	is.Equal(n, 1) // one webhook's
	checkAsBefore(t, h)
	n, err = h.st.RecoverAhead(ctx)
	is.NoErr(err)
	is.Equal(n, 0) // nothing left to recover
}

// checkAsBefore checks that h's ORCID-style webhook is live with its eight
// deliveries (addFinished's seven and the waiting one), and that no delivery and no
// removed record is left of a removal.
func checkAsBefore(t *testing.T, h *history) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	sub, err := h.st.Subscription(ctx, h.orcidUID)
	is.NoErr(err) // still there
	ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Webhook: h.orcidUID})
	is.NoErr(err)
	is.Equal(len(ds), 8) // with all its deliveries
	for _, d := range ds {
		is.Equal(d.SubscriptionID, sub.ID) // its own again
	}
	is.Equal(states(ds), map[string]int{"delivered": 4, "dead": 3, "failed": 1})
	for q, want := range map[string]int64{
		"SELECT count(*) FROM deliveries WHERE removed_subscription_id IS NOT NULL": 0,
		"SELECT count(*) FROM removed_subscriptions":                                0,
	} {
		n, err := store.QueryInt(ctx, h.st, q)
		is.NoErr(err)
		is.Equal(n, want) // q
	}
}

// TestPurgeRemovedSparesHistoryMovedAhead: retention does not purge what was moved
// ahead of a removal that has not committed: if the removal does not happen, those
// are a live webhook's dead deliveries again, which stay until replayed.
func TestPurgeRemovedSparesHistoryMovedAhead(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetAhead(2, 3)()
	h := newHistory(t)
	addDone(t, h, h.orcidUID, 7, 3, 30*24*time.Hour) // dead for a month, older than any retention here
	is.NoErr(store.MoveAhead(ctx, h.st, h.orcidUID)) // a removal is moving its history
	n, err := h.st.PurgeRemoved(ctx, h.st.Now().Add(-7*24*time.Hour), 1000)
	is.NoErr(err)
	is.Equal(n, 0)                  // the retention pass meanwhile leaves it
	_, err = h.st.RecoverAhead(ctx) // the removal did not happen
	is.NoErr(err)
	ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Webhook: h.orcidUID})
	is.NoErr(err)
	is.Equal(len(ds), 8) // the waiting one and the 7 dead
}

// waitMoves waits until the store has made more than n moves ahead (at most 10 s)
// and then runs then.
func waitMoves(t *testing.T, st *store.Store, n int64, then func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for deadline := time.Now().Add(10 * time.Second); store.AheadMoves(st) <= n; time.Sleep(50 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Error("no history was moved")
				return
			}
		}
		then()
	}()
	return done
}

// TestRemovalOutlivesItsCaller: a caller that gives up while a removal's history
// is moved (an HTTP client's timeout) does not stop the removal, which would
// otherwise be undone after all that work.
func TestRemovalOutlivesItsCaller(t *testing.T) {
	is := is.New(t)
	defer store.SetAhead(2, 3)()
	h := newHistory(t)
	addFinished(t, h, h.platUID, 600)
	ctx, cancel := context.WithCancel(context.Background())
	var atCancel int64
	done := waitMoves(t, h.st, store.AheadMoves(h.st), func() { atCancel = store.AheadMoves(h.st); cancel() })
	is.NoErr(h.st.DeleteWebhook(ctx, h.client.ID, h.platUID)) // the removal went through
	<-done
	is.True(store.AheadMoves(h.st) > atCancel) // though its caller left in the middle of the move
	_, err := h.st.Subscription(context.Background(), h.platUID)
	is.True(errors.Is(err, store.ErrNotFound)) // the webhook is gone
	ds, err := h.st.Deliveries(context.Background(), store.DeliveryFilter{Webhook: h.platUID, Limit: 1000})
	is.NoErr(err)
	is.Equal(len(ds), 601) // with its history kept
}

// TestOrganisationRemovalMovesTwice: deleting an organisation removes its staff's
// webhooks and then its own, and each may move history ahead; deliveries of its
// own webhook that finish during the staff's move do not make it fail, and are
// kept with the rest.
func TestOrganisationRemovalMovesTwice(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetAhead(2, 3)()
	defer store.SetAheadTries(3)() // the third moves what finished meanwhile itself
	h := newHistory(t)
	is.NoErr(store.ExecWrite(ctx, h.st, "INSERT INTO client_orgs(client_id, org_id) VALUES (?, ?)", h.client.ID, h.org.ID))
	addFinished(t, h, h.hubUID, 300)
	addFinished(t, h, h.orcidUID, 600)
	before := store.AheadMoves(h.st)
	done := waitMoves(t, h.st, before+150, func() { // into the staff's move
		for range 3 { // the dispatch loop records three outcomes of the organisation's webhook
			if err := store.ExecWrite(ctx, h.st, `INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at,
				first_event_at, last_event_at, attempts, done_at)
				SELECT id, ?2, 'UPDATED', 2, 1, 1, 1, 1, 1 FROM subscriptions WHERE uid = ?1`, h.hubUID, histOrcid); err != nil {
				t.Error(err)
			}
		}
	})
	is.NoErr(h.st.DeleteOrganisation(ctx, h.org.ID))
	<-done
	// 201 moves of 3 rows for the staff's webhook (the last finds none), removed
	// first, then 102 for the organisation's, with the three that finished during
	// the staff's move.
	is.Equal(store.AheadMoves(h.st)-before, int64(303))
	for uid, want := range map[string]int{h.hubUID: 304, h.orcidUID: 601} {
		ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Webhook: uid, Limit: 1000})
		is.NoErr(err)
		is.Equal(len(ds), want) // every delivery kept, as a removed webhook's
		for _, d := range ds {
			is.True(!d.RemovedAt.IsZero())
		}
	}
}

// TestRemovedClientsKeysGoWithIt: a removed client's idempotency keys go with it,
// so a client made again with its id within the keys' 24 hours (as the README
// allows) is not answered, for a key it reuses, what the removed one was: its
// events are stored and fan out.
func TestRemovedClientsKeysGoWithIt(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	nc := store.NewClient{ID: "APP-REUSED", Name: "lab", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}}
	_, err := st.CreateClient(ctx, nc)
	is.NoErr(err)
	_, err = st.Intake(ctx, "APP-REUSED", "batch-1", []store.Event{{Orcid: histOrcid}}, 0)
	is.NoErr(err)
	is.NoErr(st.RemoveClient(ctx, "APP-REUSED"))
	_, err = st.CreateClient(ctx, nc) // a new client, the removed one's id
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, "APP-REUSED", histOrcid, histCallback)
	is.NoErr(err)
	res, err := st.Intake(ctx, "APP-REUSED", "batch-1", []store.Event{{Orcid: histOrcid}}, 0)
	is.NoErr(err)
	is.True(!res.Replayed)      // not the removed client's answer
	is.Equal(res.Deliveries, 1) // its event made its delivery
}

// TestClientKeysForgottenInBatches: a removed client's idempotency keys are
// deleted a batch a transaction once it is gone; a client made with an id that
// a removal stopped half-way left keys of finds none; and an id taken keeps its
// client's keys, the new client refused.
func TestClientKeysForgottenInBatches(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetKeysBatch(3)()
	st := newStore(t)
	keys := func(id string) int64 {
		n, err := store.QueryInt(ctx, st, "SELECT count(*) FROM idempotency WHERE client_id = ?", id)
		is.NoErr(err)
		return n
	}
	nc := store.NewClient{ID: "APP-BUSY", Name: "busy", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}}
	_, err := st.CreateClient(ctx, nc)
	is.NoErr(err)
	for i := range 10 {
		_, err := st.Intake(ctx, nc.ID, fmt.Sprintf("batch-%d", i), []store.Event{{Orcid: histOrcid}}, 0)
		is.NoErr(err)
	}
	is.Equal(keys(nc.ID), int64(10))
	_, err = st.CreateClient(ctx, store.NewClient{ID: nc.ID, Name: "another", Scopes: nc.Scopes})
	is.True(errors.Is(err, store.ErrConflict)) // the id is taken
	is.Equal(keys(nc.ID), int64(10))           // and its client's keys are kept
	is.NoErr(st.RemoveClient(ctx, nc.ID))
	is.Equal(keys(nc.ID), int64(0)) // all gone, 3 a transaction

	is.NoErr(store.ExecWrite(ctx, st, `INSERT INTO idempotency(client_id, key, created_at, response)
		VALUES ('APP-LEFT', 'a', 1, '{}'), ('APP-LEFT', 'b', 1, '{}'), ('APP-LEFT', 'c', 1, '{}'), ('APP-LEFT', 'd', 1, '{}')`))
	_, err = st.CreateClient(ctx, store.NewClient{ID: "APP-LEFT", Name: "left", Scopes: nc.Scopes})
	is.NoErr(err)
	is.Equal(keys("APP-LEFT"), int64(0)) // what a removal stopped half-way left is gone
}

// TestRemovedClientsTokenEndsBeforeItsKeys: once a client's removal has
// committed, its access token no longer authenticates, though its idempotency
// keys are still being forgotten (a busy client's, hundreds of transactions):
// removing a client takes effect at once (tokencache.go).
func TestRemovedClientsTokenEndsBeforeItsKeys(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetKeysBatch(1)()
	st := newStore(t)
	creds, err := st.CreateClient(ctx, store.NewClient{ID: "APP-GONE", Name: "gone", Scopes: []string{store.ScopeNotify}})
	is.NoErr(err)
	tok, err := st.IssueToken(ctx, creds.Client, []string{store.ScopeNotify}, time.Hour)
	is.NoErr(err)
	_, err = st.TokenInfo(ctx, tok.Access) // cached, as every intake call caches it
	is.NoErr(err)
	is.NoErr(store.ExecWrite(ctx, st, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
		INSERT INTO idempotency(client_id, key, created_at, response) SELECT 'APP-GONE', 'event:' || i, 1, '' FROM n`))

	done := make(chan error, 1)
	go func() { done <- st.RemoveClient(ctx, "APP-GONE") }()
	for {
		select {
		case err := <-done:
			is.NoErr(err)
			return
		default:
		}
		if _, err := st.Client(ctx, "APP-GONE"); err == nil {
			continue // not committed yet
		}
		if _, err := st.TokenInfo(ctx, tok.Access); err == nil {
			select {
			case <-done: // returned between the two reads: no window seen
				return
			default:
			}
			t.Fatal("the removed client is gone, and its token still authenticates")
		}
	}
}

// TestRemovalStandsWhenItsKeysCannotGo: a client's removal that has committed is
// reported as done even when forgetting its idempotency keys then fails (a full
// disk, say): the console records it, and the keys left are forgotten before a
// client is made with its id again.
func TestRemovalStandsWhenItsKeysCannotGo(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	_, err := st.CreateClient(ctx, store.NewClient{ID: "APP-HALF", Name: "half", Scopes: []string{store.ScopeNotify}})
	is.NoErr(err)
	_, err = st.Intake(ctx, "APP-HALF", "k1", []store.Event{{Orcid: histOrcid}}, 0)
	is.NoErr(err)
	// Any failure of the lazy transactions after the commit (here a trigger stands
	// in for SQLITE_FULL, an I/O error, a busy timeout of a CLI beside the daemon).
	is.NoErr(store.ExecWrite(ctx, st, `CREATE TRIGGER no_forget BEFORE DELETE ON idempotency
		BEGIN SELECT RAISE(ABORT, 'simulated failure'); END`))
	is.NoErr(st.RemoveClient(ctx, "APP-HALF")) // reported done
	_, err = st.Client(ctx, "APP-HALF")
	is.True(errors.Is(err, store.ErrNotFound)) // as it is
	is.NoErr(store.ExecWrite(ctx, st, "DROP TRIGGER no_forget"))
	_, err = st.CreateClient(ctx, store.NewClient{ID: "APP-HALF", Name: "half", Scopes: []string{store.ScopeNotify}})
	is.NoErr(err)
	n, err := store.QueryInt(ctx, st, "SELECT count(*) FROM idempotency WHERE client_id = 'APP-HALF'")
	is.NoErr(err)
	is.Equal(n, int64(0)) // the key left is gone before the new client's first call
}

// manyWebhooks is a store whose client has n ORCID-style webhooks of one record,
// each with one delivery waiting and, but for every fifth, done finished ones.
func manyWebhooks(t *testing.T, n, done int) (*store.Store, store.Client) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "many", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	for i := range n {
		_, _, err := st.PutOrcidWebhook(ctx, c.ID, histOrcid, fmt.Sprintf("https://example.org/cb/%03d", i))
		is.NoErr(err)
	}
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: histOrcid}}, 0)
	is.NoErr(err) // one waiting for each
	at := st.Now().Add(-time.Hour).UnixMilli()
	for i := range done {
		is.NoErr(store.ExecWrite(ctx, st, `INSERT INTO deliveries(subscription_id, subject, event_type, state,
			due_at, first_event_at, last_event_at, attempts, done_at)
			SELECT id, orcid, 'UPDATED', 2 + (id + ?2) % 2, ?3, ?3, ?3, 1, ?3 FROM subscriptions
			WHERE client_id = ?1 AND id % 5 != 0 ORDER BY id`, c.ID, i, at+int64(i)))
	}
	return st, c.Client
}

// TestRemovalOfManyWebhooksMovesEachOnce: a removal of many webhooks moves their
// history ahead, and kills their backlog, a few webhooks a transaction: none
// makes removed records for webhooks whose history it does not move, and what the
// removal leaves is what one in one transaction leaves.
func TestRemovalOfManyWebhooksMovesEachOnce(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	const n, done = 40, 4
	removed := func(ahead bool) string {
		t.Helper()
		if ahead {
			defer store.SetAhead(2, 3)()
			defer store.SetKillBatch(3)()
		}
		st, c := manyWebhooks(t, n, done)
		now := st.Now()
		var worst int64 // most removed records made and not yet pointed to
		st.Now = func() time.Time {
			made, err := store.QueryInt(ctx, st, `SELECT (SELECT count(*) FROM removed_subscriptions)
				- (SELECT count(DISTINCT removed_subscription_id) FROM deliveries WHERE removed_subscription_id IS NOT NULL)`)
			if err != nil {
				t.Error(err)
			}
			worst = max(worst, made)
			return now
		}
		moves := store.AheadMoves(st)
		is.NoErr(st.RemoveClient(ctx, c.ID))
		if ahead {
			is.True(store.AheadMoves(st)-moves >= (n+(n-n/5)*done)/3) // the backlog, then the history, 3 rows a transaction
			is.True(worst <= 3)                                       // a few webhooks' records ahead of their history, never all
		}
		left, err := store.QueryInt(ctx, st, "SELECT count(*) FROM subscriptions")
		is.NoErr(err)
		is.Equal(left, int64(0))
		kept, err := store.QueryString(ctx, st, `SELECT group_concat(line, char(10)) FROM (SELECT r.target || ' ' || r.orcid || ' ' ||
			r.removed_at || ' ' || d.state || ' ' || d.last_error || ' ' || d.done_at AS line
			FROM deliveries d JOIN removed_subscriptions r ON r.id = d.removed_subscription_id ORDER BY r.target, d.id)`)
		is.NoErr(err)
		return kept
	}
	whole, ahead := removed(false), removed(true)
	is.Equal(len(strings.Split(ahead, "\n")), n+(n-n/5)*done) // every delivery kept
	is.Equal(ahead, whole)
}

// TestRemovalDeactivatesAFewWebhooksATransaction: a removal of many webhooks with a
// backlog deactivates them ahead of it a few a transaction, not all at once, and
// then kills their backlog.
func TestRemovalDeactivatesAFewWebhooksATransaction(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	const n = 40
	defer store.SetKillBatch(3)()
	st, c := manyWebhooks(t, n, 0)
	now := st.Now()
	var partly bool // some of the webhooks deactivated ahead of the removal, not all
	st.Now = func() time.Time {
		off, err := store.QueryInt(ctx, st, "SELECT count(*) FROM subscriptions WHERE active = 0 AND reason = 'being removed'")
		if err != nil {
			t.Error(err)
		}
		partly = partly || off > 0 && off < n
		return now
	}
	is.NoErr(st.RemoveClient(ctx, c.ID))
	is.True(partly)
	dead, err := store.QueryInt(ctx, st, "SELECT count(*) FROM deliveries WHERE state = 3 AND last_error = 'not sent: webhook removed'")
	is.NoErr(err)
	is.Equal(dead, int64(n)) // each one's waiting delivery died with it
}

// TestRecoverKilledAFewWebhooksATransaction: the webhooks a removal that did not
// happen had deactivated are activated again a few a transaction, as they were
// deactivated, not all at once: one transaction for 490,000 held every other
// write for seconds.
func TestRecoverKilledAFewWebhooksATransaction(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	const n = 40
	defer store.SetKillBatch(3)()
	st, c := manyWebhooks(t, n, 0)
	now := st.Now()
	is.NoErr(store.ExecWrite(ctx, st, "UPDATE subscriptions SET active = 0, reason = 'being removed', updated_at = ? WHERE client_id = ?",
		now.Add(-time.Hour).UnixMilli(), c.ID)) // as a removal killed part-way left them
	var partly bool // some of the webhooks active again, not all
	st.Now = func() time.Time {
		on, err := store.QueryInt(ctx, st, "SELECT count(*) FROM subscriptions WHERE active = 1")
		if err != nil {
			t.Error(err)
		}
		partly = partly || on > 0 && on < n
		return now
	}
	got, err := st.RecoverKilled(ctx, now.Add(-15*time.Minute))
	is.NoErr(err)
	is.Equal(got, n)
	is.True(partly)
	on, err := store.QueryInt(ctx, st, "SELECT count(*) FROM subscriptions WHERE active = 1 AND reason = ''")
	is.NoErr(err)
	is.Equal(on, int64(n)) // every one active again
}
