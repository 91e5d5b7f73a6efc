package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/openapitest"
)

// logWatcher is a thread-safe writer for the daemon's stderr: it keeps everything
// written and reports the "url" of the first JSON log line whose msg is "listening".
type logWatcher struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	pending   []byte
	listening chan string
	once      sync.Once
}

func newLogWatcher() *logWatcher { return &logWatcher{listening: make(chan string, 1)} }

// serveIn runs "hookd serve -config cfg" until ctx ends, with getenv as its
// environment; it returns the daemon's log and the channel of run's result.
func serveIn(ctx context.Context, cfg string, getenv func(string) string) (*logWatcher, <-chan error) {
	stderr := newLogWatcher()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"hookd", "serve", "-config", cfg}, getenv, strings.NewReader(""), io.Discard, stderr)
	}()
	return stderr, done
}

func (w *logWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			break
		}
		line := w.pending[:i]
		w.pending = w.pending[i+1:]
		var rec struct {
			Msg string `json:"msg"`
			URL string `json:"url"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
			w.once.Do(func() { w.listening <- rec.URL })
		}
	}
	return len(p), nil
}

func (w *logWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// safeBuffer is a bytes.Buffer that goroutines may share.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func noenv(string) string { return "" }

// runCmd runs one hookd command to completion and returns its stdout.
func runCmd(tb testing.TB, args ...string) (string, error) {
	tb.Helper()
	var stdout, stderr safeBuffer
	err := run(context.Background(), append([]string{"hookd"}, args...), noenv, strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		tb.Logf("hookd %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), err
}

// testConfig writes a config file for a daemon on a free loopback port, with its
// database in a temporary folder, creates the database ("hookd init"), and returns
// the file's path.
func testConfig(tb testing.TB, extra string) string {
	tb.Helper()
	is := is.New(tb)
	dir := tb.TempDir()
	path := filepath.Join(dir, "hookd.toml")
	body := "[http]\nlisten = \"127.0.0.1:0\"\n" + extra + "\n[store]\npath = \"hookd.db\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n"
	is.NoErr(os.WriteFile(path, []byte(body), 0o600)) // write config
	initDB(tb, path)
	return path
}

// initDB creates the database of the config file at path, as an operator does once.
func initDB(tb testing.TB, path string) {
	tb.Helper()
	if _, err := runCmd(tb, "init", "-config", path); err != nil {
		tb.Fatalf("hookd init -config %s: %v", path, err)
	}
}

// daemon is a running "hookd serve".
type daemon struct {
	url    string // the base URL the daemon logged
	stderr *logWatcher
	stop   func() error // cancels the context and returns run's result
}

// startDaemon runs "hookd serve -config cfg" and waits until it logs "listening".
func startDaemon(tb testing.TB, cfg string) *daemon {
	tb.Helper()
	_, stderr, done, stop := runUntilStopped(tb, noenv, "serve", "-config", cfg)
	select {
	case u := <-stderr.listening:
		checkAPI(tb, u)
		return &daemon{url: u, stderr: stderr, stop: stop}
	case <-done:
		tb.Fatalf("hookd serve ended before listening: %v; stderr:\n%s", stop(), stderr)
	case <-time.After(10 * time.Second):
		tb.Fatalf("hookd serve did not log \"listening\" within 10s; stderr:\n%s", stderr)
	}
	return nil
}

// devDaemon is a running "hookd dev".
type devDaemon struct {
	banner string // what it printed once ready
	stderr *logWatcher
	stop   func() error // cancels the context and returns run's result
}

// startDev runs "hookd dev args…" with getenv as its environment and waits for its
// banner, which is printed whole once dev is ready.
func startDev(tb testing.TB, getenv func(string) string, args ...string) *devDaemon {
	tb.Helper()
	stdout, stderr, done, stop := runUntilStopped(tb, getenv, append([]string{"dev"}, args...)...)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "client_secret above") { // the end of either banner
		select {
		case <-done:
			tb.Fatalf("hookd dev ended before its banner: %v; stderr:\n%s", stop(), stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("hookd dev printed no banner within 10s; stderr:\n%s", stderr)
		}
	}
	return &devDaemon{banner: stdout.String(), stderr: stderr, stop: stop}
}

// runUntilStopped runs "hookd args…" with getenv as its environment until stop is
// called or the test ends; done is closed when run returns. Stop cancels run's
// context and returns run's result (the test fails if run has not returned within
// 15s), the same result each time it is called.
func runUntilStopped(tb testing.TB, getenv func(string) string, args ...string) (stdout *safeBuffer, stderr *logWatcher, done <-chan struct{}, stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = new(safeBuffer), newLogWatcher()
	ended := make(chan struct{})
	var result error
	go func() {
		defer close(ended)
		result = run(ctx, append([]string{"hookd"}, args...), getenv, strings.NewReader(""), stdout, stderr)
	}()
	stop = func() error {
		cancel()
		select {
		case <-ended:
		case <-time.After(15 * time.Second):
			tb.Fatalf("hookd %s did not stop within 15s after cancel; stderr:\n%s", args[0], stderr)
		}
		return result
	}
	tb.Cleanup(func() { stop() })
	return stdout, stderr, ended, stop
}

// credentials is the -json output of "hookd client add".
type credentials struct {
	ClientID      string   `json:"client_id"`
	ClientSecret  string   `json:"client_secret"`
	SigningSecret string   `json:"signing_secret"`
	Scopes        []string `json:"scopes"`
}

// noRedirects is an HTTP client that shows a 3xx instead of following it. Its
// exchanges with a daemon the tests started are checked against the OpenAPI
// document that daemon serves (checkAPI): a mismatch is the error of the request.
var noRedirects = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     apiCheck,
}

// apiCheck validates noRedirects's exchanges with the daemons checkAPI was told of.
var apiCheck = &openapitest.Transport{}

// checkAPI loads the OpenAPI document of the daemon at base (which may end with
// its base path) and checks noRedirects's exchanges with it until the test ends.
func checkAPI(tb testing.TB, base string) {
	tb.Helper()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("daemon URL %q: %v", base, err)
	}
	res, err := http.Get(u.Scheme + "://" + u.Host + "/openapi.json")
	if err != nil {
		tb.Fatalf("GET /openapi.json: %v", err)
	}
	defer res.Body.Close()
	doc, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		tb.Fatalf("GET /openapi.json: %d, %v", res.StatusCode, err)
	}
	v, err := openapitest.New(doc)
	if err != nil {
		tb.Fatalf("the daemon's /openapi.json: %v", err)
	}
	tb.Cleanup(apiCheck.Add(u.Host, v))
}

// token gets a /webhook access token over HTTP.
func token(tb testing.TB, base, id, secret string) string {
	tb.Helper()
	is := is.New(tb)
	res, err := noRedirects.PostForm(base+"/oauth/token", url.Values{
		"client_id": {id}, "client_secret": {secret}, "scope": {"/webhook"}, "grant_type": {"client_credentials"},
	})
	is.NoErr(err) // token request
	defer res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK) // token issued
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	is.NoErr(json.NewDecoder(res.Body).Decode(&tr)) // token response
	is.True(tr.AccessToken != "")                   // an access token
	return tr.AccessToken
}

// put sends PUT to the escaped path under base, byte for byte.
func put(tb testing.TB, base, rawPath, tok string) *http.Response {
	tb.Helper()
	is := is.New(tb)
	req, err := http.NewRequest(http.MethodPut, base, nil)
	is.NoErr(err) // make request
	req.URL.Opaque = req.URL.Path + rawPath
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := noRedirects.Do(req)
	is.NoErr(err) // PUT
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func TestServe(t *testing.T) {
	is := is.New(t)
	// A receiver on loopback stands in for the callback; nothing leaves the machine.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer receiver.Close()
	cfg := testConfig(t, "[delivery]\nallow_private_targets = true\n")

	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "t", "-scopes", "/webhook", "-json")
	is.NoErr(err) // client add
	var creds credentials
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	is.NoErr(dec.Decode(&creds))                              // -json prints the documented fields
	is.True(strings.HasPrefix(creds.ClientID, "APP-"))        // ORCID's client id form
	is.True(creds.ClientSecret != "")                         // client_secret
	is.True(strings.HasPrefix(creds.SigningSecret, "whsec_")) // signing_secret
	is.Equal(creds.Scopes, []string{"/webhook"})              // scopes
	_, err = os.Stat(filepath.Join(filepath.Dir(cfg), "hookd.db"))
	is.NoErr(err) // the database is beside the config file, as store.path is relative to it

	d := startDaemon(t, cfg)
	is.True(strings.HasPrefix(d.url, "http://127.0.0.1:")) // the URL hookd listens on
	is.True(!strings.HasSuffix(d.url, ":0"))               // the port actually bound

	res, err := noRedirects.Get(d.url + "/healthz")
	is.NoErr(err) // healthz
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK) // alive

	tok := token(t, d.url, creds.ClientID, creds.ClientSecret)
	callback := receiver.URL + "/0000-0002-7253-3645/updated"
	path := "/0000-0002-7253-3645/webhook/" + url.PathEscape(callback)
	res = put(t, d.url, path, tok)
	is.Equal(res.StatusCode, http.StatusCreated)     // registered
	is.Equal(res.Header.Get("Location"), d.url+path) // absolute Location on the daemon's URL
	res = put(t, d.url, path, tok)
	is.Equal(res.StatusCode, http.StatusNoContent) // already registered

	is.NoErr(d.stop()) // graceful shutdown returns nil
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(d.url, "http://"), time.Second)
	is.True(err != nil) // the port is closed after shutdown

	out, err = runCmd(t, "webhooks", "list", "-config", cfg)
	is.NoErr(err)                                         // the registration outlives the daemon
	is.True(strings.Contains(out, "0000-0002-7253-3645")) // listed
}

func TestServeSeedRequests(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "base_path = \"/orcid-api-web\"\n")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "seed", "-id", "0000-0002-5315-1318", "-secret", "fd1a5e75-713a-4ca3-b9c3-a23164e6a263")
	is.NoErr(err) // client add with the seed's credentials
	d := startDaemon(t, cfg)
	is.True(strings.HasSuffix(d.url, "/orcid-api-web")) // the logged URL includes the base path

	// The seed's exact request: curl -d ... sends these bytes, unencoded '/' included.
	req, err := http.NewRequest(http.MethodPost, d.url+"/oauth/token",
		strings.NewReader("client_id=0000-0002-5315-1318&client_secret=fd1a5e75-713a-4ca3-b9c3-a23164e6a263&scope=/webhook&grant_type=client_credentials"))
	is.NoErr(err) // make request
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := noRedirects.Do(req)
	is.NoErr(err) // token request
	defer res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK)               // 200 OK
	is.Equal(res.Header.Get("Cache-Control"), "no-store") // as in the seed
	var tr struct {
		AccessToken  string  `json:"access_token"`
		TokenType    string  `json:"token_type"`
		RefreshToken string  `json:"refresh_token"`
		ExpiresIn    int64   `json:"expires_in"`
		Scope        string  `json:"scope"`
		Orcid        *string `json:"orcid"`
	}
	dec := json.NewDecoder(res.Body)
	dec.DisallowUnknownFields()
	is.NoErr(dec.Decode(&tr))                // the seed's response shape, and ORCID's "orcid"
	is.Equal(tr.TokenType, "bearer")         // token_type
	is.Equal(tr.Scope, "/webhook")           // scope
	is.True(tr.RefreshToken != "")           // refresh_token
	is.Equal(tr.ExpiresIn, int64(631138518)) // ORCID's lifetime, by default
	is.True(tr.Orcid == nil)                 // "orcid": null, as in ORCID's answer

	// The seed's registration, at the base path.
	const seg = "http%3A%2F%2Fnowhere2.com%2F0000-0002-7253-3645%2Fupdated"
	res = put(t, d.url, "/0000-0002-7253-3645/webhook/"+seg, tr.AccessToken)
	is.Equal(res.StatusCode, http.StatusCreated)                                    // 201 Created
	is.Equal(res.Header.Get("Location"), d.url+"/0000-0002-7253-3645/webhook/"+seg) // the seed's Location shape
	is.NoErr(d.stop())                                                              // graceful shutdown
}

func TestServePortInUse(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err) // take a port
	defer ln.Close()
	cfg := filepath.Join(t.TempDir(), "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[http]\nlisten = \""+ln.Addr().String()+"\"\n[store]\npath = \"hookd.db\"\n[log]\nformat = \"json\"\n"), 0o600)) // write config

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr, done := serveIn(ctx, cfg, noenv)
	select {
	case err := <-done:
		is.True(err != nil)                                                                 // serve fails
		is.True(strings.Contains(err.Error(), "http.listen"))                               // names the setting
		is.True(strings.Contains(err.Error(), ln.Addr().String()))                          // and the address
		is.True(strings.Contains(err.Error(), "set http.listen to a free address in "+cfg)) // and what to do, where
		is.Equal(files(t, filepath.Dir(cfg)), []string{"hookd.toml"})                       // before creating any file
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatalf("hookd serve on a port in use did not return an error; stderr:\n%s", stderr)
	}
}

// TestDevPortInUse: hookd dev on a port in use names what chose the address, the
// -listen flag (given, or dev's default) or http.listen of its file, and what to
// do, and creates no file.
func TestDevPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err) // take a port
	}
	defer ln.Close()
	addr := ln.Addr().String()
	devIn := func(tb testing.TB, args ...string) error {
		tb.Helper()
		dir := tb.TempDir()
		tb.Chdir(dir)
		err := run(context.Background(), append([]string{"hookd", "dev"}, args...), noenv, strings.NewReader(""), io.Discard, io.Discard)
		if left := files(tb, dir); len(left) > 0 {
			tb.Errorf("hookd dev on a port in use made files: %v", left) // it listens before it touches the database
		}
		return err
	}
	t.Run("-listen", func(t *testing.T) {
		is := is.New(t)
		err := devIn(t, "-listen", addr)
		is.True(err != nil)                                                                                 // dev fails
		is.Equal(err.Error(), "-listen "+addr+": address already in use: choose another port with -listen") // in the words the user typed
	})
	t.Run("http.listen of its file", func(t *testing.T) {
		is := is.New(t)
		cfg := writeConfig(t, "[http]\nlisten = \""+addr+"\"\n")
		err := devIn(t, "-config", cfg)
		is.True(err != nil)                                                                         // dev fails
		is.True(strings.HasPrefix(err.Error(), "http.listen of -config "+cfg+": "))                 // naming the file's key
		is.True(strings.Contains(err.Error(), addr))                                                // the address
		is.True(strings.HasSuffix(err.Error(), "choose another port with -listen, or in the file")) // and what to do
	})
	t.Run("dev's default", func(t *testing.T) {
		is := is.New(t)
		def := devConfig().HTTP.Listen
		ln, err := net.Listen("tcp", def)
		if err != nil {
			t.Skipf("%s is taken already: %v", def, err)
		}
		defer ln.Close()
		err = devIn(t)
		is.True(err != nil)                                                                                                // dev fails
		is.Equal(err.Error(), "-listen "+def+" (dev's default): address already in use: choose another port with -listen") // the flag that changes it
	})
}

func TestCheckConfig(t *testing.T) {
	is := is.New(t)
	t.Run("bad key", func(t *testing.T) {
		is := is.New(t)
		cfg := filepath.Join(t.TempDir(), "bad.toml")
		is.NoErr(os.WriteFile(cfg, []byte("[http]\nlisen = \"x\"\n"), 0o600)) // write config
		_, err := runCmd(t, "check-config", "-config", cfg)
		is.True(err != nil)                                  // refused
		is.True(strings.Contains(err.Error(), "http.lisen")) // names the key
	})
	t.Run("bad value", func(t *testing.T) {
		is := is.New(t)
		cfg := filepath.Join(t.TempDir(), "bad.toml")
		is.NoErr(os.WriteFile(cfg, []byte("[delivery]\ntimeout = \"0s\"\n"), 0o600)) // write config
		_, err := runCmd(t, "check-config", "-config", cfg)
		is.True(err != nil)                                        // refused
		is.True(strings.Contains(err.Error(), "delivery.timeout")) // names the key
	})
	t.Run("good", func(t *testing.T) {
		is := is.New(t)
		cfg := writeConfig(t, "[store]\npath = \"hookd.db\"\n")
		out, err := runCmd(t, "check-config", "-config", cfg)
		is.NoErr(err)                        // accepted
		is.True(strings.Contains(out, "ok")) // says so
		_, err = os.Stat(filepath.Join(filepath.Dir(cfg), "hookd.db"))
		is.True(os.IsNotExist(err)) // checking creates no database
	})
	t.Run("no file given", func(t *testing.T) {
		is := is.New(t)
		_, err := runCmd(t, "check-config")
		is.True(err != nil) // says which file to give
	})
	t.Run("missing file", func(t *testing.T) {
		is := is.New(t)
		_, err := runCmd(t, "check-config", "-config", filepath.Join(t.TempDir(), "none.toml"))
		is.True(err != nil)                                 // refused
		is.True(strings.Contains(err.Error(), "none.toml")) // names the file
	})
}

func TestVersion(t *testing.T) {
	is := is.New(t)
	out, err := runCmd(t, "version")
	is.NoErr(err)                        // version
	is.Equal(out, "hookd "+version+"\n") // prints the version
	is.True(version != "")               // set
}

func TestUnknownCommand(t *testing.T) {
	is := is.New(t)
	_, err := runCmd(t, "frobnicate")
	is.True(err != nil)                                  // refused
	is.True(strings.Contains(err.Error(), "frobnicate")) // names the command
	_, err = runCmd(t)
	is.True(err != nil) // no command
}

func TestClientAddBadInput(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no name", []string{}, "-name"},
		{"id without secret", []string{"-name", "x", "-id", "0000-0002-5315-1318"}, "-secret"},
		{"unknown scope", []string{"-name", "x", "-scopes", "/read-limited"}, "/read-limited"},
		{"short secret", []string{"-name", "x", "-id", "abc", "-secret", "short"}, "secret"},
		{"bad e-mail", []string{"-name", "x", "-email", "nope"}, `client add: -email: "nope" is not an e-mail address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			_, err := runCmd(t, append([]string{"client", "add", "-config", cfg}, tt.args...)...)
			is.True(err != nil)                             // refused
			is.True(strings.Contains(err.Error(), tt.want)) // says what is wrong
		})
	}
	out, err := runCmd(t, "client", "list", "-config", cfg, "-json")
	is.NoErr(err)                          // list
	is.Equal(strings.TrimSpace(out), "[]") // bad input created no client
}

