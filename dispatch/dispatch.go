// Package dispatch drains the outbox: it claims due deliveries, calls their targets
// with bounded concurrency (globally and per host), and records the outcomes in batches.
//
// The loop (this file) takes turns: each turn is one transaction that records the
// outcomes of finished calls and claims due rows. The scheduler (hosts.go) queues
// the claimed rows by host for a fixed pool of workers; a worker makes the call
// (deliver.go, email.go, hub.go) and the policy (outcome.go) decides what its
// result becomes, which waits for the next turn to be recorded.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"hookd/store"
)

// Dispatcher drains the outbox. Run drives it; tests call Tick and Wait instead.
type Dispatcher struct {
	opts     Options
	log      *slog.Logger
	store    *store.Store
	client   *http.Client
	inbox    *http.Client // to hookd's own inbox (Options.Inbox), nil without one
	tokens   *tokenCache
	signer   signer
	hubState *hubState
	policy   policy
	failures *failureLog
	deferred deferredLines // the lines of deactivating outcomes, until recorded
	lease    time.Duration

	// tokenClient is client with hookd's User-Agent and an Accept of JSON on every
	// request, for the token endpoints, whose requests golang.org/x/oauth2 makes.
	tokenClient *http.Client
	// userAgent is opts.UserAgent as a header's value, set directly on each call
	// (its length is its capacity: an Add makes a new slice rather than change it).
	userAgent []string

	nudge        chan struct{} // wakes Run: new events
	outcomeReady chan struct{} // wakes Run: a call finished

	mu      sync.Mutex      // guards sched, pending and closed
	sched   *scheduler      // the claimed rows, by host
	pending []store.Outcome // outcomes not yet written
	spare   []store.Outcome // a recorded turn's array, empty, for pending to use again
	work    *sync.Cond      // on mu: wakes idle workers when rows may start, or at Close
	idle    int             // workers waiting on work (guarded by mu)
	// waking counts the idle workers signalled and not yet running (guarded by
	// mu). It is exact because Signal wakes a waiter not signalled yet and a
	// worker leaves Wait only when signalled, until Close's Broadcast; another
	// Broadcast while the workers run would break it.
	waking  int
	closed  bool      // the workers end
	workers sync.Once // starts them, at the first turn
	// running counts the worker goroutines (guarded by mu): opts.Workers, and one
	// more for each parked call (scheduler.parked), so that a call left waiting on
	// a stalled host does not hold a worker from the others.
	running int

	wg      sync.WaitGroup // claimed rows whose outcome is not yet pending
	notices sync.WaitGroup // owner notices being sent
	// smtp bounds the sessions of organisation e-mail and owners' notices at the
	// SMTP relay, together, to per_host.
	smtp        *smtpSessions
	told        *toldOwners
	callCtx     context.Context // parent of every HTTP call; cancelled after the shutdown grace
	cancelCalls context.CancelFunc
	// noticeCtx is the parent of every owner's notice; cancelled when a stop's
	// time for them ends (StopBy).
	noticeCtx     context.Context
	cancelNotices context.CancelFunc
	// stopCut and stopEnd bound Run's stop (StopBy; zero: unbounded but by the
	// grace and the delivery timeout). Guarded by mu.
	stopCut, stopEnd time.Time

	stopping    atomic.Bool
	inboxClosed atomic.Bool  // hookd's own inbox no longer answers (InboxClosed)
	more        bool         // the last turn left work for another at once (Run's goroutine only)
	lastTick    atomic.Int64 // when a turn last succeeded (Ready), on the monotonic clock (sinceStart)
	lastTurn    atomic.Int64 // when a turn was last taken, whether it succeeded or not (Alive), as lastTick
	failedTurns int          // turns in a row whose transaction failed (the loop's own)

	turnMu  sync.Mutex
	turnErr error // why the last turn failed; nil when it succeeded
}

