package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"hookd/httpapi"
	"hookd/ssrf"
	"hookd/store"
)

// inboxJSON is one request as "hookd inbox list -json" prints it.
type inboxJSON struct {
	ID           int64       `json:"id"`
	Inbox        string      `json:"inbox"`
	Method       string      `json:"method"`
	Path         string      `json:"path"`
	Headers      [][2]string `json:"headers"`
	Verdict      string      `json:"verdict"`
	Problem      string      `json:"problem"`
	SignerKind   string      `json:"signer_kind"`
	SignerID     string      `json:"signer_id"`
	DeliveryID   int64       `json:"delivery_id"`
	Attempt      int         `json:"attempt"`
	AnswerStatus int         `json:"answer_status"`
}

// inboxRequests runs "hookd inbox list [NAME] -json" with extra flags.
func inboxRequests(tb testing.TB, cfg string, args ...string) []inboxJSON {
	tb.Helper()
	is := is.New(tb)
	out, err := runCmd(tb, append([]string{"inbox", "list", "-config", cfg, "-json"}, args...)...)
	is.NoErr(err) // inbox list
	var rs []inboxJSON
	is.NoErr(json.Unmarshal([]byte(out), &rs)) // its JSON
	return rs
}

// eventually polls cond until it holds, failing the test after within.
func eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInboxEndToEnd: hookd serve with private targets refused and the inbox on; a
// registration at its own inbox; "hookd notify"; the inbox answers 500, then 204;
// the inbox's record names the delivery and each attempt, and the delivery's
// record names the requests. Nothing else on loopback is reachable.
func TestInboxEndToEnd(t *testing.T) {
	is := is.New(t)
	var otherCalls atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherCalls.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer other.Close()
	cfg := testConfig(t, "\n[delivery]\ncoalesce_window = \"0s\"\ntick = \"100ms\"\nretry_base = \"200ms\"\nretry_max_delay = \"1s\"\n"+
		"allow_private_targets = false\n[inbox]\nenabled = true\n")

	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "e2e", "-scopes", "/webhook", "-json")
	is.NoErr(err) // client add
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c)) // its credentials
	d := startDaemon(t, cfg)
	tok := token(t, d.url, c.ClientID, c.ClientSecret)

	const record = "0000-0002-7253-3645"
	callback := d.url + "/inbox/e2e/" + record + "/updated"
	res := put(t, d.url, "/"+record+"/webhook/"+httpapi.EscapeSegment(callback), tok)
	is.Equal(res.StatusCode, http.StatusCreated) // hookd's own inbox may be registered
	for _, cb := range []string{d.url + "/healthz", d.url + "/inbox/../metrics", other.URL + "/inbox/e2e/x"} {
		res := put(t, d.url, "/"+record+"/webhook/"+httpapi.EscapeSegment(cb), tok)
		is.Equal(res.StatusCode, http.StatusBadRequest) // nothing else on loopback
	}

	out, err = runCmd(t, "inbox", "set", "e2e", "-status", "500", "-config", cfg)
	is.NoErr(err)                                               // the inbox fails for now
	is.True(strings.Contains(out, "500 Internal Server Error")) // says so
	_, err = runCmd(t, "notify", "-config", cfg, record)
	is.NoErr(err) // the record changed

	eventually(t, 10*time.Second, "the first attempt to reach the inbox", func() bool {
		return len(inboxRequests(t, cfg, "e2e")) > 0
	})
	_, err = runCmd(t, "inbox", "set", "e2e", "-reset", "-config", cfg)
	is.NoErr(err) // and succeeds from now on
	var rs []inboxJSON
	eventually(t, 10*time.Second, "a retry that the inbox answers 204", func() bool {
		rs = inboxRequests(t, cfg, "e2e")
		return len(rs) > 0 && rs[0].AnswerStatus == http.StatusNoContent
	})

	var ds []struct {
		ID       int64  `json:"id"`
		State    string `json:"state"`
		Attempts int    `json:"attempts"`
	}
	var delivery int64
	eventually(t, 10*time.Second, "the delivery to be recorded as delivered", func() bool {
		out, err := runCmd(t, "deliveries", "list", "-config", cfg, "-json")
		if err != nil || json.Unmarshal([]byte(out), &ds) != nil || len(ds) != 1 {
			return false
		}
		delivery = ds[0].ID
		return ds[0].State == "delivered"
	})
	n := ds[0].Attempts
	is.True(n >= 2) // at least one 500 and the 204

	// From the delivery to its requests: one per attempt, each with its answer,
	// newest first as an inbox's are.
	byDelivery := inboxRequests(t, cfg, "-delivery", strconvI(delivery))
	is.Equal(len(byDelivery), n) // every attempt reached the inbox
	for i, r := range byDelivery {
		is.Equal(r.DeliveryID, delivery)                            // the delivery that sent it
		is.Equal(r.Attempt, n-i)                                    // and which attempt, the last first
		is.Equal(r.Verdict, "valid")                                // signed
		is.Equal(r.SignerKind+" "+r.SignerID, "client "+c.ClientID) // with the client's signing secret
		is.Equal(r.Path, "/inbox/e2e/"+record+"/updated")           // at the callback's path
		want := http.StatusInternalServerError
		if i == 0 {
			want = http.StatusNoContent
		}
		is.Equal(r.AnswerStatus, want) // 500 until reset, then 204
	}
	last := inboxRequests(t, cfg, "-delivery", strconvI(delivery), "-limit", "1")
	is.Equal(len(last), 1)                               // a limit
	is.Equal(last[0].Attempt, n)                         // keeps the newest attempt
	is.Equal(last[0].AnswerStatus, http.StatusNoContent) // the one that succeeded
	slices.Reverse(byDelivery)                           // in attempt order below
	// From the delivery's attempts to the requests: the attempt log shows what the
	// inbox answered, which names the request it recorded.
	out, err = runCmd(t, "deliveries", "list", "-config", cfg, "-attempts")
	is.NoErr(err)                                                                  // the attempt log
	is.True(strings.Contains(out, "recorded request "+strconvI(byDelivery[0].ID))) // attempt 1's answer names request 1
	is.True(strings.Contains(out, "\n    attempt 1  "))                            // each attempt on a line of its own, under its delivery
	is.True(strings.Contains(out, "  status 500: "))                               // with what it got
	lines := strings.Split(strings.TrimSpace(out), "\n")
	third := regexp.MustCompile(`^(?:\S+\s+){3}`) // up to where the fourth column (ORCID) begins
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "    attempt ") {
			is.Equal(len(third.FindString(l)), len(third.FindString(lines[0]))) // the deliveries' rows keep the header's columns
		}
	}
	// From a request to its delivery and attempt.
	out, err = runCmd(t, "inbox", "show", strconvI(byDelivery[0].ID), "-config", cfg)
	is.NoErr(err)                                                                      // inbox show
	is.True(strings.Contains(out, "hookd delivery "+strconvI(delivery)+", attempt 1")) // names them
	is.True(strings.Contains(out, "Webhook-Id: msg_"+strconvI(delivery)))              // from its webhook-id
	is.True(strings.Contains(out, "(hookd deliveries show "+strconvI(delivery)+")"))   // and the command that shows it
	out, err = runCmd(t, "deliveries", "show", strconvI(delivery), "-config", cfg)
	is.NoErr(err)
	is.True(strings.HasPrefix(out, "delivery     "+strconvI(delivery)+" ")) // which does

	// The same links in the console, for the client that owns the registration: the
	// delivery's page lists the requests it made, a request's page names its delivery.
	browser := consoleSignIn(t, d.url, url.Values{"kind": {"client"}, "client_id": {c.ClientID}, "secret": {c.ClientSecret}})
	page := consolePage(t, browser, d.url+"/console/deliveries/"+strconvI(delivery))
	for _, r := range byDelivery {
		is.True(strings.Contains(page, fmt.Sprintf(`<a href="/console/inbox/requests/%d">request #%d</a> in inbox e2e, attempt %d`, r.ID, r.ID, r.Attempt))) // each attempt's request
	}
	page = consolePage(t, browser, d.url+"/console/inbox/requests/"+strconvI(byDelivery[0].ID))
	is.True(strings.Contains(page, fmt.Sprintf(`<a href="/console/deliveries/%d">hookd delivery #%d</a>, attempt 1`, delivery, delivery))) // its delivery
	page = consolePage(t, browser, d.url+"/console/inbox?inbox=e2e")
	is.True(strings.Contains(page, "It answers <strong>204 No Content (default)</strong>")) // the inbox, as the command line left it

	// Registrations that bypassed the API's check are refused when hookd connects:
	// its own address outside /inbox/, and another loopback port.
	st := openTestStore(t, cfg)
	for id, cb := range map[string]string{"0000-0002-9079-593X": d.url + "/healthz", "0000-0001-5109-3700": other.URL + "/inbox/e2e/x"} {
		_, _, err := st.PutOrcidWebhook(context.Background(), c.ClientID, id, cb)
		is.NoErr(err) // stored directly, as a file from elsewhere could hold it
	}
	is.NoErr(st.Close())
	_, err = runCmd(t, "notify", "-config", cfg, "0000-0002-9079-593X", "0000-0001-5109-3700")
	is.NoErr(err) // events for both
	eventually(t, 10*time.Second, "both to be refused at dial", func() bool {
		out, err := runCmd(t, "deliveries", "list", "-config", cfg, "-state", "failed")
		return err == nil && strings.Count(out, "allow_private_targets is off") == 2
	})
	is.Equal(otherCalls.Load(), int32(0))          // the other port was never reached
	is.Equal(len(inboxRequests(t, cfg, "e2e")), n) // and the inbox got nothing more

	// A live view of the inbox page open at shutdown ends with it.
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, d.url+"/console/inbox/events?inbox=e2e", nil)
	is.NoErr(err)
	stream, err := (&http.Client{Jar: browser.Jar}).Do(req)
	is.NoErr(err) // the page's event stream
	defer stream.Body.Close()
	is.Equal(stream.Header.Get("Content-Type"), "text/event-stream; charset=utf-8")
	is.NoErr(d.stop())                                             // graceful shutdown
	_, err = io.Copy(io.Discard, stream.Body)                      // the stream has ended
	is.NoErr(err)                                                  // cleanly
	is.True(!strings.Contains(d.stderr.String(), "http shutdown")) // without holding up the shutdown
}

