//go:build unix

package store

import (
	"os"
	"syscall"
)

// linkCount is how many names (hard links) the file of fi has, or 0 when the
// system does not say.
func linkCount(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 0
}

// device is the file system that holds the file of fi, when the system says.
func device(fi os.FileInfo) (uint64, bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), true
	}
	return 0, false
}