// New returns a Dispatcher.
func New(opts Options) *Dispatcher {
	opts = opts.withDefaults()
	d := &Dispatcher{
		opts:  opts,
		log:   opts.Logger,
		store: opts.Store,
		policy: policy{
			retryBase: opts.RetryBase, retryMaxDelay: opts.RetryMaxDelay,
			giveUpAfter: opts.GiveUpAfter, disableAfter: opts.DisableAfter, rand: opts.Rand,
		},
		// A claimed row may wait in its host's queue for queueDepth calls' time before
		// its own call; the lease outlasts that, so crashed work is what is reclaimed.
		// A row that waited longer (its host served rarely while many hosts share the
		// workers) is handed back unsent rather than called late (deliver).
		lease:        (queueDepth+1)*opts.Timeout + leaseSlack,
		nudge:        make(chan struct{}, 1),
		outcomeReady: make(chan struct{}, 1),
		failures:     newFailureLog(),
		told:         newToldOwners(),
		smtp:         newSMTPSessions(opts.PerHost),
	}
	d.sched = newScheduler(opts.Workers, opts.PerHost, opts.Tick, d.now)
	d.work = sync.NewCond(&d.mu)
	d.callCtx, d.cancelCalls = context.WithCancel(context.Background())
	d.noticeCtx, d.cancelNotices = context.WithCancel(context.Background())
	d.client = newHTTPClient(opts)
	if opts.Inbox != nil {
		d.inbox = newInboxClient(opts)
	}
	d.tokenClient = tokenClientOf(d.client, opts.UserAgent)
	d.userAgent = []string{opts.UserAgent}
	d.tokens = newTokenCache(d.tokenClient, d.now)
	d.ConfigureHub(opts.Hub)
	return d
}

// now is the dispatcher's clock: the store's.
func (d *Dispatcher) now() time.Time { return d.store.Now() }

// Nudge wakes Run at once, e.g. after intake committed new events.
func (d *Dispatcher) Nudge() {
	select {
	case d.nudge <- struct{}{}:
	default:
	}
}

// Ready reports an error when the loop's last turn failed (naming why, e.g. a
// store fault: "the database or its disk is full: …") or when it has not completed
// a turn for a while (for /readyz).
func (d *Dispatcher) Ready(context.Context) error {
	d.turnMu.Lock()
	err := d.turnErr
	d.turnMu.Unlock()
	if err != nil {
		return fmt.Errorf("dispatch loop cannot record or claim deliveries: %w", err)
	}
	last := d.lastTick.Load()
	if last == 0 {
		return errors.New("dispatcher has not started")
	}
	if age := time.Duration(sinceStart() - last); age > 3*d.opts.Tick+d.opts.Timeout {
		return fmt.Errorf("dispatcher last ticked %s ago", age.Round(time.Millisecond))
	}
	return nil
}

// Alive reports an error when the loop has stopped taking turns (for the systemd
// watchdog). Unlike Ready, a loop whose turns fail, say on a full disk, is alive:
// it backs off and tries again, and recovers by itself once the store takes its
// writes, where a restart would change nothing.
func (d *Dispatcher) Alive(context.Context) error {
	last := d.lastTurn.Load()
	if last == 0 {
		return errors.New("dispatcher has not started")
	}
	if age := time.Duration(sinceStart() - last); age > maxTurnBackoff+3*d.opts.Tick+d.opts.Timeout {
		return fmt.Errorf("dispatcher last took a turn %s ago", age.Round(time.Millisecond))
	}
	return nil
}

// processStart is when the process began, read with its monotonic clock.
var processStart = time.Now()

// sinceStart is the time since processStart, in nanoseconds, on the monotonic
// clock: a step of the wall clock (an NTP correction, a VM resumed) does not make a
// turn look older or newer than it is. It is never 0, which means "never".
func sinceStart() int64 { return int64(time.Since(processStart)) + 1 }

// maxTurnBackoff bounds the wait between two turns of the loop while its turns fail.
const maxTurnBackoff = 30 * time.Second

