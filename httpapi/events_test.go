package httpapi_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/secret"
	"hookd/store"
)

// The intake API through the real router, on a real store. Helpers here carry an
// "events" prefix so they stay apart from the package's other test helpers.

const (
	eventsOrcidA = "0000-0002-7253-3645"
	eventsOrcidB = "0000-0002-9079-593X"
	eventsPath   = "/api/notifications/v1/events"
	eventsWindow = 5 * time.Minute
)

// eventsAPI is hookd's HTTP API on a store in a temporary folder, with a /notify
// client that owns webhooks for eventsOrcidA and eventsOrcidB.
type eventsAPI struct {
	tb     testing.TB
	st     *store.Store
	srv    *httptest.Server
	nowMS  atomic.Int64 // the pinned clock of the store, in unix ms
	client store.Credentials
	token  string // a /notify token of client
	nudges atomic.Int32
}

func newEventsAPI(tb testing.TB) *eventsAPI {
	tb.Helper()
	return newEventsAPIWindow(tb, eventsWindow)
}

// newEventsAPIWindow is newEventsAPI with the coalescing window given.
func newEventsAPIWindow(tb testing.TB, window time.Duration) *eventsAPI {
	tb.Helper()
	is := is.New(tb)
	ctx := context.Background()
	dir := tb.TempDir()
	box, err := secret.LoadKeyFile(filepath.Join(dir, "k"), true)
	is.NoErr(err) // create the secret key
	st, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "hookd.db"), Box: box})
	is.NoErr(err) // open store
	tb.Cleanup(func() { st.Close() })
	a := &eventsAPI{tb: tb, st: st}
	a.nowMS.Store(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	st.Now = a.now

	a.srv = httptest.NewServer(httpapi.NewServer(httpapi.Options{
		Store:               st,
		AllowPrivateTargets: true,
		TokenTTL:            time.Hour,
		CoalesceWindow:      window,
		Nudge:               func() { a.nudges.Add(1) },
	}).Handler())
	tb.Cleanup(a.srv.Close)

	a.client, err = st.CreateClient(ctx, store.NewClient{Name: "notifier", Scopes: []string{store.ScopeNotify, store.ScopeWebhook}})
	is.NoErr(err) // create client
	// The tests move the clock by days: the token outlives that.
	tok, err := st.IssueToken(ctx, a.client.Client, []string{store.ScopeNotify}, 30*24*time.Hour)
	is.NoErr(err) // issue a /notify token
	a.token = tok.Access
	for _, id := range []string{eventsOrcidA, eventsOrcidB} {
		// No dispatcher runs here: these callbacks are never called.
		_, _, err := st.PutOrcidWebhook(ctx, a.client.ID, id, "http://127.0.0.1:9/hook")
		is.NoErr(err) // register webhook
	}
	return a
}

// now is the store's pinned clock; advance moves it.
func (a *eventsAPI) now() time.Time          { return time.UnixMilli(a.nowMS.Load()).UTC() }
func (a *eventsAPI) advance(d time.Duration) { a.nowMS.Add(d.Milliseconds()) }

// eventsResponse is a fully read response.
type eventsResponse struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to the intake with token (none when empty) and header pairs.
func (a *eventsAPI) post(token, body string, header ...string) eventsResponse {
	a.tb.Helper()
	is := is.New(a.tb)
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+eventsPath, strings.NewReader(body))
	is.NoErr(err) // make request
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	given := map[string]bool{} // a header given twice is sent twice
	for i := 0; i+1 < len(header); i += 2 {
		if given[header[i]] {
			req.Header.Add(header[i], header[i+1])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
		given[header[i]] = true
	}
	res, err := a.srv.Client().Do(req)
	is.NoErr(err) // send request
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	is.NoErr(err) // read response
	checkAPI(a.tb, "", req, []byte(body), res, b)
	return eventsResponse{status: res.StatusCode, header: res.Header, body: b}
}

// eventsAccepted is the 202 body.
type eventsAccepted struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Deliveries int `json:"deliveries"`
}

