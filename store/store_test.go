package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/matryer/is"

	"hookd/secret"
	"hookd/store"
)

// unavailable skips a test for want of what it needs (a feature of the system or
// of this build), saying what, or fails it where CI=true: CI has everything the
// tests need, and a test skipped there would never run.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format+" (CI=true: CI must have it)", args...)
	}
	tb.Skipf(format, args...)
}

// newBox returns a secret box with a fresh random key.
func newBox(tb testing.TB) *secret.Box {
	tb.Helper()
	is := is.New(tb)
	box, err := secret.NewBox(secret.Random(secret.KeySize))
	is.NoErr(err) // make secret box
	return box
}

// openAt opens the store at path, closed when the test ends.
func openAt(tb testing.TB, path string, box *secret.Box) *store.Store {
	tb.Helper()
	is := is.New(tb)
	st, err := store.Open(context.Background(), store.Options{Path: path, Box: box})
	is.NoErr(err) // open store
	tb.Cleanup(func() { st.Close() })
	return st
}

// newStore opens a fresh store in a temporary folder with its clock pinned.
func newStore(tb testing.TB) *store.Store {
	tb.Helper()
	st := openAt(tb, filepath.Join(tb.TempDir(), "hookd.db"), newBox(tb))
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	st.Now = func() time.Time { return now }
	return st
}

// newDaemonStore is newStore as the serving process opens it (Options.Daemon),
// which leaves work to its retention pass.
func newDaemonStore(tb testing.TB) *store.Store {
	tb.Helper()
	is := is.New(tb)
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(tb.TempDir(), "hookd.db"), Box: newBox(tb), Daemon: true})
	is.NoErr(err) // open store
	tb.Cleanup(func() { st.Close() })
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	st.Now = func() time.Time { return now }
	return st
}

// rawDB opens the file with database/sql directly, to look at what the store wrote.
func rawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	is := is.New(tb)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err) // open the file directly
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestOpenMigrates(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	box := newBox(t)

	st, err := store.Open(ctx, store.Options{Path: path, Box: box})
	is.NoErr(err) // open a fresh file
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)          // the schema is there
	is.NoErr(st.Ping(ctx)) // the store answers
	is.NoErr(st.Close())   // close

	db := rawDB(t, path)
	var versions, newest int
	is.NoErr(db.QueryRow("SELECT count(*), max(version) FROM schema_migrations").Scan(&versions, &newest)) // read the migrations
	files, err := os.ReadDir("migrations")
	is.NoErr(err)                           // the migration files
	is.Equal(newest, store.SchemaVersion()) // every migration applied
	is.Equal(versions, len(files))          // one row per migration
	var mode string
	is.NoErr(db.QueryRow("PRAGMA journal_mode").Scan(&mode)) // journal mode of the file
	is.Equal(mode, "wal")                                    // the store made the file WAL

	st = openAt(t, path, box)
	got, err := st.AuthenticateClient(ctx, c.ID, c.Secret)
	is.NoErr(err)             // re-opened file keeps its data
	is.Equal(got.Name, "lab") // the same client
	var again int
	is.NoErr(db.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&again)) // count again
	is.Equal(again, versions)                                                    // re-opening applied nothing twice
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	box := newBox(t)
	st, err := store.Open(ctx, store.Options{Path: path, Box: box})
	is.NoErr(err)        // create the file
	is.NoErr(st.Close()) // close it

	db := rawDB(t, path)
	future := store.SchemaVersion() + 1
	_, err = db.Exec("INSERT INTO schema_migrations(version, applied_at) VALUES (?, 0)", future)
	is.NoErr(err)        // a newer hookd migrated this file
	is.NoErr(db.Close()) // release the file

	_, err = store.Open(ctx, store.Options{Path: path, Box: box})
	is.True(err != nil)                                                       // refused
	is.True(strings.Contains(err.Error(), fmt.Sprint(future)))                // names the file's version
	is.True(strings.Contains(err.Error(), fmt.Sprint(store.SchemaVersion()))) // and the binary's
	is.True(strings.Contains(err.Error(), "newer"))                           // says what is wrong
}

func TestOpenOptions(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()

	t.Run("no box", func(t *testing.T) {
		is := is.New(t)
		_, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "a.db")})
		is.True(err != nil) // a store needs a secret box
	})
	t.Run("bad synchronous", func(t *testing.T) {
		is := is.New(t)
		_, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "b.db"), Synchronous: "off", Box: newBox(t)})
		is.True(err != nil)                                   // refused
		is.True(strings.Contains(err.Error(), "synchronous")) // names the option
	})
	t.Run("normal synchronous", func(t *testing.T) {
		is := is.New(t)
		st, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "c.db"), Synchronous: "normal", Box: newBox(t)})
		is.NoErr(err) // opens
		v, err := store.WriteSynchronous(ctx, st)
		is.NoErr(err)
		is.Equal(v, 1)       // NORMAL on the connection that commits
		is.NoErr(st.Close()) // close
	})
	t.Run("full synchronous by default", func(t *testing.T) {
		is := is.New(t)
		st, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "full.db"), Box: newBox(t)})
		is.NoErr(err) // opens
		v, err := store.WriteSynchronous(ctx, st)
		is.NoErr(err)
		is.Equal(v, 2)       // FULL: each commit's WAL is synced before it is acknowledged
		is.NoErr(st.Close()) // close
	})
	t.Run("journals of savepoints and statements in memory", func(t *testing.T) {
		is := is.New(t)
		st, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "temp.db"), Box: newBox(t)})
		is.NoErr(err) // opens
		v, err := store.WriteTempStore(ctx, st)
		is.NoErr(err)
		is.Equal(v, 2)       // MEMORY: a group's savepoints never write a temporary file
		is.NoErr(st.Close()) // close
	})
	t.Run("path with spaces and a question mark", func(t *testing.T) {
		is := is.New(t)
		p := filepath.Join(dir, "my data?x=1", "hookd #1.db")
		is.NoErr(os.MkdirAll(filepath.Dir(p), 0o700)) // make the folder
		st, err := store.Open(ctx, store.Options{Path: p, Box: newBox(t)})
		is.NoErr(err)        // opens
		is.NoErr(st.Close()) // close
		_, err = os.Stat(p)
		is.NoErr(err) // the file is where it was asked to be
	})
}