// TestOrgAddNamesFlags: an error about an input names the flag the user typed, not
// the admin API's field.
func TestOrgAddNamesFlags(t *testing.T) {
	cfg := testConfig(t, "")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"bad contact", []string{"-name", "Uni", "-tech-contact", "nope"}, `org add: -tech-contact: "nope" is not an e-mail address`},
		{"no contact", []string{"-name", "Uni"}, "org add: -tech-contact: is required"},
		{"no name", []string{"-tech-contact", "it@uni.example"}, "org add: -name: is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			_, err := runCmd(t, append([]string{"org", "add", "-config", cfg}, tt.args...)...)
			is.True(err != nil)            // refused
			is.Equal(err.Error(), tt.want) // in the command line's words
		})
	}
}

// TestServeNotifyDelivers is the whole path: a daemon, a registration over HTTP, an
// event from "hookd notify" in another "process" (a separate run on the same
// database), and the receiver getting ORCID's empty POST, signed.
// fastDelivery is a [delivery] section for tests: at once, ticking fast, to loopback.
const fastDelivery = "\n[delivery]\ncoalesce_window = \"0s\"\ntick = \"100ms\"\nallow_private_targets = true\n"

// registerCallback adds a client with "hookd client add" and registers
// receiver/0000-0002-7253-3645/updated for that record over HTTP.
func registerCallback(tb testing.TB, cfg string, d *daemon, receiver string) {
	tb.Helper()
	is := is.New(tb)
	out, err := runCmd(tb, "client", "add", "-config", cfg, "-name", "e2e", "-scopes", "/webhook", "-json")
	is.NoErr(err) // client add
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c)) // client add -json
	tok := token(tb, d.url, c.ClientID, c.ClientSecret)
	callback := receiver + "/0000-0002-7253-3645/updated"
	res := put(tb, d.url, "/0000-0002-7253-3645/webhook/"+httpapi.EscapeSegment(callback), tok)
	is.Equal(res.StatusCode, http.StatusCreated) // registered
}