// turnLogEvery is how often at most the loop logs that its turns still fail.
const turnLogEvery = time.Minute

// Run drives the dispatcher until ctx ends: a turn on every timer beat, nudge, or
// finished calls (see turnDue). While turns fail (a store fault: a full disk, a
// read-only file), it waits longer before each next one, doubling from a tick up
// to maxTurnBackoff, and logs the failure when it begins, once a minute while it
// lasts, and when it ends. On return, in-flight calls have finished (or been
// cancelled after the grace period) and every outcome is recorded.
func (d *Dispatcher) Run(ctx context.Context) error {
	ticker := time.NewTicker(d.opts.Tick)
	defer ticker.Stop()
	d.store.ClaimFresh(&store.FreshClaimer{Limit: d.freshLimit, Take: d.takeFresh, Settled: d.settled, Lease: d.lease})
	defer d.store.ClaimFresh(nil)
	go d.retention(ctx)
	var failing turnFailures
	for {
		_, err := d.Tick(ctx)
		if ctx.Err() != nil {
			err = nil // stopping: not a failure of the loop
		}
		if wait := failing.note(d.log, err, d.opts.Tick, time.Now()); wait > 0 {
			// Back off: nudges and finished calls do not shorten the wait.
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return d.shutdown(ctx)
			case <-t.C:
			}
			continue
		}
		if d.more {
			// The turn was cut short by its bounds: go on at once (the intake's
			// calls waiting meanwhile are written between the two). Events that
			// arrived during it are claimed first, in a short turn of their own.
			if ctx.Err() != nil {
				return d.shutdown(ctx)
			}
			if d.nudged() {
				d.quickTurn(ctx)
			}
			continue
		}
		if !d.awaitTurn(ctx, ticker.C) {
			return d.shutdown(ctx)
		}
	}
}

// turnFailures is the loop's record of turns failing in a row, for its backoff and
// its log.
type turnFailures struct {
	n       int       // turns failed in a row
	since   time.Time // when the first of them failed
	logged  time.Time // when that was last logged
	skipped int       // failed turns not logged since
}

// note takes the result of a turn that ended at now, logs what is worth logging,
// and returns how long the loop waits before its next turn (0: as usual).
func (f *turnFailures) note(log *slog.Logger, err error, tick time.Duration, now time.Time) time.Duration {
	if err == nil {
		if f.n > 0 {
			log.Info("dispatch loop recovered: its turns succeed again", "failed_turns", f.n, "failing_for", now.Sub(f.since).Round(time.Second))
		}
		*f = turnFailures{}
		return 0
	}
	f.n++
	switch {
	case f.n == 1:
		f.since, f.logged = now, now
		log.Error("dispatch loop: a turn failed; retrying with a growing delay", "err", err)
	case now.Sub(f.logged) >= turnLogEvery:
		log.Error("dispatch loop: turns still fail", "err", err, "failed_turns", f.n, "failing_for", now.Sub(f.since).Round(time.Second), "not_logged", f.skipped)
		f.logged, f.skipped = now, 0
	default:
		f.skipped++
	}
	wait := tick
	for i := 1; i < f.n && wait < maxTurnBackoff; i++ {
		wait *= 2
	}
	return min(wait, maxTurnBackoff)
}

// awaitTurn waits until the loop should take its next turn, and reports false when
// ctx ended instead.
func (d *Dispatcher) awaitTurn(ctx context.Context, beat <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-beat:
			return true
		case <-d.nudge:
			return true
		case <-d.outcomeReady:
			if d.turnDue() {
				return true
			}
		}
	}
}

// turnDue decides, when a call finishes, whether the loop should take a turn now:
// once half the capacity is free or a quarter of it waits to be written. Until then
// outcomes pile up, so each transaction records and claims a larger batch; from
// then on the rows still queued keep the workers busy while the turn runs.
func (d *Dispatcher) turnDue() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sched.queued < d.sched.capacity()/2 || len(d.pending) >= d.sched.capacity()/4
}

