package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"hookd/secret"
	"hookd/ssrf"
	"hookd/store"
)

// receipt is a request to inbox with the given headers and body.
func receipt(inbox string, h http.Header, body string) store.InboxReceipt {
	if h == nil {
		h = http.Header{}
	}
	return store.InboxReceipt{Inbox: inbox, Method: http.MethodPost, Path: "/inbox/" + inbox + "/x", Header: h,
		Body: []byte(body), RemoteAddr: "127.0.0.1:50000"}
}

// withURL is rc with the path and query given.
func withURL(rc store.InboxReceipt, path, query string) store.InboxReceipt {
	rc.Path, rc.Query = path, query
	return rc
}

func record(tb testing.TB, st *store.Store, rc store.InboxReceipt, lim store.InboxLimits) store.InboxRequest {
	tb.Helper()
	r, _, err := st.RecordInboxRequest(context.Background(), rc, lim)
	if err != nil {
		tb.Fatalf("record inbox request: %v", err)
	}
	return r
}

func ids(rs []store.InboxRequest) []int64 {
	out := []int64{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// TestInboxBounds: each inbox keeps its newest PerInbox requests and all inboxes
// together their newest Total; the oldest go in the transaction of the insert.
func TestInboxBounds(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	lim := store.InboxLimits{PerInbox: 3, Total: 5}

	var a, b []int64
	for i := range 5 {
		a = append(a, record(t, st, receipt("a", nil, fmt.Sprint("a", i)), lim).ID)
	}
	got, err := st.InboxRequests(ctx, store.InboxFilter{Inbox: "a"})
	is.NoErr(err)                                 // list a
	is.Equal(ids(got), []int64{a[4], a[3], a[2]}) // the newest 3, newest first
	is.Equal(string(got[0].Body), "a4")           // with their bodies

	for i := range 3 {
		b = append(b, record(t, st, receipt("b", nil, fmt.Sprint("b", i)), lim).ID)
	}
	all, err := st.InboxRequests(ctx, store.InboxFilter{})
	is.NoErr(err)                                             // list all
	is.Equal(ids(all), []int64{b[2], b[1], b[0], a[4], a[3]}) // the newest 5 in all: a's oldest kept one went too

	inboxes, err := st.Inboxes(ctx, store.InboxesFilter{})
	is.NoErr(err)                          // list inboxes
	is.Equal(len(inboxes), 2)              // a and b
	is.Equal(inboxes[0].Name, "a")         // by name
	is.Equal(inboxes[0].Requests, 2)       // a holds 2 now
	is.Equal(inboxes[0].LastID, a[4])      // its newest
	is.Equal(inboxes[1].Requests, 3)       // b holds 3
	is.True(inboxes[1].Answer.IsDefault()) // answering 204

	after, err := st.InboxRequestsAfter(ctx, "b", b[0], 10)
	is.NoErr(err)                             // what came after b's first
	is.Equal(ids(after), []int64{b[1], b[2]}) // oldest first
	arrived, err := st.InboxArrivalsAfter(ctx, "", a[4], 10)
	is.NoErr(err) // what came after a's newest, in every inbox
	is.Equal(arrived, []store.InboxArrival{{ID: b[0], Inbox: "b", Seen: true}, {ID: b[1], Inbox: "b", Seen: true}, {ID: b[2], Inbox: "b", Seen: true}})
	arrived, err = st.InboxArrivalsAfter(ctx, "a", a[3], 10)
	is.NoErr(err)             // in a
	is.Equal(len(arrived), 1) // its newest
	is.Equal(arrived[0].ID, a[4])
	page, err := st.InboxRequests(ctx, store.InboxFilter{Before: b[1], Limit: 2})
	is.NoErr(err)                            // the next page after b[1]
	is.Equal(ids(page), []int64{b[0], a[4]}) // older ones

	n, err := st.ClearInbox(ctx, "b")
	is.NoErr(err)  // clear b
	is.Equal(n, 3) // its 3 requests
	_, err = st.InboxRequestByID(ctx, b[0])
	is.True(errors.Is(err, store.ErrNotFound)) // gone
	one, err := st.InboxRequestByID(ctx, a[4])
	is.NoErr(err)            // a's are kept
	is.Equal(one.Inbox, "a") // the one asked for

	// A smaller Total (keep_total lowered) keeps the newest of all at the next
	// request: every one over it goes at once.
	var c []int64
	for i := range 3 {
		c = append(c, record(t, st, receipt("c", nil, fmt.Sprint("c", i)), lim).ID)
	}
	all, err = st.InboxRequests(ctx, store.InboxFilter{})
	is.NoErr(err)
	is.Equal(ids(all), []int64{c[2], c[1], c[0], a[4], a[3]}) // 5 in all
	c = append(c, record(t, st, receipt("c", nil, "c3"), store.InboxLimits{PerInbox: 3, Total: 2}).ID)
	all, err = st.InboxRequests(ctx, store.InboxFilter{})
	is.NoErr(err)
	is.Equal(ids(all), []int64{c[3], c[2]}) // the newest 2
}

func TestInboxRecordRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	bigHeader := http.Header{"X-Big": {strings.Repeat("x", store.MaxInboxHeaders)}}
	// 10,000 empty fields: 40 KB as sent ("A:" and a line break each), 90 KB as kept,
	// where the names and values alone make 10,000 bytes.
	manyHeaders := http.Header{"A": make([]string, 10000)}
	// 2,000 empty credentials' fields: 30 KB of ["X-Token",""] as sent, 50 KB of
	// ["X-Token","[redacted]"] as kept.
	manySecrets := http.Header{"X-Token": make([]string, 2000)}
	for _, tt := range []struct {
		name  string
		rc    store.InboxReceipt
		field string
	}{
		{"bad name", receipt("no/slash", nil, ""), "inbox"},
		{"dot name", receipt("..", nil, ""), "inbox"},
		{"long body", receipt("a", nil, strings.Repeat("x", store.MaxInboxBody+1)), "body"},
		{"long headers", receipt("a", bigHeader, ""), "headers"},
		{"many headers", receipt("a", manyHeaders, ""), "headers"},
		{"many redacted headers", receipt("a", manySecrets, ""), "headers"},
		{"long path", withURL(receipt("a", nil, ""), "/inbox/a/"+strings.Repeat("p", store.MaxInboxRequestLine), ""), "request line"},
		// 1,000 empty "token" parameters: 6 KB as sent, 21 KB as kept.
		// A form of 10,922 empty "token" fields: 64 KiB as sent, 229 KB as kept.
		{"many redacted form fields", receipt("a", http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=UTF-8"}},
			strings.Repeat("token&", store.MaxInboxBody/6)), "body"},
		{"many redacted parameters", withURL(receipt("a", nil, ""), "/inbox/a", strings.Repeat("token&", 1000)), "request line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			_, _, err := st.RecordInboxRequest(ctx, tt.rc, store.InboxLimits{})
			var e *store.Error
			is.True(errors.As(err, &e))     // a store.Error
			is.Equal(e.Code, store.Invalid) // invalid
			is.Equal(e.Field, tt.field)     // naming what is wrong
		})
	}
	is := is.New(t)
	all, err := st.InboxRequests(ctx, store.InboxFilter{})
	is.NoErr(err)         // list
	is.Equal(len(all), 0) // nothing was recorded
	_, _, err = st.RecordInboxRequest(ctx, receipt("a", nil, strings.Repeat("x", store.MaxInboxBody)), store.InboxLimits{})
	is.NoErr(err) // a body of exactly the bound is kept
	_, _, err = st.RecordInboxRequest(ctx, receipt("a", http.Header{"X-Big": {strings.Repeat("<", store.MaxInboxHeaders-20)}}, ""), store.InboxLimits{})
	is.NoErr(err) // headers just within the bound are kept, '<' counted once
	// A token longer than the bound is not kept, so it does not count: the record
	// is short.
	r, _, err := st.RecordInboxRequest(ctx, receipt("a", http.Header{"Authorization": {"Bearer " + strings.Repeat("x", store.MaxInboxHeaders)}}, ""), store.InboxLimits{})
	is.NoErr(err)                                                 // kept
	is.Equal(r.HeaderValue("Authorization"), "Bearer [redacted]") // without the token
}

