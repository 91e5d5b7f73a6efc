package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/secret"
	"hookd/store"
)

// movable pins a store's clock at 2024-03-01 12:00 UTC and returns a func that moves it.
func movable(st *store.Store) func(time.Duration) {
	var now atomic.Int64
	now.Store(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	st.Now = func() time.Time { return time.UnixMilli(now.Load()).UTC() }
	return func(d time.Duration) { now.Add(d.Milliseconds()) }
}

func spec(id string) store.SessionSpec {
	return store.SessionSpec{IDHash: secret.Hash(id), CSRF: "csrf-" + id, Address: "192.0.2.1", MaxAge: 12 * time.Hour, Idle: 30 * time.Minute}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "web", Scopes: []string{store.ScopeWebhook}})
	if err != nil {
		t.Fatal(err)
	}
	const idle = 30 * time.Minute

	t.Run("wrong secret", func(t *testing.T) {
		is := is.New(t)
		_, err := st.SignInClient(ctx, c.ID, "not-the-secret", spec("a"))
		is.True(errors.Is(err, store.ErrBadCredentials)) // wrong secret refused
		_, err = st.SignInClient(ctx, "APP-NOBODY", c.Secret, spec("a"))
		is.True(errors.Is(err, store.ErrBadCredentials)) // unknown id refused
		_, err = st.Session(ctx, secret.Hash("a"), idle)
		is.True(errors.Is(err, store.ErrNotFound)) // and no session was made
	})

	t.Run("idle and absolute ends", func(t *testing.T) {
		is := is.New(t)
		got, err := st.SignInClient(ctx, c.ID, c.Secret, spec("b"))
		is.NoErr(err)
		is.Equal(got.ID, c.ID)
		s, err := st.Session(ctx, secret.Hash("b"), idle)
		is.NoErr(err)                    // the session is open
		is.Equal(s.Client.ID, c.ID)      // for the client
		is.Equal(s.CSRF, "csrf-b")       // with its CSRF token
		is.Equal(s.Address, "192.0.2.1") // and address
		_, err = st.Session(ctx, []byte("b"), idle)
		is.True(errors.Is(err, store.ErrNotFound)) // the plain id is not a key

		advance(idle - time.Minute)
		is.NoErr(st.TouchSession(ctx, secret.Hash("b"))) // used: the idle end moves
		advance(idle - time.Minute)
		_, err = st.Session(ctx, secret.Hash("b"), idle)
		is.NoErr(err) // still open after 58 minutes with a use between
		advance(2 * time.Minute)
		_, err = st.Session(ctx, secret.Hash("b"), idle)
		is.True(errors.Is(err, store.ErrNotFound)) // idle for 31 minutes: ended

		_, err = st.SignInClient(ctx, c.ID, c.Secret, spec("c"))
		is.NoErr(err)
		for range 25 { // 12 h 5 min
			advance(29 * time.Minute)
			is.NoErr(st.TouchSession(ctx, secret.Hash("c")))
		}
		_, err = st.Session(ctx, secret.Hash("c"), idle)
		is.True(errors.Is(err, store.ErrNotFound)) // past 12 hours: ended however busy
	})

	t.Run("rotation, removal, sign-out", func(t *testing.T) {
		is := is.New(t)
		_, err := st.SignInClient(ctx, c.ID, c.Secret, spec("d"))
		is.NoErr(err)
		_, err = st.SignInClient(ctx, c.ID, c.Secret, spec("e"))
		is.NoErr(err)
		is.NoErr(st.EndSession(ctx, secret.Hash("e")))
		_, err = st.Session(ctx, secret.Hash("e"), idle)
		is.True(errors.Is(err, store.ErrNotFound)) // signed out

		rotated, err := st.RotateClientSecret(ctx, c.ID, "")
		is.NoErr(err)
		_, err = st.Session(ctx, secret.Hash("d"), idle)
		is.True(errors.Is(err, store.ErrNotFound)) // the secret changed: ended

		_, err = st.SignInClient(ctx, c.ID, rotated.Secret, spec("f"))
		is.NoErr(err) // the new secret signs in
		is.NoErr(st.RemoveClient(ctx, c.ID))
		_, err = st.Session(ctx, secret.Hash("f"), idle)
		is.True(errors.Is(err, store.ErrNotFound)) // the client is gone: ended
	})

	t.Run("a secret a person chose", func(t *testing.T) {
		is := is.New(t)
		chosen, err := st.CreateClient(ctx, store.NewClient{Name: "chosen", Scopes: []string{store.ScopeWebhook}, ID: "chosen", Secret: "a secret of my own"})
		is.NoErr(err) // stored as argon2id
		_, err = st.SignInClient(ctx, chosen.ID, "not it", spec("g"))
		is.True(errors.Is(err, store.ErrBadCredentials)) // a wrong one refused
		got, err := st.SignInClient(ctx, chosen.ID, "a secret of my own", spec("g"))
		is.NoErr(err) // the right one signs in, as it gets a token
		is.Equal(got.ID, "chosen")
		_, err = st.Session(ctx, secret.Hash("g"), idle)
		is.NoErr(err) // the session is open
		_, err = st.RotateClientSecret(ctx, chosen.ID, "another of my own")
		is.NoErr(err)
		_, err = st.Session(ctx, secret.Hash("g"), idle)
		is.True(errors.Is(err, store.ErrNotFound)) // and ends when the secret changes
	})

	t.Run("admin token", func(t *testing.T) {
		is := is.New(t)
		is.NoErr(st.SignInAdmin(ctx, secret.Hash("token"), spec("g")))
		s, err := st.Session(ctx, secret.Hash("g"), idle)
		is.NoErr(err)
		is.Equal(s.Client.ID, "")                                     // no client
		is.Equal(s.Credential, secret.Hash("token"))                  // the fingerprint the console checks
		is.True(st.SignInAdmin(ctx, nil, store.SessionSpec{}) != nil) // a session needs its parts
	})
}

// ids of a store-made subscription set: a client's platform webhook, another
// client's ORCID-style registration, and an organisation's webhook.
type fixture struct {
	a, b      store.Credentials
	org       store.Organisation
	platform  store.Subscription
	orcidSub  store.Subscription
	orgHook   store.Subscription
	orgMember string
}

