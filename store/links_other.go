//go:build !unix

package store

import "os"

// linkCount is 0 where the file system does not say how many names a file has.
func linkCount(os.FileInfo) uint64 { return 0 }

// device is unknown where the file system does not say which one holds a file.
func device(os.FileInfo) (uint64, bool) { return 0, false }
