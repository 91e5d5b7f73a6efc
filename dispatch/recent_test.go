package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

func TestRecent(t *testing.T) {
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("entries expire by age", func(t *testing.T) {
		is := is.New(t)
		r := newRecent[string, int](time.Hour, 100)
		for i := range 50 {
			r.set(fmt.Sprint(i), i, t0)
		}
		v, at, ok := r.get("7", t0.Add(time.Hour))
		is.True(ok)      // still there when exactly keep old
		is.Equal(v, 7)   // with its value
		is.Equal(at, t0) // and its stamp
		_, _, ok = r.get("7", t0.Add(time.Hour+time.Millisecond))
		is.True(!ok)          // expired past keep, before any sweep
		is.Equal(r.len(), 50) // (nothing dropped yet)

		r.set("new", 1, t0.Add(2*time.Hour)) // a new key, keep after the last sweep
		is.Equal(r.len(), 1)                 // the 50 expired ones are gone
		r.set("new", 2, t0.Add(3*time.Hour))
		v, _, ok = r.get("new", t0.Add(3*time.Hour))
		is.True(ok) // setting again renews the stamp
		is.Equal(v, 2)
	})

	t.Run("the cap holds under many distinct keys", func(t *testing.T) {
		is := is.New(t)
		r := newRecent[int, struct{}](time.Hour, 1000)
		most := 0
		for i := range 100000 {
			r.set(i, struct{}{}, t0) // all live
			most = max(most, r.len())
		}
		is.Equal(most, 1000) // never more than max
		_, _, ok := r.get(99999, t0)
		is.True(ok) // the newest key is kept
	})
}

// TestRememberedIsCapped: the failure log, the owners told of deactivations and the
// token cache keep at most their caps, however many hosts and subscriptions pass.
func TestRememberedIsCapped(t *testing.T) {
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("failure log", func(t *testing.T) {
		is := is.New(t)
		f := newFailureLog()
		for i := range 3 * failLogHosts {
			_, ok := f.admit(fmt.Sprintf("host-%d.example:443", i), store.OutcomeRetry, now)
			is.True(ok) // a host's first failure is logged
		}
		is.True(f.hosts.len() <= failLogHosts) // bounded
		_, ok := f.admit(fmt.Sprintf("host-%d.example:443", 3*failLogHosts-1), store.OutcomeRetry, now.Add(time.Second))
		is.True(!ok) // the latest host is still rate-limited
	})

	t.Run("deactivations left out", func(t *testing.T) {
		// A receiver that answers 410 deactivates 15 webhooks in a minute while
		// many other receivers fail (more than failLogHosts of them): the 5 left
		// out of the log are summed up when the minute ends all the same, not
		// lost with the host that the failure log dropped to keep its cap.
		is := is.New(t)
		f := newFailureLog()
		for range deactLogMax + 5 {
			f.admit("gone.example:443", store.OutcomeGone, now)
		}
		for i := range 8 * failLogHosts {
			f.admit(fmt.Sprintf("host-%d.example:443", i), store.OutcomeRetry, now.Add(time.Second))
		}
		is.True(f.hosts.len() <= failLogHosts) // bounded
		sums := f.summaries(now.Add(time.Minute), false)
		is.Equal(len(sums), 1) // summed up
		is.Equal(sums[0].host, "gone.example:443")
		is.Equal(sums[0].n, 5)
		is.Equal(sums[0].reasons.String(), "410 Gone")
		is.Equal(len(f.due), 0) // and forgotten
	})

	t.Run("owners told", func(t *testing.T) {
		is := is.New(t)
		told := newToldOwners()
		for i := range 3 * noticeSubs {
			is.True(told.tell(int64(i), now)) // each subscription's owner is told once
		}
		is.True(told.subs.len() <= noticeSubs)          // bounded
		is.True(!told.tell(int64(3*noticeSubs-1), now)) // the latest is remembered
	})

	t.Run("token cache", func(t *testing.T) {
		is := is.New(t)
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"t","token_type":"bearer","expires_in":3600}`)
		}))
		defer srv.Close()
		const limit = 50 // the cap of this cache: tokenSources token requests would take long
		c := newTokenCache(srv.Client(), func() time.Time { return now })
		c.sources = newRecent[int64, *tokenSource](tokenKeep, limit)
		for i := range 3 * limit {
			tok, err := c.token(context.Background(), &store.Target{SubscriptionID: int64(i),
				Auth: store.Auth{Type: store.AuthClientCredential, ClientID: "c", Secret: "s", TokenURL: srv.URL}}, "")
			is.NoErr(err)      // a token
			is.Equal(tok, "t") // from the endpoint
		}
		is.Equal(int(calls.Load()), 3*limit) // one request per subscription
		is.True(c.sources.len() <= limit)    // bounded
	})
}
