package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/secret"
)

// waitLen waits (at most 10 s) until ch holds n calls.
func waitLen(tb testing.TB, ch chan *groupReq, n int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(ch) != n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d calls waiting, want %d", len(ch), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// openGroupStore opens a store in a temporary folder, closed when the test ends.
func openGroupStore(t *testing.T) *Store {
	t.Helper()
	is := is.New(t)
	dir := t.TempDir()
	box, err := secret.LoadKeyFile(filepath.Join(dir, "k"), true)
	is.NoErr(err) // key
	st, err := Open(context.Background(), Options{Path: filepath.Join(dir, "t.db"), Box: box})
	is.NoErr(err) // open
	t.Cleanup(func() { st.Close() })
	return st
}

// holdWriter queues a call that holds the group writer until release is closed,
// and returns once it does; wg counts that call.
func holdWriter(st *Store, wg *sync.WaitGroup) (release chan struct{}) {
	started, release := make(chan struct{}), make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		st.group(context.Background(), func(context.Context, *sql.Tx) error { close(started); <-release; return nil })
	}()
	<-started
	return release
}

// TestGroupOrderAndWeight: a turn of the dispatch loop leads the next group ahead
// of the calls that waited longer, and runs last in it (so it sees what they
// wrote); a group takes on no more than groupWeightMax rows: the call that would go
// past it leads the group after.
func TestGroupOrderAndWeight(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)

	// A call holds the writer until released, so the others queue up.
	var wg sync.WaitGroup
	release := holdWriter(st, &wg)

	var mu sync.Mutex
	var order []string
	txOf := map[string]*sql.Tx{}
	syncOf := map[string]int{}
	call := func(name string, first bool, weight int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn := func(ctx context.Context, tx *sql.Tx) error {
				var sync int
				if err := tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				order = append(order, name)
				txOf[name] = tx
				syncOf[name] = sync
				return nil
			}
			var err error
			if first {
				err = st.groupTurn(ctx, weight, fn)
			} else {
				err = st.groupWeighted(ctx, weight, fn)
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	call("a", false, 200)
	waitLen(t, st.groupCh, 1)
	call("b", false, 100)
	waitLen(t, st.groupCh, 2)
	call("c", false, 10)
	waitLen(t, st.groupCh, 3)
	call("turn", true, 50)
	waitLen(t, st.firstCh, 1)
	close(release)
	wg.Wait()

	is.Equal(order, []string{"a", "turn", "b", "c"}) // the turn goes ahead of b and c, and runs after a, whose group it leads
	is.Equal(txOf["turn"], txOf["a"])                // 50 + 200 rows share a commit
	is.True(txOf["a"] != txOf["b"])                  // 100 more would pass groupWeightMax: the next group
	is.Equal(txOf["b"], txOf["c"])                   // which the next call joins
	is.Equal(syncOf["turn"], 2)                      // a turn that shares its commit with others commits FULL
}

// TestTurnCommitLeavesFull: a turn of the dispatch loop alone commits with
// synchronous = NORMAL (no fsync of its own), and the write connection is FULL
// again after it, for the intake and every other write.
func TestTurnCommitLeavesFull(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)

	var during int
	err := st.groupTurn(ctx, 1, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&during)
	})
	is.NoErr(err)       // a turn alone
	is.Equal(during, 1) // NORMAL inside it
	var after int
	is.NoErr(st.write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&after))
	is.Equal(after, 2) // FULL once it has committed

	err = st.group(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&during)
	})
	is.NoErr(err)       // any other write
	is.Equal(during, 2) // FULL
}

// TestGroupCallOutlivesItsContext: a call that is in the group runs its statements
// to the end and commits even when the request that made it is cancelled meanwhile,
// with the request's context values still at hand.
func TestGroupCallOutlivesItsContext(t *testing.T) {
	is := is.New(t)
	st := openGroupStore(t)

	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "lab"))
	var value any
	err := st.group(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cancel() // the request goes away while its call runs
		value = ctx.Value(key{})
		_, err := tx.ExecContext(ctx, "CREATE TABLE t(x)")
		return err
	})
	is.NoErr(err)             // the call ran to its commit
	is.Equal(value, "lab")    // with the request's values
	is.True(ctx.Err() != nil) // though the request was cancelled
	var n int
	is.NoErr(st.write.QueryRowContext(context.Background(), "SELECT count(*) FROM t").Scan(&n)) // the table is there
}

