package httpapi_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/store"
)

// TestOrgDeleteAuditedOnceMarked: a DELETE of an organisation that fails after
// the organisation is marked as being removed (here its members cannot be
// deleted for a while; a Hub that stops waiting for a large one stops it so too)
// is answered with the failure, and is audited all the same: the removal is
// never undone, and hookd finishes it on its own.
func TestOrgDeleteAuditedOnceMarked(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	h, o, db := orgWithMember(t)
	_, err := db.Exec(`CREATE TRIGGER members_kept BEFORE DELETE ON members BEGIN SELECT RAISE(ABORT, 'members kept for now'); END`)
	is.NoErr(err)

	res := h.doJSON(t, http.MethodDelete, "/api/hub/v1/organisations/"+strconv.FormatInt(o.ID, 10), removalAdmin, "")
	is.True(res.status >= 500) // it failed half-way
	_, err = h.st.Organisation(ctx, o.ID)
	is.True(err != nil) // but the organisation is being removed
	es, err := h.st.AuditLog(ctx, store.AuditQuery{Limit: 10})
	is.NoErr(err)
	is.True(len(es) > 0)
	is.Equal(es[0].Action, "organisation.delete") // and that is audited
	is.Equal(es[0].OrgID, o.ID)
	is.Equal(es[0].Detail, "Uni")

	_, err = db.Exec(`DROP TRIGGER members_kept`)
	is.NoErr(err)
	n, err := h.st.FinishRemovals(ctx, h.clock.Now().Add(time.Hour))
	is.NoErr(err)
	is.Equal(n, 1) // finished on its own
}

// TestOrgDeleteAgainFinishesRemoval: an organisation whose removal stopped
// half-way (its DELETE failed after the mark, or its caller stopped waiting) is
// removed by the DELETE sent again, as its not found says (204, not 404).
func TestOrgDeleteAgainFinishesRemoval(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	h, o, db := orgWithMember(t)
	_, err := db.Exec(`CREATE TRIGGER members_kept BEFORE DELETE ON members BEGIN SELECT RAISE(ABORT, 'members kept for now'); END`)
	is.NoErr(err)
	path := "/api/hub/v1/organisations/" + strconv.FormatInt(o.ID, 10)
	is.True(h.doJSON(t, http.MethodDelete, path, removalAdmin, "").status >= 500) // stopped half-way
	_, err = db.Exec(`DROP TRIGGER members_kept`)
	is.NoErr(err)

	res := h.doJSON(t, http.MethodDelete, path, removalAdmin, "")
	is.Equal(res.status, http.StatusNoContent) // sent again, it finishes the removal
	var left int
	is.NoErr(db.QueryRow("SELECT count(*) FROM organisations WHERE id = ?", o.ID).Scan(&left))
	is.Equal(left, 0)
	es, err := h.st.AuditLog(ctx, store.AuditQuery{Action: "organisation.delete"})
	is.NoErr(err)
	is.Equal(len(es), 1) // audited once, when it was marked
	res = h.doJSON(t, http.MethodDelete, path, removalAdmin, "")
	is.Equal(res.status, http.StatusNotFound) // gone now
}

// TestOrgDeleteStoppedByStoreFaultSaysItGoesOn: a DELETE of an organisation
// whose members meet a full disk after the organisation is marked has begun
// what is never undone: its 503 says that the removal stopped part way and that
// hookd finishes it (or the DELETE sent again), not that nothing was stored.
func TestOrgDeleteStoppedByStoreFaultSaysItGoesOn(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	h, o, db := orgWithMember(t)
	for _, q := range []string{
		// Room for the mark's writes, in pages freed, and none for a member's
		// removal (the disk is full then).
		`CREATE TABLE filler (b BLOB)`,
		`INSERT INTO filler VALUES (zeroblob(4000000))`,
		`DELETE FROM filler`,
		`CREATE TRIGGER full_disk BEFORE DELETE ON members BEGIN INSERT INTO filler VALUES (zeroblob(40000000)); END`,
	} {
		_, err := db.ExecContext(ctx, q)
		is.NoErr(err)
	}
	is.NoErr(h.st.LimitPages(ctx, true))

	res := h.doJSON(t, http.MethodDelete, "/api/hub/v1/organisations/"+strconv.FormatInt(o.ID, 10), removalAdmin, "")
	is.Equal(res.status, http.StatusServiceUnavailable) // a fault
	body := string(res.body)
	is.True(strings.Contains(body, "the database or its disk is full")) // which
	is.True(strings.Contains(body, "being removed"))                    // what holds
	is.True(strings.Contains(body, "finishes"))                         // and what comes
	is.True(!strings.Contains(body, "nothing was stored"))              // not "nothing"
	_, err := h.st.Organisation(ctx, o.ID)
	is.True(errors.Is(err, store.ErrBeingRemoved)) // as the answer says
}

// removalAdmin is the operator's token of orgWithMember's harness.
const removalAdmin = "operator-token-0123456789"

// orgWithMember is a harness whose operator token is removalAdmin, with an
// organisation "Uni" of one member, and a connection of its own to the harness's
// database (closed when the test ends), to make a removal stop part way.
func orgWithMember(t *testing.T) (*harness, store.Organisation, *sql.DB) {
	t.Helper()
	is := is.New(t)
	h := newHarness(t, func(o *httpapi.Options) { o.AdminToken = removalAdmin })
	ctx := context.Background()
	o, err := h.st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	_, err = h.st.PutMember(ctx, o.ID, "0000-0002-1825-0097", store.MemberInfo{}, 0)
	is.NoErr(err)
	db, err := sql.Open("sqlite", "file:"+h.path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	t.Cleanup(func() { db.Close() })
	return h, o, db
}
