//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// toJournal reports whether w is the stream systemd connected to the journal:
// JOURNAL_STREAM names its device and inode ("DEV:INO"), which the file must have
// (a redirection inside the unit, a pipe to another program, is not the journal).
func toJournal(getenv func(string) string, w io.Writer) bool {
	want := getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if want == "" || !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino) == want
}