// StopBy bounds Run's stop in time, once its ctx ends (hookd serve sets it at
// SIGTERM, so the whole stop fits the service manager's time for it): calls in
// flight get the shutdown grace, but end no later than cut, and owners' notices
// still being sent at cut are cut short (not sent; the log says so); the
// outcomes are recorded by end at the latest. Without it, the stop waits the
// grace, up to 10 s for the outcomes, and for each notice to end (within the
// delivery timeout).
func (d *Dispatcher) StopBy(cut, end time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopCut, d.stopEnd = cut, end
}

// InboxClosed tells the dispatcher that hookd's own inbox (Options.Inbox) no
// longer answers: hookd has stopped listening (its stop has begun, or its HTTP
// server failed) while delivery goes on for the other receivers. A call to the
// inbox would fail as if the receiver were down ("connection refused"), and be
// counted as its failed attempt: a delivery to the inbox goes back unsent instead,
// not an attempt, and goes out at the next start.
func (d *Dispatcher) InboxClosed() { d.inboxClosed.Store(true) }

// shutdown stops claiming, waits for in-flight calls up to the grace period (or
// StopBy's cut), then cancels the rest (their deliveries are released, not counted
// as attempts), records every outcome, waits for the owners' notices being
// sent (until StopBy's cut), and sums up the deactivations left out of the log.
func (d *Dispatcher) shutdown(ctx context.Context) error {
	d.store.ClaimFresh(nil)
	d.stopping.Store(true)
	d.mu.Lock()
	d.releaseQueuedLocked()
	cut, end := d.stopCut, d.stopEnd
	d.mu.Unlock()
	grace := d.opts.ShutdownGrace
	if !cut.IsZero() {
		// At least a millisecond past the cut: done is closed by then when no
		// call is in flight, and a timer of 0 s would race it.
		grace = max(time.Millisecond, min(grace, time.Until(cut)))
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		d.log.Warn("cancelling in-flight deliveries at shutdown", "grace", grace)
		d.cancelCalls()
		<-done
	}
	d.cancelCalls()
	recordBy := time.Now().Add(10 * time.Second)
	if !end.IsZero() && end.Before(recordBy) {
		recordBy = end
	}
	wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), recordBy)
	defer cancel()
	err := d.flush(wctx)
	// Each notice is bounded by the delivery timeout, and by the stop's cut.
	sent := make(chan struct{})
	go func() { d.notices.Wait(); close(sent) }()
	if !cut.IsZero() {
		t := time.NewTimer(time.Until(cut))
		defer t.Stop()
		select {
		case <-sent:
		case <-t.C:
			d.cancelNotices()
		}
	}
	<-sent
	d.logSummaries(true) // before the stop's last line
	return err
}

// Wait blocks until every claimed delivery has been called and its outcome recorded.
func (d *Dispatcher) Wait(ctx context.Context) error {
	d.wg.Wait()
	err := d.flush(ctx)
	d.notices.Wait()
	return err
}

// Close ends the workers and releases the HTTP client's idle connections.
func (d *Dispatcher) Close() {
	d.stopping.Store(true) // a Tick after Close claims nothing
	d.mu.Lock()
	d.releaseQueuedLocked() // nothing is left queued without a worker
	d.closed = true
	d.work.Broadcast()
	d.mu.Unlock()
	d.cancelCalls()
	d.client.CloseIdleConnections()
}

// releaseQueuedLocked hands every queued row back to pending (at shutdown). d.mu
// must be held.
func (d *Dispatcher) releaseQueuedLocked() {
	var n int
	n, d.pending = d.sched.releaseAll(d.pending)
	d.wg.Add(-n)
}

