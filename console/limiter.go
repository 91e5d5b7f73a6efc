package console

import (
	"sync"
	"time"
)

// Failed sign-ins slow further attempts down, per key (a client id, an address):
// after n failures in a row, the key may try again only after slowBase·2^(n-1), at
// most slowMax. An attempt during the wait is refused without checking the secret,
// so guessing costs time and nothing waits in a goroutine. A key that has not
// failed for slowForget starts over.
const (
	slowBase   = time.Second
	slowMax    = time.Minute
	slowForget = 15 * time.Minute
	// limiterMax bounds the memory of failures; past it, forgotten keys are dropped
	// first, and if that is not enough all are.
	limiterMax = 10000
)

type failures struct {
	n     int
	until time.Time // no attempt before this
	last  time.Time
}

// limiter remembers failed sign-ins per key, in memory.
type limiter struct {
	mu  sync.Mutex
	m   map[string]*failures
	now func() time.Time
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{m: map[string]*failures{}, now: now}
}

// wait returns how long the keys must wait before the next attempt (the longest of
// them); 0 when an attempt may be made now.
func (l *limiter) wait(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var longest time.Duration
	for _, k := range keys {
		if f, ok := l.m[k]; ok {
			longest = max(longest, f.until.Sub(now))
		}
	}
	return max(longest, 0)
}

// fail records a failed attempt for each key.
func (l *limiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.m) >= limiterMax {
		for k, f := range l.m {
			if now.Sub(f.last) >= slowForget {
				delete(l.m, k)
			}
		}
		// Still full: the key whose wait ends first goes, one for each new one.
		// Starting over would free every wait at once, and so would dropping the
		// keys that failed longest ago: a chosen id, failed for a while and so
		// waiting longest, is the one kept.
		for len(l.m) >= limiterMax {
			var first string
			var until time.Time
			for k, f := range l.m {
				if first == "" || f.until.Before(until) {
					first, until = k, f.until
				}
			}
			delete(l.m, first)
		}
	}
	for _, k := range keys {
		f, ok := l.m[k]
		if !ok || now.Sub(f.last) >= slowForget {
			f = &failures{}
			l.m[k] = f
		}
		f.n++
		f.last = now
		delay := slowMax
		if f.n <= 7 {
			delay = min(slowBase<<(f.n-1), slowMax)
		}
		f.until = now.Add(delay)
	}
}

// forget clears a key after a successful attempt.
func (l *limiter) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}
