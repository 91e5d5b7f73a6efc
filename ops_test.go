package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"hookd/httpapi"
)

// TestSystemdNotify runs "hookd serve" with NOTIFY_SOCKET set to a real unix datagram
// socket and reads what hookd tells systemd: READY=1 once listening, watchdog pings
// while healthy, STOPPING=1 on shutdown.
func TestSystemdNotify(t *testing.T) {
	is := is.New(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	is.NoErr(err) // systemd's end of the socket
	defer conn.Close()
	env := map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "100000"}
	getenv := func(k string) string { return env[k] }

	cfg := testConfig(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr, done := serveIn(ctx, cfg, getenv)

	read := func(prefix string) string {
		t.Helper()
		buf := make([]byte, 4096)
		deadline := time.Now().Add(5 * time.Second)
		for {
			conn.SetReadDeadline(deadline)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no %q from hookd: %v; log:\n%s", prefix, err, stderr)
			}
			if msg := string(buf[:n]); strings.HasPrefix(msg, prefix) {
				return msg
			}
		}
	}
	ready := read("READY=1")
	is.True(strings.Contains(ready, "STATUS=listening on 127.0.0.1:")) // status line with the address
	select {
	case <-stderr.listening: // READY came after the listening log line, i.e. after listen and migration
	default:
		t.Fatal("READY=1 before hookd logged that it listens")
	}
	read("WATCHDOG=1") // pinged at half of WATCHDOG_USEC
	read("WATCHDOG=1") // and again
	cancel()
	read("STOPPING=1")
	is.NoErr(<-done) // clean shutdown
}

// TestSystemdNotifyDuringMigration starts "hookd serve" on a file that an earlier
// version made (the latest migration undone by hand) with NOTIFY_SOCKET set: before
// READY=1, hookd names the migration it applies and asks systemd to extend its
// start timeout, so a long migration is not killed half way and begun again.
func TestSystemdNotifyDuringMigration(t *testing.T) {
	is := is.New(t)
	cfg := version7Config(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	is.NoErr(err) // systemd's end of the socket
	defer conn.Close()
	getenv := func(k string) string { return map[string]string{"NOTIFY_SOCKET": sock}[k] }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr, done := serveIn(ctx, cfg, getenv)
	var got []string
	buf := make([]byte, 4096)
	for len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "READY=1") {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no READY=1 from hookd: %v; it said %q; log:\n%s", err, got, stderr)
		}
		got = append(got, string(buf[:n]))
	}
	is.Equal(got[0], "EXTEND_TIMEOUT_USEC=60000000\nSTATUS=applying database migration 0008_retention.sql") // first, before READY
	is.True(strings.Contains(stderr.String(), `"migration":"0008_retention.sql"`))                          // and logged
	cancel()
	is.NoErr(<-done)
}

// version7Config is testConfig with its database as version 7 left it: version 8's
// indexes dropped and its migration not recorded.
func version7Config(t *testing.T) string {
	is := is.New(t)
	cfg := testConfig(t, "")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(filepath.Dir(cfg), "hookd.db"))
	is.NoErr(err)
	for _, q := range []string{"DROP INDEX idempotency_created", "DROP INDEX deliveries_done", "DELETE FROM schema_migrations WHERE version = 8"} {
		_, err := db.Exec(q)
		is.NoErr(err) // the file as version 7 left it
	}
	is.NoErr(db.Close())
	return cfg
}

