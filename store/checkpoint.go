package store

import (
	"context"
	"database/sql"
	"time"
)

// checkpointEvery is how often the background checkpointer copies new WAL frames
// into the database file.
const checkpointEvery = 250 * time.Millisecond

// walAutocheckpoint is the WAL size (in pages) at which a commit on the write
// connection checkpoints by itself: only a safety net, in case the background
// checkpointer cannot keep up.
const walAutocheckpoint = 4096

// walSafetyNet is the write connection's autocheckpoint threshold (in pages, 1 GiB
// of 4 KiB pages) when another process checkpoints (Options.ExternalCheckpoints).
// Litestream checkpoints at 1000 pages and forces a truncating checkpoint at
// 121359; only when it has not run for long does the WAL reach this size, and
// then hookd's commits keep it from growing without bound.
const walSafetyNet = 262144

// walSizeLimit is the size (in bytes) the WAL file is cut back to when it starts
// over having grown past it: SQLite reuses the file from its beginning but keeps its
// size, so a burst that grew it (a large import, a long read holding checkpoints
// back) would otherwise hold that much disk for good. Well above what the WAL
// reaches between two checkpoints (walAutocheckpoint pages at most), so a WAL
// written in place is never cut and grown again. A variable for the tests.
var walSizeLimit int64 = 64 << 20

// checkpointer runs passive checkpoints on a connection of its own, so copying the
// WAL into the database file (and the database file's fsync) happens beside the
// writer instead of inside whichever commit crosses SQLite's threshold, which made
// every few-hundredth write slow. A passive checkpoint cannot take the frames
// committed while it runs, and SQLite starts the WAL over from its beginning only
// once every frame is in the database file; so after each one the group writer is
// asked to checkpoint the few frames left between two groups (catchUp). That keeps
// the WAL small and written in place, which makes its fsyncs cheaper than growing it.
func (s *Store) checkpointer(db *sql.DB) {
	defer close(s.checkpointDone)
	defer db.Close()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		// Nothing new in the WAL makes this a cheap no-op. A failure (say, the disk
		// is full) leaves the frames in the WAL, where the next checkpoint, or the
		// write connection's own, takes them.
		var busy, frames, copied int
		if err := db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil || copied >= frames {
			continue // failed, or every frame is in: the next write starts the WAL over
		}
		select {
		case s.catchUp <- struct{}{}:
		default:
		}
	}
}

// checkpointTail checkpoints, on the write connection between two groups, the
// frames the background checkpointer left: few, so quick.
func (s *Store) checkpointTail() {
	s.write.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
}
