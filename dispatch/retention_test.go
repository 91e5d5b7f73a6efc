package dispatch_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// TestRetention: delivered rows older than Options.Retention are purged with their
// attempts; younger ones, pending ones and dead ones stay.
func TestRetention(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	ok := newReceiver(t, nil)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Retention = time.Hour
		o.GiveUpAfter = time.Minute
	})
	const old = 1200
	for i := 0; i < old; i++ { // more than one purge batch
		e.subscribe(testOrcid(i), ok.URL+"/cb")
	}
	var events []store.Event
	for i := 0; i < old; i++ {
		events = append(events, store.Event{Orcid: testOrcid(i)})
	}
	e.intake(0, events...)
	for i := 0; i < 100 && ok.count() < old; i++ { // one host: the per-host limit releases the excess to later ticks
		e.tick(d)
		e.clock.Advance(time.Second)
	}
	is.Equal(ok.count(), old) // all delivered

	e.clock.Advance(2 * time.Hour)
	e.subscribe(testOrcid(5000), ok.URL+"/young")
	e.intake(0, store.Event{Orcid: testOrcid(5000)})
	e.tick(d)
	e.intake(0, store.Event{Orcid: testOrcid(1)}) // pending, not yet sent

	n, err := d.Purge(ctx)
	is.NoErr(err)
	is.Equal(n, old) // only the old delivered rows
	counts, err := e.st.Counts(ctx)
	is.NoErr(err)
	is.Equal(counts["delivered"], 1) // the young delivery stays
	is.Equal(counts["pending"], 1)   // the pending one stays

	n, err = d.Purge(ctx)
	is.NoErr(err)
	is.Equal(n, 0) // nothing left to purge
}

// TestRetentionForgetsIdempotencyKeys: keys older than 24 h go, however many there
// are, even when few deliveries are purged alongside.
func TestRetentionForgetsIdempotencyKeys(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	d := e.dispatcher(nil)
	var events []store.Event
	for i := 0; i < 1200; i++ { // more than one purge batch, for no subscription at all
		events = append(events, store.Event{Orcid: testOrcid(i), ID: fmt.Sprintf("ev-%d", i)})
	}
	e.intake(0, events...)
	e.clock.Advance(48 * time.Hour)
	_, err := d.Purge(ctx)
	is.NoErr(err)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "hookd.db")+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	defer db.Close()
	var keys int
	is.NoErr(db.QueryRow("SELECT count(*) FROM idempotency").Scan(&keys))
	is.Equal(keys, 0) // every old key is forgotten in one pass
}

// TestRetentionPurgesAuditLog: audit entries older than Options.AuditRetention go
// with the rest of retention, however many there are; younger ones stay.
func TestRetentionPurgesAuditLog(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	d := e.dispatcher(func(o *dispatch.Options) { o.AuditRetention = 30 * 24 * time.Hour })
	entry := store.AuditEntry{Actor: store.ActorAdminToken, Via: store.ViaAPI, Address: "127.0.0.1", Action: "organisation.update"}
	for range 1200 { // more than one purge batch
		is.NoErr(e.st.Audit(ctx, entry))
	}
	e.clock.Advance(20 * 24 * time.Hour)
	entry.Action = "webhook.deactivate"
	is.NoErr(e.st.Audit(ctx, entry)) // a younger one
	e.clock.Advance(11 * 24 * time.Hour)

	_, err := d.Purge(ctx)
	is.NoErr(err)
	left, err := e.st.AuditLog(ctx, store.AuditQuery{Limit: 2000})
	is.NoErr(err)
	is.Equal(len(left), 1)                         // only the younger one stays
	is.Equal(left[0].Action, "webhook.deactivate") //
}

