package dispatch_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// TestPerHostSpellings: one receiver is one host to the per-host limit however
// its URLs write it (the default port written out or not, the name in capitals),
// for the scheduler and the transport alike: the calls beyond per_host wait in the
// scheduler, not in the transport with their timeout running.
func TestPerHostSpellings(t *testing.T) {
	t.Run("default port written out", func(t *testing.T) {
		is := is.New(t)
		ln, err := net.Listen("tcp", "127.0.0.1:80")
		if err != nil {
			unavailable(t, "cannot listen on 127.0.0.1:80 (this subtest needs the default port): %v", err)
		}
		e := newEnv(t)
		rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
			time.Sleep(600 * time.Millisecond) // a slow but healthy receiver
			w.WriteHeader(http.StatusNoContent)
			return nil
		})
		// The receiver on port 80.
		srv := httptest.NewUnstartedServer(rv.srv.Config.Handler)
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		defer srv.Close()
		e.subscribe(orcidA, "http://127.0.0.1/hook")
		e.subscribe(orcidB, "http://127.0.0.1:80/hook")
		d := e.dispatcher(func(o *dispatch.Options) {
			o.PerHost = 1
			o.Timeout = time.Second
		})
		e.intake(0, store.Event{Orcid: orcidA}, store.Event{Orcid: orcidB})
		for i := 0; i < 6 && len(e.deliveries(store.DeliveryFilter{State: "delivered"})) < 2; i++ {
			e.tick(d)
			e.clock.Advance(time.Second)
		}
		is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered"})), 2) // both called, one at a time
		for _, row := range e.deliveries(store.DeliveryFilter{}) {
			for _, a := range e.attempts(row.ID) {
				is.True(a.Status == http.StatusNoContent) // no attempt failed: the receiver answered each in 600ms, within the 1s timeout
			}
		}
	})

	t.Run("host name in capitals", func(t *testing.T) {
		is := is.New(t)
		e := newEnv(t)
		release := make(chan struct{})
		rv := hangingReceiver(t, release, 5*time.Second)
		port := rv.URL[strings.LastIndex(rv.URL, ":")+1:]
		e.subscribe(orcidA, "http://localhost:"+port+"/hook")
		e.subscribe(orcidB, "http://LOCALHOST:"+port+"/hook")
		d := e.dispatcher(func(o *dispatch.Options) { o.PerHost = 1; o.Timeout = 10 * time.Second })
		e.intake(0, store.Event{Orcid: orcidA}, store.Event{Orcid: orcidB})
		_, err := d.Tick(t.Context())
		is.NoErr(err)
		time.Sleep(500 * time.Millisecond)
		close(release)
		is.NoErr(d.Wait(t.Context()))
		is.Equal(rv.maxInFlight(), 1) // per_host holds
	})
}

// TestQueuedPastItsLeaseNotCalled: a row that waited in its host's queue until too
// little of its lease is left for a call is handed back unsent, not called: a turn
// would otherwise take it back as crashed work and send it a second time beside
// this call (and this call's success would not be recorded).
func TestQueuedPastItsLeaseNotCalled(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	arrived, release := make(chan struct{}, 4), make(chan struct{})
	rv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		arrived <- struct{}{}
		if n == 1 {
			select { // the first call holds the host while the clock moves on
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	e.subscribe(orcidA, rv.URL+"/a")
	e.subscribe(orcidB, rv.URL+"/b")
	e.intake(0, store.Event{Orcid: orcidA}, store.Event{Orcid: orcidB})
	d := e.dispatcher(func(o *dispatch.Options) { o.Workers, o.PerHost, o.Timeout = 1, 1, time.Second }) // a lease of 39 s

	ticked := make(chan error, 1)
	go func() { // the turn's error is asserted here, in the test's goroutine
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := d.Tick(ctx)
		if err == nil {
			err = d.Wait(ctx)
		}
		ticked <- err
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no call arrived")
	}
	e.clock.Advance(30 * time.Second) // the second row's lease has 9 s left: less than a call and its recording need
	close(release)
	is.NoErr(<-ticked)      // the turn, its call and its outcomes
	is.Equal(rv.count(), 1) // one call; the other row went back
	var waiting store.Delivery
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		if dl.StateName() != "delivered" {
			waiting = dl
		}
	}
	is.Equal(waiting.StateName(), "pending") // handed back unsent: due again
	is.Equal(waiting.Attempts, 0)            // not counted as an attempt

	is.Equal(e.tick(d), 1) // claimed afresh and sent once
	is.Equal(rv.count(), 2)
	reqs := rv.requests()
	is.True(reqs[0].header.Get("webhook-id") != reqs[1].header.Get("webhook-id")) // each delivery once
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		is.Equal(dl.StateName(), "delivered")
		is.Equal(dl.Attempts, 1)
	}
}
