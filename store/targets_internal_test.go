package store

import "testing"

// TestChangedOverflowEmptiesCache: once the cache has remembered changedMax
// subscriptions' changes it starts over, taking every target read until then as
// changed; none of those may stay cached, or every claim would hand it out changed
// again (released, claimed, released, until its TTL).
func TestChangedOverflowEmptiesCache(t *testing.T) {
	var c targetCache
	kept := &Target{SubscriptionID: -1}
	c.putAll([]*Target{kept})
	for id := range int64(changedMax + 1) {
		c.forget(id + 1)
	}
	if !c.changedSince(kept) {
		t.Fatal("a target read before the cache started over does not count as changed")
	}
	if got := c.get(kept.SubscriptionID, 0); got != nil {
		t.Fatal("a target read before the cache started over is still cached")
	}
	fresh := &Target{SubscriptionID: -2}
	c.putAll([]*Target{fresh})
	if c.changedSince(fresh) {
		t.Fatal("a target read after the cache started over counts as changed")
	}
}
