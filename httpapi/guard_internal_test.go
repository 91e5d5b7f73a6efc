package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"hookd/secret"

	"github.com/matryer/is"
)

// TestGuardDelay: the first failures cost nothing, then the delay doubles up to
// its cap.
func TestGuardDelay(t *testing.T) {
	for _, tt := range []struct {
		n    float64
		want time.Duration
	}{
		{0, 0}, {2.4, 0}, {2.99, 250 * time.Millisecond}, {3, 250 * time.Millisecond}, {4, 500 * time.Millisecond}, {5, time.Second},
		{6, 2 * time.Second}, {7, 4 * time.Second}, {8, 5 * time.Second}, {1000, 5 * time.Second},
	} {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			is := is.New(t)
			is.Equal(guardDelay(tt.n), tt.want)
		})
	}
}

// TestSourcePrefix: an IPv4 address is its own key; an IPv6 address counts by its
// /64, and an IPv4-mapped one as the IPv4 address.
func TestSourcePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:5555":                     "192.0.2.7",
		"[::ffff:192.0.2.7]:5555":            "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:443":         "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:ffff::9%eth0]:1": "2001:db8:1:2::/64",
		"not an address":                     "not an address",
	} {
		t.Run(in, func(t *testing.T) {
			is := is.New(t)
			is.Equal(sourcePrefix(in), want)
		})
	}
}

// recordingGuard is a guard on a pinned clock that records its waits; a wait
// moves the clock on by as much.
func recordingGuard() (*authGuard, *time.Time, *[]time.Duration) {
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	var waits []time.Duration
	g := newAuthGuard()
	g.now = func() time.Time { return now }
	g.sleep = func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		now = now.Add(d)
		return nil
	}
	return g, &now, &waits
}

// TestGuardKeys: failures count against the address and the client id apart; a
// success forgives its id only; failures are forgiven by half every half-life.
func TestGuardKeys(t *testing.T) {
	is := is.New(t)
	g, now, waits := recordingGuard()
	attacker := httptest.NewRequest("POST", "/oauth/token", nil)
	attacker.RemoteAddr = "203.0.113.9:40000"
	client := httptest.NewRequest("POST", "/oauth/token", nil)
	client.RemoteAddr = "198.51.100.20:50000"
	ctx := context.Background()

	for range 5 {
		is.NoErr(g.wait(ctx, attacker, "APP-VICTIM"))
		g.failed(attacker, "APP-VICTIM")
	}
	is.Equal(*waits, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}) // the 4th and 5th attempts waited

	*waits = nil
	is.NoErr(g.wait(ctx, client, "APP-VICTIM"))
	is.Equal(*waits, []time.Duration{time.Second}) // the victim, from elsewhere, waits for its id: slowed, not refused
	g.succeeded(client, "APP-VICTIM")              // and gets in

	*waits = nil
	is.NoErr(g.wait(ctx, client, "APP-VICTIM"))
	is.Equal(len(*waits), 0) // the success forgave the id
	is.NoErr(g.wait(ctx, attacker, "APP-OTHER"))
	is.Equal(*waits, []time.Duration{time.Second}) // but not the attacker's address, whatever id it names next

	*waits = nil
	counted := g.keys["addr 203.0.113.9"].at // when the address's failures were last decayed
	*now = counted.Add(guardHalfLife / 2)
	is.NoErr(g.wait(ctx, attacker, "APP-OTHER"))
	is.Equal(*waits, []time.Duration{500 * time.Millisecond}) // five failures over half a half-life: 3.5 count as four
	*now = now.Add(guardHalfLife)
	is.NoErr(g.wait(ctx, attacker, "APP-OTHER"))
	is.Equal(len(*waits), 1) // halved again: free
	*now = now.Add(2 * guardHalfLife)
	is.NoErr(g.wait(ctx, attacker, "APP-OTHER"))
	is.Equal(len(g.keys), 0) // and at last forgotten
}