// accepted checks a 202 and decodes its body strictly.
func (a *eventsAPI) accepted(res eventsResponse) eventsAccepted {
	a.tb.Helper()
	is := is.New(a.tb)
	if res.status != http.StatusAccepted {
		a.tb.Logf("body: %s", res.body)
	}
	is.Equal(res.status, http.StatusAccepted)                                      // 202 Accepted
	is.True(strings.HasPrefix(res.header.Get("Content-Type"), "application/json")) // JSON body
	var v eventsAccepted
	dec := json.NewDecoder(strings.NewReader(string(res.body)))
	dec.DisallowUnknownFields()
	is.NoErr(dec.Decode(&v)) // body is {"accepted","duplicates","deliveries"}
	return v
}

// eventsProblem is an RFC 9457 problem body.
type eventsProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
}

// problem checks an error status with a problem+json body and decodes it.
func (a *eventsAPI) problem(res eventsResponse, status int) eventsProblem {
	a.tb.Helper()
	is := is.New(a.tb)
	if res.status != status {
		a.tb.Logf("body: %s", res.body)
	}
	is.Equal(res.status, status)                                         // status
	is.Equal(res.header.Get("Content-Type"), "application/problem+json") // RFC 9457 media type
	var p eventsProblem
	dec := json.NewDecoder(strings.NewReader(string(res.body)))
	dec.DisallowUnknownFields()
	is.NoErr(dec.Decode(&p))   // problem body
	is.Equal(p.Status, status) // status repeated in the body
	is.True(p.Detail != "")    // detail says what is wrong
	is.True(p.Title != "")     // title is set
	return p
}

// rows returns the outbox rows by subject.
func (a *eventsAPI) rows() map[string]store.Delivery {
	a.tb.Helper()
	is := is.New(a.tb)
	ds, err := a.st.Deliveries(context.Background(), store.DeliveryFilter{})
	is.NoErr(err) // list deliveries
	out := map[string]store.Delivery{}
	for _, d := range ds {
		_, dup := out[d.Subject]
		is.True(!dup) // at most one row per record here
		out[d.Subject] = d
	}
	return out
}

func TestEventsSingle(t *testing.T) {
	is := is.New(t)
	a := newEventsAPI(t)
	res := a.post(a.token, `{"orcid":"`+eventsOrcidA+`"}`)
	got := a.accepted(res)
	is.Equal(got, eventsAccepted{Accepted: 1, Deliveries: 1}) // one event, one delivery
	is.Equal(a.nudges.Load(), int32(1))                       // the dispatcher was nudged

	rows := a.rows()
	is.Equal(len(rows), 1) // one outbox row
	row := rows[eventsOrcidA]
	is.Equal(row.EventCount, 1)                         // carrying the event
	is.Equal(row.EventType, store.EventUpdated)         // UPDATED by default
	is.Equal(row.StateName(), "pending")                // waiting
	is.True(row.DueAt.Equal(a.now().Add(eventsWindow))) // for the coalescing window

	t.Run("record URL and type", func(t *testing.T) {
		is := is.New(t)
		res := a.post(a.token, `{"orcid":"https://orcid.org/`+eventsOrcidB+`","type":"created","id":"ev-1"}`)
		is.Equal(a.accepted(res), eventsAccepted{Accepted: 1, Deliveries: 1}) // the iD may be written as its URL
		row := a.rows()[eventsOrcidB]
		is.Equal(row.EventType, store.EventCreated) // type is case-insensitive
	})

	t.Run("no subscriber", func(t *testing.T) {
		is := is.New(t)
		before := a.nudges.Load()
		res := a.post(a.token, `{"orcid":"0000-0001-5109-3700"}`)
		is.Equal(a.accepted(res), eventsAccepted{Accepted: 1}) // accepted, but no delivery
		is.Equal(len(a.rows()), 2)                             // no new row
		is.Equal(a.nudges.Load(), before)                      // nothing to wake the dispatcher for
	})
}

