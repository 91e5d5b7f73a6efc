package console_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/matryer/is"
	"modernc.org/sqlite"

	"hookd/store"
)

// onReplayedRow is what the SQL function replayed_row (registered once, for every
// connection opened after) calls: a trigger of the test calls it for each
// delivery a replay writes.
var (
	onReplayedRow   atomic.Pointer[func()]
	replayedRowOnce sync.Once
)

func registerReplayedRow(tb testing.TB) {
	replayedRowOnce.Do(func() {
		err := sqlite.RegisterScalarFunction("replayed_row", 0, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
			if fn := onReplayedRow.Load(); fn != nil {
				(*fn)()
			}
			return nil, nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	})
}

// TestReplayReaderGoneAudited: a bulk replay of a webhook's list whose reader
// hangs up after its first batch was written (the request's context ended) is in
// the audit log, stopped part way, as the webhook owner's too: the owner was looked
// up with the request's ended context, and the entry named none.
func TestReplayReaderGoneAudited(t *testing.T) {
	is := is.New(t)
	registerReplayedRow(t)
	ctx := context.Background()
	e := openEnv(t)
	owner, err := e.st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	hook, _, err := e.st.CreateWebhook(ctx, owner.ID, store.WebhookSpec{TargetURL: "https://example.org/p", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	const n = 300 // more than one batch of a bulk replay (256)
	var events []store.Event
	for i := range n {
		events = append(events, store.Event{Orcid: fmt.Sprintf("0000-0001-%04d-000X", i)})
	}
	_, err = e.st.Intake(ctx, "", "", events, 0)
	is.NoErr(err)
	db, err := sql.Open("sqlite", "file:"+e.path)
	is.NoErr(err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `UPDATE deliveries SET state = 3, attempts = 1, last_error = 'HTTP 500', done_at = due_at`)
	is.NoErr(err)
	_, err = db.ExecContext(ctx, `CREATE TRIGGER replayed_row AFTER UPDATE OF replayed_at ON deliveries BEGIN SELECT replayed_row(); END`)
	is.NoErr(err)
	e.start(t)
	u := e.as(t, "token")

	var count atomic.Int64
	var gone sync.Once
	reqCtx, hangUp := context.WithCancel(ctx)
	defer hangUp()
	fn := func() {
		if count.Add(1) > 256 { // the second batch's first row: the reader is gone
			gone.Do(hangUp)
		}
	}
	onReplayedRow.Store(&fn)
	defer onReplayedRow.Store(nil)
	form := url.Values{"since": {"24h"}, "csrf": {u.csrf}}
	req := httptest.NewRequestWithContext(reqCtx, "POST", e.srv.URL+"/console/deliveries/replay?webhook="+hook.UID, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	srvURL, err := url.Parse(e.srv.URL + "/console/")
	is.NoErr(err)
	for _, c := range u.http.Jar.Cookies(srvURL) {
		req.AddCookie(c)
	}
	req.RemoteAddr = "127.0.0.1:40000" // as the user signed in from
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	is.True(count.Load() > 256) // the replay was in its second batch

	var pending int
	is.NoErr(db.QueryRowContext(ctx, "SELECT count(*) FROM deliveries WHERE state = 0").Scan(&pending))
	is.Equal(pending, 256) // the first batch's

	es, err := e.st.AuditLog(ctx, store.AuditQuery{Action: "deliveries.replay"})
	is.NoErr(err)
	is.Equal(len(es), 1)
	is.True(strings.Contains(es[0].Detail, "256 replayed"))
	is.True(strings.HasSuffix(es[0].Detail, store.ReplayStopped))
	is.Equal(es[0].ClientID, owner.ID) // in the owner's audit too
}