// consoleSignIn signs in to a daemon's console with form (kind, and the client's
// id and secret or the admin token) and returns the browser-like client.
func consoleSignIn(tb testing.TB, base string, form url.Values) *http.Client {
	tb.Helper()
	is := is.New(tb)
	jar, err := cookiejar.New(nil)
	is.NoErr(err)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(consolePage(tb, c, base+"/console/signin"))
	is.True(m != nil) // the form's token
	form.Set("csrf", m[1])
	res, err := c.PostForm(base+"/console/signin", form) // follows to the overview
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK) // signed in
	return c
}

// consolePage gets a console page as c and returns its body (a 200 page).
func consolePage(tb testing.TB, c *http.Client, u string) string {
	tb.Helper()
	is := is.New(tb)
	res, err := c.Get(u)
	is.NoErr(err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	is.NoErr(err)
	is.Equal(res.StatusCode, http.StatusOK) // the page
	return string(b)
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

// TestDevFirstMinute follows hookd dev's banner as a newcomer would: a token, the
// registration of the inbox callback it shows, an event, and "hookd inbox tail
// demo" showing the signed callback arrive.
func TestDevFirstMinute(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "hookd-dev.db")
	dev := startDev(t, noenv, "-listen", "127.0.0.1:0", "-db", db)
	defer func() { is.NoErr(dev.stop()) }() // hookd dev stops cleanly
	banner := dev.banner
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^  ` + name + ` +(\S+)$`).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("no %s in the banner:\n%s", name, banner)
		}
		return m[1]
	}
	quoted := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("no match for %s in the banner:\n%s", re, banner)
		}
		return m[1]
	}
	putURL := quoted(`-X PUT '([^']+)'`)
	eventsURL := quoted(`'(http://[^']+/api/notifications/v1/events)'`)
	callback, err := url.PathUnescape(putURL[strings.LastIndex(putURL, "/")+1:])
	is.NoErr(err)                                                                     // the callback the banner registers
	is.True(strings.Contains(callback, "/inbox/demo/"))                               // is hookd's own inbox
	is.True(strings.HasPrefix(putURL, callback[:strings.Index(callback, "/inbox/")])) // on hookd's own address

	base := putURL[:strings.Index(putURL, "/0000-")]
	token, status, _ := bannerPUT(t, base, putURL, field("client_id"), field("client_secret"))
	is.Equal(status, http.StatusCreated) // registered

	// "hookd inbox tail demo" follows the inbox, from the dev database.
	cfg := filepath.Join(dir, "cli.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[store]\npath = \"hookd-dev.db\"\n"), 0o600)) // the dev database, for the CLI
	tctx, stopTail := context.WithCancel(context.Background())
	var tailOut, tailErr safeBuffer
	tailDone := make(chan error, 1)
	go func() {
		tailDone <- run(tctx, []string{"hookd", "inbox", "tail", "demo", "-config", cfg, "-n", "0", "-interval", "50ms"},
			noenv, strings.NewReader(""), &tailOut, &tailErr)
	}()
	eventually(t, 10*time.Second, "tail to start following", func() bool { return strings.Contains(tailErr.String(), "following inbox demo") })

	ev, err := http.NewRequest(http.MethodPost, eventsURL, strings.NewReader(`{"orcid":"0000-0002-7253-3645"}`))
	is.NoErr(err)
	ev.Header.Set("Authorization", "Bearer "+token)
	ev.Header.Set("Content-Type", "application/json")
	res, err := noRedirects.Do(ev)
	is.NoErr(err) // the banner's event
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusAccepted) // taken

	eventually(t, 10*time.Second, "the callback in hookd inbox tail", func() bool {
		return strings.Contains(tailOut.String(), "valid (client "+field("client_id")+")")
	})
	stopTail()
	is.NoErr(<-tailDone) // tail ends at Ctrl-C without an error
	line := tailOut.String()
	is.True(strings.Contains(line, "POST /inbox/demo/0000-0002-7253-3645/updated")) // the callback
	is.True(strings.Contains(line, " 204 "))                                        // answered 204
	is.True(strings.Contains(line, "delivery 1 attempt 1"))                         // by the first attempt of the first delivery
	// The banner says what the tail shows: the verdict and the delivery, not the
	// headers, which -full adds.
	is.True(!strings.Contains(line, "Webhook-Signature:"))
	is.True(strings.Contains(banner, "Watch the callback arrive (its signature verdict and the delivery that sent it; -full adds headers and body):"))
}

