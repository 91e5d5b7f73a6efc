// Package metrics exposes hookd's Prometheus metrics: what the dispatcher and the
// HTTP API count, and gauges of the outbox read from the store at scrape time.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"hookd/store"
)

// Metrics holds hookd's collectors.
type Metrics struct {
	registry   *prometheus.Registry
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
	events     prometheus.Counter
	requests   *prometheus.CounterVec
	conns      prometheus.Gauge
	refused    prometheus.Counter
	closedIdle prometheus.Counter
	outbox     *outbox
}

// New registers hookd's metrics, the outbox gauges of st, and the Go runtime's.
func New(st *store.Store) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookd_deliveries_total",
			Help: "Delivery attempts by outcome, once recorded: delivered, retry, dead, gone (410), deactivated, released (handed back unsent, not attempted).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookd_attempt_duration_seconds",
			Help:    "Duration of delivery attempts (the HTTP call or the SMTP send).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30},
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookd_events_received_total",
			Help: "Events accepted by the intake API (duplicates excluded) and updates ORCID relayed (hookd notify, a process of its own, is not counted).",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookd_http_requests_total",
			Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookd_http_connections_open",
			Help: "HTTP connections open, idle keep-alive ones included: at most http.max_connections.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookd_http_connections_refused_total",
			Help: "HTTP connections refused as http.max_connections were open and none idle: answered 503 and closed (closed alone when one sent nothing within a second, or 256 refusals were under way).",
		}),
		closedIdle: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookd_http_connections_closed_idle_total",
			Help: "HTTP connections closed to take a new one as http.max_connections were open: the one idle longest (between requests for over a second since its last answer, or silent for over a second since its accept).",
		}),
		outbox: &outbox{st: st},
	}
	m.registry.MustRegister(m.deliveries, m.duration, m.events, m.requests, m.conns, m.refused, m.closedIdle,
		m.outbox,
		collectors.NewGoCollector(), schedLatencies{},
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{"delivered", "retry", "dead", "gone", "deactivated", "released"} {
		m.deliveries.WithLabelValues(o)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(prometheus.GathererFunc(m.gather), promhttp.HandlerOpts{})
}

// clashing names the Go collector's families that would share a family name with
// another once a counter's _total is taken off, as OpenMetrics (and converters of
// Prometheus text, such as OpenTelemetry's receiver) name a counter's family:
// go_memstats_alloc_bytes is the gauge beside the counter
// go_memstats_alloc_bytes_total. Its value is go_memstats_heap_alloc_bytes's, which
// stays.
var clashing = map[string]bool{"go_memstats_alloc_bytes": true}

// gather is the registry's families without the clashing ones.
func (m *Metrics) gather() ([]*dto.MetricFamily, error) {
	fams, err := m.registry.Gather()
	kept := fams[:0]
	for _, f := range fams {
		if !clashing[f.GetName()] {
			kept = append(kept, f)
		}
	}
	return kept, err
}

// Outcome counts one recorded delivery outcome and, for an attempt, its duration.
func (m *Metrics) Outcome(outcome string, d time.Duration) {
	m.deliveries.WithLabelValues(outcome).Inc()
	if outcome != "released" {
		m.duration.Observe(d.Seconds())
	}
}

// Events counts accepted events.
func (m *Metrics) Events(n int) { m.events.Add(float64(n)) }

// Request counts one HTTP request.
func (m *Metrics) Request(route, method string, status int) {
	m.requests.WithLabelValues(route, methodLabel(method), strconv.Itoa(status)).Inc()
}

// ConnOpened counts an HTTP connection taken, open until ConnClosed.
func (m *Metrics) ConnOpened() { m.conns.Inc() }

// ConnClosed counts the close of a connection ConnOpened counted.
func (m *Metrics) ConnClosed() { m.conns.Dec() }

// ConnRefused counts an HTTP connection refused at http.max_connections.
func (m *Metrics) ConnRefused() { m.refused.Inc() }

// ConnClosedIdle counts an idle HTTP connection closed at http.max_connections to
// take a new one.
func (m *Metrics) ConnClosedIdle() { m.closedIdle.Inc() }

// methodLabel is a request's method as a label: one of HTTP's own, or OTHER, so a
// client choosing methods (the inbox takes any) does not add series without end.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// readingFor is how long a reading of the outbox gauges serves the scrapes that
// come after it. A reading counts every pending, in-flight and dead delivery and
// the webhooks switched off or failing: tens of milliseconds of a core at a
// million deliveries, half a second at a million webhooks half of them off. A
// scraper asks every 15 to 60 seconds, so a second's wait is nothing to it, and
// scrapes of /metrics however many cost at most one reading a second.
const readingFor = time.Second

// outbox reads the outbox gauges from the store when scraped: one reading at a
// time, which the scrapes waiting for it and those of the next readingFor share.
type outbox struct {
	st       *store.Store
	mu       sync.Mutex // held while reading
	g        store.Gauges
	err      error
	at       time.Time    // when the last reading ended; zero before the first
	readings atomic.Int64 // readings made, for tests
}

// gauges is a reading of the store's gauges started within readingFor: the last
// one, or a new one if it is older.
func (o *outbox) gauges() (store.Gauges, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.at.IsZero() && time.Since(o.at) < readingFor {
		return o.g, o.err
	}
	o.readings.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o.g, o.err = o.st.Gauges(ctx)
	// From its end: a reading that takes half a second leaves the store a
	// second before the next, whatever scrapes wait.
	o.at = time.Now()
	return o.g, o.err
}

var (
	descState   = prometheus.NewDesc("hookd_outbox_deliveries", "Deliveries in the outbox by state (pending includes failed ones awaiting a retry).", []string{"state"}, nil)
	descAge     = prometheus.NewDesc("hookd_oldest_due_delivery_age_seconds", "How long the oldest due delivery has been due (0 when none is).", nil, nil)
	descUp      = prometheus.NewDesc("hookd_store_up", "1 when the store answered the last reading of the gauges (at most a second old) and takes writes; 0 while it cannot be written (a full disk, a read-only file: /readyz names why).", nil, nil)
	descTx      = prometheus.NewDesc("hookd_store_write_transactions_total", "Transactions the group writer committed or rolled back (intake, registrations, other API writes and the dispatch loop's turns).", nil, nil)
	descOff     = prometheus.NewDesc("hookd_webhooks_inactive", "Webhooks switched off (a 410, or failing past disable_after) and not reactivated: their events are not delivered.", nil, nil)
	descFailing = prometheus.NewDesc("hookd_webhooks_failing", "Active webhooks whose deliveries have failed since their last success, and which hookd is still trying (not idle past retry_max_delay after the retry planned); disable_after counts from the first of those failures.", nil, nil)
	descCalls   = prometheus.NewDesc("hookd_store_write_calls_total", "Write calls those transactions carried: calls / transactions is the group commit size.", nil, nil)
)

func (o *outbox) Describe(ch chan<- *prometheus.Desc) {
	ch <- descState
	ch <- descAge
	ch <- descUp
	ch <- descTx
	ch <- descCalls
	ch <- descOff
	ch <- descFailing
}

func (o *outbox) Collect(ch chan<- prometheus.Metric) {
	groups, calls := o.st.WriteStats()
	ch <- prometheus.MustNewConstMetric(descTx, prometheus.CounterValue, float64(groups))
	ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(calls))
	g, err := o.gauges()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	// A store that answers reads but refuses writes (a full disk) is not up: every
	// intake and outcome fails, as /readyz says. The store knows that without a
	// read (a stat, and a test write at most once a second while the disk is
	// almost full), so each scrape asks.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := 1.0
	if o.st.Fault(ctx) != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
	for state, n := range map[string]int{"pending": g.Pending, "in_flight": g.InFlight, "dead": g.Dead} {
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, g.OldestDueAge.Seconds())
	ch <- prometheus.MustNewConstMetric(descOff, prometheus.GaugeValue, float64(g.Inactive))
	ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, float64(g.Failing))
}
