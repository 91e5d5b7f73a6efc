package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/orcid"
	"hookd/store"
)

// memberOrcid returns the i-th of a series of valid iDs.
func memberOrcid(i int) string {
	base := fmt.Sprintf("000000010%06d", i)
	id := base + string(orcid.CheckDigit(base))
	return id[0:4] + "-" + id[4:8] + "-" + id[8:12] + "-" + id[12:16]
}

func ptr(s string) *string { return &s }

func TestOrganisations(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)

	o, err := st.CreateOrganisation(ctx, " University of Testing ", "tech@uni.example")
	is.NoErr(err)                                    // create
	is.Equal(o.Name, "University of Testing")        // name trimmed
	is.Equal(o.TechContactEmail, "tech@uni.example") // contact kept

	_, err = st.CreateOrganisation(ctx, "University of Testing", "x@uni.example")
	is.True(errors.Is(err, store.ErrConflict)) // the name is taken
	_, err = st.CreateOrganisation(ctx, "Other", "not an address")
	is.True(errors.Is(err, store.ErrInvalid))                    // bad e-mail
	is.True(strings.Contains(err.Error(), "tech-contact-email")) // names the field
	_, err = st.CreateOrganisation(ctx, "", "a@b.example")
	is.True(errors.Is(err, store.ErrInvalid)) // no name
	list, err := st.Organisations(ctx)
	is.NoErr(err)
	is.Equal(len(list), 1) // bad input changed nothing

	up, err := st.UpdateOrganisation(ctx, o.ID, store.OrganisationPatch{TechContactEmail: ptr("it@uni.example")})
	is.NoErr(err)                                   // update
	is.Equal(up.TechContactEmail, "it@uni.example") // changed
	is.Equal(up.Name, o.Name)                       // the rest kept
	_, err = st.UpdateOrganisation(ctx, o.ID, store.OrganisationPatch{Name: ptr("")})
	is.True(errors.Is(err, store.ErrInvalid)) // empty name refused
	got, err := st.Organisation(ctx, o.ID)
	is.NoErr(err)
	is.Equal(got.Name, o.Name) // unchanged by the refused update

	is.NoErr(st.DeleteOrganisation(ctx, o.ID)) // delete
	_, err = st.Organisation(ctx, o.ID)
	is.True(errors.Is(err, store.ErrNotFound))                              // gone
	is.True(errors.Is(st.DeleteOrganisation(ctx, o.ID), store.ErrNotFound)) // twice
}

func TestMembersFanOut(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	a, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	b, err := st.CreateOrganisation(ctx, "B", "tech@b.example")
	is.NoErr(err)
	_, newly, err := st.SetHubSettings(ctx, a.ID, store.HubSettings{Enabled: true, URL: "https://a.example/hook", APIKey: ptr("k1"), EmailEnabled: true})
	is.NoErr(err)
	is.True(newly) // newly enabled
	_, _, err = st.SetHubSettings(ctx, b.ID, store.HubSettings{Enabled: true, URL: "https://b.example/hook"})
	is.NoErr(err)

	m := memberOrcid(1)
	created, err := st.PutMember(ctx, a.ID, m, store.MemberInfo{Name: ptr("Ann"), Email: ptr("ann@a.example")}, 0)
	is.NoErr(err)
	is.True(created) // new member
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Orcid: m})
	is.NoErr(err)
	is.Equal(len(ds), 2) // CREATED for A's webhook and e-mail, nothing for B
	for _, d := range ds {
		is.Equal(d.EventType, store.EventCreated)
	}

	created, err = st.PutMember(ctx, a.ID, m, store.MemberInfo{EPPN: ptr("ann@a")}, 0)
	is.NoErr(err)
	is.True(!created) // existing member
	ms, err := st.Members(ctx, a.ID)
	is.NoErr(err)
	is.Equal(len(ms), 1)
	is.Equal(ms[0].Name, "Ann")   // kept
	is.Equal(ms[0].EPPN, "ann@a") // set

	_, err = st.PutMember(ctx, a.ID, "0000-0002-7253-3646", store.MemberInfo{}, 0)
	is.True(errors.Is(err, store.ErrInvalid)) // bad checksum
	_, err = st.PutMember(ctx, a.ID, memberOrcid(2), store.MemberInfo{Email: ptr("nope")}, 0)
	is.True(errors.Is(err, store.ErrInvalid)) // bad e-mail
	ms, _ = st.Members(ctx, a.ID)
	is.Equal(len(ms), 1) // nothing added

	// An update of the record reaches every organisation it belongs to.
	_, err = st.PutMember(ctx, b.ID, m, store.MemberInfo{}, 0)
	is.NoErr(err)
	res, err := st.Intake(ctx, "test", "", []store.Event{{Orcid: m, Type: store.EventUpdated}}, 0)
	is.NoErr(err)
	is.Equal(res.Deliveries, 3) // A's webhook, A's e-mail (merged into pending rows), B's webhook

	info, err := st.HubDeliveryInfo(ctx, ds[0].SubscriptionID, m)
	is.NoErr(err)
	is.Equal(info.OrgName, "A")
	is.True(info.Member != nil)
	is.Equal(info.Member.Email, "ann@a.example")

	is.NoErr(st.RemoveMember(ctx, a.ID, m)) // remove
	ds, _ = st.Deliveries(ctx, store.DeliveryFilter{Orcid: m, State: "pending"})
	is.Equal(len(ds), 1)                                                 // only B's remains pending
	is.True(errors.Is(st.RemoveMember(ctx, a.ID, m), store.ErrNotFound)) // twice
}

func TestHubSettings(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)

	h, newly, err := st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h", AppendOrcid: true, APIKey: ptr("s3cret-key")})
	is.NoErr(err)
	is.True(newly)
	is.True(h.APIKeySet)
	is.True(h.APIKey == nil) // never returned
	is.True(h.AppendOrcid)

	// The apikey is sealed at rest.
	var raw []byte
	is.NoErr(rawDB(t, path).QueryRow("SELECT apikey FROM subscriptions WHERE format = 'hub'").Scan(&raw))
	is.True(!strings.Contains(string(raw), "s3cret-key")) // not in clear

	h, newly, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h2", EmailEnabled: true, NotificationEmail: "n@a.example"})
	is.NoErr(err)
	is.True(newly)       // e-mail newly on
	is.True(h.APIKeySet) // kept when not given
	is.Equal(h.URL, "https://a.example/h2")
	is.Equal(h.NotificationEmail, "n@a.example")

	_, newly, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h2", EmailEnabled: true, NotificationEmail: "n@a.example"})
	is.NoErr(err)
	is.True(!newly) // nothing newly enabled

	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true})
	is.True(errors.Is(err, store.ErrInvalid)) // enabled without url
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{NotificationEmail: "bad"})
	is.True(errors.Is(err, store.ErrInvalid)) // bad notification address
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{EmailEnabled: true, APIKey: ptr("new-key")})
	var se *store.Error
	is.True(errors.As(err, &se)) // an apikey without a url, which would be dropped with the webhook
	is.Equal(se.Field, "apikey") // named
	h, err = st.HubSettings(ctx, o.ID)
	is.NoErr(err)
	is.Equal(h.URL, "https://a.example/h2") // unchanged

	h, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: false, URL: "https://a.example/h2", APIKey: ptr("")})
	is.NoErr(err)
	is.True(!h.Enabled)      // off, URL kept
	is.True(!h.APIKeySet)    // cleared
	is.True(!h.EmailEnabled) // e-mail off and forgotten

	is.NoErr(st.DeleteHubSettings(ctx, o.ID))
	h, err = st.HubSettings(ctx, o.ID)
	is.NoErr(err)
	is.Equal(h, store.HubSettings{}) // all gone
}

