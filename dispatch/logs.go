package dispatch

import (
	"net/url"
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
// deactivated), which comes once per webhook, is always logged.
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
func (d *Dispatcher) logOutcome(c store.Claimed, o store.Outcome) {
	switch {
	case o.Kind == store.OutcomeReleased, o.Kind == store.OutcomeDelivered && !d.opts.LogDeliveries:
		return // the common case: nothing to log, so nothing to format
	}
	attrs := []any{"delivery", c.ID, "webhook", c.Target.UID, "orcid", c.Subject, "target", redact(c.Target.URL), "attempt", c.Attempt,
		"status", o.Status, "duration", o.Duration.Round(time.Millisecond)}
	if o.Kind == store.OutcomeDelivered {
		d.log.Info("delivered", attrs...)
		return
	}
	now := d.store.Now()
	attrs = append(attrs, "err", o.Error)
	switch o.Kind {
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
		suppressed, ok := d.failures.admit(c.Target.Host(), o.Kind, now)
		if !ok {
			return
		}
		if suppressed > 0 {
			attrs = append(attrs, "suppressed", suppressed)
		}
	}
	d.log.Warn("delivery failed", attrs...)
}

// redact is a URL without its query, fragment and user information, for logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}
