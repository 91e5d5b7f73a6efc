package dispatch

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// TestPolicy: what each kind of result becomes, decided from the claim, the result
// and the time alone.
func TestPolicy(t *testing.T) {
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	p := policy{
		retryBase: time.Minute, retryMaxDelay: 2 * time.Hour,
		giveUpAfter: 72 * time.Hour, disableAfter: 120 * time.Hour,
		rand: func() float64 { return 0.5 }, // no jitter
	}
	target := func(format string, failingSince time.Time) *store.Target {
		return &store.Target{SubscriptionID: 7, URL: "http://receiver.example/hook", Format: format, FailingSince: failingSince}
	}
	// refused is an organisation's e-mail failing since failingSince, its address
	// first refused at refusedSince.
	refused := func(failingSince, refusedSince time.Time) *store.Target {
		t := target(store.FormatEmail, failingSince)
		t.RefusedSince = refusedSince
		return t
	}
	healthy := target(store.FormatEmpty, time.Time{})
	tests := []struct {
		name  string
		c     store.Claimed
		r     result
		kind  store.OutcomeKind
		err   string
		retry time.Time // RetryAt
		since time.Time // FailingSince
	}{
		{"2xx", store.Claimed{Attempt: 1, Try: 1, Target: healthy}, result{status: 204}, store.OutcomeDelivered, "", time.Time{}, time.Time{}},
		{"cancelled at shutdown", store.Claimed{Attempt: 1, Try: 1, Target: healthy}, result{err: "context canceled", cancelled: true},
			store.OutcomeReleased, "context canceled", now, time.Time{}},
		{"410", store.Claimed{Attempt: 1, Try: 1, Target: healthy}, result{status: 410}, store.OutcomeGone,
			"410 Gone: the target asked to be removed", time.Time{}, time.Time{}},
		{"first failure", store.Claimed{Attempt: 1, Try: 1, Target: healthy}, result{status: 500}, store.OutcomeRetry, "HTTP 500", now.Add(time.Minute), time.Time{}},
		{"third failure", store.Claimed{Attempt: 3, Try: 3, FirstAttempt: now.Add(-time.Hour), Target: target(store.FormatEmpty, now.Add(-time.Hour))},
			result{status: 500}, store.OutcomeRetry, "HTTP 500", now.Add(4 * time.Minute), time.Time{}},
		{"first failure after a replay", store.Claimed{Attempt: 7, Try: 1, Target: healthy}, result{status: 500}, store.OutcomeRetry, "HTTP 500", now.Add(time.Minute), time.Time{}},
		{"no response", store.Claimed{Attempt: 1, Try: 1, Target: healthy}, result{err: "timeout after 20s"}, store.OutcomeRetry, "timeout after 20s", now.Add(time.Minute), time.Time{}},
		{"503 Retry-After", store.Claimed{Attempt: 1, Try: 1, Target: healthy}, result{status: 503, retryAfter: "120"}, store.OutcomeRetry, "HTTP 503", now.Add(2 * time.Minute), time.Time{}},
		{"429 Retry-After", store.Claimed{Attempt: 1, Try: 1, Target: healthy}, result{status: 429, retryAfter: "120"}, store.OutcomeRetry, "HTTP 429", now.Add(2 * time.Minute), time.Time{}},
		{"500 ignores Retry-After", store.Claimed{Attempt: 1, Try: 1, Target: healthy}, result{status: 500, retryAfter: "120"}, store.OutcomeRetry, "HTTP 500", now.Add(time.Minute), time.Time{}},
		{"give_up_after passed", store.Claimed{Attempt: 9, Try: 9, FirstAttempt: now.Add(-72 * time.Hour), Target: target(store.FormatEmpty, now.Add(-72*time.Hour))},
			result{status: 500}, store.OutcomeDead, "gave up after 72h0m0s: HTTP 500", time.Time{}, time.Time{}},
		{"disable_after passed", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: target(store.FormatEmpty, now.Add(-120*time.Hour))},
			result{status: 500}, store.OutcomeDeactivate, "HTTP 500", now.Add(2 * time.Minute), now.Add(-120 * time.Hour)},
		{"a 429 with Retry-After past disable_after waits as asked", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: target(store.FormatEmpty, now.Add(-120*time.Hour))},
			result{status: 429, retryAfter: "120"}, store.OutcomeRetry, "HTTP 429", now.Add(2 * time.Minute), time.Time{}},
		{"a 503 whose Retry-After does not read, past disable_after", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: target(store.FormatEmpty, now.Add(-120*time.Hour))},
			result{status: 503, retryAfter: "soon"}, store.OutcomeDeactivate, "HTTP 503", now.Add(2 * time.Minute), now.Add(-120 * time.Hour)},
		{"a Retry-After within give_up_after is waited for", store.Claimed{Attempt: 9, Try: 9, FirstAttempt: now.Add(-71 * time.Hour), Target: target(store.FormatEmpty, now.Add(-71*time.Hour))},
			result{status: 429, retryAfter: "3600"}, store.OutcomeRetry, "HTTP 429", now.Add(time.Hour), time.Time{}},
		{"a Retry-After past give_up_after ends the delivery", store.Claimed{Attempt: 9, Try: 9, FirstAttempt: now.Add(-71 * time.Hour), Target: target(store.FormatEmpty, now.Add(-71*time.Hour))},
			result{status: 429, retryAfter: "3601"}, store.OutcomeDead,
			"gave up: its Retry-After asks to wait until 2024-03-01T13:00:01Z, past give_up_after (72h0m0s since the first attempt, 2024-03-01T13:00:00Z): HTTP 429", time.Time{}, time.Time{}},
		{"a Retry-After past give_up_after and past the longest wait ends the delivery", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: healthy},
			result{status: 503, retryAfter: "604800"}, store.OutcomeDead,
			"gave up: its Retry-After asks to wait until 2024-03-08T12:00:00Z, past give_up_after (72h0m0s since the first attempt, 2024-03-04T11:00:00Z): HTTP 503", time.Time{}, time.Time{}},
		{"a Retry-After date past give_up_after and past the longest wait ends the delivery", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: healthy},
			result{status: 429, retryAfter: "Fri, 08 Mar 2024 12:00:00 GMT"}, store.OutcomeDead,
			"gave up: its Retry-After asks to wait until 2024-03-08T12:00:00Z, past give_up_after (72h0m0s since the first attempt, 2024-03-04T11:00:00Z): HTTP 429", time.Time{}, time.Time{}},
		{"a Retry-After past what a duration holds ends the delivery, never a retry at once", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: healthy},
			result{status: 503, retryAfter: "9223372037"}, store.OutcomeDead,
			"gave up: its Retry-After asks to wait until 2124-02-06T12:00:00Z, past give_up_after (72h0m0s since the first attempt, 2024-03-04T11:00:00Z): HTTP 503", time.Time{}, time.Time{}},
		{"a Retry-After past the longest wait, within give_up_after, waits the longest wait", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: healthy},
			result{status: 503, retryAfter: "172800"}, store.OutcomeRetry, "HTTP 503", now.Add(24 * time.Hour), time.Time{}},
		{"an upstream registration waits past give_up_after as asked", store.Claimed{Attempt: 9, Try: 9, FirstAttempt: now.Add(-71 * time.Hour), Target: target(store.FormatUpstream, now.Add(-71*time.Hour))},
			result{status: 503, retryAfter: "7200"}, store.OutcomeRetry, "HTTP 503", now.Add(2 * time.Hour), time.Time{}},
		{"upstream registrations are never deactivated", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: target(store.FormatUpstream, now.Add(-120*time.Hour))},
			result{status: 500}, store.OutcomeRetry, "HTTP 500", now.Add(2 * time.Minute), time.Time{}},
		{"an organisation's e-mail is not deactivated for the relay's fault", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: target(store.FormatEmail, now.Add(-120*time.Hour))},
			result{err: "smtp relay: tls: failed to verify certificate"}, store.OutcomeRetry, "smtp relay: tls: failed to verify certificate", now.Add(2 * time.Minute), time.Time{}},
		{"an organisation's e-mail refused for good is deactivated", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: refused(now.Add(-120*time.Hour), now.Add(-120*time.Hour))},
			result{err: "550 5.1.1 user unknown", refused: true, forGood: true}, store.OutcomeDeactivate, "550 5.1.1 user unknown", now.Add(2 * time.Minute), now.Add(-120 * time.Hour)},
		{"an organisation's e-mail refused for good since a relay's outage is deactivated from the first refusal", store.Claimed{Attempt: 2, Try: 2, FirstAttempt: now.Add(-time.Hour), Target: refused(now.Add(-200*time.Hour), now.Add(-120*time.Hour))},
			result{err: "550 5.1.1 user unknown", refused: true, forGood: true}, store.OutcomeDeactivate, "550 5.1.1 user unknown", now.Add(2 * time.Minute), now.Add(-120 * time.Hour)},
		{"an e-mail first refused after a relay's outage past disable_after is dead at once, its e-mail kept on", store.Claimed{Attempt: 5, Try: 5, FirstAttempt: now.Add(-time.Hour), Target: target(store.FormatEmail, now.Add(-120*time.Hour))},
			result{err: "550 5.1.1 user unknown", refused: true, forGood: true}, store.OutcomeDead, "refused for good, not retried: 550 5.1.1 user unknown", time.Time{}, time.Time{}},
		{"an e-mail refused within disable_after of the first refusal, after an outage, is dead at once", store.Claimed{Attempt: 1, Try: 1, Target: refused(now.Add(-200*time.Hour), now.Add(-119*time.Hour))},
			result{err: "550 5.1.1 user unknown", refused: true, forGood: true}, store.OutcomeDead, "refused for good, not retried: 550 5.1.1 user unknown", time.Time{}, time.Time{}},
		{"an e-mail refused for good within disable_after is dead at once", store.Claimed{Attempt: 1, Try: 1, Target: target(store.FormatEmail, now.Add(-time.Hour))},
			result{err: "550 5.1.1 user unknown", refused: true, forGood: true}, store.OutcomeDead, "refused for good, not retried: 550 5.1.1 user unknown", time.Time{}, time.Time{}},
		{"a message refused for good is dead at once, its e-mail kept on", store.Claimed{Attempt: 1, Try: 1, Target: target(store.FormatEmail, now.Add(-120*time.Hour))},
			result{err: `552 "5.3.4 Message too big"`, forGood: true}, store.OutcomeDead, `refused for good, not retried: 552 "5.3.4 Message too big"`, time.Time{}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			tt.r.started = now
			o := p.outcome(tt.c, tt.r, now)
			is.Equal(o.Kind, tt.kind)                                  // the outcome
			is.Equal(o.Error, tt.err)                                  // what the attempt log says
			is.Equal(o.RetryAt, tt.retry)                              // when it is due again
			is.Equal(o.FailingSince, tt.since)                         // since when it failed, for a deactivation
			is.Equal(o.Refused, tt.r.refused)                          // an address refused for good, which begins a run's refusals
			is.Equal(o.WasFailing, !tt.c.Target.FailingSince.IsZero()) // whether a success must clear failing_since
			is.Equal(o.SubscriptionID, tt.c.Target.SubscriptionID)     // for its subscription
			is.Equal(o.Attempt, tt.c.Attempt)                          // numbered as in the delivery's log, replays included
			failed := tt.kind != store.OutcomeDelivered && tt.kind != store.OutcomeReleased
			is.Equal(o.RunGap != 0, failed) // a failure says how long a silence ends its run of failures
			if failed {
				is.Equal(o.RunGap, p.retryMaxDelay) // retry_max_delay: the longest backoff
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	base, max := time.Minute, 2*time.Hour
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0.5, time.Minute},           // no jitter at the middle
		{2, 0.5, 2 * time.Minute},       // doubles
		{3, 0.5, 4 * time.Minute},       // and again
		{1, 0, 30 * time.Second},        // jitter low end: half
		{1, 0.999999, 90 * time.Second}, // high end: one and a half (rounded below)
		{8, 0.5, 2 * time.Hour},         // 128m capped at 2h
		{50, 0.5, 2 * time.Hour},        // no overflow for large attempts
		{50, 0.99, 2 * time.Hour},       // jitter never exceeds the cap
		{0, 0.5, time.Minute},           // attempt 0 is treated as 1
	}
	for _, tt := range tests {
		is := is.New(t)
		got := Backoff(tt.attempt, base, max, tt.r)
		if tt.r > 0.99 && tt.attempt == 1 {
			is.True(got > 89*time.Second && got <= 90*time.Second) // near 1.5x
			continue
		}
		is.Equal(got, tt.want) // Backoff(attempt, r)
	}
	// A retry_max_delay past what doubling or the jitter can hold without
	// wrapping: the delay stays long, never a retry at once.
	huge := 2000000 * time.Hour
	is := is.New(t)
	is.Equal(Backoff(40, time.Hour, huge, 0.99), huge)
	is.True(Backoff(23, time.Hour, 2562047*time.Hour, 0.9) >= 1<<62) // past 2^62 ns, not 1 ms
}

