// Command loadtest measures hookd the way a user choosing a webhook service would:
// it builds and starts hookd on a temporary database, starts a receiver process on
// 127.0.0.1 that answers 204 (or -answer receipt: 200 and a short JSON receipt), registers subscriptions, sends events through the real
// HTTP intake and reports raw baselines, delivery and intake throughput, latency,
// registration latency, hookd's peak memory and the database size.
//
//	go run ./loadtest                      # the default run (about a minute)
//	go run ./loadtest -subs 1000000 ...    # a scale run; see BENCHMARKS.md
//
// Every loop is bounded in count and time, and all traffic stays on 127.0.0.1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "receive" {
		if err := receive(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "receiver:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type options struct {
	subs, events, concurrency, ports int
	rate, latencySeconds, probe      int
	probeOnly, console               bool
	steady                           time.Duration
	hookd, dir                       string
	synchronous                      string

	scenario        string        // default, single or busy
	tick            time.Duration // delivery.tick of the hookd under test
	perHost         int           // delivery.per_host; 0: concurrency/ports
	rounds          int           // single: rounds of raw baseline and hookd
	batch, senders  int           // single: events per intake request, concurrent senders
	intakeConns     int           // single: connections of the single-event intake phase
	durableProbe    bool          // busy: also time the receiver's durable no-op during the latency phase
	backlog         int           // busy: deliveries queued for the busy host
	notify          int           // default: hookd notify calls during the intake phases
	cpuprofile      string        // a file for a CPU profile of the hookd under test
	answer          string        // what the receiver's target ports answer: "204" or "receipt"
	history         int           // single, busy: delivered deliveries of the last week added before the measured phases
	wrap            *wrapper      // runs hookd serve under another program (-scenario instructions)
	pace            time.Duration // instructions: send the events one at a time, this long apart
	countIn         string        // instructions: count only inside these functions (comma-separated)
	slowConns       int           // slowheaders: connections holding large header blocks
	idleConns       int           // idleconns: connections held open and idle
	explicitlyGiven map[string]bool
}

