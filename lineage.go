package main

import (
	"context"
	"log/slog"
	"os"
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
// is called at the daemon's stop.
func markLineage(ctx context.Context, st *store.Store, lock *serveLock, before lockHolder, log *slog.Logger) (stop func(), err error) {
	machine := machineID()
	current, moved, err := st.Lineage(ctx, store.Seen{Mark: before.Mark, Issued: before.Issued,
		Elsewhere: before.Machine != "" && machine != "" && before.Machine != machine})
	if err != nil {
		return nil, err
	}
	if moved > 0 {
		log.Warn("this database is not the state this daemon's file last ran on (a restored backup or replica, a copy, a new database): new deliveries take ids from here on, and those not yet done new webhook-ids, past any the original can have sent",
			"first_delivery_id", moved)
	}
	var issued int64
	write := func() {
		if err := lock.keep(current, issued, machine); err != nil {
			// At the next start the database then looks like a copy: its new
			// deliveries take new ids, no harm done.
			log.Warn("what the daemon saw of the database is not kept beside it", "err", err)
		}
	}
	// keep writes the mark and the highest delivery id given; force writes even
	// when the id has not changed (a new mark).
	keep := func(ctx context.Context, force bool) {
		n, err := st.DeliveriesIssued(ctx)
		if err != nil {
			log.Warn("the highest delivery id is not read", "err", err)
			n = issued
		}
		if n != issued || force {
			issued = n
			write()
		}
	}
	keep(ctx, true)
	remark := func(ctx context.Context) {
		// While this daemon runs, the database is the one it opened: current is its mark.
		next, _, err := st.Lineage(ctx, store.Seen{Mark: current})
		if err != nil {
			log.Warn("the database's mark is not renewed", "err", err)
			return
		}
		current = next
		keep(ctx, true)
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
				keep(mctx, false)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		sctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		remark(sctx)
	}, nil
}
