package httpapi

import (
	"context"
	"crypto/subtle"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// How failed client authentications are slowed (authGuard).
const (
	guardFree     = 3                      // failures of a key that cost nothing: typos
	guardStep     = 250 * time.Millisecond // the delay after guardFree failures; it doubles with each more
	guardMaxDelay = 5 * time.Second        // the most a request ever waits
	guardHalfLife = 10 * time.Minute       // failures are forgiven by half in this time
	guardKeys     = 10000                  // keys remembered at most
	guardIDLen    = 100                    // bytes of a client id that make its key
)

// authGuard slows guessing at the token and revoke endpoints. Every failed client
// authentication counts against its source address (an IPv6 address by its /64,
// which one host commonly has whole) and against the client id it named, known or
// not. Before credentials are checked, a request waits for the longer of the
// delays its address and its client id have earned: nothing for the first
// guardFree failures, then guardStep, doubling with each failure, up to
// guardMaxDelay; failures are forgiven by half every guardHalfLife, and a
// successful authentication forgives its client id's.
//
// An address with failures behind it takes its turns one at a time: each of its
// requests is checked its delay after the one before it, so parallel connections
// guess no faster than one (and cannot keep the cores busy with argon2id checks
// of a secret a person chose). A request whose turn would come more than
// guardMaxDelay away is refused at once (errGuardBusy), without a check.
//
// A client id is only slowed, never refused: an attacker guessing one client's
// secret makes that client's own token requests, from elsewhere, wait at most
// guardMaxDelay, but cannot lock it out. Behind a reverse proxy that is not in
// http.trusted_proxies every request comes from the proxy's address, so there an
// attack slows and refuses everyone's token requests alike (tokens are
// long-lived, so these are rare); a trusted proxy's requests come from the client
// it names (proxy.go). Memory is bounded by guardKeys.
type authGuard struct {
	mu    sync.Mutex
	keys  map[string]*failures
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// failures is one key's count of failures, decayed to at. For an address, turn is
// when the last request admitted is checked: the next comes its delay after.
type failures struct {
	n    float64
	at   time.Time
	turn time.Time
}

// errGuardBusy refuses a request from an address whose turns are taken for the
// next guardMaxDelay: one made after retry is admitted (unless another takes the
// turn first).
type errGuardBusy struct{ retry time.Duration }

func (e errGuardBusy) Error() string {
	return fmt.Sprintf("too many failed client authentications from this address: try again in %d s", retrySeconds(e.retry))
}

// retrySeconds is d in whole seconds, rounded up, at least 1.
func retrySeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}

func newAuthGuard() *authGuard {
	return &authGuard{keys: map[string]*failures{}, now: time.Now, sleep: sleepCtx}
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// guardDelay is the wait a key has earned with n failures.
func guardDelay(n float64) time.Duration {
	over := math.Round(n) - guardFree // failures decay: three in a row count as 2.99…
	if over < 0 {
		return 0
	}
	if over >= 5 { // 250 ms × 2^5 is past the cap already
		return guardMaxDelay
	}
	return min(guardStep<<int(over), guardMaxDelay)
}

// guardKeysOf are the keys of a request naming client id: its source address and
// the id.
func guardKeysOf(r *http.Request, id string) [2]string {
	if len(id) > guardIDLen {
		id = id[:guardIDLen]
	}
	return [2]string{"addr " + sourcePrefix(r.RemoteAddr), "id " + id}
}

// sourcePrefix is the address a request came from, an IPv6 one cut to its /64.
func sourcePrefix(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// count returns the failures of key decayed to now, and forgets a key that has
// none left. g.mu must be held.
func (g *authGuard) count(key string, now time.Time) float64 {
	f, ok := g.keys[key]
	if !ok {
		return 0
	}
	n := f.n * math.Exp2(-float64(now.Sub(f.at))/float64(guardHalfLife))
	if n < 0.5 {
		delete(g.keys, key)
		return 0
	}
	f.n, f.at = n, now
	return n
}

// wait blocks for the delay a request naming client id has earned (with id "",
// its address's alone). It fails when the request ends meanwhile, or at once
// with errGuardBusy when its address's turns are taken for longer than
// guardMaxDelay.
func (g *authGuard) wait(ctx context.Context, r *http.Request, id string) error {
	keys := guardKeysOf(r, id)
	g.mu.Lock()
	now := g.now()
	byAddr := guardDelay(g.count(keys[0], now))
	at := now
	if id != "" {
		at = now.Add(guardDelay(g.count(keys[1], now)))
	}
	if byAddr > 0 {
		f := g.keys[keys[0]] // count kept it: it has failures
		turn := later(now, f.turn).Add(byAddr)
		if turn.Sub(now) > guardMaxDelay {
			g.mu.Unlock()
			// The next turn that is close enough.
			return errGuardBusy{retry: f.turn.Add(byAddr - guardMaxDelay).Sub(now)}
		}
		// The check comes at the later of the address's turn and the id's wait: the
		// next turn follows the check itself.
		at = later(at, turn)
		f.turn = at
	}
	g.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		return g.sleep(ctx, d)
	}
	return nil
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// failed counts a failed authentication against the request's address and id.
func (g *authGuard) failed(r *http.Request, id string) {
	keys := guardKeysOf(r, id)
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, k := range keys {
		n := g.count(k, now)
		if _, ok := g.keys[k]; !ok {
			g.makeRoom(now)
			g.keys[k] = &failures{}
		}
		g.keys[k].n, g.keys[k].at = n+1, now
	}
}

// succeeded forgives the failures of a client id that has authenticated. Its
// address's stay: a client of one's own must not wipe the record of guesses at
// others'.
func (g *authGuard) succeeded(r *http.Request, id string) {
	keys := guardKeysOf(r, id)
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.keys, keys[1])
}

// makeRoom keeps the map under guardKeys: it forgets keys whose failures have
// decayed, and if that is not enough, arbitrary ones, down to nine tenths. g.mu
// must be held.
func (g *authGuard) makeRoom(now time.Time) {
	if len(g.keys) < guardKeys {
		return
	}
	for k := range g.keys {
		g.count(k, now)
	}
	for k := range g.keys {
		if len(g.keys) < guardKeys*9/10 {
			break
		}
		delete(g.keys, k)
	}
}

// isAdminDigest reports whether digest (secret.Hash of a bearer token) is the
// operator's admin token's, comparing digests in constant time so that not even
// the token's length shows.
func (s *Server) isAdminDigest(digest []byte) bool {
	if s.adminDigest == nil {
		return false
	}
	return subtle.ConstantTimeCompare(digest, s.adminDigest) == 1
}
