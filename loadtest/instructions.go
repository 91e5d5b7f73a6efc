package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// instructions measures hookd's work per event in instructions instead of seconds:
// hookd serve runs under valgrind's callgrind, which counts the instructions a
// process executes whatever the machine's speed, so two revisions compare on a
// machine whose speed swings within minutes. hookd takes -events single-event POSTs
// (each for a record of its own, so none merges) and then -events/5 in a second
// run on the same database; the difference of the two counts, over the difference
// of the events, is the work of one event, without the start-up and the idle
// ticks both runs share. It is measured for the intake alone (delivery paused),
// for intake and delivery (each event's callback arrives at the receiver), and for
// the no-op that is the intake's yardstick (the receiver's /noop, under callgrind
// too). The counts are user space only: the kernel's share (system calls, loopback
// TCP, fsync) is not in them.
//
// With -pace, the events go one at a time, each once the one before has been
// answered (and its callback has arrived, with delivery) and the pace has passed:
// each is then alone in hookd, as events are in a trickle, and shares no commit
// and no turn. The difference of the two runs then also holds the idle ticks of
// the dispatch loop that fall between the events (one a tick, hookd's default 1s),
// which a trickle pays too: their number moves with the run's length, so paced
// counts compare between runs of the same pace and -events. With -count-in,
// callgrind counts only what runs inside the functions named (its
// --toggle-collect, which switches counting at a named function's entry and
// exit: a named function called inside another is left out): the share of one
// event's work that they take.
//
// Callgrind runs one thread at a time and cannot take a signal: hookd runs with
// GOMAXPROCS=1 and asynchronous preemption off (GODEBUG=asyncpreemptoff=1; and
// cpu.rdtscp=off: valgrind 3.19 cannot run the RDTSCP the runtime's clock uses on
// processors that have it, and raises SIGILL), its
// counts are dumped with callgrind_control and it is then killed. A run's count
// moves with the timing (how many calls share a commit, how many rows a turn
// claims), so runs compare when nothing else runs beside them.
func instructions(ctx context.Context, o options, recv *receiver) error {
	for _, tool := range []string{"valgrind", "callgrind_control"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("-scenario instructions needs %s (Debian's valgrind package): %w", tool, err)
		}
	}
	if o.events < 2 {
		return fmt.Errorf("-scenario instructions: -events must be 2 or more: the work of one event is the difference of two runs of different sizes")
	}
	if o.events > o.subs {
		return fmt.Errorf("-scenario instructions: -events (%d) must not exceed -subs (%d): each event is for a record of its own", o.events, o.subs)
	}
	small := max(1, o.events/5) // below o.events, since o.events >= 2
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
	}}
	control := recv.urls[0]
	rep := &report{}

	// The database every run starts from: the registrations, and a token.
	h, err := startHookd(ctx, o, true, "")
	if err != nil {
		return err
	}
	tok, err := h.token(client)
	if err != nil {
		h.stop()
		return err
	}
	if _, err := hammer(ctx, client, o.concurrency, o.subs, func(i int) (*http.Request, error) {
		return registration(h, tok, recv.urls[1], orcidN(i))
	}, expect(http.StatusCreated)); err != nil {
		h.stop()
		return fmt.Errorf("registrations: %w", err)
	}
	h.stop()
	// The snapshot is the database and its lock file, which says what the daemon saw
	// of it: without it, each run would start on what looks like a restored copy
	// (new delivery ids past the time in microseconds, longer to store).
	snapshot := filepath.Join(o.dir, "snapshot.db")
	if err := copyFile(h.db, snapshot); err != nil {
		return err
	}
	if err := copyFile(h.db+".lock", snapshot+".lock"); err != nil {
		return err
	}
	if _, err := os.Stat(h.db + "-wal"); err == nil {
		return errors.New("hookd left a WAL behind when it stopped: the snapshot would miss its frames")
	}

	event := func(base string) func(i int) (*http.Request, error) {
		return func(i int) (*http.Request, error) {
			req, err := http.NewRequest(http.MethodPost, base, strings.NewReader(`{"orcid":"`+orcidN(i)+`"}`))
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		}
	}
	// send posts n events: over o.intakeConns connections, or with -pace one at a
	// time, each after the one before was answered (and its callback arrived, if
	// called) and the pace passed.
	send := func(n int, mk func(i int) (*http.Request, error), called bool) error {
		if o.pace <= 0 {
			_, err := hammer(ctx, client, o.intakeConns, n, mk, expect(http.StatusAccepted))
			return err
		}
		for i := range n {
			if _, err := hammer(ctx, client, 1, 1, func(int) (*http.Request, error) { return mk(i) }, expect(http.StatusAccepted)); err != nil {
				return err
			}
			if called {
				if err := waitArrivalsEvery(ctx, client, control, i+1, time.Minute, 5*time.Millisecond); err != nil {
					return err
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(o.pace):
			}
		}
		return nil
	}
	var counted []string
	for _, f := range strings.Split(o.countIn, ",") {
		if f = strings.TrimSpace(f); f != "" {
			counted = append(counted, "--toggle-collect="+f)
		}
	}
	// hookdRun counts the instructions of a hookd that takes n events.
	hookdRun := func(what string, paused bool, n int) (int64, error) {
		for _, p := range []string{h.db + "-wal", h.db + "-shm"} {
			os.Remove(p)
		}
		if err := copyFile(snapshot, h.db); err != nil {
			return 0, err
		}
		if err := copyFile(snapshot+".lock", h.db+".lock"); err != nil {
			return 0, err
		}
		out := filepath.Join(o.dir, fmt.Sprintf("callgrind.%s.%d", what, n))
		run := o
		run.wrap = callgrind(out, counted...)
		hc, err := startHookd(ctx, run, paused, "")
		if err != nil {
			return 0, err
		}
		defer func() { hc.cmd.Process.Kill(); <-hc.done }() // no SIGTERM: callgrind fails on a signal
		if err := reset(client, control, false); err != nil {
			return 0, err
		}
		if err := send(n, event(hc.url+"/api/notifications/v1/events"), !paused); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		if !paused {
			if err := waitArrivals(ctx, client, control, n, 10*time.Minute); err != nil {
				return 0, fmt.Errorf("%s: %w", what, err)
			}
		}
		return dumpCount(ctx, hc.cmd.Process.Pid, out)
	}
	noopRun := func(n int) (int64, error) {
		out := filepath.Join(o.dir, fmt.Sprintf("callgrind.noop.%d", n))
		nr, err := startReceiverIn(ctx, callgrind(out), 1, o.dir, "204")
		if err != nil {
			return 0, err
		}
		defer func() { nr.Process.Kill(); nr.Wait() }()
		if err := send(n, event(nr.urls[0]+"/noop"), false); err != nil {
			return 0, fmt.Errorf("no-op: %w", err)
		}
		return dumpCount(ctx, nr.Process.Pid, out)
	}
	perEvent := func(run func(n int) (int64, error)) (float64, error) {
		a, err := run(small)
		if err != nil {
			return 0, err
		}
		b, err := run(o.events)
		if err != nil {
			return 0, err
		}
		return float64(b-a) / float64(o.events-small), nil
	}

	paused, err := perEvent(func(n int) (int64, error) { return hookdRun("paused", true, n) })
	if err != nil {
		return err
	}
	both, err := perEvent(func(n int) (int64, error) { return hookdRun("delivering", false, n) })
	if err != nil {
		return err
	}
	if len(counted) > 0 && paused == 0 && both == 0 {
		return fmt.Errorf("no instructions an event counted inside %s: is each name a function as callgrind names it (callgrind_annotate a dump in -dir), and does it run for each event?", o.countIn)
	}
	how := fmt.Sprintf("over %d connections", o.intakeConns)
	if o.pace > 0 {
		how = fmt.Sprintf("one at a time, each after the one before and %s (idle ticks of %s between them included)", o.pace, o.tick)
	}
	rep.add("set-up", "%d ORCID registrations to one receiver host; runs of %d and %d single-event POSTs %s, each for a record of its own",
		o.subs, small, o.events, how)
	inside := ""
	if len(counted) > 0 {
		inside = " inside " + o.countIn
	}
	rep.add("hookd: intake, delivery paused", "%.1f k instructions an event%s", paused/1000, inside)
	rep.add("hookd: intake and delivery", "%.1f k instructions an event and its callback%s (delivery alone: %.1f k)", both/1000, inside, (both-paused)/1000)
	if len(counted) == 0 {
		noop, err := perEvent(noopRun)
		if err != nil {
			return err
		}
		rep.add("no-op yardstick (the receiver's /noop)", "%.1f k instructions a request: %.2f of the intake's", noop/1000, noop/paused)
	}
	rep.print(os.Stdout)
	return nil
}

