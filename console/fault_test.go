package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/console"
	"hookd/store"
)

// TestClosedStoreIsUnavailable: a page asked for, or a form posted, once the
// store is closed (a request hookd's HTTP server still served past its stop's
// drain) meets a store fault, not a failure of the console's: a 503 page with
// Retry-After that says hookd is stopping and nothing was stored, as the APIs
// answer it, and logged as they log it (once a minute at most), not as an
// internal error.
func TestClosedStoreIsUnavailable(t *testing.T) {
	is := is.New(t)
	var logs syncLog
	e := newEnv(t, func(o *console.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	u := e.as(t, "a")
	is.Equal(u.get(t, "/console/webhooks").status, http.StatusOK) // the console runs
	is.NoErr(e.st.Close())

	for _, p := range []page{
		u.get(t, "/console/webhooks"),
		u.post(t, "/console/webhooks/"+e.hookA.UID+"/deactivate", url.Values{}),
	} {
		is.Equal(p.status, http.StatusServiceUnavailable)                                       // to ask again, not an error
		is.Equal(p.header.Get("Retry-After"), "10")                                             // when
		is.True(strings.Contains(p.body, "hookd is stopping: nothing of this call was stored")) // why
		is.True(!strings.Contains(p.body, "Something went wrong"))
	}
	out := logs.String()
	is.True(!strings.Contains(out, "console request failed"))                         // no internal error
	is.Equal(strings.Count(out, `level=ERROR msg="request refused: store fault"`), 1) // logged as the APIs log it, once
	is.True(strings.Contains(out, `path=/console/webhooks`))
}

// TestAnotherStoreFaultIsLogged: the once-a-minute limit of the store faults'
// lines is per fault: a database that takes no writes, logged, does not hide
// from the log that hookd is stopping a moment later, a fault of another kind
// (that one was counted as the first's, and so never seen when it lasted less
// than a minute). The same fault again within the minute is not logged again.
func TestAnotherStoreFaultIsLogged(t *testing.T) {
	is := is.New(t)
	var logs syncLog
	e := newEnv(t, func(o *console.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	u := e.as(t, "a")
	is.NoErr(e.st.QueryOnly(context.Background(), true)) // a database that takes no writes
	for range 2 {
		p := u.post(t, "/console/webhooks/"+e.hookA.UID+"/deactivate", url.Values{})
		is.Equal(p.status, http.StatusServiceUnavailable)
		is.True(strings.Contains(p.body, "the database is read-only")) // why
	}
	is.NoErr(e.st.Close())
	p := u.get(t, "/console/webhooks")
	is.Equal(p.status, http.StatusServiceUnavailable)
	is.True(strings.Contains(p.body, "hookd is stopping")) // another fault
	out := logs.String()
	is.Equal(strings.Count(out, `level=ERROR msg="request refused: store fault"`), 2) // each fault once
	is.Equal(strings.Count(out, "the database is read-only"), 1)                      // the first
	is.Equal(strings.Count(out, "database is closed"), 1)                             // and the other
}

// TestReplayStoppedByStoreFaultSaysWhatWasReplayed: a bulk replay whose second
// batch meets a full disk has replayed its first batch's deliveries, which go
// out: its 503 page says how many, and that the rest was not replayed, not that
// nothing was stored (replayed again "later", the first batch's would be sent
// twice once done).
func TestReplayStoppedByStoreFaultSaysWhatWasReplayed(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := openEnv(t)
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	hook, _, err := e.st.CreateWebhook(ctx, owner.ID, store.WebhookSpec{TargetURL: "https://example.org/p", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	const n = 300 // more than one batch of a bulk replay (256)
	var events []store.Event
	for i := range n {
		events = append(events, store.Event{Orcid: fmt.Sprintf("0000-0002-%04d-%04d", i/10000, i%10000), ID: fmt.Sprintf("ev-%d", i)})
	}
	_, err = e.st.Intake(ctx, "", "", events, 0)
	is.NoErr(err)
	db, err := sql.Open("sqlite", "file:"+e.path)
	is.NoErr(err)
	defer db.Close()
	for _, q := range []string{
		`UPDATE deliveries SET state = 3, attempts = 1, last_error = 'HTTP 500', done_at = due_at`,
		// Room for the first batch's writes, in pages freed, and none for what
		// the second batch's first row adds (the disk is full then).
		`CREATE TABLE filler (b BLOB)`,
		`INSERT INTO filler VALUES (zeroblob(4000000))`,
		`DELETE FROM filler`,
		`CREATE TRIGGER full_disk AFTER UPDATE OF replayed_at ON deliveries
			WHEN (SELECT count(*) FROM deliveries WHERE state = 0) > 256
			BEGIN INSERT INTO filler VALUES (zeroblob(40000000)); END`,
	} {
		_, err = db.ExecContext(ctx, q)
		is.NoErr(err)
	}
	is.NoErr(e.st.LimitPages(ctx, true))
	e.start(t)
	u := e.as(t, "token")

	p := u.post(t, "/console/deliveries/replay?webhook="+hook.UID, url.Values{"since": {"24h"}})
	var pending int
	is.NoErr(db.QueryRowContext(ctx, "SELECT count(*) FROM deliveries WHERE state = 0").Scan(&pending))
	is.Equal(pending, 256) // the first batch's, replayed

	is.Equal(p.status, http.StatusServiceUnavailable) // a fault
	is.Equal(p.header.Get("Retry-After"), "10")
	is.True(strings.Contains(p.body, "the database or its disk is full")) // which
	is.True(strings.Contains(p.body, "256 deliveries"))                   // what was replayed
	is.True(!strings.Contains(p.body, "nothing was stored"))              // not "nothing"
}
