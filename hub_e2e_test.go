package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/smtptest"
)

// The two members of the organisation in TestHubTwoDaemons.
const (
	hubAnn = "0000-0002-7253-3645"
	hubBob = "0000-0002-9079-593X"
)

// TestHubTwoDaemons runs the ORCID Hub path end to end with two hookd daemons, a
// second hookd serving as the upstream ORCID API: A plays ORCID,
// B is the institution's hub with [upstream] pointing at A. An organisation set up
// at B through the admin API registers its members' webhooks at A; "hookd notify"
// at A calls B's relay, and B delivers the Hub JSON to the organisation's receiver
// and an e-mail to a real SMTP server. Everything stays on 127.0.0.1.
func TestHubTwoDaemons(t *testing.T) {
	is := is.New(t)

	// The organisation's receiver and SMTP server: real servers on loopback.
	recv := newHubReceiver(t)
	smtpSrv := smtptest.NewServer(t, "", "")

	// A plays ORCID: a plain hookd serve with a /webhook client for the hub.
	const upID, upSecret = "APP-HUBE2E00000001", "hub-upstream-secret-0001"
	cfgA := testConfig(t, "\n[delivery]\ncoalesce_window = \"0s\"\ntick = \"50ms\"\nallow_private_targets = true\n")
	out, err := runCmd(t, "client", "add", "-config", cfgA, "-name", "hub", "-scopes", "/webhook", "-id", upID, "-secret", upSecret, "-json")
	is.NoErr(err) // client add at A
	var upCreds credentials
	is.NoErr(json.Unmarshal([]byte(out), &upCreds)) // client add -json
	is.Equal(upCreds.ClientID, upID)                // the id given
	a := startDaemon(t, cfgA)

	// B is the hub. Its public_url, which it registers at A, must be known before it
	// starts, so it gets a port that was free a moment ago. Another process could take
	// the port between Close and B's Listen; then B fails to start with "http.listen:
	// address already in use" and the test fails loudly rather than wrongly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err) // find a free port
	addrB := ln.Addr().String()
	is.NoErr(ln.Close()) // free it for B
	publicB := "http://" + addrB
	secretFile := filepath.Join(t.TempDir(), "upstream-secret")
	is.NoErr(os.WriteFile(secretFile, []byte(upSecret+"\n"), 0o600)) // the client secret, with the newline an editor leaves
	cfgB := writeConfig(t, fmt.Sprintf(`[http]
listen = %q
public_url = %q
[store]
path = "hookd.db"
[delivery]
tick = "50ms"
coalesce_window = "0s"
allow_private_targets = true
[email]
smtp_addr = %q
from = "hookd@uni.example"
starttls = false
[upstream]
api_url = %q
token_url = %q
client_id = %q
client_secret_file = %q
[log]
format = "json"
level = "debug"
`, addrB, publicB, smtpSrv.Addr, a.url, a.url+"/oauth/token", upID, secretFile))
	initDB(t, cfgB)
	out, err = runCmd(t, "client", "add", "-config", cfgB, "-name", "admin", "-scopes", "/admin", "-json")
	is.NoErr(err) // admin client at B
	var admin credentials
	is.NoErr(json.Unmarshal([]byte(out), &admin)) // client add -json
	b := startDaemon(t, cfgB)
	is.Equal(b.url, publicB) // B says it is where A will call it
	logs := func() string { return "A's log:\n" + a.stderr.String() + "\nB's log:\n" + b.stderr.String() }

	// The organisation, through B's admin API.
	tok := scopedToken(t, b.url, admin.ClientID, admin.ClientSecret, "/admin")
	status, body := adminCall(t, http.MethodPost, b.url+"/api/hub/v1/organisations", tok,
		`{"name": "University of Testing", "tech-contact-email": "tech@uni.example"}`)
	is.Equal(status, http.StatusCreated) // organisation created
	var org struct {
		ID int64 `json:"id"`
	}
	is.NoErr(json.Unmarshal(body, &org)) // organisation JSON
	is.True(org.ID > 0)                  // with an id
	orgURL := fmt.Sprintf("%s/api/hub/v1/organisations/%d", b.url, org.ID)
	const apikey = "hub-api-key-e2e"
	status, body = adminCall(t, http.MethodPut, orgURL+"/webhook", tok, fmt.Sprintf(`{"enabled": true, "url": %q, "append-orcid": true,
		"apikey": %q, "email-notifications-enabled": true, "notification-email": "orcid@uni.example"}`, recv.URL+"/hooks", apikey))
	is.Equal(status, http.StatusCreated) // webhook and e-mail newly enabled
	var settings struct {
		Enabled           bool   `json:"enabled"`
		APIKeySet         bool   `json:"apikey-set"`
		EmailEnabled      bool   `json:"email-notifications-enabled"`
		NotificationEmail string `json:"notification-email"`
	}
	is.NoErr(json.Unmarshal(body, &settings))                 // settings JSON
	is.True(settings.Enabled && settings.EmailEnabled)        // both on
	is.True(settings.APIKeySet)                               // the apikey is kept (and not shown)
	is.Equal(settings.NotificationEmail, "orcid@uni.example") // the notification address
	is.True(!strings.Contains(string(body), apikey))          // never echoed
	members := map[string]struct{ email, eppn string }{
		hubAnn: {"ann@uni.example", "ann@uni"},
		hubBob: {"bob@uni.example", "bob@uni"},
	}
	for id, m := range members {
		status, _ = adminCall(t, http.MethodPut, orgURL+"/members/"+id, tok,
			fmt.Sprintf(`{"name": "Member %s", "email": %q, "eppn": %q}`, id, m.email, m.eppn))
		is.Equal(status, http.StatusCreated) // member added
	}

	// B registers a webhook per member at A, whose callback is B's relay.
	type webhookRow struct {
		ClientID string `json:"client_id"`
		Orcid    string `json:"orcid"`
		Target   string `json:"target"`
		Status   string `json:"status"`
	}
	relays := map[string]string{} // iD → the callback registered at A
	waitFor(t, "both members' webhooks registered at A", logs, func() bool {
		out, err := runCmd(t, "webhooks", "list", "-config", cfgA, "-json")
		is.NoErr(err) // webhooks list at A
		var rows []webhookRow
		is.NoErr(json.Unmarshal([]byte(out), &rows)) // webhooks list -json
		clear(relays)
		for _, r := range rows {
			if r.ClientID == upID && r.Status == "active" && strings.HasPrefix(r.Target, publicB+"/relay/"+r.Orcid+"/") {
				relays[r.Orcid] = r.Target
			}
		}
		return len(relays) == 2
	})
	keyAnn := strings.TrimPrefix(relays[hubAnn], publicB+"/relay/"+hubAnn+"/")
	keyBob := strings.TrimPrefix(relays[hubBob], publicB+"/relay/"+hubBob+"/")
	is.True(keyAnn != "" && !strings.Contains(keyAnn, "/")) // one path segment of key for Ann
	is.True(keyBob != "" && !strings.Contains(keyBob, "/")) // and for Bob
	is.True(keyAnn != keyBob)                               // a key per iD

	type statusJSON struct {
		Upstream   bool `json:"upstream"`
		Registered int  `json:"registered"`
		Pending    int  `json:"pending"`
		Failed     int  `json:"failed"`
		Members    []struct {
			Orcid    string `json:"orcid"`
			Upstream string `json:"upstream"`
		} `json:"members"`
	}
	var st statusJSON
	waitFor(t, "hookd org status at B to say both are registered", logs, func() bool {
		out, err := runCmd(t, "org", "status", "-config", cfgB, "-json")
		is.NoErr(err)                              // org status
		is.NoErr(json.Unmarshal([]byte(out), &st)) // org status -json
		return st.Registered == 2
	})
	is.True(st.Upstream)              // upstream registration is on
	is.Equal(st.Pending+st.Failed, 0) // nothing pending or failing
	is.Equal(len(st.Members), 2)      // both members listed
	for _, m := range st.Members {
		is.Equal(m.Upstream, "registered") // per member
	}
	out, err = runCmd(t, "org", "status", "-config", cfgB, "-org", "University of Testing")
	is.NoErr(err)                                                 // org status, as a person reads it
	is.True(strings.Contains(out, "on; 2 registered, 0 pending")) // the summary
	is.Equal(strings.Count(out, "registered"), 3)                 // the summary and one line per member

	// Adding the members sent CREATED to the organisation: one webhook call and one
	// e-mail each. Wait for them, so what follows counts only the update.
	waitFor(t, "the two CREATED webhook calls and e-mails", logs, func() bool {
		return len(recv.calls()) == 2 && len(smtpSrv.Messages()) == 2
	})
	for _, c := range recv.calls() {
		p := c.payload(t)
		is.Equal(p["type"], "CREATED")                  // a new member
		is.True(p["created-at"] != nil)                 // with when it joined
		is.Equal(c.path, "/hooks/"+p["orcid"].(string)) // the iD appended
	}

	// A wrong key, or another record's key, is a 404 and records nothing.
	for _, path := range []string{"/relay/" + hubAnn + "/wrong-key", "/relay/" + hubBob + "/" + keyAnn} {
		res, err := noRedirects.Post(b.url+path, "", nil)
		is.NoErr(err) // POST to the relay
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusNotFound) // no such relay
	}
	type deliveryRow struct {
		State  string `json:"state"`
		Orcid  string `json:"orcid"`
		Type   string `json:"type"`
		Status int    `json:"last_status"`
	}
	deliveries := func(cfg string) []deliveryRow {
		out, err := runCmd(t, "deliveries", "list", "-config", cfg, "-json")
		is.NoErr(err) // deliveries list
		var rows []deliveryRow
		is.NoErr(json.Unmarshal([]byte(out), &rows)) // deliveries list -json
		return rows
	}
	for _, d := range deliveries(cfgB) {
		is.True(d.Type == "CREATED" || d.Type == "REGISTER") // the wrong keys queued no UPDATED
	}

	// ORCID (A) says Ann's record changed.
	out, err = runCmd(t, "notify", "-config", cfgA, hubAnn)
	is.NoErr(err)                                       // notify at A
	is.True(strings.Contains(out, "1 delivery queued")) // to B's relay, the one webhook of the record

	var update hubCall
	waitFor(t, "the UPDATED webhook call at the organisation's receiver", logs, func() bool {
		calls := recv.calls()
		if len(calls) < 3 {
			return false
		}
		update = calls[2]
		return true
	})
	is.Equal(update.method, http.MethodPost)                                          // a POST
	is.Equal(update.path, "/hooks/"+hubAnn)                                           // with the iD appended
	is.Equal(update.header.Get("apikey"), apikey)                                     // and the apikey header
	is.True(strings.HasPrefix(update.header.Get("Content-Type"), "application/json")) // JSON
	is.True(strings.HasPrefix(update.header.Get("User-Agent"), "hookd/"))             // from hookd
	is.True(update.header.Get("webhook-id") != "")                                    // Standard Webhooks id
	p := update.payload(t)
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	is.Equal(len(keys), 6)                          // orcid, url, type, updated-at, email, eppn: no created-at
	is.Equal(p["orcid"], hubAnn)                    // the record
	is.Equal(p["url"], "https://orcid.org/"+hubAnn) // its public address
	is.Equal(p["type"], "UPDATED")                  // an update
	is.Equal(p["email"], members[hubAnn].email)     // the member's e-mail
	is.Equal(p["eppn"], members[hubAnn].eppn)       // and eppn
	at, err := time.Parse(time.RFC3339, fmt.Sprint(p["updated-at"]))
	is.NoErr(err)                                                          // updated-at is RFC 3339
	is.True(time.Since(at) < time.Minute && time.Since(at) > -time.Minute) // and recent

	var msg parsedMail
	waitFor(t, "the update e-mail at the SMTP server", logs, func() bool {
		msgs := smtpSrv.Messages()
		if len(msgs) < 3 {
			return false
		}
		msg = parseMail(t, msgs[2])
		return true
	})
	is.Equal(msg.subject, "ORCID Profile Update ("+hubAnn+")")       // the Hub's subject
	is.Equal(msg.from, "hookd@uni.example")                          // email.from
	is.Equal(strings.Join(msg.rcpt, ","), "orcid@uni.example")       // SMTP recipients: the notification address alone
	is.Equal(msg.to, "orcid@uni.example")                            // To it
	is.Equal(msg.cc, "")                                             // the technical contact not copied, as the Hub sends it
	is.True(strings.Contains(msg.body, "was updated"))               // about an update
	is.True(strings.Contains(msg.body, "https://orcid.org/"+hubAnn)) // of this record

	// Every delivery at B is done: two registrations, four CREATED (webhook and
	// e-mail per member) and two UPDATED for Ann only; A delivered to B's relay.
	var rows []deliveryRow
	waitFor(t, "every delivery at B delivered", logs, func() bool {
		rows = deliveries(cfgB)
		for _, d := range rows {
			if d.State != "delivered" {
				return false
			}
		}
		return true
	})
	count := map[string]int{}
	for _, d := range rows {
		count[d.Type+" "+d.Orcid]++
	}
	is.Equal(count, map[string]int{
		"REGISTER " + hubAnn: 1, "REGISTER " + hubBob: 1,
		"CREATED " + hubAnn: 2, "CREATED " + hubBob: 2,
		"UPDATED " + hubAnn: 2,
	}) // nothing more, so the wrong keys fanned nothing out
	// A records its call to B's relay on its next turn, which may come after B's
	// deliveries are done.
	var rowsA []deliveryRow
	waitFor(t, "A's callback recorded", logs, func() bool {
		rowsA = deliveries(cfgA)
		return len(rowsA) == 1 && rowsA[0].State != "in-flight"
	})
	is.Equal(len(rowsA), 1)                         // A's one callback, to B's relay
	is.Equal(rowsA[0].Orcid, hubAnn)                // for Ann
	is.Equal(rowsA[0].State, "delivered")           // done
	is.Equal(rowsA[0].Status, http.StatusNoContent) // the relay's 204
	is.Equal(len(recv.calls()), 3)                  // two CREATED and one UPDATED, no extra call
	is.Equal(len(smtpSrv.Messages()), 3)            // and as many e-mails

	// A logged B's registrations (at debug level) and its call to B's relay without
	// the relays' keys: whoever holds one makes B fan an update out.
	is.True(!strings.Contains(a.stderr.String(), keyAnn))                                                 // Ann's key is not in A's log
	is.True(!strings.Contains(a.stderr.String(), keyBob))                                                 // nor Bob's
	is.True(strings.Contains(a.stderr.String(), url.QueryEscape(publicB+"/relay/"+hubAnn+"/[redacted]"))) // the registration is logged

	is.NoErr(b.stop()) // the hub stops cleanly
	is.NoErr(a.stop()) // and so does "ORCID"
}

