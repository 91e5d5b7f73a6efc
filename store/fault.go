package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Store faults: the database cannot be written (or read) for a reason outside
// hookd, such as a full disk, a read-only file, an I/O error or a lock held too
// long by another process. A failed write transaction rolls back whole, so such an
// error means that nothing of the call was stored; the store says so with an
// *Error of code Unavailable, and the fronts answer it as "try again later".

// faults are the SQLite primary result codes that are store faults, with what
// they mean to the person who reads the error.
var faults = map[int]string{
	sqlite3.SQLITE_FULL:     "the database or its disk is full: free disk space; hookd goes on by itself once it can write",
	sqlite3.SQLITE_READONLY: "the database is read-only: check the permissions and the mount of the database file and its folder",
	sqlite3.SQLITE_IOERR:    "disk I/O error on the database: check the disk and the kernel log",
	sqlite3.SQLITE_BUSY:     "the database is locked by another process, for longer than the busy timeout",
	sqlite3.SQLITE_LOCKED:   "the database is locked by another process, for longer than the busy timeout",
	sqlite3.SQLITE_CANTOPEN: "cannot open the database file or its -wal or -shm file: check that its folder exists and is writable",
}

// Classify returns err as an *Error of code Unavailable when it is a store fault
// (by SQLite's result code), and err unchanged otherwise. The store's writes
// classify their errors already; a front calls Classify on other errors of the
// store (reads), so that these too are answered as faults.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if closedDB(err) {
		return &Error{Code: Unavailable, Message: errStopped.Message, cause: err}
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	msg, ok := faults[se.Code()&0xff]
	if !ok {
		return err
	}
	return &Error{Code: Unavailable, Message: msg, cause: err}
}

// FaultWhat is what went wrong in the store fault f, without what to do about it
// ("the database or its disk is full"), for a front that says itself what holds:
// every fault's message is that, a colon, and the rest.
func FaultWhat(f *Error) string {
	what, _, _ := strings.Cut(f.Message, ": ")
	return what
}

// errStopped is what a call meets once the store is closed, as hookd stops (a
// request its HTTP server still served past the stop's drain): nothing of it was
// stored, and it may be made again once hookd runs (a 503, not a 500).
var errStopped = &Error{Code: Unavailable, Message: "hookd is stopping: nothing of this call was stored; make it again once hookd runs"}

// closedDB reports whether err is database/sql's for a database or a statement
// closed with the store (it has no sentinel for them).
func closedDB(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "sql: database is closed") || strings.Contains(msg, "sql: statement is closed")
}

