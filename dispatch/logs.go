package dispatch

import (
	"net/url"
	"strings"
	"sync"
	"time"

	"hookd/store"
)

// failLogEvery is how often at most a host's retried failures are logged.
const failLogEvery = time.Minute

// failLogKeep and failLogHosts bound what the failure log remembers: a host is
// forgotten an hour after its last line (a count of failures left out since then
// is lost with it), and at most failLogHosts hosts are remembered.
const (
	failLogKeep  = time.Hour
	failLogHosts = 10000
)

// failureLog rate-limits the "delivery failed" lines, so a dead receiver cannot
// flood the journal: a retried failure is logged at most once per failLogEvery per
// host, and so is a delivery that ends dead, counted apart (a receiver down past
// give_up_after makes every delivery to it die, one after another); the next line
// of each says how many were left out meanwhile. A webhook's deactivation (gone,
// deactivated), which comes once per webhook, is always logged; the other calls
// in flight to it that answer alike end dead, and are logged as such.
type failureLog struct {
	mu    sync.Mutex
	hosts *recent[string, int] // per host, and per host for deaths: failures left out since its last line, stamped with that line's time
}

func newFailureLog() *failureLog {
	return &failureLog{hosts: newRecent[string, int](failLogKeep, failLogHosts)}
}

// admit says whether a failure of kind at host may be logged now and, if so, how
// many of the host's failures were left out since its last line.
func (f *failureLog) admit(host string, kind store.OutcomeKind, now time.Time) (suppressed int, ok bool) {
	key := host
	if kind == store.OutcomeDead {
		key = "dead " + host // no host has a space
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	suppressed, last, seen := f.hosts.get(key, now)
	if seen && now.Sub(last) < failLogEvery && (kind == store.OutcomeRetry || kind == store.OutcomeDead) {
		f.hosts.set(key, suppressed+1, last)
		return 0, false
	}
	f.hosts.set(key, 0, now)
	return suppressed, true
}

// logOutcome logs deliveries in dev mode, and failures always, but rate-limited by
// d.failures. URLs are logged without their query, which may carry credentials.
// An outcome that would deactivate its webhook (a 410, failing for disable_after)
// is logged once the store has recorded it (loggedRecorded), which may record it as
// a retry instead: its line says what was done.
func (d *Dispatcher) logOutcome(c store.Claimed, o store.Outcome) {
	switch {
	case o.Kind == store.OutcomeReleased, o.Kind == store.OutcomeDelivered && !d.opts.LogDeliveries:
		return // the common case: nothing to log, so nothing to format
	}
	l := outcomeLine{host: c.Target.Host(), attrs: []any{"delivery", c.ID, "webhook", c.Target.UID, "orcid", c.Subject, "target", redact(c.Target.URL), "attempt", c.Attempt,
		"status", o.Status, "duration", o.Duration.Round(time.Millisecond)}}
	switch o.Kind {
	case store.OutcomeDelivered:
		d.log.Info("delivered", l.attrs...)
	case store.OutcomeGone, store.OutcomeDeactivate:
		d.deferred.put(o.DeliveryID, l)
	default:
		d.logFailure(l, o)
	}
}

// outcomeLine is a delivery's log line before its outcome's words.
type outcomeLine struct {
	host  string
	attrs []any
}

// logFailure logs a failed delivery's line as o says, rate-limited unless every
// delivery is logged.
func (d *Dispatcher) logFailure(l outcomeLine, o store.Outcome) {
	now := d.store.Now()
	attrs := append(l.attrs, "err", o.Error)
	kind := o.Kind
	if (kind == store.OutcomeGone || kind == store.OutcomeDeactivate) && !o.Deactivated {
		// Its webhook was off already (the calls in flight to it when a first one
		// switched it off answer alike) or removed: the delivery is dead, one of the
		// host's failures, not a deactivation of its own.
		kind = store.OutcomeDead
	}
	switch kind {
	case store.OutcomeRetry:
		attrs = append(attrs, "retry_in", o.RetryAt.Sub(now).Round(time.Second))
	case store.OutcomeDead:
		attrs = append(attrs, "state", store.StateDead.String())
	case store.OutcomeGone:
		attrs = append(attrs, "state", "deactivated")
	case store.OutcomeDeactivate:
		attrs = append(attrs, "state", "deactivated", "failing_since", o.FailingSince.UTC().Format(time.RFC3339))
	}
	if !d.opts.LogDeliveries {
		suppressed, ok := d.failures.admit(l.host, kind, now)
		if !ok {
			return
		}
		if suppressed > 0 {
			attrs = append(attrs, "suppressed", suppressed)
		}
	}
	d.log.Warn("delivery failed", attrs...)
}

// logRecorded logs the lines held back until their outcomes were recorded, as the
// store recorded them: a deactivation, or the retry it made of one (the webhook
// moved during the call, or its failures ended during it).
func (d *Dispatcher) logRecorded(batch []store.Outcome) {
	if d.deferred.empty() {
		return // the common case: no line is held back, and no outcome is looked up
	}
	for _, o := range batch {
		if l, ok := d.deferred.take(o.DeliveryID); ok {
			d.logFailure(l, o)
		}
	}
}

// deferredLines holds the lines of outcomes that would deactivate a webhook until
// the store has recorded them, by delivery. A line whose outcome is never recorded
// (the store failed) stays until the bound, when all start over.
type deferredLines struct {
	mu sync.Mutex
	m  map[int64]outcomeLine
}

// deferredMax bounds the lines held back: as many outcomes as a few turns carry.
const deferredMax = 10000

func (f *deferredLines) put(id int64, l outcomeLine) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil || len(f.m) >= deferredMax {
		f.m = map[int64]outcomeLine{}
	}
	f.m[id] = l
}

func (f *deferredLines) empty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m) == 0
}

func (f *deferredLines) take(id int64) (outcomeLine, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.m[id]
	delete(f.m, id)
	return l, ok
}

// redact is a URL as hookd logs it (store.LoggedURL): without its query,
// fragment and user information, or a relay callback's key. An organisation's
// e-mail target, an address (validated when it was set), is written as it is:
// as a URL's path, a domain not in ASCII came out percent-encoded
// (orcid@universit%C3%A4t.example).
func redact(raw string) string {
	if !strings.Contains(raw, "://") && strings.Contains(raw, "@") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return store.LoggedURL(u)
}