// waitFor polls cond until it holds, failing the test with logs() when it has not
// within 10 s. It waits on a condition, never on time alone.
func waitFor(tb testing.TB, what string, logs func() string, cond func() bool) {
	tb.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited 10s for %s\n%s", what, logs())
		}
		<-tick.C
	}
}

// scopedToken gets an access token with scope over HTTP.
func scopedToken(tb testing.TB, base, id, secret, scope string) string {
	tb.Helper()
	is := is.New(tb)
	res, err := noRedirects.PostForm(base+"/oauth/token", url.Values{
		"client_id": {id}, "client_secret": {secret}, "scope": {scope}, "grant_type": {"client_credentials"},
	})
	is.NoErr(err) // token request
	defer res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK) // token issued
	var tr struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	is.NoErr(json.NewDecoder(res.Body).Decode(&tr)) // token response
	is.Equal(tr.Scope, scope)                       // the scope asked for
	return tr.AccessToken
}

// adminCall sends a JSON body with a bearer token and returns the status and body.
func adminCall(tb testing.TB, method, u, tok, body string) (int, []byte) {
	tb.Helper()
	is := is.New(tb)
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	is.NoErr(err) // make request
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := noRedirects.Do(req)
	is.NoErr(err) // admin API call
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	is.NoErr(err) // read answer
	if res.StatusCode >= 300 {
		tb.Logf("%s %s: %d %s", method, u, res.StatusCode, b)
	}
	return res.StatusCode, b
}

