package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// single is the single-endpoint scenario: one receiver host, workers = per_host,
// a short tick and no coalescing; S ORCID-style registrations on S records; then,
// in each of -rounds rounds, E events sent through the HTTP intake in JSON arrays
// of -batch by -senders concurrent senders while delivery runs. Each round is
// bracketed by raw baselines: a plain Go client with as many connections as hookd
// has workers, sending hookd's requests to the same host (the yardstick is the
// mean of the baselines just before and just after the round). Then, with
// -intake-conns, single-event intake over that many connections (latency and
// events/s) beside the same client against a no-op handler.
func single(ctx context.Context, o options, recv *receiver) error {
	control, host := recv.urls[0], recv.urls[1]
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
	}}
	rawClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
	}}
	rep := &report{}
	rep.add("scenario", "single endpoint: 1 receiver host answering %s, workers = %d, per_host = %d, tick %s, coalesce_window 0, synchronous = %s",
		answerText(o.answer), o.concurrency, o.perHost, o.tick, o.synchronous)

	h, err := startHookd(ctx, o, false, "")
	if err != nil {
		return err
	}
	defer func() { h.stop() }()
	tok, err := h.token(client)
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := hammer(ctx, client, o.concurrency, o.subs, func(i int) (*http.Request, error) {
		return registration(h, tok, host, orcidN(i))
	}, expect(http.StatusCreated)); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	rep.add("registrations", "%d ORCID-style, one record each, all to one host, in %s", o.subs, time.Since(start).Round(time.Millisecond))

	// A fresh hookd for the rounds, so a CPU profile covers them and nothing else.
	h.stop()
	if err := withHistory(ctx, o, h, rep); err != nil {
		return err
	}
	if h, err = startHookd(ctx, o, false, o.cpuprofile); err != nil {
		return err
	}
	if tok, err = h.token(client); err != nil {
		return err
	}

	n := 50000
	raw := func() (float64, error) {
		selfCPU, recvCPU := cpuTime(os.Getpid()), cpuTime(recv.pid())
		rate, err := hammer(ctx, rawClient, o.concurrency, n, func(i int) (*http.Request, error) {
			return hookdRequest(host, orcidN(i%o.subs), i)
		})
		if err != nil {
			return 0, fmt.Errorf("raw baseline: %w", err)
		}
		rep.add("raw baseline: plain Go client → the host, hookd's requests", "%.0f POST/s (%d requests, %d connections); CPU per request: client %s, receiver %s",
			rate, n, o.concurrency, (cpuTime(os.Getpid())-selfCPU)/time.Duration(n), (cpuTime(recv.pid())-recvCPU)/time.Duration(n))
		return rate, nil
	}
	before, err := raw()
	if err != nil {
		return err
	}
	var ratios []float64
	var hookdCPUs []time.Duration
	var unsteady []string // rounds whose two baselines are too far apart to be a yardstick
	for round := 1; round <= o.rounds; round++ {
		if err := reset(client, control, false); err != nil {
			return err
		}
		hookdCPU, recvCPU := cpuTime(h.cmd.Process.Pid), cpuTime(recv.pid())
		tx0, calls0 := h.writeStats(client)
		sched0, _ := h.readSched(client)
		sent := time.Now()
		if err := sendBatches(ctx, client, h, tok, o, 0); err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		acked := time.Since(sent)
		st, err := waitQuiet(ctx, client, control, time.Second, 5*time.Minute)
		if err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		hookdCPU, recvCPU = cpuTime(h.cmd.Process.Pid)-hookdCPU, cpuTime(recv.pid())-recvCPU
		tx1, calls1 := h.writeStats(client)
		sched1, _ := h.readSched(client)
		want := int64(min(o.events, o.subs))
		if st.Count < want || st.Last <= st.First {
			return fmt.Errorf("round %d: %d callbacks arrived, want %d", round, st.Count, want)
		}
		after, err := raw()
		if err != nil {
			return err
		}
		drate := float64(st.Count) / time.Duration(st.Last-st.First).Seconds()
		e2e := float64(st.Count) / time.Duration(st.Last-sent.UnixNano()).Seconds()
		yard := (before + after) / 2
		ratios = append(ratios, drate/yard)
		if math.Abs(before-after) > unsteadyBaselines*yard {
			unsteady = append(unsteady, fmt.Sprintf("%d (%.0f%% apart)", round, 100*math.Abs(before-after)/yard))
		}
		hookdCPUs = append(hookdCPUs, hookdCPU/time.Duration(st.Count))
		rep.add(fmt.Sprintf("round %d: intake and delivery together", round),
			"%d events in arrays of %d by %d senders, acknowledged in %s (%.0f events/s); %d deliveries at %.0f/s from first to last arrival = **%.2f** of the raw rate (mean of %.0f and %.0f); %.0f/s from the first event sent to the last arrival; CPU per delivery (intake included): hookd %s, receiver %s; %d commits (%.1f writes each)",
			o.events, o.batch, o.senders, acked.Round(time.Millisecond), float64(o.events)/acked.Seconds(), st.Count, drate, drate/yard, before, after, e2e,
			hookdCPU/time.Duration(st.Count), recvCPU/time.Duration(st.Count), tx1-tx0, float64(calls1-calls0)/float64(max(tx1-tx0, 1)))
		rep.add(fmt.Sprintf("round %d: hookd's goroutines' wait for a processor", round), "%s", sched1.since(sched0))
		before = after
	}
	rep.add("hookd peak memory in the rounds", "%s RSS (VmHWM)", mib(h.peakRSS()))
	if o.cpuprofile != "" {
		h.stop() // writes the profile
		rep.add("CPU profile of the rounds", "%s", o.cpuprofile)
		if h, err = startHookd(ctx, o, false, o.cpuprofile+".intake"); err != nil {
			return err
		}
		if tok, err = h.token(client); err != nil {
			return err
		}
	}
	steadiness := "the baselines around each round within 10% of each other"
	if len(unsteady) > 0 {
		which := "round "
		if len(unsteady) > 1 {
			which = "rounds "
		}
		steadiness = "**the machine's speed moved during " + which + strings.Join(unsteady, ", ") +
			"**: the baselines before and after differ by more than 10%, so the ratio is not a measure there"
	}
	rep.add("rounds", "ratio to the raw rate %s, %.3f on average; hookd CPU per delivery %s; %s",
		fmtRatios(ratios), mean(ratios), fmtDurations(hookdCPUs), steadiness)

	if o.intakeConns > 0 {
		if err := singleEventIntake(ctx, o, client, control, h, tok, rep); err != nil {
			return err
		}
	}
	if o.cpuprofile != "" && o.intakeConns > 0 {
		h.stop()
		rep.add("CPU profiles of the single-event intake", "%s (delivery running), %s (paused)", o.cpuprofile+".intake", o.cpuprofile+".paused")
	}
	rep.print(os.Stdout)
	return nil
}