func TestConcurrentWrites(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	const n = 20

	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := st.CreateClient(ctx, store.NewClient{Name: fmt.Sprintf("client-%d", i), Scopes: []string{store.ScopeWebhook}})
			if err != nil {
				errs <- err
				return
			}
			for range 3 {
				tok, err := st.IssueToken(ctx, c.Client, []string{store.ScopeWebhook}, time.Hour)
				if err != nil {
					errs <- err
					return
				}
				if _, err := st.TokenInfo(ctx, tok.Access); err != nil {
					errs <- err
					return
				}
			}
			if _, _, err := st.PutOrcidWebhook(ctx, c.ID, "0000-0002-7253-3645", fmt.Sprintf("https://example.org/%d", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		is.True(!strings.Contains(err.Error(), "locked")) // never "database is locked"
		is.NoErr(err)                                     // concurrent write
	}
	clients, err := st.Clients(ctx)
	is.NoErr(err)             // list clients
	is.Equal(len(clients), n) // every client was written
	subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{Orcid: "0000-0002-7253-3645"})
	is.NoErr(err)          // list subscriptions
	is.Equal(len(subs), n) // every registration was written
}

func TestClients(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)

	c, err := st.CreateClient(ctx, store.NewClient{ID: "0000-0002-5315-1318", Name: "lab", Secret: "fd1a5e75-713a-4ca3-b9c3-a23164e6a263", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}})
	is.NoErr(err)                                                       // create with a given id and secret
	is.Equal(c.ID, "0000-0002-5315-1318")                               // the id asked for
	is.Equal(c.Secret, "fd1a5e75-713a-4ca3-b9c3-a23164e6a263")          // the secret asked for
	is.True(strings.HasPrefix(c.SigningSecret, "whsec_"))               // a Standard Webhooks secret
	is.Equal(c.Scopes, []string{store.ScopeWebhook, store.ScopeNotify}) // scopes
	is.True(c.CreatedAt.Equal(st.Now()))                                // on the store's clock

	gen, err := st.CreateClient(ctx, store.NewClient{Name: "generated", Scopes: []string{store.ScopeAdmin}})
	is.NoErr(err)                                                   // create with generated credentials
	is.True(strings.HasPrefix(gen.ID, "APP-") && len(gen.ID) == 20) // ORCID's client id form
	is.True(len(gen.Secret) >= 32)                                  // a long random secret
	is.True(gen.SigningSecret != c.SigningSecret)                   // every client its own signing secret

	t.Run("authenticate", func(t *testing.T) {
		is := is.New(t)
		got, err := st.AuthenticateClient(ctx, c.ID, c.Secret)
		is.NoErr(err)                            // right secret
		is.Equal(got.ID, c.ID)                   // the client
		is.True(got.HasScope(store.ScopeNotify)) // with its scopes
		is.True(!got.HasScope(store.ScopeAdmin)) // and only those
		_, err = st.AuthenticateClient(ctx, c.ID, c.Secret+"x")
		is.True(errors.Is(err, store.ErrBadCredentials)) // wrong secret
		_, err = st.AuthenticateClient(ctx, "APP-NOSUCHCLIENT0000", c.Secret)
		is.True(errors.Is(err, store.ErrBadCredentials)) // unknown client, same error
		_, err = st.AuthenticateClient(ctx, c.ID, gen.Secret)
		is.True(errors.Is(err, store.ErrBadCredentials)) // another client's secret
	})
	t.Run("lookup", func(t *testing.T) {
		is := is.New(t)
		byName, err := st.Client(ctx, "lab")
		is.NoErr(err)             // by name
		is.Equal(byName.ID, c.ID) // the client
		byID, err := st.Client(ctx, gen.ID)
		is.NoErr(err)                    // by id
		is.Equal(byID.Name, "generated") // the client
		_, err = st.Client(ctx, "nobody")
		is.True(errors.Is(err, store.ErrNotFound)) // unknown
		all, err := st.Clients(ctx)
		is.NoErr(err)         // list
		is.Equal(len(all), 2) // both
		sig, err := st.ClientSigningSecret(ctx, c.ID)
		is.NoErr(err)                  // open the sealed signing secret
		is.Equal(sig, c.SigningSecret) // the one shown at creation
	})
	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name string
			nc   store.NewClient
			want error
		}{
			{"no name", store.NewClient{Scopes: []string{store.ScopeWebhook}}, store.ErrInvalid},
			{"no scope", store.NewClient{Name: "x"}, store.ErrInvalid},
			{"unknown scope", store.NewClient{Name: "x", Scopes: []string{"/read-limited"}}, store.ErrInvalid},
			{"bad id", store.NewClient{ID: "has space", Name: "x", Secret: "long-enough", Scopes: []string{store.ScopeWebhook}}, store.ErrInvalid},
			{"short secret", store.NewClient{ID: "APP-1", Name: "x", Secret: "short", Scopes: []string{store.ScopeWebhook}}, store.ErrInvalid},
			{"duplicate id", store.NewClient{ID: c.ID, Name: "x", Secret: "long-enough", Scopes: []string{store.ScopeWebhook}}, store.ErrConflict},
			{"duplicate name", store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}}, store.ErrConflict},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				is := is.New(t)
				_, err := st.CreateClient(ctx, tt.nc)
				is.True(errors.Is(err, tt.want)) // refused with the right sentinel
			})
		}
		is := is.New(t)
		all, err := st.Clients(ctx)
		is.NoErr(err)         // list
		is.Equal(len(all), 2) // bad input created nothing
	})
	t.Run("rotate revokes tokens", func(t *testing.T) {
		is := is.New(t)
		tok, err := st.IssueToken(ctx, c.Client, []string{store.ScopeWebhook}, time.Hour)
		is.NoErr(err) // issue
		otherTok, err := st.IssueToken(ctx, gen.Client, []string{store.ScopeAdmin}, time.Hour)
		is.NoErr(err) // another client's token

		_, err = st.RotateClientSecret(ctx, c.ID, "short")
		is.True(errors.Is(err, store.ErrInvalid)) // too short a new secret
		_, err = st.TokenInfo(ctx, tok.Access)
		is.NoErr(err) // the failed rotation revoked nothing

		creds, err := st.RotateClientSecret(ctx, "lab", "")
		is.NoErr(err)                     // rotate by name
		is.Equal(creds.ID, c.ID)          // the client
		is.True(creds.Secret != c.Secret) // a new secret
		_, err = st.AuthenticateClient(ctx, c.ID, c.Secret)
		is.True(errors.Is(err, store.ErrBadCredentials)) // the old secret no longer works
		_, err = st.AuthenticateClient(ctx, c.ID, creds.Secret)
		is.NoErr(err) // the new one does
		_, err = st.TokenInfo(ctx, tok.Access)
		is.True(errors.Is(err, store.ErrTokenInvalid)) // tokens got with the old secret are revoked
		_, err = st.RefreshToken(ctx, c.Client, tok.Refresh, nil, time.Hour, false)
		is.True(errors.Is(err, store.ErrTokenInvalid)) // and cannot be refreshed
		_, err = st.TokenInfo(ctx, otherTok.Access)
		is.NoErr(err) // other clients' tokens are untouched
		sig, err := st.ClientSigningSecret(ctx, c.ID)
		is.NoErr(err)                  // signing secret
		is.Equal(sig, c.SigningSecret) // rotation of the client secret keeps the signing secret

		_, err = st.RotateClientSecret(ctx, "nobody", "")
		is.True(errors.Is(err, store.ErrNotFound)) // unknown client
	})
	t.Run("remove", func(t *testing.T) {
		is := is.New(t)
		tok, err := st.IssueToken(ctx, gen.Client, []string{store.ScopeAdmin}, time.Hour)
		is.NoErr(err) // issue
		_, _, err = st.PutOrcidWebhook(ctx, gen.ID, "0000-0002-7253-3645", "https://example.org/hook")
		is.NoErr(err) // register

		is.NoErr(st.RemoveClient(ctx, gen.ID)) // remove
		_, err = st.Client(ctx, gen.ID)
		is.True(errors.Is(err, store.ErrNotFound)) // gone
		_, err = st.AuthenticateClient(ctx, gen.ID, gen.Secret)
		is.True(errors.Is(err, store.ErrBadCredentials)) // cannot authenticate
		_, err = st.TokenInfo(ctx, tok.Access)
		is.True(errors.Is(err, store.ErrTokenInvalid)) // its tokens went with it
		subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{})
		is.NoErr(err) // list
		for _, s := range subs {
			is.True(s.ClientID != gen.ID) // its registrations went with it
		}
		_, err = st.Subscriptions(ctx, store.SubscriptionFilter{ClientID: gen.ID})
		is.True(errors.Is(err, store.ErrInvalid)) // and a list of a client that is gone says so

		is.True(errors.Is(st.RemoveClient(ctx, gen.ID), store.ErrNotFound)) // removing again
		_, err = st.Client(ctx, c.ID)
		is.NoErr(err) // the other client stays
	})
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"/webhook", []string{"/webhook"}, false},
		{"/webhook /notify", []string{"/webhook", "/notify"}, false},
		{"/webhook,/admin", []string{"/webhook", "/admin"}, false},
		{"/webhook+/notify", []string{"/webhook", "/notify"}, false},
		{"/webhook /webhook", []string{"/webhook"}, false},
		{"", nil, false},
		{"/read-limited", nil, true},
		{"webhook", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			is := is.New(t)
			got, err := store.ParseScopes(tt.in)
			if tt.wantErr {
				is.True(errors.Is(err, store.ErrInvalid)) // refused
				return
			}
			is.NoErr(err)          // parses
			is.Equal(got, tt.want) // scopes in order, once each
		})
	}
}

