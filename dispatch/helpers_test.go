package dispatch_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/orcid"
	"hookd/secret"
	"hookd/store"
)

// Records of ORCID's documentation; both have valid check digits.
const (
	orcidA = "0000-0002-7253-3645"
	orcidB = "0000-0002-9079-593X"
)

// unavailable skips a test for want of what it needs (a feature of the system or
// of this build), saying what, or fails it where CI=true: CI has everything the
// tests need, and a test skipped there would never run.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format+" (CI=true: CI must have it)", args...)
	}
	tb.Skipf(format, args...)
}

// testOrcid returns the i-th of a series of valid, distinct iDs.
func testOrcid(i int) string {
	base := fmt.Sprintf("000000031%06d", i)
	d := base + string(orcid.CheckDigit(base))
	return d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
}

// testClock is a pinned clock for store.Store.Now, safe to read from the
// dispatcher's goroutines while a test moves it.
type testClock struct{ ms atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *testClock) Set(t time.Time)         { c.ms.Store(t.UnixMilli()) }
func (c *testClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// testEnv is a real SQLite store in a temporary folder with a pinned clock and one
// API client that owns the subscriptions.
type testEnv struct {
	tb     testing.TB
	dir    string
	st     *store.Store
	clock  *testClock
	start  time.Time
	client store.Credentials
}

// newEnv opens a store in tb.TempDir(), pins its clock at 2024-03-01 12:00 UTC and
// creates a client with the /webhook scope.
func newEnv(tb testing.TB) *testEnv {
	tb.Helper()
	is := is.New(tb)
	e := &testEnv{tb: tb, dir: tb.TempDir(), clock: &testClock{}}
	e.start = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	e.clock.Set(e.start)
	e.st = e.open()
	tb.Cleanup(func() { e.st.Close() })
	c, err := e.st.CreateClient(context.Background(), store.NewClient{Name: "receiver-owner", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}})
	is.NoErr(err) // create client
	e.client = c
	return e
}

// open opens the env's database file with its key, on the pinned clock.
func (e *testEnv) open() *store.Store {
	e.tb.Helper()
	is := is.New(e.tb)
	box, err := secret.LoadKeyFile(filepath.Join(e.dir, "k"), true)
	is.NoErr(err) // load or create the secret key
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(e.dir, "hookd.db"), Box: box})
	is.NoErr(err) // open store
	st.Now = e.clock.Now
	return st
}

// reopen closes the store and opens the same file again, as a restarted process would.
func (e *testEnv) reopen() {
	e.tb.Helper()
	is := is.New(e.tb)
	is.NoErr(e.st.Close()) // close store
	e.st = e.open()
}

// subscribe registers callback for the record id as an ORCID-style webhook of the env's client.
func (e *testEnv) subscribe(id, callback string) store.Subscription {
	e.tb.Helper()
	is := is.New(e.tb)
	sub, created, err := e.st.PutOrcidWebhook(context.Background(), e.client.ID, id, callback)
	is.NoErr(err)    // register webhook
	is.True(created) // the registration is new
	return sub
}

// intake records events for the env's client without an idempotency key.
func (e *testEnv) intake(window time.Duration, events ...store.Event) store.IntakeResult {
	e.tb.Helper()
	is := is.New(e.tb)
	res, err := e.st.Intake(context.Background(), e.client.ID, "", events, window)
	is.NoErr(err) // intake
	return res
}

// emailOrg makes an organisation whose e-mail (no webhook) goes to
// orcid@uni.example, with orcidA as its member.
func (e *testEnv) emailOrg() {
	e.tb.Helper()
	is := is.New(e.tb)
	ctx := context.Background()
	org, err := e.st.CreateOrganisation(ctx, "University of Testing", "tech@uni.example")
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true, NotificationEmail: "orcid@uni.example"})
	is.NoErr(err)
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
	is.NoErr(err)
}

// dispatcher makes a Dispatcher on the env's store with deterministic jitter and
// loopback targets allowed; opt may change the options.
func (e *testEnv) dispatcher(opt func(*dispatch.Options)) *dispatch.Dispatcher {
	e.tb.Helper()
	o := dispatch.Options{
		Store:               e.st,
		Rand:                func() float64 { return 0.5 },
		AllowPrivateTargets: true,
		UserAgent:           "hookd/1.2.3-test",
	}
	if opt != nil {
		opt(&o)
	}
	d := dispatch.New(o)
	e.tb.Cleanup(d.Close)
	return d
}

