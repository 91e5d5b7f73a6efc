package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// CheckWAL refuses a database file whose -wal was written for another file: a
// file restored over the database (a backup copied to store.path) while the -wal
// and -shm of the database before it stayed beside it, as a kill or a crash
// leaves them. SQLite ties a WAL to no database file: the first process to open
// the file writes the WAL's pages into it, so the restored file reads as the old
// database's pages laid over the copy's (the copy's changes undone, or a corrupt
// file), and the first checkpoint keeps that for good. It is checked before
// SQLite opens the file, when no other process has it open (then the WAL is the
// one SQLite is using, written for the file), and refuses only what the files
// show for sure. The -shm index says, of the WAL, up to which of its frames a
// checkpoint has copied them into the database file: a page whose last frame is
// one of those is in the file as that frame has it, byte for byte, or the file
// is not the one it was copied into (pageNotFromWAL). And once a checkpoint has
// copied every frame, it cuts the file to the database's size at the last
// commit, which the index keeps: a file of another size is another file.
// A WAL without an index that agrees with it (the same salt, the same last
// commit, no valid frame after that), or of which no frame was copied yet, tells
// nothing, and passes: SQLite still writes it into the file. Open, FileCheck and
// BackupAsIs call it, and serve and check-config before them.
//
// An operator who knows better (the file was not replaced) turns it off with
// HOOKD_WAL_CHECK=off in the environment (in any case, white space around it
// aside): SQLite then writes the WAL into the file, as it does without this
// check. Another value leaves it on, and its refusal says so.
func CheckWAL(path string) error {
	setting := os.Getenv("HOOKD_WAL_CHECK")
	if strings.EqualFold(strings.TrimSpace(setting), "off") {
		return nil
	}
	// SQLite keeps the WAL beside the file a symbolic link names.
	path = realPath(path)
	// The files are opened and closed here, and closing a file drops every fcntl
	// lock this process holds on it, SQLite's own too: a file this process has
	// open through SQLite is not read (its WAL is the one SQLite writes), and none
	// is opened through SQLite while one is read.
	openHere.Lock()
	defer openHere.Unlock()
	if openHere.has(path) {
		return nil
	}
	// A process that opens the file meanwhile may write and checkpoint: what is
	// seen counts only where the WAL and its index, read again, are as they were.
	// A reading that holds still and finds the file the WAL's passes it at once;
	// the file is refused only when the last of three readings finds it another's.
	var saw string
	for try := range 3 {
		saw = ""
		if walInUse(path) {
			return nil
		}
		before, ok := readWAL(path)
		if !ok || before.copied == 0 {
			return nil
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil
		}
		if want := int64(before.pages) * int64(before.pageSize); before.copied == before.last && fi.Size() != want {
			saw = fmt.Sprintf("every commit in it copied, its database is of %d bytes; the file has %d", want, fi.Size())
		} else if p, ok := pageNotFromWAL(path, before); ok {
			saw = fmt.Sprintf("page %d of the file is not as the WAL has it, though a checkpoint copied it from the WAL into its database", p)
		}
		if after, ok := readWAL(path); !ok || after != before {
			saw = ""
			continue
		}
		if saw == "" {
			return nil
		}
		if try < 2 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if saw == "" {
		return nil
	}
	set := ""
	if setting != "" {
		// "0", "false": set to turn the check off, and read as leaving it on.
		set = fmt.Sprintf(" (HOOKD_WAL_CHECK is %s in this environment, which leaves the check on: only off turns it off)", Quote(setting))
	}
	return &Error{Code: Invalid, Field: "store.path", Value: path, Message: fmt.Sprintf(
		"the WAL beside the database, %s-wal, was written for another database file than %s (%s): "+
			"the file was replaced (a backup restored over it) while the -wal and -shm of the database before it stayed, "+
			"and SQLite would write that database's changes into this one; if you restored a backup to %s and mean to run on it, "+
			"remove %s-wal and %s-shm while no hookd (nor Litestream) runs, as a restore does, and start hookd again; "+
			"if nothing replaced the file, remove nothing (the WAL would hold its latest changes): keep a copy of the three files "+
			"and start hookd with HOOKD_WAL_CHECK=off in its environment%s, which leaves the WAL to SQLite; nothing was changed",
		path, path, saw, path, path, path, set)}
}

// openHere is what this process has open of databases through SQLite (holdFile).
var openHere files

type files struct {
	sync.Mutex
	held []heldFile
	next int
}

// heldFile is a database file this process has open through SQLite: its path,
// symbolic links resolved, and the file that was there (nil for one not made yet).
type heldFile struct {
	id   int
	path string
	fi   os.FileInfo
}

// has reports whether the database file at path (resolved) is held. The caller
// holds the lock.
func (f *files) has(path string) bool {
	fi, err := os.Stat(path)
	for _, h := range f.held {
		if h.path == path {
			return true
		}
		if err != nil {
			continue
		}
		hfi := h.fi
		if hfi == nil {
			// A file made after it was noted, by SQLite or createPrivate: its
			// path was noted as given, where the links to it (a folder that
			// is a symbolic link) could not be resolved yet.
			hfi, _ = os.Stat(h.path)
		}
		if hfi != nil && os.SameFile(hfi, fi) {
			return true
		}
	}
	return false
}

// holdFile notes that this process is opening the database at path through SQLite
// (which takes fcntl locks on it and on its -shm), until release is called, so
// that CheckWAL leaves its files alone meanwhile.
func holdFile(path string) (release func()) {
	path = realPath(path)
	openHere.Lock()
	defer openHere.Unlock()
	openHere.next++
	h := heldFile{id: openHere.next, path: path}
	if fi, err := os.Stat(path); err == nil {
		h.fi = fi
	}
	openHere.held = append(openHere.held, h)
	var once sync.Once
	return func() {
		once.Do(func() {
			openHere.Lock()
			defer openHere.Unlock()
			openHere.held = slices.DeleteFunc(openHere.held, func(x heldFile) bool { return x.id == h.id })
		})
	}
}

// realPath is path absolute, through its symbolic links where it has them.
func realPath(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path
}

// walState is what CheckWAL reads of a WAL and its -shm index that agree: the
// WAL's page size and salt, its last commit (a frame's number) and the frames
// that a checkpoint copied into the database file (the first copied of them), and
// the database's size in pages at the last commit.
type walState struct {
	pageSize            int
	salt                [8]byte
	last, copied, pages uint32
}

// readWAL reads the WAL beside the database at path and its -shm index. ok is
// true only where both are there and agree: the index's last commit is a valid
// frame of the WAL, with the index's salt and checksum, and the frame after it
// is not.
func readWAL(path string) (w walState, ok bool) {
	// The index: two copies of its header (48 bytes each, in the machine's byte
	// order), then the checkpoint's record, whose first field is the number of
	// frames copied into the file.
	shm := make([]byte, 100)
	sf, err := os.Open(path + "-shm")
	if err != nil {
		return w, false
	}
	defer sf.Close()
	if _, err := io.ReadFull(sf, shm); err != nil || !bytes.Equal(shm[:48], shm[48:96]) {
		return w, false
	}
	ne := binary.NativeEndian
	h0, h1 := walChecksum(ne, shm[:40], 0, 0)
	if ne.Uint32(shm) != 3007000 || shm[12] != 1 || h0 != ne.Uint32(shm[40:]) || h1 != ne.Uint32(shm[44:]) {
		return w, false
	}
	w.last, w.pages, w.copied = ne.Uint32(shm[16:]), ne.Uint32(shm[20:]), ne.Uint32(shm[96:])
	sum := [2]uint32{ne.Uint32(shm[24:]), ne.Uint32(shm[28:])}
	copy(w.salt[:], shm[32:40])
	if w.last == 0 || w.copied > w.last {
		return w, false
	}

	f, err := os.Open(path + "-wal")
	if err != nil {
		return w, false
	}
	defer f.Close()
	hdr := make([]byte, 32)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return w, false
	}
	magic := binary.BigEndian.Uint32(hdr)
	if magic&^1 != 0x377f0682 || binary.BigEndian.Uint32(hdr[4:]) != 3007000 || !bytes.Equal(hdr[16:24], w.salt[:]) {
		return w, false
	}
	var order binary.ByteOrder = binary.LittleEndian
	if magic&1 == 1 {
		order = binary.BigEndian
	}
	w.pageSize = int(binary.BigEndian.Uint32(hdr[8:]))
	size := int(ne.Uint16(shm[14:]))
	if size == 1 {
		size = 65536
	}
	if w.pageSize < 512 || w.pageSize > 65536 || w.pageSize&(w.pageSize-1) != 0 || size != w.pageSize {
		return w, false
	}
	frame := make([]byte, 24+w.pageSize)
	// The last commit: the index's salt and checksum, and a commit's size.
	if _, err := f.ReadAt(frame[:24], w.frameAt(w.last)); err != nil || !bytes.Equal(frame[8:16], w.salt[:]) ||
		binary.BigEndian.Uint32(frame[4:]) != w.pages ||
		binary.BigEndian.Uint32(frame[16:]) != sum[0] || binary.BigEndian.Uint32(frame[20:]) != sum[1] {
		return w, false
	}
	// The frame after it, whose checksum would follow from the last's: a valid
	// one is a frame the index does not know of.
	if _, err := f.ReadAt(frame, w.frameAt(w.last+1)); err == nil && bytes.Equal(frame[8:16], w.salt[:]) {
		s0, s1 := walChecksum(order, frame[:8], sum[0], sum[1])
		s0, s1 = walChecksum(order, frame[24:], s0, s1)
		if s0 == binary.BigEndian.Uint32(frame[16:]) && s1 == binary.BigEndian.Uint32(frame[20:]) {
			return w, false
		}
	}
	return w, true
}

