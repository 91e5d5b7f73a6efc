package main

import (
	"context"
	"log/slog"
	"time"

	"hookd/store"
)

// markEvery is how often the daemon gives its database a new mark: a backup, or a
// replica, taken since the mark before carries an older mark than the lock file
// will, so that when it is restored its new deliveries take ids past the
// original's (store.Lineage). A crash within a minute of a backup leaves them the
// same mark.
const markEvery = time.Minute

// markLineage checks the database against the mark its lock file kept (seen), and
// gives both a new one, now, every markEvery and when the returned stop is called
// at the daemon's stop.
func markLineage(ctx context.Context, st *store.Store, lock *serveLock, seen string, log *slog.Logger) (stop func(), err error) {
	current, moved, err := st.Lineage(ctx, seen)
	if err != nil {
		return nil, err
	}
	if moved > 0 {
		log.Warn("this database is not the state this daemon's file last ran on (a restored backup, a restored replica, a copy): new deliveries take ids from here on, past any webhook-id the original can have sent",
			"first_delivery_id", moved)
	}
	keep := func() {
		if err := lock.keep(current); err != nil {
			// At the next start the database's mark then differs from the file's:
			// its new deliveries take new ids, no harm done.
			log.Warn("the database's mark is not kept beside it", "err", err)
		}
	}
	keep()
	mark := func(ctx context.Context) {
		// While this daemon runs, the database is the one it opened: current is its mark.
		next, _, err := st.Lineage(ctx, current)
		if err != nil {
			log.Warn("the database's mark is not renewed", "err", err)
			return
		}
		current = next
		keep()
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(markEvery)
		defer t.Stop()
		for {
			select {
			case <-mctx.Done():
				return
			case <-t.C:
				mark(mctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		sctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		mark(sctx)
	}, nil
}
