// Package dispatch drains the outbox: it claims due deliveries, calls their targets
// with bounded concurrency (globally and per host), and records the outcomes in batches.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"hookd/ssrf"
	"hookd/store"
)

// Options configures a Dispatcher; zero durations and counts take the defaults of
// SPEC.md's [delivery] section.
type Options struct {
	Logger              *slog.Logger
	Store               *store.Store
	Tick                time.Duration
	Timeout             time.Duration
	RetryBase           time.Duration
	RetryMaxDelay       time.Duration
	GiveUpAfter         time.Duration
	DisableAfter        time.Duration
	Workers             int
	PerHost             int
	AllowPrivateTargets bool
	// UserAgent is sent with every call, e.g. "hookd/1.0.0".
	UserAgent string
	// LogDeliveries logs every outcome at info level (hookd dev); otherwise only
	// failures are logged, at most once a minute per host.
	LogDeliveries bool
	// ShutdownGrace bounds how long Run waits for in-flight calls when stopping
	// (default: Timeout, at most 10s); calls still running then are cancelled and
	// their deliveries released for a later attempt.
	ShutdownGrace time.Duration
	// Rand returns a number in [0, 1) for jitter; tests pin it.
	Rand func() float64
	// Retention is how long delivered rows are kept (default 168h).
	Retention time.Duration
	// Hub configures e-mail and upstream registration (ORCID Hub deliveries).
	Hub HubOptions
	// Observer, when set, is told every outcome (for metrics).
	Observer Observer
}

// Observer is told what became of each claimed delivery.
type Observer interface {
	Outcome(outcome string, attempt time.Duration)
}

// outcomeNames are the Observer's words for store outcome kinds.
var outcomeNames = map[int]string{
	store.OutcomeDelivered: "delivered", store.OutcomeRetry: "retry", store.OutcomeDead: "dead",
	store.OutcomeGone: "gone", store.OutcomeReleased: "released", store.OutcomeDeactivate: "deactivated",
}

// Dispatcher drains the outbox. Run drives it; tests call Tick and Wait instead.
type Dispatcher struct {
	opts     Options
	log      *slog.Logger
	store    *store.Store
	client   *http.Client
	tokens   *tokenCache
	hubState *hubState
	lease    time.Duration

	nudge        chan struct{}
	outcomeReady chan struct{}

	mu       sync.Mutex
	inFlight int                      // calls running
	queued   int                      // claimed rows waiting for a worker
	hosts    map[string]*hostState    // per target host
	speed    map[string]time.Duration // per target host: average call duration
	ready    []string                 // hosts with queued rows, in arrival order
	pending  []store.Outcome          // outcomes not yet written
	failLog  map[string]*failLogState
	work     *sync.Cond // on mu: wakes the workers when rows are queued, or at Close
	workers  sync.Once  // starts them, at the first turn
	closed   bool       // the workers end

	wg          sync.WaitGroup
	notices     sync.WaitGroup      // owner notices being sent
	noticed     map[int64]time.Time // when each subscription\'s owner was last told (d.mu)
	callCtx     context.Context     // parent of every HTTP call; cancelled after the shutdown grace
	cancelCalls context.CancelFunc
	stopping    atomic.Bool
	lastTick    atomic.Int64
	failedTurns int // turns in a row whose transaction failed (the loop's own)
}

// New returns a Dispatcher.
func New(opts Options) *Dispatcher {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Tick, time.Second)
	def(&opts.Timeout, 20*time.Second)
	def(&opts.RetryBase, time.Minute)
	def(&opts.RetryMaxDelay, 2*time.Hour)
	def(&opts.GiveUpAfter, 72*time.Hour)
	def(&opts.DisableAfter, 120*time.Hour)
	def(&opts.Retention, 168*time.Hour)
	def(&opts.ShutdownGrace, min(opts.Timeout, 10*time.Second))
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.PerHost <= 0 {
		opts.PerHost = 8
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "hookd"
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		opts:  opts,
		log:   opts.Logger,
		store: opts.Store,
		// A claimed row may wait in its host's queue for queueDepth calls' time before
		// its own call; the lease outlasts that, so only crashed work is ever reclaimed.
		lease:        (queueDepth+1)*opts.Timeout + 30*time.Second,
		nudge:        make(chan struct{}, 1),
		outcomeReady: make(chan struct{}, 1),
		hosts:        map[string]*hostState{},
		speed:        map[string]time.Duration{},
		failLog:      map[string]*failLogState{},
	}
	d.work = sync.NewCond(&d.mu)
	d.callCtx, d.cancelCalls = context.WithCancel(context.Background())
	d.client = newHTTPClient(opts)
	d.tokens = &tokenCache{client: d.client}
	d.ConfigureHub(opts.Hub)
	return d
}

