package store_test

import (
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

	"github.com/matryer/is"

	"hookd/store"
)

// waitFault polls st.Fault until want says yes, failing the test after 10 s.
func waitFault(tb testing.TB, st *store.Store, what string, want func(error) bool) error {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := st.Fault(context.Background())
		if want(err) {
			return err
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waited 10s for the fault to be %s; it is %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStoreFull: with the file at its size limit, writes fail as a store fault
// naming a full disk, what was acknowledged before is all there, and the store
// works again by itself once there is room.
func TestStoreFull(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}})
	is.NoErr(err) // create client
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, "0000-0002-7253-3645", "https://example.org/cb")
	is.NoErr(err)                      // a subscription, so events make deliveries
	is.NoErr(st.Fault(ctx))            // no fault yet
	is.NoErr(st.LimitPages(ctx, true)) // the disk is full

	// Fill what room is left, from many goroutines at once (group commit).
	var mu sync.Mutex
	acked, faults := 0, 0
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				ev := store.Event{Orcid: "0000-0002-7253-3645", ID: fmt.Sprintf("ev-%d-%d-%s", g, i, strings.Repeat("x", 150))}
				_, err := st.Intake(ctx, c.ID, "", []store.Event{ev}, 0)
				mu.Lock()
				switch {
				case err == nil:
					acked++
				case errors.Is(err, store.ErrUnavailable):
					faults++
				default:
					t.Errorf("intake: not a store fault: %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d events acknowledged, %d refused", acked, faults)
	is.True(acked > 0)  // there was room for some
	is.True(faults > 0) // until the limit was reached
	// A group that failed may have been larger than the room left, so one event
	// alone can still fit: go on one at a time until the file refuses one.
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("1000 single events after the disk was full were all acknowledged")
		}
		_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: "0000-0002-7253-3645", ID: fmt.Sprintf("one-more-%d-%s", i, strings.Repeat("y", 150))}}, 0)
		if err != nil {
			break
		}
		acked++
	}
	is.True(errors.Is(err, store.ErrUnavailable))                              // a store fault
	is.True(strings.Contains(err.Error(), "the database or its disk is full")) // that says what is wrong
	var se *store.Error
	is.True(errors.As(err, &se) && se.Code == store.Unavailable) // as data
	ferr := st.Fault(ctx)
	is.True(errors.Is(ferr, store.ErrUnavailable)) // remembered for readiness

	ds, err := st.Deliveries(ctx, store.DeliveryFilter{})
	is.NoErr(err)                     // the outbox
	is.Equal(len(ds), 1)              // one pending delivery: the events merge into it
	is.Equal(ds[0].EventCount, acked) // every acknowledged event is stored, and nothing else

	is.NoErr(st.LimitPages(ctx, false)) // room again
	waitFault(t, st, "cleared", func(err error) bool { return err == nil })
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: "0000-0002-7253-3645", ID: "after"}}, 0)
	is.NoErr(err) // writes work again, without reopening
}

// TestStoreReadOnly: a database that refuses writes fails every write (one
// transaction or a group) as a store fault naming it, reads go on, and writes
// work again by themselves once it takes them.
func TestStoreReadOnly(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeNotify}})
	is.NoErr(err) // create client
	is.NoErr(st.QueryOnly(ctx, true))

	_, err = st.CreateClient(ctx, store.NewClient{Name: "other", Scopes: []string{store.ScopeNotify}})
	is.True(errors.Is(err, store.ErrUnavailable))                       // one transaction: a store fault
	is.True(strings.Contains(err.Error(), "the database is read-only")) // that says what is wrong
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
	is.True(errors.Is(err, store.ErrUnavailable)) // the group writer: the same
	_, err = st.Client(ctx, c.ID)
	is.NoErr(err)                                           // reads go on
	is.True(errors.Is(st.Fault(ctx), store.ErrUnavailable)) // readiness knows

	is.NoErr(st.QueryOnly(ctx, false))
	waitFault(t, st, "cleared", func(err error) bool { return err == nil })
	_, err = st.CreateClient(ctx, store.NewClient{Name: "other", Scopes: []string{store.ScopeNotify}})
	is.NoErr(err) // writes work again
}

