package dispatch_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// TestMemoryIsBounded: what the dispatcher remembers per host and per subscription
// (the failure log, the owners told of a deactivation, the callbacks' token
// sources) grows with the hosts and subscriptions it meets, and shrinks again once
// time has passed. (The caps are TestRememberedIsCapped's.)
func TestMemoryIsBounded(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"tok","token_type":"bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokens.Close)
	// webhook(i) is a client_credential webhook for record i on a receiver of its
	// own (a host of its own) answering 410, with an event waiting.
	webhook := func(i int) {
		rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
			w.WriteHeader(http.StatusGone)
			return nil
		})
		_, _, err := e.st.CreateWebhook(ctx, e.client.ID, store.WebhookSpec{TargetURL: rv.URL + "/hook", Orcid: testOrcid(i),
			Auth: store.Auth{Type: store.AuthClientCredential, ClientID: "app", Secret: "app-secret", TokenURL: tokens.URL}})
		is.NoErr(err) // create webhook
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	const hosts = 30
	for i := range hosts {
		webhook(i)
	}
	d := e.dispatcher(nil)
	is.Equal(e.tick(d), hosts) // one call to each host, each answered 410
	failures, told, sources := dispatch.Remembered(d)
	is.Equal(failures, hosts) // the failure log remembers each host
	is.Equal(told, hosts)     // each subscription's owner was told (here: logged, as no e-mail is set up)
	is.Equal(sources, hosts)  // and each subscription has a token source

	e.clock.Advance(2 * time.Hour) // nothing happens for two hours
	webhook(hosts)
	is.Equal(e.tick(d), 1) // then one more host and subscription
	failures, told, sources = dispatch.Remembered(d)
	is.Equal(failures, 1) // the others are forgotten
	is.Equal(told, 1)
	is.Equal(sources, 1)
}

// TestTokenAnswersNotKept: of a token endpoint's answer, a callback's token
// source keeps the token and, of a refusal, its words, bounded: not the rest of
// the answer (up to the 1 MiB oauth2 reads), which every one of the token cache's
// thousands of sources would hold for as long as it is kept. An endpoint that
// pads its answers (a field beside the token, an error's description, a page)
// costs hookd no more than one that does not.
func TestTokenAnswersNotKept(t *testing.T) {
	pad := strings.Repeat("1,", 500<<10) // 1000 KiB
	answers := map[string]func(w http.ResponseWriter){
		"a token with a padded field beside it": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"tok","token_type":"bearer","expires_in":3600,"padding":[`+pad+`1]}`)
		},
		"a form-encoded token with a padded field beside it": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
			fmt.Fprint(w, "access_token=tok&token_type=bearer&expires_in=3600&padding="+pad)
		},
		"an OAuth error with a padded description": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"`+pad+`"}`)
		},
		"a padded page": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html><body>"+pad+"</body></html>")
		},
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { answer(w) }))
			t.Cleanup(tokens.Close)
			rv := newReceiver(t, nil)
			d := e.dispatcher(nil)
			is.Equal(e.tick(d), 0) // the dispatcher's own memory, before the sources'
			const sources = 6
			grown := sourcesGrowth(t, e, d, rv.URL+"/hook", sources, func(int) string { return tokens.URL })
			is.True(grown < sources*128<<10) // far less than the answers: none of them is kept
		})
	}
}

// TestTokenRetryAfterNotKept: of a token endpoint's refusal, a callback's token
// source keeps its Retry-After bounded, as it keeps its words: a header of up to
// the 64 KiB an answer's headers may take was kept whole, by each of the token
// cache's thousands of sources, for as long as it held the refusal. The attempt
// quotes it as before, and one that reads (a count of seconds written long) is
// read as before.
func TestTokenRetryAfterNotKept(t *testing.T) {
	for _, tt := range []struct {
		name, retryAfter, says string
		due                    time.Duration
	}{
		{"short", "soon", ` (its Retry-After "soon" is neither seconds nor an HTTP date: backing off instead)`, time.Minute},
		{"unreadable", strings.Repeat("soon ", 12<<10), ` (its Retry-After "` + strings.Repeat("soon ", 13)[:64] + `" is neither seconds nor an HTTP date: backing off instead)`, time.Minute},
		{"seconds written long", strings.Repeat("0", 60<<10) + "120", "", 120 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", tt.retryAfter)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"error":"slow_down"}`)
			}))
			t.Cleanup(tokens.Close)
			rv := newReceiver(t, nil)
			d := e.dispatcher(nil)
			is.Equal(e.tick(d), 0) // the dispatcher's own memory, before the sources'
			const sources = 16
			grown := sourcesGrowth(t, e, d, rv.URL+"/hook", sources, func(int) string { return tokens.URL })
			is.True(grown < sources*32<<10) // far less than the headers (60 KiB): none of them is kept
			for _, dl := range e.deliveries(store.DeliveryFilter{}) {
				is.Equal(dl.LastError, `token endpoint: oauth2: "slow_down"`+tt.says) // told as before
				is.Equal(dl.DueAt.Sub(e.clock.Now()).Round(time.Second), tt.due)      // and read as before
			}
		})
	}
}