// newHTTPClient is the one client of every delivery: keep-alive, a per-host
// connection cap, no redirects, no proxies from the environment, and the SSRF
// guard on every resolved address at dial time.
func newHTTPClient(opts Options) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
		Control: ssrf.ControlFor(opts.AllowPrivateTargets)}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          opts.Workers,
		MaxIdleConnsPerHost:   opts.PerHost,
		MaxConnsPerHost:       opts.PerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: opts.Timeout,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Nudge wakes Run at once, e.g. after intake committed new events.
func (d *Dispatcher) Nudge() {
	select {
	case d.nudge <- struct{}{}:
	default:
	}
}

// Ready reports an error when the loop has not completed a turn for a while (for
// /readyz and the systemd watchdog).
func (d *Dispatcher) Ready(context.Context) error {
	last := d.lastTick.Load()
	if last == 0 {
		return errors.New("dispatcher has not started")
	}
	if age := time.Since(time.UnixMilli(last)); age > 3*d.opts.Tick+d.opts.Timeout {
		return fmt.Errorf("dispatcher last ticked %s ago", age.Round(time.Millisecond))
	}
	return nil
}

// Run drives the dispatcher until ctx ends: a tick on every timer beat, nudge, or
// finished call. On return, in-flight calls have finished (or been cancelled after
// the grace period) and every outcome is recorded.
func (d *Dispatcher) Run(ctx context.Context) error {
	ticker := time.NewTicker(d.opts.Tick)
	defer ticker.Stop()
	go d.retention(ctx)
	for {
		if _, err := d.Tick(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("dispatch tick", "err", err)
		}
	wait:
		select {
		case <-ctx.Done():
			return d.shutdown(ctx)
		case <-ticker.C:
		case <-d.nudge:
		case <-d.outcomeReady:
			if !d.turnDue() {
				goto wait
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
	return d.queued < d.capacity()/2 || len(d.pending) >= d.capacity()/4
}

// shutdown stops claiming, waits for in-flight calls up to the grace period, then
// cancels the rest (their deliveries are released, not counted as attempts), and
// records every outcome.
func (d *Dispatcher) shutdown(ctx context.Context) error {
	d.stopping.Store(true)
	d.mu.Lock()
	d.releaseQueuedLocked()
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.opts.ShutdownGrace):
		d.log.Warn("cancelling in-flight deliveries at shutdown", "grace", d.opts.ShutdownGrace)
		d.cancelCalls()
		<-done
	}
	d.cancelCalls()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := d.flush(wctx)
	d.notices.Wait() // each is bounded by the delivery timeout
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
		d.mu.Lock()
		d.pending = append(batch, d.pending...)
		d.mu.Unlock()
		return err
	}
	d.noticeOwners(batch)
	return nil
}

// hostState is one target host's share of the dispatcher.
type hostState struct {
	inFlight int
	queue    []store.Claimed
	progress time.Time // when a call to it last finished, or its first call started
}

// stallAfter is how long a host with calls running may go without finishing one
// before its queue is cut back to hostQueueMax.
const stallAfter = time.Second

// hostRoom is how many rows a host may have queued: hostQueueMax, or, for a host
// whose calls are quick, as many as it finishes in about a second (so a backlog for
// one or a few fast hosts fills the whole capacity instead of being claimed and
// handed back turn after turn). A host that has stalled gets hostQueueMax again.
// d.mu must be held.
func (d *Dispatcher) hostRoom(key string, h *hostState, now time.Time) int {
	floor := d.hostQueueMax()
	speed := d.speed[key]
	if speed <= 0 || (h.inFlight > 0 && now.Sub(h.progress) > stallAfter) {
		return floor
	}
	return min(max(floor, int(time.Second/speed)*d.opts.PerHost), d.capacity())
}