func TestInboxCommandErrors(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "hookd.toml") // a configuration whose database is not made yet
	if err := os.WriteFile(cfg, []byte("[store]\npath = \"hookd.db\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no database", []string{"list"}, "no database at"},
		{"unknown subcommand", []string{"frob"}, `unknown command "frob"`},
		{"show without id", []string{"show"}, "usage"},
		{"show of a word", []string{"show", "x"}, "not a request id"},
		{"tail of a bad name", []string{"tail", "a/b"}, "not an inbox name"},
		{"tail too fast", []string{"tail", "demo", "-interval", "1ms"}, "-interval"},
		{"set of nothing", []string{"set", "demo"}, "say how the inbox answers"},
		{"reset and more", []string{"set", "demo", "-reset", "-status", "500"}, "-reset goes alone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			_, err := runCmd(t, append(append([]string{"inbox"}, tt.args...), "-config", cfg)...)
			is.True(err != nil)                             // refused
			is.True(strings.Contains(err.Error(), tt.want)) // saying why
		})
	}
	is := is.New(t)
	_, err := runCmd(t, "inbox")
	is.True(err != nil && strings.Contains(err.Error(), "give a command: list, show, tail, set, clear")) // no subcommand: the choices
	_, err = os.Stat(filepath.Join(filepath.Dir(cfg), "hookd.db"))
	is.True(os.IsNotExist(err)) // no database was created

	_, err = runCmd(t, "init", "-config", cfg) // makes the database
	is.NoErr(err)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-status", "99"}, "inbox set: -status: 99 is not a status"},
		{[]string{"-status", "500", "-retry-after", "5"}, "inbox set: -retry-after: is sent only with a 429 or a 503"},
		{[]string{"-redirect", "javascript:alert(1)"}, "inbox set: -redirect:"},
		{[]string{"-delay", "1h"}, "inbox set: -delay: must be from 0s to 5m0s"},
		{[]string{"-status", "503", "-retry-after", "36028797018964088"}, "inbox set: -retry-after: must be whole seconds from 1 to 86400 (a day), got 36028797018964088"}, // not a product that overflowed into a short wait
	} {
		_, err := runCmd(t, append([]string{"inbox", "set", "demo", "-config", cfg}, tt.args...)...)
		is.True(err != nil) // refused
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %q does not contain %q", err, tt.want)
		}
	}
	out, err := runCmd(t, "inbox", "list", "-config", cfg)
	is.NoErr(err)                                                    // list
	is.True(strings.Contains(out, "No inbox has received anything")) // nothing was set
	out, err = runCmd(t, "inbox", "set", "demo", "-status", "429", "-retry-after", "120", "-delay", "30s", "-config", cfg)
	is.NoErr(err) // a good setting
	is.Equal(out, "inbox demo answers 429 Too Many Requests, Retry-After: 120, after 30s from now on\n")
}

// TestPrintInboxRequestIsInert: what a sender wrote reaches the terminal as text:
// no escape sequence, a body that is not UTF-8 as hex.
func TestPrintInboxRequestIsInert(t *testing.T) {
	is := is.New(t)
	r := store.InboxRequest{ID: 7, Inbox: "evil", Method: "POST", Path: "/inbox/evil/%1b", Query: "q=%1b",
		Header: []store.HeaderField{{Name: "X-Evil", Value: "\x1b]0;title\x07"}}, Body: []byte("red \x1b[31m\r\nline two"),
		Signature: store.Signature{Verdict: store.VerdictUnsigned, Detail: "no webhook-signature header"}, AnswerStatus: 204}
	var b strings.Builder
	printInboxRequest(&b, r)
	out := b.String()
	is.True(!strings.ContainsAny(out, "\x1b\x07\r"))               // no control character reaches the terminal
	is.True(strings.Contains(out, `X-Evil: \x1b]0;title\x07`))     // headers escaped
	is.True(strings.Contains(out, "red \\x1b[31m\\x0d\nline two")) // the body as text, its line break kept

	r.Body = []byte{0x1b, '[', '3', '1', 'm', 0xff}
	b.Reset()
	printInboxRequest(&b, r)
	out = b.String()
	is.True(strings.Contains(out, "not UTF-8: in hex"))                                     // said so
	is.True(strings.Contains(out, "1b 5b 33 31 6d ff"))                                     // as hex
	is.True(!strings.Contains(out, "\x1b") && !strings.Contains(out, string([]byte{0xff}))) // and nothing raw
}

// TestTrustedProxyEndToEnd: behind a trusted proxy (http.trusted_proxies), what
// hookd records of a request is the client's address from X-Forwarded-For; from
// an address it does not trust, the header changes nothing.
func TestTrustedProxyEndToEnd(t *testing.T) {
	for _, tt := range []struct {
		trusted, want string
	}{
		{`["127.0.0.1"]`, "203.0.113.9"}, // the test's requests come from 127.0.0.1: a proxy
		{`["10.0.0.0/8"]`, "127.0.0.1"},  // not one of these
	} {
		t.Run(tt.trusted, func(t *testing.T) {
			is := is.New(t)
			cfg := testConfig(t, "trusted_proxies = "+tt.trusted+"\n[inbox]\nenabled = true\n")
			d := startDaemon(t, cfg)
			req, err := http.NewRequest(http.MethodPost, d.url+"/inbox/px/hook", strings.NewReader("{}"))
			is.NoErr(err)
			req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
			res, err := http.DefaultClient.Do(req)
			is.NoErr(err)
			res.Body.Close()
			is.Equal(res.StatusCode, http.StatusNoContent) // the inbox took it

			out, err := runCmd(t, "inbox", "list", "px", "-config", cfg, "-json")
			is.NoErr(err)
			var rs []struct {
				RemoteAddr string `json:"remote_addr"`
			}
			is.NoErr(json.Unmarshal([]byte(out), &rs))
			is.Equal(len(rs), 1)
			host, _, err := net.SplitHostPort(rs[0].RemoteAddr)
			is.NoErr(err)
			is.Equal(host, tt.want) // the address hookd recorded
		})
	}
}

// TestInboxListSkipsOtherHosts: hookd inbox list names the inboxes of this hookd: a
// webhook pointed at another host's /inbox/NAME does not make NAME one of them.
func TestInboxListSkipsOtherHosts(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	cfg := testConfig(t, "public_url = \"https://hookd.example.org\"\n[inbox]\nenabled = true\n")
	st := openTestStore(t, cfg)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, "0000-0002-7253-3645", "https://partner.example/inbox/orcid-updates")
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, "0000-0002-1825-0097", "https://hookd.example.org/inbox/ours/x") // the public URL's host
	is.NoErr(err)
	is.NoErr(st.Close())
	out, err := runCmd(t, "inbox", "list", "-config", cfg)
	is.NoErr(err)
	is.True(!strings.Contains(out, "orcid-updates")) // another host's
	is.True(strings.Contains(out, "ours"))           // hookd's own, before it received anything
}