// TestGroupCallFailsAlone: a group runs without savepoints first; when one of its
// calls fails, it rolls back and runs again with a savepoint per call, so the
// failing call's changes are undone and its error is its own, while the others
// commit once, whatever ran before.
func TestGroupCallFailsAlone(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)
	_, err := st.write.ExecContext(ctx, "CREATE TABLE t(x TEXT)")
	is.NoErr(err)

	// A call holds the writer until released, so the others share a group.
	var wg sync.WaitGroup
	release := holdWriter(st, &wg)

	var mu sync.Mutex
	runs := map[string]int{}
	errs := map[string]error{}
	no := errors.New("no")
	for i, name := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := st.group(ctx, func(ctx context.Context, tx *sql.Tx) error {
				mu.Lock()
				runs[name]++
				mu.Unlock()
				if _, err := tx.ExecContext(ctx, "INSERT INTO t(x) VALUES (?)", name); err != nil {
					return err
				}
				if name == "b" {
					return no // after its insert: the insert must be undone
				}
				return nil
			})
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		}()
		waitLen(t, st.groupCh, i+1)
	}
	close(release)
	wg.Wait()

	is.NoErr(errs["a"])               // a committed
	is.True(errors.Is(errs["b"], no)) // b failed with its own error
	is.NoErr(errs["c"])               // c committed
	is.Equal(runs["a"], 2)            // a ran in the first try and again in savepoints
	var got []string
	rows, err := st.write.QueryContext(ctx, "SELECT x FROM t ORDER BY x")
	is.NoErr(err)
	for rows.Next() {
		var x string
		is.NoErr(rows.Scan(&x))
		got = append(got, x)
	}
	is.NoErr(rows.Err())
	is.Equal(got, []string{"a", "c"}) // each good call's row once, the failing call's none
}

// TestFullDiskFailsTheFanOutAlone: a single event's fan-out has no statement
// journal, so a full disk in it makes SQLite roll the group's whole transaction
// back, savepoints and all. The calls that hit it (two events here) fail, saying
// so; the others of their group (a turn of the dispatch loop, a registration, a
// write that needs no new page) run again without them and commit.
func TestFullDiskFailsTheFanOutAlone(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)
	st.caps.EveryRecord = 1000 // past the built-in cap
	c, err := st.CreateClient(ctx, NewClient{Name: "full", Scopes: []string{ScopeWebhook}})
	is.NoErr(err)
	for i := range 1000 { // webhooks for every record: an event's fan-out needs new pages
		_, _, err := st.CreateWebhook(ctx, c.ID, WebhookSpec{TargetURL: fmt.Sprintf("https://all.example/%d", i), Auth: Auth{Type: AuthNone}})
		is.NoErr(err)
	}
	const registered = "0000-0002-1825-0097"
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, registered, "https://one.example/h")
	is.NoErr(err)
	is.NoErr(st.LimitPages(ctx, true)) // the disk is full
	t.Cleanup(func() { st.LimitPages(ctx, false) })

	var wg sync.WaitGroup
	release := holdWriter(st, &wg)
	var mu sync.Mutex
	errs := map[string]error{}
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f()
			mu.Lock()
			defer mu.Unlock()
			errs[name] = err
		}()
	}
	rename := func(name string) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE clients SET name = ? WHERE id = ?", name, c.ID)
			return err
		}
	}
	run("write", func() error { return st.group(ctx, rename("renamed")) })
	waitLen(t, st.groupCh, 1)
	run("intake", func() error {
		_, err := st.Intake(ctx, c.ID, "", []Event{{Orcid: "0000-0001-5109-3700"}}, 0)
		return err
	})
	waitLen(t, st.groupCh, 2)
	run("registration", func() error {
		_, _, err := st.PutOrcidWebhook(ctx, c.ID, registered, "https://one.example/h")
		return err
	})
	waitLen(t, st.groupCh, 3)
	run("another intake", func() error {
		_, err := st.Intake(ctx, c.ID, "", []Event{{Orcid: "0000-0002-9079-593X"}}, 0)
		return err
	})
	waitLen(t, st.groupCh, 4)
	run("turn", func() error { return st.groupTurn(ctx, 1, rename("renamed by the turn")) })
	waitLen(t, st.firstCh, 1)
	close(release)
	wg.Wait()

	is.True(errors.Is(errs["intake"], ErrUnavailable)) // the event is refused: the disk is full
	is.True(strings.Contains(errs["intake"].Error(), "full"))
	is.True(errors.Is(errs["another intake"], ErrUnavailable)) // and so is the other one

	is.NoErr(errs["write"])        // the others of its group commit
	is.NoErr(errs["registration"]) //
	is.NoErr(errs["turn"])         //
	var name string
	is.NoErr(st.write.QueryRowContext(ctx, "SELECT name FROM clients WHERE id = ?", c.ID).Scan(&name))
	is.Equal(name, "renamed by the turn") // the turn ran last in the group, and committed
	var stored int
	is.NoErr(st.write.QueryRowContext(ctx, "SELECT count(*) FROM deliveries").Scan(&stored))
	is.Equal(stored, 0) // and nothing of the refused event is stored
}

