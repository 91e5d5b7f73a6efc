package store

import (
	"fmt"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite's lookaside is a per-connection pool of small allocations, much cheaper
// than its general allocator (here modernc's malloc, with a mutex). Its default
// size (40 slots of 1,200 bytes) is taken up for good by the write connection's
// prepared statements, the store's hot statements prepared at Open: every
// allocation a statement then makes while it runs misses the lookaside, about 33
// of them for one event's intake. With room for 500 such slots (600,000 bytes a
// connection, split by SQLite into large and small slots) the prepared statements
// leave most of it free, and a single event's intake costs a tenth fewer
// instructions (BENCHMARKS.md, "The lookaside").
const (
	lookasideSlotSize = 1200
	lookasideSlots    = 500
)

// lookasideErr is why the lookaside could not be sized, or nil.
var lookasideErr = configureLookaside()

// LookasideError is why SQLite's lookaside could not be sized at start (SQLite
// was in use before the store package was initialised), or nil. hookd runs either
// way, with SQLite's default lookaside, only slower; the daemon logs it.
func LookasideError() error { return lookasideErr }

// configureLookaside sets the lookaside of every connection the process opens.
// SQLite takes the setting only before its first connection, which is why this
// runs as the package is initialised: no connection can be open yet.
func configureLookaside() error {
	tls := libc.NewTLS()
	defer tls.Close()
	const vaSlot = 8 // libc.VaList packs each argument in 8 bytes
	va := libc.Xmalloc(tls, types.Size_t(2*vaSlot))
	if va == 0 {
		return fmt.Errorf("lookaside: out of memory")
	}
	defer libc.Xfree(tls, va)
	if rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_LOOKASIDE, libc.VaList(va, int32(lookasideSlotSize), int32(lookasideSlots))); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("lookaside: sqlite3_config returned %d", rc)
	}
	return nil
}