func TestInboxAnswers(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	for _, tt := range []struct {
		name  string
		in    store.InboxAnswer
		want  store.InboxAnswer
		field string
	}{
		{"200", store.InboxAnswer{Status: 200}, store.InboxAnswer{Status: 200}, ""},
		{"500", store.InboxAnswer{Status: 500}, store.InboxAnswer{Status: 500}, ""},
		{"410", store.InboxAnswer{Status: 410}, store.InboxAnswer{Status: 410}, ""},
		{"429", store.InboxAnswer{Status: 429, RetryAfter: 120 * time.Second}, store.InboxAnswer{Status: 429, RetryAfter: 120 * time.Second}, ""},
		{"redirect alone", store.InboxAnswer{Location: "https://example.org/moved"}, store.InboxAnswer{Status: 302, Location: "https://example.org/moved"}, ""},
		{"308", store.InboxAnswer{Status: 308, Location: "http://127.0.0.1:9/x"}, store.InboxAnswer{Status: 308, Location: "http://127.0.0.1:9/x"}, ""},
		{"delay", store.InboxAnswer{Delay: 30 * time.Second}, store.InboxAnswer{Delay: 30 * time.Second}, ""},
		{"500 after a delay", store.InboxAnswer{Status: 500, Delay: time.Minute}, store.InboxAnswer{Status: 500, Delay: time.Minute}, ""},
		{"599, a status without a name", store.InboxAnswer{Status: 599}, store.InboxAnswer{Status: 599}, ""},
		{"520", store.InboxAnswer{Status: 520}, store.InboxAnswer{Status: 520}, ""},
		{"299", store.InboxAnswer{Status: 299}, store.InboxAnswer{Status: 299}, ""},
		{"1xx", store.InboxAnswer{Status: 100}, store.InboxAnswer{}, "status"},
		{"600", store.InboxAnswer{Status: 600}, store.InboxAnswer{}, "status"},
		{"304", store.InboxAnswer{Status: 304}, store.InboxAnswer{}, "status"},
		{"redirect without location", store.InboxAnswer{Status: 301}, store.InboxAnswer{}, "location"},
		{"location with 200", store.InboxAnswer{Status: 200, Location: "https://example.org/"}, store.InboxAnswer{}, "location"},
		{"javascript location", store.InboxAnswer{Location: "javascript:alert(1)"}, store.InboxAnswer{}, "location"},
		{"location with a line break", store.InboxAnswer{Location: "https://example.org/\r\nSet-Cookie: x"}, store.InboxAnswer{}, "location"},
		{"retry-after with 500", store.InboxAnswer{Status: 500, RetryAfter: time.Minute}, store.InboxAnswer{}, "retry_after"},
		{"retry-after in ms", store.InboxAnswer{Status: 429, RetryAfter: 1500 * time.Millisecond}, store.InboxAnswer{}, "retry_after"},
		{"long delay", store.InboxAnswer{Delay: store.MaxInboxDelay + time.Second}, store.InboxAnswer{}, "delay"},
		{"negative delay", store.InboxAnswer{Delay: -time.Second}, store.InboxAnswer{}, "delay"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			is.NoErr(st.ResetInboxAnswer(ctx, "demo")) // start from the default
			got, err := st.SetInboxAnswer(ctx, "demo", tt.in)
			if tt.field != "" {
				var e *store.Error
				is.True(errors.As(err, &e)) // refused with a store.Error
				is.Equal(e.Field, tt.field) // naming the setting at fault
				now, err := st.InboxAnswerOf(ctx, "demo")
				is.NoErr(err)            // read back
				is.True(now.IsDefault()) // nothing changed
				return
			}
			is.NoErr(err)          // set
			is.Equal(got, tt.want) // as stored
			now, err := st.InboxAnswerOf(ctx, "demo")
			is.NoErr(err)          // read back
			is.Equal(now, tt.want) // the same
			_, answer, err := st.RecordInboxRequest(ctx, receipt("demo", nil, ""), store.InboxLimits{})
			is.NoErr(err)             // a request
			is.Equal(answer, tt.want) // is answered so
			last, err := st.InboxRequests(ctx, store.InboxFilter{Inbox: "demo", Limit: 1})
			is.NoErr(err)                                        // and recorded
			is.Equal(last[0].AnswerStatus, tt.want.StatusCode()) // with the status it got
			is.Equal(last[0].AnswerDelay, tt.want.Delay)         // and the delay
		})
	}
	is := is.New(t)
	is.NoErr(st.ResetInboxAnswer(ctx, "demo")) // reset
	a, err := st.InboxAnswerOf(ctx, "demo")
	is.NoErr(err)                                            // read
	is.Equal(a.StatusCode(), 204)                            // the default again
	is.Equal(store.InboxAnswer{Status: 599}.String(), "599") // a status without a name is its number
	_, err = st.SetInboxAnswer(ctx, "bad name", store.InboxAnswer{Status: 500})
	is.True(errors.Is(err, store.ErrInvalid)) // a bad name is refused
}

