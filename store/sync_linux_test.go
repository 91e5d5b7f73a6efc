package store_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWALSync is the disk's floor under a commit: each op writes frames as
// SQLite writes a WAL frame (a 24-byte header and a 4 KiB page, two writes), over
// a file written in place from its start as a WAL is after a checkpoint, and syncs
// it, with fsync (what the driver's SQLite calls at synchronous = full) or
// fdatasync. It reports the kernel's CPU time an op (sys-µs/op) beside the time.
func BenchmarkWALSync(b *testing.B) {
	const page, header, slots = 4096, 24, 256
	for _, bc := range []struct {
		name   string
		frames int
		sync   func(*os.File) error
	}{
		{"fsync/1-frame", 1, (*os.File).Sync},
		{"fdatasync/1-frame", 1, func(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }},
		{"fsync/4-frames", 4, (*os.File).Sync},
		{"fdatasync/4-frames", 4, func(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "wal"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(make([]byte, slots*(header+page))); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			hdr, pg := make([]byte, header), make([]byte, page)
			var before, after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			b.ResetTimer()
			slot := 0
			for range b.N {
				for range bc.frames {
					off := int64(slot%slots) * (header + page)
					if _, err := f.WriteAt(hdr, off); err != nil {
						b.Fatal(err)
					}
					if _, err := f.WriteAt(pg, off+header); err != nil {
						b.Fatal(err)
					}
					slot++
				}
				if err := bc.sync(f); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			sys := time.Duration(after.Stime.Nano() - before.Stime.Nano())
			b.ReportMetric(float64(sys.Microseconds())/float64(b.N), "sys-µs/op")
		})
	}
}