// splitAfter is how many turns in a row may fail before their outcomes are recorded
// one at a time.
const splitAfter = 3

// recordEach records outcomes one transaction each, logs and drops those that fail,
// and returns those recorded.
func (d *Dispatcher) recordEach(ctx context.Context, batch []store.Outcome) []store.Outcome {
	var done []store.Outcome
	for _, o := range batch {
		if _, err := d.store.Exchange(ctx, []store.Outcome{o}, 0, 0); err != nil {
			d.log.Error("dropping an outcome that cannot be recorded; the delivery is attempted again when its lease ends",
				"delivery", o.DeliveryID, "subscription", o.SubscriptionID, "outcome", outcomeNames[o.Kind], "err", err)
			continue
		}
		done = append(done, o)
	}
	return done
}

// trimLocked hands back, a tick later, what a host holds queued beyond its room: a
// host that has stalled keeps no more than hostQueueMax, so no queued row outlives
// its lease. d.mu must be held.
func (d *Dispatcher) trimLocked(now, wall time.Time) {
	for key, h := range d.hosts {
		for room := d.hostRoom(key, h, wall); len(h.queue) > room; {
			c := h.queue[len(h.queue)-1]
			h.queue = h.queue[:len(h.queue)-1]
			d.pending = append(d.pending, store.Outcome{
				DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeReleased,
				RetryAt: now.Add(d.opts.Tick),
			})
			d.queued--
			d.wg.Done()
		}
	}
}

// noteCall updates a host's average call duration. d.mu must be held.
func (d *Dispatcher) noteCall(key string, took time.Duration) {
	if len(d.speed) >= 10000 {
		d.speed = map[string]time.Duration{} // bounded: forget and learn again
	}
	if old, ok := d.speed[key]; ok {
		took = (7*old + took) / 8
	}
	d.speed[key] = max(took, time.Microsecond)
}

// releaseDelay is how long a row handed back by a saturated host waits before it is
// due again.
const releaseDelay = 100 * time.Millisecond

// queueDepth is how many calls' worth of rows the dispatcher keeps claimed per
// worker (and per host connection). A turn (one transaction) takes ~50 µs per row,
// so at 4 the workers ran dry during every turn of a backlog drain; at 8 they
// do not (BENCHMARKS.md).
const queueDepth = 8

// capacity is how many rows the dispatcher holds at once (running and queued): more
// than the workers, so the next batch is ready while the loop writes outcomes.
func (d *Dispatcher) capacity() int { return queueDepth * d.opts.Workers }

// hostQueueMax bounds the rows one host may have waiting: a slow receiver keeps at
// most this many claimed, and the rest of the capacity serves other hosts.
func (d *Dispatcher) hostQueueMax() int { return queueDepth * d.opts.PerHost }

