package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// receive is the receiver process: it listens on -ports loopback ports (plus one for
// control), answers every POST with 204 (or, with -answer receipt, 200 and a short
// JSON receipt), and records arrivals for /stats.
func receive(args []string) error {
	fs := flag.NewFlagSet("receive", flag.ContinueOnError)
	ports := fs.Int("ports", 8, "ports to listen on")
	dir := fs.String("dir", os.TempDir(), "folder of the file /durable writes")
	answerFlag := fs.String("answer", "204", `what the target ports answer: "204", "receipt" (200 and a short JSON receipt), or "hang" (nothing, until the caller hangs up)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	answer, err := answerFunc(*answerFlag)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var count, first, last int64
	// Per port: arrivals and the last one (unix ns), so a run with several hosts
	// can tell one host's traffic from another's.
	portCount, portLast := make([]int64, *ports), make([]int64, *ports)
	// recording keeps each path's first arrival, for the latency phases only: the
	// map is work the raw baseline does not do, so the throughput phases go without.
	var recording bool
	arrivals := map[string]int64{}
	hit := func(port int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := time.Now().UnixNano()
			mu.Lock()
			count++
			if first == 0 {
				first = now
			}
			last = now
			portCount[port-1]++
			portLast[port-1] = now
			if recording {
				if _, ok := arrivals[r.URL.Path]; !ok && len(arrivals) < 2_000_000 {
					arrivals[r.URL.Path] = now
				}
			}
			mu.Unlock()
			answer(w, r)
		})
	}
	// /durable is the yardstick of a durable acknowledgement (durable.go).
	durable, err := openDurableLog(*dir)
	if err != nil {
		return err
	}
	control := http.NewServeMux()
	control.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := stats{Count: count, First: first, Last: last, Ports: append([]int64(nil), portCount...), PortsLast: append([]int64(nil), portLast...)}
		s.DurableSyncs, s.DurableRequests = durable.syncs.Load(), durable.done.Load()
		if r.URL.Query().Get("detail") != "" {
			s.Arrivals = make(map[string]int64, len(arrivals))
			for k, v := range arrivals {
				s.Arrivals[k] = v
			}
		}
		mu.Unlock()
		json.NewEncoder(w).Encode(s)
	})
	// /noop is the intake's yardstick: it reads the request and answers as hookd's
	// intake does, doing nothing else.
	control.HandleFunc("/noop", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"accepted":1,"duplicates":0,"deliveries":1}`+"\n")
	})
	control.Handle("/durable", durable)
	control.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		recording = r.URL.Query().Get("record") != ""
		count, first, last = 0, 0, 0
		clear(portCount)
		clear(portLast)
		arrivals = map[string]int64{}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	var urls []string
	var lns []net.Listener
	for i := 0; i <= *ports; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		urls = append(urls, "http://"+ln.Addr().String())
	}
	fmt.Println(strings.Join(urls, " "))
	errc := make(chan error, len(lns))
	for i, ln := range lns {
		h := hit(max(i, 1))
		if i == 0 {
			h = control
		}
		go func() { errc <- http.Serve(ln, h) }()
	}
	return <-errc
}

// receipt is what a receiver answers a delivery with -answer receipt: the size and
// shape of what many webhook receivers send back.
const receipt = `{"status":"received","id":"msg_2LqW8qZ4f9Rk","orcid":"0000-0002-1825-0097"}`

// answerText says what the target ports answer, for the report.
func answerText(name string) string {
	if name == "receipt" {
		return fmt.Sprintf("200 and a %d-byte JSON receipt", len(receipt))
	}
	return "204, no body"
}

// answerFunc is how the target ports answer, by the name -answer gives.
func answerFunc(name string) (func(http.ResponseWriter, *http.Request), error) {
	switch name {
	case "204":
		return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, nil
	case "receipt":
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, receipt)
		}, nil
	case "hang":
		return func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Minute): // bounded, as every load loop is
			}
			w.WriteHeader(http.StatusNoContent)
		}, nil
	}
	return nil, fmt.Errorf(`-answer %q: want "204", "receipt" or "hang"`, name)
}
