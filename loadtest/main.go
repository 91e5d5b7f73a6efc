// Command loadtest measures hookd the way a user choosing a webhook service would:
// it builds and starts hookd on a temporary database, starts a receiver process on
// 127.0.0.1 that answers 204, registers subscriptions, sends events through the real
// HTTP intake and reports raw baselines, delivery and intake throughput, latency,
// registration latency, hookd's peak memory and the database size.
//
//	go run ./loadtest                      # the default run (about a minute)
//	go run ./loadtest -subs 1000000 ...    # a scale run; see BENCHMARKS.md
//
// Every loop is bounded in count and time, and all traffic stays on 127.0.0.1.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	backlog         int           // busy: deliveries queued for the busy host
	notify          int           // default: hookd notify calls during the intake phases
	cpuprofile      string        // a file for a CPU profile of the hookd under test
	explicitlyGiven map[string]bool
}

func run() error {
	var o options
	flag.IntVar(&o.subs, "subs", 50000, "subscriptions to register (ORCID-style, one record each); -scenario single: 20000")
	flag.IntVar(&o.events, "events", 50000, "events to send through the intake in each throughput phase; -scenario single: 20000")
	flag.IntVar(&o.concurrency, "concurrency", 64, "concurrent requests of the load client (and hookd's delivery.workers)")
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
	flag.StringVar(&o.scenario, "scenario", "default", "default; single: one receiver host, intake and delivery together (see BENCHMARKS.md); busy: latency to one host while another's backlog drains")
	flag.DurationVar(&o.tick, "tick", 0, "delivery.tick of the hookd under test (default 1s; -scenario single and busy: 200ms)")
	flag.IntVar(&o.rounds, "rounds", 3, "-scenario single: rounds of raw baseline then hookd, each with -events events")
	flag.IntVar(&o.batch, "batch", 100, "-scenario single: events per intake request")
	flag.IntVar(&o.senders, "senders", 8, "-scenario single: concurrent intake requests")
	flag.IntVar(&o.intakeConns, "intake-conns", 16, "-scenario single: connections of the single-event intake phase (0: skip it)")
	flag.IntVar(&o.backlog, "backlog", 100000, "-scenario busy: deliveries queued for the busy host")
	flag.IntVar(&o.notify, "notify", 0, "during the intake phases, run hookd notify this many times at most, one after another, and report its latency")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the hookd under test to this file (HOOKD_CPUPROFILE): from the drain on; -scenario single: its rounds (and FILE.intake, FILE.paused: the single-event intake with delivery running, paused); busy: the drain")
	flag.Parse()
	o.explicitlyGiven = map[string]bool{}
	flag.Visit(func(f *flag.Flag) { o.explicitlyGiven[f.Name] = true })
	switch o.scenario {
	case "default":
	case "single", "busy":
		o.setDefault("subs", &o.subs, 20000)
		o.setDefault("events", &o.events, 20000)
		o.setDefault("ports", &o.ports, 1)
		o.perHost = o.concurrency // workers = per_host: one host may take them all
		if o.tick == 0 {
			o.tick = 200 * time.Millisecond
		}
	default:
		return fmt.Errorf("-scenario: want default, single or busy, got %q", o.scenario)
	}
	if o.tick == 0 {
		o.tick = time.Second
	}
	if o.cpuprofile != "" {
		abs, err := filepath.Abs(o.cpuprofile)
		if err != nil {
			return err
		}
		o.cpuprofile = abs
	}
	if o.subs < 1 || o.events < 1 || o.concurrency < 1 || o.ports < 1 || o.rate < 1 || o.latencySeconds < 1 ||
		o.rounds < 1 || o.batch < 1 || o.senders < 1 || o.backlog < 1 || o.intakeConns < 0 || o.notify < 0 {
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

	// The receiver: a separate process, o.ports ports, answers 204 and logs arrivals.
	recv, err := startReceiver(ctx, o.ports)
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
	}

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
	}}
	baseClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: o.concurrency / o.ports, MaxConnsPerHost: max(1, o.concurrency/o.ports),
	}}
	report := &report{}

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
	stopNotify := notifyDuring(ctx, o, "intake, delivery paused", report)
	irate, err := sendEvents(0)
	if err := errors.Join(err, stopNotify()); err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	report.add("intake (synchronous = "+o.synchronous+"), delivery paused", "%.0f events/s acknowledged = %.0f%% of the no-op rate (%d events, concurrency %d)", irate, 100*irate/noop, o.events, o.concurrency)

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
	lat, _, err := latencyPhase(ctx, client, control, h, tok, ids, o)
	if err != nil {
		return err
	}
	report.add(fmt.Sprintf("latency at %d events/s for %ds", o.rate, o.latencySeconds), "acknowledgement → callback p50 %s p99 %s max %s (%d events)", lat.p(50), lat.p(99), lat.max(), len(lat))

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

