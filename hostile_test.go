package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
)

// hostileReceivers answer the way broken or hostile receivers do. Each runs on its
// own port, so hookd sees each as a host of its own.
func hostileReceivers(tb testing.TB, stop chan struct{}, calls *sync.Map) map[string]*httptest.Server {
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	handlers := map[string]http.HandlerFunc{
		"hangs": func(w http.ResponseWriter, r *http.Request) {
			select { // never answers, until the test ends
			case <-stop:
			case <-r.Context().Done():
			}
		},
		"trickles": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			for { // a byte now and then, forever
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-stop:
					return
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		},
		"endless body": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			for { // as fast as hookd reads
				if _, err := w.Write(chunk); err != nil {
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		},
		"huge headers": func(w http.ResponseWriter, r *http.Request) {
			for i := range 200 {
				w.Header().Set("X-Junk-"+strconv.Itoa(i), strings.Repeat("y", 4000))
			}
			w.WriteHeader(http.StatusOK)
		},
		"redirects": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		},
		"429": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		},
	}
	out := map[string]*httptest.Server{}
	for name, h := range handlers {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := calls.LoadOrStore(name, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			h(w, r)
		}))
		tb.Cleanup(srv.Close)
		out[name] = srv
	}
	return out
}

// TestHostileReceivers: receivers that hang, trickle, send an endless body or
// huge headers, redirect, or answer 429 with a long Retry-After never stall the
// deliveries to a healthy receiver, and hookd's memory stays bounded meanwhile.
func TestHostileReceivers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary against hostile receivers: skipped with -short")
	}
	is := is.New(t)
	stop := make(chan struct{})
	defer close(stop)
	var calls sync.Map // receiver → calls
	hostile := hostileReceivers(t, stop, &calls)

	var mu sync.Mutex
	healthy := map[string]bool{}
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		healthy[r.URL.Path] = true
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer good.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte(fmt.Sprintf(`[http]
listen = "127.0.0.1:0"
[store]
path = %q
[delivery]
coalesce_window = "0s"
tick = "50ms"
timeout = "1s"
retry_base = "50ms"
retry_max_delay = "100ms"
allow_private_targets = true
workers = 16
per_host = 2
[log]
format = "json"
level = "info"
`, filepath.Join(dir, "hookd.db"))), 0o600)) // write config
	initDB(t, cfg)
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "hostile", "-scopes", "/webhook,/notify", "-json")
	is.NoErr(err) // client add
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c)) // client add -json

	p := startProcess(t, "serve", "-config", cfg)
	tok := scopedToken(t, p.url, c.ClientID, c.ClientSecret, "/webhook /notify")
	register := func(id, callback string) {
		res := put(t, p.url, "/"+id+"/webhook/"+httpapi.EscapeSegment(callback), tok)
		is.Equal(res.StatusCode, http.StatusCreated) // registered
	}
	notify := func(ids []string) {
		var body bytes.Buffer
		body.WriteString("[")
		for i, id := range ids {
			if i > 0 {
				body.WriteString(",")
			}
			fmt.Fprintf(&body, `{"orcid":%q}`, id)
		}
		body.WriteString("]")
		req, err := http.NewRequest(http.MethodPost, p.url+"/api/notifications/v1/events", &body)
		is.NoErr(err) // make request
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := noRedirects.Do(req)
		is.NoErr(err) // send events
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusAccepted) // events accepted
	}

	// Every hostile receiver has many records' callbacks, so it always has work.
	n := 0
	var hostileIDs []string
	for _, srv := range hostile {
		for range 20 {
			n++
			id := nthOrcid(n)
			register(id, srv.URL+"/"+id)
			hostileIDs = append(hostileIDs, id)
		}
	}
	notify(hostileIDs)

	// Then rounds of events for the healthy receiver while the hostile ones keep
	// hookd busy: each round is delivered.
	for round := range 5 {
		var ids []string
		for range 20 {
			n++
			id := nthOrcid(n)
			register(id, good.URL+"/"+id)
			ids = append(ids, id)
		}
		notify(append(ids, hostileIDs...))
		waitFor(t, fmt.Sprintf("round %d delivered to the healthy receiver", round), p.logs.String, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if !healthy["/"+id] {
					return false
				}
			}
			return true
		})
	}

	for name := range hostile {
		n, ok := calls.Load(name)
		is.True(ok && n.(*atomic.Int64).Load() > 0) // every hostile receiver was called meanwhile
	}

	// The endless body was cut at the response snippet: hookd's peak memory stays
	// far below what the receivers sent.
	peak := procStatusKiB(t, p.cmd.Process.Pid, "VmHWM")
	t.Logf("hookd peak RSS %d MiB", peak>>10)
	is.True(peak < 256<<10) // peak RSS under 256 MiB
}

// procStatusKiB reads a "kB" field of /proc/PID/status.
func procStatusKiB(tb testing.TB, pid int, field string) int64 {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		unavailable(tb, "no /proc on this system: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				tb.Fatalf("%s: %v", field, err)
			}
			return v
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