func newFixture(tb testing.TB, st *store.Store) fixture {
	tb.Helper()
	is := is.New(tb)
	ctx := context.Background()
	var f fixture
	var err error
	f.a, err = st.CreateClient(ctx, store.NewClient{Name: "a", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	f.b, err = st.CreateClient(ctx, store.NewClient{Name: "b", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	f.platform, _, err = st.CreateWebhook(ctx, f.a.ID, store.WebhookSpec{TargetURL: "https://a.example/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	f.orcidSub, _, err = st.PutOrcidWebhook(ctx, f.b.ID, "0000-0002-7253-3645", "https://b.example/cb")
	is.NoErr(err)
	f.org, err = st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	f.orgMember = "0000-0002-9079-593X"
	_, err = st.PutMember(ctx, f.org.ID, f.orgMember, store.MemberInfo{}, 0)
	is.NoErr(err)
	_, _, err = st.SetHubSettings(ctx, f.org.ID, store.HubSettings{Enabled: true, URL: "https://uni.example/orcid"})
	is.NoErr(err)
	rows, err := st.Subscriptions(ctx, store.SubscriptionFilter{OrgID: f.org.ID})
	is.NoErr(err)
	is.Equal(len(rows), 1) // the organisation's webhook
	f.orgHook = rows[0]
	return f
}

func TestFigures(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	f := newFixture(t, st)
	start := st.Now()

	outcome := func(sub int64, kind store.OutcomeKind, d time.Duration) store.Outcome {
		return store.Outcome{DeliveryID: 1 << 40, SubscriptionID: sub, Kind: kind, Attempt: 1, StartedAt: st.Now(), Duration: d, RetryAt: st.Now()}
	}
	is.NoErr(recordOutcomes(ctx, st, []store.Outcome{
		outcome(f.platform.ID, store.OutcomeDelivered, 10*time.Millisecond),
		outcome(f.platform.ID, store.OutcomeRetry, 30*time.Millisecond),
		outcome(f.orgHook.ID, store.OutcomeDead, 50*time.Millisecond),
		outcome(f.orgHook.ID, store.OutcomeReleased, 0),
	}))
	is.NoErr(recordOutcomes(ctx, st, []store.Outcome{outcome(f.orcidSub.ID, store.OutcomeDelivered, 20*time.Millisecond)}))
	advance(time.Minute)
	is.NoErr(recordOutcomes(ctx, st, []store.Outcome{outcome(f.platform.ID, store.OutcomeGone, 5*time.Millisecond)}))

	all, err := st.Figures(ctx, []string{store.ScopeAll}, start.Add(-time.Hour), st.Now().Add(time.Minute))
	is.NoErr(err)
	is.Equal(len(all), 2)                                // two minutes with attempts
	is.Equal(all[0].Minute, start)                       // at the minute's start
	is.Equal(all[0].Delivered, 2)                        // two turns added up
	is.Equal(all[0].Failed, 2)                           // a retry and a dead one
	is.Equal(all[0].Dead, 1)                             //
	is.Equal(all[0].Attempts, 4)                         // the released one is no attempt
	is.Equal(all[0].AvgDuration, 27500*time.Microsecond) // (10+30+50+20)/4 ms
	is.Equal(all[0].MaxDuration, 50*time.Millisecond)    //
	is.Equal(all[1].Failed, 1)                           // a 410 is a failed attempt
	is.Equal(all[1].Dead, 1)                             // that ends the delivery

	a, err := st.Figures(ctx, []string{store.ClientScope(f.a.ID)}, start, st.Now().Add(time.Minute))
	is.NoErr(err)
	is.Equal(len(a), 2)
	is.Equal(a[0].Delivered, 1) // only client a's
	is.Equal(a[0].Failed, 1)
	org, err := st.Figures(ctx, []string{store.OrgScope(f.org.ID)}, start, st.Now().Add(time.Minute))
	is.NoErr(err)
	is.Equal(len(org), 1)
	is.Equal(org[0].Dead, 1) // only the organisation's
	is.Equal(org[0].Delivered, 0)
	both, err := st.Figures(ctx, []string{store.ClientScope(f.a.ID), store.OrgScope(f.org.ID)}, start, start.Add(time.Minute))
	is.NoErr(err)
	is.Equal(len(both), 1)        // [from, to): the first minute only
	is.Equal(both[0].Failed, 2)   // the two scopes summed
	is.Equal(both[0].Attempts, 3) //

	advance(store.StatsKeep + time.Minute)
	is.NoErr(recordOutcomes(ctx, st, []store.Outcome{outcome(f.platform.ID, store.OutcomeDelivered, time.Millisecond)}))
	old, err := st.Figures(ctx, []string{store.ScopeAll}, start.Add(-time.Hour), start.Add(time.Hour))
	is.NoErr(err)
	is.Equal(len(old), 0) // a turn trims what is older than StatsKeep
}

// TestFiguresOfClaimedDeliveries: outcomes whose targets the claim cached count
// for their owners as those read from the database do, in the same turn.
func TestFiguresOfClaimedDeliveries(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	f := newFixture(t, st)
	start := st.Now()

	// The organisation's member: its webhook and client a's catch-all get a delivery.
	_, err := st.Intake(ctx, f.a.ID, "", []store.Event{{Orcid: f.orgMember}}, 0)
	is.NoErr(err)
	claimed, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 2)
	var outs []store.Outcome
	for _, c := range claimed {
		o := store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeDelivered, Attempt: c.Attempt,
			StartedAt: st.Now(), Duration: 10 * time.Millisecond}
		if c.Target.SubscriptionID == f.orgHook.ID {
			o.Kind, o.Duration = store.OutcomeDead, 50*time.Millisecond
		}
		outs = append(outs, o)
	}
	// Beside them, one of a webhook no claim read: client b's.
	outs = append(outs, store.Outcome{DeliveryID: 1 << 40, SubscriptionID: f.orcidSub.ID, Kind: store.OutcomeDelivered, Attempt: 1,
		StartedAt: st.Now(), Duration: 20 * time.Millisecond})
	is.NoErr(recordOutcomes(ctx, st, outs))

	figures := func(scope string) store.MinuteFigures {
		got, err := st.Figures(ctx, []string{scope}, start, start.Add(time.Minute))
		is.NoErr(err)
		is.Equal(len(got), 1) // one minute, for scope
		return got[0]
	}
	all := figures(store.ScopeAll)
	is.Equal(all.Attempts, 3)
	a := figures(store.ClientScope(f.a.ID))
	is.Equal(a.Delivered, 1) // client a's catch-all, its target cached
	is.Equal(a.Failed, 0)
	is.Equal(a.MaxDuration, 10*time.Millisecond)
	org := figures(store.OrgScope(f.org.ID))
	is.Equal(org.Dead, 1) // the organisation's webhook, its target cached
	is.Equal(org.Delivered, 0)
	b := figures(store.ClientScope(f.b.ID))
	is.Equal(b.Delivered, 1) // client b's, read from the database
	is.Equal(b.MaxDuration, 20*time.Millisecond)
}

// TestFiguresOfAnIdUsedAgain: an organisation or a client made with the id of a
// removed one does not see the removed one's figures.
func TestFiguresOfAnIdUsedAgain(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	f := newFixture(t, st)
	start := st.Now()
	delivered := func(sub int64) store.Outcome {
		return store.Outcome{DeliveryID: 1 << 40, SubscriptionID: sub, Kind: store.OutcomeDelivered, Attempt: 1, StartedAt: st.Now(), Duration: time.Millisecond}
	}
	is.NoErr(recordOutcomes(ctx, st, []store.Outcome{delivered(f.orgHook.ID), delivered(f.platform.ID)}))
	figures := func(scope string) int {
		figs, err := st.Figures(ctx, []string{scope}, start.Add(-time.Hour), st.Now().Add(time.Minute))
		is.NoErr(err)
		n := 0
		for _, m := range figs {
			n += m.Delivered
		}
		return n
	}
	is.Equal(figures(store.OrgScope(f.org.ID)), 1)  // the organisation's
	is.Equal(figures(store.ClientScope(f.a.ID)), 1) // the client's
	is.Equal(figures(store.ScopeAll), 2)            // all of hookd's

	advance(time.Second) // the same minute
	is.NoErr(st.DeleteOrganisation(ctx, f.org.ID))
	again, err := store.CreateOrganisationWithID(ctx, st, f.org.ID, "Newcomer") // as a hookd before schema version 35 did
	is.NoErr(err)
	is.Equal(again.ID, f.org.ID)                   // the id is used again
	is.Equal(figures(store.OrgScope(again.ID)), 0) // and sees nothing of the old one's
	is.NoErr(st.RemoveClient(ctx, f.a.ID))
	_, err = st.CreateClient(ctx, store.NewClient{ID: f.a.ID, Name: "newcomer", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	is.Equal(figures(store.ClientScope(f.a.ID)), 0) // nor a client
	is.Equal(figures(store.ScopeAll), 2)            // hookd's own figures keep them
}

func TestConsoleListings(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	movable(st)
	f := newFixture(t, st)
	uids := func(rows []store.Subscription) string {
		var out []string
		for _, r := range rows {
			out = append(out, r.UID)
		}
		return strings.Join(out, ",")
	}

	t.Run("webhooks", func(t *testing.T) {
		is := is.New(t)
		all, err := st.Subscriptions(ctx, store.SubscriptionFilter{NewestFirst: true})
		is.NoErr(err)
		is.Equal(uids(all), f.orgHook.UID+","+f.orcidSub.UID+","+f.platform.UID) // newest first
		is.Equal(all[0].OrgName, "Uni")                                          // with the owner's name
		is.Equal(all[2].ClientName, "a")

		for _, tt := range []struct {
			name string
			q    store.SubscriptionFilter
			want string
		}{
			{"client a sees its own", store.SubscriptionFilter{NewestFirst: true, Visible: store.Visibility{ClientID: f.a.ID}}, f.platform.UID},
			{"staff see the organisation's", store.SubscriptionFilter{NewestFirst: true, Visible: store.Visibility{OrgID: f.org.ID}}, f.orgHook.UID},
			{"staff that own a webhook see both", store.SubscriptionFilter{NewestFirst: true, Visible: store.Visibility{ClientID: f.a.ID, OrgID: f.org.ID}}, f.orgHook.UID + "," + f.platform.UID},
			{"by client", store.SubscriptionFilter{NewestFirst: true, ClientID: f.b.ID}, f.orcidSub.UID},
			{"by format", store.SubscriptionFilter{NewestFirst: true, Format: store.FormatEmpty}, f.orcidSub.UID},
			{"covering a record", store.SubscriptionFilter{NewestFirst: true, Covers: "0000-0002-7253-3645"}, f.orcidSub.UID + "," + f.platform.UID},
			{"covering a member", store.SubscriptionFilter{NewestFirst: true, Covers: f.orgMember}, f.orgHook.UID + "," + f.platform.UID},
			{"URL contains, any case", store.SubscriptionFilter{NewestFirst: true, URLContains: "B.EXAMPLE"}, f.orcidSub.UID},
			{"paging", store.SubscriptionFilter{NewestFirst: true, BeforeID: f.orcidSub.ID}, f.platform.UID},
			{"status", store.SubscriptionFilter{NewestFirst: true, Status: "deactivated"}, ""},
		} {
			rows, err := st.Subscriptions(ctx, tt.q)
			is.NoErr(err)
			is.Equal(uids(rows), tt.want) // tt.name
		}
		_, err = st.Subscriptions(ctx, store.SubscriptionFilter{NewestFirst: true, Status: "sleeping"})
		is.True(errors.Is(err, store.ErrInvalid)) // an unknown status is refused
	})

	t.Run("deliveries", func(t *testing.T) {
		is := is.New(t)
		_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}, {Orcid: f.orgMember}}, 0)
		is.NoErr(err)
		all, err := st.Deliveries(ctx, store.DeliveryFilter{})
		is.NoErr(err)
		is.True(len(all) >= 4) // the ORCID-style, two platform ones, the CREATED and UPDATED of the member (merged)
		mine, err := st.Deliveries(ctx, store.DeliveryFilter{Visible: store.Visibility{ClientID: f.b.ID}})
		is.NoErr(err)
		is.Equal(len(mine), 1) // client b's one
		is.Equal(mine[0].Subject, "0000-0002-7253-3645")
		is.Equal(mine[0].ClientName, "b")
		orgs, err := st.Deliveries(ctx, store.DeliveryFilter{Visible: store.Visibility{OrgID: f.org.ID}})
		is.NoErr(err)
		is.Equal(len(orgs), 1) // the organisation's (the member's events merged)
		is.Equal(orgs[0].OrgName, "Uni")
		one, err := st.Delivery(ctx, store.DeliveryFilter{ID: orgs[0].ID})
		is.NoErr(err)
		is.Equal(one.Format, store.FormatHub)
		byRecord, err := st.Deliveries(ctx, store.DeliveryFilter{Orcid: f.orgMember, Webhook: f.platform.UID})
		is.NoErr(err)
		is.Equal(len(byRecord), 1) // the platform webhook's delivery of the member
		none, err := st.Deliveries(ctx, store.DeliveryFilter{Since: st.Now().Add(time.Minute)})
		is.NoErr(err)
		is.Equal(len(none), 0) // nothing since a minute from now
		_, err = st.Deliveries(ctx, store.DeliveryFilter{State: "lost"})
		is.True(errors.Is(err, store.ErrInvalid))
		_, err = st.Delivery(ctx, store.DeliveryFilter{ID: 1 << 40})
		is.True(errors.Is(err, store.ErrNotFound))

		figs, err := st.OutboxFigures(ctx, store.Visibility{ClientID: f.b.ID})
		is.NoErr(err)
		is.Equal(figs.Pending, 1) // client b's
		allFigs, err := st.OutboxFigures(ctx, store.Visibility{})
		is.NoErr(err)
		is.Equal(allFigs.Pending, len(all))
	})
}

func TestConsoleActions(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	movable(st)
	f := newFixture(t, st)

	t.Run("deactivate and activate any kind", func(t *testing.T) {
		is := is.New(t)
		_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, time.Hour)
		is.NoErr(err)
		sub, err := st.SetSubscriptionActive(ctx, f.orcidSub.UID, false, "")
		is.NoErr(err)
		is.True(!sub.Active) // an ORCID-style registration deactivated
		dead, err := st.Deliveries(ctx, store.DeliveryFilter{Webhook: f.orcidSub.UID, State: "dead"})
		is.NoErr(err)
		is.Equal(len(dead), 1) // its pending delivery is dead, replayable
		_, err = st.SendTestEvent(ctx, f.orcidSub.UID, "")
		is.True(errors.Is(err, store.ErrConflict)) // no test event to a deactivated webhook
		sub, err = st.SetSubscriptionActive(ctx, f.orcidSub.UID, true, "")
		is.NoErr(err)
		is.True(sub.Active)

		h, err := st.HubSettings(ctx, f.org.ID)
		is.NoErr(err)
		is.True(h.Enabled)
		_, err = st.SetSubscriptionActive(ctx, f.orgHook.UID, false, "")
		is.NoErr(err)
		h, err = st.HubSettings(ctx, f.org.ID)
		is.NoErr(err)
		is.True(!h.Enabled) // the organisation's form shows it off
	})

	t.Run("test event", func(t *testing.T) {
		is := is.New(t)
		id, err := st.SendTestEvent(ctx, f.platform.UID, "")
		is.NoErr(err)
		d, err := st.Delivery(ctx, store.DeliveryFilter{ID: id})
		is.NoErr(err)
		is.Equal(d.Subject, store.TestRecord) // a webhook of every record: ORCID's test record
		is.Equal(d.StateName(), "pending")
		is.True(!d.DueAt.After(st.Now())) // due now
		again, err := st.SendTestEvent(ctx, f.platform.UID, "")
		is.NoErr(err)
		is.Equal(again, id) // merged into the pending one
		d, err = st.Delivery(ctx, store.DeliveryFilter{ID: id})
		is.NoErr(err)
		is.Equal(d.EventCount, 2)
		id, err = st.SendTestEvent(ctx, f.orcidSub.UID, "0000-0001-5109-3700")
		is.NoErr(err)
		d, err = st.Delivery(ctx, store.DeliveryFilter{ID: id})
		is.NoErr(err)
		is.Equal(d.Subject, "0000-0002-7253-3645") // an ORCID-style one: its own record
	})

	t.Run("delete and upstream", func(t *testing.T) {
		is := is.New(t)
		is.NoErr(st.RemoveSubscription(ctx, f.orcidSub.UID))
		_, err := st.Subscription(ctx, f.orcidSub.UID)
		is.True(errors.Is(err, store.ErrNotFound)) // gone
		is.True(errors.Is(st.RemoveSubscription(ctx, f.orcidSub.UID), store.ErrNotFound))

		_, err = st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
		is.NoErr(err)
		up, err := st.Subscriptions(ctx, store.SubscriptionFilter{NewestFirst: true, Format: store.FormatUpstream})
		is.NoErr(err)
		is.Equal(len(up), 1)
		is.True(errors.Is(st.RemoveSubscription(ctx, up[0].UID), store.ErrConflict)) // hookd's own: it follows the configuration
		_, err = st.SetSubscriptionActive(ctx, up[0].UID, false, "")
		is.True(errors.Is(err, store.ErrConflict))
	})
}

func TestOrgClients(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	movable(st)
	org, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	staff, err := st.CreateOrgClient(ctx, org.ID, store.NewClient{Name: "uni-staff", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, err = st.CreateOrgClient(ctx, org.ID+1, store.NewClient{Name: "nowhere", Scopes: []string{store.ScopeWebhook}})
	is.True(errors.Is(err, store.ErrNotFound)) // no such organisation
	_, err = st.Client(ctx, "nowhere")
	is.True(errors.Is(err, store.ErrNotFound)) // and no client made
	_, err = st.CreateOrgClient(ctx, org.ID, store.NewClient{Name: "uni-admin", Scopes: []string{store.ScopeWebhook, store.ScopeAdmin}})
	is.True(errors.Is(err, store.ErrInvalid)) // staff cannot be the operator too
	_, err = st.Client(ctx, "uni-admin")
	is.True(errors.Is(err, store.ErrNotFound)) // and no client made

	rows, err := st.ConsoleClients(ctx)
	is.NoErr(err)
	is.Equal(len(rows), 1)
	is.Equal(rows[0].OrgName, "Uni") // listed with its organisation

	_, err = st.SignInClient(ctx, staff.ID, staff.Secret, spec("s"))
	is.NoErr(err)
	s, err := st.Session(ctx, secret.Hash("s"), time.Hour)
	is.NoErr(err)
	is.Equal(s.OrgID, org.ID) // signed in as the organisation's staff
	is.Equal(s.OrgName, "Uni")

	is.NoErr(st.DeleteOrganisation(ctx, org.ID))
	_, err = st.Client(ctx, staff.ID)
	is.True(errors.Is(err, store.ErrNotFound)) // the organisation's staff client went with it
	_, err = st.Session(ctx, secret.Hash("s"), time.Hour)
	is.True(errors.Is(err, store.ErrNotFound)) // and its session
}

func TestAuditLog(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	movable(st)
	add := func(e store.AuditEntry) {
		e.Via = store.ViaConsole
		e.Address = "192.0.2.7"
		is.NoErr(st.Audit(ctx, e))
	}
	add(store.AuditEntry{Actor: store.ActorAdminToken, Action: "client.create", Target: "APP-A", ClientID: "APP-A"})
	add(store.AuditEntry{Actor: "APP-A", Action: "webhook.deactivate", Target: "w1", ClientID: "APP-A"})
	add(store.AuditEntry{Actor: store.ActorAdminToken, Action: "organisation.webhook", Target: "7", OrgID: 7})
	add(store.AuditEntry{Actor: "APP-S", Action: "organisation.members.import", Target: "7", OrgID: 7, Detail: strings.Repeat("x", 5000)})
	is.True(errors.Is(st.Audit(ctx, store.AuditEntry{Actor: "x", Action: "y"}), store.ErrInvalid)) // via is required

	actions := func(q store.AuditQuery) string {
		es, err := st.AuditLog(ctx, q)
		is.NoErr(err)
		var out []string
		for _, e := range es {
			out = append(out, e.Action)
		}
		return strings.Join(out, " ")
	}
	is.Equal(actions(store.AuditQuery{}), "organisation.members.import organisation.webhook webhook.deactivate client.create")   // newest first
	is.Equal(actions(store.AuditQuery{Visible: store.Visibility{ClientID: "APP-A"}}), "webhook.deactivate client.create")        // a client: its own and about it
	is.Equal(actions(store.AuditQuery{Visible: store.Visibility{OrgID: 7}}), "organisation.members.import organisation.webhook") // staff: the organisation's
	is.Equal(actions(store.AuditQuery{Actor: store.ActorAdminToken, Action: "organisation."}), "organisation.webhook")
	es, err := st.AuditLog(ctx, store.AuditQuery{Limit: 1})
	is.NoErr(err)
	is.True(len(es[0].Detail) < 1100)    // free text is bounded
	is.Equal(es[0].Address, "192.0.2.7") // with the address
	is.Equal(es[0].At, st.Now())
	is.Equal(actions(store.AuditQuery{Before: es[0].ID, Limit: 1}), "organisation.webhook") // paging
}

// TestUpgradeToConsole opens a file as version 4 left it: the console's migration
// runs and the file is usable.
func TestUpgradeToConsole(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	box := newBox(t)
	is.NoErr(store.MigrateTo(ctx, path, 4)) // a file of the schema before the console
	st := openAt(t, path, box)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "old", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // the upgraded file takes a client
	_, err = st.SignInClient(ctx, c.ID, c.Secret, store.SessionSpec{IDHash: secret.Hash("x"), CSRF: "t", MaxAge: time.Hour, Idle: time.Hour})
	is.NoErr(err) // who signs in to the console
}

// TestFailingWebhooks finds the failing endpoints through their index and counts
// each one's deliveries only up to FailingCap+1.
func TestFailingWebhooks(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	movable(st)
	f := newFixture(t, st)
	var events []store.Event
	for i := range store.FailingCap + 5 {
		events = append(events, store.Event{Orcid: memberOrcid(i)})
	}
	_, err := st.Intake(ctx, "", "", events, 0)
	is.NoErr(err)
	claimed, err := st.Claim(ctx, 10*store.FailingCap, time.Minute)
	is.NoErr(err)
	var newest int64 // the platform webhook's newest delivery, which answered otherwise
	for _, c := range claimed {
		if c.Target.SubscriptionID == f.platform.ID {
			newest = max(newest, c.ID)
		}
	}
	var outs []store.Outcome
	for _, c := range claimed {
		kind := store.OutcomeReleased
		if c.Target.SubscriptionID == f.platform.ID {
			kind = store.OutcomeDead
		}
		status := 502
		if c.ID == newest {
			status = 503
		}
		outs = append(outs, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: kind, Attempt: c.Attempt,
			StartedAt: st.Now(), Status: status, Error: fmt.Sprintf("HTTP %d", status), RetryAt: st.Now().Add(time.Hour)})
	}
	is.NoErr(recordOutcomes(ctx, st, outs))

	failing, err := st.FailingWebhooks(ctx, store.Visibility{}, 5)
	is.NoErr(err)
	is.Equal(len(failing), 1)                     // the platform webhook
	is.Equal(failing[0].UID, f.platform.UID)      //
	is.Equal(failing[0].Dead, store.FailingCap+1) // counted up to the cap
	is.Equal(failing[0].Retrying, 0)              //
	is.Equal(failing[0].LastStatus, 503)          // its answer, from its newest dead delivery when none waits for a retry
	is.Equal(failing[0].LastError, "HTTP 503")    //
	mine, err := st.FailingWebhooks(ctx, store.Visibility{ClientID: f.b.ID}, 5)
	is.NoErr(err)
	is.Equal(len(mine), 0) // not client b's
	figs, err := st.OutboxFigures(ctx, store.Visibility{ClientID: f.a.ID})
	is.NoErr(err)
	is.Equal(figs.Dead, store.FailingCap+5) // an owner's counts go further
	is.True(figs.RetryingKnown)
	// Read the other way round, as for an owner of many subscriptions (each
	// state's index, testing each row's owner): the same figures.
	for _, v := range []store.Visibility{{ClientID: f.a.ID}, {ClientID: f.b.ID}, {OrgID: f.org.ID}, {ClientID: f.b.ID, OrgID: f.org.ID}} {
		want, err := st.OutboxFigures(ctx, v)
		is.NoErr(err)
		restore := store.SetOwnerSubscriptionsCap(1)
		got, err := st.OutboxFigures(ctx, v)
		restore()
		is.NoErr(err)
		is.Equal(got, want)
	}
	restore := store.SetOwnerSubscriptionsCap(1)
	defer restore()
	figs, err = st.OutboxFigures(ctx, store.Visibility{ClientID: f.a.ID})
	is.NoErr(err)
	is.Equal(figs.Dead, store.FailingCap+5) // client a's, counted through the dead ones' index
}

// recordOutcomes records outcomes as a turn of the dispatch loop does, claiming nothing.
func recordOutcomes(ctx context.Context, st *store.Store, outs []store.Outcome) error {
	_, err := st.Exchange(ctx, outs, 0, 0)
	return err
}

// TestPurgeAudit: the audit log's retention deletes what is older than its time,
// at most a batch at a time, oldest first.
func TestPurgeAudit(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	for i := range 5 {
		is.NoErr(st.Audit(ctx, store.AuditEntry{Actor: "APP-A", Via: store.ViaConsole, Action: "a" + strconv.Itoa(i)}))
		advance(time.Hour)
	}
	cut := st.Now().Add(-90 * time.Minute) // after the fourth entry
	n, err := st.PurgeAudit(ctx, cut, 2)
	is.NoErr(err)
	is.Equal(n, 2) // a batch
	n, err = st.PurgeAudit(ctx, cut, 2)
	is.NoErr(err)
	is.Equal(n, 2) // another
	n, err = st.PurgeAudit(ctx, cut, 2)
	is.NoErr(err)
	is.Equal(n, 0) // nothing older is left
	es, err := st.AuditLog(ctx, store.AuditQuery{})
	is.NoErr(err)
	is.Equal(len(es), 1) // the youngest stays
	is.Equal(es[0].Action, "a4")
}

// TestPurgeTokens: retention deletes the access tokens that expired or were
// revoked before its time, with their refresh tokens, a batch at a time, and
// keeps every token still of use.
func TestPurgeTokens(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	creds, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	c, err := st.Client(ctx, creds.ID)
	is.NoErr(err)
	issue := func(ttl time.Duration) store.Token {
		tok, err := st.IssueToken(ctx, c, []string{store.ScopeWebhook}, ttl)
		is.NoErr(err)
		return tok
	}
	start := st.Now()
	expiring, revoked, lasting := issue(time.Hour), issue(time.Hour), issue(30*24*time.Hour)
	is.NoErr(st.RevokeToken(ctx, c.ID, revoked.Access))
	var old []store.Token
	for range 3 {
		old = append(old, issue(time.Minute))
	}
	advance(2 * time.Hour)

	n, err := st.PurgeTokens(ctx, start.Add(30*time.Minute), 2)
	is.NoErr(err)
	is.Equal(n, 2) // a batch of the four spent before then: the revoked one and the three of a minute
	n, err = st.PurgeTokens(ctx, start.Add(30*time.Minute), 2)
	is.NoErr(err)
	is.Equal(n, 2) // the rest of them
	_, err = st.TokenInfo(ctx, expiring.Access)
	is.True(errors.Is(err, store.ErrTokenExpired)) // expired after that time: kept, and refused as expired
	n, err = st.PurgeTokens(ctx, st.Now(), 10)
	is.NoErr(err)
	is.Equal(n, 1) // now it goes too

	for _, tok := range append(old, expiring, revoked) {
		_, err = st.TokenInfo(ctx, tok.Access)
		is.True(errors.Is(err, store.ErrTokenInvalid)) // unknown
	}
	_, err = st.RefreshToken(ctx, c, expiring.Refresh, nil, time.Hour, false)
	is.True(errors.Is(err, store.ErrTokenInvalid)) // its refresh token went with it
	got, err := st.TokenInfo(ctx, lasting.Access)
	is.NoErr(err) // the token still of use stays
	is.Equal(got.ClientID, c.ID)
	_, err = st.RefreshToken(ctx, c, lasting.Refresh, nil, time.Hour, false)
	is.NoErr(err) // and so does its refresh token
}

// TestSignInWhileRehashed: two console sign-ins at once with the right secret of a
// client whose chosen secret an older hookd stored with the quick hash both open a
// session, though the first one's check makes the hash again (argon2id) under the
// second.
func TestSignInWhileRehashed(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "old", Scopes: []string{store.ScopeWebhook}, ID: "old", Secret: "a secret of my own"})
	is.NoErr(err)
	for round := range 10 {
		salt := secret.Random(16) // as an older hookd stored a chosen secret
		is.NoErr(store.ExecWrite(ctx, st, "UPDATE clients SET secret_salt = ?, secret_hash = ? WHERE id = ?", salt, secret.SaltedHash(salt, "a secret of my own"), c.ID))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				_, errs[i] = st.SignInClient(ctx, c.ID, "a secret of my own", spec(fmt.Sprintf("r%d-%d", round, i)))
			})
		}
		wg.Wait()
		is.NoErr(errs[0]) // both sign in
		is.NoErr(errs[1])
	}
}

