package dispatch_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/secret"
	"hookd/store"
)

// echo answers status with everything the request carried: its line, its headers
// and its body, as a careless receiver or token endpoint does on an error page.
func echo(status int) receiverFunc {
	return func(_ int, w http.ResponseWriter, r *http.Request, body []byte) error {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.RequestURI())
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(r.Header[k], ", "))
		}
		b.WriteString("\n")
		b.Write(body)
		w.WriteHeader(status)
		w.Write([]byte(b.String()))
		return nil
	}
}

// TestEchoedSecretsAreNotStored: receivers and token endpoints that echo what they
// were sent (Basic credentials, the client-credentials form, the bearer token, the
// Hub's apikey, the upstream's client secret, token and relay key) leave none of
// it in the database file, the API's deliveries output, the upstream registration
// state or the log; what they echoed is stored with the secrets redacted.
func TestEchoedSecretsAreNotStored(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	a := newAuthAPI(e)
	var logs lockedBuffer

	// Secrets with characters that form- and base64-encoding change, and a random
	// part, so that none occurs in the file by chance.
	fresh := func(name string) string { return name + "+/=" + hex.EncodeToString(secret.Random(8)) }
	var (
		basicPass  = fresh("basic-PASS")
		okPass     = fresh("ok-PASS")
		echoSecret = fresh("cc-SECRET-echoed")
		ccSecret   = fresh("cc-SECRET")
		ccToken    = fresh("cc-TOKEN")
		apiKey     = fresh("hub-APIKEY")
		upSecret   = fresh("up-SECRET")
		upToken    = fresh("up-TOKEN")
		headerTok  = fresh("header-TOKEN") // a custom header named as a credential
	)

	target := newReceiver(t, echo(http.StatusInternalServerError)) // fails, echoing
	okTarget := newReceiver(t, echo(http.StatusOK))                // succeeds, echoing
	tokenEcho := newReceiver(t, echo(http.StatusBadRequest))       // a token endpoint that echoes the form
	tokenOK := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":3600}`, ccToken)
		return nil
	})
	var upstreamTokenOK atomic.Bool // the upstream's token endpoint echoes the form until set
	upstream := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) error {
		if r.URL.Path == "/oauth/token" && upstreamTokenOK.Load() {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":3600}`, upToken)
			return nil
		}
		return echo(http.StatusBadRequest)(n, w, r, body)
	})

	a.create(`{"targetURL":"` + target.URL + `/basic","auth":{"type":"basic","username":"hookd-user","password":"` + basicPass + `"}}`)
	a.create(`{"targetURL":"` + okTarget.URL + `/ok","auth":{"type":"basic","username":"hookd-user","password":"` + okPass + `"}}`)
	a.create(`{"targetURL":"` + target.URL + `/headers","headers":{"X-Api-Token":"` + headerTok + `","X-Token-Version":"7","X-Trace":"trace-kept-7"}}`)
	a.create(`{"targetURL":"` + target.URL + `/cc-echo","auth":{"type":"client_credential","clientID":"cb app",
		"clientSecret":"` + echoSecret + `","tokenURL":"` + tokenEcho.URL + `/token"}}`)
	a.create(`{"targetURL":"` + target.URL + `/cc","auth":{"type":"client_credential","clientID":"cb-app",
		"clientSecret":"` + ccSecret + `","tokenURL":"` + tokenOK.URL + `/token"}}`)

	_, err := e.st.ConfigureUpstream(ctx, upstream.URL)
	is.NoErr(err) // upstream registration on
	org, err := e.st.CreateOrganisation(ctx, "University of Echoes", "tech@echo.example")
	is.NoErr(err) // create organisation
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: target.URL + "/hub", APIKey: &apiKey})
	is.NoErr(err) // the organisation's webhook, with an apikey
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
	is.NoErr(err) // a member
	relayKey, err := e.st.RelayKey(ctx, orcidA)
	is.NoErr(err) // the key in the relay callback hookd registers upstream

	d := e.dispatcher(func(o *dispatch.Options) {
		o.RetryBase = time.Minute
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.LogDeliveries = true // every outcome is logged
	})
	d.ConfigureHub(dispatch.HubOptions{Upstream: dispatch.UpstreamOptions{APIURL: upstream.URL, TokenURL: upstream.URL + "/oauth/token",
		ClientID: "APP-UP", ClientSecret: upSecret, PublicURL: "https://hub.example.org"}})
	e.intake(0, store.Event{Orcid: orcidA})
	is.True(e.tick(d) >= 6) // the four webhooks, the organisation's and the upstream registration
	upstreamTokenOK.Store(true)
	e.clock.Advance(time.Hour)
	is.True(e.tick(d) >= 5) // the failed ones again: now the upstream call itself echoes

	// What would give a secret away: each, and the encodings it travelled in.
	var leaks []string
	for _, s := range []string{basicPass, okPass, echoSecret, ccSecret, ccToken, apiKey, upSecret, upToken, relayKey} {
		leaks = append(leaks, s, url.QueryEscape(s), url.PathEscape(s), base64.StdEncoding.EncodeToString([]byte(s)))
	}
	leaks = append(leaks,
		base64.StdEncoding.EncodeToString([]byte("hookd-user:"+basicPass)),
		base64.StdEncoding.EncodeToString([]byte("hookd-user:"+okPass)),
		base64.StdEncoding.EncodeToString([]byte(url.QueryEscape("cb app")+":"+url.QueryEscape(echoSecret))),
		base64.StdEncoding.EncodeToString([]byte(url.QueryEscape("APP-UP")+":"+url.QueryEscape(upSecret))))
	clean := func(where, text string) {
		t.Helper()
		for _, l := range leaks {
			if strings.Contains(text, l) {
				t.Errorf("%s holds a secret (%q)", where, l)
			}
		}
	}

	// The echoes reached the attempt log, redacted.
	var stored strings.Builder
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		stored.WriteString(dl.LastError + "\n")
		for _, at := range e.attempts(dl.ID) {
			stored.WriteString(at.Error + "\n" + at.Response + "\n")
		}
	}
	clean("the attempt log", stored.String())
	is.True(strings.Contains(stored.String(), "[redacted]")) // the echoes were stored, redacted
	is.True(strings.Contains(stored.String(), "Webhook-Id")) // with what else they said
	// A custom header named as a credential is kept with its webhook, as given,
	// but its echo is redacted like the secrets in auth; other custom headers' are not.
	is.True(!strings.Contains(stored.String(), headerTok))
	is.True(strings.Contains(stored.String(), "X-Trace: trace-kept-7"))
	is.True(strings.Contains(stored.String(), "X-Token-Version: 7")) // a value too short to be a secret is not hunted for

	status, body := a.call(http.MethodGet, authWebhooks, "")
	is.Equal(status, http.StatusOK) // list webhooks
	for _, id := range strings.Split(string(body), `"id":"`)[1:] {
		id, _, _ = strings.Cut(id, `"`)
		status, out := a.call(http.MethodGet, authWebhooks+"/"+id+"/deliveries?limit=100", "")
		is.Equal(status, http.StatusOK) // the API's deliveries with their attempts
		is.True(strings.Contains(string(out), "attempts"))
		clean("the API's deliveries of "+id, string(out))
	}

	members, err := e.st.Members(ctx, org.ID)
	is.NoErr(err) // members with their upstream state
	is.Equal(len(members), 1)
	is.True(strings.HasPrefix(members[0].Upstream, "failed: ")) // the upstream's echo, as "hookd org status" shows it
	clean("the upstream registration state", members[0].Upstream)

	is.True(strings.Contains(logs.String(), "delivery failed")) // failures were logged
	clean("the log", logs.String())
	is.True(!strings.Contains(logs.String(), headerTok))

	// The database file and its WAL, as they are on disk, and a backup.
	backup := filepath.Join(e.dir, "backup.db")
	is.NoErr(e.st.Backup(ctx, backup)) // a backup
	files, err := filepath.Glob(filepath.Join(e.dir, "*.db*"))
	is.NoErr(err)
	is.True(len(files) >= 3) // hookd.db, its -wal, the backup
	for _, f := range files {
		b, err := os.ReadFile(f)
		is.NoErr(err) // read the raw file
		clean(filepath.Base(f), string(b))
	}
}

