//go:build unix

package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestDaemonYieldsToOtherWriters: while another process is about to write (it
// holds the yield lock), the daemon's next write waits; it goes on once the other
// has written.
func TestDaemonYieldsToOtherWriters(t *testing.T) {
	is := is.New(t)
	db := filepath.Join(t.TempDir(), "hookd.db")
	daemon := openYielder(db, true)
	cli := openYielder(db, false)
	is.True(daemon != nil && cli != nil) // yield file made beside the database
	defer daemon.close()
	defer cli.close()

	daemon.enter() // nobody else writes: the daemon goes on at once
	daemon.leave()

	cli.enter()
	entered := make(chan struct{})
	go func() {
		daemon.enter()
		close(entered)
	}()
	select {
	case <-entered:
		t.Fatal("the daemon began a write while another process was writing")
	case <-time.After(100 * time.Millisecond):
	}
	cli.leave()
	<-entered // and goes on once the other has written
	daemon.leave()

	cli2 := openYielder(db, false)
	defer cli2.close()
	cli.enter()
	cli2.enter() // command-line writers do not wait for each other here (SQLite orders them)
	cli2.leave()
	cli.leave()
}

// TestOtherWritersPauseForTheDaemon: a process other than the daemon that writes a
// long run of transactions (a bulk replay's batches) pauses between them, and a
// daemon's write waiting for it begins then, not once the whole run is done: it
// began the next one at once, and the daemon, looking every 200 µs, all but never
// saw it between two.
func TestOtherWritersPauseForTheDaemon(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hookd.db")
	daemon := openYielder(db, true)
	cli := openYielder(db, false)
	defer daemon.close()
	defer cli.close()
	cli.enter()
	entered := make(chan struct{})
	go func() {
		daemon.enter()
		close(entered)
	}()
	for range 10 { // the run's transactions, each begun after the pause
		time.Sleep(time.Millisecond) // the transaction
		cli.leave()
		cli.pause()
		select {
		case <-entered:
			daemon.leave()
			return
		default:
		}
		cli.enter()
	}
	cli.leave()
	<-entered
	t.Fatal("the daemon's write waited for the whole run of another process's writes")
}