// singleEventIntake posts o.events single-event requests over o.intakeConns
// connections while delivery runs (each event is a delivery to the one host), and
// the same requests to the receiver's no-op handler and to its durable no-op just
// before, as the yardsticks.
func singleEventIntake(ctx context.Context, o options, client *http.Client, control string, h *hookd, tok string, rep *report) error {
	event := func(base, auth string, i int) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, base, strings.NewReader(`{"orcid":"`+orcidN(i%o.subs)+`"}`))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+auth)
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}
	var noopLat, lat, pausedLat latencies
	noop, err := hammer(ctx, client, o.intakeConns, o.events, func(i int) (*http.Request, error) {
		return event(control+"/noop", "0123456789abcdef0123456789abcdef0123456789abcdef", i)
	}, withLatency(&noopLat), expect(http.StatusAccepted))
	if err != nil {
		return fmt.Errorf("no-op baseline: %w", err)
	}
	rep.add(fmt.Sprintf("no-op baseline, single events, %d connections", o.intakeConns), "%.0f POST/s; latency p50 %s p99 %s max %s (%d requests)",
		noop, noopLat.p(50), noopLat.p(99), noopLat.max(), o.events)
	var durableLat latencies
	st0, err := getStats(client, control, false)
	if err != nil {
		return err
	}
	durable, err := hammer(ctx, client, o.intakeConns, o.events, func(i int) (*http.Request, error) {
		return event(control+"/durable", "0123456789abcdef0123456789abcdef0123456789abcdef", i)
	}, withLatency(&durableLat), expect(http.StatusAccepted))
	if err != nil {
		return fmt.Errorf("durable no-op: %w", err)
	}
	st1, err := getStats(client, control, false)
	if err != nil {
		return err
	}
	rep.add(fmt.Sprintf("durable no-op, single events, %d connections", o.intakeConns), "%.0f POST/s; latency p50 %s p90 %s p99 %s max %s (%d requests; each body written and fsynced, %.1f requests a sync)",
		durable, durableLat.p(50), durableLat.p(90), durableLat.p(99), durableLat.max(), o.events,
		float64(st1.DurableRequests-st0.DurableRequests)/float64(max(st1.DurableSyncs-st0.DurableSyncs, 1)))
	if err := reset(client, control, false); err != nil {
		return err
	}
	hookdCPU := cpuTime(h.cmd.Process.Pid)
	tx0, calls0 := h.writeStats(client)
	sched0, _ := h.readSched(client)
	rate, err := hammer(ctx, client, o.intakeConns, o.events, func(i int) (*http.Request, error) {
		return event(h.url+"/api/notifications/v1/events", tok, i)
	}, withLatency(&lat), expect(http.StatusAccepted))
	if err != nil {
		return fmt.Errorf("single-event intake: %w", err)
	}
	st, err := waitQuiet(ctx, client, control, time.Second, 5*time.Minute)
	if err != nil {
		return err
	}
	tx1, calls1 := h.writeStats(client)
	sched1, _ := h.readSched(client)
	rep.add(fmt.Sprintf("intake, single events, %d connections, delivery running", o.intakeConns),
		"%.0f events/s = %.0f%% of the no-op rate; latency p50 %s p90 %s p99 %s max %s (%d events; %d deliveries; hookd CPU %s per event and its delivery; %.1f writes per commit)",
		rate, 100*rate/noop, lat.p(50), lat.p(90), lat.p(99), lat.max(), o.events, st.Count, (cpuTime(h.cmd.Process.Pid)-hookdCPU)/time.Duration(o.events),
		float64(calls1-calls0)/float64(max(tx1-tx0, 1)))
	rep.add("… hookd's goroutines' wait for a processor", "%s", sched1.since(sched0))

	// The same with delivery paused: the intake alone.
	h.stop()
	profile := ""
	if o.cpuprofile != "" {
		profile = o.cpuprofile + ".paused"
	}
	paused, err := startHookd(ctx, o, true, profile)
	if err != nil {
		return err
	}
	*h = *paused // the caller stops it
	hookdCPU = cpuTime(h.cmd.Process.Pid)
	tx0, calls0 = h.writeStats(client)
	sched0, _ = h.readSched(client)
	rate, err = hammer(ctx, client, o.intakeConns, o.events, func(i int) (*http.Request, error) {
		return event(h.url+"/api/notifications/v1/events", tok, o.events+i)
	}, withLatency(&pausedLat), expect(http.StatusAccepted))
	if err != nil {
		return fmt.Errorf("single-event intake, delivery paused: %w", err)
	}
	tx1, calls1 = h.writeStats(client)
	sched1, _ = h.readSched(client)
	rep.add(fmt.Sprintf("intake, single events, %d connections, delivery paused", o.intakeConns),
		"%.0f events/s = %.0f%% of the no-op rate; latency p50 %s p90 %s p99 %s max %s (%d events; hookd CPU %s per event; %.1f writes per commit)",
		rate, 100*rate/noop, pausedLat.p(50), pausedLat.p(90), pausedLat.p(99), pausedLat.max(), o.events, (cpuTime(h.cmd.Process.Pid)-hookdCPU)/time.Duration(o.events),
		float64(calls1-calls0)/float64(max(tx1-tx0, 1)))
	rep.add("… hookd's goroutines' wait for a processor", "%s", sched1.since(sched0))
	return nil
}