// TestCommandSaysItMigrates: a command that is the first to open a file after an
// upgrade says on stderr which migration it applies, and then does its work.
func TestCommandSaysItMigrates(t *testing.T) {
	is := is.New(t)
	cfg := version7Config(t)
	var stdout, stderr safeBuffer
	is.NoErr(run(context.Background(), []string{"hookd", "client", "list", "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr))
	is.True(strings.Contains(stderr.String(), "hookd: applying database migration 0008_retention.sql to ")) // said
	stderr = safeBuffer{}
	is.NoErr(run(context.Background(), []string{"hookd", "client", "list", "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr))
	is.Equal(stderr.String(), "") // and only once
}

func TestWatchdogInterval(t *testing.T) {
	is := is.New(t)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	d, err := watchdogInterval(env(nil), 42)
	is.NoErr(err)
	is.Equal(d, time.Duration(0)) // no watchdog asked
	d, err = watchdogInterval(env(map[string]string{"WATCHDOG_USEC": "30000000"}), 42)
	is.NoErr(err)
	is.Equal(d, 15*time.Second) // half of WatchdogSec
	d, err = watchdogInterval(env(map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}), 42)
	is.NoErr(err)
	is.Equal(d, time.Duration(0)) // meant for another process
	_, err = watchdogInterval(env(map[string]string{"WATCHDOG_USEC": "soon"}), 42)
	is.True(err != nil) // garbage is reported
}

// TestMetricsAndNoSecretsInLogs runs the whole path with debug logging, then parses

// TestWatchdogWithheldIsLogged: a watchdog ping withheld because hookd is not
// healthy is logged once, with why, as systemd will restart hookd for it (its own
// line, "Watchdog timeout", says nothing of the cause), not once per interval; and
// the pings starting again are logged too.
func TestWatchdogWithheldIsLogged(t *testing.T) {
	is := is.New(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	is.NoErr(err) // systemd's end of the socket
	defer conn.Close()
	var logs safeBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	var calls atomic.Int32
	healthy := func(context.Context) error {
		if calls.Add(1) <= 5 {
			return errors.New("dispatcher last took a turn 1m0s ago")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go newNotifier(func(string) string { return sock }).watchdog(ctx, 5*time.Millisecond, healthy, log)

	buf := make([]byte, 64)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	is.NoErr(err)                           // pinged once healthy again
	is.Equal(string(buf[:n]), "WATCHDOG=1") // the ping
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "pinged again") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	is.Equal(strings.Count(out, "not pinged"), 1)                          // one line for the five misses
	is.True(strings.Contains(out, "dispatcher last took a turn 1m0s ago")) // saying why
	is.True(strings.Contains(out, "restart"))                              // and what systemd will do
	is.Equal(strings.Count(out, "pinged again"), 1)                        // and one when it is healthy again
}

// /metrics and checks that no secret or token appears anywhere in the logs.
func TestMetricsAndNoSecretsInLogs(t *testing.T) {
	is := is.New(t)
	got := make(chan struct{}, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- struct{}{}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	cfg := testConfig(t, "\n[delivery]\ncoalesce_window = \"0s\"\ntick = \"100ms\"\nallow_private_targets = true\n")
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "m", "-scopes", "/webhook,/notify", "-json")
	is.NoErr(err)
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c))

	d := startDaemon(t, cfg)
	res, err := noRedirects.PostForm(d.url+"/oauth/token", url.Values{"client_id": {c.ClientID}, "client_secret": {c.ClientSecret},
		"grant_type": {"client_credentials"}, "scope": {"/webhook /notify"}})
	is.NoErr(err)
	var tr struct{ AccessToken, RefreshToken string }
	var raw map[string]any
	is.NoErr(json.NewDecoder(res.Body).Decode(&raw))
	res.Body.Close()
	tr.AccessToken, _ = raw["access_token"].(string)
	tr.RefreshToken, _ = raw["refresh_token"].(string)
	is.True(tr.AccessToken != "" && tr.RefreshToken != "") // tokens issued

	res = put(t, d.url, "/0000-0002-7253-3645/webhook/"+httpapi.EscapeSegment(recv.URL+"/cb"), tr.AccessToken)
	is.Equal(res.StatusCode, http.StatusCreated) // registered
	req, _ := http.NewRequest(http.MethodPost, d.url+"/api/notifications/v1/events", strings.NewReader(`{"orcid":"0000-0002-7253-3645"}`))
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	res, err = noRedirects.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusAccepted) // event taken
	// A bad token too, so the failure path is logged as well.
	req, _ = http.NewRequest(http.MethodGet, d.url+"/0000-0002-7253-3645/webhook", nil)
	req.Header.Set("Authorization", "Bearer not-"+tr.AccessToken)
	res, err = noRedirects.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusUnauthorized)
	// A 404 on a known route: an id no webhook has.
	req, _ = http.NewRequest(http.MethodGet, d.url+"/api/notifications/v1/webhooks/0b6c4e0e-8c0f-4d6e-9a53-2f1f3c8f1a11", nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	res, err = noRedirects.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusNotFound)

	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatalf("no delivery; log:\n%s", d.stderr)
	}

	// Metrics: wait for the outcome to be counted, then parse the whole page.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err = noRedirects.Get(d.url + "/metrics")
		is.NoErr(err)
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = parser.TextToMetricFamilies(res.Body)
		res.Body.Close()
		is.NoErr(err) // /metrics is valid Prometheus text
		if value(fams, "hookd_deliveries_total", "outcome", "delivered") == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	is.Equal(value(fams, "hookd_deliveries_total", "outcome", "delivered"), 1.0)                               // one delivery counted
	is.Equal(value(fams, "hookd_events_received_total", "", ""), 1.0)                                          // one event
	is.Equal(fams["hookd_attempt_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(), uint64(1)) // one attempt timed
	is.Equal(value(fams, "hookd_outbox_deliveries", "state", "dead"), 0.0)                                     // outbox gauges
	is.Equal(value(fams, "hookd_store_up", "", ""), 1.0)                                                       // store answered
	is.True(fams["hookd_oldest_due_delivery_age_seconds"] != nil)                                              // age gauge present
	is.True(fams["go_sched_latencies_seconds"].GetMetric()[0].GetHistogram().GetSampleCount() > 0)             // the scheduler's latencies
	txs, calls := value(fams, "hookd_store_write_transactions_total", "", ""), value(fams, "hookd_store_write_calls_total", "", "")
	is.True(txs >= 1 && calls >= 2 && calls >= txs)                                                        // the registration and the event went through the group writer
	is.Equal(value(fams, "hookd_http_requests_total", "route", "/api/notifications/v1/events"), 1.0)       // by route
	is.Equal(value(fams, "hookd_http_requests_total", "route", "/:orcid/webhook/:callback"), 1.0)          // iD and callback folded
	is.Equal(value(fams, "hookd_http_requests_total", "route", "/api/notifications/v1/webhooks/:id"), 1.0) // a 404 under its route
	is.Equal(value(fams, "hookd_http_requests_total", "route", "unmatched"), -1.0)                         // nothing unmatched
	is.NoErr(d.stop())

	logs := d.stderr.String()
	is.True(strings.Contains(logs, `"msg":"delivered"`) || strings.Contains(logs, `"msg":"http"`)) // debug logs were written
	durations := 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		is.NoErr(json.Unmarshal([]byte(line), &rec)) // a JSON log line
		for _, k := range []string{"duration", "retry_in", "grace"} {
			if v, ok := rec[k]; ok {
				_, text := v.(string)
				is.True(text) // a duration is written as text ("3ms"), not nanoseconds
				durations++
			}
		}
	}
	is.True(durations > 0) // and there were some
	for name, secret := range map[string]string{"client secret": c.ClientSecret, "signing secret": c.SigningSecret,
		"access token": tr.AccessToken, "refresh token": tr.RefreshToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
}

// value returns the value of the sample of family name whose label has the value
// (any sample when label is empty); -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name, label, want string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		match := label == ""
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == want {
				match = true
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// TestBackupCommandWhileServing runs "hookd backup" against the database of a running
// daemon and opens the copy with the same key.
func TestBackupCommandWhileServing(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "before-backup", "-json")
	is.NoErr(err)
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c))
	d := startDaemon(t, cfg)

	dest := filepath.Join(t.TempDir(), "copy.db")
	out, err = runCmd(t, "backup", "-config", cfg, dest)
	is.NoErr(err)                               // backup while the daemon runs
	is.True(strings.Contains(out, "backed up")) // says so
	is.True(strings.Contains(out, "hookd.key")) // and names the key file to keep
	_, err = runCmd(t, "backup", "-config", cfg, dest)
	is.True(err != nil) // never overwrites
	is.NoErr(d.stop())

	// The copy opens with the original key: a config pointing at it lists the client.
	restored := filepath.Join(t.TempDir(), "restored.toml")
	body := "[store]\npath = " + strconv.Quote(dest) + "\n[auth]\nsecret_key_file = " + strconv.Quote(filepath.Join(filepath.Dir(cfg), "hookd.key")) + "\n"
	is.NoErr(os.WriteFile(restored, []byte(body), 0o600))
	out, err = runCmd(t, "client", "list", "-config", restored)
	is.NoErr(err)                                   // the copy opens
	is.True(strings.Contains(out, "before-backup")) // with its data
}

// TestListeningNamesDatabaseInFull: the start's "listening" line names the
// database by its absolute path, whatever the working directory, so the journal
// says which file a daemon uses (a relative store.path is relative to the
// configuration's folder, not to where one reads the log).
func TestListeningNamesDatabaseInFull(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	dir := filepath.Dir(cfg)
	t.Chdir(dir)
	d := startDaemon(t, filepath.Base(cfg)) // hookd.toml, and its database hookd.db, relative
	is.NoErr(d.stop())
	var database string
	for _, line := range strings.Split(d.stderr.String(), "\n") {
		var rec struct{ Msg, Database string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			database = rec.Database
		}
	}
	is.Equal(database, filepath.Join(dir, "hookd.db")) // the file, in full
}

// TestServePausedEndsLapsedRuns: a daemon started with delivery.paused ends the
// runs of failures that lapsed (a webhook not tried for longer than
// retry_max_delay after the retry its last failure planned), as the retention
// pass it does not run would: hookd_webhooks_failing counted such a webhook as
// failing for as long as delivery stayed paused.
func TestServePausedEndsLapsedRuns(t *testing.T) {
	is := is.New(t)
	var calls atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer recv.Close()
	failing := func(d *daemon, want float64) {
		t.Helper()
		var got float64
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			res, err := noRedirects.Get(d.url + "/metrics")
			is.NoErr(err)
			parser := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := parser.TextToMetricFamilies(res.Body)
			res.Body.Close()
			is.NoErr(err) // /metrics is valid Prometheus text
			if got = value(fams, "hookd_webhooks_failing", "", ""); got == want {
				return
			}
		}
		t.Fatalf("hookd_webhooks_failing is %v, not %v; daemon log:\n%s", got, want, d.stderr)
	}

	cfg := testConfig(t, fastDelivery+"retry_base = \"100ms\"\nretry_max_delay = \"300ms\"\n")
	d := startDaemon(t, cfg)
	registerCallback(t, cfg, d, recv.URL)
	_, err := runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.NoErr(err) // notify
	failing(d, 1) // its deliveries fail
	is.NoErr(d.stop())
	time.Sleep(time.Second) // past retry_max_delay after the last retry planned: the run lapsed

	paused := filepath.Join(filepath.Dir(cfg), "paused.toml")
	body, err := os.ReadFile(cfg)
	is.NoErr(err) // read config
	is.NoErr(os.WriteFile(paused, []byte(strings.Replace(string(body), "[delivery]\n", "[delivery]\npaused = true\n", 1)), 0o600))
	tried := calls.Load()
	d = startDaemon(t, paused)
	failing(d, 0)                 // no longer failing: nothing was tried for longer than retry_max_delay
	is.Equal(calls.Load(), tried) // nor is anything tried while paused
	is.NoErr(d.stop())
}