// TestInboxWatch: a watcher is told after a request is recorded, and a stopped
// watch is told nothing.
func TestInboxWatch(t *testing.T) {
	is := is.New(t)
	st := newStore(t)
	ch, stop := st.WatchInbox()
	other, stopOther := st.WatchInbox()
	stopOther()
	r := record(t, st, receipt("w", nil, "x"), store.InboxLimits{})
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher was not told within 10s")
	}
	select {
	case <-other:
		t.Fatal("a stopped watch was told")
	default:
	}
	got, err := st.InboxRequestsAfter(context.Background(), "w", r.ID-1, 10)
	is.NoErr(err)                     // read what the watcher was told about
	is.Equal(ids(got), []int64{r.ID}) // the new request
	stop()
	stop() // twice is harmless
}

func TestInboxBodyText(t *testing.T) {
	is := is.New(t)
	text, ok := store.InboxRequest{Body: []byte("héllo <b>")}.BodyText()
	is.True(ok)                 // UTF-8 is text
	is.Equal(text, "héllo <b>") // as it came
	text, ok = store.InboxRequest{Body: []byte{0xff, 'a', 0x00}}.BodyText()
	is.True(!ok)                                           // not UTF-8
	is.True(strings.HasPrefix(text, "00000000  ff 61 00")) // a hex dump
}