// tick runs one Tick, then waits for the calls it started and records their
// outcomes. It returns how many calls the Tick started.
func (e *testEnv) tick(d *dispatch.Dispatcher) int {
	e.tb.Helper()
	is := is.New(e.tb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A tick whose calls have not ended by its deadline fails the test once they
	// do: what every goroutine was doing then says which call held it.
	stuck := time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		e.tb.Logf("the tick's calls are still running after 10 s; the goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	})
	defer stuck.Stop()
	n, err := d.Tick(ctx)
	is.NoErr(err)         // tick
	is.NoErr(d.Wait(ctx)) // wait for calls and record outcomes
	return n
}

// deliveries lists the outbox rows matching f, newest first.
func (e *testEnv) deliveries(f store.DeliveryFilter) []store.Delivery {
	e.tb.Helper()
	is := is.New(e.tb)
	ds, err := e.st.Deliveries(context.Background(), f)
	is.NoErr(err) // list deliveries
	return ds
}

// only returns the one outbox row there is.
func (e *testEnv) only() store.Delivery {
	e.tb.Helper()
	is := is.New(e.tb)
	ds := e.deliveries(store.DeliveryFilter{})
	if len(ds) != 1 {
		e.tb.Logf("deliveries: %+v", ds)
	}
	is.Equal(len(ds), 1) // exactly one delivery row
	return ds[0]
}

// attempts returns the attempt log of a delivery.
func (e *testEnv) attempts(id int64) []store.Attempt {
	e.tb.Helper()
	is := is.New(e.tb)
	as, err := e.st.Attempts(context.Background(), id)
	is.NoErr(err) // list attempts
	return as
}

// received is one request a receiver got.
type received struct {
	method string
	path   string
	header http.Header
	body   []byte
	// verr is what the receiver's own check (if any) said about the request.
	verr error
}

// receiver is a real HTTP server on 127.0.0.1 that logs every request and answers
// with its handler.
type receiver struct {
	srv *httptest.Server
	URL string

	mu       sync.Mutex
	reqs     []received
	inFlight int
	maxIn    int
	finished atomic.Int32
}

// receiverFunc answers the n-th request (1-based); body is already read. It returns
// an error to log with the request (e.g. a failed signature check), or nil.
type receiverFunc func(n int, w http.ResponseWriter, r *http.Request, body []byte) error

// newReceiver starts a receiver; a nil handler answers 204 to everything. Handlers
// that block must also return when r.Context() ends: at cleanup the receiver drops
// its connections, then waits for its handlers.
func newReceiver(tb testing.TB, h receiverFunc) *receiver {
	tb.Helper()
	rv := &receiver{}
	rv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rv.mu.Lock()
		n := len(rv.reqs) + 1
		rv.reqs = append(rv.reqs, received{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		rv.inFlight++
		rv.maxIn = max(rv.maxIn, rv.inFlight)
		rv.mu.Unlock()
		var err error
		if h == nil {
			w.WriteHeader(http.StatusNoContent)
		} else {
			err = h(n, w, r, body)
		}
		rv.mu.Lock()
		rv.reqs[n-1].verr = err
		rv.inFlight--
		rv.mu.Unlock()
		rv.finished.Add(1)
	}))
	rv.URL = rv.srv.URL
	tb.Cleanup(func() {
		rv.srv.CloseClientConnections()
		rv.srv.Close()
	})
	return rv
}

// requests returns a copy of the requests received so far.
func (rv *receiver) requests() []received {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]received(nil), rv.reqs...)
}

// count is how many requests arrived.
func (rv *receiver) count() int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return len(rv.reqs)
}

// maxInFlight is the most requests the receiver was handling at once.
func (rv *receiver) maxInFlight() int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.maxIn
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// hangsFirstCall is a receiver whose first call hangs until hookd hangs up (a
// minute is only a backstop), as a receiver that had the request and had not
// answered yet when hookd stopped; it answers 204 to the others.
func hangsFirstCall(tb testing.TB) *receiver {
	return newReceiver(tb, func(n int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if n == 1 {
			select {
			case <-time.After(time.Minute):
			case <-r.Context().Done():
				return nil
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// runUntil runs d's loop until cond holds (what names it), then stops it as a
// shutdown does and waits for Run to return. cond is not called again once it
// holds, so it may do what must happen just before the shutdown.
func runUntil(tb testing.TB, d *dispatch.Dispatcher, what string, cond func() bool) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	waitFor(tb, 2*time.Second, what, cond)
	cancel()
	if err := <-ran; err != nil {
		tb.Fatalf("run: %v", err)
	}
}

// hangingReceiver answers 204 to each call once release is closed (or after limit).
func hangingReceiver(tb testing.TB, release <-chan struct{}, limit time.Duration) *receiver {
	return newReceiver(tb, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		block(r, release, limit)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// block waits until release is closed, the request is cancelled, or limit passes.
func block(r *http.Request, release <-chan struct{}, limit time.Duration) {
	select {
	case <-release:
	case <-r.Context().Done():
	case <-time.After(limit):
	}
}