func TestRetryAfter(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d, ok := retryAfter("120", now)
	is.True(ok)
	is.Equal(d, 2*time.Minute) // seconds
	d, ok = retryAfter(now.Add(time.Hour).Format(http.TimeFormat), now)
	is.True(ok)
	is.Equal(d, time.Hour) // HTTP date
	d, ok = retryAfter("999999999", now)
	is.True(ok)
	is.Equal(d, maxRetryAfter) // bounded
	for _, h := range []string{"9223372037", "18446744074", "99999999999999999999"} {
		d, ok = retryAfter(h, now)
		is.True(ok)                // a count of seconds past what a Duration holds
		is.Equal(d, maxRetryAfter) // is bounded too, not overflowed into a retry at once
	}
	for _, h := range []string{"0", now.Add(-time.Hour).Format(http.TimeFormat)} {
		d, ok = retryAfter(h, now)
		is.True(ok)
		is.Equal(d, minRetryAfter) // at once, or a date gone by: a second, not a tight loop
	}
	_, ok = retryAfter("-5", now)
	is.True(!ok) // a negative count is no Retry-After
	_, ok = retryAfter("soon", now)
	is.True(!ok) // garbage is ignored
	_, ok = retryAfter("Friday, 02-Jan-26 04:04:05 PST", now)
	is.True(!ok) // an HTTP date in a zone other than GMT is no HTTP date: not read as if it were UTC
	d, ok = retryAfter("Friday, 02-Jan-26 04:04:05 GMT", now)
	is.True(ok)
	is.Equal(d, time.Hour) // the obsolete form, in GMT, is read
	local := time.Local
	time.Local = time.FixedZone("GMT", 3600) // a local zone an hour off that calls itself GMT, as Go sees London's in summer
	defer func() { time.Local = local }()
	summer := time.Date(2026, 8, 2, 3, 4, 5, 0, time.UTC)
	d, ok = retryAfter("Sunday, 02-Aug-26 04:04:05 GMT", summer)
	is.True(ok)
	is.Equal(d, time.Hour) // GMT is GMT, whatever the machine's zone calls its own
	_, ok = retryAfter("", now)
	is.True(!ok)
}