// signedBy signs body with the official Standard Webhooks library, at ts.
func signedBy(tb testing.TB, whsec, id string, ts time.Time, body string) http.Header {
	tb.Helper()
	wh, err := standardwebhooks.NewWebhook(whsec)
	if err != nil {
		tb.Fatal(err)
	}
	sig, err := wh.Sign(id, ts, []byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	return h
}

// TestInboxSignatureVerdicts signs with the official Standard Webhooks library and
// checks hookd's verdict, and that the library itself, given the secret, agrees.
func TestInboxSignatureVerdicts(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	// The library checks timestamps against the wall clock: so does the store here.
	// Rotations happen on a clock moved back, so one overlap is over by now.
	var offset atomic.Int64
	st.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }

	// Every secret here signs the deliveries of a webhook that calls the inbox
	// "sig", but one: a webhook of the same client that calls another inbox.
	c, err := st.CreateClient(ctx, store.NewClient{Name: "signer", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // a client, with its signing secret
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, "0000-0002-1825-0097", "https://hookd.example/inbox/sig/cb")
	is.NoErr(err) // whose ORCID-style registration calls the inbox
	hook, first, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://hookd.example/inbox/sig/h", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // a platform webhook, with its own
	current, _, err := st.RotateWebhookSecret(ctx, c.ID, hook.UID, store.KeepPrevious)
	is.NoErr(err) // rotated now: first signs for 24 h more
	old, oldFirst, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://hookd.example/inbox/sig/o", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // another webhook
	_, elsewhere, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://hookd.example/inbox/other/h", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // a webhook that calls another inbox
	offset.Store(int64(-25 * time.Hour))
	_, _, err = st.RotateWebhookSecret(ctx, c.ID, old.UID, store.KeepPrevious)
	is.NoErr(err) // rotated 25 h ago: its overlap is over
	offset.Store(0)
	rc, err := st.CreateClient(ctx, store.NewClient{Name: "rotating signer", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // a client whose ORCID-style callbacks' secret is rotated
	_, _, err = st.PutOrcidWebhook(ctx, rc.ID, "0000-0002-1825-0097", "https://hookd.example/inbox/sig/rc")
	is.NoErr(err) // which call the inbox
	_, _, _, err = st.RotateClientSigningSecret(ctx, rc.ID, store.KeepPrevious)
	is.NoErr(err) // rotated now: its first signs for 24 h more

	now := time.Now()
	stranger := secret.NewSigningSecret()
	const body = `{"type":"orcid.record.updated"}`
	tests := []struct {
		name    string
		secret  string // what the library signs with ("" for none)
		header  http.Header
		verdict store.Verdict
		problem store.SignatureProblem
		signer  store.Signer
		libErr  error // what the library's Verify says with secret (nil: it verifies)
	}{
		{name: "client's secret", secret: c.SigningSecret, header: signedBy(t, c.SigningSecret, "msg_a", now, body),
			verdict: store.VerdictValid, signer: store.Signer{Kind: "client", ID: c.ID}},
		{name: "webhook's current secret", secret: current, header: signedBy(t, current, "msg_b", now, body),
			verdict: store.VerdictValid, signer: store.Signer{Kind: "webhook", ID: hook.UID}},
		{name: "rotated-out secret within the overlap", secret: first, header: signedBy(t, first, "msg_c", now, body),
			verdict: store.VerdictValid, signer: store.Signer{Kind: "webhook", ID: hook.UID, Previous: true}},
		{name: "a client's rotated-out secret within the overlap", secret: rc.SigningSecret, header: signedBy(t, rc.SigningSecret, "msg_p", now, body),
			verdict: store.VerdictValid, signer: store.Signer{Kind: "client", ID: rc.ID, Previous: true}},
		{name: "rotated-out secret after the overlap", secret: oldFirst, header: signedBy(t, oldFirst, "msg_d", now, body),
			verdict: store.VerdictInvalid, problem: store.SignatureWrong},
		{name: "a secret hookd does not hold", secret: stranger, header: signedBy(t, stranger, "msg_e", now, body),
			verdict: store.VerdictInvalid, problem: store.SignatureWrong},
		{name: "the secret of a webhook that calls another inbox", secret: elsewhere, header: signedBy(t, elsewhere, "msg_q", now, body),
			verdict: store.VerdictInvalid, problem: store.SignatureWrong},
		{name: "timestamp too old", secret: c.SigningSecret, header: signedBy(t, c.SigningSecret, "msg_f", now.Add(-10*time.Minute), body),
			verdict: store.VerdictInvalid, problem: store.SignatureTooOld, signer: store.Signer{Kind: "client", ID: c.ID}, libErr: standardwebhooks.ErrMessageTooOld},
		{name: "timestamp too new", secret: c.SigningSecret, header: signedBy(t, c.SigningSecret, "msg_g", now.Add(10*time.Minute), body),
			verdict: store.VerdictInvalid, problem: store.SignatureTooNew, signer: store.Signer{Kind: "client", ID: c.ID}, libErr: standardwebhooks.ErrMessageTooNew},
		{name: "old timestamp and a stranger's secret", secret: stranger, header: signedBy(t, stranger, "msg_h", now.Add(-time.Hour), body),
			verdict: store.VerdictInvalid, problem: store.SignatureTooOld, libErr: standardwebhooks.ErrMessageTooOld},
		{name: "both signatures of a rotation", secret: current, header: func() http.Header {
			h := signedBy(t, current, "msg_i", now, body)
			h.Set("webhook-signature", signedBy(t, first, "msg_i", now, body).Get("webhook-signature")+" "+h.Get("webhook-signature"))
			return h
		}(), verdict: store.VerdictValid, signer: store.Signer{Kind: "webhook", ID: hook.UID}}, // the current one is named
		{name: "unknown version and a good v1", secret: c.SigningSecret, header: func() http.Header {
			h := signedBy(t, c.SigningSecret, "msg_j", now, body)
			h.Set("webhook-signature", "v1a,AAAA "+h.Get("webhook-signature"))
			return h
		}(), verdict: store.VerdictValid, signer: store.Signer{Kind: "client", ID: c.ID}},
		{name: "body changed on the way", secret: c.SigningSecret, header: signedBy(t, c.SigningSecret, "msg_k", now, body+" "),
			verdict: store.VerdictInvalid, problem: store.SignatureWrong, libErr: standardwebhooks.ErrNoMatchingSignature},
		{name: "no webhook-id", secret: c.SigningSecret, header: func() http.Header {
			h := signedBy(t, c.SigningSecret, "msg_l", now, body)
			h.Del("webhook-id")
			return h
		}(), verdict: store.VerdictInvalid, problem: store.SignatureMalformed, libErr: standardwebhooks.ErrRequiredHeaders},
		{name: "timestamp not a number", secret: c.SigningSecret, header: func() http.Header {
			h := signedBy(t, c.SigningSecret, "msg_m", now, body)
			h.Set("webhook-timestamp", now.Format(time.RFC3339))
			return h
		}(), verdict: store.VerdictInvalid, problem: store.SignatureMalformed, libErr: standardwebhooks.ErrInvalidHeaders},
		{name: "no v1 signature", secret: c.SigningSecret, header: func() http.Header {
			h := signedBy(t, c.SigningSecret, "msg_n", now, body)
			h.Set("webhook-signature", "garbage")
			return h
		}(), verdict: store.VerdictInvalid, problem: store.SignatureMalformed, libErr: standardwebhooks.ErrNoMatchingSignature},
		{name: "unsigned", header: http.Header{"Webhook-Id": {"msg_o"}, "Webhook-Timestamp": {strconv.FormatInt(now.Unix(), 10)}},
			verdict: store.VerdictUnsigned},
		{name: "no headers at all", header: http.Header{}, verdict: store.VerdictUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			r := record(t, st, receipt("sig", tt.header, body), store.InboxLimits{})
			is.Equal(r.Signature.Verdict, tt.verdict) // hookd's verdict
			is.Equal(r.Signature.Problem, tt.problem) // and why
			is.Equal(r.Signature.Signer, tt.signer)   // whose secret it matches
			is.True(r.Signature.Detail != "")         // said in words
			if tt.problem == store.SignatureWrong {
				// without how many secrets there are, or whose: a client sees the
				// requests to its inboxes, not the other owners' webhooks
				is.Equal(r.Signature.Detail, "the signature matches none of the signing secrets of the webhooks that call this inbox")
			}
			saved, err := st.InboxRequestByID(ctx, r.ID)
			is.NoErr(err)                          // read back
			is.Equal(saved.Signature, r.Signature) // stored as judged

			if tt.secret == "" {
				return
			}
			wh, err := standardwebhooks.NewWebhook(tt.secret)
			is.NoErr(err) // the library, with the secret the test signed with
			libErr := wh.Verify([]byte(body), tt.header)
			if tt.libErr == nil {
				is.NoErr(libErr) // the library verifies it with this secret too
				return
			}
			is.True(errors.Is(libErr, tt.libErr)) // the library refuses it for the same reason
		})
	}
}

// TestInboxLinksDelivery: a request whose webhook-id names an in-flight delivery
// to this inbox is linked to that delivery and attempt, and its signature is
// checked against that delivery's secret; the same id at another inbox is not.
func TestInboxLinksDelivery(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "dev", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // a client
	const orcidID = "0000-0002-7253-3645"
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, orcidID, "http://127.0.0.1:8080/inbox/demo/"+orcidID+"/updated")
	is.NoErr(err) // registered at the inbox
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: orcidID}}, 0)
	is.NoErr(err) // an event
	claimed, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)             // the dispatcher takes it
	is.Equal(len(claimed), 1) // one delivery
	d := claimed[0]

	h := signedBy(t, c.SigningSecret, store.MessageID(d.ID, 0), st.Now(), "")
	r := record(t, st, receipt("demo", h, ""), store.InboxLimits{})
	is.Equal(r.DeliveryID, d.ID)                      // linked to the delivery
	is.Equal(r.Attempt, 1)                            // and its attempt
	is.Equal(r.Signature.Verdict, store.VerdictValid) // signed by its client
	is.Equal(r.Signature.Signer.ID, c.ID)             // whose secret it is
	other := record(t, st, receipt("other", h, ""), store.InboxLimits{})
	is.Equal(other.DeliveryID, int64(0)) // the delivery's target is not that inbox
	forged := record(t, st, receipt("demo", http.Header{"Webhook-Id": {"msg_0" + strconv.FormatInt(d.ID, 10)}}, ""), store.InboxLimits{})
	is.Equal(forged.DeliveryID, int64(0)) // "msg_07" is not msg_7

	byDelivery, err := st.InboxRequests(ctx, store.InboxFilter{DeliveryID: d.ID})
	is.NoErr(err)                            // from the delivery's side
	is.Equal(ids(byDelivery), []int64{r.ID}) // the request it made

	mine, err := st.Inboxes(ctx, store.InboxesFilter{ClientID: c.ID})
	is.NoErr(err)          // the inboxes the client's webhooks call
	is.Equal(len(mine), 1) // only demo
	is.Equal(mine[0].Name, "demo")

	// Once the call is over, the delivery sends nothing: a request naming it (ids
	// are counted, anyone may post to an inbox) is linked to nothing.
	_, err = st.Exchange(ctx, []store.Outcome{{DeliveryID: d.ID, SubscriptionID: d.Target.SubscriptionID,
		Kind: store.OutcomeDelivered, Attempt: d.Attempt, StartedAt: st.Now(), Status: 204}}, 0, time.Minute)
	is.NoErr(err)
	late := record(t, st, receipt("demo", h, ""), store.InboxLimits{})
	is.Equal(late.DeliveryID, int64(0))
	byDelivery, err = st.InboxRequests(ctx, store.InboxFilter{DeliveryID: d.ID})
	is.NoErr(err)
	is.Equal(ids(byDelivery), []int64{r.ID}) // still the one it made
}