// TestAuditClipsForeignClientIDs: an audit entry whose client id no client can
// have (a failed sign-in's, typed by anyone, 60,000 characters) is kept without it,
// its actor clipped: the log does not grow by what an outsider types.
// TestAuditCutsURLs: an audit entry keeps the URLs of its detail as the logs do,
// without their user, query or fragment (a query may carry a token), and the rest
// of the detail as given.
func TestAuditCutsURLs(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	is.NoErr(st.Audit(ctx, store.AuditEntry{Actor: "(operator)", Via: store.ViaAPI, Action: "webhook.delete", Target: "w1",
		Detail: "url https://u:pw@hooks.example/in?token=CLOSEDQ-12#f, e-mail it@uni.example, then http://127.0.0.1:9/x?key=ORGURLQUERY-31"}))
	es, err := st.AuditLog(ctx, store.AuditQuery{})
	is.NoErr(err)
	is.Equal(len(es), 1)
	is.Equal(es[0].Detail, "url https://hooks.example/in, e-mail it@uni.example, then http://127.0.0.1:9/x")

	for detail, want := range map[string]string{
		`"https://h.example/it's?token=A4"`:   `"https://h.example/it's"`,
		`HTTPS://H.example/a"b?token=A5`:      `https://H.example/a%22b`,
		`target:https://h.example/x?token=A6`: `target:https://h.example/x`,
	} {
		is.NoErr(st.Audit(ctx, store.AuditEntry{Actor: "(operator)", Via: store.ViaAPI, Action: "webhook.delete", Target: "w", Detail: detail}))
		es, err := st.AuditLog(ctx, store.AuditQuery{Limit: 1})
		is.NoErr(err)
		is.Equal(es[0].Detail, want) // quotes in the path, capitals, a URL glued to a word
	}
}