// TestInboxListAtTheDaemonsAddresses: hookd inbox list counts a webhook at the
// address the daemon will listen on when http.listen names it ("localhost:PORT",
// ":PORT", at [::1] too where the machine has it), and one under a public URL
// with a path (a proxy's prefix).
func TestInboxListAtTheDaemonsAddresses(t *testing.T) {
	for _, c := range []struct{ http, target string }{
		{"listen = \"localhost:18080\"\n", "http://127.0.0.1:18080/inbox/mine/x"},
		{"listen = \":18080\"\n", "http://127.0.0.1:18080/inbox/mine/x"},
		{"listen = \":18080\"\n", "http://[::1]:18080/inbox/mine/x"},
		{"listen = \"[::ffff:127.0.0.1]:18080\"\n", "http://127.0.0.1:18080/inbox/mine/x"}, // as the listener reports it
		{"listen = \"127.0.0.1:0\"\npublic_url = \"https://example.org/hookd\"\n", "https://example.org/hookd/inbox/mine/x"},
	} {
		t.Run(c.http+c.target, func(t *testing.T) {
			if strings.Contains(c.target, "[::1]") && !ssrf.HasLoopback6() {
				t.Skip("the machine has no ::1 (IPv6 is off): [::1] reaches no listener")
			}
			is := is.New(t)
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "hookd.toml")
			is.NoErr(os.WriteFile(path, []byte("[http]\n"+c.http+"[inbox]\nenabled = true\n[store]\npath = \"hookd.db\"\n"), 0o600))
			initDB(t, path)
			st := openTestStore(t, path)
			cl, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
			is.NoErr(err)
			_, _, err = st.PutOrcidWebhook(ctx, cl.ID, "0000-0002-7253-3645", c.target)
			is.NoErr(err)
			is.NoErr(st.Close())
			out, err := runCmd(t, "inbox", "list", "-config", path)
			is.NoErr(err)
			is.True(strings.Contains(out, "mine")) // listed, before it received anything
		})
	}
}

// TestDevBannerCommandsReachItsDatabase: the command lines hookd dev's banner
// prints act on dev's database when run, as printed, from the folder dev runs in:
// as they are beside ./hookd-dev.db; with -config FILE, and the FILE to write,
// when dev's -db puts the database where the command line does not look, and,
// when a ./hookd.db there is what the command line uses instead, saying so.
func TestDevBannerCommandsReachItsDatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	// devBanner runs hookd dev with args until the test ends and returns its banner.
	devBanner := func(t *testing.T, getenv func(string) string, args ...string) string {
		dev := startDev(t, getenv, append([]string{"-listen", "127.0.0.1:0"}, args...)...)
		t.Cleanup(func() {
			if err := dev.stop(); err != nil {
				t.Errorf("hookd dev: %v", err)
			}
		})
		return dev.banner
	}
	// answer runs the banner's "hookd inbox set demo -status 500" line, with FILE
	// replaced by file, and returns how inbox demo answers in cfg's database.
	answer := func(t *testing.T, banner, file, cfg string) string {
		is := is.New(t)
		m := regexp.MustCompile(`(?m)^  hookd (inbox set demo -status 500.*)$`).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("no inbox set line in the banner:\n%s", banner)
		}
		_, _, err := runEnv(t, nil, strings.Fields(strings.ReplaceAll(m[1], "FILE", file))...)
		is.NoErr(err) // the line, as printed
		st := openTestStore(t, cfg)
		defer st.Close()
		a, err := st.InboxAnswerOf(context.Background(), "demo")
		is.NoErr(err)
		return strconv.Itoa(a.Status)
	}

	t.Run("beside ./hookd-dev.db", func(t *testing.T) {
		is := is.New(t)
		banner := devBanner(t, noenv)
		is.True(!strings.Contains(banner, "-config")) // nothing to add
		cfg := writeConfig(t, "[store]\npath = \""+filepath.Join(dir, devDatabase)+"\"\n")
		is.Equal(answer(t, banner, "", cfg), "500") // dev's database answers 500 now
	})
	t.Run("-db elsewhere", func(t *testing.T) {
		is := is.New(t)
		db := filepath.Join(t.TempDir(), "other.db")
		banner := devBanner(t, noenv, "-db", db)
		is.True(strings.Contains(banner, "inbox set demo -status 500 -config FILE")) // a file is needed
		m := regexp.MustCompile(`\[store\] path = ("[^"]+")`).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("the banner does not say what FILE holds:\n%s", banner)
		}
		is.Equal(m[1], strconv.Quote(db)) // the database, by its absolute path
		file := filepath.Join(dir, "dev-cli.toml")
		is.NoErr(os.WriteFile(file, []byte("[store]\npath = "+m[1]+"\n"), 0o600))
		is.Equal(answer(t, banner, file, file), "500") // that database answers 500 now
	})
	t.Run("-config with a space in its name", func(t *testing.T) {
		is := is.New(t)
		file := filepath.Join(t.TempDir(), "my dev.toml")
		db := filepath.Join(filepath.Dir(file), "dev.db")
		is.NoErr(os.WriteFile(file, []byte("[store]\npath = "+strconv.Quote(db)+"\n"), 0o600))
		banner := devBanner(t, noenv, "-config", file)
		// The banner's lines are pasted into a shell: the file's name is one word.
		is.True(strings.Contains(banner, "inbox set demo -status 500 -config '"+file+"'\n"))
		is.True(strings.Contains(banner, "hookd inbox tail demo -config '"+file+"'"))
		is.True(!strings.Contains(banner, "-config "+file))
	})
	t.Run("HOOKD_CONFIG set", func(t *testing.T) {
		is := is.New(t)
		service := writeConfig(t, "[store]\npath = \""+filepath.Join(t.TempDir(), "hookd.db")+"\"\n")
		initDB(t, service)
		banner := devBanner(t, func(k string) string {
			if k == "HOOKD_CONFIG" {
				return service
			}
			return ""
		}) // ./hookd-dev.db, which the command line would find without HOOKD_CONFIG
		is.True(strings.Contains(banner, "inbox set demo -status 500 -config FILE")) // a file is needed
		is.True(strings.Contains(banner, "HOOKD_CONFIG="+service))                   // and why the shell's is not it
	})
	t.Run("./hookd.db beside it", func(t *testing.T) {
		is := is.New(t)
		_, err := runCmd(t, "init") // ./hookd.db and ./hookd.key, which the command line then uses
		is.NoErr(err)
		banner := devBanner(t, noenv)
		is.True(strings.Contains(banner, "inbox set demo -status 500 -config FILE")) // a file is needed
		is.True(strings.Contains(banner, "the command line here uses ./hookd.db"))   // and why
		is.True(strings.Contains(banner, "move it and its ./hookd.key away"))        // and the other way out
		// Taken, that way out works: the line as the banner would have printed it.
		is.NoErr(os.Rename("hookd.db", filepath.Join(t.TempDir(), "hookd.db")))
		is.NoErr(os.Rename("hookd.key", filepath.Join(t.TempDir(), "hookd.key")))
		_, _, err = runEnv(t, nil, "inbox", "set", "demo", "-status", "503")
		is.NoErr(err)
		cfg := writeConfig(t, "[store]\npath = \""+filepath.Join(dir, devDatabase)+"\"\n")
		st := openTestStore(t, cfg)
		defer st.Close()
		a, err := st.InboxAnswerOf(context.Background(), "demo")
		is.NoErr(err)
		is.Equal(a.Status, 503) // dev's database
	})
}