func TestServeNotifyDelivers(t *testing.T) {
	is := is.New(t)
	got := make(chan *http.Request, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(body) != 0 {
			t.Errorf("ORCID-style callback has a body: %q", body)
		}
		got <- r
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	cfg := testConfig(t, fastDelivery)
	d := startDaemon(t, cfg)
	registerCallback(t, cfg, d, recv.URL)

	out, err := runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.NoErr(err)                                       // notify
	is.True(strings.Contains(out, "1 delivery queued")) // one delivery queued

	select {
	case r := <-got:
		is.Equal(r.Method, http.MethodPost)                              // a POST
		is.Equal(r.URL.Path, "/0000-0002-7253-3645/updated")             // to the callback
		is.True(strings.HasPrefix(r.Header.Get("User-Agent"), "hookd/")) // hookd's user agent
		is.True(strings.HasPrefix(r.Header.Get("webhook-signature"), "v1,"))
	case <-time.After(5 * time.Second):
		t.Fatalf("the receiver got no call within 5s; daemon log:\n%s", d.stderr)
	}
	is.NoErr(d.stop()) // graceful shutdown
}

func TestServePaused(t *testing.T) {
	is := is.New(t)
	got := make(chan string, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	cfg := testConfig(t, fastDelivery+"paused = true\n")
	d := startDaemon(t, cfg)
	registerCallback(t, cfg, d, recv.URL) // registering works while paused
	out, err := runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.NoErr(err)                                       // notify
	is.True(strings.Contains(out, "1 delivery queued")) // stored

	res, err := noRedirects.Get(d.url + "/readyz")
	is.NoErr(err) // readyz
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK) // a paused daemon is ready: it takes events
	select {
	case p := <-got:
		t.Fatalf("paused hookd delivered %s", p)
	case <-time.After(time.Second): // ten ticks
	}
	out, err = runCmd(t, "deliveries", "list", "-config", cfg)
	is.NoErr(err)                             // deliveries list
	is.True(strings.Contains(out, "pending")) // waiting, not lost
	is.NoErr(d.stop())                        // graceful shutdown

	// The same database without paused: the stored delivery goes out.
	resumed := filepath.Join(filepath.Dir(cfg), "resumed.toml")
	body, err := os.ReadFile(cfg)
	is.NoErr(err) // read config
	is.NoErr(os.WriteFile(resumed, []byte(strings.Replace(string(body), "paused = true", "", 1)), 0o600))
	d = startDaemon(t, resumed)
	select {
	case p := <-got:
		is.Equal(p, "/0000-0002-7253-3645/updated") // delivered after the pause
	case <-time.After(5 * time.Second):
		t.Fatalf("no delivery within 5s of resuming; daemon log:\n%s", d.stderr)
	}
	is.NoErr(d.stop()) // graceful shutdown
}

// TestServeMemoryLimit: hookd serve runs with a soft memory limit of 256 MiB
// unless GOMEMLIMIT is set, as it runs with GOGC=300 unless GOGC is.
func TestServeMemoryLimit(t *testing.T) {
	is := is.New(t)
	t.Cleanup(func() { debug.SetMemoryLimit(math.MaxInt64) })
	set := func(getenv func(string) string) int64 {
		debug.SetMemoryLimit(math.MaxInt64)
		_, stderr, done, stop := runUntilStopped(t, getenv, "serve", "-config", testConfig(t, ""))
		select {
		case <-stderr.listening:
		case <-done:
			t.Fatalf("hookd serve ended: %v\n%s", stop(), stderr)
		case <-time.After(10 * time.Second):
			t.Fatalf("hookd serve did not listen within 10s:\n%s", stderr)
		}
		is.NoErr(stop())
		return debug.SetMemoryLimit(-1)
	}
	is.Equal(set(noenv), int64(256<<20)) // hookd's own
	is.Equal(set(func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return ""
	}), int64(math.MaxInt64)) // the environment's: the runtime read it at its start
}