// TestInboxLinksDeliveryOfRemovedWebhook: a delivery under way when its webhook is
// removed (by its owner, with its client or its organisation) still reaches the
// inbox, and what it sent there is linked to it: its owner reads it on the
// delivery's page, and an owner whose webhook calls the inbox after does not read
// it as something anyone posted. An organisation's webhook at /inbox with the
// record's iD appended sent it to the member's inbox.
func TestInboxLinksDeliveryOfRemovedWebhook(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	const member = "0000-0002-7253-3645"
	a, err := st.CreateClient(ctx, store.NewClient{Name: "a", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	b, err := st.CreateClient(ctx, store.NewClient{Name: "b", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	org, err := st.CreateOrganisation(ctx, "University", "it@uni.example")
	is.NoErr(err)
	_, err = st.PutMember(ctx, org.ID, member, store.MemberInfo{}, 0)
	is.NoErr(err)
	_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: "http://127.0.0.1:8080/inbox", AppendOrcid: true})
	is.NoErr(err) // the organisation's webhook calls the member's inbox
	callback := "http://127.0.0.1:8080/inbox/a-box/" + member + "/updated"
	_, _, err = st.PutOrcidWebhook(ctx, a.ID, member, callback)
	is.NoErr(err) // A's calls a-box
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: member}}, 0)
	is.NoErr(err)
	claimed, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 2) // both deliveries are on their way
	sent := map[string]int64{}
	for _, d := range claimed {
		sent[d.Target.Format] = d.ID
	}

	is.NoErr(st.DeleteOrcidWebhook(ctx, a.ID, member, callback)) // meanwhile, A removes its webhook
	is.NoErr(st.DeleteOrganisation(ctx, org.ID))                 // and the organisation goes
	byA := record(t, st, receipt("a-box", http.Header{"Webhook-Id": {store.MessageID(sent[store.FormatEmpty], 0)}}, "A's"), store.InboxLimits{})
	is.Equal(byA.DeliveryID, sent[store.FormatEmpty]) // linked to A's delivery
	byOrg := record(t, st, receipt(member, http.Header{"Webhook-Id": {store.MessageID(sent[store.FormatHub], 0)}}, "the organisation's"), store.InboxLimits{})
	is.Equal(byOrg.DeliveryID, sent[store.FormatHub]) // and the organisation's, in the member's inbox

	rs, err := st.InboxRequests(ctx, store.InboxFilter{DeliveryID: sent[store.FormatEmpty]})
	is.NoErr(err)
	is.Equal(ids(rs), []int64{byA.ID}) // A's delivery's page shows it
	_, _, err = st.CreateWebhook(ctx, b.ID, store.WebhookSpec{TargetURL: "http://127.0.0.1:8080/inbox/a-box/b", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // B's webhook calls a-box now
	rs, err = st.InboxRequests(ctx, store.InboxFilter{Inbox: "a-box", Visible: store.Visibility{ClientID: b.ID}})
	is.NoErr(err)
	is.Equal(len(rs), 0) // and B does not read it
}

// TestInboxLinksNoRemovedWebhookCallingElsewhere: an organisation's webhook whose
// URL is the inbox's root without the record's iD appended calls no inbox; once it
// is removed with a call out, a request posted to a member's inbox with that
// delivery's webhook-id is what anyone posted, linked to nothing.
func TestInboxLinksNoRemovedWebhookCallingElsewhere(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	const member = "0000-0002-7253-3645"
	org, err := st.CreateOrganisation(ctx, "University", "it@uni.example")
	is.NoErr(err)
	_, err = st.PutMember(ctx, org.ID, member, store.MemberInfo{}, 0)
	is.NoErr(err)
	_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: "http://127.0.0.1:8080/inbox"})
	is.NoErr(err) // calls /inbox itself
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: member}}, 0)
	is.NoErr(err)
	claimed, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1) // on its way
	is.NoErr(st.DeleteOrganisation(ctx, org.ID))
	posted := record(t, st, receipt(member, http.Header{"Webhook-Id": {store.MessageID(claimed[0].ID, 0)}}, "anyone's"), store.InboxLimits{})
	is.Equal(posted.DeliveryID, int64(0)) // not the organisation's delivery's
}

