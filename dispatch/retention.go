package dispatch

import (
	"context"
	"time"

	"hookd/store"
)

// purgeBatch is how many rows one purge transaction deletes: small, so the dispatch
// loop's transactions never wait long behind it.
const purgeBatch = 500

// purgeEvery is how often the retention pass runs.
const purgeEvery = time.Minute

// Purge deletes delivered deliveries (and their attempts) that finished more than
// Options.Retention ago, the finished deliveries of removed webhooks as old,
// idempotency keys past their 24 hours, access tokens expired or revoked as long
// ago (and their refresh tokens with them), and audit log entries older than
// Options.AuditRetention, in small batches, pausing between them. Dead deliveries of
// webhooks that still exist are kept for an operator. It also turns dead what
// deactivated webhooks still have waiting (store.KillInactivePending), queues the
// upstream registrations and unregistrations that changes of organisations'
// coverage left (store.QueueUpstreamLeft), activates again webhooks
// deactivated ahead of a removal that never came (store.RecoverKilled), finishes
// the removals of clients and organisations left half-way (finishRemovals), and ends
// the runs of failures of webhooks not tried for longer than retry_max_delay
// (store.EndLapsedRuns). It returns how many deliveries it deleted.
func (d *Dispatcher) Purge(ctx context.Context) (int, error) {
	total := 0
	now := d.store.Now()
	before, auditBefore := now.Add(-d.opts.Retention), now.Add(-d.opts.AuditRetention)
	// Webhooks a removal that never came left deactivated, once no removal can still
	// be running (a command killed beside this daemon).
	if _, err := d.store.RecoverKilled(ctx, now.Add(-15*time.Minute)); err != nil {
		return 0, err
	}
	// A removal that fails to finish (logged, and tried again in the next pass)
	// holds up none of the rest.
	if err := d.finishRemovals(ctx); err != nil {
		d.log.Error("retention: a removal left half-way is not finished", "err", err)
	}
	// Runs of failures nothing has been tried in for longer than any retry waits.
	if _, err := d.store.EndLapsedRuns(ctx, d.opts.RetryMaxDelay); err != nil {
		return 0, err
	}
	for ctx.Err() == nil {
		n, keys, err := d.store.Purge(ctx, store.StateDelivered, before, purgeBatch)
		total += n
		if err != nil {
			return total, err
		}
		removed, err := d.store.PurgeRemoved(ctx, before, purgeBatch)
		total += removed
		if err != nil {
			return total, err
		}
		tokens, err := d.store.PurgeTokens(ctx, before, purgeBatch)
		if err != nil {
			return total, err
		}
		killed, err := d.store.KillInactivePending(ctx, purgeBatch)
		if err != nil {
			return total, err
		}
		upstream, err := d.store.QueueUpstreamLeft(ctx, purgeBatch)
		if err != nil {
			return total, err
		}
		audit, err := d.store.PurgeAudit(ctx, auditBefore, purgeBatch)
		if err != nil || (n < purgeBatch && keys < purgeBatch && removed < purgeBatch && tokens < purgeBatch && killed < purgeBatch &&
			upstream < purgeBatch && audit < purgeBatch) {
			return total, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond): // let the dispatch loop write
		}
	}
	return total, ctx.Err()
}

// Paused stands in for Run while delivery is paused (delivery.paused): it
// claims, sends and purges nothing, but ends the runs of failures that lapse
// (store.EndLapsedRuns), at once and then every purgeEvery until ctx ends, as
// the retention pass does. No webhook is tried meanwhile, so a run whose latest
// planned retry is more than retry_max_delay past says nothing of the webhook
// now: it no longer shows as failing (the console, hookd_webhooks_failing), and
// the webhook's next failure once delivery resumes begins a new run, as it
// would have anyway. It returns nil when ctx ends.
func (d *Dispatcher) Paused(ctx context.Context) error {
	return d.paused(ctx, purgeEvery)
}

func (d *Dispatcher) paused(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := d.store.EndLapsedRuns(ctx, d.opts.RetryMaxDelay); err != nil && ctx.Err() == nil {
			d.log.Error("retention", "err", err)
		}
		// Sending nothing, it removes: a removal left half-way is finished.
		if err := d.finishRemovals(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// removalIdle is how long a removal of a client or an organisation has not
// stepped (each of its transactions does) before the daemon finishes it: a
// command that runs it beside the daemon, or the console's, is left to do so.
const removalIdle = time.Minute

// finishRemovals finishes the removals of clients and organisations that were
// marked and not finished, and have not stepped for removalIdle
// (store.FinishRemovals): a command killed beside this daemon, or a daemon
// stopped in the middle of one.
func (d *Dispatcher) finishRemovals(ctx context.Context) error {
	n, err := d.store.FinishRemovals(ctx, d.store.Now().Add(-removalIdle))
	if n > 0 {
		d.log.Info("finished the removals of clients or organisations that were left half-way", "removals", n)
	}
	if ctx.Err() != nil {
		return nil // stopping: the next start finishes them
	}
	return err
}

// retention runs Purge every purgeEvery until ctx ends, and at once finishes the
// removals a stopped process left half-way (finishRemovals).
func (d *Dispatcher) retention(ctx context.Context) {
	if err := d.finishRemovals(ctx); err != nil {
		d.log.Error("retention", "err", err)
	}
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := d.Purge(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("retention", "err", err)
			} else if n > 0 {
				d.log.Debug("retention", "purged", n)
			}
		}
	}
}