// TestLoggedURL: a URL as the logs and the audit log write it keeps no
// credential: not its user, query or fragment, nor the key of a relay callback,
// which a hookd in Hub mode registers at the hookd serving as its upstream; a path
// that only looks like one in part keeps its last segment.
func TestLoggedURL(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{"https://u:pw@hooks.example/in?token=T#f", "https://hooks.example/in"},
		{"http://127.0.0.1:8080/relay/0000-0002-7253-3645/6dc9ba0ed70fab6ccfd2d1e54de534654cccbde1", "http://127.0.0.1:8080/relay/0000-0002-7253-3645/[redacted]"},
		{"https://hub.example/hookd/relay/0000-0002-1825-0097/KEY?x=1", "https://hub.example/hookd/relay/0000-0002-1825-0097/[redacted]"},
		{"https://hub.example/%72elay/0000-0002-1825-0097/K%45Y", "https://hub.example/%72elay/0000-0002-1825-0097/[redacted]"}, // escaped as it was written
		{"https://h.example/relay/0000-0002-1825-0098/KEY", "https://h.example/relay/0000-0002-1825-0098/KEY"},                  // not an iD
		{"https://h.example/relay/0000-0002-1825-0097/", "https://h.example/relay/0000-0002-1825-0097/"},                        // no key
		{"https://h.example/x/relay/0000-0002-1825-0097", "https://h.example/x/relay/0000-0002-1825-0097"},
	} {
		t.Run(tt.raw, func(t *testing.T) {
			is := is.New(t)
			u, err := url.Parse(tt.raw)
			is.NoErr(err)
			is.Equal(store.LoggedURL(u), tt.want)
			is.Equal(u.String(), tt.raw) // u is left as it was
		})
	}
}

