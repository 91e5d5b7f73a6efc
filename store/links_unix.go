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
