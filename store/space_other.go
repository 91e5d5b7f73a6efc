//go:build !unix

package store

// freeBytes is not known here.
func freeBytes(string) (uint64, bool) { return 0, false }

// takenBytes is not known here (freeBytes is not either).
func takenBytes(string) uint64 { return 0 }