// flush records the outcomes gathered so far, claiming nothing.
func (d *Dispatcher) flush(ctx context.Context) error {
	d.mu.Lock()
	batch := d.pending
	d.pending = nil
	d.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if _, err := d.store.Exchange(ctx, batch, 0, 0); err != nil {
		if errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
			d.mu.Lock()
			d.pending = append(batch, d.pending...)
			d.mu.Unlock()
			return err
		}
		// Not a store fault: an outcome may be what fails. The others are
		// recorded one at a time, as the turns do (turnFailed).
		batch = d.recordEach(ctx, batch)
	}
	d.recorded(batch)
	return nil
}

// recorded follows outcomes the store has just recorded: the metrics count each as
// it was applied (an outcome that would deactivate a webhook whose run of failures
// ended during the call is recorded as a retry), the lines held back for them are
// logged as recorded, and the owners of webhooks they deactivated are told.
func (d *Dispatcher) recorded(batch []store.Outcome) {
	if d.opts.Observer != nil {
		for _, o := range batch {
			d.opts.Observer.Outcome(o.Kind.String(), o.Duration)
		}
	}
	d.logRecorded(batch)
	d.noticeOwners(batch)
}

// splitAfter is how many turns in a row may fail before their outcomes are recorded
// one at a time.
const splitAfter = 3

// startWorkers starts the workers, once, with the first turn that may claim.
func (d *Dispatcher) startWorkers() {
	d.workers.Do(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.growLocked(d.opts.Workers)
	})
}

// parkedLocked follows calls the scheduler parked: a worker is started for each,
// and idle ones are woken for the rows that may start in their place. d.mu must be
// held.
func (d *Dispatcher) parkedLocked() {
	if d.running > 0 { // (the workers have started)
		d.growLocked(d.opts.Workers + d.sched.parked)
	}
	d.wakeLocked()
}

// growLocked starts workers until want run. d.mu must be held.
func (d *Dispatcher) growLocked(want int) {
	for ; d.running < want; d.running++ {
		go d.worker()
	}
}

// nudged reports whether Nudge was called since the loop last looked, and forgets it.
func (d *Dispatcher) nudged() bool {
	select {
	case <-d.nudge:
		return true
	default:
		return false
	}
}

// turnQuickMax bounds the rows a quick turn claims.
const turnQuickMax = 16

// quickTurn claims the newest due rows, at most turnQuickMax, and records nothing:
// the loop takes it between two long turns of a backlog when events arrived during
// the first, so their deliveries do not wait for the whole of the second (a turn
// of 128 + 128 rows takes milliseconds while the drain fills the processors; this
// one, a fraction of one). A quick turn that fails changes nothing: the next long
// turn claims the same rows, and reports the failure if it lasts.
func (d *Dispatcher) quickTurn(ctx context.Context) {
	d.mu.Lock()
	limit := min(d.sched.free(), turnQuickMax)
	d.mu.Unlock()
	if limit <= 0 || d.stopping.Load() {
		return
	}
	d.startWorkers()
	claimed, err := d.store.ClaimNewest(ctx, limit, d.lease)
	if err != nil || len(claimed) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queueLocked(claimed)
}

// freshLimit is how many deliveries of new events the store may claim for the loop
// in the events' own transaction (store.FreshClaimer): as many as a quick turn.
func (d *Dispatcher) freshLimit() int {
	if d.stopping.Load() || d.failing() {
		return 0 // claim nothing the turns cannot record
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return min(d.sched.free(), turnQuickMax)
}

// takeFresh queues the deliveries the store claimed with their events. Once the
// loop is stopping they go back as releases, which its last turn records.
func (d *Dispatcher) takeFresh(claimed []store.Claimed) {
	d.startWorkers()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping.Load() {
		now := d.now()
		for _, c := range claimed {
			d.pending = append(d.pending, released(c, now))
		}
		return
	}
	d.queueLocked(claimed)
}

// settled reports whether the loop holds no outcome the store has not recorded
// (store.FreshClaimer.Settled): a finished call's, whose record may free a waiting
// row of its pair, or a row handed back. Until a turn records them, an intake call
// must ask for one, even when its own transaction's claim took all it could.
func (d *Dispatcher) settled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending) == 0
}

