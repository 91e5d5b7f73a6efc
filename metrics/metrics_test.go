package metrics_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"hookd/metrics"
	"hookd/secret"
	"hookd/store"
)

// newStore opens a fresh store in a temporary folder.
func newStore(tb testing.TB) *store.Store {
	tb.Helper()
	return openStore(tb, filepath.Join(tb.TempDir(), "hookd.db"))
}

// openStore opens a store on the database at path.
func openStore(tb testing.TB, path string) *store.Store {
	tb.Helper()
	is := is.New(tb)
	box, err := secret.NewBox(secret.Random(secret.KeySize))
	is.NoErr(err) // make secret box
	st, err := store.Open(context.Background(), store.Options{Path: path, Box: box})
	is.NoErr(err) // open store
	tb.Cleanup(func() { st.Close() })
	return st
}

// scrape serves m's page over HTTP and parses it.
func scrape(tb testing.TB, m *metrics.Metrics) map[string]*dto.MetricFamily {
	tb.Helper()
	is := is.New(tb)
	srv := httptest.NewServer(m.Handler())
	tb.Cleanup(srv.Close)
	res, err := http.Get(srv.URL)
	is.NoErr(err) // scrape
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	is.NoErr(err) // valid Prometheus text
	return fams
}

// TestFamilyNamesDistinct: no two metrics of the page share a family name once a
// counter's _total is taken off, as OpenMetrics names a counter's family (and as tools that
// convert Prometheus text, such as OpenTelemetry's receiver, do): the outbox gauge
// and the outcome counter would otherwise be two families of one name, and so would
// the Go collector's go_memstats_alloc_bytes gauge and go_memstats_alloc_bytes_total
// counter.
func TestFamilyNamesDistinct(t *testing.T) {
	is := is.New(t)
	m := metrics.New(newStore(t))
	m.Outcome("delivered", 0)
	m.Request("/healthz", http.MethodGet, http.StatusOK)
	m.Events(1)
	seen := map[string]string{}
	for name, f := range scrape(t, m) {
		family := name
		if f.GetType() == dto.MetricType_COUNTER {
			family = strings.TrimSuffix(name, "_total")
		}
		if other, ok := seen[family]; ok {
			t.Errorf("%s and %s are both the family %s", name, other, family)
		}
		seen[family] = name
	}
	is.True(seen["hookd_outbox_deliveries"] != "")      // the outbox gauge
	is.True(seen["hookd_deliveries"] != "")             // the outcome counter
	is.True(seen["go_memstats_alloc_bytes"] != "")      // the Go runtime's bytes allocated, as a counter
	is.True(seen["go_memstats_heap_alloc_bytes"] != "") // and the heap in use
}