// TestDevBannerInboxOff: hookd dev with a -config file that turns the inbox off (a
// copy of config.example.toml, say) says so in its banner and shows no callback at
// hookd's own inbox, which nothing would answer, nor inbox commands; the steps it
// shows instead work with a receiver of one's own.
func TestDevBannerInboxOff(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := writeConfig(t, "[store]\npath = \""+filepath.Join(dir, "dev.db")+"\"\n[inbox]\nenabled = false\n")
	got := make(chan string, 1)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Method + " " + r.URL.Path:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	dev := startDev(t, noenv, "-listen", "127.0.0.1:0", "-config", cfg)
	defer func() { is.NoErr(dev.stop()) }() // hookd dev stops cleanly
	banner := dev.banner
	is.True(strings.Contains(banner, "inbox           off: [inbox] enabled = false in -config "+cfg)) // says why
	is.True(!strings.Contains(banner, "/inbox/"))                                                     // no callback nothing answers
	is.True(!strings.Contains(banner, "hookd inbox"))                                                 // nor commands that show nothing

	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^  ` + name + ` +(\S+)$`).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("no %s in the banner:\n%s", name, banner)
		}
		return m[1]
	}
	put := regexp.MustCompile(`-X PUT '([^']+)/ENCODED-URL'`).FindStringSubmatch(banner)
	if put == nil {
		t.Fatalf("no registration in the banner:\n%s", banner)
	}
	base := strings.TrimSuffix(put[1], "/0000-0002-7253-3645/webhook")
	res, err := noRedirects.PostForm(base+"/oauth/token", url.Values{"client_id": {field("client_id")},
		"client_secret": {field("client_secret")}, "grant_type": {"client_credentials"}})
	is.NoErr(err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	is.NoErr(json.NewDecoder(res.Body).Decode(&tok))
	res.Body.Close()
	req, err := http.NewRequest(http.MethodPut, put[1]+"/"+httpapi.EscapeSegment(recv.URL+"/hook"), nil)
	is.NoErr(err)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err = noRedirects.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusCreated) // the banner's registration, with a receiver's URL
	req, err = http.NewRequest(http.MethodPost, base+"/api/notifications/v1/events", strings.NewReader(`{"orcid":"0000-0002-7253-3645"}`))
	is.NoErr(err)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	res, err = noRedirects.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusAccepted) // the banner's event
	select {
	case call := <-got:
		is.Equal(call, "POST /hook") // delivered to the receiver
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver got no call within 10s")
	}
}

// TestInboxNameNoneOfThem: "hookd inbox list NAME" and "hookd inbox tail NAME" of a
// name that is none of the inboxes (a typo, another case) say so and name the
// inboxes there are, rather than showing an empty list, or waiting, in silence.
func TestInboxNameNoneOfThem(t *testing.T) {
	is := is.New(t)
	cfg := writeConfig(t, "[store]\npath = \""+filepath.Join(t.TempDir(), "hookd.db")+"\"\n")
	initDB(t, cfg)
	_, _, err := runEnv(t, nil, "inbox", "set", "demo", "-status", "500", "-config", cfg)
	is.NoErr(err) // inbox demo, with an answer set

	out, stderr, err := runEnv(t, nil, "inbox", "list", "Demo", "-config", cfg)
	is.NoErr(err)                                       // not an error: anything may post into it later
	is.True(strings.Contains(out, "(none)"))            // nothing in it
	is.True(strings.Contains(stderr, "inbox Demo"))     // says of which inbox
	is.True(strings.Contains(stderr, "are demo"))       // and which there are
	is.True(strings.Contains(stderr, "case-sensitive")) // (the mistake made here)

	_, stderr, err = runEnv(t, nil, "inbox", "list", "demo", "-config", cfg)
	is.NoErr(err)
	is.Equal(stderr, "") // an inbox there is: nothing to say

	ctx, cancel := context.WithCancel(context.Background())
	var tailOut, tailErr safeBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"hookd", "inbox", "tail", "-config", cfg, "demoo"}, noenv, strings.NewReader(""), &tailOut, &tailErr)
	}()
	eventually(t, 10*time.Second, "tail to start following", func() bool { return strings.Contains(tailErr.String(), "following inbox demoo") })
	cancel()
	is.NoErr(<-done)
	is.True(strings.Contains(tailErr.String(), "inbox demoo has received nothing")) // tail says it too
	is.True(strings.Contains(tailErr.String(), "are demo"))

	// inbox clear and inbox set too, which act all the same (an answer may be set
	// before a webhook calls the inbox).
	out, stderr, err = runEnv(t, nil, "inbox", "clear", "Demo", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "deleted 0 requests of inbox Demo"))
	is.True(strings.Contains(stderr, "inbox clear: note: inbox Demo has received nothing"))
	is.True(strings.Contains(stderr, "are demo"))
	out, stderr, err = runEnv(t, nil, "inbox", "set", "Demo", "-status", "410", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "inbox Demo answers 410"))
	is.True(strings.Contains(stderr, "inbox set: note: inbox Demo has received nothing"))
	_, stderr, err = runEnv(t, nil, "inbox", "set", "demo", "-reset", "-config", cfg)
	is.NoErr(err)
	is.Equal(stderr, "") // an inbox there is: nothing to say
}

// TestInboxClearTellsOfAnAnswerSet: inbox clear says that the inbox's answer stays,
// and which it is, only of an inbox that has one set; of one that answers the
// default it says what it deleted, where it said "its answer stays" of every inbox.
func TestInboxClearTellsOfAnAnswerSet(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t) // one request in inbox demo, which has no answer set
	out, err := runCmd(t, "inbox", "clear", "demo", "-config", cfg)
	is.NoErr(err)
	is.Equal(out, "deleted 1 request of inbox demo\n") // no answer of its own to keep

	_, err = runCmd(t, "inbox", "set", "demo", "-status", "429", "-retry-after", "120", "-config", cfg)
	is.NoErr(err)
	out, err = runCmd(t, "inbox", "clear", "demo", "-config", cfg)
	is.NoErr(err)
	is.Equal(out, "deleted 0 requests of inbox demo (its answer stays: 429 Too Many Requests, Retry-After: 120)\n") // the answer set, kept

	_, err = runCmd(t, "inbox", "set", "demo", "-reset", "-config", cfg)
	is.NoErr(err)
	out, err = runCmd(t, "inbox", "clear", "demo", "-config", cfg)
	is.NoErr(err)
	is.Equal(out, "deleted 0 requests of inbox demo\n") // reset: the default again
}

// TestInboxOfDevOnItsOwnPort: beside a hookd dev started with -listen (the README's
// way round a port 8080 that is taken), an inbox a webhook calls at dev's address is
// one of the inboxes, before anything arrives: inbox list shows it and inbox set
// says nothing of it, though no file names that address.
func TestInboxOfDevOnItsOwnPort(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	dev := startDev(t, noenv, "-listen", "127.0.0.1:0", "-db", filepath.Join(dir, "hookd-dev.db"))
	defer func() { is.NoErr(dev.stop()) }() // hookd dev stops cleanly
	base := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(dev.banner)
	is.True(base != "" && base != "http://127.0.0.1:8080") // on a port of its own

	cfg := filepath.Join(dir, "cli.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[store]\npath = \"hookd-dev.db\"\n"), 0o600)) // dev's database; http.listen left at 8080
	_, _, err := runEnv(t, nil, "client", "add", "-name", "walk", "-id", "walk", "-secret", "walk-secret", "-config", cfg)
	is.NoErr(err) // a client
	res, err := noRedirects.PostForm(base+"/oauth/token", url.Values{"client_id": {"walk"}, "client_secret": {"walk-secret"},
		"scope": {"/webhook"}, "grant_type": {"client_credentials"}})
	is.NoErr(err) // its token
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	is.NoErr(json.NewDecoder(res.Body).Decode(&tok))
	res.Body.Close()
	req, err := http.NewRequest(http.MethodPut, base+"/0000-0002-7253-3645/webhook/"+url.PathEscape(base+"/inbox/walk/updated"), nil)
	is.NoErr(err)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err = noRedirects.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusCreated) // a webhook calls the inbox walk at dev's address

	out, stderr2, err := runEnv(t, nil, "inbox", "list", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "walk ")) // listed before anything arrived
	is.Equal(stderr2, "")
	_, stderr2, err = runEnv(t, nil, "inbox", "set", "walk", "-status", "500", "-config", cfg)
	is.NoErr(err)
	is.Equal(stderr2, "") // one of the inboxes: nothing to say of it
}

