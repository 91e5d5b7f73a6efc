package dispatch_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/ssrf"
	"hookd/store"
)

// TestOwnInboxOnly: with private targets refused, hookd calls its own inbox (its
// own address, a path under /inbox/) and nothing else on loopback: not another
// path of its own address, not another port, and not where the inbox redirects.
func TestOwnInboxOnly(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	other := newReceiver(t, nil)
	own := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if strings.HasPrefix(r.URL.Path, "/inbox/moved/") {
			w.Header().Set("Location", other.URL+"/inbox/moved/x")
			w.WriteHeader(http.StatusFound)
			return nil
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	self, err := ssrf.NewInbox(own.srv.Listener.Addr().String())
	is.NoErr(err) // the own address: own stands in for hookd

	targets := map[string]string{ // iD → callback
		testOrcid(1): own.URL + "/inbox/demo/" + testOrcid(1) + "/updated", // the inbox: called
		testOrcid(2): own.URL + "/healthz",                                 // hookd's address, not its inbox
		testOrcid(3): own.URL + "/inbox/../healthz",                        // stepping out of it
		testOrcid(4): other.URL + "/inbox/demo/x",                          // another loopback port
		testOrcid(5): own.URL + "/inbox/moved/x",                           // redirects to other: not followed
	}
	subs := map[string]int64{}
	for id, cb := range targets {
		subs[id] = e.subscribe(id, cb).ID // as the store takes it (the API checks before)
		e.intake(0, store.Event{Orcid: id})
	}
	d := e.dispatcher(func(o *dispatch.Options) {
		o.AllowPrivateTargets = false
		o.Inbox = self
	})
	is.Equal(e.tick(d), len(targets)) // every delivery tried

	byID := func(id string) store.Delivery {
		ds := e.deliveries(store.DeliveryFilter{SubscriptionID: subs[id]})
		is.Equal(len(ds), 1) // one delivery per target
		return ds[0]
	}
	is.Equal(byID(testOrcid(1)).State, store.StateDelivered) // the inbox was called
	for _, id := range []string{testOrcid(2), testOrcid(3), testOrcid(4)} {
		dl := byID(id)
		is.True(dl.State != store.StateDelivered)                               // refused
		is.True(strings.Contains(dl.LastError, "allow_private_targets is off")) // by the SSRF guard, at dial
		is.Equal(dl.LastStatus, 0)                                              // no response: no connection
	}
	moved := byID(testOrcid(5))
	is.Equal(moved.LastStatus, http.StatusFound)               // the inbox answered a redirect
	is.True(strings.Contains(moved.LastError, "not followed")) // which hookd did not follow

	var paths []string
	for _, r := range own.requests() {
		paths = append(paths, r.path)
	}
	is.Equal(len(paths), 2) // own got the inbox's two calls and nothing else
	for _, p := range paths {
		is.True(strings.HasPrefix(p, "/inbox/")) // only under /inbox/
	}
	is.Equal(other.count(), 0) // the other port was never reached
}

// TestOwnInboxNeedsTheOption: without Options.Inbox, hookd's own address is
// loopback like any other.
func TestOwnInboxNeedsTheOption(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	own := newReceiver(t, nil)
	e.subscribe(orcidA, own.URL+"/inbox/demo/x")
	e.intake(0, store.Event{Orcid: orcidA})
	d := e.dispatcher(func(o *dispatch.Options) { o.AllowPrivateTargets = false })
	is.Equal(e.tick(d), 1)                                                        // tried
	is.True(strings.Contains(e.only().LastError, "allow_private_targets is off")) // refused
	is.Equal(own.count(), 0)                                                      // never reached
}
