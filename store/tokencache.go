package store

import (
	"sync"
	"time"
)

// tokenCacheTTL is how long a looked-up access token is trusted without asking the
// database again. Revocations made through this store (the revoke endpoint, a secret
// rotation, removing a client) take effect at once; those made by another process
// on the same file (the hookd CLI) within this time.
const tokenCacheTTL = 2 * time.Second

// tokenCacheMax bounds the cache; when full it starts again empty.
const tokenCacheMax = 10000

// tokenCache keeps recent valid bearer tokens by the hash of their value, so the
// intake does not spend a database read on the same token for every request.
type tokenCache struct {
	mu  sync.Mutex
	m   map[string]cachedToken
	gen uint64 // bumped by clear, so a lookup that raced a revocation is not kept
	// revoking counts the revocations between their revoke and their end: while
	// one runs, the cache answers nothing and keeps nothing, so no token is taken
	// from it after the revocation's commit is seen, nor cached from a read that
	// came before the commit.
	revoking int
}

type cachedToken struct {
	t  Token
	at time.Time
}

// get returns a fresh cached token, or the generation to hand to put after a lookup.
func (c *tokenCache) get(hash string, now time.Time) (Token, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || c.revoking > 0 || now.Sub(e.at) >= tokenCacheTTL || now.Before(e.at) {
		return Token{}, c.gen, false
	}
	return e.t, c.gen, true
}

// put keeps t unless the cache was cleared since the get that preceded its lookup,
// or a revocation is running.
func (c *tokenCache) put(hash string, t Token, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.revoking > 0 {
		return
	}
	if c.m == nil || len(c.m) >= tokenCacheMax {
		c.m = make(map[string]cachedToken)
	}
	c.m[hash] = cachedToken{t: t, at: now}
}

// clear forgets every token: called after anything that may revoke one.
func (c *tokenCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
	c.gen++
}

// revoke forgets every token and keeps none until the returned end is called:
// around a transaction that may revoke one, from before it begins until after it
// has committed (or rolled back). Clearing only after the commit left a moment in
// which the commit was visible and a revoked token still answered from the cache.
func (c *tokenCache) revoke() (end func()) {
	c.mu.Lock()
	c.revoking++
	c.m = nil
	c.gen++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.revoking--
			c.m = nil
			c.gen++
			c.mu.Unlock()
		})
	}
}