func TestAuditClipsForeignClientIDs(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	long := strings.Repeat("x", 60000)
	is.NoErr(st.Audit(ctx, store.AuditEntry{Actor: long, Via: store.ViaConsole, Action: "signin.failed", Target: long, ClientID: long}))
	n, err := store.QueryInt(ctx, st, "SELECT max(length(coalesce(client_id, '')) + length(actor) + length(target)) FROM audit_log")
	is.NoErr(err)
	is.True(n <= 600) // clipped (256 bytes and a mark each), the client id dropped
}

// TestAuditPurgeAfterTheClockStepsBack: entries written while the clock ran a
// month ahead (then stepped back) hold the lowest ids with a time still to come;
// the older entries written after them are purged all the same.
func TestAuditPurgeAfterTheClockStepsBack(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	e := store.AuditEntry{Actor: store.ActorAdminToken, Via: store.ViaAPI, Address: "127.0.0.1", Action: "organisation.update"}
	advance(30 * 24 * time.Hour) // the clock runs a month ahead
	for range 500 {
		is.NoErr(st.Audit(ctx, e))
	}
	advance(-30 * 24 * time.Hour) // NTP steps it back
	e.Action = "webhook.deactivate"
	for range 10 {
		is.NoErr(st.Audit(ctx, e))
	}
	advance(48 * time.Hour)
	// a retention of one day: the 10 entries at "now - 48h" are due for purging
	n, err := st.PurgeAudit(ctx, st.Now().Add(-24*time.Hour), 500)
	is.NoErr(err)
	is.Equal(n, 10) // the entries written since, two days old
}

