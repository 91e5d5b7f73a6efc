//go:build unix

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serveLock is held by the one "hookd serve" (or "hookd dev") of a database: two
// daemons on one file would both claim and deliver, and a daemon that starts knows
// that work still leased in the file was left by a process that is gone.
type serveLock struct {
	// mu orders the writes of the file: the stop's mark (stopping) is written from
	// the stop while the marks' writes (keep) go on, and two writes at once would
	// lose one's fields or leave the tail of a longer content after a shorter one.
	mu     sync.Mutex
	f      *os.File
	holder lockHolder
	size   int // the length of the file's content: a shorter one is padded to it
}

// keepsMark: the lock file keeps the database's mark (store.Lineage).
const keepsMark = true

// lockHolder is what the lock file says about the daemon that holds it, and the
// database's mark the daemon last gave it (store.Lineage).
type lockHolder struct {
	PID     int       `json:"pid"`
	Listen  string    `json:"listen"`
	Started time.Time `json:"started"`
	// Paused: the daemon runs with delivery.paused, and sends nothing until it
	// is restarted without it (absent in an older hookd's file: not paused).
	Paused bool `json:"paused,omitempty"`
	// Stopping: the daemon's stop has begun (its SIGTERM): what it has not sent by
	// the time it stops is sent at its next start (absent in an older hookd's
	// file, and in a running one's).
	Stopping bool `json:"stopping,omitempty"`
	// What the daemon saw of the database (store.Seen): its mark and the one
	// before, the highest delivery id given, and the machine (/etc/machine-id) it
	// ran on.
	Mark     string `json:"mark,omitempty"`
	Previous string `json:"previous_mark,omitempty"`
	Issued   int64  `json:"issued,omitempty"`
	Machine  string `json:"machine,omitempty"`
}

// lockPath is the lock file of the database at db: beside the file itself when db
// is a symbolic link, so that two daemons that name one file differently take one
// lock.
func lockPath(db string) string { return realPath(db) + ".lock" }

// realPath is the path of the file p names, through symbolic links, also of a
// file not made yet (a link to where it will be); p itself when that cannot be told.
func realPath(p string) string {
	for range 40 { // as the kernel's limit on links followed
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return real
		}
		target, err := os.Readlink(p)
		if err != nil {
			// Not a link: the file is not there yet, so its folder decides.
			if dir, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
				return filepath.Join(dir, filepath.Base(p))
			}
			return p
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
	return p
}

// acquireServeLock takes the database's daemon lock or says which daemon holds it.
// The operating system releases it when the process ends, however it ends.
// Holder is what the file said before: the mark the last daemon left in it.
// Paused is written for the commands beside the daemon (daemonPaused): a daemon
// with delivery.paused sends nothing they make due.
func acquireServeLock(db, listen string, paused bool) (_ *serveLock, before lockHolder, err error) {
	path := lockPath(db)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if _, serr := os.Lstat(path); errors.Is(serr, fs.ErrNotExist) {
			// Not there, and not made: the folder is at fault, not a file.
			return nil, before, &folderError{dir: filepath.Dir(path), err: err}
		}
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, before, fmt.Errorf("lock %s: %w: the file belongs to another user (hookd run once as root?); give it to the service's user (chown), or remove it while no hookd runs", path, err)
	}
	if err != nil {
		return nil, before, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := lockExclusive(f); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, before, fmt.Errorf("lock %s: %w", path, err)
		}
		return nil, before, inUse(db, path)
	}
	b, _ := io.ReadAll(f)
	json.Unmarshal(b, &before) // a file of an older hookd, or empty: no mark
	// What the daemon before saw stays until this one has checked the database (a
	// start that fails before that leaves it for the next).
	l := &serveLock{f: f, size: len(b), holder: before}
	l.holder.PID, l.holder.Listen, l.holder.Started = os.Getpid(), listen, time.Now().UTC().Truncate(time.Second)
	l.holder.Paused, l.holder.Stopping = paused, false
	if err := l.write(false); err != nil {
		f.Close()
		return nil, before, fmt.Errorf("lock %s: %w", path, err)
	}
	return l, before, nil
}

// lockExclusive takes f's lock for a daemon, without waiting for another daemon
// that holds it. A command that asks whether a daemon runs (daemonOn) holds the
// lock shared for a moment: a daemon that starts then waits that out, up to
// lookWait, where it took the command's look for a daemon and would not start
// ("in use by another hookd daemon"). It returns EWOULDBLOCK when a daemon holds
// the lock (or looks held it all the while).
func lockExclusive(f *os.File) error {
	fd := int(f.Fd())
	deadline := time.Now().Add(lookWait)
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		// Held exclusively (a daemon), or shared (commands looking): only the
		// latter lets a shared lock be taken.
		if syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB) != nil || time.Now().After(deadline) {
			return err
		}
		if err := syscall.Flock(fd, syscall.LOCK_UN); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lookWait bounds how long a starting daemon waits for commands' looks at the
// lock (lockExclusive): each holds it for the time of an open and a read.
const lookWait = 2 * time.Second

// seen is what the lock file says of the database (kept), and keep writes it,
// synced to the disk when sync is set (before a new mark goes into the database).
func (l *serveLock) seen() lockHolder {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder
}