// frameAt is the offset of frame n (from 1) in the WAL.
func (w walState) frameAt(n uint32) int64 { return 32 + int64(n-1)*int64(24+w.pageSize) }

// maxFramesCompared bounds the WAL pageNotFromWAL reads (256 MiB of 4 KiB pages):
// a WAL that another process checkpoints (Litestream) may grow far larger.
const maxFramesCompared = 65536

// pageNotFromWAL looks for a page of the database file at path that a checkpoint
// of the WAL w copied into it, and that is not as the WAL has it: the file, then,
// is not the one the checkpoint copied into. A checkpoint copies, of each page,
// the last of its frames, and only when that frame is among the ones it copies:
// so a page whose last frame is one of the frames copied (up to w.copied) is in
// the file as that frame has it, byte for byte. But a checkpoint copies no page
// past the database's size at the last commit it sees: a page past its size at
// the WAL's last commit (w.pages; a VACUUM made it smaller) may never have been
// copied, and is left as it was (a page within that size was written again as
// the database grew back to it, in a frame after every frame copied). A page past
// the file's end, or of zeros, says nothing: a later checkpoint may have cut the
// file, and another (of a database VACUUM made smaller, and larger again) grown
// it past pages it had yet to write.
func pageNotFromWAL(path string, w walState) (uint32, bool) {
	if w.last > maxFramesCompared {
		return 0, false
	}
	wf, err := os.Open(path + "-wal")
	if err != nil {
		return 0, false
	}
	defer wf.Close()
	db, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer db.Close()
	lastFrame := map[uint32]uint32{} // a page's last frame
	head := make([]byte, 24)
	for n := uint32(1); n <= w.last; n++ {
		if _, err := wf.ReadAt(head, w.frameAt(n)); err != nil || !bytes.Equal(head[8:16], w.salt[:]) {
			return 0, false
		}
		lastFrame[binary.BigEndian.Uint32(head)] = n
	}
	pages := make([]uint32, 0, len(lastFrame))
	for p, n := range lastFrame {
		if n <= w.copied && p <= w.pages {
			pages = append(pages, p)
		}
	}
	slices.Sort(pages)
	frame, page := make([]byte, w.pageSize), make([]byte, w.pageSize)
	for _, p := range pages {
		if _, err := db.ReadAt(page, int64(p-1)*int64(w.pageSize)); err != nil || allZero(page) {
			continue
		}
		if _, err := wf.ReadAt(frame, w.frameAt(lastFrame[p])+24); err != nil {
			return 0, false
		}
		if !bytes.Equal(frame, page) {
			return p, true
		}
	}
	return 0, false
}

// allZero reports whether b holds only zeros.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// walChecksum is SQLite's checksum of a WAL's header and frames, and of the
// -shm index's header: b's 32-bit words in order, two at a time, added on to s0
// and s1.
func walChecksum(order binary.ByteOrder, b []byte, s0, s1 uint32) (uint32, uint32) {
	for i := 0; i+8 <= len(b); i += 8 {
		s0 += order.Uint32(b[i:]) + s1
		s1 += order.Uint32(b[i+4:]) + s0
	}
	return s0, s1
}