// TestOldestDueAcrossReleases: a delivery handed back unattempted turn after turn
// (its host busy) is as old in the gauges and the overview as the time it has
// waited since it was due, not the tick it was last due again; once attempted,
// its wait starts over at its retry.
func TestOldestDueAcrossReleases(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	f := newFixture(t, st)
	_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
	is.NoErr(err)
	age := func() (all, mine time.Duration) {
		g, err := st.Gauges(ctx)
		is.NoErr(err)
		o, err := st.OutboxFigures(ctx, store.Visibility{ClientID: f.b.ID})
		is.NoErr(err)
		return g.OldestDueAge, o.OldestDueAge
	}
	turn := func(kind store.OutcomeKind, retry time.Duration) {
		claimed, err := st.Claim(ctx, 100, time.Minute)
		is.NoErr(err)
		is.True(len(claimed) > 0) // the delivery was due
		var outs []store.Outcome
		for _, c := range claimed {
			outs = append(outs, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: kind, Attempt: c.Attempt,
				StartedAt: st.Now(), Status: 503, Error: "HTTP 503", RetryAt: st.Now().Add(retry)})
		}
		is.NoErr(recordOutcomes(ctx, st, outs))
	}
	for range 5 {
		advance(time.Second)
		turn(store.OutcomeReleased, 200*time.Millisecond)
	}
	advance(100 * time.Millisecond)
	all, mine := age()
	is.Equal(all, 5100*time.Millisecond)  // due since the event came, handed back five times
	is.Equal(mine, 5100*time.Millisecond) // the owner's overview too

	advance(200 * time.Millisecond)
	turn(store.OutcomeRetry, 10*time.Second)
	advance(time.Second)
	all, mine = age()
	is.Equal(all, time.Duration(0)) // attempted: waiting for its retry, not due
	is.Equal(mine, time.Duration(0))
	advance(10 * time.Second)
	all, mine = age()
	is.Equal(all, time.Second) // due since its retry time
	is.Equal(mine, time.Second)
}

