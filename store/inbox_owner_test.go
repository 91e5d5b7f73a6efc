package store_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/ssrf"
	"hookd/store"
)

// TestInboxesOfOwner: a client or an organisation sees the inboxes its webhooks
// call, also before they received anything, and the requests of those inboxes;
// an inbox that the webhooks of another owner call too is the operator's alone.
func TestInboxesOfOwner(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	a, err := st.CreateClient(ctx, store.NewClient{Name: "a", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	b, err := st.CreateClient(ctx, store.NewClient{Name: "b", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	org, err := st.CreateOrganisation(ctx, "University", "it@uni.example")
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, a.ID, "0000-0002-7253-3645", "http://127.0.0.1:8080/inbox/a-box/0000-0002-7253-3645/updated")
	is.NoErr(err) // A calls a-box
	aShared, _, err := st.CreateWebhook(ctx, a.ID, store.WebhookSpec{TargetURL: "https://hooks.example/inbox/shared", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // and shared, on another host
	_, _, err = st.PutOrcidWebhook(ctx, a.ID, "0000-0002-1825-0097", "https://hooks.example/not-an-inbox/x")
	is.NoErr(err) // and something else
	_, _, err = st.PutOrcidWebhook(ctx, b.ID, "0000-0002-7253-3645", "https://hooks.example/inbox/shared/b")
	is.NoErr(err) // B calls shared too
	_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: "https://hooks.example/inbox/org-box"})
	is.NoErr(err) // the organisation's webhook calls org-box

	lim := store.InboxLimits{}
	shared := record(t, st, receipt("shared", nil, "s"), lim)
	stranger := record(t, st, receipt("stranger", nil, "x"), lim)
	_, err = st.SetInboxAnswer(ctx, "answered", store.InboxAnswer{Status: 500})
	is.NoErr(err) // an inbox with only an answer

	names := func(ins []store.Inbox) []string {
		out := []string{}
		for _, in := range ins {
			out = append(out, in.Name)
		}
		return out
	}
	all, err := st.Inboxes(ctx, store.InboxesFilter{})
	is.NoErr(err)
	is.Equal(names(all), []string{"a-box", "answered", "org-box", "shared", "stranger"}) // every inbox that holds or answers something, or is called

	mine, err := st.Inboxes(ctx, store.InboxesFilter{ClientID: a.ID})
	is.NoErr(err)
	is.Equal(names(mine), []string{"a-box"}) // what A's webhooks call, by name, and B's do not
	is.Equal(mine[0].Requests, 0)            // a-box holds nothing yet
	is.True(mine[0].Answer.IsDefault())      // and answers 204
	is.Equal(all[3].LastID, shared.ID)       // shared holds a request, which neither A nor B sees

	orgs, err := st.Inboxes(ctx, store.InboxesFilter{OrgID: org.ID})
	is.NoErr(err)
	is.Equal(names(orgs), []string{"org-box"}) // the organisation's webhook's

	both, err := st.InboxesCalled(ctx, store.InboxesFilter{ClientID: b.ID, OrgID: org.ID})
	is.NoErr(err)
	is.Equal(both, []string{"org-box"}) // either's, but not shared, which A calls too
	every, err := st.InboxesCalled(ctx, store.InboxesFilter{})
	is.NoErr(err)
	is.Equal(every, []string{"a-box", "org-box", "shared"}) // no owner: every webhook's

	// Once A's webhook no longer calls shared, it is B's.
	is.NoErr(st.DeleteWebhook(ctx, a.ID, aShared.UID))
	both, err = st.InboxesCalled(ctx, store.InboxesFilter{ClientID: b.ID, OrgID: org.ID})
	is.NoErr(err)
	is.Equal(both, []string{"org-box", "shared"})

	// Only a URL that reaches this hookd calls its inbox: a webhook pointed at
	// another host's /inbox/{name} gives its owner no part in hookd's inbox of that name.
	ours := func(u *url.URL) (string, bool) { return u.Path, u.Host == "127.0.0.1:8080" }
	mine, err = st.Inboxes(ctx, store.InboxesFilter{ClientID: a.ID, Ours: ours})
	is.NoErr(err)
	is.Equal(names(mine), []string{"a-box"})
	both, err = st.InboxesCalled(ctx, store.InboxesFilter{ClientID: b.ID, OrgID: org.ID, Ours: ours})
	is.NoErr(err)
	is.Equal(len(both), 0)
	all, err = st.Inboxes(ctx, store.InboxesFilter{Ours: ours})
	is.NoErr(err)
	is.Equal(names(all), []string{"a-box", "answered", "shared", "stranger"}) // org-box is called on another host only

	rs, err := st.InboxRequests(ctx, store.InboxFilter{Names: []string{"a-box", "shared"}})
	is.NoErr(err)
	is.Equal(ids(rs), []int64{shared.ID}) // only the requests of those inboxes
	rs, err = st.InboxRequests(ctx, store.InboxFilter{Names: []string{}})
	is.NoErr(err)
	is.Equal(len(rs), 0) // of no inbox: none
	rs, err = st.InboxRequests(ctx, store.InboxFilter{})
	is.NoErr(err)
	is.Equal(ids(rs), []int64{stranger.ID, shared.ID}) // without Names: every inbox's
	_, err = st.InboxRequests(ctx, store.InboxFilter{Names: []string{"a/b"}})
	is.True(err != nil) // a name that names no inbox
}

// TestInboxReachedAt: the URLs that reach a hookd's inbox, and the path hookd sees.
func TestInboxReachedAt(t *testing.T) {
	for _, c := range []struct {
		listen, public, target string
		path                   string // "" when it does not reach hookd
	}{
		{"[::]:8080", "http://localhost:8080", "http://[::1]:8080/inbox/a/x", "/inbox/a/x"},
		{"[::]:8080", "http://localhost:8080", "http://localhost:8080/inbox/a/x", "/inbox/a/x"},
		{"127.0.0.1:8080", "https://hookd.example", "http://localhost:8080/inbox/a/x", "/inbox/a/x"},
		{"127.0.0.1:8080", "https://hookd.example", "http://localhost:8081/inbox/a/x", ""},
		{"[::1]:8080", "http://[::1]:8080", "http://[0:0:0:0:0:0:0:1]:8080/inbox/a/x", "/inbox/a/x"},
		{"127.0.0.1:8080", "https://hookd.example:8443/base", "https://hookd.example:8443/base/inbox/a/x", "/inbox/a/x"}, // behind a proxy that takes /base off
		{"127.0.0.1:8080", "https://hookd.example:8443/base/", "https://hookd.example:8443/based/inbox/a/x", ""},
		{"127.0.0.1:8080", "https://hookd.example:8443/base", "https://hookd.example/base/inbox/a/x", ""},
		{"127.0.0.1:8080", "https://hookd.example", "https://HOOKD.example:443/inbox/a/x", "/inbox/a/x"},
		{"127.0.0.1:8080", "https://hookd.example", "https://hookd.example./inbox/a/x", "/inbox/a/x"}, // the same name, fully qualified
		{"127.0.0.1:8080", "https://hookd.example.", "https://hookd.example/inbox/a/x", "/inbox/a/x"},
		{"127.0.0.1:8080", "https://[2001:db8::1]:8443", "https://[2001:DB8:0::1]:8443/inbox/a/x", "/inbox/a/x"},
		{"127.0.0.1:8080", "https://hookd.example", "https://other.example/inbox/a/x", ""},
		{"127.0.0.1:8080", "https://hookd.example", "http://hookd.example:443/inbox/a/x", ""},                 // plain HTTP to the TLS port
		{"127.0.0.1:8080", "https://hookd.example", "http://[::ffff:127.0.0.1]:8080/inbox/a/x", "/inbox/a/x"}, // dialled as 127.0.0.1
		{"127.0.0.1:8080", "https://hookd.example", "http://[::ffff:127.0.0.1]:8081/inbox/a/x", ""},
	} {
		if c.listen == "[::]:8080" && strings.Contains(c.target, "[::1]") && !ssrf.HasLoopback6() {
			continue // the machine has no ::1 (IPv6 is off): [::1] reaches no listener
		}
		in, err := ssrf.NewInbox(c.listen)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(c.target)
		if err != nil {
			t.Fatal(err)
		}
		path, ok := store.InboxReachedAt(in, c.public)(u)
		if !ok {
			path = ""
		}
		if path != c.path {
			t.Errorf("listen %s, public %s: InboxReachedAt(%s) = %q, want %q", c.listen, c.public, c.target, path, c.path)
		}
	}
}

// TestInboxesOfOrganisationPerRecord: an organisation's webhook with the record's
// iD appended calls the inbox its calls reach: at …/inbox (or /inbox/, or an
// escape of it) each member's iD's own, at …/inbox/x the inbox x, with a query
// none (the iD goes after it). Its staff see the members' inboxes, a member's
// removed no longer, and one that another client's webhook calls too, not.
func TestInboxesOfOrganisationPerRecord(t *testing.T) {
	ctx := context.Background()
	const a, b = "0000-0002-7253-3645", "0000-0001-5109-3700"
	for _, c := range []struct {
		url  string
		want []string
	}{
		{"http://127.0.0.1:8080/inbox", []string{b, a}},
		{"http://127.0.0.1:8080/inbox/", []string{b, a}},
		{"http://127.0.0.1:8080/%69nbox", []string{b, a}},
		{"http://127.0.0.1:8080/inbox/x", []string{"x"}},
		{"http://127.0.0.1:8080/inbox/0000-0002-1825-0097/", []string{"0000-0002-1825-0097"}},
		{"http://127.0.0.1:8080/inbox//", nil},
		{"http://127.0.0.1:8080/inbox?via=x", nil},
		{"http://127.0.0.1:8080/x/inbox", nil},
		{"http://127.0.0.1:8081/inbox", nil},
	} {
		t.Run(c.url, func(t *testing.T) {
			is := is.New(t)
			st := newStore(t)
			in, err := ssrf.NewInbox("127.0.0.1:8080")
			is.NoErr(err)
			ours := store.InboxReachedAt(in, "http://127.0.0.1:8080")
			org, err := st.CreateOrganisation(ctx, "University", "it@uni.example")
			is.NoErr(err)
			for _, id := range []string{a, b} {
				_, err = st.PutMember(ctx, org.ID, id, store.MemberInfo{}, 0)
				is.NoErr(err)
			}
			_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: c.url, AppendOrcid: true})
			is.NoErr(err)
			names, err := st.InboxesCalled(ctx, store.InboxesFilter{OrgID: org.ID, Ours: ours})
			is.NoErr(err)
			is.Equal(names, c.want) // the inboxes its calls reach
			every, err := st.InboxesCalled(ctx, store.InboxesFilter{Ours: ours})
			is.NoErr(err)
			is.Equal(every, c.want) // the operator's list: the same
		})
	}

	is := is.New(t)
	st := newStore(t)
	org, err := st.CreateOrganisation(ctx, "University", "it@uni.example")
	is.NoErr(err)
	for _, id := range []string{a, b} {
		_, err = st.PutMember(ctx, org.ID, id, store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: "http://127.0.0.1:8080/inbox", AppendOrcid: true})
	is.NoErr(err)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "c", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, a, "http://127.0.0.1:8080/inbox/"+a+"/updated")
	is.NoErr(err) // a client's callback calls a's inbox too
	is.NoErr(st.RemoveMember(ctx, org.ID, b))
	names, err := st.InboxesCalled(ctx, store.InboxesFilter{OrgID: org.ID})
	is.NoErr(err)
	is.Equal(len(names), 0) // a's: the operator's; b's: not a member's any more
	names, err = st.InboxesCalled(ctx, store.InboxesFilter{ClientID: c.ID})
	is.NoErr(err)
	is.Equal(len(names), 0) // nor the client's
}