// Locked reports whether err is the store fault of a database whose lock
// another process held for longer than the busy timeout (SQLITE_BUSY or
// SQLITE_LOCKED): nothing of the call was stored, and the same call may succeed
// once that process lets go.
func Locked(err error) bool {
	var se *sqlite.Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// diskFull reports whether err is SQLite's SQLITE_FULL: the database, or a file
// it wrote (a backup's copy), found its disk full.
func diskFull(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
}

// faultState is the store's last known fault.
type faultState struct {
	mu      sync.Mutex
	err     error     // the fault, or nil
	probed  time.Time // when Fault last tried a write
	probing bool
}

// noteFault remembers err when it is a store fault.
func (s *Store) noteFault(err error) {
	if errors.Is(err, ErrUnavailable) {
		s.fault.mu.Lock()
		s.fault.err = err
		s.fault.mu.Unlock()
	}
}

// faultProbeEvery is how often at most Fault tries a write while a fault lasts.
const faultProbeEvery = time.Second

// Fault reports the store fault that made a write fail (an *Error of code
// Unavailable), or nil when there is none. While one is remembered, Fault tries a
// write of probeSize bytes at most once a second (probeWrite), and forgets the
// fault once that succeeds: so readiness (/readyz) says why hookd cannot store,
// and clears by itself when the fault does. A probe that succeeds says that much
// can be written now; a larger write may still find the disk full. While none is
// remembered but the database's file system has less than lowSpace free, Fault
// probes too, at most once a second: a disk that filled up while hookd wrote
// nothing is reported before a write meets it.
func (s *Store) Fault(ctx context.Context) error {
	if err := s.checkFile(); err != nil {
		s.noteFault(err) // known at once, without a write: the probe below would fail the same
	}
	s.fault.mu.Lock()
	err := s.fault.err
	due := !s.fault.probing && time.Since(s.fault.probed) >= faultProbeEvery
	if due && err == nil {
		free, ok := freeBytes(s.dir)
		due = ok && free < lowSpace
	}
	if due {
		s.fault.probing = true
	}
	s.fault.mu.Unlock()
	if !due {
		return err
	}
	perr := s.probeWrite(ctx)
	s.fault.mu.Lock()
	defer s.fault.mu.Unlock()
	s.fault.probing, s.fault.probed = false, time.Now()
	switch {
	case perr == nil:
		s.fault.err = nil
	case errors.Is(perr, ErrUnavailable):
		s.fault.err = perr
	default:
		return err // the probe itself went wrong (ctx ended): the fault stands
	}
	return s.fault.err
}

// probeSize is how much a probe writes: enough that the file must find new pages
// and the WAL new room, as an intake does.
const probeSize = 64 << 10

// lowSpace is the free space below which Fault probes with a write although no
// write has failed.
const lowSpace = 1 << 20

// probeWrite commits a row of probeSize bytes and then its removal, as two
// transactions, so the bytes are written for real (to the WAL, and to the
// database file at the next checkpoint). The row lives in the idempotency table
// under a key no client can have; if its removal fails, the retention purge takes
// it a day later like any other key.
func (s *Store) probeWrite(ctx context.Context) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO idempotency(client_id, key, created_at, response)
			VALUES ('', 'store-probe', ?, printf('%.*c', ?, 'x'))`, ms(s.Now()), probeSize)
		return err
	})
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM idempotency WHERE client_id = '' AND key = 'store-probe'")
		return err
	})
}

// checkFile returns a store fault when the file at the database's path is no
// longer the one the store opened: it was removed, or another was put in its place
// (a backup or a replica restored while hookd ran). SQLite goes on writing the
// file it has open, which nobody opens again: what a write stored there, and was
// acknowledged, would be lost at the next start. So every write transaction
// checks first (one stat), and refuses; a restart opens the file now there.
func (s *Store) checkFile() error {
	if s.file == nil {
		return nil
	}
	fi, err := os.Stat(s.path)
	switch {
	case err == nil && os.SameFile(fi, s.file):
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil // no answer (a folder closed to this user): SQLite's own errors say what is wrong
	}
	what := "replaced by another file"
	if err != nil {
		what = "removed"
	}
	return &Error{Code: Unavailable, Message: fmt.Sprintf("the database file %s is no longer the file hookd opened: it was %s while hookd ran "+
		"(a restore without stopping hookd first?); hookd writes nothing more, since it would go to the old file and be lost: "+
		"restart hookd (under systemd: systemctl restart hookd), which opens the file now there, once the restore is done (its old -wal and -shm removed)", s.path, what)}
}

// The test hooks below simulate faults on the write connection, which is one
// connection kept for the store's life, so a pragma set on it stays.

// LimitPages caps the database file at its current size (SQLite's max_page_count,
// with no page to spare), so that a write that needs a new page fails as on a full
// disk; LimitPages(ctx, false) lifts the cap. Tests use it to fill the database.
func (s *Store) LimitPages(ctx context.Context, on bool) error {
	q := "PRAGMA max_page_count = 4294967294"
	if on {
		q = "PRAGMA max_page_count = 1" // raised by SQLite to the current page count
	}
	_, err := s.write.ExecContext(ctx, q)
	return err
}

// QueryOnly makes the write connection refuse every write (PRAGMA query_only), as
// a read-only database file does; QueryOnly(ctx, false) ends it. Tests use it.
func (s *Store) QueryOnly(ctx context.Context, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	_, err := s.write.ExecContext(ctx, "PRAGMA query_only = "+v)
	return err
}
