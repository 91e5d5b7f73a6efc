package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// ownerScene is a store with several clients and organisations, platform and
// ORCID-style webhooks, deliveries in every state, removed webhooks, a removed
// client whose id was given again and a deleted organisation whose id was.
type ownerScene struct {
	st      *store.Store
	a, b, c string // clients; c was removed and made again
	staff   string // org1's staff client
	org1    int64
	org3    int64 // the id of the deleted org2, made again
	created map[string]time.Time
	orgMade map[int64]time.Time
}

var sceneRecords = []string{"0000-0002-7253-3645", "0000-0001-5109-3700", "0000-0003-1415-9269", "0000-0002-1825-0097", "0000-0002-9079-593X"}

func buildOwnerScene(t *testing.T) ownerScene {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	sc := ownerScene{st: st, created: map[string]time.Time{}, orgMade: map[int64]time.Time{}}
	mk := func(id string) string {
		c, err := st.CreateClient(ctx, store.NewClient{ID: id, Name: id, Scopes: []string{store.ScopeWebhook}})
		is.NoErr(err)
		sc.created[c.ID] = st.Now()
		return c.ID
	}
	sc.a, sc.b, sc.c = mk("a"), mk("b"), mk("c")
	org1, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	sc.org1 = org1.ID
	org2, err := st.CreateOrganisation(ctx, "Lab", "it@lab.example")
	is.NoErr(err)
	staff, err := st.CreateOrgClient(ctx, org1.ID, store.NewClient{ID: "staff", Name: "staff", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	sc.staff = staff.ID
	for i, r := range sceneRecords {
		if i <= 2 {
			_, err = st.PutMember(ctx, org1.ID, r, store.MemberInfo{}, 0)
			is.NoErr(err)
		}
		if i >= 2 {
			_, err = st.PutMember(ctx, org2.ID, r, store.MemberInfo{}, 0)
			is.NoErr(err)
		}
	}
	for _, o := range []int64{org1.ID, org2.ID} {
		_, _, err = st.SetHubSettings(ctx, o, store.HubSettings{Enabled: true, URL: fmt.Sprintf("https://org%d.example/orcid", o)})
		is.NoErr(err)
	}
	platform := map[string]store.Subscription{}
	for _, c := range []string{sc.a, sc.b, sc.c, sc.staff} {
		platform[c], _, err = st.CreateWebhook(ctx, c, store.WebhookSpec{TargetURL: "https://" + c + ".example/hook", Auth: store.Auth{Type: store.AuthNone}})
		is.NoErr(err)
	}
	for i, r := range sceneRecords {
		_, _, err = st.PutOrcidWebhook(ctx, sc.b, r, "https://b.example/"+r)
		is.NoErr(err)
		if i%2 == 0 {
			_, _, err = st.PutOrcidWebhook(ctx, sc.c, r, "https://c.example/"+r)
			is.NoErr(err)
		}
		if i == 1 {
			_, _, err = st.PutOrcidWebhook(ctx, sc.a, r, "https://a.example/"+r)
			is.NoErr(err)
		}
	}
	// Every state: pending, failed, in flight (some handed back before), delivered,
	// dead, pending handed back and due again later.
	settle := func() {
		is.NoErr(store.ExecWrite(ctx, st, `UPDATE deliveries SET
			state = CASE id % 6 WHEN 2 THEN 1 WHEN 3 THEN 2 WHEN 4 THEN 3 ELSE 0 END,
			attempts = CASE id % 6 WHEN 0 THEN 0 WHEN 5 THEN 0 ELSE 1 END,
			last_error = CASE id % 6 WHEN 1 THEN 'HTTP 500' WHEN 4 THEN 'HTTP 500' ELSE '' END,
			lease_until = CASE id % 6 WHEN 2 THEN due_at + 60000 ELSE lease_until END,
			done_at = CASE id % 6 WHEN 3 THEN due_at WHEN 4 THEN due_at ELSE NULL END,
			waiting_since = CASE WHEN id % 6 = 5 OR id % 12 = 2 THEN due_at - 5000 - id ELSE NULL END,
			due_at = CASE id % 6 WHEN 5 THEN due_at + 600000 ELSE due_at END
			WHERE state = 0 AND attempts = 0 AND waiting_since IS NULL`))
	}
	round := func(n int) {
		for i := range n {
			_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: sceneRecords[i%len(sceneRecords)]}}, 0)
			is.NoErr(err)
			settle()
			advance(time.Second)
		}
	}
	round(7)
	// A deactivated webhook of b's, and of org1's.
	is.NoErr(store.ExecWrite(ctx, st, "UPDATE subscriptions SET active = 0, reason = 'gone' WHERE client_id = ? AND orcid = ?", sc.b, sceneRecords[3]))
	round(5)
	// Removed: one of c's registrations, b's platform webhook; then c itself,
	// made again; org2 deleted, its id made again (as a hookd before schema version
	// 35 gave it).
	is.NoErr(st.DeleteOrcidWebhook(ctx, sc.c, sceneRecords[0], "https://c.example/"+sceneRecords[0]))
	is.NoErr(st.DeleteWebhook(ctx, sc.b, platform[sc.b].UID))
	round(3)
	advance(time.Minute)
	is.NoErr(st.RemoveClient(ctx, sc.c))
	is.NoErr(st.DeleteOrganisation(ctx, org2.ID))
	advance(time.Minute)
	mk("c")
	org3, err := store.CreateOrganisationWithID(ctx, st, org2.ID, "Lab again")
	is.NoErr(err)
	is.Equal(org3.ID, org2.ID) // the id given again
	sc.org3 = org3.ID
	sc.orgMade[org1.ID], sc.orgMade[org3.ID] = org1.CreatedAt, org3.CreatedAt
	for _, r := range sceneRecords[3:] {
		_, err = st.PutMember(ctx, org3.ID, r, store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	_, _, err = st.SetHubSettings(ctx, org3.ID, store.HubSettings{Enabled: true, URL: "https://org3.example/orcid"})
	is.NoErr(err)
	_, _, err = st.CreateWebhook(ctx, sc.c, store.WebhookSpec{TargetURL: "https://c2.example/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, sc.c, sceneRecords[1], "https://c2.example/"+sceneRecords[1])
	is.NoErr(err)
	round(6)
	return sc
}

// sees is the reference: whether the owner (client, organisation or both) sees d,
// a live webhook's by its owner, a removed one's by the owner it had, unless that
// client or organisation was made again after the removal.
func (sc ownerScene) sees(d store.Delivery, client string, org int64) bool {
	if client != "" && d.ClientID == client {
		if d.RemovedAt.IsZero() || !sc.created[client].After(d.RemovedAt) {
			return true
		}
	}
	if org != 0 && d.OrgID == org {
		if d.RemovedAt.IsZero() || !sc.orgMade[org].After(d.RemovedAt) {
			return true
		}
	}
	return false
}

type ownerCase struct {
	name string
	f    store.DeliveryFilter
	want func(d store.Delivery) bool
}

func (sc ownerScene) cases() []ownerCase {
	var out []ownerCase
	vis := []store.Visibility{{ClientID: sc.a}, {ClientID: sc.b}, {ClientID: sc.c}, {ClientID: sc.staff, OrgID: sc.org1},
		{OrgID: sc.org1}, {OrgID: sc.org3}, {ClientID: sc.staff}}
	for _, v := range vis {
		v := v
		out = append(out, ownerCase{fmt.Sprintf("visible %+v", v), store.DeliveryFilter{Visible: v},
			func(d store.Delivery) bool { return sc.sees(d, v.ClientID, v.OrgID) }})
	}
	for _, c := range []string{sc.a, sc.b, sc.c, sc.staff} {
		c := c
		out = append(out, ownerCase{"client " + c, store.DeliveryFilter{ClientID: c},
			func(d store.Delivery) bool { return sc.sees(d, c, 0) }})
	}
	for _, o := range []int64{sc.org1, sc.org3} {
		o := o
		out = append(out, ownerCase{fmt.Sprint("org ", o), store.DeliveryFilter{OrgID: o},
			func(d store.Delivery) bool { return sc.sees(d, "", o) }})
	}
	// Narrowed further: by a visibility and a client, a state, a record, a time.
	out = append(out,
		ownerCase{"staff sees b", store.DeliveryFilter{Visible: store.Visibility{ClientID: sc.staff, OrgID: sc.org1}, ClientID: sc.b},
			func(d store.Delivery) bool { return false }},
		ownerCase{"org1 and client staff", store.DeliveryFilter{OrgID: sc.org1, ClientID: sc.staff},
			func(d store.Delivery) bool { return false }},
		ownerCase{"org1 sees staff", store.DeliveryFilter{Visible: store.Visibility{ClientID: sc.staff, OrgID: sc.org1}, ClientID: sc.staff},
			func(d store.Delivery) bool { return sc.sees(d, sc.staff, 0) }},
	)
	for _, state := range store.StateNames {
		state := state
		out = append(out, ownerCase{"b " + state, store.DeliveryFilter{ClientID: sc.b, State: state},
			func(d store.Delivery) bool { return sc.sees(d, sc.b, 0) && d.StateName() == state }})
		out = append(out, ownerCase{"org1 visible " + state, store.DeliveryFilter{Visible: store.Visibility{OrgID: sc.org1}, State: state},
			func(d store.Delivery) bool { return sc.sees(d, "", sc.org1) && d.StateName() == state }})
		out = append(out, ownerCase{"every " + state, store.DeliveryFilter{State: state},
			func(d store.Delivery) bool { return d.StateName() == state }})
	}
	r := sceneRecords[2]
	out = append(out, ownerCase{"c record", store.DeliveryFilter{Visible: store.Visibility{ClientID: sc.c}, Orcid: r},
		func(d store.Delivery) bool { return sc.sees(d, sc.c, 0) && d.Subject == r }})
	return out
}

// walk pages through f, limit at a time, by BeforeID.
func walk(t *testing.T, st *store.Store, f store.DeliveryFilter, limit int) []store.Delivery {
	t.Helper()
	var out []store.Delivery
	f.Limit = limit
	for range 1000 {
		page, err := st.Deliveries(context.Background(), f)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
		f.BeforeID = page[len(page)-1].ID
	}
	t.Fatalf("%+v: no end", f)
	return nil
}

func deliveryIDs(ds []store.Delivery) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// TestOwnerDeliveriesBranches: every owner's list of deliveries, walked page by
// page at every page size and window, the gathering way and the big owner's
// walk, is the reference's: every row it sees, once, newest first, no other's.
func TestOwnerDeliveriesBranches(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	sc := buildOwnerScene(t)
	all, err := sc.st.Deliveries(ctx, store.DeliveryFilter{Limit: 100000})
	is.NoErr(err)
	t.Logf("%d deliveries", len(all))
	states := map[string]int{}
	removed := 0
	for _, d := range all {
		states[d.StateName()]++
		if !d.RemovedAt.IsZero() {
			removed++
		}
	}
	is.True(len(states) == 5 && removed > 0) // every state, and removed webhooks' history
	for _, c := range sc.cases() {
		var want []store.Delivery
		for _, d := range all {
			if c.want(d) {
				want = append(want, d)
			}
		}
		for _, big := range []bool{false, true} {
			for _, window := range []int64{1, 3, 1000} {
				restoreWindow := store.SetDeliveriesWindow(window)
				restoreBig := func() {}
				if big {
					restoreBig = store.SetBigOwner(1000, 1)
				}
				for _, limit := range []int{1, 2, 5, 100} {
					got := walk(t, sc.st, c.f, limit)
					if !slices.Equal(deliveryIDs(got), deliveryIDs(want)) {
						t.Errorf("%s big %v window %d limit %d:\n got %v\nwant %v", c.name, big, window, limit, deliveryIDs(got), deliveryIDs(want))
					} else if !slices.EqualFunc(got, want, func(x, y store.Delivery) bool { return x == y }) {
						t.Errorf("%s big %v window %d limit %d: rows differ", c.name, big, window, limit)
					}
				}
				restoreBig()
				restoreWindow()
			}
		}
		// One delivery by id, within the filter: found exactly when listed.
		for _, d := range all {
			f := c.f
			f.ID = d.ID
			_, err := sc.st.Delivery(ctx, f)
			if found := err == nil; found != c.want(d) {
				t.Errorf("%s delivery %d: found %v (%v)", c.name, d.ID, found, err)
			}
		}
	}
}

// TestOwnerFiguresBranches: an owner's overview figures read the other way round
// (each state's index, testing each row's owner), as for an owner of many
// subscriptions, are the figures read through its subscriptions, and the
// reference's counts of its live webhooks' deliveries.
func TestOwnerFiguresBranches(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	sc := buildOwnerScene(t)
	all, err := sc.st.Deliveries(ctx, store.DeliveryFilter{Limit: 100000})
	is.NoErr(err)
	for _, v := range []store.Visibility{{ClientID: sc.a}, {ClientID: sc.b}, {ClientID: sc.c}, {ClientID: sc.staff, OrgID: sc.org1},
		{OrgID: sc.org1}, {OrgID: sc.org3}, {ClientID: sc.staff}} {
		var want store.OutboxFigures
		want.RetryingKnown = true
		for _, d := range all {
			if !d.RemovedAt.IsZero() || !(v.ClientID != "" && d.ClientID == v.ClientID || v.OrgID != 0 && d.OrgID == v.OrgID) {
				continue
			}
			switch d.StateName() {
			case "pending":
				want.Pending++
			case "failed":
				want.Pending++
				want.Retrying++
			case "in-flight":
				want.InFlight++
			case "dead":
				want.Dead++
			}
		}
		gathered, err := sc.st.OutboxFigures(ctx, v)
		is.NoErr(err)
		restore := store.SetOwnerSubscriptionsCap(1)
		byState, err := sc.st.OutboxFigures(ctx, v)
		restore()
		is.NoErr(err)
		is.True(gathered.OldestDueAge > 0)
		is.Equal(byState, gathered)
		want.OldestDueAge = gathered.OldestDueAge
		is.Equal(gathered, want)
	}
}

// TestOwnerReplayBranches: a bulk replay by an owner, the big owner's way (each
// row's owner tested) and the gathering way, replays the same rows, the owner's
// failed and dead ones of the time alone, and says the same.
func TestOwnerReplayBranches(t *testing.T) {
	type result struct {
		res   []store.ReplayResult
		after []store.Delivery
	}
	var got [2]result
	for i, big := range []bool{false, true} {
		is := is.New(t)
		ctx := context.Background()
		sc := buildOwnerScene(t)
		before, err := sc.st.Deliveries(ctx, store.DeliveryFilter{Limit: 100000})
		is.NoErr(err)
		since := sc.st.Now().Add(-24 * time.Hour)
		restore := func() {}
		if big {
			restore = store.SetBigOwner(1000, 1)
		}
		filters := []store.DeliveryFilter{
			{ClientID: sc.b, State: "dead"},
			{Visible: store.Visibility{ClientID: sc.staff, OrgID: sc.org1}, State: "failed"},
			{OrgID: sc.org3},
			{Visible: store.Visibility{ClientID: sc.staff, OrgID: sc.org1}, ClientID: sc.b},
			{ClientID: sc.c},
			{Visible: store.Visibility{ClientID: sc.a}},
		}
		var replayed []func(store.Delivery) bool
		for _, f := range filters {
			f.Since = since
			res, err := sc.st.Replay(ctx, f)
			is.NoErr(err)
			t.Logf("big %v %+v: %+v", big, f, res)
			got[i].res = append(got[i].res, res)
			// The reference: what the filter sees, failed or dead.
			var want int
			v := f.Visible
			for _, d := range before {
				if (v.All() || sc.sees(d, v.ClientID, v.OrgID)) && (f.ClientID == "" || sc.sees(d, f.ClientID, 0)) &&
					(f.OrgID == 0 || sc.sees(d, "", f.OrgID)) && (f.State == "" && (d.StateName() == "failed" || d.StateName() == "dead") || d.StateName() == f.State) {
					want++
				}
			}
			is.True(res.Replayed+res.Deactivated <= want)
			ff := f
			replayed = append(replayed, func(d store.Delivery) bool {
				return (ff.Visible.All() || sc.sees(d, ff.Visible.ClientID, ff.Visible.OrgID)) && (ff.ClientID == "" || sc.sees(d, ff.ClientID, 0)) &&
					(ff.OrgID == 0 || sc.sees(d, "", ff.OrgID))
			})
		}
		restore()
		after, err := sc.st.Deliveries(ctx, store.DeliveryFilter{Limit: 100000})
		is.NoErr(err)
		got[i].after = after
		// No one else's row was touched.
		was := map[int64]store.Delivery{}
		for _, d := range before {
			was[d.ID] = d
		}
		for _, d := range after {
			if d == was[d.ID] {
				continue
			}
			mine := false
			for _, r := range replayed {
				mine = mine || r(was[d.ID])
			}
			if _, ok := was[d.ID]; ok && !mine {
				t.Errorf("big %v: delivery %d of %s/%d changed by a replay not its owner's", big, d.ID, d.ClientID, d.OrgID)
			}
		}
	}
	is := is.New(t)
	is.Equal(got[1].res, got[0].res)
	is.Equal(len(got[1].after), len(got[0].after))
	for i := range got[0].after {
		got[0].after[i].SubscriptionUID, got[1].after[i].SubscriptionUID = "", "" // made at random
		is.Equal(got[1].after[i], got[0].after[i])
	}
}

// TestOwnerSubscriptionsPages: every principal's list of webhooks, by kind, by
// status, by the record they cover or are for, by organisation, walked page by
// page either way, is the reference's: each it sees once, in order, no other's.
func TestOwnerSubscriptionsPages(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	sc := buildOwnerScene(t)
	// Every kind: an organisation's e-mail, hookd's upstream registration,
	// platform webhooks of one record.
	_, _, err := sc.st.SetHubSettings(ctx, sc.org3, store.HubSettings{Enabled: true, URL: "https://org3.example/orcid", EmailEnabled: true})
	is.NoErr(err)
	_, err = sc.st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err)
	for i, c := range []string{sc.a, sc.b, sc.a, sc.staff} {
		_, _, err = sc.st.CreateWebhook(ctx, c, store.WebhookSpec{TargetURL: fmt.Sprintf("https://%s.example/one/%d", c, i),
			Orcid: sceneRecords[i%2], Auth: store.Auth{Type: store.AuthNone}})
		is.NoErr(err)
	}
	// Deactivated ones of several owners and kinds and records, platform webhooks
	// among them.
	is.NoErr(store.ExecWrite(ctx, sc.st, "UPDATE subscriptions SET active = 0, reason = 'gone' WHERE id % 4 = 1 OR orcid IS NOT NULL AND id % 3 = 0 OR format IN ('email', 'upstream')"))
	all, err := sc.st.Subscriptions(ctx, store.SubscriptionFilter{})
	is.NoErr(err)
	members := map[int64][]string{}
	for _, o := range []int64{sc.org1, sc.org3} {
		ms, err := sc.st.Members(ctx, o)
		is.NoErr(err)
		for _, m := range ms {
			members[o] = append(members[o], m.Orcid)
		}
	}
	vis := []store.Visibility{{}, {ClientID: sc.a}, {ClientID: sc.b}, {ClientID: sc.c}, {ClientID: sc.staff, OrgID: sc.org1},
		{OrgID: sc.org1}, {OrgID: sc.org3}, {ClientID: sc.staff}}
	var filters []store.SubscriptionFilter
	for _, v := range vis {
		for _, client := range []string{"", sc.a, sc.b, sc.staff} {
			for _, format := range append([]string{""}, store.Formats...) {
				for _, status := range []string{"", "active", "deactivated"} {
					filters = append(filters, store.SubscriptionFilter{Visible: v, ClientID: client, Format: format, Status: status})
				}
			}
			for _, r := range sceneRecords {
				filters = append(filters, store.SubscriptionFilter{Visible: v, ClientID: client, Covers: r},
					store.SubscriptionFilter{Visible: v, ClientID: client, Covers: r, Format: store.FormatStandard, Status: "deactivated"})
				for _, status := range []string{"", "active", "deactivated"} {
					filters = append(filters, store.SubscriptionFilter{Visible: v, ClientID: client, Covers: r, Status: status},
						store.SubscriptionFilter{Visible: v, ClientID: client, Orcid: r, Status: status})
				}
			}
		}
		filters = append(filters, store.SubscriptionFilter{Visible: v, OrgID: sc.org1}, store.SubscriptionFilter{Visible: v, OrgID: sc.org3, Format: store.FormatStandard})
		for _, o := range []int64{sc.org1, sc.org3} {
			for _, status := range []string{"active", "deactivated"} {
				filters = append(filters, store.SubscriptionFilter{Visible: v, OrgID: o, Status: status},
					store.SubscriptionFilter{Visible: v, OrgID: o, Format: store.FormatEmail, Status: status})
			}
		}
	}
	for _, f := range filters {
		var want []int64
		for _, s := range all {
			v := f.Visible
			ok := (v.All() || v.ClientID != "" && s.ClientID == v.ClientID || v.OrgID != 0 && s.OrgID == v.OrgID) &&
				(f.ClientID == "" || s.ClientID == f.ClientID) && (f.OrgID == 0 || s.OrgID == f.OrgID) &&
				(f.Format == "" || s.Format == f.Format) && (f.Status == "" || s.Status() == f.Status) &&
				(f.Orcid == "" || s.Orcid == f.Orcid)
			if f.Covers != "" {
				ok = ok && (s.Orcid == f.Covers || s.Orcid == "" && s.OrgID == 0 && s.Format == store.FormatStandard ||
					s.OrgID != 0 && slices.Contains(members[s.OrgID], f.Covers))
			}
			if ok {
				want = append(want, s.ID)
			}
		}
		for _, newest := range []bool{false, true} {
			w := slices.Clone(want)
			if newest {
				slices.Reverse(w)
			}
			for _, limit := range []int{1, 2, 3, 100} {
				g := f
				g.NewestFirst, g.Limit = newest, limit
				var got []int64
				for range 1000 {
					page, err := sc.st.Subscriptions(ctx, g)
					is.NoErr(err)
					for _, s := range page {
						got = append(got, s.ID)
					}
					if len(page) < limit {
						break
					}
					if newest {
						g.BeforeID = page[len(page)-1].ID
					} else {
						g.AfterID = page[len(page)-1].ID
					}
				}
				if !slices.Equal(got, w) {
					t.Errorf("%+v newest %v limit %d:\n got %v\nwant %v", f, newest, limit, got, w)
				}
			}
		}
	}
}