// TestInboxReadsWithoutCredentials: a request recorded with its credentials (as an
// older hookd kept them) is read without them: its credential headers, query
// parameters and form fields; the rest as recorded.
func TestInboxReadsWithoutCredentials(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	rc := receipt("old", http.Header{"Authorization": {"Basic dTM6cDM="}, "Content-Type": {"application/x-www-form-urlencoded"}, "X-Kept": {"v"}},
		"grant_type=client_credentials&client_secret=s3cr")
	rc.Query = "token=QT1&page=2"
	record(t, st, rc, store.InboxLimits{})
	rs, err := st.InboxRequests(ctx, store.InboxFilter{Inbox: "old"})
	is.NoErr(err)
	is.Equal(len(rs), 1)
	r := rs[0]
	is.Equal(r.HeaderValue("Authorization"), "Basic [redacted]")
	is.Equal(r.HeaderValue("X-Kept"), "v")
	is.Equal(r.Query, "token=%5Bredacted%5D&page=2")
	is.Equal(string(r.Body), "grant_type=client_credentials&client_secret=%5Bredacted%5D")
}

// TestInboxKeepsNoCredentialsOfQuotedValues: a parameter's value that begins
// with a quote is read to its closing quote, an escaped one (\") not closing
// it, as Go's reader reads a header's, and on to the next ';' or space, as a
// Java server reads a path's ("ab"cd whole): read to the first quote after the
// one it began with, the rest of the credential (cd, W2) was recorded, and
// shown so once read again (the record read as a value "%5Bredacted%5Dcd").
func TestInboxKeepsNoCredentialsOfQuotedValues(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	rc := withURL(receipt("quoted", http.Header{
		"X-Quoted": {`v; session="ab\"W2 x"; b="c\\"; token="e\\\"W3 x"; u="https://x.example/?token=W4"`},
		"X-Tail":   {`v; session="ab"W5; b=1`},
		"X-Open":   {`v; token="gh\"W6`},
	}, ""), `/inbox/quoted/x;jsessionid="ab"W7/y;v="1"`, "")
	want := map[string]string{
		"X-Quoted": `v; session=%5Bredacted%5D; b="c\\"; token=%5Bredacted%5D; u="https://x.example/?token=%5Bredacted%5D"`,
		"X-Tail":   "v; session=%5Bredacted%5D; b=1",
		"X-Open":   "v; token=%5Bredacted%5D", // no closing quote: to the end
	}
	const wantPath = `/inbox/quoted/x;jsessionid=%5Bredacted%5D/y;v="1"`
	recorded := record(t, st, rc, store.InboxLimits{})
	rs, err := st.InboxRequests(ctx, store.InboxFilter{Inbox: "quoted"})
	is.NoErr(err)
	is.Equal(len(rs), 1)
	for _, r := range []store.InboxRequest{recorded, rs[0]} { // as recorded, and as read
		for name, v := range want {
			is.Equal(r.HeaderValue(name), v)
		}
		is.Equal(r.Path, wantPath)
	}
}

// TestInboxSignatureUnderProxyPath: a webhook that calls the inbox through a proxy
// in front of hookd, under the path the proxy takes off (http.public_url's), and
// at any spelling of the public URL's host, with a query, calls it: its deliveries
// are linked and valid, and a request sent again by hand, no longer a delivery in
// flight, is valid too; a webhook under that path that calls another inbox is not
// tried.
func TestInboxSignatureUnderProxyPath(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "dev", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	const orcidID = "0000-0002-7253-3645"
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, orcidID, "https://hookd.example/hookd/inbox/demo/"+orcidID+"/updated")
	is.NoErr(err) // registered at the inbox, under public_url's path

	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: orcidID}}, 0)
	is.NoErr(err)
	claimed, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1) // the registration's delivery, in flight
	d := claimed[0]
	_, hookSecret, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://HookD.example./hookd/inbox/demo/h?via=proxy", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // a platform webhook: another spelling of the host, a query
	_, elsewhere, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://hookd.example/hookd/inbox/other/h", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // one that calls another inbox
	at := func(rc store.InboxReceipt) store.InboxReceipt {
		rc.Ours = store.InboxReachedAt(nil, "https://hookd.example/hookd") // the inbox's hookd, behind the proxy
		return rc
	}
	h := signedBy(t, c.SigningSecret, store.MessageID(d.ID, 0), st.Now(), "")
	r := record(t, st, at(receipt("demo", h, "")), store.InboxLimits{})
	is.Equal(r.DeliveryID, d.ID)                                         // linked to the delivery
	is.Equal(r.Signature.Verdict, store.VerdictValid)                    // valid
	is.Equal(r.Signature.Signer, store.Signer{Kind: "client", ID: c.ID}) // by its client's secret

	byHand := record(t, st, at(receipt("demo", signedBy(t, c.SigningSecret, "msg_byhand", st.Now(), "{}"), "{}")), store.InboxLimits{})
	is.Equal(byHand.DeliveryID, int64(0))                  // no delivery sent it
	is.Equal(byHand.Signature.Verdict, store.VerdictValid) // the client's secret, found through its registration
	platform := record(t, st, at(receipt("demo", signedBy(t, hookSecret, "msg_platform", st.Now(), "{}"), "{}")), store.InboxLimits{})
	is.Equal(platform.Signature.Verdict, store.VerdictValid) // the platform webhook's own secret
	other := record(t, st, at(receipt("demo", signedBy(t, elsewhere, "msg_other", st.Now(), "{}"), "{}")), store.InboxLimits{})
	is.Equal(other.Signature.Problem, store.SignatureWrong) // not a caller of demo
	is.Equal(other.Signature.Signer, store.Signer{})
}