// queueLocked hands claimed rows to the scheduler (what a host cannot take goes back
// as a release) and wakes the workers. d.mu must be held.
func (d *Dispatcher) queueLocked(claimed []store.Claimed) {
	queued, pending := d.sched.queue(claimed, d.pending)
	d.pending = pending
	d.wg.Add(queued)
	d.wakeLocked()
}

// wakeLocked wakes as many idle workers as there are queued rows that may start
// now, and no more: waking every worker for each queued row (a fresh event's one
// row among them) filled the run queue with workers that found nothing to do and
// made every goroutine, the intake's among them, wait longer for a processor
// (BENCHMARKS.md, "The workers woken one per row"). d.mu must be held.
//
// A finished call needs no wake: its worker takes the next row itself, so the
// rows that may start grow by none (a place freed at one host, a row taken).
func (d *Dispatcher) wakeLocked() {
	if d.idle == d.waking {
		return // every idle worker is already on its way
	}
	for n := min(d.sched.startable(), d.idle) - d.waking; n > 0; n-- {
		d.waking++
		d.work.Signal()
	}
}

// turnRecordMax and turnClaimMax bound the work of one turn: the outcomes it
// records and the rows it claims. A turn holds the store's one writer (~15 µs a
// row), and an event that arrives meanwhile waits for it, both for its commit and
// for the turn that claims it; so a backlog is taken in many short turns, one after
// another, instead of a few long ones.
const (
	turnRecordMax = 128
	turnClaimMax  = 128
)

// Tick is one turn of the loop: in one transaction it records the outcomes of
// finished calls and claims due deliveries up to the free capacity, each at most
// turnRecordMax and turnClaimMax; then it queues them by host and wakes the
// workers. It returns how many rows it claimed.
func (d *Dispatcher) Tick(ctx context.Context) (int, error) {
	d.lastTurn.Store(sinceStart())
	d.logSummaries(false) // a host's deactivations left out of the log in a minute now over
	d.more = false
	d.mu.Lock()
	parked := d.sched.parked
	trimmed, batch := d.sched.trim(d.pending)
	d.wg.Add(-trimmed)
	if d.sched.parked > parked {
		d.parkedLocked()
	}
	d.pending, d.spare = d.spare, nil
	// After a failed turn, every outcome kept goes in this one: a fault may have
	// outlasted their rows' leases, and the claim's look for expired leases would
	// otherwise take those rows again, their outcomes still unrecorded.
	if len(batch) > turnRecordMax && !d.failing() {
		d.pending = append(d.pending, batch[turnRecordMax:]...)
		clear(batch[turnRecordMax:])
		batch = batch[:turnRecordMax:turnRecordMax]
	}
	free := d.sched.free()
	d.mu.Unlock()
	if d.stopping.Load() {
		free = 0
	}
	limit := min(free, turnClaimMax)
	if limit <= 0 && len(batch) == 0 {
		d.turnDone(nil)
		return 0, nil
	}
	d.startWorkers()
	killed := d.store.ClaimKilled()
	claimed, err := d.store.Exchange(ctx, batch, limit, d.lease)
	if err != nil {
		d.turnFailed(ctx, batch, err)
		if ctx.Err() == nil {
			d.turnDone(err)
		}
		return 0, err
	}
	d.turnDone(nil)
	d.failedTurns = 0
	d.recorded(batch)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.spare == nil && cap(batch) > 0 {
		// The outcomes are written: their array takes the next turn's.
		clear(batch)
		d.spare = batch[:0]
	}
	if len(claimed) > 0 {
		d.queueLocked(claimed)
	}
	// Another turn at once if this one stopped at a bound: more outcomes waiting,
	// or a full claim with room for more. The claim's rows that died unsent
	// (store.ClaimKilled) count: they were due, and more may be.
	took := len(claimed) + int(d.store.ClaimKilled()-killed)
	d.more = len(d.pending) >= turnRecordMax || (limit == turnClaimMax && took >= limit && d.sched.free() > 0)
	return len(claimed), nil
}