// TestEventsClaimedNudgeNobody: with no coalescing window and a dispatch loop with
// room (its fresh claimer), an event's delivery is claimed in the event's own
// transaction, and the loop is not nudged for a turn that would find nothing to
// claim; without room it is.
func TestEventsClaimedNudgeNobody(t *testing.T) {
	is := is.New(t)
	a := newEventsAPIWindow(t, 0)
	var room, taken atomic.Int32
	var unsettled atomic.Bool
	room.Store(16)
	a.st.ClaimFresh(&store.FreshClaimer{Limit: func() int { return int(room.Load()) },
		Take:    func(c []store.Claimed) { taken.Add(int32(len(c))) },
		Settled: func() bool { return !unsettled.Load() }, Lease: time.Minute})
	is.Equal(a.accepted(a.post(a.token, `{"orcid":"`+eventsOrcidA+`"}`)), eventsAccepted{Accepted: 1, Deliveries: 1})
	is.Equal(taken.Load(), int32(1))    // claimed with the event
	is.Equal(a.nudges.Load(), int32(0)) // nobody woken

	room.Store(0)
	is.Equal(a.accepted(a.post(a.token, `{"orcid":"`+eventsOrcidB+`"}`)), eventsAccepted{Accepted: 1, Deliveries: 1})
	is.Equal(taken.Load(), int32(1))    // no room: not claimed
	is.Equal(a.nudges.Load(), int32(1)) // a turn must claim it

	room.Store(16)
	unsettled.Store(true) // the loop holds outcomes not yet recorded
	is.Equal(a.accepted(a.post(a.token, `{"orcid":"`+eventsOrcidA+`"}`)), eventsAccepted{Accepted: 1, Deliveries: 1})
	is.Equal(taken.Load(), int32(2))    // the row left before; this one's pair is in flight
	is.Equal(a.nudges.Load(), int32(2)) // a turn must record them
}

func TestEventsBatch(t *testing.T) {
	is := is.New(t)
	a := newEventsAPI(t)
	body := `[{"orcid":"` + eventsOrcidA + `"},{"orcid":"` + eventsOrcidB + `","type":"CREATED"},{"orcid":"` + eventsOrcidA + `"}]`
	got := a.accepted(a.post(a.token, body))
	is.Equal(got.Accepted, 3)           // three events
	is.Equal(got.Duplicates, 0)         // none repeated
	is.Equal(got.Deliveries, 3)         // each made or merged into a row
	is.Equal(a.nudges.Load(), int32(1)) // one nudge for the batch

	rows := a.rows()
	is.Equal(len(rows), 2)                                     // two records, two rows
	is.Equal(rows[eventsOrcidA].EventCount, 2)                 // A's two events coalesced
	is.Equal(rows[eventsOrcidB].EventCount, 1)                 // B's one
	is.Equal(rows[eventsOrcidB].EventType, store.EventCreated) // with its type

	t.Run("1000 is the limit", func(t *testing.T) {
		is := is.New(t)
		ev := `{"orcid":"` + eventsOrcidA + `"}`
		got := a.accepted(a.post(a.token, "["+strings.TrimSuffix(strings.Repeat(ev+",", 1000), ",")+"]"))
		is.Equal(got.Accepted, 1000)                      // 1000 events are fine
		is.Equal(a.rows()[eventsOrcidA].EventCount, 1002) // all merged into A's pending row
	})
}