// consoleGet gets a console page as c and returns its status and body.
func consoleGet(tb testing.TB, c *http.Client, u string) (int, string) {
	tb.Helper()
	is := is.New(tb)
	res, err := c.Get(u)
	is.NoErr(err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	is.NoErr(err)
	return res.StatusCode, string(b)
}

// postSigned posts body to u signed with the signing secret whsec, as a request a
// receiver got from hookd and sends on by hand, and returns the status.
func postSigned(tb testing.TB, u, whsec, body string) int {
	tb.Helper()
	is := is.New(tb)
	wh, err := standardwebhooks.NewWebhook(whsec)
	is.NoErr(err)
	now := time.Now()
	sig, err := wh.Sign("msg_byhand", now, []byte(body))
	is.NoErr(err)
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	is.NoErr(err)
	req.Header.Set("Webhook-Id", "msg_byhand")
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("Webhook-Signature", sig)
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestInboxCalledByAnEscapedPath: hookd serve with private targets refused. A
// client's callback at /inbox%2Fdemo/… reaches the inbox demo, as hookd reads
// paths decoded, so the client calls demo: its delivery's request is linked and
// valid, one sent again by hand with its secret is valid, and it sees the inbox in
// the console. Another client that registers /inbox/demo/… as well does not take
// the inbox, and the requests of the first one's deliveries, as its only caller's:
// the inbox is the operator's alone while both call it.
func TestInboxCalledByAnEscapedPath(t *testing.T) {
	is := is.New(t)
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	is.NoErr(os.WriteFile(tokenFile, []byte("operator-token-0123456789\n"), 0o600))
	cfg := testConfig(t, "[auth]\nadmin_token_file = \""+tokenFile+"\"\n[delivery]\ncoalesce_window = \"0s\"\ntick = \"100ms\"\n"+
		"allow_private_targets = false\n[inbox]\nenabled = true\n")
	var a, b credentials
	for _, c := range []struct {
		name string
		to   *credentials
	}{{"a", &a}, {"b", &b}} {
		out, err := runCmd(t, "client", "add", "-config", cfg, "-name", c.name, "-scopes", "/webhook", "-json")
		is.NoErr(err)
		is.NoErr(json.Unmarshal([]byte(out), c.to))
	}
	d := startDaemon(t, cfg)

	const record = "0000-0002-7253-3645"
	res := put(t, d.url, "/"+record+"/webhook/"+httpapi.EscapeSegment(d.url+"/inbox%2Fdemo/"+record+"/updated"), token(t, d.url, a.ClientID, a.ClientSecret))
	is.Equal(res.StatusCode, http.StatusCreated) // hookd's own inbox, by an escaped path
	_, err := runCmd(t, "notify", "-config", cfg, record)
	is.NoErr(err)
	var rs []inboxJSON
	eventually(t, 10*time.Second, "the delivery's request in the inbox demo", func() bool {
		rs = inboxRequests(t, cfg, "demo")
		return len(rs) == 1
	})
	is.Equal(rs[0].Path, "/inbox%2Fdemo/"+record+"/updated")        // as sent
	is.True(rs[0].DeliveryID != 0)                                  // linked to its delivery
	is.Equal(rs[0].Verdict+" "+rs[0].SignerID, "valid "+a.ClientID) // and valid

	is.Equal(postSigned(t, d.url+"/inbox/demo/again", a.SigningSecret, "{}"), http.StatusNoContent)
	rs = inboxRequests(t, cfg, "demo")
	is.Equal(rs[0].Verdict+" "+rs[0].SignerID, "valid "+a.ClientID) // sent again by hand: valid, a's secret

	ca := consoleSignIn(t, d.url, url.Values{"kind": {"client"}, "client_id": {a.ClientID}, "secret": {a.ClientSecret}})
	status, page := consoleGet(t, ca, d.url+"/console/inbox?inbox=demo")
	is.Equal(status, http.StatusOK)                          // a sees the inbox its callback calls
	is.True(strings.Contains(page, "/inbox%2Fdemo/"+record)) // with its delivery's request

	res = put(t, d.url, "/"+record+"/webhook/"+httpapi.EscapeSegment(d.url+"/inbox/demo/mine"), token(t, d.url, b.ClientID, b.ClientSecret))
	is.Equal(res.StatusCode, http.StatusCreated) // b calls demo too
	cb := consoleSignIn(t, d.url, url.Values{"kind": {"client"}, "client_id": {b.ClientID}, "secret": {b.ClientSecret}})
	status, page = consoleGet(t, cb, d.url+"/console/inbox?inbox=demo")
	is.Equal(status, http.StatusNotFound)                     // b does not take the inbox
	is.True(!strings.Contains(page, "/inbox%2Fdemo/"+record)) // nor a's requests
	status, _ = consoleGet(t, cb, d.url+"/console/inbox/requests/"+strconvI(rs[1].ID))
	is.Equal(status, http.StatusNotFound) // not one by its id
	status, _ = consoleGet(t, ca, d.url+"/console/inbox?inbox=demo")
	is.Equal(status, http.StatusNotFound) // nor does a, while b calls it too
	op := consoleSignIn(t, d.url, url.Values{"kind": {"token"}, "token": {"operator-token-0123456789"}})
	status, page = consoleGet(t, op, d.url+"/console/inbox?inbox=demo")
	is.Equal(status, http.StatusOK) // the operator's alone
	is.True(strings.Contains(page, "/inbox%2Fdemo/"+record))
}

// TestInboxOfEachMemberCalledByTheOrganisationsWebhook: hookd serve with loopback
// callbacks allowed; an organisation's webhook at hookd's /inbox with the record's
// iD appended calls /inbox/{iD}: the inbox of each member's iD. A delivery's
// request is linked and valid, one sent again by hand with the webhook's secret to
// a member's inbox is valid (to another iD's it is not), the command line lists
// the members' inboxes before they received anything, and the organisation's staff
// see them, until another client's webhook calls one of them too.
func TestInboxOfEachMemberCalledByTheOrganisationsWebhook(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "[delivery]\ncoalesce_window = \"0s\"\ntick = \"100ms\"\nallow_private_targets = true\n[inbox]\nenabled = true\n")
	const member, quiet, stranger = "0000-0002-7253-3645", "0000-0002-1825-0097", "0000-0001-5109-3700"
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	_, err = runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Uni", member, quiet)
	is.NoErr(err)
	var staff, other credentials
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "uni-staff", "-org", "Uni", "-json")
	is.NoErr(err)
	is.NoErr(json.Unmarshal([]byte(out), &staff))
	out, err = runCmd(t, "client", "add", "-config", cfg, "-name", "other", "-scopes", "/webhook", "-json")
	is.NoErr(err)
	is.NoErr(json.Unmarshal([]byte(out), &other))
	d := startDaemon(t, cfg)

	out, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", d.url+"/inbox", "-append-orcid")
	is.NoErr(err) // the organisation's webhook: /inbox/{iD}
	m := regexp.MustCompile(`signing secret\s+(whsec_\S+)`).FindStringSubmatch(out)
	is.True(m != nil) // its signing secret
	whsec := m[1]
	_, err = runCmd(t, "notify", "-config", cfg, member)
	is.NoErr(err)
	var rs []inboxJSON
	eventually(t, 10*time.Second, "the delivery's request in the member's inbox", func() bool {
		rs = inboxRequests(t, cfg, member)
		return len(rs) == 1
	})
	is.Equal(rs[0].Path, "/inbox/"+member) // the iD appended
	is.True(rs[0].DeliveryID != 0)         // linked to its delivery
	is.Equal(rs[0].Verdict, "valid")       // and valid
	is.Equal(rs[0].SignerKind, "webhook")  // with the webhook's secret
	delivered := rs[0].ID

	is.Equal(postSigned(t, d.url+"/inbox/"+quiet+"/again", whsec, "{}"), http.StatusNoContent)
	is.Equal(inboxRequests(t, cfg, quiet)[0].Verdict, "valid") // another member's inbox: the webhook calls it too
	is.Equal(postSigned(t, d.url+"/inbox/"+stranger+"/again", whsec, "{}"), http.StatusNoContent)
	is.Equal(inboxRequests(t, cfg, stranger)[0].Problem, "wrong_secret") // no member's: the webhook calls it never

	_, err = runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Uni", "0000-0003-1415-9269")
	is.NoErr(err) // a new member
	out, err = runCmd(t, "inbox", "list", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "0000-0003-1415-9269")) // its inbox, listed before it received anything

	staffConsole := consoleSignIn(t, d.url, url.Values{"kind": {"client"}, "client_id": {staff.ClientID}, "secret": {staff.ClientSecret}})
	status, page := consoleGet(t, staffConsole, d.url+"/console/inbox?inbox="+member)
	is.Equal(status, http.StatusOK)                                                 // the staff see the member's inbox
	is.True(strings.Contains(page, "/console/inbox/requests/"+strconvI(delivered))) // with the delivery's request
	_, page = consoleGet(t, staffConsole, d.url+"/console/inbox")
	is.True(strings.Contains(page, `?inbox=0000-0003-1415-9269"`)) // and every member's, listed

	res := put(t, d.url, "/"+member+"/webhook/"+httpapi.EscapeSegment(d.url+"/inbox/"+member+"/mine"), token(t, d.url, other.ClientID, other.ClientSecret))
	is.Equal(res.StatusCode, http.StatusCreated) // another client calls the member's inbox too
	oc := consoleSignIn(t, d.url, url.Values{"kind": {"client"}, "client_id": {other.ClientID}, "secret": {other.ClientSecret}})
	status, _ = consoleGet(t, oc, d.url+"/console/inbox?inbox="+member)
	is.Equal(status, http.StatusNotFound) // it does not take the inbox, nor the organisation's requests
	status, _ = consoleGet(t, oc, d.url+"/console/inbox/requests/"+strconvI(delivered))
	is.Equal(status, http.StatusNotFound)
	status, _ = consoleGet(t, staffConsole, d.url+"/console/inbox?inbox="+member)
	is.Equal(status, http.StatusNotFound) // the operator's alone, while both call it
}