// TestInboxCallersAreThoseItsRequestsComeFrom: a webhook calls an inbox exactly
// when its calls reach that inbox, as hookd routes them, by their path decoded, at
// an address of hookd's or under its public URL: an escaped spelling of the path
// calls it (a request its secret signed, sent by hand, is valid; its owner sees
// the inbox); a path hookd answers 404 for (no name, a dot segment, the prefix
// in capitals or under a path of its own that no proxy takes off), another host or
// another port does not (its secret is not tried; its owner has no part in it).
func TestInboxCallersAreThoseItsRequestsComeFrom(t *testing.T) {
	ctx := context.Background()
	in, err := ssrf.NewInbox("127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	ours := store.InboxReachedAt(in, "https://hookd.example/hookd")
	for _, c := range []struct {
		target string
		calls  bool // calls the inbox demo
	}{
		{"http://127.0.0.1:8080/inbox/demo/x", true},
		{"http://127.0.0.1:8080/inbox%2Fdemo/x", true},
		{"http://127.0.0.1:8080/inbox%2fdemo", true},
		{"http://127.0.0.1:8080/%69nbox/demo/x", true},
		{"http://127.0.0.1:8080/inbox/de%6Do?x=%2F", true},
		{"http://127.0.0.1:8080%2Finbox/demo", false}, // no URL: a port is digits
		{"http://[::ffff:127.0.0.1]:8080/inbox/demo/x", true},
		{"http://localhost:8080/inbox/demo/x", true},
		{"https://hookd.example/hookd/inbox%2Fdemo/x", true},
		{"https://hookd.example./hookd/%69nbox/demo", true},
		{"http://127.0.0.1:8080/inbox//demo", false},
		{"http://127.0.0.1:8080/inbox%2F%2Fdemo", false},
		{"http://127.0.0.1:8080/INBOX/demo", false},
		{"http://127.0.0.1:8080/x/inbox/demo", false},
		{"http://127.0.0.1:8080/inbox/demo/../demo", false},
		{"http://127.0.0.1:8080/inbox/demo%2F..%2Fdemo", false},
		{"http://127.0.0.1:8080/inbox/demo", true},
		{"http://127.0.0.1:8081/inbox/demo/x", false},
		{"https://127.0.0.1:8080/inbox/demo/x", false},
		{"https://partner.example/inbox/demo/x", false},
		{"https://hookd.example/inbox/demo/x", false}, // outside the public URL's path
		{"https://hookd.example/hookd/x/inbox/demo", false},
	} {
		t.Run(c.target, func(t *testing.T) {
			is := is.New(t)
			st := newStore(t)
			cl, err := st.CreateClient(ctx, store.NewClient{Name: "dev", Scopes: []string{store.ScopeWebhook}})
			is.NoErr(err)
			_, whsec, err := st.CreateWebhook(ctx, cl.ID, store.WebhookSpec{TargetURL: c.target, Auth: store.Auth{Type: store.AuthNone}})
			if err != nil {
				is.True(!c.calls) // a URL hookd does not keep
				return
			}
			rc := receipt("demo", signedBy(t, whsec, "msg_byhand", st.Now(), "{}"), "{}")
			rc.Ours = ours
			r := record(t, st, rc, store.InboxLimits{})
			is.Equal(r.Signature.Verdict == store.VerdictValid, c.calls) // its secret is tried exactly when it calls the inbox
			names, err := st.InboxesCalled(ctx, store.InboxesFilter{ClientID: cl.ID, Ours: ours})
			is.NoErr(err)
			is.Equal(slices.Contains(names, "demo"), c.calls) // and its owner sees it exactly then
		})
	}
}

// TestInboxMultipartFoldedHeaderCostsItsLength: a part's header folded over
// thousands of lines, which anyone who reaches an inbox may send, is read in time
// and memory of its length, when recorded and each time it is read: 64 KiB of
// them cost gigabytes of copying, seconds a reading, so a page of such requests
// held a reader of the inbox for minutes.
func TestInboxMultipartFoldedHeaderCostsItsLength(t *testing.T) {
	is := is.New(t)
	st := newStore(t)
	for _, eol := range []string{"\r\n", "\n", "\r"} {
		body := "--b" + eol + "Content-Disposition: form-data;" + eol + strings.Repeat(" a"+eol, store.MaxInboxBody)
		body = body[:store.MaxInboxBody-16-len(eol+" name=token"+eol+eol+"T1")] + eol + " name=token" + eol + eol + "T1"
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := record(t, st, receipt("mp", http.Header{"Content-Type": {"multipart/form-data; boundary=b"}}, body), store.InboxLimits{})
		got, err := st.InboxRequestByID(context.Background(), r.ID)
		runtime.ReadMemStats(&after)
		is.NoErr(err)
		is.True(strings.HasSuffix(string(got.Body), eol+eol+"[redacted]")) // its name read at the end of the fold
		is.True(after.TotalAlloc-before.TotalAlloc < 32<<20)               // under 32 MB for a record and a reading of 64 KiB
	}
}

// TestInboxHeaderOfSpacesCostsItsLength: a header's value with a run of
// thousands of spaces or tabs, which anyone who reaches an inbox may send, is
// read in time of its length, when recorded and each time it is read: each
// space read the rest of the run for a name=value pair after it, so the 30 KB
// of spaces a record keeps cost 0.15 s of a core each reading (a page of 100
// such requests held a reader of the inbox for 15 s), and 60 KB of tabs,
// refused as too long, a second; the pair after the run is still read.
func TestInboxHeaderOfSpacesCostsItsLength(t *testing.T) {
	is := is.New(t)
	st := newStore(t)
	ctx := context.Background()
	start := time.Now()
	for _, c := range []struct {
		run string
		n   int // as many as a record keeps: a tab is 2 bytes in its JSON
	}{{" ", 30000}, {"\t", 15000}} {
		run := c.run
		h := http.Header{"X-Pad": {"a" + strings.Repeat(run, c.n) + "token=T1"}}
		r := record(t, st, receipt("pad", h, ""), store.InboxLimits{})
		for range 5 {
			got, err := st.InboxRequestByID(ctx, r.ID)
			is.NoErr(err)
			is.True(strings.HasSuffix(got.HeaderValue("X-Pad"), run+"token=%5Bredacted%5D")) // the pair after the run read
		}
		h = http.Header{"X-Pad": {"a" + strings.Repeat(run, 60000) + "b=1"}}
		_, _, err := st.RecordInboxRequest(ctx, receipt("pad", h, ""), store.InboxLimits{})
		is.True(err != nil) // over the headers an inbox keeps
	}
	took := time.Since(start)
	t.Logf("two records, ten readings and two refusals: %v", took)
	is.True(took < time.Second) // 2 s and more when each space read the run after it
}

// TestInboxContentTypeNotUTF8: a Content-Type that Go's reader refuses for bytes
// that are not ASCII before its boundary is read as lenient readers read it, its
// boundary whatever those bytes: one not UTF-8 ("\xff") made the inbox drop the
// connection unanswered, its reading panicking, and so did every reading of such
// a request an older hookd recorded (hookd inbox list crashed); a Kelvin sign
// ("\u212a", one byte fewer in lower case) shifted the boundary read to
// "ary=abc", the form's token kept.
func TestInboxContentTypeNotUTF8(t *testing.T) {
	st := newStore(t)
	for _, tt := range []struct{ name, contentType, body, want string }{
		{"not UTF-8", "multipart/form-data; x=\xff\xff; boundary=", "--b\r\nContent-Disposition: form-data; name=token\r\n\r\nT1\r\n--b--",
			"--b\r\nContent-Disposition: form-data; name=token\r\n\r\n[redacted]\r\n--b--"},
		{"shorter in lower case", "multipart/form-data; x=\u212a\u212a; boundary=abc", "--pre\r\n--abc\r\nContent-Disposition: form-data; name=token\r\n\r\nT2\r\n--abc--",
			"--pre\r\n--abc\r\nContent-Disposition: form-data; name=token\r\n\r\n[redacted]\r\n--abc--"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			r := record(t, st, receipt("ct", http.Header{"Content-Type": {tt.contentType}}, tt.body), store.InboxLimits{})
			is.Equal(string(r.Body), tt.want) // as recorded
			got, err := st.InboxRequestByID(context.Background(), r.ID)
			is.NoErr(err)
			is.Equal(string(got.Body), tt.want)                       // and read back
			is.Equal(got.HeaderValue("Content-Type"), tt.contentType) // the Content-Type as sent
		})
	}
}