func TestTokens(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	now := st.Now() // pinned by newStore
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}})
	is.NoErr(err) // create client
	other, err := st.CreateClient(ctx, store.NewClient{Name: "other", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // another client

	tok, err := st.IssueToken(ctx, c.Client, []string{store.ScopeWebhook}, time.Hour)
	is.NoErr(err)                                    // issue
	is.True(tok.Access != "" && tok.Refresh != "")   // both tokens
	is.True(tok.ExpiresAt.Equal(now.Add(time.Hour))) // expiry on the store's clock

	_, err = st.IssueToken(ctx, c.Client, []string{store.ScopeAdmin}, time.Hour)
	is.True(errors.Is(err, store.ErrScope)) // a scope the client lacks
	_, err = st.IssueToken(ctx, c.Client, nil, time.Hour)
	is.True(errors.Is(err, store.ErrScope)) // no scope

	info, err := st.TokenInfo(ctx, tok.Access)
	is.NoErr(err)                                       // known
	is.Equal(info.ClientID, c.ID)                       // whose
	is.Equal(info.Scopes, []string{store.ScopeWebhook}) // what for
	is.Equal(info.Access, "")                           // the plain token is never read back
	_, err = st.TokenInfo(ctx, tok.Refresh)
	is.True(errors.Is(err, store.ErrTokenInvalid)) // a refresh token is not an access token

	t.Run("expiry", func(t *testing.T) {
		is := is.New(t)
		st.Now = func() time.Time { return now.Add(time.Hour - time.Millisecond) }
		_, err := st.TokenInfo(ctx, tok.Access)
		is.NoErr(err) // valid until the last millisecond
		st.Now = func() time.Time { return now.Add(time.Hour) }
		_, err = st.TokenInfo(ctx, tok.Access)
		is.True(errors.Is(err, store.ErrTokenExpired)) // expired at its expiry
		st.Now = func() time.Time { return now }
	})
	t.Run("refresh", func(t *testing.T) {
		is := is.New(t)
		_, err := st.RefreshToken(ctx, other.Client, tok.Refresh, nil, time.Hour, false)
		is.True(errors.Is(err, store.ErrTokenInvalid)) // another client's refresh token
		_, err = st.RefreshToken(ctx, c.Client, tok.Refresh, []string{store.ScopeNotify}, time.Hour, false)
		is.True(errors.Is(err, store.ErrScope)) // wider than the original token
		nt, err := st.RefreshToken(ctx, c.Client, tok.Refresh, nil, 2*time.Hour, true)
		is.NoErr(err)                                       // refresh
		is.True(nt.Access != tok.Access)                    // new access token
		is.Equal(nt.Refresh, tok.Refresh)                   // same refresh token
		is.Equal(nt.Scopes, []string{store.ScopeWebhook})   // same scopes
		is.True(nt.ExpiresAt.Equal(now.Add(2 * time.Hour))) // new expiry
		_, err = st.TokenInfo(ctx, tok.Access)
		is.True(errors.Is(err, store.ErrTokenInvalid)) // revoke_old revoked the old access token
		_, err = st.TokenInfo(ctx, nt.Access)
		is.NoErr(err) // the new one works
		tok = nt
	})
	t.Run("revoke", func(t *testing.T) {
		is := is.New(t)
		is.NoErr(st.RevokeToken(ctx, other.ID, tok.Access)) // another client's token: no error
		_, err := st.TokenInfo(ctx, tok.Access)
		is.NoErr(err)                                        // and no effect
		is.NoErr(st.RevokeToken(ctx, c.ID, "no-such-token")) // unknown token: no error
		is.NoErr(st.RevokeToken(ctx, c.ID, tok.Access))      // revoke
		_, err = st.TokenInfo(ctx, tok.Access)
		is.True(errors.Is(err, store.ErrTokenInvalid)) // revoked
		_, err = st.RefreshToken(ctx, c.Client, tok.Refresh, nil, time.Hour, false)
		is.True(errors.Is(err, store.ErrTokenInvalid)) // its refresh token went too
	})
}

func TestOrcidWebhooks(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	const id = "0000-0002-7253-3645"
	const cb = "http://nowhere2.com/0000-0002-7253-3645/updated?a=1&b=%25x"
	a, err := st.CreateClient(ctx, store.NewClient{Name: "a", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client a
	b, err := st.CreateClient(ctx, store.NewClient{Name: "b", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client b

	sub, created, err := st.PutOrcidWebhook(ctx, a.ID, id, cb)
	is.NoErr(err)                 // register
	is.True(created)              // new
	is.Equal(sub.Target, cb)      // callback kept byte-exact
	is.Equal(sub.Orcid, id)       // record
	is.Equal(sub.Format, "empty") // ORCID's bare POST
	is.True(sub.Active)           // active
	u, err := uuid.Parse(sub.UID)
	is.NoErr(err)                          // the public id is a UUID
	is.Equal(u.Version(), uuid.Version(7)) // time-ordered, so new ids append to the uid index
	second, _, err := st.PutOrcidWebhook(ctx, a.ID, id, cb+"&c=2")
	is.NoErr(err)                 // a second registration
	is.True(second.UID > sub.UID) // sorts after the first
	is.NoErr(st.DeleteOrcidWebhook(ctx, a.ID, id, cb+"&c=2"))

	again, created, err := st.PutOrcidWebhook(ctx, a.ID, id, cb)
	is.NoErr(err)              // register again
	is.True(!created)          // not new
	is.Equal(again.ID, sub.ID) // the same registration

	taken, created, err := st.PutOrcidWebhook(ctx, b.ID, id, cb)
	is.NoErr(err)                         // another client's PUT is answered as a repeat, as at ORCID
	is.True(!created)                     // not new
	is.Equal(taken, store.Subscription{}) // and shows nothing of a's
	_, err = st.OrcidWebhook(ctx, b.ID, id, cb)
	is.True(errors.Is(err, store.ErrForbidden))                                      // another client's
	is.True(errors.Is(st.DeleteOrcidWebhook(ctx, b.ID, id, cb), store.ErrForbidden)) // another client's
	list, err := st.OrcidWebhooks(ctx, b.ID, id)
	is.NoErr(err)          // b's list
	is.Equal(len(list), 0) // sees nothing of a's

	got, err := st.OrcidWebhook(ctx, a.ID, id, cb)
	is.NoErr(err)            // a's own
	is.Equal(got.ID, sub.ID) // the same
	list, err = st.OrcidWebhooks(ctx, a.ID, id)
	is.NoErr(err)          // a's list
	is.Equal(len(list), 1) // one

	is.NoErr(st.DeleteOrcidWebhook(ctx, a.ID, id, cb)) // unregister
	_, err = st.OrcidWebhook(ctx, a.ID, id, cb)
	is.True(errors.Is(err, store.ErrNotFound))                                      // gone
	is.True(errors.Is(st.DeleteOrcidWebhook(ctx, a.ID, id, cb), store.ErrNotFound)) // deleting again
}

func TestSecretsAtRest(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "hookd.db")
	st, err := store.Open(ctx, store.Options{Path: path, Box: newBox(t)})
	is.NoErr(err) // open

	const clientSecret = "known-client-secret-4c1d9e7a"
	c, err := st.CreateClient(ctx, store.NewClient{ID: "APP-KNOWNSECRET0001", Name: "lab", Secret: clientSecret, Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // create with a known secret
	tok, err := st.IssueToken(ctx, c.Client, []string{store.ScopeWebhook}, time.Hour)
	is.NoErr(err) // issue a token

	secrets := map[string]string{
		"client secret":  clientSecret,
		"signing secret": c.SigningSecret,
		"signing key":    strings.TrimPrefix(c.SigningSecret, "whsec_"),
		"access token":   tok.Access,
		"refresh token":  tok.Refresh,
	}
	check := func(when string) {
		t.Helper()
		files, err := filepath.Glob(path + "*")
		is.NoErr(err) // list the database files
		var all []byte
		for _, f := range files {
			if strings.HasSuffix(f, ".key") {
				continue
			}
			b, err := os.ReadFile(f)
			is.NoErr(err) // read a database file
			all = append(all, b...)
		}
		is.True(bytes.Contains(all, []byte("APP-KNOWNSECRET0001"))) // the bytes read are the database's (sanity check)
		for name, s := range secrets {
			if bytes.Contains(all, []byte(s)) {
				t.Errorf("%s: the %s is stored in clear", when, name)
			}
		}
	}
	check("while open (with the WAL)")
	is.NoErr(st.Close()) // close: checkpoint the WAL into the file
	check("after close")
}

// TestClientTokensBounded: a client holds at most store.MaxClientTokens tokens,
// however often it asks for one (a client asking for a token for each call, or
// for nothing but tokens, added a row each time, for the 20 years they live);
// past it, its oldest go, down to store.KeptClientTokens, and are refused as
// unknown, one the token cache held too. Refreshing counts alike; another
// client's tokens stay.
func TestClientTokensBounded(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	db := rawDB(t, path)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "busy", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	other, err := st.CreateClient(ctx, store.NewClient{Name: "other", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	issue := func(c store.Client) store.Token {
		t.Helper()
		tok, err := st.IssueToken(ctx, c, []string{store.ScopeWebhook}, time.Hour)
		is.NoErr(err)
		return tok
	}
	kept := issue(other.Client)
	var toks []store.Token
	for range store.MaxClientTokens {
		toks = append(toks, issue(c.Client))
	}
	for _, tok := range []store.Token{toks[0], toks[len(toks)-1]} {
		_, err := st.TokenInfo(ctx, tok.Access) // read, and cached
		is.NoErr(err)
	}
	count := func(id string) (n int) {
		t.Helper()
		is.NoErr(db.QueryRowContext(ctx, "SELECT count(*) FROM tokens WHERE client_id = ?", id).Scan(&n))
		return n
	}
	is.Equal(count(c.ID), store.MaxClientTokens) // every one kept up to the bound

	toks = append(toks, issue(c.Client)) // one past it
	is.Equal(count(c.ID), store.KeptClientTokens)
	gone := len(toks) - store.KeptClientTokens // the oldest
	for i, tok := range toks {
		_, err := st.TokenInfo(ctx, tok.Access)
		if i < gone {
			if !errors.Is(err, store.ErrTokenInvalid) {
				t.Fatalf("token %d of %d: %v, want it refused as unknown", i, len(toks), err)
			}
		} else if err != nil {
			t.Fatalf("token %d of %d: %v, want it kept", i, len(toks), err)
		}
	}
	_, err = st.TokenInfo(ctx, kept.Access)
	is.NoErr(err) // another client's
	is.Equal(count(other.ID), 1)

	// A refresh adds a token too, and is bounded alike.
	last := toks[len(toks)-1]
	for range store.MaxClientTokens - store.KeptClientTokens + 1 {
		last, err = st.RefreshToken(ctx, c.Client, last.Refresh, nil, time.Hour, false)
		is.NoErr(err)
	}
	is.Equal(count(c.ID), store.KeptClientTokens)
	_, err = st.TokenInfo(ctx, last.Access)
	is.NoErr(err) // the newest works
	_, err = st.TokenInfo(ctx, toks[gone].Access)
	is.True(errors.Is(err, store.ErrTokenInvalid)) // the oldest of before went
}

// TestClientTokensBoundKeepsLiveTokens: the bound on a client's tokens counts
// its revoked and expired rows too, but takes them before any live token: a
// client that keeps one token for years beside another it refreshes (each
// refresh revokes the token before) holds two live tokens, and the one it kept
// still works once its rows pass the bound.
func TestClientTokensBoundKeepsLiveTokens(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	db := rawDB(t, path)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "service", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	kept, err := st.IssueToken(ctx, c.Client, []string{store.ScopeWebhook}, time.Hour) // the oldest, live
	is.NoErr(err)
	last, err := st.IssueToken(ctx, c.Client, []string{store.ScopeWebhook}, time.Hour)
	is.NoErr(err)
	for range store.MaxClientTokens {
		last, err = st.RefreshToken(ctx, c.Client, last.Refresh, nil, time.Hour, true) // the one before revoked
		is.NoErr(err)
	}
	var rows, live int
	is.NoErr(db.QueryRowContext(ctx, "SELECT count(*), count(*) FILTER (WHERE revoked_at IS NULL) FROM tokens WHERE client_id = ?", c.ID).Scan(&rows, &live))
	is.True(rows <= store.MaxClientTokens) // bounded
	is.Equal(live, 2)                      // the token kept and the newest
	_, err = st.TokenInfo(ctx, kept.Access)
	is.NoErr(err) // the oldest token, live, still works
	_, err = st.TokenInfo(ctx, last.Access)
	is.NoErr(err)
}

// A token revoked by another process on the same file (the CLI beside the daemon)
// stops working within the token cache's two seconds.
func TestTokenRevokedElsewhere(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	box := newBox(t)
	daemon := openAt(t, path, box)
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	daemon.Now = func() time.Time { return now }
	c, err := daemon.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client
	tok, err := daemon.IssueToken(ctx, c.Client, []string{store.ScopeWebhook}, time.Hour)
	is.NoErr(err) // token
	_, err = daemon.TokenInfo(ctx, tok.Access)
	is.NoErr(err) // valid, and now cached

	cli := openAt(t, path, box)
	_, err = cli.RotateClientSecret(ctx, c.ID, "")
	is.NoErr(err) // another store on the file revokes the client's tokens
	_, err = cli.TokenInfo(ctx, tok.Access)
	is.True(errors.Is(err, store.ErrTokenInvalid)) // at once there

	now = now.Add(time.Second)
	_, err = daemon.TokenInfo(ctx, tok.Access)
	is.NoErr(err) // still cached in the daemon within the two seconds
	now = now.Add(time.Second)
	_, err = daemon.TokenInfo(ctx, tok.Access)
	is.True(errors.Is(err, store.ErrTokenInvalid)) // refused from two seconds on
}

// Calls that share a commit are isolated: one that fails leaves the others' writes.
func TestGroupCommitIsolation(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	a, err := st.CreateClient(ctx, store.NewClient{Name: "a", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client a
	b, err := st.CreateClient(ctx, store.NewClient{Name: "b", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client b
	const taken = "https://example.org/taken"
	_, _, err = st.PutOrcidWebhook(ctx, a.ID, "0000-0002-7253-3645", taken)
	is.NoErr(err) // a's registration

	_, calls0 := st.WriteStats()
	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cb, client := fmt.Sprintf("https://example.org/b/%d", i), b.ID
			if i%2 == 0 {
				client = "no-such-client" // fails inside the shared transaction
			}
			_, _, errs[i] = st.PutOrcidWebhook(ctx, client, "0000-0002-7253-3645", cb)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 {
			is.True(err != nil) // refused
		} else {
			is.NoErr(err) // registered beside the refused ones
		}
	}
	subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{ClientID: b.ID})
	is.NoErr(err)            // list
	is.Equal(len(subs), n/2) // every good registration committed, whatever shared its commit
	groups, calls := st.WriteStats()
	is.True(calls-calls0 >= n) // each call went through the group writer
	is.True(groups <= calls)   // in at most as many commits
}

// TestCheckKey: a store opens with a key that opens one of the secrets the database
// keeps (the newest first), and refuses one that opens none of them: another
// database's key. A database that keeps secrets under two keys, as an older hookd
// left one whose key it replaced, opens with either; a copy needs no key at all.
func TestCheckKey(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	a, b := newBox(t), newBox(t)
	open := func(box *secret.Box, skip bool) error {
		st, err := store.Open(ctx, store.Options{Path: path, Box: box, SkipKeyCheck: skip})
		if err == nil {
			st.Close()
		}
		return err
	}
	is.NoErr(open(b, false)) // a new database: nothing sealed, any key
	st, err := store.Open(ctx, store.Options{Path: path, Box: a})
	is.NoErr(err)
	_, err = st.CreateClient(ctx, store.NewClient{Name: "first", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	st.Close()

	is.True(errors.Is(open(b, false), store.ErrWrongKey)) // another key opens none of its secrets
	is.NoErr(open(b, true))                               // a copy does not ask

	st, err = store.Open(ctx, store.Options{Path: path, Box: b, SkipKeyCheck: true}) // as an older hookd made a second key
	is.NoErr(err)
	_, err = st.CreateClient(ctx, store.NewClient{Name: "second", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	st.Close()
	is.NoErr(open(b, false)) // the newer secrets open with b
	is.NoErr(open(a, false)) // the older with a
}

// TestWrongKeyLeavesAnOlderSchema: another database's key is refused before the
// migration, so the file stays at the schema the hookd before opens (restore the
// right key, or go back); FileCheck, check-config's reading, refuses it too.
func TestWrongKeyLeavesAnOlderSchema(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	a, b := newBox(t), newBox(t)
	st, err := store.Open(ctx, store.Options{Path: path, Box: a})
	is.NoErr(err)
	_, err = st.CreateClient(ctx, store.NewClient{Name: "sealed", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	st.Close()
	known := store.SchemaVersion()
	raw, err := sql.Open("sqlite", path)
	is.NoErr(err)
	// As the version before left it: migration 38 (two columns added) not yet run.
	_, err = raw.Exec("DELETE FROM schema_migrations WHERE version = ?", known)
	is.NoErr(err)
	_, err = raw.Exec(`ALTER TABLE clients DROP COLUMN removing_at;
		ALTER TABLE organisations DROP COLUMN removing_at`)
	is.NoErr(err)
	is.Equal(known, 38) // (a newer migration: undo that one here instead)
	is.NoErr(raw.Close())

	v, err := store.FileCheck(ctx, path, b)
	is.True(errors.Is(err, store.ErrWrongKey)) // check-config's reading refuses it
	is.Equal(v, known-1)
	_, err = store.Open(ctx, store.Options{Path: path, Box: b})
	is.True(errors.Is(err, store.ErrWrongKey)) // so does serve
	v, err = store.FileSchemaVersion(ctx, path)
	is.NoErr(err)
	is.Equal(v, known-1) // without migrating the file first
	v, err = store.FileCheck(ctx, path, a)
	is.NoErr(err) // the right key is taken
	is.Equal(v, known-1)
}

// TestSubscriptionIDsNotReused: a new subscription never takes the id of one
// removed before it, whichever kind either is, and whoever inserted the last (an
// older hookd beside this one gives SQLite's own choice: the mark follows it).
func TestSubscriptionIDsNotReused(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	c, err := st.CreateClient(ctx, store.NewClient{Name: "c", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	var newest store.Subscription
	for i := range 3 {
		newest, _, err = st.PutOrcidWebhook(ctx, c.ID, "0000-0002-7253-3645", fmt.Sprintf("https://example.org/%d", i))
		is.NoErr(err)
	}
	last := newest.ID
	is.NoErr(st.RemoveSubscription(ctx, newest.UID)) // the newest goes
	o, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)
	subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{})
	is.NoErr(err)
	newest = subs[len(subs)-1]
	is.Equal(newest.Format, store.FormatEmail)
	is.Equal(newest.ID, last+1) // not last's again

	_, err = rawDB(t, path).ExecContext(ctx, `INSERT INTO subscriptions(uid, client_id, format, target, orcid, created_at, updated_at)
		VALUES ('older', ?, 'empty', 'https://example.org/older', '0000-0002-7253-3645', 1, 1)`, c.ID) // as an older hookd inserts
	is.NoErr(err)
	is.NoErr(st.RemoveSubscription(ctx, "older"))
	sub, _, err := st.PutOrcidWebhook(ctx, c.ID, "0000-0002-7253-3645", "https://example.org/after")
	is.NoErr(err)
	is.Equal(sub.ID, last+3) // above the older hookd's, removed too
}

// TestOrganisationIDsNotReused: a new organisation never takes the id of one
// deleted before it, after the store is opened again too, and whoever inserted the
// last (an older hookd beside this one gives SQLite's own choice: the mark follows
// it). SQLite gave the newest deleted one's id to the next one made, so whatever
// still named the deleted one by its id (a console form, a script, an API client)
// acted on the newcomer.
func TestOrganisationIDsNotReused(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	box := newBox(t)
	st := openAt(t, path, box)
	a, err := st.CreateOrganisation(ctx, "A", "it@a.example")
	is.NoErr(err)
	b, err := st.CreateOrganisation(ctx, "B", "it@b.example")
	is.NoErr(err)
	is.True(b.ID > a.ID)
	is.NoErr(st.DeleteOrganisation(ctx, b.ID)) // the newest goes
	c, err := st.CreateOrganisation(ctx, "C", "it@c.example")
	is.NoErr(err)
	is.Equal(c.ID, b.ID+1) // not B's again

	is.NoErr(st.DeleteOrganisation(ctx, c.ID))
	is.NoErr(st.Close())
	st = openAt(t, path, box) // opened again
	d, err := st.CreateOrganisation(ctx, "D", "it@d.example")
	is.NoErr(err)
	is.Equal(d.ID, c.ID+1) // not C's

	r, err := rawDB(t, path).ExecContext(ctx, `INSERT INTO organisations(name, tech_contact_email, created_at, updated_at)
		VALUES ('Older', 'it@older.example', 1, 1)`) // as an older hookd inserts
	is.NoErr(err)
	older, err := r.LastInsertId()
	is.NoErr(err)
	is.Equal(older, d.ID+1) // SQLite's choice
	is.NoErr(st.DeleteOrganisation(ctx, older))
	is.NoErr(st.DeleteOrganisation(ctx, d.ID))
	e, err := st.CreateOrganisation(ctx, "E", "it@e.example")
	is.NoErr(err)
	is.Equal(e.ID, older+1) // above the older hookd's, deleted too
	_, err = st.Organisation(ctx, b.ID)
	is.True(errors.Is(err, store.ErrNotFound)) // B's id names nothing
}

// TestUpgradeMarksOrganisationIDs: a file of the schema before version 35 gives
// its next organisation an id above every one the file still names: its
// organisations', and those of deleted ones that its audit log or removed webhooks'
// history keep.
func TestUpgradeMarksOrganisationIDs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, keep string
		want       int64
	}{
		{"none", "", 3}, // the newest deleted before leaves no trace
		{"audit", `INSERT INTO audit_log(at, actor, via, address, action, target, org_id) VALUES (1, 'admin-token', 'api', '127.0.0.1', 'organisation.delete', '5', 5)`, 6},
		{"removed webhooks", `INSERT INTO removed_subscriptions(uid, org_id, format, target, removed_at) VALUES ('u', 4, 'hub', 'https://example.org/hub', 1)`, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "hookd.db")
			is.NoErr(store.MigrateTo(ctx, path, 34))
			db := rawDB(t, path)
			_, err := db.Exec(`INSERT INTO organisations(id, name, tech_contact_email, created_at, updated_at)
				VALUES (1, 'A', 'it@a.example', 1, 1), (2, 'B', 'it@b.example', 1, 1), (3, 'Gone', 'it@gone.example', 1, 1),
				       (4, 'Gone too', 'it@gone.example', 1, 1), (5, 'Gone three', 'it@gone.example', 1, 1);
				DELETE FROM organisations WHERE id > 2`)
			is.NoErr(err)
			if tc.keep != "" {
				_, err = db.Exec(tc.keep)
				is.NoErr(err)
			}
			st := openAt(t, path, newBox(t))
			o, err := st.CreateOrganisation(ctx, "New", "it@new.example")
			is.NoErr(err)
			is.Equal(o.ID, tc.want)
		})
	}
}

// TestOpenEmptyButForSQLitesTables: a file that holds SQLite's own tables only
// (ANALYZE's sqlite_stat1, AUTOINCREMENT's sqlite_sequence) or Litestream's is an
// empty database to hookd, not another application's: it opens and is migrated.
func TestOpenEmptyButForSQLitesTables(t *testing.T) {
	for name, setup := range map[string]string{
		"sqlite_stat1":    "CREATE TABLE t(x); CREATE INDEX tx ON t(x); INSERT INTO t VALUES (1); ANALYZE; DROP TABLE t",
		"sqlite_sequence": "CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO t DEFAULT VALUES; DROP TABLE t",
		"litestream":      "CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER); CREATE TABLE _litestream_lock (id INTEGER)",
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "hookd.db")
			raw, err := sql.Open("sqlite", path)
			is.NoErr(err)
			_, err = raw.Exec(setup)
			is.NoErr(err)
			var left int
			is.NoErr(raw.QueryRow("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").Scan(&left))
			is.True(left > 0) // the file is not empty
			is.NoErr(raw.Close())
			v, err := store.FileSchemaVersion(ctx, path)
			is.NoErr(err)
			is.Equal(v, 0) // an empty database
			st, err := store.Open(ctx, store.Options{Path: path, Box: newBox(t)})
			is.NoErr(err) // which hookd makes its own
			is.NoErr(st.Close())
		})
	}
}

// TestFailedOpenLeavesNoFile: an open that fails (":memory:" is no file hookd can
// keep a WAL beside) leaves no empty file it made behind.
func TestFailedOpenLeavesNoFile(t *testing.T) {
	is := is.New(t)
	t.Chdir(t.TempDir())
	_, err := store.Open(context.Background(), store.Options{Path: ":memory:", Box: newBox(t)})
	is.True(err != nil) // refused
	_, err = os.Stat(":memory:")
	is.True(os.IsNotExist(err)) // and nothing made
}

// TestOpenRefusesHardLinkedFile: SQLite keeps the -wal and -shm files beside the
// name a database is opened by, so two processes that open one file by two names
// (hard links, as cp -l or a hard-link snapshot of the folder makes them) write two
// WALs of one file and corrupt it; the lock file, beside each name, does not see
// the other. A database file with more than one name is refused under each, before
// SQLite makes a -wal beside it, with an error that says what to do.
func TestOpenRefusesHardLinkedFile(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "hookd.db")
	box := newBox(t)
	st, err := store.Open(ctx, store.Options{Path: path, Box: box})
	is.NoErr(err) // a database
	is.NoErr(st.Close())
	other := filepath.Join(t.TempDir(), "snapshot.db")
	if err := os.Link(path, other); err != nil {
		unavailable(t, "no hard links here: %v", err)
	}
	for _, p := range []string{other, path} {
		_, err := store.Open(ctx, store.Options{Path: p, Box: box, MustExist: true})
		is.True(err != nil)                                    // refused, by either name
		is.True(strings.Contains(err.Error(), "2 names"))      // saying why
		is.True(strings.Contains(err.Error(), "hard link"))    // in words an operator looks up
		is.True(strings.Contains(err.Error(), "hookd backup")) // and how to copy one instead
		_, serr := os.Stat(p + "-wal")
		is.True(errors.Is(serr, os.ErrNotExist)) // SQLite never opened it
	}
	is.NoErr(os.Remove(other))
	st, err = store.Open(ctx, store.Options{Path: path, Box: box, MustExist: true})
	is.NoErr(err) // one name again: it opens
	is.NoErr(st.Close())
}

// TestHardLinkErrorFindsTheOtherNames: the command the refusal gives to list the
// other names searches the file system that holds the file, by its real path: a
// database reached through a symlink to another volume (/var/lib/hookd ->
// /data/hookd) is not on the root's file system, which "find / -xdev" would
// search alone, listing nothing.
func TestHardLinkErrorFindsTheOtherNames(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	real := t.TempDir()
	path := filepath.Join(real, "hookd.db")
	box := newBox(t)
	st, err := store.Open(ctx, store.Options{Path: path, Box: box})
	is.NoErr(err) // a database
	is.NoErr(st.Close())
	if err := os.Link(path, filepath.Join(real, "copy.db")); err != nil {
		unavailable(t, "no hard links here: %v", err)
	}
	link := filepath.Join(t.TempDir(), "hookd")
	if err := os.Symlink(real, link); err != nil {
		unavailable(t, "no symlinks here: %v", err)
	}
	resolved, err := filepath.EvalSymlinks(path)
	is.NoErr(err)
	_, err = store.Open(ctx, store.Options{Path: filepath.Join(link, "hookd.db"), Box: box, MustExist: true})
	is.True(err != nil) // refused through the symlink too
	msg := err.Error()
	is.True(strings.Contains(msg, " -xdev -samefile "+resolved+" ")) // the file by its real path
	top, _, ok := strings.Cut(msg[strings.Index(msg, "(find ")+len("(find "):], " -xdev")
	is.True(ok)
	is.True(top == "/" || strings.HasPrefix(resolved, top+string(filepath.Separator))) // searched from a folder that holds it
}
