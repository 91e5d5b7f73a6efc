package dispatch

import (
	"net/http"
	"strconv"
	"time"
)

// Backoff is the delay before retry number attempt (1 after the first failure):
// base doubled per attempt, scaled by a jitter factor in [0.5, 1.5) from r in [0, 1),
// and capped at max.
func Backoff(attempt int, base, max time.Duration, r float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	d = time.Duration(float64(d) * (0.5 + r))
	if d > max {
		d = max
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// maxRetryAfter bounds how long a receiver's Retry-After may postpone a delivery.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads a Retry-After header (seconds or an HTTP date) relative to now;
// ok is false when it is absent or does not parse.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.Atoi(h); err == nil {
		if secs < 0 {
			return 0, false
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
		if d < 0 {
			d = 0
		}
	} else {
		return 0, false
	}
	if d > maxRetryAfter {
		d = maxRetryAfter
	}
	return d, true
}
