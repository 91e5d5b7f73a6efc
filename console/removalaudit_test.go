package console_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// TestClientRemoveAuditedOnceMarked: the Remove of a client that fails after
// the client is marked as being removed (here its webhooks cannot be deleted for
// a while; a proxy that stops waiting for a client of many webhooks stops it so
// too) shows the failure, and is audited all the same: the removal is never
// undone, and hookd finishes it on its own.
func TestClientRemoveAuditedOnceMarked(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+e.path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	defer db.Close()
	_, err = db.Exec(`CREATE TRIGGER subscriptions_kept BEFORE DELETE ON subscriptions BEGIN SELECT RAISE(ABORT, 'webhooks kept for now'); END`)
	is.NoErr(err)

	u := e.as(t, "token")
	p := u.post(t, "/console/clients/"+e.a.ID+"/remove", url.Values{"confirm": {"yes"}})
	is.True(p.status >= http.StatusInternalServerError) // it failed half-way
	_, err = e.st.Client(ctx, e.a.ID)
	is.True(err != nil) // but the client is being removed
	es, err := e.st.AuditLog(ctx, store.AuditQuery{Action: "client.remove"})
	is.NoErr(err)
	is.Equal(len(es), 1) // and that is audited
	is.Equal(es[0].ClientID, e.a.ID)

	_, err = db.Exec(`DROP TRIGGER subscriptions_kept`)
	is.NoErr(err)
	n, err := e.st.FinishRemovals(ctx, e.clock.Now().Add(time.Hour))
	is.NoErr(err)
	is.Equal(n, 1) // finished on its own
}

// TestClientRemoveStoppedByStoreFaultSaysItGoesOn: the Remove of a client whose
// webhooks meet a full disk after the client is marked has begun what is never
// undone: the client is hidden and its tokens refused. Its 503 page says that
// the removal stopped part way and that hookd finishes it, not that nothing was
// stored (to be tried again "later", of a client no page lists any more).
func TestClientRemoveStoppedByStoreFaultSaysItGoesOn(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	u := e.as(t, "token")
	db, err := sql.Open("sqlite", "file:"+e.path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	defer db.Close()
	for _, q := range []string{
		// Room for the mark's writes, in pages freed, and none for a webhook's
		// removal (the disk is full then).
		`CREATE TABLE filler (b BLOB)`,
		`INSERT INTO filler VALUES (zeroblob(4000000))`,
		`DELETE FROM filler`,
		`CREATE TRIGGER full_disk BEFORE DELETE ON subscriptions BEGIN INSERT INTO filler VALUES (zeroblob(40000000)); END`,
	} {
		_, err = db.ExecContext(ctx, q)
		is.NoErr(err)
	}
	is.NoErr(e.st.LimitPages(ctx, true))

	p := u.post(t, "/console/clients/"+e.a.ID+"/remove", url.Values{"confirm": {"yes"}})
	is.Equal(p.status, http.StatusServiceUnavailable)                     // a fault
	is.True(strings.Contains(p.body, "the database or its disk is full")) // which
	is.True(strings.Contains(p.body, "being removed"))                    // what holds
	is.True(strings.Contains(p.body, "finishes"))                         // and what comes
	is.True(!strings.Contains(p.body, "nothing was stored"))              // not "nothing"
	is.True(!strings.Contains(p.body, "nothing of this call"))
	_, err = e.st.Client(ctx, e.a.ID)
	is.True(errors.Is(err, store.ErrBeingRemoved)) // as the page says

	is.NoErr(e.st.LimitPages(ctx, false))
	_, err = db.Exec(`DROP TRIGGER full_disk`)
	is.NoErr(err)
	n, err := e.st.FinishRemovals(ctx, e.clock.Now().Add(time.Hour))
	is.NoErr(err)
	is.Equal(n, 1) // finished on its own
}
