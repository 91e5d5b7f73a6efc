package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// With ExternalCheckpoints the WAL is never checkpointed by hookd, and so never
// started over, even past the 4096 pages at which hookd's own commits otherwise
// checkpoint: every frame stays for the external process (Litestream) to copy.
func TestExternalCheckpointsLeaveTheWAL(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	// As many callbacks for the record as the WAL takes to grow, past the built-in cap.
	st, err := store.Open(ctx, store.Options{Path: path, Box: newBox(t), Synchronous: "normal", ExternalCheckpoints: true,
		FanOut: store.FanOutCaps{PerRecord: 1 << 20}})
	is.NoErr(err) // open store
	defer st.Close()
	c, err := st.CreateClient(ctx, store.NewClient{Name: "w", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client
	salt := walSalt(t, path)
	const frameSize = 4096 + 24
	for i := 0; ; i++ {
		_, _, err := st.PutOrcidWebhook(ctx, c.ID, "0000-0002-1825-0097", fmt.Sprintf("https://example.org/hook/%d", i))
		is.NoErr(err)                                // register
		is.True(bytes.Equal(walSalt(t, path), salt)) // the WAL was never started over
		fi, err := os.Stat(path + "-wal")
		is.NoErr(err)
		if fi.Size() > 4200*frameSize {
			break // past hookd's own threshold (4096 pages), still growing
		}
		if i > 100000 {
			t.Fatalf("the WAL did not grow past 4200 pages: %d bytes", fi.Size())
		}
	}
}