// TestClassify: SQLite's errors of a locked database or one that cannot be
// opened are store faults that say so; others are not.
func TestClassify(t *testing.T) {
	ctx := context.Background()

	t.Run("locked past the busy timeout", func(t *testing.T) {
		is := is.New(t)
		path := filepath.Join(t.TempDir(), "hookd.db")
		openAt(t, path, newBox(t))
		holder, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
		is.NoErr(err)
		defer holder.Close()
		tx, err := holder.BeginTx(ctx, nil)
		is.NoErr(err) // another process holds the write lock
		defer tx.Rollback()
		other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
		is.NoErr(err)
		defer other.Close()
		_, err = other.ExecContext(ctx, "UPDATE schema_migrations SET applied_at = applied_at")
		is.True(err != nil) // locked
		err = store.Classify(err)
		is.True(errors.Is(err, store.ErrUnavailable))    // a store fault
		is.True(strings.Contains(err.Error(), "locked")) // that says so
	})

	t.Run("cannot open", func(t *testing.T) {
		is := is.New(t)
		_, err := store.Open(ctx, store.Options{Path: filepath.Join(t.TempDir(), "no-such-folder", "hookd.db"), Box: newBox(t)})
		is.True(errors.Is(err, store.ErrUnavailable))                           // a store fault
		is.True(strings.Contains(err.Error(), "cannot open the database file")) // that says so
		is.True(strings.Contains(err.Error(), "no-such-folder"))                // naming the file
	})

	t.Run("other errors are not faults", func(t *testing.T) {
		is := is.New(t)
		st := newStore(t)
		_, err := st.CreateClient(ctx, store.NewClient{ID: "dup", Name: "a", Scopes: []string{store.ScopeNotify}})
		is.NoErr(err)
		_, err = st.CreateClient(ctx, store.NewClient{ID: "dup", Name: "b", Scopes: []string{store.ScopeNotify}})
		is.True(errors.Is(err, store.ErrConflict))     // a conflict
		is.True(!errors.Is(err, store.ErrUnavailable)) // not a fault
		plain := errors.New("x")
		is.Equal(store.Classify(plain), plain) // an error not of SQLite is left as it is
		is.NoErr(st.Fault(ctx))                // and nothing is remembered
	})
}

// TestStoreFileReplaced: a database file removed or replaced while the store has
// it open (a backup restored, or a replica, under a running daemon) takes no more
// writes: they would go to the old file, which nobody opens again, and be lost
// once hookd restarts. Every write fails as a store fault that says so, and
// readiness keeps saying it, while reads go on.
func TestStoreFileReplaced(t *testing.T) {
	for _, how := range []string{"replaced", "removed"} {
		t.Run(how, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "hookd.db")
			st := openAt(t, path, newBox(t))
			c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeNotify}})
			is.NoErr(err) // create client
			_, _, err = st.PutOrcidWebhook(ctx, c.ID, "0000-0002-7253-3645", "https://example.org/cb")
			is.NoErr(err) // a subscription, so events make deliveries

			backup := filepath.Join(t.TempDir(), "backup.db")
			is.NoErr(st.Backup(ctx, backup)) // a copy, as hookd backup makes one
			for _, f := range []string{path, path + "-wal", path + "-shm"} {
				is.NoErr(os.Remove(f)) // the README's restore, without stopping hookd first
			}
			if how == "replaced" {
				b, err := os.ReadFile(backup)
				is.NoErr(err)
				is.NoErr(os.WriteFile(path, b, 0o600)) // the copy in its place
			}

			_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
			is.True(errors.Is(err, store.ErrUnavailable))                      // the group writer refuses: a store fault
			is.True(strings.Contains(err.Error(), "no longer the file hookd")) // that says what is wrong
			is.True(strings.Contains(err.Error(), "restart hookd"))            // and what to do
			_, err = st.CreateClient(ctx, store.NewClient{Name: "other", Scopes: []string{store.ScopeNotify}})
			is.True(errors.Is(err, store.ErrUnavailable)) // one transaction: the same
			if how == "replaced" {
				_, err = st.Client(ctx, c.ID)
				is.NoErr(err) // reads go on
			} else {
				st.Client(ctx, c.ID) // a read, on a connection of its own maybe
				_, err = os.Stat(path)
				is.True(errors.Is(err, os.ErrNotExist)) // makes no new, empty database in its place
			}
			ferr := st.Fault(ctx)
			is.True(errors.Is(ferr, store.ErrUnavailable))                      // readiness knows
			is.True(strings.Contains(ferr.Error(), "no longer the file hookd")) // why
		})
	}
}

// TestClosedStoreIsUnavailable: a call made once the store is closed (a request
// hookd's HTTP server still served past its stop's drain) is a store fault,
// Unavailable, saying that hookd is stopping and nothing was stored (a 503 its
// caller makes again), not an error of no kind (a 500): a write through the
// group writer, a write of its own, and a read alike.
func TestClosedStoreIsUnavailable(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "late", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}})
	is.NoErr(err)
	is.NoErr(st.Close())
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
	is.True(errors.Is(err, store.ErrUnavailable))
	is.True(strings.Contains(err.Error(), "hookd is stopping: nothing of this call was stored"))
	_, err = st.IssueToken(ctx, c.Client, []string{store.ScopeWebhook}, time.Hour)
	is.True(errors.Is(store.Classify(err), store.ErrUnavailable))
	_, err = st.Client(ctx, c.ID)
	is.True(errors.Is(store.Classify(err), store.ErrUnavailable))
}