// TestOldestDueWhileClaimedAgain: a delivery handed back unattempted turn after
// turn is claimed again at each turn it is due, and is in flight until the next
// turn hands it back: it is as old then as it was, in the gauges and in each
// owner's overview, not gone from them (a backlog its host cannot take was
// claimed whole, and the age read 0 a turn out of every few); once attempted,
// its wait starts over.
func TestOldestDueWhileClaimedAgain(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	f := newFixture(t, st)
	staff, err := st.CreateClient(ctx, store.NewClient{Name: "staff", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	// Client b's webhook, client a's platform webhook, and the organisation's.
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}, {Orcid: f.orgMember}}, 0)
	is.NoErr(err)
	ages := func() []time.Duration {
		g, err := st.Gauges(ctx)
		is.NoErr(err)
		out := []time.Duration{g.OldestDueAge}
		for _, v := range []store.Visibility{{ClientID: f.a.ID}, {ClientID: f.b.ID}, {ClientID: staff.ID, OrgID: f.org.ID}} {
			o, err := st.OutboxFigures(ctx, v)
			is.NoErr(err)
			out = append(out, o.OldestDueAge)
		}
		return out
	}
	claim := func() []store.Claimed {
		claimed, err := st.Claim(ctx, 100, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 4) // every delivery was due
		return claimed
	}
	record := func(claimed []store.Claimed, kind store.OutcomeKind, retry time.Duration) {
		var outs []store.Outcome
		for _, c := range claimed {
			outs = append(outs, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: kind, Attempt: c.Attempt,
				StartedAt: st.Now(), Status: 503, Error: "HTTP 503", RetryAt: st.Now().Add(retry)})
		}
		is.NoErr(recordOutcomes(ctx, st, outs))
	}
	for range 3 {
		advance(time.Second)
		record(claim(), store.OutcomeReleased, 200*time.Millisecond)
	}
	advance(time.Second)
	claimed := claim() // claimed again, to be handed back at the next turn
	advance(100 * time.Millisecond)
	want := 4100 * time.Millisecond // due since the events came
	is.Equal(ages(), []time.Duration{want, want, want, want})

	record(claimed, store.OutcomeReleased, 200*time.Millisecond)
	is.Equal(ages(), []time.Duration{want, want, want, want}) // handed back: as old

	advance(200 * time.Millisecond)
	claimed = claim()
	record(claimed, store.OutcomeRetry, 10*time.Second)
	is.Equal(ages(), []time.Duration{0, 0, 0, 0}) // attempted: waiting for its retry
}

// TestOldestDueAcrossCrash: a delivery handed back unsent turn after turn (its
// host busy), out again when hookd is killed (a crash, an OOM kill, a power cut),
// is due again at the next start (RecoverInFlight) as it was: as old in the gauges
// and the owner's overview as the time it has waited since it was due, not 0, and
// so is one that was out for its first call, which has not been answered either.
func TestOldestDueAcrossCrash(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	box := newBox(t)
	st, err := store.Open(ctx, store.Options{Path: path, Box: box})
	is.NoErr(err) // open store
	advance := movable(st)
	f := newFixture(t, st)
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
	is.NoErr(err)
	claim := func(st *store.Store) []store.Claimed {
		claimed, err := st.Claim(ctx, 100, time.Minute)
		is.NoErr(err)
		return claimed
	}
	for range 3 {
		advance(time.Second)
		var outs []store.Outcome
		for _, c := range claim(st) {
			outs = append(outs, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeReleased,
				Attempt: c.Attempt, RetryAt: st.Now().Add(200 * time.Millisecond)})
		}
		is.Equal(len(outs), 2) // both deliveries were due, and handed back unsent
		is.NoErr(recordOutcomes(ctx, st, outs))
	}
	advance(time.Second)
	is.Equal(len(claim(st)), 2) // out again when hookd is killed
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: f.orgMember}}, 0)
	is.NoErr(err)
	is.Equal(len(claim(st)), 2) // the organisation's two, out for their first call
	advance(time.Second)
	g, err := st.Gauges(ctx)
	is.NoErr(err)
	is.Equal(g.OldestDueAge, 5*time.Second) // due since the first event came
	is.NoErr(st.Close())                    // killed: no outcome recorded

	st, err = store.Open(ctx, store.Options{Path: path, Box: box})
	is.NoErr(err) // the next start
	defer st.Close()
	now := time.Date(2024, 3, 1, 12, 0, 6, 0, time.UTC) // a second later
	st.Now = func() time.Time { return now }
	n, err := st.RecoverInFlight(ctx)
	is.NoErr(err)
	is.Equal(n, 4) // every delivery out is due again
	g, err = st.Gauges(ctx)
	is.NoErr(err)
	is.Equal(g.InFlight, 0)
	is.Equal(g.Pending, 4)
	is.Equal(g.OldestDueAge, 6*time.Second) // still due since the first event came
	o, err := st.OutboxFigures(ctx, store.Visibility{ClientID: f.b.ID})
	is.NoErr(err)
	is.Equal(o.OldestDueAge, 6*time.Second) // the owner's overview too
	o, err = st.OutboxFigures(ctx, store.Visibility{OrgID: f.org.ID})
	is.NoErr(err)
	is.Equal(o.OldestDueAge, 2*time.Second) // the organisation's, due since their event
}