func TestImportMembers(t *testing.T) {
	ctx := context.Background()
	var rows []store.MemberRow
	for i := 1; i <= 3000; i++ {
		rows = append(rows, store.MemberRow{Orcid: memberOrcid(i), Info: store.MemberInfo{
			Name: ptr(fmt.Sprintf("Person %d", i)), Email: ptr(fmt.Sprintf("p%d@uni.example", i)), EPPN: ptr(fmt.Sprintf("p%d@uni", i))}})
	}

	t.Run("new, then updated", func(t *testing.T) {
		is := is.New(t)
		st := newStore(t)
		o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
		is.NoErr(err)
		_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h"})
		is.NoErr(err)
		res, err := st.ImportMembers(ctx, o.ID, rows, 0)
		is.NoErr(err)
		is.Equal(res.Added, 3000)
		is.Equal(res.Deliveries, 3000) // one CREATED each
		ms, err := st.Members(ctx, o.ID)
		is.NoErr(err)
		is.Equal(len(ms), 3000)
		is.Equal(ms[0].Email, "p1@uni.example") // the row's fields

		// Again: every row is a member already, with the fields its row gives:
		// unchanged, not updated, and no CREATED is sent again.
		res, err = st.ImportMembers(ctx, o.ID, rows, 0)
		is.NoErr(err)
		is.Equal(res.Added, 0)
		is.Equal(res.Updated, 0)
		is.Equal(res.Unchanged, 3000)
		is.Equal(res.Deliveries, 0)

		// A row whose field differs updates its member; the others are unchanged.
		again := slices.Clone(rows)
		again[1].Info.Name = ptr("Person Two")
		res, err = st.ImportMembers(ctx, o.ID, again, 0)
		is.NoErr(err)
		is.Equal([]int{res.Added, res.Updated, res.Unchanged}, []int{0, 1, 2999})
		ms, err = st.Members(ctx, o.ID)
		is.NoErr(err)
		is.Equal(ms[1].Name, "Person Two")
	})

	t.Run("the webhook hears of each new member, the e-mail of none", func(t *testing.T) {
		is := is.New(t)
		st := newStore(t)
		o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
		is.NoErr(err)
		_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h", EmailEnabled: true})
		is.NoErr(err)
		res, err := st.ImportMembers(ctx, o.ID, rows[:50], 0)
		is.NoErr(err)
		is.Equal(res.Added, 50)
		is.Equal(res.Deliveries, 50) // one CREATED each, to the webhook
		ds, err := st.Deliveries(ctx, store.DeliveryFilter{OrgID: o.ID, Limit: 200})
		is.NoErr(err)
		formats := map[string]int{}
		for _, d := range ds {
			formats[d.Format]++
		}
		is.Equal(formats[store.FormatHub], 50)  // the webhook's
		is.Equal(formats[store.FormatEmail], 0) // no e-mail a member: a person's inbox is not flooded

		// A member added alone is still told to both, as one who links their record is.
		_, err = st.PutMember(ctx, o.ID, memberOrcid(4001), store.MemberInfo{}, 0)
		is.NoErr(err)
		ds, err = st.Deliveries(ctx, store.DeliveryFilter{Orcid: memberOrcid(4001)})
		is.NoErr(err)
		formats = map[string]int{}
		for _, d := range ds {
			formats[d.Format]++
		}
		is.Equal(formats[store.FormatHub], 1)
		is.Equal(formats[store.FormatEmail], 1)
	})

	t.Run("a bad row or organisation changes nothing", func(t *testing.T) {
		is := is.New(t)
		st := newStore(t)
		o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
		is.NoErr(err)
		bad := append(rows[:10:10], store.MemberRow{Orcid: "0000-0002-7253-3646"})
		_, err = st.ImportMembers(ctx, o.ID, bad, 0)
		is.True(errors.Is(err, store.ErrInvalid))                     // a row that does not check
		is.True(strings.Contains(err.Error(), "0000-0002-7253-3646")) // is named
		_, err = st.ImportMembers(ctx, o.ID+1, rows[:10], 0)
		is.True(errors.Is(err, store.ErrNotFound)) // no such organisation
		ms, err := st.Members(ctx, o.ID)
		is.NoErr(err)
		is.Equal(len(ms), 0) // nothing imported
	})
}

func TestUpstreamSync(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	m1, m2 := memberOrcid(1), memberOrcid(2)
	_, err = st.PutMember(ctx, o.ID, m1, store.MemberInfo{}, 0)
	is.NoErr(err)

	n, err := st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err)
	is.Equal(n, 0) // no organisation has anything enabled yet
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)
	_, err = st.PutMember(ctx, o.ID, m2, store.MemberInfo{}, 0)
	is.NoErr(err)
	ms, err := st.Members(ctx, o.ID)
	is.NoErr(err)
	is.Equal(ms[0].Upstream, "pending")
	is.Equal(ms[1].Upstream, "pending")
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Orcid: m1})
	is.NoErr(err)
	var orders []string
	for _, d := range ds {
		orders = append(orders, d.EventType)
	}
	is.True(strings.Contains(strings.Join(orders, ","), store.UpstreamRegister)) // a registration is queued

	is.NoErr(st.MarkUpstream(ctx, m1, store.UpstreamRegister, true, ""))
	is.NoErr(st.MarkUpstream(ctx, m2, store.UpstreamRegister, false, "HTTP 500"))
	ms, _ = st.Members(ctx, o.ID)
	is.Equal(ms[0].Upstream, "registered")
	is.Equal(ms[1].Upstream, "failed: HTTP 500")

	// The intake never matches the upstream subscription.
	res, err := st.Intake(ctx, "t", "", []store.Event{{Orcid: m1}}, time.Minute)
	is.NoErr(err)
	is.Equal(res.Deliveries, 1) // only the e-mail

	is.NoErr(st.RemoveMember(ctx, o.ID, m2))
	pending, err := st.Deliveries(ctx, store.DeliveryFilter{Orcid: m2, State: "pending"})
	is.NoErr(err)
	is.Equal(len(pending), 1)
	is.Equal(pending[0].EventType, store.UpstreamUnregister) // turned into an unregistration

	k1, err := st.RelayKey(ctx, m1)
	is.NoErr(err)
	ok, err := st.CheckRelayKey(ctx, m1, k1)
	is.NoErr(err)
	is.True(ok)
	ok, _ = st.CheckRelayKey(ctx, m2, k1)
	is.True(!ok) // a key is per record
}

// TestUnregistrationOutlivesUpstreamTurnedOff: a record left by its last
// organisation while its unregistration was still waiting (the upstream API down,
// say) is unregistered once upstream registration is configured again after a
// start without it, whose deactivation turned that order dead.
func TestUnregistrationOutlivesUpstreamTurnedOff(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	const api = "https://api.sandbox.orcid.org"
	o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)
	_, err = st.ConfigureUpstream(ctx, api)
	is.NoErr(err)
	m := memberOrcid(1)
	_, err = st.PutMember(ctx, o.ID, m, store.MemberInfo{}, 0)
	is.NoErr(err)
	is.NoErr(st.MarkUpstream(ctx, m, store.UpstreamRegister, true, "")) // registered upstream
	is.NoErr(st.RemoveMember(ctx, o.ID, m))
	order := func() []store.Delivery {
		t.Helper()
		ds, err := st.Deliveries(ctx, store.DeliveryFilter{Orcid: m, State: "pending"})
		is.NoErr(err) // pending orders
		return ds
	}
	is.Equal(len(order()), 1) // the unregistration waits

	_, err = st.ConfigureUpstream(ctx, "") // a start without [upstream]
	is.NoErr(err)
	is.Equal(len(order()), 0) // the order died with the deactivation

	_, err = st.ConfigureUpstream(ctx, api) // [upstream] again
	is.NoErr(err)
	ds := order()
	is.Equal(len(ds), 1)                                // the record is to be unregistered still
	is.Equal(ds[0].EventType, store.UpstreamUnregister) // as an unregistration
	wanted, err := st.UpstreamWanted(ctx, m)
	is.NoErr(err)
	is.True(!wanted) // its call is a DELETE
}