// Tick is one turn of the loop: in one transaction it records the outcomes of
// finished calls and claims due deliveries up to the free capacity; then it queues
// them by host and starts as many as the worker and per-host limits allow. It
// returns how many rows it claimed.
func (d *Dispatcher) Tick(ctx context.Context) (int, error) {
	d.mu.Lock()
	d.trimLocked(d.store.Now(), time.Now())
	batch := d.pending
	d.pending = nil
	free := d.capacity() - d.inFlight - d.queued
	d.mu.Unlock()
	if d.stopping.Load() {
		free = 0
	}
	if free <= 0 && len(batch) == 0 {
		d.lastTick.Store(time.Now().UnixMilli())
		return 0, nil
	}
	d.workers.Do(func() {
		for range d.opts.Workers {
			go d.worker()
		}
	})
	claimed, err := d.store.Exchange(ctx, batch, free, d.lease)
	if err == nil {
		// Readiness (and the systemd watchdog) follow successful turns only, so a
		// loop that cannot write is reported, not hidden.
		d.lastTick.Store(time.Now().UnixMilli())
	}
	if err != nil {
		d.failedTurns++
		if d.failedTurns >= splitAfter && len(batch) > 0 {
			// The same outcomes keep failing: one of them may be what fails. Record
			// them one at a time and drop those that still fail, so one bad outcome
			// cannot stop the loop; a dropped one's row is attempted again when its
			// lease ends (at least once, as after a crash).
			d.failedTurns = 0
			d.noticeOwners(d.recordEach(ctx, batch))
			return 0, err
		}
		// Keep the outcomes for the next turn: the leases protect their rows meanwhile.
		d.mu.Lock()
		d.pending = append(batch, d.pending...)
		d.mu.Unlock()
		return 0, err
	}
	d.failedTurns = 0
	d.noticeOwners(batch)
	if len(claimed) == 0 {
		return 0, nil
	}
	now, wall := d.store.Now(), time.Now()
	d.mu.Lock()
	// Each host's room, and whether it is slow (it still had half its room queued
	// from earlier turns, not just briefly ahead of the others), as the turn began.
	type hostTurn struct {
		room int
		slow bool
	}
	turn := map[string]hostTurn{}
	for _, c := range claimed {
		key := c.Target.Host()
		h := d.hosts[key]
		if h == nil {
			h = &hostState{}
			d.hosts[key] = h
		}
		ht, seen := turn[key]
		if !seen {
			ht.room = d.hostRoom(key, h, wall)
			ht.slow = len(h.queue) >= ht.room/2
			turn[key] = ht
		}
		if len(h.queue) >= ht.room {
			// The host is saturated: hand the row back untouched, behind the others,
			// so a slow receiver cannot take capacity that other hosts could use. A
			// host that only filled up in this turn gets it back shortly, so a brief
			// imbalance leaves no tail of late deliveries; a slow one's wait a tick,
			// so a dead host does not churn the outbox.
			delay := min(d.opts.Tick, releaseDelay)
			if ht.slow {
				delay = d.opts.Tick
			}
			d.pending = append(d.pending, store.Outcome{
				DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeReleased,
				RetryAt: now.Add(delay),
			})
			continue
		}
		if len(h.queue) == 0 {
			d.ready = append(d.ready, key)
		}
		h.queue = append(h.queue, c)
		d.queued++
		d.wg.Add(1)
	}
	d.startLocked()
	d.mu.Unlock()
	return len(claimed), nil
}

// startLocked wakes the workers for the rows just queued. d.mu must be held.
func (d *Dispatcher) startLocked() {
	if d.queued > 0 {
		d.work.Broadcast()
	}
}

// takeLocked takes the next queued row that may start now, counting it in flight.
// d.mu must be held.
func (d *Dispatcher) takeLocked() (store.Claimed, string, bool) {
	if d.stopping.Load() {
		return store.Claimed{}, "", false
	}
	for i := 0; i < len(d.ready) && d.inFlight < d.opts.Workers; i++ {
		key := d.ready[i]
		h := d.hosts[key]
		if h.inFlight >= d.opts.PerHost {
			continue
		}
		c := h.queue[0]
		h.queue = h.queue[1:]
		// The host goes to the back of the line (or leaves it when it has nothing
		// left), so hosts take turns: a host whose calls hang cannot keep the workers
		// from the others' rows until those outlive their lease.
		d.ready = append(d.ready[:i], d.ready[i+1:]...)
		if len(h.queue) == 0 {
			h.queue = nil
		} else {
			d.ready = append(d.ready, key)
		}
		if h.inFlight == 0 {
			h.progress = time.Now()
		}
		h.inFlight++
		d.inFlight++
		d.queued--
		return c, key, true
	}
	return store.Claimed{}, "", false
}

// releaseQueuedLocked hands every queued row back to pending (at shutdown). d.mu must be held.
func (d *Dispatcher) releaseQueuedLocked() {
	now := d.store.Now()
	for _, key := range d.ready {
		h := d.hosts[key]
		for _, c := range h.queue {
			d.pending = append(d.pending, store.Outcome{
				DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeReleased, RetryAt: now,
			})
			d.queued--
			d.wg.Done()
		}
		h.queue = nil
	}
	d.ready = nil
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
			d.work.Wait()
			continue
		}
		d.mu.Unlock()
		o := d.deliver(d.callCtx, c)
		if d.opts.Observer != nil {
			d.opts.Observer.Outcome(outcomeNames[o.Kind], o.Duration)
		}
		d.mu.Lock()
		h := d.hosts[key]
		h.progress = time.Now()
		d.noteCall(key, o.Duration)
		h.inFlight--
		if h.inFlight == 0 && len(h.queue) == 0 {
			delete(d.hosts, key)
		}
		d.inFlight--
		d.pending = append(d.pending, o)
		d.wg.Done()
		select {
		case d.outcomeReady <- struct{}{}:
		default:
		}
	}
}

