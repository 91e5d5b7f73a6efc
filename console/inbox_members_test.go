package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/orcid"
	"hookd/store"
)

// manyMembers is the iD of the i-th of a series of members.
func manyMembers(i int) string {
	base := fmt.Sprintf("000000051%06d", i)
	d := base + string(orcid.CheckDigit(base))
	return d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
}

// TestInboxPagesOfManyMembers: an organisation whose webhook is hookd's /inbox with
// the record's iD appended calls an inbox for each member; with 20,000 of them, its
// staff's inbox page shows a page of those inboxes and the requests to them, a
// member's inbox is theirs to open, and none of it reads every member: each page
// costs what it shows, as with 20 members, where it read and listed them all
// (the allocations of a page grew with the members, a few for each).
func TestInboxPagesOfManyMembers(t *testing.T) {
	ctx := context.Background()
	cost := map[int][2]float64{}
	for _, members := range []int{20, 20000} {
		is := is.New(t)
		e := newEnv(t)
		db, err := sql.Open("sqlite", "file:"+e.path+"?_pragma=busy_timeout(5000)")
		is.NoErr(err)
		tx, err := db.Begin()
		is.NoErr(err)
		for i := range members {
			_, err := tx.Exec("INSERT INTO members(org_id, orcid, created_at) VALUES (?, ?, 1)", e.orgA.ID, manyMembers(i))
			is.NoErr(err)
		}
		is.NoErr(tx.Commit())
		is.NoErr(db.Close())
		_, _, err = e.st.SetHubSettings(ctx, e.orgA.ID, store.HubSettings{Enabled: true, URL: "http://127.0.0.1:8080/inbox", AppendOrcid: true})
		is.NoErr(err)
		one := manyMembers(members / 2)
		_, _, err = e.st.RecordInboxRequest(ctx, store.InboxReceipt{Inbox: one, Method: http.MethodPost, Path: "/inbox/" + one, Header: http.Header{}, Body: []byte("{}"), RemoteAddr: "127.0.0.1:50000"}, store.InboxLimits{})
		is.NoErr(err)

		u := e.as(t, "staffA")
		list := u.get(t, "/console/inbox")
		is.Equal(list.status, http.StatusOK)
		is.True(strings.Contains(list.body, "?inbox="+manyMembers(0))) // the first page of the members' inboxes
		is.True(strings.Contains(list.body, ">"+one+"<"))              // and the request to one of them
		is.Equal(strings.Contains(list.body, "inboxes_after="), members > 50)
		page := u.get(t, "/console/inbox?inbox="+one)
		is.Equal(page.status, http.StatusOK) // a member's inbox is the staff's
		is.True(strings.Contains(page.body, `action="/console/inbox/`+one+`/answer"`))

		cost[members] = [2]float64{
			testing.AllocsPerRun(3, func() { u.get(t, "/console/inbox") }),
			testing.AllocsPerRun(3, func() { u.get(t, "/console/inbox?inbox="+one) }),
		}
	}
	t.Logf("allocations of the list and of one inbox's page, by members: %v", cost)
	for i, page := range []string{"the list", "an inbox's page"} {
		if few, many := cost[20][i], cost[20000][i]; many > 2*few {
			t.Errorf("%s: %.0f allocations with 20,000 members, %.0f with 20: it reads every member", page, many, few)
		}
	}
}