// TestOldestDueAcrossReplayOfWaiting: a delivery handed back unsent, replayed
// while it waits (its page's button, or a bulk replay of the failed ones), is due
// now with a fresh retry budget, but has not been sent: it keeps how long it has
// waited, in the gauges and the owner's overview, and so across its next hand-backs.
func TestOldestDueAcrossReplayOfWaiting(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	f := newFixture(t, st)
	_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
	is.NoErr(err)
	ages := func() []time.Duration {
		g, err := st.Gauges(ctx)
		is.NoErr(err)
		o, err := st.OutboxFigures(ctx, store.Visibility{ClientID: f.b.ID})
		is.NoErr(err)
		return []time.Duration{g.OldestDueAge, o.OldestDueAge}
	}
	turn := func(kind store.OutcomeKind, retry time.Duration) {
		claimed, err := st.Claim(ctx, 100, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 2) // both deliveries were due
		var outs []store.Outcome
		for _, c := range claimed {
			outs = append(outs, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: kind, Attempt: c.Attempt,
				StartedAt: st.Now(), Status: 503, Error: "HTTP 503", RetryAt: st.Now().Add(retry)})
		}
		is.NoErr(recordOutcomes(ctx, st, outs))
	}
	for range 3 {
		advance(time.Second)
		turn(store.OutcomeReleased, 500*time.Millisecond)
	}
	is.Equal(ages(), []time.Duration{3 * time.Second, 3 * time.Second}) // due since the event came

	pending, err := st.Deliveries(ctx, store.DeliveryFilter{State: "pending"})
	is.NoErr(err)
	is.Equal(len(pending), 2)
	for _, d := range pending {
		_, err := st.Replay(ctx, store.DeliveryFilter{ID: d.ID}) // its page's button
		is.NoErr(err)
	}
	is.Equal(ages(), []time.Duration{3 * time.Second, 3 * time.Second}) // replayed, not sent: as old
	advance(time.Second)
	turn(store.OutcomeReleased, 500*time.Millisecond)
	is.Equal(ages(), []time.Duration{4 * time.Second, 4 * time.Second}) // and so across its next hand-back

	// Failed, then due for its retry and handed back, then replayed in bulk.
	advance(time.Second)
	turn(store.OutcomeRetry, 10*time.Second)
	is.Equal(ages(), []time.Duration{0, 0}) // attempted: waiting for its retry
	advance(10 * time.Second)
	turn(store.OutcomeReleased, 500*time.Millisecond)
	advance(time.Second)
	is.Equal(ages(), []time.Duration{time.Second, time.Second}) // due since its retry time
	res, err := st.Replay(ctx, store.DeliveryFilter{Since: st.Now().Add(-time.Hour)})
	is.NoErr(err)
	is.Equal(res.Replayed, 2)
	is.Equal(ages(), []time.Duration{time.Second, time.Second}) // replayed, not sent: as old
}

// TestOldestDueContinuedInReplayed: a delivery handed back unsent whose record's
// finished delivery was replayed while it was out ends in that one, which carries
// its events (continued as): the wait of those events goes with them.
func TestOldestDueContinuedInReplayed(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	f := newFixture(t, st)
	intake := func() {
		_, err := st.Intake(ctx, f.b.ID, "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
		is.NoErr(err)
	}
	age := func() time.Duration {
		o, err := st.OutboxFigures(ctx, store.Visibility{ClientID: f.b.ID})
		is.NoErr(err)
		g, err := st.Gauges(ctx)
		is.NoErr(err)
		is.Equal(g.OldestDueAge, o.OldestDueAge) // (client a's platform webhook has nothing waiting)
		return o.OldestDueAge
	}
	claim := func() []store.Claimed {
		claimed, err := st.Claim(ctx, 100, time.Minute)
		is.NoErr(err)
		var mine []store.Claimed
		for _, c := range claimed {
			if c.Target.SubscriptionID == f.orcidSub.ID {
				mine = append(mine, c)
				continue
			}
			is.NoErr(recordOutcomes(ctx, st, []store.Outcome{{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID,
				Kind: store.OutcomeDelivered, Attempt: c.Attempt, StartedAt: st.Now(), Status: 204}}))
		}
		is.Equal(len(mine), 1) // the record's delivery was due
		return mine
	}
	outcome := func(c store.Claimed, kind store.OutcomeKind) {
		is.NoErr(recordOutcomes(ctx, st, []store.Outcome{{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: kind,
			Attempt: c.Attempt, StartedAt: st.Now(), Status: 204, RetryAt: st.Now().Add(500 * time.Millisecond)}}))
	}
	intake()
	first := claim()[0]
	outcome(first, store.OutcomeDelivered) // delivered

	intake() // a new event: a new delivery
	start := st.Now()
	for range 3 {
		advance(time.Second)
		outcome(claim()[0], store.OutcomeReleased) // its host busy
	}
	advance(time.Second)
	out := claim()[0]                                            // out again
	_, err := st.Replay(ctx, store.DeliveryFilter{ID: first.ID}) // the delivered one replayed meanwhile: waiting, beside it
	is.NoErr(err)
	outcome(out, store.OutcomeReleased) // handed back: it ends in the replayed one
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{ID: out.ID})
	is.NoErr(err)
	is.Equal(ds[0].LastError, fmt.Sprintf("continued as delivery %d", first.ID))
	advance(time.Second)
	is.Equal(age(), st.Now().Sub(start)) // its events have waited since they were due
	advance(time.Second)
	outcome(claim()[0], store.OutcomeReleased) // and on, handed back again
	is.Equal(age(), st.Now().Sub(start))
}