// TestUpstreamFollowsADeactivation: when hookd itself turns an organisation's only
// webhook off (a 410), the members it covered are unregistered upstream, as when
// the organisation's staff turn it off.
func TestUpstreamFollowsADeactivation(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	o := orgWithWebhook(t, st)
	_, err := st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err)
	m := memberOrcid(1)
	_, err = st.PutMember(ctx, o.ID, m, store.MemberInfo{}, 0)
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	var outs []store.Outcome
	for _, c := range claimed {
		o := answered(st, c, store.OutcomeDelivered)
		if c.EventType != store.UpstreamRegister {
			o = answered(st, c, store.OutcomeGone) // the organisation's webhook answers 410
		}
		outs = append(outs, o)
	}
	is.Equal(len(outs), 2) // the registration and the member's CREATED
	is.NoErr(st.MarkUpstream(ctx, m, store.UpstreamRegister, true, ""))
	_, err = st.Exchange(ctx, outs, 0, time.Minute)
	is.NoErr(err)
	h, err := st.HubSettings(ctx, o.ID)
	is.NoErr(err)
	is.True(!h.Enabled) // turned off by the 410
	pending, err := st.Deliveries(ctx, store.DeliveryFilter{Orcid: m, State: "pending"})
	is.NoErr(err)
	is.Equal(len(pending), 1)
	is.Equal(pending[0].EventType, store.UpstreamUnregister) // and the member is unregistered
	ms, err := st.Members(ctx, o.ID)
	is.NoErr(err)
	is.Equal(ms[0].Upstream, "") // covered by nothing
}

// sharedOrgs turns upstream registration on and makes organisation A, with a
// webhook, of the records memberOrcid(1) to memberOrcid(8), and organisation B,
// with e-mail, of memberOrcid(8) alone; it returns A.
func sharedOrgs(t *testing.T, st *store.Store) store.Organisation {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	a := orgWithWebhook(t, st)
	b, err := st.CreateOrganisation(ctx, "B", "tech@b.example")
	is.NoErr(err)
	_, _, err = st.SetHubSettings(ctx, b.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)
	_, err = st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err)
	for i := 1; i <= 8; i++ {
		_, err = st.PutMember(ctx, a.ID, memberOrcid(i), store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	_, err = st.PutMember(ctx, b.ID, memberOrcid(8), store.MemberInfo{}, 0) // covered by B too
	is.NoErr(err)
	return a
}

// TestUpstreamUnregisteredInBatches: the turn that turns an organisation's webhook
// off unregisters a batch of the records it alone covered; the retention pass's
// QueueUpstreamLeft queues the rest, a batch a call, and never a record another
// organisation still covers.
func TestUpstreamUnregisteredInBatches(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetUpstreamBatch(3)()
	st := newDaemonStore(t)
	a := sharedOrgs(t, st)
	c := orgWithEmail(t, st)
	_, err := st.PutMember(ctx, c.ID, memberOrcid(9), store.MemberInfo{}, 0) // C's alone
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 100, time.Minute)
	is.NoErr(err)
	var outs []store.Outcome
	for _, c := range claimed {
		kind := store.OutcomeDelivered
		if c.Target.Format == "hub" {
			kind = store.OutcomeGone // A's webhook answers 410
		}
		if c.EventType == store.UpstreamRegister {
			is.NoErr(st.MarkUpstream(ctx, c.Subject, store.UpstreamRegister, true, ""))
		}
		outs = append(outs, answered(st, c, kind))
	}
	is.Equal(len(outs), 9+8+1+1) // the registrations, A's CREATEDs, B's and C's e-mails
	_, err = st.Exchange(ctx, outs, 0, time.Minute)
	is.NoErr(err)
	// C's e-mail is turned off ahead of a removal (which may yet fail and turn it on
	// again): its member stays registered meanwhile, and A's sweep leaves it alone.
	cs, err := st.Subscriptions(ctx, store.SubscriptionFilter{OrgID: c.ID})
	is.NoErr(err)
	is.Equal(len(cs), 1)
	is.NoErr(store.KillAhead(ctx, st, cs[0].UID))
	h, err := st.HubSettings(ctx, a.ID)
	is.NoErr(err)
	is.True(!h.Enabled) // turned off by the 410

	unregistering := func() (orcids []string) {
		pending, err := st.Deliveries(ctx, store.DeliveryFilter{State: "pending"})
		is.NoErr(err)
		for _, d := range pending {
			if d.EventType == store.UpstreamUnregister {
				orcids = append(orcids, d.Subject)
			}
		}
		return orcids
	}
	is.Equal(len(unregistering()), 3)     // a batch in the turn
	for _, want := range []int{3, 2, 0} { // members looked at: A's 4th to 6th, then its 7th and 8th
		n, err := st.QueueUpstreamLeft(ctx, 3)
		is.NoErr(err)
		is.Equal(n, want)
	}
	got := unregistering()
	is.Equal(len(got), 7)
	is.True(!slices.Contains(got, memberOrcid(8))) // B still covers it
	is.True(!slices.Contains(got, memberOrcid(9))) // not A's member
	ms, err := st.Members(ctx, a.ID)
	is.NoErr(err)
	is.Equal(len(ms), 8) // A's members
	for _, m := range ms {
		if m.Orcid == memberOrcid(8) {
			is.Equal(m.Upstream, "registered")
		} else {
			is.Equal(m.Upstream, "") // covered by nothing
		}
	}
}

