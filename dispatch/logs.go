package dispatch

import (
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"hookd/store"
)

// failLogEvery is how often at most a host's retried failures are logged.
const failLogEvery = time.Minute

// deactLogMax is how many deactivations of webhooks calling one host are logged
// one by one in a minute (failLogEvery); the others of that minute are summed up
// in one line once it ends.
const deactLogMax = 10

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
// deactivated) comes once per webhook, but a receiver that answers 410 for
// thousands of webhooks deactivates them all within seconds: deactivations are
// counted apart too, the first deactLogMax of a host's minute logged one by one
// and the others summed up in one line when the minute ends (summaries). The
// other calls in flight to a deactivated webhook that answer alike end dead, and
// are logged as such.
type failureLog struct {
	mu    sync.Mutex
	hosts *recent[string, hostLines] // per host, and per host for deaths and for deactivations: what was logged and left out since the line that began its minute, stamped with that line's time
	// due holds, by key, the deactivations of a host left out of the log in its
	// minute, to be summed up when that minute ends: apart from hosts, which
	// drops hosts when it holds failLogHosts (many receivers failing at once),
	// so that no count is lost with its host. It holds the hosts with more than
	// deactLogMax deactivations in a minute not yet summed up, each for a minute
	// and a turn of the loop at most.
	due map[string]leftOut
}

// hostLines is what the failure log counts of one host's lines of a kind in a
// minute.
type hostLines struct {
	logged     int // lines logged
	suppressed int // failures left out (a deactivation's: in failureLog.due)
}

// deactivatedFor is a set of the reasons of deactivations: a 410, disable_after.
type deactivatedFor uint8

const (
	deactivatedGone deactivatedFor = 1 << iota
	deactivatedFailing
)

// String names the reasons as the summary line does: "410 Gone", "disable_after".
func (r deactivatedFor) String() string {
	var words []string
	if r&deactivatedGone != 0 {
		words = append(words, "410 Gone")
	}
	if r&deactivatedFailing != 0 {
		words = append(words, "disable_after")
	}
	return strings.Join(words, ", ")
}

// leftOut is the count of a host's failures of a kind left out of the log in the
// minute that began at since: for a deactivation, the sum its summary line says.
type leftOut struct {
	host    string
	since   time.Time
	n       int
	reasons deactivatedFor
}

func newFailureLog() *failureLog {
	return &failureLog{hosts: newRecent[string, hostLines](failLogKeep, failLogHosts), due: map[string]leftOut{}}
}

// deactivationKey is the failure log's key for host's deactivations.
func deactivationKey(host string) string { return "deactivated " + host } // no host has a space

