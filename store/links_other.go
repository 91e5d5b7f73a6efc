//go:build !unix

package store

import "os"

// linkCount is 0 where the file system does not say how many names a file has.
func linkCount(os.FileInfo) uint64 { return 0 }
