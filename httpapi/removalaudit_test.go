package httpapi_test

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
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
	const adminTok = "operator-token-0123456789"
	h := newHarness(t, func(o *httpapi.Options) { o.AdminToken = adminTok })
	ctx := context.Background()
	o, err := h.st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	_, err = h.st.PutMember(ctx, o.ID, "0000-0002-1825-0097", store.MemberInfo{}, 0)
	is.NoErr(err)
	db, err := sql.Open("sqlite", "file:"+h.path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	defer db.Close()
	_, err = db.Exec(`CREATE TRIGGER members_kept BEFORE DELETE ON members BEGIN SELECT RAISE(ABORT, 'members kept for now'); END`)
	is.NoErr(err)

	res := h.doJSON(t, http.MethodDelete, "/api/hub/v1/organisations/"+strconv.FormatInt(o.ID, 10), adminTok, "")
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
	const adminTok = "operator-token-0123456789"
	h := newHarness(t, func(o *httpapi.Options) { o.AdminToken = adminTok })
	ctx := context.Background()
	o, err := h.st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	_, err = h.st.PutMember(ctx, o.ID, "0000-0002-1825-0097", store.MemberInfo{}, 0)
	is.NoErr(err)
	db, err := sql.Open("sqlite", "file:"+h.path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	defer db.Close()
	_, err = db.Exec(`CREATE TRIGGER members_kept BEFORE DELETE ON members BEGIN SELECT RAISE(ABORT, 'members kept for now'); END`)
	is.NoErr(err)
	path := "/api/hub/v1/organisations/" + strconv.FormatInt(o.ID, 10)
	is.True(h.doJSON(t, http.MethodDelete, path, adminTok, "").status >= 500) // stopped half-way
	_, err = db.Exec(`DROP TRIGGER members_kept`)
	is.NoErr(err)

	res := h.doJSON(t, http.MethodDelete, path, adminTok, "")
	is.Equal(res.status, http.StatusNoContent) // sent again, it finishes the removal
	var left int
	is.NoErr(db.QueryRow("SELECT count(*) FROM organisations WHERE id = ?", o.ID).Scan(&left))
	is.Equal(left, 0)
	es, err := h.st.AuditLog(ctx, store.AuditQuery{Action: "organisation.delete"})
	is.NoErr(err)
	is.Equal(len(es), 1) // audited once, when it was marked
	res = h.doJSON(t, http.MethodDelete, path, adminTok, "")
	is.Equal(res.status, http.StatusNotFound) // gone now
}