func (l *serveLock) keep(h lockHolder, sync bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	h.PID, h.Listen, h.Started, h.Paused, h.Stopping = l.holder.PID, l.holder.Listen, l.holder.Started, l.holder.Paused, l.holder.Stopping
	l.holder = h
	if err := l.write(sync); err != nil {
		return fmt.Errorf("lock %s: %w", l.f.Name(), err)
	}
	return nil
}

// stopping writes in the lock file that the daemon's stop has begun, for the
// commands beside it (daemonStopping): what they make due is not sent on its
// next tick, which may not come.
func (l *serveLock) stopping() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holder.Stopping = true
	if err := l.write(false); err != nil {
		return fmt.Errorf("lock %s: %w", l.f.Name(), err)
	}
	return nil
}

// write writes the holder over the file's content in one write, never truncating
// it (a process killed between a truncation and its write would leave the file
// empty, and the database's mark unknown): a shorter content is padded with spaces,
// which JSON takes. l.mu must be held, but for a lock not yet shared.
func (l *serveLock) write(sync bool) error {
	b, _ := json.Marshal(l.holder)
	b = append(b, '\n')
	if len(b) < l.size {
		b = append(b[:len(b)-1], []byte(strings.Repeat(" ", l.size-len(b))+"\n")...)
	}
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return err
	}
	l.size = len(b)
	if sync {
		return l.f.Sync()
	}
	return nil
}

// inUse is the error of a database whose lock file at path another daemon holds,
// naming that daemon when the file says which.
func inUse(db, path string) error {
	h, ok := holderOf(path)
	if !ok {
		return fmt.Errorf("database %s is in use by another hookd daemon (serve or dev; it holds %s)", db, path)
	}
	return fmt.Errorf("database %s is in use by another hookd daemon (serve or dev): %s; "+
		"stop it first, or give this one another database ([store] path; hookd dev: -db)", db, h)
}

// holderOf is what the lock file at path says of the daemon that holds it; ok is
// false when it names none.
func holderOf(path string) (_ lockHolder, ok bool) {
	var h lockHolder
	b, _ := os.ReadFile(path)
	if json.Unmarshal(b, &h) != nil || h.PID == 0 {
		return h, false
	}
	return h, true
}

// String names the daemon: its pid, address and start.
func (h lockHolder) String() string {
	return fmt.Sprintf("pid %d, listening on %s since %s", h.PID, h.Listen, h.Started.Local().Format(time.RFC3339))
}

// serveLockHeld reports, as inUse's error, whether another daemon holds the lock
// of the database at db; nil when none does, or it cannot tell. It creates nothing.
func serveLockHeld(db string) error {
	if _, held := daemonOn(db); held {
		return inUse(db, lockPath(db))
	}
	return nil
}

// daemonListen is the address the daemon that holds the lock of the database at db
// listens on, as its lock file says (hookd dev -listen, a port 0: what no
// configuration file says); "" when no daemon holds it, or it cannot tell.
func daemonListen(db string) string {
	if _, held := daemonOn(db); !held {
		return ""
	}
	h, _ := holderOf(lockPath(db))
	return h.Listen
}

// daemonOn says whether a daemon holds the lock of the database at db, and names
// it ("a hookd daemon (pid …)"); false when none does, or it cannot tell. It
// creates nothing.
func daemonOn(db string) (string, bool) {
	path := lockPath(db)
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		return "", false
	}
	if h, ok := holderOf(path); ok {
		return "a hookd daemon (" + h.String() + ")", true
	}
	return "a hookd daemon (it holds " + path + ")", true
}

// daemonPaused reports whether a daemon holds the lock of the database at db and
// its lock file says it runs with delivery.paused; false when none does, the file
// is an older hookd's (which says nothing of it), or it cannot tell.
func daemonPaused(db string) bool {
	if _, held := daemonOn(db); !held {
		return false
	}
	h, ok := holderOf(lockPath(db))
	return ok && h.Paused
}

// daemonStopping reports whether a daemon holds the lock of the database at db
// and its lock file says its stop has begun; false when none does, the file is
// an older hookd's (which says nothing of it), or it cannot tell.
func daemonStopping(db string) bool {
	if _, held := daemonOn(db); !held {
		return false
	}
	h, ok := holderOf(lockPath(db))
	return ok && h.Stopping
}

// noDaemonOn reports whether no daemon runs on the database at db, as far as its
// lock file tells: none was ever started on it (no lock file), or none holds the
// lock now. False when a daemon holds it, or it cannot tell (a file this user may
// not open). It creates nothing.
func noDaemonOn(db string) bool {
	f, err := os.Open(lockPath(db))
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == nil // let go as f closes
}

// lockUnreadable is why the lock file of the database at db cannot be opened
// when it is there (a daemon's, mode 0600, read by another user): whether a
// daemon holds it, and where that listens, cannot be told; owner and sudoUser
// are the user the file belongs to, as ownerOther names them. A nil err when it
// opens, or is not there.
func lockUnreadable(db string) (owner, sudoUser string, err error) {
	path := lockPath(db)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		owner, sudoUser = ownerOther(path)
		return owner, sudoUser, err
	}
	f.Close()
	return "", "", nil
}

// release gives the lock up; the file stays (removing it would race a new daemon).
func (l *serveLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
	}
}
