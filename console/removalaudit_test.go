package console_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
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
