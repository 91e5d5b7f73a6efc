package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// walSalt reads the salts of a WAL file's header, which SQLite changes each time it
// starts the WAL over from its beginning.
func walSalt(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path + "-wal")
	if err != nil || len(b) < 32 {
		tb.Fatalf("read WAL header: %v (%d bytes)", err, len(b))
	}
	return b[16:24]
}

// Writes far below SQLite's own checkpoint threshold: the background checkpointer
// copies them into the database file, and the WAL starts over at the next write
// instead of growing.
func TestCheckpointerRestartsWAL(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	// As many callbacks for the record as the writes take, past the built-in cap.
	st, err := store.Open(ctx, store.Options{Path: path, Box: newBox(t), FanOut: store.FanOutCaps{PerRecord: 1 << 20}})
	is.NoErr(err) // open store
	t.Cleanup(func() { st.Close() })
	c, err := st.CreateClient(ctx, store.NewClient{Name: "w", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client
	register := func(i int) {
		_, _, err := st.PutOrcidWebhook(ctx, c.ID, "0000-0002-1825-0097", fmt.Sprintf("https://example.org/hook/%d", i))
		is.NoErr(err) // register
	}
	for i := range 100 {
		register(i)
	}
	before := walSalt(t, path)
	deadline := time.Now().Add(5 * time.Second)
	for i := 100; bytes.Equal(walSalt(t, path), before); i++ {
		if time.Now().After(deadline) {
			t.Fatal("the WAL was not started over within 5s")
		}
		time.Sleep(50 * time.Millisecond)
		register(i)
	}
}

// A WAL grown while a reader held checkpoints back (a long backup, a burst) is cut
// back to the limit once it starts over, instead of keeping its peak size on disk.
func TestWALShrinksOnceStartedOver(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	const limit = 1 << 20
	defer store.SetWALSizeLimit(limit)()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	c, err := st.CreateClient(ctx, store.NewClient{Name: "w", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client
	i := 0
	register := func() {
		_, _, err := st.PutOrcidWebhook(ctx, c.ID, "0000-0002-1825-0097", fmt.Sprintf("https://example.org/hook/%d", i))
		is.NoErr(err) // register
		i++
	}
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		is.NoErr(err) // the WAL is there
		return fi.Size()
	}

	// A reader of its own holds a snapshot: no checkpoint gets past it.
	db, err := sql.Open("sqlite", "file:"+path)
	is.NoErr(err)
	defer db.Close()
	reader, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	is.NoErr(err)
	var n int
	is.NoErr(reader.QueryRowContext(ctx, "SELECT count(*) FROM clients").Scan(&n)) // the snapshot is taken
	for walSize() <= 2*limit && i < 20000 {
		register()
	}
	grown := walSize()
	is.True(grown > 2*limit) // the WAL grew past twice the limit
	is.NoErr(reader.Rollback())

	before := walSalt(t, path)
	deadline := time.Now().Add(10 * time.Second)
	for bytes.Equal(walSalt(t, path), before) || walSize() > limit {
		if time.Now().After(deadline) {
			t.Fatalf("the WAL is still %d bytes (grown to %d; limit %d)", walSize(), grown, limit)
		}
		time.Sleep(50 * time.Millisecond)
		register()
	}
}