// admit says whether a failure of kind at host may be logged now and, if so, what
// of the host's failures of that kind was left out since its last line: a
// retried or dead one is logged once a minute, a deactivation deactLogMax times a
// minute. The count of a minute's deactivations left out is summed up when that
// minute ends (summaries), or, if it was not yet, by the line admitted next.
func (f *failureLog) admit(host string, kind store.OutcomeKind, now time.Time) (left leftOut, ok bool) {
	key, most := host, 1
	switch kind {
	case store.OutcomeDead:
		key = "dead " + host // no host has a space
	case store.OutcomeGone, store.OutcomeDeactivate:
		key, most = deactivationKey(host), deactLogMax
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, since, seen := f.hosts.get(key, now)
	if seen && now.Sub(since) < failLogEvery {
		if e.logged < most {
			e.logged++
			f.hosts.set(key, e, since)
			return leftOut{}, true
		}
		if most == 1 {
			e.suppressed++
			f.hosts.set(key, e, since)
			return leftOut{}, false
		}
		l, ok := f.due[key]
		if !ok {
			l = leftOut{host: host, since: since}
		}
		l.n++
		switch kind {
		case store.OutcomeGone:
			l.reasons |= deactivatedGone
		case store.OutcomeDeactivate:
			l.reasons |= deactivatedFailing
		}
		f.due[key] = l
		return leftOut{}, false
	}
	f.hosts.set(key, hostLines{logged: 1}, now)
	if most > 1 {
		// A new minute of the host's deactivations: those left out of the one
		// before, if the loop has not summed them up yet (or the host was
		// dropped from hosts meanwhile).
		l := f.due[key]
		delete(f.due, key)
		return l, true
	}
	if !seen {
		return leftOut{}, true
	}
	return leftOut{host: host, since: since, n: e.suppressed}, true
}

// summaries returns, by host, the deactivations left out of the log in a minute
// that has ended by now (all: in every minute, as hookd stops), and forgets them.
func (f *failureLog) summaries(now time.Time, all bool) []leftOut {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.due) == 0 {
		return nil // the common case
	}
	var out []leftOut
	for key, l := range f.due {
		if !all && now.Sub(l.since) < failLogEvery {
			continue
		}
		out = append(out, l)
		delete(f.due, key)
	}
	slices.SortFunc(out, func(a, b leftOut) int { return strings.Compare(a.host, b.host) })
	return out
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
// delivery is logged. A deactivation has a line of its own (logDeactivated).
func (d *Dispatcher) logFailure(l outcomeLine, o store.Outcome) {
	now := d.store.Now()
	attrs := append(l.attrs, "err", o.Error)
	kind := o.Kind
	if kind == store.OutcomeGone || kind == store.OutcomeDeactivate {
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
	}
	if !d.opts.LogDeliveries {
		left, ok := d.failures.admit(l.host, kind, now)
		if !ok {
			return
		}
		if left.n > 0 {
			attrs = append(attrs, "suppressed", left.n)
		}
	}
	d.log.Warn("delivery failed", attrs...)
}

// logRecorded logs the lines held back until their outcomes were recorded, as the
// store recorded them: the retry it made of a deactivation (the webhook moved
// during the call, or its failures ended during it), or a delivery dead because
// its webhook was off already. A deactivation's line is its own, with what to do
// and whether its owner is told (noticeOwners).
func (d *Dispatcher) logRecorded(batch []store.Outcome) {
	if d.deferred.empty() {
		return // the common case: no line is held back, and no outcome is looked up
	}
	for _, o := range batch {
		if o.Deactivated {
			continue
		}
		if l, ok := d.deferred.take(o.DeliveryID); ok {
			d.logFailure(l, o)
		}
	}
}

// deactivationLine is the log line of a webhook's deactivation, before what its
// owner is told.
type deactivationLine struct {
	outcomeLine
	uid  string
	kind store.OutcomeKind
}

// deactivationOf is the line of o's deactivation: its delivery's line held back
// until o was recorded, with its error and, for disable_after, when its failures
// began.
func (d *Dispatcher) deactivationOf(o store.Outcome) deactivationLine {
	l, ok := d.deferred.take(o.DeliveryID)
	if !ok {
		// Its line was dropped with the others held back (deferredMax): what
		// the outcome says.
		l = outcomeLine{attrs: []any{"delivery", o.DeliveryID, "webhook", o.SubscriptionUID, "target", redact(o.Target), "attempt", o.Attempt,
			"status", o.Status, "duration", o.Duration.Round(time.Millisecond)}}
		if u, err := store.ParseTargetURL(o.Target); err == nil {
			l.host = store.HostKey(u)
		}
	}
	l.attrs = append(l.attrs, "err", o.Error, "state", "deactivated")
	if o.Kind == store.OutcomeDeactivate {
		l.attrs = append(l.attrs, "failing_since", o.FailingSince.UTC().Format(time.RFC3339))
	}
	return deactivationLine{outcomeLine: l, uid: o.SubscriptionUID, kind: o.Kind}
}

// logDeactivated logs a webhook's deactivation (l), with what to do and whether
// its owner is told (owner): deactLogMax a minute per host, unless every delivery
// is logged; the others are summed up (logLeftOut). Its line may come after
// other lines (it is written in the background once the owner's address is
// read): the delivery's id and the webhook's tie it to the delivery's own lines.
func (d *Dispatcher) logDeactivated(l deactivationLine, owner string) {
	if !d.opts.LogDeliveries {
		left, ok := d.failures.admit(l.host, l.kind, d.now())
		if left.n > 0 {
			d.logLeftOut(left) // of a minute the loop had not summed up yet
		}
		if !ok {
			return
		}
	}
	d.log.Warn("webhook deactivated: its events are not delivered until it is activated", append(l.attrs, "owner", owner,
		"next", "once its target works: hookd webhooks activate "+l.uid+", then hookd deliveries replay -webhook "+l.uid+
			" -since TIME (a time before the first delivery it missed) sends again what it missed")...)
}

// logSummaries sums up, per host, the deactivations left out of the log in a
// minute that has ended (all: in any minute, as hookd stops).
func (d *Dispatcher) logSummaries(all bool) {
	for _, left := range d.failures.summaries(d.now(), all) {
		d.logLeftOut(left)
	}
}

// logLeftOut is the line that sums up the deactivations of webhooks calling one
// host left out of the log in a minute.
func (d *Dispatcher) logLeftOut(left leftOut) {
	d.log.Warn("more webhooks deactivated: their events are not delivered until each is activated",
		"host", left.host, "more", left.n, "reasons", left.reasons.String(), "since", left.since.UTC().Format(time.RFC3339),
		"list", "hookd webhooks list -status deactivated (or the console's Webhooks page, status deactivated) lists each with its reason")
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
