package main

import (
	"fmt"
	"syscall"
)

// kernelFileSystems are the Linux file systems that show the kernel's state
// and take no file a program makes, by their statfs(2) magic numbers.
var kernelFileSystems = map[uint32]string{
	0x9fa0:     "proc",
	0x62656572: "sysfs",
	0x27e0eb:   "cgroup",
	0x63677270: "cgroup2",
	0x64626720: "debugfs",
	0x74726163: "tracefs",
	0x73636673: "securityfs",
	0x62656570: "configfs",
	0x6165676c: "pstore",
	0xde5e81e4: "efivarfs",
	0xcafe4a11: "bpf",
	0x1cd1:     "devpts",
}

// takesNoFile returns a *noFileError when the folder dir is on one of the
// kernel's file systems (/proc, /sys), in which access(2) lets root write
// though no file can be made there; nil otherwise, or when it cannot be told.
func takesNoFile(dir string) error {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return nil
	}
	if name, ok := kernelFileSystems[uint32(st.Type)]; ok {
		return &noFileError{dir: dir, fs: name}
	}
	return nil
}

// noFileError is a folder on one of the kernel's file systems.
type noFileError struct{ dir, fs string }

func (e *noFileError) Error() string {
	return fmt.Sprintf("%s is on the kernel's %s file system, which takes no file", e.dir, e.fs)
}