// TestInboxesOfMembersPaged: an organisation's webhook at hookd's /inbox with the
// record's iD appended calls its members' inboxes, which a list shows a page at a
// time (After, Limit), read page by page rather than every member at once; a
// member's inbox that another owner's webhook calls too, by name or as a member of
// its own, is neither's but the operator's; and the requests of the inboxes an
// owner calls are read without a list of them (InboxFilter.CalledBy).
func TestInboxesOfMembersPaged(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	in, err := ssrf.NewInbox("127.0.0.1:8080")
	is.NoErr(err)
	ours := store.InboxReachedAt(in, "http://127.0.0.1:8080")
	m := make([]string, 10)
	for i := range m {
		m[i] = memberOrcid(i)
	}
	slices.Sort(m)
	uni, err := st.CreateOrganisation(ctx, "University", "it@uni.example")
	is.NoErr(err)
	lab, err := st.CreateOrganisation(ctx, "Lab", "it@lab.example")
	is.NoErr(err)
	for _, id := range m {
		_, err = st.PutMember(ctx, uni.ID, id, store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	for _, id := range m[8:] { // the lab's members are the university's too
		_, err = st.PutMember(ctx, lab.ID, id, store.MemberInfo{}, 0)
		is.NoErr(err)
	}
	for _, o := range []store.Organisation{uni, lab} {
		_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "http://127.0.0.1:8080/inbox", AppendOrcid: true})
		is.NoErr(err)
	}
	c, err := st.CreateClient(ctx, store.NewClient{Name: "platform", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	for _, name := range []string{m[3], "zeta"} { // one calls a member's inbox by name
		_, _, err = st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/" + name + "/h", Auth: store.Auth{Type: store.AuthNone}})
		is.NoErr(err)
	}
	uniOnly := []string{m[0], m[1], m[2], m[4], m[5], m[6], m[7]}

	f := store.InboxesFilter{OrgID: uni.ID, Ours: ours}
	all, err := st.InboxesCalled(ctx, f)
	is.NoErr(err)
	is.Equal(all, uniOnly) // its members' inboxes that no other owner's webhook calls
	var paged []string
	for f.After, f.Limit = "", 3; ; {
		page, err := st.Inboxes(ctx, f)
		is.NoErr(err)
		is.True(len(page) <= 3)
		for _, in := range page {
			paged = append(paged, in.Name)
		}
		if len(page) < 3 {
			break
		}
		f.After = page[len(page)-1].Name
	}
	is.Equal(paged, uniOnly) // page by page, the same

	callers, err := st.InboxCallersOf(ctx, store.InboxesFilter{OrgID: uni.ID, Ours: ours})
	is.NoErr(err)
	for name, want := range map[string]bool{m[0]: true, m[7]: true, m[3]: false, m[8]: false, "zeta": false, "0000-0002-1825-0097": false} {
		got, err := callers.Calls(ctx, name)
		is.NoErr(err)
		is.Equal(got, want) // as InboxesCalled counts it
	}
	for _, name := range []string{m[0], m[3], m[8], "zeta", "stray"} {
		record(t, st, receipt(name, nil, "{}"), store.InboxLimits{})
	}
	rs, err := st.InboxRequests(ctx, store.InboxFilter{CalledBy: callers})
	is.NoErr(err)
	is.Equal(len(rs), 1)
	is.Equal(rs[0].Inbox, m[0]) // the requests of its inboxes alone

	every, err := st.Inboxes(ctx, store.InboxesFilter{Ours: ours, After: m[9], Limit: 2})
	is.NoErr(err)
	is.Equal(len(every), 2)
	is.Equal([]string{every[0].Name, every[1].Name}, []string{"stray", "zeta"}) // the operator's: one that holds a request, one called by name
	is.Equal(every[0].Requests, 1)
	listed, err := st.InboxListed(ctx, store.InboxesFilter{Ours: ours}, m[8])
	is.NoErr(err)
	is.True(listed) // called by two owners: the operator's
}

// TestUpgradeReadsOlderInboxSendersThroughDeliveries: a request recorded before
// schema version 36, which kept no owner, is read through its delivery as
// before (its owner reads it while the delivery is kept; the operator alone
// once it is purged), and the upgrade leaves such rows as they are; a request
// recorded after keeps its owner past its delivery.
func TestUpgradeReadsOlderInboxSendersThroughDeliveries(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	box := newBox(t)
	st, err := store.Open(ctx, store.Options{Path: path, Box: box})
	is.NoErr(err)
	a, err := st.CreateClient(ctx, store.NewClient{Name: "a", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	const orcid = "0000-0002-7253-3645"
	_, _, err = st.PutOrcidWebhook(ctx, a.ID, orcid, "http://127.0.0.1:8080/inbox/a-box/"+orcid+"/updated")
	is.NoErr(err)
	sent := func(st *store.Store) store.InboxRequest {
		_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: orcid}}, 0)
		is.NoErr(err)
		claimed, err := st.Claim(ctx, 10, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 1)
		r := record(t, st, receipt("a-box", http.Header{"Webhook-Id": {store.MessageID(claimed[0].ID, 0)}}, "sent"), store.InboxLimits{})
		is.Equal(r.DeliveryID, claimed[0].ID)
		_, err = st.Exchange(ctx, []store.Outcome{{DeliveryID: claimed[0].ID, SubscriptionID: claimed[0].Target.SubscriptionID,
			Kind: store.OutcomeDelivered, Attempt: 1, StartedAt: st.Now(), Status: 204}}, 0, time.Minute)
		is.NoErr(err)
		return r
	}
	older := sent(st)
	is.NoErr(st.Close())

	// As the version before left it: the request keeps no owner.
	db := rawDB(t, path)
	_, err = db.Exec(`ALTER TABLE inbox_requests DROP COLUMN sender_client_id;
		ALTER TABLE inbox_requests DROP COLUMN sender_client_since;
		ALTER TABLE inbox_requests DROP COLUMN sender_org_id;
		ALTER TABLE removed_subscriptions DROP COLUMN append_orcid;
		DELETE FROM schema_migrations WHERE version = 36`)
	is.NoErr(err)
	is.NoErr(db.Close())

	st = openAt(t, path, box)
	mine := store.Visibility{ClientID: a.ID}
	r, err := st.InboxRequestSeen(ctx, older.ID, mine)
	is.NoErr(err) // its owner's, through its delivery
	is.Equal(r.SenderClientID, "")
	newer := sent(st)
	is.Equal(newer.SenderClientID, a.ID)
	r, err = st.InboxRequestSeen(ctx, newer.ID, mine)
	is.NoErr(err)
	is.Equal(r.SenderClientID, a.ID) // kept on the request
	n, _, err := st.Purge(ctx, store.StateDelivered, st.Now().Add(time.Minute), 100)
	is.NoErr(err)
	is.Equal(n, 2) // both deliveries go
	_, err = st.InboxRequestSeen(ctx, newer.ID, mine)
	is.NoErr(err) // what the newer one sent stays its owner's
	_, err = st.InboxRequestSeen(ctx, older.ID, mine)
	is.True(errors.Is(err, store.ErrNotFound)) // the older one's, whose, nothing tells now
	_, err = st.InboxRequestSeen(ctx, older.ID, store.Visibility{})
	is.NoErr(err) // the operator's
}

// TestInboxRequestOfARemovedClientNotItsSuccessors: a delivery of a client's
// webhook that was on its way when the client was removed, and reaches the inbox
// after a new client took the removed one's id, is not the new client's to read:
// not in the inbox's list, nor by its address, nor in the inbox's count.
func TestInboxRequestOfARemovedClientNotItsSuccessors(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	const orcid = "0000-0002-7253-3645"
	old, err := st.CreateClient(ctx, store.NewClient{ID: "APP-SAME", Name: "old", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, old.ID, orcid, "http://127.0.0.1:8080/inbox/a-box/"+orcid+"/updated")
	is.NoErr(err)
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: orcid}}, 0)
	is.NoErr(err)
	claimed, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1) // on its way
	advance(time.Second)
	is.NoErr(st.RemoveClient(ctx, old.ID))
	advance(time.Second)
	again, err := st.CreateClient(ctx, store.NewClient{ID: "APP-SAME", Name: "new", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, again.ID, orcid, "http://127.0.0.1:8080/inbox/a-box/"+orcid+"/updated")
	is.NoErr(err) // the new client's webhook calls a-box too
	advance(time.Second)
	sent := record(t, st, receipt("a-box", http.Header{"Webhook-Id": {store.MessageID(claimed[0].ID, 0)}}, "the old client's"), store.InboxLimits{})
	is.Equal(sent.DeliveryID, claimed[0].ID) // the removed client's delivery sent it

	v := store.Visibility{ClientID: again.ID}
	rs, err := st.InboxRequests(ctx, store.InboxFilter{Inbox: "a-box", Visible: v})
	is.NoErr(err)
	is.Equal(len(rs), 0) // not listed
	_, err = st.InboxRequestSeen(ctx, sent.ID, v)
	is.True(errors.Is(err, store.ErrNotFound)) // nor read by its address
	boxes, err := st.Inboxes(ctx, store.InboxesFilter{ClientID: again.ID})
	is.NoErr(err)
	is.Equal(len(boxes), 1)
	is.Equal(boxes[0].Requests, 0) // nor counted
	_, err = st.InboxRequestSeen(ctx, sent.ID, store.Visibility{})
	is.NoErr(err) // the operator reads it
}