func TestEventsBadRequests(t *testing.T) {
	ev := func(id string) string { return `{"orcid":"` + id + `"}` }
	many := "[" + strings.TrimSuffix(strings.Repeat(ev(eventsOrcidA)+",", 1001), ",") + "]"
	tests := []struct {
		name   string
		body   string
		field  string // the field the problem names, if any
		detail string // a piece of the detail
	}{
		{"1001 events", many, "", "1000"},
		{"empty array", `[]`, "", "no events"},
		{"empty body", ``, "", "empty"},
		{"not JSON", `{"orcid" "x"}`, "", "JSON"},
		{"cut off", `{"orcid":`, "", ""},
		{"missing iD", `{}`, "orcid", "orcid: is required"},
		{"missing iD in a batch", "[" + ev(eventsOrcidA) + `,{"type":"CREATED"}]`, "[1].orcid", "[1].orcid: is required"},
		{"an iD of spaces", ev("   "), "orcid", `orcid: "   " is not an ORCID iD`},
		{"an orcid.org URL without an iD", ev("https://orcid.org/"), "orcid", `orcid: "https://orcid.org/" is not an ORCID iD`},
		{"bad checksum", ev("0000-0002-7253-3646"), "orcid", "check digit"},
		{"bad iD in a batch", "[" + ev(eventsOrcidA) + "," + ev("0000-0002-7253-364") + "]", "[1].orcid", "0000-0002-7253-364"},
		{"bad type", `{"orcid":"` + eventsOrcidA + `","type":"DELETED"}`, "type", "UPDATED or CREATED"},
		{"an empty type", `{"orcid":"` + eventsOrcidA + `","type":""}`, "type", "type: is empty: give UPDATED or CREATED, or leave type out"},
		{"an empty type in a batch", "[" + ev(eventsOrcidA) + `,{"orcid":"` + eventsOrcidA + `","type":""}]`, "[1].type", "[1].type: is empty"},
		{"bad type in a batch", "[" + ev(eventsOrcidA) + `,{"orcid":"` + eventsOrcidA + `","type":"DELETED"}]`, "[1].type", "[1].type: must be UPDATED or CREATED"},
		{"unknown field", `{"orcid":"` + eventsOrcidA + `","colour":"red"}`, "colour", "unknown field"},
		{"unknown field in a batch", `[{"orcid":"` + eventsOrcidA + `","colour":"red"}]`, "[0].colour", "unknown field"},
		{"wrong type", `{"orcid":123}`, "orcid", "string"},
		{"wrong type in a batch", `[{"orcid":["` + eventsOrcidA + `"]}]`, "[0].orcid", "string"},
		{"wrong type in a batch's second element", `[{"orcid":"` + eventsOrcidA + `"},{"orcid":1}]`, "[1].orcid", "must be a string, got number"},
		{"not an object in a batch", `[{"orcid":"` + eventsOrcidA + `"},5]`, "[1]", "[1]: must be an object, got number"},
		{"id too long", `{"orcid":"` + eventsOrcidA + `","id":"` + strings.Repeat("i", 201) + `"}`, "id", "200"},
		{"id too long in characters", `{"orcid":"` + eventsOrcidA + `","id":"` + strings.Repeat("€", 201) + `"}`, "id", "200"},
		{"a NUL in an id", `{"orcid":"` + eventsOrcidA + `","id":"a\u0000b"}`, "id", "control character"},
		{"an escape in an id in a batch", `[{"orcid":"` + eventsOrcidA + `"},{"orcid":"` + eventsOrcidA + `","id":"a\u001bb"}]`, "[1].id", "control character"},
		{"trailing data", ev(eventsOrcidA) + ev(eventsOrcidA), "", "after"},
		{"a stray brace after the value", ev(eventsOrcidA) + " }", "", "after"},
		{"a stray bracket after a batch", "[" + ev(eventsOrcidA) + "]]", "", "after"},
		{"another case before a stray brace", `{"orCId":"` + eventsOrcidA + `"}}`, "", "after"},
		{"a field name in another case", `{"ORCID":"` + eventsOrcidA + `"}`, "ORCID", "case-sensitive"},
		{"a member twice", `{"orcid":"` + eventsOrcidA + `","orcid":"` + eventsOrcidB + `"}`, "orcid", "given twice"},
		{"a member twice in a batch's second element", "[" + ev(eventsOrcidA) + `,{"type":"CREATED","orcid":"` + eventsOrcidA + `","type":"UPDATED"}]`, "[1].type", "[1].type: is given twice"},
		{"a member twice, once escaped", `{"orcid":"` + eventsOrcidA + `","\u006frcid":"` + eventsOrcidB + `"}`, "orcid", "given twice"},
		{"padded with a no-break space", "\u00a0" + ev(eventsOrcidA), "", "JSON"},
		{"a byte order mark first", "\ufeff" + ev(eventsOrcidA), "", "byte order mark (U+FEFF)"},
		{"a byte order mark before a batch", "\ufeff[" + ev(eventsOrcidA) + "]", "", "byte order mark (U+FEFF)"},
		{"a batch followed by a line separator", "[" + ev(eventsOrcidA) + "]\u2028", "", "after"},
		{"followed by an ideographic space", ev(eventsOrcidA) + "\u3000", "", "after"},
		{"invalid UTF-8 in an id", `{"orcid":"` + eventsOrcidA + `","id":"a` + "\xff" + `"}`, "", "UTF-8"},
		{"half a surrogate pair in an id", `{"orcid":"` + eventsOrcidA + `","id":"a\ud800"}`, "", "UTF-8"},
		{"a low surrogate alone in an id", `[{"orcid":"` + eventsOrcidA + `","id":"\udfff"}]`, "[0]", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			a := newEventsAPI(t)
			p := a.problem(a.post(a.token, tt.body, "Idempotency-Key", "k1"), http.StatusBadRequest)
			is.Equal(p.Field, tt.field) // the problem names the field
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q does not mention %q", p.Detail, tt.detail)
			}
			is.Equal(len(a.rows()), 0)          // a bad request changes nothing
			is.Equal(a.nudges.Load(), int32(0)) // and wakes nobody

			// The failed request did not use up its idempotency key.
			got := a.accepted(a.post(a.token, ev(eventsOrcidA), "Idempotency-Key", "k1"))
			is.Equal(got.Accepted, 1)                      // a good request with the same key is taken
			is.Equal(a.rows()[eventsOrcidA].EventCount, 1) // once
		})
	}
}

