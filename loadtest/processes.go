package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The processes under test: hookd serve, the receiver, hookd notify beside them.

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
	retention := "1m"
	if o.history > 0 {
		retention = historyAge.String()
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
retention = %q
%s[auth]
admin_token_file = %q
[log]
format = "json"
level = "warn"
`, db, o.synchronous, o.concurrency, perHost, o.tick.String(), retention, pausedKey, filepath.Join(o.dir, "admin-token"))
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
	h.cmd = wrapped(ctx, o.wrap, o.hookd, "serve", "-config", cfg)
	h.cmd.Env = append(h.cmd.Env, "NOTIFY_SOCKET="+sock)
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

// receiver is the receiver process and its URLs: urls[0] is its control port,
// urls[1:] the ports that stand for target hosts.
type receiver struct {
	*exec.Cmd
	urls []string
}

func (r *receiver) pid() int { return r.Process.Pid }

// startReceiver starts the receiver process with the given number of target ports,
// which answer as answer says (receive's -answer); its /durable handler writes in dir.
func startReceiver(ctx context.Context, ports int, dir, answer string) (*receiver, error) {
	return startReceiverIn(ctx, nil, ports, dir, answer)
}

// startReceiverIn is startReceiver with the process run by wrap (see wrapped).
func startReceiverIn(ctx context.Context, wrap *wrapper, ports int, dir, answer string) (*receiver, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	recv := wrapped(ctx, wrap, self, "receive", "-ports", strconv.Itoa(ports), "-dir", dir, "-answer", answer)
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

// wrapper runs a process under another program (valgrind), with more environment.
type wrapper struct {
	args []string // the program and its arguments, before the process's own
	env  []string
}

// wrapped is the command for name and args, run by wrap when there is one, with the
// environment of this process (and wrap's).
func wrapped(ctx context.Context, wrap *wrapper, name string, args ...string) *exec.Cmd {
	if wrap == nil {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = os.Environ()
		return cmd
	}
	cmd := exec.CommandContext(ctx, wrap.args[0], append(append(wrap.args[1:len(wrap.args):len(wrap.args)], name), args...)...)
	cmd.Env = append(os.Environ(), wrap.env...)
	return cmd
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
	m := h.metrics(c)
	return int64(m["hookd_store_write_transactions_total"]), int64(m["hookd_store_write_calls_total"])
}

// metrics reads hookd's /metrics: the value of each series by its name and
// labels as written there (hookd_deliveries_total{outcome="released"}). Empty
// when the metrics cannot be read.
func (h *hookd) metrics(c *http.Client) map[string]float64 {
	m := map[string]float64{}
	res, err := c.Get(h.url + "/metrics")
	if err != nil {
		return m
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			m[name] = v
		}
	}
	return m
}

// loopbackAddr is the host:port hookd listens on, refused unless it is
// 127.0.0.1: the scenarios that dial it themselves send traffic there only.
func (h *hookd) loopbackAddr() (string, error) {
	u, err := url.Parse(h.url)
	if err != nil {
		return "", err
	}
	if host, _, _ := net.SplitHostPort(u.Host); host != "127.0.0.1" {
		return "", fmt.Errorf("hookd listens on %s, not 127.0.0.1", u.Host)
	}
	return u.Host, nil
}
