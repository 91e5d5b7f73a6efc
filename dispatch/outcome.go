package dispatch

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"hookd/store"
)

// policy decides what the result of a call becomes: delivered on a 2xx; gone on a
// 410 (its subscription is deactivated); otherwise a failure that deactivates its
// subscription once it has been failing for disableAfter (unless the receiver said
// when to come back: a 429 or 503 with a Retry-After; an organisation's e-mail
// only once its address has been refused for good for disableAfter, counted from
// the first refusal), is dead at once when an
// SMTP server refused it for good (a 5xx to the message or its recipient), is
// dead once giveUpAfter has passed since the delivery's first attempt, or when the receiver's
// Retry-After asks to wait past that (but for an upstream registration's, which
// retries on), and else is retried after a backoff or the receiver's Retry-After. A call cut short by shutdown is released,
// not counted. It decides from the claim, the result and now alone.
type policy struct {
	retryBase     time.Duration
	retryMaxDelay time.Duration
	giveUpAfter   time.Duration
	disableAfter  time.Duration
	rand          func() float64 // in [0, 1), for the backoff's jitter
}

// outcome is what becomes of delivery c after a call that came to r.
func (p policy) outcome(c store.Claimed, r result, now time.Time) store.Outcome {
	o := store.Outcome{
		DeliveryID:      c.ID,
		SubscriptionID:  c.Target.SubscriptionID,
		SubscriptionUID: c.Target.UID,
		Attempt:         c.Attempt,
		StartedAt:       r.started,
		Duration:        r.duration,
		Status:          r.status,
		Error:           r.err,
		Response:        r.body,
		WasFailing:      !c.Target.FailingSince.IsZero(),
	}
	switch {
	case r.cancelled:
		o.Kind, o.RetryAt, o.Sent = store.OutcomeReleased, now, r.sending // cut after it went out: the receiver may have had it
	case r.status >= 200 && r.status < 300:
		o.Kind = store.OutcomeDelivered
	case r.status == http.StatusGone:
		o.Kind = store.OutcomeGone
		o.Error = "410 Gone: the target asked to be removed" // the store adds whether that switched its webhook off
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
		if c.Target.Format == store.FormatEmail {
			// An organisation's e-mail counts disable_after from the first refusal
			// of its address in the run, not from a fault of the relay before it: a
			// relay down for days, back to refuse the address once, would switch
			// it off at once. A fault of the relay between refusals does not end
			// them, a success does (it ends the run).
			failing = c.Target.RefusedSince
			if failing.IsZero() || c.Target.FailingSince.IsZero() {
				failing = r.started
			}
		}
		// A receiver that answers 429 or 503 with a Retry-After hookd can read is up
		// and says when to come back: it is waited for, not switched off. A token
		// endpoint's is waited for too, but the receiver was never reached: it
		// counts toward disable_after as any failure.
		var asked time.Duration
		var askedUntil time.Time // as asked, past maxRetryAfter too
		askedOK := false
		if r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable || r.tokenAsked {
			var until time.Time
			if until, askedOK = retryAfterAsked(r.retryAfter, now); askedOK {
				asked = boundRetryAfter(until, now)
				askedUntil = now.Add(asked)
				if until.After(askedUntil) {
					askedUntil = until // past maxRetryAfter
				}
			}
		}
		switch {
		case now.Sub(failing) >= p.disableAfter && (!askedOK || r.tokenAsked) && c.Target.Format != store.FormatUpstream &&
			(c.Target.Format != store.FormatEmail || r.refused):
			// hookd's own upstream registrations are never switched off: they retry.
			// Nor is an organisation's e-mail for a fault of the SMTP relay (it is
			// down, its certificate or hookd's password is wrong), which would switch
			// off every organisation's at once: only when the relay refuses its
			// address for good. Its deliveries retry until give_up_after, and stay
			// replayable.
			o.Kind, o.FailingSince, o.Refused = store.OutcomeDeactivate, failing, r.refused
			// When to try again should the run have ended during the call (a
			// success or a replay meanwhile): the store then retries it instead.
			o.RetryAt = now.Add(Backoff(c.Try, p.retryBase, p.retryMaxDelay, p.rand()))
		case r.forGood:
			// An SMTP server's permanent answer (a 5xx) to the message or its
			// recipient, or ORCID's refusal to unregister another client's
			// webhook (9014): the same call gets the same answer. It ends here,
			// quoting the answer; a replay sends it again once that is mended.
			o.Kind = store.OutcomeDead
			o.Error = "refused for good, not retried: " + o.Error
			o.Refused = r.refused
			if r.refused {
				// Its address refused: the run of failures that switches the
				// organisation's e-mail off holds as the retries until
				// give_up_after held it, so the next e-mail's refusal, a day
				// later, continues it.
				o.RunDue = first.Add(p.giveUpAfter)
			}
		case now.Sub(first) >= p.giveUpAfter && c.Target.Format != store.FormatUpstream:
			// hookd's own upstream registrations never give up either: a record
			// left unregistered after a long outage of the upstream would miss its
			// updates until someone replayed it. They retry every retry_max_delay.
			o.Kind = store.OutcomeDead
			o.Error = fmt.Sprintf("gave up after %s: %s", p.giveUpAfter, o.Error)
		case askedOK && askedUntil.After(first.Add(p.giveUpAfter)) && c.Target.Format != store.FormatUpstream:
			// The receiver (or its token endpoint) asks not to be called again before
			// give_up_after has passed: calling it sooner goes against its word, and
			// waiting keeps the delivery past give_up_after. It ends here, saying
			// why; a replay sends it again.
			who := "its"
			if r.tokenAsked {
				who = "the token endpoint's"
			}
			o.Kind = store.OutcomeDead
			o.Error = fmt.Sprintf("gave up: %s Retry-After asks to wait until %s, past give_up_after (%s since the first attempt, %s): %s",
				who, askedUntil.UTC().Format(time.RFC3339), p.giveUpAfter, first.Add(p.giveUpAfter).UTC().Format(time.RFC3339), o.Error)
		default:
			o.Kind = store.OutcomeRetry
			delay := Backoff(c.Try, p.retryBase, p.retryMaxDelay, p.rand())
			switch {
			case askedOK:
				delay = asked
			case (r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable || r.tokenAsked) && r.retryAfter != "":
				o.Error += fmt.Sprintf(" (its Retry-After %q is neither seconds nor an HTTP date: backing off instead)", r.retryAfterQuoted())
			}
			o.RetryAt = now.Add(delay)
		}
	}
	if o.Kind != store.OutcomeDelivered && o.Kind != store.OutcomeReleased {
		o.Target = c.Target.CalledURL(c.Subject) // the attempt log's: the webhook's URL may change
		// A failure more than retry_max_delay after the latest retry the run of
		// failures planned (the longest backoff; a Retry-After is planned as asked)
		// comes after a silence: it begins a new run.
		o.RunGap = p.retryMaxDelay
	}
	return o
}