func run() error {
	var o options
	flag.IntVar(&o.subs, "subs", 50000, "subscriptions to register (ORCID-style, one record each); -scenario single: 20000")
	flag.IntVar(&o.events, "events", 50000, "events to send through the intake in each throughput phase; -scenario single: 20000")
	flag.IntVar(&o.concurrency, "concurrency", 64, "concurrent requests of the load client (and hookd's delivery.workers)")
	flag.IntVar(&o.perHost, "per-host", 0, "delivery.per_host of the hookd under test (0: concurrency/ports; -scenario single and busy: concurrency)")
	flag.IntVar(&o.ports, "ports", 8, "receiver ports, i.e. distinct target hosts (hookd's per_host limit is concurrency/ports); -scenario single: 1")
	flag.IntVar(&o.rate, "rate", 1000, "offered load of the latency phase, events per second")
	flag.IntVar(&o.latencySeconds, "latency-seconds", 10, "length of the latency phase")
	flag.IntVar(&o.probe, "probe", 1000, "after the bulk registration, register this many more one at a time (registration latency at a low load)")
	flag.BoolVar(&o.probeOnly, "probe-only", false, "with -dir of an earlier run: start hookd on its database and run only the low-load registration probe")
	flag.DurationVar(&o.steady, "steady", 0, "also run a steady load at -rate for this long, sampling throughput and database size (e.g. 30m)")
	flag.StringVar(&o.hookd, "hookd", "", "hookd binary to test (default: build the module in the current folder)")
	flag.StringVar(&o.dir, "dir", "", "working folder (default: a new temporary folder, removed at the end)")
	flag.StringVar(&o.synchronous, "synchronous", "full", "store.synchronous of the hookd under test")
	flag.BoolVar(&o.console, "console", false, "during the drain, load the console's overview once a second (signed in as the operator)")
	flag.StringVar(&o.scenario, "scenario", "default", "default; single: one receiver host, intake and delivery together (see BENCHMARKS.md); busy: latency to one host while another's backlog drains; dark: latency to one host while -ports others never answer (-backlog 100 × ports, -latency-seconds 45, per_host 8); instructions: hookd's instructions an event, under valgrind's callgrind (-subs 3000 -events 2500); slowheaders: hookd's memory while -slow-conns connections send large header blocks slowly (-latency-seconds 40); idleconns: new connections while -idle-conns are held open and idle (-events 1000)")
	flag.IntVar(&o.idleConns, "idle-conns", 1024, "-scenario idleconns: connections held open and idle, hookd's http.max_connections by default (at most 5000)")
	flag.IntVar(&o.slowConns, "slow-conns", 4000, "-scenario slowheaders: connections, each sending 60 KB of headers over 8 s and opened again when closed (at most 5000)")
	flag.DurationVar(&o.tick, "tick", 0, "delivery.tick of the hookd under test (default 1s; -scenario single, busy and instructions without -pace: 200ms)")
	flag.IntVar(&o.rounds, "rounds", 3, "-scenario single: rounds of raw baseline then hookd, each with -events events")
	flag.IntVar(&o.batch, "batch", 100, "-scenario single: events per intake request")
	flag.IntVar(&o.senders, "senders", 8, "-scenario single: concurrent intake requests")
	flag.IntVar(&o.intakeConns, "intake-conns", 16, "-scenario single: connections of the single-event intake phase (0: skip it)")
	flag.BoolVar(&o.durableProbe, "durable-probe", false, "-scenario busy: also POST to the receiver's durable no-op at -rate during the latency phase, as a second yardstick (its fsyncs share the disk: compare such runs only with each other)")
	flag.IntVar(&o.backlog, "backlog", 100000, "-scenario busy: deliveries queued for the busy host")
	flag.IntVar(&o.notify, "notify", 0, "during the intake phases, run hookd notify this many times at most, one after another, and report its latency")
	flag.StringVar(&o.answer, "answer", "204", `what the receiver answers a delivery: "204" (no body), or "receipt" (200 and a short JSON receipt, as many receivers answer)`)
	flag.IntVar(&o.history, "history", 0, "-scenario single, busy and dark: before the measured phases, add this many delivered deliveries of the last week to the database (as a week of use leaves them), and run hookd with a week's retention (else 1m)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the hookd under test to this file (HOOKD_CPUPROFILE): from the drain on; -scenario single: its rounds (and FILE.intake, FILE.paused: the single-event intake with delivery running, paused); busy: the drain")
	flag.DurationVar(&o.pace, "pace", 0, "-scenario instructions: send the events one at a time, each after the last one's answer (and, with delivery, its callback) and this long after it, so each is alone in hookd, as a trickle of events is (0: over -intake-conns connections, as fast as hookd answers)")
	flag.StringVar(&o.countIn, "count-in", "", "-scenario instructions: count hookd's instructions only inside these functions (comma-separated Go symbols, as callgrind names them, e.g. 'hookd/store.(*Store).record'; none may call another, or callgrind leaves the inner one's share out), to see where an event's instructions go; the no-op is then not measured")
	flag.Parse()
	o.explicitlyGiven = map[string]bool{}
	flag.Visit(func(f *flag.Flag) { o.explicitlyGiven[f.Name] = true })
	if o.pace < 0 {
		return fmt.Errorf("-pace must not be negative, got %s", o.pace)
	}
	if (o.pace != 0 || o.countIn != "") && o.scenario != "instructions" {
		return fmt.Errorf("-pace and -count-in are for -scenario instructions, not %q", o.scenario)
	}
	switch o.scenario {
	case "default":
	case "slowheaders":
		o.setDefault("latency-seconds", &o.latencySeconds, 40)
	case "idleconns":
		o.setDefault("events", &o.events, 1000)
		if o.idleConns < 0 || o.idleConns > 5000 {
			return fmt.Errorf("-idle-conns: want 0 to 5000, got %d", o.idleConns)
		}
	case "dark":
		o.setDefault("ports", &o.ports, 8)
		o.setDefault("backlog", &o.backlog, 100*o.ports)
		o.setDefault("latency-seconds", &o.latencySeconds, 45)
		if o.perHost == 0 {
			o.perHost = 8 // hookd's default
		}
		if o.tick == 0 {
			o.tick = 200 * time.Millisecond
		}
	case "single", "busy", "instructions":
		if o.scenario == "instructions" {
			o.setDefault("subs", &o.subs, 3000)
			o.setDefault("events", &o.events, 2500)
		} else {
			o.setDefault("subs", &o.subs, 20000)
			o.setDefault("events", &o.events, 20000)
		}
		o.setDefault("ports", &o.ports, 1)
		if o.perHost == 0 {
			o.perHost = o.concurrency // workers = per_host: one host may take them all
		}
		if o.tick == 0 && (o.scenario != "instructions" || o.pace == 0) {
			o.tick = 200 * time.Millisecond // a trickle (-pace) runs at hookd's default, below
		}
	default:
		return fmt.Errorf("-scenario: want default, single, busy, dark, instructions, slowheaders or idleconns, got %q", o.scenario)
	}
	if o.tick == 0 {
		o.tick = time.Second
	}
	if _, err := answerFunc(o.answer); err != nil {
		return err
	}
	if o.answer == "hang" {
		return fmt.Errorf(`-answer hang: only -scenario dark's hosts hang; -answer is what the other receivers answer`)
	}
	if o.cpuprofile != "" {
		abs, err := filepath.Abs(o.cpuprofile)
		if err != nil {
			return err
		}
		o.cpuprofile = abs
	}
	if o.subs < 1 || o.events < 1 || o.concurrency < 1 || o.ports < 1 || o.rate < 1 || o.latencySeconds < 1 ||
		o.rounds < 1 || o.batch < 1 || o.senders < 1 || o.backlog < 1 || o.intakeConns < 0 || o.notify < 0 || o.slowConns < 1 {
		return errors.New("every count must be positive")
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "hookd-loadtest-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if o.hookd == "" {
		o.hookd = filepath.Join(o.dir, "hookd")
		fmt.Println("building hookd ...")
		if out, err := exec.Command("go", "build", "-o", o.hookd, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}

	// The receiver: a separate process, o.ports ports, answers as -answer says and logs arrivals.
	answer := o.answer
	if o.scenario == "dark" {
		answer = "hang" // the hosts that never answer; the other host answers as -answer says
	}
	recv, err := startReceiver(ctx, o.ports, o.dir, answer)
	if err != nil {
		return err
	}
	defer recv.Process.Kill()
	recvURLs := recv.urls
	control := recvURLs[0]
	switch o.scenario {
	case "single":
		return single(ctx, o, recv)
	case "busy":
		return busy(ctx, o, recv)
	case "dark":
		return dark(ctx, o, recv)
	case "instructions":
		return instructions(ctx, o, recv)
	case "slowheaders":
		return slowHeaders(ctx, o)
	case "idleconns":
		return idleConns(ctx, o)
	}

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
	}}
	baseClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: o.concurrency / o.ports, MaxConnsPerHost: max(1, o.concurrency/o.ports),
	}}
	report := &report{}
	report.add("receiver", "%d ports (target hosts), each answering %s", o.ports, answerText(o.answer))

	// 1. Raw baseline: the receiver driven by a plain Go client, same concurrency and
	// the same per-host connection limit as hookd's delivery. rawBaseline measures it
	// for requests made by mk; the first run sends bare POSTs, a second one (just
	// before the drain, so in the same minutes) the requests hookd sends.
	n := min(o.events, 50000)
	rawBaseline := func(what string, mk func(i int) (*http.Request, error)) (float64, error) {
		selfCPU, recvCPU := cpuTime(os.Getpid()), cpuTime(recv.Process.Pid)
		rate, err := hammer(ctx, baseClient, o.concurrency, n, mk)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		report.add(what, "%.0f POST/s (%d requests, concurrency %d, %d hosts); CPU per request: client %s, receiver %s",
			rate, n, o.concurrency, o.ports, (cpuTime(os.Getpid())-selfCPU)/time.Duration(n), (cpuTime(recv.Process.Pid)-recvCPU)/time.Duration(n))
		return rate, reset(client, control, false)
	}
	bare, err := rawBaseline("raw baseline: plain Go client → receiver, bare POSTs", func(i int) (*http.Request, error) {
		return http.NewRequest(http.MethodPost, recvURLs[1+i%o.ports]+"/baseline", nil)
	})
	if err != nil {
		return err
	}

	// event makes a single-event POST to base: the intake's request, and that of its
	// yardstick, a handler that reads it and answers 202 at once.
	event := func(base string, i int) (*http.Request, error) {
		body := `{"orcid":"` + orcidN(i%o.subs) + `"}`
		req, err := http.NewRequest(http.MethodPost, base, strings.NewReader(body))
		if err == nil {
			req.Header.Set("Authorization", "Bearer 0123456789abcdef0123456789abcdef0123456789abcdef")
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}

	// 2. hookd, with delivery paused (delivery.paused) so the intake is measured alone.
	// The probe alone needs no pause, so -probe-only also runs a hookd that predates it.
	h, err := startHookd(ctx, o, !o.probeOnly, "")
	if err != nil {
		return err
	}
	defer h.stop()
	startWhat := "hookd start-up (empty database)"
	if o.probeOnly {
		startWhat = "hookd start-up (this database)"
	}
	report.add(startWhat, "%s to READY (listening, migrated)", h.startup.Round(time.Millisecond))
	tok, err := h.token(client)
	if err != nil {
		return err
	}

	register := func(i int) (*http.Request, error) {
		id := orcidN(i)
		cb := fmt.Sprintf("%s/%s/updated", recvURLs[1+i%o.ports], id)
		req, err := http.NewRequest(http.MethodPut, h.url+"/"+id+"/webhook/"+url.PathEscape(cb), nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return req, err
	}
	probe := func() error {
		var lat latencies
		// Fresh iDs beyond every earlier run's, one request at a time.
		base := o.subs + int(time.Now().Unix()%100000)*1000
		if _, err := hammer(ctx, client, 1, o.probe, func(i int) (*http.Request, error) { return register(base + i) },
			withLatency(&lat), expect(http.StatusCreated)); err != nil {
			return fmt.Errorf("registration probe: %w", err)
		}
		report.add("registration at a low load", "%d PUTs one at a time beside %d subscriptions: p50 %s p90 %s p99 %s p99.9 %s max %s", o.probe, o.subs, lat.p(50), lat.p(90), lat.p(99), lat.p(99.9), lat.max())
		return nil
	}
	if o.probeOnly {
		if err := probe(); err != nil {
			return err
		}
		report.add("hookd peak memory", "%s RSS (VmHWM)", mib(h.peakRSS()))
		report.add("database", "%s (with WAL)", mib(h.dbSize()))
		report.print(os.Stdout)
		return nil
	}

	// 3. Registrations: S PUTs, latency of each.
	ids := make([]string, o.subs)
	for i := range ids {
		ids[i] = orcidN(i)
	}
	var regLat latencies
	start := time.Now()
	_, err = hammer(ctx, client, o.concurrency, o.subs, register, withLatency(&regLat), expect(http.StatusCreated))
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	report.add("registrations", "%d in %s: %.0f/s; latency p50 %s p99 %s max %s", o.subs, time.Since(start).Round(time.Millisecond),
		float64(o.subs)/time.Since(start).Seconds(), regLat.p(50), regLat.p(99), regLat.max())
	if o.probe > 0 {
		if err := probe(); err != nil {
			return err
		}
	}

	// 4. Intake alone: E single-event POSTs, each for one subscription, stored while
	// delivery is paused.
	sendEvents := func(offset int) (float64, error) {
		return hammer(ctx, client, o.concurrency, o.events, func(i int) (*http.Request, error) {
			req, err := event(h.url+"/api/notifications/v1/events", offset+i)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			return req, err
		}, expect(http.StatusAccepted))
	}
	// The intake's yardstick, measured just before it (the VM's speed drifts within
	// minutes) while the paused hookd is idle.
	noop, err := hammer(ctx, client, o.concurrency, n, func(i int) (*http.Request, error) { return event(control+"/noop", i) }, expect(http.StatusAccepted))
	if err != nil {
		return fmt.Errorf("no-op baseline: %w", err)
	}
	report.add("no-op baseline: same client → handler answering 202", "%.0f POST/s (%d requests, concurrency %d, one host)", noop, n, o.concurrency)
	durable, err := hammer(ctx, client, o.concurrency, n, func(i int) (*http.Request, error) { return event(control+"/durable", i) }, expect(http.StatusAccepted))
	if err != nil {
		return fmt.Errorf("durable no-op: %w", err)
	}
	report.add("durable no-op: the same, each body fsynced first", "%.0f POST/s = %.0f%% of the no-op rate (%d requests, concurrency %d; durable.go)", durable, 100*durable/noop, n, o.concurrency)
	stopNotify := notifyDuring(ctx, o, "intake, delivery paused", report)
	irate, err := sendEvents(0)
	if err := errors.Join(err, stopNotify()); err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	report.add("intake (synchronous = "+o.synchronous+"), delivery paused", "%.0f events/s acknowledged = %.0f%% of the no-op rate, %.0f%% of the durable no-op's (%d events, concurrency %d)", irate, 100*irate/noop, 100*irate/durable, o.events, o.concurrency)

	if st, err := getStats(client, control, false); err != nil || st.Count != 0 {
		return fmt.Errorf("paused hookd delivered %d callbacks (%v)", st.Count, err)
	}

	// 5. Delivery alone: restart hookd without the pause and let it drain the backlog
	// (one delivery per subscription that had events: repeats for a record merge
	// while pending). Its yardstick, measured just before while hookd is stopped: the
	// plain client sending what hookd sends for an ORCID-style delivery (the same
	// path, an empty body, the same headers with values of the same length).
	h.stop()
	rate, err := rawBaseline("raw baseline: plain Go client → receiver, hookd's requests", func(i int) (*http.Request, error) {
		return hookdRequest(recvURLs[1+i%o.ports], orcidN(i%o.subs), i)
	})
	if err != nil {
		return err
	}
	if h, err = startHookd(ctx, o, false, o.cpuprofile); err != nil {
		return err
	}
	defer h.stop()
	report.add("hookd start-up with that backlog", "%s to READY", h.startup.Round(time.Millisecond))
	hookdCPU, recvCPU := cpuTime(h.cmd.Process.Pid), cpuTime(recv.Process.Pid)
	stopConsole, consoleDone := make(chan struct{}), make(chan error, 1)
	var consoleLat latencies
	if o.console {
		go func() { var err error; consoleLat, err = refreshConsole(ctx, h.url, stopConsole); consoleDone <- err }()
	}
	st, err := waitQuiet(ctx, client, control, 2*time.Second, 5*time.Minute)
	close(stopConsole)
	if err != nil {
		return err
	}
	if o.console {
		if err := <-consoleDone; err != nil {
			return err
		}
		report.add("console overview during the drain", "loaded once a second: %d loads, p50 %s max %s", len(consoleLat), consoleLat.p(50), consoleLat.max())
	}
	want := int64(min(o.events, o.subs))
	if st.Count < want {
		return fmt.Errorf("delivery: %d callbacks arrived, want %d", st.Count, want)
	}
	if st.Last > st.First {
		drate := float64(want) / (time.Duration(st.Last - st.First).Seconds())
		report.add("delivery of the backlog", "%.0f deliveries/s from first to last arrival = %.0f%% of the raw baseline with hookd's requests (%.0f%% of bare POSTs) (%d deliveries, %d arrivals); CPU per delivery: hookd %s, receiver %s",
			drate, 100*drate/rate, 100*drate/bare, want, st.Count, (cpuTime(h.cmd.Process.Pid)-hookdCPU)/time.Duration(want), (cpuTime(recv.Process.Pid)-recvCPU)/time.Duration(want))
	}

	// 6. Both at once: E more events while hookd delivers them.
	if err := reset(client, control, false); err != nil {
		return err
	}
	if tok, err = h.token(client); err != nil {
		return err
	}
	stopNotify = notifyDuring(ctx, o, "intake and delivery together", report)
	brate, err := sendEvents(o.events)
	if err := errors.Join(err, stopNotify()); err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	if st, err = waitQuiet(ctx, client, control, 2*time.Second, 5*time.Minute); err != nil {
		return err
	}
	if st.Last > st.First {
		drate := float64(st.Count) / (time.Duration(st.Last - st.First).Seconds())
		report.add("intake and delivery together", "%.0f events/s acknowledged while delivering; %.0f deliveries/s (%d deliveries)", brate, drate, st.Count)
	}

	// 7. Latency at a fixed offered load, coalesce_window = 0.
	if err := reset(client, control, true); err != nil {
		return err
	}
	pl, err := latencyPhase(ctx, client, control, h, tok, ids, o)
	if err != nil {
		return err
	}
	lat := pl.acked
	report.add(fmt.Sprintf("latency at %d events/s for %ds", o.rate, o.latencySeconds), "acknowledgement → callback p50 %s p99 %s max %s; sent → callback p50 %s p99 %s (%d events)",
		lat.p(50), lat.p(99), lat.max(), pl.sent.p(50), pl.sent.p(99), len(lat))

	if o.steady > 0 {
		if err := steadyPhase(ctx, client, control, h, tok, ids, o, report); err != nil {
			return err
		}
	}

	report.add("hookd peak memory", "%s RSS (VmHWM)", mib(h.peakRSS()))
	report.add("database", "%s (with WAL) for %d subscriptions", mib(h.dbSize()), o.subs)

	// Restart time with the subscriptions in place.
	h.stop()
	h2, err := startHookd(ctx, o, false, "")
	if err != nil {
		return err
	}
	report.add("hookd start-up (this database)", "%s to READY", h2.startup.Round(time.Millisecond))
	h2.stop()
	report.print(os.Stdout)
	return nil
}

// setDefault sets *v to def unless the flag name was given.
func (o *options) setDefault(name string, v *int, def int) {
	if !o.explicitlyGiven[name] {
		*v = def
	}
}
