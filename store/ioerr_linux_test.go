//go:build linux

package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// TestStoreIOError: a write the operating system refuses with an error other
// than a full disk (here EFBIG: the process's file size limit, RLIMIT_FSIZE, is
// lowered under the files' size) is a store fault that says "disk I/O error";
// nothing is acknowledged that was not stored, and the store works again by
// itself once writes go through.
//
// It runs in a process of its own: the limit is the process's, and the test
// binary's own log of the files its tests open (go test's testlog.txt, which
// grows with every test of the package) would meet it too and fail the package.
func TestStoreIOError(t *testing.T) {
	if os.Getenv("HOOKD_IOERR_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStoreIOError$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "HOOKD_IOERR_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestStoreIOError") {
			t.Fatalf("in a process of its own: %v\n%s", err, out)
		}
		return
	}
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}})
	is.NoErr(err) // create client
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, "0000-0002-7253-3645", "https://example.org/cb")
	is.NoErr(err) // a subscription, so events make deliveries

	var old syscall.Rlimit
	is.NoErr(syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old)) // the file size limit
	largest := int64(0)
	for _, f := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	limit := old
	limit.Cur = uint64(largest + 64<<10) // room for a few writes, then EFBIG (SIGXFSZ is ignored by Go)
	is.NoErr(syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit))
	restore := func() { syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old) }
	defer restore()

	acked := 0
	var ferr error
	for i := range 5000 {
		ev := store.Event{Orcid: "0000-0002-7253-3645", ID: fmt.Sprintf("ev-%d-%s", i, strings.Repeat("x", 150))}
		if _, ferr = st.Intake(ctx, c.ID, "", []store.Event{ev}, 0); ferr != nil {
			break
		}
		acked++
	}
	restore()
	is.True(ferr != nil)                                      // the limit was reached
	is.True(errors.Is(ferr, store.ErrUnavailable))            // a store fault
	is.True(strings.Contains(ferr.Error(), "disk I/O error")) // that says so

	waitFault(t, st, "cleared", func(err error) bool { return err == nil })
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: "0000-0002-7253-3645", ID: "after"}}, 0)
	is.NoErr(err) // writes work again, without reopening
	acked++
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{})
	is.NoErr(err)
	n := 0
	for _, d := range ds {
		n += d.EventCount
	}
	is.Equal(n, acked) // every acknowledged event is stored, and nothing else
}