// report collects result lines.
type report struct{ lines [][2]string }

func (r *report) add(what, format string, args ...any) {
	r.lines = append(r.lines, [2]string{what, fmt.Sprintf(format, args...)})
	fmt.Printf("%-45s %s\n", what, fmt.Sprintf(format, args...))
}

func (r *report) print(w io.Writer) {
	fmt.Fprintln(w, "\n| measure | result |\n|---|---|")
	for _, l := range r.lines {
		fmt.Fprintf(w, "| %s | %s |\n", l[0], l[1])
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// orcidN is the n-th of a series of valid iDs.
func orcidN(n int) string {
	base := fmt.Sprintf("%015d", 200000000000000+n)
	total := 0
	for i := 0; i < len(base); i++ {
		total = (total + int(base[i]-'0')) * 2
	}
	r := (12 - total%11) % 11
	check := byte('0' + r)
	if r == 10 {
		check = 'X'
	}
	d := base + string(check)
	return d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
}

// latencies are durations with percentiles.
type latencies []time.Duration

func (l latencies) sorted() latencies {
	s := append(latencies(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func (l latencies) p(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := l.sorted()
	i := int(float64(len(s)-1) * q / 100)
	return s[i].Round(10 * time.Microsecond)
}

func (l latencies) max() time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l.sorted()[len(l)-1].Round(10 * time.Microsecond)
}

type hammerOpt func(*hammerCfg)

type hammerCfg struct {
	lat    *latencies
	status int
}

func withLatency(l *latencies) hammerOpt { return func(c *hammerCfg) { c.lat = l } }
func expect(status int) hammerOpt        { return func(c *hammerCfg) { c.status = status } }

// hammer sends n requests made by mk with the given concurrency and returns the rate.
func hammer(ctx context.Context, c *http.Client, concurrency, n int, mk func(i int) (*http.Request, error), opts ...hammerOpt) (float64, error) {
	var cfg hammerCfg
	for _, o := range opts {
		o(&cfg)
	}
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var lat latencies
	if cfg.lat != nil {
		lat = make(latencies, n)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < min(concurrency, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				req, err := mk(i)
				if err == nil {
					t0 := time.Now()
					var res *http.Response
					res, err = c.Do(req.WithContext(ctx))
					if err == nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if cfg.status != 0 && res.StatusCode != cfg.status {
							err = fmt.Errorf("%s %s: status %d, want %d", req.Method, req.URL.Path, res.StatusCode, cfg.status)
						}
					}
					if lat != nil {
						lat[i] = time.Since(t0)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if cfg.lat != nil {
		*cfg.lat = lat
	}
	return float64(n) / time.Since(start).Seconds(), firstErr
}

// stats is the receiver's count of arrivals.
type stats struct {
	Count    int64            `json:"count"`
	First    int64            `json:"first"` // unix ns
	Last     int64            `json:"last"`
	Arrivals map[string]int64 `json:"arrivals,omitempty"` // path → first arrival (unix ns), when asked
	// Ports and PortsLast are each port's arrivals and its last one (unix ns), in
	// the order of the receiver's URLs after the control one.
	Ports     []int64 `json:"ports"`
	PortsLast []int64 `json:"ports_last"`
}

func getStats(c *http.Client, control string, detail bool) (stats, error) {
	u := control + "/stats"
	if detail {
		u += "?detail=1"
	}
	res, err := c.Get(u)
	if err != nil {
		return stats{}, err
	}
	defer res.Body.Close()
	var s stats
	return s, json.NewDecoder(res.Body).Decode(&s)
}

// waitQuiet waits until the receiver has had no arrival for quiet, at most limit.
func waitQuiet(ctx context.Context, c *http.Client, control string, quiet, limit time.Duration) (stats, error) {
	deadline := time.Now().Add(limit)
	var last stats
	lastChange := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s, err := getStats(c, control, false)
		if err != nil {
			return s, err
		}
		if s.Count != last.Count {
			last, lastChange = s, time.Now()
		} else if s.Count > 0 && time.Since(lastChange) > quiet {
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return last, fmt.Errorf("deliveries still arriving after %s", limit)
}

// reset zeroes the receiver's counts; with record, it also keeps each path's first
// arrival from now on.
func reset(c *http.Client, control string, record bool) error {
	u := control + "/reset"
	if record {
		u += "?record=1"
	}
	res, err := c.Post(u, "", nil)
	if err != nil {
		return err
	}
	res.Body.Close()
	return nil
}

// latencyPhase sends events at a fixed rate, one per record, and measures from each
// 202 to the callback's arrival at the receiver.
// The receiver must be recording arrivals (reset with record). It returns the
// latency of each of the events, and when each was acknowledged (unix ns).
func latencyPhase(ctx context.Context, c *http.Client, control string, h *hookd, tok string, ids []string, o options) (latencies, []int64, error) {
	total := min(o.rate*o.latencySeconds, len(ids))
	acked := make([]int64, total)
	interval := time.Second / time.Duration(o.rate)
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.concurrency)
	var firstErr atomic.Value
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodPost, h.url+"/api/notifications/v1/events", strings.NewReader(`{"orcid":"`+ids[i]+`"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			res, err := c.Do(req)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			acked[i] = time.Now().UnixNano()
		}(i)
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, nil, err
	}
	if _, err := waitQuiet(ctx, c, control, time.Second, time.Minute); err != nil {
		return nil, nil, err
	}
	st, err := getStats(c, control, true)
	if err != nil {
		return nil, nil, err
	}
	var lat latencies
	for i := 0; i < total; i++ {
		if at, ok := st.Arrivals["/"+ids[i]+"/updated"]; ok {
			lat = append(lat, time.Duration(at-acked[i]))
			continue
		}
		for path, at := range st.Arrivals {
			if strings.Contains(path, ids[i]) {
				lat = append(lat, time.Duration(at-acked[i]))
				delete(st.Arrivals, path)
				break
			}
		}
	}
	if len(lat) != total {
		return lat, acked, fmt.Errorf("latency phase: %d of %d callbacks arrived", len(lat), total)
	}
	return lat, acked, nil
}

// steadyPhase offers o.rate events/s for o.steady, sampling throughput and database
// size every minute, to show both stay flat (retention at work).
func steadyPhase(ctx context.Context, c *http.Client, control string, h *hookd, tok string, ids []string, o options, r *report) error {
	if err := reset(c, control, false); err != nil {
		return err
	}
	interval := time.Second / time.Duration(o.rate)
	end := time.Now().Add(o.steady)
	nextSample := time.Now().Add(time.Minute)
	sem := make(chan struct{}, o.concurrency)
	var prev int64
	start := time.Now()
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodPost, h.url+"/api/notifications/v1/events", strings.NewReader(`{"orcid":"`+ids[i%len(ids)]+`"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			if res, err := c.Do(req); err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}(i)
		if time.Now().After(nextSample) {
			st, err := getStats(c, control, false)
			if err != nil {
				return err
			}
			r.add(fmt.Sprintf("steady minute %d", int(time.Since(start).Minutes())), "%d deliveries/min, database %s, RSS %s", st.Count-prev, mib(h.dbSize()), mib(h.rss()))
			prev = st.Count
			nextSample = nextSample.Add(time.Minute)
		}
	}
	return nil
}

// hookd is a running hookd serve.
type hookd struct {
	cmd      *exec.Cmd
	url      string
	db       string
	startup  time.Duration
	clientID string
	secret   string
	done     chan struct{}
}

// startHookd starts hookd serve on the run's database; with a profile file, hookd
// writes a CPU profile of its run there (HOOKD_CPUPROFILE) when it stops.
func startHookd(ctx context.Context, o options, paused bool, profile string) (*hookd, error) {
	cfg := filepath.Join(o.dir, "hookd.toml")
	db := filepath.Join(o.dir, "hookd.db")
	perHost := max(1, o.concurrency/o.ports)
	if o.perHost > 0 {
		perHost = o.perHost
	}
	pausedKey := ""
	if paused {
		pausedKey = "paused = true\n"
	}
	conf := fmt.Sprintf(`[http]
listen = "127.0.0.1:0"
[store]
path = %q
synchronous = %q
[delivery]
coalesce_window = "0s"
allow_private_targets = true
workers = %d
per_host = %d
tick = %q
retention = "1m"
%s[auth]
admin_token_file = %q
[log]
format = "json"
level = "warn"
`, db, o.synchronous, o.concurrency, perHost, o.tick.String(), pausedKey, filepath.Join(o.dir, "admin-token"))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.dir, "admin-token"), []byte(consoleToken+"\n"), 0o600); err != nil {
		return nil, err
	}
	h := &hookd{db: db, done: make(chan struct{})}
	creds := filepath.Join(o.dir, "client.json")
	if b, err := os.ReadFile(creds); err == nil {
		var c struct{ ClientID, ClientSecret string }
		json.Unmarshal(b, &struct {
			ClientID     *string `json:"client_id"`
			ClientSecret *string `json:"client_secret"`
		}{&c.ClientID, &c.ClientSecret})
		h.clientID, h.secret = c.ClientID, c.ClientSecret
	} else {
		// hookd init makes the database (client add no longer does); a binary that
		// predates init makes it at client add.
		if _, err := os.Stat(db); err != nil {
			if out, err := exec.Command(o.hookd, "init", "-config", cfg).CombinedOutput(); err != nil && !strings.Contains(string(out), `unknown command "init"`) {
				return nil, fmt.Errorf("init: %v\n%s", err, out)
			}
		}
		out, err := exec.Command(o.hookd, "client", "add", "-config", cfg, "-name", "loadtest", "-scopes", "/webhook,/notify", "-json").Output()
		if err != nil {
			return nil, fmt.Errorf("client add: %w", err)
		}
		var c struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if err := json.Unmarshal(out, &c); err != nil {
			return nil, err
		}
		h.clientID, h.secret = c.ClientID, c.ClientSecret
		os.WriteFile(creds, out, 0o600)
	}
	// READY comes over a notify socket, as under systemd.
	sock := filepath.Join(o.dir, "notify.sock")
	os.Remove(sock)
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	start := time.Now()
	h.cmd = exec.CommandContext(ctx, o.hookd, "serve", "-config", cfg)
	h.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	if profile != "" {
		h.cmd.Env = append(h.cmd.Env, "HOOKD_CPUPROFILE="+profile)
	}
	var stderr bytes.Buffer
	h.cmd.Stderr = &stderr
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { h.cmd.Wait(); close(h.done) }()
	buf := make([]byte, 512)
	ln.SetReadDeadline(time.Now().Add(2 * time.Minute))
	n, err := ln.Read(buf)
	if err != nil {
		h.cmd.Process.Kill()
		return nil, fmt.Errorf("hookd did not get ready: %v\n%s", err, stderr.String())
	}
	h.startup = time.Since(start)
	msg := string(buf[:n])
	i := strings.Index(msg, "listening on ")
	if i < 0 {
		return nil, fmt.Errorf("unexpected notify message %q", msg)
	}
	h.url = "http://" + strings.TrimSpace(msg[i+len("listening on "):])
	return h, nil
}

func (h *hookd) token(c *http.Client) (string, error) {
	res, err := c.PostForm(h.url+"/oauth/token", url.Values{"client_id": {h.clientID}, "client_secret": {h.secret},
		"grant_type": {"client_credentials"}, "scope": {"/webhook /notify"}})
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("token: status %d", res.StatusCode)
	}
	return t.AccessToken, nil
}

func (h *hookd) procStatus(field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the user and system CPU time process pid has used (Linux, 10 ms ticks).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which is in parentheses and may hold spaces).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func (h *hookd) peakRSS() int64 { return h.procStatus("VmHWM") }
func (h *hookd) rss() int64     { return h.procStatus("VmRSS") }

func (h *hookd) dbSize() int64 {
	var total int64
	for _, p := range []string{h.db, h.db + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		}
	}
	return total
}

func (h *hookd) stop() {
	select {
	case <-h.done:
		return
	default:
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		h.cmd.Process.Kill()
	}
}

// setDefault sets *v to def unless the flag name was given.
func (o *options) setDefault(name string, v *int, def int) {
	if !o.explicitlyGiven[name] {
		*v = def
	}
}

// receiver is the receiver process and its URLs: urls[0] is its control port,
// urls[1:] the ports that stand for target hosts.
type receiver struct {
	*exec.Cmd
	urls []string
}

func (r *receiver) pid() int { return r.Process.Pid }

// startReceiver starts the receiver process with the given number of target ports.
func startReceiver(ctx context.Context, ports int) (*receiver, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	recv := exec.CommandContext(ctx, self, "receive", "-ports", strconv.Itoa(ports))
	recv.Stderr = os.Stderr
	out, err := recv.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := recv.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		recv.Process.Kill()
		return nil, fmt.Errorf("receiver did not start: %w", err)
	}
	return &receiver{Cmd: recv, urls: strings.Fields(line)}, nil
}

// hookdRequest is what hookd sends to base for an ORCID-style delivery of record id:
// the same path, an empty body, the same headers with values of the same length.
func hookdRequest(base, id string, i int) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/"+id+"/updated", nil)
	if err == nil {
		req.Header.Set("User-Agent", "hookd/dev")
		req.Header["Webhook-Id"] = []string{fmt.Sprintf("msg_%d", 1000000+i)}
		req.Header["Webhook-Timestamp"] = []string{strconv.FormatInt(time.Now().Unix(), 10)}
		req.Header["Webhook-Signature"] = []string{"v1," + base64.StdEncoding.EncodeToString(make([]byte, 32))}
	}
	return req, err
}

// notifyDuring runs hookd notify (the real binary, on the run's database) one call
// after another, at most o.notify times, until the returned func is called; that
// func reports the calls' latency and returns the first failure. With -notify 0 it
// does nothing.
func notifyDuring(ctx context.Context, o options, phase string, r *report) func() error {
	if o.notify == 0 {
		return func() error { return nil }
	}
	stop, done := make(chan struct{}), make(chan struct{})
	var lat latencies
	var failed error
	go func() {
		defer close(done)
		for i := 0; i < o.notify; i++ {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			default:
			}
			t0 := time.Now()
			out, err := exec.CommandContext(ctx, o.hookd, "notify", "-config", filepath.Join(o.dir, "hookd.toml"), orcidN(i%o.subs)).CombinedOutput()
			if err != nil {
				failed = fmt.Errorf("hookd notify: %v: %s", err, out)
				return
			}
			lat = append(lat, time.Since(t0))
		}
	}()
	return func() error {
		close(stop)
		<-done
		r.add("hookd notify during the "+phase, "%d calls one after another: p50 %s p90 %s p99 %s max %s", len(lat), lat.p(50), lat.p(90), lat.p(99), lat.max())
		return failed
	}
}

// writeStats is hookd's count of write transactions and the calls they carried
// (its /metrics): calls per transaction is the group commit's size. Zeros when the
// metrics cannot be read.
func (h *hookd) writeStats(c *http.Client) (tx, calls int64) {
	res, err := c.Get(h.url + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "hookd_store_write_transactions_total":
			tx = int64(v)
		case "hookd_store_write_calls_total":
			calls = int64(v)
		}
	}
	return tx, calls
}
