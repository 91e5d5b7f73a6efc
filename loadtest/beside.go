package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// besideRun is what -scenario busy and dark measure from: hookd delivering a
// backlog to the first receiver's hosts while a second receiver, the other host,
// waits for the callbacks of the events the scenario then sends.
type besideRun struct {
	client       *http.Client
	h            *hookd   // delivering
	other        []string // the records whose callbacks go to the other host
	otherControl string
	otherRecv    *receiver
}

// beside sets a besideRun up: it starts the other host (a receiver process of its
// own, as another institution's would be: its calls do not queue behind the first
// receiver's in one process), registers o.backlog records whose callbacks go to
// backlogHost(i) and -rate × -latency-seconds records whose callbacks go to the
// other host, queues one event for each of the first with delivery paused, adds
// the -history, and starts hookd again, delivering. The receivers' counts are
// reset, the other's recording each callback's arrival. The caller ends it with
// close.
func beside(ctx context.Context, o options, recv *receiver, backlogHost func(i int) string, rep *report) (_ *besideRun, err error) {
	r := &besideRun{client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
	}}}
	if r.otherRecv, err = startReceiver(ctx, 1, o.dir, o.answer); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	r.otherControl = r.otherRecv.urls[0]
	otherHost := r.otherRecv.urls[1]
	if r.h, err = startHookd(ctx, o, true, ""); err != nil {
		return nil, err
	}
	tok, err := r.h.token(r.client)
	if err != nil {
		return nil, err
	}
	r.other = make([]string, o.rate*o.latencySeconds)
	for i := range r.other {
		r.other[i] = orcidN(o.backlog + i)
	}
	start := time.Now()
	if _, err := hammer(ctx, r.client, o.concurrency, o.backlog+len(r.other), func(i int) (*http.Request, error) {
		if i < o.backlog {
			return registration(r.h, tok, backlogHost(i), orcidN(i))
		}
		return registration(r.h, tok, otherHost, orcidN(i))
	}, expect(http.StatusCreated)); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	rep.add("registrations", "%d with the backlog, %d to the other host, in %s", o.backlog, len(r.other), time.Since(start).Round(time.Millisecond))
	bo := o
	bo.events, bo.batch, bo.subs = o.backlog, 1000, o.backlog
	if err := sendBatches(ctx, r.client, r.h, tok, bo, 0); err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	r.h.stop()
	if err := withHistory(ctx, o, r.h, rep); err != nil {
		return nil, err
	}
	if err := reset(r.client, recv.urls[0], false); err != nil {
		return nil, err
	}
	if err := reset(r.client, r.otherControl, true); err != nil {
		return nil, err
	}
	if r.h, err = startHookd(ctx, o, false, o.cpuprofile); err != nil {
		return nil, err
	}
	return r, nil
}

// close stops hookd and the other host.
func (r *besideRun) close() {
	if r.h != nil {
		r.h.stop()
	}
	r.otherRecv.Process.Kill()
}