// TestDeactivatedBacklogNeverSent: a webhook deactivated with more waiting than its
// deactivation turns dead at once sends none of the rest: the dispatch loop's turns
// find them due and they die unsent, and the retention pass turns dead those not
// due yet.
func TestDeactivatedBacklogNeverSent(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	recv := newReceiver(t, nil)
	d := e.dispatcher(nil)
	wh, _, err := e.st.CreateWebhook(ctx, e.client.ID, store.WebhookSpec{TargetURL: recv.URL + "/all", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	const due, later = 700, 300 // more than a deactivation turns dead at once (500)
	var now, soon []store.Event
	for i := range due + later {
		if i < due {
			now = append(now, store.Event{Orcid: testOrcid(i)})
		} else {
			soon = append(soon, store.Event{Orcid: testOrcid(i)})
		}
	}
	e.intake(0, now...)
	e.intake(time.Hour, soon...)
	_, err = e.st.SetSubscriptionActive(ctx, wh.UID, false, "endpoint retired")
	is.NoErr(err)
	for range 20 {
		e.tick(d)
	}
	is.Equal(recv.count(), 0) // none of it went out
	_, err = d.Purge(ctx)
	is.NoErr(err)
	counts, err := e.st.Counts(ctx)
	is.NoErr(err)
	is.Equal(counts["pending"], 0) // the retention pass killed what was not due
	is.Equal(counts["dead"], due+later)
	is.Equal(recv.count(), 0)
}

// TestRetentionFinishesRemoval: a client's removal that a stopped command left
// marked (its webhooks not yet removed) is finished by the retention pass, its
// webhook's waiting delivery kept as history, never sent; the webhooks it had
// deactivated ahead of their removal long before are not activated again.
func TestRetentionFinishesRemoval(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	ok := newReceiver(t, nil)
	d := e.dispatcher(func(o *dispatch.Options) { o.Retention = time.Hour })
	for i := range 3 {
		e.subscribe(testOrcid(i), ok.URL+"/cb")
	}
	e.intake(0, store.Event{Orcid: testOrcid(0)}, store.Event{Orcid: testOrcid(1)})
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "hookd.db"))
	is.NoErr(err)
	defer db.Close()
	// As a command killed after its mark leaves it, one webhook deactivated ahead
	// of its removal an hour ago.
	_, err = db.Exec(`UPDATE clients SET removing_at = ?1 WHERE id = ?2;
		UPDATE subscriptions SET active = 0, reason = 'being removed', updated_at = ?1 WHERE orcid = ?3`,
		e.clock.Now().Add(-time.Hour).UnixMilli(), e.client.ID, testOrcid(2))
	is.NoErr(err)
	e.tick(d)
	is.Equal(ok.count(), 0) // nothing is sent to its webhooks
	_, err = d.Purge(ctx)
	is.NoErr(err)
	var subs, clients, kept int
	is.NoErr(db.QueryRow(`SELECT (SELECT count(*) FROM subscriptions WHERE format = 'empty'), (SELECT count(*) FROM clients),
		(SELECT count(*) FROM deliveries WHERE removed_subscription_id IS NOT NULL AND state = 3)`).Scan(&subs, &clients, &kept))
	is.Equal(subs, 0)    // its webhooks removed
	is.Equal(clients, 0) // and the client
	is.Equal(kept, 2)    // the deliveries kept as history, dead
	is.Equal(ok.count(), 0)
}

// TestRetentionGoesOnPastAFailingRemoval: a removal left half-way that fails when
// finished (here its webhooks' deletion refused) holds up neither the other
// removals nor the rest of the retention pass: another client's removal is
// finished, and delivered deliveries past retention go.
func TestRetentionGoesOnPastAFailingRemoval(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	ok := newReceiver(t, nil)
	d := e.dispatcher(func(o *dispatch.Options) { o.Retention = time.Hour })
	e.subscribe(testOrcid(0), ok.URL+"/cb")
	e.intake(0, store.Event{Orcid: testOrcid(0)})
	e.tick(d)
	is.Equal(ok.count(), 1) // delivered
	other, err := e.st.CreateClient(ctx, store.NewClient{Name: "other", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = e.st.PutOrcidWebhook(ctx, other.ID, testOrcid(1), ok.URL+"/other")
	is.NoErr(err)
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "hookd.db"))
	is.NoErr(err)
	defer db.Close()
	// Both left half-way an hour ago; the first client's webhooks cannot go.
	_, err = db.Exec(`UPDATE clients SET removing_at = ?`, e.clock.Now().Add(-time.Hour).UnixMilli())
	is.NoErr(err)
	_, err = db.Exec(`CREATE TRIGGER kept BEFORE DELETE ON subscriptions WHEN old.client_id = '` + e.client.ID + `'
		BEGIN SELECT RAISE(ABORT, 'webhooks kept'); END`)
	is.NoErr(err)
	e.clock.Advance(2 * time.Hour)
	n, err := d.Purge(ctx)
	is.NoErr(err)  // the failure is logged, not the pass's
	is.Equal(n, 1) // the delivered delivery past retention went
	var clients []string
	rows, err := db.Query("SELECT id FROM clients")
	is.NoErr(err)
	for rows.Next() {
		var id string
		is.NoErr(rows.Scan(&id))
		clients = append(clients, id)
	}
	is.NoErr(rows.Err())
	is.Equal(clients, []string{e.client.ID}) // the other client's removal finished
}
