package store_test

import (
	"context"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// intakeFixture registers, in a fresh store, one subscription of every kind the
// fan-out finds: ORCID-style webhooks (two on one record), a platform webhook for
// every record, one for CREATED events only, one for one record, and an
// organisation's webhook for its members.
func intakeFixture(t *testing.T) (*store.Store, store.Credentials) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "fan", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	none := store.Auth{Type: store.AuthNone}
	// A record's webhook with types, older than its ORCID-style one (no types): the
	// rows still go in id order, whatever the webhooks' event masks.
	_, _, err = st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://typed.example/1", Auth: none, Orcid: memberOrcid(1), Types: []string{store.EventUpdated}})
	is.NoErr(err)
	for _, w := range []struct{ orcid, url string }{
		{memberOrcid(1), "https://a.example/1"},
		{memberOrcid(2), "https://a.example/2"},
		{memberOrcid(2), "https://b.example/2"},
	} {
		_, _, err := st.PutOrcidWebhook(ctx, c.ID, w.orcid, w.url)
		is.NoErr(err) // ORCID-style webhook
	}
	for _, spec := range []store.WebhookSpec{
		{TargetURL: "https://all.example/h", Auth: none},
		{TargetURL: "https://created.example/h", Auth: none, Types: []string{store.EventCreated}},
		{TargetURL: "https://one.example/h", Auth: none, Orcid: memberOrcid(3)},
	} {
		_, _, err := st.CreateWebhook(ctx, c.ID, spec)
		is.NoErr(err) // platform webhook
	}
	org, err := st.CreateOrganisation(ctx, "Org", "tech@org.example")
	is.NoErr(err)
	_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: "https://org.example/hook"})
	is.NoErr(err)
	for _, m := range []int{1, 4} {
		_, err := st.PutMember(ctx, org.ID, memberOrcid(m), store.MemberInfo{}, 0)
		is.NoErr(err) // member
	}
	return st, c
}

// TestIntakeBatchMatchesOneByOne: a call of many events makes the same outbox rows,
// in the same order and with the same merges, as the same events one call each.
func TestIntakeBatchMatchesOneByOne(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	events := []store.Event{
		{Orcid: memberOrcid(1), Type: store.EventUpdated},
		{Orcid: memberOrcid(2)},
		{Orcid: memberOrcid(1), Type: store.EventCreated}, // merges into the first, and CREATED wins
		{Orcid: memberOrcid(5)},                           // the webhooks for every record only
		{Orcid: memberOrcid(4), Type: store.EventCreated}, // a member's
		{Orcid: memberOrcid(3)},
		{Orcid: memberOrcid(2), ID: "x"},
		{Orcid: memberOrcid(6), ID: "x"}, // a repeat of x: skipped
		{Orcid: memberOrcid(6), ID: "y"},
	}
	batch, bc := intakeFixture(t)
	single, sc := intakeFixture(t)

	got, err := batch.Intake(ctx, bc.ID, "", append([]store.Event(nil), events...), 0)
	is.NoErr(err)
	var want store.IntakeResult
	for _, ev := range events {
		r, err := single.Intake(ctx, sc.ID, "", []store.Event{ev}, 0)
		is.NoErr(err)
		want.Accepted += r.Accepted
		want.Duplicates += r.Duplicates
		want.Deliveries += r.Deliveries
	}
	is.Equal(got, want)
	is.Equal(got.Accepted, 8)
	is.Equal(got.Duplicates, 1)

	type row struct {
		ID, Sub    int64
		Subject    string
		Type       string
		EventCount int
	}
	rows := func(st *store.Store) []row {
		ds, err := st.Deliveries(ctx, store.DeliveryFilter{Limit: 1000})
		is.NoErr(err)
		var rs []row
		for _, d := range ds {
			rs = append(rs, row{d.ID, d.SubscriptionID, d.Subject, d.EventType, d.EventCount})
		}
		return rs
	}
	b, s := rows(batch), rows(single)
	is.Equal(b, s)
	var merged bool
	for _, r := range b {
		if r.Subject == memberOrcid(1) && r.Type == store.EventCreated && r.EventCount == 3 {
			merged = true // the member's CREATED row, then UPDATED and CREATED merged in
		}
	}
	is.True(merged)
	is.True(len(b) > 12) // every kind of subscription made rows
}
