package httpapi_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"modernc.org/sqlite"

	"hookd/httpapi"
	"hookd/secret"
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

// TestAdminReplayClientGoneAudited: a bulk replay by webhook whose caller hangs up
// after its first batch was written (the request's context ended) is in the audit
// log, stopped part way, as its webhook owner's too: the owner was looked up with
// the request's ended context, and the entry named none, so the owner never saw
// that their deliveries were sent again.
func TestAdminReplayClientGoneAudited(t *testing.T) {
	is := is.New(t)
	registerReplayedRow(t)
	ctx := context.Background()
	box, err := secret.NewBox(secret.Random(secret.KeySize))
	is.NoErr(err)
	path := filepath.Join(t.TempDir(), "hookd.db")
	st, err := store.Open(ctx, store.Options{Path: path, Box: box})
	is.NoErr(err)
	defer st.Close()
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	st.Now = func() time.Time { return now }
	owner, err := st.CreateClient(ctx, store.NewClient{Name: "owner", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	hook, _, err := st.CreateWebhook(ctx, owner.ID, store.WebhookSpec{TargetURL: "https://example.org/p", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	const n = 300 // more than one batch of a bulk replay (256)
	var events []store.Event
	for i := range n {
		events = append(events, store.Event{Orcid: fmt.Sprintf("0000-0001-%04d-000X", i)})
	}
	_, err = st.Intake(ctx, "", "", events, 0)
	is.NoErr(err)
	db, err := sql.Open("sqlite", "file:"+path)
	is.NoErr(err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `UPDATE deliveries SET state = 3, attempts = 1, last_error = 'HTTP 500', done_at = due_at`)
	is.NoErr(err)
	_, err = db.ExecContext(ctx, `CREATE TRIGGER replayed_row AFTER UPDATE OF replayed_at ON deliveries BEGIN SELECT replayed_row(); END`)
	is.NoErr(err)
	var count atomic.Int64
	var gone sync.Once
	reqCtx, hangUp := context.WithCancel(ctx)
	defer hangUp()
	fn := func() {
		if count.Add(1) > 256 { // the second batch's first row: the caller is gone
			gone.Do(hangUp)
		}
	}
	onReplayedRow.Store(&fn)
	defer onReplayedRow.Store(nil)

	const adminTok = "operator-token-0123456789"
	api := httpapi.NewServer(httpapi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: st,
		PublicURL: testPublic, TokenTTL: time.Hour, AdminToken: adminTok})
	req := httptest.NewRequestWithContext(reqCtx, "POST", "/api/admin/v1/replay",
		strings.NewReader(`{"since":"2024-03-01","webhook":"`+hook.UID+`"}`))
	req.Header.Set("Authorization", "Bearer "+adminTok)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	api.Handler().ServeHTTP(w, req)
	is.True(w.Code != http.StatusAccepted) // the replay stopped
	is.True(count.Load() > 256)            // in its second batch

	var pending int
	is.NoErr(db.QueryRowContext(ctx, "SELECT count(*) FROM deliveries WHERE state = 0").Scan(&pending))
	is.Equal(pending, 256) // the first batch's

	es, err := st.AuditLog(ctx, store.AuditQuery{Action: "deliveries.replay"})
	is.NoErr(err)
	is.Equal(len(es), 1)
	is.Equal(es[0].Target, hook.UID)
	is.True(strings.Contains(es[0].Detail, "256 replayed"))
	is.True(strings.HasSuffix(es[0].Detail, store.ReplayStopped))
	is.Equal(es[0].ClientID, owner.ID) // in the owner's audit too
	mine, err := st.AuditLog(ctx, store.AuditQuery{Visible: store.Visibility{ClientID: owner.ID}, Action: "deliveries.replay"})
	is.NoErr(err)
	is.Equal(len(mine), 1)
}
