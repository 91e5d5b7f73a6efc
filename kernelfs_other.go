//go:build !linux

package main

// takesNoFile cannot tell the kernel's file systems apart here; it reports none.
func takesNoFile(dir string) error { return nil }

// noFileError is a folder on one of the kernel's file systems, never met here.
type noFileError struct{ dir, fs string }

func (e *noFileError) Error() string {
	return e.dir + " is on the kernel's " + e.fs + " file system, which takes no file"
}