// TestTokenEndpointRetryAfterStillDeactivates: a token endpoint's 503 with a
// Retry-After sets when to try again, but the receiver was never reached: past
// disable_after of failures the webhook is deactivated, as after a 401 there.
func TestTokenEndpointRetryAfterStillDeactivates(t *testing.T) {
	is := is.New(t)
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	p := policy{retryBase: time.Minute, retryMaxDelay: 2 * time.Hour, giveUpAfter: 72 * time.Hour, disableAfter: 120 * time.Hour,
		rand: func() float64 { return 0.5 }}
	target := &store.Target{SubscriptionID: 7, URL: "http://receiver.example/hook", Format: store.FormatStandard,
		FailingSince: now.Add(-200 * time.Hour), Auth: store.Auth{Type: store.AuthClientCredential}}
	c := store.Claimed{ID: 1, Attempt: 40, Try: 40, FirstAttempt: now.Add(-time.Hour), Target: target}
	refusal := &tokenRefusal{err: errors.New("oauth2: cannot fetch token: 503 Service Unavailable"), status: http.StatusServiceUnavailable, retryAfter: "60", until: now.Add(time.Minute)}
	r := result{started: now, err: "token endpoint: " + refusal.Error()}
	r.tokenWait(refusal)
	is.True(r.tokenAsked)
	o := p.outcome(c, r, now)
	is.Equal(o.Kind, store.OutcomeDeactivate) // failing for 200 h, past disable_after

	target.FailingSince = now.Add(-time.Hour) // not that long
	o = p.outcome(c, r, now)
	is.Equal(o.Kind, store.OutcomeRetry)
	is.Equal(o.RetryAt, now.Add(time.Minute)) // when the token endpoint said
}
