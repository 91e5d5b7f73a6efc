package console

import (
	"strconv"
	"testing"
	"time"
)

// TestLimiterFullKeepsLongWaits: a limiter full of fresh failures (an attacker's,
// each from a new address or for a new id) drops the keys whose waits end first,
// so an id that has failed for a while, and waits longest, is not freed.
func TestLimiterFullKeepsLongWaits(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l := newLimiter(func() time.Time { return now })
	for range 7 {
		l.fail("id:alice") // waits a minute now
	}
	for i := range limiterMax + 100 {
		l.fail("addr:" + strconv.Itoa(i)) // a second each
	}
	if w := l.wait("id:alice"); w < 30*time.Second {
		t.Fatalf("alice's wait after the limiter filled: %s", w)
	}
	if n := len(l.m); n > limiterMax {
		t.Fatalf("the limiter holds %d keys, more than %d", n, limiterMax)
	}
}