// consolePost posts form to a console path as c, with the session's CSRF token
// from page, and returns the status (a redirect is not followed).
func consolePost(tb testing.TB, c *http.Client, base, page, path string, form url.Values) int {
	tb.Helper()
	is := is.New(tb)
	_, body := consoleGet(tb, c, base+page)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	is.True(m != nil) // the session's token
	form.Set("csrf", m[1])
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := nc.PostForm(base+path, form)
	is.NoErr(err)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestInboxOwnersOverHTTP: who reads, answers and empties an inbox, over a hookd
// serve's console: a client the inbox its webhook calls, an organisation's staff
// the one its webhook calls, the operator every inbox, one nobody's webhook calls
// too; nobody else, not by name, a request's id, the answer form or emptying it.
// A client that points a webhook at another's inbox takes nothing: the inbox is
// the operator's alone while both call it, so neither may answer 410 for the
// other's webhooks.
func TestInboxOwnersOverHTTP(t *testing.T) {
	is := is.New(t)
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	is.NoErr(os.WriteFile(tokenFile, []byte("operator-token-0123456789\n"), 0o600))
	cfg := testConfig(t, "[auth]\nadmin_token_file = \""+tokenFile+"\"\n[delivery]\npaused = true\nallow_private_targets = true\n[inbox]\nenabled = true\n")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	var a, b, staff credentials
	for _, c := range []struct {
		to   *credentials
		args []string
	}{{&a, []string{"-name", "a", "-scopes", "/webhook"}}, {&b, []string{"-name", "b", "-scopes", "/webhook"}}, {&staff, []string{"-name", "uni-staff", "-org", "Uni"}}} {
		out, err := runCmd(t, append([]string{"client", "add", "-config", cfg, "-json"}, c.args...)...)
		is.NoErr(err)
		is.NoErr(json.Unmarshal([]byte(out), c.to))
	}
	d := startDaemon(t, cfg)
	const record = "0000-0002-7253-3645"
	res := put(t, d.url, "/"+record+"/webhook/"+httpapi.EscapeSegment(d.url+"/inbox/a-box/"+record), token(t, d.url, a.ClientID, a.ClientSecret))
	is.Equal(res.StatusCode, http.StatusCreated) // a calls a-box
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", d.url+"/inbox/org-box")
	is.NoErr(err) // the organisation's webhook calls org-box
	ids := map[string]int64{}
	for _, name := range []string{"a-box", "org-box", "free"} {
		res, err := http.Post(d.url+"/inbox/"+name+"/x", "application/json", strings.NewReader(`{"for":"`+name+`"}`))
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusNoContent)
		ids[name] = inboxRequests(t, cfg, name)[0].ID
	}

	signIn := func(form url.Values) *http.Client { return consoleSignIn(t, d.url, form) }
	users := map[string]*http.Client{
		"a":        signIn(url.Values{"kind": {"client"}, "client_id": {a.ClientID}, "secret": {a.ClientSecret}}),
		"b":        signIn(url.Values{"kind": {"client"}, "client_id": {b.ClientID}, "secret": {b.ClientSecret}}),
		"staff":    signIn(url.Values{"kind": {"client"}, "client_id": {staff.ClientID}, "secret": {staff.ClientSecret}}),
		"operator": signIn(url.Values{"kind": {"token"}, "token": {"operator-token-0123456789"}}),
	}
	sees := func(who, name string) bool {
		status, page := consoleGet(t, users[who], d.url+"/console/inbox?inbox="+name)
		byID, _ := consoleGet(t, users[who], d.url+"/console/inbox/requests/"+strconvI(ids[name]))
		is.Equal(byID, status) // a request by its id as its inbox
		if status == http.StatusOK {
			is.True(strings.Contains(page, `{&#34;for&#34;:&#34;`+name+`&#34;}`) || strings.Contains(page, "/console/inbox/requests/"+strconvI(ids[name])))
		}
		_, list := consoleGet(t, users[who], d.url+"/console/inbox")
		is.Equal(strings.Contains(list, `?inbox=`+name+`"`), status == http.StatusOK) // listed exactly when seen
		return status == http.StatusOK
	}
	answers := func(who, name string) bool {
		status := consolePost(t, users[who], d.url, "/console/inbox", "/console/inbox/"+name+"/answer", url.Values{"status": {"410"}})
		if status == http.StatusSeeOther {
			is.Equal(consolePost(t, users[who], d.url, "/console/inbox", "/console/inbox/"+name+"/answer", url.Values{"reset": {"1"}}), http.StatusSeeOther)
		}
		return status == http.StatusSeeOther
	}
	for _, c := range []struct {
		who   string
		names []string // the inboxes it reads and answers
	}{
		{"a", []string{"a-box"}},
		{"b", nil},
		{"staff", []string{"org-box"}},
		{"operator", []string{"a-box", "org-box", "free"}},
	} {
		for _, name := range []string{"a-box", "org-box", "free"} {
			want := slices.Contains(c.names, name)
			if sees(c.who, name) != want || answers(c.who, name) != want {
				t.Errorf("%s reads and answers %s: want %v", c.who, name, want)
			}
		}
	}
	status := consolePost(t, users["b"], d.url, "/console/inbox", "/console/inbox/a-box/clear", url.Values{"confirm": {"yes"}})
	is.Equal(status, http.StatusNotFound) // b empties nothing of a's
	is.Equal(len(inboxRequests(t, cfg, "a-box")), 1)

	// b points a webhook at a-box: the inbox is the operator's alone.
	res = put(t, d.url, "/"+record+"/webhook/"+httpapi.EscapeSegment(d.url+"/inbox/a-box/b"), token(t, d.url, b.ClientID, b.ClientSecret))
	is.Equal(res.StatusCode, http.StatusCreated)
	for who, want := range map[string]bool{"a": false, "b": false, "staff": false, "operator": true} {
		if sees(who, "a-box") != want || answers(who, "a-box") != want {
			t.Errorf("with two owners' webhooks calling it, %s reads and answers a-box: want %v", who, want)
		}
	}
}