// TestMemberAddedWhileTurnedOffAheadIsRegistered: a member added while its
// organisation's only setting is turned off ahead of a removal is not registered
// upstream (nothing covers it meanwhile); when the removal does not come and the
// setting is on again, the member is registered, as are any members the batch
// leaves to the retention pass.
func TestMemberAddedWhileTurnedOffAheadIsRegistered(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetUpstreamBatch(2)()
	st := newDaemonStore(t)
	advance := movable(st)
	_, err := st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err)
	c := orgWithEmail(t, st)
	cs, err := st.Subscriptions(ctx, store.SubscriptionFilter{OrgID: c.ID})
	is.NoErr(err)
	is.Equal(len(cs), 1)
	is.NoErr(store.KillAhead(ctx, st, cs[0].UID)) // a removal began, and then its process stopped
	for i := 1; i <= 3; i++ {
		_, err = st.PutMember(ctx, c.ID, memberOrcid(i), store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	upstream := func() (got []string) {
		ms, err := st.Members(ctx, c.ID)
		is.NoErr(err)
		for _, m := range ms {
			got = append(got, m.Upstream)
		}
		return got
	}
	is.Equal(upstream(), []string{"", "", ""}) // covered by nothing meanwhile

	advance(16 * time.Minute)
	n, err := st.RecoverKilled(ctx, st.Now().Add(-15*time.Minute))
	is.NoErr(err)
	is.Equal(n, 1)
	is.Equal(upstream(), []string{"pending", "pending", "pending"})
	registering := func() (orcids []string) {
		pending, err := st.Deliveries(ctx, store.DeliveryFilter{State: "pending"})
		is.NoErr(err)
		for _, d := range pending {
			if d.EventType == store.UpstreamRegister {
				orcids = append(orcids, d.Subject)
			}
		}
		slices.Sort(orcids)
		return orcids
	}
	is.Equal(len(registering()), 2) // a batch with the setting
	n, err = st.QueueUpstreamLeft(ctx, 2)
	is.NoErr(err)
	is.Equal(n, 1)
	is.Equal(registering(), []string{memberOrcid(1), memberOrcid(2), memberOrcid(3)})
}

// TestUpstreamFollowsSettingsInBatches: turning an organisation's webhook off and
// on again (its staff's settings) unregisters and registers a batch of its members
// in the call, and QueueUpstreamLeft the rest; meanwhile the members not yet done
// read as pending, and an unregistration still pending turns back into a
// registration.
func TestUpstreamFollowsSettingsInBatches(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetUpstreamBatch(3)()
	st := newDaemonStore(t)
	a := orgWithWebhook(t, st)
	_, err := st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err)
	const members = 8
	for i := 1; i <= members; i++ {
		_, err = st.PutMember(ctx, a.ID, memberOrcid(i), store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	orders := func() map[string]int { // the upstream work orders pending, by kind
		ds, err := st.Deliveries(ctx, store.DeliveryFilter{State: "pending", Limit: 100})
		is.NoErr(err)
		kinds := map[string]int{}
		for _, d := range ds {
			if d.EventType == store.UpstreamRegister || d.EventType == store.UpstreamUnregister {
				kinds[d.EventType]++
			}
		}
		return kinds
	}
	rest := func(want ...int) {
		t.Helper()
		for _, w := range want {
			n, err := st.QueueUpstreamLeft(ctx, 3)
			is.NoErr(err)
			is.Equal(n, w)
		}
	}
	is.Equal(orders()[store.UpstreamRegister], members) // registered one at a time as they came

	_, _, err = st.SetHubSettings(ctx, a.ID, store.HubSettings{Enabled: false, URL: "https://a.example/h"})
	is.NoErr(err)
	is.Equal(orders()[store.UpstreamUnregister], 3) // a batch in the call
	rest(3, 2, 0)
	is.Equal(orders()[store.UpstreamUnregister], members)

	_, _, err = st.SetHubSettings(ctx, a.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h"})
	is.NoErr(err)
	is.Equal(orders()[store.UpstreamRegister], 3) // a batch in the call, turned back from unregistrations
	ms, err := st.Members(ctx, a.ID)
	is.NoErr(err)
	is.Equal(len(ms), members)
	for _, m := range ms {
		is.Equal(m.Upstream, "pending") // done or not yet, each is to be registered
	}
	counts, err := st.UpstreamStatus(ctx)
	is.NoErr(err)
	is.Equal(counts.Pending, members) // as the list says, those left for the next batches too
	rest(3, 2, 0)
	is.Equal(orders(), map[string]int{store.UpstreamRegister: members})
}

// TestCommandLineFinishesUpstreamBatches: a change of an organisation's coverage
// made by a process other than the daemon (hookd org set, hookd webhooks
// deactivate) queues every member's registration or unregistration before it
// returns: what it left for a retention pass would go with the process, which has
// none.
func TestCommandLineFinishesUpstreamBatches(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetUpstreamBatch(3)()
	st := newStore(t) // not the daemon
	_, err := st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err)
	o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	const members = 8
	rows := make([]store.MemberRow, members)
	for i := range rows {
		rows[i].Orcid = memberOrcid(i + 1)
	}
	_, err = st.ImportMembers(ctx, o.ID, rows, 0)
	is.NoErr(err)
	orders := func(kind string) int { // the upstream work orders pending of kind
		ds, err := st.Deliveries(ctx, store.DeliveryFilter{State: "pending", Limit: 100})
		is.NoErr(err)
		n := 0
		for _, d := range ds {
			if d.EventType == kind {
				n++
			}
		}
		return n
	}
	is.Equal(orders(store.UpstreamRegister), 0) // nothing covers them yet

	h, _, err := st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h"})
	is.NoErr(err)
	is.Equal(orders(store.UpstreamRegister), members) // all of them, not a batch of 3
	n, err := st.QueueUpstreamLeft(ctx, 3)
	is.NoErr(err)
	is.Equal(n, 0) // nothing left behind
	counts, err := st.UpstreamStatus(ctx)
	is.NoErr(err)
	is.Equal(counts.Pending, members) // as the members' list says

	_, err = st.SetSubscriptionActive(ctx, h.WebhookUID, false, "")
	is.NoErr(err)
	is.Equal(orders(store.UpstreamUnregister), members) // every one turned back
}

// TestDeletedOrganisationsMembersUnregistered: deleting an organisation unregisters
// upstream, a batch a transaction, each former member no other organisation
// covers, and none that another still covers.
func TestDeletedOrganisationsMembersUnregistered(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetUpstreamBatch(3)()
	st := newDaemonStore(t)
	a := sharedOrgs(t, st)
	const members = 8
	is.NoErr(st.DeleteOrganisation(ctx, a.ID))
	for i := 1; i <= members; i++ {
		wanted, err := st.UpstreamWanted(ctx, memberOrcid(i))
		is.NoErr(err)
		is.Equal(wanted, i == members) // only B's member stays registered
		pending, err := st.Deliveries(ctx, store.DeliveryFilter{Orcid: memberOrcid(i), State: "pending"})
		is.NoErr(err)
		var kinds []string
		for _, d := range pending {
			if d.EventType == store.UpstreamRegister || d.EventType == store.UpstreamUnregister {
				kinds = append(kinds, d.EventType)
			}
		}
		if i == members {
			is.Equal(kinds, []string{store.UpstreamRegister})
		} else {
			is.Equal(kinds, []string{store.UpstreamUnregister}) // its registration turned into an unregistration
		}
	}
}

// TestOrgWebhookSigned: an organisation's webhook signs its calls with a secret of
// its own, shown once (the answer of the call that made it), sealed at rest, kept
// across changes of its settings, and rotated with an overlap, or without one when
// the rotation revokes the secrets before it; a webhook made
// before organisations' webhooks were signed gets one at its next change.
func TestOrgWebhookSigned(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	movable(st) // a clock that stands still
	o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, err = st.PutMember(ctx, o.ID, claimOrcid(1), store.MemberInfo{}, 0)
	is.NoErr(err)
	// signedWith claims the organisation's next delivery and returns what signs it.
	signedWith := func() []string {
		t.Helper()
		_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: claimOrcid(1)}}, 0)
		is.NoErr(err)
		claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 1) // the organisation's webhook call
		_, err = st.Exchange(ctx, []store.Outcome{{DeliveryID: claimed[0].ID, SubscriptionID: claimed[0].Target.SubscriptionID,
			Kind: store.OutcomeDelivered, Attempt: claimed[0].Attempt, StartedAt: st.Now(), Status: 204}}, 0, time.Minute)
		is.NoErr(err)
		return claimed[0].Target.SigningSecrets
	}

	h, _, err := st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h"})
	is.NoErr(err)
	first := h.SigningSecret
	is.True(strings.HasPrefix(first, "whsec_")) // made with the webhook, and shown
	is.Equal(signedWith(), []string{first})     // its calls are signed with it
	var raw []byte
	is.NoErr(rawDB(t, path).QueryRow("SELECT signing_secret FROM subscriptions WHERE format = 'hub'").Scan(&raw))
	is.True(!strings.Contains(string(raw), first[len("whsec_"):])) // sealed at rest

	h, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h2", AppendOrcid: true})
	is.NoErr(err)
	is.Equal(h.SigningSecret, "") // not shown again
	h, err = st.HubSettings(ctx, o.ID)
	is.NoErr(err)
	is.Equal(h.SigningSecret, "")           // nor read
	is.Equal(signedWith(), []string{first}) // and kept across a change

	second, until, err := st.RotateOrgSecret(ctx, o.ID, store.KeepPrevious)
	is.NoErr(err)
	is.True(second != first && strings.HasPrefix(second, "whsec_"))
	is.Equal(until, st.Now().Add(store.SecretOverlap))
	is.Equal(signedWith(), []string{second, first}) // both sign during the overlap

	// A second rotation during the overlap is refused, unless it revokes the secrets
	// before it (one leaked): then the new one signs alone, at once.
	_, _, err = st.RotateOrgSecret(ctx, o.ID, store.KeepPrevious)
	var se *store.Error
	is.True(errors.As(err, &se) && se.Code == store.Conflict)
	is.True(strings.Contains(err.Error(), "or revoke both old secrets with this rotation")) // saying how
	is.Equal(signedWith(), []string{second, first})                                         // changing nothing
	revoked, until, err := st.RotateOrgSecret(ctx, o.ID, store.RevokePrevious)
	is.NoErr(err)
	is.True(revoked != second && strings.HasPrefix(revoked, "whsec_"))
	is.True(until.IsZero())                   // no overlap
	is.Equal(signedWith(), []string{revoked}) // the new one alone
	var n int
	is.NoErr(rawDB(t, path).QueryRow("SELECT count(*) FROM subscriptions WHERE format = 'hub' AND (previous_secret IS NOT NULL OR previous_until IS NOT NULL)").Scan(&n))
	is.Equal(n, 0) // nothing of the old ones kept
	again, until, err := st.RotateOrgSecret(ctx, o.ID, store.KeepPrevious)
	is.NoErr(err) // no overlap to wait for
	is.Equal(until, st.Now().Add(store.SecretOverlap))
	is.Equal(signedWith(), []string{again, revoked})

	// A webhook of an older version, without a secret, goes out unsigned, and gets
	// one at its next change, or by rotation, with no old one beside it.
	unsign := func() {
		is.NoErr(store.ExecWrite(ctx, st, "UPDATE subscriptions SET signing_secret = NULL, previous_secret = NULL, previous_until = NULL WHERE format = 'hub'"))
		store.ForgetTargets(st) // as a daemon that starts on the older file has none cached
	}
	unsign()
	h, err = st.HubSettings(ctx, o.ID)
	is.NoErr(err)
	is.True(!h.WebhookSigned)      // says so
	is.Equal(len(signedWith()), 0) // unsigned, still delivered
	h, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h2"})
	is.NoErr(err)
	is.True(strings.HasPrefix(h.SigningSecret, "whsec_"))
	is.True(h.WebhookSigned)
	is.Equal(signedWith(), []string{h.SigningSecret})
	unsign()
	third, until, err := st.RotateOrgSecret(ctx, o.ID, store.KeepPrevious)
	is.NoErr(err)
	is.True(until.IsZero())                 // no old secret to keep signing
	is.Equal(signedWith(), []string{third}) // the new one alone

	// Without a webhook, there is nothing to rotate; an unknown organisation is not found.
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)
	_, _, err = st.RotateOrgSecret(ctx, o.ID, store.KeepPrevious)
	is.True(errors.Is(err, store.ErrNotFound))
	_, _, err = st.RotateOrgSecret(ctx, o.ID+100, store.KeepPrevious)
	is.True(errors.Is(err, store.ErrNotFound))
	// The e-mail is not signed: its subscription has no secret.
	unsigned, err := store.QueryInt(ctx, st, "SELECT count(*) FROM subscriptions WHERE format = 'email' AND signing_secret IS NULL")
	is.NoErr(err)
	is.Equal(unsigned, int64(1))
}

