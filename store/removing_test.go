package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/secret"
	"hookd/store"
)

// removingClient is a store at a path of its own (to be opened again, as after a
// kill) whose client "lab" has n ORCID-style webhooks of one record, each with one
// delivery waiting and three finished, a token and a console session.
type removingClient struct {
	path    string
	box     *secret.Box
	st      *store.Store
	client  store.Credentials
	token   store.Token
	session []byte // the session's id hash
}

var removingNow = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func newRemovingClient(t *testing.T, n int) *removingClient {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	r := &removingClient{path: filepath.Join(t.TempDir(), "hookd.db"), box: newBox(t)}
	r.st = r.open(t)
	var err error
	r.client, err = r.st.CreateClient(ctx, store.NewClient{ID: "APP-LAB", Name: "lab", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}})
	is.NoErr(err)
	for i := range n {
		_, _, err := r.st.PutOrcidWebhook(ctx, r.client.ID, histOrcid, fmt.Sprintf("https://example.org/cb/%03d", i))
		is.NoErr(err)
	}
	_, err = r.st.Intake(ctx, "", "", []store.Event{{Orcid: histOrcid}}, 0)
	is.NoErr(err) // one waiting for each
	at := removingNow.Add(-time.Hour).UnixMilli()
	for i := range 3 {
		is.NoErr(store.ExecWrite(ctx, r.st, `INSERT INTO deliveries(subscription_id, subject, event_type, state,
			due_at, first_event_at, last_event_at, attempts, done_at)
			SELECT id, orcid, 'UPDATED', 2 + (id + ?2) % 2, ?3, ?3, ?3, 1, ?3 FROM subscriptions WHERE client_id = ?1 ORDER BY id`,
			r.client.ID, i, at+int64(i)))
	}
	r.token, err = r.st.IssueToken(ctx, r.client.Client, []string{store.ScopeNotify}, time.Hour)
	is.NoErr(err)
	_, err = r.st.TokenInfo(ctx, r.token.Access) // cached, as every intake call caches it
	is.NoErr(err)
	r.session = secret.Hash("lab-session")
	_, err = r.st.SignInClient(ctx, r.client.ID, r.client.Secret, spec("lab-session"))
	is.NoErr(err)
	return r
}

// open opens the store's file (again), its clock pinned.
func (r *removingClient) open(t *testing.T) *store.Store {
	t.Helper()
	st := openAt(t, r.path, r.box)
	st.Now = func() time.Time { return removingNow }
	return st
}

// reopen closes the store and opens its file again, as a new process would.
func (r *removingClient) reopen(t *testing.T) {
	t.Helper()
	is.New(t).NoErr(r.st.Close())
	r.st = r.open(t)
}

func (r *removingClient) count(t *testing.T, query string, args ...any) int64 {
	t.Helper()
	n, err := store.QueryInt(context.Background(), r.st, query, args...)
	is.New(t).NoErr(err)
	return n
}