// sendBatches sends o.events events, records offset+i (mod o.subs), through the
// intake in JSON arrays of o.batch from o.senders concurrent senders.
func sendBatches(ctx context.Context, c *http.Client, h *hookd, tok string, o options, offset int) error {
	batches := (o.events + o.batch - 1) / o.batch
	_, err := hammer(ctx, c, o.senders, batches, func(b int) (*http.Request, error) {
		var body strings.Builder
		body.WriteByte('[')
		for i := b * o.batch; i < min((b+1)*o.batch, o.events); i++ {
			if i > b*o.batch {
				body.WriteByte(',')
			}
			body.WriteString(`{"orcid":"` + orcidN((offset+i)%o.subs) + `"}`)
		}
		body.WriteByte(']')
		req, err := http.NewRequest(http.MethodPost, h.url+"/api/notifications/v1/events", strings.NewReader(body.String()))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}, expect(http.StatusAccepted))
	return err
}

// registration is the PUT that registers an ORCID-style webhook for record id,
// calling back base/{id}/updated.
func registration(h *hookd, tok, base, id string) (*http.Request, error) {
	cb := base + "/" + id + "/updated"
	req, err := http.NewRequest(http.MethodPut, h.url+"/"+id+"/webhook/"+url.PathEscape(cb), nil)
	if err == nil {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, err
}

// busy measures the latency to one host while another's backlog drains: B
// deliveries are queued for the busy host (delivery paused), then hookd starts
// delivering and, at once, events for records whose callbacks go to a second host
// (a receiver process of its own) are sent at -rate for -latency-seconds; each
// one's latency runs from its 202 to its callback's arrival. Those acknowledged while the backlog was still draining
// are reported apart from the rest.
func busy(ctx context.Context, o options, recv *receiver) error {
	control, busyHost := recv.urls[0], recv.urls[1]
	rep := &report{}
	rep.add("scenario", "a busy host's backlog of %d deliveries drains while events for another host arrive at %d/s for %ds; both hosts answer %s; workers = %d, per_host = %d, tick %s, coalesce_window 0, synchronous = %s",
		o.backlog, o.rate, o.latencySeconds, answerText(o.answer), o.concurrency, o.perHost, o.tick, o.synchronous)
	run, err := beside(ctx, o, recv, func(int) string { return busyHost }, rep)
	if err != nil {
		return err
	}
	defer run.close()
	client, h, other, otherControl, nOther := run.client, run.h, run.other, run.otherControl, len(run.other)
	drainStart := time.Now()
	sched := sampleSched(client, h, 100*time.Millisecond)
	tok, err := h.token(client)
	if err != nil {
		sched.end()
		return err
	}
	stopProbe := make(chan struct{})
	probed, probedDurable := make(chan roundTrips, 1), make(chan roundTrips, 1)
	go func() {
		probed <- probe(client, func() (*http.Request, error) {
			return http.NewRequest(http.MethodGet, h.url+"/healthz", nil)
		}, http.StatusOK, o.rate, nOther, stopProbe)
	}()
	if o.durableProbe {
		go func() {
			probedDurable <- probe(client, func() (*http.Request, error) {
				return http.NewRequest(http.MethodPost, otherControl+"/durable", strings.NewReader(`{"orcid":"0000-0002-1825-0097"}`))
			}, http.StatusAccepted, o.rate, nOther, stopProbe)
		}()
	}
	pl, err := latencyPhase(ctx, client, otherControl, h, tok, other, o)
	close(stopProbe)
	health := <-probed
	var durable roundTrips
	if o.durableProbe {
		durable = <-probedDurable
	}
	sched.end()
	if err != nil {
		return err
	}
	st, err := waitQuiet(ctx, client, control, time.Second, 5*time.Minute)
	if err != nil {
		return err
	}
	if st.Ports[0] < int64(o.backlog) {
		return fmt.Errorf("busy host: %d of %d callbacks arrived", st.Ports[0], o.backlog)
	}
	drainEnd := st.PortsLast[0]
	var during, later, duringSent, laterSent, duringTrip latencies
	for i, l := range pl.acked {
		if pl.ackedAt[i] < drainEnd {
			during, duringSent = append(during, l), append(duringSent, pl.sent[i])
			duringTrip = append(duringTrip, pl.sent[i]-l) // the send to the acknowledgement
		} else {
			later, laterSent = append(later, l), append(laterSent, pl.sent[i])
		}
	}
	rep.add("the busy host's backlog", "%d deliveries in %s from hookd's start (%.0f/s)", o.backlog,
		time.Duration(drainEnd-drainStart.UnixNano()).Round(time.Millisecond), float64(o.backlog)/time.Duration(drainEnd-drainStart.UnixNano()).Seconds())
	rep.add("other host, while the backlog drained", "acknowledgement → callback p50 %s p90 %s p99 %s max %s (%d events)", during.p(50), during.p(90), during.p(99), during.max(), len(during))
	rep.add("other host, while it drained, from the send", "sent → callback p50 %s p90 %s p99 %s max %s", duringSent.p(50), duringSent.p(90), duringSent.p(99), duringSent.max())
	rep.add("other host, while it drained: the intake's round trip", "sent → acknowledgement p50 %s p90 %s p99 %s", duringTrip.p(50), duringTrip.p(90), duringTrip.p(99))
	healthDuring := health.between(drainStart.UnixNano(), drainEnd)
	rep.add("… the yardstick: hookd's GET /healthz while it drained", "round trip p50 %s p90 %s p99 %s (%d requests at %d/s beside the events; no store; %d failed in the whole phase)",
		healthDuring.p(50), healthDuring.p(90), healthDuring.p(99), len(healthDuring), o.rate, health.failed)
	if o.durableProbe {
		d := durable.between(drainStart.UnixNano(), drainEnd)
		rep.add("… the yardstick: the receiver's durable no-op while it drained", "round trip p50 %s p90 %s p99 %s (%d requests at %d/s beside the events; a write and an fsync, no SQL; %d failed in the whole phase)",
			d.p(50), d.p(90), d.p(99), len(d), o.rate, durable.failed)
	}
	rep.add("hookd's goroutines' wait for a processor while it drained", "%s", sched.between(time.Unix(0, drainEnd)))
	rep.add("other host, after it", "p50 %s p99 %s max %s; sent → callback p50 %s p99 %s (%d events)", later.p(50), later.p(99), later.max(), laterSent.p(50), laterSent.p(99), len(later))
	rep.print(os.Stdout)
	return nil
}

// unsteadyBaselines is how far apart, as a share of their mean, the raw baselines
// before and after a round may be for that round's ratio to mean something: on a
// shared virtual machine the speed of the whole machine can change within seconds.
const unsteadyBaselines = 0.10

// mean is the arithmetic mean of r (0 for none).
func mean(r []float64) float64 {
	if len(r) == 0 {
		return 0
	}
	var sum float64
	for _, v := range r {
		sum += v
	}
	return sum / float64(len(r))
}

// fmtRatios formats ratios as "0.61 0.58 …".
func fmtRatios(r []float64) string {
	var b strings.Builder
	for i, v := range r {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.2f", v)
	}
	return b.String()
}

// fmtDurations formats durations in µs with one decimal.
func fmtDurations(d []time.Duration) string {
	var b strings.Builder
	for i, v := range d {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1fµs", float64(v.Nanoseconds())/1000)
	}
	return b.String()
}
