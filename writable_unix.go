//go:build unix

package main

import "syscall"

// writable reports whether this process may write the file at path, or make files
// in the folder at path, as access(2) says: it honours read-only mounts such as the
// unit's ProtectSystem=strict, and creates nothing.
func writable(path string, folder bool) error {
	const wOK, xOK = 2, 1
	mode := uint32(wOK)
	if folder {
		mode |= xOK
	}
	return syscall.Access(path, mode)
}