// TestRemoveMemberKeepsTriedDeliveries: removing a member deletes the deliveries
// about it to its organisation that were never tried, and turns dead, kept as
// history with their attempts, those that were (failed, waiting for a retry).
func TestRemoveMemberKeepsTriedDeliveries(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	o := orgWithWebhook(t, st)
	for _, id := range []string{claimOrcid(1), claimOrcid(2)} {
		_, err := st.PutMember(ctx, o.ID, id, store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	// Both records' CREATED are waiting; the first is tried and fails.
	claimed, err := st.Exchange(ctx, nil, 1, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1)
	tried := claimed[0]
	_, err = st.Exchange(ctx, []store.Outcome{answered(st, tried, store.OutcomeRetry)}, 0, time.Minute)
	is.NoErr(err)
	for _, id := range []string{claimOrcid(1), claimOrcid(2)} {
		is.NoErr(st.RemoveMember(ctx, o.ID, id))
	}
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{OrgID: o.ID, Limit: 10})
	is.NoErr(err)
	is.Equal(len(ds), 1)         // the one never tried is gone,
	is.Equal(ds[0].ID, tried.ID) // the tried one stays,
	is.Equal(ds[0].StateName(), "dead")
	is.Equal(ds[0].LastError, "not sent: the record is no longer a member of the organisation")
	log, err := st.Attempts(ctx, tried.ID)
	is.NoErr(err)
	is.Equal(len(log), 1) // with its attempt
}

// TestRemoveMemberDuringACall: a delivery out on a call when its record stops
// being a member is not sent again: a failure ends it dead, saying why. A record
// that is a member again by then is retried as any other.
func TestRemoveMemberDuringACall(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	o := orgWithWebhook(t, st)
	for _, id := range []string{claimOrcid(1), claimOrcid(2)} {
		_, err := st.PutMember(ctx, o.ID, id, store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	told := map[int64]string{}
	st.NotSent = func(id int64, why string) { told[id] = why } // the daemon logs it
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 2) // both out on a call
	is.NoErr(st.RemoveMember(ctx, o.ID, claimOrcid(1)))
	is.NoErr(st.RemoveMember(ctx, o.ID, claimOrcid(2)))
	_, err = st.PutMember(ctx, o.ID, claimOrcid(2), store.MemberInfo{}, 0)
	is.NoErr(err) // the second is a member again
	var outs []store.Outcome
	for _, c := range claimed {
		outs = append(outs, answered(st, c, store.OutcomeRetry))
	}
	_, err = st.Exchange(ctx, outs, 0, time.Minute)
	is.NoErr(err) // both calls failed
	for _, c := range claimed {
		d, err := st.Delivery(ctx, store.DeliveryFilter{ID: c.ID})
		is.NoErr(err)
		switch c.Subject {
		case claimOrcid(1):
			is.Equal(d.StateName(), "dead") // not sent again
			is.Equal(d.LastError, "not sent: the record is no longer a member of the organisation")
			is.Equal(told[c.ID], d.LastError) // and the dispatcher's side is told so
		default:
			is.Equal(d.StateName(), "failed") // a member again: waiting for its retry
		}
	}

	// A call that succeeds after its record's removal is delivered; replayed later,
	// it is due again, not ended by what the removal said.
	_, err = st.PutMember(ctx, o.ID, claimOrcid(3), store.MemberInfo{}, 0)
	is.NoErr(err)
	third, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(third), 1)
	is.NoErr(st.RemoveMember(ctx, o.ID, claimOrcid(3)))
	_, err = st.Exchange(ctx, []store.Outcome{answered(st, third[0], store.OutcomeDelivered)}, 0, time.Minute)
	is.NoErr(err)
	_, err = st.Replay(ctx, store.DeliveryFilter{ID: third[0].ID})
	is.NoErr(err)
	d, err := st.Delivery(ctx, store.DeliveryFilter{ID: third[0].ID})
	is.NoErr(err)
	is.Equal(d.StateName(), "pending")
}

// TestReAddClearsAnOlderHookdsWord: a row an older hookd handed back to pending
// with not_sent kept (it ran beside a newer one's migration) is sent as any other
// once its record is a member again.
func TestReAddClearsAnOlderHookdsWord(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	o := orgWithWebhook(t, st)
	_, err := st.PutMember(ctx, o.ID, claimOrcid(1), store.MemberInfo{}, 0)
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1)
	is.NoErr(st.RemoveMember(ctx, o.ID, claimOrcid(1)))
	// What an older hookd's failure outcome did: back to pending, the word kept.
	is.NoErr(store.ExecWrite(ctx, st, "UPDATE deliveries SET state = 0, lease_until = NULL WHERE id = ?", claimed[0].ID))
	_, err = st.PutMember(ctx, o.ID, claimOrcid(1), store.MemberInfo{}, 0)
	is.NoErr(err) // a member again
	left, err := store.QueryInt(ctx, st, "SELECT count(*) FROM deliveries WHERE not_sent != ''")
	is.NoErr(err)
	is.Equal(left, int64(0)) // the word is gone
	again, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(again), 1)
	_, err = st.Exchange(ctx, []store.Outcome{answered(st, again[0], store.OutcomeRetry)}, 0, time.Minute)
	is.NoErr(err)
	d, err := st.Delivery(ctx, store.DeliveryFilter{ID: again[0].ID})
	is.NoErr(err)
	is.Equal(d.StateName(), "failed") // waiting for its retry, not dead
}

// TestUpstreamKeptWhenAnOrganisationSwitchesToEmail: an organisation that turns
// its webhook off and its e-mail on in one change covers its members throughout:
// they stay registered upstream, with nothing sent again.
func TestUpstreamKeptWhenAnOrganisationSwitchesToEmail(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	o := orgWithWebhook(t, st)
	_, err := st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err)
	m := memberOrcid(1)
	_, err = st.PutMember(ctx, o.ID, m, store.MemberInfo{}, 0)
	is.NoErr(err)
	is.NoErr(st.MarkUpstream(ctx, m, store.UpstreamRegister, true, ""))
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{URL: "https://a.example/h", EmailEnabled: true})
	is.NoErr(err) // webhook off (its URL kept), e-mail on
	ms, err := st.Members(ctx, o.ID)
	is.NoErr(err)
	is.Equal(ms[0].Upstream, "registered") // still, not registered anew
}