// TestInboxShownWithoutCredentials: wherever a request is shown (hookd inbox
// list, show and tail, with -json and -full, and the console's inbox page, the
// live view's fetch of it and a request's page), it is shown without its
// credentials, as recorded now and as an older hookd recorded it, whole: a
// query's token after a ';', a multipart body with a second Content-Type and
// lines ending in a CR alone, a bare token as Authorization, a Cookie of several
// pairs, a Proxy-Authorization, and a URL's query in another header.
func TestInboxShownWithoutCredentials(t *testing.T) {
	is := is.New(t)
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	is.NoErr(os.WriteFile(tokenFile, []byte("operator-token-0123456789\n"), 0o600))
	cfg := testConfig(t, "[auth]\nadmin_token_file = \""+tokenFile+"\"\n[inbox]\nenabled = true\n")
	d := startDaemon(t, cfg)

	const query = "a=1;token=QT1"
	const body = "--b\rContent-Disposition: form-data; name=password\r\rPW1\r--b--\r"
	header := [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}, {"Content-Type", "multipart/form-data; boundary=b"},
		{"Authorization", "ab12cd"}, {"Cookie", "a=1; session=CK1"}, {"Proxy-Authorization", "Basic UEExOng="},
		{"X-Original-Uri", "/hookd/inbox/old/x?" + query}}
	secrets := []string{"QT1", "PW1", "ab12cd", "CK1", "UEExOng", "Basic UEE"}
	for range 2 {
		req, err := http.NewRequest(http.MethodPost, d.url+"/inbox/old/x?"+query, strings.NewReader(body))
		is.NoErr(err)
		for _, f := range header {
			req.Header.Add(f[0], f[1])
		}
		res, err := http.DefaultClient.Do(req)
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusNoContent) // recorded
	}
	// The first as an older hookd kept it: whole.
	headers, err := json.Marshal(append([][2]string{{"Host", strings.TrimPrefix(d.url, "http://")}}, header...))
	is.NoErr(err)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(filepath.Dir(cfg), "hookd.db")+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	defer db.Close()
	res, err := db.Exec("UPDATE inbox_requests SET query = ?, headers = ?, body = ? WHERE id = (SELECT min(id) FROM inbox_requests)",
		query, string(headers), []byte(body))
	is.NoErr(err)
	n, err := res.RowsAffected()
	is.NoErr(err)
	is.Equal(n, int64(1)) // the older one
	rs := inboxRequests(t, cfg, "old")
	is.Equal(len(rs), 2)

	shown := map[string]string{}
	for _, args := range [][]string{{"list", "old"}, {"list", "old", "-json"}, {"show", strconvI(rs[1].ID)}, {"show", "-json", strconvI(rs[1].ID)},
		{"show", strconvI(rs[0].ID)}} {
		out, err := runCmd(t, append(append([]string{"inbox"}, args...), "-config", cfg)...)
		is.NoErr(err)
		shown["hookd inbox "+strings.Join(args, " ")] = out
	}
	for _, full := range []string{"-full", "-full=false"} {
		ctx, stop := context.WithCancel(context.Background())
		var out, errOut safeBuffer
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"hookd", "inbox", "tail", full, "-n", "2", "-config", cfg, "old"}, noenv, strings.NewReader(""), &out, &errOut)
		}()
		eventually(t, 10*time.Second, "tail to show the requests", func() bool { return strings.Contains(errOut.String(), "following inbox old") })
		stop()
		is.NoErr(<-done)
		shown["hookd inbox tail "+full] = out.String()
	}
	op := consoleSignIn(t, d.url, url.Values{"kind": {"token"}, "token": {"operator-token-0123456789"}})
	shown["the console's inbox page"] = consolePage(t, op, d.url+"/console/inbox?inbox=old")
	live, err := http.NewRequest(http.MethodGet, d.url+"/console/inbox?inbox=old", nil)
	is.NoErr(err)
	live.Header.Set("X-Hookd-Live", "refresh") // as the live view fetches it
	lres, err := op.Do(live)
	is.NoErr(err)
	b, err := io.ReadAll(lres.Body)
	lres.Body.Close()
	is.NoErr(err)
	is.Equal(lres.StatusCode, http.StatusOK)
	shown["the live view's fetch"] = string(b)
	for _, r := range rs {
		shown["the console's request "+strconvI(r.ID)] = consolePage(t, op, d.url+"/console/inbox/requests/"+strconvI(r.ID))
	}
	for where, out := range shown {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %q:\n%s", where, s, out)
			}
		}
		is.True(strings.Contains(out, "token="+url.QueryEscape("[redacted]"))) // the query shown, without its token
	}
	for _, where := range []string{"hookd inbox show " + strconvI(rs[1].ID), "hookd inbox show " + strconvI(rs[0].ID), "hookd inbox tail -full",
		"the console's request " + strconvI(rs[1].ID)} {
		is.True(strings.Contains(shown[where], "Basic [redacted]")) // the scheme shown
		is.True(strings.Contains(shown[where], "name=password"))    // the body shown, but its password
	}
}

// bannerPUT makes the banner's registration as a newcomer would, pasting its
// lines: a token with /webhook and /notify (the token line asks for both) for
// the client clientID, then the PUT of putURL with the escaped path as printed.
// It returns the token, and the PUT's status and body.
func bannerPUT(t *testing.T, base, putURL, clientID, secret string) (token string, status int, body string) {
	t.Helper()
	is := is.New(t)
	form := url.Values{"client_id": {clientID}, "client_secret": {secret},
		"scope": {"/webhook /notify"}, "grant_type": {"client_credentials"}}
	tr, err := noRedirects.PostForm(base+"/oauth/token", form)
	is.NoErr(err) // token
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	is.NoErr(json.NewDecoder(tr.Body).Decode(&tok))
	tr.Body.Close()
	req, err := http.NewRequest(http.MethodPut, putURL, nil)
	is.NoErr(err)
	req.URL.Opaque = strings.TrimPrefix(putURL, base[:strings.Index(base, "//")]) // the escaped path as printed
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err := noRedirects.Do(req)
	is.NoErr(err) // the banner's PUT
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return tok.AccessToken, res.StatusCode, string(b)
}
