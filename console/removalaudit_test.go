package console_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
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

// TestListsSayRemovalInProgress: a client's and an organisation's removals
// stopped half-way (their webhooks cannot go for now) are left out of the
// Clients and Organisations pages, and the operator's pages say above the table
// that each is being removed, with what it has left and what finishes it (the
// organisation's staff client with it); no one else's page does. Finished,
// nothing is said.
func TestListsSayRemovalInProgress(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+e.path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	defer db.Close()
	_, err = db.Exec(`CREATE TRIGGER subscriptions_kept BEFORE DELETE ON subscriptions BEGIN SELECT RAISE(ABORT, 'webhooks kept for now'); END`)
	is.NoErr(err)
	is.True(errors.Is(e.st.RemoveClient(ctx, e.b.ID), store.ErrRemovalUnfinished))
	is.True(errors.Is(e.st.DeleteOrganisation(ctx, e.orgA.ID), store.ErrRemovalUnfinished))

	op := e.as(t, "token")
	p := op.get(t, "/console/clients")
	is.Equal(p.status, http.StatusOK)
	notice := regexp.MustCompile(`(?s)<div class="notice">(.*?)</div>`).FindStringSubmatch(p.body)
	if notice == nil {
		t.Fatalf("the Clients page says no removal in progress:\n%s", p.body)
	}
	is.True(strings.Index(p.body, notice[0]) < strings.Index(p.body, "<table")) // above the table
	said := strings.Join(strings.Fields(notice[1]), " ")
	for _, want := range []string{
		`Client “<bdi>client-b</bdi>” (<code class="id">` + e.b.ID + `</code>) is being removed: 1 webhook left, its last step <time datetime="2024-03-01T12:00:00Z">`,
		`as <code>hookd client remove ` + e.b.ID + `</code> does`,
		`Client “<bdi>staff-a</bdi>” (<code class="id">` + e.staffA.ID + `</code>) is being removed with organisation “<bdi>University A</bdi>” (` + strconv.FormatInt(e.orgA.ID, 10) + `): 0 webhooks left`,
		`as <code>hookd org remove ` + strconv.FormatInt(e.orgA.ID, 10) + `</code> does`,
	} {
		if !strings.Contains(said, want) {
			t.Errorf("the Clients page's notice %q does not say %q", said, want)
		}
	}
	p = op.get(t, "/console/organisations")
	is.Equal(p.status, http.StatusOK)
	notice = regexp.MustCompile(`(?s)<div class="notice">(.*?)</div>`).FindStringSubmatch(p.body)
	if notice == nil {
		t.Fatalf("the Organisations page says no removal in progress:\n%s", p.body)
	}
	is.True(strings.Index(p.body, notice[0]) < strings.Index(p.body, "<table"))
	said = strings.Join(strings.Fields(notice[1]), " ")
	want := `Organisation “<bdi>University A</bdi>” (` + strconv.FormatInt(e.orgA.ID, 10) + `) is being removed, with its staff clients: 1 webhook and 1 member left, its last step <time`
	if !strings.Contains(said, want) || !strings.Contains(said, "hookd org remove "+strconv.FormatInt(e.orgA.ID, 10)) || strings.Contains(said, "client-b") {
		t.Errorf("the Organisations page's notice %q does not say %q", said, want)
	}
	p = e.as(t, "a").get(t, "/console/clients")
	is.Equal(p.status, http.StatusOK)
	is.True(!strings.Contains(p.body, "being removed")) // the operator's alone

	_, err = db.Exec(`DROP TRIGGER subscriptions_kept`)
	is.NoErr(err)
	n, err := e.st.FinishRemovals(ctx, e.clock.Now().Add(time.Hour))
	is.NoErr(err)
	is.Equal(n, 2)
	for _, page := range []string{"/console/clients", "/console/organisations"} {
		p = op.get(t, page)
		is.Equal(p.status, http.StatusOK)
		is.True(!strings.Contains(p.body, "being removed")) // finished: nothing said
	}
}