// TestGuardTakesTurns: requests arriving together from an address with failures
// behind it are checked one at a time, each its delay after the one before, for
// the next guardMaxDelay; the one after is refused at once and told when the last
// turn comes. The client id they name is only slowed from elsewhere, never
// refused, and the address is admitted again once its turns are past.
func TestGuardTakesTurns(t *testing.T) {
	is := is.New(t)
	g, now, waits := recordingGuard()
	g.sleep = func(_ context.Context, d time.Duration) error { // arrivals at the same moment: the clock stays
		*waits = append(*waits, d)
		return nil
	}
	attacker := httptest.NewRequest("POST", "/oauth/token", nil)
	attacker.RemoteAddr = "203.0.113.9:40000"
	client := httptest.NewRequest("POST", "/oauth/token", nil)
	client.RemoteAddr = "198.51.100.20:50000"
	ctx := context.Background()
	for range 4 {
		g.failed(attacker, "APP-VICTIM") // the address and the id now wait 500 ms
	}

	for i := range 10 {
		is.NoErr(g.wait(ctx, attacker, fmt.Sprintf("APP-%d", i)))
	}
	is.Equal((*waits)[0], 500*time.Millisecond)
	is.Equal((*waits)[9], 5*time.Second) // ten turns, half a second apart
	err := g.wait(ctx, attacker, "APP-10")
	var busy errGuardBusy
	is.True(errors.As(err, &busy))             // the eleventh is refused
	is.Equal(busy.retry, 500*time.Millisecond) // until a turn is free 5 s ahead
	is.Equal(len(*waits), 10)                  // without a wait
	*now = now.Add(busy.retry)
	is.NoErr(g.wait(ctx, attacker, "APP-10"))
	is.Equal((*waits)[10], 5*time.Second) // then it is admitted, for that turn
	*waits = (*waits)[:10]

	is.NoErr(g.wait(ctx, client, "APP-VICTIM"))
	is.Equal((*waits)[10], 500*time.Millisecond) // the id, from elsewhere: slowed by its own failures only

	*now = now.Add(5 * time.Second)
	is.NoErr(g.wait(ctx, attacker, "APP-11"))
	is.Equal((*waits)[11], 500*time.Millisecond) // the turns are past: the address's own delay again
}

// TestGuardTurnFollowsTheCheck: when the client id named waits longer than the
// address, the address's next turn follows the check itself, so requests from
// one address are still checked one at a time.
func TestGuardTurnFollowsTheCheck(t *testing.T) {
	is := is.New(t)
	g, _, waits := recordingGuard()
	g.sleep = func(_ context.Context, d time.Duration) error { // arrivals at the same moment
		*waits = append(*waits, d)
		return nil
	}
	elsewhere := httptest.NewRequest("POST", "/oauth/token", nil)
	elsewhere.RemoteAddr = "198.51.100.20:50000"
	attacker := httptest.NewRequest("POST", "/oauth/token", nil)
	attacker.RemoteAddr = "203.0.113.9:40000"
	for range 8 {
		g.failed(elsewhere, "APP-SLOW") // the id waits 5 s
	}
	for range 4 {
		g.failed(attacker, "APP-OTHER") // the address 500 ms
	}
	ctx := context.Background()
	is.NoErr(g.wait(ctx, attacker, "APP-SLOW"))
	is.Equal(*waits, []time.Duration{5 * time.Second}) // checked when the id's wait ends
	var busy errGuardBusy
	is.True(errors.As(g.wait(ctx, attacker, "APP-SLOW"), &busy))  // the next one's turn would be half a second after that
	is.True(errors.As(g.wait(ctx, attacker, "APP-OTHER"), &busy)) // whatever id it names
	is.Equal(busy.retry, 500*time.Millisecond)
}

// TestGuardMemoryIsBounded: failures from ever new addresses and ids keep at most
// guardKeys keys.
func TestGuardMemoryIsBounded(t *testing.T) {
	is := is.New(t)
	g, _, _ := recordingGuard()
	r := httptest.NewRequest("POST", "/oauth/token", nil)
	for i := range 3 * guardKeys {
		r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255)
		g.failed(r, fmt.Sprintf("APP-%d", i))
		if len(g.keys) > guardKeys {
			t.Fatalf("%d keys after %d failures", len(g.keys), i+1)
		}
	}
	is.True(len(g.keys) >= guardKeys*9/10-2) // and still remembers many
}

// TestAdminTokenCompare: only the operator's token itself matches.
func TestAdminTokenCompare(t *testing.T) {
	is := is.New(t)
	s := NewServer(Options{AdminToken: "operator-token-1"})
	is.True(s.isAdminDigest(secret.Hash("operator-token-1")))
	is.True(!s.isAdminDigest(secret.Hash("operator-token-2")))
	is.True(!s.isAdminDigest(secret.Hash("operator-token-1 ")))
	is.True(!s.isAdminDigest(secret.Hash("")))
	is.True(!NewServer(Options{}).isAdminDigest(secret.Hash(""))) // no admin token configured: nothing matches
}
