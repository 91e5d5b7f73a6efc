//go:build unix

package store

import (
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// yieldWait bounds how long the daemon's writer waits for other processes' writes
// before it goes on and lets SQLite's busy wait sort it out.
const yieldWait = 2 * time.Second

// yielder makes the daemon's writes give way to other processes' on the same file.
// SQLite's busy wait is not fair: a writer that commits every few milliseconds and
// begins again at once holds the write lock almost all the time, and a command-line
// write that polls for it can wait out its whole busy timeout. So every other
// process holds a shared lock on the file path+".yield" around its write
// transaction, and the daemon, before each of its own, checks that nobody does
// (one non-blocking flock) and otherwise waits for them first.
type yielder struct {
	f      *os.File
	daemon bool
}

// openYielder opens the yield file beside the database (beside the file a symbolic
// link names, so that every process of the file takes one). Where it cannot be
// made (a read-only folder), writes go on without it.
func openYielder(dbPath string, daemon bool) *yielder {
	if real, err := filepath.EvalSymlinks(dbPath); err == nil {
		dbPath = real
	}
	f, err := os.OpenFile(dbPath+".yield", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil
	}
	return &yielder{f: f, daemon: daemon}
}

// enter is called before a write transaction begins.
func (y *yielder) enter() {
	if y == nil {
		return
	}
	fd := int(y.f.Fd())
	if !y.daemon {
		syscall.Flock(fd, syscall.LOCK_SH) // only ever held for a moment by the daemon
		return
	}
	deadline := time.Now().Add(yieldWait)
	for {
		if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			syscall.Flock(fd, syscall.LOCK_UN)
			return
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// yieldGap is how long a process other than the daemon leaves the database to the
// daemon between the write transactions of a long run of them (pause): long enough
// for the daemon's writer, if it is waiting (it looks every 200 µs: enter), to
// begin its own.
const yieldGap = 2 * time.Millisecond

// pause is called between the write transactions of a long run of them (a bulk
// replay's batches, a purge's). A process other than the daemon gives way for a
// moment: it begins its next one at once otherwise, and the daemon's writes, waiting for it
// to be done, wait out the whole run instead of one transaction.
func (y *yielder) pause() {
	if y == nil || y.daemon {
		return
	}
	time.Sleep(yieldGap)
}

// leave is called when the write transaction has ended.
func (y *yielder) leave() {
	if y == nil || y.daemon {
		return
	}
	syscall.Flock(int(y.f.Fd()), syscall.LOCK_UN)
}

func (y *yielder) close() {
	if y != nil {
		y.f.Close()
	}
}
