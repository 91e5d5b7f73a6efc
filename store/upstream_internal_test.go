package store

import "testing"

// TestOrgsLeftKeepsANewerChange: a batch that began before its organisation's
// entry was forgotten and made again by a later change, or made anew by it,
// records nothing: the later change's cursor stays.
func TestOrgsLeftKeepsANewerChange(t *testing.T) {
	var u orgsLeft
	for _, again := range []func(){
		func() { u.forget(1); u.leave(1, "m5") }, // off, then on again
		func() { u.leave(1, "m5") },              // on again while on
	} {
		u.leave(1, "m3")
		org, o, ok := u.next()
		if !ok || org != 1 || o.after != "m3" {
			t.Fatalf("next: %d %+v %v", org, o, ok)
		}
		again() // a change while the batch from m3 runs
		u.done(org, o, "m9", true)
		if _, o, ok := u.next(); !ok || o.after != "m5" {
			t.Fatalf("after the stale batch: %+v %v, want the later change's cursor m5", o, ok)
		}
		u.done(1, orgLeft{gen: u.orgs[1].gen}, "", true)
		if _, _, ok := u.next(); ok {
			t.Fatal("a batch of the current change that finished leaves nothing")
		}
	}
}
