//go:build unix

package store

import (
	"os"
	"syscall"
)

// walInUse reports whether another process has the database at path open: while
// it does, SQLite holds a shared lock on byte 128 of the -shm index (the "DMS"
// byte of its unix VFS), and the WAL beside the file is the one it writes.
func walInUse(path string) bool {
	f, err := os.Open(path + "-shm")
	if err != nil {
		return false
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 128, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return true // cannot tell: as if it were
	}
	return lk.Type != syscall.F_UNLCK
}