// TestServeHeaderLimit: the daemon reads at most 64 KiB of a request's headers (each
// connection reading headers may hold that much): more is a 431, less is served.
func TestServeHeaderLimit(t *testing.T) {
	is := is.New(t)
	d := startDaemon(t, testConfig(t, ""))
	defer d.stop()
	get := func(size int) int {
		req, err := http.NewRequest(http.MethodGet, d.url+"/healthz", nil)
		is.NoErr(err)
		req.Header.Set("X-Padding", strings.Repeat("p", size))
		res, err := http.DefaultClient.Do(req)
		is.NoErr(err)
		res.Body.Close()
		return res.StatusCode
	}
	is.Equal(get(32<<10), http.StatusOK)                           // well within
	is.Equal(get(200<<10), http.StatusRequestHeaderFieldsTooLarge) // past the bound (Go's default took 1 MiB)
}

// TestServePortInUseWithoutFile: hookd serve without a file, on a port in use,
// says that no file chose the address and that serve takes its address from one
// (it has no -listen, which hookd dev has); it creates no file.
func TestServePortInUseWithoutFile(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", DefaultConfig().HTTP.Listen)
	if err != nil {
		t.Skipf("%s is taken by another process, which may let it go: %v", DefaultConfig().HTTP.Listen, err)
	}
	defer ln.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	err = run(context.Background(), []string{"hookd", "serve"}, noenv, strings.NewReader(""), io.Discard, io.Discard)
	is.True(err != nil)                                              // serve fails
	is.True(strings.Contains(err.Error(), "address already in use")) // saying why
	is.True(strings.Contains(err.Error(), "no -config given"))       // that no file chose the address
	is.True(strings.Contains(err.Error(), "-config FILE"))           // the way to choose one
	is.True(strings.Contains(err.Error(), "serve takes no -listen")) // not the flag dev has
	is.Equal(files(t, dir), []string(nil))                           // and nothing made
}
