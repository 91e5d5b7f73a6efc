package store

import (
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestTokenCacheDuringARevocation: while a revocation runs (from before its
// transaction until after its commit), the cache answers nothing and keeps
// nothing: a read of the token before the commit is not cached to be answered
// after it.
func TestTokenCacheDuringARevocation(t *testing.T) {
	is := is.New(t)
	var c tokenCache
	now := time.Unix(1700000000, 0)
	tok := Token{ClientID: "APP-1"}
	_, gen, _ := c.get("h", now)
	c.put("h", tok, now, gen)
	_, _, ok := c.get("h", now)
	is.True(ok) // cached

	end := c.revoke()
	_, _, ok = c.get("h", now)
	is.True(!ok) // forgotten at once
	_, gen, _ = c.get("h", now)
	c.put("h", tok, now, gen) // a lookup that read the token before the commit
	_, _, ok = c.get("h", now)
	is.True(!ok) // is not kept
	end()
	end() // a second end changes nothing
	_, _, ok = c.get("h", now)
	is.True(!ok) // nor after the revocation
	_, gen, _ = c.get("h", now)
	c.put("h", tok, now, gen)
	_, _, ok = c.get("h", now)
	is.True(ok) // a lookup after it is cached again
	is.Equal(c.revoking, 0)
}