// TestCallbackRequestTargetExact: a callback is called at the URL registered, its
// escapes kept (SPEC: "%2F" round-trips), and what a request line cannot carry as
// it is (a byte beyond ASCII, "|") escaped, in the path and in the query.
func TestCallbackRequestTargetExact(t *testing.T) {
	for _, tc := range []struct{ registered, want string }{
		{"/hook/a%2Fb", "/hook/a%2Fb"},
		{"/hook/%C3%A9/a%2Fb", "/hook/%C3%A9/a%2Fb"},
		{"/hook/\u00e9/a%2Fb", "/hook/%C3%A9/a%2Fb"},
		{"/hook/x|y/a%2Fb", "/hook/x%7Cy/a%2Fb"},
		{"/hook?a=\u00e9&b=%2F", "/hook?a=%C3%A9&b=%2F"},
		{"/hook/\u00e9?q", "/hook/%C3%A9?q"},
	} {
		t.Run(tc.registered, func(t *testing.T) {
			is := is.New(t)
			var mu sync.Mutex
			var got string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = r.RequestURI
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			e := newEnv(t)
			_, created, err := e.st.PutOrcidWebhook(context.Background(), e.client.ID, orcidA, srv.URL+tc.registered)
			is.NoErr(err)
			is.True(created)
			e.intake(0, store.Event{Orcid: orcidA})
			is.Equal(e.tick(e.dispatcher(nil)), 1)
			mu.Lock()
			defer mu.Unlock()
			is.Equal(got, tc.want) // the request's target
		})
	}
}

