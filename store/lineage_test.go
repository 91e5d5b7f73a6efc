package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// TestLineageMovesIDsOfACopy: a backup restored (a database whose mark is not the
// one its daemon's lock file kept) gives its new deliveries ids past any the
// original gave after the backup, so that no webhook-id is sent twice for two
// messages; the original itself, and a database without a mark, move nothing.
func TestLineageMovesIDsOfACopy(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	box := newBox(t)
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	open := func(path string) *store.Store {
		st := openAt(t, path, box)
		st.Now = func() time.Time { return now }
		return st
	}
	st := open(filepath.Join(dir, "hookd.db"))
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	records := []string{"0000-0002-7253-3645", "0000-0002-1825-0097", "0000-0001-5109-3700"}
	for _, r := range records {
		_, _, err = st.PutOrcidWebhook(ctx, c.ID, r, "https://example.org/"+r)
		is.NoErr(err)
	}
	event := func(st *store.Store, record string) int64 {
		t.Helper()
		_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: record}}, 0)
		is.NoErr(err)
		claimed, err := st.Claim(ctx, 10, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 1)
		return claimed[0].ID
	}

	first, moved, err := st.Lineage(ctx, "") // a new database: nothing to move
	is.NoErr(err)
	is.Equal(moved, int64(0))
	is.Equal(event(st, records[0]), int64(1))
	backup := filepath.Join(dir, "backup.db")
	is.NoErr(st.Backup(ctx, backup)) // holds first
	second, moved, err := st.Lineage(ctx, first)
	is.NoErr(err)
	is.Equal(moved, int64(0)) // the daemon's own database
	is.True(second != first)
	is.Equal(event(st, records[1]), int64(2)) // sent after the backup, as msg_2
	is.NoErr(st.Close())

	restored := open(backup)
	_, moved, err = restored.Lineage(ctx, second) // the lock file kept second; the backup holds first
	is.NoErr(err)
	is.Equal(moved, now.UnixMicro())                       // its new deliveries start past any the original gave
	is.Equal(event(restored, records[2]), now.UnixMicro()) // not msg_2 again, for another record

	again := open(filepath.Join(dir, "hookd.db"))
	third, moved, err := again.Lineage(ctx, second)
	is.NoErr(err)
	is.Equal(moved, int64(0))                    // the original, as its daemon left it
	is.Equal(event(again, records[2]), int64(3)) // counts on
	_, moved, err = again.Lineage(ctx, third)
	is.NoErr(err)
	is.Equal(moved, int64(0))

	// A database from before marks (or whose mark was never kept) moves nothing.
	is.NoErr(store.ExecWrite(ctx, again, "DELETE FROM lineage"))
	_, moved, err = again.Lineage(ctx, "another")
	is.NoErr(err)
	is.Equal(moved, int64(0))
}