// TestTokenFailuresNotKept: of a token endpoint's failure to answer, a callback's
// token source keeps what describes it, not what it holds of the endpoint: a TLS
// certificate it refused (its whole chain, up to the 256 KiB Go reads, parsed
// beside its bytes) or a status line it could not read (quoted whole, up to the
// 64 KiB an answer's headers may take) was kept by each of the token cache's
// thousands of sources for as long as it held the failure. The attempt says what
// it said.
func TestTokenFailuresNotKept(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	status := "2" + strings.Repeat("0", 60<<10)
	for _, tt := range []struct {
		name     string
		endpoint func(t *testing.T, i int) string // the token URL of source i
		says     string
	}{
		{"a status line, padded", func(t *testing.T, _ int) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
							fmt.Fprintf(c, "HTTP/1.1 %s OK\r\n\r\n", status)
						}
					}()
				}
			}()
			return "http://" + ln.Addr().String()
		}, fmt.Sprintf("token endpoint: malformed HTTP status code %q", status)[:1024]},
		{"an untrusted certificate, padded", func(t *testing.T, i int) string {
			// A certificate of its own for each: Go's TLS shares the parsing of
			// one met twice.
			pad := make([]byte, 200<<10)
			rand.Read(pad)
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "tokens"},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1}, Value: pad}}}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				t.Fatal(err)
			}
			s := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			s.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake hookd refuses
			s.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
			s.StartTLS()
			t.Cleanup(s.Close)
			return s.URL
		}, "token endpoint: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			rv := newReceiver(t, nil)
			d := e.dispatcher(nil)
			is.Equal(e.tick(d), 0) // the dispatcher's own memory, before the sources'
			const sources = 16
			grown := sourcesGrowth(t, e, d, rv.URL+"/hook", sources, func(i int) string { return tt.endpoint(t, i) })
			is.True(grown < sources*32<<10) // far less than what each endpoint sent: none of it is kept
			for _, dl := range e.deliveries(store.DeliveryFilter{}) {
				is.Equal(dl.LastError, tt.says) // told as before
			}
		})
	}
}

// sourcesGrowth registers n webhooks with client_credential auth at target, the
// ith asking tokenURL(i) for its tokens, each with an event due, and returns by
// how much the heap grew over the tick that calls them all, each webhook's token
// source kept (with its token, or its refusal or failure).
func sourcesGrowth(t *testing.T, e *testEnv, d *dispatch.Dispatcher, target string, n int, tokenURL func(i int) string) int64 {
	t.Helper()
	is := is.New(t)
	for i := range n {
		_, _, err := e.st.CreateWebhook(context.Background(), e.client.ID, store.WebhookSpec{TargetURL: target, Orcid: testOrcid(i),
			Auth: store.Auth{Type: store.AuthClientCredential, ClientID: "app", Secret: "app-secret", TokenURL: tokenURL(i)}})
		is.NoErr(err) // create webhook
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	var before, after runtime.MemStats
	settle()
	runtime.ReadMemStats(&before)
	is.Equal(e.tick(d), n) // each webhook's source asks its endpoint
	settle()
	runtime.ReadMemStats(&after)
	_, _, kept := dispatch.Remembered(d)
	is.Equal(kept, n) // each source is kept
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d KiB for %d sources", grown>>10, n)
	runtime.KeepAlive(d)
	return grown
}

// settle collects garbage until what goes with it has gone: Go's TLS keeps a
// certificate's bytes for its cache of them until a cleanup, run after a
// collection, lets the next one take them.
func settle() {
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