// TestOrgNameNotANumber: a new name may not be a number (it would be taken for an
// id), but a number an older hookd took as a name may be given again, unchanged,
// beside another change.
func TestOrgNameNotANumber(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	_, err := st.CreateOrganisation(ctx, "2023", "it@uni.example")
	is.True(errors.Is(err, store.ErrInvalid)) // a number
	o, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	_, err = rawDB(t, path).ExecContext(ctx, "UPDATE organisations SET name = '2023'") // as an older hookd allowed
	is.NoErr(err)
	up, err := st.UpdateOrganisation(ctx, o.ID, store.OrganisationPatch{Name: ptr("2023"), TechContactEmail: ptr("staff@uni.example")})
	is.NoErr(err) // the old name again, unchanged
	is.Equal(up.TechContactEmail, "staff@uni.example")
	_, err = st.UpdateOrganisation(ctx, o.ID, store.OrganisationPatch{Name: ptr("2024")})
	is.True(errors.Is(err, store.ErrInvalid)) // a new one that is a number is not
}

// TestNamesOnOneLine: an organisation's name and a member's name and eppn go into
// e-mails hookd sends, so none may hold a line break; a name an older hookd took
// with one may be given again unchanged, beside another change.
func TestNamesOnOneLine(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	for _, name := range []string{"Uni\r\nRecord: https://evil.example/", "Uni\nX", "Uni\u2028X", "Uni \u202eevil"} {
		_, err := st.CreateOrganisation(ctx, name, "it@uni.example")
		is.True(errors.Is(err, store.ErrInvalid))                                                                                     // refused
		is.True(strings.Contains(err.Error(), "line break") || strings.Contains(err.Error(), "direction control character (U+202E)")) // saying why
		is.True(strings.Contains(err.Error(), "name"))                                                                                // and of which field
	}
	_, err := st.CreateClient(ctx, store.NewClient{Name: "lab \u202egnp.exe", Scopes: []string{store.ScopeWebhook}})
	is.True(errors.Is(err, store.ErrInvalid)) // a client's name too
	o, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	for _, info := range []store.MemberInfo{{Name: ptr("Ann\nRecord: x")}, {EPPN: ptr("ann\r@uni")}} {
		_, err := st.PutMember(ctx, o.ID, "0000-0002-7253-3645", info, 0)
		is.True(errors.Is(err, store.ErrInvalid)) // refused
		is.True(strings.Contains(err.Error(), "line break"))
	}
	ms, err := st.Members(ctx, o.ID)
	is.NoErr(err)
	is.Equal(len(ms), 0) // bad input changed nothing

	_, err = rawDB(t, path).ExecContext(ctx, "UPDATE organisations SET name = 'Uni'||char(10)||'Two'") // as an older hookd allowed
	is.NoErr(err)
	_, err = st.UpdateOrganisation(ctx, o.ID, store.OrganisationPatch{TechContactEmail: ptr("staff@uni.example")})
	is.NoErr(err) // its contact may still change
	_, err = st.UpdateOrganisation(ctx, o.ID, store.OrganisationPatch{Name: ptr("Uni\nThree")})
	is.True(errors.Is(err, store.ErrInvalid)) // a new name with a line break may not
}

// orgWithEmail makes organisation C with its e-mail notifications on.
func orgWithEmail(t *testing.T, st *store.Store) store.Organisation {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	o, err := st.CreateOrganisation(ctx, "C", "tech@c.example")
	is.NoErr(err)
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)
	return o
}

// orgWithWebhook makes organisation A with its webhook on.
func orgWithWebhook(t *testing.T, st *store.Store) store.Organisation {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h"})
	is.NoErr(err)
	return o
}

// TestNotSentToldOnceCommitted: the daemon hears of a delivery ended unsent only
// from a turn that commits, once.
func TestNotSentToldOnceCommitted(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	o := orgWithWebhook(t, st)
	_, err := st.PutMember(ctx, o.ID, claimOrcid(1), store.MemberInfo{}, 0)
	is.NoErr(err)
	var told []int64
	st.NotSent = func(id int64, why string) { told = append(told, id) }
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1)
	is.NoErr(st.RemoveMember(ctx, o.ID, claimOrcid(1)))
	failed := answered(st, claimed[0], store.OutcomeRetry)
	_, err = st.Exchange(ctx, []store.Outcome{failed, {DeliveryID: claimed[0].ID, Kind: store.OutcomeKind(99)}}, 0, time.Minute)
	is.True(err != nil)    // the turn fails, and rolls back
	is.Equal(len(told), 0) // so nobody is told
	_, err = st.Exchange(ctx, []store.Outcome{failed}, 0, time.Minute)
	is.NoErr(err)
	is.Equal(told, []int64{claimed[0].ID}) // told once, when it commits
}

// TestSettingsOnAgainKillBacklogFirst: an organisation's settings turned on again
// turn dead, a batch a transaction first, what each setting turned on had left
// waiting; a setting removed in the same call keeps its own for the removal,
// which says so.
func TestSettingsOnAgainKillBacklogFirst(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetKillBatch(2)()
	st := newStore(t)
	o := orgWithWebhook(t, st)
	for i := 1; i <= 5; i++ {
		_, err := st.PutMember(ctx, o.ID, memberOrcid(i), store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	_, _, err := st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h", EmailEnabled: true})
	is.NoErr(err)
	var events []store.Event
	for i := 1; i <= 5; i++ {
		events = append(events, store.Event{Orcid: memberOrcid(i)})
	}
	_, err = st.Intake(ctx, "", "", events, time.Hour) // waiting for an hour
	is.NoErr(err)
	restore := store.SetKillBatch(0) // turned off: everything left waiting
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{URL: "https://a.example/h", NotificationEmail: "news@a.example"})
	is.NoErr(err)
	restore()
	subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{OrgID: o.ID})
	is.NoErr(err)
	is.Equal(len(subs), 2)
	var hub, email store.Subscription
	for _, s := range subs {
		if s.Format == store.FormatHub {
			hub = s
		} else {
			email = s
		}
	}
	pending, _, _ := waiting(t, st, hub.UID, "")
	is.Equal(pending, 5)
	pending, _, _ = waiting(t, st, email.UID, "")
	is.Equal(pending, 5)

	moves := store.AheadMoves(st)
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{EmailEnabled: true}) // the webhook removed, e-mail on
	is.NoErr(err)
	is.True(store.AheadMoves(st)-moves >= 3) // the e-mail's 5, 2 a transaction, first
	pending, _, dead := waiting(t, st, email.UID, "not sent: subscription deactivated")
	is.Equal(pending, 0)
	is.Equal(dead, 5)
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Webhook: hub.UID, Limit: 100})
	is.NoErr(err)
	is.Equal(len(ds), 5)
	for _, d := range ds {
		is.Equal(d.LastError, "not sent: webhook removed") // the removal's word, not the deactivation's
	}
}

// registerClaimed claims what is due and records each upstream registration
// among it as done at the upstream, and every claimed delivery as delivered.
func registerClaimed(t *testing.T, st *store.Store) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	claimed, err := st.Exchange(ctx, nil, 100, time.Minute)
	is.NoErr(err)
	var outs []store.Outcome
	for _, cl := range claimed {
		if cl.EventType == store.UpstreamRegister {
			is.NoErr(st.MarkUpstream(ctx, cl.Subject, store.UpstreamRegister, true, ""))
		}
		outs = append(outs, answered(st, cl, store.OutcomeDelivered))
	}
	_, err = st.Exchange(ctx, outs, 0, time.Minute)
	is.NoErr(err)
}

