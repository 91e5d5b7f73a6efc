package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// dark measures the latency to one host while others stop answering: -ports
// receiver hosts take every call and never answer (hookd gives up on each after
// its delivery.timeout, 20 s), with -backlog deliveries queued for them (delivery
// paused); then hookd starts delivering and, at once, events for records whose
// callbacks go to another host (a receiver process of its own, answering as
// -answer says) are sent at -rate for -latency-seconds. Each one's latency runs
// from its 202 to its callback's arrival, reported over the whole phase and after
// its first 2 s (hookd can only tell a host has stopped answering once its calls
// have waited a while).
func dark(ctx context.Context, o options, recv *receiver) error {
	control, darkHosts := recv.urls[0], recv.urls[1:]
	rep := &report{}
	rep.add("scenario", "%d hosts that never answer have %d deliveries queued while events for another host arrive at %d/s for %ds; the other host answers %s; workers = %d, per_host = %d, tick %s, delivery.timeout 20s, coalesce_window 0, synchronous = %s",
		len(darkHosts), o.backlog, o.rate, o.latencySeconds, answerText(o.answer), o.concurrency, o.perHost, o.tick, o.synchronous)
	run, err := beside(ctx, o, recv, func(i int) string { return darkHosts[i%len(darkHosts)] }, rep)
	if err != nil {
		return err
	}
	defer run.close()
	client, h, other, nOther := run.client, run.h, run.other, len(run.other)
	start := time.Now()
	tok, err := h.token(client)
	if err != nil {
		return err
	}
	pl, err := latencyPhase(ctx, client, run.otherControl, h, tok, other, o)
	missing := ""
	if err != nil {
		if len(pl.acked) == 0 {
			return err
		}
		missing = fmt.Sprintf("; %d callbacks had not arrived 2 minutes after the last send", nOther-len(pl.acked))
	}
	// The backlog has waited at least since hookd started delivering: what the
	// gauge of the oldest due delivery's age reads now, against that.
	waited := time.Since(start)
	m := h.metrics(client)
	gauge, gaugeRead := m["hookd_oldest_due_delivery_age_seconds"]
	handedBack := m[`hookd_deliveries_total{outcome="released"}`]
	st, err := getStats(client, control, false)
	if err != nil {
		return err
	}
	settled := start.Add(2 * time.Second).UnixNano()
	var later latencies
	for i, l := range pl.acked {
		if pl.ackedAt[i] >= settled {
			later = append(later, l)
		}
	}
	rep.add("calls to the hosts that never answer", "%d in %s; deliveries claimed and handed back unsent %.0f (hookd_deliveries_total{outcome=\"released\"})",
		st.Count, time.Since(start).Round(time.Second), handedBack)
	rep.add("other host, the whole phase", "acknowledgement → callback p50 %s p90 %s p99 %s max %s (%d events); sent → callback p99 %s%s",
		pl.acked.p(50), pl.acked.p(90), pl.acked.p(99), pl.acked.max(), len(pl.acked), pl.sent.p(99), missing)
	rep.add("other host, from 2 s after hookd started", "acknowledgement → callback p50 %s p90 %s p99 %s max %s (%d events)",
		later.p(50), later.p(90), later.p(99), later.max(), len(later))
	if gaugeRead {
		rep.add("oldest due delivery's age (hookd_oldest_due_delivery_age_seconds)", "%.1f s at the phase's end, when the backlog had waited at least %s (since hookd started delivering)",
			gauge, waited.Round(100*time.Millisecond))
	}
	rep.add("hookd peak memory", "%s RSS (VmHWM)", mib(h.peakRSS()))
	rep.print(os.Stdout)
	return nil
}