// TestEventsUnicodeIDs: ids that differ only in characters outside the BMP (a
// surrogate pair in JSON) stay distinct.
func TestEventsUnicodeIDs(t *testing.T) {
	is := is.New(t)
	a := newEventsAPI(t)
	got := a.accepted(a.post(a.token, `[{"orcid":"`+eventsOrcidA+`","id":"\ud83d\ude00"},{"orcid":"`+eventsOrcidA+`","id":"\ud83d\ude01"}]`))
	is.Equal(got.Accepted, 2)   // two ids, two events
	is.Equal(got.Duplicates, 0) // neither taken for the other
}

func TestEventsAuth(t *testing.T) {
	a := newEventsAPI(t)
	body := `{"orcid":"` + eventsOrcidA + `"}`

	t.Run("missing token", func(t *testing.T) {
		is := is.New(t)
		res := a.post("", body)
		a.problem(res, http.StatusUnauthorized)
		is.True(strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer")) // says how to authenticate
	})
	t.Run("unknown token", func(t *testing.T) {
		is := is.New(t)
		res := a.post("not-a-token", body)
		a.problem(res, http.StatusUnauthorized)
		is.True(strings.Contains(res.header.Get("WWW-Authenticate"), "invalid_token")) // names the error
	})
	t.Run("token without /notify", func(t *testing.T) {
		is := is.New(t)
		tok, err := a.st.IssueToken(context.Background(), a.client.Client, []string{store.ScopeWebhook}, time.Hour)
		is.NoErr(err) // issue a /webhook token
		p := a.problem(a.post(tok.Access, body), http.StatusForbidden)
		is.True(strings.Contains(p.Detail, store.ScopeNotify)) // names the missing scope
	})
	t.Run("nothing stored", func(t *testing.T) {
		is := is.New(t)
		is.Equal(len(a.rows()), 0)          // refused requests change nothing
		is.Equal(a.nudges.Load(), int32(0)) // and wake nobody
	})
}

func TestEventsIdempotencyKey(t *testing.T) {
	is := is.New(t)
	a := newEventsAPI(t)
	body := `[{"orcid":"` + eventsOrcidA + `"},{"orcid":"` + eventsOrcidB + `"}]`
	first := a.post(a.token, body, "Idempotency-Key", "batch-7")
	got := a.accepted(first)
	is.Equal(got, eventsAccepted{Accepted: 2, Deliveries: 2}) // taken
	is.Equal(first.header.Get("Idempotent-Replayed"), "")     // the first answer is not a replay

	for range 3 {
		a.advance(time.Hour)
		again := a.post(a.token, body, "Idempotency-Key", "batch-7")
		is.Equal(again.status, first.status)                      // same status
		is.Equal(string(again.body), string(first.body))          // same answer
		is.Equal(again.header.Get("Idempotent-Replayed"), "true") // marked as a replay
		rows := a.rows()
		is.Equal(rows[eventsOrcidA].EventCount, 1) // no extra event for A
		is.Equal(rows[eventsOrcidB].EventCount, 1) // nor for B
	}
	is.Equal(a.nudges.Load(), int32(1)) // only the first call woke the dispatcher

	t.Run("another key is another request", func(t *testing.T) {
		is := is.New(t)
		got := a.accepted(a.post(a.token, body, "Idempotency-Key", "batch-8"))
		is.Equal(got.Accepted, 2)                      // taken
		is.Equal(a.rows()[eventsOrcidA].EventCount, 2) // and merged
	})

	t.Run("remembered for 24 hours", func(t *testing.T) {
		is := is.New(t)
		a.advance(store.IdempotencyWindow)
		res := a.post(a.token, body, "Idempotency-Key", "batch-7")
		is.Equal(res.header.Get("Idempotent-Replayed"), "") // after a day the key is new again
		is.Equal(a.accepted(res).Accepted, 2)               // and the events are taken
	})

	t.Run("key too long", func(t *testing.T) {
		is := is.New(t)
		p := a.problem(a.post(a.token, body, "Idempotency-Key", strings.Repeat("k", 201)), http.StatusBadRequest)
		is.Equal(p.Field, "Idempotency-Key") // names the header
	})

	t.Run("two keys", func(t *testing.T) {
		is := is.New(t)
		before := a.rows()[eventsOrcidA].EventCount
		p := a.problem(a.post(a.token, body, "Idempotency-Key", "batch-9", "Idempotency-Key", "batch-10"), http.StatusBadRequest)
		is.Equal(p.Field, "Idempotency-Key")                 // names the header
		is.True(strings.Contains(p.Detail, "2 Idempotency")) // and what is wrong
		is.Equal(a.rows()[eventsOrcidA].EventCount, before)  // and takes nothing
	})

	t.Run("a key that is not text", func(t *testing.T) {
		is := is.New(t)
		before := a.rows()[eventsOrcidA].EventCount
		p := a.problem(a.post(a.token, body, "Idempotency-Key", "\xff\xfe"), http.StatusBadRequest)
		is.Equal(p.Field, "Idempotency-Key")                   // names the header
		is.True(strings.Contains(p.Detail, "not valid UTF-8")) // and what is wrong
		is.Equal(a.rows()[eventsOrcidA].EventCount, before)    // and takes nothing
	})
}

func TestEventsIdempotencyKeyOfAnotherRequestRefused(t *testing.T) {
	is := is.New(t)
	a := newEventsAPI(t)
	first := a.post(a.token, `{"orcid":"`+eventsOrcidA+`"}`, "Idempotency-Key", "k-1")
	is.Equal(a.accepted(first).Accepted, 1) // taken

	// The key again with other events: answering the first request's 202 would
	// say these were taken, and they would be lost.
	p := a.problem(a.post(a.token, `{"orcid":"`+eventsOrcidB+`"}`, "Idempotency-Key", "k-1"), http.StatusUnprocessableEntity)
	is.Equal(p.Field, "Idempotency-Key")                   // names the header
	is.True(strings.Contains(p.Detail, "another request")) // and says what is wrong
	_, stored := a.rows()[eventsOrcidB]
	is.True(!stored)                               // nothing taken
	is.Equal(a.rows()[eventsOrcidA].EventCount, 1) // nor changed

	// The same request again is still answered as the first.
	again := a.post(a.token, ` { "orcid" : "`+eventsOrcidA+`" } `, "Idempotency-Key", "k-1")
	is.Equal(string(again.body), string(first.body))          // the first answer
	is.Equal(again.header.Get("Idempotent-Replayed"), "true") // as a replay
	is.Equal(a.rows()[eventsOrcidA].EventCount, 1)            // and no second event
}

func TestEventsIDRepeat(t *testing.T) {
	is := is.New(t)
	a := newEventsAPI(t)
	ev := func(id string) string { return fmt.Sprintf(`{"orcid":%q,"id":%q}`, eventsOrcidA, id) }

	got := a.accepted(a.post(a.token, ev("e-1")))
	is.Equal(got, eventsAccepted{Accepted: 1, Deliveries: 1}) // first time: taken

	got = a.accepted(a.post(a.token, ev("e-1")))
	is.Equal(got, eventsAccepted{Duplicates: 1})   // repeat: counted as a duplicate
	is.Equal(a.rows()[eventsOrcidA].EventCount, 1) // the repeat added nothing

	got = a.accepted(a.post(a.token, "["+ev("e-2")+","+ev("e-1")+","+ev("e-2")+"]"))
	is.Equal(got, eventsAccepted{Accepted: 1, Duplicates: 2, Deliveries: 1}) // repeats within a batch too
	is.Equal(a.rows()[eventsOrcidA].EventCount, 2)                           // only e-2 was added
	is.Equal(a.nudges.Load(), int32(2))                                      // the two calls that added events

	got = a.accepted(a.post(a.token, ev(strings.Repeat("€", 200))))
	is.Equal(got.Accepted, 1) // 200 characters, 600 bytes: the limit counts characters
}

// TestEventsCharset: a body is read as UTF-8 JSON; another charset is refused, not
// misread.
func TestEventsCharset(t *testing.T) {
	is := is.New(t)
	a := newEventsAPI(t)
	p := a.problem(a.post(a.token, `{"orcid":"`+eventsOrcidA+`"}`, "Content-Type", "application/json; charset=utf-16"), http.StatusBadRequest)
	is.True(strings.Contains(p.Detail, `charset "utf-16"`)) // says which
	is.Equal(len(a.rows()), 0)                              // and takes nothing
	a.accepted(a.post(a.token, `{"orcid":"`+eventsOrcidA+`"}`, "Content-Type", "application/json; charset=UTF-8"))
	// Two Content-Type headers: which one labels the body would be a guess.
	p = a.problem(a.post(a.token, `{"orcid":"`+eventsOrcidB+`"}`, "Content-Type", "application/json", "Content-Type", "application/json; charset=utf-16"), http.StatusBadRequest)
	is.True(strings.Contains(p.Detail, "2 Content-Type headers")) // says what is wrong
	is.Equal(len(a.rows()), 1)                                    // and takes nothing more
}

// TestEventsContentEncoding: hookd reads bodies as sent, so one with a
// Content-Encoding (gzip) is refused saying so, whether or not it was
// compressed, and takes nothing; "identity" is no encoding.
func TestEventsContentEncoding(t *testing.T) {
	is := is.New(t)
	a := newEventsAPI(t)
	body := `{"orcid":"` + eventsOrcidA + `"}`
	var zipped strings.Builder
	zw := gzip.NewWriter(&zipped)
	_, err := zw.Write([]byte(body))
	is.NoErr(err)
	is.NoErr(zw.Close())
	for _, b := range []string{zipped.String(), body} {
		p := a.problem(a.post(a.token, b, "Content-Encoding", "gzip"), http.StatusBadRequest)
		is.True(strings.Contains(p.Detail, `Content-Encoding "gzip"`)) // says what is wrong
		is.Equal(len(a.rows()), 0)                                     // and takes nothing
	}
	a.accepted(a.post(a.token, body, "Content-Encoding", "identity"))
}