// TestMarkedClientIsRefused: from the transaction that marks a client as being
// removed, before any of its webhooks has gone, its token, its secret and its
// console session are refused, it is listed and found no more (its lookup says
// it is being removed), a new client cannot take its id, and its webhooks are
// sent nothing: what a claim finds of them dies unsent.
func TestMarkedClientIsRefused(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	r := newRemovingClient(t, 4)
	defer store.StopRemovalAfter(0)() // stopped right after the mark
	err := r.st.RemoveClient(ctx, r.client.ID)
	is.True(errors.Is(err, store.ErrRemovalStopped))
	is.True(strings.Contains(err.Error(), "it is marked as being removed, and its removal finishes when run again")) // says what is left
	is.Equal(r.count(t, "SELECT count(*) FROM subscriptions"), int64(4))                                             // none of its webhooks gone yet

	_, err = r.st.TokenInfo(ctx, r.token.Access)
	is.True(errors.Is(err, store.ErrTokenInvalid)) // its token, cached a moment ago, is refused
	_, err = r.st.AuthenticateClient(ctx, r.client.ID, r.client.Secret)
	is.True(errors.Is(err, store.ErrBadCredentials)) // its secret too
	_, err = r.st.IssueToken(ctx, r.client.Client, []string{store.ScopeNotify}, time.Hour)
	if err == nil { // a token given on a secret checked just before the mark
		_, err = r.st.TokenInfo(ctx, r.token.Access)
		is.True(errors.Is(err, store.ErrTokenInvalid))
	}
	_, err = r.st.Session(ctx, r.session, time.Hour)
	is.True(errors.Is(err, store.ErrNotFound)) // its console session ended
	_, err = r.st.SignInClient(ctx, r.client.ID, r.client.Secret, spec("again"))
	is.True(errors.Is(err, store.ErrBadCredentials)) // and it cannot sign in again

	_, err = r.st.Client(ctx, "lab")
	is.True(errors.Is(err, store.ErrNotFound))
	is.True(strings.Contains(err.Error(), "is being removed")) // found no more, saying why
	list, err := r.st.Clients(ctx)
	is.NoErr(err)
	is.Equal(len(list), 0) // nor listed
	rows, err := r.st.ConsoleClients(ctx)
	is.NoErr(err)
	is.Equal(len(rows), 0) // on the console's page or hookd client list
	_, err = r.st.CreateClient(ctx, store.NewClient{ID: r.client.ID, Name: "other", Scopes: []string{store.ScopeWebhook}})
	is.True(errors.Is(err, store.ErrConflict))
	is.True(strings.Contains(err.Error(), "it is being removed; its id is free once its removal finishes")) // its id is not free yet
	_, err = r.st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.True(errors.Is(err, store.ErrConflict))
	is.True(strings.Contains(err.Error(), "its name is free once its removal finishes")) // nor its name

	claimed, err := r.st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 0) // its waiting deliveries are not sent
	is.Equal(r.count(t, "SELECT count(*) FROM deliveries WHERE state = 3 AND last_error = 'not sent: webhook removed'"), int64(4))

	restore := store.StopRemovalAfter(-1) // never
	defer restore()
	is.NoErr(r.st.RemoveClient(ctx, "APP-LAB")) // run again, it finishes
	is.Equal(r.count(t, "SELECT count(*) FROM subscriptions"), int64(0))
	is.Equal(r.count(t, "SELECT count(*) FROM clients"), int64(0))
	is.Equal(r.count(t, "SELECT count(*) FROM deliveries WHERE removed_subscription_id IS NOT NULL"), int64(16)) // every delivery kept as history
	_, err = r.st.CreateClient(ctx, store.NewClient{ID: r.client.ID, Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // its id and name are free now
}

// TestInterruptedClientRemovalFinishes: a client's removal stopped half-way (the
// process killed after some of its batches, one of them half done: its webhooks
// deactivated and their history moved ahead) is finished, never undone: the
// daemon's start (RecoverAhead) and its retention pass (RecoverKilled) leave its
// webhooks as they are, and the removal run again, or the daemon's
// FinishRemovals, removes the rest, keeping every delivery as history.
func TestInterruptedClientRemovalFinishes(t *testing.T) {
	ctx := context.Background()
	defer store.SetRemovingBatch(3)()
	defer store.SetAhead(2, 3)()
	defer store.SetKillBatch(2)()
	for _, finisher := range []struct {
		name   string
		finish func(r *removingClient) error
	}{
		{"the removal run again", func(r *removingClient) error { return r.st.RemoveClient(ctx, "lab") }},
		{"the daemon", func(r *removingClient) error {
			n, err := r.st.FinishRemovals(ctx, removingNow.Add(time.Minute))
			if err == nil && n != 1 {
				err = fmt.Errorf("finished %d removals, want 1", n)
			}
			return err
		}},
	} {
		t.Run(finisher.name, func(t *testing.T) {
			is := is.New(t)
			r := newRemovingClient(t, 10)
			restore := store.StopRemovalAfter(1) // the mark, and one batch of 3 webhooks
			err := r.st.RemoveClient(ctx, r.client.ID)
			restore()
			is.True(errors.Is(err, store.ErrRemovalStopped))
			is.Equal(r.count(t, "SELECT count(*) FROM subscriptions"), int64(7)) // one batch gone
			// The next batch half done when the process was killed: its webhooks
			// deactivated ahead of their removal, a quarter of an hour ago, and the
			// history of one of them moved ahead.
			is.NoErr(store.ExecWrite(ctx, r.st, `UPDATE subscriptions SET active = 0, reason = 'being removed', updated_at = ?
				WHERE id IN (SELECT id FROM subscriptions ORDER BY id LIMIT 3)`, removingNow.Add(-time.Hour).UnixMilli()))
			uid, err := store.QueryString(ctx, r.st, "SELECT uid FROM subscriptions ORDER BY id LIMIT 1")
			is.NoErr(err)
			is.NoErr(store.MoveAhead(ctx, r.st, uid))
			r.reopen(t)

			n, err := r.st.RecoverAhead(ctx) // the daemon's start
			is.NoErr(err)
			is.Equal(n, 0)                                                     // undoes nothing of it
			n, err = r.st.RecoverKilled(ctx, removingNow.Add(-15*time.Minute)) // its retention pass
			is.NoErr(err)
			is.Equal(n, 0)
			is.Equal(r.count(t, "SELECT count(*) FROM subscriptions WHERE active = 0 AND reason = 'being removed'"), int64(3))   // still off
			is.Equal(r.count(t, "SELECT count(*) FROM removed_subscriptions r JOIN subscriptions s ON s.uid = r.uid"), int64(1)) // its history still ahead
			_, err = r.st.TokenInfo(ctx, r.token.Access)
			is.True(errors.Is(err, store.ErrTokenInvalid)) // and the client still refused
			n, err = r.st.FinishRemovals(ctx, removingNow.Add(-time.Minute))
			is.NoErr(err)
			is.Equal(n, 0)                                                       // a removal that stepped since is left to whoever runs it
			is.Equal(r.count(t, "SELECT count(*) FROM subscriptions"), int64(7)) // as it was

			is.NoErr(finisher.finish(r))
			is.Equal(r.count(t, "SELECT count(*) FROM subscriptions"), int64(0))
			is.Equal(r.count(t, "SELECT count(*) FROM clients"), int64(0))
			is.Equal(r.count(t, "SELECT count(*) FROM tokens"), int64(0))
			is.Equal(r.count(t, "SELECT count(*) FROM removed_subscriptions"), int64(10))
			is.Equal(r.count(t, "SELECT count(*) FROM deliveries WHERE removed_subscription_id IS NOT NULL"), int64(40)) // every delivery kept
			is.Equal(r.count(t, "SELECT count(*) FROM deliveries WHERE state = 3 AND last_error = 'not sent: webhook removed'"), int64(10))
			n, err = r.st.FinishRemovals(ctx, removingNow.Add(time.Minute))
			is.NoErr(err)
			is.Equal(n, 0) // nothing left to finish
		})
	}
}

// TestInterruptedOrganisationRemovalFinishes: an organisation's removal stopped
// half-way is refused as the organisation from its mark (its lookups, its name,
// its staff's token), is not undone by the daemon's start, and is finished by the
// daemon: its staff's webhooks and its own go, and its members, each record no
// other organisation covers unregistered upstream.
func TestInterruptedOrganisationRemovalFinishes(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetRemovingBatch(2)()
	defer store.SetUpstreamBatch(3)()
	r := &removingClient{path: filepath.Join(t.TempDir(), "hookd.db"), box: newBox(t)}
	r.st = r.open(t)
	a := sharedOrgs(t, r.st) // A: 8 members with its webhook; B covers the 8th too
	staff, err := r.st.CreateOrgClient(ctx, a.ID, store.NewClient{Name: "a-staff", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	for i := range 5 {
		_, _, err := r.st.PutOrcidWebhook(ctx, staff.ID, histOrcid, fmt.Sprintf("https://example.org/staff/%d", i))
		is.NoErr(err)
	}
	tok, err := r.st.IssueToken(ctx, staff.Client, []string{store.ScopeWebhook}, time.Hour)
	is.NoErr(err)
	_, err = r.st.Intake(ctx, "", "", []store.Event{{Orcid: histOrcid}, {Orcid: memberOrcid(1)}}, 0)
	is.NoErr(err)

	restore := store.StopRemovalAfter(2) // the mark and two batches of the staff's webhooks
	err = r.st.DeleteOrganisation(ctx, a.ID)
	restore()
	is.True(errors.Is(err, store.ErrRemovalStopped))
	is.Equal(r.count(t, "SELECT count(*) FROM subscriptions WHERE client_id = ?", staff.ID), int64(1))

	_, err = r.st.Organisation(ctx, a.ID)
	is.True(errors.Is(err, store.ErrNotFound))
	is.True(strings.Contains(err.Error(), "is being removed")) // found no more, saying why
	orgs, err := r.st.Organisations(ctx)
	is.NoErr(err)
	is.Equal(len(orgs), 1) // B alone
	_, err = r.st.PutMember(ctx, a.ID, memberOrcid(20), store.MemberInfo{}, 0)
	is.True(errors.Is(err, store.ErrNotFound)) // no member joins it
	_, err = r.st.CreateOrganisation(ctx, a.Name, "tech@a.example")
	is.True(errors.Is(err, store.ErrConflict))
	is.True(strings.Contains(err.Error(), "is being removed")) // its name is not free yet
	_, err = r.st.TokenInfo(ctx, tok.Access)
	is.True(errors.Is(err, store.ErrTokenInvalid)) // its staff's token is refused
	_, err = r.st.Client(ctx, staff.ID)
	is.True(errors.Is(err, store.ErrNotFound)) // its staff is being removed with it
	claimed, err := r.st.Exchange(ctx, nil, 20, time.Minute)
	is.NoErr(err)
	for _, c := range claimed {
		is.True(c.Target.ClientID != staff.ID)         // nothing is sent to its staff's webhooks
		is.True(c.Target.URL != "https://a.example/h") // nor to its own
	}
	// Its webhook's deliveries about its 8 members, and the one of the staff's
	// webhook left: unsent.
	is.Equal(r.count(t, "SELECT count(*) FROM deliveries WHERE subscription_id IS NOT NULL AND state = 3 AND last_error = 'not sent: webhook removed'"), int64(9))

	r.reopen(t)
	_, err = r.st.RecoverAhead(ctx) // the daemon's start
	is.NoErr(err)
	is.Equal(r.count(t, "SELECT count(*) FROM organisations WHERE id = ? AND removing_at IS NOT NULL", a.ID), int64(1)) // still being removed
	n, err := r.st.FinishRemovals(ctx, removingNow)                                                                     // the daemon, while the removal steps
	is.NoErr(err)
	is.Equal(n, 0)                                                  // leaves it to whoever runs it
	n, err = r.st.FinishRemovals(ctx, removingNow.Add(time.Minute)) // once it has not stepped for a while
	is.NoErr(err)
	is.Equal(n, 1)
	is.Equal(r.count(t, "SELECT count(*) FROM organisations WHERE id = ?", a.ID), int64(0))
	is.Equal(r.count(t, "SELECT count(*) FROM clients WHERE id = ?", staff.ID), int64(0)) // its staff with it
	is.Equal(r.count(t, "SELECT count(*) FROM members WHERE org_id = ?", a.ID), int64(0))
	is.Equal(r.count(t, "SELECT count(*) FROM subscriptions WHERE org_id = ? OR client_id = ?", a.ID, staff.ID), int64(0))
	for i := 1; i <= 8; i++ {
		wanted, err := r.st.UpstreamWanted(ctx, memberOrcid(i))
		is.NoErr(err)
		is.Equal(wanted, i == 8) // only B's member stays registered
	}
	_, err = r.st.CreateOrganisation(ctx, a.Name, "tech@a.example")
	is.NoErr(err) // its name is free now
}

// TestRemovalCallerGone: a caller that stops waiting (an interrupted command, the
// console's request gone) stops a client's removal between two transactions; the
// client stays marked, refused, and the daemon finishes its removal.
func TestRemovalCallerGone(t *testing.T) {
	is := is.New(t)
	defer store.SetRemovingBatch(2)()
	r := newRemovingClient(t, 6)
	ctx, cancel := context.WithCancel(context.Background())
	defer store.OnRemovalStep(func() error { cancel(); return nil })() // gone once it has marked the client
	err := r.st.RemoveClient(ctx, r.client.ID)
	is.True(errors.Is(err, context.Canceled))
	is.Equal(r.count(t, "SELECT count(*) FROM subscriptions"), int64(6)) // stopped before its first batch
	_, err = r.st.AuthenticateClient(context.Background(), r.client.ID, r.client.Secret)
	is.True(errors.Is(err, store.ErrBadCredentials)) // the client marked, refused
	n, err := r.st.FinishRemovals(context.Background(), removingNow.Add(time.Minute))
	is.NoErr(err)
	is.Equal(n, 1)
	is.Equal(r.count(t, "SELECT count(*) FROM clients"), int64(0))
}

// TestRemovalsListed: a removal stopped half-way, hidden from the lists, is in
// Removals with what it has left and when it last stepped: a client's webhooks;
// an organisation's webhooks with its staff's, and its members; its staff client
// with it. Finished, it is there no more.
func TestRemovalsListed(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	r := newRemovingClient(t, 4)
	a := sharedOrgs(t, r.st) // A: its webhook and 8 members
	staff, err := r.st.CreateOrgClient(ctx, a.ID, store.NewClient{Name: "a-staff", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	for i := range 3 {
		_, _, err := r.st.PutOrcidWebhook(ctx, staff.ID, histOrcid, fmt.Sprintf("https://example.org/staff/%d", i))
		is.NoErr(err)
	}
	list, err := r.st.Removals(ctx)
	is.NoErr(err)
	is.Equal(len(list), 0) // none begun

	restore := store.StopRemovalAfter(0) // each stopped right after its mark
	is.True(errors.Is(r.st.RemoveClient(ctx, r.client.ID), store.ErrRemovalStopped))
	is.True(errors.Is(r.st.DeleteOrganisation(ctx, a.ID), store.ErrRemovalStopped))
	restore()
	list, err = r.st.Removals(ctx)
	is.NoErr(err)
	is.Equal(len(list), 3)
	is.Equal(list[0], store.Removal{Org: a.ID, Name: "A", Stepped: removingNow, Webhooks: 1 + 3, Members: 8}) // the organisation first
	byID := map[string]store.Removal{}
	for _, c := range list[1:] {
		byID[c.Client] = c
	}
	is.Equal(byID[r.client.ID], store.Removal{Client: r.client.ID, Name: "lab", Stepped: removingNow, Webhooks: 4})
	is.Equal(byID[staff.ID], store.Removal{Client: staff.ID, Org: a.ID, Name: "a-staff", OrgName: "A", Stepped: removingNow, Webhooks: 3}) // with its organisation

	is.NoErr(r.st.RemoveClient(ctx, r.client.ID)) // run again, each finishes
	is.NoErr(r.st.DeleteOrganisation(ctx, a.ID))
	list, err = r.st.Removals(ctx)
	is.NoErr(err)
	is.Equal(len(list), 0)
}
