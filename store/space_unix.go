//go:build unix

package store

import "syscall"

// freeBytes is the space left to an unprivileged user on the file system of dir.
func freeBytes(dir string) (uint64, bool) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, false
	}
	return uint64(fs.Bavail) * uint64(fs.Bsize), true
}

// takenBytes is the space the file at path takes on its disk (0 for none): its
// blocks, which may be fewer than its size says (SQLite sets a file's size
// before it writes what fills it).
func takenBytes(path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return 0
	}
	return uint64(st.Blocks) * 512
}