// gauge is the value of a family's only sample.
func gauge(fams map[string]*dto.MetricFamily, name string) float64 {
	f := fams[name]
	if f == nil || len(f.GetMetric()) != 1 {
		return -1
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

// TestStoreUpTakesWrites: hookd_store_up is 0 while the database answers reads
// but takes no writes (read-only here; a full disk alike), when /readyz says
// not ready and every write is refused, and 1 again once it takes them.
func TestStoreUpTakesWrites(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	m := metrics.New(st)
	is.Equal(gauge(scrape(t, m), "hookd_store_up"), 1.0) // a store that takes writes

	is.NoErr(st.QueryOnly(ctx, true))
	_, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeNotify}})
	is.True(errors.Is(err, store.ErrUnavailable)) // the write is refused
	fams := scrape(t, m)
	is.Equal(gauge(fams, "hookd_store_up"), 0.0)                  // not up
	is.True(fams["hookd_outbox_deliveries"] != nil)               // the gauges read all the same
	is.Equal(len(fams["hookd_outbox_deliveries"].GetMetric()), 3) // one a state

	is.NoErr(st.QueryOnly(ctx, false))
	deadline := time.Now().Add(5 * time.Second)
	for gauge(scrape(t, m), "hookd_store_up") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("hookd_store_up stays 0 once the database takes writes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWebhookHealthGauges: hookd_webhooks_inactive counts the webhooks switched
// off (but not one on its way out, being removed) and hookd_webhooks_failing the
// active ones failing since their last success, read from the database at each
// scrape.
func TestWebhookHealthGauges(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openStore(t, path)
	m := metrics.New(st)
	fams := scrape(t, m)
	is.Equal(gauge(fams, "hookd_webhooks_inactive"), 0.0) // none yet
	is.Equal(gauge(fams, "hookd_webhooks_failing"), 0.0)

	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client
	for i := 0; i < 4; i++ {
		_, _, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:9/hook", Auth: store.Auth{Type: store.AuthNone}})
		is.NoErr(err) // webhook
	}
	// The states dispatch leaves behind, written as it writes them: one gone (a
	// 410), one failing, one failing and then switched off, one being removed.
	db, err := sql.Open("sqlite", path)
	is.NoErr(err)
	defer db.Close()
	now := time.Now().UnixMilli()
	for _, q := range []string{
		"UPDATE subscriptions SET active = 0, reason = '410 Gone' WHERE id = (SELECT min(id) FROM subscriptions)",
		"UPDATE subscriptions SET failing_since = ?1 WHERE id = (SELECT min(id) + 1 FROM subscriptions)",
		"UPDATE subscriptions SET failing_since = ?1, active = 0, reason = 'failing' WHERE id = (SELECT min(id) + 2 FROM subscriptions)",
		"UPDATE subscriptions SET active = 0, reason = 'being removed' WHERE id = (SELECT min(id) + 3 FROM subscriptions)",
	} {
		_, err := db.ExecContext(ctx, q, now)
		is.NoErr(err)
	}
	time.Sleep(metrics.ReadingFor) // the first scrape's reading no longer serves
	fams = scrape(t, m)
	is.Equal(gauge(fams, "hookd_webhooks_inactive"), 2.0) // the gone one and the one switched off for failing
	is.Equal(gauge(fams, "hookd_webhooks_failing"), 1.0)  // the one failing and still on
}

// TestWebhooksInactiveLeavesDeliberateOnesOut: hookd_webhooks_inactive is an
// alert on what hookd switched off by itself; a webhook its owner or an operator
// switched off, an organisation's setting turned off and hookd's upstream
// registration left without [upstream] are off on purpose, and not counted.
func TestWebhooksInactiveLeavesDeliberateOnesOut(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	m := metrics.New(st)

	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client
	var uids []string
	for i := 0; i < 2; i++ {
		sub, _, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:9/hook", Auth: store.Auth{Type: store.AuthNone}})
		is.NoErr(err) // webhook
		uids = append(uids, sub.UID)
	}
	_, err = st.SetWebhookActive(ctx, c.ID, uids[0], false)
	is.NoErr(err) // switched off by its owner
	_, err = st.SetSubscriptionActive(ctx, uids[1], false, store.ReasonOperator)
	is.NoErr(err) // switched off by an operator
	o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err) // organisation
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h", EmailEnabled: true})
	is.NoErr(err) // its webhook and e-mail on
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{URL: "https://a.example/h"})
	is.NoErr(err) // and turned off
	_, err = st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org")
	is.NoErr(err) // upstream registration configured
	_, err = st.ConfigureUpstream(ctx, "")
	is.NoErr(err) // and no longer

	subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{})
	is.NoErr(err) // list
	off := 0
	for _, s := range subs {
		if !s.Active {
			off++
		}
	}
	is.True(off >= 4)                                             // all of them off
	is.Equal(gauge(scrape(t, m), "hookd_webhooks_inactive"), 0.0) // none switched off by hookd
}

// TestScrapesShareAReading: /metrics is open to whoever reaches it, and a reading
// of the outbox gauges counts the whole outbox (half a second of a core at a
// million webhooks): 50 scrapes at once make one reading (two if the second ends
// among them), not 50, and a reading serves the scrapes of a second only, after
// which the gauges move.
func TestScrapesShareAReading(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openStore(t, path)
	m := metrics.New(st)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func() (map[string]*dto.MetricFamily, error) {
		res, err := http.Get(srv.URL)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		return parser.TextToMetricFamilies(res.Body)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fams, err := get()
			if err == nil && gauge(fams, "hookd_store_up") != 1 {
				err = errors.New("a scrape without the outbox gauges")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		is.NoErr(err) // every scrape answered, with the gauges
	}
	n := metrics.Readings(m)
	t.Logf("50 scrapes at once: %d readings", n)
	is.True(n >= 1 && n <= 2) // one reading shared, not one a scrape

	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client
	_, _, err = st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:9/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // webhook
	db, err := sql.Open("sqlite", path)
	is.NoErr(err)
	defer db.Close()
	_, err = db.ExecContext(ctx, "UPDATE subscriptions SET active = 0, reason = '410 Gone'")
	is.NoErr(err) // switched off by a 410
	time.Sleep(metrics.ReadingFor)
	fams, err := get()
	is.NoErr(err)
	is.Equal(gauge(fams, "hookd_webhooks_inactive"), 1.0) // a second on, the gauges move
	is.Equal(metrics.Readings(m), n+1)                    // with a new reading
}