// callgrind is the wrapper that runs a process under callgrind, writing its counts
// to out (and a dump to out.1).
func callgrind(out string, extra ...string) *wrapper {
	return &wrapper{
		args: append([]string{"valgrind", "-q", "--tool=callgrind", "--callgrind-out-file=" + out}, extra...),
		env:  []string{"GOMAXPROCS=1", "GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off"},
	}
}

// dumpCount has callgrind dump the counts of process pid (to out.1) and returns
// their total, once the dump is whole.
func dumpCount(ctx context.Context, pid int, out string) (int64, error) {
	if b, err := exec.CommandContext(ctx, "callgrind_control", "-d", strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control: %v\n%s", err, b)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if n, ok, err := callgrindTotal(out + ".1"); err != nil {
			return 0, err
		} else if ok {
			return n, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("no whole dump at %s.1 within 2 minutes", out)
}

// callgrindTotal reads the total of a callgrind dump: its "totals:" line, the last
// it writes (ok is false while the file is not whole yet).
func callgrindTotal(path string) (n int64, ok bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), "totals:"); found {
			n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n, err == nil, err
		}
	}
	return 0, false, sc.Err()
}

// waitArrivals waits until the receiver has counted n arrivals since its reset.
func waitArrivals(ctx context.Context, c *http.Client, control string, n int, limit time.Duration) error {
	return waitArrivalsEvery(ctx, c, control, n, limit, 100*time.Millisecond)
}

// waitArrivalsEvery is waitArrivals asking the receiver every poll.
func waitArrivalsEvery(ctx context.Context, c *http.Client, control string, n int, limit, poll time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s, err := getStats(c, control, false)
		if err != nil {
			return err
		}
		if s.Count >= int64(n) {
			return nil
		}
		time.Sleep(poll)
	}
	return fmt.Errorf("fewer than %d callbacks arrived within %s", n, limit)
}

// copyFile copies the file at from to to.
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
