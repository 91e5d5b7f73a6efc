package main

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"hookd/store"
)

// Intervals of what the daemon keeps in its lock file of the database
// (store.Lineage): a new mark every markEvery, so that a backup taken since the
// mark before carries an older one; the highest delivery id given every
// issuedEvery, so that a Litestream replica, a second or two behind, is seen to be.
const (
	markEvery   = time.Minute
	issuedEvery = 250 * time.Millisecond
)

// machineID is this machine's /etc/machine-id ("" when there is none): a lock file
// written on another machine says nothing of this one's database.
func machineID() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil {
			if id := strings.TrimSpace(string(b)); id != "" {
				return id
			}
		}
	}
	return ""
}

// markLineage checks the database against what its lock file saw (before), keeps in
// the lock file what this daemon sees (a new mark now, every markEvery and at its
// stop; the highest delivery id given every issuedEvery), until the returned stop
// is called at the daemon's stop, which writes the last mark within 5 s (and before
// the time it is given, when that is set). A new mark goes into the lock file, synced, before
// it goes into the database: a stop between the two leaves the database a mark the
// lock file knows (as its previous one).
func markLineage(ctx context.Context, st *store.Store, lock *serveLock, before lockHolder, log *slog.Logger) (stop func(by time.Time), err error) {
	machine := machineID()
	seen := store.Seen{Issued: before.Issued, Elsewhere: before.Machine != "" && machine != "" && before.Machine != machine}
	for _, m := range []string{before.Mark, before.Previous} {
		if m != "" {
			seen.Marks = append(seen.Marks, m)
		}
	}
	held, err := st.Mark(ctx)
	if err != nil {
		return nil, err
	}
	next := store.NewMark()
	h := before // the rest as the file said until the database is checked: a start that stops here leaves it
	h.Mark, h.Previous = next, before.Mark
	if slices.Contains(seen.Marks, held) {
		h.Previous = held // the database's own, whichever of the two it holds
	}
	if err := lock.keep(h, true); err != nil {
		return nil, err
	}
	moved, err := st.Lineage(ctx, seen, next)
	if err != nil {
		return nil, err
	}
	current := next // the mark the database holds
	// settled forgets the mark before, once the database holds the new one: a backup
	// taken under the mark before is not the database any more.
	settled := func() {
		h := lock.seen()
		h.Previous = ""
		if err := lock.keep(h, false); err != nil {
			log.Warn("what the daemon saw of the database is not kept beside it", "err", err)
		}
	}
	if moved > 0 {
		// What waits in the copy is sent, also what the original sent after the
		// copy was taken: under a new webhook-id, which its receiver cannot tell
		// from another message's.
		attrs := []any{"first_delivery_id", moved}
		if g, err := st.Gauges(ctx); err == nil {
			attrs = append(attrs, "waiting", g.Pending+g.InFlight)
		}
		log.Warn("this database is not the state this daemon's file last ran on (a restored backup or replica, a copy, a new database): new deliveries take ids from here on, and those not yet done new webhook-ids, past any the original can have sent; "+
			"the deliveries waiting in it are sent, and those the original sent after it was copied reach their receivers a second time, under a new webhook-id",
			attrs...)
	}
	// issued writes the highest delivery id given, when it changed or force is set.
	issued := func(ctx context.Context, force bool) {
		n, err := st.DeliveriesIssued(ctx)
		h := lock.seen()
		if err != nil {
			log.Warn("the highest delivery id is not read", "err", err)
			n = h.Issued
		}
		if n == h.Issued && h.Machine == machine && !force {
			return
		}
		h.Issued, h.Machine = n, machine
		if err := lock.keep(h, false); err != nil {
			// A stale id in the file only lets a copy pass unseen a little longer.
			log.Warn("what the daemon saw of the database is not kept beside it", "err", err)
		}
	}
	issued(ctx, true)
	settled()
	remark := func(ctx context.Context) {
		h := lock.seen()
		next := store.NewMark()
		h.Mark, h.Previous = next, current
		if err := lock.keep(h, true); err != nil {
			log.Warn("the database's mark is not renewed", "err", err)
			return
		}
		// While this daemon runs, the database is the one it opened: current is its
		// mark (still, when this write fails: the file keeps it as the previous one).
		if _, err := st.Lineage(ctx, store.Seen{Marks: []string{current}}, next); err != nil {
			log.Warn("the database's mark is not renewed", "err", err)
			return
		}
		current = next
		settled()
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		marks, ids := time.NewTicker(markEvery), time.NewTicker(issuedEvery)
		defer marks.Stop()
		defer ids.Stop()
		for {
			select {
			case <-mctx.Done():
				return
			case <-marks.C:
				remark(mctx)
			case <-ids.C:
				issued(mctx, false)
			}
		}
	}()
	return func(by time.Time) {
		cancel()
		<-done
		end := time.Now().Add(5 * time.Second)
		if !by.IsZero() && by.Before(end) {
			end = by // the stop's own bound (stopTimes)
		}
		sctx, stop := context.WithDeadline(context.WithoutCancel(ctx), end)
		defer stop()
		remark(sctx)
		issued(sctx, false)
	}, nil
}