// failing reports whether the last turn failed.
func (d *Dispatcher) failing() bool {
	d.turnMu.Lock()
	defer d.turnMu.Unlock()
	return d.turnErr != nil
}

// turnDone records how a turn ended: readiness follows successful turns only, so
// a loop that cannot write is reported (with why), not hidden.
func (d *Dispatcher) turnDone(err error) {
	if err == nil {
		d.lastTick.Store(sinceStart())
	}
	d.turnMu.Lock()
	d.turnErr = err
	d.turnMu.Unlock()
}

// turnFailed keeps the outcomes of a turn whose transaction failed for the next
// turn (the leases protect their rows meanwhile), unless turns keep failing for
// another reason than a store fault: then one of the outcomes may be what fails,
// so they are recorded one at a time and those that still fail are dropped, so
// one bad outcome cannot stop the loop. A dropped one's row is attempted again
// when its lease ends (at least once, as after a crash). During a store fault
// (a full disk, a read-only file) no outcome is to blame: all are kept until the
// store takes them. Nor is any to blame for a turn cut short by its context (the
// loop stopping): they are kept for the shutdown's flush.
func (d *Dispatcher) turnFailed(ctx context.Context, batch []store.Outcome, err error) {
	if !errors.Is(err, store.ErrUnavailable) && ctx.Err() == nil {
		d.failedTurns++
	}
	if d.failedTurns >= splitAfter && len(batch) > 0 && ctx.Err() == nil {
		d.failedTurns = 0
		d.recorded(d.recordEach(ctx, batch))
		return
	}
	d.mu.Lock()
	d.pending = append(batch, d.pending...)
	d.mu.Unlock()
}

// recordEach records outcomes one transaction each, logs and drops those that fail,
// and returns those recorded.
func (d *Dispatcher) recordEach(ctx context.Context, batch []store.Outcome) []store.Outcome {
	var done []store.Outcome
	for i := range batch {
		one := batch[i : i+1 : i+1] // the store writes back what it applied (a deactivation it made a retry)
		if _, err := d.store.Exchange(ctx, one, 0, 0); err != nil {
			o := one[0]
			d.log.Error("dropping an outcome that cannot be recorded; the delivery is attempted again when its lease ends",
				"delivery", o.DeliveryID, "webhook", o.SubscriptionUID, "outcome", o.Kind.String(), "err", err)
			continue
		}
		done = append(done, one[0])
	}
	return done
}

// worker makes calls for queued rows, one at a time, until Close; each outcome
// waits in pending for the next turn. The workers live as long as the dispatcher,
// so a call does not grow a fresh goroutine's stack every time.
func (d *Dispatcher) worker() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		c, key, ok := d.takeLocked()
		if !ok {
			if d.closed {
				return
			}
			if d.running > d.opts.Workers+d.sched.parked {
				d.running-- // a parked call's worker, no longer needed
				return
			}
			d.idle++
			d.work.Wait()
			d.idle--
			d.waking = max(d.waking-1, 0) // 0 when Close woke them all
			continue
		}
		d.mu.Unlock()
		o, answered := d.deliver(d.callCtx, c)
		d.mu.Lock()
		if d.sched.done(key, o.Duration, answered) {
			d.wakeLocked() // its host may take more calls than the one this worker takes next
		}
		d.pending = append(d.pending, o)
		d.wg.Done()
		select {
		case d.outcomeReady <- struct{}{}:
		default:
		}
	}
}

// takeLocked takes the next queued row that may start now, unless the dispatcher
// is stopping. d.mu must be held.
func (d *Dispatcher) takeLocked() (store.Claimed, string, bool) {
	if d.stopping.Load() {
		return store.Claimed{}, "", false
	}
	return d.sched.take()
}
