package console

import (
	"sync"
	"time"
)

// Failed sign-ins slow further attempts down, per key (a client id, an address):
// after n failures in a row, the key may try again only after slowBase·2^(n-1), at
// most slowMax. The sign-in refuses an address during its wait, without checking
// the secret, and only slows an id's (handleSignIn). A key that has not failed for
// slowForget starts over.
const (
	slowBase   = time.Second
	slowMax    = time.Minute
	slowForget = 15 * time.Minute
	// limiterMax bounds the memory of failures; past it, a new key takes the place
	// of one of evictSample keys looked at: a forgotten one, else the one whose
	// wait ends first.
	limiterMax  = 10000
	evictSample = 64
)

type failures struct {
	n     int
	until time.Time // no attempt before this
	last  time.Time
}

// limiter remembers failed sign-ins per key, in memory, and which keys have a
// sign-in being checked.
type limiter struct {
	mu       sync.Mutex
	m        map[string]*failures
	checking map[string]bool
	now      func() time.Time
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{m: map[string]*failures{}, checking: map[string]bool{}, now: now}
}

// enter marks key as having a sign-in being checked, and reports false when one
// already is: an address's sign-ins are checked one at a time, so that parallel
// ones cannot all be checked before the first failure makes the address wait.
func (l *limiter) enter(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checking[key] {
		return false
	}
	l.checking[key] = true
	return true
}

// leave ends the sign-in that enter let in.
func (l *limiter) leave(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.checking, key)
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
	for _, k := range keys {
		f, ok := l.m[k]
		if !ok && len(l.m) >= limiterMax {
			l.evict(now)
		}
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

// evict makes room for a key, looking at evictSample keys (Go's map order is
// random): a forgotten one goes, else the one whose wait ends first. Starting over
// would free every wait at once, and so would dropping the keys that failed
// longest ago: a chosen id, failed for a while and so waiting longest, is kept.
// A bounded look, so an attacker keeping the map full costs each failure little.
func (l *limiter) evict(now time.Time) {
	var first string
	var until time.Time
	n := 0
	for k, f := range l.m {
		if now.Sub(f.last) >= slowForget {
			delete(l.m, k)
			return
		}
		if first == "" || f.until.Before(until) {
			first, until = k, f.until
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(l.m, first)
}

// forget clears a key after a successful attempt.
func (l *limiter) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}