// TestInboxJSONSentAsFormKeptWhole: a JSON body whose Content-Type names a form,
// as curl -d '{…}' sends it, is kept whole, as JSON is: read as a form, all of it
// up to its first "=" was the name of a field, one holding "session", and what
// followed went, so the record kept the session's value and lost the JSON's end.
// A form is still read as one.
func TestInboxJSONSentAsFormKeptWhole(t *testing.T) {
	is := is.New(t)
	st := newStore(t)
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for _, body := range []string{`{"session_id":"S1","callback":"https://example.org/x?a=b","n":1}`, " [{\"token\": \"T1==\"}, 2]\n"} {
		r := record(t, st, receipt("js", form, body), store.InboxLimits{})
		is.Equal(string(r.Body), body) // as sent
		got, err := st.InboxRequestByID(context.Background(), r.ID)
		is.NoErr(err)
		is.Equal(string(got.Body), body) // and read so
	}
	r := record(t, st, receipt("js", form, `{"a":1}&token=T2`), store.InboxLimits{})
	is.Equal(string(r.Body), `{"a":1}&token=%5Bredacted%5D`) // no JSON: a form
}

// TestInboxMultipartWithoutCredentials: a multipart/form-data body is kept with
// the content of its credentials' fields as "[redacted]" and every other byte as
// sent, however its sender wrote it.
func TestInboxMultipartWithoutCredentials(t *testing.T) {
	st := newStore(t)
	for _, tt := range []struct{ name, body, want string }{
		{"preamble and epilogue",
			"pre\r\n--b\r\nContent-Disposition: form-data; name=token\r\n\r\nT1\r\n--b--\r\nepilogue --b\r\n",
			"pre\r\n--b\r\nContent-Disposition: form-data; name=token\r\n\r\n[redacted]\r\n--b--\r\nepilogue --b\r\n"},
		{"cut off", "--b\r\ncontent-disposition: form-data; name=\"passw\"\r\n\r\nP2 and the rest",
			"--b\r\ncontent-disposition: form-data; name=\"passw\"\r\n\r\n[redacted]"},
		{"a line like a delimiter", "--b\r\nContent-Disposition: form-data; name=secret\r\n\r\nS3\r\n--bb\r\nS3\r\n--b \r\nContent-Disposition: form-data; name=a\r\n\r\nS3\r\n--b--",
			"--b\r\nContent-Disposition: form-data; name=secret\r\n\r\n[redacted]\r\n--b \r\nContent-Disposition: form-data; name=a\r\n\r\nS3\r\n--b--"},
		{"empty", "--b\r\nContent-Disposition: form-data; name=token\r\n\r\n\r\n--b--", "--b\r\nContent-Disposition: form-data; name=token\r\n\r\n\r\n--b--"},
		{"unreadable disposition", "--b\r\nContent-Disposition: form-data; name=\"api_key\r\n\r\nK4\r\n--b--",
			"--b\r\nContent-Disposition: form-data; name=\"api_key\r\n\r\n[redacted]\r\n--b--"},
		{"disposition folded", "--b\r\nContent-Disposition: form-data;\r\n name=\"password\"\r\n\r\nP6\r\n--b\r\nContent-Disposition:\r\n\tform-data; name=token\r\n\r\nT7\r\n--b--",
			"--b\r\nContent-Disposition: form-data;\r\n name=\"password\"\r\n\r\n[redacted]\r\n--b\r\nContent-Disposition:\r\n\tform-data; name=token\r\n\r\n[redacted]\r\n--b--"},
		{"name in RFC 2231", "--b\r\nContent-Disposition: form-data; name*=UTF-8''%74oken\r\n\r\nT5\r\n--b--",
			"--b\r\nContent-Disposition: form-data; name*=UTF-8''%74oken\r\n\r\n[redacted]\r\n--b--"},
		{"a multipart/mixed part", "--b\r\nContent-Disposition: form-data; name=files\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n" +
			"--c\r\nContent-Disposition: form-data; name=token\r\n\r\nT8\r\n--c\r\nContent-Disposition: file; filename=a.txt\r\n\r\nA\r\n--c--\r\n--b--",
			"--b\r\nContent-Disposition: form-data; name=files\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n" +
				"--c\r\nContent-Disposition: form-data; name=token\r\n\r\n[redacted]\r\n--c\r\nContent-Disposition: file; filename=a.txt\r\n\r\nA\r\n--c--\r\n--b--"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			r := record(t, st, receipt("mp", http.Header{"Content-Type": {`multipart/form-data; boundary="b"`}}, tt.body), store.InboxLimits{})
			is.Equal(string(r.Body), tt.want) // as recorded
			got, err := st.InboxRequestByID(context.Background(), r.ID)
			is.NoErr(err)
			is.Equal(string(got.Body), tt.want) // and read back
		})
	}
}
