package dispatch

import "time"

// recent is a map that forgets: an entry expires keep after it was last set, and
// the map never holds more than max entries. What the dispatcher remembers per
// host, subscription or client thus stays bounded however many it meets over
// months. It is not safe for concurrent use.
//
// Expired entries are dropped when a new key is added, at most once per keep (or
// whenever the map is full); a map full of live entries then drops an eighth of
// them, whichever come first in map order, so adding stays cheap on average.
type recent[K comparable, V any] struct {
	keep  time.Duration
	max   int
	m     map[K]stamped[V]
	swept time.Time // when expired entries were last dropped
}

type stamped[V any] struct {
	v  V
	at time.Time
}

func newRecent[K comparable, V any](keep time.Duration, max int) *recent[K, V] {
	return &recent[K, V]{keep: keep, max: max, m: map[K]stamped[V]{}}
}

// get returns k's value and when it was set, unless it is absent or has expired
// by now.
func (r *recent[K, V]) get(k K, now time.Time) (v V, at time.Time, ok bool) {
	e, ok := r.m[k]
	if !ok || now.Sub(e.at) > r.keep {
		return v, at, false
	}
	return e.v, e.at, true
}

// set stores v for k, stamped at (its age is counted from then).
func (r *recent[K, V]) set(k K, v V, at time.Time) {
	if _, ok := r.m[k]; !ok {
		r.makeRoom(at)
	}
	r.m[k] = stamped[V]{v: v, at: at}
}

// forget drops k.
func (r *recent[K, V]) forget(k K) { delete(r.m, k) }

// len is how many entries the map holds, expired ones not yet dropped included.
func (r *recent[K, V]) len() int { return len(r.m) }

// makeRoom makes room for one more key.
func (r *recent[K, V]) makeRoom(now time.Time) {
	if len(r.m) < r.max && now.Sub(r.swept) < r.keep {
		return
	}
	r.swept = now
	for k, e := range r.m {
		if now.Sub(e.at) > r.keep {
			delete(r.m, k)
		}
	}
	if len(r.m) < r.max {
		return
	}
	for k := range r.m {
		delete(r.m, k)
		if len(r.m) < r.max-r.max/8 {
			break
		}
	}
}