// TestEchoedCustomHeaderSecretWithSpaces: a custom header named as a credential is
// sent without the spaces and tabs around its value (as HTTP sends any header), and
// that value, as the receiver got and echoed it, is redacted from the attempt log.
// The API refuses such a value now; a webhook stored with one before keeps it.
func TestEchoedCustomHeaderSecretWithSpaces(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	a := newAuthAPI(e)
	tok := "header-TOKEN-" + hex.EncodeToString(secret.Random(8))
	target := newReceiver(t, echo(http.StatusInternalServerError))
	a.create(`{"targetURL":"` + target.URL + `/headers","headers":{"X-Api-Token":"` + tok + `"}}`)
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "hookd.db"))
	is.NoErr(err)
	spaced, _ := json.Marshal(map[string]string{"X-Api-Token": " \t" + tok + " "})
	res, err := db.Exec("UPDATE subscriptions SET headers = ? WHERE format = 'standard'", string(spaced))
	is.NoErr(err)
	n, err := res.RowsAffected()
	is.NoErr(err)
	is.Equal(n, int64(1)) // stored as an older hookd took it
	is.NoErr(db.Close())

	d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Minute })
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // the webhook was called

	var stored strings.Builder
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		stored.WriteString(dl.LastError + "\n")
		for _, at := range e.attempts(dl.ID) {
			stored.WriteString(at.Error + "\n" + at.Response + "\n")
		}
	}
	is.True(strings.Contains(stored.String(), "X-Api-Token: [redacted]")) // the echo was stored, redacted
	is.True(!strings.Contains(stored.String(), tok))
}

// TestEchoedSecretsInJSONEscapes: a receiver that echoes its request as JSON whose
// encoder escapes more than it must (PHP's json_encode writes "/" as "\/", .NET's
// "+" as "\u002B"), under names the credential patterns do not know (PHP's
// HTTP_AUTHORIZATION, HTTP_APIKEY), stores none of the secrets hookd sent.
func TestEchoedSecretsInJSONEscapes(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	a := newAuthAPI(e)
	fresh := func(name string) string { return name + "/+" + hex.EncodeToString(secret.Random(8)) + "/x" }
	var (
		basicPass = "b???" + fresh("basic-PASS") // "hookd-user:b???" is "aG9va2QtdXNlcjpiPz8/" in base64
		apiKey    = fresh("hub-APIKEY")
		headerTok = fresh("header-TOKEN")
	)
	phpEscape := strings.NewReplacer("/", `\/`, "+", `\u002B`)
	target := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		var b strings.Builder
		b.WriteString("{")
		for _, k := range []string{"Authorization", "Apikey", "X-Api-Token"} {
			if v := r.Header.Get(k); v != "" {
				fmt.Fprintf(&b, `"HTTP_%s":"%s",`, strings.ToUpper(strings.ReplaceAll(k, "-", "_")), phpEscape.Replace(v))
			}
		}
		b.WriteString(`"REQUEST_METHOD":"POST"}`)
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(b.String()))
		return nil
	})
	a.create(`{"targetURL":"` + target.URL + `/basic","auth":{"type":"basic","username":"hookd-user","password":"` + basicPass + `"}}`)
	a.create(`{"targetURL":"` + target.URL + `/headers","headers":{"X-Api-Token":"` + headerTok + `"}}`)
	org, err := e.st.CreateOrganisation(ctx, "University of Escapes", "tech@escape.example")
	is.NoErr(err) // create organisation
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: target.URL + "/hub", APIKey: &apiKey})
	is.NoErr(err) // the organisation's webhook, with an apikey
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
	is.NoErr(err) // a member

	d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Minute })
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 3) // the two webhooks and the organisation's were called

	var stored strings.Builder
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		for _, at := range e.attempts(dl.ID) {
			stored.WriteString(at.Response + "\n")
		}
	}
	is.True(strings.Contains(stored.String(), `"REQUEST_METHOD":"POST"`)) // the echoes were stored
	basic := base64.StdEncoding.EncodeToString([]byte("hookd-user:" + basicPass))
	for _, s := range []string{basicPass, apiKey, headerTok, basic} {
		for _, form := range []string{s, phpEscape.Replace(s), s[len(s)-18:], phpEscape.Replace(s[len(s)-18:])} {
			if strings.Contains(stored.String(), form) {
				t.Errorf("the attempt log holds a secret (%q): %s", form, stored.String())
			}
		}
	}
}