// failCommit makes the commit of the transaction it runs in fail: a foreign key
// left broken, which SQLite checks only then (defer_foreign_keys).
func failCommit(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at)
		VALUES (-1, 'none', 'none', 0, 0, 0, 0)`)
	return err
}

// TestTwoTurnsBehindAHeldCall: calls held back for weighing too much wait their
// turn however many come; two turns of the dispatch loop, each too heavy to share
// a group, queued while another call is held back, no longer stop the writer.
func TestTwoTurnsBehindAHeldCall(t *testing.T) {
	ctx := context.Background()
	st := openGroupStore(t)
	var wg sync.WaitGroup
	release := holdWriter(st, &wg)

	var mu sync.Mutex
	var order []string
	call := func(name string, turn bool, started, wait chan struct{}) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn := func(context.Context, *sql.Tx) error {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				if started != nil {
					close(started)
					<-wait
				}
				return nil
			}
			var err error
			if turn {
				err = st.groupTurn(ctx, 200, fn)
			} else {
				err = st.groupWeighted(ctx, 200, fn)
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	started, wait := make(chan struct{}), make(chan struct{})
	call("turn 0", true, started, wait)
	waitLen(t, st.firstCh, 1)
	call("heavy", false, nil, nil)
	waitLen(t, st.groupCh, 1)
	close(release) // turn 0 leads the next group and holds back the heavy call
	<-started
	call("turn 1", true, nil, nil)
	waitLen(t, st.firstCh, 1)
	call("turn 2", true, nil, nil)
	waitLen(t, st.firstCh, 2)
	close(wait) // turn 1 leads the next group, and turn 2 is too heavy to join it

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the group writer is stuck")
	}
	is.New(t).Equal(order, []string{"turn 0", "turn 1", "turn 2", "heavy"}) // each alone, turns first
}

// TestFailedCommitKeepsACallsOwnError: when a group that runs call by call
// (a call of it failed) then fails to commit, the call that failed on its own
// still says why, and the others get the commit's error.
func TestFailedCommitKeepsACallsOwnError(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)
	var wg sync.WaitGroup
	release := holdWriter(st, &wg)
	no := errors.New("no")
	errs := make([]error, 2)
	for i, fn := range []groupFn{
		func(context.Context, *sql.Tx) error { return no },
		failCommit,
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.group(ctx, fn)
		}()
		waitLen(t, st.groupCh, i+1)
	}
	close(release)
	wg.Wait()
	is.True(errors.Is(errs[0], no))                                             // its own error
	is.True(errs[1] != nil && strings.Contains(errs[1].Error(), "FOREIGN KEY")) // the commit's
}

// claimTraceStore is a store with two ORCID webhooks' deliveries waiting: one
// live, whose subscription id it returns, and one deactivated, whose delivery a
// claim turns dead (killBatch is 0 while the test runs).
func claimTraceStore(t *testing.T) (*Store, int64) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)
	c, err := st.CreateClient(ctx, NewClient{Name: "c", Scopes: []string{ScopeWebhook}})
	is.NoErr(err)
	live, _, err := st.PutOrcidWebhook(ctx, c.ID, "0000-0002-1825-0097", "https://kept.example/h")
	is.NoErr(err)
	off, _, err := st.PutOrcidWebhook(ctx, c.ID, "0000-0001-5109-3700", "https://off.example/h")
	is.NoErr(err)
	_, err = st.Intake(ctx, c.ID, "", []Event{{Orcid: "0000-0002-1825-0097"}, {Orcid: "0000-0001-5109-3700"}}, 0)
	is.NoErr(err)
	old := killBatch
	t.Cleanup(func() { killBatch = old })
	killBatch = 0 // the deactivation leaves its delivery waiting: the claim turns it dead
	_, err = st.SetSubscriptionActive(ctx, off.UID, false, "retired")
	is.NoErr(err)
	var id int64
	is.NoErr(st.read.QueryRowContext(ctx, "SELECT id FROM subscriptions WHERE uid = ?", live.UID).Scan(&id))
	return st, id
}

// changeAndClaim is a turn that changes subscription id's URL, as a call of its
// group would, claims what is due (into claimed, when not nil), and then ends with
// then.
func changeAndClaim(st *Store, id int64, claimed *[]Claimed, then groupFn) groupFn {
	return func(ctx context.Context, tx *sql.Tx) error {
		st.targetCache.forget(id)
		if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET target = 'https://not-kept.example/h' WHERE id = ?", id); err != nil {
			return err
		}
		out, _, err := st.claimRows(ctx, tx, nil, ms(st.Now()), 10, 0, time.Minute)
		if err != nil {
			return err
		}
		if claimed != nil {
			*claimed = out
		}
		return then(ctx, tx)
	}
}

// TestRolledBackClaimLeavesNoTrace: a claim whose transaction does not commit
// caches none of the targets it read (they may hold what its group wrote and did
// not keep) and counts none of the rows it turned dead.
func TestRolledBackClaimLeavesNoTrace(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, id := claimTraceStore(t)

	var claimed []Claimed
	err := st.groupTurn(ctx, 10, changeAndClaim(st, id, &claimed, failCommit))
	is.True(err != nil)                                           // the commit failed
	is.Equal(len(claimed), 1)                                     // the claim had read the change
	is.Equal(claimed[0].Target.URL, "https://not-kept.example/h") //
	is.True(st.targetCache.get(id, ms(st.Now())) == nil)          // the target it read is not cached
	is.Equal(st.ClaimKilled(), int64(0))                          // and the row it turned dead is waiting again

	out, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(out), 1)
	is.Equal(out[0].Target.URL, "https://kept.example/h") // as stored
	is.Equal(st.ClaimKilled(), int64(1))
	is.True(st.targetCache.get(id, ms(st.Now())) != nil) // cached once committed
}

// TestSavepointRolledBackClaimLeavesNoTrace: a call of a group that runs call by
// call (runSavepoints) and fails after its claim is rolled back to its savepoint,
// and what the claim left to do once committed goes with it, though the others
// commit.
func TestSavepointRolledBackClaimLeavesNoTrace(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, id := claimTraceStore(t)

	var wg sync.WaitGroup
	release := holdWriter(st, &wg)
	no := errors.New("no")
	var turnErr, otherErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		// It fails after its claim: rolled back to its savepoint.
		turnErr = st.groupTurn(ctx, 10, changeAndClaim(st, id, nil, func(context.Context, *sql.Tx) error { return no }))
	}()
	waitLen(t, st.firstCh, 1)
	go func() {
		defer wg.Done()
		otherErr = st.group(ctx, func(context.Context, *sql.Tx) error { return nil })
	}()
	waitLen(t, st.groupCh, 1)
	close(release)
	wg.Wait()
	is.True(errors.Is(turnErr, no)) // the turn failed alone
	is.NoErr(otherErr)              // the other call committed

	var url string
	is.NoErr(st.read.QueryRowContext(ctx, "SELECT target FROM subscriptions WHERE id = ?", id).Scan(&url))
	is.Equal(url, "https://kept.example/h")              // the turn's change was rolled back
	is.Equal(st.ClaimKilled(), int64(0))                 // the row it turned dead is waiting again
	is.True(st.targetCache.get(id, ms(st.Now())) == nil) // the target it read is not cached

	out, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(out), 1)
	is.Equal(out[0].Target.URL, "https://kept.example/h") // as stored
}