// TestUpstreamRegisteredAgainWhenItsCallbacksMove: records registered upstream are
// registered again when hookd's callbacks move (http.public_url) or its client id
// there changes (UpstreamAs): the upstream API keeps a webhook by record and
// callback, and went on calling the old address. A database from before the
// change was known (no registered_as) takes the present one as it.
func TestUpstreamRegisteredAgainWhenItsCallbacksMove(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	const api = "https://api.sandbox.orcid.org"
	st.UpstreamAs = "APP-1 https://old.example"
	_, err := st.ConfigureUpstream(ctx, api)
	is.NoErr(err)
	c := orgWithEmail(t, st)
	_, err = st.PutMember(ctx, c.ID, memberOrcid(1), store.MemberInfo{}, 0)
	is.NoErr(err)
	registerClaimed(t, st)
	upstream := func() string {
		ms, err := st.Members(ctx, c.ID)
		is.NoErr(err)
		is.Equal(len(ms), 1)
		return ms[0].Upstream
	}
	is.Equal(upstream(), "registered")

	n, err := st.ConfigureUpstream(ctx, api) // a restart as it was
	is.NoErr(err)
	is.Equal(n, 0)
	is.Equal(upstream(), "registered")

	st.UpstreamAs = "APP-1 https://new.example" // moved
	n, err = st.ConfigureUpstream(ctx, api)
	is.NoErr(err)
	is.Equal(n, 1) // registered again
	is.Equal(upstream(), "pending")
	registerClaimed(t, st)

	is.NoErr(store.ExecWrite(ctx, st, "UPDATE subscriptions SET registered_as = NULL WHERE format = 'upstream'")) // from before
	st.UpstreamAs = "APP-2 https://new.example"
	n, err = st.ConfigureUpstream(ctx, api)
	is.NoErr(err)
	is.Equal(n, 0) // taken as what it is now
	st.UpstreamAs = "APP-3 https://new.example"
	n, err = st.ConfigureUpstream(ctx, api)
	is.NoErr(err)
	is.Equal(n, 1) // and compared from then on
}

// TestUpstreamSameAPIWrittenAnotherWay: upstream.api_url written another way at a
// start (a trailing slash, the host in capitals, its scheme's port) names the API
// the registrations are at, and nothing is done again: no record is registered
// anew, and an unregistration still waiting is kept, where they read as another
// API's, every covered record was registered again and the unregistrations
// waiting were dropped, leaving those records registered upstream for good.
func TestUpstreamSameAPIWrittenAnotherWay(t *testing.T) {
	ctx := context.Background()
	for _, again := range []string{"https://api.sandbox.orcid.org/", "https://API.Sandbox.ORCID.org", "HTTPS://api.sandbox.orcid.org:443/"} {
		t.Run(again, func(t *testing.T) {
			is := is.New(t)
			st := newStore(t)
			_, err := st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
			is.NoErr(err)
			c := orgWithEmail(t, st)
			for _, m := range []string{memberOrcid(1), memberOrcid(2)} {
				_, err = st.PutMember(ctx, c.ID, m, store.MemberInfo{}, 0)
				is.NoErr(err)
			}
			registerClaimed(t, st)
			is.NoErr(st.RemoveMember(ctx, c.ID, memberOrcid(2))) // its unregistration waits

			n, err := st.ConfigureUpstream(ctx, again)
			is.NoErr(err)
			is.Equal(n, 0) // nothing queued anew
			ms, err := st.Members(ctx, c.ID)
			is.NoErr(err)
			is.Equal(ms[0].Upstream, "registered") // still registered
			ds, err := st.Deliveries(ctx, store.DeliveryFilter{Orcid: memberOrcid(2), State: "pending"})
			is.NoErr(err)
			is.Equal(len(ds), 1) // the unregistration still waits
			is.Equal(ds[0].EventType, store.UpstreamUnregister)

			n, err = st.ConfigureUpstream(ctx, "https://api.orcid.org") // another API
			is.NoErr(err)
			is.Equal(n, 1) // registered there
		})
	}
}

// TestReplayLeavesWhatLeftTheOrganisation: a delivery that was not sent because
// its record left the organisation is not sent by a replay (a bulk one leaves it
// and counts it, one by its id is refused), until the record is a member again.
func TestReplayLeavesWhatLeftTheOrganisation(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	c := orgWithEmail(t, st)
	_, err := st.PutMember(ctx, c.ID, memberOrcid(1), store.MemberInfo{}, 0)
	is.NoErr(err)
	start := st.Now()
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: memberOrcid(1)}}, 0)
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	var mail store.Claimed
	var outs []store.Outcome
	for _, cl := range claimed {
		kind := store.OutcomeDelivered
		if cl.Target.Format == store.FormatEmail && cl.Subject == memberOrcid(1) {
			mail, kind = cl, store.OutcomeRetry // the relay is down
		}
		outs = append(outs, answered(st, cl, kind))
	}
	is.True(mail.ID != 0)
	_, err = st.Exchange(ctx, outs, 0, time.Minute)
	is.NoErr(err)
	is.NoErr(st.RemoveMember(ctx, c.ID, memberOrcid(1))) // the record leaves, its e-mail waiting for its retry
	d, err := st.Delivery(ctx, store.DeliveryFilter{ID: mail.ID})
	is.NoErr(err)
	is.Equal(d.StateName(), "dead")
	advance(time.Minute)

	res, err := st.Replay(ctx, store.DeliveryFilter{Since: start})
	is.NoErr(err)
	is.Equal(res.Replayed, 0)
	is.Equal(res.NotMembers, 1) // left as it is
	_, err = st.Replay(ctx, store.DeliveryFilter{ID: mail.ID})
	is.True(errors.Is(err, store.ErrConflict)) // refused, saying why
	is.True(strings.Contains(err.Error(), "left the organisation"))

	_, err = st.PutMember(ctx, c.ID, memberOrcid(1), store.MemberInfo{}, 0) // a member again
	is.NoErr(err)
	res, err = st.Replay(ctx, store.DeliveryFilter{ID: mail.ID})
	is.NoErr(err)
	is.Equal(res.Replayed, 1)
}

