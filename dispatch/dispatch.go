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
}

// Dispatcher drains the outbox. Run drives it; tests call Tick and Wait instead.
type Dispatcher struct {
	opts   Options
	log    *slog.Logger
	store  *store.Store
	client *http.Client
	lease  time.Duration

	nudge        chan struct{}
	outcomeReady chan struct{}

	mu       sync.Mutex
	inFlight int
	hosts    map[string]int
	pending  []store.Outcome // outcomes not yet written
	failLog  map[string]*failLogState

	wg          sync.WaitGroup
	callCtx     context.Context // parent of every HTTP call; cancelled after the shutdown grace
	cancelCalls context.CancelFunc
	stopping    atomic.Bool
	lastTick    atomic.Int64
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
		opts:         opts,
		log:          opts.Logger,
		store:        opts.Store,
		lease:        2*opts.Timeout + 30*time.Second,
		nudge:        make(chan struct{}, 1),
		outcomeReady: make(chan struct{}, 1),
		hosts:        map[string]int{},
		failLog:      map[string]*failLogState{},
	}
	d.callCtx, d.cancelCalls = context.WithCancel(context.Background())
	d.client = newHTTPClient(opts)
	return d
}

// newHTTPClient is the one client of every delivery: keep-alive, a per-host
// connection cap, no redirects, no proxies from the environment, and the SSRF
// guard on every resolved address at dial time.
func newHTTPClient(opts Options) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !opts.AllowPrivateTargets {
		dialer.Control = ssrf.Control
	}
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

// Ready reports an error when the loop has not ticked for a while (for /readyz).
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
	for {
		if _, err := d.Tick(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("dispatch tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return d.shutdown(ctx)
		case <-ticker.C:
		case <-d.nudge:
		case <-d.outcomeReady:
		}
	}
}

// shutdown stops claiming, waits for in-flight calls up to the grace period, then
// cancels the rest (their deliveries are released, not counted as attempts), and
// records every outcome.
func (d *Dispatcher) shutdown(ctx context.Context) error {
	d.stopping.Store(true)
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
	return d.flush(wctx)
}

// Wait blocks until every started delivery has finished and its outcome is recorded.
func (d *Dispatcher) Wait(ctx context.Context) error {
	d.wg.Wait()
	return d.flush(ctx)
}

// Close releases the HTTP client's idle connections.
func (d *Dispatcher) Close() {
	d.cancelCalls()
	d.client.CloseIdleConnections()
}

// flush writes the outcomes gathered so far in one transaction.
func (d *Dispatcher) flush(ctx context.Context) error {
	d.mu.Lock()
	batch := d.pending
	d.pending = nil
	d.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := d.store.RecordOutcomes(ctx, batch); err != nil {
		// Keep them for the next flush: the leases protect the rows meanwhile.
		d.mu.Lock()
		d.pending = append(batch, d.pending...)
		d.mu.Unlock()
		return err
	}
	return nil
}

// Tick records finished outcomes, then claims as many due deliveries as there are
// free workers and starts them. It returns how many calls it started.
func (d *Dispatcher) Tick(ctx context.Context) (int, error) {
	d.lastTick.Store(time.Now().UnixMilli())
	if err := d.flush(ctx); err != nil {
		return 0, err
	}
	if d.stopping.Load() {
		return 0, nil
	}
	d.mu.Lock()
	free := d.opts.Workers - d.inFlight
	d.mu.Unlock()
	if free <= 0 {
		return 0, nil
	}
	claimed, err := d.store.Claim(ctx, free, d.lease)
	if err != nil {
		return 0, err
	}
	started := 0
	now := d.store.Now()
	d.mu.Lock()
	for _, c := range claimed {
		host := hostKey(c.Target.URL)
		if d.hosts[host] >= d.opts.PerHost {
			// The host is saturated: hand the row back untouched, behind the others,
			// so a slow receiver cannot hold workers that other hosts could use.
			d.pending = append(d.pending, store.Outcome{
				DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeReleased,
				RetryAt: now.Add(d.opts.Tick),
			})
			continue
		}
		d.hosts[host]++
		d.inFlight++
		d.wg.Add(1)
		started++
		go d.work(c, host)
	}
	d.mu.Unlock()
	return started, nil
}

func hostKey(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}

// work makes one call and queues its outcome for the next flush.
func (d *Dispatcher) work(c store.Claimed, host string) {
	defer d.wg.Done()
	o := d.deliver(d.callCtx, c)
	d.mu.Lock()
	d.hosts[host]--
	if d.hosts[host] == 0 {
		delete(d.hosts, host)
	}
	d.inFlight--
	d.pending = append(d.pending, o)
	d.mu.Unlock()
	select {
	case d.outcomeReady <- struct{}{}:
	default:
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
		case now.Sub(failing) >= d.opts.DisableAfter:
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
	target := redact(c.Target.URL)
	attrs := []any{"delivery", c.ID, "orcid", c.Subject, "target", target, "attempt", c.Attempt,
		"status", o.Status, "duration", o.Duration.Round(time.Millisecond)}
	switch o.Kind {
	case store.OutcomeDelivered:
		if d.opts.LogDeliveries {
			d.log.Info("delivered", attrs...)
		}
		return
	case store.OutcomeReleased:
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
		host := hostKey(c.Target.URL)
		d.mu.Lock()
		st := d.failLog[host]
		if st == nil {
			st = &failLogState{}
			d.failLog[host] = st
		}
		if time.Since(st.last) < time.Minute && o.Kind == store.OutcomeRetry {
			st.suppressed++
			d.mu.Unlock()
			return
		}
		if st.suppressed > 0 {
			attrs = append(attrs, "suppressed", st.suppressed)
		}
		st.last, st.suppressed = time.Now(), 0
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