// hubCall is one request the organisation's receiver got.
type hubCall struct {
	method, path string
	header       http.Header
	body         []byte
}

// payload decodes the Hub JSON of the call.
func (c hubCall) payload(tb testing.TB) map[string]any {
	tb.Helper()
	is := is.New(tb)
	var p map[string]any
	is.NoErr(json.Unmarshal(c.body, &p)) // the body is JSON
	return p
}

// hubReceiver is the organisation's webhook receiver: it keeps every call and
// answers 204.
type hubReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	list []hubCall
}

func newHubReceiver(tb testing.TB) *hubReceiver {
	tb.Helper()
	rv := &hubReceiver{}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rv.mu.Lock()
		rv.list = append(rv.list, hubCall{r.Method, r.URL.Path, r.Header.Clone(), body})
		rv.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(rv.Close)
	return rv
}

func (rv *hubReceiver) calls() []hubCall {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]hubCall(nil), rv.list...)
}

// parsedMail is an accepted message read as a mail client would.
type parsedMail struct {
	from    string   // envelope sender
	rcpt    []string // envelope recipients
	subject string
	to, cc  string // the addresses of the To and Cc headers, comma-separated
	body    string // decoded text
}

func parseMail(tb testing.TB, m smtptest.Message) parsedMail {
	tb.Helper()
	is := is.New(tb)
	msg, err := mail.ReadMessage(strings.NewReader(m.Data))
	is.NoErr(err) // an RFC 5322 message
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	is.NoErr(err) // Subject decodes
	addrs := func(h string) string {
		if msg.Header.Get(h) == "" {
			return ""
		}
		list, err := msg.Header.AddressList(h)
		is.NoErr(err) // an address list
		var out []string
		for _, a := range list {
			out = append(out, a.Address)
		}
		return strings.Join(out, ",")
	}
	var r io.Reader = msg.Body
	switch strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	body, err := io.ReadAll(r)
	is.NoErr(err) // the body decodes
	return parsedMail{from: m.From, rcpt: m.To, subject: subject, to: addrs("To"), cc: addrs("Cc"), body: string(body)}
}