// outcome turns the result of a call into what happens to the delivery next.
func (d *Dispatcher) outcome(c store.Claimed, r result) store.Outcome {
	o := store.Outcome{
		DeliveryID:     c.ID,
		SubscriptionID: c.Target.SubscriptionID,
		Attempt:        c.Attempt,
		StartedAt:      r.started,
		Duration:       r.duration,
		Status:         r.status,
		Error:          r.err,
		Response:       r.body,
		WasFailing:     !c.Target.FailingSince.IsZero(),
	}
	now := d.store.Now()
	switch {
	case r.cancelled:
		o.Kind, o.RetryAt = store.OutcomeReleased, now
	case r.status >= 200 && r.status < 300:
		o.Kind = store.OutcomeDelivered
	case r.status == http.StatusGone:
		o.Kind = store.OutcomeGone
		o.Error = "410 Gone: the target asked to be removed; subscription deactivated"
	default:
		if o.Error == "" {
			o.Error = fmt.Sprintf("HTTP %d", r.status)
		}
		first := c.FirstAttempt
		if first.IsZero() {
			first = r.started
		}
		failing := c.Target.FailingSince
		if failing.IsZero() {
			failing = r.started
		}
		switch {
		case now.Sub(failing) >= d.opts.DisableAfter && c.Target.Format != store.FormatUpstream:
			// (hookd's own upstream registrations are never switched off: they retry.)
			o.Kind = store.OutcomeDeactivate
			o.Error = failing.UTC().Format(time.RFC3339) + " (last: " + o.Error + ")"
		case now.Sub(first) >= d.opts.GiveUpAfter:
			o.Kind = store.OutcomeDead
			o.Error = fmt.Sprintf("gave up after %s: %s", d.opts.GiveUpAfter, o.Error)
		default:
			o.Kind = store.OutcomeRetry
			delay := Backoff(c.Attempt, d.opts.RetryBase, d.opts.RetryMaxDelay, d.opts.Rand())
			if r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable {
				if ra, ok := retryAfter(r.retryAfter, now); ok {
					delay = ra
				}
			}
			o.RetryAt = now.Add(delay)
		}
	}
	d.logOutcome(c, o)
	return o
}

type failLogState struct {
	last       time.Time
	suppressed int
}

// logOutcome logs deliveries in dev mode, and failures always, but at most one line
// a minute per host, so a dead receiver cannot flood the journal. URLs are logged
// without their query, which may carry credentials.
func (d *Dispatcher) logOutcome(c store.Claimed, o store.Outcome) {
	switch {
	case o.Kind == store.OutcomeReleased, o.Kind == store.OutcomeDelivered && !d.opts.LogDeliveries:
		return // the common case: nothing to log, so nothing to format
	}
	attrs := []any{"delivery", c.ID, "orcid", c.Subject, "target", redact(c.Target.URL), "attempt", c.Attempt,
		"status", o.Status, "duration", o.Duration.Round(time.Millisecond)}
	if o.Kind == store.OutcomeDelivered {
		d.log.Info("delivered", attrs...)
		return
	}
	attrs = append(attrs, "err", o.Error)
	switch o.Kind {
	case store.OutcomeRetry:
		attrs = append(attrs, "retry_in", o.RetryAt.Sub(d.store.Now()).Round(time.Second))
	case store.OutcomeDead:
		attrs = append(attrs, "state", "dead")
	case store.OutcomeGone, store.OutcomeDeactivate:
		attrs = append(attrs, "subscription", c.Target.UID, "state", "deactivated")
	}
	if !d.opts.LogDeliveries {
		host := c.Target.Host()
		d.mu.Lock()
		st := d.failLog[host]
		if st == nil {
			st = &failLogState{}
			d.failLog[host] = st
		}
		if now := d.store.Now(); now.Sub(st.last) < time.Minute && o.Kind == store.OutcomeRetry {
			st.suppressed++
			d.mu.Unlock()
			return
		}
		if st.suppressed > 0 {
			attrs = append(attrs, "suppressed", st.suppressed)
		}
		st.last, st.suppressed = d.store.Now(), 0
		d.mu.Unlock()
	}
	d.log.Warn("delivery failed", attrs...)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}