// Backoff is the delay before retry number attempt (1 after the first failure):
// base doubled per attempt, scaled by a jitter factor in [0.5, 1.5) from r in [0, 1),
// and capped at max.
func Backoff(attempt int, base, max time.Duration, r float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := base
	for i := 1; i < attempt && d < max && d <= math.MaxInt64/2; i++ { // doubling past that would wrap negative
		d *= 2
	}
	if d > max {
		d = max
	}
	if f := float64(d) * (0.5 + r); f >= float64(max) { // compared as floats: a product past MaxInt64 would wrap
		d = max
	} else {
		d = time.Duration(f)
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// maxRetryAfter bounds how long a receiver's Retry-After may postpone a delivery,
// minRetryAfter how soon it may bring the retry: a receiver that answers
// "Retry-After: 0" (or a date gone by) every time is not called in a tight loop.
const (
	maxRetryAfter = 24 * time.Hour
	minRetryAfter = time.Second
)

// retryAfterRead bounds how far ahead retryAfterAsked reads a count of seconds,
// which a Duration past about 292 years would overflow.
const retryAfterRead = 100 * 365 * 24 * time.Hour

// retryAfterAsked reads a Retry-After header (seconds or an HTTP date) as the time
// it asks hookd to wait until, as asked: past maxRetryAfter too. Whether the
// receiver asks to wait past a delivery's give_up_after is decided on it, not on
// the longest wait hookd keeps: a receiver that asks for a week is not called
// against its word after a day. ok is false when it is absent or does not parse.
func retryAfterAsked(h string, now time.Time) (time.Time, bool) {
	if h == "" {
		return time.Time{}, false
	}
	if secs, err := strconv.ParseUint(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// Bounded before it becomes a Duration, which a large count of seconds
		// overflows. Past uint64, ParseUint gives its largest value.
		return now.Add(time.Duration(min(secs, uint64(retryAfterRead/time.Second))) * time.Second), true
	}
	return httpDate(h)
}

// httpDate reads an HTTP date (RFC 9110 §5.6.7): the preferred form, or one of the
// two obsolete ones, in GMT. Read here rather than with http.ParseTime, which takes
// any zone's name ("PST" as UTC, "GMT" as the local zone's summer time in
// London), so a date moved by a zone's offset is refused rather than read wrong.
func httpDate(h string) (time.Time, bool) {
	for _, layout := range []string{"Mon, 02 Jan 2006 15:04:05 GMT", "Monday, 02-Jan-06 15:04:05 GMT", time.ANSIC} {
		if t, err := time.Parse(layout, h); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// retryAfter reads a Retry-After header (seconds or an HTTP date) relative to now,
// bounded to [minRetryAfter, maxRetryAfter]; ok is false when it is absent or does
// not parse.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	until, ok := retryAfterAsked(h, now)
	if !ok {
		return 0, false
	}
	return boundRetryAfter(until, now), true
}

// boundRetryAfter is the wait until a Retry-After's time, from now, within
// minRetryAfter and maxRetryAfter.
func boundRetryAfter(until, now time.Time) time.Duration {
	return min(max(until.Sub(now), minRetryAfter), maxRetryAfter) // Sub saturates
}