// TestDeletedOrganisationsStaffTokensEnd: an organisation's staff clients go with
// it, and their cached tokens stop answering at once.
func TestDeletedOrganisationsStaffTokensEnd(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	org, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	creds, err := st.CreateOrgClient(ctx, org.ID, store.NewClient{Name: "staff", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	tok, err := st.IssueToken(ctx, creds.Client, []string{store.ScopeWebhook}, time.Hour)
	is.NoErr(err)
	_, err = st.TokenInfo(ctx, tok.Access) // cached now
	is.NoErr(err)

	is.NoErr(st.DeleteOrganisation(ctx, org.ID))
	if _, err := st.Client(ctx, creds.ID); err == nil {
		t.Fatal("staff client still there")
	}
	_, err = st.TokenInfo(ctx, tok.Access)
	if !errors.Is(err, store.ErrTokenInvalid) {
		t.Fatalf("token of a client deleted with its organisation still answers: err = %v", err)
	}
}

// TestSettingTurnedOffByHookdKeepsRegistrationsLeft: when hookd turns one of an
// organisation's settings off (its e-mail, refused for good) while the other (its
// webhook) still covers its members, the members a change of its settings left
// for the retention pass are still registered upstream.
func TestSettingTurnedOffByHookdKeepsRegistrationsLeft(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetUpstreamBatch(2)()
	st := newDaemonStore(t)
	_, err := st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err)
	o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	const members = 5
	for i := 1; i <= members; i++ {
		_, err = st.PutMember(ctx, o.ID, memberOrcid(i), store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h", EmailEnabled: true})
	is.NoErr(err) // a batch of its members registered now, the rest left
	_, err = st.Intake(ctx, "relay", "", []store.Event{{Orcid: memberOrcid(1), Type: store.EventUpdated}}, 0)
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 100, time.Minute)
	is.NoErr(err)
	var outs []store.Outcome
	for _, c := range claimed {
		kind := store.OutcomeDelivered
		if c.Target.Format == store.FormatEmail {
			kind = store.OutcomeGone // the e-mail is turned off
		}
		outs = append(outs, answered(st, c, kind))
	}
	_, err = st.Exchange(ctx, outs, 0, time.Minute)
	is.NoErr(err)
	h, err := st.HubSettings(ctx, o.ID)
	is.NoErr(err)
	is.True(!h.EmailEnabled) // turned off
	is.True(h.Enabled)       // the webhook still covers the members

	for i := 0; ; i++ {
		if i == members {
			t.Fatalf("%d batches of 2 for %d members: the batches do not end", i, members)
		}
		n, err := st.QueueUpstreamLeft(ctx, 2)
		is.NoErr(err)
		if n < 2 {
			break
		}
	}
	all, err := st.Deliveries(ctx, store.DeliveryFilter{})
	is.NoErr(err)
	registering := map[string]bool{}
	for _, d := range all {
		if d.EventType == store.UpstreamRegister {
			registering[d.Subject] = true
		}
	}
	is.Equal(len(registering), members) // every member's registration is queued
}

// TestNonASCIILocalPartRefused: an address hookd sends e-mail to (a technical
// contact, a notification address, a client's address) with a local part in
// another script is refused where it is given, saying why: it would go to a relay
// in UTF-8, which needs one that offers SMTPUTF8. A domain in another script is
// taken (it is sent in its IDNA form), and so is a member's address, which e-mail
// only names. A technical contact an older hookd took does not stop a rename.
func TestNonASCIILocalPartRefused(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	const utf8Local = "jöe@example.org"
	refused := func(err error, field string) {
		t.Helper()
		e := fieldErr(t, err)
		is.Equal(e.Code, store.Invalid)
		is.Equal(e.Field, field)
		is.Equal(e.Message, `"jöe@example.org" has a non-ASCII local part, which needs a relay with SMTPUTF8 (RFC 6531), and hookd sends e-mail to ASCII local parts only: give an address whose part before the @ is ASCII (a domain in another script is fine)`)
	}
	_, err := st.CreateOrganisation(ctx, "Universität", utf8Local)
	refused(err, "tech-contact-email")
	org, err := st.CreateOrganisation(ctx, "Universität", "orcid@universität.example") // a domain in another script
	is.NoErr(err)
	_, err = st.UpdateOrganisation(ctx, org.ID, store.OrganisationPatch{TechContactEmail: ptr(utf8Local)})
	refused(err, "tech-contact-email")
	_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true, NotificationEmail: utf8Local})
	refused(err, "notification-email")
	_, err = st.CreateClient(ctx, store.NewClient{Name: "platform", Scopes: []string{store.ScopeWebhook}, Email: utf8Local})
	refused(err, "email")
	_, err = st.PutMember(ctx, org.ID, memberOrcid(1), store.MemberInfo{Email: ptr(utf8Local)}, 0)
	is.NoErr(err) // a member's, which e-mail only names

	// Taken by an older hookd: the organisation can still be renamed.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	_, err = db.Exec("UPDATE organisations SET tech_contact_email = ? WHERE id = ?", utf8Local, org.ID)
	is.NoErr(err)
	is.NoErr(db.Close())
	o, err := st.UpdateOrganisation(ctx, org.ID, store.OrganisationPatch{Name: ptr("Universität Beispiel")})
	is.NoErr(err)
	is.Equal(o.TechContactEmail, utf8Local)
	// Given again as it is (the console's form and a PATCH of the whole
	// organisation send it back), it stays too; an address literal alike.
	o, err = st.UpdateOrganisation(ctx, org.ID, store.OrganisationPatch{Name: ptr("Universität B"), TechContactEmail: ptr(utf8Local)})
	is.NoErr(err)
	is.Equal(o.Name, "Universität B")
	db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	_, err = db.Exec("UPDATE organisations SET tech_contact_email = 'it@[10.0.0.5]' WHERE id = ?", org.ID)
	is.NoErr(err)
	is.NoErr(db.Close())
	o, err = st.UpdateOrganisation(ctx, org.ID, store.OrganisationPatch{Name: ptr("Universität C"), TechContactEmail: ptr("it@[10.0.0.5]")})
	is.NoErr(err)
	is.Equal(o.TechContactEmail, "it@[10.0.0.5]")
	_, err = st.UpdateOrganisation(ctx, org.ID, store.OrganisationPatch{TechContactEmail: ptr("it@[10.0.0.6]")})
	is.Equal(fieldErr(t, err).Field, "tech-contact-email") // another, given anew, is refused
}

// TestNonASCIINotificationAddressKept: a notification address with a local part in
// another script, which an older hookd took, does not stop its organisation's other
// settings from changing: given again as it is (settings are given whole, by a
// PUT, the console's form or org set), it is kept, and the e-mail can be turned
// off; given anew, such an address is refused.
func TestNonASCIINotificationAddressKept(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	org, err := st.CreateOrganisation(ctx, "Universität", "tech@uni.example")
	is.NoErr(err)
	_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true, NotificationEmail: "orcid@uni.example"})
	is.NoErr(err)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	_, err = db.Exec("UPDATE subscriptions SET target = 'jöe@uni.example' WHERE format = 'email'") // as an older hookd took it
	is.NoErr(err)
	is.NoErr(db.Close())

	h, err := st.HubSettings(ctx, org.ID)
	is.NoErr(err)
	is.Equal(h.NotificationEmail, "jöe@uni.example")
	h.EmailEnabled = false // turned off
	h, _, err = st.SetHubSettings(ctx, org.ID, h)
	is.NoErr(err)
	is.True(!h.EmailEnabled)
	h.Enabled, h.URL = true, "https://hooks.uni.example/orcid" // a webhook beside it
	h, _, err = st.SetHubSettings(ctx, org.ID, h)
	is.NoErr(err)
	is.Equal(h.NotificationEmail, "jöe@uni.example") // kept as it was
	h.NotificationEmail = "zoë@uni.example"          // another such address, given anew
	_, _, err = st.SetHubSettings(ctx, org.ID, h)
	e := fieldErr(t, err)
	is.Equal(e.Field, "notification-email")
	is.True(strings.Contains(e.Message, `"zoë@uni.example" has a non-ASCII local part`))
}

// TestAddressDomainRecipientRefused: an address hookd sends e-mail to (a technical
// contact, a notification address, a client's address) whose domain is an address
// literal ("x@[10.0.0.5]", which net/mail takes) or an IP address ("x@127.0.0.1")
// is refused where it is given, saying why: hookd's SMTP relay would connect to
// that address itself, beyond the guard on the targets hookd calls. A domain name
// is taken, one that starts with digits too, and so is a member's address, which
// e-mail only names.
func TestAddressDomainRecipientRefused(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openAt(t, filepath.Join(t.TempDir(), "hookd.db"), newBox(t))
	org, err := st.CreateOrganisation(ctx, "Uni", "tech@uni.example")
	is.NoErr(err)
	for _, addr := range []string{"x@[127.0.0.1]", "x@[10.0.0.5]", "x@[IPv6:::1]", "x@127.0.0.1", "x@0x7f.1", "x@2130706433", "x@１２７.0.0.1"} {
		refused := func(err error, field string) {
			t.Helper()
			if strings.Contains(addr, "IPv6") { // net/mail reads no IPv6 literal: not an address at all
				is.True(err != nil)
				return
			}
			e := fieldErr(t, err)
			is.Equal(e.Code, store.Invalid)
			is.Equal(e.Field, field)
			if !strings.Contains(e.Message, "would have hookd's SMTP relay connect to that address itself") {
				t.Errorf("%s: %s", addr, e.Message) // says why
			}
		}
		_, err := st.CreateOrganisation(ctx, "Uni "+addr, addr)
		refused(err, "tech-contact-email")
		_, err = st.UpdateOrganisation(ctx, org.ID, store.OrganisationPatch{TechContactEmail: ptr(addr)})
		refused(err, "tech-contact-email")
		_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true, NotificationEmail: addr})
		refused(err, "notification-email")
		_, err = st.CreateClient(ctx, store.NewClient{Name: "platform", Scopes: []string{store.ScopeWebhook}, Email: addr})
		refused(err, "email")
	}
	h, err := st.HubSettings(ctx, org.ID)
	is.NoErr(err)
	is.Equal(h.NotificationEmail, "") // nothing changed
	_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true, NotificationEmail: "orcid@3m.example"})
	is.NoErr(err) // a name, if one that starts with a digit
	_, err = st.PutMember(ctx, org.ID, memberOrcid(1), store.MemberInfo{Email: ptr("x@[10.0.0.5]")}, 0)
	is.NoErr(err) // a member's, which e-mail only names
}
