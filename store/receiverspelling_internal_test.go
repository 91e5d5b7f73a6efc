package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestCanonicalURL: a URL's scheme and host are folded to lower case, ASCII letters
// alone, and nothing after the host; a URL with a user name is left as it is.
func TestCanonicalURL(t *testing.T) {
	for raw, want := range map[string]string{
		"HTTP://EXAMPLE.COM/x":            "http://example.com/x",
		"Https://Example.com:8443/A?B=C":  "https://example.com:8443/A?B=C",
		"http://EXAMPLE.COM":              "http://example.com",
		"http://EXAMPLE.COM?Q=1":          "http://example.com?Q=1",
		"http://[FE80::1]/P":              "http://[fe80::1]/P",
		"http://BÜCHER.example/Ü":         "http://bÜcher.example/Ü", // IDNA folds the others its own way
		"http://nowhere2.com/0000-0002-X": "http://nowhere2.com/0000-0002-X",
		"http://User:Pw@EXAMPLE.COM/x":    "http://User:Pw@EXAMPLE.COM/x",
		// A scheme's default port is dropped (RFC 3986 §6.2.3); another stays.
		"http://example.com:80/x":       "http://example.com/x",
		"HTTP://EXAMPLE.COM:80":         "http://example.com",
		"https://example.com:443/x?y=1": "https://example.com/x?y=1",
		"https://example.com:80/x":      "https://example.com:80/x",
		"http://example.com:443/x":      "http://example.com:443/x",
		"http://example.com:8080/x":     "http://example.com:8080/x",
		"http://example.com:180/x":      "http://example.com:180/x",
		"http://[FE80::1]:80/x":         "http://[fe80::1]/x",
		"http://[::80]/x":               "http://[::80]/x",
		"http://User@EXAMPLE.COM:80/x":  "http://User@EXAMPLE.COM:80/x",
	} {
		if got := CanonicalURL(raw); got != want {
			t.Errorf("CanonicalURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestOrcidWebhookSpellings: an ORCID-style registration is kept with its
// callback's scheme and host in lower case, and a PUT, GET or DELETE of it in
// another case of them is the same registration. One that an older hookd kept as
// it was sent (in capitals) is found under every spelling, the one spelled as
// given first, and no second is registered beside it; a DELETE removes every
// spelling of it the client has.
func TestOrcidWebhookSpellings(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)
	c, err := st.CreateClient(ctx, NewClient{Name: "lab", Scopes: []string{ScopeWebhook}})
	is.NoErr(err)
	const orcid = "0000-0002-7253-3645"

	sub, created, err := st.PutOrcidWebhook(ctx, c.ID, orcid, "HTTP://EXAMPLE.COM/x")
	is.NoErr(err)
	is.True(created)
	is.Equal(sub.Target, "http://example.com/x") // kept in lower case
	for _, spelling := range []string{"http://example.com/x", "Http://Example.Com/x", "HTTP://EXAMPLE.COM/x"} {
		_, created, err := st.PutOrcidWebhook(ctx, c.ID, orcid, spelling)
		is.NoErr(err)
		is.True(!created) // the same registration
		got, err := st.OrcidWebhook(ctx, c.ID, orcid, spelling)
		is.NoErr(err)
		is.Equal(got.ID, sub.ID)
	}
	_, created, err = st.PutOrcidWebhook(ctx, c.ID, orcid, "http://example.com/X")
	is.NoErr(err)
	is.True(created) // a path in another case is another receiver's

	// Registrations an older hookd kept as sent: two spellings of one receiver.
	for _, target := range []string{"HTTPS://LEGACY.EXAMPLE/y", "https://Legacy.Example/y"} {
		_, err = st.write.ExecContext(ctx, `INSERT INTO subscriptions(id, uid, client_id, format, target, orcid, created_at, updated_at)
			VALUES (`+newSubscriptionID+`, ?, ?, 'empty', ?, ?, 0, 0)`, newUID(), c.ID, target, orcid)
		is.NoErr(err)
	}
	first, err := st.OrcidWebhook(ctx, c.ID, orcid, "HTTPS://LEGACY.EXAMPLE/y")
	is.NoErr(err)
	is.Equal(first.Target, "HTTPS://LEGACY.EXAMPLE/y")
	second, err := st.OrcidWebhook(ctx, c.ID, orcid, "https://Legacy.Example/y")
	is.NoErr(err)
	is.Equal(second.Target, "https://Legacy.Example/y") // the one spelled as given
	got, err := st.OrcidWebhook(ctx, c.ID, orcid, "https://legacy.example/y")
	is.NoErr(err)
	is.Equal(got.ID, first.ID) // in lower case: the first of them
	uid, err := st.OrcidWebhookUID(ctx, c.ID, orcid, "https://legacy.example/y")
	is.NoErr(err)
	is.Equal(uid, first.UID) // its deliveries too
	_, created, err = st.PutOrcidWebhook(ctx, c.ID, orcid, "https://legacy.example/y")
	is.NoErr(err)
	is.True(!created) // no third beside them
	is.NoErr(st.DeleteOrcidWebhook(ctx, c.ID, orcid, "https://Legacy.Example/y"))
	for _, spelling := range []string{"https://Legacy.Example/y", "HTTPS://LEGACY.EXAMPLE/y", "https://legacy.example/y"} {
		_, err = st.OrcidWebhook(ctx, c.ID, orcid, spelling)
		is.True(errors.Is(err, ErrNotFound)) // both gone: one registration, removed once
	}
}

// TestOrcidWebhookSpellingsOfTwoClients: two clients whose registrations of one
// receiver an older hookd kept under two spellings of its scheme and host (one of
// them in lower case) each find their own under their spelling, and under any
// other: a GET, PUT or DELETE of a client's own was answered for the other's, 403
// "registered by another client", and the owner could neither see nor remove it.
func TestOrcidWebhookSpellingsOfTwoClients(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)
	const orcid = "0000-0002-7253-3645"
	a, err := st.CreateClient(ctx, NewClient{Name: "a", Scopes: []string{ScopeWebhook}})
	is.NoErr(err)
	b, err := st.CreateClient(ctx, NewClient{Name: "b", Scopes: []string{ScopeWebhook}})
	is.NoErr(err)
	legacy := func(clientID, target string) string {
		t.Helper()
		uid := newUID()
		_, err := st.write.ExecContext(ctx, `INSERT INTO subscriptions(id, uid, client_id, format, target, orcid, created_at, updated_at)
			VALUES (`+newSubscriptionID+`, ?, ?, 'empty', ?, ?, 0, 0)`, uid, clientID, target, orcid)
		is.NoErr(err)
		return uid
	}
	other := legacy(b.ID, "http://example.com/x") // b's, in lower case
	own := legacy(a.ID, "HTTP://EXAMPLE.COM/x")   // a's, in capitals
	legacy(b.ID, "Http://Example.Com/y")          // b's, first
	ownY := legacy(a.ID, "HTTP://EXAMPLE.COM/y")  // a's
	for _, spelling := range []string{"HTTP://EXAMPLE.COM/x", "http://example.com/x", "Http://Example.com/x"} {
		got, err := st.OrcidWebhook(ctx, a.ID, orcid, spelling)
		is.NoErr(err) // a's own, not b's
		is.Equal(got.UID, own)
		got, err = st.OrcidWebhook(ctx, b.ID, orcid, spelling)
		is.NoErr(err)
		is.Equal(got.UID, other) // and b's, b's
	}
	for _, spelling := range []string{"http://example.com/y", "HTTP://EXAMPLE.COM/y"} {
		got, err := st.OrcidWebhook(ctx, a.ID, orcid, spelling)
		is.NoErr(err)
		is.Equal(got.UID, ownY)
	}
	_, err = st.write.ExecContext(ctx, "UPDATE subscriptions SET active = 0 WHERE uid = ?", own)
	is.NoErr(err)
	_, created, err := st.PutOrcidWebhook(ctx, a.ID, orcid, "http://example.com/x")
	is.NoErr(err)
	is.True(!created)
	got, err := st.OrcidWebhook(ctx, a.ID, orcid, "HTTP://EXAMPLE.COM/x")
	is.NoErr(err)
	is.True(got.Active) // a's own registered again, so on again

	is.NoErr(st.DeleteOrcidWebhook(ctx, a.ID, orcid, "HTTP://EXAMPLE.COM/x")) // a removes its own
	_, err = st.OrcidWebhook(ctx, a.ID, orcid, "HTTP://EXAMPLE.COM/x")
	is.True(errors.Is(err, ErrForbidden)) // b's is left
	got, err = st.OrcidWebhook(ctx, b.ID, orcid, "http://example.com/x")
	is.NoErr(err)
	is.Equal(got.UID, other)
}

// TestOrcidWebhookUIDMostRecentlyRemoved: a registration an older hookd kept in
// capitals, removed, registered again under that spelling (kept in lower case)
// and removed again: its deliveries list under the spelling first sent is the
// most recently removed registration's, as for any removed one. It was the older
// one's, the spelling as sent taken before when it was removed.
func TestOrcidWebhookUIDMostRecentlyRemoved(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)
	const orcid = "0000-0002-7253-3645"
	c, err := st.CreateClient(ctx, NewClient{Name: "lab", Scopes: []string{ScopeWebhook}})
	is.NoErr(err)
	const spelling = "HTTP://EXAMPLE.COM/x"
	_, err = st.write.ExecContext(ctx, `INSERT INTO subscriptions(id, uid, client_id, format, target, orcid, created_at, updated_at)
		VALUES (`+newSubscriptionID+`, ?, ?, 'empty', ?, ?, 0, 0)`, newUID(), c.ID, spelling, orcid)
	is.NoErr(err)
	event := func() {
		t.Helper()
		_, err := st.Intake(ctx, "", "", []Event{{Orcid: orcid}}, 0)
		is.NoErr(err)
	}
	event()
	old, err := st.OrcidWebhookUID(ctx, c.ID, orcid, spelling)
	is.NoErr(err)
	is.NoErr(st.DeleteOrcidWebhook(ctx, c.ID, orcid, spelling))

	later := time.Now().Add(time.Minute)
	st.Now = func() time.Time { return later } // removed later
	sub, created, err := st.PutOrcidWebhook(ctx, c.ID, orcid, spelling)
	is.NoErr(err)
	is.True(created)
	is.True(sub.UID != old)
	event()
	is.NoErr(st.DeleteOrcidWebhook(ctx, c.ID, orcid, spelling))

	for _, s := range []string{spelling, "http://example.com/x"} {
		uid, err := st.OrcidWebhookUID(ctx, c.ID, orcid, s)
		is.NoErr(err)
		is.Equal(uid, sub.UID) // the most recently removed
	}
}

// TestOrcidWebhookDefaultPort: a callback with its scheme's default port written
// out (http://…:80, https://…:443) is the same receiver as without it, kept
// without it: a PUT of each registered two, called twice for each event. One an
// older hookd kept with the port (in any case) is found under either spelling by
// PUT, GET, DELETE and the deliveries list, and no second is registered beside it.
func TestOrcidWebhookDefaultPort(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)
	c, err := st.CreateClient(ctx, NewClient{Name: "lab", Scopes: []string{ScopeWebhook}})
	is.NoErr(err)
	const orcid = "0000-0002-7253-3645"

	sub, created, err := st.PutOrcidWebhook(ctx, c.ID, orcid, "http://example.com:80/x")
	is.NoErr(err)
	is.True(created)
	is.Equal(sub.Target, "http://example.com/x") // kept without the port
	for _, spelling := range []string{"http://example.com/x", "HTTP://Example.com:80/x", "http://example.com:80/x"} {
		_, created, err := st.PutOrcidWebhook(ctx, c.ID, orcid, spelling)
		is.NoErr(err)
		is.True(!created) // the same registration
		got, err := st.OrcidWebhook(ctx, c.ID, orcid, spelling)
		is.NoErr(err)
		is.Equal(got.ID, sub.ID)
	}
	_, created, err = st.PutOrcidWebhook(ctx, c.ID, orcid, "http://example.com:8080/x")
	is.NoErr(err)
	is.True(created) // another port is another receiver

	// Registrations an older hookd kept as sent, with the default port.
	legacy := func(target string) string {
		t.Helper()
		uid := newUID()
		_, err := st.write.ExecContext(ctx, `INSERT INTO subscriptions(id, uid, client_id, format, target, orcid, created_at, updated_at)
			VALUES (`+newSubscriptionID+`, ?, ?, 'empty', ?, ?, 0, 0)`, uid, c.ID, target, orcid)
		is.NoErr(err)
		return uid
	}
	for _, tt := range []struct{ stored, other string }{
		{"https://legacy.example:443/y", "https://legacy.example/y"},
		{"HTTPS://LEGACY.EXAMPLE:443/z", "https://Legacy.Example/z"},
		{"http://[::1]:80/w", "HTTP://[::1]/w"},
	} {
		uid := legacy(tt.stored)
		for _, spelling := range []string{tt.stored, tt.other, CanonicalURL(tt.stored)} {
			got, err := st.OrcidWebhook(ctx, c.ID, orcid, spelling)
			is.NoErr(err) // found under either spelling
			is.Equal(got.UID, uid)
			_, created, err := st.PutOrcidWebhook(ctx, c.ID, orcid, spelling)
			is.NoErr(err)
			is.True(!created) // and none registered beside it
			u, err := st.OrcidWebhookUID(ctx, c.ID, orcid, spelling)
			is.NoErr(err)
			is.Equal(u, uid) // its deliveries too
		}
		_, err := st.Intake(ctx, "", "", []Event{{Orcid: orcid}}, 0) // a delivery, kept once it is removed
		is.NoErr(err)
		is.NoErr(st.DeleteOrcidWebhook(ctx, c.ID, orcid, tt.other)) // removed under the other spelling
		_, err = st.OrcidWebhook(ctx, c.ID, orcid, tt.stored)
		is.True(errors.Is(err, ErrNotFound)) // gone
		u, err := st.OrcidWebhookUID(ctx, c.ID, orcid, tt.other)
		is.NoErr(err)
		is.Equal(u, uid) // its history found under either spelling
	}
}
